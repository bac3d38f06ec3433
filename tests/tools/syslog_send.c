/* Test tool: drive the syslog_tls transport (agent/out_syslog.c) on a real
 * libuv loop, the way the forwarder does, without the outbox.
 *
 * usage: syslog_send --host H [--port P] [--ca-file F] [--cert F --key F]
 *                    [--pin B64] [--app NAME] [--retry N] < items
 *
 * stdin, one per line: a JSON object (a record, or a summary row when it
 * has "RuleId"), added to the current batch; "#send" (or an empty line)
 * sends the batch and waits for its verdict; "#sleep MS" runs the loop for
 * MS ms; EOF sends what is left. Each verdict is a line on stdout:
 * "ok N" or "error N: WHY". --retry N resends a failed batch up to N times,
 * 200 ms apart, as the forwarder would. Exit 0 when every batch was sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "log.h"
#include "output.h"

static uv_loop_t *loop;
static int verdict_in; /* 0 waiting, 1 ok, -1 failed */
static char verdict_why[1024];

static void on_done(void *ud, sw_err e, int retry_after_s, int permanent, const char *why)
{
	verdict_in = e == SW_OK ? 1 : -1;
	snprintf(verdict_why, sizeof verdict_why, "%s%s", why ? why : sw_err_str(e),
	         permanent ? " (permanent)" : "");
}

static void on_sleep(uv_timer_t *t) { uv_stop(loop); }

static void run_for(int ms)
{
	uv_timer_t t;
	uv_timer_init(loop, &t);
	uv_timer_start(&t, on_sleep, (uint64_t)ms, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

typedef struct batch {
	sw_item *v;
	size_t n, cap;
} batch;

static void batch_free(batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free((char *)b->v[i].json);
		free((char *)b->v[i].idem_key);
	}
	b->n = 0;
}

static int send_batch(sw_output *o, batch *b, int retries)
{
	if (!b->n)
		return 0;
	for (int attempt = 0;; attempt++) {
		verdict_in = 0;
		sw_output_syslog_tls.send(o, b->v, b->n, on_done, NULL);
		while (!verdict_in)
			uv_run(loop, UV_RUN_ONCE);
		if (verdict_in > 0) {
			printf("ok %zu\n", b->n);
			break;
		}
		printf("error %zu: %s\n", b->n, verdict_why);
		fflush(stdout);
		if (attempt >= retries) {
			batch_free(b);
			return 1;
		}
		run_for(200);
	}
	fflush(stdout);
	batch_free(b);
	return 0;
}

static int add_item(batch *b, const char *line)
{
	json_error_t err;
	json_t *o = json_loads(line, JSON_ALLOW_NUL, &err);
	const char *rule = json_string_value(json_object_get(o, "RuleId"));
	const char *dev = json_string_value(json_object_get(o, "DeviceId"));
	char key[256];
	if (rule)
		snprintf(key, sizeof key, "%s:%s:1", rule, dev ? dev : "");
	else
		snprintf(key, sizeof key, "%s:%lld", dev ? dev : "",
		         (long long)json_integer_value(json_object_get(o, "ReportId")));
	json_decref(o);
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->v = realloc(b->v, b->cap * sizeof *b->v);
		if (!b->v)
			return 1;
	}
	/* The line goes as it is, even when it is not JSON: the transport
	 * must cope. */
	b->v[b->n].kind = rule ? SW_ITEM_SUMMARY : SW_ITEM_RECORD;
	b->v[b->n].json = strdup(line);
	b->v[b->n].idem_key = strdup(key);
	b->n++;
	return 0;
}

int main(int argc, char **argv)
{
	sw_config_output cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.type = SW_OUT_SYSLOG_TLS;
	cfg.port = 6514;
	int retries = 0;
	for (int i = 1; i < argc; i += 2) { /* --option value pairs */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			goto usage;
		if (!strcmp(a, "--host"))
			cfg.host = (char *)v;
		else if (!strcmp(a, "--port"))
			cfg.port = atoi(v);
		else if (!strcmp(a, "--ca-file"))
			cfg.ca_file = (char *)v;
		else if (!strcmp(a, "--cert"))
			cfg.client_certificate = (char *)v;
		else if (!strcmp(a, "--key"))
			cfg.client_key = (char *)v;
		else if (!strcmp(a, "--pin"))
			cfg.pin_sha256 = (char *)v;
		else if (!strcmp(a, "--app"))
			cfg.app_name = (char *)v;
		else if (!strcmp(a, "--retry"))
			retries = atoi(v);
		else
			goto usage;
	}
	if (!cfg.host)
		goto usage;
	sw_log_set_level(SW_LOG_DEBUG);
	loop = uv_default_loop();
	sw_output *o = NULL;
	char why[1024];
	sw_err e = sw_output_syslog_tls.create(loop, &cfg, &o, why, sizeof why);
	if (e) {
		fprintf(stderr, "syslog_send: %s\n", why);
		printf("error create: %s\n", why);
		return 2;
	}
	batch b = { 0 };
	int rc = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, stdin)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0 || !strcmp(line, "#send"))
			rc |= send_batch(o, &b, retries);
		else if (!strncmp(line, "#sleep ", 7))
			run_for(atoi(line + 7));
		else if (add_item(&b, line))
			return 2;
	}
	rc |= send_batch(o, &b, retries);
	free(line);
	free(b.v);
	sw_output_syslog_tls.destroy(o);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return rc;
usage:
	fprintf(stderr, "usage: syslog_send --host H [--port P] [--ca-file F] [--cert F --key F] [--pin B64] "
	                "[--app NAME] [--retry N] < items\n");
	return 2;
}
