/* Unit tests for common/kql.c: parsing, evaluation, windows, summarize
 * accessors, describe, and every rejection with its position. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kql.h"
#include "tap.h"

#define DAY 86400000LL
#define NOW 1717243200000LL /* 2024-06-01T12:00:00Z */

static const char PULSEWAY[] = "let Time_start = now(-5d);\n"
                               "let Time_end = now();\n"
                               "//\n"
                               "DeviceFileCertificateInfo\n"
                               "| where Timestamp between (Time_start..Time_end)\n"
                               "| where Signer has 'MMSoft Design'\n"
                               "| summarize FirstSeen=min(Timestamp), LastSeen=max(Timestamp), \n"
                               "    Report=make_set(ReportId), Count=count() by DeviceId, DeviceName\n";

static char *crl[] = { "http://crl.example.com/ca.crl", "http://crl2.example.org/x.crl" };
/* YARA matches, which KQL rules may test like any array column. */
static char *yara[] = { "Pulseway_Signed_Binary", "Pulseway_Agent_Strings" };

/* Strings are borrowed, so never sw_record_free() this. */
static void mkrec(sw_record *r, const char *signer)
{
	sw_record_init(r);
	r->timestamp = NOW - DAY;
	strcpy(r->device_id, "0123456789abcdef0123456789abcdef01234567");
	r->device_name = "ws1.example.com";
	r->folder_path = "C:\\Program Files\\Pulseway";
	r->file_name = "PCMonitorSrv.exe";
	r->is_signed = true;
	r->signature_type = "Embedded";
	r->signer = (char *)signer;
	r->issuer = "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1";
	r->serial = "0A1B2C";
	r->crl_urls = crl;
	r->n_crl_urls = 2;
	r->yara_matches = yara;
	r->n_yara_matches = 2;
	r->is_trusted = SW_YES;
	r->report_id = 42;
	r->file_size = 123456;
	r->cert_created = NOW - 300 * DAY;
}

static sw_kql *compile(const char *q, char *err, size_t n)
{
	sw_kql *k = NULL;
	if (sw_kql_compile(q, strlen(q), 1, 1, &k, err, n) != SW_OK)
		return NULL;
	return k;
}

/* Does `DeviceFileCertificateInfo | where COND` hold for r? -1 if it does
 * not compile. */
static int where(const char *cond, const sw_record *r)
{
	char q[2048], err[512];
	snprintf(q, sizeof q, "DeviceFileCertificateInfo | where %s", cond);
	sw_kql *k = compile(q, err, sizeof err);
	if (!k) {
		printf("# compile failed: %s\n", err);
		return -1;
	}
	int m = sw_kql_match(k, r, NOW);
	sw_kql_free(k);
	return m;
}

static void test_pulseway(void)
{
	char err[512];
	sw_kql *k = compile(PULSEWAY, err, sizeof err);
	ok(k != NULL, "Pulseway query compiles (%s)", k ? "ok" : err);
	if (!k)
		return;
	sw_record r;
	mkrec(&r, "MMSoft Design Ltd.");
	ok(sw_kql_match(k, &r, NOW), "Pulseway signer inside the window matches");
	r.timestamp = NOW - 6 * DAY;
	ok(!sw_kql_match(k, &r, NOW), "older than 5 days does not");
	r.timestamp = NOW - 5 * DAY;
	ok(sw_kql_match(k, &r, NOW), "exactly now-5d matches (between is inclusive)");
	r.timestamp = NOW;
	ok(sw_kql_match(k, &r, NOW), "exactly now matches");
	r.timestamp = NOW + 1;
	ok(!sw_kql_match(k, &r, NOW), "after now does not");
	r.timestamp = SW_TIME_NULL;
	ok(!sw_kql_match(k, &r, NOW), "null Timestamp does not");
	mkrec(&r, "XMMSoft Design");
	ok(!sw_kql_match(k, &r, NOW), "XMMSoft Design does not match");
	mkrec(&r, NULL);
	ok(!sw_kql_match(k, &r, NOW), "no signer does not match");

	int64_t from = 0, to = 0;
	ok(sw_kql_window(k, NOW, &from, &to) == 1, "window found");
	is_int(from, NOW - 5 * DAY, "window from now-5d");
	is_int(to, NOW, "window to now");

	ok(sw_kql_has_summarize(k), "has summarize");
	is_int(sw_kql_agg_count(k), 4, "four aggregations");
	sw_kql_agg a;
	static const char *const names[] = { "FirstSeen", "LastSeen", "Report", "Count" };
	static const sw_agg_fn fns[] = { SW_AGG_MIN, SW_AGG_MAX, SW_AGG_MAKE_SET, SW_AGG_COUNT };
	static const int cols[] = { SW_COL_TIMESTAMP, SW_COL_TIMESTAMP, SW_COL_REPORT_ID, -1 };
	for (size_t i = 0; i < 4; i++) {
		ok(sw_kql_agg_get(k, i, &a), "agg %zu", i);
		is_str(a.name, names[i], "agg %zu name", i);
		ok(a.fn == fns[i], "agg %zu is %s", i, sw_agg_fn_name(fns[i]));
		is_int(a.col, cols[i], "agg %zu column", i);
	}
	sw_kql_agg_get(k, 2, &a);
	is_int(a.cap, SW_KQL_SET_CAP_DEFAULT, "make_set default cap");
	ok(!sw_kql_agg_get(k, 4, &a), "agg out of range");
	is_int(sw_kql_by_count(k), 2, "two by-columns");
	is_int(sw_kql_by_col(k, 0), SW_COL_DEVICE_ID, "by DeviceId");
	is_int(sw_kql_by_col(k, 1), SW_COL_DEVICE_NAME, "by DeviceName");
	is_int(sw_kql_by_col(k, 2), -1, "by out of range");
	char *d = sw_kql_describe(k);
	is_str(d, "Timestamp between (now(-5d) .. now()) and Signer has 'MMSoft Design'", "describe");
	free(d);
	sw_kql_free(k);
}

static void test_operators(void)
{
	sw_record r;
	mkrec(&r, "MMSoft Design Ltd.");
	struct {
		const char *cond;
		int want;
	} c[] = {
		{ "Signer has 'mmsoft design'", 1 },
		{ "Signer !has 'MMSoft Design'", 0 },
		{ "Signer has_cs 'MMSoft Design'", 1 },
		{ "Signer has_cs 'mmsoft design'", 0 },
		{ "Signer !has_cs 'mmsoft design'", 1 },
		{ "Signer has_any ('Nope', 'mmsoft design')", 1 },
		{ "Signer has_any ('Nope', 'MMSoftDesign')", 0 },
		{ "Signer has_all ('MMSoft', 'Ltd')", 1 },
		{ "Signer has_all ('MMSoft', 'Inc')", 0 },
		{ "Signer contains 'soft des'", 1 },
		{ "Signer !contains 'soft des'", 0 },
		{ "Signer contains_cs 'Soft Des'", 1 },
		{ "Signer startswith 'mmsoft'", 1 },
		{ "Signer !startswith 'mmsoft'", 0 },
		{ "Signer startswith_cs 'mmsoft'", 0 },
		{ "Signer endswith 'LTD.'", 1 },
		{ "Signer endswith_cs 'LTD.'", 0 },
		{ "Signer == 'MMSoft Design Ltd.'", 1 },
		{ "Signer == 'mmsoft design ltd.'", 0 },
		{ "Signer != 'mmsoft design ltd.'", 1 },
		{ "Signer =~ 'mmsoft design ltd.'", 1 },
		{ "Signer !~ 'mmsoft design ltd.'", 0 },
		{ "Signer in ('a', 'MMSoft Design Ltd.')", 1 },
		{ "Signer in ('a', 'mmsoft design ltd.')", 0 },
		{ "Signer in~ ('a', 'mmsoft design ltd.')", 1 },
		{ "Signer !in ('a', 'b')", 1 },
		{ "Signer !in~ ('MMSOFT DESIGN LTD.')", 0 },
		{ "isempty(Signer)", 0 },
		{ "isnotempty(Signer)", 1 },
		{ "isempty(SignerDN)", 1 },
		{ "isempty(CertificateCountersignatureTime)", 1 },
		{ "isnotempty(CrlDistributionPointUrls)", 1 },
		{ "IsTrusted == true", 1 },
		{ "IsTrusted == 1", 1 },
		{ "IsTrusted == false", 0 },
		{ "IsTrusted != 0", 1 },
		{ "IsTrusted", 1 },
		{ "not(IsTrusted)", 0 },
		{ "IsSigned and IsTrusted", 1 },
		{ "IsNested", 0 },
		{ "ReportId == 42", 1 },
		{ "ReportId != 42", 0 },
		{ "ReportId in (1, 42, 7)", 1 },
		{ "ReportId !in (1, 7)", 1 },
		{ "FileSize > 1000 and FileSize <= 123456", 1 },
		{ "FileSize < 123456", 0 },
		{ "FileSize between (100 .. 200000)", 1 },
		{ "FileSize !between (100 .. 200000)", 0 },
		{ "SignatureIndex == -1", 0 },
		{ "Timestamp > ago(2d)", 1 },
		{ "Timestamp > ago(12h)", 0 },
		{ "Timestamp >= now(-1d)", 1 },
		{ "TimeGenerated between (now(-2d) .. now())", 1 },
		{ "Timestamp between (datetime(2024-05-31) .. datetime(2024-05-31T23:59:59Z))", 1 },
		{ "Timestamp between (datetime(2024-05-31 12:00:00.001) .. now())", 0 },
		{ "Timestamp between (now(-1d) .. now(-1d))", 1 },
		{ "Timestamp between (now(-86400000ms) .. now(-1440m))", 1 },
		{ "Timestamp between (now(-86399s) .. now())", 0 },
		{ "Timestamp between (now(-1.5d) .. now(-24h))", 1 },
		{ "CertificateCreationTime < ago(299d)", 1 },
		{ "CertificateCountersignatureTime < now()", 0 },
		{ "YaraMatches has 'Pulseway_Signed_Binary'", 1 },
		{ "YaraMatches has_any ('Pulseway_Version_Info', 'Other')", 0 },
		{ "YaraMatches contains 'Agent_Strings'", 1 },
		{ "Signer has 'MMSoft' and YaraMatches has 'Pulseway_Signed_Binary'", 1 },
		{ "CrlDistributionPointUrls has 'crl2.example.org'", 1 },
		{ "CrlDistributionPointUrls has 'example'", 1 },
		{ "CrlDistributionPointUrls has 'exampl'", 0 },
		{ "CrlDistributionPointUrls !has 'nope'", 1 },
		{ "CrlDistributionPointUrls has_all ('crl.example.com', 'crl2')", 1 },
		{ "Signer has 'MMSoft' and Signer has 'Ltd'", 1 },
		{ "Signer has 'Nope' or Signer has 'Ltd'", 1 },
		{ "Signer has 'Nope' or Signer has 'Also' or FileName =~ 'pcmonitorsrv.exe'", 1 },
		{ "(Signer has 'Nope' or Signer has 'Ltd') and not(Signer has 'Design')", 0 },
		{ "not(not(Signer has 'Design'))", 1 },
		{ "Signer has 'a' or Signer has 'MMSoft' and Signer has 'Nope'", 0 },
		{ "Signer has \"MMSoft Design\"", 1 },
		{ "Signer has @'MMSoft Design'", 1 },
		{ "FolderPath == @'C:\\Program Files\\Pulseway'", 1 },
		{ "FolderPath == 'C:\\\\Program Files\\\\Pulseway'", 1 },
		{ "FolderPath startswith @\"c:\\program\"", 1 },
		{ "Signer has h'MMSoft'", 1 },
		{ "Signer !has 'it''s'", -1 },
		{ "Signer == @'it''s'", 0 },
		{ "Signer has 'MMSoft' // trailing comment", 1 },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		is_int(where(c[i].cond, &r), c[i].want, "where %s", c[i].cond);

	/* KQL nulls: comparisons with a null bool are false both ways. */
	r.is_trusted = SW_NULL;
	is_int(where("IsTrusted == true", &r), 0, "null IsTrusted == true is false");
	is_int(where("IsTrusted != true", &r), 0, "null IsTrusted != true is false");
	is_int(where("isempty(IsTrusted)", &r), 1, "null IsTrusted is empty");
	r.report_id = -1;
	is_int(where("ReportId != 42", &r), 0, "null ReportId != 42 is false");
	/* Strings are never null: a missing signer is "". */
	mkrec(&r, NULL);
	is_int(where("Signer !has 'x'", &r), 1, "missing Signer !has 'x'");
	is_int(where("Signer == ''", &r), 1, "missing Signer == ''");
	is_int(where("isempty(Signer)", &r), 1, "missing Signer isempty");
}

static void test_unicode(void)
{
	sw_record r;
	mkrec(&r, "KRÄMER IT Solutions GmbH");
	is_int(where("Signer has 'Krämer IT Solutions GmbH'", &r), 1, "Krämer via has");
	is_int(where("Signer =~ 'krämer it solutions gmbh'", &r), 1, "Krämer via =~");
	mkrec(&r, "DWSNET O\xC3\x9C");
	is_int(where("Signer has 'dwsnet oü'", &r), 1, "DWSNET OÜ");
	mkrec(&r, "MMSoft\xFF Design \xC3");
	is_int(where("Signer has 'MMSoft'", &r), 1, "invalid UTF-8 in the record does not break matching");
	is_int(where("Signer has 'MMSoft Design'", &r), 0, "0xFF is not a space");
}

/* Error, with its position and token. */
static void bad(const char *q, int lb, int cb, const char *want_prefix, const char *want_sub)
{
	sw_kql *k = NULL;
	char err[512] = "";
	sw_err e = sw_kql_compile(q, strlen(q), lb, cb, &k, err, sizeof err);
	char shown[64]; /* one TAP line: no newlines in the test name */
	snprintf(shown, sizeof shown, "%s", q);
	for (char *c = shown; *c; c++)
		if (*c == '\n')
			*c = ' ';
	ok(e != SW_OK && k == NULL, "rejected: %s", shown);
	ok(strncmp(err, want_prefix, strlen(want_prefix)) == 0 && strstr(err, want_sub) != NULL,
	   "message '%s' starts with '%s' and has '%s'", err, want_prefix, want_sub);
}

static void test_errors(void)
{
	bad("DeviceProcessEvents | where FileName has 'x'", 1, 1, "1:1: ", "'DeviceProcessEvents'");
	bad("DeviceFileCertificateInfo\n| where signer has 'x'", 1, 1, "2:9: ", "did you mean 'Signer'");
	bad("DeviceFileCertificateInfo\n| where Signr has 'x'", 1, 1, "2:9: ", "unknown column 'Signr'");
	bad("DeviceFileCertificateInfo | where Signer matches regex 'x'", 1, 1,
	    "1:42: ", "unsupported operator");
	bad("DeviceFileCertificateInfo | where Signer hasprefix 'x'", 1, 1, "1:42: ", "'hasprefix'");
	bad("DeviceFileCertificateInfo | where tolower(Signer) == 'x'", 1, 1,
	    "1:35: ", "unsupported function 'tolower'");
	bad("DeviceFileCertificateInfo | where Signer has 'x' garbage", 1, 1, "1:50: ", "'garbage'");
	bad("DeviceFileCertificateInfo | where Signer has 'x' | take 10", 1, 1,
	    "1:52: ", "unsupported tabular operator");
	bad("DeviceFileCertificateInfo | where Signer has 'x", 1, 1, "1:46: ", "unterminated string");
	bad("DeviceFileCertificateInfo | where Signer has 'a\\qb'", 1, 1, "1:46: ", "unknown escape");
	bad("DeviceFileCertificateInfo | where Signer has ''", 1, 1, "1:46: ", "empty string");
	bad("DeviceFileCertificateInfo | where Signer has_any ('a', '')", 1, 1, "1:56: ", "empty string");
	bad("DeviceFileCertificateInfo | where Signer has 42", 1, 1, "1:46: ", "expected a string");
	bad("DeviceFileCertificateInfo | where FileSize has 'x'", 1, 1, "1:44: ", "needs a string column");
	bad("DeviceFileCertificateInfo | where Signer > 'x'", 1, 1, "1:42: ", "unsupported operator");
	bad("DeviceFileCertificateInfo | where IsTrusted == 2", 1, 1, "1:48: ", "true, false, 1 or 0");
	bad("DeviceFileCertificateInfo | where IsTrusted == 'yes'", 1, 1, "1:48: ", "true, false");
	bad("DeviceFileCertificateInfo | where FileSize == 1.5", 1, 1, "1:47: ", "integer");
	bad("DeviceFileCertificateInfo | where Timestamp between (X .. now())", 1, 1,
	    "1:54: ", "unknown name");
	bad("DeviceFileCertificateInfo | where Timestamp between (now(-5x) .. now())", 1, 1,
	    "1:59: ", "units");
	bad("DeviceFileCertificateInfo | where Timestamp between (now(-5d) now())", 1, 1, "1:63: ", "'..'");
	bad("DeviceFileCertificateInfo | where Timestamp between (datetime(2024-02-30) .. now())", 1, 1,
	    "1:54: ", "bad datetime");
	bad("DeviceFileCertificateInfo | where Timestamp > 5", 1, 1, "1:47: ", "expected a time");
	bad("let T = 5;\nDeviceFileCertificateInfo", 1, 1, "1:9: ", "unsupported let value");
	bad("let T = now(-1d)\nDeviceFileCertificateInfo", 1, 1, "2:1: ", "';'");
	bad("let T = now(); let T = now();\nDeviceFileCertificateInfo", 1, 1, "1:20: ", "already defined");
	bad("DeviceFileCertificateInfo | summarize c=count() | where Signer has 'x'", 1, 1,
	    "1:51: ", "summarize must be the last");
	bad("DeviceFileCertificateInfo | summarize c=dcount(Signer)", 1, 1,
	    "1:41: ", "unsupported aggregation");
	bad("DeviceFileCertificateInfo | summarize c=count(), c=count()", 1, 1, "1:50: ", "used twice");
	bad("DeviceFileCertificateInfo | summarize s=make_set(ReportId, 0)", 1, 1, "1:60: ", "1..1048576");
	bad("DeviceFileCertificateInfo | summarize c=count() by Devic", 1, 1,
	    "1:52: ", "unknown column 'Devic'");
	bad("DeviceFileCertificateInfo | where Signer has 'x' ;;", 1, 1, "1:51: ", "unexpected text");
	bad("DeviceFileCertificateInfo | where Signer has 'x' ! 1", 1, 1, "1:50: ", "unexpected character");
	bad("DeviceFileCertificateInfo | where", 1, 1, "1:34: ", "at end of query");
	bad("", 1, 1, "1:1: ", "DeviceFileCertificateInfo");
	bad("// only a comment\n", 1, 1, "2:1: ", "DeviceFileCertificateInfo");
	bad("devicefilecertificateinfo", 1, 1, "1:1: ", "unsupported table");
	bad("DeviceFileCertificateInfo | where Signer has 'Kr\xE4mer'", 1, 1, "1:49: ", "not valid UTF-8");
	/* Positions shift by the caller's base, on every line. */
	bad("DeviceFileCertificateInfo\n| where Signer hass 'x'", 14, 3, "15:18: ", "'hass'");
	bad("DeviceFileCertificateInfo | where Signer hass 'x'", 14, 3, "14:44: ", "'hass'");
	/* Code points, not bytes, make columns. */
	bad("DeviceFileCertificateInfo | where Signer has 'Ä' bogus", 1, 1, "1:50: ", "'bogus'");

	/* Caps. */
	char *q = malloc(SW_KQL_MAX_QUERY + 64);
	strcpy(q, "DeviceFileCertificateInfo | where ");
	size_t n = strlen(q);
	for (int i = 0; i < SW_KQL_MAX_DEPTH + 1; i++)
		q[n++] = '(';
	strcpy(q + n, "IsTrusted");
	n += strlen("IsTrusted");
	for (int i = 0; i < SW_KQL_MAX_DEPTH + 1; i++)
		q[n++] = ')';
	q[n] = '\0';
	bad(q, 1, 1, "1:", "nesting deeper");
	strcpy(q, "DeviceFileCertificateInfo | where Signer has_any (");
	for (int i = 0; i <= SW_KQL_MAX_LIST; i++)
		strcat(q, i ? ",'a'" : "'a'");
	strcat(q, ")");
	bad(q, 1, 1, "1:", "list longer");
	memset(q, ' ', SW_KQL_MAX_QUERY + 1);
	memcpy(q, "DeviceFileCertificateInfo", 25);
	q[SW_KQL_MAX_QUERY + 1] = '\0';
	bad(q, 1, 1, "1:1: ", "query longer");
	/* A long and-chain is fine (n-ary, no deep recursion) until the node cap. */
	strcpy(q, "DeviceFileCertificateInfo | where IsTrusted");
	for (int i = 0; i < 3000; i++)
		strcat(q, " and IsTrusted");
	char err[256];
	sw_kql *k = compile(q, err, sizeof err);
	ok(k != NULL, "3000-term and chain compiles");
	sw_record r;
	mkrec(&r, "x");
	ok(k && sw_kql_match(k, &r, NOW), "and evaluates it");
	sw_kql_free(k);
	strcpy(q, "DeviceFileCertificateInfo | where IsTrusted");
	for (int i = 0; i < SW_KQL_MAX_NODES + 1; i++)
		strcat(q, " or IsTrusted");
	bad(q, 1, 1, "1:", "too complex");
	free(q);
	/* NUL inside the given length. */
	k = NULL;
	sw_err e = sw_kql_compile("DeviceFileCertificateInfo\0 | where", 34, 1, 1, &k, err, sizeof err);
	ok(e != SW_OK && strstr(err, "1:26: "), "NUL byte rejected at its position (%s)", err);
	/* Tiny error buffers are still terminated. */
	char small[8];
	e = sw_kql_compile("nope", 4, 1, 1, &k, small, sizeof small);
	ok(e == SW_ERR_RULE && strlen(small) < sizeof small, "short error buffer");
	e = sw_kql_compile("nope", 4, 1, 1, &k, NULL, 0);
	ok(e == SW_ERR_RULE, "no error buffer");
}

static void test_misc(void)
{
	char err[512];
	sw_kql *k = compile("DeviceFileCertificateInfo", err, sizeof err);
	sw_record r;
	mkrec(&r, "x");
	ok(k && sw_kql_match(k, &r, NOW), "no where: every record");
	int64_t a = 1, b = 2;
	ok(k && sw_kql_window(k, NOW, &a, &b) == 0 && a == 1 && b == 2, "no window");
	ok(k && !sw_kql_has_summarize(k) && sw_kql_agg_count(k) == 0, "no summarize");
	char *d = k ? sw_kql_describe(k) : NULL;
	is_str(d, "true", "describe without where");
	free(d);
	sw_kql_free(k);

	k = compile("DeviceFileCertificateInfo | where Timestamp > ago(1d) | where Timestamp <= "
	            "datetime(2024-06-01T00:00:00Z)"
	            " | where Signer has 'a' or Timestamp < ago(10d)",
	            err, sizeof err);
	ok(k && sw_kql_window(k, NOW, &a, &b) == 1, "window from comparisons");
	is_int(a, NOW - DAY + 1, "> is exclusive");
	is_int(b, NOW - 12 * 3600000LL, "<= datetime");
	d = k ? sw_kql_describe(k) : NULL;
	is_str(d,
	       "Timestamp > now(-1d) and Timestamp <= datetime(2024-06-01T00:00:00Z) and "
	       "(Signer has 'a' or Timestamp < now(-10d))",
	       "describe comparisons");
	free(d);
	sw_kql_free(k);

	k = compile(
	        "DeviceFileCertificateInfo | where Signer has_any ('it\\'s', \"b\") and not(isempty(Issuer)) "
	        "and ReportId in (1, 2) and IsTrusted == false | summarize count(), min(Timestamp), "
	        "make_set(Signer, 10) by DeviceId",
	        err, sizeof err);
	ok(k != NULL, "compiles (%s)", k ? "" : err);
	d = k ? sw_kql_describe(k) : NULL;
	is_str(d,
	       "Signer has_any ('it\\'s', 'b') and not(isempty(Issuer)) and ReportId in (1, 2) and IsTrusted "
	       "== false",
	       "describe lists");
	free(d);
	sw_kql_agg ag;
	ok(k && sw_kql_agg_get(k, 0, &ag) && strcmp(ag.name, "count_") == 0, "default name count_");
	ok(k && sw_kql_agg_get(k, 1, &ag) && strcmp(ag.name, "min_Timestamp") == 0,
	   "default name min_Timestamp");
	ok(k && sw_kql_agg_get(k, 2, &ag) && strcmp(ag.name, "set_Signer") == 0 && ag.cap == 10,
	   "make_set cap 10");
	sw_kql_free(k);

	/* Scratch: one fold per record and column across rules; reset between records. */
	sw_kql *k1 = compile("DeviceFileCertificateInfo | where Signer has 'alpha'", err, sizeof err);
	sw_kql *k2 = compile("DeviceFileCertificateInfo | where Signer has 'beta'", err, sizeof err);
	sw_kql_scratch *s = sw_kql_scratch_new();
	mkrec(&r, "Alpha Beta");
	ok(sw_kql_match_scratch(k1, &r, NOW, s) && sw_kql_match_scratch(k2, &r, NOW, s),
	   "both rules on one record");
	r.signer = "Gamma";
	sw_kql_scratch_reset(s);
	ok(!sw_kql_match_scratch(k1, &r, NOW, s), "reset sees the refilled record");
	sw_record r2;
	mkrec(&r2, "ALPHA");
	ok(sw_kql_match_scratch(k1, &r2, NOW, s), "another record address resets by itself");
	/* A long signer grows the scratch. */
	char *longs = malloc(100001);
	memset(longs, 'x', 100000);
	memcpy(longs + 99994, " alpha", 6);
	longs[100000] = '\0';
	mkrec(&r, longs);
	ok(sw_kql_match_scratch(k1, &r, NOW, s), "long haystack through the scratch");
	ok(sw_kql_match(k1, &r, NOW), "long haystack through the stack scratch");
	free(longs);
	sw_kql_scratch_free(s);
	sw_kql_free(k1);
	sw_kql_free(k2);
}

int main(void)
{
	test_pulseway();
	test_operators();
	test_unicode();
	test_errors();
	test_misc();
	return done_testing();
}
