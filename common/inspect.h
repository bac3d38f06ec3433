/* signwatch: one file in, one record per signature out. The signer comes
 * from the headers and the certificate table alone; the digests stream the
 * file once, feeding the Authenticode digests and the file's SHA-1 and
 * SHA-256 together, so memory does not grow with the file. */
#ifndef SW_INSPECT_H
#define SW_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "certcache.h"
#include "record.h"
#include "source.h"
#include "trust.h"

#define SW_STREAM_CHUNK (256u << 10)
#define SW_CAT_MAX_TRIED 8 /* candidate catalogs checked per file */

/* Catalog lookup, for a PE without an embedded signature. The caller (who
 * may use the OS: common/ does not) finds catalogs that may list one of
 * the file's Authenticode digests and offers each to visit as a source,
 * with its identity (may be NULL: then it is read and parsed every time;
 * else the parse is memoized in the options' cache, see
 * sw_catalog_check_memo); visit returns true when no more are wanted. */
typedef bool (*sw_catalog_visit_fn)(void *vctx, const sw_src *catalog, const sw_cat_id *id);
typedef void (*sw_catalog_find_fn)(void *ud, const sw_digest *digests, size_t n, sw_catalog_visit_fn visit,
                                   void *vctx);

typedef struct sw_inspect_opts {
	bool signer_only;      /* headers and table only: no digests, no trust */
	const sw_trust *trust; /* NULL (no ca_file, and no OS root store read):
	                        * IsTrusted is false, "no trust store (...)" */
	int64_t now_ms;        /* verification time when there is no countersignature */
	sw_cache *cache;       /* this thread's certificate memo; may be NULL */
	/* NULL: no lookup. Else, for a PE with no embedded signature, the
	 * file's Authenticode SHA-1 and SHA-256 are computed in the same pass
	 * and the catalogs offered are checked (at most SW_CAT_MAX_TRIED): one
	 * that lists the file makes its record IsSigned, SignatureType
	 * "Catalog", with the catalog signer's columns. */
	sw_catalog_find_fn catalog_find;
	void *catalog_ud;
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
