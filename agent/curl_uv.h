/* signwatch: HTTPS requests on the libuv loop, with libcurl's multi
 * interface (curl_multi_socket_action): libcurl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION -> one uv_poll_t per socket) and when to
 * call it back (CURLMOPT_TIMERFUNCTION -> one uv_timer_t). No thread per
 * request; nothing here blocks the loop (name resolution uses libcurl's
 * threaded resolver when it was built with one, as Debian's is).
 *
 * TLS always verifies the server's certificate and name; only https:// is
 * allowed; redirects are not followed. Everything runs on the loop thread. */
#ifndef SW_CURL_UV_H
#define SW_CURL_UV_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "sw_error.h"

typedef struct sw_http sw_http;         /* one multi handle on one loop */
typedef struct sw_http_req sw_http_req; /* one request in flight */

#define SW_HTTP_CONNECT_TIMEOUT_MS 10000
#define SW_HTTP_TIMEOUT_MS 60000
#define SW_HTTP_MAX_RESPONSE (64 * 1024) /* response bodies are cut here */

typedef struct sw_http_request {
	const char *method;         /* "POST", "GET", ... */
	const char *url;            /* https:// only */
	const char *const *headers; /* "Name: value" lines, n_headers of them */
	size_t n_headers;
	const void *body; /* copied (and gzipped when gzip) by sw_http_start */
	size_t body_len;
	bool gzip; /* compress the body and send Content-Encoding: gzip */
	/* TLS */
	const char *ca_file;     /* NULL: the system trust store */
	const char *client_cert; /* PEM, with client_key: mutual TLS */
	const char *client_key;
	const char *pin_sha256;  /* base64 SHA-256 of the server's SPKI, or "sha256//..." */
	long connect_timeout_ms; /* 0: SW_HTTP_CONNECT_TIMEOUT_MS */
	long timeout_ms;         /* 0: SW_HTTP_TIMEOUT_MS */
	size_t max_response;     /* 0: SW_HTTP_MAX_RESPONSE */
} sw_http_request;

typedef struct sw_http_response {
	sw_err err;        /* SW_OK when an HTTP answer arrived (any status) */
	long status;       /* HTTP status, 0 when none */
	int retry_after_s; /* Retry-After (seconds or an HTTP date), -1 when absent */
	const char *body;  /* NUL-terminated, at most max_response bytes */
	size_t body_len;
	const char *why;        /* transport failure in words (libcurl's), "" on success;
	                  * never holds the URL's query, headers or the body */
	bool tls_verify_failed; /* the server's certificate or pin did not verify */
} sw_http_response;

/* Called exactly once per started request, later, on the loop thread;
 * r is valid only during the call. */
typedef void (*sw_http_done_fn)(void *ud, const sw_http_response *r);

sw_err sw_http_new(uv_loop_t *loop, sw_http **out);
/* Cancel what is in flight (each done is called with SW_ERR_NET, "cancelled"
 * before this returns), close the handles; the memory is freed once libuv
 * has closed them. */
void sw_http_free(sw_http *h);

/* Start rq. On SW_OK done will be called later; otherwise (bad argument,
 * out of memory, gzip failure) it never is and why says what went wrong.
 * *out (may be NULL) identifies the request for sw_http_cancel until done. */
sw_err sw_http_start(sw_http *h, const sw_http_request *rq, sw_http_done_fn done, void *ud, sw_http_req **out,
                     char *why, size_t n);
/* Cancel one request: its done is called now with SW_ERR_NET. */
void sw_http_cancel(sw_http_req *r);

/* gzip (RFC 1952) data into a malloc'd buffer. */
sw_err sw_gzip(const void *data, size_t len, unsigned char **out, size_t *out_len);

#endif
