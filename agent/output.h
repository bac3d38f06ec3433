/* signwatch: a collector transport. The forwarder (agent/forward.c) takes
 * batches from the outbox and hands them to one transport per configured
 * output; a transport only moves bytes and says how it went. Everything
 * runs on the libuv loop thread; nothing blocks it. */
#ifndef SW_OUTPUT_H
#define SW_OUTPUT_H

#include <stddef.h>

#include <uv.h>

#include "config.h"
#include "sw_error.h"

typedef struct sw_output sw_output;

/* The kind of an item, so a transport may shape it (syslog's SD-ID, the
 * Logs Ingestion stream): a record or a rule summary row. */
typedef enum sw_item_kind { SW_ITEM_RECORD, SW_ITEM_SUMMARY } sw_item_kind;

typedef struct sw_item {
	sw_item_kind kind;
	const char *json;     /* one JSON object, sw_record_json's or a summary row's */
	const char *idem_key; /* DeviceId:ReportId, or RuleId:DeviceId:version */
} sw_item;

/* The verdict of one send: SW_OK when the collector accepted every item;
 * otherwise the error and, when the collector said so, how long to wait
 * (Retry-After, seconds; 0 = use the backoff). permanent: retrying the same
 * batch cannot succeed (e.g. 400 for a malformed item). */
typedef void (*sw_output_done_fn)(void *ud, sw_err e, int retry_after_s, int permanent, const char *why);

typedef struct sw_output_ops {
	const char *type; /* "syslog_tls", ... as in the config */
	sw_err (*create)(uv_loop_t *loop, const sw_config_output *cfg, sw_output **out, char *why, size_t n);
	/* Send items[0..n); done is called exactly once, later, on the loop
	 * thread (never from inside send). One send at a time per output. */
	void (*send)(sw_output *o, const sw_item *items, size_t n, sw_output_done_fn done, void *ud);
	/* Stop: cancel what is in flight (its done is called with
	 * SW_ERR_NET), close handles; frees once libuv has closed them. */
	void (*destroy)(sw_output *o);
} sw_output_ops;

extern const sw_output_ops sw_output_syslog_tls;     /* agent/out_syslog.c */
extern const sw_output_ops sw_output_https_json;     /* agent/out_http.c */
extern const sw_output_ops sw_output_logs_ingestion; /* agent/out_http.c */

#endif
