#include "source.h"

#include <string.h>

sw_err sw_src_read(const sw_src *s, uint64_t off, void *buf, size_t len)
{
	if (off > s->size || len > s->size - off)
		return SW_ERR_TRUNCATED;
	if (len == 0)
		return SW_OK;
	return s->read_at(s->ctx, off, buf, len);
}

static sw_err mem_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	const sw_mem_src *m = ctx;
	if (off > m->n || len > m->n - off)
		return SW_ERR_TRUNCATED;
	memcpy(buf, m->p + off, len);
	return SW_OK;
}

sw_src sw_src_memory(sw_mem_src *m, const void *p, size_t n)
{
	m->p = p;
	m->n = n;
	sw_src s = { mem_read_at, m, n };
	return s;
}
