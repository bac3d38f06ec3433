#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"

/* DER contents of the OIDs we match. */
static const uint8_t OID_CTL[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x01 };
static const uint8_t OID_CATALOG_LIST[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0c, 0x01, 0x01 };
static const uint8_t OID_CATALOG_MEMBER[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0c, 0x01, 0x02 };
static const uint8_t OID_CATALOG_MEMBER2[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0c, 0x01, 0x03 };
static const uint8_t OID_SPC_INDIRECT_DATA[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04 };

#define TAG_CTX0 0xa0
#define TAG_UTCTIME 0x17
#define TAG_GENTIME 0x18

static bool oid_is(const sw_rd *r, const uint8_t *oid, size_t n)
{
	return r->len == n && memcmp(r->p, oid, n) == 0;
}

/* Take the next TLV only when it has this tag (an OPTIONAL field). */
static bool take_opt(sw_rd *r, uint8_t want, sw_rd *content)
{
	sw_rd peek = *r;
	uint8_t tag;
	if (sw_rd_der(&peek, &tag, content, NULL) != SW_OK || tag != want)
		return false;
	*r = peek;
	return true;
}

static bool take_time(sw_rd *r)
{
	sw_rd c;
	return take_opt(r, TAG_UTCTIME, &c) || take_opt(r, TAG_GENTIME, &c);
}

typedef struct walk {
	const sw_digest *want;
	size_t nwant;
	bool listed;
	size_t pref; /* index in want of the match kept: earlier is preferred */
	int md_nid;
	uint8_t digest[SW_DIGEST_MAX];
	size_t digest_len;
	const char *why; /* set when malformed */
} walk;

/* One member's attributes: at most one SPC_INDIRECT_DATA, with one value. */
static bool member(walk *w, sw_rd attrs)
{
	bool seen = false;
	for (unsigned n = 0; sw_rd_left(&attrs); n++) {
		sw_rd a, type, vals, v, vc;
		uint8_t tag;
		if (n >= SW_CAT_MAX_ATTRS) {
			w->why = "catalog member has too many attributes";
			return false;
		}
		if (sw_rd_der_expect(&attrs, SW_DER_SEQUENCE, &a) ||
		    sw_rd_der_expect(&a, SW_DER_OID, &type) || sw_rd_der_expect(&a, SW_DER_SET, &vals) ||
		    sw_rd_left(&a)) {
			w->why = "malformed catalog member attribute";
			return false;
		}
		if (!oid_is(&type, OID_SPC_INDIRECT_DATA, sizeof(OID_SPC_INDIRECT_DATA)))
			continue;
		if (seen || sw_rd_der(&vals, &tag, &vc, &v) || sw_rd_left(&vals)) {
			w->why = "catalog member's indirect data is not exactly one value";
			return false;
		}
		seen = true;
		int nid;
		uint8_t d[SW_DIGEST_MAX];
		size_t dl;
		sw_err e = sw_spc_indirect_parse(v.p, v.len, &nid, d, &dl);
		if (e == SW_ERR_UNSUPPORTED)
			continue; /* a flat-hashed file or another algorithm: cannot be this PE */
		if (e) {
			w->why = "malformed SpcIndirectDataContent in a catalog member";
			return false;
		}
		for (size_t i = 0; i < w->nwant && (!w->listed || i < w->pref); i++) {
			if (w->want[i].nid == nid && w->want[i].len == dl &&
			    memcmp(w->want[i].d, d, dl) == 0) {
				w->listed = true;
				w->pref = i;
				w->md_nid = nid;
				memcpy(w->digest, d, dl);
				w->digest_len = dl;
			}
		}
	}
	return true;
}

/* The CTL (see catalog.h), given the encapsulated content's TLV: a
 * SEQUENCE itself (PKCS#7, as makecat writes) or an OCTET STRING holding
 * exactly one (CMS). */
static bool ctl(walk *w, sw_rd econtent)
{
	sw_rd c, seq, x;
	uint8_t tag;
	if (sw_rd_der(&econtent, &tag, &c, NULL) || sw_rd_left(&econtent)) {
		w->why = "malformed encapsulated content";
		return false;
	}
	if (tag == SW_DER_OCTET_STRING) {
		if (sw_rd_der_expect(&c, SW_DER_SEQUENCE, &seq) || sw_rd_left(&c)) {
			w->why = "CTL is not one SEQUENCE";
			return false;
		}
	} else if (tag == SW_DER_SEQUENCE) {
		seq = c;
	} else {
		w->why = "CTL is not a SEQUENCE";
		return false;
	}
	(void)take_opt(&seq, SW_DER_INTEGER, &x); /* version */
	sw_rd usage, oid;
	bool is_catalog = false;
	if (sw_rd_der_expect(&seq, SW_DER_SEQUENCE, &usage)) {
		w->why = "CTL has no subjectUsage";
		return false;
	}
	while (sw_rd_left(&usage)) {
		if (sw_rd_der_expect(&usage, SW_DER_OID, &oid)) {
			w->why = "malformed CTL subjectUsage";
			return false;
		}
		is_catalog |= oid_is(&oid, OID_CATALOG_LIST, sizeof(OID_CATALOG_LIST));
	}
	/* A CTL for another usage (a root list, say) is not a catalog. */
	if (!is_catalog) {
		w->why = "CTL subjectUsage is not a catalog list";
		return false;
	}
	(void)take_opt(&seq, SW_DER_OCTET_STRING, &x); /* listIdentifier */
	(void)take_opt(&seq, SW_DER_INTEGER, &x);      /* sequenceNumber */
	if (!take_time(&seq)) {
		w->why = "CTL has no thisUpdate";
		return false;
	}
	(void)take_time(&seq); /* nextUpdate */
	sw_rd alg;
	if (sw_rd_der_expect(&seq, SW_DER_SEQUENCE, &alg) || sw_rd_der_expect(&alg, SW_DER_OID, &oid) ||
	    !(oid_is(&oid, OID_CATALOG_MEMBER, sizeof(OID_CATALOG_MEMBER)) ||
	      oid_is(&oid, OID_CATALOG_MEMBER2, sizeof(OID_CATALOG_MEMBER2)))) {
		w->why = "CTL subjectAlgorithm is not a catalog member list";
		return false;
	}
	sw_rd subjects;
	if (take_opt(&seq, SW_DER_SEQUENCE, &subjects)) {
		for (uint32_t n = 0; sw_rd_left(&subjects); n++) {
			sw_rd ts, tagid, attrs = { 0 };
			if (n >= SW_CAT_MAX_MEMBERS) {
				w->why = "catalog has too many members";
				return false;
			}
			if (sw_rd_der_expect(&subjects, SW_DER_SEQUENCE, &ts) ||
			    sw_rd_der_expect(&ts, SW_DER_OCTET_STRING, &tagid)) {
				w->why = "malformed catalog member";
				return false;
			}
			if (sw_rd_left(&ts) &&
			    (sw_rd_der_expect(&ts, SW_DER_SET, &attrs) || sw_rd_left(&ts))) {
				w->why = "malformed catalog member";
				return false;
			}
			if (!member(w, attrs))
				return false;
		}
	}
	(void)take_opt(&seq, TAG_CTX0, &x); /* extensions */
	if (sw_rd_left(&seq)) {
		w->why = "unexpected data in the CTL";
		return false;
	}
	return true;
}

static void fail(sw_sig *sig, const char *why)
{
	sw_sig_free(sig);
	if (sig->err == SW_OK)
		sig->err = SW_ERR_BAD_PKCS7;
	snprintf(sig->why, sizeof(sig->why), "%s", why);
}

sw_cat_verdict sw_catalog_check(const uint8_t *der, size_t len, const sw_digest *want, size_t nwant,
                                const sw_auth_opts *o, sw_sig *sig)
{
	const uint8_t *ec;
	size_t eclen;
	sw_err e = sw_signed_content_parse(der, len, OID_CTL, sizeof(OID_CTL),
	                                   "content is not a CTL (catalog)", o, sig, &ec, &eclen);
	if (e || !sig->signer) {
		char why[sizeof(sig->why)];
		snprintf(why, sizeof(why), "%s", sig->why[0] ? sig->why : "not a catalog");
		fail(sig, why);
		return SW_CAT_MALFORMED;
	}
	walk w = { .want = want, .nwant = nwant, .md_nid = 0 };
	if (!ctl(&w, sw_rd_make(ec, eclen))) {
		fail(sig, w.why);
		return SW_CAT_MALFORMED;
	}
	if (!w.listed) {
		sw_sig_free(sig);
		snprintf(sig->why, sizeof(sig->why), "the catalog does not list the file");
		return SW_CAT_NOT_LISTED;
	}
	sig->md_nid = w.md_nid;
	memcpy(sig->digest, w.digest, w.digest_len);
	sig->digest_len = w.digest_len;
	return SW_CAT_LISTED;
}

sw_cat_verdict sw_catalog_check_src(const sw_src *src, const sw_digest *want, size_t nwant,
                                    const sw_auth_opts *o, sw_sig *sig)
{
	memset(sig, 0, sizeof(*sig));
	if (src->size > SW_CAT_MAX_BYTES) {
		fail(sig, "catalog larger than the cap");
		sig->err = SW_ERR_LIMIT;
		return SW_CAT_MALFORMED;
	}
	size_t n = (size_t)src->size;
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf) {
		fail(sig, "out of memory");
		sig->err = SW_ERR_NOMEM;
		return SW_CAT_MALFORMED;
	}
	sw_err e = sw_src_read(src, 0, buf, n);
	sw_cat_verdict v;
	if (e) {
		memset(sig, 0, sizeof(*sig));
		sig->err = e;
		snprintf(sig->why, sizeof(sig->why), "cannot read the catalog: %s", sw_err_str(e));
		v = SW_CAT_MALFORMED;
	} else {
		v = sw_catalog_check(buf, n, want, nwant, o, sig);
	}
	free(buf);
	return v;
}
