#include "certcache.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

typedef struct cert_slot {
	uint8_t key[20];
	X509 *x;
} cert_slot;

typedef struct chain_slot {
	uint8_t key[32];
	bool used;
	sw_chain_verdict v;
} chain_slot;

struct sw_cache {
	cert_slot certs[SW_CACHE_CERTS];
	size_t ncerts;
	chain_slot chains[SW_CACHE_CHAINS];
	size_t nchains;
	void *cat_memo; /* catalog.c's, freed by cat_memo_free */
	void (*cat_memo_free)(void *);
	sw_cache_stats stats;
};

sw_cache *sw_cache_new(void) { return calloc(1, sizeof(sw_cache)); }

static void clear_certs(sw_cache *c)
{
	for (size_t i = 0; i < SW_CACHE_CERTS; i++) {
		X509_free(c->certs[i].x);
		c->certs[i].x = NULL;
	}
	c->ncerts = 0;
}

void sw_cache_free(sw_cache *c)
{
	if (!c)
		return;
	clear_certs(c);
	if (c->cat_memo && c->cat_memo_free)
		c->cat_memo_free(c->cat_memo);
	free(c);
}

void *sw_cache_cat_memo(const sw_cache *c) { return c ? c->cat_memo : NULL; }

void sw_cache_set_cat_memo(sw_cache *c, void *memo, void (*free_fn)(void *))
{
	if (c->cat_memo && c->cat_memo_free && c->cat_memo != memo)
		c->cat_memo_free(c->cat_memo);
	c->cat_memo = memo;
	c->cat_memo_free = free_fn;
}

sw_cache_stats *sw_cache_stats_ref(sw_cache *c) { return &c->stats; }

void sw_cache_stats_get(const sw_cache *c, sw_cache_stats *st)
{
	if (c)
		*st = c->stats;
	else
		memset(st, 0, sizeof(*st));
}

static size_t slot_of(const uint8_t *key, size_t cap)
{
	size_t h;
	memcpy(&h, key, sizeof(h)); /* the key is a digest: any bytes spread well */
	return h % cap;
}

X509 *sw_cache_cert(sw_cache *c, const uint8_t *der, size_t len, uint8_t sha1[20])
{
	uint8_t key[20];
	unsigned kl = 0;
	if (len > (size_t)0x7fffffff || !EVP_Digest(der, len, key, &kl, EVP_sha1(), NULL))
		return NULL;
	if (sha1)
		memcpy(sha1, key, 20);
	size_t i = c ? slot_of(key, SW_CACHE_CERTS) : 0;
	if (c) {
		/* Linear probing; the table is cleared when it fills. */
		for (size_t k = 0; k < SW_CACHE_CERTS; k++, i = (i + 1) % SW_CACHE_CERTS) {
			cert_slot *s = &c->certs[i];
			if (!s->x)
				break;
			if (memcmp(s->key, key, 20) == 0) {
				X509_up_ref(s->x);
				return s->x;
			}
		}
	}
	const uint8_t *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	if (!x || p != der + len) {
		X509_free(x);
		return NULL;
	}
	if (!c)
		return x;
	if (c->ncerts >= SW_CACHE_CERTS * 3 / 4) {
		clear_certs(c);
		i = slot_of(key, SW_CACHE_CERTS);
	}
	while (c->certs[i].x)
		i = (i + 1) % SW_CACHE_CERTS;
	memcpy(c->certs[i].key, key, 20);
	c->certs[i].x = x;
	c->ncerts++;
	X509_up_ref(x);
	return x;
}

bool sw_cache_chain_get(sw_cache *c, const uint8_t key[32], int64_t at_ms, sw_chain_verdict *v)
{
	if (!c)
		return false;
	size_t i = slot_of(key, SW_CACHE_CHAINS);
	for (size_t k = 0; k < SW_CACHE_CHAINS; k++, i = (i + 1) % SW_CACHE_CHAINS) {
		chain_slot *s = &c->chains[i];
		if (!s->used)
			return false;
		if (memcmp(s->key, key, 32) == 0 && at_ms >= s->v.from_ms && at_ms <= s->v.to_ms) {
			*v = s->v;
			return true;
		}
	}
	return false;
}

void sw_cache_chain_put(sw_cache *c, const uint8_t key[32], const sw_chain_verdict *v)
{
	if (!c)
		return;
	if (c->nchains >= SW_CACHE_CHAINS * 3 / 4) {
		memset(c->chains, 0, sizeof(c->chains));
		c->nchains = 0;
	}
	size_t i = slot_of(key, SW_CACHE_CHAINS);
	while (c->chains[i].used)
		i = (i + 1) % SW_CACHE_CHAINS;
	memcpy(c->chains[i].key, key, 32);
	c->chains[i].used = true;
	c->chains[i].v = *v;
	c->nchains++;
}
