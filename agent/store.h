/* signwatch: the store, the agent's local truth (records, rule hits, the
 * ReportId counter, the file-state cache) in one SQLite database.
 *
 * One store is used from one thread (the loop thread). Every function
 * returns SW_OK or an error (SW_ERR_STORE for SQLite failures,
 * SW_ERR_NOMEM, SW_ERR_IO, SW_ERR_USAGE for a bad argument,
 * SW_ERR_UNSUPPORTED for a summary this store cannot compute); the reason
 * is then in sw_store_errmsg(). */
#ifndef SW_STORE_H
#define SW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kql.h" /* sw_agg_fn, SW_KQL_MAX_AGGS/BY, SW_KQL_SET_CAP_DEFAULT */
#include "record.h"
#include "sw_error.h"

#define SW_STORE_SCHEMA_VERSION 3 /* PRAGMA user_version this build writes */

typedef struct sw_store sw_store;

/* Open or create the database at path (created 0600 on POSIX). An older
 * schema is migrated in one transaction; a newer one, or a file that is not
 * a signwatch database, is refused. On failure *out is NULL and why holds
 * "PATH: what is wrong". */
sw_err sw_store_open(const char *path, sw_store **out, char *why, size_t n);
void sw_store_close(sw_store *st);
/* The reason for the last failure on st ("" if none). */
const char *sw_store_errmsg(const sw_store *st);

/* One write transaction (BEGIN IMMEDIATE): a completed scan's ReportIds,
 * records and matches are committed together or not at all. Writes outside
 * a transaction commit one statement at a time. */
sw_err sw_store_begin(sw_store *st);
sw_err sw_store_commit(sw_store *st);
sw_err sw_store_rollback(sw_store *st);

/* The next ReportId of device_id (1, 2, ...), persisted. Ids are unique
 * among everything committed: a rolled-back transaction returns its ids to
 * the counter, which is safe because nothing carrying them was committed
 * (records are forwarded only after commit). Commits are fsynced
 * (synchronous=FULL) so a power loss cannot roll back a committed id. */
sw_err sw_store_next_report_id(sw_store *st, const char *device_id, int64_t *out);

/* Store r (r->report_id >= 0, unique per DeviceId); *rowid (may be NULL)
 * identifies it for sw_store_put_match. */
sw_err sw_store_put_record(sw_store *st, const sw_record *r, int64_t *rowid);
/* Record rowid matched rule rule_id (idempotent). */
sw_err sw_store_put_match(sw_store *st, const char *rule_id, int64_t rowid);

/* A rule's summarize, evaluated over its stored matches with Timestamp in
 * [from_ms, to_ms] (inclusive both ends, as KQL's between). Fields mirror
 * sw_kql_agg / sw_kql_by_col so a compiled rule's summarize fits. */
typedef struct sw_summary_spec {
	const char *rule_id;
	int64_t from_ms, to_ms;
	size_t n_aggs;
	struct {
		const char *name; /* output column; the caller's, not used in SQL */
		sw_agg_fn fn;
		int col;        /* sw_col; unused for SW_AGG_COUNT */
		size_t set_cap; /* make_set's cap; 0 = SW_KQL_SET_CAP_DEFAULT */
	} aggs[SW_KQL_MAX_AGGS];
	size_t n_by;
	int by[SW_KQL_MAX_BY]; /* sw_col */
} sw_summary_spec;

/* One output value. STRING: s. BOOL (0/1), LONG, TIME (ms): i. ARRAY
 * (make_set): s is a JSON array (longs as numbers, times as ISO 8601
 * strings, bools as true/false, strings as strings) of i distinct values in
 * ascending order. NULL: no value (min/max of only nulls, a null by-key). */
typedef struct sw_summary_cell {
	sw_vtype type;
	int64_t i;
	char *s;
} sw_summary_cell;

typedef struct sw_summary_row {
	sw_summary_cell by[SW_KQL_MAX_BY];    /* spec->n_by used */
	sw_summary_cell agg[SW_KQL_MAX_AGGS]; /* spec->n_aggs used */
} sw_summary_row;

/* KQL semantics: one row per distinct by-tuple among the window's matches
 * (none when nothing matched; one row when n_by is 0 and something
 * matched), rows in ascending by-key order. Strings are never null (a
 * missing one is ""); null longs, times and bools are ignored by min, max
 * and make_set; make_set over an array column collects its elements. By,
 * min and max over an array column are SW_ERR_UNSUPPORTED, as in KQL.
 * Free with sw_summary_free. */
sw_err sw_store_summary(sw_store *st, const sw_summary_spec *spec, sw_summary_row **rows, size_t *n);
void sw_summary_free(sw_summary_row *rows, size_t n);

/* Delete matches with Timestamp < older_than_ms and their records (all of a
 * record's matches share its Timestamp). Pass the earliest window start of
 * the loaded rules. Records that never matched are kept. */
sw_err sw_store_prune(sw_store *st, int64_t older_than_ms);

/* File-state cache: a file whose identity and metadata are unchanged since
 * the last scan need not be parsed again. */
typedef struct sw_file_state {
	uint64_t device;  /* st_dev / volume serial */
	uint64_t file_id; /* st_ino / 64-bit file index */
	int64_t size;
	int64_t mtime_ns, ctime_ns;
	char result_hash[65]; /* hex digest of the last scan's result */
} sw_file_state;

/* Look up fs->device/file_id; *found is true only when size, mtime and
 * ctime equal fs's too, and then fs->result_hash is filled in. */
sw_err sw_store_file_state_get(sw_store *st, sw_file_state *fs, bool *found);
sw_err sw_store_file_state_put(sw_store *st, const sw_file_state *fs);

/* ---- the outbox (schema 3) -------------------------------------------------
 * What is to be sent, per output (sw_config_output.id), written in the same
 * transaction as the record or summary it comes from, and deleted only once
 * the collector accepted it (sw_store_outbox_ack). Items are sent in seq
 * order; after a crash everything not acked is sent again. Each output has
 * persisted counters: items, bytes (payload + key + a per-row estimate of
 * SQLite's overhead, what the cap is measured in) and records dropped past
 * the cap. */

typedef enum sw_outbox_kind { SW_OUTBOX_RECORD = 0, SW_OUTBOX_SUMMARY = 1 } sw_outbox_kind;

typedef struct sw_outbox_item {
	int64_t seq;
	sw_outbox_kind kind;
	char *idem_key; /* DeviceId:ReportId, or RuleId:DeviceId:version */
	char *payload;  /* one JSON object */
	int64_t bytes;
	int64_t created_ms;
} sw_outbox_item;

typedef struct sw_outbox_stats {
	int64_t items, bytes;
	int64_t dropped; /* records dropped past the cap, ever (persisted) */
} sw_outbox_stats;

/* Append one item to output_id's outbox. Inside the caller's transaction
 * when there is one (the pipeline's), else on its own. */
sw_err sw_store_outbox_put(sw_store *st, const char *output_id, sw_outbox_kind kind, const char *idem_key,
                           const char *payload, int64_t created_ms);
/* The oldest items of output_id in seq order: at most max_items, and at most
 * max_bytes of payload (but always at least one item when there is one, so
 * an oversized item is seen, not stuck). Free with sw_outbox_items_free. */
sw_err sw_store_outbox_peek(sw_store *st, const char *output_id, size_t max_items, size_t max_bytes,
                            sw_outbox_item **items, size_t *n);
void sw_outbox_items_free(sw_outbox_item *items, size_t n);
/* The collector accepted everything of output_id up to upto_seq: delete it. */
sw_err sw_store_outbox_ack(sw_store *st, const char *output_id, int64_t upto_seq);
sw_err sw_store_outbox_stats_get(sw_store *st, const char *output_id, sw_outbox_stats *out);
/* Keep output_id's outbox under max_bytes by deleting its oldest RECORDS
 * (summaries are never dropped); *dropped (may be NULL) is how many were
 * dropped now; the persisted total grows by as much. */
sw_err sw_store_outbox_enforce_cap(sw_store *st, const char *output_id, int64_t max_bytes, int64_t *dropped);
/* Delete output_id's unsent SUMMARY items whose idem_key starts with
 * key_prefix ("RuleId:DeviceId:"): a newer version of the same summary row
 * supersedes them (a summary row is a complete state). *removed may be
 * NULL. */
sw_err sw_store_outbox_supersede(sw_store *st, const char *output_id, const char *key_prefix,
                                 int64_t *removed);
/* Delete the outboxes of outputs not in ids[0..n) (removed from the
 * configuration); *removed (may be NULL) counts the items deleted. */
sw_err sw_store_outbox_retain(sw_store *st, const char *const *ids, size_t n, int64_t *removed);

/* The last summary row sent for (rule_id, device_id) and its version (0 =
 * none yet). sw_store_summary_state_put stores a new one. */
sw_err sw_store_summary_state_get(sw_store *st, const char *rule_id, const char *device_id, int64_t *version,
                                  char **json);
sw_err sw_store_summary_state_put(sw_store *st, const char *rule_id, const char *device_id, int64_t version,
                                  const char *json);

#endif
