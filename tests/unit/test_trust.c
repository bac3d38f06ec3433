/* Trust anchors per usage (common/trust.c): a root added for time stamping
 * only does not anchor a code-signing chain, and the reverse; ca_file
 * roots anchor both; the chain-verdict memo keys on the usage. Over the
 * generated test PKI (tests/fixtures/pki: one root, a code-signing CA
 * under it with the MMSoft leaf, and the TSA directly under it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tap.h"
#include "trust.h"
#include "x509util.h"

static const char *dir;

static X509 *load(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/pki/%s", dir, name);
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	return x;
}

static sw_trust *with_root(X509 *root, unsigned usages)
{
	sw_trust *t = sw_trust_new();
	unsigned char *der = NULL;
	int n = i2d_X509(root, &der);
	if (t && n > 0 && sw_trust_add_der(t, der, (size_t)n, usages) != SW_OK) {
		sw_trust_free(t);
		t = NULL;
	}
	OPENSSL_free(der);
	return t;
}

static bool verify(const sw_trust *t, sw_cache *c, X509 *leaf, STACK_OF(X509) *extra, int64_t at, sw_usage u,
                   char *why, size_t n)
{
	bool ms;
	why[0] = 0;
	return sw_trust_verify(t, c, leaf, extra, at, u, &ms, why, n);
}

/* A time when every certificate given is valid: an hour after the latest
 * notBefore. */
static int64_t valid_at(X509 *const *v, size_t n)
{
	int64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t nb;
		if (!sw_asn1_time_ms(X509_get0_notBefore(v[i]), &nb) && nb > at)
			at = nb;
	}
	return at + 3600 * 1000;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	dir = argv[1];
	X509 *root = load("root.pem"), *inter = load("inter.pem"), *leaf = load("mmsoft.pem"),
	     *tsa = load("tsa.pem");
	if (!ok(root && inter && leaf && tsa, "test PKI readable")) {
		X509_free(root);
		X509_free(inter);
		X509_free(leaf);
		X509_free(tsa);
		return done_testing();
	}
	X509 *all[] = { root, inter, leaf, tsa };
	int64_t at = valid_at(all, 4);
	STACK_OF(X509) *extra = sk_X509_new_null();
	X509_up_ref(inter);
	sk_X509_push(extra, inter);
	char why[200];

	sw_trust *cs = with_root(root, SW_ANCHOR_CODE_SIGNING), *ts = with_root(root, SW_ANCHOR_TIMESTAMPING),
	         *both = with_root(root, SW_ANCHOR_ALL), *none = with_root(root, 0);
	ok(cs && ts && both && none, "trust sets built");
	is_int(sw_trust_count(cs), 1, "one root for code signing");
	is_int(sw_trust_count(none), 0, "a root for no usage is not added");

	/* Code-signing chain (leaf <- Code Signing CA <- root). */
	ok(verify(cs, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
	   "code-signing root anchors a code-signing chain (%s)", why);
	ok(!verify(ts, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
	   "a time-stamping-only root does not anchor a code-signing chain (%s)", why);
	ok(strstr(why, "chain:") != NULL, "with the chain error as reason");
	ok(verify(both, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
	   "a root for both anchors it (%s)", why);
	ok(!verify(none, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
	   "no anchor, no trust");

	/* Time-stamping chain (TSA <- root). */
	ok(verify(ts, NULL, tsa, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
	   "time-stamping root anchors a TSA chain (%s)", why);
	ok(!verify(cs, NULL, tsa, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
	   "a code-signing-only root does not anchor a time-stamping chain (%s)", why);
	ok(verify(both, NULL, tsa, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
	   "a root for both anchors it (%s)", why);

	/* The same root added twice with one usage each: the usages add up. */
	{
		sw_trust *t = with_root(root, SW_ANCHOR_CODE_SIGNING);
		unsigned char *der = NULL;
		int n = i2d_X509(root, &der);
		ok(t && n > 0 && sw_trust_add_der(t, der, (size_t)n, SW_ANCHOR_TIMESTAMPING) == SW_OK,
		   "same root added again for time stamping");
		ok(t && verify(t, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)) &&
		           verify(t, NULL, tsa, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
		   "then it anchors both usages");
		ok(t && sw_trust_add_der(t, der, (size_t)n, SW_ANCHOR_ALL) == SW_OK,
		   "adding one already present is not an error");
		OPENSSL_free(der);
		sw_trust_free(t);
		sw_trust *x = sw_trust_new();
		static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
		is_int(x ? sw_trust_add_der(x, junk, sizeof(junk), SW_ANCHOR_ALL) : SW_ERR_NOMEM,
		       SW_ERR_BAD_DER, "junk DER refused");
		is_int(sw_trust_count(x), 0, "and not counted");
		sw_trust_free(x);
	}

	/* The memo keys on the usage: the root as its own leaf builds for code
	 * signing against a code-signing-only set; the memoized "trusted"
	 * must not answer the time-stamping question. */
	{
		sw_cache *c = sw_cache_new();
		ok(verify(cs, c, root, NULL, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
		   "root alone, code signing: trusted (%s)", why);
		ok(verify(cs, c, root, NULL, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
		   "again, from the memo");
		ok(!verify(cs, c, root, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
		   "same leaf, same cache, time stamping: not trusted (%s)", why);
		ok(!verify(ts, c, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)) &&
		           verify(cs, c, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
		   "per trust set as well");
		sw_cache_free(c);
	}

	/* ca_file: every root anchors both usages, as before. */
	{
		char ca[4096];
		sw_trust *f = NULL;
		snprintf(ca, sizeof(ca), "%s/pki/roots.pem", dir);
		is_int(sw_trust_load_file(ca, &f, why, sizeof(why)), SW_OK, "roots.pem loads");
		ok(f && verify(f, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
		   "ca_file root anchors code signing (%s)", why);
		ok(f && verify(f, NULL, tsa, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
		   "ca_file root anchors time stamping (%s)", why);
		is_int(sw_trust_count(f), 1, "one root in roots.pem");
		sw_trust_free(f);
	}

	/* Distrusted certificates, added in any order and some twice (the
	 * list is kept sorted as it grows): only a chain through one of them
	 * is refused. */
	{
		static const char *const others[] = { "selfsigned.pem", "contoso.pem",   "hostile-3.pem",
			                              "noeku.pem",      "hostile-1.pem", "expired.pem",
			                              "hostile-4.pem",  "hostile-2.pem" };
		sw_trust *d = with_root(root, SW_ANCHOR_ALL), *d2 = with_root(root, SW_ANCHOR_ALL);
		bool added = d && d2;
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
				X509 *x = load(others[i]);
				unsigned char *der = NULL;
				int len = x ? i2d_X509(x, &der) : -1;
				added = added && len > 0 &&
				        sw_trust_add_distrusted_der(d, der, (size_t)len) == SW_OK &&
				        sw_trust_add_distrusted_der(d2, der, (size_t)len) == SW_OK;
				OPENSSL_free(der);
				X509_free(x);
				if (pass == 0 && i == 3) { /* the intermediate, midway, into d only */
					der = NULL;
					len = i2d_X509(inter, &der);
					added = added && len > 0 &&
					        sw_trust_add_distrusted_der(d, der, (size_t)len) == SW_OK;
					OPENSSL_free(der);
				}
			}
		ok(added, "distrusted certificates added (each twice)");
		ok(d && !verify(d, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)) &&
		           strstr(why, "Disallowed"),
		   "a chain through the distrusted intermediate: not trusted (%s)", why);
		ok(d && verify(d, NULL, tsa, NULL, at, SW_USAGE_TIMESTAMPING, why, sizeof(why)),
		   "a chain not through it: trusted (%s)", why);
		ok(d2 && verify(d2, NULL, leaf, extra, at, SW_USAGE_CODE_SIGNING, why, sizeof(why)),
		   "the same chain, intermediate not distrusted: trusted (%s)", why);
		unsigned char *bad = (unsigned char *)"\x30\x03\x02\x01\x01";
		is_int(d ? sw_trust_add_distrusted_der(d, bad, 5) : SW_OK, SW_ERR_BAD_DER,
		       "not a certificate");
		sw_trust_free(d);
		sw_trust_free(d2);
	}

	sw_trust_free(cs);
	sw_trust_free(ts);
	sw_trust_free(both);
	sw_trust_free(none);
	sk_X509_pop_free(extra, X509_free);
	X509_free(root);
	X509_free(inter);
	X509_free(leaf);
	X509_free(tsa);
	return done_testing();
}
