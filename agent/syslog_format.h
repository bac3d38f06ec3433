/* signwatch: RFC 5424 messages with RFC 5425/6587 octet-counting framing,
 * for the syslog_tls output (agent/out_syslog.c). Pure functions over
 * bytes, no I/O, so the unit test (tests/unit/test_syslog_format.c) checks
 * them byte for byte.
 *
 * One frame per item:
 *   MSG-LEN SP "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD" SP BOM JSON
 * docs/FORWARDING-syslog.md describes every field. */
#ifndef SW_SYSLOG_FORMAT_H
#define SW_SYSLOG_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "output.h"
#include "sw_error.h"

/* The SD-ID of our STRUCTURED-DATA element. 32473 is the private
 * enterprise number RFC 5612 reserves for documentation. */
#define SW_SYSLOG_SD_ID "signwatch@32473"
#define SW_SYSLOG_FACILITY 16 /* local0 */
#define SW_SYSLOG_NOTICE 5
#define SW_SYSLOG_INFO 6

/* What a frame takes from the sender rather than from the item. */
typedef struct sw_syslog_fmt {
	const char *app_name; /* APP-NAME; NULL or not 1..48 PRINTUSASCII: "signwatch" */
	const char *hostname; /* HOSTNAME when the item has no usable DeviceName;
	                       * NULL or unusable: "-" */
	long procid;          /* PROCID; < 0: "-" */
	int64_t now_ms;       /* TIMESTAMP when the item has no usable Timestamp */
} sw_syslog_fmt;

/* One frame for item it, malloc'd into *out (NUL-terminated for
 * convenience; *len excludes the NUL and equals MSG-LEN + the length of the
 * prefix "MSG-LEN SP"). Errors: SW_ERR_UNSUPPORTED when the item's JSON is
 * not a JSON object (why says so: retrying cannot help), SW_ERR_NOMEM. */
sw_err sw_syslog_frame(const sw_syslog_fmt *f, const sw_item *it, char **out, size_t *len, char *why,
                       size_t n);

/* A PARAM-VALUE for s[0..len) (any bytes), malloc'd, NUL-terminated:
 * '"', '\' and ']' get a backslash (RFC 5424 §6.3.3); invalid UTF-8 becomes
 * U+FFFD (one per maximal ill-formed subpart); C0 and C1 controls and DEL
 * become the visible text \xNN, and the bidi and line-breaking format
 * characters (U+061C, U+200E, U+200F, U+2028, U+2029, U+202A..U+202E,
 * U+2066..U+2069) become \u{XXXX} - where that backslash is itself escaped
 * on the wire ("\\xNN"). So the value is valid UTF-8 with no control
 * character and nothing that reorders or splits what a reader sees. */
char *sw_syslog_sd_value(const char *s, size_t len);

/* PRI for an item: local0.notice (133) for summaries and for records that
 * carry a non-empty "MatchedRules" array, local0.info (134) otherwise. */
int sw_syslog_pri(const sw_item *it);

#endif
