/* signwatch: the syslog_tls output - RFC 5424 messages over TLS (RFC 5425)
 * with octet-counting framing, to rsyslog, syslog-ng or a SIEM's syslog
 * input. docs/FORWARDING-syslog.md is the user's view.
 *
 * Transport design: OpenSSL directly, with a pair of memory BIOs, over a
 * libuv uv_tcp_t - not libcurl's CONNECT_ONLY mode. Why:
 *   - curl_easy_perform() with CURLOPT_CONNECT_ONLY resolves, connects and
 *     handshakes synchronously: it would block the loop for a whole TLS
 *     handshake (or a connect timeout) against a dead collector. Making it
 *     asynchronous means the multi interface plus CONNECT_ONLY plus a
 *     second uv_poll for curl_easy_send's CURLE_AGAIN - two state machines
 *     for one socket, and no way to notice the collector closing an idle
 *     connection without curl_easy_recv polling.
 *   - libcurl is an optional dependency of the build (meson.build), OpenSSL
 *     is not: the syslog output then works in every build.
 *   - With memory BIOs every byte goes through libuv (uv_getaddrinfo,
 *     uv_tcp_connect, uv_read_start, uv_write), so the loop never blocks,
 *     and a write's completion callback tells us exactly when the batch's
 *     last TLS record was handed to the kernel.
 * TLS: at least 1.2; the server certificate is always verified (ca_file,
 * else the system store) together with the host name (or IP address);
 * optionally its SubjectPublicKeyInfo is pinned (SHA-256, on top of
 * verification, never instead); optionally a client certificate.
 *
 * Delivery: syslog has no application-level acknowledgement. done(SW_OK)
 * means every byte of the batch was written, without error, to a TLS
 * connection whose server was verified (libuv reported the writes done).
 * A connection that breaks after that may lose the last batch in flight;
 * the forwarder resends whatever it has not been told SW_OK for, and
 * before writing on an idle connection we check it was not closed by the
 * collector meanwhile (then we reconnect first), which closes the common
 * case - a collector restarted between batches. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#ifndef _WIN32
#include <sys/socket.h>
#endif

#include "log.h"
#include "output.h"
#include "platform.h"
#include "strbuf.h"
#include "record.h"
#include "syslog_format.h"
#include "sw_attr.h"

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

/* Decode one UTF-8 scalar value at s[0..len) strictly (no overlongs, no
 * surrogates, nothing past U+10FFFF). Returns the bytes it takes, or 0
 * with *bad = the length of the maximal ill-formed subpart (>= 1). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp, size_t *bad)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t need;
	uint32_t v;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		*bad = 1;
		return 0;
	}
	size_t i = 1;
	for (; i <= need; i++) {
		if (i >= len || s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		v = (v << 6) | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = v;
	return need + 1;
}

static bool is_bidi_or_break(uint32_t cp)
{
	return cp == 0x061C || cp == 0x200E || cp == 0x200F || cp == 0x2028 || cp == 0x2029 ||
	       (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

static void sd_value_put(sw_strbuf *b, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		size_t bad = 0;
		size_t k = utf8_next(u + i, len - i, &cp, &bad);
		if (!k) {
			sw_sb_put(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
			i += bad;
			continue;
		}
		if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
			sw_sb_printf(b, "\\\\x%02X", (unsigned)cp);
		else if (is_bidi_or_break(cp))
			sw_sb_printf(b, "\\\\u{%04X}", (unsigned)cp);
		else if (cp == '"' || cp == '\\' || cp == ']') {
			char e[2] = { '\\', (char)cp };
			sw_sb_put(b, e, 2);
		} else
			sw_sb_put(b, u + i, k);
		i += k;
	}
}

char *sw_syslog_sd_value(const char *s, size_t len)
{
	sw_strbuf b = { 0 };
	sw_sb_put(&b, "", 0);
	sd_value_put(&b, s, len);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* 1..max PRINTUSASCII (%d33-126). */
static bool printusascii(const char *s, size_t max)
{
	if (!s || !*s)
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 33 || (unsigned char)s[n] > 126)
			return false;
	return n <= max;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* An RFC 5424 TIMESTAMP in UTC: YYYY-MM-DDTHH:MM:SS[.1-6 digits]Z with
 * every field in range (RFC 3339 section 5.6; leap second 60 allowed). */
static bool utc_timestamp_ok(const char *s)
{
	size_t len = strlen(s);
	if (len < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) ||
	    s[16] != ':' || !digits(s + 17, 2))
		return false;
	int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
	int h = num(s + 11, 2), mi = num(s + 14, 2), se = num(s + 17, 2);
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	size_t i = 19;
	if (s[i] == '.') {
		size_t f = 0;
		for (i++; s[i] >= '0' && s[i] <= '9'; i++)
			f++;
		if (f < 1 || f > 6)
			return false;
	}
	return s[i] == 'Z' && s[i + 1] == 0;
}

static int pri_of(const json_t *o, sw_item_kind kind)
{
	int sev = SW_SYSLOG_INFO;
	const json_t *m = json_object_get(o, "MatchedRules");
	if (kind == SW_ITEM_SUMMARY || (json_is_array(m) && json_array_size(m) > 0))
		sev = SW_SYSLOG_NOTICE;
	return SW_SYSLOG_FACILITY * 8 + sev;
}

/* s with every maximal ill-formed UTF-8 subpart replaced by U+FFFD, or
 * NULL when s is valid (or out of memory). */
static char *utf8_repair(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i = 0;
	bool valid = true;
	sw_strbuf b = { 0 };
	while (i < len) {
		uint32_t cp;
		size_t bad = 0, k = utf8_next(u + i, len - i, &cp, &bad);
		if (!k) {
			valid = false;
			sw_sb_put(&b, "\xEF\xBF\xBD", 3);
			i += bad;
		} else {
			sw_sb_put(&b, u + i, k);
			i += k;
		}
	}
	if (valid || b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static json_t *load_object(const char *json, char *why, size_t n)
{
	json_error_t err;
	json_t *o = json ? json_loads(json, JSON_ALLOW_NUL, &err) : NULL;
	if (!o && json) {
		/* The producer replaces invalid UTF-8 already; if something
		 * slipped through, replace it here too rather than refuse the
		 * item (DESIGN: replaced, never passed through). */
		char *fixed = utf8_repair(json);
		if (fixed) {
			o = json_loads(fixed, JSON_ALLOW_NUL, &err);
			free(fixed);
		}
	}
	if (!o || !json_is_object(o)) {
		if (why)
			snprintf(why, n, "item is not a JSON object%s%s", o ? "" : ": ",
			         o ? "" : (json ? err.text : "(null)"));
		json_decref(o);
		return NULL;
	}
	return o;
}

int sw_syslog_pri(const sw_item *it)
{
	json_t *o = load_object(it->json, NULL, 0);
	int pri = o ? pri_of(o, it->kind) : SW_SYSLOG_FACILITY * 8 + SW_SYSLOG_INFO;
	json_decref(o);
	return pri;
}

/* The STRUCTURED-DATA parameters, in this order, when present and scalar. */
static const char *const sd_keys[] = { "DeviceId", "ReportId",  "Signer", "Issuer", "SHA256",
	                               "FileName", "IsTrusted", "RuleId", "Count" };

static void sd_param(sw_strbuf *b, const char *name, const char *v, size_t len, bool *any)
{
	if (!*any)
		sw_sb_puts(b, "[" SW_SYSLOG_SD_ID);
	*any = true;
	sw_sb_printf(b, " %s=\"", name);
	sd_value_put(b, v, len);
	sw_sb_put(b, "\"", 1);
}

sw_err sw_syslog_frame(const sw_syslog_fmt *f, const sw_item *it, char **out, size_t *len, char *why,
                       size_t n)
{
	*out = NULL;
	*len = 0;
	json_t *o = load_object(it->json, why, n);
	if (!o)
		return SW_ERR_UNSUPPORTED;

	sw_strbuf m = { 0 };
	/* HEADER */
	sw_sb_printf(&m, "<%d>1 ", pri_of(o, it->kind));
	const char *ts = json_string_value(json_object_get(o, "Timestamp"));
	char tbuf[40];
	if (!ts || !utc_timestamp_ok(ts))
		ts = sw_time_iso(f->now_ms, tbuf, sizeof tbuf);
	sw_sb_puts(&m, ts);
	sw_sb_put(&m, " ", 1);
	const char *host = json_string_value(json_object_get(o, "DeviceName"));
	if (!printusascii(host, 255))
		host = printusascii(f->hostname, 255) ? f->hostname : "-";
	sw_sb_puts(&m, host);
	sw_sb_put(&m, " ", 1);
	sw_sb_puts(&m, printusascii(f->app_name, 48) ? f->app_name : "signwatch");
	if (f->procid >= 0)
		sw_sb_printf(&m, " %ld ", f->procid);
	else
		sw_sb_puts(&m, " - ");
	sw_sb_puts(&m, it->kind == SW_ITEM_SUMMARY ? "summary " : "record ");

	/* STRUCTURED-DATA */
	bool any = false;
	for (size_t k = 0; k < sizeof sd_keys / sizeof sd_keys[0]; k++) {
		const json_t *v = json_object_get(o, sd_keys[k]);
		char nb[32];
		if (json_is_string(v))
			sd_param(&m, sd_keys[k], json_string_value(v), json_string_length(v), &any);
		else if (json_is_integer(v)) {
			int l = snprintf(nb, sizeof nb, "%lld", (long long)json_integer_value(v));
			sd_param(&m, sd_keys[k], nb, (size_t)l, &any);
		} else if (json_is_real(v)) {
			int l = snprintf(nb, sizeof nb, "%.17g", json_real_value(v));
			sd_param(&m, sd_keys[k], nb, (size_t)l, &any);
		} else if (json_is_boolean(v))
			sd_param(&m, sd_keys[k], json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5,
			         &any);
	}
	if (it->idem_key && *it->idem_key)
		sd_param(&m, "IdempotencyKey", it->idem_key, strlen(it->idem_key), &any);
	sw_sb_puts(&m, any ? "] " : "- ");

	/* MSG: BOM + the JSON, re-serialised by us so it is pure ASCII with
	 * every control character escaped, whatever the caller handed in. */
	sw_sb_put(&m, "\xEF\xBB\xBF", 3);
	char *js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (!js) {
		free(m.p);
		if (why)
			snprintf(why, n, "out of memory");
		return SW_ERR_NOMEM;
	}
	for (const char *p = js; *p; p++) {
		if (*p == 0x7F) /* jansson leaves DEL raw; only inside strings in JSON */
			sw_sb_puts(&m, "\\u007F");
		else
			sw_sb_put(&m, p, 1);
	}
	free(js);

	/* Framing: MSG-LEN SP SYSLOG-MSG (RFC 5425 section 4.3). */
	sw_strbuf fr = { 0 };
	sw_sb_printf(&fr, "%zu ", m.len);
	sw_sb_put(&fr, m.p ? m.p : "", m.len);
	bool oom = m.oom || fr.oom;
	free(m.p);
	if (oom) {
		free(fr.p);
		if (why)
			snprintf(why, n, "out of memory");
		return SW_ERR_NOMEM;
	}
	*out = fr.p;
	*len = fr.len;
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* Transport                                                           */
/* ------------------------------------------------------------------ */

#define CONNECT_TIMEOUT_MS 30000 /* resolve + connect + TLS handshake */
#define WRITE_TIMEOUT_MS 60000   /* a batch's writes handed to the kernel */
#define SETTLE_MS 250            /* see handshake() */
#define SETTLE_MAX_MS 3000
#define READ_BUF 16384

typedef enum { ST_IDLE, ST_RESOLVING, ST_CONNECTING, ST_HANDSHAKE, ST_READY } conn_state;

typedef struct conn conn;

struct sw_output {
	uv_loop_t *loop;
	char *host;
	int port;
	char label[300]; /* "syslog_tls host:port", for messages */
	sw_syslog_fmt fmt;
	char hostname[256];
	SSL_CTX *ctx;
	unsigned char pin[32];
	bool has_pin;
	bool host_is_ip;

	conn_state state;
	conn *c; /* the current connection, or NULL */
	uv_getaddrinfo_t gai;
	bool gai_busy;
	struct addrinfo *ai, *ai_cur;
	char last_err[256];

	uv_timer_t timer; /* connect / write timeouts */
	uv_timer_t defer; /* done() for what send() decided at once */

	/* The batch in flight (one at a time). */
	char *buf;
	size_t len;
	bool written;       /* handed to SSL_write, TLS records queued */
	bool settling;      /* a fresh connection not used yet: see handshake() */
	uint64_t hs_start;  /* uv_now() when the TCP connection was made */
	uint64_t last_wseq; /* the write that carries its last byte */
	sw_output_done_fn done;
	void *ud;
	/* A verdict waiting for the defer timer. */
	sw_err d_e;
	int d_perm;
	char d_why[1024];

	bool destroying;
	int open; /* handles and requests still to come back from libuv */
};

struct conn {
	sw_output *o;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_shutdown_t sreq;
	SSL *ssl;
	BIO *rbio, *wbio;
	bool dead;
	uint64_t wseq, wdone;
	char rbuf[READ_BUF];
};

typedef struct wreq {
	uv_write_t req;
	conn *c;
	uint64_t seq;
	char data[];
} wreq;

static void maybe_free(sw_output *o)
{
	if (!o->destroying || o->open > 0)
		return;
	if (o->ai)
		uv_freeaddrinfo(o->ai);
	SSL_CTX_free(o->ctx);
	free(o->buf);
	free(o->host);
	free(o);
}

static void on_handle_closed(uv_handle_t *h)
{
	sw_output *o = h->data;
	o->open--;
	maybe_free(o);
}

/* The OpenSSL error queue as one line. */
static void ssl_errors(char *out, size_t n)
{
	unsigned long e;
	size_t at = 0;
	out[0] = 0;
	while ((e = ERR_get_error()) != 0 && at + 2 < n) {
		char tmp[256];
		ERR_error_string_n(e, tmp, sizeof tmp);
		int w = snprintf(out + at, n - at, "%s%s", at ? "; " : "", tmp);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	ERR_clear_error();
	if (!out[0])
		snprintf(out, n, "TLS error");
}

static void finish(sw_output *o, sw_err e, int perm, const char *why)
{
	sw_output_done_fn done = o->done;
	void *ud = o->ud;
	o->done = NULL;
	o->ud = NULL;
	free(o->buf);
	o->buf = NULL;
	o->len = 0;
	o->written = false;
	if (o->state == ST_READY)
		uv_timer_stop(&o->timer);
	if (done)
		done(ud, e, 0, perm, why);
}

static void on_defer(uv_timer_t *t)
{
	sw_output *o = t->data;
	finish(o, o->d_e, o->d_perm, o->d_e ? o->d_why : NULL);
}

static void finish_later(sw_output *o, sw_err e, int perm, const char *why)
{
	o->d_e = e;
	o->d_perm = perm;
	snprintf(o->d_why, sizeof o->d_why, "%s", why ? why : "");
	uv_timer_start(&o->defer, on_defer, 0, 0);
}

static void on_conn_closed(uv_handle_t *h)
{
	conn *c = h->data;
	sw_output *o = c->o;
	free(c);
	o->open--;
	maybe_free(o);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	conn *c = req->data;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static bool flush(conn *c);

/* Drop c; graceful: send close_notify and wait for queued writes first. */
static void conn_close(conn *c, bool graceful)
{
	sw_output *o = c->o;
	if (c->dead)
		return;
	c->dead = true;
	if (o->c == c) {
		o->c = NULL;
		o->state = ST_IDLE;
		o->settling = false;
	}
	uv_read_stop((uv_stream_t *)&c->tcp);
	bool shut = false;
	if (graceful && c->ssl && SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		SSL_shutdown(c->ssl); /* queues close_notify */
		flush(c);
		c->sreq.data = c;
		shut = uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) == 0;
	}
	if (c->ssl) {
		SSL_free(c->ssl); /* frees the BIOs */
		c->ssl = NULL;
	}
	if (!shut)
		uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* The connection failed: close it, and fail the batch in flight. */
#if defined(__GNUC__) || defined(__clang__)
SW_PRINTF(2, 3)
#endif
static void conn_fail(sw_output *o, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	int m = snprintf(why, sizeof why, "%s: ", o->label);
	vsnprintf(why + m, sizeof why - (size_t)m, fmt, ap);
	va_end(ap);
	if (o->c)
		conn_close(o->c, false);
	o->state = ST_IDLE;
	uv_timer_stop(&o->timer);
	if (o->ai) {
		uv_freeaddrinfo(o->ai);
		o->ai = o->ai_cur = NULL;
	}
	sw_log(SW_LOG_WARN, "%s", why);
	finish(o, SW_ERR_NET, 0, why);
}

static void on_write(uv_write_t *req, int status);
static void on_timeout(uv_timer_t *t);

/* Hand every TLS byte OpenSSL queued to libuv. */
static bool flush(conn *c)
{
	int p;
	while (c->wbio && (p = (int)BIO_pending(c->wbio)) > 0) {
		wreq *w = malloc(sizeof *w + (size_t)p);
		if (!w)
			return false;
		if (BIO_read(c->wbio, w->data, p) != p) {
			free(w);
			return false;
		}
		w->c = c;
		w->seq = ++c->wseq;
		w->req.data = w;
		uv_buf_t b = uv_buf_init(w->data, (unsigned)p);
		int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
		if (r) {
			free(w);
			return false;
		}
	}
	return true;
}

static void write_batch(sw_output *o)
{
	conn *c = o->c;
	ERR_clear_error();
	int r = SSL_write(c->ssl, o->buf, (int)o->len);
	if (r <= 0) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) { /* e.g. a key update; retried on read */
			flush(c);
			return;
		}
		char err[300];
		ssl_errors(err, sizeof err);
		conn_fail(o, "TLS write failed: %s", err);
		return;
	}
	o->written = true;
	if (!flush(c)) {
		conn_fail(o, "cannot queue the write");
		return;
	}
	o->last_wseq = c->wseq;
	uv_timer_start(&o->timer, on_timeout, WRITE_TIMEOUT_MS, 0);
}

static void on_write(uv_write_t *req, int status)
{
	wreq *w = req->data;
	conn *c = w->c;
	uint64_t seq = w->seq;
	free(w);
	c->wdone = seq;
	sw_output *o = c->o;
	if (c->dead || o->c != c)
		return;
	if (status < 0) {
		conn_fail(o, "write failed: %s", uv_strerror(status));
		return;
	}
	if (o->done && o->written && c->wdone >= o->last_wseq)
		finish(o, SW_OK, 0, NULL);
}

static void on_timeout(uv_timer_t *t)
{
	sw_output *o = t->data;
	switch (o->state) {
	case ST_RESOLVING:
		uv_cancel((uv_req_t *)&o->gai); /* its callback sees UV_ECANCELED */
		conn_fail(o, "timed out resolving the host name");
		break;
	case ST_CONNECTING: conn_fail(o, "timed out connecting"); break;
	case ST_HANDSHAKE: conn_fail(o, "timed out in the TLS handshake"); break;
	case ST_READY:
		if (o->done)
			conn_fail(o, "timed out writing (the collector does not read)");
		break;
	default: break;
	}
}

/* The pin: base64 SHA-256 of the leaf certificate's SubjectPublicKeyInfo
 * (what curl's CURLOPT_PINNEDPUBLICKEY "sha256//..." and HPKP used). */
static bool pin_ok(sw_output *o, conn *c, char *got, size_t n)
{
	X509 *cert = SSL_get0_peer_certificate(c->ssl);
	if (!cert) {
		snprintf(got, n, "no certificate");
		return false;
	}
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0) {
		snprintf(got, n, "unreadable public key");
		return false;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	bool good = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) && mdlen == 32;
	OPENSSL_free(der);
	if (!good) {
		snprintf(got, n, "cannot hash the public key");
		return false;
	}
	unsigned char b64[48];
	EVP_EncodeBlock(b64, md, 32);
	snprintf(got, n, "%s", (char *)b64);
	return CRYPTO_memcmp(md, o->pin, 32) == 0;
}

static void settle_done(sw_output *o)
{
	o->settling = false;
	uv_timer_stop(&o->timer);
	if (o->done && !o->written)
		write_batch(o);
}

static void on_settled(uv_timer_t *t)
{
	sw_output *o = t->data;
	if (o->state == ST_READY && o->settling)
		settle_done(o);
}

static void handshake(sw_output *o, conn *c)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (!flush(c)) {
		conn_fail(o, "cannot queue the write");
		return;
	}
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return;
		long v = SSL_get_verify_result(c->ssl);
		char err[300];
		ssl_errors(err, sizeof err);
		if (v != X509_V_OK)
			conn_fail(o, "server certificate not accepted (%s), nothing sent",
			          X509_verify_cert_error_string(v));
		else
			conn_fail(o, "TLS handshake failed: %s", err);
		return;
	}
	char got[64];
	if (o->has_pin && !pin_ok(o, c, got, sizeof got)) {
		conn_fail(o, "server public key does not match pin_sha256 (got %s), nothing sent", got);
		return;
	}
	o->state = ST_READY;
	uv_timer_stop(&o->timer);
	if (o->ai) {
		uv_freeaddrinfo(o->ai);
		o->ai = o->ai_cur = NULL;
	}
	sw_log(SW_LOG_INFO, "%s: connected, %s %s, server verified%s", o->label, SSL_get_version(c->ssl),
	       SSL_get_cipher_name(c->ssl), o->has_pin ? " and pinned" : "");
	/* Settle before the first write. The TLS handshake being over on our
	 * side does not mean the collector accepted us: in TLS 1.3 the server
	 * sees our certificate only after our handshake is done, and
	 * collectors check the peer (rsyslog's x509/certvalid, x509/name)
	 * after their own handshake returns, then just close. A batch written
	 * in that window would be "written" and lost. So a fresh connection
	 * waits as long as the handshake took (at least SETTLE_MS, at most
	 * SETTLE_MAX_MS) and is used only if the collector did not close it
	 * meanwhile; closing fails the batch with a reason instead. */
	uint64_t hs = uv_now(o->loop) - o->hs_start;
	hs = hs < SETTLE_MS ? SETTLE_MS : hs > SETTLE_MAX_MS ? SETTLE_MAX_MS : hs;
	o->settling = true;
	uv_timer_start(&o->timer, on_settled, hs, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	conn *c = h->data;
	*b = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	conn *c = s->data;
	sw_output *o = c->o;
	if (c->dead || o->c != c)
		return;
	if (nread < 0) {
		if (nread == UV_EOF)
			conn_fail(
			        o,
			        o->state == ST_HANDSHAKE
			                ? "connection closed by the collector in the TLS handshake"
			        : o->settling
			                ? "connection closed by the collector right after the TLS handshake "
			                  "(does it accept our client certificate?), nothing sent"
			                : "connection closed by the collector");
		else
			conn_fail(o, "read failed: %s", uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	if (BIO_write(c->rbio, b->base, (int)nread) != (int)nread) {
		conn_fail(o, "out of memory");
		return;
	}
	if (o->state == ST_HANDSHAKE) {
		handshake(o, c);
		return;
	}
	/* A syslog collector sends nothing but TLS housekeeping (session
	 * tickets, key updates, alerts, close_notify); consume it. */
	char sink[4096];
	for (;;) {
		ERR_clear_error();
		int r = SSL_read(c->ssl, sink, sizeof sink);
		if (r > 0)
			continue;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			conn_fail(o, "connection closed by the collector (close_notify)");
			return;
		}
		char err[300];
		ssl_errors(err, sizeof err);
		conn_fail(o, "TLS error from the collector: %s", err);
		return;
	}
	if (!flush(c)) {
		conn_fail(o, "cannot queue the write");
		return;
	}
	if (o->done && !o->written && !o->settling)
		write_batch(o);
}

static void try_next_addr(sw_output *o);

static void on_connect(uv_connect_t *req, int status)
{
	conn *c = req->data;
	sw_output *o = c->o;
	if (c->dead || o->c != c)
		return;
	if (status < 0) {
		snprintf(o->last_err, sizeof o->last_err, "%s", uv_strerror(status));
		conn_close(c, false);
		try_next_addr(o);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, 60);
	c->ssl = SSL_new(o->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->rbio || !c->wbio) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		conn_fail(o, "out of memory");
		return;
	}
	BIO_set_mem_eof_return(c->rbio, -1); /* empty = "want more", not EOF */
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	SSL_set_connect_state(c->ssl);
	X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
	bool good;
	if (o->host_is_ip)
		good = X509_VERIFY_PARAM_set1_ip_asc(vp, o->host) == 1;
	else {
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		good = SSL_set1_host(c->ssl, o->host) == 1 && SSL_set_tlsext_host_name(c->ssl, o->host) == 1;
	}
	if (!good) {
		conn_fail(o, "cannot set the name to verify");
		return;
	}
	int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (r) {
		conn_fail(o, "read failed: %s", uv_strerror(r));
		return;
	}
	o->state = ST_HANDSHAKE;
	o->hs_start = uv_now(o->loop);
	handshake(o, c);
}

static void try_next_addr(sw_output *o)
{
	if (!o->ai_cur) {
		conn_fail(o, "cannot connect: %s", o->last_err[0] ? o->last_err : "no address");
		return;
	}
	struct addrinfo *a = o->ai_cur;
	o->ai_cur = a->ai_next;
	conn *c = calloc(1, sizeof *c);
	if (!c) {
		conn_fail(o, "out of memory");
		return;
	}
	c->o = o;
	int r = uv_tcp_init(o->loop, &c->tcp);
	if (r) {
		free(c);
		conn_fail(o, "cannot create a socket: %s", uv_strerror(r));
		return;
	}
	o->open++;
	c->tcp.data = c;
	c->creq.data = c;
	o->c = c;
	o->state = ST_CONNECTING;
	r = uv_tcp_connect(&c->creq, &c->tcp, a->ai_addr, on_connect);
	if (r) {
		snprintf(o->last_err, sizeof o->last_err, "%s", uv_strerror(r));
		conn_close(c, false);
		try_next_addr(o);
	}
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	sw_output *o = req->data;
	o->gai_busy = false;
	o->open--;
	if (o->destroying || o->state != ST_RESOLVING) {
		if (res)
			uv_freeaddrinfo(res);
		maybe_free(o);
		return;
	}
	if (status < 0) {
		conn_fail(o, "cannot resolve %s: %s", o->host, uv_strerror(status));
		return;
	}
	o->ai = o->ai_cur = res;
	o->last_err[0] = 0;
	try_next_addr(o);
}

static void start_connect(sw_output *o)
{
	char port[16];
	snprintf(port, sizeof port, "%d", o->port);
	struct addrinfo hints = { 0 };
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	o->state = ST_RESOLVING;
	o->gai.data = o;
	uv_timer_start(&o->timer, on_timeout, CONNECT_TIMEOUT_MS, 0);
	if (o->gai_busy)
		return; /* a lookup a timeout gave up on is still running: use it */
	int r = uv_getaddrinfo(o->loop, &o->gai, on_resolved, o->host, port, &hints);
	if (r) {
		o->state = ST_IDLE;
		uv_timer_stop(&o->timer);
		char why[400];
		snprintf(why, sizeof why, "%s: cannot resolve %s: %s", o->label, o->host, uv_strerror(r));
		finish_later(o, SW_ERR_NET, 0, why);
		return;
	}
	o->gai_busy = true;
	o->open++;
}

/* Did the collector close the idle connection since the last batch? A
 * non-blocking peek at the socket sees a FIN that the loop has not read
 * yet. */
static bool peer_closed(conn *c)
{
#ifndef _WIN32
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd))
		return true;
	char b;
	ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r == 0)
		return true;
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return true;
#endif
	return false;
}

static void sl_send(sw_output *o, const sw_item *items, size_t n, sw_output_done_fn done, void *ud)
{
	if (o->done || o->destroying) {
		/* Not ours to fail a call that breaks the contract silently. */
		done(ud, SW_ERR_NET, 0, 0, "syslog_tls: a send is already in flight");
		return;
	}
	o->done = done;
	o->ud = ud;
	o->written = false;
	sw_strbuf b = { 0 };
	o->fmt.now_ms = sw_plat_now_ms();
	for (size_t i = 0; i < n; i++) {
		char *f;
		size_t fl;
		char why[300];
		sw_err e = sw_syslog_frame(&o->fmt, &items[i], &f, &fl, why, sizeof why);
		if (e) {
			free(b.p);
			char msg[1024];
			snprintf(msg, sizeof msg, "%s: item %zu (%s): %s", o->label, i,
			         items[i].idem_key ? items[i].idem_key : "no key", why);
			finish_later(o, e, e == SW_ERR_UNSUPPORTED, msg);
			return;
		}
		sw_sb_put(&b, f, fl);
		free(f);
	}
	if (b.oom) {
		free(b.p);
		finish_later(o, SW_ERR_NOMEM, 0, "syslog_tls: out of memory");
		return;
	}
	if (n == 0 || b.len == 0) {
		free(b.p);
		finish_later(o, SW_OK, 0, NULL);
		return;
	}
	o->buf = b.p;
	o->len = b.len;
	if (o->c && o->state == ST_READY && peer_closed(o->c)) {
		sw_log(SW_LOG_INFO, "%s: the collector closed the connection; reconnecting", o->label);
		conn_close(o->c, false);
	}
	if (o->state == ST_READY && !o->settling)
		write_batch(o);
	else if (o->state == ST_IDLE)
		start_connect(o);
	/* else: a connection is being made; the handshake writes the batch. */
}

static sw_err sl_create(uv_loop_t *loop, const sw_config_output *cfg, sw_output **out, char *why, size_t n)
{
	*out = NULL;
	if (!cfg->host || !*cfg->host) {
		snprintf(why, n, "syslog_tls: no host");
		return SW_ERR_CONFIG;
	}
	sw_output *o = calloc(1, sizeof *o);
	if (!o || !(o->host = strdup(cfg->host))) {
		free(o);
		snprintf(why, n, "out of memory");
		return SW_ERR_NOMEM;
	}
	o->loop = loop;
	o->port = cfg->port > 0 ? cfg->port : 6514;
	snprintf(o->label, sizeof o->label, "syslog_tls %s:%d", o->host, o->port);
	unsigned char ip[16];
	o->host_is_ip = uv_inet_pton(AF_INET, o->host, ip) == 0 || uv_inet_pton(AF_INET6, o->host, ip) == 0;

	size_t hl = sizeof o->hostname;
	if (uv_os_gethostname(o->hostname, &hl) == 0)
		for (char *p = o->hostname; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	else
		o->hostname[0] = 0;
	o->fmt.app_name = cfg->app_name && *cfg->app_name ? cfg->app_name : "signwatch";
	o->fmt.hostname = o->hostname;
	o->fmt.procid = (long)uv_os_getpid();

	sw_err e = SW_ERR_CONFIG;
	char err[300];
	ERR_clear_error();
	o->ctx = SSL_CTX_new(TLS_client_method());
	if (!o->ctx) {
		ssl_errors(err, sizeof err);
		snprintf(why, n, "%s: %s", o->label, err);
		e = SW_ERR_CRYPTO;
		goto fail;
	}
	SSL_CTX_set_min_proto_version(o->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(o->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(o->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (cfg->ca_file) {
		if (SSL_CTX_load_verify_file(o->ctx, cfg->ca_file) != 1) {
			ssl_errors(err, sizeof err);
			snprintf(why, n, "%s: cannot load ca_file %s: %s", o->label, cfg->ca_file, err);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(o->ctx) != 1) {
		ssl_errors(err, sizeof err);
		snprintf(why, n, "%s: cannot load the system trust store: %s", o->label, err);
		goto fail;
	}
	if (cfg->client_certificate || cfg->client_key) {
		if (!cfg->client_certificate || !cfg->client_key) {
			snprintf(why, n, "%s: client_certificate and client_key go together", o->label);
			goto fail;
		}
		if (SSL_CTX_use_certificate_chain_file(o->ctx, cfg->client_certificate) != 1) {
			ssl_errors(err, sizeof err);
			snprintf(why, n, "%s: cannot load client_certificate %s: %s", o->label,
			         cfg->client_certificate, err);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(o->ctx, cfg->client_key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(o->ctx) != 1) {
			ssl_errors(err, sizeof err);
			snprintf(why, n,
			         "%s: cannot load client_key %s (or it does not match the certificate): %s",
			         o->label, cfg->client_key, err);
			goto fail;
		}
	}
	if (cfg->pin_sha256) {
		unsigned char raw[48];
		const char *pin = cfg->pin_sha256;
		if (!strncmp(pin, "sha256//", 8))
			pin += 8; /* curl's spelling; the config loader strips it already */
		size_t pl = strlen(pin);
		int dl = pl == 44 ? EVP_DecodeBlock(raw, (const unsigned char *)pin, 44) : -1;
		if (dl != 33 || pin[43] != '=' || pin[42] == '=') {
			snprintf(why, n, "%s: pin_sha256 is not the base64 of 32 bytes", o->label);
			goto fail;
		}
		memcpy(o->pin, raw, 32);
		o->has_pin = true;
	}
	uv_timer_init(loop, &o->timer); /* cannot fail */
	uv_timer_init(loop, &o->defer);
	o->timer.data = o;
	o->defer.data = o;
	o->open = 2;
	*out = o;
	return SW_OK;
fail:
	SSL_CTX_free(o->ctx);
	free(o->host);
	free(o);
	return e;
}

static void sl_destroy(sw_output *o)
{
	if (!o)
		return;
	o->destroying = true;
	if (o->gai_busy)
		uv_cancel((uv_req_t *)&o->gai);
	if (o->c)
		conn_close(o->c, true);
	o->state = ST_IDLE;
	/* The contract: what is in flight is cancelled with SW_ERR_NET, and
	 * that done comes now, before destroy returns (the caller may free
	 * its state right after). */
	if (o->done)
		finish(o, SW_ERR_NET, 0, "syslog_tls: output stopped");
	uv_timer_stop(&o->timer);
	uv_timer_stop(&o->defer);
	uv_close((uv_handle_t *)&o->timer, on_handle_closed);
	uv_close((uv_handle_t *)&o->defer, on_handle_closed);
}

const sw_output_ops sw_output_syslog_tls = { "syslog_tls", sl_create, sl_send, sl_destroy };
