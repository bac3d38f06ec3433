/* signwatch: everything the OS provides, behind one interface.
 * posix/ and windows/ implement it; nothing else includes an OS header. */
#ifndef SW_PLATFORM_H
#define SW_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"
#include "sw_error.h"

/* DeviceId: 40 lowercase hex, a stable hash of the OS machine id. */
sw_err sw_plat_device_id(char out[41]);
/* DeviceName: the lowercase FQDN (the host name when no domain is known). */
sw_err sw_plat_device_name(char *out, size_t n);

/* Wall clock, ms since the Unix epoch, UTC. Test-only override: when the
 * environment variable SIGNWATCH_TEST_NOW holds an ISO 8601 UTC time, the
 * clock starts there (read once, at the first call) and runs on. */
int64_t sw_plat_now_ms(void);

/* fopen, but a file it creates is owner-only. */
#include <stdio.h>
FILE *sw_plat_fopen_private(const char *path, const char *mode);

/* Make the process a good background citizen: lower CPU and I/O priority. */
void sw_plat_background_priority(void);

/* Tell the service manager (systemd) we are ready / stopping / reloading;
 * no-ops when not run by one. status may be NULL. */
void sw_plat_notify(const char *state, const char *status);

/* CPU time this process has used, in microseconds (user + system). */
int64_t sw_plat_cpu_us(void);

/* Create dir and its missing parents with owner-only permissions. */
sw_err sw_plat_mkdirs(const char *dir);
/* The folder part of path, malloc'd ("." when there is none). */
char *sw_plat_dirname(const char *path);

/* An open file to scan: opened without following a final symlink (or
 * reparse point), never blocking writers, read with positional reads. */
typedef struct sw_file sw_file;
sw_err sw_plat_file_open(const char *path, sw_file **out, char *why, size_t n);
/* A source over the file (size taken at open). Valid until close. */
sw_src sw_plat_file_source(sw_file *f);
bool sw_plat_file_is_regular(const sw_file *f);
void sw_plat_file_close(sw_file *f);

/* Identity of a file as the scan cache keys it. */
typedef struct sw_file_id {
	uint64_t dev, ino;
	uint64_t size;
	int64_t mtime_ns, ctime_ns;
} sw_file_id;
/* false (and *id zeroed) when the OS could not say: nothing to key on. */
bool sw_plat_file_identity(const sw_file *f, sw_file_id *id);

/* Walk a tree depth-first without following symbolic links (or junctions)
 * and, unless cross_fs, without leaving root's file system. visit is called
 * for every regular file; on_error for what could not be read (the walk
 * goes on). Either callback returns non-zero to stop the walk. Depth is
 * capped (SW_WALK_MAX_DEPTH); deeper folders are reported to on_error. */
#define SW_WALK_MAX_DEPTH 64
typedef int (*sw_walk_visit_fn)(void *ud, const char *path, const sw_file_id *id);
typedef int (*sw_walk_error_fn)(void *ud, const char *path, const char *why);
sw_err sw_plat_walk(const char *root, bool cross_fs, sw_walk_visit_fn visit, sw_walk_error_fn on_error,
                    void *ud);

/* 1 directory, 0 not (or missing), -1 error. */
int sw_plat_is_dir(const char *path);
/* Names in a directory (not . or ..), malloc'd array of malloc'd strings. */
sw_err sw_plat_list_dir(const char *dir, char ***names, size_t *n);

/* Paths on this OS use drive letters and backslashes, case-insensitively. */
bool sw_plat_windows_paths(void);
/* Can this process list the directory? */
bool sw_plat_dir_readable(const char *path);
/* Permission bits of path, POSIX-style (Windows maps its ACL: group/other
 * read when anyone but SYSTEM/Administrators/the owner may read). 0 on
 * success. */
int sw_plat_file_mode(const char *path, unsigned *mode);

/* Where the agent keeps things by default on this OS. */
const char *const *sw_plat_default_roots(size_t *n); /* folders watched */
const char *sw_plat_default_records(void);           /* the file output's records */
const char *sw_plat_default_store(void);             /* the SQLite database */
const char *sw_plat_default_config(void);            /* the YAML configuration */
const char *sw_plat_default_rules(void);             /* the installed rule pack folder */

/* lstat: identity of a regular file at path without following a link;
 * SW_ERR_IO when missing, SW_ERR_UNSUPPORTED when not a regular file. */
sw_err sw_plat_stat_nofollow(const char *path, sw_file_id *id);

/* Split a path into folder and file name (malloc'd, sanitized UTF-8). */
void sw_plat_split_path(const char *path, char **folder, char **name);

/* Is stdout/stderr a terminal (for progress lines). */
bool sw_plat_isatty(int fd);

/* File system watching, for agent/watch.c. Windows and macOS watch a tree
 * natively (uv_fs_event with UV_FS_EVENT_RECURSIVE); Linux does not, and
 * libuv drops inotify's queue overflow, so there the watcher drives an
 * inotify descriptor itself through the calls below (the stubs elsewhere
 * return SW_ERR_UNSUPPORTED). */
bool sw_plat_native_recursive_watch(void);

/* Names of the subdirectories of dir (not . or ..; a link to a folder is
 * not one), malloc'd array of malloc'd strings. dir itself is opened
 * without following a link unless follow (a root the user named). */
sw_err sw_plat_list_subdirs(const char *dir, bool follow, char ***names, size_t *n);

typedef enum sw_inotify_kind {
	SW_INOTIFY_CREATE,
	SW_INOTIFY_MOVED_TO,
	SW_INOTIFY_CLOSE_WRITE,
	SW_INOTIFY_MODIFY,
	SW_INOTIFY_ATTRIB,
	SW_INOTIFY_DELETE,
	SW_INOTIFY_MOVED_FROM,
	SW_INOTIFY_DELETE_SELF,
	SW_INOTIFY_MOVE_SELF,
	SW_INOTIFY_UNMOUNT,
	SW_INOTIFY_IGNORED,  /* the watch is gone (removed, folder deleted, unmounted) */
	SW_INOTIFY_OVERFLOW, /* the kernel queue overflowed: events were lost (wd -1) */
} sw_inotify_kind;
typedef struct sw_inotify_ev {
	int wd;
	sw_inotify_kind kind;
	bool is_dir;      /* the subject is a folder */
	const char *name; /* entry in the watched folder; "" when about the folder itself */
	uint32_t cookie;  /* pairs MOVED_FROM with MOVED_TO */
} sw_inotify_ev;
typedef void (*sw_inotify_fn)(void *ud, const sw_inotify_ev *ev);
/* A non-blocking, close-on-exec descriptor (SW_ERR_LIMIT: too many). */
sw_err sw_plat_inotify_open(int *fd);
void sw_plat_inotify_close(int fd);
/* Watch one folder (not its subfolders). SW_ERR_LIMIT: out of watches
 * (ENOSPC) or kernel resources; SW_ERR_IO: gone, not a folder, a link
 * (unless follow). Adding a folder already watched returns its wd. */
sw_err sw_plat_inotify_add(int fd, const char *dir, bool follow, int *wd);
void sw_plat_inotify_rm(int fd, int wd);
/* One read() of what is pending, fn called per event; *nevents is 0 when
 * nothing was pending. */
sw_err sw_plat_inotify_read(int fd, sw_inotify_fn fn, void *ud, size_t *nevents);

/* ---- service life cycle (Windows service; systemd units elsewhere) ------
 * Added for issue 6. On POSIX the daemon is a systemd unit, so the calls
 * below but sw_plat_service_run and sw_plat_log_event return
 * SW_ERR_UNSUPPORTED there. */

/* Run main_fn(ud) as the service when the service manager started the
 * process (Windows: StartServiceCtrlDispatcher), else directly (console).
 * When the manager asks the service to stop (STOP, SHUTDOWN, PRESHUTDOWN:
 * SW_SERVICE_STOP, once) or to re-read its configuration (PARAMCHANGE:
 * SW_SERVICE_RELOAD, as SIGHUP does elsewhere), ctl_fn(ctl_ud, what) is
 * called from the manager's thread: it must only record the request and
 * wake the loop (uv_async_send). Returns main_fn's status. */
typedef enum sw_service_ctl { SW_SERVICE_STOP, SW_SERVICE_RELOAD } sw_service_ctl;
int sw_plat_service_run(int (*main_fn)(void *), void *ud, void (*ctl_fn)(void *, sw_service_ctl),
                        void *ctl_ud);
/* Is this process running as a service (inside sw_plat_service_run's
 * service branch)? */
bool sw_plat_service_active(void);

typedef struct sw_service_opts {
	const char *config; /* the configuration file given as run --config; NULL: the default */
	const char *exe;    /* the binary; NULL: this process's own */
} sw_service_opts;
/* Register the service (LocalSystem, automatic start, description,
 * recovery: restart after 30 s three times, pre-shutdown timeout).
 * why gets a message on failure. */
sw_err sw_plat_service_install(const sw_service_opts *o, char *why, size_t n);
/* Only the recovery settings, description and pre-shutdown timeout of an
 * already registered service (the MSI's custom action: wixl has no
 * ServiceConfig). */
sw_err sw_plat_service_set_recovery(char *why, size_t n);
/* Stop (waiting up to timeout_ms) and delete the service. */
sw_err sw_plat_service_uninstall(unsigned timeout_ms, char *why, size_t n);
/* Start and wait (up to timeout_ms) for RUNNING. */
sw_err sw_plat_service_start(unsigned timeout_ms, char *why, size_t n);
/* Ask it to stop and wait (up to timeout_ms) for STOPPED. */
sw_err sw_plat_service_stop(unsigned timeout_ms, char *why, size_t n);
/* Ask the running service to re-read its configuration, the ROOT and
 * Disallowed stores and its rules (SERVICE_CONTROL_PARAMCHANGE); returns
 * once the request is delivered, not when the reload is done. */
sw_err sw_plat_service_reload(char *why, size_t n);
/* Its state as text ("running", "stopped", ...), or an error. */
sw_err sw_plat_service_state(char *state, size_t ns, char *why, size_t n);

/* One message to the system log (Windows: the Application event log,
 * source "signwatch"; POSIX: syslog). level as sw_log: 0 debug .. 3 error. */
void sw_plat_log_event(int level, const char *msg);

/* ---- code-signing trust and security catalogs ---------------------------
 * Windows: the OS root store for IsTrusted, and the system catalogs for
 * files without an embedded signature. POSIX has neither (ca_file is used
 * there): the calls return SW_ERR_UNSUPPORTED. */
typedef struct sw_trust sw_trust;

/* The LocalMachine ROOT store as a trust set (Microsoft-root detection as
 * for a CA file), with the certificates of the LocalMachine Disallowed
 * store excluded and distrusted wherever they appear in a chain. A store
 * with no usable certificate is SW_ERR_IO with why. */
sw_err sw_plat_system_trust(sw_trust **out, char *why, size_t n);

/* A handle on the OS catalog database for one thread at a time (Windows:
 * the CryptCATAdmin contexts, SHA-1 and SHA-256, each acquired at its
 * first lookup and kept until close). Opening is cheap and never fails
 * for lack of a database: NULL only when out of memory, or on POSIX,
 * where there is none. A worker keeps one beside its sw_cache. */
typedef struct sw_plat_catdb sw_plat_catdb;
sw_plat_catdb *sw_plat_catdb_open(void);
void sw_plat_catdb_close(sw_plat_catdb *db); /* NULL is fine */

/* Catalog files (full paths, malloc'd array of malloc'd UTF-8 strings)
 * that the OS catalog database says list a file with this Authenticode
 * digest (20 bytes: SHA-1, 32: SHA-256), at most max of them. *n is 0
 * when none does. The caller verifies each itself (common/catalog.h).
 * db NULL: a context is acquired and released for this call alone. */
sw_err sw_plat_catalogs_for_hash(sw_plat_catdb *db, const uint8_t *digest, size_t len, size_t max,
                                 char ***paths, size_t *n);
/* Does this OS have a catalog database worth asking (so that inspect
 * should compute an unsigned file's Authenticode digests)? */
bool sw_plat_has_catalogs(void);

#endif
