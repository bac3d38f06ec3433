#include "x509util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "record.h"

static char *entry_utf8(const X509_NAME *name, int nid)
{
	int idx = X509_NAME_get_index_by_NID(name, nid, -1);
	if (idx < 0)
		return NULL;
	ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, s);
	if (n < 0) /* not convertible: show the raw bytes, sanitized */
		return sw_utf8_sanitize((const char *)ASN1_STRING_get0_data(s),
		                        (size_t)ASN1_STRING_length(s));
	char *out = sw_utf8_sanitize((const char *)u, (size_t)n);
	OPENSSL_free(u);
	return out;
}

char *sw_x509_display_name(const X509_NAME *name)
{
	char *s = entry_utf8(name, NID_commonName);
	if (!s || !*s) {
		free(s);
		s = entry_utf8(name, NID_organizationName);
	}
	if (!s || !*s) {
		free(s);
		s = sw_x509_dn(name);
	}
	return s;
}

char *sw_x509_dn(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (!b)
		return NULL;
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	char *out = sw_utf8_sanitize(p ? p : "", n > 0 ? (size_t)n : 0);
	BIO_free(b);
	return out;
}

static const char HEX_UP[] = "0123456789ABCDEF";
static const char HEX_LO[] = "0123456789abcdef";

char *sw_x509_serial_hex(const X509 *x)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	int n = sn ? ASN1_STRING_length(sn) : 0;
	const uint8_t *p = sn ? ASN1_STRING_get0_data(sn) : NULL;
	bool neg = sn && ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER;
	char *out = malloc((size_t)n * 2 + 2);
	if (!out)
		return NULL;
	size_t o = 0;
	if (neg)
		out[o++] = '-';
	for (int i = 0; i < n; i++) {
		out[o++] = HEX_UP[p[i] >> 4];
		out[o++] = HEX_UP[p[i] & 15];
	}
	out[o] = 0;
	return out;
}

void sw_x509_thumbprint(const X509 *x, char out[41])
{
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	out[0] = 0;
	if (!X509_digest(x, EVP_sha1(), d, &n) || n != 20)
		return;
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = HEX_LO[d[i] >> 4];
		out[2 * i + 1] = HEX_LO[d[i] & 15];
	}
	out[40] = 0;
}

size_t sw_x509_crl_urls(const X509 *x, char ***urls)
{
	*urls = NULL;
	STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	if (!dps)
		return 0;
	char **v = calloc(SW_MAX_CRL_URLS, sizeof(*v));
	size_t n = 0;
	for (int i = 0; v && i < sk_DIST_POINT_num(dps) && n < SW_MAX_CRL_URLS; i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if (!dp->distpoint || dp->distpoint->type != 0)
			continue;
		GENERAL_NAMES *gns = dp->distpoint->name.fullname;
		for (int j = 0; j < sk_GENERAL_NAME_num(gns) && n < SW_MAX_CRL_URLS; j++) {
			GENERAL_NAME *gn = sk_GENERAL_NAME_value(gns, j);
			if (gn->type != GEN_URI)
				continue;
			ASN1_IA5STRING *u = gn->d.uniformResourceIdentifier;
			char *s = sw_utf8_sanitize((const char *)ASN1_STRING_get0_data(u),
			                           (size_t)ASN1_STRING_length(u));
			if (s)
				v[n++] = s;
		}
	}
	CRL_DIST_POINTS_free(dps);
	if (!n) {
		free(v);
		return 0;
	}
	*urls = v;
	return n;
}

X509 *sw_x509_find_issuer(STACK_OF(X509) *certs, X509 *x)
{
	/* By name and signature, not X509_check_issued: that also demands
	 * keyCertSign, which a self-signed code-signing leaf lacks. */
	const X509_NAME *want = X509_get_issuer_name(x);
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i);
		if (X509_NAME_cmp(X509_get_subject_name(c), want) != 0)
			continue;
		EVP_PKEY *k = X509_get0_pubkey(c);
		if (k && X509_verify(x, k) == 1)
			return c;
	}
	ERR_clear_error();
	return NULL;
}

int sw_asn1_time_ms(const ASN1_TIME *t, int64_t *ms)
{
	struct tm tm;
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return -1;
	*ms = sw_time_make(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}
