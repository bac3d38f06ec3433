/* signwatch scan: a one-shot recursive scan. Records and matches are
 * stored; matching records and each rule's summary are printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "commands.h"
#include "pipeline.h"
#include "rules_load.h"
#include "text_escape.h"

#define MAX_RULE_PATHS 64
#define USAGE                                                                                                \
	"usage: signwatch scan [--rules P]... [--db F] [--ca-file F] [--json] [--cross-fs]\n"                \
	"                      [--max-file-mb N] PATH...\n"

typedef struct scan_ctx {
	sw_pipeline *pipe;
	const sw_rules *rules;
	sw_scan_opts opts;
	bool json, progress;
	size_t files, pe, records, matches, cached, failed, malformed;
	int64_t last_progress;
	int store_failed;
} scan_ctx;

static void progress(scan_ctx *c, bool final)
{
	if (!c->progress)
		return;
	int64_t now = sw_plat_now_ms();
	if (!final && now - c->last_progress < 250)
		return;
	c->last_progress = now;
	fprintf(stderr, "\r%zu files, %zu PE, %zu records, %zu matches, %zu unchanged%s", c->files, c->pe,
	        c->records, c->matches, c->cached, final ? "\n" : "");
}

static void print_match(scan_ctx *c, const sw_scan_result *res, size_t k)
{
	const sw_record *r = &res->recs[k];
	if (c->json) {
		char *js = sw_record_json(r);
		if (!js)
			return;
		/* The record, plus which rules it matched. */
		printf("%.*s,\"MatchedRules\":[", (int)strlen(js) - 1, js);
		bool first = true;
		for (size_t i = 0; i < res->nrules; i++)
			if (res->matched[k * res->nrules + i]) {
				printf("%s\"%s\"", first ? "" : ",", sw_rule_id(c->rules, i));
				first = false;
			}
		printf("]}\n");
		free(js);
		return;
	}
	if (c->progress)
		fprintf(stderr, "\r\033[K");
	for (size_t i = 0; i < res->nrules; i++) {
		if (!res->matched[k * res->nrules + i])
			continue;
		char *p = sw_escape_terminal(res->path), *s = sw_escape_terminal(r->signer ? r->signer : "");
		char *rn = sw_escape_terminal(sw_rule_name(c->rules, i));
		printf("match  %s\n  file    %s\n  signer  %s (trusted: %s)\n  report  %lld\n", rn ? rn : "?",
		       p ? p : "?", s ? s : "?", r->is_trusted == SW_YES ? "yes" : "no",
		       (long long)r->report_id);
		free(p);
		free(s);
		free(rn);
	}
}

static int visit(void *ud, const char *path, const sw_file_id *id)
{
	scan_ctx *c = ud;
	c->files++;
	if (sw_pipeline_cached(c->pipe, id)) {
		c->cached++;
		progress(c, false);
		return 0;
	}
	int64_t now = sw_plat_now_ms();
	sw_scan_result res;
	sw_scan_file(path, &c->opts, now, &res);
	if (res.status == SW_SCAN_FAILED) {
		char *p = sw_escape_terminal(path), *w = sw_escape_terminal(res.why);
		fprintf(stderr, "%ssignwatch scan: %s: %s\n", c->progress ? "\r\033[K" : "", p ? p : "?",
		        w ? w : "?");
		free(p);
		free(w);
		c->failed++;
	}
	if (res.status == SW_SCAN_MALFORMED) {
		char *p = sw_escape_terminal(path);
		fprintf(stderr, "%ssignwatch scan: %s: malformed executable (%s)\n",
		        c->progress ? "\r\033[K" : "", p ? p : "?", res.why);
		free(p);
		c->malformed++;
	}
	if (res.status == SW_SCAN_RECORDS || res.status == SW_SCAN_NOT_PE ||
	    res.status == SW_SCAN_MALFORMED) {
		/* Non-PE files are remembered too, so a rescan skips them. */
		char why[512];
		if (res.status == SW_SCAN_RECORDS)
			c->pe++;
		if (sw_pipeline_apply(c->pipe, &res, now, why, sizeof(why)) != SW_OK) {
			fprintf(stderr, "\nsignwatch scan: %s\n", why);
			c->store_failed = 1;
			sw_scan_result_free(&res);
			return 1; /* stop: nothing more can be kept */
		}
		c->records += res.n;
		for (size_t k = 0; k < res.n; k++) {
			bool any = false;
			for (size_t i = 0; i < res.nrules; i++)
				any |= res.matched[k * res.nrules + i] != 0;
			if (any) {
				c->matches++;
				print_match(c, &res, k);
			}
		}
	}
	sw_scan_result_free(&res);
	progress(c, false);
	return 0;
}

static int walk_error(void *ud, const char *path, const char *why)
{
	scan_ctx *c = ud;
	char *p = sw_escape_terminal(path);
	fprintf(stderr, "%ssignwatch scan: %s: %s\n", c->progress ? "\r\033[K" : "", p ? p : "?", why);
	free(p);
	c->failed++;
	return 0;
}

/* A summary row for people: one "Key  value" line per column. */
static void print_summary_text(const char *js)
{
	json_error_t err;
	json_t *o = js ? json_loads(js, 0, &err) : NULL;
	const char *k;
	json_t *v;
	printf("summary\n");
	json_object_foreach(o, k, v)
	{
		char *txt = json_is_string(v) ? strdup(json_string_value(v))
		                              : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		char *e = txt ? sw_escape_terminal(txt) : NULL;
		printf("  %-12s %s\n", k, e ? e : "?");
		free(e);
		free(txt);
	}
	json_decref(o);
}

/* Print every rule's summary rows. Returns 0, or 1 on a store failure. */
int sw_print_summaries(sw_store *st, const sw_rules *rules, const char *only, bool json, int64_t now)
{
	int rc = 0;
	size_t nr = sw_rules_count(rules);
	for (size_t i = 0; i < nr; i++) {
		if (only && strcmp(only, sw_rule_id(rules, i)) != 0)
			continue;
		sw_summary_spec spec;
		sw_summary_row *rows = NULL;
		size_t n = 0;
		sw_err e = sw_rule_summary(st, rules, i, now, &spec, &rows, &n);
		if (e == SW_ERR_UNSUPPORTED && !only)
			continue;
		if (e) {
			fprintf(stderr, "signwatch: summary of %s: %s\n", sw_rule_id(rules, i),
			        e == SW_ERR_UNSUPPORTED ? "the rule has no summarize" : sw_store_errmsg(st));
			rc = 1;
			continue;
		}
		for (size_t k = 0; k < n; k++) {
			char *js = sw_summary_row_json(rules, i, &spec, &rows[k]);
			if (json) {
				if (js)
					puts(js);
			} else {
				print_summary_text(js);
			}
			free(js);
		}
		sw_summary_free(rows, n);
	}
	return rc;
}

int sw_cmd_scan(int argc, char **argv)
{
	const char *rule_paths[MAX_RULE_PATHS];
	size_t nrp = 0;
	const char *db = sw_plat_default_store(), *ca = NULL;
	bool json = false, cross = false;
	long max_mb = 512;
	int first = argc;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		int m;
		if (!strcmp(argv[i], "--")) {
			first = i + 1;
			break;
		}
		if (argv[i][0] != '-' || !argv[i][1]) {
			first = i;
			break;
		}
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--cross-fs"))
			cross = true;
		else if ((m = sw_opt_value(argc, argv, &i, "--rules", &v)) != 0) {
			if (m < 0)
				return 2;
			if (nrp == MAX_RULE_PATHS) {
				fprintf(stderr, "signwatch scan: at most %d --rules\n", MAX_RULE_PATHS);
				return 2;
			}
			rule_paths[nrp++] = v;
		} else if ((m = sw_opt_value(argc, argv, &i, "--db", &v)) != 0) {
			if (m < 0)
				return 2;
			db = v;
		} else if ((m = sw_opt_value(argc, argv, &i, "--ca-file", &v)) != 0) {
			if (m < 0)
				return 2;
			ca = v;
		} else if ((m = sw_opt_value(argc, argv, &i, "--max-file-mb", &v)) != 0) {
			char *end;
			if (m < 0)
				return 2;
			max_mb = strtol(v, &end, 10);
			if (*end || max_mb < 1 || max_mb > 4096) {
				fprintf(stderr, "signwatch scan: --max-file-mb: expected 1..4096, got '%s'\n",
				        v);
				return 2;
			}
		} else {
			fprintf(stderr, "signwatch scan: unknown option '%s'\n" USAGE, argv[i]);
			return 2;
		}
	}
	if (first >= argc) {
		fprintf(stderr, "signwatch scan: no PATH given\n" USAGE);
		return 2;
	}
	for (int i = first; i < argc; i++) {
		if (sw_plat_is_dir(argv[i]) != 1) {
			sw_file *f = NULL;
			char why[256];
			if (sw_plat_file_open(argv[i], &f, why, sizeof(why)) != SW_OK) {
				fprintf(stderr, "signwatch scan: %s: %s\n", argv[i], why);
				return 2;
			}
			sw_plat_file_close(f);
		}
	}
	/* Everything that can be wrong with the input is checked before the
	 * store is touched, so a bad rule loses nothing. */
	size_t bad = 0;
	sw_rules *rules = sw_load_rules("signwatch scan", rule_paths, nrp, stderr, &bad);
	if (!rules || bad) {
		sw_rules_free(rules);
		return rules ? 2 : 1;
	}
	/* --ca-file, else the OS root store (Windows), else none. */
	sw_trust *trust = NULL;
	char twhy[512];
	if (sw_trust_setup(ca, &trust, twhy, sizeof(twhy)) != SW_OK) {
		fprintf(stderr, "signwatch scan: --ca-file %s\n", twhy);
		sw_rules_free(rules);
		return 2;
	}
	if (twhy[0])
		fprintf(stderr, "signwatch scan: warning: %s; IsTrusted will be false\n", twhy);
	char *dir = sw_plat_dirname(db);
	if (dir && sw_plat_mkdirs(dir) != SW_OK)
		fprintf(stderr, "signwatch scan: cannot create %s\n", dir);
	free(dir);
	sw_store *st = NULL;
	char why[512];
	if (sw_store_open(db, &st, why, sizeof(why)) != SW_OK) {
		fprintf(stderr, "signwatch scan: %s\n", why);
		sw_trust_free(trust);
		sw_rules_free(rules);
		return 1;
	}
	scan_ctx c = { 0 };
	c.rules = rules;
	c.pipe = sw_pipeline_new(st, rules);
	c.json = json;
	c.progress = sw_plat_isatty(2);
	c.opts.trust = trust;
	c.opts.catalogs = sw_plat_has_catalogs();
	c.opts.cache = sw_cache_new();
	c.opts.catdb = c.opts.catalogs ? sw_plat_catdb_open() : NULL; /* one thread, kept for the scan */
	c.opts.max_file_bytes = (uint64_t)max_mb << 20;
	char dev_name[256];
	if (sw_plat_device_id(c.opts.device_id) != SW_OK)
		snprintf(c.opts.device_id, sizeof(c.opts.device_id), "%040d", 0);
	if (sw_plat_device_name(dev_name, sizeof(dev_name)) != SW_OK)
		snprintf(dev_name, sizeof(dev_name), "localhost");
	c.opts.device_name = dev_name;
	for (int i = first; i < argc && c.pipe && !c.store_failed; i++)
		(void)sw_plat_walk(argv[i], cross, visit, walk_error, &c);
	progress(&c, true);
	int rc = c.store_failed || !c.pipe ? 1 : 0;
	int64_t now = sw_plat_now_ms();
	if (!rc && sw_pipeline_prune(st, rules, now) != SW_OK) {
		fprintf(stderr, "signwatch scan: prune: %s\n", sw_store_errmsg(st));
		rc = 1;
	}
	if (!rc)
		rc = sw_print_summaries(st, rules, NULL, json, now);
	if (!json)
		fprintf(stderr,
		        "signwatch scan: %zu files, %zu PE, %zu malformed, %zu records, %zu matching, %zu "
		        "unchanged, "
		        "%zu failed\n",
		        c.files, c.pe, c.malformed, c.records, c.matches, c.cached, c.failed);
	if (c.failed && !rc)
		rc = 1;
	sw_pipeline_free(c.pipe);
	sw_cache_free(c.opts.cache);
	sw_plat_catdb_close(c.opts.catdb);
	sw_store_close(st);
	sw_trust_free(trust);
	sw_rules_free(rules);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
