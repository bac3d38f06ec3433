/* The record: columns, UTF-8 sanitizing, times and JSON escaping. */
#include <jansson.h>
#include <stdlib.h>

#include "record.h"
#include "tap.h"
#include "text_escape.h"

static void sanitize(const char *in, size_t n, const char *want, const char *what)
{
	char *s = sw_utf8_sanitize(in, n);
	is_str(s, want, "sanitize: %s", what);
	free(s);
}

int main(void)
{
	is_int(sw_col_lookup("Signer"), SW_COL_SIGNER, "column by name");
	is_int(sw_col_lookup("TimeGenerated"), SW_COL_TIMESTAMP, "TimeGenerated is Timestamp");
	is_int(sw_col_lookup("signer"), -1, "column names are case-sensitive");
	for (int c = 0; c < SW_COL__COUNT; c++)
		if (sw_col_lookup(sw_col_name(c)) != c)
			ok(0, "column %d round-trips", c);
	ok(1, "every column name round-trips");

	sanitize("plain", 5, "plain", "ASCII kept");
	sanitize("Kr\xc3\xa4mer", 7, "Kr\xc3\xa4mer", "valid UTF-8 kept");
	sanitize("a\xff"
	         "b",
	         3,
	         "a\xef\xbf\xbd"
	         "b",
	         "invalid byte replaced");
	sanitize("a\0b", 3,
	         "a\xef\xbf\xbd"
	         "b",
	         "NUL replaced");
	sanitize("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", "overlong refused");
	sanitize("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "surrogate refused");
	sanitize("\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
	         "past U+10FFFF refused");
	sanitize("\xe2\x82", 2, "\xef\xbf\xbd", "cut sequence: one U+FFFD for the maximal subpart");
	sanitize("\xe2\x82"
	         "a",
	         3,
	         "\xef\xbf\xbd"
	         "a",
	         "cut sequence before ASCII");
	sanitize("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", "4-byte sequence kept");

	char buf[40];
	int64_t ms = sw_time_make(2024, 3, 1, 12, 0, 0);
	is_str(sw_time_iso(ms, buf, sizeof(buf)), "2024-03-01T12:00:00Z", "ISO time");
	is_str(sw_time_iso(ms + 250, buf, sizeof(buf)), "2024-03-01T12:00:00.250Z", "ISO time with ms");
	is_str(sw_time_iso(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z", "epoch");
	is_str(sw_time_iso(sw_time_make(1969, 12, 31, 23, 59, 59), buf, sizeof(buf)), "1969-12-31T23:59:59Z",
	       "before the epoch");
	is_str(sw_time_iso(sw_time_make(2000, 2, 29, 0, 0, 0), buf, sizeof(buf)), "2000-02-29T00:00:00Z",
	       "leap day");
	int64_t back;
	is_int(sw_time_parse("2024-03-01T12:00:00.25Z", &back), 0, "parse ISO");
	ok(back == ms + 250, "parse round-trips with fraction");
	ok(sw_time_parse("2024-13-01T00:00:00Z", &back) != 0, "month 13 refused");
	ok(sw_time_parse("2024-03-01T12:00:00Zjunk", &back) != 0, "trailing junk refused");

	/* JSON: hostile certificate strings survive escaped and intact. */
	sw_record r;
	sw_record_init(&r);
	const char *hostile = "Evil \"Corp\"\n]\\ \x01\x1b[31m \xe2\x80\xae"
	                      "gpj.exe";
	r.signer = sw_utf8_sanitize(hostile, strlen(hostile));
	r.is_signed = true;
	sw_record_set_anomalies(&r, SW_ANOM_DATA_AFTER_TABLE | SW_ANOM_MULTIPLE_ENTRIES);
	char *js = sw_record_json(&r);
	ok(js && !strchr(js, '\n') && !strchr(js, '\x1b') && !strchr(js, '\x01'),
	   "JSON on one line, controls escaped");
	ok(js && (strstr(js, "\\u202e") || strstr(js, "\\u202E")), "JSON escapes the right-to-left override");
	json_error_t jerr;
	json_t *o = js ? json_loads(js, 0, &jerr) : NULL;
	ok(o != NULL, "JSON parses back");
	is_str(o ? json_string_value(json_object_get(o, "Signer")) : NULL, r.signer,
	       "Signer intact after a round trip");
	json_t *an = o ? json_object_get(o, "Anomalies") : NULL;
	is_int(json_array_size(an), 2, "Anomalies listed by name");
	is_str(json_string_value(json_array_get(an, 0)), "DataAfterTable", "first anomaly name");
	ok(json_is_null(json_object_get(o, "IsTrusted")), "unknown trust is null");
	ok(json_is_null(json_object_get(o, "ReportId")), "unassigned ReportId is null");
	json_decref(o);
	free(js);

	sw_value v;
	sw_record_get(&r, SW_COL_SIGNER, &v);
	ok(v.type == SW_V_STRING && v.s == r.signer, "get Signer");
	sw_record_get(&r, SW_COL_ANOMALIES, &v);
	ok(v.type == SW_V_ARRAY && v.n == 2, "get Anomalies");
	sw_record_get(&r, SW_COL_IS_TRUSTED, &v);
	ok(v.type == SW_V_NULL, "get null IsTrusted");

	sw_record c;
	is_int(sw_record_copy(&c, &r), SW_OK, "copy");
	ok(c.signer != r.signer && strcmp(c.signer, r.signer) == 0, "copy is deep");
	sw_record_free(&c);
	sw_record_free(&r);

	char *e = sw_escape_terminal(hostile);
	ok(e && !strchr(e, '\x1b') && !strchr(e, '\n') && strstr(e, "\\u{202e}") && strstr(e, "\\x1b"),
	   "terminal escaping: %s", e);
	free(e);
	return done_testing();
}
