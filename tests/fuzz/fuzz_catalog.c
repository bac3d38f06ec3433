/* libFuzzer target over the catalog parser: PKCS#7/CMS SignedData with a
 * CTL, its members and their SpcIndirectDataContent, the signature and
 * countersignature checks. Input: the file's Authenticode SHA-256 (32
 * bytes) and SHA-1 (20 bytes) to look up, then the catalog's bytes
 * (seeds: tests/fixtures/make-catalog.sh writes them so, for hello64.exe). */
#include <stdint.h>
#include <string.h>

#include <openssl/objects.h>

#include "catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 52)
		return 0;
	sw_digest want[2] = { { .nid = NID_sha256, .len = 32 }, { .nid = NID_sha1, .len = 20 } };
	memcpy(want[0].d, data, 32);
	memcpy(want[1].d, data + 32, 20);
	sw_auth_opts o = { .verify = true };
	sw_sig g;
	if (sw_catalog_check(data + 52, size - 52, want, 2, &o, &g) == SW_CAT_LISTED)
		sw_sig_free(&g);
	return 0;
}
