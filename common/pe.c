#include "pe.h"

#include <string.h>

#include "reader.h"
#include "record.h"

static size_t cap_need(uint64_t want, uint64_t file_size)
{
	if (want > file_size)
		want = file_size;
	if (want > SW_PE_HEAD_MAX)
		want = SW_PE_HEAD_MAX;
	return (size_t)want;
}

sw_err sw_pe_parse_headers(const uint8_t *head, size_t headlen, uint64_t file_size, sw_pe *pe, size_t *need)
{
	sw_rd r = sw_rd_make(head, headlen);
	uint16_t mz, nsect, opt_size, magic;
	uint32_t lfanew, sig, nrva;

	memset(pe, 0, sizeof(*pe));
	pe->file_size = file_size;
	*need = 0;
	if (headlen > file_size)
		return SW_ERR_BAD_PE;

	if (sw_rd_u16le(&r, &mz) || mz != 0x5a4d)
		return SW_ERR_NOT_PE;
	if (sw_rd_seek(&r, 0x3c) || sw_rd_u32le(&r, &lfanew)) {
		if (file_size < 0x40)
			return SW_ERR_NOT_PE; /* an "MZ" text file, not an executable */
		*need = cap_need(0x40, file_size);
		return SW_ERR_TRUNCATED;
	}
	/* The 64-bit sum cannot wrap; anything past the header cap is hostile. */
	uint64_t nt_end = (uint64_t)lfanew + 24;
	if (lfanew < 0x40 || nt_end > SW_PE_HEAD_MAX)
		return SW_ERR_BAD_PE;
	if (nt_end > file_size)
		return SW_ERR_BAD_PE;
	if (nt_end > headlen) {
		*need = cap_need(nt_end + 256 + 40 * 16, file_size);
		return SW_ERR_TRUNCATED;
	}
	(void)sw_rd_seek(&r, lfanew);
	(void)sw_rd_u32le(&r, &sig);
	if (sig != 0x00004550)
		return SW_ERR_NOT_PE; /* MZ without PE: a DOS program */
	(void)sw_rd_u16le(&r, &pe->machine);
	(void)sw_rd_u16le(&r, &nsect);
	(void)sw_rd_skip(&r, 12); /* TimeDateStamp, PointerToSymbolTable, NumberOfSymbols */
	(void)sw_rd_u16le(&r, &opt_size);
	(void)sw_rd_skip(&r, 2); /* Characteristics */

	if (nsect > SW_PE_MAX_SECTIONS)
		return SW_ERR_BAD_PE;
	uint64_t opt_off = nt_end;
	uint64_t sect_off = opt_off + opt_size;
	uint64_t hdr_end = sect_off + (uint64_t)nsect * 40;
	if (hdr_end > SW_PE_HEAD_MAX || hdr_end > file_size)
		return SW_ERR_BAD_PE;
	if (hdr_end > headlen) {
		*need = cap_need(hdr_end, file_size);
		return SW_ERR_TRUNCATED;
	}
	pe->headers_len = hdr_end;
	pe->nsections = nsect;

	sw_rd opt;
	if (sw_rd_sub(&r, opt_size, &opt) || sw_rd_u16le(&opt, &magic))
		return SW_ERR_BAD_PE;
	size_t dd_at; /* offset of NumberOfRvaAndSizes inside the optional header */
	if (magic == 0x10b) {
		pe->pe32plus = false;
		dd_at = 92;
	} else if (magic == 0x20b) {
		pe->pe32plus = true;
		dd_at = 108;
	} else {
		return SW_ERR_BAD_PE;
	}
	uint32_t soh;
	if (sw_rd_seek(&opt, 60) || sw_rd_u32le(&opt, &soh))
		return SW_ERR_BAD_PE;
	pe->size_of_headers = soh;
	pe->checksum_off = opt_off + 64;
	if (sw_rd_seek(&opt, dd_at) || sw_rd_u32le(&opt, &nrva))
		return SW_ERR_BAD_PE;
	if (nrva > 4) {
		uint32_t va, size;
		if (sw_rd_seek(&opt, dd_at + 4 + 4 * 8) || sw_rd_u32le(&opt, &va) || sw_rd_u32le(&opt, &size))
			return SW_ERR_BAD_PE; /* directory count claims more than the header holds */
		pe->has_secdir = true;
		pe->secdir_off = opt_off + dd_at + 4 + 4 * 8;
		pe->table_off = va;
		pe->table_size = size;
		if (va == 0 || size == 0)
			pe->table_off = pe->table_size = 0;
	}

	/* Section raw data: where the table must not reach. */
	(void)sw_rd_seek(&r, sect_off);
	uint64_t first = UINT64_MAX, last = 0;
	for (unsigned i = 0; i < nsect; i++) {
		uint32_t raw_size, raw_ptr;
		if (sw_rd_skip(&r, 16) || sw_rd_u32le(&r, &raw_size) || sw_rd_u32le(&r, &raw_ptr) ||
		    sw_rd_skip(&r, 16))
			return SW_ERR_BAD_PE;
		if (raw_size == 0)
			continue;
		uint64_t end = (uint64_t)raw_ptr + raw_size;
		if (raw_ptr < first)
			first = raw_ptr;
		if (end > last)
			last = end;
		if (pe->table_size && pe->table_off < end && raw_ptr < pe->table_off + pe->table_size)
			pe->anomalies |= SW_ANOM_OVERLAPS_SECTIONS;
	}
	pe->sections_start = first == UINT64_MAX ? 0 : first;
	pe->sections_end = last;
	return SW_OK;
}

bool sw_pe_table_readable(sw_pe *pe)
{
	if (!pe->table_size)
		return false;
	uint64_t end = pe->table_off + pe->table_size; /* both < 2^32: no wrap */
	if (pe->table_off < pe->headers_len || end > pe->file_size) {
		pe->anomalies |= SW_ANOM_TABLE_OUTSIDE_FILE;
		return false;
	}
	if (pe->table_size > SW_PE_TABLE_MAX) {
		/* Bytes the digest skips and no check will see. */
		pe->anomalies |= SW_ANOM_TABLE_TOO_LARGE;
		return false;
	}
	if (pe->table_off % 8)
		pe->anomalies |= SW_ANOM_UNALIGNED_TABLE;
	if (end < pe->file_size)
		pe->anomalies |= SW_ANOM_DATA_AFTER_TABLE;
	if (pe->table_off < pe->sections_end)
		pe->anomalies |= SW_ANOM_TABLE_NOT_AT_END;
	return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

sw_err sw_pe_parse_table(sw_pe *pe, const uint8_t *table, size_t len)
{
	sw_rd r = sw_rd_make(table, len);
	pe->nentries = 0;
	while (sw_rd_left(&r) >= 8) {
		size_t at = r.off;
		uint32_t dwlen;
		uint16_t rev, type;
		(void)sw_rd_u32le(&r, &dwlen);
		(void)sw_rd_u16le(&r, &rev);
		(void)sw_rd_u16le(&r, &type);
		if (dwlen < 8 || dwlen > len - at) {
			/* The first entry's own length is wrong, or what follows the
			 * entries is not an entry: bytes nobody accounts for. */
			pe->anomalies |= at == 0 ? SW_ANOM_LENGTH_MISMATCH : SW_ANOM_UNACCOUNTED_BYTES;
			r.off = len;
			break;
		}
		if (pe->nentries == SW_PE_MAX_ENTRIES) {
			pe->anomalies |= SW_ANOM_SIGNATURE_LIMIT;
			r.off = len;
			break;
		}
		sw_pe_entry *e = &pe->entries[pe->nentries++];
		e->off = pe->table_off + at;
		e->length = dwlen;
		e->revision = rev;
		e->type = type;
		e->usable = rev == SW_WIN_CERT_REVISION_2_0 && type == SW_WIN_CERT_TYPE_PKCS_SIGNED_DATA;
		if (rev != SW_WIN_CERT_REVISION_2_0)
			pe->anomalies |= SW_ANOM_BAD_ENTRY_REVISION;
		if (type != SW_WIN_CERT_TYPE_PKCS_SIGNED_DATA)
			pe->anomalies |= SW_ANOM_BAD_ENTRY_TYPE;
		uint64_t next = ((uint64_t)at + dwlen + 7) & ~(uint64_t)7;
		if (next > len) {
			/* dwLength reaches the end but its 8-alignment does not:
			 * the aligned lengths do not sum to the directory size. */
			pe->anomalies |= SW_ANOM_LENGTH_MISMATCH;
			r.off = len;
			break;
		}
		if (!all_zero(table + at + dwlen, (size_t)(next - at - dwlen)))
			pe->anomalies |= SW_ANOM_NONZERO_PADDING;
		r.off = (size_t)next;
	}
	if (r.off < len) /* fewer than 8 bytes left over */
		pe->anomalies |= SW_ANOM_UNACCOUNTED_BYTES;
	if (pe->nentries > 1)
		pe->anomalies |= SW_ANOM_MULTIPLE_ENTRIES;
	return pe->nentries ? SW_OK : SW_ERR_BAD_TABLE;
}

void sw_pe_entry_blob(const sw_pe *pe, size_t i, const uint8_t *table, const uint8_t **der, size_t *len)
{
	const sw_pe_entry *e = &pe->entries[i];
	*der = table + (e->off - pe->table_off) + 8;
	*len = e->length - 8;
}

void sw_pe_check_entry_slack(sw_pe *pe, size_t i, const uint8_t *table, size_t der_len)
{
	const uint8_t *der;
	size_t len;
	sw_pe_entry_blob(pe, i, table, &der, &len);
	if (der_len >= len)
		return;
	if (!all_zero(der + der_len, len - der_len))
		pe->anomalies |= SW_ANOM_NONZERO_PADDING;
	else if (len - der_len > 7)
		pe->anomalies |= SW_ANOM_UNACCOUNTED_BYTES;
}

void sw_pe_digest_skip_table(const sw_pe *pe, uint64_t *from, uint64_t *to)
{
	*from = *to = 0;
	if (pe->table_size && pe->table_off >= pe->headers_len &&
	    pe->table_off + pe->table_size <= pe->file_size) {
		*from = pe->table_off;
		*to = pe->table_off + pe->table_size;
	}
}
