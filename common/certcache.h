/* signwatch: a per-thread memo of parsed certificates and chain verdicts.
 *
 * OpenSSL 3.0 spends most of a small file's time decoding certificates
 * (the public key decoder), yet signed files reuse a handful of chains. A
 * cache keyed by the SHA-1 of the certificate's DER turns that into one
 * hash per certificate. One cache per thread: it is not locked. */
#ifndef SW_CERTCACHE_H
#define SW_CERTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define SW_CACHE_CERTS 1024  /* parsed certificates kept */
#define SW_CACHE_CHAINS 1024 /* chain verdicts kept */

typedef struct sw_cache sw_cache;

sw_cache *sw_cache_new(void);
void sw_cache_free(sw_cache *c);

/* The certificate whose DER is der[0..len), parsed once: a new reference
 * (X509_free it), or NULL when it does not parse. sha1 (may be NULL)
 * receives the DER's SHA-1, which is the thumbprint. c may be NULL. */
X509 *sw_cache_cert(sw_cache *c, const uint8_t *der, size_t len, uint8_t sha1[20]);

/* Chain verdicts: key is a digest of what determines the verdict. A hit
 * holds when at_ms lies in [from_ms, to_ms]. */
typedef struct sw_chain_verdict {
	bool ok, root_ms;
	int64_t from_ms, to_ms;
	char why[120];
} sw_chain_verdict;
bool sw_cache_chain_get(sw_cache *c, const uint8_t key[32], int64_t at_ms, sw_chain_verdict *v);
void sw_cache_chain_put(sw_cache *c, const uint8_t key[32], const sw_chain_verdict *v);

/* Counters of the catalog memo (catalog.c), which the cache owns. */
typedef struct sw_cache_stats {
	uint64_t cat_parses;  /* catalogs read and parsed for the memo (misses) */
	uint64_t cat_hits;    /* lookups answered from the memo */
	uint64_t cat_evicted; /* entries dropped: changed on disk, or over a bound */
	size_t cat_entries;   /* entries held now */
	size_t cat_bytes;     /* their accounted size */
} sw_cache_stats;
void sw_cache_stats_get(const sw_cache *c, sw_cache_stats *st);

/* For catalog.c: the memo hung on this cache (NULL until set), freed with
 * it by free_fn; and the counters to update. */
void *sw_cache_cat_memo(const sw_cache *c);
void sw_cache_set_cat_memo(sw_cache *c, void *memo, void (*free_fn)(void *));
sw_cache_stats *sw_cache_stats_ref(sw_cache *c);

#endif
