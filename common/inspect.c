#include "inspect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "authenticode.h"
#include "catalog.h"
#include "pe.h"
#include "x509util.h"

/* Enough for nearly every PE header; a tree of non-PE files costs one
 * small read each. Larger headers are read on demand. */
#define HEAD_FIRST 4096u

typedef struct scan {
	const sw_src *src;
	uint8_t *head; /* the first head_len bytes of the file */
	size_t head_len;
	uint8_t *table; /* the certificate table, when readable */
	size_t table_len;
	sw_pe pe;
	sw_sigs sigs;
	char sha1[41], sha256[65];
	int nids[SW_SIG_MAX_COUNT]; /* distinct Authenticode digest algorithms */
	uint8_t got[SW_SIG_MAX_COUNT][EVP_MAX_MD_SIZE];
	size_t nmd;
	/* catalog lookup (a PE without an embedded signature) */
	const sw_inspect_opts *o;
	sw_digest want[2]; /* the file's Authenticode SHA-256 and SHA-1 */
	sw_sig cat;        /* the best catalog signature found; owned */
	int cat_rank;      /* 0 none, 1 listed, 2 signature verifies, 3 trusted */
	bool cat_root_ms;  /* for rank 3 */
	char cat_why[200];
	unsigned cat_tried;
} scan;

static void hex(const uint8_t *d, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[d[i] >> 4];
		out[2 * i + 1] = h[d[i] & 15];
	}
	out[2 * n] = 0;
}

static sw_err read_head(scan *s, char *why, size_t wl)
{
	uint64_t size = s->src->size;
	size_t want = size < HEAD_FIRST ? (size_t)size : HEAD_FIRST;
	for (int round = 0; round < 3; round++) {
		uint8_t *nb = realloc(s->head, want ? want : 1);
		if (!nb)
			return SW_ERR_NOMEM;
		s->head = nb;
		if (want > s->head_len) {
			sw_err e =
			        sw_src_read(s->src, s->head_len, s->head + s->head_len, want - s->head_len);
			if (e) {
				snprintf(why, wl, "cannot read headers: %s", sw_err_str(e));
				return e;
			}
			s->head_len = want;
		}
		size_t need = 0;
		sw_err e = sw_pe_parse_headers(s->head, s->head_len, size, &s->pe, &need);
		if (e != SW_ERR_TRUNCATED || need <= s->head_len) {
			if (e == SW_ERR_TRUNCATED)
				e = SW_ERR_BAD_PE;
			if (e == SW_ERR_NOT_PE)
				snprintf(why, wl, "not a PE file (no MZ/PE signature)");
			else if (e)
				snprintf(why, wl, "malformed PE headers");
			return e;
		}
		want = need;
	}
	snprintf(why, wl, "malformed PE headers");
	return SW_ERR_BAD_PE;
}

/* Serve [off, off+len) from what is already in memory, else read it. */
static sw_err fetch(scan *s, uint64_t off, size_t len, uint8_t *buf, const uint8_t **out)
{
	if (off + len <= s->head_len) {
		*out = s->head + off;
		return SW_OK;
	}
	if (s->table && off >= s->pe.table_off && off + len <= s->pe.table_off + s->table_len) {
		*out = s->table + (off - s->pe.table_off);
		return SW_OK;
	}
	*out = buf;
	return sw_src_read(s->src, off, buf, len);
}

static sw_err read_table(scan *s)
{
	if (!s->pe.has_secdir || !sw_pe_table_readable(&s->pe))
		return SW_OK;
	s->table_len = (size_t)s->pe.table_size;
	s->table = malloc(s->table_len);
	if (!s->table)
		return SW_ERR_NOMEM;
	const uint8_t *p;
	uint64_t off = s->pe.table_off;
	/* Not through fetch's table branch: the table is what is being filled. */
	uint8_t *keep = s->table;
	s->table = NULL;
	sw_err e = fetch(s, off, s->table_len, keep, &p);
	s->table = keep;
	if (e)
		return e;
	if (p != keep)
		memcpy(keep, p, s->table_len);
	return SW_OK;
}

static void parse_sigs(scan *s, const sw_inspect_opts *o)
{
	if (!s->table)
		return;
	if (sw_pe_parse_table(&s->pe, s->table, s->table_len) != SW_OK)
		return;
	for (size_t i = 0; i < s->pe.nentries; i++) {
		if (!s->pe.entries[i].usable)
			continue;
		const uint8_t *der;
		size_t len;
		sw_pe_entry_blob(&s->pe, i, s->table, &der, &len);
		size_t first = s->sigs.n;
		sw_auth_opts ao = { .verify = !o->signer_only, .cache = o->cache };
		if (sw_authenticode_parse(der, len, i, &ao, &s->sigs) == SW_ERR_LIMIT)
			break;
		if (s->sigs.n > first) {
			if (!s->sigs.v[first].parsed)
				s->pe.anomalies |= SW_ANOM_BAD_SIGNATURE_BLOB;
			sw_pe_check_entry_slack(&s->pe, i, s->table, s->sigs.v[first].der_len);
		}
	}
	if (s->sigs.limit_hit)
		s->pe.anomalies |= SW_ANOM_SIGNATURE_LIMIT;
	/* Entries in file order first, then nested signatures depth-first. */
	sw_sigs *tmp = malloc(sizeof(*tmp));
	if (!tmp)
		return;
	size_t k = 0;
	for (size_t i = 0; i < s->sigs.n; i++)
		if (s->sigs.v[i].depth == 0)
			tmp->v[k++] = s->sigs.v[i];
	for (size_t i = 0; i < s->sigs.n; i++)
		if (s->sigs.v[i].depth != 0)
			tmp->v[k++] = s->sigs.v[i];
	memcpy(s->sigs.v, tmp->v, k * sizeof(tmp->v[0]));
	free(tmp);
}

static void feed_range(EVP_MD_CTX **ctx, size_t nctx, const uint8_t *p, uint64_t off, size_t len,
                       const sw_pe *pe)
{
	/* Skip CheckSum, the security directory entry and the table. */
	uint64_t skips[3][2] = { { pe->checksum_off, pe->checksum_off + 4 },
		                 { pe->secdir_off, pe->secdir_off + (pe->has_secdir ? 8 : 0) },
		                 { 0, 0 } };
	sw_pe_digest_skip_table(pe, &skips[2][0], &skips[2][1]);
	uint64_t a = off, b = off + len;
	while (a < b) {
		uint64_t stop = b;
		bool skip = false;
		for (int k = 0; k < 3; k++) {
			if (skips[k][1] <= skips[k][0])
				continue;
			if (a >= skips[k][0] && a < skips[k][1]) {
				stop = skips[k][1] < b ? skips[k][1] : b;
				skip = true;
				break;
			}
			if (skips[k][0] > a && skips[k][0] < stop)
				stop = skips[k][0];
		}
		if (!skip)
			for (size_t i = 0; i < nctx; i++)
				EVP_DigestUpdate(ctx[i], p + (a - off), (size_t)(stop - a));
		a = stop;
	}
}

static sw_err stream_digests(scan *s, char *why, size_t wl)
{
	for (size_t i = 0; i < s->sigs.n; i++) {
		sw_sig *g = &s->sigs.v[i];
		if (!g->digest_len)
			continue;
		size_t j = 0;
		while (j < s->nmd && s->nids[j] != g->md_nid)
			j++;
		if (j == s->nmd)
			s->nids[s->nmd++] = g->md_nid;
	}
	/* A PE without an embedded signature may be signed by a catalog, which
	 * lists its Authenticode SHA-1 (older catalogs) or SHA-256 digest:
	 * both are computed in the same pass, only when a lookup is wanted. */
	if (!s->sigs.n && s->o->catalog_find) {
		s->want[0].nid = NID_sha256; /* preferred when a catalog lists both */
		s->want[1].nid = NID_sha1;
		for (int k = 0; k < 2; k++)
			s->nids[s->nmd++] = s->want[k].nid;
	}
	EVP_MD_CTX *fctx[2] = { EVP_MD_CTX_new(), EVP_MD_CTX_new() };
	EVP_MD_CTX *actx[SW_SIG_MAX_COUNT] = { 0 };
	uint8_t *buf = malloc(SW_STREAM_CHUNK);
	sw_err e = SW_OK;
	if (!fctx[0] || !fctx[1] || !buf) {
		e = SW_ERR_NOMEM;
		goto out;
	}
	EVP_DigestInit_ex(fctx[0], EVP_sha1(), NULL);
	EVP_DigestInit_ex(fctx[1], EVP_sha256(), NULL);
	for (size_t j = 0; j < s->nmd; j++) {
		actx[j] = EVP_MD_CTX_new();
		if (!actx[j] || !EVP_DigestInit_ex(actx[j], EVP_get_digestbynid(s->nids[j]), NULL)) {
			e = SW_ERR_CRYPTO;
			goto out;
		}
	}
	uint64_t size = s->src->size;
	uint64_t off = 0;
	while (off < size) {
		/* Chunk boundaries at the edges of what is cached, so every
		 * chunk is either all in memory or all to be read. */
		uint64_t lim = off + SW_STREAM_CHUNK;
		uint64_t marks[3] = { s->head_len, s->table ? s->pe.table_off : 0,
			              s->table ? s->pe.table_off + s->table_len : 0 };
		for (int k = 0; k < 3; k++)
			if (marks[k] > off && marks[k] < lim)
				lim = marks[k];
		if (lim > size)
			lim = size;
		const uint8_t *p;
		e = fetch(s, off, (size_t)(lim - off), buf, &p);
		if (e) {
			snprintf(why, wl, "file changed or unreadable while hashing: %s", sw_err_str(e));
			goto out;
		}
		EVP_DigestUpdate(fctx[0], p, (size_t)(lim - off));
		EVP_DigestUpdate(fctx[1], p, (size_t)(lim - off));
		feed_range(actx, s->nmd, p, off, (size_t)(lim - off), &s->pe);
		off = lim;
	}
	/* Without a certificate table the image is hashed as if padded with
	 * zeros to 8 bytes, as signing would pad it (osslsigncode, and
	 * CryptCATAdminCalcHashFromFileHandle, which catalogs are made with). */
	uint64_t from, to;
	sw_pe_digest_skip_table(&s->pe, &from, &to);
	if (to == from && size % 8) {
		static const uint8_t zero[8];
		for (size_t j = 0; j < s->nmd; j++)
			EVP_DigestUpdate(actx[j], zero, (size_t)(8 - size % 8));
	}
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned dl;
	EVP_DigestFinal_ex(fctx[0], d, &dl);
	hex(d, dl, s->sha1);
	EVP_DigestFinal_ex(fctx[1], d, &dl);
	hex(d, dl, s->sha256);
	for (size_t j = 0; j < s->nmd; j++) {
		EVP_DigestFinal_ex(actx[j], s->got[j], &dl);
		for (int k = 0; k < 2; k++) /* the catalog lookup's, when wanted */
			if (s->want[k].nid && s->want[k].nid == s->nids[j]) {
				s->want[k].len = dl;
				memcpy(s->want[k].d, s->got[j], dl);
			}
	}
out:
	for (size_t j = 0; j < s->nmd; j++)
		EVP_MD_CTX_free(actx[j]);
	EVP_MD_CTX_free(fctx[0]);
	EVP_MD_CTX_free(fctx[1]);
	free(buf);
	return e;
}

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

/* The signer's columns, and its countersignature's. */
static void fill_identity(const sw_sig *g, const char *type, sw_record *r)
{
	r->digest_algorithm = xstrdup(sw_md_name(g->md_nid));
	if (g->signer) {
		r->is_signed = true;
		r->signature_type = xstrdup(type);
		r->signer = sw_x509_display_name(X509_get_subject_name(g->signer));
		r->signer_dn = sw_x509_dn(X509_get_subject_name(g->signer));
		r->issuer = sw_x509_display_name(X509_get_issuer_name(g->signer));
		r->issuer_dn = sw_x509_dn(X509_get_issuer_name(g->signer));
		r->serial = sw_x509_serial_hex(g->signer);
		sw_x509_thumbprint(g->signer, r->signer_hash);
		if (g->issuer)
			sw_x509_thumbprint(g->issuer, r->issuer_hash);
		r->n_crl_urls = sw_x509_crl_urls(g->signer, &r->crl_urls);
		int64_t t;
		if (!sw_asn1_time_ms(X509_get0_notBefore(g->signer), &t))
			r->cert_created = t;
		if (!sw_asn1_time_ms(X509_get0_notAfter(g->signer), &t))
			r->cert_expires = t;
	}
	if (g->cs_kind != SW_CS_NONE) {
		r->countersig_type = xstrdup(g->cs_kind == SW_CS_RFC3161 ? "rfc3161" : "pkcs9");
		r->countersig_time = g->cs_time;
	}
}

/* IsTrusted of a signature whose digest check gave dig_ok; why (n bytes)
 * says why not. The same rule for embedded and catalog signatures. */
static bool sig_trusted(const sw_sig *g, bool dig_ok, uint32_t anomalies, const sw_inspect_opts *o,
                        bool *root_ms, char *why, size_t n)
{
	*root_ms = false;
	if (!g->signer)
		snprintf(why, n, "not signed: %s", g->why[0] ? g->why : "no signer certificate");
	else if (!g->sig_ok)
		snprintf(why, n, "signature: %s", g->why[0] ? g->why : "does not verify");
	else if (!dig_ok)
		snprintf(why, n, "file digest does not match the signed digest");
	else if (anomalies)
		snprintf(why, n, "layout anomaly");
	else if (!o->trust)
		snprintf(why, n, "no trust store (no ca_file, and no OS root store)");
	else {
		/* The countersignature's time counts only when it verifies and its
		 * own chain builds to a timestamping root. */
		int64_t at = o->now_ms;
		if (g->cs_ok && g->cs_signer && g->cs_time != SW_TIME_NULL) {
			bool ms;
			char tw[160];
			if (sw_trust_verify(o->trust, o->cache, g->cs_signer, g->cs_certs, g->cs_time,
			                    SW_USAGE_TIMESTAMPING, &ms, tw, sizeof(tw)))
				at = g->cs_time;
		}
		return sw_trust_verify(o->trust, o->cache, g->signer, g->certs, at, SW_USAGE_CODE_SIGNING,
		                       root_ms, why, n);
	}
	return false;
}

static void set_trust(sw_record *r, bool trusted, bool root_ms, const char *why)
{
	r->is_trusted = trusted ? SW_YES : SW_NO;
	r->is_root_signer_microsoft = root_ms ? SW_YES : SW_NO;
	if (!trusted)
		r->trust_error = strdup(why);
}

static void fill_signature(scan *s, const sw_sig *g, size_t idx, sw_record *r, const sw_inspect_opts *o)
{
	r->signature_index = (int)idx;
	r->is_nested = g->depth > 0;
	if (g->err)
		r->error = xstrdup(g->why[0] ? g->why : sw_err_str(g->err));
	fill_identity(g, "Embedded", r);
	if (o->signer_only)
		return;

	bool dig_ok = false;
	for (size_t j = 0; j < s->nmd; j++)
		if (s->nids[j] == g->md_nid && g->digest_len &&
		    memcmp(s->got[j], g->digest, g->digest_len) == 0)
			dig_ok = true;
	r->digest_matches = g->digest_len ? (dig_ok ? SW_YES : SW_NO) : SW_NULL;

	char why[200] = "";
	bool root_ms = false;
	bool trusted = sig_trusted(g, dig_ok, s->pe.anomalies, o, &root_ms, why, sizeof(why));
	set_trust(r, trusted, root_ms, why);
}

/* One candidate catalog from the caller's lookup. The first trusted one
 * wins; without one, the first whose signature verifies; else the first
 * that lists the file. Returns true to stop the lookup. */
static bool catalog_visit(void *vctx, const sw_src *src, const sw_cat_id *id)
{
	scan *s = vctx;
	const sw_inspect_opts *o = s->o;
	if (s->cat_tried >= SW_CAT_MAX_TRIED)
		return true;
	s->cat_tried++;
	sw_auth_opts ao = { .verify = true, .cache = o->cache };
	sw_sig g;
	if (sw_catalog_check_memo(src, id, s->want, 2, &ao, &g) != SW_CAT_LISTED)
		return false;
	char why[200] = "";
	bool root_ms = false;
	/* The member's digest is the file's: that is how it was found. */
	bool trusted = sig_trusted(&g, true, s->pe.anomalies, o, &root_ms, why, sizeof(why));
	int rank = trusted ? 3 : g.sig_ok ? 2 : 1;
	if (rank <= s->cat_rank) {
		sw_sig_free(&g);
		return false;
	}
	sw_sig_free(&s->cat);
	s->cat = g;
	s->cat_rank = rank;
	s->cat_root_ms = root_ms;
	snprintf(s->cat_why, sizeof(s->cat_why), "%s", why);
	return rank == 3;
}

/* The Authenticode SHA-256 and SHA-1, which stream_digests filled in. */
static void catalog_lookup(scan *s, const sw_inspect_opts *o)
{
	o->catalog_find(o->catalog_ud, s->want, 2, catalog_visit, s);
}

static void fill_catalog(scan *s, sw_record *r)
{
	fill_identity(&s->cat, "Catalog", r);
	r->digest_matches = SW_YES;
	set_trust(r, s->cat_rank == 3, s->cat_root_ms, s->cat_why);
}

void sw_records_free(sw_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sw_record_free(&recs[i]);
	free(recs);
}

sw_err sw_inspect(const sw_src *src, const sw_inspect_opts *o, sw_record **recs, size_t *nrec, char *why,
                  size_t whylen)
{
	scan *s = calloc(1, sizeof(*s));
	*recs = NULL;
	*nrec = 0;
	why[0] = 0;
	if (!s)
		return SW_ERR_NOMEM;
	s->src = src;
	s->o = o;
	sw_err e = read_head(s, why, whylen);
	if (!e) {
		e = read_table(s);
		if (e)
			snprintf(why, whylen, "cannot read the certificate table: %s", sw_err_str(e));
	}
	if (!e) {
		parse_sigs(s, o);
		if (!o->signer_only)
			e = stream_digests(s, why, whylen);
		if (!e && !o->signer_only && !s->sigs.n && o->catalog_find)
			catalog_lookup(s, o);
	}
	if (!e) {
		size_t n = s->sigs.n ? s->sigs.n : 1;
		sw_record *v = calloc(n, sizeof(*v));
		if (!v) {
			e = SW_ERR_NOMEM;
		} else {
			for (size_t i = 0; i < n; i++) {
				sw_record *r = &v[i];
				sw_record_init(r);
				r->file_size = src->size;
				memcpy(r->sha1, s->sha1, sizeof(r->sha1));
				memcpy(r->sha256, s->sha256, sizeof(r->sha256));
				sw_record_set_anomalies(r, s->pe.anomalies);
				if (s->sigs.n) {
					fill_signature(s, &s->sigs.v[i], i, r, o);
					continue;
				}
				if (s->cat_rank)
					fill_catalog(s, r);
				else if (!o->signer_only) {
					r->is_trusted = r->is_root_signer_microsoft = SW_NO;
					r->trust_error = strdup("not signed");
				}
				if (s->pe.anomalies & SW_ANOM_TABLE_OUTSIDE_FILE)
					r->error = strdup("certificate table lies outside the file");
				else if (s->pe.anomalies & SW_ANOM_TABLE_TOO_LARGE)
					r->error = strdup("certificate table larger than the cap");
				else if (s->pe.table_size && !s->pe.nentries)
					r->error = strdup("certificate table holds no readable entry");
				else if (s->pe.table_size)
					r->error =
					        strdup("no entry of revision 2.0 and type PKCS#7 SignedData");
			}
			*recs = v;
			*nrec = n;
		}
	}
	sw_sigs_free(&s->sigs);
	sw_sig_free(&s->cat);
	free(s->head);
	free(s->table);
	free(s);
	return e;
}
