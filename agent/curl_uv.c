/* signwatch: libcurl's multi interface on the libuv loop (see curl_uv.h).
 *
 * The shape is libcurl's own multi-uv.c example: libcurl names the sockets
 * it wants watched and for what (socket callback) and when it wants to be
 * called without socket activity (timer callback); we translate uv_poll
 * events into curl_multi_socket_action(fd, CURL_CSELECT_*) and the timer
 * into curl_multi_socket_action(CURL_SOCKET_TIMEOUT), then collect the
 * finished transfers with curl_multi_info_read. */
#include "curl_uv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <zlib.h>

struct sw_http {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	sw_http_req *reqs;      /* in flight, a list */
	struct sock_ctx *socks; /* watched sockets, a list */
	int closing;            /* handles still to be closed before free */
	bool freed;
};

struct sw_http_req {
	sw_http *h;
	CURL *easy;
	struct curl_slist *headers;
	unsigned char *body;
	size_t body_len;
	char *resp;
	size_t resp_len, resp_cap, max_resp;
	int retry_after_s;
	char errbuf[CURL_ERROR_SIZE];
	char why[CURL_ERROR_SIZE + 160];
	sw_http_done_fn done;
	void *ud;
	sw_http_req *next, **pprev;
};

/* One watched socket. */
typedef struct sock_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
	sw_http *h;
	struct sock_ctx *next;
} sock_ctx;

static bool global_ok;

static void maybe_free(sw_http *h)
{
	if (h->freed && h->closing == 0)
		free(h);
}

static void sock_close(sw_http *h, sock_ctx *c);

static void on_handle_closed(uv_handle_t *hd)
{
	sw_http *h = hd->data;
	h->closing--;
	maybe_free(h);
}

static void on_sock_closed(uv_handle_t *hd)
{
	sock_ctx *c = (sock_ctx *)hd;
	sw_http *h = c->h;
	free(c);
	h->closing--;
	maybe_free(h);
}

/* ---- finishing ------------------------------------------------------------- */

static void req_unlink(sw_http_req *r)
{
	if (r->pprev) {
		*r->pprev = r->next;
		if (r->next)
			r->next->pprev = r->pprev;
		r->pprev = NULL;
		r->next = NULL;
	}
}

static void req_free(sw_http_req *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r->resp);
	free(r);
}

/* Remove r from the multi, call done with what happened, free r. */
static void finish(sw_http_req *r, CURLcode cc, bool cancelled)
{
	sw_http *h = r->h;
	req_unlink(r);
	curl_multi_remove_handle(h->multi, r->easy);
	sw_http_response resp;
	memset(&resp, 0, sizeof(resp));
	resp.retry_after_s = r->retry_after_s;
	resp.body = r->resp ? r->resp : "";
	resp.body_len = r->resp_len;
	if (cancelled) {
		resp.err = SW_ERR_NET;
		resp.why = "cancelled";
	} else if (cc != CURLE_OK) {
		resp.err = SW_ERR_NET;
		resp.why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
		resp.tls_verify_failed = cc == CURLE_PEER_FAILED_VERIFICATION ||
		                         cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH
#if LIBCURL_VERSION_NUM < 0x073e00
		                         || cc == CURLE_SSL_CACERT
#endif
		                         || cc == CURLE_SSL_CACERT_BADFILE;
		/* errbuf may end in a newline */
		size_t n = strlen(r->errbuf);
		while (n && (r->errbuf[n - 1] == '\n' || r->errbuf[n - 1] == '\r'))
			r->errbuf[--n] = 0;
		/* The TLS handshake ended on our side but the collector closed the
		 * connection before any answer: with TLS 1.3 that is how a server
		 * refuses our client certificate (or the lack of one). libcurl's
		 * own text is then whatever failed first (getpeername, a broken
		 * pipe, poll), so say what it most likely means. */
		curl_off_t app = 0;
		long code = 0;
		curl_easy_getinfo(r->easy, CURLINFO_APPCONNECT_TIME_T, &app);
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		if (!resp.tls_verify_failed && app > 0 && code == 0 &&
		    (cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR)) {
			snprintf(r->why, sizeof(r->why),
			         "the collector closed the connection right after the TLS handshake "
			         "(does it require or accept our client certificate?): %s",
			         r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
			resp.why = r->why;
		}
	} else {
		long code = 0;
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		resp.status = code;
		resp.why = "";
	}
	sw_http_done_fn done = r->done;
	void *ud = r->ud;
	r->done = NULL;
	if (done)
		done(ud, &resp);
	req_free(r);
}

static void check_done(sw_http *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		sw_http_req *r = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		CURLcode cc = m->data.result;
		if (r)
			finish(r, cc, false);
	}
}

/* ---- libcurl <-> libuv ------------------------------------------------------ */

static void on_poll(uv_poll_t *p, int status, int events)
{
	sock_ctx *c = (sock_ctx *)p;
	sw_http *h = c->h;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	int running;
	curl_multi_socket_action(h->multi, c->fd, flags, &running);
	check_done(h);
}

static void on_timer(uv_timer_t *t)
{
	sw_http *h = t->data;
	int running;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	sw_http *h = userp;
	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else /* 0 too: libcurl must not be called back from inside this callback */
		uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static void sock_close(sw_http *h, sock_ctx *c)
{
	for (sock_ctx **pp = &h->socks; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	uv_poll_stop(&c->poll);
	h->closing++;
	uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	sw_http *h = userp;
	sock_ctx *c = socketp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (c) {
			curl_multi_assign(h->multi, s, NULL);
			sock_close(h, c);
		}
		return 0;
	}
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -1;
		c->fd = s;
		c->h = h;
		if (uv_poll_init_socket(h->loop, &c->poll, s) != 0) {
			free(c);
			return -1;
		}
		curl_multi_assign(h->multi, s, c);
		c->next = h->socks;
		h->socks = c;
	}
	int ev = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&c->poll, ev, on_poll);
	return 0;
}

/* ---- the public API ---------------------------------------------------------- */

sw_err sw_http_new(uv_loop_t *loop, sw_http **out)
{
	*out = NULL;
	if (!global_ok) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return SW_ERR_NET;
		global_ok = true;
	}
	sw_http *h = calloc(1, sizeof(*h));
	if (!h)
		return SW_ERR_NOMEM;
	h->loop = loop;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return SW_ERR_NOMEM;
	}
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	/* A few connections at most per collector; keep them alive between
	 * batches (libcurl's connection cache). */
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 2L);
	*out = h;
	return SW_OK;
}

void sw_http_cancel(sw_http_req *r)
{
	if (r)
		finish(r, CURLE_ABORTED_BY_CALLBACK, true);
}

void sw_http_free(sw_http *h)
{
	if (!h)
		return;
	while (h->reqs)
		sw_http_cancel(h->reqs);
	h->freed = true;
	/* Cleaning up closes the cached connections, which may call socket_cb
	 * with REMOVE; whatever socket is still watched afterwards is closed
	 * here. h is freed once libuv has closed every handle. */
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, NULL);
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
	while (h->socks)
		sock_close(h, h->socks);
	uv_timer_stop(&h->timer);
	h->closing++;
	uv_close((uv_handle_t *)&h->timer, on_handle_closed);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	sw_http_req *r = ud;
	size_t n = size * nmemb, room = r->max_resp > r->resp_len ? r->max_resp - r->resp_len : 0;
	size_t take = n < room ? n : room; /* the rest is read and discarded */
	if (take) {
		if (r->resp_len + take + 1 > r->resp_cap) {
			size_t cap = r->resp_cap ? r->resp_cap : 1024;
			while (cap < r->resp_len + take + 1)
				cap *= 2;
			char *p = realloc(r->resp, cap);
			if (!p)
				return 0; /* libcurl fails the transfer */
			r->resp = p;
			r->resp_cap = cap;
		}
		memcpy(r->resp + r->resp_len, ptr, take);
		r->resp_len += take;
		r->resp[r->resp_len] = 0;
	}
	return n;
}

/* Retry-After: delta-seconds or an HTTP date (RFC 9110 10.2.3). */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	sw_http_req *r = ud;
	size_t n = size * nitems;
	static const char name[] = "retry-after:";
	if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
		char v[128];
		size_t k = n - (sizeof(name) - 1);
		if (k >= sizeof(v))
			k = sizeof(v) - 1;
		memcpy(v, buf + sizeof(name) - 1, k);
		v[k] = 0;
		char *p = v;
		while (*p == ' ' || *p == '\t')
			p++;
		size_t l = strlen(p);
		while (l && isspace((unsigned char)p[l - 1]))
			p[--l] = 0;
		if (l && strspn(p, "0123456789") == l) {
			long s = l > 6 ? 999999 : strtol(p, NULL, 10);
			r->retry_after_s = (int)s;
		} else if (l) {
			time_t t = curl_getdate(p, NULL);
			if (t != (time_t)-1) {
				time_t now = time(NULL);
				r->retry_after_s = t > now ? (int)(t - now > 999999 ? 999999 : t - now) : 0;
			}
		}
	} else if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		r->retry_after_s = -1; /* a new response (after a 100 Continue) */
	}
	return n;
}

sw_err sw_gzip(const void *data, size_t len, unsigned char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return SW_ERR_NOMEM;
	uLong bound = deflateBound(&z, (uLong)len) + 32;
	unsigned char *buf = malloc(bound);
	if (!buf) {
		deflateEnd(&z);
		return SW_ERR_NOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)bound;
	int rc = deflate(&z, Z_FINISH);
	size_t got = bound - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(buf);
		return SW_ERR_NOMEM;
	}
	*out = buf;
	*out_len = got;
	return SW_OK;
}

sw_err sw_http_start(sw_http *h, const sw_http_request *rq, sw_http_done_fn done, void *ud, sw_http_req **out,
                     char *why, size_t n)
{
	if (out)
		*out = NULL;
	if (!h || h->freed || !rq || !rq->url || strncmp(rq->url, "https://", 8) != 0 || !done) {
		snprintf(why, n, "bad request (https URL required)");
		return SW_ERR_USAGE;
	}
	sw_http_req *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(why, n, "out of memory");
		return SW_ERR_NOMEM;
	}
	r->h = h;
	r->done = done;
	r->ud = ud;
	r->retry_after_s = -1;
	r->max_resp = rq->max_response ? rq->max_response : SW_HTTP_MAX_RESPONSE;
	sw_err e = SW_OK;
	if (rq->body_len && rq->gzip) {
		e = sw_gzip(rq->body, rq->body_len, &r->body, &r->body_len);
	} else if (rq->body_len) {
		r->body = malloc(rq->body_len);
		if (r->body) {
			memcpy(r->body, rq->body, rq->body_len);
			r->body_len = rq->body_len;
		} else {
			e = SW_ERR_NOMEM;
		}
	}
	if (!e && !(r->easy = curl_easy_init()))
		e = SW_ERR_NOMEM;
	for (size_t i = 0; !e && i < rq->n_headers; i++) {
		struct curl_slist *l = curl_slist_append(r->headers, rq->headers[i]);
		if (!l)
			e = SW_ERR_NOMEM;
		else
			r->headers = l;
	}
	if (!e && rq->gzip && rq->body_len) {
		struct curl_slist *l = curl_slist_append(r->headers, "Content-Encoding: gzip");
		if (!l)
			e = SW_ERR_NOMEM;
		else
			r->headers = l;
	}
	/* No "Expect: 100-continue" round trip for bodies over 1 kB. */
	if (!e) {
		struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
		if (l)
			r->headers = l;
	}
	if (e) {
		snprintf(why, n, "%s", e == SW_ERR_NOMEM ? "out of memory" : "cannot compress the body");
		req_free(r);
		return e;
	}
	CURL *c = r->easy;
	char pin[128];
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PRIVATE, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                 rq->connect_timeout_ms ? rq->connect_timeout_ms : (long)SW_HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rq->timeout_ms ? rq->timeout_ms : (long)SW_HTTP_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "signwatch/" SW_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
	/* TLS: always verify, whatever the caller says. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (rq->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, rq->ca_file);
	if (rq->client_cert && rq->client_key) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, rq->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, rq->client_key);
	}
	if (rq->pin_sha256) {
		snprintf(pin, sizeof(pin), "%s%s", strncmp(rq->pin_sha256, "sha256//", 8) ? "sha256//" : "",
		         rq->pin_sha256);
		curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, pin); /* copied by libcurl */
	}
	const char *m = rq->method ? rq->method : "GET";
	if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body ? (char *)r->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	}
	if (curl_multi_add_handle(h->multi, c) != CURLM_OK) {
		snprintf(why, n, "cannot start the request");
		req_free(r);
		return SW_ERR_NET;
	}
	r->next = h->reqs;
	if (h->reqs)
		h->reqs->pprev = &r->next;
	h->reqs = r;
	r->pprev = &h->reqs;
	if (out)
		*out = r;
	return SW_OK;
}
