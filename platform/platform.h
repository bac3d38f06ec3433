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
void sw_plat_file_identity(const sw_file *f, sw_file_id *id);

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

#endif
