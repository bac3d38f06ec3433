/* bench_summary: sw_store_summary of the Pulseway-shaped summarize over a
 * store of 1,000,000 matches, next to a plain SELECT count(*) FROM matches
 * on the same database as the floor. Prints figures; asserts nothing.
 *
 *   bench_summary [--dir PARENT] [--db PATH] [--runs N]
 *
 * By default a store is filled in a temporary folder under PARENT ($TMPDIR
 * or /tmp) and removed at the end. With --db, PATH is used and kept: filled
 * when it has no matches yet, reused as it is otherwise (for profiling). */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "bench_util.h"

enum { M = 1000000, DEVS = 7, MAX_RUNS = 101 };

static long long count_matches(const char *db_path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	long long n = -1;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM matches", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

/* Like tests/unit/test_store.c's test_million: records in time order over
 * 10 days, DEVS devices at random, every one a hit of rule-a. */
static int fill(sw_store *st, int64_t base, int64_t day)
{
	char names[DEVS][32], ids[DEVS][41];
	int64_t next[DEVS] = { 0 };
	for (int d = 0; d < DEVS; d++) {
		snprintf(ids[d], sizeof(ids[d]), "%040x", 0xabc0 + d);
		snprintf(names[d], sizeof(names[d]), "host%d.example.org", d);
	}
	if (sw_store_begin(st))
		return -1;
	sw_record r;
	sw_record_init(&r);
	for (int i = 0; i < M; i++) {
		int d = (int)(rnd() % DEVS);
		r.timestamp = base + (int64_t)i * (10 * day / M) + (int64_t)(rnd() % 1000);
		memcpy(r.device_id, ids[d], sizeof(r.device_id));
		r.device_name = names[d];
		r.report_id = ++next[d];
		r.is_signed = true;
		r.signer = "MMSoft Design Ltd.";
		int64_t rowid;
		if (sw_store_put_record(st, &r, &rowid) || sw_store_put_match(st, "rule-a", rowid)) {
			sw_store_rollback(st);
			return -1;
		}
	}
	return sw_store_commit(st) ? -1 : 0;
}

static void pulseway_spec(sw_summary_spec *sp, int64_t from, int64_t to)
{
	memset(sp, 0, sizeof(*sp));
	sp->rule_id = "rule-a";
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

/* Median (and min, max, median CPU) ms of runs summaries; -1 on failure. */
static double time_summary(sw_store *st, const sw_summary_spec *sp, int runs, double *mn, double *mx,
                           double *cpu, long long *total, size_t *rows_n)
{
	double t[MAX_RUNS], c[MAX_RUNS];
	for (int i = -1; i < runs; i++) { /* one untimed warm-up */
		sw_summary_row *rows = NULL;
		size_t n = 0;
		double c0 = cpu_s(), t0 = now_s();
		sw_err e = sw_store_summary(st, sp, &rows, &n);
		double t1 = now_s(), c1 = cpu_s();
		if (e) {
			fprintf(stderr, "bench_summary: summary: %s\n", sw_store_errmsg(st));
			return -1;
		}
		*total = 0;
		for (size_t k = 0; k < n; k++)
			*total += rows[k].agg[sp->n_aggs - 1].i; /* Count is last */
		*rows_n = n;
		sw_summary_free(rows, n);
		if (i >= 0) {
			t[i] = (t1 - t0) * 1e3;
			c[i] = (c1 - c0) * 1e3;
		}
	}
	*cpu = median(c, runs);
	double m = median(t, runs);
	*mn = t[0];
	*mx = t[runs - 1];
	return m;
}

int main(int argc, char **argv)
{
	bench_rng = 0x9e3779b97f4a7c15ull; /* this bench's data set */
	const char *parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", *db_arg = NULL;
	int runs = 7;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			parent = argv[++i];
		else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db_arg = argv[++i];
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_summary [--dir PARENT] [--db PATH] [--runs N]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS)
		runs = 7;
	char dir[512] = "", db[600];
	if (db_arg) {
		snprintf(db, sizeof(db), "%s", db_arg);
	} else {
		snprintf(dir, sizeof(dir), "%s/bench_summary.XXXXXX", parent);
		if (!mkdtemp(dir)) {
			fprintf(stderr, "bench_summary: cannot make a folder in %s\n", parent);
			return 2;
		}
		snprintf(db, sizeof(db), "%s/bench.db", dir);
	}
	const int64_t base = sw_time_make(2024, 3, 1, 0, 0, 0), day = 86400000;
	sw_store *st = NULL;
	char why[512];
	int rc = 1;
	if (sw_store_open(db, &st, why, sizeof(why))) {
		fprintf(stderr, "bench_summary: %s\n", why);
		goto out;
	}
	long long have = count_matches(db);
	if (have <= 0) {
		printf("filling %s: %d records and matches, %d devices, 10 days, one transaction\n", db, M,
		       DEVS);
		double t0 = now_s();
		if (fill(st, base, day)) {
			fprintf(stderr, "bench_summary: fill: %s\n", sw_store_errmsg(st));
			goto out;
		}
		printf("  fill: %.2f s (%.0f records+matches/s)\n", now_s() - t0, M / (now_s() - t0));
		have = count_matches(db);
	} else {
		printf("reusing %s: %lld matches\n", db, have);
	}

	sw_summary_spec sp;
	pulseway_spec(&sp, base + 5 * day, base + 10 * day);
	double mn, mx, cpu;
	long long total = 0;
	size_t n_rows = 0;
	double med = time_summary(st, &sp, runs, &mn, &mx, &cpu, &total, &n_rows);
	if (med < 0)
		goto out;

	/* without make_set: count, min, max */
	sw_summary_spec sp2 = sp;
	sp2.n_aggs = 3;
	sp2.aggs[2] = sp.aggs[3];
	double mn2, mx2, cpu2;
	long long total2 = 0;
	size_t n_rows2 = 0;
	double med2 = time_summary(st, &sp2, runs, &mn2, &mx2, &cpu2, &total2, &n_rows2);
	if (med2 < 0)
		goto out;
	sw_store_close(st);
	st = NULL;

	/* the floor: SQLite's own count of the table, same file, warm cache */
	sqlite3 *sdb = NULL;
	sqlite3_stmt *s = NULL;
	double tf[MAX_RUNS], cf[MAX_RUNS];
	long long cnt = -1;
	if (sqlite3_open_v2(db, &sdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sdb, "SELECT count(*) FROM matches", -1, &s, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_summary: %s\n", sqlite3_errmsg(sdb));
		sqlite3_close(sdb);
		goto out;
	}
	for (int i = -1; i < runs; i++) {
		double c0 = cpu_s(), t0 = now_s();
		if (sqlite3_step(s) == SQLITE_ROW)
			cnt = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		if (i >= 0) {
			tf[i] = (now_s() - t0) * 1e3;
			cf[i] = (cpu_s() - c0) * 1e3;
		}
	}
	double cpuf = median(cf, runs);
	sqlite3_finalize(s);
	sqlite3_close(sdb);
	double medf = median(tf, runs);

	printf("store: %lld matches (SELECT count(*) says %lld), window 5 days of 10\n", have, cnt);
	printf("%-44s %9s %9s %9s %8s %9s %8s\n", "", "median", "min", "max", "vs floor", "cpu med",
	       "vs floor");
	printf("%-44s %7.1fms %7.1fms %7.1fms %7.1fx %7.1fms %7.1fx\n",
	       "sw_store_summary, Pulseway (make_set)", med, mn, mx, med / medf, cpu, cpu / cpuf);
	printf("  %zu rows, %lld matches in the window\n", n_rows, total);
	printf("%-44s %7.1fms %7.1fms %7.1fms %7.1fx %7.1fms %7.1fx\n", "sw_store_summary, without make_set",
	       med2, mn2, mx2, med2 / medf, cpu2, cpu2 / cpuf);
	printf("%-44s %7.1fms %7.1fms %7.1fms %7.1fx %7.1fms %7.1fx\n", "floor: SELECT count(*) FROM matches",
	       medf, tf[0], tf[runs - 1], 1.0, cpuf, 1.0);
	printf("runs: %d each (wall median, min, max; thread CPU median; one warm-up run first)\n", runs);
	printf("target: Pulseway summary < 100 ms: %s\n", med < 100 ? "met" : "NOT met");
	rc = 0;
out:
	sw_store_close(st);
	if (dir[0]) {
		char p[700];
		static const char *const sfx[] = { "", "-wal", "-shm" };
		for (int i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "%s%s", db, sfx[i]);
			unlink(p);
		}
		rmdir(dir);
	}
	return rc;
}
