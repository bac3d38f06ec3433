/* signwatch: the KQL subset of Sentinel hunting queries over
 * DeviceFileCertificateInfo, compiled once and evaluated per record.
 *
 * Accepted:
 *   let NAME = now([-]TIMESPAN) | now() | ago(TIMESPAN) | datetime(...);
 *   // comments
 *   DeviceFileCertificateInfo
 *   | where EXPR            (any number, all must hold)
 *   | summarize [NAME=]min(Col)|max(Col)|make_set(Col[, N])|count(), ... [by Col, ...]   (last)
 * EXPR: and, or, not(EXPR), (EXPR), isempty(Col), isnotempty(Col), a bare
 *   bool column, and Col OP VALUE with OP one of has, has_cs, contains,
 *   contains_cs, startswith(_cs), endswith(_cs) (each also with a leading
 *   '!'), has_any (...), has_all (...), ==, !=, =~, !~, in (...), !in (...),
 *   in~ (...), !in~ (...), <, <=, >, >= (long and time columns),
 *   between (A .. B) and !between (inclusive both ends).
 * Timespans: d, h, m, s, ms (decimals allowed). Strings: '...' or "..."
 * with backslash escapes, @'...' / @"..." verbatim (a doubled quote is the
 * quote), optional h/H prefix. Column, table, function and operator names
 * are case-sensitive, as in KQL. Anything else is an error with a position.
 *
 * Null values follow KQL: a comparison with a null time, long or bool is
 * false (so `IsTrusted != true` is false when IsTrusted is null); strings
 * are never null, a missing one is "". On an array column (e.g.
 * CrlDistributionPointUrls) a string predicate holds when some element
 * satisfies it; its negated form when none does. */
#ifndef SW_KQL_H
#define SW_KQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "sw_error.h"

/* Caps that keep hostile rule files cheap. */
#define SW_KQL_MAX_QUERY (64u * 1024u) /* bytes of query text */
#define SW_KQL_MAX_DEPTH 32            /* nesting of (), not() */
#define SW_KQL_MAX_LIST 1024           /* items in has_any/has_all/in lists */
#define SW_KQL_MAX_NODES 4096          /* predicates and connectives */
#define SW_KQL_MAX_STRING 4096         /* bytes of one string literal */
#define SW_KQL_MAX_LETS 64
#define SW_KQL_MAX_AGGS 32
#define SW_KQL_MAX_BY 16
#define SW_KQL_SET_CAP_DEFAULT 1048576 /* make_set's default and maximum size */

typedef struct sw_kql sw_kql;

/* Compile query (len bytes; need not be NUL-terminated). Positions in
 * messages are reported as line_base + (line - 1) and col_base + (col - 1)
 * for 1-based line/col within the query; pass 1, 1 for positions relative
 * to the query, or the position of the first character of a YAML literal
 * block so that messages point into the file (col_base applies to every
 * line, as the block's indentation does). On failure returns SW_ERR_RULE
 * (SW_ERR_LIMIT for a cap, SW_ERR_NOMEM) and writes
 * "LINE:COL: what is wrong (at 'token')" into err. */
sw_err sw_kql_compile(const char *query, size_t len, int line_base, int col_base, sw_kql **out, char *err,
                      size_t errlen);
void sw_kql_free(sw_kql *q);

/* Do all where clauses hold for r? now() and ago() are taken as now_ms. */
bool sw_kql_match(const sw_kql *q, const sw_record *r, int64_t now_ms);

/* Per-thread evaluation scratch that keeps each string column's folded copy
 * for the current record, so a pack of rules folds a column once per record
 * and evaluation allocates nothing in the steady state. */
typedef struct sw_kql_scratch sw_kql_scratch;
sw_kql_scratch *sw_kql_scratch_new(void);
void sw_kql_scratch_free(sw_kql_scratch *s);
/* Forget cached folds; call before evaluating a different record (also done
 * automatically when r's address changes, but a refilled struct keeps its
 * address). */
void sw_kql_scratch_reset(sw_kql_scratch *s);
bool sw_kql_match_scratch(const sw_kql *q, const sw_record *r, int64_t now_ms, sw_kql_scratch *s);

/* The Timestamp window the where clauses imply (between and comparisons on
 * Timestamp joined by and at the top level), resolved at now_ms: returns 1
 * and sets [*from_ms, *to_ms] (inclusive; INT64_MIN/INT64_MAX for an open
 * side), or 0 when the clauses bound no window. */
int sw_kql_window(const sw_kql *q, int64_t now_ms, int64_t *from_ms, int64_t *to_ms);

/* The final summarize, if any. */
typedef enum sw_agg_fn { SW_AGG_MIN, SW_AGG_MAX, SW_AGG_MAKE_SET, SW_AGG_COUNT } sw_agg_fn;
typedef struct sw_kql_agg {
	const char *name; /* output column ("FirstSeen"; KQL's default name when none given) */
	sw_agg_fn fn;
	int col;    /* sw_col; -1 for count() */
	size_t cap; /* make_set's size cap; 0 for the others */
} sw_kql_agg;

bool sw_kql_has_summarize(const sw_kql *q);
size_t sw_kql_agg_count(const sw_kql *q);
/* Aggregation i (0 <= i < count) into *out; false when out of range. The
 * strings are owned by q. */
bool sw_kql_agg_get(const sw_kql *q, size_t i, sw_kql_agg *out);
size_t sw_kql_by_count(const sw_kql *q);
int sw_kql_by_col(const sw_kql *q, size_t i); /* sw_col, -1 when out of range */
const char *sw_agg_fn_name(sw_agg_fn fn);     /* "min", "max", "make_set", "count" */

/* A short readable form of the where clauses, e.g.
 * "Timestamp between (now(-5d) .. now()) and Signer has 'MMSoft Design'";
 * malloc'd, NULL only when out of memory. */
char *sw_kql_describe(const sw_kql *q);

#endif
