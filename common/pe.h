/* signwatch: PE32/PE32+ headers and the attribute certificate table.
 * Pure functions over bytes already read; the caller does the I/O. */
#ifndef SW_PE_H
#define SW_PE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sw_error.h"

#define SW_PE_HEAD_MAX (1u << 20)   /* headers (incl. e_lfanew gap) beyond this: malformed */
#define SW_PE_MAX_SECTIONS 96       /* the Windows loader's limit */
#define SW_PE_MAX_ENTRIES 16        /* WIN_CERTIFICATE entries considered */
#define SW_PE_TABLE_MAX (16u << 20) /* certificate tables larger than this are refused */

#define SW_WIN_CERT_REVISION_2_0 0x0200
#define SW_WIN_CERT_TYPE_PKCS_SIGNED_DATA 0x0002

typedef struct sw_pe_entry {
	uint64_t off;    /* file offset of the WIN_CERTIFICATE header */
	uint32_t length; /* dwLength, header included */
	uint16_t revision;
	uint16_t type;
	bool usable; /* revision 2.0, PKCS#7 type, inside the table */
} sw_pe_entry;

typedef struct sw_pe {
	uint64_t file_size;
	bool pe32plus;
	uint16_t machine;
	uint16_t nsections;
	uint64_t headers_len;     /* bytes of header the parse needed */
	uint64_t size_of_headers; /* SizeOfHeaders */
	uint64_t checksum_off;    /* file offset of OptionalHeader.CheckSum */
	bool has_secdir;          /* NumberOfRvaAndSizes > 4 */
	uint64_t secdir_off;      /* file offset of the security directory entry */
	uint64_t table_off;       /* from the directory (a file offset) */
	uint64_t table_size;
	uint64_t sections_end;   /* end of the last section's raw data */
	uint64_t sections_start; /* start of the first section's raw data */
	uint32_t anomalies;      /* SW_ANOM_* from the layout */
	size_t nentries;
	sw_pe_entry entries[SW_PE_MAX_ENTRIES];
} sw_pe;

/* Parse the headers from the first headlen bytes of a file of file_size
 * bytes. If more header bytes are needed, returns SW_ERR_TRUNCATED with
 * *need set to the length required (never more than SW_PE_HEAD_MAX or the
 * file size); read that much and call again. SW_ERR_NOT_PE when there is no
 * MZ/PE signature, SW_ERR_BAD_PE when the headers are malformed. */
sw_err sw_pe_parse_headers(const uint8_t *head, size_t headlen, uint64_t file_size, sw_pe *pe, size_t *need);

/* True when the directory names a table that lies inside the file and
 * under SW_PE_TABLE_MAX; sets the matching anomaly otherwise. */
bool sw_pe_table_readable(sw_pe *pe);

/* Walk the table's bytes (table_size of them, read from table_off): fill
 * entries and the table anomalies (padding, unaccounted bytes, lengths,
 * revisions, types). Returns SW_ERR_BAD_TABLE if no entry could be read. */
sw_err sw_pe_parse_table(sw_pe *pe, const uint8_t *table, size_t len);

/* The DER blob of entry i inside table (already bounds-checked by the walk). */
void sw_pe_entry_blob(const sw_pe *pe, size_t i, const uint8_t *table, const uint8_t **der, size_t *len);

/* Check what follows a signature's DER inside its entry: non-zero bytes or
 * more than 7 bytes of slack are anomalies. der_len is the DER's own length. */
void sw_pe_check_entry_slack(sw_pe *pe, size_t i, const uint8_t *table, size_t der_len);

/* The Authenticode digest covers the file minus the CheckSum field, the
 * security directory entry and the table (bytes after the table count, so
 * appending to a signed file breaks its digest). The table range to skip,
 * or [0,0) when there is no readable table. */
void sw_pe_digest_skip_table(const sw_pe *pe, uint64_t *from, uint64_t *to);

#endif
