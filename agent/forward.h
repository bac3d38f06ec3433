/* signwatch: the forwarder. What leaves the device goes through the
 * outbox (store.h): the pipeline writes a scan's outbox items in the same
 * transaction as its records (sw_forward_pipeline_hook), and the forwarder
 * takes batches from the outbox, hands them to each output's transport
 * (output.h) and deletes them once the collector accepted them. After a
 * crash, what was not acknowledged is sent again: at-least-once, every
 * item carrying an idempotency key (DeviceId:ReportId for records,
 * RuleId:DeviceId:version for summaries).
 *
 * Per output: one batch in flight at a time; on failure an exponential
 * backoff with full jitter capped at max_backoff_s, or the collector's
 * Retry-After; a minimum gap between batches, so a backlog drains at a
 * bounded rate after an outage; the outbox capped at outbox_mb by dropping
 * the oldest records (counted, logged and reported in every later summary
 * item as DroppedRecords); summaries on every change and every
 * heartbeat_minutes. Everything runs on the loop thread. docs/FORWARDING.md
 * is the user's view. */
#ifndef SW_FORWARD_H
#define SW_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "output.h"
#include "pipeline.h"
#include "store.h"

typedef struct sw_forward sw_forward;

/* The `file` output as a transport like the others (agent/output_file.c
 * underneath), so every output has the outbox's semantics. */
extern const sw_output_ops sw_output_file;

/* Pacing (ms): the first send after new items waits LINGER to batch them;
 * consecutive batches are at least GAP apart. */
#define SW_FORWARD_LINGER_MS 50
#define SW_FORWARD_GAP_MS 100

/* Start a transport per output of cfg (cfg, rules and st must outlive the
 * forwarder; device_id is copied: the DeviceId of summaries whose rule does
 * not group by DeviceId). Items left in the outbox by a previous run are
 * sent first; the outboxes of outputs no longer configured are deleted. On
 * error nothing is started and why says which output and why. */
sw_err sw_forward_new(uv_loop_t *loop, sw_store *st, const sw_config *cfg, const sw_rules *rules,
                      const char *device_id, sw_forward **out, char *why, size_t n);

/* The pipeline hook (pipeline.h sw_pipeline_set_hook, ud = the forwarder):
 * inside the scan's transaction, put each record an output's send_records
 * accepts, each summary row that changed, and enforce the caps. */
sw_err sw_forward_pipeline_hook(void *ud, sw_store *st, const sw_scan_result *res, int64_t now_ms, char *why,
                                size_t n);

/* New items may be waiting (after a commit); the hook calls it. */
void sw_forward_kick(sw_forward *f);

/* Stop sending: cancel what is in flight (it stays in the outbox), close
 * every handle. The hook still writes to the outbox afterwards (scans in
 * flight at shutdown are not lost); nothing is sent any more. */
void sw_forward_stop(sw_forward *f);
/* Free a stopped forwarder once its handles are closed (after uv_run
 * returned, or at any time: it frees itself when the last handle closes). */
void sw_forward_free(sw_forward *f);

#endif
