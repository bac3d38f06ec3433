/* signwatch: the one bounds-checked reader. Every untrusted byte is read
 * through these getters, which check the length against what remains
 * before touching memory (as OpenSSH's sshbuf does). A failed get leaves
 * the cursor where it was. */
#ifndef SW_READER_H
#define SW_READER_H

#include <stddef.h>
#include <stdint.h>

#include "sw_error.h"

typedef struct sw_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
} sw_rd;

static inline sw_rd sw_rd_make(const void *p, size_t len)
{
	sw_rd r = { (const uint8_t *)p, len, 0 };
	return r;
}
static inline size_t sw_rd_left(const sw_rd *r) { return r->len - r->off; }
static inline const uint8_t *sw_rd_ptr(const sw_rd *r) { return r->p + r->off; }

sw_err sw_rd_seek(sw_rd *r, uint64_t off);
sw_err sw_rd_skip(sw_rd *r, uint64_t n);
sw_err sw_rd_u8(sw_rd *r, uint8_t *v);
sw_err sw_rd_u16le(sw_rd *r, uint16_t *v);
sw_err sw_rd_u32le(sw_rd *r, uint32_t *v);
sw_err sw_rd_u64le(sw_rd *r, uint64_t *v);
/* Borrow n bytes and advance. */
sw_err sw_rd_bytes(sw_rd *r, uint64_t n, const uint8_t **out);
/* A sub-reader over the next n bytes, and advance past them. */
sw_err sw_rd_sub(sw_rd *r, uint64_t n, sw_rd *sub);

/* DER: one TLV (definite lengths only, as DER demands; tags up to 30 in one
 * byte plus multi-byte high tags refused). *tag is the whole identifier
 * octet (class|constructed|number); content is a sub-reader over the value;
 * if whole is non-NULL it gets the TLV including header. */
sw_err sw_rd_der(sw_rd *r, uint8_t *tag, sw_rd *content, sw_rd *whole);
/* Like sw_rd_der but fails with SW_ERR_BAD_DER unless the tag is `want`. */
sw_err sw_rd_der_expect(sw_rd *r, uint8_t want, sw_rd *content);

#define SW_DER_INTEGER 0x02
#define SW_DER_OCTET_STRING 0x04
#define SW_DER_NULL 0x05
#define SW_DER_OID 0x06
#define SW_DER_SEQUENCE 0x30
#define SW_DER_SET 0x31

#endif
