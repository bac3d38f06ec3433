/* The bounded reader: every getter refuses to read past the end and
 * leaves the cursor unchanged when it does. */
#include "reader.h"
#include "tap.h"

int main(void)
{
	const uint8_t b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09 };
	sw_rd r = sw_rd_make(b, sizeof(b));
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	is_int(sw_rd_u16le(&r, &u16), SW_OK, "u16 reads");
	is_int(u16, 0x0201, "u16 is little-endian");
	is_int(sw_rd_u32le(&r, &u32), SW_OK, "u32 reads");
	is_int(u32, 0x06050403, "u32 is little-endian");
	is_int(sw_rd_u64le(&r, &u64), SW_ERR_TRUNCATED, "u64 past the end refused");
	is_int(r.off, 6, "failed get leaves the cursor");
	is_int(sw_rd_skip(&r, 4), SW_ERR_TRUNCATED, "skip past the end refused");
	is_int(sw_rd_skip(&r, 3), SW_OK, "skip to the end");
	is_int(sw_rd_u8(&r, &u8), SW_ERR_TRUNCATED, "u8 at the end refused");
	is_int(sw_rd_seek(&r, 10), SW_ERR_TRUNCATED, "seek past the end refused");
	is_int(sw_rd_seek(&r, 0), SW_OK, "seek to 0");
	is_int(sw_rd_u64le(&r, &u64), SW_OK, "u64 reads");
	ok(u64 == 0x0807060504030201ull, "u64 is little-endian");
	const uint8_t *p;
	r = sw_rd_make(b, sizeof(b));
	is_int(sw_rd_bytes(&r, UINT64_MAX, &p), SW_ERR_TRUNCATED, "huge length refused (no wrap)");
	sw_rd sub;
	is_int(sw_rd_sub(&r, 4, &sub), SW_OK, "sub-reader");
	is_int(sub.len, 4, "sub-reader length");
	is_int(sw_rd_u64le(&sub, &u64), SW_ERR_TRUNCATED, "sub-reader bounded by its own length");

	/* DER */
	const uint8_t der[] = { 0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa, 0xff };
	r = sw_rd_make(der, sizeof(der));
	sw_rd c, w, in;
	uint8_t tag;
	is_int(sw_rd_der(&r, &tag, &c, &w), SW_OK, "DER SEQUENCE");
	is_int(tag, 0x30, "tag");
	is_int(c.len, 6, "content length");
	is_int(w.len, 8, "whole length includes the header");
	is_int(sw_rd_der_expect(&c, SW_DER_INTEGER, &in), SW_OK, "INTEGER inside");
	is_int(sw_rd_der_expect(&c, SW_DER_INTEGER, &in), SW_ERR_BAD_DER, "wrong tag refused");
	is_int(c.off, 3, "wrong tag leaves the cursor");
	const uint8_t over[] = { 0x30, 0x05, 0x00 };
	r = sw_rd_make(over, sizeof(over));
	is_int(sw_rd_der(&r, &tag, &c, NULL), SW_ERR_BAD_DER, "length past the end refused");
	const uint8_t indef[] = { 0x30, 0x80, 0x00, 0x00 };
	r = sw_rd_make(indef, sizeof(indef));
	is_int(sw_rd_der(&r, &tag, &c, NULL), SW_ERR_BAD_DER, "indefinite length refused");
	const uint8_t big[] = { 0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00 };
	r = sw_rd_make(big, sizeof(big));
	is_int(sw_rd_der(&r, &tag, &c, NULL), SW_ERR_BAD_DER, "5-byte length refused");
	const uint8_t lng[] = { 0x30, 0x82, 0xff, 0xff, 0x00 };
	r = sw_rd_make(lng, sizeof(lng));
	is_int(sw_rd_der(&r, &tag, &c, NULL), SW_ERR_BAD_DER, "long-form length past the end refused");
	const uint8_t hi[] = { 0x1f, 0x81, 0x01, 0x00 };
	r = sw_rd_make(hi, sizeof(hi));
	is_int(sw_rd_der(&r, &tag, &c, NULL), SW_ERR_BAD_DER, "high tag number refused");
	r = sw_rd_make(der, 1);
	is_int(sw_rd_der(&r, &tag, &c, NULL), SW_ERR_BAD_DER, "header cut short refused");
	return done_testing();
}
