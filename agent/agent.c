#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "forward.h" /* forwarding (issue 5) */
#include "pipeline.h"
#include "rules_load.h"
#include "watch.h"
#include "yara_scan.h"

#define QUEUE_MAX 4096      /* files waiting for a worker; past it, folders are rescanned */
#define SETTLE_CLOSED_MS 50 /* a file closed after writing is complete once quiet this long */
#define CPU_WINDOW_MS 1000  /* CPU budget accounting period */
#define DONE_MAX 256        /* finished scans stored per transaction at most */
#define FLUSH_MS 20         /* and at least this often */

typedef struct pending {
	char *path;
	bool closed;        /* IN_CLOSE_WRITE seen since the last change */
	int64_t last_event; /* ms */
	uint64_t size;
	int64_t mtime_ns;
	bool have_stat;
	struct pending *next;
} pending;

typedef struct job job;
typedef struct walk walk;

typedef struct agent {
	uv_loop_t *loop;
	char *config_path;
	sw_config *cfg;
	sw_rules *rules;
	sw_trust *trust;
	sw_yara *yara;
	sw_store *st;
	sw_pipeline *pipe;
	sw_forward *fwd; /* forwarding (issue 5): the outbox and the outputs */
	sw_watch *watch;
	sw_scan_opts opts;
	char device_name[256];

	/* settle: pending files, a list (bursts are short-lived) */
	pending *pend;
	size_t npend;
	uv_timer_t settle_timer;

	/* the scan queue: paths waiting for a worker, de-duplicated */
	char **queue;
	size_t qhead, qlen;
	size_t inflight;
	job *done[DONE_MAX]; /* finished scans waiting for their transaction */
	size_t ndone;
	uv_timer_t flush_timer;
	char **rescan_dirs; /* folders to walk again once the queue drains */
	size_t nrescan;
	bool walking;
	uv_timer_t reconcile_timer;

	/* per-thread certificate memos and catalog database handles for the
	 * pool: a job takes one of each and gives them back when done */
	uv_mutex_t cache_lock;
	sw_cache **caches;
	sw_plat_catdb **catdbs; /* beside caches[i]; NULL where none (POSIX) */
	size_t ncaches;

	/* CPU budget */
	uv_timer_t cpu_timer;
	int64_t cpu_mark_us, wall_mark_ms;
	bool paused;

	uv_signal_t sig_term, sig_int, sig_hup;
	uv_async_t svc_stop; /* service (issue 6): the service manager asked us to stop or reload */
	bool stopping, reload_pending;
	int status;
	size_t overflows_logged;
	uint64_t scanned, recorded, matched;
} agent;

struct job {
	uv_work_t req;
	agent *a;
	sw_scan_result res;
	sw_cache *cache;
	sw_plat_catdb *catdb;
	int64_t now;
};

static void dispatch(agent *a);
static void start_walk(agent *a, const char *dir);
static void reload(agent *a);

/* ---- helpers ------------------------------------------------------------ */

static bool queued(agent *a, const char *path)
{
	for (size_t i = 0; i < a->qlen; i++)
		if (!strcmp(a->queue[(a->qhead + i) % QUEUE_MAX], path))
			return true;
	return false;
}

static void add_rescan(agent *a, const char *dir)
{
	for (size_t i = 0; i < a->nrescan; i++)
		if (!strcmp(a->rescan_dirs[i], dir))
			return;
	char **v = realloc(a->rescan_dirs, (a->nrescan + 1) * sizeof(char *));
	if (!v)
		return;
	a->rescan_dirs = v;
	a->rescan_dirs[a->nrescan] = strdup(dir);
	if (a->rescan_dirs[a->nrescan])
		a->nrescan++;
}

/* Queue a file for scanning. When the queue is full it does not grow:
 * the file's folder is walked again once there is room. */
static void enqueue(agent *a, const char *path)
{
	if (a->stopping || queued(a, path))
		return;
	if (a->qlen == QUEUE_MAX) {
		char *dir = sw_plat_dirname(path);
		if (dir)
			add_rescan(a, dir);
		free(dir);
		return;
	}
	char *p = strdup(path);
	if (!p)
		return;
	a->queue[(a->qhead + a->qlen) % QUEUE_MAX] = p;
	a->qlen++;
	dispatch(a);
}

/* path is base itself, or base followed by one of the suffixes. */
static bool is_or_has_suffix(const char *path, const char *base, const char *const *sfx, bool numbered)
{
	size_t n = strlen(base);
	if (strncmp(path, base, n) != 0)
		return false;
	const char *rest = path + n;
	if (!*rest)
		return true;
	for (size_t i = 0; sfx && sfx[i]; i++)
		if (!strcmp(rest, sfx[i]))
			return true;
	if (numbered && rest[0] == '.' && rest[1]) { /* rotations: base.1, base.2, ... */
		for (rest++; *rest; rest++)
			if (*rest < '0' || *rest > '9')
				return false;
		return true;
	}
	return false;
}

/* The agent's own store and outputs, by exact name: a look-alike such as
 * records.jsonl.setup.exe is scanned like anything else. */
static bool own_file(const agent *a, const char *path)
{
	static const char *const store_sfx[] = { "-wal", "-shm", "-journal", NULL };
	if (is_or_has_suffix(path, a->cfg->store, store_sfx, false))
		return true;
	for (size_t i = 0; i < a->cfg->n_outputs; i++) {
		const char *p = a->cfg->outputs[i].path;
		if (p && is_or_has_suffix(path, p, NULL, true))
			return true;
	}
	return false;
}

static bool excluded(void *ud, const char *path, bool is_dir)
{
	agent *a = ud;
	(void)is_dir;
	return own_file(a, path) || sw_config_excluded(a->cfg, path);
}

/* ---- worker pool --------------------------------------------------------- */

static void take_cache(agent *a, job *j)
{
	sw_cache *c = NULL;
	sw_plat_catdb *db = NULL;
	bool got = false;
	uv_mutex_lock(&a->cache_lock);
	if (a->ncaches) {
		a->ncaches--;
		c = a->caches[a->ncaches];
		db = a->catdbs[a->ncaches];
		got = true;
	}
	uv_mutex_unlock(&a->cache_lock);
	if (!got)
		c = sw_cache_new();
	j->cache = c;
	j->catdb = db;
}

static void give_cache(agent *a, sw_cache *c, sw_plat_catdb *db)
{
	uv_mutex_lock(&a->cache_lock);
	sw_cache **v = realloc(a->caches, (a->ncaches + 1) * sizeof(*v));
	if (v)
		a->caches = v;
	sw_plat_catdb **d = v ? realloc(a->catdbs, (a->ncaches + 1) * sizeof(*d)) : NULL;
	if (d) {
		a->catdbs = d;
		a->caches[a->ncaches] = c;
		a->catdbs[a->ncaches++] = db;
		c = NULL;
		db = NULL;
	}
	uv_mutex_unlock(&a->cache_lock);
	sw_cache_free(c);
	sw_plat_catdb_close(db);
}

/* Idle catalog database handles are closed (reload: the next lookups see
 * catalogs added since); the memos stay. Only with no scan in flight. */
static void close_catdbs(agent *a)
{
	uv_mutex_lock(&a->cache_lock);
	for (size_t i = 0; i < a->ncaches; i++) {
		sw_plat_catdb_close(a->catdbs[i]);
		a->catdbs[i] = NULL;
	}
	uv_mutex_unlock(&a->cache_lock);
}

static void work_cb(uv_work_t *req)
{
	job *j = req->data;
	take_cache(j->a, j);
	if (!j->catdb && j->a->opts.catalogs)    /* a new worker slot, or closed by a reload */
		j->catdb = sw_plat_catdb_open(); /* its contexts acquired at the first lookup */
	sw_scan_opts o = j->a->opts;             /* read-only here */
	o.cache = j->cache;
	o.catdb = j->catdb;
	char *path = j->res.path;
	j->res.path = NULL;
	sw_scan_file(path, &o, j->now, &j->res);
	free(path);
	give_cache(j->a, j->cache, j->catdb);
}

static void emit(agent *a, const sw_scan_result *res)
{
	for (size_t k = 0; k < res->n; k++) {
		bool any = false;
		for (size_t i = 0; i < res->nrules; i++)
			any |= res->matched && res->matched[k * res->nrules + i];
		if (any)
			a->matched++;
		/* forwarding (issue 5): records reach every output through the
		 * outbox, written by sw_pipeline_apply's hook (forward.c). */
		if (any)
			sw_log(SW_LOG_INFO, "rule match: %s/%s signed by %s (ReportId %lld)",
			       res->recs[k].folder_path, res->recs[k].file_name,
			       res->recs[k].signer ? res->recs[k].signer : "",
			       (long long)res->recs[k].report_id);
	}
}

static void log_summaries(agent *a, const sw_scan_result *res)
{
	for (size_t i = 0; i < res->nrules; i++) {
		bool hit = false;
		for (size_t k = 0; k < res->n; k++)
			hit |= res->matched[k * res->nrules + i] != 0;
		if (!hit)
			continue;
		sw_summary_spec spec;
		sw_summary_row *rows = NULL;
		size_t n = 0;
		if (sw_rule_summary(a->st, a->rules, i, sw_plat_now_ms(), &spec, &rows, &n) != SW_OK)
			continue;
		for (size_t r = 0; r < n; r++) {
			char *js = sw_summary_row_json(a->rules, i, &spec, &rows[r]);
			if (js) /* forwarding (issue 5): sent through the outbox */
				sw_log(SW_LOG_INFO, "summary changed: %s", js);
			free(js);
		}
		sw_summary_free(rows, n);
	}
}

/* Store what the workers finished, many results per transaction: a burst
 * of small files costs one fsync per batch, not one per file. */
static void flush_done(agent *a)
{
	if (!a->ndone)
		return;
	sw_scan_result *res[DONE_MAX];
	for (size_t i = 0; i < a->ndone; i++)
		res[i] = &a->done[i]->res;
	char why[512];
	int64_t now = sw_plat_now_ms();
	bool ok = sw_pipeline_apply_batch(a->pipe, res, a->ndone, now, true, why, sizeof(why)) == SW_OK;
	if (!ok) {
		/* One bad result must not cost the others: store them one by one. */
		sw_log(SW_LOG_WARN, "batch of %zu not stored (%s); storing one by one", a->ndone, why);
		for (size_t i = 0; i < a->ndone; i++)
			if (sw_pipeline_apply_batch(a->pipe, &res[i], 1, now, true, why, sizeof(why)) !=
			    SW_OK) {
				sw_log(SW_LOG_ERROR, "%s: %s", res[i]->path ? res[i]->path : "?", why);
				res[i]->status = SW_SCAN_FAILED;
			}
	}
	for (size_t i = 0; i < a->ndone; i++) {
		sw_scan_result *r = res[i];
		if (r->status == SW_SCAN_RECORDS) {
			a->recorded += r->n;
			emit(a, r);
			if (r->matched)
				log_summaries(a, r);
		}
		sw_scan_result_free(r);
		free(a->done[i]);
	}
	a->ndone = 0;
	if (a->reload_pending && !a->inflight && !a->stopping) {
		a->reload_pending = false;
		reload(a);
	}
	dispatch(a);
}

static void flush_cb(uv_timer_t *t) { flush_done(t->data); }

static void after_work_cb(uv_work_t *req, int status)
{
	job *j = req->data;
	agent *a = j->a;
	(void)status;
	a->inflight--;
	a->scanned++;
	if (j->res.status == SW_SCAN_FAILED)
		sw_log(SW_LOG_DEBUG, "%s: %s", j->res.path ? j->res.path : "?", j->res.why);
	a->done[a->ndone++] = j;
	/* Keep the workers busy while results wait for their batch. */
	dispatch(a);
	if (a->ndone == DONE_MAX || a->stopping || (!a->inflight && !a->qlen))
		flush_done(a);
	else if (!uv_is_active((uv_handle_t *)&a->flush_timer))
		uv_timer_start(&a->flush_timer, flush_cb, FLUSH_MS, 0);
}

/* Start as many scans as there are threads, unless paused or stopping;
 * once everything is drained, walk what overflowed. */
static void cpu_tick(uv_timer_t *t);

static void dispatch(agent *a)
{
	if (!a->stopping && (a->qlen || a->inflight) && !uv_is_active((uv_handle_t *)&a->cpu_timer)) {
		a->cpu_mark_us = sw_plat_cpu_us();
		a->wall_mark_ms = sw_plat_now_ms();
		uv_timer_start(&a->cpu_timer, cpu_tick, CPU_WINDOW_MS, CPU_WINDOW_MS);
	}
	/* While a reload waits for the scans in flight, no new one starts: the
	 * queue is kept and continues under the new configuration. */
	while (!a->stopping && !a->paused && !a->reload_pending && a->qlen &&
	       a->inflight < (size_t)a->cfg->threads) {
		char *path = a->queue[a->qhead];
		a->qhead = (a->qhead + 1) % QUEUE_MAX;
		a->qlen--;
		job *j = calloc(1, sizeof(*j));
		if (!j) {
			free(path);
			continue;
		}
		j->a = a;
		j->req.data = j;
		j->res.path = path;
		j->now = sw_plat_now_ms();
		if (uv_queue_work(a->loop, &j->req, work_cb, after_work_cb) != 0) {
			free(path);
			free(j);
			continue;
		}
		a->inflight++;
	}
	if (!a->stopping && !a->qlen && !a->inflight && !a->walking && a->nrescan) {
		char *dir = a->rescan_dirs[--a->nrescan];
		start_walk(a, dir);
		free(dir);
	}
}

/* ---- walks (baseline, reconcile, rescans) -------------------------------- */

struct walk {
	uv_work_t req;
	agent *a;
	char *root;
	bool cross_fs;
	/* collected on the pool thread, filtered against the cache on the loop */
	char **paths;
	sw_file_id *ids;
	size_t n, cap;
	size_t errors;
};

static int walk_visit(void *ud, const char *path, const sw_file_id *id)
{
	walk *w = ud;
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 1024;
		char **np = realloc(w->paths, nc * sizeof(char *));
		if (!np)
			return 1;
		w->paths = np;
		sw_file_id *ni = realloc(w->ids, nc * sizeof(sw_file_id));
		if (!ni)
			return 1;
		w->ids = ni;
		w->cap = nc;
	}
	if (!(w->paths[w->n] = strdup(path)))
		return 1;
	w->ids[w->n++] = *id;
	return 0;
}

static int walk_error(void *ud, const char *path, const char *why)
{
	walk *w = ud;
	(void)path;
	(void)why;
	w->errors++;
	return 0;
}

static void walk_work(uv_work_t *req)
{
	walk *w = req->data;
	(void)sw_plat_walk(w->root, w->cross_fs, walk_visit, walk_error, w);
}

static void walk_done(uv_work_t *req, int status)
{
	walk *w = req->data;
	agent *a = w->a;
	(void)status;
	a->walking = false;
	size_t fresh = 0;
	uint64_t max = (uint64_t)a->cfg->max_file_mb << 20;
	for (size_t i = 0; i < w->n; i++) {
		const char *p = w->paths[i];
		if (!a->stopping && !excluded(a, p, false) && w->ids[i].size <= max && w->ids[i].size >= 64 &&
		    !sw_pipeline_cached(a->pipe, &w->ids[i])) {
			enqueue(a, p);
			fresh++;
		}
		free(w->paths[i]);
	}
	sw_log(SW_LOG_DEBUG, "walked %s: %zu files, %zu to scan, %zu unreadable", w->root, w->n, fresh,
	       w->errors);
	free(w->paths);
	free(w->ids);
	free(w->root);
	free(w);
	dispatch(a);
}

static void start_walk(agent *a, const char *dir)
{
	if (a->stopping)
		return;
	if (a->walking) {
		add_rescan(a, dir);
		return;
	}
	walk *w = calloc(1, sizeof(*w));
	if (!w || !(w->root = strdup(dir))) {
		free(w);
		return;
	}
	w->a = a;
	w->req.data = w;
	w->cross_fs = a->cfg->cross_filesystems;
	if (uv_queue_work(a->loop, &w->req, walk_work, walk_done) != 0) {
		free(w->root);
		free(w);
		return;
	}
	a->walking = true;
}

static void walk_all(agent *a, const char *why)
{
	sw_log(SW_LOG_INFO, "scanning every root (%s)", why);
	for (size_t i = 0; i < a->cfg->roots.n; i++)
		add_rescan(a, a->cfg->roots.v[i]);
	dispatch(a);
}

static void reconcile_cb(uv_timer_t *t)
{
	agent *a = t->data;
	if (a->watch && sw_watch_unwatched_count(a->watch))
		(void)sw_watch_retry_unwatched(a->watch);
	/* Matches older than every rule's window can never count again. */
	if (sw_pipeline_prune(a->st, a->rules, sw_plat_now_ms()) != SW_OK)
		sw_log(SW_LOG_WARN, "prune: %s", sw_store_errmsg(a->st));
	walk_all(a, "periodic reconcile");
}

/* ---- settle -------------------------------------------------------------- */

static void settle_tick(uv_timer_t *t);

/* The settle timer runs only while files are pending: an idle agent has
 * no periodic wake-ups but the reconcile timer. */
static void arm_settle(agent *a)
{
	if (a->npend && !uv_is_active((uv_handle_t *)&a->settle_timer)) {
		uint64_t tick = (uint64_t)(a->cfg->settle_ms < 100 ? a->cfg->settle_ms / 2 + 1 : 50);
		uv_timer_start(&a->settle_timer, settle_tick, tick, tick);
	}
}

static void on_file(void *ud, const char *path, bool closed)
{
	agent *a = ud;
	if (a->stopping)
		return;
	int64_t now = sw_plat_now_ms();
	for (pending *p = a->pend; p; p = p->next) {
		if (!strcmp(p->path, path)) {
			p->last_event = now;
			p->closed = closed;
			return;
		}
	}
	pending *p = calloc(1, sizeof(*p));
	if (!p || !(p->path = strdup(path))) {
		free(p);
		return;
	}
	p->closed = closed;
	p->last_event = now;
	p->next = a->pend;
	a->pend = p;
	a->npend++;
	arm_settle(a);
}

/* A file is complete when it was closed after writing and nothing happened
 * to it for a moment, or when its size and mtime stayed the same for the
 * settle window. Only then is it scanned, once. */
static void settle_tick(uv_timer_t *t)
{
	agent *a = t->data;
	int64_t now = sw_plat_now_ms();
	pending **pp = &a->pend;
	while (*pp) {
		pending *p = *pp;
		sw_file_id id;
		bool ready = false, drop = false;
		if (sw_plat_stat_nofollow(p->path, &id) != SW_OK) {
			drop = true; /* gone, or not a regular file */
		} else if (!p->have_stat || id.size != p->size || id.mtime_ns != p->mtime_ns) {
			if (p->have_stat)
				p->last_event = now;
			p->have_stat = true;
			p->size = id.size;
			p->mtime_ns = id.mtime_ns;
			ready = p->closed && now - p->last_event >= SETTLE_CLOSED_MS;
		} else {
			int64_t quiet = now - p->last_event;
			ready = quiet >= (p->closed ? SETTLE_CLOSED_MS : a->cfg->settle_ms);
		}
		if (ready && !excluded(a, p->path, false))
			enqueue(a, p->path);
		if (ready || drop) {
			*pp = p->next;
			free(p->path);
			free(p);
			a->npend--;
		} else {
			pp = &p->next;
		}
	}
	if (!a->npend)
		uv_timer_stop(&a->settle_timer);
}

static void on_rescan(void *ud, const char *dir, const char *why, uint64_t count)
{
	agent *a = ud;
	if (count > 1 || strcmp(why, "new folder") != 0)
		sw_log(SW_LOG_WARN, "rescanning %s: %s (%llu)", dir, why, (unsigned long long)count);
	start_walk(a, dir);
}

/* ---- CPU budget ---------------------------------------------------------- */

/* Like osquery's watchdog, but gentler: when the agent used more than its
 * share of one core over the last window, it stops starting scans until
 * the average is back under budget. Timers run only while there is work. */
static void cpu_tick(uv_timer_t *t)
{
	agent *a = t->data;
	int64_t cpu = sw_plat_cpu_us(), wall = sw_plat_now_ms();
	int64_t dw = wall - a->wall_mark_ms, dc = cpu - a->cpu_mark_us;
	if (dw <= 0)
		return;
	double share = (double)dc / 1000.0 / (double)dw * 100.0;
	bool over = share > a->cfg->cpu_budget_percent;
	if (over != a->paused)
		sw_log(SW_LOG_DEBUG, "cpu %.0f%% of one core: %s scans", share,
		       over ? "pausing" : "resuming");
	a->paused = over;
	a->cpu_mark_us = cpu;
	a->wall_mark_ms = wall;
	if (!a->paused)
		dispatch(a);
	if (!a->qlen && !a->inflight && !a->paused)
		uv_timer_stop(t);
}

/* ---- life cycle ---------------------------------------------------------- */

static sw_err load(agent *a, sw_config **cfg, sw_rules **rules, sw_trust **trust, sw_yara **yara)
{
	char err[8192];
	sw_config_env env = sw_config_env_platform();
	if (sw_config_load_file(a->config_path, &env, cfg, err, sizeof(err)) != SW_OK) {
		sw_print_error(stderr, err);
		return SW_ERR_CONFIG;
	}
	size_t bad = 0;
	*rules = sw_load_config_rules("signwatch run", *cfg, stderr, &bad);
	if (!*rules || bad) {
		sw_rules_free(*rules);
		sw_config_free(*cfg);
		return SW_ERR_RULE;
	}
	if (sw_load_yara(*cfg, yara, stderr) != SW_OK) {
		sw_rules_free(*rules);
		sw_config_free(*cfg);
		return SW_ERR_RULE;
	}
	/* ca_file, else the OS root store (Windows), else none. */
	char why[512];
	if (sw_trust_setup((*cfg)->ca_file, trust, why, sizeof(why)) != SW_OK) {
		fprintf(stderr, "%s: ca_file: %s\n", a->config_path, why);
		sw_yara_free(*yara);
		sw_rules_free(*rules);
		sw_config_free(*cfg);
		return SW_ERR_CONFIG;
	}
	if (why[0])
		sw_log(SW_LOG_WARN, "%s; IsTrusted will be false (set ca_file)", why);
	return SW_OK;
}

/* ---- service stop and reload (issue 6) ---------------------------------
 * The Windows service control handler runs on the service manager's
 * thread: it only records the request and wakes the loop, which then stops
 * as on SIGTERM, or reloads as on SIGHUP (SERVICE_CONTROL_PARAMCHANGE,
 * `signwatch service reload`). A request before the loop exists is kept
 * and honoured as soon as it does. */
static uv_once_t svc_once = UV_ONCE_INIT;
static uv_mutex_t svc_lock;
static uv_async_t *svc_async; /* the running agent's, under svc_lock */
static bool svc_stop_requested, svc_reload_requested;

static void svc_init(void) { uv_mutex_init(&svc_lock); }

static void svc_request(void *ud, sw_service_ctl what)
{
	(void)ud;
	uv_once(&svc_once, svc_init);
	uv_mutex_lock(&svc_lock);
	if (what == SW_SERVICE_RELOAD)
		svc_reload_requested = true;
	else
		svc_stop_requested = true;
	if (svc_async)
		uv_async_send(svc_async);
	uv_mutex_unlock(&svc_lock);
}

static void stop_agent(agent *a, const char *why);
static void svc_stop_cb(uv_async_t *h)
{
	uv_mutex_lock(&svc_lock);
	bool stop = svc_stop_requested, rl = svc_reload_requested;
	svc_reload_requested = false;
	uv_mutex_unlock(&svc_lock);
	if (stop)
		stop_agent(h->data, "service stop");
	else if (rl && !((agent *)h->data)->stopping) {
		sw_log(SW_LOG_INFO, "service parameters changed (reload requested)");
		reload(h->data);
	}
}

static void svc_attach(agent *a)
{
	uv_once(&svc_once, svc_init);
	uv_async_init(a->loop, &a->svc_stop, svc_stop_cb);
	a->svc_stop.data = a;
	uv_mutex_lock(&svc_lock);
	svc_async = &a->svc_stop;
	if (svc_stop_requested || svc_reload_requested)
		uv_async_send(svc_async);
	uv_mutex_unlock(&svc_lock);
}

static void svc_detach(agent *a)
{
	uv_mutex_lock(&svc_lock);
	svc_async = NULL;
	uv_mutex_unlock(&svc_lock);
	uv_close((uv_handle_t *)&a->svc_stop, NULL);
}
/* ---- end service stop and reload (issue 6) ------------------------------ */

static void stop_agent(agent *a, const char *why)
{
	if (a->stopping)
		return;
	a->stopping = true;
	sw_log(SW_LOG_INFO, "stopping (%s): %zu scans in flight finish, the rest is found again at start",
	       why, a->inflight);
	sw_plat_notify("STOPPING=1", NULL);
	if (a->watch)
		sw_watch_stop(a->watch);
	a->watch = NULL;
	sw_forward_stop(a->fwd); /* forwarding (issue 5): unsent items stay in the outbox */
	uv_timer_stop(&a->settle_timer);
	uv_timer_stop(&a->reconcile_timer);
	uv_timer_stop(&a->cpu_timer);
	uv_close((uv_handle_t *)&a->settle_timer, NULL);
	uv_close((uv_handle_t *)&a->reconcile_timer, NULL);
	uv_close((uv_handle_t *)&a->cpu_timer, NULL);
	flush_done(a); /* what finished is stored before the timer goes */
	uv_timer_stop(&a->flush_timer);
	uv_close((uv_handle_t *)&a->flush_timer, NULL);
	uv_close((uv_handle_t *)&a->sig_term, NULL);
	uv_close((uv_handle_t *)&a->sig_int, NULL);
	uv_close((uv_handle_t *)&a->sig_hup, NULL);
	svc_detach(a); /* service (issue 6) */
}

static sw_err start_watch(agent *a)
{
	sw_watch_cbs cbs = { on_file, on_rescan, excluded, a };
	char why[512];
	sw_err e = sw_watch_start(a->loop, (const char *const *)a->cfg->roots.v, a->cfg->roots.n, &cbs,
	                          &a->watch, why, sizeof(why));
	if (e) {
		sw_log(SW_LOG_ERROR, "watching: %s", why);
		return e;
	}
	/* Test-only: stop reading events for a while, so a test can force the
	 * kernel's queue to overflow deterministically. */
	const char *pause = getenv("SIGNWATCH_TEST_WATCH_PAUSE_MS");
	if (pause && atoi(pause) > 0)
		sw_watch_test_pause(a->watch, (unsigned)atoi(pause));
	return SW_OK;
}

static void reload(agent *a)
{
	sw_config *cfg;
	sw_rules *rules;
	sw_trust *trust;
	sw_yara *yara;
	sw_log(SW_LOG_INFO, "reloading %s", a->config_path);
	sw_plat_notify("RELOADING=1", NULL);
	if (load(a, &cfg, &rules, &trust, &yara) != SW_OK) {
		sw_log(SW_LOG_ERROR, "reload failed; keeping the running configuration");
		sw_plat_notify("READY=1", NULL);
		return;
	}
	/* Queued work survives; scans in flight finish with the old trust
	 * store, which is freed only when none is in flight. */
	if (a->inflight) {
		sw_log(SW_LOG_INFO, "reload waits for the scans in flight");
		a->reload_pending = true;
		sw_yara_free(yara);
		sw_trust_free(trust);
		sw_rules_free(rules);
		sw_config_free(cfg);
		return;
	}
	if (a->watch)
		sw_watch_stop(a->watch);
	a->watch = NULL;
	sw_forward_free(a->fwd); /* forwarding (issue 5): restarted below with the new outputs */
	a->fwd = NULL;
	sw_pipeline_free(a->pipe);
	sw_rules_free(a->rules);
	sw_trust_free(a->trust);
	sw_yara_free(a->yara);
	sw_config_free(a->cfg);
	a->cfg = cfg;
	a->rules = rules;
	a->trust = trust;
	a->yara = yara;
	a->opts.trust = trust;
	a->opts.yara = yara;
	a->opts.max_file_bytes = (uint64_t)cfg->max_file_mb << 20;
	a->pipe = sw_pipeline_new(a->st, rules);
	{ /* forwarding (issue 5) */
		char why[512];
		if (sw_forward_new(a->loop, a->st, cfg, rules, a->opts.device_id, &a->fwd, why,
		                   sizeof(why)) == SW_OK)
			sw_pipeline_set_hook(a->pipe, sw_forward_pipeline_hook, a->fwd);
		else
			sw_log(SW_LOG_ERROR, "%s; nothing is forwarded until a reload succeeds", why);
	}
	sw_log_set_level((sw_log_level)cfg->log_level);
	close_catdbs(a); /* no scan in flight here */
	start_watch(a);
	walk_all(a, "configuration reloaded");
	sw_plat_notify("READY=1", NULL);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	agent *a = s->data;
	if (signum == SIGHUP)
		reload(a);
	else
		stop_agent(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int agent_run(const char *config_path, bool config_given)
{
	agent *a = calloc(1, sizeof(*a));
	if (!a)
		return 1;
	a->config_path = strdup(config_path);
	if (!config_given && !sw_config_file_exists(config_path)) {
		fprintf(stderr,
		        "signwatch run: %s: no configuration file; create one (signwatch run --check-config "
		        "prints "
		        "the defaults) or give --config F\n",
		        config_path);
		free(a->config_path);
		free(a);
		return 2;
	}
	sw_err e = load(a, &a->cfg, &a->rules, &a->trust, &a->yara);
	if (e) {
		free(a->config_path);
		free(a);
		return e == SW_ERR_NOMEM ? 1 : 2;
	}
	sw_log_set_level((sw_log_level)a->cfg->log_level);

	/* The pool is sized before libuv first uses it. */
	char n[16];
	snprintf(n, sizeof(n), "%d", a->cfg->threads + 1);
	uv_os_setenv("UV_THREADPOOL_SIZE", n);

	char why[512];
	char *dir = sw_plat_dirname(a->cfg->store);
	if (dir)
		(void)sw_plat_mkdirs(dir);
	free(dir);
	if (sw_store_open(a->cfg->store, &a->st, why, sizeof(why)) != SW_OK) {
		sw_log(SW_LOG_ERROR, "%s", why);
		a->status = 1;
		goto out;
	}
	a->pipe = sw_pipeline_new(a->st, a->rules);
	a->queue = calloc(QUEUE_MAX, sizeof(char *));
	if (!a->pipe || !a->queue) {
		a->status = 1;
		goto out;
	}
	if (a->cfg->device_id[0])
		memcpy(a->opts.device_id, a->cfg->device_id, sizeof(a->opts.device_id));
	else if (sw_plat_device_id(a->opts.device_id) != SW_OK)
		snprintf(a->opts.device_id, sizeof(a->opts.device_id), "%040d", 0);
	if (sw_plat_device_name(a->device_name, sizeof(a->device_name)) != SW_OK)
		snprintf(a->device_name, sizeof(a->device_name), "localhost");
	a->opts.device_name = a->device_name;
	a->opts.trust = a->trust;
	a->opts.catalogs = sw_plat_has_catalogs(); /* unsigned PEs looked up in the OS catalogs */
	a->opts.yara = a->yara;
	a->opts.max_file_bytes = (uint64_t)a->cfg->max_file_mb << 20;

	a->loop = uv_default_loop();
	uv_mutex_init(&a->cache_lock);
	uv_timer_init(a->loop, &a->settle_timer);
	uv_timer_init(a->loop, &a->reconcile_timer);
	uv_timer_init(a->loop, &a->cpu_timer);
	uv_timer_init(a->loop, &a->flush_timer);
	a->flush_timer.data = a;
	a->settle_timer.data = a->reconcile_timer.data = a->cpu_timer.data = a;
	uv_signal_init(a->loop, &a->sig_term);
	uv_signal_init(a->loop, &a->sig_int);
	uv_signal_init(a->loop, &a->sig_hup);
	a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
	uv_signal_start(&a->sig_term, signal_cb, SIGTERM);
	uv_signal_start(&a->sig_int, signal_cb, SIGINT);
	uv_signal_start(&a->sig_hup, signal_cb, SIGHUP);
	svc_attach(a); /* service (issue 6) */

	/* forwarding (issue 5): the outbox's transports, one per output */
	bool fwd_ok = sw_forward_new(a->loop, a->st, a->cfg, a->rules, a->opts.device_id, &a->fwd, why,
	                             sizeof(why)) == SW_OK;
	if (fwd_ok)
		sw_pipeline_set_hook(a->pipe, sw_forward_pipeline_hook, a->fwd);
	else
		sw_log(SW_LOG_ERROR, "%s", why);

	sw_plat_background_priority();
	if (!fwd_ok || start_watch(a) != SW_OK) {
		a->status = 1;
		stop_agent(a, fwd_ok ? "cannot watch" : "cannot start the outputs");
	} else {
		sw_log(SW_LOG_INFO, "watching %zu roots (%zu folders); store %s", a->cfg->roots.n,
		       sw_watch_count(a->watch), a->cfg->store);
		if (sw_pipeline_prune(a->st, a->rules, sw_plat_now_ms()) != SW_OK)
			sw_log(SW_LOG_WARN, "prune: %s", sw_store_errmsg(a->st));
		walk_all(a, "start");
		if (a->cfg->reconcile_hours)
			uv_timer_start(&a->reconcile_timer, reconcile_cb,
			               (uint64_t)a->cfg->reconcile_hours * 3600000,
			               (uint64_t)a->cfg->reconcile_hours * 3600000);
		sw_plat_notify("READY=1", "watching");
	}
	uv_run(a->loop, UV_RUN_DEFAULT);
	sw_log(SW_LOG_INFO, "stopped: %llu files scanned, %llu records, %llu matches",
	       (unsigned long long)a->scanned, (unsigned long long)a->recorded,
	       (unsigned long long)a->matched);
	uv_loop_close(a->loop);
	uv_mutex_destroy(&a->cache_lock);
out:
	for (size_t i = 0; i < a->qlen; i++)
		free(a->queue[(a->qhead + i) % QUEUE_MAX]);
	free(a->queue);
	for (size_t i = 0; i < a->nrescan; i++)
		free(a->rescan_dirs[i]);
	free(a->rescan_dirs);
	while (a->pend) {
		pending *p = a->pend;
		a->pend = p->next;
		free(p->path);
		free(p);
	}
	for (size_t i = 0; i < a->ncaches; i++) {
		sw_cache_free(a->caches[i]);
		sw_plat_catdb_close(a->catdbs[i]);
	}
	free(a->caches);
	free(a->catdbs);
	sw_forward_free(a->fwd); /* forwarding (issue 5) */
	sw_pipeline_free(a->pipe);
	sw_store_close(a->st);
	sw_trust_free(a->trust);
	sw_yara_free(a->yara);
	sw_rules_free(a->rules);
	sw_config_free(a->cfg);
	int status = a->status;
	free(a->config_path);
	free(a);
	return status;
}

/* service (issue 6): as a Windows service when the service manager started
 * us, in the foreground otherwise (sw_plat_service_run decides). */
struct run_args {
	const char *config_path;
	bool config_given;
};

static int agent_main(void *ud)
{
	struct run_args *r = ud;
	return agent_run(r->config_path, r->config_given);
}

int sw_agent_run(const char *config_path, bool config_given)
{
	struct run_args r = { config_path, config_given };
	return sw_plat_service_run(agent_main, &r, svc_request, NULL);
}
