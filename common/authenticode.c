#include "authenticode.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "reader.h"
#include "record.h"
#include "x509util.h"

/* DER contents of the OIDs we match (compared as bytes: cheap and exact). */
#define OID(name, ...) static const uint8_t name[] = { __VA_ARGS__ }
OID(OID_SIGNED_DATA, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02);
OID(OID_SPC_INDIRECT_DATA, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04);
OID(OID_SPC_PE_IMAGE_DATA, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f);
/* sbsign (Secure Boot signing of EFI images) writes msCodeInd here. */
OID(OID_MS_CODE_IND, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x15);
OID(OID_SPC_NESTED_SIG, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x04, 0x01);
OID(OID_MS_RFC3161_TS, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x03, 0x03, 0x01);
OID(OID_PKCS9_CONTENT_TYPE, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03);
OID(OID_PKCS9_MESSAGE_DIGEST, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04);
OID(OID_PKCS9_SIGNING_TIME, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05);
OID(OID_PKCS9_COUNTERSIG, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x06);
OID(OID_CT_TSTINFO, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04);
OID(OID_MD5, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05);
OID(OID_SHA1, 0x2b, 0x0e, 0x03, 0x02, 0x1a);
OID(OID_SHA256, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01);
OID(OID_SHA384, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02);
OID(OID_SHA512, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03);

#define TAG_CTX0 0xa0 /* [0] constructed */
#define TAG_CTX1 0xa1
#define TAG_CTX0_PRIM 0x80
#define TAG_UTCTIME 0x17
#define TAG_GENTIME 0x18

static bool rd_is(const sw_rd *r, const uint8_t *oid, size_t n)
{
	return r->len == n && memcmp(r->p, oid, n) == 0;
}

const char *sw_md_name(int nid)
{
	switch (nid) {
	case NID_md5: return "md5";
	case NID_sha1: return "sha1";
	case NID_sha256: return "sha256";
	case NID_sha384: return "sha384";
	case NID_sha512: return "sha512";
	default: return NULL;
	}
}

static int md_nid_of(const sw_rd *oid)
{
	if (rd_is(oid, OID_MD5, sizeof(OID_MD5)))
		return NID_md5;
	if (rd_is(oid, OID_SHA1, sizeof(OID_SHA1)))
		return NID_sha1;
	if (rd_is(oid, OID_SHA256, sizeof(OID_SHA256)))
		return NID_sha256;
	if (rd_is(oid, OID_SHA384, sizeof(OID_SHA384)))
		return NID_sha384;
	if (rd_is(oid, OID_SHA512, sizeof(OID_SHA512)))
		return NID_sha512;
	return NID_undef;
}

/* AlgorithmIdentifier ::= SEQUENCE { OID, parameters ANY OPTIONAL } */
static sw_err read_alg(sw_rd *r, sw_rd *oid)
{
	sw_rd seq;
	if (sw_rd_der_expect(r, SW_DER_SEQUENCE, &seq) || sw_rd_der_expect(&seq, SW_DER_OID, oid))
		return SW_ERR_BAD_DER;
	return SW_OK;
}

/* ---- PKCS#7 / CMS SignedData, walked ------------------------------------ */

typedef struct p7 {
	sw_rd ctype;    /* encapsulated content type (OID contents) */
	sw_rd econtent; /* the encapsulated content's TLV; len 0 when absent */
	sw_rd certs;    /* contents of [0] certificates; len 0 when absent */
	sw_rd signers;  /* contents of signerInfos */
} p7;

/* ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT SignedData } */
static sw_err p7_read(const uint8_t *der, size_t len, p7 *o, size_t *der_len, const char **why)
{
	sw_rd r = sw_rd_make(der, len), ci, whole, oid, x0, sd, v, dalgs, encap;
	uint8_t tag;
	memset(o, 0, sizeof(*o));
	*der_len = len;
	if (sw_rd_der(&r, &tag, &ci, &whole) || tag != SW_DER_SEQUENCE) {
		*why = "signature is not a DER SEQUENCE";
		return SW_ERR_BAD_PKCS7;
	}
	*der_len = whole.len;
	if (sw_rd_der_expect(&ci, SW_DER_OID, &oid) ||
	    !rd_is(&oid, OID_SIGNED_DATA, sizeof(OID_SIGNED_DATA))) {
		*why = "not PKCS#7 SignedData";
		return SW_ERR_BAD_PKCS7;
	}
	if (sw_rd_der_expect(&ci, TAG_CTX0, &x0) || sw_rd_der_expect(&x0, SW_DER_SEQUENCE, &sd) ||
	    sw_rd_der_expect(&sd, SW_DER_INTEGER, &v) || sw_rd_der_expect(&sd, SW_DER_SET, &dalgs) ||
	    sw_rd_der_expect(&sd, SW_DER_SEQUENCE, &encap) ||
	    sw_rd_der_expect(&encap, SW_DER_OID, &o->ctype)) {
		*why = "malformed SignedData";
		return SW_ERR_BAD_PKCS7;
	}
	if (sw_rd_left(&encap)) {
		sw_rd x, inner;
		if (sw_rd_der_expect(&encap, TAG_CTX0, &x) || sw_rd_der(&x, &tag, &inner, &o->econtent) ||
		    sw_rd_left(&x) || sw_rd_left(&encap)) {
			*why = "malformed encapsulated content";
			return SW_ERR_BAD_PKCS7;
		}
	}
	sw_rd peek = sd;
	if (sw_rd_der(&peek, &tag, &x0, NULL) == SW_OK && tag == TAG_CTX0) {
		o->certs = x0;
		sd = peek;
	}
	peek = sd;
	if (sw_rd_der(&peek, &tag, &x0, NULL) == SW_OK && tag == TAG_CTX1)
		sd = peek; /* CRLs: not used */
	if (sw_rd_der_expect(&sd, SW_DER_SET, &o->signers) || sw_rd_left(&sd)) {
		*why = "malformed signerInfos";
		return SW_ERR_BAD_PKCS7;
	}
	return SW_OK;
}

typedef struct p7_si {
	sw_rd issuer;   /* issuer Name TLV (issuerAndSerialNumber) */
	sw_rd serial;   /* serial INTEGER contents */
	sw_rd ski;      /* [0] subjectKeyIdentifier, when that is the sid */
	sw_rd dalg;     /* digestAlgorithm OID */
	sw_rd attrs;    /* authenticated attributes TLV ([0]); len 0 when absent */
	sw_rd attrs_in; /* their contents */
	sw_rd sig;      /* encryptedDigest contents */
	sw_rd unauth;   /* unauthenticated attribute contents */
} p7_si;

/* SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] authAttrs
 *   OPTIONAL, signatureAlgorithm, signature OCTET STRING, [1] unauthAttrs
 *   OPTIONAL } */
static sw_err si_read(sw_rd seq, p7_si *o)
{
	sw_rd v, sid, salg;
	uint8_t tag;
	memset(o, 0, sizeof(*o));
	if (sw_rd_der_expect(&seq, SW_DER_INTEGER, &v) || sw_rd_der(&seq, &tag, &sid, NULL))
		return SW_ERR_BAD_PKCS7;
	if (tag == SW_DER_SEQUENCE) {
		sw_rd whole;
		if (sw_rd_der(&sid, &tag, &v, &whole) || tag != SW_DER_SEQUENCE ||
		    sw_rd_der_expect(&sid, SW_DER_INTEGER, &o->serial) || sw_rd_left(&sid))
			return SW_ERR_BAD_PKCS7;
		o->issuer = whole;
	} else if (tag == TAG_CTX0_PRIM) {
		o->ski = sid;
	} else {
		return SW_ERR_BAD_PKCS7;
	}
	if (read_alg(&seq, &o->dalg))
		return SW_ERR_BAD_PKCS7;
	sw_rd peek = seq, whole;
	if (sw_rd_der(&peek, &tag, &v, &whole) == SW_OK && tag == TAG_CTX0) {
		o->attrs = whole;
		o->attrs_in = v;
		seq = peek;
	}
	if (read_alg(&seq, &salg) || sw_rd_der_expect(&seq, SW_DER_OCTET_STRING, &o->sig))
		return SW_ERR_BAD_PKCS7;
	if (sw_rd_left(&seq) && (sw_rd_der_expect(&seq, TAG_CTX1, &o->unauth) || sw_rd_left(&seq)))
		return SW_ERR_BAD_PKCS7;
	return SW_OK;
}

/* The one attribute of this type, with exactly one value: *val is the
 * value's TLV. 0 when present once, -1 when absent, repeated, empty or
 * multi-valued. Attribute ::= SEQUENCE { type OID, values SET OF ANY } */
static int attr_single(sw_rd attrs, const uint8_t *oid, size_t n, sw_rd *val)
{
	int found = 0;
	while (sw_rd_left(&attrs)) {
		sw_rd a, type, vals, content;
		uint8_t tag;
		if (sw_rd_der_expect(&attrs, SW_DER_SEQUENCE, &a) ||
		    sw_rd_der_expect(&a, SW_DER_OID, &type) || sw_rd_der_expect(&a, SW_DER_SET, &vals))
			return -1;
		if (!rd_is(&type, oid, n))
			continue;
		if (found++ || sw_rd_der(&vals, &tag, &content, val) || sw_rd_left(&vals))
			return -1;
	}
	return found == 1 ? 0 : -1;
}

/* Certificate ::= SEQUENCE { tbs SEQUENCE { [0] version OPTIONAL, serial
 * INTEGER, signature AlgorithmIdentifier, issuer Name, validity, subject
 * Name, ... }, ... }: the spans that identify it. */
static bool cert_ids(sw_rd cert, sw_rd *serial, sw_rd *issuer, sw_rd *subject)
{
	sw_rd c, tbs, x, alg, validity;
	uint8_t tag;
	if (sw_rd_der_expect(&cert, SW_DER_SEQUENCE, &c) || sw_rd_der_expect(&c, SW_DER_SEQUENCE, &tbs))
		return false;
	sw_rd peek = tbs;
	if (sw_rd_der(&peek, &tag, &x, NULL) == SW_OK && tag == TAG_CTX0)
		tbs = peek;
	return sw_rd_der_expect(&tbs, SW_DER_INTEGER, serial) == SW_OK && read_alg(&tbs, &alg) == SW_OK &&
	       sw_rd_der(&tbs, &tag, &x, issuer) == SW_OK && tag == SW_DER_SEQUENCE &&
	       sw_rd_der_expect(&tbs, SW_DER_SEQUENCE, &validity) == SW_OK &&
	       sw_rd_der(&tbs, &tag, &x, subject) == SW_OK && tag == SW_DER_SEQUENCE;
}

static bool rd_eq(const sw_rd *a, const sw_rd *b)
{
	return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* Iterate the X.509 certificates of a certificates SET (other
 * CertificateChoices are skipped). */
static bool next_cert(sw_rd *certs, sw_rd *cert, int *count)
{
	while (sw_rd_left(certs) && *count < SW_SIG_MAX_CERTS) {
		uint8_t tag;
		sw_rd content;
		if (sw_rd_der(certs, &tag, &content, cert))
			return false;
		if (tag == SW_DER_SEQUENCE) {
			(*count)++;
			return true;
		}
	}
	return false;
}

/* The certificate a SignerInfo names; *tlv (may be NULL) gets its DER. */
static X509 *find_signer(sw_rd certs, const p7_si *si, sw_cache *cache, sw_rd *tlv)
{
	sw_rd cert, serial, issuer, subject;
	int count = 0;
	while (next_cert(&certs, &cert, &count)) {
		X509 *x = NULL;
		if (si->issuer.len) {
			if (cert_ids(cert, &serial, &issuer, &subject) && rd_eq(&serial, &si->serial) &&
			    rd_eq(&issuer, &si->issuer))
				x = sw_cache_cert(cache, cert.p, cert.len, NULL);
		} else {
			/* sid by subjectKeyIdentifier: the certificate must be parsed. */
			x = sw_cache_cert(cache, cert.p, cert.len, NULL);
			const ASN1_OCTET_STRING *k = x ? X509_get0_subject_key_id(x) : NULL;
			if (!k || (size_t)ASN1_STRING_length(k) != si->ski.len ||
			    memcmp(ASN1_STRING_get0_data(k), si->ski.p, si->ski.len) != 0) {
				X509_free(x);
				x = NULL;
			}
		}
		if (x) {
			if (tlv)
				*tlv = cert;
			return x;
		}
	}
	return NULL;
}

/* The carried certificate whose subject is x's issuer (and whose key id
 * matches x's authority key id when both are present); x itself when it is
 * self-issued. By name and key id only: no signature check is needed to
 * report it, and the chain is verified separately. */
static X509 *find_issuer(sw_rd certs, X509 *x, sw_rd xtlv, sw_cache *cache)
{
	sw_rd cert, serial, issuer, subject, xs, xi, xsub;
	int count = 0;
	X509 *found = NULL;
	if (cert_ids(xtlv, &xs, &xi, &xsub)) {
		const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
		while (!found && next_cert(&certs, &cert, &count)) {
			if (!cert_ids(cert, &serial, &issuer, &subject) || !rd_eq(&subject, &xi))
				continue;
			X509 *c = sw_cache_cert(cache, cert.p, cert.len, NULL);
			const ASN1_OCTET_STRING *ski = c ? X509_get0_subject_key_id(c) : NULL;
			if (c && (!aki || !ski || ASN1_OCTET_STRING_cmp(aki, ski) == 0))
				found = c;
			else
				X509_free(c);
		}
	}
	return found;
}

static STACK_OF(X509) *all_certs(sw_rd certs, sw_cache *cache)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	sw_rd cert;
	int count = 0;
	while (sk && next_cert(&certs, &cert, &count)) {
		X509 *x = sw_cache_cert(cache, cert.p, cert.len, NULL);
		if (x && !sk_X509_push(sk, x))
			X509_free(x);
	}
	return sk;
}

/* Verify a SignerInfo over content: messageDigest (exactly one OCTET
 * STRING) equals the digest of content, and the signature covers the
 * authenticated attributes as signed (their [0] tag read as SET OF). */
static bool verify_si(const p7_si *si, X509 *signer, const uint8_t *content, size_t clen, const char **why)
{
	const EVP_MD *md = EVP_get_digestbynid(md_nid_of(&si->dalg));
	if (!md) {
		*why = "unsupported signer digest algorithm";
		return false;
	}
	if (!si->attrs.len) {
		*why = "no authenticated attributes";
		return false;
	}
	sw_rd val, dig;
	if (attr_single(si->attrs_in, OID_PKCS9_MESSAGE_DIGEST, sizeof(OID_PKCS9_MESSAGE_DIGEST), &val) ||
	    sw_rd_der_expect(&val, SW_DER_OCTET_STRING, &dig) || sw_rd_left(&val)) {
		*why = "messageDigest attribute missing or not one OCTET STRING";
		return false;
	}
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	if (!EVP_Digest(content, clen, d, &dl, md, NULL) || dig.len != dl || memcmp(dig.p, d, dl)) {
		*why = "messageDigest does not match the signed content";
		return false;
	}
	/* What was signed is the DER of the attributes as a SET OF: the same
	 * bytes with the [0] IMPLICIT tag replaced by SET's. */
	uint8_t *buf = OPENSSL_malloc(si->attrs.len);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY *pkey = X509_get0_pubkey(signer);
	bool ok = false;
	if (buf && ctx && pkey) {
		memcpy(buf, si->attrs.p, si->attrs.len);
		buf[0] = SW_DER_SET;
		ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
		     EVP_DigestVerify(ctx, si->sig.p, si->sig.len, buf, si->attrs.len) == 1;
	}
	if (!ok)
		*why = "signature does not verify with the signer's key";
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(buf);
	ERR_clear_error();
	return ok;
}

/* The content octets of a TLV (what messageDigest covers). */
static sw_rd tlv_content(sw_rd tlv)
{
	sw_rd c = { 0 };
	uint8_t tag;
	if (sw_rd_der(&tlv, &tag, &c, NULL))
		memset(&c, 0, sizeof(c));
	return c;
}

static int64_t time_of(sw_rd tlv, uint8_t want_tag)
{
	if (!tlv.len || (want_tag && tlv.p[0] != want_tag) ||
	    (tlv.p[0] != TAG_UTCTIME && tlv.p[0] != TAG_GENTIME))
		return SW_TIME_NULL;
	const uint8_t *p = tlv.p;
	ASN1_TIME *t = d2i_ASN1_TIME(NULL, &p, (long)tlv.len);
	int64_t ms;
	int bad = !t || p != tlv.p + tlv.len || sw_asn1_time_ms(t, &ms);
	ASN1_TIME_free(t);
	return bad ? SW_TIME_NULL : ms;
}

/* SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
 *   messageDigest DigestInfo } */
static sw_err parse_indirect(sw_sig *s, sw_rd tlv)
{
	sw_rd seq, data, type, di, algoid, dig;
	if (sw_rd_der_expect(&tlv, SW_DER_SEQUENCE, &seq) || sw_rd_left(&tlv))
		return SW_ERR_BAD_DER;
	if (sw_rd_der_expect(&seq, SW_DER_SEQUENCE, &data) || sw_rd_der_expect(&data, SW_DER_OID, &type))
		return SW_ERR_BAD_DER;
	if (!rd_is(&type, OID_SPC_PE_IMAGE_DATA, sizeof(OID_SPC_PE_IMAGE_DATA)) &&
	    !rd_is(&type, OID_MS_CODE_IND, sizeof(OID_MS_CODE_IND)))
		return SW_ERR_UNSUPPORTED; /* not a PE image's signature (CAB, catalog, ...) */
	if (sw_rd_der_expect(&seq, SW_DER_SEQUENCE, &di) || read_alg(&di, &algoid) ||
	    sw_rd_der_expect(&di, SW_DER_OCTET_STRING, &dig))
		return SW_ERR_BAD_DER;
	int nid = md_nid_of(&algoid);
	const EVP_MD *md = EVP_get_digestbynid(nid);
	if (!md)
		return SW_ERR_UNSUPPORTED;
	if ((size_t)EVP_MD_get_size(md) != dig.len || dig.len > SW_DIGEST_MAX)
		return SW_ERR_BAD_DER; /* the digest must have the algorithm's length */
	s->md_nid = nid;
	memcpy(s->digest, dig.p, dig.len);
	s->digest_len = dig.len;
	return SW_OK;
}

/* PKCS#9 countersignature: a SignerInfo over our signature value, signed
 * by a certificate of the outer SignedData; its time is signingTime. */
static void parse_pkcs9(sw_sig *s, const p7_si *outer, sw_rd val, sw_rd certs, const sw_auth_opts *o)
{
	sw_rd seq;
	p7_si cs;
	s->cs_kind = SW_CS_PKCS9;
	if (sw_rd_der_expect(&val, SW_DER_SEQUENCE, &seq) || si_read(seq, &cs))
		return;
	sw_rd st;
	if (cs.attrs.len &&
	    !attr_single(cs.attrs_in, OID_PKCS9_SIGNING_TIME, sizeof(OID_PKCS9_SIGNING_TIME), &st))
		s->cs_time = time_of(st, 0);
	if (!o->verify)
		return;
	s->cs_signer = find_signer(certs, &cs, o->cache, NULL);
	const char *why = NULL;
	s->cs_ok = s->cs_signer && s->cs_time != SW_TIME_NULL &&
	           verify_si(&cs, s->cs_signer, outer->sig.p, outer->sig.len, &why);
	s->cs_certs = all_certs(certs, o->cache);
}

/* RFC 3161 token (Microsoft's unauthenticated attribute): a SignedData of
 * a TSTInfo whose message imprint is the digest of our signature value.
 * TSTInfo ::= SEQUENCE { version, policy, messageImprint SEQUENCE {
 *   hashAlgorithm, hashedMessage OCTET STRING }, serialNumber, genTime
 *   GeneralizedTime, ... } */
static void parse_rfc3161(sw_sig *s, const p7_si *outer, sw_rd val, const sw_auth_opts *o)
{
	p7 tok;
	size_t dl;
	const char *why = NULL;
	s->cs_kind = SW_CS_RFC3161;
	if (p7_read(val.p, val.len, &tok, &dl, &why) ||
	    !rd_is(&tok.ctype, OID_CT_TSTINFO, sizeof(OID_CT_TSTINFO)) || !tok.econtent.len ||
	    tok.econtent.p[0] != SW_DER_OCTET_STRING)
		return;
	sw_rd tst_der = tlv_content(tok.econtent), tst, x, mi, malg, mval, gt;
	uint8_t tag;
	sw_rd walk = tst_der;
	if (sw_rd_der_expect(&walk, SW_DER_SEQUENCE, &tst) || sw_rd_der_expect(&tst, SW_DER_INTEGER, &x) ||
	    sw_rd_der_expect(&tst, SW_DER_OID, &x) || sw_rd_der_expect(&tst, SW_DER_SEQUENCE, &mi) ||
	    read_alg(&mi, &malg) || sw_rd_der_expect(&mi, SW_DER_OCTET_STRING, &mval) ||
	    sw_rd_der_expect(&tst, SW_DER_INTEGER, &x) || sw_rd_der(&tst, &tag, &x, &gt))
		return;
	s->cs_time = time_of(gt, TAG_GENTIME);
	if (!o->verify || s->cs_time == SW_TIME_NULL)
		return;
	const EVP_MD *imd = EVP_get_digestbynid(md_nid_of(&malg));
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!imd || !EVP_Digest(outer->sig.p, outer->sig.len, d, &n, imd, NULL) || mval.len != n ||
	    memcmp(mval.p, d, n))
		return; /* the token stamps something else */
	sw_rd sis = tok.signers, si_seq, ct;
	p7_si tsi;
	if (sw_rd_der_expect(&sis, SW_DER_SEQUENCE, &si_seq) || sw_rd_left(&sis) || si_read(si_seq, &tsi))
		return; /* exactly one SignerInfo */
	/* CMS: the signed contentType must be the eContentType. */
	if (attr_single(tsi.attrs_in, OID_PKCS9_CONTENT_TYPE, sizeof(OID_PKCS9_CONTENT_TYPE), &val) ||
	    sw_rd_der_expect(&val, SW_DER_OID, &ct) || !rd_is(&ct, OID_CT_TSTINFO, sizeof(OID_CT_TSTINFO)))
		return;
	s->cs_signer = find_signer(tok.certs, &tsi, o->cache, NULL);
	s->cs_ok = s->cs_signer && verify_si(&tsi, s->cs_signer, tst_der.p, tst_der.len, &why);
	s->cs_certs = all_certs(tok.certs, o->cache);
}

static sw_err parse_one(const uint8_t *der, size_t len, size_t entry, int depth, const sw_auth_opts *o,
                        sw_sigs *sigs);

/* Countersignature first (it belongs to s), then nested signatures, each
 * value of each nested-signature attribute, depth-first. */
static void parse_unauth(sw_sig *s, const p7_si *si, sw_rd certs, size_t entry, int depth,
                         const sw_auth_opts *o, sw_sigs *sigs)
{
	for (int pass = 0; pass < 2; pass++) {
		sw_rd attrs = si->unauth;
		while (sw_rd_left(&attrs)) {
			sw_rd a, type, vals, v, content;
			uint8_t tag;
			if (sw_rd_der_expect(&attrs, SW_DER_SEQUENCE, &a) ||
			    sw_rd_der_expect(&a, SW_DER_OID, &type) ||
			    sw_rd_der_expect(&a, SW_DER_SET, &vals))
				return;
			if (pass == 0 && s->cs_kind == SW_CS_NONE) {
				if (sw_rd_der(&vals, &tag, &content, &v))
					continue;
				if (rd_is(&type, OID_MS_RFC3161_TS, sizeof(OID_MS_RFC3161_TS)))
					parse_rfc3161(s, si, v, o);
				else if (rd_is(&type, OID_PKCS9_COUNTERSIG, sizeof(OID_PKCS9_COUNTERSIG)))
					parse_pkcs9(s, si, v, certs, o);
				continue;
			}
			if (pass == 0 || !sigs ||
			    !rd_is(&type, OID_SPC_NESTED_SIG, sizeof(OID_SPC_NESTED_SIG)))
				continue;
			while (sw_rd_left(&vals)) {
				if (sw_rd_der(&vals, &tag, &content, &v))
					break;
				if (depth + 1 > SW_SIG_MAX_DEPTH || sigs->n >= SW_SIG_MAX_COUNT) {
					sigs->limit_hit = true;
					continue;
				}
				parse_one(v.p, v.len, entry, depth + 1, o, sigs);
			}
		}
	}
}

static void set_why(sw_sig *s, sw_err e, const char *msg)
{
	if (s->err == SW_OK)
		s->err = e;
	if (!s->why[0])
		snprintf(s->why, sizeof(s->why), "%s", msg);
}

static void sig_init(sw_sig *s, size_t entry, int depth, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->entry = entry;
	s->depth = depth;
	s->cs_time = SW_TIME_NULL;
	s->md_nid = NID_undef;
	s->der_len = len;
}

/* The SignerInfo half shared by Authenticode and catalogs: exactly one
 * SignerInfo, its certificate, and (verifying) the signature over the
 * encapsulated content with a contentType attribute equal to ctype.
 * sig_ok is set only when content_ok too. False when there is no signer
 * to report (s->why says why). */
static bool signer_part(sw_sig *s, const p7 *sd, const uint8_t *ctype, size_t ctype_len, const char *ct_msg,
                        bool content_ok, const sw_auth_opts *o, p7_si *si)
{
	const char *why = NULL;
	sw_rd sis = sd->signers, si_seq;
	if (sw_rd_der_expect(&sis, SW_DER_SEQUENCE, &si_seq) || sw_rd_left(&sis)) {
		set_why(s, SW_ERR_BAD_PKCS7, "a signature must have exactly one SignerInfo");
		return false;
	}
	if (si_read(si_seq, si)) {
		set_why(s, SW_ERR_BAD_PKCS7, "malformed SignerInfo");
		return false;
	}
	sw_rd signer_tlv;
	s->signer = find_signer(sd->certs, si, o->cache, &signer_tlv);
	if (!s->signer) {
		set_why(s, SW_ERR_BAD_PKCS7, "signer certificate not carried in the signature");
		return false;
	}
	s->issuer = find_issuer(sd->certs, s->signer, signer_tlv, o->cache);
	if (o->verify) {
		sw_rd val, ct, c = tlv_content(sd->econtent);
		if (!verify_si(si, s->signer, c.p, c.len, &why))
			set_why(s, SW_OK, why);
		else if (attr_single(si->attrs_in, OID_PKCS9_CONTENT_TYPE, sizeof(OID_PKCS9_CONTENT_TYPE),
		                     &val) ||
		         sw_rd_der_expect(&val, SW_DER_OID, &ct) || !rd_is(&ct, ctype, ctype_len))
			set_why(s, SW_OK, ct_msg);
		else
			s->sig_ok = content_ok;
		s->certs = all_certs(sd->certs, o->cache);
	}
	return true;
}

/* The SignedData walk and its eContentType check (ct_msg when it is not
 * ctype or there is no content); the verdict goes into s. */
static sw_err open_signed(const uint8_t *der, size_t len, const uint8_t *ctype, size_t ctype_len,
                          const char *ct_msg, sw_sig *s, p7 *sd)
{
	const char *why = NULL;
	sw_err e = p7_read(der, len, sd, &s->der_len, &why);
	if (e) {
		set_why(s, e, why);
		return e;
	}
	s->parsed = true;
	if (!rd_is(&sd->ctype, ctype, ctype_len) || !sd->econtent.len) {
		set_why(s, SW_ERR_BAD_PKCS7, ct_msg);
		return SW_ERR_BAD_PKCS7;
	}
	return SW_OK;
}

static sw_err parse_one(const uint8_t *der, size_t len, size_t entry, int depth, const sw_auth_opts *o,
                        sw_sigs *sigs)
{
	if (sigs->n >= SW_SIG_MAX_COUNT) {
		sigs->limit_hit = true;
		return SW_ERR_LIMIT;
	}
	sw_sig *s = &sigs->v[sigs->n++];
	sig_init(s, entry, depth, len);
	if (len == 0) {
		set_why(s, SW_ERR_BAD_PKCS7, "entry holds no signature bytes");
		return SW_OK;
	}
	p7 sd;
	if (open_signed(der, len, OID_SPC_INDIRECT_DATA, sizeof(OID_SPC_INDIRECT_DATA),
	                "content is not SpcIndirectDataContent", s, &sd))
		return SW_OK; /* the verdict is in s */
	sw_err e = parse_indirect(s, sd.econtent);
	if (e) /* keep going: the signer is still worth reporting */
		set_why(s, e,
		        e == SW_ERR_UNSUPPORTED ? "unsupported content or digest algorithm"
		                                : "malformed SpcIndirectDataContent");
	p7_si si;
	if (!signer_part(s, &sd, OID_SPC_INDIRECT_DATA, sizeof(OID_SPC_INDIRECT_DATA),
	                 "contentType attribute missing or not SpcIndirectDataContent", !e, o, &si))
		return SW_OK;
	if (si.sig.len)
		parse_unauth(s, &si, sd.certs, entry, depth, o, sigs);
	return SW_OK;
}

sw_err sw_signed_content_parse(const uint8_t *der, size_t len, const uint8_t *ctype, size_t ctype_len,
                               const char *ct_msg, const sw_auth_opts *o, sw_sig *s, const uint8_t **econtent,
                               size_t *econtent_len)
{
	sig_init(s, 0, 0, len);
	*econtent = NULL;
	*econtent_len = 0;
	p7 sd;
	sw_err e = open_signed(der, len, ctype, ctype_len, ct_msg, s, &sd);
	if (e)
		return e;
	*econtent = sd.econtent.p;
	*econtent_len = sd.econtent.len;
	p7_si si;
	if (!signer_part(s, &sd, ctype, ctype_len, ct_msg, true, o, &si))
		return s->err;
	/* The countersignature only: nested signatures are Authenticode's. */
	if (si.sig.len)
		parse_unauth(s, &si, sd.certs, 0, 0, o, NULL);
	return SW_OK;
}

sw_err sw_spc_indirect_parse(const uint8_t *tlv, size_t len, int *md_nid, uint8_t *digest, size_t *digest_len)
{
	sw_sig s;
	sig_init(&s, 0, 0, len);
	sw_err e = parse_indirect(&s, sw_rd_make(tlv, len));
	*md_nid = s.md_nid;
	*digest_len = s.digest_len;
	memcpy(digest, s.digest, s.digest_len);
	return e;
}

sw_err sw_authenticode_parse(const uint8_t *der, size_t len, size_t entry, const sw_auth_opts *o,
                             sw_sigs *sigs)
{
	return parse_one(der, len, entry, 0, o, sigs);
}

void sw_sig_free(sw_sig *s)
{
	X509_free(s->signer);
	X509_free(s->issuer);
	X509_free(s->cs_signer);
	sk_X509_pop_free(s->certs, X509_free);
	sk_X509_pop_free(s->cs_certs, X509_free);
	s->signer = s->issuer = s->cs_signer = NULL;
	s->certs = s->cs_certs = NULL;
}

void sw_sigs_free(sw_sigs *sigs)
{
	for (size_t i = 0; i < sigs->n; i++)
		sw_sig_free(&sigs->v[i]);
	sigs->n = 0;
}
