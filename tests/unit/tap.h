/* A tiny TAP producer for unit tests (meson runs them with protocol 'tap'). */
#ifndef SW_TAP_H
#define SW_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sw_attr.h"

static int tap_n, tap_failed;

static inline SW_PRINTF(4, 5) int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

/* The bytes of dir/name (malloc'd, NUL-terminated), or NULL with *n 0. */
static inline unsigned char *tap_slurp(const char *dir, const char *name, size_t *n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	*n = 0;
	if (!f)
		return NULL;
	unsigned char *p = NULL;
	long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)len + 1)) != NULL) {
		if (fread(p, 1, (size_t)len, f) == (size_t)len) {
			p[len] = 0;
			*n = (size_t)len;
		} else {
			free(p);
			p = NULL;
		}
	}
	fclose(f);
	return p;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                                               \
	do {                                                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);                                     \
		if (!ok(g_ == w_, __VA_ARGS__))                                                              \
			printf("#   got %lld, want %lld\n", g_, w_);                                         \
	} while (0)
#define is_str(got, want, ...)                                                                               \
	do {                                                                                                 \
		const char *g_ = (got), *w_ = (want);                                                        \
		if (!ok(g_ && w_ ? strcmp(g_, w_) == 0 : g_ == w_, __VA_ARGS__))                             \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");         \
	} while (0)
#define skip(why) (tap_n++, printf("ok %d # SKIP %s\n", tap_n, why))

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
