/* signwatch: the file output, JSON Lines with size-based rotation. */
#ifndef SW_OUTPUT_FILE_H
#define SW_OUTPUT_FILE_H

#include <stddef.h>

#include "sw_error.h"

typedef struct sw_outfile sw_outfile;

/* Open (create 0600, append) path; rotate when it passes max_bytes,
 * keeping `keep` old files (path.1 newest .. path.keep oldest). */
sw_err sw_outfile_open(const char *path, size_t max_bytes, int keep, sw_outfile **out, char *why, size_t n);
/* Append one line (a newline is added) and flush it to the OS. */
sw_err sw_outfile_write(sw_outfile *f, const char *line);
void sw_outfile_close(sw_outfile *f);

#endif
