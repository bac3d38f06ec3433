/* signwatch: one file in, one record per signature out. The signer comes
 * from the headers and the certificate table alone; the digests stream the
 * file once, feeding the Authenticode digests and the file's SHA-1 and
 * SHA-256 together, so memory does not grow with the file. */
#ifndef SW_INSPECT_H
#define SW_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certcache.h"
#include "record.h"
#include "source.h"
#include "trust.h"

#define SW_STREAM_CHUNK (256u << 10)

typedef struct sw_inspect_opts {
	bool signer_only;      /* headers and table only: no digests, no trust */
	const sw_trust *trust; /* NULL: IsTrusted is false ("no CA file") */
	int64_t now_ms;        /* verification time when there is no countersignature */
	sw_cache *cache;       /* this thread's certificate memo; may be NULL */
} sw_inspect_opts;

/* Inspect the file behind src. On success *recs holds *n >= 1 records
 * (an unsigned PE gives one with IsSigned false) with the file-level and
 * signature fields set; the caller sets Timestamp, Device*, FolderPath and
 * FileName. On failure (not a PE, malformed headers, I/O) returns the
 * error with why filled and no records. */
sw_err sw_inspect(const sw_src *src, const sw_inspect_opts *o, sw_record **recs, size_t *n, char *why,
                  size_t whylen);

void sw_records_free(sw_record *recs, size_t n);

#endif
