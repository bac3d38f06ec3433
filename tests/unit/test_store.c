/* Unit tests for agent/store.c over real SQLite files in a temporary
 * folder (argv[1], if given, is where that folder is made). */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/stat.h>
#endif

#include <sqlite3.h>

#include "platform.h"
#include "tap.h"
#include "tap_os.h"

static char dir[512];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s" TAP_SEP "%s", dir, name); }

/* Owner-only? POSIX: the mode bits are 0600. Windows: the platform's
 * reading of the DACL (sw_plat_file_mode: 0600 when only SYSTEM,
 * Administrators and the owner may read, 0644 when anyone else may). */
static bool owner_only(const char *path, unsigned *mode)
{
	*mode = 0;
#ifdef _WIN32
	if (sw_plat_file_mode(path, mode) != 0)
		return false;
#else
	struct stat sb;
	if (stat(path, &sb) != 0)
		return false;
	*mode = (unsigned)(sb.st_mode & 0777);
#endif
	return *mode == 0600;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_s(void) { return tap_now_s(); }

/* One SQL value from a side connection, as text ("" when NULL). */
static void side_query(const char *db_path, const char *sql, char *out, size_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	out[0] = 0;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
	    sqlite3_column_text(s, 0))
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static long long side_int(const char *db_path, const char *sql)
{
	char buf[64];
	side_query(db_path, sql, buf, sizeof(buf));
	return atoll(buf);
}

static void make_db(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	tap_unlink(path);
	if (sqlite3_open(path, &db) == SQLITE_OK)
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
}

/* ---- a small synthetic data set, kept in C for the reference ---- */

#define N_DEV 4
static const char *DEV_ID[N_DEV] = {
	"00000000000000000000000000000000000000aa",
	"00000000000000000000000000000000000000bb",
	"00000000000000000000000000000000000000cc",
	"00000000000000000000000000000000000000dd",
};
static const char *DEV_NAME[N_DEV] = { "a.example.org", "b.example.org", NULL, "d.example.org" };
static const char *SIGNERS[] = { "MMSoft Design Ltd.", "Zeta \"quoted\" Corp", "Acme", "" };

typedef struct ref_rec {
	int dev;
	int64_t ts, report_id, file_size;
	int signer; /* index into SIGNERS, 3 = none (NULL) */
	sw_tri trusted;
	int n_urls; /* urls "http://crl/<k>" k < n_urls */
	bool hit_a, hit_b;
} ref_rec;

static void fill_record(sw_record *r, const ref_rec *x)
{
	sw_record_init(r);
	r->timestamp = x->ts;
	snprintf(r->device_id, sizeof(r->device_id), "%s", DEV_ID[x->dev]);
	r->device_name = DEV_NAME[x->dev] ? strdup(DEV_NAME[x->dev]) : NULL;
	r->folder_path = strdup("/opt/tool");
	r->file_name = strdup("agent.exe");
	snprintf(r->sha256, sizeof(r->sha256), "%064llx", (unsigned long long)x->report_id);
	r->file_size = (uint64_t)x->file_size;
	r->is_signed = x->signer != 3;
	r->signer = x->signer != 3 ? strdup(SIGNERS[x->signer]) : NULL;
	r->is_trusted = x->trusted;
	r->cert_created = x->ts - 86400000;
	r->report_id = x->report_id;
	r->n_crl_urls = (size_t)x->n_urls;
	r->crl_urls = x->n_urls ? calloc((size_t)x->n_urls, sizeof(char *)) : NULL;
	for (int k = 0; k < x->n_urls; k++) {
		char u[32];
		snprintf(u, sizeof(u), "http://crl/%d", k);
		r->crl_urls[k] = strdup(u);
	}
	sw_record_set_anomalies(r, x->report_id % 5 == 0 ? SW_ANOM_NONZERO_PADDING : 0);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static const sw_summary_row *find_row(const sw_summary_row *rows, size_t n, const char *id, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].by[0].s && strcmp(rows[i].by[0].s, id) == 0 && rows[i].by[1].s &&
		    strcmp(rows[i].by[1].s, name) == 0)
			return &rows[i];
	return NULL;
}

static void pulseway_spec(sw_summary_spec *sp, const char *rule, int64_t from, int64_t to)
{
	memset(sp, 0, sizeof(*sp));
	sp->rule_id = rule;
	sp->from_ms = from;
	sp->to_ms = to;
	sp->n_aggs = 4;
	sp->aggs[0].name = "FirstSeen", sp->aggs[0].fn = SW_AGG_MIN, sp->aggs[0].col = SW_COL_TIMESTAMP;
	sp->aggs[1].name = "LastSeen", sp->aggs[1].fn = SW_AGG_MAX, sp->aggs[1].col = SW_COL_TIMESTAMP;
	sp->aggs[2].name = "Report", sp->aggs[2].fn = SW_AGG_MAKE_SET, sp->aggs[2].col = SW_COL_REPORT_ID;
	sp->aggs[3].name = "Count", sp->aggs[3].fn = SW_AGG_COUNT, sp->aggs[3].col = -1;
	sp->n_by = 2;
	sp->by[0] = SW_COL_DEVICE_ID;
	sp->by[1] = SW_COL_DEVICE_NAME;
}

/* The Pulseway-shaped summary of rule A, computed here from recs. */
static void check_pulseway(sw_store *st, const ref_rec *recs, size_t n_recs, int64_t from, int64_t to,
                           const char *label)
{
	sw_summary_spec sp;
	pulseway_spec(&sp, "rule-a", from, to);
	sw_summary_row *rows = NULL;
	size_t n = 0;
	sw_err e = sw_store_summary(st, &sp, &rows, &n);
	is_int(e, SW_OK, "%s: summary runs (%s)", label, e ? sw_store_errmsg(st) : "ok");
	size_t want_rows = 0;
	int good = 1;
	int64_t *ids = malloc(n_recs * sizeof(*ids));
	for (int d = 0; d < N_DEV; d++) {
		size_t k = 0;
		int64_t mn = INT64_MAX, mx = INT64_MIN;
		for (size_t i = 0; i < n_recs; i++)
			if (recs[i].hit_a && recs[i].dev == d && recs[i].ts >= from && recs[i].ts <= to) {
				ids[k++] = recs[i].report_id;
				mn = recs[i].ts < mn ? recs[i].ts : mn;
				mx = recs[i].ts > mx ? recs[i].ts : mx;
			}
		if (!k)
			continue;
		want_rows++;
		qsort(ids, k, sizeof(*ids), cmp_i64);
		size_t cap = k * 24 + 8, len = 0;
		char *js = malloc(cap);
		len += (size_t)snprintf(js, cap, "[");
		for (size_t i = 0; i < k; i++)
			len += (size_t)snprintf(js + len, cap - len, "%s%lld", i ? "," : "",
			                        (long long)ids[i]);
		snprintf(js + len, cap - len, "]");
		const sw_summary_row *r = find_row(rows, n, DEV_ID[d], DEV_NAME[d] ? DEV_NAME[d] : "");
		if (!r || r->agg[0].type != SW_V_TIME || r->agg[0].i != mn || r->agg[1].i != mx ||
		    r->agg[2].type != SW_V_ARRAY || !r->agg[2].s || strcmp(r->agg[2].s, js) != 0 ||
		    r->agg[2].i != (int64_t)k || r->agg[3].type != SW_V_LONG || r->agg[3].i != (int64_t)k) {
			good = 0;
			printf("# device %d: want min %lld max %lld count %zu\n", d, (long long)mn,
			       (long long)mx, k);
			if (r)
				printf("#   got min %lld max %lld count %lld set %.60s\n",
				       (long long)r->agg[0].i, (long long)r->agg[1].i, (long long)r->agg[3].i,
				       r->agg[2].s);
		}
		free(js);
	}
	free(ids);
	is_int(n, want_rows, "%s: one row per device with hits in the window", label);
	ok(good, "%s: FirstSeen, LastSeen, Report, Count equal the reference", label);
	int sorted = 1;
	for (size_t i = 1; i < n; i++)
		if (strcmp(rows[i - 1].by[0].s, rows[i].by[0].s) > 0)
			sorted = 0;
	ok(sorted, "%s: rows in ascending DeviceId order", label);
	sw_summary_free(rows, n);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* by IsTrusted (a bool with nulls; needs the records join):
 * make_set(Signer, 2), min(FileSize), make_set(CrlDistributionPointUrls). */
static void check_generic(sw_store *st, const ref_rec *recs, size_t n_recs, int64_t from, int64_t to)
{
	sw_summary_spec sp;
	memset(&sp, 0, sizeof(sp));
	sp.rule_id = "rule-a";
	sp.from_ms = from;
	sp.to_ms = to;
	sp.n_aggs = 4;
	sp.aggs[0].fn = SW_AGG_MAKE_SET, sp.aggs[0].col = SW_COL_SIGNER, sp.aggs[0].set_cap = 2;
	sp.aggs[1].fn = SW_AGG_MIN, sp.aggs[1].col = SW_COL_FILE_SIZE;
	sp.aggs[2].fn = SW_AGG_MAKE_SET, sp.aggs[2].col = SW_COL_CRL_URLS;
	sp.aggs[3].fn = SW_AGG_COUNT;
	sp.n_by = 1;
	sp.by[0] = SW_COL_IS_TRUSTED;
	sw_summary_row *rows = NULL;
	size_t n = 0;
	sw_err e = sw_store_summary(st, &sp, &rows, &n);
	is_int(e, SW_OK, "generic: summary by IsTrusted runs (%s)", e ? sw_store_errmsg(st) : "ok");
	int good = 1;
	size_t want_rows = 0;
	sw_tri groups[3] = { SW_NULL, SW_NO, SW_YES }; /* SQL order: NULL, 0, 1 */
	for (int g = 0; g < 3; g++) {
		const char *signers[4];
		size_t ns = 0, cnt = 0;
		int64_t mn = INT64_MAX;
		int max_urls = 0;
		for (size_t i = 0; i < n_recs; i++) {
			const ref_rec *x = &recs[i];
			if (!x->hit_a || x->trusted != groups[g] || x->ts < from || x->ts > to)
				continue;
			cnt++;
			mn = x->file_size < mn ? x->file_size : mn;
			max_urls = x->n_urls > max_urls ? x->n_urls : max_urls;
			/* KQL strings are never null: a missing Signer is "". */
			const char *s = x->signer == 3 ? "" : SIGNERS[x->signer];
			bool seen = false;
			for (size_t j = 0; j < ns; j++)
				seen |= strcmp(signers[j], s) == 0;
			if (!seen)
				signers[ns++] = s;
		}
		if (!cnt)
			continue;
		qsort(signers, ns, sizeof(*signers), cmp_str);
		char set[256] = "[", urls[256] = "[";
		for (size_t j = 0; j < ns && j < 2; j++) {
			char q[80];
			/* one signer holds quotes: JSON-escape them */
			const char *s = signers[j];
			size_t o = 0;
			q[o++] = '"';
			for (; *s; s++) {
				if (*s == '"')
					q[o++] = '\\';
				q[o++] = *s;
			}
			q[o++] = '"';
			q[o] = 0;
			snprintf(set + strlen(set), sizeof(set) - strlen(set), "%s%s", j ? "," : "", q);
		}
		strcat(set, "]");
		for (int k = 0; k < max_urls; k++)
			snprintf(urls + strlen(urls), sizeof(urls) - strlen(urls), "%s\"http://crl/%d\"",
			         k ? "," : "", k);
		strcat(urls, "]");
		const sw_summary_row *r = want_rows < n ? &rows[want_rows] : NULL;
		want_rows++;
		bool key_ok = r && (groups[g] == SW_NULL ? r->by[0].type == SW_V_NULL
		                                         : r->by[0].type == SW_V_BOOL &&
		                                                   r->by[0].i == (groups[g] == SW_YES));
		if (!key_ok || strcmp(r->agg[0].s, set) != 0 || r->agg[1].type != SW_V_LONG ||
		    r->agg[1].i != mn || strcmp(r->agg[2].s, urls) != 0 || r->agg[3].i != (int64_t)cnt) {
			good = 0;
			printf("# group %d: want %s %lld %s %zu\n", g, set, (long long)mn, urls, cnt);
			if (r)
				printf("#   got %s %lld %s %lld\n", r->agg[0].s, (long long)r->agg[1].i,
				       r->agg[2].s, (long long)r->agg[3].i);
		}
	}
	is_int(n, want_rows, "generic: one row per IsTrusted value (null included)");
	ok(good, "generic: capped make_set(Signer), min(FileSize), flattened make_set(array) match");
	sw_summary_free(rows, n);

	/* by DeviceId alone (the pair is not the key): make_set(DeviceName) */
	memset(&sp, 0, sizeof(sp));
	sp.rule_id = "rule-a";
	sp.from_ms = from;
	sp.to_ms = to;
	sp.n_aggs = 2;
	sp.aggs[0].fn = SW_AGG_MAKE_SET, sp.aggs[0].col = SW_COL_DEVICE_NAME;
	sp.aggs[1].fn = SW_AGG_COUNT;
	sp.n_by = 1;
	sp.by[0] = SW_COL_DEVICE_ID;
	e = sw_store_summary(st, &sp, &rows, &n);
	good = e == SW_OK;
	want_rows = 0;
	for (int d = 0; d < N_DEV; d++) {
		size_t cnt = 0;
		for (size_t i = 0; i < n_recs; i++)
			cnt += recs[i].hit_a && recs[i].dev == d && recs[i].ts >= from && recs[i].ts <= to;
		if (!cnt)
			continue;
		char want[64];
		snprintf(want, sizeof(want), "[\"%s\"]", DEV_NAME[d] ? DEV_NAME[d] : "");
		const sw_summary_row *r = want_rows < n ? &rows[want_rows] : NULL;
		want_rows++;
		if (!r || !r->by[0].s || strcmp(r->by[0].s, DEV_ID[d]) || strcmp(r->agg[0].s, want) ||
		    r->agg[1].i != (int64_t)cnt)
			good = 0;
	}
	ok(good && n == want_rows, "by DeviceId alone: make_set(DeviceName) and count match");
	sw_summary_free(rows, n);

	/* no by: one row even for an unknown rule (KQL: count() of nothing is 0) */
	memset(&sp, 0, sizeof(sp));
	sp.rule_id = "no-such-rule";
	sp.from_ms = from;
	sp.to_ms = to;
	sp.n_aggs = 2;
	sp.aggs[0].fn = SW_AGG_COUNT;
	sp.aggs[1].fn = SW_AGG_MAX, sp.aggs[1].col = SW_COL_TIMESTAMP;
	e = sw_store_summary(st, &sp, &rows, &n);
	ok(e == SW_OK && n == 1 && rows[0].agg[0].i == 0 && rows[0].agg[1].type == SW_V_NULL,
	   "no by-keys, nothing matched: one row, count 0, max null");
	sw_summary_free(rows, n);

	/* by-keys, nothing matched: no rows */
	pulseway_spec(&sp, "no-such-rule", from, to);
	e = sw_store_summary(st, &sp, &rows, &n);
	ok(e == SW_OK && n == 0 && rows == NULL, "by-keys, nothing matched: no rows");

	sp.by[0] = SW_COL_ANOMALIES;
	e = sw_store_summary(st, &sp, &rows, &n);
	is_int(e, SW_ERR_UNSUPPORTED, "group by an array column is refused");
	sp.by[0] = 999;
	e = sw_store_summary(st, &sp, &rows, &n);
	is_int(e, SW_ERR_USAGE, "a column outside sw_col is refused");
}

/* Equal cells? */
static bool same_cell(const sw_summary_cell *a, const sw_summary_cell *b)
{
	if (a->type != b->type || a->i != b->i || !a->s != !b->s)
		return false;
	return !a->s || strcmp(a->s, b->s) == 0;
}

/* The rules' summarize shape runs directly off an index (store.c's
 * summary_direct); any other aggregation sends a spec through generic SQL.
 * Adding min(FileSize) to a direct spec must leave its columns unchanged:
 * both paths agree on count, min/max, sets (distinct, ascending, capped),
 * empty groups and row order. */
static void cross_check(sw_store *st, const sw_summary_spec *sp, const char *label)
{
	sw_summary_spec sg = *sp;
	sg.aggs[sg.n_aggs].name = "generic";
	sg.aggs[sg.n_aggs].fn = SW_AGG_MIN;
	sg.aggs[sg.n_aggs].col = SW_COL_FILE_SIZE;
	sg.n_aggs++;
	sw_summary_row *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	sw_err ea = sw_store_summary(st, sp, &a, &na);
	sw_err eb = sw_store_summary(st, &sg, &b, &nb);
	int good = ea == SW_OK && eb == SW_OK && na == nb;
	for (size_t r = 0; good && r < na; r++) {
		for (size_t i = 0; i < sp->n_by; i++)
			good &= same_cell(&a[r].by[i], &b[r].by[i]);
		for (size_t i = 0; i < sp->n_aggs; i++)
			good &= same_cell(&a[r].agg[i], &b[r].agg[i]);
		if (!good)
			printf("# %s: row %zu differs: count %lld/%lld set %.40s / %.40s\n", label, r,
			       (long long)a[r].agg[0].i, (long long)b[r].agg[0].i,
			       a[r].agg[1].s ? a[r].agg[1].s : "-", b[r].agg[1].s ? b[r].agg[1].s : "-");
	}
	ok(good, "%s: direct and generic summaries agree (%zu rows)", label, na);
	sw_summary_free(a, na);
	sw_summary_free(b, nb);
}

static void check_direct(sw_store *st, int64_t from, int64_t to)
{
	sw_summary_spec sp;
	memset(&sp, 0, sizeof(sp));
	sp.rule_id = "rule-a";
	sp.from_ms = from;
	sp.to_ms = to;
	sp.n_aggs = 7;
	sp.aggs[0].fn = SW_AGG_COUNT;
	sp.aggs[1].fn = SW_AGG_MAKE_SET, sp.aggs[1].col = SW_COL_REPORT_ID;
	sp.aggs[2].fn = SW_AGG_MAKE_SET, sp.aggs[2].col = SW_COL_REPORT_ID, sp.aggs[2].set_cap = 3;
	sp.aggs[3].fn = SW_AGG_MAKE_SET, sp.aggs[3].col = SW_COL_TIMESTAMP; /* has equal Timestamps */
	sp.aggs[4].fn = SW_AGG_MIN, sp.aggs[4].col = SW_COL_REPORT_ID;
	sp.aggs[5].fn = SW_AGG_MAX, sp.aggs[5].col = SW_COL_REPORT_ID;
	sp.aggs[6].fn = SW_AGG_MAX, sp.aggs[6].col = SW_COL_TIMESTAMP;
	sp.n_by = 2;
	sp.by[0] = SW_COL_DEVICE_NAME; /* either order */
	sp.by[1] = SW_COL_DEVICE_ID;
	cross_check(st, &sp, "by DeviceName, DeviceId, sets, caps, min/max");
	/* no by: one row over all devices; ReportIds repeat across devices */
	sp.n_by = 0;
	cross_check(st, &sp, "no by, sets across devices");
	sp.rule_id = "no-such-rule";
	cross_check(st, &sp, "no by, unknown rule");
	sp.rule_id = "rule-b";
	sp.from_ms = to, sp.to_ms = from; /* an empty window */
	cross_check(st, &sp, "no by, empty window");
	sp.n_by = 2;
	cross_check(st, &sp, "by-keys, empty window");
	sp.from_ms = from, sp.to_ms = to;
	sp.n_aggs = 2;
	sp.aggs[0].fn = SW_AGG_MIN, sp.aggs[0].col = SW_COL_TIMESTAMP;
	sp.aggs[1].fn = SW_AGG_COUNT;
	cross_check(st, &sp, "rule-b, count and min(Timestamp) only");
}

/* A summary inside the caller's write transaction sees its uncommitted
 * hits, and the transaction stays the caller's. */
static void check_in_transaction(sw_store *st, int64_t from, int64_t to)
{
	sw_summary_spec sp;
	pulseway_spec(&sp, "rule-c", from, to);
	sw_summary_row *rows = NULL;
	size_t n = 0;
	int good = sw_store_begin(st) == SW_OK;
	good &= sw_store_put_match(st, "rule-c", 1) == SW_OK && sw_store_put_match(st, "rule-c", 2) == SW_OK;
	sw_err e = sw_store_summary(st, &sp, &rows, &n);
	long long total = 0;
	for (size_t i = 0; i < n; i++)
		total += rows[i].agg[3].i;
	sw_summary_free(rows, n);
	/* records 1 and 2 are both in the window or not: count what it says */
	good &= e == SW_OK && sw_store_rollback(st) == SW_OK;
	e = sw_store_summary(st, &sp, &rows, &n);
	ok(good && e == SW_OK && n == 0 && total <= 2,
	   "a summary in an open transaction sees its hits (%lld) and leaves it open for rollback", total);
	sw_summary_free(rows, n);
}

static void test_summary_and_prune(void)
{
	char db[600];
	path_of(db, sizeof(db), "summary.db");
	sw_store *st = NULL;
	char why[512];
	if (!ok(sw_store_open(db, &st, why, sizeof(why)) == SW_OK, "open summary.db (%s)", why))
		return;
	const int64_t base = sw_time_make(2024, 3, 1, 0, 0, 0), day = 86400000;
	const int64_t from = base + 5 * day, to = base + 10 * day - 1;
	enum { N = 4000 };
	ref_rec *recs = calloc(N + 8, sizeof(*recs));
	size_t n = 0;
	sw_store_begin(st);
	int bad = 0;
	for (int i = 0; i < N + 8; i++) {
		ref_rec *x = &recs[n++];
		x->dev = (int)(rnd() % N_DEV);
		/* 10 days at random, and the window's edges exactly */
		static const int64_t edge[8] = { 0, -1, 1, 0, 0, 1, -1, 0 };
		if (i < N)
			x->ts = base + (int64_t)(rnd() % (uint64_t)(11 * day)) - day / 2;
		else
			x->ts = (i - N < 4 ? from : to) + edge[i - N];
		if (sw_store_next_report_id(st, DEV_ID[x->dev], &x->report_id))
			bad++;
		x->file_size = (int64_t)(rnd() % 100000) + 1;
		x->signer = (int)(rnd() % 4);
		x->trusted = (sw_tri)((int)(rnd() % 3) - 1);
		x->n_urls = (int)(rnd() % 3);
		x->hit_a = i >= N || rnd() % 3 != 0;
		x->hit_b = rnd() % 2 == 0;
		sw_record r;
		fill_record(&r, x);
		int64_t rowid;
		if (sw_store_put_record(st, &r, &rowid) ||
		    (x->hit_a && sw_store_put_match(st, "rule-a", rowid)) ||
		    (x->hit_b && sw_store_put_match(st, "rule-b", rowid)))
			bad++;
		sw_record_free(&r);
	}
	is_int(bad, 0, "%zu records and their matches stored (%s)", n, sw_store_errmsg(st));
	is_int(sw_store_commit(st), SW_OK, "one transaction commits the scan");

	check_pulseway(st, recs, n, from, to, "window");
	check_pulseway(st, recs, n, base - day, base + 11 * day, "all");
	check_pulseway(st, recs, n, from, from, "one instant");
	check_generic(st, recs, n, from, to);
	check_direct(st, from, to);
	check_direct(st, base - day, base + 11 * day);
	check_in_transaction(st, base - day, base + 11 * day);

	/* a repeated hit is idempotent; a hit on a missing record is an error */
	is_int(sw_store_put_match(st, "rule-a", 1), SW_OK, "repeated match is accepted");
	for (size_t i = 0; i < 50 && i < n; i++) /* record i has rowid i + 1 */
		if (recs[i].hit_a)
			sw_store_put_match(st, "rule-a", (int64_t)i + 1);
	check_pulseway(st, recs, n, base - day, base + 11 * day, "after repeated hits");
	is_int(sw_store_put_match(st, "rule-a", 999999), SW_ERR_USAGE, "match of a missing record");

	/* duplicate (DeviceId, ReportId) is refused */
	sw_record r;
	fill_record(&r, &recs[0]);
	is_int(sw_store_put_record(st, &r, NULL), SW_ERR_STORE, "duplicate ReportId on a device refused");
	sw_record_free(&r);

	/* record columns round-trip as typed SQL values */
	char got[256];
	char q[512];
	snprintf(q, sizeof(q),
	         "SELECT typeof(Timestamp)||','||typeof(IsTrusted)||','||"
	         "typeof(Signer)||','||CrlDistributionPointUrls FROM records WHERE ReportId=%lld AND "
	         "DeviceId='%s'",
	         (long long)recs[0].report_id, DEV_ID[recs[0].dev]);
	side_query(db, q, got, sizeof(got));
	printf("# record 0 stored as %s\n", got);
	ok(strncmp(got, "integer,", 8) == 0, "Timestamp stored as INTEGER ms");
	side_query(db, "SELECT Anomalies FROM records WHERE Anomalies != '[]' LIMIT 1", got, sizeof(got));
	is_str(got, "[\"NonZeroPadding\"]", "arrays stored as JSON text");

	/* prune everything before the window: the window's summary is unchanged */
	long long unmatched = 0;
	for (size_t i = 0; i < n; i++)
		unmatched += !recs[i].hit_a && !recs[i].hit_b;
	is_int(sw_store_prune(st, from), SW_OK, "prune before the window start");
	snprintf(q, sizeof(q), "SELECT count(*) FROM matches WHERE Timestamp < %lld", (long long)from);
	is_int(side_int(db, q), 0, "no match before the window is left");
	long long want_left = 0, want_unmatched_old = 0;
	for (size_t i = 0; i < n; i++) {
		bool hit = recs[i].hit_a || recs[i].hit_b;
		if (recs[i].ts >= from || !hit)
			want_left++;
		want_unmatched_old += !hit && recs[i].ts < from;
	}
	is_int(side_int(db, "SELECT count(*) FROM records"), want_left,
	       "pruned records are those with old matches; never-matched ones stay");
	printf("# %lld never-matched records, %lld of them old\n", unmatched, want_unmatched_old);
	check_pulseway(st, recs, n, from, to, "after prune");
	/* the pruned data is gone from a wider window */
	for (size_t i = 0; i < n; i++)
		if (recs[i].ts < from)
			recs[i].hit_a = recs[i].hit_b = false;
	check_pulseway(st, recs, n, base - day, base + 11 * day, "wide window after prune");

	free(recs);
	sw_store_close(st);
}

static void test_open_perms_wal_ids(void)
{
	char db[600], wal[620];
	path_of(db, sizeof(db), "agent.db");
	snprintf(wal, sizeof(wal), "%s-wal", db);
	char why[512] = "";
	sw_store *st = NULL;
#ifdef _WIN32
	/* The control: a file made without an ACL here may be read by
	 * others, so the 0600 below is the store's doing. */
	char control[620];
	path_of(control, sizeof(control), "control.txt");
	unsigned cm = 0;
	int crc = tap_write_file(control, "x", 1) == 0 ? sw_plat_file_mode(control, &cm) : -1;
	ok(crc == 0 && cm != 0600, "control: a plain file in the test folder is readable by others (%o)", cm);
	tap_unlink(control);
#else
	mode_t old = umask(0); /* a permissive umask must not widen the file */
#endif
	/* (Windows: the folder's inherited ACL lets everyone read, see
	 * tap_mkdtemp, so the file must be made private explicitly.) */
	sw_err e = sw_store_open(db, &st, why, sizeof(why));
#ifndef _WIN32
	umask(old);
#endif
	if (!ok(e == SW_OK, "open a new database (%s)", why))
		return;
	unsigned m;
	bool priv = owner_only(db, &m);
	ok(priv, "database file is 0600 (%o)", m);

	int64_t a1 = 0, a2 = 0, b1 = 0, a3 = 0, a4 = 0;
	sw_store_begin(st);
	sw_store_next_report_id(st, DEV_ID[0], &a1);
	sw_store_next_report_id(st, DEV_ID[0], &a2);
	sw_store_next_report_id(st, DEV_ID[1], &b1);
	is_int(sw_store_commit(st), SW_OK, "commit ids");
	ok(a1 == 1 && a2 == 2 && b1 == 1, "ReportIds count per device (%lld %lld %lld)", (long long)a1,
	   (long long)a2, (long long)b1);
#ifdef _WIN32
	/* SQLite makes the -wal file itself, and on Windows it gets no
	 * mode from the database file: it inherits the folder's ACL. Here
	 * the folder lets everyone read (tap_mkdtemp); the agent's own is
	 * private (test_private_folder). */
	skip("WAL file mode: on Windows it comes from the folder, checked in a private folder below");
#else
	priv = owner_only(wal, &m);
	ok(priv, "WAL file is 0600 too (%o)", m);
#endif

	/* documented: a rolled-back id was never committed and comes again */
	sw_store_begin(st);
	sw_store_next_report_id(st, DEV_ID[0], &a3);
	sw_store_rollback(st);
	sw_store_next_report_id(st, DEV_ID[0], &a4); /* autocommit */
	ok(a3 == 3 && a4 == 3, "a rolled-back ReportId is handed out again (%lld, %lld)", (long long)a3,
	   (long long)a4);
	is_int(sw_store_next_report_id(st, "", &a4), SW_ERR_USAGE, "empty DeviceId refused");

	char mode[32];
	side_query(db, "PRAGMA journal_mode", mode, sizeof(mode));
	is_str(mode, "wal", "journal_mode is WAL");
	is_int(side_int(db, "PRAGMA user_version"), SW_STORE_SCHEMA_VERSION, "user_version is current");

	sw_file_state fs = { .device = 0xfd00,
		             .file_id = UINT64_MAX - 1,
		             .size = 4096,
		             .mtime_ns = 1700000000123456789LL,
		             .ctime_ns = 1700000000223456789LL };
	snprintf(fs.result_hash, sizeof(fs.result_hash), "%064d", 7);
	bool found = true;
	sw_file_state q = fs;
	q.result_hash[0] = 0;
	ok(sw_store_file_state_get(st, &q, &found) == SW_OK && !found, "file state: unknown file");
	is_int(sw_store_file_state_put(st, &fs), SW_OK, "file state: put");
	ok(sw_store_file_state_get(st, &q, &found) == SW_OK && found &&
	           strcmp(q.result_hash, fs.result_hash) == 0,
	   "file state: same identity and metadata found");
	q.mtime_ns++;
	ok(sw_store_file_state_get(st, &q, &found) == SW_OK && !found, "file state: changed mtime misses");
	fs.size = 1;
	fs.result_hash[0] = 'f';
	sw_store_file_state_put(st, &fs);
	q = fs;
	ok(sw_store_file_state_get(st, &q, &found) == SW_OK && found && q.result_hash[0] == 'f',
	   "file state: put replaces");
	sw_store_close(st);

	/* reopen: the counter persists and keeps increasing */
	e = sw_store_open(db, &st, why, sizeof(why));
	int64_t a5 = 0, b2 = 0;
	ok(e == SW_OK && sw_store_next_report_id(st, DEV_ID[0], &a5) == SW_OK &&
	           sw_store_next_report_id(st, DEV_ID[1], &b2) == SW_OK,
	   "reopen and take ids");
	ok(a5 > a4 && b2 > b1, "ReportIds strictly increase across reopen (%lld > %lld, %lld > %lld)",
	   (long long)a5, (long long)a4, (long long)b2, (long long)b1);
	q = fs;
	ok(sw_store_file_state_get(st, &q, &found) == SW_OK && found, "file state persists");
	sw_store_close(st);
}

#ifdef _WIN32
/* The agent's own folders are made by sw_plat_mkdirs (owner-only,
 * inherited): there what SQLite creates (the WAL) is owner-only too,
 * where the system inherits ACLs (wine does not: a new file gets an ACL
 * from its Unix mode). */
static void test_private_folder(void)
{
	char sub[600], db[700], wal[720], why[512] = "";
	path_of(sub, sizeof(sub), "private" TAP_SEP "store");
	is_int(sw_plat_mkdirs(sub), SW_OK, "a private folder (sw_plat_mkdirs)");
	snprintf(db, sizeof(db), "%s" TAP_SEP "agent.db", sub);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	sw_store *st = NULL;
	if (!ok(sw_store_open(db, &st, why, sizeof(why)) == SW_OK, "open a database in it (%s)", why))
		return;
	int64_t id = 0;
	is_int(sw_store_next_report_id(st, DEV_ID[0], &id), SW_OK, "a write (the WAL is made)");
	unsigned m;
	bool priv = owner_only(sub, &m);
	ok(priv, "the folder is owner-only (%o)", m);
	priv = owner_only(db, &m);
	ok(priv, "the database file is owner-only (%o)", m);
	char control[720];
	snprintf(control, sizeof(control), "%s" TAP_SEP "control.txt", sub);
	bool inherits = tap_write_file(control, "x", 1) == 0 && owner_only(control, &m);
	tap_unlink(control);
	if (inherits) {
		priv = owner_only(wal, &m);
		ok(priv, "the WAL file is owner-only too (%o)", m);
	} else {
		skip("new files do not inherit the folder's ACL on this system (wine): the WAL's is not "
		     "checked");
	}
	sw_store_close(st);
}
#endif

static void test_migrations(void)
{
	char db[600], why[512];
	sw_store *st = NULL;

	path_of(db, sizeof(db), "v0.db");
	make_db(db, "CREATE TABLE keep_me(x); INSERT INTO keep_me VALUES(42); PRAGMA user_version=0;");
	sw_err e = sw_store_open(db, &st, why, sizeof(why));
	is_int(e, SW_OK, "a version-0 database opens (%s)", e ? why : "upgraded");
	sw_store_close(st);
	is_int(side_int(db, "PRAGMA user_version"), SW_STORE_SCHEMA_VERSION, "and is migrated");
	is_int(side_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN "
	                    "('records','matches','report_ids','rules','file_state')"),
	       5, "with every table");
	is_int(side_int(db, "SELECT x FROM keep_me"), 42, "other data kept");
	char mode[32];
	side_query(db, "PRAGMA journal_mode", mode, sizeof(mode));
	is_str(mode, "wal", "and switched to WAL");

	/* version 1 (indexed matches by (rule, device, ReportId, Timestamp))
	 * is migrated to the summaries' index with its data */
	path_of(db, sizeof(db), "v1.db");
	tap_unlink(db);
	int good = sw_store_open(db, &st, why, sizeof(why)) == SW_OK;
	sw_record r;
	sw_record_init(&r);
	snprintf(r.device_id, sizeof(r.device_id), "%s", DEV_ID[0]);
	for (int i = 0; good && i < 10; i++) {
		int64_t rowid;
		r.timestamp = 1000 + i;
		r.report_id = 10 - i; /* against time order */
		good = sw_store_put_record(st, &r, &rowid) == SW_OK &&
		       sw_store_put_match(st, "rule-a", rowid) == SW_OK;
	}
	sw_store_close(st);
	st = NULL;
	sqlite3 *side = NULL;
	good &= sqlite3_open(db, &side) == SQLITE_OK &&
	        sqlite3_exec(side,
	                     "DROP INDEX matches_group;"
	                     "CREATE INDEX matches_device ON matches(rule, device, ReportId, Timestamp);"
	                     /* schema 3's tables, which version 1 did not have */
	                     "DROP TABLE outbox; DROP TABLE outbox_state; DROP TABLE summary_state;"
	                     "PRAGMA user_version = 1",
	                     NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(side);
	ok(good, "a version-1 database made");
	e = sw_store_open(db, &st, why, sizeof(why));
	is_int(e, SW_OK, "a version-1 database opens (%s)", e ? why : "upgraded");
	sw_summary_spec sp;
	pulseway_spec(&sp, "rule-a", 1002, 1005);
	sw_summary_row *rows = NULL;
	size_t n = 0;
	e = st ? sw_store_summary(st, &sp, &rows, &n) : SW_ERR_USAGE;
	ok(e == SW_OK && n == 1 && rows[0].agg[0].i == 1002 && rows[0].agg[1].i == 1005 &&
	           rows[0].agg[3].i == 4 && strcmp(rows[0].agg[2].s, "[5,6,7,8]") == 0 && rows[0].by[1].s &&
	           rows[0].by[1].s[0] == 0,
	   "and its matches summarize after the migration (%s)", n ? rows[0].agg[2].s : "no rows");
	sw_summary_free(rows, n);
	sw_store_close(st);
	st = NULL;
	is_int(side_int(db, "PRAGMA user_version"), SW_STORE_SCHEMA_VERSION, "and is at the current version");
	is_int(side_int(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND "
	                    "name IN ('matches_group', 'matches_device')"),
	       1, "with the summaries' index in place of the old one");
	is_int(side_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'matches_group'"), 1,
	       "named matches_group");

	/* version 2 gains the outbox (schema 3), its data kept */
	path_of(db, sizeof(db), "v2.db");
	tap_unlink(db);
	good = sw_store_open(db, &st, why, sizeof(why)) == SW_OK;
	sw_record_init(&r);
	snprintf(r.device_id, sizeof(r.device_id), "%s", DEV_ID[1]);
	r.timestamp = 5000;
	r.report_id = 1;
	good = good && sw_store_put_record(st, &r, NULL) == SW_OK;
	sw_store_close(st);
	st = NULL;
	good &= sqlite3_open(db, &side) == SQLITE_OK &&
	        sqlite3_exec(side,
	                     "DROP TABLE outbox; DROP TABLE outbox_state; DROP TABLE summary_state;"
	                     "PRAGMA user_version = 2",
	                     NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(side);
	ok(good, "a version-2 database made");
	e = sw_store_open(db, &st, why, sizeof(why));
	is_int(e, SW_OK, "a version-2 database opens (%s)", e ? why : "upgraded");
	is_int(st ? sw_store_outbox_put(st, "file:/x", SW_OUTBOX_RECORD, "k", "{}", 1) : SW_ERR_USAGE, SW_OK,
	       "and has an outbox after the migration");
	sw_store_close(st);
	st = NULL;
	is_int(side_int(db, "SELECT count(*) FROM records"), 1, "and kept its records");
	is_int(side_int(db, "PRAGMA user_version"), SW_STORE_SCHEMA_VERSION, "and is at version 3");

	path_of(db, sizeof(db), "future.db");
	make_db(db, "CREATE TABLE t(x); PRAGMA user_version=99;");
	e = sw_store_open(db, &st, why, sizeof(why));
	ok(e == SW_ERR_STORE && st == NULL && strstr(why, "version 99 is newer") && strstr(why, db),
	   "a newer schema is refused: %s", why);
	is_int(side_int(db, "PRAGMA user_version"), 99, "and left untouched");

	path_of(db, sizeof(db), "other.db");
	make_db(db, "PRAGMA application_id=1234;");
	e = sw_store_open(db, &st, why, sizeof(why));
	ok(e == SW_ERR_STORE && strstr(why, "not a signwatch database"), "another program's db: %s", why);

	path_of(db, sizeof(db), "garbage.db");
	FILE *f = fopen(db, "w");
	if (f) {
		for (int i = 0; i < 4096; i++)
			fputc('x', f);
		fclose(f);
	}
	e = sw_store_open(db, &st, why, sizeof(why));
	ok(e == SW_ERR_STORE && st == NULL, "a non-database file is refused: %s", why);

	path_of(db, sizeof(db), "no/such/dir/x.db");
	e = sw_store_open(db, &st, why, sizeof(why));
	ok(e == SW_ERR_IO && strstr(why, "no/such/dir"), "an uncreatable path: %s", why);
}

/* 1,000,000 matches in one transaction, then the Pulseway summary, timed. */
static void test_million(void)
{
	char db[600], why[512];
	path_of(db, sizeof(db), "million.db");
	sw_store *st = NULL;
	if (!ok(sw_store_open(db, &st, why, sizeof(why)) == SW_OK, "open million.db (%s)", why))
		return;
	enum { M = 1000000, DEVS = 7 };
	const int64_t base = sw_time_make(2024, 3, 1, 0, 0, 0), day = 86400000;
	char names[DEVS][32], ids[DEVS][41];
	int64_t next[DEVS] = { 0 };
	for (int d = 0; d < DEVS; d++) {
		snprintf(ids[d], sizeof(ids[d]), "%040x", 0xabc0 + d);
		snprintf(names[d], sizeof(names[d]), "host%d.example.org", d);
	}
	double t0 = now_s();
	sw_store_begin(st);
	int bad = 0;
	sw_record r;
	sw_record_init(&r);
	for (int i = 0; i < M && !bad; i++) {
		int d = (int)(rnd() % DEVS);
		/* in time order, as a running agent stores them */
		r.timestamp = base + (int64_t)i * (10 * day / M) + (int64_t)(rnd() % 1000);
		memcpy(r.device_id, ids[d], sizeof(r.device_id));
		r.device_name = names[d];
		r.report_id = ++next[d];
		r.is_signed = true;
		r.signer = "MMSoft Design Ltd.";
		int64_t rowid;
		if (sw_store_put_record(st, &r, &rowid) || sw_store_put_match(st, "rule-a", rowid))
			bad++;
	}
	bad += sw_store_commit(st) != SW_OK;
	double t1 = now_s();
	is_int(bad, 0, "1,000,000 records and matches stored in one transaction (%s)", sw_store_errmsg(st));
	printf("# insert of 1,000,000 records + matches: %.2f s\n", t1 - t0);

	sw_summary_spec sp;
	pulseway_spec(&sp, "rule-a", base + 5 * day, base + 10 * day);
	/* Timings are printed, never asserted (shared, noisy machines); the
	 * goal is < 100 ms in a release build (bench/bench_summary.c). */
	enum { RUNS = 5 };
	double ms[RUNS];
	for (int run = 0; run < RUNS; run++) {
		sw_summary_row *rows = NULL;
		size_t n = 0;
		double s0 = now_s();
		sw_err e = sw_store_summary(st, &sp, &rows, &n);
		double s1 = now_s();
		long long total = 0;
		for (size_t i = 0; i < n; i++)
			total += rows[i].agg[3].i;
		if (run == 0)
			ok(e == SW_OK && n == DEVS,
			   "summary over 1,000,000 matches: %zu rows, %lld in window", n, total);
		ms[run] = (s1 - s0) * 1e3;
		printf("# summary (5-day window of 10) over 1,000,000 matches, run %d: %.1f ms\n", run + 1,
		       ms[run]);
		sw_summary_free(rows, n);
	}
	for (int i = 1; i < RUNS; i++) /* insertion sort for the median */
		for (int j = i; j > 0 && ms[j - 1] > ms[j]; j--) {
			double t = ms[j];
			ms[j] = ms[j - 1];
			ms[j - 1] = t;
		}
	printf("# summary median of %d runs: %.1f ms\n", RUNS, ms[RUNS / 2]);
	sp.n_aggs = 3;
	sp.aggs[2] = sp.aggs[3]; /* without make_set: a single index scan */
	double s0 = now_s();
	sw_summary_row *rows = NULL;
	size_t n = 0;
	sw_store_summary(st, &sp, &rows, &n);
	printf("# same without make_set: %.1f ms\n", (now_s() - s0) * 1e3);
	sw_summary_free(rows, n);
	sw_store_close(st);
	tap_unlink(db);
}

/* ---- the outbox (schema 3) ---- */

static void test_outbox(void)
{
	char db[600], why[512];
	path_of(db, sizeof(db), "outbox.db");
	tap_unlink(db);
	sw_store *st = NULL;
	if (!ok(sw_store_open(db, &st, why, sizeof(why)) == SW_OK, "outbox: open (%s)", why))
		return;
	const char *A = "https_json:https://a.example/x", *B = "file:/var/log/b.jsonl";
	char key[64], pl[256];
	/* 10 records and 2 summaries for A, 3 records for B, one transaction */
	int good = sw_store_begin(st) == SW_OK;
	for (int i = 1; i <= 10; i++) {
		snprintf(key, sizeof(key), "dev:%d", i);
		snprintf(pl, sizeof(pl), "{\"ReportId\":%d,\"pad\":\"%0100d\"}", i, 0);
		good &= sw_store_outbox_put(st, A, SW_OUTBOX_RECORD, key, pl, 1000 + i) == SW_OK;
		if (i == 5 || i == 10) {
			snprintf(key, sizeof(key), "rule:dev:%d", i / 5);
			good &= sw_store_outbox_put(st, A, SW_OUTBOX_SUMMARY, key, "{\"Count\":1}",
			                            1000 + i) == SW_OK;
		}
	}
	for (int i = 1; i <= 3; i++)
		good &= sw_store_outbox_put(st, B, SW_OUTBOX_RECORD, "dev:x", "{}", 1) == SW_OK;
	good &= sw_store_commit(st) == SW_OK;
	ok(good, "outbox: puts in one transaction (%s)", sw_store_errmsg(st));
	sw_outbox_stats sa, sb;
	sw_store_outbox_stats_get(st, A, &sa);
	sw_store_outbox_stats_get(st, B, &sb);
	is_int(sa.items, 12, "outbox: A counts 12 items");
	is_int(sb.items, 3, "outbox: B counts 3 items");
	is_int(side_int(db,
	                "SELECT sum(bytes) FROM outbox WHERE output_id = 'https_json:https://a.example/x'"),
	       sa.bytes, "outbox: A's byte counter equals the rows' sum");

	/* peek: seq order, item and byte caps, at least one item */
	sw_outbox_item *it = NULL;
	size_t n = 0;
	is_int(sw_store_outbox_peek(st, A, 4, 1 << 20, &it, &n), SW_OK, "outbox: peek");
	is_int(n, 4, "outbox: peek honours max_items");
	ok(n == 4 && it[0].seq < it[1].seq && it[1].seq < it[2].seq && !strcmp(it[0].idem_key, "dev:1") &&
	           it[0].kind == SW_OUTBOX_RECORD && it[0].created_ms == 1001,
	   "outbox: peek in seq order with key, kind and time");
	int64_t upto = n ? it[1].seq : 0;
	sw_outbox_items_free(it, n);
	is_int(sw_store_outbox_peek(st, A, 100, 10, &it, &n), SW_OK, "outbox: peek with a tiny byte cap");
	is_int(n, 1, "outbox: an item larger than max_bytes still comes alone");
	sw_outbox_items_free(it, n);
	is_int(sw_store_outbox_peek(st, A, 100, 300, &it, &n), SW_OK, "outbox: peek by bytes");
	is_int(n, 2, "outbox: max_bytes bounds the batch");
	sw_outbox_items_free(it, n);

	/* ack: deletes up to seq, only for that output */
	is_int(sw_store_outbox_ack(st, A, upto), SW_OK, "outbox: ack the first two");
	sw_store_outbox_stats_get(st, A, &sa);
	sw_store_outbox_stats_get(st, B, &sb);
	is_int(sa.items, 10, "outbox: A has 10 left");
	is_int(sb.items, 3, "outbox: B untouched by A's ack");
	is_int(sw_store_outbox_peek(st, A, 1, 1 << 20, &it, &n), SW_OK, "outbox: peek after ack");
	ok(n == 1 && !strcmp(it[0].idem_key, "dev:3"), "outbox: the next is dev:3");
	sw_outbox_items_free(it, n);

	/* cap: oldest records dropped, summaries kept, the drop counted */
	int64_t dropped = 0;
	int64_t cap = sa.bytes / 2;
	is_int(sw_store_outbox_enforce_cap(st, A, cap, &dropped), SW_OK, "outbox: enforce the cap");
	sw_store_outbox_stats_get(st, A, &sa);
	ok(dropped > 0 && sa.bytes <= cap, "outbox: %lld records dropped, %lld <= %lld bytes",
	   (long long)dropped, (long long)sa.bytes, (long long)cap);
	is_int(sa.dropped, dropped, "outbox: the drop count is persisted");
	is_int(side_int(db, "SELECT count(*) FROM outbox WHERE kind = 1"), 2,
	       "outbox: summaries are never dropped");
	is_int(sw_store_outbox_peek(st, A, 100, 1 << 20, &it, &n), SW_OK, "outbox: peek after the cap");
	size_t firstrec = 0;
	while (firstrec < n && it[firstrec].kind != SW_OUTBOX_RECORD)
		firstrec++;
	char want[32];
	snprintf(want, sizeof(want), "dev:%lld", 3 + (long long)dropped);
	ok(firstrec < n && !strcmp(it[firstrec].idem_key, want),
	   "outbox: the oldest records went (first left %s)", firstrec < n ? it[firstrec].idem_key : "none");
	sw_outbox_items_free(it, n);
	is_int(sw_store_outbox_enforce_cap(st, A, 1, &dropped), SW_OK, "outbox: a cap below the summaries");
	is_int(side_int(db, "SELECT count(*) FROM outbox WHERE output_id = 'https_json:https://a.example/x'"),
	       2, "outbox: only the summaries are left");

	/* supersede: a newer summary version replaces the unsent older one */
	int64_t removed = 0;
	is_int(sw_store_outbox_supersede(st, A, "rule:dev:", &removed), SW_OK, "outbox: supersede");
	is_int(removed, 2, "outbox: both pending versions removed");
	sw_store_outbox_stats_get(st, A, &sa);
	ok(sa.items == 0 && sa.bytes == 0, "outbox: counters back to zero (%lld, %lld)", (long long)sa.items,
	   (long long)sa.bytes);

	/* seqs are never reused, even once the table was empty */
	int64_t before = side_int(db, "SELECT max(seq) FROM outbox");
	(void)before;
	sw_store_outbox_put(st, A, SW_OUTBOX_RECORD, "dev:99", "{}", 5);
	is_int(sw_store_outbox_peek(st, A, 1, 1 << 20, &it, &n), SW_OK, "outbox: peek the new item");
	ok(n == 1 && it[0].seq > upto + 10, "outbox: a new seq after an empty outbox is still larger (%lld)",
	   n ? (long long)it[0].seq : -1LL);
	sw_outbox_items_free(it, n);

	/* summary state */
	int64_t v = -1;
	char *js = NULL;
	is_int(sw_store_summary_state_get(st, "r", "d", &v, &js), SW_OK, "summary state: get of none");
	ok(v == 0 && js == NULL, "summary state: version 0 when none");
	is_int(sw_store_summary_state_put(st, "r", "d", 3, "{\"Count\":3}"), SW_OK, "summary state: put");
	sw_store_summary_state_get(st, "r", "d", &v, &js);
	ok(v == 3 && js && !strcmp(js, "{\"Count\":3}"), "summary state: read back");
	free(js);

	/* retain: outputs gone from the configuration lose their outbox */
	const char *keep[] = { A };
	is_int(sw_store_outbox_retain(st, keep, 1, &removed), SW_OK, "outbox: retain");
	is_int(removed, 3, "outbox: B's 3 items removed");
	sw_store_outbox_stats_get(st, B, &sb);
	is_int(sb.items, 0, "outbox: B is empty");
	sw_store_close(st);

	/* persisted across a reopen: what was not acked is still there */
	if (ok(sw_store_open(db, &st, why, sizeof(why)) == SW_OK, "outbox: reopen (%s)", why)) {
		sw_store_outbox_stats_get(st, A, &sa);
		is_int(sa.items, 1, "outbox: unacked items survive a reopen");
		ok(sa.dropped > 0, "outbox: the drop count survives a reopen");
		sw_store_close(st);
	}
	tap_unlink(db);
}

int main(int argc, char **argv)
{
	const char *parent = argc > 1 ? argv[1] : NULL;
	if (tap_mkdtemp(dir, sizeof(dir), parent, "test_store.") != 0) {
		printf("Bail out! cannot make a folder in %s\n", parent ? parent : "the temporary folder");
		return 1;
	}
	printf("# in %s\n", dir);
	test_open_perms_wal_ids();
#ifdef _WIN32
	test_private_folder();
#endif
	test_migrations();
	test_outbox();
	test_summary_and_prune();
	if (getenv("SW_STORE_SKIP_BIG"))
		skip("SW_STORE_SKIP_BIG set");
	else
		test_million();
	int rc = done_testing();
	if (!rc && tap_rmtree(dir) != 0) /* keep the files of a failed run for a look */
		printf("# could not remove %s\n", dir);
	return rc;
}
