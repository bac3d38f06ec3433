/* PE headers and the certificate table walk, over hand-built images. */
#include <stdlib.h>

#include "pe.h"
#include "record.h"
#include "tap.h"

static uint8_t img[0x2000];

static void put16(size_t o, uint16_t v)
{
	img[o] = (uint8_t)v;
	img[o + 1] = (uint8_t)(v >> 8);
}
static void put32(size_t o, uint32_t v)
{
	put16(o, (uint16_t)v);
	put16(o + 2, (uint16_t)(v >> 16));
}

/* A PE with one section at [0x200, 0x400) and the table at 0x400. */
static size_t build(bool plus, uint32_t table_size)
{
	memset(img, 0, sizeof(img));
	img[0] = 'M';
	img[1] = 'Z';
	put32(0x3c, 0x80);
	put32(0x80, 0x00004550);
	put16(0x84, plus ? 0x8664 : 0x14c);
	put16(0x86, 1);
	uint16_t opt = plus ? 0xf0 : 0xe0;
	put16(0x94, opt);
	size_t oh = 0x98;
	put16(oh, plus ? 0x20b : 0x10b);
	put32(oh + 60, 0x200); /* SizeOfHeaders */
	size_t dd = oh + (plus ? 108 : 92);
	put32(dd, 16);
	put32(dd + 4 + 4 * 8, table_size ? 0x400 : 0);
	put32(dd + 4 + 4 * 8 + 4, table_size);
	size_t sect = oh + opt;
	memcpy(img + sect, ".text", 5);
	put32(sect + 16, 0x200); /* SizeOfRawData */
	put32(sect + 20, 0x200); /* PointerToRawData */
	return 0x400 + table_size;
}

static sw_err parse(size_t len, sw_pe *pe)
{
	size_t need;
	return sw_pe_parse_headers(img, len, len, pe, &need);
}

int main(void)
{
	sw_pe pe;
	size_t need;
	for (int plus = 0; plus < 2; plus++) {
		size_t n = build(plus, 0);
		is_int(parse(n, &pe), SW_OK, "%s parses", plus ? "PE32+" : "PE32");
		ok(pe.pe32plus == plus, "magic recognised");
		is_int(pe.checksum_off, 0x98 + 64, "CheckSum offset");
		is_int(pe.secdir_off, 0x98 + (plus ? 108 : 92) + 4 + 32, "security directory offset");
		is_int(pe.sections_end, 0x400, "end of section data");
		ok(pe.has_secdir && pe.table_size == 0, "no table");
	}

	build(false, 0);
	img[0] = 'X';
	is_int(parse(0x400, &pe), SW_ERR_NOT_PE, "no MZ: not a PE");
	build(false, 0);
	put32(0x80, 0x12345678);
	is_int(parse(0x400, &pe), SW_ERR_NOT_PE, "MZ without PE signature: not a PE");
	build(false, 0);
	put32(0x3c, 0x7ffffff0);
	is_int(parse(0x400, &pe), SW_ERR_BAD_PE, "huge e_lfanew: malformed");
	build(false, 0);
	put32(0x3c, 0x10);
	is_int(parse(0x400, &pe), SW_ERR_BAD_PE, "e_lfanew inside the DOS header: malformed");
	build(false, 0);
	put16(0x86, 200);
	is_int(parse(0x2000, &pe), SW_ERR_BAD_PE, "too many sections: malformed");
	build(false, 0);
	put16(0x98, 0x999);
	is_int(parse(0x400, &pe), SW_ERR_BAD_PE, "unknown optional header magic: malformed");
	build(false, 0);
	put16(0x94, 8);
	is_int(parse(0x400, &pe), SW_ERR_BAD_PE, "optional header too small for its fields: malformed");
	build(false, 0);
	is_int(sw_pe_parse_headers(img, 0x90, 0x400, &pe, &need), SW_ERR_TRUNCATED,
	       "short head asks for more");
	ok(need > 0x90 && need <= 0x400, "need is bounded by the file");
	is_int(sw_pe_parse_headers(img, 0x90, 0x90, &pe, &need), SW_ERR_BAD_PE,
	       "file ends inside the headers");
	is_int(sw_pe_parse_headers(img, 2, 2, &pe, &need), SW_ERR_NOT_PE, "two-byte MZ file: not a PE");

	/* Table walks. */
	size_t n = build(false, 16);
	put32(0x400, 16);
	put16(0x404, 0x200);
	put16(0x406, 2);
	parse(n, &pe);
	ok(sw_pe_table_readable(&pe), "table readable");
	is_int(sw_pe_parse_table(&pe, img + 0x400, 16), SW_OK, "one entry");
	is_int(pe.nentries, 1, "one entry counted");
	ok(pe.entries[0].usable && pe.anomalies == 0, "usable, no anomaly");

	n = build(false, 16);
	put32(0x400, 12);
	put16(0x404, 0x200);
	put16(0x406, 2);
	img[0x40c] = 0xcc; /* padding byte after dwLength */
	parse(n, &pe);
	sw_pe_table_readable(&pe);
	sw_pe_parse_table(&pe, img + 0x400, 16);
	ok(pe.anomalies & SW_ANOM_NONZERO_PADDING, "non-zero alignment padding reported");

	n = build(false, 32);
	put32(0x400, 16);
	put16(0x404, 0x200);
	put16(0x406, 2);
	put32(0x410, 0xdeadbeef);
	parse(n, &pe);
	sw_pe_table_readable(&pe);
	sw_pe_parse_table(&pe, img + 0x400, 32);
	ok(pe.anomalies & SW_ANOM_UNACCOUNTED_BYTES, "junk after the entries reported");

	n = build(false, 16);
	put32(0x400, 4096);
	parse(n, &pe);
	sw_pe_table_readable(&pe);
	is_int(sw_pe_parse_table(&pe, img + 0x400, 16), SW_ERR_BAD_TABLE,
	       "dwLength past the table: no entry");
	ok(pe.anomalies & SW_ANOM_LENGTH_MISMATCH, "length mismatch reported");

	n = build(false, 16);
	put32(0x400, 16);
	put16(0x404, 0x100);
	put16(0x406, 1);
	parse(n, &pe);
	sw_pe_table_readable(&pe);
	sw_pe_parse_table(&pe, img + 0x400, 16);
	ok(!pe.entries[0].usable && (pe.anomalies & SW_ANOM_BAD_ENTRY_REVISION) &&
	           (pe.anomalies & SW_ANOM_BAD_ENTRY_TYPE),
	   "wrong revision and type: entry not usable, reported");

	n = build(false, 16);
	parse(n + 64, &pe); /* 64 bytes after the table */
	ok(sw_pe_table_readable(&pe) && (pe.anomalies & SW_ANOM_DATA_AFTER_TABLE),
	   "data after the table reported");

	build(false, 16);
	put32(0x98 + 92 + 4 + 32, 0x300); /* table inside the section */
	parse(0x400 + 16, &pe);
	sw_pe_table_readable(&pe);
	ok((pe.anomalies & SW_ANOM_OVERLAPS_SECTIONS) && (pe.anomalies & SW_ANOM_TABLE_NOT_AT_END),
	   "table overlapping section data reported");

	build(false, 16);
	put32(0x98 + 92 + 4 + 32, 0xfffffff0);
	parse(0x410, &pe);
	ok(!sw_pe_table_readable(&pe) && (pe.anomalies & SW_ANOM_TABLE_OUTSIDE_FILE),
	   "table outside the file refused and reported");

	n = build(false, 16);
	uint64_t a, b;
	parse(n, &pe);
	sw_pe_digest_skip_table(&pe, &a, &b);
	ok(a == 0x400 && b == 0x410, "digest skips the table");
	return done_testing();
}
