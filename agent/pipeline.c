#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "yara_scan.h"

struct sw_pipeline {
	sw_store *st;
	const sw_rules *rules;
	sw_kql_scratch *scratch;
	sw_pipeline_hook_fn hook; /* forwarding (issue 5): the outbox writer */
	void *hook_ud;
};

void sw_pipeline_set_hook(sw_pipeline *p, sw_pipeline_hook_fn fn, void *ud)
{
	p->hook = fn;
	p->hook_ud = ud;
}

sw_err sw_trust_setup(const char *ca_file, sw_trust **out, char *why, size_t n)
{
	*out = NULL;
	why[0] = 0;
	if (ca_file)
		return sw_trust_load_file(ca_file, out, why, n);
	sw_err e = sw_plat_system_trust(out, why, n);
	if (e == SW_ERR_UNSUPPORTED)
		why[0] = 0; /* Linux, macOS: no store; IsTrusted needs ca_file */
	else if (e)
		*out = NULL;
	return SW_OK;
}

void sw_catalog_find_system(void *ud, const sw_digest *digests, size_t n, sw_catalog_visit_fn visit,
                            void *vctx)
{
	char *seen[2 * SW_CAT_MAX_TRIED];
	size_t nseen = 0;
	bool stop = false;
	for (size_t i = 0; i < n && !stop; i++) {
		char **paths = NULL;
		size_t np = 0;
		if (sw_plat_catalogs_for_hash(ud, digests[i].d, digests[i].len, SW_CAT_MAX_TRIED, &paths,
		                              &np) != SW_OK)
			continue;
		for (size_t k = 0; k < np; k++) {
			bool dup = false;
			for (size_t j = 0; j < nseen && !dup; j++)
				dup = !strcmp(seen[j], paths[k]);
			if (stop || dup || nseen == sizeof(seen) / sizeof(seen[0])) {
				free(paths[k]);
				continue;
			}
			seen[nseen++] = paths[k];
			/* A catalog is opened like any scanned file: no links followed. */
			sw_file *f = NULL;
			char why[256];
			if (sw_plat_file_open(paths[k], &f, why, sizeof(why)) != SW_OK)
				continue;
			if (sw_plat_file_is_regular(f)) {
				/* The identity of what is read (the open handle, not the
				 * path), for the per-thread catalog memo. */
				sw_file_id fid;
				bool known = sw_plat_file_identity(f, &fid); /* else not memoized */
				sw_cat_id id = { .path = paths[k],
					         .dev = fid.dev,
					         .ino = fid.ino,
					         .size = fid.size,
					         .mtime_ns = fid.mtime_ns,
					         .ctime_ns = fid.ctime_ns };
				sw_src src = sw_plat_file_source(f);
				stop = visit(vctx, &src, known ? &id : NULL);
			}
			sw_plat_file_close(f);
		}
		free(paths);
	}
	for (size_t j = 0; j < nseen; j++)
		free(seen[j]);
}

void sw_scan_file(const char *path, const sw_scan_opts *o, int64_t now_ms, sw_scan_result *res)
{
	memset(res, 0, sizeof(*res));
	res->path = strdup(path);
	sw_file *f = NULL;
	res->err = sw_plat_file_open(path, &f, res->why, sizeof(res->why));
	if (res->err) {
		res->status = SW_SCAN_FAILED;
		return;
	}
	res->have_id = sw_plat_file_identity(f, &res->id);
	if (!sw_plat_file_is_regular(f)) {
		res->status = SW_SCAN_SKIPPED;
		snprintf(res->why, sizeof(res->why), "not a regular file");
		sw_plat_file_close(f);
		return;
	}
	if (o->max_file_bytes && res->id.size > o->max_file_bytes) {
		res->status = SW_SCAN_SKIPPED;
		res->err = SW_ERR_TOO_LARGE;
		snprintf(res->why, sizeof(res->why), "larger than max_file_mb");
		sw_plat_file_close(f);
		return;
	}
	sw_src src = sw_plat_file_source(f);
	sw_inspect_opts io = { .trust = o->trust,
		               .now_ms = now_ms,
		               .cache = o->cache,
		               .catalog_find = o->catalogs ? sw_catalog_find_system : NULL,
		               .catalog_ud = o->catdb };
	res->err = sw_inspect(&src, &io, &res->recs, &res->n, res->why, sizeof(res->why));
	sw_plat_file_close(f);
	if (res->err == SW_ERR_NOT_PE) {
		res->status = SW_SCAN_NOT_PE;
		return;
	}
	if (res->err == SW_ERR_BAD_PE) {
		/* MZ and a broken PE header: hostile or damaged, not a failure of
		 * ours. Remembered like a non-PE file, and reported. */
		res->status = SW_SCAN_MALFORMED;
		return;
	}
	if (res->err) {
		res->status = SW_SCAN_FAILED;
		return;
	}
	res->status = SW_SCAN_RECORDS;
	if (o->yara && res->n) {
		/* The Authenticode verdict of the first signature is what the
		 * rules see as externals; the matches go into every record. */
		char **m = NULL;
		size_t nm = 0;
		sw_err ye = sw_yara_scan_file(o->yara, path, &res->recs[0], 10, &m, &nm);
		if (ye == SW_OK || ye == SW_ERR_LIMIT) {
			for (size_t k = 0; k < res->n && nm; k++) {
				res->recs[k].yara_matches = calloc(nm, sizeof(char *));
				for (size_t i = 0; res->recs[k].yara_matches && i < nm; i++)
					if ((res->recs[k].yara_matches[i] = strdup(m[i])) != NULL)
						res->recs[k].n_yara_matches++;
			}
		}
		sw_yara_free_matches(m, nm);
	}
	char *folder = NULL, *name = NULL;
	sw_plat_split_path(path, &folder, &name);
	for (size_t k = 0; k < res->n; k++) {
		sw_record *r = &res->recs[k];
		r->timestamp = now_ms;
		memcpy(r->device_id, o->device_id, sizeof(r->device_id));
		r->device_name = o->device_name ? strdup(o->device_name) : NULL;
		r->folder_path = folder ? strdup(folder) : NULL;
		r->file_name = name ? strdup(name) : NULL;
	}
	free(folder);
	free(name);
}

void sw_scan_result_free(sw_scan_result *res)
{
	free(res->path);
	sw_records_free(res->recs, res->n);
	free(res->matched);
	memset(res, 0, sizeof(*res));
}

sw_pipeline *sw_pipeline_new(sw_store *st, const sw_rules *rules)
{
	sw_pipeline *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->st = st;
	p->rules = rules;
	p->scratch = sw_kql_scratch_new();
	if (!p->scratch) {
		free(p);
		return NULL;
	}
	return p;
}

void sw_pipeline_free(sw_pipeline *p)
{
	if (!p)
		return;
	sw_kql_scratch_free(p->scratch);
	free(p);
}

static void state_of(const sw_file_id *id, sw_file_state *fs)
{
	memset(fs, 0, sizeof(*fs));
	fs->device = id->dev;
	fs->file_id = id->ino;
	fs->size = (int64_t)id->size;
	fs->mtime_ns = id->mtime_ns;
	fs->ctime_ns = id->ctime_ns;
}

bool sw_pipeline_cached(sw_pipeline *p, const sw_file_id *id)
{
	sw_file_state fs;
	bool found = false;
	state_of(id, &fs);
	return sw_store_file_state_get(p->st, &fs, &found) == SW_OK && found;
}

/* What the cache remembers of a scan: a digest of the file's SHA-256 and
 * signature verdicts, so a change of verdict is visible. */
static void result_hash(const sw_scan_result *res, char out[65])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t d[32];
	unsigned dl = 0;
	out[0] = 0;
	if (!c)
		return;
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, &res->status, sizeof(res->status));
	for (size_t k = 0; k < res->n; k++) {
		const sw_record *r = &res->recs[k];
		EVP_DigestUpdate(c, r->sha256, strlen(r->sha256));
		EVP_DigestUpdate(c, r->signer_hash, strlen(r->signer_hash));
		EVP_DigestUpdate(c, &r->is_trusted, sizeof(r->is_trusted));
	}
	EVP_DigestFinal_ex(c, d, &dl);
	EVP_MD_CTX_free(c);
	static const char h[] = "0123456789abcdef";
	for (unsigned i = 0; i < dl && i < 32; i++) {
		out[2 * i] = h[d[i] >> 4];
		out[2 * i + 1] = h[d[i] & 15];
	}
	out[64] = 0;
}

/* Store one result inside the caller's transaction. */
static sw_err apply_one(sw_pipeline *p, sw_scan_result *res, int64_t now_ms, char *why, size_t n,
                        bool *hook_failed)
{
	size_t nrules = sw_rules_count(p->rules);
	free(res->matched);
	res->matched = NULL;
	res->nrules = nrules;
	if (res->n && nrules) {
		res->matched = calloc(res->n, nrules);
		if (!res->matched)
			return SW_ERR_NOMEM;
	}
	sw_err e = SW_OK;
	for (size_t k = 0; !e && k < res->n; k++) {
		sw_record *r = &res->recs[k];
		int64_t rowid = 0;
		e = sw_store_next_report_id(p->st, r->device_id, &r->report_id);
		if (!e)
			e = sw_store_put_record(p->st, r, &rowid);
		sw_kql_scratch_reset(p->scratch);
		for (size_t i = 0; !e && i < nrules; i++) {
			if (!sw_kql_match_scratch(sw_rule_kql(p->rules, i), r, now_ms, p->scratch))
				continue;
			res->matched[k * nrules + i] = 1;
			e = sw_store_put_match(p->st, sw_rule_id(p->rules, i), rowid);
		}
	}
	if (!e && res->have_id) {
		sw_file_state fs;
		state_of(&res->id, &fs);
		result_hash(res, fs.result_hash);
		e = sw_store_file_state_put(p->st, &fs);
	}
	/* forwarding (issue 5): the outbox items, in the same transaction */
	if (!e && p->hook && (e = p->hook(p->hook_ud, p->st, res, now_ms, why, n)) != SW_OK)
		*hook_failed = true;
	return e;
}

static void unassign(sw_scan_result *res)
{
	for (size_t k = 0; k < res->n; k++)
		res->recs[k].report_id = -1;
}

sw_err sw_pipeline_apply(sw_pipeline *p, sw_scan_result *res, int64_t now_ms, char *why, size_t n)
{
	sw_scan_result *one[1] = { res };
	return sw_pipeline_apply_batch(p, one, 1, now_ms, false, why, n);
}

sw_err sw_pipeline_apply_batch(sw_pipeline *p, sw_scan_result **res, size_t nres, int64_t now_ms,
                               bool skip_cached, char *why, size_t n)
{
	why[0] = 0;
	bool hook_failed = false;
	sw_err e = sw_store_begin(p->st);
	for (size_t i = 0; !e && i < nres; i++) {
		sw_scan_result *r = res[i];
		bool storable = r->status == SW_SCAN_RECORDS || r->status == SW_SCAN_NOT_PE ||
		                r->status == SW_SCAN_MALFORMED;
		/* The transaction sees its own writes: the second of two queued
		 * copies of one unchanged file is recognised here. */
		if (storable && skip_cached && r->have_id && sw_pipeline_cached(p, &r->id)) {
			r->status = SW_SCAN_SKIPPED;
			storable = false;
		}
		if (storable)
			e = apply_one(p, r, now_ms, why, n, &hook_failed);
	}
	if (!e)
		e = sw_store_commit(p->st);
	if (e) {
		if (!hook_failed || !why[0])
			snprintf(why, n, "store: %s", sw_store_errmsg(p->st));
		(void)sw_store_rollback(p->st);
		for (size_t i = 0; i < nres; i++)
			unassign(res[i]);
	}
	return e;
}

static sw_err make_spec(const sw_rules *rules, size_t i, int64_t now_ms, sw_summary_spec *spec)
{
	const sw_kql *q = sw_rule_kql(rules, i);
	memset(spec, 0, sizeof(*spec));
	if (!sw_kql_has_summarize(q))
		return SW_ERR_UNSUPPORTED;
	spec->rule_id = sw_rule_id(rules, i);
	if (!sw_kql_window(q, now_ms, &spec->from_ms, &spec->to_ms)) {
		spec->from_ms = INT64_MIN;
		spec->to_ms = INT64_MAX;
	}
	spec->n_aggs = sw_kql_agg_count(q);
	for (size_t a = 0; a < spec->n_aggs && a < SW_KQL_MAX_AGGS; a++) {
		sw_kql_agg g;
		sw_kql_agg_get(q, a, &g);
		spec->aggs[a].name = g.name;
		spec->aggs[a].fn = g.fn;
		spec->aggs[a].col = g.col;
		spec->aggs[a].set_cap = g.cap;
	}
	spec->n_by = sw_kql_by_count(q);
	for (size_t b = 0; b < spec->n_by && b < SW_KQL_MAX_BY; b++)
		spec->by[b] = sw_kql_by_col(q, b);
	return SW_OK;
}

sw_err sw_rule_summary(sw_store *st, const sw_rules *rules, size_t i, int64_t now_ms, sw_summary_spec *spec,
                       sw_summary_row **rows, size_t *n)
{
	*rows = NULL;
	*n = 0;
	sw_err e = make_spec(rules, i, now_ms, spec);
	if (e)
		return e;
	return sw_store_summary(st, spec, rows, n);
}

static json_t *cell_json(const sw_summary_cell *c)
{
	char buf[40];
	switch (c->type) {
	case SW_V_STRING: return json_string(c->s ? c->s : "");
	case SW_V_BOOL: return json_boolean(c->i);
	case SW_V_LONG: return json_integer((json_int_t)c->i);
	case SW_V_TIME: return json_string(sw_time_iso(c->i, buf, sizeof(buf)));
	case SW_V_ARRAY: {
		json_error_t err;
		json_t *a = c->s ? json_loads(c->s, JSON_DECODE_ANY, &err) : NULL;
		return a ? a : json_array();
	}
	default: return json_null();
	}
}

char *sw_summary_row_json(const sw_rules *rules, size_t i, const sw_summary_spec *spec,
                          const sw_summary_row *row)
{
	json_t *o = json_object();
	json_object_set_new(o, "RuleId", json_string(sw_rule_id(rules, i)));
	json_object_set_new(o, "RuleName", json_string(sw_rule_name(rules, i)));
	for (size_t b = 0; b < spec->n_by; b++)
		json_object_set_new(o, sw_col_name(spec->by[b]), cell_json(&row->by[b]));
	for (size_t a = 0; a < spec->n_aggs; a++)
		json_object_set_new(o, spec->aggs[a].name, cell_json(&row->agg[a]));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

sw_err sw_pipeline_prune(sw_store *st, const sw_rules *rules, int64_t now_ms)
{
	int64_t oldest = INT64_MAX;
	size_t nr = sw_rules_count(rules);
	for (size_t i = 0; i < nr; i++) {
		int64_t from, to;
		if (!sw_kql_window(sw_rule_kql(rules, i), now_ms, &from, &to) || from == INT64_MIN)
			return SW_OK; /* a rule without a lower bound keeps everything */
		if (from < oldest)
			oldest = from;
	}
	return oldest == INT64_MAX ? SW_OK : sw_store_prune(st, oldest);
}
