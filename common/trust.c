#include "trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdatomic.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "x509util.h"

/* Anchors per usage: store[u] holds the roots a chain verified for usage u
 * may end at (a root for both usages is in both). */
#define NUSAGES 2

struct sw_trust {
	X509_STORE *store[NUSAGES];
	size_t nroots;
	/* SHA-1 thumbprints of certificates that must not appear in a chain
	 * (Windows' Disallowed store), kept sorted and distinct as they are
	 * added, for bsearch: the set is read-only (and shared across worker
	 * threads) once built, so nothing is sorted while verifying */
	char (*distrusted)[41];
	size_t ndistrusted, cap;
	/* Distinct for every set made: chain verdicts are memoized per set, so
	 * a reload (a new ROOT/Disallowed snapshot or ca_file) never reuses the
	 * verdicts of the set it replaces (the worker caches outlive it). */
	uint64_t gen;
};

/* Microsoft's root CAs by SHA-1 thumbprint: the 1997 and 2001 roots, and
 * those in the code-signing root set (2010, 2011, 2014 TS, 2017 RSA/ECC,
 * 2018 ECC product/TS, 2020 identity verification). */
static const char *const MS_ROOTS[] = {
	"a43489159a520f0d93d032ccaf37e7fe20a8b419", /* Microsoft Root Authority */
	"cdd4eeae6000ac7f40c3802c171e30148030c072", /* Microsoft Root Certificate Authority */
	"3b1efd3a66ea28b16697394703a72ca340a05bd5", /* ... Root Certificate Authority 2010 */
	"8f43288ad272f3103b6fb1428485ea3014c0bcfe", /* ... Root Certificate Authority 2011 */
	"0119e81be9a14cd8e22f40ac118c687ecba3f4d8", /* ... Time Stamp Root CA 2014 */
	"73a5e64a3bff8316ff0edccc618a906e4eae4d74", /* ... RSA Root CA 2017 */
	"999a64c37ff47d9fab95f14769891460eec4c3c5", /* ... ECC Root CA 2017 */
	"06f1aa330b927b753a40e68cdf22e34bcbef3352", /* ... ECC Product Root CA 2018 */
	"31f9fc8ba3805986b721ea7295c65b3a44534274", /* ... ECC TS Root CA 2018 */
	"f40042e2e5f7e8ef8189fed15519aece42c3bfa2", /* ... Identity Verification Root CA 2020 */
};

bool sw_is_microsoft_root(const X509 *x)
{
	char tp[41];
	sw_x509_thumbprint(x, tp);
	for (size_t i = 0; i < sizeof(MS_ROOTS) / sizeof(MS_ROOTS[0]); i++)
		if (strcmp(tp, MS_ROOTS[i]) == 0)
			return true;
	return false;
}

sw_trust *sw_trust_new(void)
{
	static atomic_uint_fast64_t next_gen;
	sw_trust *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	for (int u = 0; u < NUSAGES; u++) {
		if (!(t->store[u] = X509_STORE_new())) {
			sw_trust_free(t);
			return NULL;
		}
	}
	t->gen = (uint64_t)atomic_fetch_add(&next_gen, 1);
	return t;
}

sw_err sw_trust_add_der(sw_trust *t, const uint8_t *der, size_t len, unsigned usages)
{
	const uint8_t *p = der;
	X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
	sw_err e = SW_OK;
	bool added = false;
	if (!x || p != der + len)
		e = SW_ERR_BAD_DER;
	for (int u = 0; !e && u < NUSAGES; u++) {
		if (!(usages & SW_USAGE_BIT(u)))
			continue;
		/* A certificate already in the store is not an error (the OS
		 * store may hold one twice, under two names). */
		if (X509_STORE_add_cert(t->store[u], x) != 1 &&
		    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE)
			e = SW_ERR_CRYPTO;
		else
			added = true;
		ERR_clear_error();
	}
	if (!e && added)
		t->nroots++;
	X509_free(x);
	ERR_clear_error();
	return e;
}

static int tp_cmp(const void *a, const void *b) { return strcmp(a, b); }

sw_err sw_trust_add_distrusted_der(sw_trust *t, const uint8_t *der, size_t len)
{
	const uint8_t *p = der;
	X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
	if (!x || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		return SW_ERR_BAD_DER;
	}
	char tp[41];
	sw_x509_thumbprint(x, tp);
	X509_free(x);
	/* Where it goes: the first entry not below it. */
	size_t lo = 0, hi = t->ndistrusted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(t->distrusted[mid], tp) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->ndistrusted && strcmp(t->distrusted[lo], tp) == 0)
		return SW_OK; /* already distrusted (the OS store may hold one twice) */
	if (t->ndistrusted == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void *nv = realloc(t->distrusted, cap * sizeof(t->distrusted[0]));
		if (!nv)
			return SW_ERR_NOMEM;
		t->distrusted = nv;
		t->cap = cap;
	}
	memmove(t->distrusted[lo + 1], t->distrusted[lo], (t->ndistrusted - lo) * sizeof(t->distrusted[0]));
	memcpy(t->distrusted[lo], tp, sizeof(tp));
	t->ndistrusted++;
	return SW_OK;
}

size_t sw_trust_count(const sw_trust *t) { return t ? t->nroots : 0; }

sw_err sw_trust_load_file(const char *path, sw_trust **out, char *why, size_t n)
{
	sw_trust *t = sw_trust_new();
	if (!t)
		return SW_ERR_NOMEM;
	/* ca_file roots anchor every usage, as they always have: the file is
	 * parsed once, into the first store, and what it held is added to the
	 * others. */
	if (X509_STORE_load_file(t->store[0], path) != 1) {
		unsigned long e = ERR_peek_last_error();
		snprintf(why, n, "%s: cannot load CA certificates: %s", path,
		         e ? ERR_reason_error_string(e) : "unreadable");
		ERR_clear_error();
		sw_trust_free(t);
		return SW_ERR_CONFIG;
	}
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(t->store[0]);
	for (int u = 1; u < NUSAGES; u++) {
		for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
			X509_OBJECT *ob = sk_X509_OBJECT_value(objs, i);
			X509 *x = X509_OBJECT_get0_X509(ob);
			X509_CRL *crl = X509_OBJECT_get0_X509_CRL(ob);
			int r = x     ? X509_STORE_add_cert(t->store[u], x)
			        : crl ? X509_STORE_add_crl(t->store[u], crl)
			              : 1;
			if (r != 1 &&
			    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
				snprintf(why, n, "%s: cannot load CA certificates: out of memory", path);
				ERR_clear_error();
				sw_trust_free(t);
				return SW_ERR_NOMEM;
			}
			ERR_clear_error();
		}
	}
	t->nroots = (size_t)sk_X509_OBJECT_num(objs);
	*out = t;
	return SW_OK;
}

void sw_trust_free(sw_trust *t)
{
	if (!t)
		return;
	for (int u = 0; u < NUSAGES; u++)
		X509_STORE_free(t->store[u]);
	free(t->distrusted);
	free(t);
}

/* EKU rule for code signing, as Windows applies it: the leaf must name
 * codeSigning; an intermediate that restricts EKUs must allow it. */
static bool eku_allows(X509 *x, bool leaf, uint32_t want)
{
	uint32_t flags = X509_get_extension_flags(x);
	if (!(flags & EXFLAG_XKUSAGE))
		return !leaf;
	uint32_t xku = X509_get_extended_key_usage(x);
	return (xku & want) || (!leaf && (xku & XKU_ANYEKU));
}

/* What a chain verdict depends on: the trust set (by generation), the
 * usage (which also picks the anchors), the leaf and the untrusted certificates offered. */
static void chain_key(const sw_trust *t, sw_usage usage, X509 *leaf, STACK_OF(X509) *extra, uint8_t key[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl;
	uint8_t u = (uint8_t)usage;
	memset(key, 0, 32);
	if (!c)
		return;
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, &t->gen, sizeof(t->gen));
	EVP_DigestUpdate(c, &u, 1);
	if (X509_digest(leaf, EVP_sha1(), d, &dl))
		EVP_DigestUpdate(c, d, dl);
	for (int i = 0; i < sk_X509_num(extra); i++)
		if (X509_digest(sk_X509_value(extra, i), EVP_sha1(), d, &dl))
			EVP_DigestUpdate(c, d, dl);
	EVP_DigestFinal_ex(c, key, &dl);
	EVP_MD_CTX_free(c);
}

static int64_t ms_of(const ASN1_TIME *t, int64_t dflt)
{
	int64_t ms;
	return sw_asn1_time_ms(t, &ms) ? dflt : ms;
}

bool sw_trust_verify(const sw_trust *t, sw_cache *cache, X509 *leaf, STACK_OF(X509) *extra, int64_t at_ms,
                     sw_usage usage, bool *root_ms, char *why, size_t n)
{
	*root_ms = false;
	if (!t || !leaf) {
		snprintf(why, n, "no trust store");
		return false;
	}
	uint8_t key[32];
	sw_chain_verdict v;
	chain_key(t, usage, leaf, extra, key);
	if (sw_cache_chain_get(cache, key, at_ms, &v)) {
		*root_ms = v.root_ms;
		if (!v.ok)
			snprintf(why, n, "%s", v.why);
		return v.ok;
	}
	X509_STORE *anchors =
	        t->store[usage == SW_USAGE_TIMESTAMPING ? SW_USAGE_TIMESTAMPING : SW_USAGE_CODE_SIGNING];
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (!ctx || !X509_STORE_CTX_init(ctx, anchors, leaf, extra)) {
		X509_STORE_CTX_free(ctx);
		snprintf(why, n, "out of memory");
		return false;
	}
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(param, (time_t)(at_ms / 1000));
	X509_VERIFY_PARAM_set_purpose(param, usage == SW_USAGE_TIMESTAMPING ? X509_PURPOSE_TIMESTAMP_SIGN
	                                                                    : X509_PURPOSE_ANY);
	int ok = X509_verify_cert(ctx);
	int err = X509_STORE_CTX_get_error(ctx);
	if (ok != 1)
		snprintf(why, n, "chain: %s", X509_verify_cert_error_string(err));
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	int len = sk_X509_num(chain);
	if (ok == 1 && usage == SW_USAGE_CODE_SIGNING) {
		for (int i = 0; i < len - 1; i++) {
			if (!eku_allows(sk_X509_value(chain, i), i == 0, XKU_CODE_SIGN)) {
				snprintf(why, n, "%s lacks the code-signing EKU",
				         i == 0 ? "signer" : "intermediate");
				ok = 0;
				break;
			}
		}
	}
	for (int i = 0; ok == 1 && t->ndistrusted && i < len; i++) {
		char tp[41];
		sw_x509_thumbprint(sk_X509_value(chain, i), tp);
		if (bsearch(tp, t->distrusted, t->ndistrusted, sizeof(t->distrusted[0]), tp_cmp)) {
			snprintf(why, n, "chain: a certificate in it is distrusted (Disallowed store)");
			ok = 0;
		}
	}
	if (ok == 1 && len > 0)
		*root_ms = sw_is_microsoft_root(sk_X509_value(chain, len - 1));
	/* Remember the verdict for the span of time it holds: a good chain
	 * while every certificate in it is valid; a failure that does not
	 * depend on time, always. Time-dependent failures are not kept. */
	memset(&v, 0, sizeof(v));
	v.ok = ok == 1;
	v.root_ms = *root_ms;
	v.from_ms = INT64_MIN;
	v.to_ms = INT64_MAX;
	bool keep = true;
	if (v.ok) {
		for (int i = 0; i < len; i++) {
			X509 *c = sk_X509_value(chain, i);
			int64_t nb = ms_of(X509_get0_notBefore(c), INT64_MAX),
			        na = ms_of(X509_get0_notAfter(c), INT64_MIN);
			if (nb > v.from_ms)
				v.from_ms = nb;
			if (na < v.to_ms)
				v.to_ms = na;
		}
	} else {
		snprintf(v.why, sizeof(v.why), "%s", why);
		keep = err != X509_V_ERR_CERT_NOT_YET_VALID && err != X509_V_ERR_CERT_HAS_EXPIRED &&
		       err != X509_V_ERR_CRL_NOT_YET_VALID && err != X509_V_ERR_CRL_HAS_EXPIRED;
	}
	if (keep)
		sw_cache_chain_put(cache, key, &v);
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return ok == 1;
}
