/* signwatch: the two HTTPS transports (see output.h), both on curl_uv.c.
 *
 * https_json       NDJSON (one JSON object a line) POSTed to `url`,
 *                  Content-Type application/x-ndjson, gzip optional, a
 *                  bearer token or mutual TLS. 2xx: accepted; 401, 408,
 *                  429 and 5xx: retried (Retry-After honoured); any other
 *                  4xx: permanent (the same batch cannot succeed).
 * logs_ingestion   Azure Monitor Logs Ingestion API (Microsoft Sentinel):
 *                  an OAuth2 client-credentials token from Entra ID (a
 *                  client secret, or a certificate: an RS256 JWT client
 *                  assertion), cached until 5 minutes before it expires;
 *                  POST {endpoint}/dataCollectionRules/{dcr}/streams/
 *                  {stream}?api-version=2023-01-01 with a gzipped JSON
 *                  array of at most 1 MB (a larger batch goes in several
 *                  calls); 204 (any 2xx): accepted; 401: the token is
 *                  fetched again once, then the call retried; 429 and 5xx
 *                  retried with Retry-After; 403/404 retried too (a new
 *                  role assignment takes minutes to apply, a DCR may be
 *                  being deployed); other 4xx permanent.
 *
 * Every item gets "IdempotencyKey" and "ItemType" ("record" or "summary");
 * logs_ingestion items also get "TimeGenerated" (the record's Timestamp,
 * a summary's ReportedAt) which the DCR's `source` transform keeps.
 * Secrets (client secret, bearer token, access token, assertion) are never
 * logged and never put in a `why`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "curl_uv.h"
#include "output.h"
#include "platform.h"
#include "record.h"
#include "sw_attr.h"

#define LI_MAX_BODY (1000 * 1000)   /* the API's limit is 1 MB a call; keep under it */
#define TOKEN_MARGIN_MS (5 * 60000) /* refresh this long before expiry */
#define LI_SCOPE "https://monitor.azure.com//.default"

struct sw_output {
	uv_loop_t *loop;
	sw_http *http;
	sw_out_type type;
	char *id;
	char *url; /* https_json's url, or the full Logs Ingestion URL */
	char *ca_file, *cert, *key, *pin;
	bool gzip;
	char *secret; /* bearer token, or the client secret */
	/* logs_ingestion */
	char *token_url, *client_id;
	EVP_PKEY *assert_key; /* certificate credential: the key that signs */
	char x5t[64];         /* base64url SHA-1 of the certificate's DER */
	char *token;          /* the access token */
	int64_t token_exp_ms; /* its expiry (wall clock, ms) */

	/* the send in flight */
	sw_output_done_fn done;
	void *ud;
	char **chunks;
	size_t *chunk_len, nchunks, cur;
	bool refreshed; /* the 401 refresh of this send is used */
	sw_http_req *req;
	/* a failure found inside send, reported from the loop */
	uv_timer_t defer;
	sw_err d_e;
	int d_retry, d_perm;
	char d_why[256];
	bool closing;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ---- finishing a send ------------------------------------------------------ */

static void clear_send(sw_output *o)
{
	for (size_t i = 0; i < o->nchunks; i++)
		free(o->chunks[i]);
	free(o->chunks);
	free(o->chunk_len);
	o->chunks = NULL;
	o->chunk_len = NULL;
	o->nchunks = o->cur = 0;
	o->refreshed = false;
}

static void complete(sw_output *o, sw_err e, int retry_after_s, int permanent, const char *why)
{
	sw_output_done_fn done = o->done;
	void *ud = o->ud;
	o->done = NULL;
	o->ud = NULL;
	clear_send(o);
	if (done)
		done(ud, e, retry_after_s, permanent, why ? why : "");
}

static void defer_cb(uv_timer_t *t)
{
	sw_output *o = t->data;
	complete(o, o->d_e, o->d_retry, o->d_perm, o->d_why);
}

/* Report a failure found inside send() later, as output.h asks. */
static void fail_later(sw_output *o, sw_err e, int perm, const char *fmt, ...) SW_PRINTF(4, 5);
static void fail_later(sw_output *o, sw_err e, int perm, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->d_why, sizeof(o->d_why), fmt, ap);
	va_end(ap);
	o->d_e = e;
	o->d_retry = 0;
	o->d_perm = perm;
	uv_timer_start(&o->defer, defer_cb, 0, 0);
}

/* ---- item shaping ---------------------------------------------------------- */

/* payload plus IdempotencyKey, ItemType (and TimeGenerated for Sentinel),
 * compact JSON, malloc'd; NULL when the payload is not a JSON object. */
static char *shape(const sw_item *it, bool time_generated)
{
	json_error_t jerr;
	json_t *o = json_loads(it->json, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "IdempotencyKey", json_string(it->idem_key ? it->idem_key : ""));
	json_object_set_new(o, "ItemType", json_string(it->kind == SW_ITEM_SUMMARY ? "summary" : "record"));
	if (time_generated && !json_object_get(o, "TimeGenerated")) {
		json_t *t = json_object_get(o, "Timestamp");
		if (!json_is_string(t))
			t = json_object_get(o, "ReportedAt");
		if (json_is_string(t)) {
			json_object_set(o, "TimeGenerated", t);
		} else {
			char buf[40];
			json_object_set_new(o, "TimeGenerated",
			                    json_string(sw_time_iso(sw_plat_now_ms(), buf, sizeof(buf))));
		}
	}
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

static bool add_chunk(sw_output *o, char *buf, size_t len)
{
	char **c = realloc(o->chunks, (o->nchunks + 1) * sizeof(*c));
	if (!c)
		return false;
	o->chunks = c;
	size_t *l = realloc(o->chunk_len, (o->nchunks + 1) * sizeof(*l));
	if (!l)
		return false;
	o->chunk_len = l;
	o->chunks[o->nchunks] = buf;
	o->chunk_len[o->nchunks++] = len;
	return true;
}

typedef struct buf {
	char *p;
	size_t len, cap;
} buf;

static bool buf_add(buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return false;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return true;
}

/* NDJSON, one chunk. */
static sw_err build_ndjson(sw_output *o, const sw_item *items, size_t n, char *why, size_t wn)
{
	buf b = { 0 };
	for (size_t i = 0; i < n; i++) {
		char *s = shape(&items[i], false);
		if (!s) {
			free(b.p);
			snprintf(why, wn, "item %s is not a JSON object",
			         items[i].idem_key ? items[i].idem_key : "?");
			return SW_ERR_USAGE;
		}
		bool ok = buf_add(&b, s, strlen(s)) && buf_add(&b, "\n", 1);
		free(s);
		if (!ok) {
			free(b.p);
			snprintf(why, wn, "out of memory");
			return SW_ERR_NOMEM;
		}
	}
	if (!add_chunk(o, b.p, b.len)) {
		free(b.p);
		snprintf(why, wn, "out of memory");
		return SW_ERR_NOMEM;
	}
	return SW_OK;
}

/* JSON arrays of at most LI_MAX_BODY bytes each (before gzip). */
static sw_err build_arrays(sw_output *o, const sw_item *items, size_t n, char *why, size_t wn)
{
	buf b = { 0 };
	size_t in_chunk = 0;
	for (size_t i = 0; i < n; i++) {
		char *s = shape(&items[i], true);
		if (!s) {
			free(b.p);
			snprintf(why, wn, "item %s is not a JSON object",
			         items[i].idem_key ? items[i].idem_key : "?");
			return SW_ERR_USAGE;
		}
		size_t len = strlen(s);
		if (len + 2 > LI_MAX_BODY) {
			free(s);
			free(b.p);
			snprintf(why, wn, "item %s is larger than the API's 1 MB a call",
			         items[i].idem_key ? items[i].idem_key : "?");
			return SW_ERR_LIMIT;
		}
		if (in_chunk && b.len + 1 + len + 1 > LI_MAX_BODY) {
			bool ok = buf_add(&b, "]", 1) && add_chunk(o, b.p, b.len);
			if (!ok) {
				free(s);
				free(b.p);
				snprintf(why, wn, "out of memory");
				return SW_ERR_NOMEM;
			}
			memset(&b, 0, sizeof(b));
			in_chunk = 0;
		}
		bool ok = buf_add(&b, in_chunk ? "," : "[", 1) && buf_add(&b, s, len);
		free(s);
		if (!ok) {
			free(b.p);
			snprintf(why, wn, "out of memory");
			return SW_ERR_NOMEM;
		}
		in_chunk++;
	}
	if (in_chunk && !(buf_add(&b, "]", 1) && add_chunk(o, b.p, b.len))) {
		free(b.p);
		snprintf(why, wn, "out of memory");
		return SW_ERR_NOMEM;
	}
	return SW_OK;
}

/* ---- Entra ID tokens --------------------------------------------------------- */

static bool form_add(buf *b, const char *k, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	if ((b->len && !buf_add(b, "&", 1)) || !buf_add(b, k, strlen(k)) || !buf_add(b, "=", 1))
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char e[3];
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			if (!buf_add(b, (const char *)p, 1))
				return false;
		} else {
			e[0] = '%';
			e[1] = hex[*p >> 4];
			e[2] = hex[*p & 15];
			if (!buf_add(b, e, 3))
				return false;
		}
	}
	return true;
}

static void b64url(const unsigned char *in, size_t n, char *out, size_t cap)
{
	/* EVP_EncodeBlock writes 4 * ceil(n / 3) + 1 bytes */
	if (cap < 4 * ((n + 2) / 3) + 1) {
		out[0] = 0;
		return;
	}
	int k = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	while (k > 0 && out[k - 1] == '=')
		k--;
	out[k] = 0;
	for (int i = 0; i < k; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static char *b64url_dup(const unsigned char *in, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	char *s = malloc(cap);
	if (s)
		b64url(in, n, s, cap);
	return s;
}

/* The client assertion: a JWT signed RS256 by the certificate's key. */
static char *make_assertion(sw_output *o)
{
	unsigned char rnd[16];
	char jti[40];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return NULL;
	rnd[6] = (unsigned char)((rnd[6] & 0x0f) | 0x40);
	rnd[8] = (unsigned char)((rnd[8] & 0x3f) | 0x80);
	snprintf(jti, sizeof(jti), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
	         rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);
	int64_t now = sw_plat_now_ms() / 1000;
	json_t *h = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "x5t", o->x5t);
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", o->token_url, "iss", o->client_id,
	                      "sub", o->client_id, "jti", jti, "nbf", (json_int_t)now, "iat", (json_int_t)now,
	                      "exp", (json_int_t)(now + 600));
	char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	char *ps = p ? json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(h);
	json_decref(p);
	char *h64 = hs ? b64url_dup((unsigned char *)hs, strlen(hs)) : NULL;
	char *p64 = ps ? b64url_dup((unsigned char *)ps, strlen(ps)) : NULL;
	free(hs);
	free(ps);
	char *out = NULL;
	if (h64 && p64) {
		size_t sl = strlen(h64) + 1 + strlen(p64);
		char *signing = malloc(sl + 1);
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned char *sig = NULL;
		size_t siglen = 0;
		if (signing && c) {
			snprintf(signing, sl + 1, "%s.%s", h64, p64);
			if (EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, o->assert_key) == 1 &&
			    EVP_DigestSign(c, NULL, &siglen, (unsigned char *)signing, sl) == 1 &&
			    (sig = malloc(siglen)) != NULL &&
			    EVP_DigestSign(c, sig, &siglen, (unsigned char *)signing, sl) == 1) {
				char *s64 = b64url_dup(sig, siglen);
				if (s64 && (out = malloc(sl + 1 + strlen(s64) + 1)))
					sprintf(out, "%s.%s", signing, s64);
				free(s64);
			}
		}
		free(sig);
		EVP_MD_CTX_free(c);
		free(signing);
	}
	free(h64);
	free(p64);
	return out;
}

static void post_chunk(sw_output *o);

/* The "error" code of an OAuth2 error answer (never error_description,
 * which may echo request details). */
static void oauth_error(const char *body, char *out, size_t n)
{
	out[0] = 0;
	json_error_t jerr;
	json_t *j = json_loads(body, 0, &jerr);
	const char *e = json_string_value(json_object_get(j, "error"));
	if (e) {
		size_t i = 0;
		for (; e[i] && i + 1 < n && i < 64; i++)
			out[i] = (e[i] >= 'a' && e[i] <= 'z') || e[i] == '_' ? e[i] : '?';
		out[i] = 0;
	}
	json_decref(j);
}

static bool retryable_status(const sw_output *o, long st)
{
	if (st == 401 || st == 408 || st == 429 || st >= 500)
		return true;
	if (o->type == SW_OUT_LOGS_INGESTION && (st == 403 || st == 404))
		return true;
	return st < 400; /* 1xx/3xx: unexpected, never permanent */
}

static void token_done(void *ud, const sw_http_response *r)
{
	sw_output *o = ud;
	o->req = NULL;
	if (r->err) {
		char why[300];
		snprintf(why, sizeof(why), "token request to Entra ID failed: %s%s",
		         r->tls_verify_failed ? "TLS: the server's certificate did not verify: " : "",
		         r->why);
		complete(o, SW_ERR_NET, 0, 0, why);
		return;
	}
	if (r->status / 100 != 2) {
		char code[80], why[200];
		oauth_error(r->body, code, sizeof(code));
		snprintf(why, sizeof(why), "token request to Entra ID: HTTP %ld%s%s%s", r->status,
		         code[0] ? " (" : "", code, code[0] ? ")" : "");
		/* A bad secret is the admin's to fix; keep retrying with backoff
		 * rather than drop records. */
		complete(o, SW_ERR_NET, r->retry_after_s > 0 ? r->retry_after_s : 0, 0, why);
		return;
	}
	json_error_t jerr;
	json_t *j = json_loads(r->body, 0, &jerr);
	const char *tok = json_string_value(json_object_get(j, "access_token"));
	json_t *ex = json_object_get(j, "expires_in");
	int64_t secs = json_is_integer(ex)  ? (int64_t)json_integer_value(ex)
	               : json_is_string(ex) ? strtoll(json_string_value(ex), NULL, 10)
	                                    : 3600;
	if (!tok || !*tok || strpbrk(tok, "\r\n")) {
		json_decref(j);
		complete(o, SW_ERR_NET, 0, 0, "token answer from Entra ID has no usable access_token");
		return;
	}
	wipe_free(o->token);
	o->token = strdup(tok);
	json_decref(j);
	if (!o->token) {
		complete(o, SW_ERR_NOMEM, 0, 0, "out of memory");
		return;
	}
	o->token_exp_ms = sw_plat_now_ms() + secs * 1000;
	post_chunk(o);
}

static void fetch_token(sw_output *o)
{
	buf b = { 0 };
	bool ok = form_add(&b, "grant_type", "client_credentials") &&
	          form_add(&b, "client_id", o->client_id) && form_add(&b, "scope", LI_SCOPE);
	if (ok && o->assert_key) {
		char *a = make_assertion(o);
		ok = a &&
		     form_add(&b, "client_assertion_type",
		              "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") &&
		     form_add(&b, "client_assertion", a);
		wipe_free(a);
	} else if (ok) {
		ok = form_add(&b, "client_secret", o->secret ? o->secret : "");
	}
	if (!ok) {
		if (b.p)
			OPENSSL_cleanse(b.p, b.len);
		free(b.p);
		complete(o, SW_ERR_CRYPTO, 0, 0, "cannot make the token request (client assertion)");
		return;
	}
	const char *hdr[] = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" };
	sw_http_request rq = { .method = "POST",
		               .url = o->token_url,
		               .headers = hdr,
		               .n_headers = 2,
		               .body = b.p,
		               .body_len = b.len,
		               .ca_file = o->ca_file };
	char why[200];
	sw_err e = sw_http_start(o->http, &rq, token_done, o, &o->req, why, sizeof(why));
	OPENSSL_cleanse(b.p, b.len);
	free(b.p);
	if (e)
		complete(o, e, 0, 0, why);
}

/* ---- posting ----------------------------------------------------------------- */

static void post_done(void *ud, const sw_http_response *r)
{
	sw_output *o = ud;
	o->req = NULL;
	if (r->err) {
		char why[300];
		snprintf(why, sizeof(why), "%s%s",
		         r->tls_verify_failed ? "TLS: the server's certificate did not verify: " : "",
		         r->why);
		complete(o, SW_ERR_NET, 0, 0, why);
		return;
	}
	long st = r->status;
	if (st / 100 == 2) {
		if (++o->cur < o->nchunks)
			post_chunk(o);
		else
			complete(o, SW_OK, 0, 0, "");
		return;
	}
	if (st == 401 && o->type == SW_OUT_LOGS_INGESTION && !o->refreshed) {
		o->refreshed = true;
		wipe_free(o->token);
		o->token = NULL;
		fetch_token(o);
		return;
	}
	char why[160];
	snprintf(why, sizeof(why), "HTTP %ld from the collector%s", st,
	         st == 401 ? " (the credential was refused)"
	         : st == 403 && o->type == SW_OUT_LOGS_INGESTION
	                 ? " (no Monitoring Metrics Publisher role on the DCR yet?)"
	                 : "");
	bool retry = retryable_status(o, st);
	complete(o, SW_ERR_NET, r->retry_after_s > 0 ? r->retry_after_s : 0, !retry, why);
}

static void post_chunk(sw_output *o)
{
	if (o->type == SW_OUT_LOGS_INGESTION &&
	    (!o->token || sw_plat_now_ms() >= o->token_exp_ms - TOKEN_MARGIN_MS)) {
		fetch_token(o);
		return;
	}
	char auth[8192];
	const char *hdr[3];
	size_t nh = 0;
	if (o->type == SW_OUT_LOGS_INGESTION) {
		hdr[nh++] = "Content-Type: application/json";
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
		hdr[nh++] = auth;
	} else {
		hdr[nh++] = "Content-Type: application/x-ndjson";
		if (o->secret) {
			snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->secret);
			hdr[nh++] = auth;
		}
	}
	sw_http_request rq = { .method = "POST",
		               .url = o->url,
		               .headers = hdr,
		               .n_headers = nh,
		               .body = o->chunks[o->cur],
		               .body_len = o->chunk_len[o->cur],
		               .gzip = o->type == SW_OUT_LOGS_INGESTION || o->gzip,
		               .ca_file = o->ca_file,
		               .pin_sha256 = o->type == SW_OUT_HTTPS_JSON ? o->pin : NULL };
	if (o->type == SW_OUT_HTTPS_JSON && o->cert && o->key) {
		rq.client_cert = o->cert;
		rq.client_key = o->key;
	}
	char why[200];
	sw_err e = sw_http_start(o->http, &rq, post_done, o, &o->req, why, sizeof(why));
	OPENSSL_cleanse(auth, sizeof(auth));
	if (e)
		complete(o, e, 0, 0, why);
}

/* ---- the ops ------------------------------------------------------------------- */

static void http_send(sw_output *o, const sw_item *items, size_t n, sw_output_done_fn done, void *ud)
{
	o->done = done;
	o->ud = ud;
	clear_send(o);
	if (o->closing) {
		fail_later(o, SW_ERR_NET, 0, "output is stopping");
		return;
	}
	char why[200];
	sw_err e = o->type == SW_OUT_LOGS_INGESTION ? build_arrays(o, items, n, why, sizeof(why))
	                                            : build_ndjson(o, items, n, why, sizeof(why));
	if (e) {
		clear_send(o);
		fail_later(o, e, e == SW_ERR_USAGE || e == SW_ERR_LIMIT, "%s", why);
		return;
	}
	if (!o->nchunks) {
		fail_later(o, SW_OK, 0, "nothing to send");
		return;
	}
	post_chunk(o);
}

static void on_defer_closed(uv_handle_t *h)
{
	sw_output *o = h->data;
	free(o);
}

static void http_destroy(sw_output *o)
{
	if (!o)
		return;
	o->closing = true;
	if (o->req) {
		sw_http_req *r = o->req;
		o->req = NULL;
		sw_http_cancel(r); /* calls post_done/token_done: done(SW_ERR_NET) */
	}
	if (uv_is_active((uv_handle_t *)&o->defer)) {
		uv_timer_stop(&o->defer);
		complete(o, SW_ERR_NET, 0, 0, "cancelled");
	}
	if (o->done)
		complete(o, SW_ERR_NET, 0, 0, "cancelled");
	sw_http_free(o->http);
	free(o->id);
	free(o->url);
	free(o->ca_file);
	free(o->cert);
	free(o->key);
	free(o->pin);
	wipe_free(o->secret);
	free(o->token_url);
	free(o->client_id);
	wipe_free(o->token);
	EVP_PKEY_free(o->assert_key);
	uv_close((uv_handle_t *)&o->defer, on_defer_closed);
}

/* The certificate credential: the key (RSA, it signs RS256) and the
 * certificate's SHA-1 thumbprint. */
static sw_err load_credential(sw_output *o, const char *cert_path, const char *key_path, char *why, size_t n)
{
	FILE *f = fopen(cert_path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!x) {
		snprintf(why, n, "client_certificate %s: not a readable PEM certificate", cert_path);
		return SW_ERR_CONFIG;
	}
	unsigned char der_sha1[20];
	unsigned int dl = 0;
	int ok = X509_digest(x, EVP_sha1(), der_sha1, &dl);
	X509_free(x);
	if (!ok || dl != 20) {
		snprintf(why, n, "client_certificate %s: cannot take its thumbprint", cert_path);
		return SW_ERR_CRYPTO;
	}
	b64url(der_sha1, 20, o->x5t, sizeof(o->x5t));
	f = fopen(key_path, "r");
	o->assert_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!o->assert_key) {
		snprintf(why, n, "client_key %s: not a readable unencrypted PEM private key", key_path);
		return SW_ERR_CONFIG;
	}
	if (EVP_PKEY_get_base_id(o->assert_key) != EVP_PKEY_RSA) {
		snprintf(why, n,
		         "client_key %s: Entra ID certificate credentials sign RS256: an RSA key is needed",
		         key_path);
		return SW_ERR_CONFIG;
	}
	return SW_OK;
}

static sw_err http_create(uv_loop_t *loop, const sw_config_output *cfg, sw_output **out, char *why, size_t n)
{
	*out = NULL;
	sw_output *o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(why, n, "out of memory");
		return SW_ERR_NOMEM;
	}
	o->loop = loop;
	o->type = cfg->type;
	uv_timer_init(loop, &o->defer);
	o->defer.data = o;
	sw_err e = sw_http_new(loop, &o->http);
	if (e)
		snprintf(why, n, "cannot start libcurl");
	o->id = dup_or_null(cfg->id);
	o->ca_file = dup_or_null(cfg->ca_file);
	o->secret = dup_or_null(cfg->secret);
	o->gzip = cfg->gzip;
	if (!e && cfg->type == SW_OUT_HTTPS_JSON) {
		o->url = dup_or_null(cfg->url);
		o->cert = dup_or_null(cfg->client_certificate);
		o->key = dup_or_null(cfg->client_key);
		o->pin = dup_or_null(cfg->pin_sha256);
		if (!o->url) {
			snprintf(why, n, "https_json: no url");
			e = SW_ERR_CONFIG;
		}
	} else if (!e) {
		if (!cfg->endpoint || !cfg->dcr_id || !cfg->stream || !cfg->client_id || !cfg->token_url) {
			snprintf(why, n,
			         "logs_ingestion: endpoint, dcr_id, stream, client_id and token_url are "
			         "needed");
			e = SW_ERR_CONFIG;
		} else {
			size_t len = strlen(cfg->endpoint) + strlen(cfg->dcr_id) + strlen(cfg->stream) + 80;
			if ((o->url = malloc(len)))
				snprintf(o->url, len,
				         "%s/dataCollectionRules/%s/streams/%s?api-version=2023-01-01",
				         cfg->endpoint, cfg->dcr_id, cfg->stream);
			o->token_url = dup_or_null(cfg->token_url);
			o->client_id = dup_or_null(cfg->client_id);
			if (cfg->client_certificate && cfg->client_key)
				e = load_credential(o, cfg->client_certificate, cfg->client_key, why, n);
			else if (!cfg->secret) {
				snprintf(why, n, "logs_ingestion: no client secret or certificate");
				e = SW_ERR_CONFIG;
			}
		}
	}
	if (!e && (!o->id || !o->url)) {
		snprintf(why, n, "out of memory");
		e = SW_ERR_NOMEM;
	}
	if (e) {
		http_destroy(o);
		return e;
	}
	*out = o;
	return SW_OK;
}

const sw_output_ops sw_output_https_json = { "https_json", http_create, http_send, http_destroy };
const sw_output_ops sw_output_logs_ingestion = { "logs_ingestion", http_create, http_send, http_destroy };
