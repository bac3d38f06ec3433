/* signwatch: the file system watcher.
 *
 * Recursive on every platform: Windows and macOS watch each root natively
 * (uv_fs_event, UV_FS_EVENT_RECURSIVE); on Linux one inotify watch per
 * folder, driven by uv_poll, because libuv neither recurses there nor
 * reports IN_Q_OVERFLOW. Events are hints: the agent also rescans. The
 * contract is "never silently lose a change": every event that may mean a
 * new or changed executable becomes file(), and anything that may have
 * lost events (a new folder, a queue overflow, a lost watch, running out
 * of watches) becomes rescan() of the affected tree.
 *
 * Everything runs on the thread of the loop given to sw_watch_start, and
 * callbacks only fire from that loop (never from inside sw_watch_start). */
#ifndef SW_WATCH_H
#define SW_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sw_error.h"

typedef struct sw_watch sw_watch;

typedef struct sw_watch_cbs {
	/* A file appeared or changed: closed_after_write when it was closed
	 * after writing (complete), false for create, rename in, hard link,
	 * write or attribute change (the agent settles those). */
	void (*file)(void *ud, const char *path, bool closed_after_write);
	/* Walk this tree: a new folder (created or moved in; its watches are
	 * in place before this fires), a queue overflow (each root), a lost
	 * watch, or a folder that could not be watched (limit reached). why
	 * is a short phrase to log; count is how many times it happened since
	 * the last report (overflows) or how many folders are unwatched now. */
	void (*rescan)(void *ud, const char *dir, const char *why, uint64_t count);
	/* Config excludes and the agent's own files: true = neither watched
	 * (folders) nor reported (files). May be NULL. */
	bool (*excluded)(void *ud, const char *path, bool is_dir);
	void *ud;
} sw_watch_cbs;

/* Start watching roots (folders; trailing separators are ignored). Fails
 * (why says which root and how) when a root cannot be watched at all;
 * folders below a root that hit the watch limit do not fail the start,
 * they are reported through rescan() once the loop runs. */
sw_err sw_watch_start(uv_loop_t *loop, const char *const *roots, size_t n, const sw_watch_cbs *cbs,
                      sw_watch **out, char *why, size_t whylen);

/* Close the handles; memory is freed by their close callbacks, so the loop
 * must run once more to finish. After this returns no callback fires.
 * Safe to call from inside a callback. NULL is ignored. */
void sw_watch_stop(sw_watch *w);

/* Folders watched (Linux: inotify watches; elsewhere: roots). */
size_t sw_watch_count(const sw_watch *w);

/* Folders known to exist but not watched (watch limit reached, or a root
 * that disappeared). The agent's periodic reconcile covers them. */
size_t sw_watch_unwatched_count(const sw_watch *w);

/* Try again to watch the unwatched folders (e.g. at each reconcile, or
 * after the limit was raised); each one that now is watched is reported
 * through rescan(). Returns how many remain unwatched. */
size_t sw_watch_retry_unwatched(sw_watch *w);

/* Test-only: stop reading events for ms milliseconds while the loop runs
 * on, so that a burst fills the kernel's queue and a real overflow
 * happens (the integration test wires it to an environment variable).
 * Called again it restarts the pause; 0 resumes at the next loop turn.
 * A no-op on platforms without inotify. */
void sw_watch_test_pause(sw_watch *w, unsigned ms);

#endif
