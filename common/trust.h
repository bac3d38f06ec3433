/* signwatch: chain building against a CA set, for IsTrusted. */
#ifndef SW_TRUST_H
#define SW_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "certcache.h"
#include "sw_error.h"

typedef struct sw_trust sw_trust;

typedef enum sw_usage { SW_USAGE_CODE_SIGNING, SW_USAGE_TIMESTAMPING } sw_usage;

/* What a root may anchor: a bit per sw_usage. A chain verified for one
 * usage ends only at a root added for it (Windows refuses a root whose
 * enhanced-key-usage property allows only the other). */
#define SW_USAGE_BIT(u) (1u << (unsigned)(u))
#define SW_ANCHOR_CODE_SIGNING SW_USAGE_BIT(SW_USAGE_CODE_SIGNING)
#define SW_ANCHOR_TIMESTAMPING SW_USAGE_BIT(SW_USAGE_TIMESTAMPING)
#define SW_ANCHOR_ALL (SW_ANCHOR_CODE_SIGNING | SW_ANCHOR_TIMESTAMPING)

/* Load PEM certificates from a file, each a root for every usage;
 * SW_ERR_CONFIG with why on failure. */
sw_err sw_trust_load_file(const char *path, sw_trust **out, char *why, size_t n);

/* An empty set to fill from DER certificates (an OS root store); NULL
 * when out of memory. */
sw_trust *sw_trust_new(void);
/* Add one trusted root (DER, exactly len bytes) for the usages in the
 * mask (SW_ANCHOR_*; 0 adds nothing); SW_ERR_BAD_DER when it does not
 * parse. Adding one already present is not an error: the usages add up. */
sw_err sw_trust_add_der(sw_trust *t, const uint8_t *der, size_t len, unsigned usages);
/* Distrust a certificate (DER): a chain containing it is never trusted,
 * wherever it sits (Windows' Disallowed store). Kept sorted as added (one
 * given twice counts once); call only while building the set, before it
 * is shared with the threads that verify. */
sw_err sw_trust_add_distrusted_der(sw_trust *t, const uint8_t *der, size_t len);
/* Roots added (or objects loaded from the file). */
size_t sw_trust_count(const sw_trust *t);
void sw_trust_free(sw_trust *t);

/* Build and verify leaf's chain (extra: untrusted certificates from the
 * signature) at time at_ms, for the usage's EKU, to a root added for that
 * usage. Returns true when trusted;
 * *root_ms tells whether the chain's root is a Microsoft root. Verdicts
 * are memoized in cache (may be NULL) for the span of time they hold. */
bool sw_trust_verify(const sw_trust *t, sw_cache *cache, X509 *leaf, STACK_OF(X509) *extra, int64_t at_ms,
                     sw_usage usage, bool *root_ms, char *why, size_t n);

/* True when x is one of Microsoft's roots (by SHA-1 thumbprint). */
bool sw_is_microsoft_root(const X509 *x);

#endif
