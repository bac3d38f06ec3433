/* signwatch: where file bytes come from. common/ never opens files; the
 * caller (agent, tests, fuzzers) hands it a source, as SQLite's VFS does. */
#ifndef SW_SOURCE_H
#define SW_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "sw_error.h"

/* Read exactly len bytes at off into buf; SW_ERR_TRUNCATED if the file
 * ended first (it may have shrunk since its size was taken), SW_ERR_IO. */
typedef sw_err (*sw_read_at_fn)(void *ctx, uint64_t off, void *buf, size_t len);

typedef struct sw_src {
	sw_read_at_fn read_at;
	void *ctx;
	uint64_t size; /* size when the scan started */
} sw_src;

/* Bounds-checked read through a source. */
sw_err sw_src_read(const sw_src *s, uint64_t off, void *buf, size_t len);

/* A source over memory (tests, fuzzers); mem must outlive the source. */
typedef struct sw_mem_src {
	const uint8_t *p;
	size_t n;
} sw_mem_src;
sw_src sw_src_memory(sw_mem_src *m, const void *p, size_t n);

#endif
