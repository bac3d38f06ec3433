/* The file system watcher (see watch.h for the contract).
 *
 * Linux: one inotify watch per folder. A map wd -> folder (with a second
 * index by path, and parent/child links so that a removed folder drops its
 * whole subtree in time proportional to the subtree) turns events back
 * into paths. Windows and macOS: uv_fs_event per root, recursive natively.
 *
 * Where events may have been lost, the answer is always the same: make the
 * watches right again first, then ask the agent to rescan the tree, so that
 * whatever lands after the walk starts is seen as an event and whatever
 * landed before is seen by the walk. */
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

/* Like the scan walk: folders deeper than this are neither scanned nor
 * watched. */
#define WATCH_MAX_DEPTH SW_WALK_MAX_DEPTH
/* read()s of up to 64 KiB per poll callback: a burst of tens of thousands
 * of events is spread over loop iterations instead of starving timers and
 * the scan results (uv_poll is level-triggered, the rest comes next turn). */
#define READS_PER_CALLBACK 8

typedef struct wnode {
	int wd;
	unsigned depth; /* below its root */
	char *path;
	struct wnode *parent, *child, *next, *prev; /* folder tree */
	struct wnode *hnext_wd, *hnext_path;        /* hash chains */
} wnode;

typedef struct native_root {
	uv_fs_event_t h;
	struct sw_watch *w;
	size_t i; /* index in roots */
} native_root;

typedef enum add_res { ADD_NEW, ADD_KNOWN, ADD_LIMIT, ADD_GONE } add_res;

struct sw_watch {
	uv_loop_t *loop;
	sw_watch_cbs cbs;
	char **roots;
	size_t nroots;
	bool native;
	bool stopped;
	unsigned pending_closes; /* handles whose close callback has not run */

	/* native recursion */
	native_root *nr;
	size_t nr_init, nr_active;

	/* inotify */
	int fd;
	uv_poll_t poll;
	uv_timer_t report_timer, pause_timer;
	bool poll_init, timers_init;
	bool quiet_limit; /* don't report watch-limit folders now (start, retry) */
	wnode **by_wd, **by_path;
	size_t nbuckets, count;
	char **unw; /* folders that exist but are not watched */
	size_t nunw, capunw;
	uint64_t overflows; /* since the last report */
};

/* ---- small helpers ---- */

static char *join(const char *dir, const char *name)
{
	const char sep = sw_plat_windows_paths() ? '\\' : '/';
	size_t a = strlen(dir), b = strlen(name);
	bool has_sep = a && (dir[a - 1] == '/' || dir[a - 1] == sep);
	char *p = malloc(a + b + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (!has_sep)
		p[a++] = sep;
	memcpy(p + a, name, b + 1);
	return p;
}

static bool is_sep(char c) { return c == '/' || (c == '\\' && sw_plat_windows_paths()); }

/* Roots are compared and joined as given, minus trailing separators ("/"
 * and "C:\" stay as they are). */
static char *normalize_root(const char *r)
{
	size_t n = strlen(r);
	while (n > 1 && is_sep(r[n - 1]) && !(n == 3 && r[1] == ':'))
		n--;
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, r, n);
		s[n] = 0;
	}
	return s;
}

static bool excluded(sw_watch *w, const char *path, bool is_dir)
{
	return w->cbs.excluded && w->cbs.excluded(w->cbs.ud, path, is_dir);
}

static void emit_file(sw_watch *w, const char *path, bool closed)
{
	if (!w->stopped && w->cbs.file)
		w->cbs.file(w->cbs.ud, path, closed);
}

static void emit_rescan(sw_watch *w, const char *dir, const char *why, uint64_t count)
{
	if (!w->stopped && w->cbs.rescan)
		w->cbs.rescan(w->cbs.ud, dir, why, count);
}

static bool is_root_path(const sw_watch *w, const char *path)
{
	for (size_t i = 0; i < w->nroots; i++)
		if (!strcmp(w->roots[i], path))
			return true;
	return false;
}

/* ---- the folder map ---- */

static size_t hash_wd(int wd) { return (size_t)((uint32_t)wd * 2654435761u); }

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 32));
}

static wnode *find_wd(const sw_watch *w, int wd)
{
	for (wnode *n = w->by_wd[hash_wd(wd) & (w->nbuckets - 1)]; n; n = n->hnext_wd)
		if (n->wd == wd)
			return n;
	return NULL;
}

static wnode *find_path(const sw_watch *w, const char *path)
{
	for (wnode *n = w->by_path[hash_str(path) & (w->nbuckets - 1)]; n; n = n->hnext_path)
		if (!strcmp(n->path, path))
			return n;
	return NULL;
}

static void hash_link(sw_watch *w, wnode *n)
{
	size_t a = hash_wd(n->wd) & (w->nbuckets - 1), b = hash_str(n->path) & (w->nbuckets - 1);
	n->hnext_wd = w->by_wd[a];
	w->by_wd[a] = n;
	n->hnext_path = w->by_path[b];
	w->by_path[b] = n;
}

static void hash_unlink(sw_watch *w, wnode *n)
{
	wnode **p = &w->by_wd[hash_wd(n->wd) & (w->nbuckets - 1)];
	while (*p && *p != n)
		p = &(*p)->hnext_wd;
	if (*p)
		*p = n->hnext_wd;
	p = &w->by_path[hash_str(n->path) & (w->nbuckets - 1)];
	while (*p && *p != n)
		p = &(*p)->hnext_path;
	if (*p)
		*p = n->hnext_path;
}

static bool hash_grow(sw_watch *w)
{
	size_t nb = w->nbuckets * 2;
	wnode **a = calloc(nb, sizeof(*a)), **b = calloc(nb, sizeof(*b));
	if (!a || !b) {
		free(a);
		free(b);
		return false; /* longer chains, still correct */
	}
	wnode **old = w->by_wd;
	size_t ob = w->nbuckets;
	free(w->by_path);
	w->by_wd = a;
	w->by_path = b;
	w->nbuckets = nb;
	for (size_t i = 0; i < ob; i++) {
		for (wnode *n = old[i], *nx; n; n = nx) {
			nx = n->hnext_wd;
			hash_link(w, n);
		}
	}
	free(old);
	return true;
}

static wnode *node_new(sw_watch *w, int wd, const char *path, wnode *parent, unsigned depth)
{
	if (w->count >= w->nbuckets)
		(void)hash_grow(w);
	wnode *n = calloc(1, sizeof(*n));
	if (!n || !(n->path = strdup(path))) {
		free(n);
		return NULL;
	}
	n->wd = wd;
	n->depth = depth;
	n->parent = parent;
	if (parent) {
		n->next = parent->child;
		if (parent->child)
			parent->child->prev = n;
		parent->child = n;
	}
	hash_link(w, n);
	w->count++;
	return n;
}

/* Forget a folder and everything below it. rm: also remove the kernel's
 * watches (not needed when the kernel already dropped them). */
static void drop_subtree(sw_watch *w, wnode *n, bool rm)
{
	while (n->child)
		drop_subtree(w, n->child, rm);
	if (rm)
		sw_plat_inotify_rm(w->fd, n->wd);
	hash_unlink(w, n);
	if (n->parent && n->parent->child == n)
		n->parent->child = n->next;
	if (n->prev)
		n->prev->next = n->next;
	if (n->next)
		n->next->prev = n->prev;
	free(n->path);
	free(n);
	w->count--;
}

/* Free every node without touching the kernel's watches. */
static void clear_map(sw_watch *w)
{
	for (size_t i = 0; i < w->nbuckets; i++) {
		for (wnode *n = w->by_wd[i], *nx; n; n = nx) {
			nx = n->hnext_wd;
			free(n->path);
			free(n);
		}
		w->by_wd[i] = w->by_path[i] = NULL;
	}
	w->count = 0;
}

static void unwatched_add(sw_watch *w, const char *dir)
{
	if (w->nunw == w->capunw) {
		size_t nc = w->capunw ? w->capunw * 2 : 16;
		char **nv = realloc(w->unw, nc * sizeof(*nv));
		if (!nv)
			return; /* the rescan already went out; reconcile covers it */
		w->unw = nv;
		w->capunw = nc;
	}
	char *s = strdup(dir);
	if (s)
		w->unw[w->nunw++] = s;
}

static void unwatched_clear(sw_watch *w)
{
	for (size_t i = 0; i < w->nunw; i++)
		free(w->unw[i]);
	w->nunw = 0;
}

/* Watch dir and every folder below it. follow: dir is a root, which may be
 * a link the user named on purpose; below it links are never followed. */
static add_res add_tree(sw_watch *w, const char *dir, wnode *parent, unsigned depth, bool follow)
{
	int wd;
	sw_err e = sw_plat_inotify_add(w->fd, dir, follow, &wd);
	if (e == SW_ERR_LIMIT) {
		/* Its subfolders cannot be watched either: one entry covers the
		 * tree, and the rescan of it covers its files. */
		unwatched_add(w, dir);
		if (!w->quiet_limit)
			emit_rescan(w, dir, "watch limit reached", w->nunw);
		return ADD_LIMIT;
	}
	if (e != SW_OK)
		return ADD_GONE; /* vanished, replaced by a link or a file */
	/* The same folder reached twice: an event for a folder our listing
	 * already found, overlapping roots, or a bind mount of an ancestor
	 * (which would otherwise recurse until the depth cap). */
	if (find_wd(w, wd))
		return ADD_KNOWN;
	wnode *n = node_new(w, wd, dir, parent, depth);
	if (!n) {
		sw_plat_inotify_rm(w->fd, wd);
		unwatched_add(w, dir);
		return ADD_LIMIT;
	}
	if (depth >= WATCH_MAX_DEPTH)
		return ADD_NEW;
	char **names = NULL;
	size_t k = 0;
	if (sw_plat_list_subdirs(dir, follow, &names, &k) != SW_OK)
		return ADD_NEW; /* watched; its subfolders come as events or rescans */
	for (size_t i = 0; i < k; i++) {
		char *p = w->stopped ? NULL : join(dir, names[i]);
		if (p && !excluded(w, p, true))
			(void)add_tree(w, p, n, depth + 1, false);
		free(p);
		free(names[i]);
	}
	free(names);
	return ADD_NEW;
}

/* Make the watches match the disk again after events were lost: forget
 * the map, walk every root (the kernel returns the existing wd for a
 * folder still watched), then remove the kernel watches nothing maps to
 * any more (folders moved out of the tree while we were not looking). */
static void resync(sw_watch *w)
{
	size_t nold = 0;
	int *old = malloc((w->count ? w->count : 1) * sizeof(int));
	if (old)
		for (size_t i = 0; i < w->nbuckets; i++)
			for (wnode *n = w->by_wd[i]; n; n = n->hnext_wd)
				old[nold++] = n->wd;
	clear_map(w);
	unwatched_clear(w);
	for (size_t i = 0; i < w->nroots && !w->stopped; i++)
		if (add_tree(w, w->roots[i], NULL, 0, true) == ADD_GONE)
			unwatched_add(w, w->roots[i]);
	for (size_t i = 0; i < nold && !w->stopped; i++)
		if (!find_wd(w, old[i]))
			sw_plat_inotify_rm(w->fd, old[i]);
	free(old);
}

/* A watch we did not remove went away (unmount, root deleted or moved):
 * watch the folder again if it is there, and rescan it either way. */
static void lost(sw_watch *w, wnode *n, const char *why)
{
	char *path = strdup(n->path); /* drop_subtree frees n->path */
	wnode *parent = n->parent;
	unsigned depth = n->depth;
	drop_subtree(w, n, true);
	if (!path)
		return;
	bool root = is_root_path(w, path);
	add_res r = ADD_GONE;
	if (sw_plat_is_dir(path) == 1)
		r = add_tree(w, path, parent, depth, root);
	if (r == ADD_GONE && root)
		unwatched_add(w, path); /* retried at reconcile */
	if (r != ADD_LIMIT)
		emit_rescan(w, path, why, 1);
	free(path);
}

static void child_event(sw_watch *w, wnode *n, const sw_inotify_ev *ev)
{
	char *path = join(n->path, ev->name);
	if (!path)
		return;
	if (ev->is_dir) {
		switch (ev->kind) {
		case SW_INOTIFY_CREATE:
		case SW_INOTIFY_MOVED_TO: {
			if (excluded(w, path, true) || n->depth >= WATCH_MAX_DEPTH)
				break;
			wnode *old = find_path(w, path);
			/* A folder renamed over an empty one: the old watch is
			 * stale. Otherwise our listing found it already, its
			 * watches exist and the rescan that covered it is out. */
			if (old && ev->kind == SW_INOTIFY_MOVED_TO) {
				drop_subtree(w, old, true);
				old = NULL;
			}
			/* Watches first, then the rescan: files that landed
			 * before the watch are found by the walk. */
			if (!old && add_tree(w, path, n, n->depth + 1, false) == ADD_NEW)
				emit_rescan(w, path, "new folder", 1);
			break;
		}
		case SW_INOTIFY_DELETE:
		case SW_INOTIFY_MOVED_FROM: {
			/* Moved within the tree, it comes back with MOVED_TO. */
			wnode *c = find_path(w, path);
			if (c)
				drop_subtree(w, c, true);
			break;
		}
		default: break;
		}
	} else {
		switch (ev->kind) {
		case SW_INOTIFY_CLOSE_WRITE:
		case SW_INOTIFY_CREATE:   /* also hard links and files created complete */
		case SW_INOTIFY_MOVED_TO: /* renamed into the folder */
		case SW_INOTIFY_MODIFY:
		case SW_INOTIFY_ATTRIB: /* link count (a new hard link elsewhere), mode, times */
			if (!excluded(w, path, false))
				emit_file(w, path, ev->kind == SW_INOTIFY_CLOSE_WRITE);
			break;
		default: break;
		}
	}
	free(path);
}

static void on_event(void *ud, const sw_inotify_ev *ev)
{
	sw_watch *w = ud;
	if (w->stopped)
		return;
	if (ev->kind == SW_INOTIFY_OVERFLOW) {
		w->overflows++; /* handled once the batch is read */
		return;
	}
	wnode *n = find_wd(w, ev->wd);
	if (!n)
		return; /* a watch we dropped: its last events are stale */
	if (ev->name[0]) {
		child_event(w, n, ev);
		return;
	}
	switch (ev->kind) {
	case SW_INOTIFY_DELETE_SELF:
		/* A subfolder deleted: nothing left to scan. A root: report. */
		if (n->parent)
			drop_subtree(w, n, false);
		else
			lost(w, n, "watched folder removed");
		break;
	case SW_INOTIFY_MOVE_SELF:
		/* A subfolder's move was handled by its parent's MOVED_FROM
		 * (the same queue, earlier), so one still mapped is a root or
		 * a folder whose parent is not watched. */
		lost(w, n, "watched folder moved");
		break;
	case SW_INOTIFY_IGNORED:
		/* Not removed by us, not after DELETE_SELF: e.g. unmounted. */
		lost(w, n, "watch lost");
		break;
	default: break;
	}
}

static void report_overflow(sw_watch *w)
{
	uint64_t count = w->overflows;
	w->overflows = 0;
	resync(w);
	for (size_t i = 0; i < w->nroots && !w->stopped; i++)
		emit_rescan(w, w->roots[i], "inotify queue overflow", count);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	(void)events;
	sw_watch *w = h->data;
	if (w->stopped)
		return;
	if (status < 0) {
		/* The descriptor is unusable: say so for every root; the
		 * agent's reconcile is all that is left. */
		uv_poll_stop(&w->poll);
		for (size_t i = 0; i < w->nroots && !w->stopped; i++)
			emit_rescan(w, w->roots[i], "watch failed", 1);
		return;
	}
	for (int i = 0; i < READS_PER_CALLBACK && !w->stopped; i++) {
		size_t k = 0;
		if (sw_plat_inotify_read(w->fd, on_event, w, &k) != SW_OK || k == 0)
			break;
	}
	if (w->overflows && !w->stopped)
		report_overflow(w);
}

/* Folders the start could not watch, reported from the loop. */
static void on_report(uv_timer_t *t)
{
	sw_watch *w = t->data;
	for (size_t i = 0; i < w->nunw && !w->stopped; i++)
		emit_rescan(w, w->unw[i], "watch limit reached", w->nunw);
}

static void on_pause_end(uv_timer_t *t)
{
	sw_watch *w = t->data;
	if (!w->stopped)
		uv_poll_start(&w->poll, UV_READABLE, on_poll);
}

/* ---- native recursion (Windows, macOS) ---- */

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	native_root *r = h->data;
	sw_watch *w = r->w;
	if (w->stopped)
		return;
	const char *root = w->roots[r->i];
	if (status < 0) {
		emit_rescan(w, root, "watch error", 1);
		return;
	}
	if (!filename) { /* Windows: the change buffer overflowed */
		emit_rescan(w, root, "event buffer overflow", 1);
		return;
	}
	char *path = join(root, filename);
	if (!path)
		return;
	if (sw_plat_is_dir(path) == 1) {
		/* A folder created or renamed in: its files may predate our
		 * notice. A folder merely "changed" is its content changing,
		 * which comes with events of its own. */
		if ((events & UV_RENAME) && !excluded(w, path, true))
			emit_rescan(w, path, "new folder", 1);
	} else if (!excluded(w, path, false)) {
		emit_file(w, path, false);
	}
	free(path);
}

/* ---- life cycle ---- */

static void free_watch(sw_watch *w)
{
	if (w->by_wd && w->by_path)
		clear_map(w);
	free(w->by_wd);
	free(w->by_path);
	unwatched_clear(w);
	free(w->unw);
	for (size_t i = 0; i < w->nroots; i++)
		free(w->roots[i]);
	free(w->roots);
	free(w->nr);
	free(w);
}

static void on_closed(uv_handle_t *h)
{
	sw_watch *w = h->data;
	if (h->type == UV_FS_EVENT)
		w = ((native_root *)h->data)->w;
	if (h == (uv_handle_t *)&w->poll) {
		/* Closed only now: libuv has stopped polling it. */
		sw_plat_inotify_close(w->fd);
		w->fd = -1;
	}
	if (--w->pending_closes == 0)
		free_watch(w);
}

static void close_handle(sw_watch *w, uv_handle_t *h)
{
	w->pending_closes++;
	uv_close(h, on_closed);
}

void sw_watch_stop(sw_watch *w)
{
	if (!w || w->stopped)
		return;
	w->stopped = true;
	for (size_t i = 0; i < w->nr_init; i++)
		close_handle(w, (uv_handle_t *)&w->nr[i].h);
	if (w->poll_init)
		close_handle(w, (uv_handle_t *)&w->poll);
	else
		sw_plat_inotify_close(w->fd);
	if (w->timers_init) {
		close_handle(w, (uv_handle_t *)&w->report_timer);
		close_handle(w, (uv_handle_t *)&w->pause_timer);
	}
	if (w->pending_closes == 0)
		free_watch(w);
}

static sw_err start_native(sw_watch *w, char *why, size_t whylen)
{
	if (!(w->nr = calloc(w->nroots ? w->nroots : 1, sizeof(*w->nr))))
		return SW_ERR_NOMEM;
	for (size_t i = 0; i < w->nroots; i++) {
		native_root *r = &w->nr[i];
		r->w = w;
		r->i = i;
		int rc = uv_fs_event_init(w->loop, &r->h);
		if (rc == 0) {
			r->h.data = r;
			w->nr_init++;
			rc = uv_fs_event_start(&r->h, on_fs_event, w->roots[i], UV_FS_EVENT_RECURSIVE);
		}
		if (rc < 0) {
			snprintf(why, whylen, "%s: cannot watch: %s", w->roots[i], uv_strerror(rc));
			return SW_ERR_IO;
		}
		w->nr_active++;
	}
	return SW_OK;
}

static sw_err start_inotify(sw_watch *w, char *why, size_t whylen)
{
	sw_err e = sw_plat_inotify_open(&w->fd);
	if (e != SW_OK) {
		snprintf(why, whylen, "cannot open an inotify descriptor (%s)",
		         e == SW_ERR_LIMIT ? "fs.inotify.max_user_instances reached" : sw_err_str(e));
		return e;
	}
	w->nbuckets = 1024;
	w->by_wd = calloc(w->nbuckets, sizeof(*w->by_wd));
	w->by_path = calloc(w->nbuckets, sizeof(*w->by_path));
	if (!w->by_wd || !w->by_path)
		return SW_ERR_NOMEM;
	int rc = uv_poll_init(w->loop, &w->poll, w->fd);
	if (rc < 0) {
		snprintf(why, whylen, "cannot poll the inotify descriptor: %s", uv_strerror(rc));
		return SW_ERR_IO;
	}
	w->poll.data = w;
	w->poll_init = true;
	uv_timer_init(w->loop, &w->report_timer);
	uv_timer_init(w->loop, &w->pause_timer);
	w->report_timer.data = w->pause_timer.data = w;
	w->timers_init = true;

	/* No callbacks from inside start: folders over the limit are
	 * collected now and reported from the loop. */
	w->quiet_limit = true;
	for (size_t i = 0; i < w->nroots; i++) {
		if (add_tree(w, w->roots[i], NULL, 0, true) == ADD_GONE) {
			snprintf(why, whylen, "%s: cannot watch (missing, not a folder, or unreadable)",
			         w->roots[i]);
			return SW_ERR_IO;
		}
	}
	w->quiet_limit = false;
	if ((rc = uv_poll_start(&w->poll, UV_READABLE, on_poll)) < 0) {
		snprintf(why, whylen, "cannot poll the inotify descriptor: %s", uv_strerror(rc));
		return SW_ERR_IO;
	}
	if (w->nunw)
		uv_timer_start(&w->report_timer, on_report, 0, 0);
	return SW_OK;
}

sw_err sw_watch_start(uv_loop_t *loop, const char *const *roots, size_t n, const sw_watch_cbs *cbs,
                      sw_watch **out, char *why, size_t whylen)
{
	*out = NULL;
	if (whylen)
		why[0] = 0;
	if (!loop || !cbs || (n && !roots))
		return SW_ERR_USAGE;
	sw_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return SW_ERR_NOMEM;
	w->loop = loop;
	w->cbs = *cbs;
	w->fd = -1;
	w->native = sw_plat_native_recursive_watch();
	sw_err e = SW_OK;
	if (!(w->roots = calloc(n ? n : 1, sizeof(char *))))
		e = SW_ERR_NOMEM;
	for (size_t i = 0; e == SW_OK && i < n; i++) {
		if (!(w->roots[i] = normalize_root(roots[i])))
			e = SW_ERR_NOMEM;
		else
			w->nroots++;
	}
	if (e == SW_OK)
		e = w->native ? start_native(w, why, whylen) : start_inotify(w, why, whylen);
	if (e != SW_OK) {
		if (e == SW_ERR_NOMEM && whylen && !why[0])
			snprintf(why, whylen, "out of memory");
		sw_watch_stop(w); /* frees now, or once the loop closes handles */
		return e;
	}
	*out = w;
	return SW_OK;
}

size_t sw_watch_count(const sw_watch *w)
{
	if (!w)
		return 0;
	return w->native ? w->nr_active : w->count;
}

size_t sw_watch_unwatched_count(const sw_watch *w) { return w ? w->nunw : 0; }

size_t sw_watch_retry_unwatched(sw_watch *w)
{
	if (!w || w->native || w->stopped)
		return 0;
	char **list = w->unw;
	size_t n = w->nunw;
	w->unw = NULL;
	w->nunw = w->capunw = 0;
	/* Still over the limit is not news: only successes are reported. */
	w->quiet_limit = true;
	for (size_t i = 0; i < n; i++) {
		const char *path = list[i];
		if (!w->stopped && !find_path(w, path)) {
			bool root = is_root_path(w, path);
			/* Hang it under its parent when that is watched, so that
			 * removing the parent drops it too. */
			wnode *parent = NULL;
			char *dir = sw_plat_dirname(path);
			if (dir && !root)
				parent = find_path(w, dir);
			free(dir);
			add_res r = add_tree(w, path, parent, parent ? parent->depth + 1 : 0, root);
			if (r == ADD_NEW)
				emit_rescan(w, path, "folder watched again", 1);
			else if (r == ADD_GONE && root)
				unwatched_add(w, path);
		}
		free(list[i]);
	}
	free(list);
	w->quiet_limit = false;
	return w->nunw;
}

void sw_watch_test_pause(sw_watch *w, unsigned ms)
{
	if (!w || w->native || w->stopped || !w->poll_init)
		return;
	uv_poll_stop(&w->poll);
	uv_timer_start(&w->pause_timer, on_pause_end, ms, 0);
}
