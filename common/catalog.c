#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

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

/* The memo's parsed form of one catalog: its members' digests, sorted per
 * algorithm, and the signature as sw_signed_content_parse left it. */
#define NALG 5
static const struct {
	int nid;
	size_t len;
} ALGS[NALG] = {
	{ NID_md5, 16 }, { NID_sha1, 20 }, { NID_sha256, 32 }, { NID_sha384, 48 }, { NID_sha512, 64 }
};

typedef struct cat_alg {
	size_t n, cap; /* digests of ALGS[i].len bytes */
	uint8_t *v;
} cat_alg;

typedef struct cat_entry {
	char *path;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
	uint64_t used;       /* LRU tick */
	size_t bytes;        /* accounted size */
	sw_cat_verdict kind; /* MALFORMED, or NOT_LISTED for a well-formed catalog */
	sw_sig sig;          /* owned references; none when MALFORMED */
	cat_alg alg[NALG];
} cat_entry;

static int alg_index(int nid)
{
	for (int i = 0; i < NALG; i++)
		if (ALGS[i].nid == nid)
			return i;
	return -1;
}

static bool collect_add(cat_entry *e, int nid, const uint8_t *d, size_t dl)
{
	int i = alg_index(nid);
	if (i < 0 || dl != ALGS[i].len)
		return true; /* cannot be asked for: lookups use these lengths */
	cat_alg *a = &e->alg[i];
	if (a->n == a->cap) {
		/* At most SW_CAT_MAX_MEMBERS digests in all (one per member). */
		size_t cap = a->cap ? 2 * a->cap : 64;
		if (cap > SW_CAT_MAX_MEMBERS)
			cap = SW_CAT_MAX_MEMBERS;
		if (cap <= a->n)
			return false;
		void *nv = realloc(a->v, cap * dl);
		if (!nv)
			return false;
		a->v = nv;
		a->cap = cap;
	}
	memcpy(a->v + a->n * dl, d, dl);
	a->n++;
	return true;
}

typedef struct walk {
	cat_entry *collect; /* memo: keep every member's digest, match none */
	bool nomem;
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
		if (w->collect) {
			if (!collect_add(w->collect, nid, d, dl)) {
				w->nomem = true;
				w->why = "out of memory";
				return false;
			}
			continue;
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

/* The SignedData verified and the CTL walked: false (sig failed, nothing
 * owned) when malformed. */
static bool verify_walk(const uint8_t *der, size_t len, const sw_auth_opts *o, sw_sig *sig, walk *w)
{
	const uint8_t *ec;
	size_t eclen;
	sw_err e = sw_signed_content_parse(der, len, OID_CTL, sizeof(OID_CTL),
	                                   "content is not a CTL (catalog)", o, sig, &ec, &eclen);
	if (e || !sig->signer) {
		char why[sizeof(sig->why)];
		snprintf(why, sizeof(why), "%s", sig->why[0] ? sig->why : "not a catalog");
		fail(sig, why);
		return false;
	}
	if (!ctl(w, sw_rd_make(ec, eclen))) {
		fail(sig, w->why);
		return false;
	}
	return true;
}

sw_cat_verdict sw_catalog_check(const uint8_t *der, size_t len, const sw_digest *want, size_t nwant,
                                const sw_auth_opts *o, sw_sig *sig)
{
	walk w = { .want = want, .nwant = nwant, .md_nid = 0 };
	if (!verify_walk(der, len, o, sig, &w))
		return SW_CAT_MALFORMED;
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

/* The catalog behind src, read whole into *buf (free it); false with sig
 * saying why (MALFORMED) when over the cap or unreadable. */
static bool read_whole(const sw_src *src, sw_sig *sig, uint8_t **buf, size_t *n)
{
	memset(sig, 0, sizeof(*sig));
	*buf = NULL;
	*n = 0;
	if (src->size > SW_CAT_MAX_BYTES) {
		fail(sig, "catalog larger than the cap");
		sig->err = SW_ERR_LIMIT;
		return false;
	}
	size_t len = (size_t)src->size;
	uint8_t *p = malloc(len ? len : 1);
	if (!p) {
		fail(sig, "out of memory");
		sig->err = SW_ERR_NOMEM;
		return false;
	}
	sw_err e = sw_src_read(src, 0, p, len);
	if (e) {
		free(p);
		memset(sig, 0, sizeof(*sig));
		sig->err = e;
		snprintf(sig->why, sizeof(sig->why), "cannot read the catalog: %s", sw_err_str(e));
		return false;
	}
	*buf = p;
	*n = len;
	return true;
}

sw_cat_verdict sw_catalog_check_src(const sw_src *src, const sw_digest *want, size_t nwant,
                                    const sw_auth_opts *o, sw_sig *sig)
{
	uint8_t *buf;
	size_t n;
	if (!read_whole(src, sig, &buf, &n))
		return SW_CAT_MALFORMED;
	sw_cat_verdict v = sw_catalog_check(buf, n, want, nwant, o, sig);
	free(buf);
	return v;
}

/* ---- the memo -------------------------------------------------------- */

typedef struct cat_memo {
	cat_entry *e[SW_CAT_MEMO_ENTRIES];
	size_t n, max_entries, max_bytes, bytes;
	uint64_t tick;
} cat_memo;

static void entry_free(cat_entry *e)
{
	if (!e)
		return;
	sw_sig_free(&e->sig);
	for (int i = 0; i < NALG; i++)
		free(e->alg[i].v);
	free(e->path);
	free(e);
}

static void memo_free(void *p)
{
	cat_memo *m = p;
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		entry_free(m->e[i]);
	free(m);
}

static cat_memo *memo_of(sw_cache *c)
{
	cat_memo *m = sw_cache_cat_memo(c);
	if (!m && (m = calloc(1, sizeof(*m))) != NULL) {
		m->max_entries = SW_CAT_MEMO_ENTRIES;
		m->max_bytes = SW_CAT_MEMO_BYTES;
		sw_cache_set_cat_memo(c, m, memo_free);
	}
	return m;
}

static void memo_drop(sw_cache *c, cat_memo *m, size_t i)
{
	sw_cache_stats *st = sw_cache_stats_ref(c);
	m->bytes -= m->e[i]->bytes;
	entry_free(m->e[i]);
	m->e[i] = m->e[--m->n];
	st->cat_evicted++;
	st->cat_entries = m->n;
	st->cat_bytes = m->bytes;
}

/* Drop the least recently used entry. */
static void memo_drop_lru(sw_cache *c, cat_memo *m)
{
	size_t lru = 0;
	for (size_t i = 1; i < m->n; i++)
		if (m->e[i]->used < m->e[lru]->used)
			lru = i;
	memo_drop(c, m, lru);
}

void sw_catalog_memo_limits(sw_cache *c, size_t entries, size_t bytes)
{
	cat_memo *m = c ? memo_of(c) : NULL;
	if (!m)
		return;
	if (entries && entries < SW_CAT_MEMO_ENTRIES)
		m->max_entries = entries;
	if (bytes && bytes < SW_CAT_MEMO_BYTES)
		m->max_bytes = bytes;
	while (m->n && (m->n > m->max_entries || m->bytes > m->max_bytes))
		memo_drop_lru(c, m);
}

#define CMP(L)                                                                                               \
	static int cmp##L(const void *a, const void *b) { return memcmp(a, b, L); }
CMP(16)
CMP(20)
CMP(32)
CMP(48)
CMP(64)
static int (*const CMPS[NALG])(const void *, const void *) = { cmp16, cmp20, cmp32, cmp48, cmp64 };

static size_t der_size(X509 *x)
{
	int k = x ? i2d_X509(x, NULL) : 0;
	return k > 0 ? (size_t)k : 0;
}

static size_t certs_size(STACK_OF(X509) *s)
{
	size_t n = 0;
	for (int i = 0; i < sk_X509_num(s); i++)
		n += der_size(sk_X509_value(s, i)) + 64;
	return n;
}

/* Parse der into e. False only when out of memory (e is then half-built:
 * the caller frees it and asks the uncached path). */
static bool entry_parse(const uint8_t *der, size_t len, const sw_auth_opts *o, cat_entry *e)
{
	walk w = { .collect = e };
	memset(&e->sig, 0, sizeof(e->sig));
	if (!verify_walk(der, len, o, &e->sig, &w)) {
		if (w.nomem)
			return false;
		for (int i = 0; i < NALG; i++) {
			free(e->alg[i].v);
			memset(&e->alg[i], 0, sizeof(e->alg[i]));
		}
		e->kind = SW_CAT_MALFORMED;
	} else {
		e->kind = SW_CAT_NOT_LISTED;
	}
	e->bytes = sizeof(*e) + strlen(e->path) + 1;
	for (int i = 0; i < NALG; i++) {
		cat_alg *a = &e->alg[i];
		if (a->n > 1)
			qsort(a->v, a->n, ALGS[i].len, CMPS[i]);
		e->bytes += a->cap * ALGS[i].len;
	}
	/* X509 objects are larger than their DER: count them twice. */
	e->bytes += 2 * (der_size(e->sig.signer) + der_size(e->sig.issuer) + der_size(e->sig.cs_signer) +
	                 certs_size(e->sig.certs) + certs_size(e->sig.cs_certs));
	return true;
}

static bool up_ref(X509 *x) { return !x || X509_up_ref(x) == 1; }

/* *sig = e's signature with new references (the caller owns them). */
static bool sig_copy(const cat_entry *e, sw_sig *sig)
{
	*sig = e->sig;
	sig->signer = sig->issuer = sig->cs_signer = NULL;
	sig->certs = sig->cs_certs = NULL;
	bool ok = true;
	if (e->sig.certs && !(sig->certs = X509_chain_up_ref(e->sig.certs)))
		ok = false;
	if (e->sig.cs_certs && !(sig->cs_certs = X509_chain_up_ref(e->sig.cs_certs)))
		ok = false;
	if (ok && up_ref(e->sig.signer))
		sig->signer = e->sig.signer;
	else
		ok = false;
	if (ok && up_ref(e->sig.issuer))
		sig->issuer = e->sig.issuer;
	else
		ok = false;
	if (ok && up_ref(e->sig.cs_signer))
		sig->cs_signer = e->sig.cs_signer;
	else
		ok = false;
	return ok;
}

/* The answer sw_catalog_check would give, from the parsed form. */
static sw_cat_verdict entry_answer(const cat_entry *e, const sw_digest *want, size_t nwant, sw_sig *sig)
{
	if (e->kind == SW_CAT_MALFORMED) {
		*sig = e->sig; /* err/why; it owns nothing */
		return SW_CAT_MALFORMED;
	}
	/* The earliest digest in want that a member has wins, as in the walk. */
	for (size_t i = 0; i < nwant; i++) {
		int k = alg_index(want[i].nid);
		if (k < 0 || want[i].len != ALGS[k].len || !e->alg[k].n ||
		    !bsearch(want[i].d, e->alg[k].v, e->alg[k].n, ALGS[k].len, CMPS[k]))
			continue;
		if (!sig_copy(e, sig)) {
			sw_sig_free(sig);
			memset(sig, 0, sizeof(*sig));
			fail(sig, "out of memory");
			sig->err = SW_ERR_NOMEM;
			return SW_CAT_MALFORMED;
		}
		sig->md_nid = want[i].nid;
		memcpy(sig->digest, want[i].d, want[i].len);
		sig->digest_len = want[i].len;
		return SW_CAT_LISTED;
	}
	*sig = e->sig;
	sig->signer = sig->issuer = sig->cs_signer = NULL;
	sig->certs = sig->cs_certs = NULL;
	snprintf(sig->why, sizeof(sig->why), "the catalog does not list the file");
	return SW_CAT_NOT_LISTED;
}

static bool same_id(const cat_entry *e, const sw_cat_id *id)
{
	return e->dev == id->dev && e->ino == id->ino && e->size == id->size && e->mtime_ns == id->mtime_ns &&
	       e->ctime_ns == id->ctime_ns;
}

sw_cat_verdict sw_catalog_check_memo(const sw_src *src, const sw_cat_id *id, const sw_digest *want,
                                     size_t nwant, const sw_auth_opts *o, sw_sig *sig)
{
	sw_cache *c = o->cache;
	cat_memo *m = c && id && id->path && id->size == src->size && o->verify ? memo_of(c) : NULL;
	if (!m)
		return sw_catalog_check_src(src, want, nwant, o, sig);
	sw_cache_stats *st = sw_cache_stats_ref(c);
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->e[i]->path, id->path) != 0)
			continue;
		if (same_id(m->e[i], id)) {
			m->e[i]->used = ++m->tick;
			st->cat_hits++;
			return entry_answer(m->e[i], want, nwant, sig);
		}
		memo_drop(c, m, i); /* changed on disk: read it again */
		break;
	}
	uint8_t *buf;
	size_t n;
	if (!read_whole(src, sig, &buf, &n))
		return SW_CAT_MALFORMED;
	st->cat_parses++;
	cat_entry *e = calloc(1, sizeof(*e));
	if (e && !(e->path = strdup(id->path))) {
		free(e);
		e = NULL;
	}
	if (!e || !entry_parse(buf, n, o, e)) {
		entry_free(e);
		sw_cat_verdict v = sw_catalog_check(buf, n, want, nwant, o, sig);
		free(buf);
		return v;
	}
	free(buf);
	e->dev = id->dev;
	e->ino = id->ino;
	e->size = id->size;
	e->mtime_ns = id->mtime_ns;
	e->ctime_ns = id->ctime_ns;
	e->used = ++m->tick;
	sw_cat_verdict v = entry_answer(e, want, nwant, sig);
	if (e->bytes > m->max_bytes) {
		entry_free(e); /* answered, but too big to keep */
		return v;
	}
	/* Evict the least recently used until it fits. */
	while (m->n && (m->n >= m->max_entries || m->bytes + e->bytes > m->max_bytes))
		memo_drop_lru(c, m);
	m->e[m->n++] = e;
	m->bytes += e->bytes;
	st->cat_entries = m->n;
	st->cat_bytes = m->bytes;
	return v;
}
