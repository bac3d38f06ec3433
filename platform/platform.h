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

/* Wall clock, ms since the Unix epoch, UTC. */
int64_t sw_plat_now_ms(void);

/* An open file to scan: opened without following a final symlink (or
 * reparse point), never blocking writers, read with positional reads. */
typedef struct sw_file sw_file;
sw_err sw_plat_file_open(const char *path, sw_file **out, char *why, size_t n);
/* A source over the file (size taken at open). Valid until close. */
sw_src sw_plat_file_source(sw_file *f);
bool sw_plat_file_is_regular(const sw_file *f);
void sw_plat_file_close(sw_file *f);

/* Split a path into folder and file name (malloc'd, sanitized UTF-8). */
void sw_plat_split_path(const char *path, char **folder, char **name);

/* Is stdout/stderr a terminal (for progress lines). */
bool sw_plat_isatty(int fd);

#endif
