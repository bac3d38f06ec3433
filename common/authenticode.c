#include "authenticode.h"

#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/err.h>
#include <openssl/ts.h>

#include "reader.h"
#include "record.h"
#include "x509util.h"

/* DER contents of the OIDs we match (compared as bytes: cheap and exact). */
static const uint8_t OID_SPC_INDIRECT_DATA[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04 };
static const uint8_t OID_SPC_PE_IMAGE_DATA[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f };
/* sbsign (Secure Boot signing of EFI images) writes msCodeInd here. */
static const uint8_t OID_MS_CODE_IND[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x15 };
static const uint8_t OID_SPC_NESTED_SIG[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x04, 0x01 };
static const uint8_t OID_MS_RFC3161_TS[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x03, 0x03, 0x01 };
static const uint8_t OID_PKCS9_COUNTERSIG[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x06 };
static const uint8_t OID_CT_TSTINFO[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04 };

static bool oid_is(const ASN1_OBJECT *o, const uint8_t *der, size_t len)
{
	return o && (size_t)OBJ_length(o) == len && memcmp(OBJ_get0_data(o), der, len) == 0;
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

static void set_why(sw_sig *s, sw_err e, const char *msg)
{
	if (s->err == SW_OK)
		s->err = e;
	if (!s->why[0])
		snprintf(s->why, sizeof(s->why), "%s", msg);
}

/* The one attribute with this NID, with exactly one value of type `type`;
 * NULL if absent, repeated, multi-valued or of another type. */
static ASN1_TYPE *single_attr(const STACK_OF(X509_ATTRIBUTE) *attrs, int nid, int type)
{
	int idx = X509at_get_attr_by_NID(attrs, nid, -1);
	if (idx < 0 || X509at_get_attr_by_NID(attrs, nid, idx) >= 0)
		return NULL;
	X509_ATTRIBUTE *a = X509at_get_attr(attrs, idx);
	if (!a || X509_ATTRIBUTE_count(a) != 1)
		return NULL;
	ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, 0);
	return t && ASN1_TYPE_get(t) == type ? t : NULL;
}

static int md_of(const EVP_MD *md, const uint8_t *p, size_t n, uint8_t *out, unsigned *outlen)
{
	return EVP_Digest(p, n, out, outlen, md, NULL);
}

/* Verify a SignerInfo over `content` with a certificate from `certs`:
 * messageDigest (an OCTET STRING, checked) equals the digest of content,
 * and the signature covers the DER of the authenticated attributes.
 * Returns 1 when it verifies; 0 with *why set otherwise. */
static int verify_signer_info(PKCS7_SIGNER_INFO *si, STACK_OF(X509) *certs, const uint8_t *content,
                              size_t clen, X509 **signer_out, const char **why)
{
	X509 *signer = NULL;
	if (si->issuer_and_serial && certs)
		signer = X509_find_by_issuer_and_serial(certs, si->issuer_and_serial->issuer,
		                                        si->issuer_and_serial->serial);
	*signer_out = signer;
	if (!signer) {
		*why = "signer certificate not carried in the signature";
		return 0;
	}
	const EVP_MD *md = EVP_get_digestbyobj(si->digest_alg ? si->digest_alg->algorithm : NULL);
	if (!md || !sw_md_name(EVP_MD_get_type(md))) {
		*why = "unsupported signer digest algorithm";
		return 0;
	}
	STACK_OF(X509_ATTRIBUTE) *attrs = si->auth_attr;
	if (sk_X509_ATTRIBUTE_num(attrs) <= 0) {
		*why = "no authenticated attributes";
		return 0;
	}
	ASN1_TYPE *mdattr = single_attr(attrs, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING);
	if (!mdattr) {
		*why = "messageDigest attribute missing or not one OCTET STRING";
		return 0;
	}
	uint8_t dig[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	if (!md_of(md, content, clen, dig, &dlen)) {
		*why = "digest failed";
		return 0;
	}
	const ASN1_OCTET_STRING *want = mdattr->value.octet_string;
	if ((unsigned)ASN1_STRING_length(want) != dlen || memcmp(ASN1_STRING_get0_data(want), dig, dlen)) {
		*why = "messageDigest does not match the signed content";
		return 0;
	}
	uint8_t *abuf = NULL;
	int alen = ASN1_item_i2d((ASN1_VALUE *)attrs, &abuf, ASN1_ITEM_rptr(PKCS7_ATTR_VERIFY));
	if (alen <= 0) {
		*why = "authenticated attributes do not encode";
		return 0;
	}
	EVP_PKEY *pkey = X509_get0_pubkey(signer);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;
	if (pkey && ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 && si->enc_digest &&
	    EVP_DigestVerify(ctx, ASN1_STRING_get0_data(si->enc_digest),
	                     (size_t)ASN1_STRING_length(si->enc_digest), abuf, (size_t)alen) == 1)
		ok = 1;
	else
		*why = "signature does not verify with the signer's key";
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(abuf);
	return ok;
}

/* SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
 *   messageDigest DigestInfo }, walked with the bounded reader. */
static sw_err parse_indirect(sw_sig *s, const uint8_t *p, size_t n)
{
	sw_rd r = sw_rd_make(p, n), seq, data, type, di, alg, algoid, dig;
	if (sw_rd_der_expect(&r, SW_DER_SEQUENCE, &seq) || sw_rd_left(&r) != 0)
		return SW_ERR_BAD_DER;
	if (sw_rd_der_expect(&seq, SW_DER_SEQUENCE, &data) || sw_rd_der_expect(&data, SW_DER_OID, &type))
		return SW_ERR_BAD_DER;
	if (type.len != sizeof(OID_SPC_PE_IMAGE_DATA) ||
	    (memcmp(type.p, OID_SPC_PE_IMAGE_DATA, type.len) != 0 &&
	     memcmp(type.p, OID_MS_CODE_IND, type.len) != 0))
		return SW_ERR_UNSUPPORTED; /* not a PE image's signature (CAB, catalog, ...) */
	if (sw_rd_der_expect(&seq, SW_DER_SEQUENCE, &di) || sw_rd_der_expect(&di, SW_DER_SEQUENCE, &alg) ||
	    sw_rd_der_expect(&alg, SW_DER_OID, &algoid) || sw_rd_der_expect(&di, SW_DER_OCTET_STRING, &dig))
		return SW_ERR_BAD_DER;
	const uint8_t *op = algoid.p;
	/* Build an ASN1_OBJECT from the bytes we already checked. */
	uint8_t tmp[64];
	if (algoid.len + 2 > sizeof(tmp) || algoid.len > 127)
		return SW_ERR_BAD_DER;
	tmp[0] = SW_DER_OID;
	tmp[1] = (uint8_t)algoid.len;
	memcpy(tmp + 2, op, algoid.len);
	const uint8_t *tp = tmp;
	ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &tp, (long)algoid.len + 2);
	int nid = obj ? OBJ_obj2nid(obj) : NID_undef;
	ASN1_OBJECT_free(obj);
	if (!sw_md_name(nid))
		return SW_ERR_UNSUPPORTED;
	const EVP_MD *md = EVP_get_digestbynid(nid);
	if (!md || (size_t)EVP_MD_get_size(md) != dig.len || dig.len > SW_DIGEST_MAX)
		return SW_ERR_BAD_DER; /* digest length must be the algorithm's */
	s->md_nid = nid;
	memcpy(s->digest, dig.p, dig.len);
	s->digest_len = dig.len;
	return SW_OK;
}

static int64_t asn1_time_ms(const ASN1_TIME *t)
{
	int64_t ms;
	return sw_asn1_time_ms(t, &ms) ? SW_TIME_NULL : ms;
}

/* PKCS#9 countersignature: a SignerInfo over our encryptedDigest. */
static void parse_pkcs9(sw_sig *s, PKCS7_SIGNER_INFO *si, ASN1_TYPE *val)
{
	if (ASN1_TYPE_get(val) != V_ASN1_SEQUENCE)
		return;
	const uint8_t *p = ASN1_STRING_get0_data(val->value.sequence);
	long n = ASN1_STRING_length(val->value.sequence);
	PKCS7_SIGNER_INFO *cs = d2i_PKCS7_SIGNER_INFO(NULL, &p, n);
	if (!cs)
		return;
	s->cs_kind = SW_CS_PKCS9;
	ASN1_TYPE *st = single_attr(cs->auth_attr, NID_pkcs9_signingTime, V_ASN1_UTCTIME);
	if (!st)
		st = single_attr(cs->auth_attr, NID_pkcs9_signingTime, V_ASN1_GENERALIZEDTIME);
	if (st)
		s->cs_time = asn1_time_ms((const ASN1_TIME *)st->value.asn1_string);
	const char *why = NULL;
	STACK_OF(X509) *certs = s->p7->d.sign->cert;
	s->cs_ok = st && s->cs_time != SW_TIME_NULL &&
	           verify_signer_info(cs, certs, ASN1_STRING_get0_data(si->enc_digest),
	                              (size_t)ASN1_STRING_length(si->enc_digest), &s->cs_signer, &why);
	s->cs_certs = certs;
	PKCS7_SIGNER_INFO_free(cs);
}

/* RFC 3161 token (Microsoft's unauthenticated attribute): a SignedData of a
 * TSTInfo whose message imprint is the digest of our encryptedDigest. The
 * CMS API reads it (tokens may carry non-X.509 certificate choices) and
 * verifies it; CMS_verify is not affected by CVE-2026-45447. */
static void parse_rfc3161(sw_sig *s, PKCS7_SIGNER_INFO *si, ASN1_TYPE *val)
{
	if (ASN1_TYPE_get(val) != V_ASN1_SEQUENCE)
		return;
	s->cs_kind = SW_CS_RFC3161;
	const uint8_t *p = ASN1_STRING_get0_data(val->value.sequence);
	long n = ASN1_STRING_length(val->value.sequence);
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, n);
	if (!cms)
		return;
	s->cs_cms = cms;
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    !oid_is(CMS_get0_eContentType(cms), OID_CT_TSTINFO, sizeof(OID_CT_TSTINFO)))
		return;
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	if (!pos || !*pos || ASN1_STRING_type(*pos) != V_ASN1_OCTET_STRING)
		return;
	const uint8_t *tp = ASN1_STRING_get0_data(*pos);
	long tlen = ASN1_STRING_length(*pos);
	TS_TST_INFO *tst = d2i_TS_TST_INFO(NULL, &tp, tlen);
	if (!tst)
		return;
	const ASN1_GENERALIZEDTIME *gt = TS_TST_INFO_get_time(tst);
	if (gt && ASN1_STRING_type(gt) == V_ASN1_GENERALIZEDTIME)
		s->cs_time = asn1_time_ms(gt);
	/* Imprint: digest of our signature value with the token's algorithm. */
	int imprint_ok = 0;
	TS_MSG_IMPRINT *mi = TS_TST_INFO_get_msg_imprint(tst);
	X509_ALGOR *ia = mi ? TS_MSG_IMPRINT_get_algo(mi) : NULL;
	ASN1_OCTET_STRING *iv = mi ? TS_MSG_IMPRINT_get_msg(mi) : NULL;
	const EVP_MD *imd = ia ? EVP_get_digestbyobj(ia->algorithm) : NULL;
	if (imd && iv && sw_md_name(EVP_MD_get_type(imd))) {
		uint8_t d[EVP_MAX_MD_SIZE];
		unsigned dl = 0;
		if (md_of(imd, ASN1_STRING_get0_data(si->enc_digest),
		          (size_t)ASN1_STRING_length(si->enc_digest), d, &dl) &&
		    (unsigned)ASN1_STRING_length(iv) == dl && memcmp(ASN1_STRING_get0_data(iv), d, dl) == 0)
			imprint_ok = 1;
	}
	TS_TST_INFO_free(tst);
	s->cs_certs_owned = CMS_get1_certs(cms);
	s->cs_certs = s->cs_certs_owned;
	if (!imprint_ok || s->cs_time == SW_TIME_NULL ||
	    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1)
		return;
	/* Signature and content digest only; the TSA chain is judged with
	 * the trust store later, at the token's own time. */
	if (CMS_verify(cms, s->cs_certs_owned, NULL, NULL, NULL, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) ==
	    1) {
		STACK_OF(X509) *signers = CMS_get0_signers(cms);
		s->cs_signer = sk_X509_num(signers) == 1 ? sk_X509_value(signers, 0) : NULL;
		s->cs_ok = s->cs_signer != NULL;
		sk_X509_free(signers);
	}
	ERR_clear_error();
}

static sw_err parse_one(const uint8_t *der, size_t len, size_t entry, int depth, sw_sigs *sigs);

static void parse_unauth(sw_sig *s, PKCS7_SIGNER_INFO *si, size_t entry, int depth, sw_sigs *sigs)
{
	STACK_OF(X509_ATTRIBUTE) *ua = si->unauth_attr;
	int n = sk_X509_ATTRIBUTE_num(ua);
	/* Countersignature first (it belongs to s), then nested signatures. */
	for (int i = 0; i < n && s->cs_kind == SW_CS_NONE; i++) {
		X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(ua, i);
		const ASN1_OBJECT *o = X509_ATTRIBUTE_get0_object(a);
		if (X509_ATTRIBUTE_count(a) < 1)
			continue;
		if (oid_is(o, OID_MS_RFC3161_TS, sizeof(OID_MS_RFC3161_TS)))
			parse_rfc3161(s, si, X509_ATTRIBUTE_get0_type(a, 0));
		else if (oid_is(o, OID_PKCS9_COUNTERSIG, sizeof(OID_PKCS9_COUNTERSIG)))
			parse_pkcs9(s, si, X509_ATTRIBUTE_get0_type(a, 0));
	}
	for (int i = 0; i < n; i++) {
		X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(ua, i);
		if (!oid_is(X509_ATTRIBUTE_get0_object(a), OID_SPC_NESTED_SIG, sizeof(OID_SPC_NESTED_SIG)))
			continue;
		int nv = X509_ATTRIBUTE_count(a);
		for (int j = 0; j < nv; j++) {
			ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, j);
			if (ASN1_TYPE_get(t) != V_ASN1_SEQUENCE)
				continue;
			if (depth + 1 > SW_SIG_MAX_DEPTH || sigs->n >= SW_SIG_MAX_COUNT) {
				sigs->limit_hit = true;
				continue;
			}
			parse_one(ASN1_STRING_get0_data(t->value.sequence),
			          (size_t)ASN1_STRING_length(t->value.sequence), entry, depth + 1, sigs);
		}
	}
}

static sw_err parse_one(const uint8_t *der, size_t len, size_t entry, int depth, sw_sigs *sigs)
{
	if (sigs->n >= SW_SIG_MAX_COUNT) {
		sigs->limit_hit = true;
		return SW_ERR_LIMIT;
	}
	sw_sig *s = &sigs->v[sigs->n++];
	memset(s, 0, sizeof(*s));
	s->entry = entry;
	s->depth = depth;
	s->cs_time = SW_TIME_NULL;
	s->md_nid = NID_undef;

	/* Our own TLV walk first: DER only, and we learn its exact length. */
	sw_rd r = sw_rd_make(der, len), content, whole;
	uint8_t tag;
	if (len == 0) {
		set_why(s, SW_ERR_BAD_PKCS7, "entry holds no signature bytes");
		return SW_OK;
	}
	if (sw_rd_der(&r, &tag, &content, &whole) || tag != SW_DER_SEQUENCE) {
		set_why(s, SW_ERR_BAD_PKCS7, "signature is not a DER SEQUENCE");
		s->der_len = len;
		return SW_OK;
	}
	s->der_len = whole.len;
	const uint8_t *p = der;
	s->p7 = d2i_PKCS7(NULL, &p, (long)whole.len);
	if (!s->p7 || p != der + whole.len) {
		set_why(s, SW_ERR_BAD_PKCS7, "not a PKCS#7 ContentInfo");
		return SW_OK;
	}
	if (!PKCS7_type_is_signed(s->p7) || !s->p7->d.sign || !s->p7->d.sign->contents) {
		set_why(s, SW_ERR_BAD_PKCS7, "not PKCS#7 SignedData");
		return SW_OK;
	}
	PKCS7_SIGNED *sd = s->p7->d.sign;
	if (!oid_is(sd->contents->type, OID_SPC_INDIRECT_DATA, sizeof(OID_SPC_INDIRECT_DATA))) {
		set_why(s, SW_ERR_BAD_PKCS7, "content is not SpcIndirectDataContent");
		return SW_OK;
	}
	ASN1_TYPE *ct = sd->contents->d.other;
	if (!ct || ASN1_TYPE_get(ct) != V_ASN1_SEQUENCE) {
		set_why(s, SW_ERR_BAD_PKCS7, "SpcIndirectDataContent is not a SEQUENCE");
		return SW_OK;
	}
	const uint8_t *cp = ASN1_STRING_get0_data(ct->value.sequence);
	size_t cn = (size_t)ASN1_STRING_length(ct->value.sequence);
	sw_err e = parse_indirect(s, cp, cn);
	if (e) {
		set_why(s, e,
		        e == SW_ERR_UNSUPPORTED ? "unsupported content or digest algorithm"
		                                : "malformed SpcIndirectDataContent");
		/* keep going: the signer is still worth reporting */
	}
	STACK_OF(PKCS7_SIGNER_INFO) *sis = PKCS7_get_signer_info(s->p7);
	if (sk_PKCS7_SIGNER_INFO_num(sis) != 1) {
		set_why(s, SW_ERR_BAD_PKCS7, "Authenticode requires exactly one SignerInfo");
		return SW_OK;
	}
	PKCS7_SIGNER_INFO *si = sk_PKCS7_SIGNER_INFO_value(sis, 0);
	/* Authenticode signs the SEQUENCE's contents, without its tag and length. */
	sw_rd cr = sw_rd_make(cp, cn), inner;
	const char *why = NULL;
	/* The signed contentType attribute must name what the content is. */
	ASN1_TYPE *cty = single_attr(si->auth_attr, NID_pkcs9_contentType, V_ASN1_OBJECT);
	if (si->issuer_and_serial)
		s->signer = X509_find_by_issuer_and_serial(sd->cert, si->issuer_and_serial->issuer,
		                                           si->issuer_and_serial->serial);
	if (!s->signer) {
		why = "signer certificate not carried in the signature";
	} else if (sw_rd_der_expect(&cr, SW_DER_SEQUENCE, &inner) != SW_OK) {
		why = "content is not DER";
	} else {
		s->sig_ok = verify_signer_info(si, sd->cert, inner.p, inner.len, &s->signer, &why) && !e;
		if (s->sig_ok && (!cty || !oid_is(cty->value.object, OID_SPC_INDIRECT_DATA,
		                                  sizeof(OID_SPC_INDIRECT_DATA)))) {
			s->sig_ok = false;
			why = "contentType attribute missing or not SpcIndirectDataContent";
		}
	}
	if (!s->signer)
		set_why(s, SW_ERR_BAD_PKCS7, why ? why : "signer certificate missing");
	else if (!s->sig_ok && why && !s->why[0])
		snprintf(s->why, sizeof(s->why), "%s", why);
	if (s->signer)
		s->issuer = sw_x509_find_issuer(sd->cert, s->signer);
	if (si->enc_digest)
		parse_unauth(s, si, entry, depth, sigs);
	return SW_OK;
}

sw_err sw_authenticode_parse(const uint8_t *der, size_t len, size_t entry, sw_sigs *sigs)
{
	return parse_one(der, len, entry, 0, sigs);
}

void sw_sigs_free(sw_sigs *sigs)
{
	for (size_t i = 0; i < sigs->n; i++) {
		PKCS7_free(sigs->v[i].p7);
		CMS_ContentInfo_free(sigs->v[i].cs_cms);
		sk_X509_pop_free(sigs->v[i].cs_certs_owned, X509_free);
	}
	sigs->n = 0;
}
