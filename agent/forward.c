/* signwatch: the forwarder (see forward.h). */
#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "log.h"
#include "output_file.h"
#include "platform.h"
#include "record.h"

#define BACKOFF_BASE_MS 1000
#define RETRY_AFTER_MAX_S 86400
/* batch caps, per type: items, payload bytes (before the transport's
 * framing: logs_ingestion splits what is over 1 MB into several calls) */
#define FILE_BATCH_ITEMS 1000
#define FILE_BATCH_BYTES (4 << 20)
#define HTTP_BATCH_ITEMS 500
#define HTTP_BATCH_BYTES (1 << 20)
#define LI_BATCH_ITEMS 2000
#define LI_BATCH_BYTES (900 * 1000) /* leaves room for the added columns */
#define SYSLOG_BATCH_ITEMS 200
#define SYSLOG_BATCH_BYTES (1 << 20)

typedef struct fout {
	sw_forward *f;
	const sw_config_output *cfg;
	const sw_output_ops *ops;
	sw_output *o;
	uv_timer_t timer; /* next send: linger, gap or backoff */
	uv_timer_t hb;    /* heartbeat */
	int open_handles;
	bool inflight, backing_off;
	int failures;
	size_t split;           /* isolating a permanently refused item: batch size */
	int64_t last_accept_ms; /* when the collector last accepted a batch */
	size_t max_items, max_bytes;
	sw_outbox_item *batch;
	sw_item *items;
	size_t nbatch;
	char last_why[256];
	uint64_t delivered;
} fout;

struct sw_forward {
	uv_loop_t *loop;
	sw_store *st;
	const sw_config *cfg;
	const sw_rules *rules;
	char device_id[41];
	fout *outs;
	size_t n;
	bool stopped, free_when_closed;
	int open_handles; /* over every output: timers and transports' done */
	int64_t test_heartbeat_ms;
};

static void pump(fout *fo);

/* ---- random ---------------------------------------------------------------- */

static uint64_t rand64(void)
{
	uint64_t v = 0;
	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint64_t)sw_plat_now_ms() * 6364136223846793005ull + 1442695040888963407ull;
	return v;
}

/* Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * uniform in [0, min(cap, base * 2^(failures-1))], at least 50 ms. */
static uint64_t backoff_ms(const fout *fo)
{
	uint64_t cap = (uint64_t)(fo->cfg->max_backoff_s > 0 ? fo->cfg->max_backoff_s : 300) * 1000;
	int k = fo->failures > 0 ? fo->failures - 1 : 0;
	uint64_t exp = k >= 30 ? cap : (uint64_t)BACKOFF_BASE_MS << k;
	if (exp > cap)
		exp = cap;
	uint64_t d = rand64() % (exp + 1);
	return d < 50 ? 50 : d;
}

/* ---- handles ----------------------------------------------------------------- */

static void forward_maybe_free(sw_forward *f)
{
	if (!f->free_when_closed || f->open_handles)
		return;
	free(f->outs);
	free(f);
}

static void on_closed(uv_handle_t *h)
{
	fout *fo = h->data;
	fo->f->open_handles--;
	forward_maybe_free(fo->f);
}

static void free_batch(fout *fo)
{
	sw_outbox_items_free(fo->batch, fo->nbatch);
	free(fo->items);
	fo->batch = NULL;
	fo->items = NULL;
	fo->nbatch = 0;
}

/* ---- sending --------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	fout *fo = t->data;
	fo->backing_off = false;
	pump(fo);
}

static void arm_timer(fout *fo, uint64_t ms)
{
	if (fo->f->stopped)
		return;
	uv_timer_start(&fo->timer, on_timer, ms, 0);
}

/* Two failure reasons are the same when they differ only in numbers
 * (libcurl says "after 21 ms"). */
static bool same_reason(const char *a, const char *b)
{
	for (;;) {
		bool da = *a >= '0' && *a <= '9', db = *b >= '0' && *b <= '9';
		if (da && db) {
			while (*a >= '0' && *a <= '9')
				a++;
			while (*b >= '0' && *b <= '9')
				b++;
			continue;
		}
		if (*a != *b)
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

static void on_sent(void *ud, sw_err e, int retry_after_s, int permanent, const char *why)
{
	fout *fo = ud;
	sw_forward *f = fo->f;
	fo->inflight = false;
	f->open_handles--; /* the send's own reference, see pump */
	if (f->stopped) {
		free_batch(fo);
		forward_maybe_free(f);
		return;
	}
	size_t n = fo->nbatch;
	int64_t last = n ? fo->batch[n - 1].seq : 0;
	if (e == SW_OK) {
		sw_err ae = sw_store_outbox_ack(f->st, fo->cfg->id, last);
		if (ae)
			sw_log(SW_LOG_ERROR,
			       "output %s: cannot mark a batch sent: %s (it will be sent again)", fo->cfg->id,
			       sw_store_errmsg(f->st));
		if (fo->failures)
			sw_log(SW_LOG_INFO, "output %s: delivering again after %d failed attempts",
			       fo->cfg->id, fo->failures);
		fo->failures = 0;
		fo->last_why[0] = 0;
		fo->delivered += n;
		fo->last_accept_ms = sw_plat_now_ms();
		if (fo->split && n <= fo->split)
			fo->split = 0;
		sw_log(SW_LOG_DEBUG, "output %s: %zu items delivered (up to seq %lld)", fo->cfg->id, n,
		       (long long)last);
		free_batch(fo);
		arm_timer(fo, SW_FORWARD_GAP_MS);
		return;
	}
	/* A lone refused item is dropped only when the collector accepted
	 * other batches lately (the last 10 minutes): a collector that refuses
	 * everything (a wrong path, a proxy's 400) is an outage, not bad data,
	 * and a summary is never dropped. */
	bool seen_good = fo->last_accept_ms && sw_plat_now_ms() - fo->last_accept_ms < 10 * 60 * 1000;
	if (permanent && n == 1 && (fo->batch[0].kind == SW_OUTBOX_SUMMARY || !seen_good)) {
		fo->split = 0;
		permanent = 0;
		why = why && *why ? why : "every item refused";
	}
	if (permanent) {
		if (n > 1) {
			/* Some item is refused: halve the batch until it is alone. */
			fo->split = n / 2;
			sw_log(SW_LOG_WARN,
			       "output %s: batch of %zu refused (%s); retrying in smaller batches",
			       fo->cfg->id, n, why);
		} else if (n == 1) {
			sw_log(SW_LOG_ERROR, "output %s: item %s refused permanently (%s); dropped",
			       fo->cfg->id, fo->batch[0].idem_key, why);
			(void)sw_store_outbox_ack(f->st, fo->cfg->id, last);
			fo->split = 0;
		}
		free_batch(fo);
		arm_timer(fo, SW_FORWARD_GAP_MS);
		return;
	}
	fo->failures++;
	uint64_t delay;
	if (retry_after_s > 0)
		delay = (uint64_t)(retry_after_s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after_s) *
		        1000;
	else
		delay = backoff_ms(fo);
	/* One line per outage and per new reason, not per attempt. */
	if (fo->failures == 1 || !same_reason(fo->last_why, why ? why : ""))
		sw_log(SW_LOG_WARN, "output %s: send failed: %s; %zu items kept, retrying in %.1f s%s",
		       fo->cfg->id, why && *why ? why : sw_err_str(e), n, (double)delay / 1000.0,
		       retry_after_s > 0 ? " (Retry-After)" : "");
	else
		sw_log(SW_LOG_DEBUG, "output %s: attempt %d failed: %s; retrying in %.1f s", fo->cfg->id,
		       fo->failures, why ? why : "", (double)delay / 1000.0);
	snprintf(fo->last_why, sizeof(fo->last_why), "%s", why ? why : "");
	free_batch(fo);
	fo->backing_off = true;
	arm_timer(fo, delay);
}

static void pump(fout *fo)
{
	sw_forward *f = fo->f;
	if (f->stopped || fo->inflight || fo->backing_off || !fo->o)
		return;
	size_t max_items = fo->split ? fo->split : fo->max_items;
	sw_outbox_item *b = NULL;
	size_t n = 0;
	if (sw_store_outbox_peek(f->st, fo->cfg->id, max_items, fo->max_bytes, &b, &n) != SW_OK) {
		sw_log(SW_LOG_ERROR, "output %s: cannot read the outbox: %s", fo->cfg->id,
		       sw_store_errmsg(f->st));
		fo->backing_off = true;
		arm_timer(fo, 5000);
		return;
	}
	if (!n)
		return; /* idle until kicked */
	sw_item *items = calloc(n, sizeof(*items));
	if (!items) {
		sw_outbox_items_free(b, n);
		fo->backing_off = true;
		arm_timer(fo, 1000);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		items[i].kind = b[i].kind == SW_OUTBOX_SUMMARY ? SW_ITEM_SUMMARY : SW_ITEM_RECORD;
		items[i].json = b[i].payload;
		items[i].idem_key = b[i].idem_key;
	}
	fo->batch = b;
	fo->items = items;
	fo->nbatch = n;
	fo->inflight = true;
	f->open_handles++; /* until on_sent: the forwarder must outlive it */
	fo->ops->send(fo->o, items, n, on_sent, fo);
}

void sw_forward_kick(sw_forward *f)
{
	if (!f || f->stopped)
		return;
	for (size_t i = 0; i < f->n; i++) {
		fout *fo = &f->outs[i];
		if (!fo->inflight && !fo->backing_off && !uv_is_active((uv_handle_t *)&fo->timer))
			arm_timer(fo, SW_FORWARD_LINGER_MS);
	}
}

/* ---- what goes in the outbox ------------------------------------------------------- */

static bool wants_record(const sw_config_output *o, bool matched)
{
	return o->send_records == SW_SEND_ALL || (o->send_records == SW_SEND_MATCHING && matched);
}

/* A summary item: the row plus SummaryVersion, ReportedAt, Heartbeat and
 * the output's DroppedRecords (cumulative). */
static char *summary_payload(const char *row_json, int64_t version, int64_t now_ms, bool heartbeat,
                             int64_t dropped)
{
	json_error_t jerr;
	json_t *o = json_loads(row_json, 0, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	char t[40];
	json_object_set_new(o, "SummaryVersion", json_integer((json_int_t)version));
	json_object_set_new(o, "ReportedAt", json_string(sw_time_iso(now_ms, t, sizeof(t))));
	json_object_set_new(o, "Heartbeat", json_boolean(heartbeat));
	json_object_set_new(o, "DroppedRecords", json_integer((json_int_t)dropped));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

static sw_err put_summary(sw_forward *f, const sw_config_output *oc, const char *key, const char *row,
                          int64_t version, int64_t now_ms, bool heartbeat)
{
	sw_outbox_stats os;
	sw_err e = sw_store_outbox_stats_get(f->st, oc->id, &os);
	if (e)
		return e;
	char *pl = summary_payload(row, version, now_ms, heartbeat, os.dropped);
	if (!pl)
		return SW_ERR_NOMEM;
	/* A summary row is a complete state: an unsent older version of the
	 * same (rule, device) is replaced, not queued behind it. */
	size_t pl_len = strlen(key);
	char *prefix = strdup(key);
	if (prefix) {
		while (pl_len && prefix[pl_len - 1] != ':')
			pl_len--;
		prefix[pl_len] = 0;
		if (pl_len)
			e = sw_store_outbox_supersede(f->st, oc->id, prefix, NULL);
		free(prefix);
	}
	if (!e)
		e = sw_store_outbox_put(f->st, oc->id, SW_OUTBOX_SUMMARY, key, pl, now_ms);
	free(pl);
	return e;
}

/* Summaries of the rules in hit[] (all when NULL): every row that changed
 * since the last one sent gets a new version, put for every output that
 * sends summaries; with hb, unchanged rows are put again for that output
 * (a heartbeat). Inside the caller's transaction. */
static sw_err summaries(sw_forward *f, const unsigned char *hit, int64_t now_ms, const sw_config_output *hb)
{
	bool any_out = false;
	for (size_t o = 0; o < f->n; o++)
		any_out |= f->cfg->outputs[o].send_summaries;
	if (!any_out)
		return SW_OK;
	size_t nr = sw_rules_count(f->rules);
	sw_err e = SW_OK;
	for (size_t i = 0; !e && i < nr; i++) {
		if (hit && !hit[i])
			continue;
		sw_summary_spec spec;
		sw_summary_row *rows = NULL;
		size_t n = 0;
		sw_err se = sw_rule_summary(f->st, f->rules, i, now_ms, &spec, &rows, &n);
		if (se == SW_ERR_UNSUPPORTED)
			continue; /* no summarize */
		if (se) {
			e = se;
			break;
		}
		int dev_by = -1;
		for (size_t b = 0; b < spec.n_by; b++)
			if (spec.by[b] == SW_COL_DEVICE_ID)
				dev_by = (int)b;
		for (size_t r = 0; !e && r < n; r++) {
			char *js = sw_summary_row_json(f->rules, i, &spec, &rows[r]);
			if (!js) {
				e = SW_ERR_NOMEM;
				break;
			}
			const char *dev =
			        dev_by >= 0 && rows[r].by[dev_by].s ? rows[r].by[dev_by].s : f->device_id;
			const char *rid = sw_rule_id(f->rules, i);
			int64_t version = 0;
			char *old = NULL;
			e = sw_store_summary_state_get(f->st, rid, dev, &version, &old);
			bool changed = !e && (!old || strcmp(old, js) != 0);
			if (!e && (changed || hb)) {
				if (changed) {
					version++;
					e = sw_store_summary_state_put(f->st, rid, dev, version, js);
				}
				size_t kl = strlen(rid) + strlen(dev) + 32;
				char *key = malloc(kl);
				if (!key)
					e = SW_ERR_NOMEM;
				else
					snprintf(key, kl, "%s:%s:%lld", rid, dev, (long long)version);
				for (size_t o = 0; !e && o < f->n; o++) {
					const sw_config_output *oc = &f->cfg->outputs[o];
					if (!oc->send_summaries)
						continue;
					if (changed || oc == hb)
						e = put_summary(f, oc, key, js, version, now_ms, !changed);
				}
				free(key);
			}
			free(old);
			free(js);
		}
		sw_summary_free(rows, n);
	}
	return e;
}

static sw_err enforce_caps(sw_forward *f)
{
	for (size_t o = 0; o < f->n; o++) {
		const sw_config_output *oc = &f->cfg->outputs[o];
		int64_t dropped = 0;
		sw_err e = sw_store_outbox_enforce_cap(f->st, oc->id, (int64_t)oc->outbox_mb << 20, &dropped);
		if (e)
			return e;
		if (dropped) {
			sw_outbox_stats os;
			(void)sw_store_outbox_stats_get(f->st, oc->id, &os);
			sw_log(SW_LOG_WARN,
			       "output %s: outbox over its cap of %d MB: dropped the %lld oldest records "
			       "(%lld "
			       "dropped in all; reported as DroppedRecords in the next summaries)",
			       oc->id, oc->outbox_mb, (long long)dropped, (long long)os.dropped);
		}
	}
	return SW_OK;
}

sw_err sw_forward_pipeline_hook(void *ud, sw_store *st, const sw_scan_result *res, int64_t now_ms, char *why,
                                size_t wn)
{
	sw_forward *f = ud;
	(void)st;
	sw_err e = SW_OK;
	for (size_t k = 0; !e && k < res->n; k++) {
		const sw_record *r = &res->recs[k];
		bool matched = false;
		for (size_t i = 0; res->matched && i < res->nrules; i++)
			matched |= res->matched[k * res->nrules + i] != 0;
		char *js = NULL;
		char key[80];
		snprintf(key, sizeof(key), "%s:%lld", r->device_id, (long long)r->report_id);
		for (size_t o = 0; !e && o < f->n; o++) {
			const sw_config_output *oc = &f->cfg->outputs[o];
			if (!wants_record(oc, matched))
				continue;
			if (!js && !(js = sw_record_json(r))) {
				e = SW_ERR_NOMEM;
				break;
			}
			e = sw_store_outbox_put(f->st, oc->id, SW_OUTBOX_RECORD, key, js, now_ms);
		}
		free(js);
	}
	/* The cap first, so the summaries below carry this scan's drops. */
	if (!e)
		e = enforce_caps(f);
	if (!e && res->matched && res->nrules) {
		unsigned char *hit = calloc(res->nrules, 1);
		bool any = false;
		if (!hit)
			e = SW_ERR_NOMEM;
		for (size_t i = 0; hit && i < res->nrules; i++)
			for (size_t k = 0; k < res->n; k++)
				if (res->matched[k * res->nrules + i]) {
					hit[i] = 1;
					any = true;
				}
		if (!e && any)
			e = summaries(f, hit, now_ms, NULL);
		free(hit);
	}
	if (e)
		snprintf(why, wn, "outbox: %s", e == SW_ERR_NOMEM ? "out of memory" : sw_store_errmsg(f->st));
	else
		sw_forward_kick(f);
	return e;
}

/* ---- heartbeat ------------------------------------------------------------------------ */

static void on_heartbeat(uv_timer_t *t)
{
	fout *fo = t->data;
	sw_forward *f = fo->f;
	if (f->stopped)
		return;
	int64_t now = sw_plat_now_ms();
	sw_err e = sw_store_begin(f->st);
	if (!e)
		e = enforce_caps(f);
	if (!e)
		e = summaries(f, NULL, now, fo->cfg);
	if (!e)
		e = sw_store_commit(f->st);
	if (e) {
		sw_log(SW_LOG_WARN, "output %s: heartbeat: %s", fo->cfg->id, sw_store_errmsg(f->st));
		(void)sw_store_rollback(f->st);
		return;
	}
	sw_log(SW_LOG_DEBUG, "output %s: heartbeat: summaries queued", fo->cfg->id);
	sw_forward_kick(f);
}

/* ---- the file output ------------------------------------------------------------------ */

struct file_output {
	sw_outfile *f;
	char *id;
	uv_timer_t t;
	sw_output_done_fn done;
	void *ud;
	sw_err e;
	char why[200];
};

static sw_err file_create(uv_loop_t *loop, const sw_config_output *cfg, sw_output **out, char *why, size_t n)
{
	struct file_output *o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(why, n, "out of memory");
		return SW_ERR_NOMEM;
	}
	sw_err e = sw_outfile_open(cfg->path, (size_t)cfg->max_mb << 20, cfg->keep, &o->f, why, n);
	if (e) {
		free(o);
		return e;
	}
	o->id = strdup(cfg->id ? cfg->id : cfg->path);
	uv_timer_init(loop, &o->t);
	o->t.data = o;
	*out = (sw_output *)o;
	return SW_OK;
}

static void file_done_cb(uv_timer_t *t)
{
	struct file_output *o = t->data;
	sw_output_done_fn done = o->done;
	o->done = NULL;
	if (done)
		done(o->ud, o->e, 0, 0, o->why);
}

static void file_send(sw_output *so, const sw_item *items, size_t n, sw_output_done_fn done, void *ud)
{
	struct file_output *o = (struct file_output *)so;
	o->done = done;
	o->ud = ud;
	o->e = SW_OK;
	o->why[0] = 0;
	for (size_t i = 0; i < n && !o->e; i++)
		if ((o->e = sw_outfile_write(o->f, items[i].json)) != SW_OK)
			snprintf(o->why, sizeof(o->why), "cannot write the file");
	uv_timer_start(&o->t, file_done_cb, 0, 0);
}

static void file_closed(uv_handle_t *h)
{
	struct file_output *o = h->data;
	free(o->id);
	free(o);
}

static void file_destroy(sw_output *so)
{
	struct file_output *o = (struct file_output *)so;
	if (!o)
		return;
	if (o->done) {
		uv_timer_stop(&o->t);
		sw_output_done_fn done = o->done;
		o->done = NULL;
		done(o->ud, SW_ERR_NET, 0, 0, "cancelled");
	}
	sw_outfile_close(o->f);
	o->f = NULL;
	uv_close((uv_handle_t *)&o->t, file_closed);
}

const sw_output_ops sw_output_file = { "file", file_create, file_send, file_destroy };

/* ---- life cycle ---------------------------------------------------------------------- */

static const sw_output_ops *ops_of(sw_out_type t)
{
	switch (t) {
	case SW_OUT_FILE: return &sw_output_file;
	case SW_OUT_HTTPS_JSON: return &sw_output_https_json;
	case SW_OUT_LOGS_INGESTION: return &sw_output_logs_ingestion;
	case SW_OUT_SYSLOG_TLS: return &sw_output_syslog_tls;
	}
	return NULL;
}

sw_err sw_forward_new(uv_loop_t *loop, sw_store *st, const sw_config *cfg, const sw_rules *rules,
                      const char *device_id, sw_forward **out, char *why, size_t wn)
{
	*out = NULL;
	sw_forward *f = calloc(1, sizeof(*f));
	if (!f || !(f->outs = calloc(cfg->n_outputs ? cfg->n_outputs : 1, sizeof(fout)))) {
		free(f);
		snprintf(why, wn, "out of memory");
		return SW_ERR_NOMEM;
	}
	f->loop = loop;
	f->st = st;
	f->cfg = cfg;
	f->rules = rules;
	snprintf(f->device_id, sizeof(f->device_id), "%s", device_id ? device_id : "");
	const char *hb = getenv("SIGNWATCH_TEST_HEARTBEAT_MS"); /* test-only, like the watch pause */
	if (hb && atoll(hb) > 0)
		f->test_heartbeat_ms = atoll(hb);
	/* Outboxes of outputs that are gone from the configuration. */
	const char **ids = calloc(cfg->n_outputs ? cfg->n_outputs : 1, sizeof(char *));
	int64_t removed = 0;
	for (size_t i = 0; ids && i < cfg->n_outputs; i++)
		ids[i] = cfg->outputs[i].id;
	if (ids && sw_store_outbox_retain(st, ids, cfg->n_outputs, &removed) == SW_OK && removed)
		sw_log(SW_LOG_WARN, "outbox: %lld items of outputs no longer configured deleted",
		       (long long)removed);
	free(ids);
	sw_err e = SW_OK;
	for (size_t i = 0; i < cfg->n_outputs; i++) {
		fout *fo = &f->outs[i];
		fo->f = f;
		fo->cfg = &cfg->outputs[i];
		fo->ops = ops_of(fo->cfg->type);
		switch (fo->cfg->type) {
		case SW_OUT_FILE: fo->max_items = FILE_BATCH_ITEMS, fo->max_bytes = FILE_BATCH_BYTES; break;
		case SW_OUT_LOGS_INGESTION:
			fo->max_items = LI_BATCH_ITEMS, fo->max_bytes = LI_BATCH_BYTES;
			break;
		case SW_OUT_SYSLOG_TLS:
			fo->max_items = SYSLOG_BATCH_ITEMS, fo->max_bytes = SYSLOG_BATCH_BYTES;
			break;
		default: fo->max_items = HTTP_BATCH_ITEMS, fo->max_bytes = HTTP_BATCH_BYTES; break;
		}
		uv_timer_init(loop, &fo->timer);
		uv_timer_init(loop, &fo->hb);
		fo->timer.data = fo->hb.data = fo;
		f->n = i + 1;
		char w[512] = "";
		if (!fo->ops || (e = fo->ops->create(loop, fo->cfg, &fo->o, w, sizeof(w))) != SW_OK) {
			snprintf(why, wn, "output %s: %s", fo->cfg->id,
			         w[0] ? w : "this type is not built in");
			if (!e)
				e = SW_ERR_UNSUPPORTED;
			break;
		}
		uint64_t period = f->test_heartbeat_ms ? (uint64_t)f->test_heartbeat_ms
		                                       : (uint64_t)fo->cfg->heartbeat_minutes * 60000;
		if (fo->cfg->send_summaries && fo->cfg->heartbeat_minutes > 0 && period)
			uv_timer_start(&fo->hb, on_heartbeat, period, period);
		sw_outbox_stats os;
		if (sw_store_outbox_stats_get(st, fo->cfg->id, &os) == SW_OK && os.items)
			sw_log(SW_LOG_INFO,
			       "output %s: %lld items (%lld kB) waiting from before; sending them first",
			       fo->cfg->id, (long long)os.items, (long long)(os.bytes >> 10));
	}
	if (e) {
		sw_forward_stop(f);
		sw_forward_free(f);
		return e;
	}
	*out = f;
	sw_forward_kick(f);
	return SW_OK;
}

void sw_forward_stop(sw_forward *f)
{
	if (!f || f->stopped)
		return;
	f->stopped = true;
	for (size_t i = 0; i < f->n; i++) {
		fout *fo = &f->outs[i];
		uv_timer_stop(&fo->timer);
		uv_timer_stop(&fo->hb);
		f->open_handles += 2;
		uv_close((uv_handle_t *)&fo->timer, on_closed);
		uv_close((uv_handle_t *)&fo->hb, on_closed);
		if (fo->o) {
			sw_output *o = fo->o;
			fo->o = NULL;
			fo->ops->destroy(o); /* a send in flight ends in on_sent(SW_ERR_NET) */
		}
		if (!fo->inflight)
			free_batch(fo);
	}
}

void sw_forward_free(sw_forward *f)
{
	if (!f)
		return;
	sw_forward_stop(f);
	f->free_when_closed = true;
	forward_maybe_free(f);
}
