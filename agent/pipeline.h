/* signwatch: what happens to one file, shared by `scan` and `run`.
 *
 * sw_scan_file runs anywhere (a pool thread): open without following
 * links, inspect, fill the record's file columns. It shares nothing
 * mutable. sw_pipeline_apply runs on the one thread that owns the store:
 * ReportIds, records, rule matches and the file-state cache in one
 * transaction. */
#ifndef SW_PIPELINE_H
#define SW_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspect.h"
#include "platform.h"
#include "rules.h"
#include "store.h"

typedef struct sw_scan_opts {
	const sw_trust *trust;
	bool catalogs;              /* look unsigned PEs up in the OS catalogs (sw_plat_has_catalogs) */
	sw_cache *cache;            /* the calling thread's own memo, or NULL */
	sw_plat_catdb *catdb;       /* the calling thread's catalog database handle, or NULL */
	const struct sw_yara *yara; /* compiled YARA rules run on every PE, or NULL */
	uint64_t max_file_bytes;    /* larger files are skipped */
	char device_id[41];
	const char *device_name;
} sw_scan_opts;

typedef enum sw_scan_status {
	SW_SCAN_RECORDS,   /* recs/n hold the file's records */
	SW_SCAN_NOT_PE,    /* not an executable: nothing to record */
	SW_SCAN_MALFORMED, /* MZ, but the PE headers are malformed: why says how */
	SW_SCAN_SKIPPED,   /* over the size cap, or not a regular file */
	SW_SCAN_FAILED,    /* could not be read or parsed: why says it */
} sw_scan_status;

typedef struct sw_scan_result {
	char *path;
	sw_scan_status status;
	sw_err err;
	char why[256];
	sw_file_id id;
	bool have_id;
	sw_record *recs;
	size_t n;
	/* filled by sw_pipeline_apply: for each record, a bitmap row of which
	 * rules matched (rule i matched record k: matched[k * nrules + i]) */
	unsigned char *matched;
	size_t nrules;
	bool cached; /* unchanged since the last scan: not applied again */
} sw_scan_result;

/* The trust set IsTrusted uses: the PEM file ca_file when given (an
 * error there is SW_ERR_CONFIG with why), else the OS root store where
 * there is one (Windows), else none (*out NULL). An OS store that cannot
 * be read is not fatal: SW_OK, *out NULL and why says what to warn about;
 * why is "" otherwise. */
sw_err sw_trust_setup(const char *ca_file, sw_trust **out, char *why, size_t n);

/* sw_inspect_opts.catalog_find over the OS catalog database: for each
 * digest (SHA-256 first), the catalogs the OS says list it, each opened
 * like a scanned file and offered once. ud is the calling thread's
 * sw_plat_catdb (sw_inspect_opts.catalog_ud), or NULL for a context
 * acquired per lookup. */
void sw_catalog_find_system(void *ud, const sw_digest *digests, size_t n, sw_catalog_visit_fn visit,
                            void *vctx);

/* Thread-safe: inspect path into res (res->path is a copy). */
void sw_scan_file(const char *path, const sw_scan_opts *o, int64_t now_ms, sw_scan_result *res);
void sw_scan_result_free(sw_scan_result *res);

typedef struct sw_pipeline sw_pipeline;

sw_pipeline *sw_pipeline_new(sw_store *st, const sw_rules *rules);
void sw_pipeline_free(sw_pipeline *p);

/* Has this file (by identity, size, mtime, ctime) been scanned already? */
bool sw_pipeline_cached(sw_pipeline *p, const sw_file_id *id);

/* Store res: ReportIds, records, matches, file state, in one transaction.
 * On error nothing of res is stored and why says what failed. */
sw_err sw_pipeline_apply(sw_pipeline *p, sw_scan_result *res, int64_t now_ms, char *why, size_t n);

/* Store several results in one transaction (one fsync for a burst). With
 * skip_cached, a result whose file identity the cache already holds
 * (including from earlier results of this batch) becomes SW_SCAN_SKIPPED
 * and is not stored again. All or nothing: on error none is stored. */
sw_err sw_pipeline_apply_batch(sw_pipeline *p, sw_scan_result **res, size_t nres, int64_t now_ms,
                               bool skip_cached, char *why, size_t n);

/* forwarding (issue 5): called inside sw_pipeline_apply's transaction,
 * after the records, matches and file state are stored and before the
 * commit, to write the scan's outbox items (agent/forward.c). An error
 * rolls the whole scan back. NULL (the default) for none. */
typedef sw_err (*sw_pipeline_hook_fn)(void *ud, sw_store *st, const sw_scan_result *res, int64_t now_ms,
                                      char *why, size_t n);
void sw_pipeline_set_hook(sw_pipeline *p, sw_pipeline_hook_fn fn, void *ud);

/* The summary of rule i at now_ms (its window and its summarize, computed
 * by the store). A rule without summarize gives SW_ERR_UNSUPPORTED. */
sw_err sw_rule_summary(sw_store *st, const sw_rules *rules, size_t i, int64_t now_ms, sw_summary_spec *spec,
                       sw_summary_row **rows, size_t *n);

/* One summary row as a JSON object: RuleId, RuleName, the by columns,
 * then the aggregations by name (FirstSeen, LastSeen, Report, Count for
 * the Pulseway rule). malloc'd. */
char *sw_summary_row_json(const sw_rules *rules, size_t i, const sw_summary_spec *spec,
                          const sw_summary_row *row);

/* Delete matches older than every rule's window start at now_ms. */
sw_err sw_pipeline_prune(sw_store *st, const sw_rules *rules, int64_t now_ms);

#endif
