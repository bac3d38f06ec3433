#include "reader.h"

sw_err sw_rd_seek(sw_rd *r, uint64_t off)
{
	if (off > r->len)
		return SW_ERR_TRUNCATED;
	r->off = (size_t)off;
	return SW_OK;
}

sw_err sw_rd_skip(sw_rd *r, uint64_t n)
{
	if (n > sw_rd_left(r))
		return SW_ERR_TRUNCATED;
	r->off += (size_t)n;
	return SW_OK;
}

sw_err sw_rd_u8(sw_rd *r, uint8_t *v)
{
	if (sw_rd_left(r) < 1)
		return SW_ERR_TRUNCATED;
	*v = r->p[r->off++];
	return SW_OK;
}

sw_err sw_rd_u16le(sw_rd *r, uint16_t *v)
{
	if (sw_rd_left(r) < 2)
		return SW_ERR_TRUNCATED;
	const uint8_t *p = r->p + r->off;
	*v = (uint16_t)(p[0] | (uint16_t)p[1] << 8);
	r->off += 2;
	return SW_OK;
}

sw_err sw_rd_u32le(sw_rd *r, uint32_t *v)
{
	if (sw_rd_left(r) < 4)
		return SW_ERR_TRUNCATED;
	const uint8_t *p = r->p + r->off;
	*v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	r->off += 4;
	return SW_OK;
}

sw_err sw_rd_u64le(sw_rd *r, uint64_t *v)
{
	uint32_t lo, hi;
	if (sw_rd_left(r) < 8)
		return SW_ERR_TRUNCATED;
	(void)sw_rd_u32le(r, &lo);
	(void)sw_rd_u32le(r, &hi);
	*v = (uint64_t)hi << 32 | lo;
	return SW_OK;
}

sw_err sw_rd_bytes(sw_rd *r, uint64_t n, const uint8_t **out)
{
	if (n > sw_rd_left(r))
		return SW_ERR_TRUNCATED;
	*out = r->p + r->off;
	r->off += (size_t)n;
	return SW_OK;
}

sw_err sw_rd_sub(sw_rd *r, uint64_t n, sw_rd *sub)
{
	if (n > sw_rd_left(r))
		return SW_ERR_TRUNCATED;
	*sub = sw_rd_make(r->p + r->off, (size_t)n);
	r->off += (size_t)n;
	return SW_OK;
}

sw_err sw_rd_der(sw_rd *r, uint8_t *tag, sw_rd *content, sw_rd *whole)
{
	sw_rd t = *r; /* work on a copy so failure leaves r untouched */
	uint8_t id, l0;
	uint64_t len = 0;

	if (sw_rd_u8(&t, &id) || sw_rd_u8(&t, &l0))
		return SW_ERR_BAD_DER;
	if ((id & 0x1f) == 0x1f)
		return SW_ERR_BAD_DER; /* high tag numbers never occur in Authenticode */
	if (l0 < 0x80) {
		len = l0;
	} else {
		unsigned n = l0 & 0x7f;
		if (n == 0 || n > 4)
			return SW_ERR_BAD_DER; /* indefinite length, or > 4 GiB */
		for (unsigned i = 0; i < n; i++) {
			uint8_t b;
			if (sw_rd_u8(&t, &b))
				return SW_ERR_BAD_DER;
			len = len << 8 | b;
		}
	}
	if (len > sw_rd_left(&t))
		return SW_ERR_BAD_DER;
	if (whole)
		*whole = sw_rd_make(r->p + r->off, (size_t)(t.off - r->off + len));
	*content = sw_rd_make(t.p + t.off, (size_t)len);
	t.off += (size_t)len;
	*tag = id;
	*r = t;
	return SW_OK;
}

sw_err sw_rd_der_expect(sw_rd *r, uint8_t want, sw_rd *content)
{
	sw_rd save = *r;
	uint8_t tag;
	sw_err e = sw_rd_der(r, &tag, content, NULL);
	if (e)
		return e;
	if (tag != want) {
		*r = save;
		return SW_ERR_BAD_DER;
	}
	return SW_OK;
}
