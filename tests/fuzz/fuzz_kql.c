/* libFuzzer target: compile arbitrary query text, then evaluate it on fixed
 * records and exercise every accessor. Nothing may crash, leak or read out
 * of bounds, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kql.h"

static char *crl[] = { "http://crl.example.com/a.crl", "\xFF\xFEnot utf-8" };

static void fill(sw_record *r, const char *signer)
{
	sw_record_init(r);
	r->timestamp = 1717243200000LL - 86400000LL;
	memcpy(r->device_id, "0123456789abcdef0123456789abcdef01234567", 41);
	r->device_name = "ws1.example.com";
	r->file_name = "PCMonitorSrv.exe";
	r->is_signed = true;
	r->signer = (char *)signer;
	r->issuer = "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1";
	r->crl_urls = crl;
	r->n_crl_urls = 2;
	r->is_trusted = SW_YES;
	r->report_id = 42;
	r->file_size = 123456;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	sw_kql *q = NULL;
	if (sw_kql_compile((const char *)data, size, 1, 1, &q, err, sizeof err) != SW_OK) {
		/* The message is always terminated and positioned. */
		if (strlen(err) >= sizeof err)
			abort();
		return 0;
	}
	static const char *const signers[] = {
		"MMSoft Design Ltd.", "KR\xC3\x84MER IT Solutions GmbH", "MMSoft\xFF Design \xC3", "", NULL,
	};
	sw_kql_scratch *s = sw_kql_scratch_new();
	for (size_t i = 0; i < sizeof signers / sizeof signers[0]; i++) {
		sw_record r;
		fill(&r, signers[i]);
		/* r is refilled at the same address: the scratch must be told. */
		sw_kql_scratch_reset(s);
		bool a = sw_kql_match(q, &r, 1717243200000LL);
		bool b = sw_kql_match_scratch(q, &r, 1717243200000LL, s);
		if (a != b)
			abort(); /* the two evaluation paths must agree */
		r.timestamp = SW_TIME_NULL;
		r.is_trusted = SW_NULL;
		r.report_id = -1;
		sw_kql_scratch_reset(s);
		(void)sw_kql_match_scratch(q, &r, INT64_MAX, s);
		(void)sw_kql_match(q, &r, INT64_MIN);
	}
	sw_kql_scratch_free(s);
	int64_t from, to;
	(void)sw_kql_window(q, 1717243200000LL, &from, &to);
	(void)sw_kql_window(q, INT64_MIN, &from, &to);
	for (size_t i = 0; i < sw_kql_agg_count(q); i++) {
		sw_kql_agg a;
		if (!sw_kql_agg_get(q, i, &a) || !a.name || strlen(a.name) == 0)
			abort();
	}
	for (size_t i = 0; i < sw_kql_by_count(q); i++)
		if (sw_kql_by_col(q, i) < 0)
			abort();
	char *d = sw_kql_describe(q);
	free(d);
	sw_kql_free(q);
	return 0;
}
