/* libFuzzer target over the whole parser: PE headers, the certificate
 * table, PKCS#7/CMS, countersignatures, nesting, the streaming digests,
 * and the record's JSON, with and without a trust store. */
#include <stdint.h>
#include <stdlib.h>

#include "inspect.h"

static sw_trust *trust_once(void)
{
	static int done;
	static sw_trust *t;
	if (!done) {
		done = 1;
		const char *ca = getenv("SW_FUZZ_CA");
		char why[256];
		if (ca)
			(void)sw_trust_load_file(ca, &t, why, sizeof(why));
	}
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sw_mem_src m;
	sw_src s = sw_src_memory(&m, data, size);
	for (int quick = 0; quick < 2; quick++) {
		sw_inspect_opts o = { .signer_only = quick, .trust = trust_once(), .now_ms = 1700000000000 };
		sw_record *r = NULL;
		size_t n = 0;
		char why[256];
		if (sw_inspect(&s, &o, &r, &n, why, sizeof(why)) == SW_OK)
			for (size_t i = 0; i < n; i++)
				free(sw_record_json(&r[i]));
		sw_records_free(r, n);
	}
	return 0;
}
