/* Security catalogs: sw_catalog_check over the generated fixtures
 * (tests/fixtures/make-catalog.sh: a CTL written without project code and
 * signed by openssl/osslsigncode), their malformed variants, and the whole
 * path through sw_inspect with a lookup that offers catalogs from memory.
 * The expected Authenticode digests are read from catalog/FACTS.tsv. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>

#include "catalog.h"
#include "inspect.h"
#include "pe.h"
#include "tap.h"

static const char *dir;

static uint8_t *slurp(const char *name, size_t *n) { return tap_slurp(dir, name, n); }

static int unhex(const char *h, uint8_t *out, size_t max)
{
	size_t n = strlen(h) / 2;
	if (n > max)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)n;
}

/* FACTS.tsv row for file: its Authenticode SHA-256 and SHA-1, in that order. */
static bool facts(const char *file, sw_digest want[2])
{
	char path[4096], line[512];
	snprintf(path, sizeof(path), "%s/catalog/FACTS.tsv", dir);
	FILE *f = fopen(path, "r");
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f)) {
		char name[128], h1[128], h256[160];
		if (sscanf(line, "%127s %127s %159s", name, h1, h256) != 3 || strcmp(name, file))
			continue;
		want[0].nid = NID_sha256;
		want[1].nid = NID_sha1;
		found = unhex(h256, want[0].d, sizeof(want[0].d)) == 32 &&
		        unhex(h1, want[1].d, sizeof(want[1].d)) == 20;
		want[0].len = 32;
		want[1].len = 20;
	}
	if (f)
		fclose(f);
	return found;
}

static const sw_auth_opts AO = { .verify = true };

static sw_cat_verdict check(const uint8_t *p, size_t n, const sw_digest *w, size_t nw, sw_sig *g)
{
	sw_cat_verdict v = sw_catalog_check(p, n, w, nw, &AO, g);
	return v;
}

static size_t find(const uint8_t *p, size_t n, const void *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(p + i, needle, k) == 0)
			return i;
	return (size_t)-1;
}

/* One DER element at *o with tag: [*a, *b) is the whole element; *o moves
 * into it (into) or past it. */
static bool der_step(const uint8_t *p, size_t n, size_t *o, uint8_t tag, bool into, size_t *a, size_t *b)
{
	size_t off = *o;
	if (off + 2 > n || p[off] != tag)
		return false;
	size_t len = p[off + 1], hl = 2;
	if (len & 0x80) {
		size_t k = len & 0x7f;
		if (k == 0 || k > 4 || off + 2 + k > n)
			return false;
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = len << 8 | p[off + 2 + i];
		hl += k;
	}
	if (len > n - off - hl)
		return false;
	size_t a0, b0;
	*(a ? a : &a0) = off;
	*(b ? b : &b0) = off + hl + len;
	*o = into ? off + hl : off + hl + len;
	return true;
}

/* The Authenticode SHA-256 of a PE without a certificate table, computed
 * here (not by the code under test): the file minus CheckSum and the
 * security directory entry, then, when pad, zeros to a multiple of 8. */
static bool auth_sha256(const uint8_t *b, size_t n, bool pad, uint8_t out[32])
{
	if (n < 0x40)
		return false;
	size_t peo = (size_t)b[0x3c] | (size_t)b[0x3d] << 8 | (size_t)b[0x3e] << 16 | (size_t)b[0x3f] << 24;
	if (peo + 24 + 2 > n)
		return false;
	size_t opt = peo + 24, cks = opt + 64;
	size_t secdir = opt + (b[opt] == 0x0b && b[opt + 1] == 0x02 ? 112 : 96) + 4 * 8;
	static const uint8_t zero[8];
	if (secdir + 8 > n || memcmp(b + secdir, zero, 8) != 0)
		return false; /* a table: not this case */
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned len = 0;
	bool r = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, b, cks) &&
	         EVP_DigestUpdate(c, b + cks + 4, secdir - cks - 4) &&
	         EVP_DigestUpdate(c, b + secdir + 8, n - secdir - 8) &&
	         (!pad || EVP_DigestUpdate(c, zero, (8 - n % 8) % 8)) && EVP_DigestFinal_ex(c, out, &len) &&
	         len == 32;
	EVP_MD_CTX_free(c);
	return r;
}

/* ---- the lookup callback for sw_inspect: catalogs from memory ---------- */
typedef struct offer {
	const char *names[4];
	sw_digest got[2];
	size_t ngot, offered;
	bool with_id; /* offer an identity (memoized in the cache) */
	int64_t mtime;
} offer;

static void offer_find(void *ud, const sw_digest *d, size_t n, sw_catalog_visit_fn visit, void *vctx)
{
	offer *of = ud;
	of->ngot = n < 2 ? n : 2;
	memcpy(of->got, d, of->ngot * sizeof(*d));
	for (int i = 0; i < 4 && of->names[i]; i++) {
		size_t len;
		uint8_t *p = slurp(of->names[i], &len);
		if (!p)
			continue;
		sw_mem_src m;
		sw_src src = sw_src_memory(&m, p, len);
		of->offered++;
		sw_cat_id id = { .path = of->names[i], .size = len, .mtime_ns = of->mtime };
		bool stop = visit(vctx, &src, of->with_id ? &id : NULL);
		free(p);
		if (stop)
			break;
	}
}

/* ---- the memo against the uncached path ------------------------------ */
static bool xeq(X509 *a, X509 *b) { return (!a && !b) || (a && b && X509_cmp(a, b) == 0); }

static bool sig_same(const sw_sig *a, const sw_sig *b)
{
	return a->err == b->err && !strcmp(a->why, b->why) && a->sig_ok == b->sig_ok &&
	       a->md_nid == b->md_nid && a->digest_len == b->digest_len &&
	       !memcmp(a->digest, b->digest, a->digest_len) && a->cs_kind == b->cs_kind &&
	       a->cs_time == b->cs_time && a->cs_ok == b->cs_ok && a->der_len == b->der_len &&
	       a->parsed == b->parsed && xeq(a->signer, b->signer) && xeq(a->issuer, b->issuer) &&
	       xeq(a->cs_signer, b->cs_signer) && sk_X509_num(a->certs) == sk_X509_num(b->certs) &&
	       sk_X509_num(a->cs_certs) == sk_X509_num(b->cs_certs);
}

static sw_cat_verdict memo(sw_cache *c, const char *path, int64_t mtime, const uint8_t *p, size_t n,
                           const sw_digest *w, size_t nw, sw_sig *g)
{
	sw_mem_src m;
	sw_src src = sw_src_memory(&m, p, n);
	sw_cat_id id = { .path = path, .size = n, .mtime_ns = mtime };
	sw_auth_opts o = { .verify = true, .cache = c };
	return sw_catalog_check_memo(&src, &id, w, nw, &o, g);
}

/* The uncached verdict and sig, then the memo's on a miss and on a hit
 * (the catalog given a new identity each time): all the same? */
static int mismatches;
static void compare(sw_cache *c, int64_t mtime, const uint8_t *p, size_t n, const sw_digest *w, size_t nw)
{
	sw_sig a, b, h;
	memset(&a, 0, sizeof(a));
	sw_cat_verdict va = sw_catalog_check(p, n, w, nw, &AO, &a);
	sw_cat_verdict vb = memo(c, "cmp.cat", mtime, p, n, w, nw, &b);
	sw_cat_verdict vh = memo(c, "cmp.cat", mtime, p, n, w, nw, &h);
	if (va != vb || va != vh || !sig_same(&a, &b) || !sig_same(&a, &h)) {
		mismatches++;
		printf("# mismatch at mtime %lld: %d/%d/%d (%s | %s)\n", (long long)mtime, va, vb, vh, a.why,
		       b.why);
	}
	sw_sig_free(&a);
	sw_sig_free(&b);
	sw_sig_free(&h);
}

static sw_err inspect_buf(const uint8_t *p, size_t n, offer *of, const sw_trust *trust, sw_cache *cache,
                          sw_record **r, size_t *nr)
{
	sw_mem_src m;
	sw_src s = sw_src_memory(&m, p, n);
	sw_inspect_opts o = { .trust = trust,
		              .now_ms = sw_time_make(2026, 1, 1, 0, 0, 0),
		              .cache = cache,
		              .catalog_find = of ? offer_find : NULL,
		              .catalog_ud = of };
	char why[256];
	return p ? sw_inspect(&s, &o, r, nr, why, sizeof(why)) : SW_ERR_IO;
}

static sw_err inspect_c(const char *file, offer *of, const sw_trust *trust, sw_cache *cache, sw_record **r,
                        size_t *nr)
{
	size_t n;
	uint8_t *p = slurp(file, &n);
	sw_err e = inspect_buf(p, n, of, trust, cache, r, nr);
	free(p);
	return e;
}

static sw_err inspect(const char *file, offer *of, const sw_trust *trust, sw_record **r, size_t *nr)
{
	return inspect_c(file, of, trust, NULL, r, nr);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	dir = argv[1];
	sw_digest want[2], other[2];
	if (!ok(facts("hello64.exe", want) && facts("hello32.exe", other), "FACTS.tsv readable"))
		return done_testing();
	size_t n, ncms, nself, nwrong;
	uint8_t *cat = slurp("catalog/hello.cat", &n), *cms = slurp("catalog/hello-cms.cat", &ncms),
	        *self = slurp("catalog/hello-selfsigned.cat", &nself),
	        *wrong = slurp("catalog/wrongtype.cat", &nwrong);
	if (!ok(cat && cms && self && wrong, "catalog fixtures readable"))
		return done_testing();
	sw_sig g;

	/* A good catalog (PKCS#7 as signtool writes it) listing the file. */
	is_int(check(cat, n, want, 2, &g), SW_CAT_LISTED, "hello.cat lists hello64.exe");
	ok(g.sig_ok, "its signature verifies over the CTL (%s)", g.why);
	ok(g.signer != NULL, "signer certificate found");
	is_int(g.md_nid, NID_sha256, "the SHA-256 member is preferred");
	is_int(g.cs_kind, SW_CS_RFC3161, "RFC 3161 countersignature read");
	is_int(g.cs_time, sw_time_make(2024, 3, 1, 12, 0, 0), "countersignature time");
	ok(g.cs_ok, "countersignature verifies");
	sw_sig_free(&g);
	/* Each algorithm on its own. */
	is_int(check(cat, n, &want[1], 1, &g), SW_CAT_LISTED, "found by its SHA-1 alone");
	is_int(g.md_nid, NID_sha1, "SHA-1 member matched");
	sw_sig_free(&g);
	is_int(check(cat, n, &want[0], 1, &g), SW_CAT_LISTED, "found by its SHA-256 alone");
	sw_sig_free(&g);
	/* The right bytes under the wrong algorithm do not match. */
	sw_digest liar = want[1];
	liar.nid = NID_sha256;
	is_int(check(cat, n, &liar, 1, &g), SW_CAT_NOT_LISTED, "SHA-1 bytes claimed as SHA-256: not listed");
	is_int(check(cat, n, other, 2, &g), SW_CAT_NOT_LISTED, "hello32.exe is not listed");
	ok(g.signer == NULL && g.certs == NULL, "nothing owned after NOT_LISTED");

	/* CMS form (openssl cms -econtent_type szOID_CTL). */
	is_int(check(cms, ncms, want, 2, &g), SW_CAT_LISTED, "hello-cms.cat lists hello64.exe");
	ok(g.sig_ok, "CMS catalog verifies (%s)", g.why);
	is_int(g.cs_kind, SW_CS_NONE, "no countersignature there");
	sw_sig_free(&g);

	/* Tampered CTL: one byte of the listIdentifier. */
	size_t at = find(cat, n, "Signwatch test !", 16);
	ok(at != (size_t)-1, "listIdentifier located");
	if (at != (size_t)-1) {
		cat[at] ^= 1;
		is_int(check(cat, n, want, 2, &g), SW_CAT_LISTED, "tampered: still lists the file");
		ok(!g.sig_ok && strstr(g.why, "messageDigest"), "tampered: signature rejected (%s)", g.why);
		sw_sig_free(&g);
		cat[at] ^= 1;
	}
	/* Tampered member digest: the file is no longer listed by SHA-256. */
	at = find(cat, n, want[0].d, 32);
	if (ok(at != (size_t)-1, "SHA-256 member located")) {
		cat[at + 5] ^= 0x80;
		is_int(check(cat, n, &want[0], 1, &g), SW_CAT_NOT_LISTED, "altered digest: not listed");
		cat[at + 5] ^= 0x80;
	}

	/* Wrong content type: signed correctly, but not a CTL. */
	is_int(check(wrong, nwrong, want, 2, &g), SW_CAT_MALFORMED, "wrongtype.cat is malformed");
	ok(strstr(g.why, "CTL") != NULL, "with a reason (%s)", g.why);
	ok(g.signer == NULL, "nothing owned after MALFORMED");
	/* ... and the eContentType OID changed in place. */
	static const uint8_t ctl_oid[] = { 0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x01 };
	at = find(cms, ncms, ctl_oid, sizeof(ctl_oid));
	if (ok(at != (size_t)-1, "eContentType located")) {
		cms[at + 10] = 0x02;
		is_int(check(cms, ncms, want, 2, &g), SW_CAT_MALFORMED, "eContentType 311.10.2: malformed");
		cms[at + 10] = 0x01;
	}
	/* An embedded Authenticode signature is not a catalog. */
	size_t nsig;
	uint8_t *pe = slurp("mmsoft-sha1.exe", &nsig);
	is_int(pe ? check(pe, nsig, want, 2, &g) : SW_CAT_MALFORMED, SW_CAT_MALFORMED,
	       "a PE file is malformed");
	free(pe);

	/* Every truncation: a defined verdict, never LISTED. */
	int bad = 0;
	for (size_t cut = 0; cut < n; cut += cut < 256 ? 1 : 13) {
		sw_cat_verdict v = check(cat, cut, want, 2, &g);
		bad += v != SW_CAT_MALFORMED;
		if (v == SW_CAT_LISTED)
			sw_sig_free(&g);
	}
	is_int(bad, 0, "every truncated catalog is malformed");
	/* Byte flips: no verified listing where the flip is inside what the
	 * signature covers: the content (the CTL, through messageDigest), the
	 * signer's issuer and serial, the authenticated attributes and the
	 * signature value. Elsewhere (SignedData's version and digest
	 * algorithms, the certificates, the SignerInfo's version and algorithm
	 * identifiers, the unauthenticated attributes) one may still verify. */
	{
		size_t o = 0, cov[4][2], unauth = 0, x, y;
		bool w = der_step(cat, n, &o, 0x30, true, NULL, NULL) &&            /* ContentInfo */
		         der_step(cat, n, &o, 0x06, false, NULL, NULL) &&           /* contentType */
		         der_step(cat, n, &o, 0xa0, true, NULL, NULL) &&            /* [0] */
		         der_step(cat, n, &o, 0x30, true, NULL, NULL) &&            /* SignedData */
		         der_step(cat, n, &o, 0x02, false, NULL, NULL) &&           /* version */
		         der_step(cat, n, &o, 0x31, false, NULL, NULL) &&           /* digestAlgorithms */
		         der_step(cat, n, &o, 0x30, false, &cov[0][0], &cov[0][1]); /* contentInfo */
		if (w && o < n && cat[o] == 0xa0)
			w = der_step(cat, n, &o, 0xa0, false, &x, &y); /* certificates */
		if (w && o < n && cat[o] == 0xa1)
			w = der_step(cat, n, &o, 0xa1, false, &x, &y);           /* crls */
		w = w && der_step(cat, n, &o, 0x31, true, NULL, NULL) &&         /* signerInfos */
		    der_step(cat, n, &o, 0x30, true, NULL, NULL) &&              /* SignerInfo */
		    der_step(cat, n, &o, 0x02, false, NULL, NULL) &&             /* version */
		    der_step(cat, n, &o, 0x30, false, &cov[1][0], &cov[1][1]) && /* issuerAndSerial */
		    der_step(cat, n, &o, 0x30, false, NULL, NULL) &&             /* digestAlgorithm */
		    der_step(cat, n, &o, 0xa0, false, &cov[2][0], &cov[2][1]) && /* authenticatedAttributes */
		    der_step(cat, n, &o, 0x30, false, NULL, NULL) && /* digestEncryptionAlgorithm */
		    der_step(cat, n, &o, 0x04, false, &cov[3][0], &cov[3][1]) && /* encryptedDigest */
		    der_step(cat, n, &o, 0xa1, false, &unauth, NULL); /* unauthenticatedAttributes */
		static const uint8_t rfc3161_oid[] = { 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04,
			                               0x01, 0x82, 0x37, 0x03, 0x03, 0x01 };
		size_t cs = find(cat, n, rfc3161_oid, sizeof(rfc3161_oid));
		if (ok(w && cs != (size_t)-1 && cs > unauth && cs < unauth + 16 && cov[3][1] == unauth,
		       "hello.cat's SignerInfo walked (unauthenticated attributes at %zu, countersignature "
		       "OID at %zu)",
		       unauth, cs)) {
			int covered = 0, verified = 0;
			for (size_t i = 0; i < unauth;
			     i += 7) { /* a stride: each flip verifies a signature */
				bool in = false;
				for (int k = 0; k < 4; k++)
					in = in || (i >= cov[k][0] && i < cov[k][1]);
				if (!in)
					continue;
				covered++;
				cat[i] ^= 0x5a;
				sw_cat_verdict v = check(cat, n, want, 2, &g);
				if (v == SW_CAT_LISTED) {
					if (g.sig_ok) {
						verified++;
						printf("# flip at %zu: still a verified listing\n", i);
					}
					sw_sig_free(&g);
				}
				cat[i] ^= 0x5a;
			}
			ok(covered > 200, "%d flips inside what the signature covers", covered);
			is_int(verified, 0, "none of them gives a verified listing");
		}
	}

	/* Through sw_inspect: an unsigned PE found in a catalog. */
	char why[256];
	sw_trust *roots = NULL;
	char ca[4096];
	snprintf(ca, sizeof(ca), "%s/pki/roots.pem", dir);
	is_int(sw_trust_load_file(ca, &roots, why, sizeof(why)), SW_OK, "roots.pem loads");
	sw_record *r;
	size_t nr;
	offer of = { .names = { "catalog/hello.cat" } };
	is_int(inspect("hello64.exe", &of, roots, &r, &nr), SW_OK, "hello64.exe inspects");
	ok(of.ngot == 2 && !memcmp(of.got[0].d, want[0].d, 32) && !memcmp(of.got[1].d, want[1].d, 20),
	   "the lookup gets the unsigned file's Authenticode SHA-256 and SHA-1");
	is_int(nr, 1, "one record");
	if (nr == 1) {
		ok(r[0].is_signed, "IsSigned");
		is_str(r[0].signature_type, "Catalog", "SignatureType Catalog");
		is_str(r[0].signer, "MMSoft Design Ltd.", "Signer is the catalog's signer");
		is_str(r[0].issuer, "signwatch Test Code Signing CA", "Issuer");
		is_str(r[0].serial, "4D4D53000001", "serial");
		ok(r[0].is_trusted == SW_YES, "IsTrusted with the test root (%s)",
		   r[0].trust_error ? r[0].trust_error : "");
		is_int(r[0].countersig_time, sw_time_make(2024, 3, 1, 12, 0, 0), "countersignature time");
		is_str(r[0].digest_algorithm, "sha256", "DigestAlgorithm of the member");
		ok(r[0].digest_matches == SW_YES, "DigestMatches");
	}
	sw_records_free(r, nr);
	/* Without a trust store: listed, signed, not trusted. */
	is_int(inspect("hello64.exe", &of, NULL, &r, &nr), SW_OK, "again without roots");
	ok(nr == 1 && r[0].is_signed && r[0].is_trusted == SW_NO, "signed by the catalog, not trusted");
	sw_records_free(r, nr);

	/* An untrusted signer; and it loses to a trusted catalog offered after it. */
	offer su = { .names = { "catalog/hello-selfsigned.cat" } };
	is_int(inspect("hello64.exe", &su, roots, &r, &nr), SW_OK, "self-signed catalog");
	if (nr == 1) {
		is_str(r[0].signature_type, "Catalog", "still a catalog signature");
		is_str(r[0].signer, "Self Signed Dev", "its signer reported");
		ok(r[0].is_trusted == SW_NO && r[0].trust_error, "not trusted (%s)", r[0].trust_error);
	}
	sw_records_free(r, nr);
	offer two = { .names = { "catalog/hello-selfsigned.cat", "catalog/hello.cat",
		                 "catalog/hello-cms.cat" } };
	is_int(inspect("hello64.exe", &two, roots, &r, &nr), SW_OK, "two candidate catalogs");
	ok(nr == 1 && r[0].signer && !strcmp(r[0].signer, "MMSoft Design Ltd.") && r[0].is_trusted == SW_YES,
	   "the trusted one wins");
	is_int(two.offered, 2, "the lookup stops at the first trusted catalog");
	sw_records_free(r, nr);

	/* Chain verdicts are memoized in the worker's cache, which outlives a
	 * trust set: a reload that puts the catalog's signer in Disallowed
	 * must not be answered with the old set's "trusted". */
	sw_cache *cache = sw_cache_new();
	is_int(inspect_c("hello64.exe", &of, roots, cache, &r, &nr), SW_OK, "with a certificate cache");
	ok(nr == 1 && r[0].is_trusted == SW_YES, "trusted, and the verdict memoized");
	sw_records_free(r, nr);
	sw_trust *dis = NULL;
	unsigned char *der = NULL;
	int dl = -1;
	if (check(cat, n, want, 2, &g) == SW_CAT_LISTED) {
		dl = i2d_X509(g.signer, &der);
		sw_sig_free(&g);
	}
	ok(dl > 0 && sw_trust_load_file(ca, &dis, why, sizeof(why)) == SW_OK &&
	           sw_trust_add_distrusted_der(dis, der, (size_t)dl) == SW_OK,
	   "a new trust set distrusting the catalog's signer");
	is_int(inspect_c("hello64.exe", &of, dis, cache, &r, &nr), SW_OK, "same cache, new trust set");
	ok(nr == 1 && r[0].is_trusted == SW_NO && r[0].trust_error && strstr(r[0].trust_error, "Disallowed"),
	   "the distrusted signer is not trusted (%s)", nr == 1 && r[0].trust_error ? r[0].trust_error : "");
	sw_records_free(r, nr);
	OPENSSL_free(der);
	sw_trust_free(dis);
	sw_cache_free(cache);

	/* A catalog-listed file whose security directory names a table too
	 * large to read: the digest skips those bytes and nothing examined
	 * them, so the catalog does not make it trusted. */
	{
		size_t hn;
		uint8_t *h = slurp("hello64.exe", &hn);
		size_t big = SW_PE_TABLE_MAX + 8, pad = (8 - hn % 8) % 8;
		uint8_t *b = h ? calloc(1, hn + pad + big) : NULL;
		if (ok(b != NULL, "hello64.exe with an oversized table built")) {
			memcpy(b, h, hn);
			uint32_t peo = (uint32_t)b[0x3c] | (uint32_t)b[0x3d] << 8 | (uint32_t)b[0x3e] << 16 |
			               (uint32_t)b[0x3f] << 24;
			size_t dd =
			        peo + 24 + (b[peo + 24] == 0x0b && b[peo + 25] == 0x02 ? 112 : 96) + 4 * 8;
			uint32_t va = (uint32_t)(hn + pad), sz = (uint32_t)big;
			for (int k = 0; k < 4; k++) {
				b[dd + (size_t)k] = (uint8_t)(va >> (8 * k));
				b[dd + 4 + (size_t)k] = (uint8_t)(sz >> (8 * k));
			}
			memset(b + va, 0x41, big); /* anything: it is never read */
			is_int(inspect_buf(b, hn + pad + big, &of, roots, NULL, &r, &nr), SW_OK,
			       "oversized-table file inspects");
			ok(nr == 1 && r[0].is_signed && !strcmp(r[0].signature_type, "Catalog"),
			   "still found in the catalog (same Authenticode digest)");
			ok(nr == 1 && r[0].is_trusted == SW_NO && r[0].trust_error &&
			           !strcmp(r[0].trust_error, "layout anomaly"),
			   "but not trusted (%s)", nr == 1 && r[0].trust_error ? r[0].trust_error : "");
			ok(nr == 1 && (r[0].anomalies & SW_ANOM_TABLE_TOO_LARGE) && r[0].n_anomalies == 1 &&
			           !strcmp(r[0].anomaly_v[0], "TableTooLarge"),
			   "the anomaly TableTooLarge set");
			sw_records_free(r, nr);
		}
		free(b);
		free(h);
	}

	/* A file no catalog lists stays unsigned. */
	offer no = { .names = { "catalog/hello.cat" } };
	is_int(inspect("hello32.exe", &no, roots, &r, &nr), SW_OK, "hello32.exe inspects");
	ok(nr == 1 && !r[0].is_signed && r[0].signature_type == NULL, "not listed: unsigned");
	sw_records_free(r, nr);
	/* A file whose size is not a multiple of 8 (hello64.exe plus 3 bytes):
	 * with no table, its Authenticode digest covers zeros padding it to 8,
	 * and that is the digest a catalog lists. */
	{
		sw_digest odd[2];
		size_t on = 0;
		uint8_t *op = slurp("catalog/hello64-odd.exe", &on);
		if (ok(op && on % 8 != 0 && facts("catalog/hello64-odd.exe", odd),
		       "catalog/hello64-odd.exe (%zu bytes) and its FACTS row", on)) {
			uint8_t plain[32], padded[32];
			ok(auth_sha256(op, on, true, padded) && !memcmp(padded, odd[0].d, 32),
			   "FACTS.tsv has its zero-padded Authenticode SHA-256");
			ok(auth_sha256(op, on, false, plain) && memcmp(plain, odd[0].d, 32) != 0,
			   "which differs from the unpadded digest");
			sw_cat_verdict v = check(cat, n, odd, 2, &g);
			is_int(v, SW_CAT_LISTED, "hello.cat lists hello64-odd.exe");
			if (v == SW_CAT_LISTED)
				sw_sig_free(&g);
			offer oo = { .names = { "catalog/hello.cat" } };
			is_int(inspect_buf(op, on, &oo, roots, NULL, &r, &nr), SW_OK,
			       "hello64-odd.exe inspects");
			ok(oo.ngot == 2 && !memcmp(oo.got[0].d, odd[0].d, 32) &&
			           !memcmp(oo.got[1].d, odd[1].d, 20),
			   "the lookup gets its padded Authenticode SHA-256 and SHA-1");
			ok(nr == 1 && r[0].is_signed && r[0].signature_type &&
			           !strcmp(r[0].signature_type, "Catalog") && r[0].is_trusted == SW_YES,
			   "listed: signed by the catalog, trusted (%s)",
			   nr == 1 && r[0].trust_error ? r[0].trust_error : "");
			sw_records_free(r, nr);
		}
		free(op);
	}
	/* A signed file is never looked up. */
	offer never = { .names = { "catalog/hello.cat" } };
	is_int(inspect("mmsoft-sha1.exe", &never, roots, &r, &nr), SW_OK, "signed file inspects");
	ok(never.offered == 0 && nr >= 1 && !strcmp(r[0].signature_type, "Embedded"),
	   "no lookup for a signed file");
	sw_records_free(r, nr);

	/* ---- the catalog memo --------------------------------------------- */
	{
		sw_cache *c = sw_cache_new();
		sw_cache_stats st;
		sw_sig g2;
		is_int(memo(c, "C:\\cat\\hello.cat", 1, cat, n, want, 2, &g), SW_CAT_LISTED, "memo: listed");
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 1 && st.cat_hits == 0 && st.cat_entries == 1 && st.cat_bytes > 0,
		   "first lookup parses (%llu parses, %zu bytes)", (unsigned long long)st.cat_parses,
		   st.cat_bytes);
		is_int(memo(c, "C:\\cat\\hello.cat", 1, cat, n, want, 2, &g2), SW_CAT_LISTED,
		       "again: listed");
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 1 && st.cat_hits == 1, "the second lookup hits the memo");
		ok(sig_same(&g, &g2) && g.signer == g2.signer,
		   "with the same signature (shared certificate)");
		sw_sig_free(&g);
		sw_sig_free(&g2);
		is_int(memo(c, "C:\\cat\\hello.cat", 1, cat, n, other, 2, &g), SW_CAT_NOT_LISTED,
		       "another file, from the memo: not listed");
		ok(g.signer == NULL && g.certs == NULL, "nothing owned after NOT_LISTED");
		is_int(memo(c, "C:\\cat\\hello.cat", 1, cat, n, &want[1], 1, &g), SW_CAT_LISTED,
		       "SHA-1 alone, from the memo");
		is_int(g.md_nid, NID_sha1, "the SHA-1 member");
		sw_sig_free(&g);
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 1 && st.cat_hits == 3, "still one parse");
		/* Changed on disk: a new mtime (and here new bytes) is read again. */
		size_t at2 = find(cat, n, "Signwatch test !", 16);
		if (at2 != (size_t)-1)
			cat[at2] ^= 1;
		is_int(memo(c, "C:\\cat\\hello.cat", 2, cat, n, want, 2, &g), SW_CAT_LISTED,
		       "tampered, new mtime: read again");
		ok(!g.sig_ok, "and its signature no longer verifies (%s)", g.why);
		sw_sig_free(&g);
		if (at2 != (size_t)-1)
			cat[at2] ^= 1;
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 2 && st.cat_evicted == 1 && st.cat_entries == 1,
		   "the stale entry replaced");
		is_int(memo(c, "C:\\cat\\hello.cat", 3, cat, n - 1, want, 2, &g), SW_CAT_MALFORMED,
		       "another size: read again (truncated: malformed)");
		is_int(memo(c, "C:\\cat\\hello.cat", 3, cat, n - 1, want, 2, &g), SW_CAT_MALFORMED,
		       "a malformed catalog is memoized too");
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 3 && st.cat_hits == 4, "one parse for both");
		/* The entry bound: the least recently used goes. */
		sw_catalog_memo_limits(c, 2, 0);
		(void)memo(c, "a.cat", 1, cms, ncms, want, 2, &g);
		sw_sig_free(&g);
		(void)memo(c, "b.cat", 1, self, nself, want, 2, &g);
		sw_sig_free(&g);
		sw_cache_stats_get(c, &st);
		ok(st.cat_entries == 2 && st.cat_evicted == 3, "entries bounded (%zu held, %llu evicted)",
		   st.cat_entries, (unsigned long long)st.cat_evicted);
		is_int(memo(c, "a.cat", 1, cms, ncms, want, 2, &g), SW_CAT_LISTED, "a.cat still held");
		sw_sig_free(&g);
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 5, "without a parse");
		/* The byte bound: a catalog over it is answered, never kept. */
		sw_catalog_memo_limits(c, 0, 1024);
		is_int(memo(c, "big.cat", 1, cat, n, want, 2, &g), SW_CAT_LISTED,
		       "over the byte bound: answered");
		sw_sig_free(&g);
		is_int(memo(c, "big.cat", 1, cat, n, want, 2, &g), SW_CAT_LISTED, "again");
		sw_sig_free(&g);
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 7 && st.cat_bytes <= 1024, "parsed each time, not kept (%zu bytes held)",
		   st.cat_bytes);
		/* A size that is not the source's, no id, no cache: uncached. */
		{
			sw_mem_src m;
			sw_src src = sw_src_memory(&m, cat, n);
			sw_cat_id id = { .path = "odd.cat", .size = n + 1 };
			sw_auth_opts o = { .verify = true, .cache = c };
			is_int(sw_catalog_check_memo(&src, &id, want, 2, &o, &g), SW_CAT_LISTED,
			       "size mismatch");
			sw_sig_free(&g);
			is_int(sw_catalog_check_memo(&src, NULL, want, 2, &o, &g), SW_CAT_LISTED, "no id");
			sw_sig_free(&g);
			o.cache = NULL;
			is_int(sw_catalog_check_memo(&src, &id, want, 2, &o, &g), SW_CAT_LISTED, "no cache");
			sw_sig_free(&g);
			sw_cache_stats_get(c, &st);
			ok(st.cat_parses == 7, "none of them memoized");
		}
		sw_cache_free(c);

		/* The memo's verdict is the uncached one, for every fixture and
		 * query, truncation and byte flip (each its own identity). */
		c = sw_cache_new();
		const uint8_t *fx[] = { cat, cms, self, wrong };
		size_t fxn[] = { n, ncms, nself, nwrong };
		int64_t t = 0;
		for (int f = 0; f < 4; f++) {
			compare(c, ++t, fx[f], fxn[f], want, 2);
			compare(c, ++t, fx[f], fxn[f], other, 2);
			compare(c, ++t, fx[f], fxn[f], &want[1], 1);
			compare(c, ++t, fx[f], fxn[f], &want[0], 1);
			compare(c, ++t, fx[f], fxn[f], &liar, 1);
			sw_digest mix[3] = { other[0], want[1], want[0] };
			compare(c, ++t, fx[f], fxn[f], mix, 3);
		}
		for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 97)
			compare(c, ++t, cat, cut, want, 2);
		for (size_t i = 0; i < n; i += 41) {
			cat[i] ^= 0x5a;
			compare(c, ++t, cat, n, want, 2);
			cat[i] ^= 0x5a;
		}
		is_int(mismatches, 0, "memo and uncached agree on %lld cases", (long long)t);
		sw_cache_free(c);

		/* Through sw_inspect with identities: one parse for two files. */
		c = sw_cache_new();
		offer mo = { .names = { "catalog/hello.cat" }, .with_id = true, .mtime = 7 };
		is_int(inspect_c("hello64.exe", &mo, roots, c, &r, &nr), SW_OK, "inspect with the memo");
		ok(nr == 1 && r[0].is_trusted == SW_YES, "trusted");
		sw_records_free(r, nr);
		is_int(inspect_c("hello64.exe", &mo, roots, c, &r, &nr), SW_OK, "again");
		ok(nr == 1 && r[0].is_signed && !strcmp(r[0].signature_type, "Catalog") &&
		           r[0].is_trusted == SW_YES && !strcmp(r[0].signer, "MMSoft Design Ltd."),
		   "the same record from the memo");
		sw_records_free(r, nr);
		is_int(inspect_c("hello64.exe", &mo, NULL, c, &r, &nr), SW_OK, "again without roots");
		ok(nr == 1 && r[0].is_signed && r[0].is_trusted == SW_NO, "not trusted: no verdict frozen");
		sw_records_free(r, nr);
		sw_cache_stats_get(c, &st);
		ok(st.cat_parses == 1 && st.cat_hits == 2, "one parse, two hits");
		sw_cache_free(c);
	}

	sw_trust_free(roots);
	free(cat);
	free(cms);
	free(self);
	free(wrong);
	return done_testing();
}
