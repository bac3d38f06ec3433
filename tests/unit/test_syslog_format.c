/* RFC 5424 / RFC 5425 frames of the syslog_tls output, byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syslog_format.h"
#include "tap.h"

#define BOM "\xEF\xBB\xBF"
#define FFFD "\xEF\xBF\xBD"

static const sw_syslog_fmt fmt = { "signwatch", "fallback.example", 4242, 1709294400000LL };

/* The frame must be "LEN SP MSG" with LEN the byte length of MSG. */
static void is_frame(const sw_syslog_fmt *f, sw_item_kind kind, const char *json, const char *key,
                     const char *want_msg, const char *what)
{
	sw_item it = { kind, json, key };
	char *out = NULL, why[256] = "";
	size_t len = 0;
	sw_err e = sw_syslog_frame(f, &it, &out, &len, why, sizeof why);
	if (!ok(e == SW_OK, "%s: formats", what)) {
		printf("#   %s\n", why);
		return;
	}
	char *sp = memchr(out, ' ', len);
	ok(sp != NULL, "%s: has MSG-LEN SP", what);
	if (!sp)
		return;
	size_t digits = (size_t)(sp - out);
	char nb[32] = "";
	memcpy(nb, out, digits < sizeof nb - 1 ? digits : sizeof nb - 1);
	ok(digits >= 1 && nb[0] != '0' && strspn(nb, "0123456789") == digits,
	   "%s: MSG-LEN is NONZERO-DIGIT *DIGIT", what);
	is_int(strtoull(nb, NULL, 10), len - digits - 1, "%s: octet count equals the message's byte length",
	       what);
	is_int(len, strlen(out), "%s: no NUL inside", what);
	ok(!memchr(out, '\n', len) && !memchr(out, '\r', len), "%s: no CR or LF anywhere", what);
	is_str(sp + 1, want_msg, "%s: exact message", what);
	free(out);
}

static void is_sd(const char *in, size_t len, const char *want, const char *what)
{
	char *got = sw_syslog_sd_value(in, len);
	is_str(got, want, "sd value: %s", what);
	free(got);
}

int main(void)
{
	/* PARAM-VALUE escaping. */
	is_sd("MMSoft Design Ltd.", 18, "MMSoft Design Ltd.", "plain text unchanged");
	is_sd("a\"b\\c]d", 7, "a\\\"b\\\\c\\]d", "'\"', '\\' and ']' get a backslash");
	is_sd("[x=y]", 5, "[x=y\\]", "'[' and '=' need no escape, ']' does");
	is_sd("line1\nline2\r", 12, "line1\\\\x0Aline2\\\\x0D",
	      "CR/LF become visible \\xNN (escaped backslash)");
	is_sd("\x01\x1f\x7f", 3, "\\\\x01\\\\x1F\\\\x7F", "C0 controls and DEL");
	is_sd("a\0b", 3, "a\\\\x00b", "NUL inside a value");
	is_sd("\xC2\x85|\xC2\x9B", 5, "\\\\x85|\\\\x9B", "C1 controls (NEL, CSI)");
	is_sd("Micro\xE2\x80\xAEsoft", 12, "Micro\\\\u{202E}soft", "right-to-left override U+202E");
	is_sd("\xE2\x81\xA6x\xE2\x81\xA9\xE2\x80\x8F", 10, "\\\\u{2066}x\\\\u{2069}\\\\u{200F}",
	      "isolates and RLM");
	is_sd("a\xE2\x80\xA8"
	      "b",
	      5, "a\\\\u{2028}b", "U+2028 LINE SEPARATOR");
	is_sd("M\xC3\xBCller \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x94\x91", 19,
	      "M\xC3\xBCller \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x94\x91", "valid UTF-8 passes");
	is_sd("a\xFF"
	      "b",
	      3, "a" FFFD "b", "invalid byte 0xFF");
	is_sd("a\xC3", 2, "a" FFFD, "truncated 2-byte sequence at the end");
	is_sd("\xE2\x82x", 3, FFFD "x", "truncated 3-byte sequence: one U+FFFD");
	is_sd("\xC0\xAF", 2, FFFD FFFD, "overlong '/'");
	is_sd("\xED\xA0\x80", 3, FFFD FFFD FFFD, "UTF-16 surrogate");
	is_sd("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD, "past U+10FFFF");
	is_sd("\x80\"", 2, FFFD "\\\"", "stray continuation byte then a quote");

	/* A record. */
	const char *rec =
	        "{\"Timestamp\":\"2024-03-01T12:00:00.123Z\",\"DeviceId\":"
	        "\"0123456789abcdef0123456789abcdef01234567\","
	        "\"DeviceName\":\"ws1.example.com\",\"FolderPath\":\"C:\\\\Tools\",\"FileName\":\"agent."
	        "exe\","
	        "\"SHA256\":\"c4807421e4dc41e197ed980405ae2650e5544e987a16beb3ff01f5317072bc8e\","
	        "\"IsSigned\":true,"
	        "\"Signer\":\"MMSoft Design Ltd.\",\"Issuer\":\"Test CA\",\"IsTrusted\":false,\"ReportId\":7,"
	        "\"Anomalies\":[]}";
	is_frame(
	        &fmt, SW_ITEM_RECORD, rec, "0123456789abcdef0123456789abcdef01234567:7",
	        "<134>1 2024-03-01T12:00:00.123Z ws1.example.com signwatch 4242 record "
	        "[signwatch@32473 DeviceId=\"0123456789abcdef0123456789abcdef01234567\" ReportId=\"7\" "
	        "Signer=\"MMSoft Design Ltd.\" Issuer=\"Test CA\" "
	        "SHA256=\"c4807421e4dc41e197ed980405ae2650e5544e987a16beb3ff01f5317072bc8e\" "
	        "FileName=\"agent.exe\" IsTrusted=\"false\" "
	        "IdempotencyKey=\"0123456789abcdef0123456789abcdef01234567:7\"] " BOM
	        "{\"Timestamp\":\"2024-03-01T12:00:00.123Z\",\"DeviceId\":"
	        "\"0123456789abcdef0123456789abcdef01234567\","
	        "\"DeviceName\":\"ws1.example.com\",\"FolderPath\":\"C:\\\\Tools\",\"FileName\":\"agent."
	        "exe\","
	        "\"SHA256\":\"c4807421e4dc41e197ed980405ae2650e5544e987a16beb3ff01f5317072bc8e\","
	        "\"IsSigned\":true,"
	        "\"Signer\":\"MMSoft Design Ltd.\",\"Issuer\":\"Test CA\",\"IsTrusted\":false,\"ReportId\":7,"
	        "\"Anomalies\":[]}",
	        "record");

	/* A summary row: notice, MSGID summary, no Timestamp so "now". */
	const char *sum = "{\"RuleId\":\"6192b741-4540-4416-8dbb-ce0405166d0a\",\"RuleName\":\"Pulseway\","
	                  "\"DeviceId\":\"0123456789abcdef0123456789abcdef01234567\",\"DeviceName\":\"ws1."
	                  "example.com\","
	                  "\"FirstSeen\":\"2024-02-28T08:00:00Z\",\"LastSeen\":\"2024-03-01T12:00:00Z\","
	                  "\"Report\":[3,7],\"Count\":2}";
	is_frame(&fmt, SW_ITEM_SUMMARY, sum,
	         "6192b741-4540-4416-8dbb-ce0405166d0a:0123456789abcdef0123456789abcdef01234567:4",
	         "<133>1 2024-03-01T12:00:00Z ws1.example.com signwatch 4242 summary "
	         "[signwatch@32473 DeviceId=\"0123456789abcdef0123456789abcdef01234567\" "
	         "RuleId=\"6192b741-4540-4416-8dbb-ce0405166d0a\" Count=\"2\" "
	         "IdempotencyKey=\"6192b741-4540-4416-8dbb-ce0405166d0a:"
	         "0123456789abcdef0123456789abcdef01234567:4\"] " BOM
	         "{\"RuleId\":\"6192b741-4540-4416-8dbb-ce0405166d0a\",\"RuleName\":\"Pulseway\","
	         "\"DeviceId\":\"0123456789abcdef0123456789abcdef01234567\",\"DeviceName\":\"ws1.example."
	         "com\","
	         "\"FirstSeen\":\"2024-02-28T08:00:00Z\",\"LastSeen\":\"2024-03-01T12:00:00Z\","
	         "\"Report\":[3,7],\"Count\":2}",
	         "summary");

	/* Hostile strings, JSON-escaped by the producer: SD escaped, MSG the
	 * JSON re-serialised as pure ASCII (so the same escapes). */
	const char *hostile = "{\"Timestamp\":\"2024-03-01T12:00:00Z\",\"DeviceName\":\"ws1\","
	                      "\"Signer\":\"Evil \\\"Corp\\\"] \\\\ x\\nInjected: <13>1 - - "
	                      "-\\u0007\\u202Eexe.gpj\\u0000z\","
	                      "\"ReportId\":1}";
	is_frame(&fmt, SW_ITEM_RECORD, hostile, "k",
	         "<134>1 2024-03-01T12:00:00Z ws1 signwatch 4242 record "
	         "[signwatch@32473 ReportId=\"1\" Signer=\"Evil \\\"Corp\\\"\\] \\\\ x\\\\x0AInjected: <13>1 "
	         "- - -"
	         "\\\\x07\\\\u{202E}exe.gpj\\\\x00z\" IdempotencyKey=\"k\"] " BOM
	         "{\"Timestamp\":\"2024-03-01T12:00:00Z\",\"DeviceName\":\"ws1\","
	         "\"Signer\":\"Evil \\\"Corp\\\"] \\\\ x\\nInjected: <13>1 - - "
	         "-\\u0007\\u202Eexe.gpj\\u0000z\",\"ReportId\":1}",
	         "hostile signer");

	/* Raw non-ASCII and DEL in the JSON: MSG comes out ASCII-only. */
	is_frame(&fmt, SW_ITEM_RECORD, "{\"Signer\":\"M\xC3\xBCller\x7F\"}", NULL,
	         "<134>1 2024-03-01T12:00:00Z fallback.example signwatch 4242 record "
	         "[signwatch@32473 Signer=\"M\xC3\xBCller\\\\x7F\"] " BOM
	         "{\"Signer\":\"M\\u00FCller\\u007F\"}",
	         "raw UTF-8 and DEL");

	/* Raw invalid UTF-8 in the JSON (the producer should have replaced
	 * it): replaced here, one U+FFFD per maximal ill-formed subpart. */
	is_frame(&fmt, SW_ITEM_RECORD, "{\"Signer\":\"a\xFF\xC3(\xE2\x82]\"}", NULL,
	         "<134>1 2024-03-01T12:00:00Z fallback.example signwatch 4242 record "
	         "[signwatch@32473 Signer=\"a" FFFD FFFD "(" FFFD "\\]\"] " BOM
	         "{\"Signer\":\"a\\uFFFD\\uFFFD(\\uFFFD]\"}",
	         "raw invalid UTF-8 in the JSON");

	/* Pretty-printed JSON: newlines between tokens never reach the wire. */
	is_frame(&fmt, SW_ITEM_RECORD, "{\n  \"FileName\": \"a.exe\",\n  \"IsTrusted\": true\n}\n", "",
	         "<134>1 2024-03-01T12:00:00Z fallback.example signwatch 4242 record "
	         "[signwatch@32473 FileName=\"a.exe\" IsTrusted=\"true\"] " BOM
	         "{\"FileName\":\"a.exe\",\"IsTrusted\":true}",
	         "pretty-printed input");

	/* Header fields that do not fit fall back. */
	sw_syslog_fmt bad = { "has space", "host with space", -1, 0 };
	is_frame(&bad, SW_ITEM_RECORD,
	         "{\"Timestamp\":\"2024-13-01T00:00:00Z\",\"DeviceName\":\"caf\xC3\xA9\"}", NULL,
	         "<134>1 1970-01-01T00:00:00Z - signwatch - record - " BOM
	         "{\"Timestamp\":\"2024-13-01T00:00:00Z\",\"DeviceName\":\"caf\\u00E9\"}",
	         "bad app name, host names, timestamp; no SD");
	is_frame(&fmt, SW_ITEM_RECORD,
	         "{\"Timestamp\":\"2024-03-01T12:00:00+01:00\",\"MatchedRules\":[\"x\"]}", NULL,
	         "<133>1 2024-03-01T12:00:00Z fallback.example signwatch 4242 record - " BOM
	         "{\"Timestamp\":\"2024-03-01T12:00:00+01:00\",\"MatchedRules\":[\"x\"]}",
	         "non-UTC timestamp replaced; matched record is notice");
	is_frame(&fmt, SW_ITEM_RECORD,
	         "{\"Timestamp\":\"2024-02-29T23:59:60.123456Z\",\"DeviceName\":\"-x\"}", NULL,
	         "<134>1 2024-02-29T23:59:60.123456Z -x signwatch 4242 record - " BOM
	         "{\"Timestamp\":\"2024-02-29T23:59:60.123456Z\",\"DeviceName\":\"-x\"}",
	         "leap day, leap second, 6-digit fraction");
	is_frame(&fmt, SW_ITEM_RECORD, "{\"Timestamp\":\"2023-02-29T00:00:00.1234567Z\"}", NULL,
	         "<134>1 2024-03-01T12:00:00Z fallback.example signwatch 4242 record - " BOM
	         "{\"Timestamp\":\"2023-02-29T00:00:00.1234567Z\"}",
	         "no leap day in 2023, 7-digit fraction");
	char longhost[300];
	memset(longhost, 'h', 256);
	longhost[256] = 0;
	char json[400], want[800];
	snprintf(json, sizeof json, "{\"DeviceName\":\"%s\"}", longhost);
	snprintf(want, sizeof want,
	         "<134>1 2024-03-01T12:00:00Z fallback.example signwatch 4242 record - " BOM "%s", json);
	is_frame(&fmt, SW_ITEM_RECORD, json, NULL, want, "HOSTNAME over 255 characters");

	is_int(sw_syslog_pri(&(sw_item){ SW_ITEM_SUMMARY, "{}", NULL }), 133, "summary PRI local0.notice");
	is_int(sw_syslog_pri(&(sw_item){ SW_ITEM_RECORD, "{}", NULL }), 134, "record PRI local0.info");
	is_int(sw_syslog_pri(&(sw_item){ SW_ITEM_RECORD, "{\"MatchedRules\":[]}", NULL }), 134,
	       "record with no matched rule: info");

	/* What is not a JSON object is refused, permanently. */
	const char *bads[] = { "not json", "[1,2]", "{\"Signer\":\"a\nb\"}", "{\"Signer\":\"\xFF\nb\"}", "" };
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		sw_item it = { SW_ITEM_RECORD, bads[i], NULL };
		char *out = (char *)1, why[256] = "";
		size_t len = 1;
		sw_err e = sw_syslog_frame(&fmt, &it, &out, &len, why, sizeof why);
		ok(e == SW_ERR_UNSUPPORTED && out == NULL && len == 0 && why[0], "refused input %zu (%s)", i,
		   why);
	}
	sw_item nul = { SW_ITEM_RECORD, NULL, NULL };
	char *out = NULL, why[256];
	size_t len;
	ok(sw_syslog_frame(&fmt, &nul, &out, &len, why, sizeof why) == SW_ERR_UNSUPPORTED,
	   "NULL json refused");
	return done_testing();
}
