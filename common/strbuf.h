/* signwatch: a growable, NUL-terminated string buffer. Out of memory is
 * sticky (oom): callers build the whole string, then check once. */
#ifndef SW_STRBUF_H
#define SW_STRBUF_H

#include "sw_attr.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sw_strbuf {
	char *p; /* NUL-terminated once anything was added; caller frees */
	size_t len, cap;
	bool oom;
} sw_strbuf;

void sw_sb_put(sw_strbuf *b, const void *s, size_t n);
void sw_sb_puts(sw_strbuf *b, const char *s);
SW_PRINTF(2, 3)
void sw_sb_printf(sw_strbuf *b, const char *fmt, ...);

/* A growable array of malloc'd strings (folder listings): append a copy of
 * s to (*v)[*n], growing *cap; false when out of memory (nothing added). */
bool sw_strv_push(char ***v, size_t *n, size_t *cap, const char *s);
/* Free the strings and the array; *v NULL and *n 0 after. */
void sw_strv_free(char ***v, size_t *n);

#endif
