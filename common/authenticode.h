/* signwatch: Authenticode SignedData, walked with our bounded DER reader
 * and checked the way a careful verifier does.
 *
 * OpenSSL parses only the certificates (each once per thread, through
 * sw_cache) and does the cryptography (digests, EVP_DigestVerify, chain
 * building). The PKCS#7/CMS structure is walked here: every tag and every
 * ASN.1 type is checked by us, so nothing trusts an attribute's type
 * (CVE-2026-22796), and PKCS7_verify is never called (CVE-2026-45447).
 * Walking it ourselves is also what makes a small file cheap: OpenSSL
 * 3.0's d2i_PKCS7 decodes every certificate's public key every time. */
#ifndef SW_AUTHENTICODE_H
#define SW_AUTHENTICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "certcache.h"
#include "sw_error.h"

#define SW_SIG_MAX_DEPTH 4  /* nesting levels followed */
#define SW_SIG_MAX_COUNT 32 /* signatures per file */
#define SW_SIG_MAX_CERTS 64 /* certificates per SignedData considered */
#define SW_DIGEST_MAX 64

typedef enum sw_cs_kind { SW_CS_NONE = 0, SW_CS_PKCS9, SW_CS_RFC3161 } sw_cs_kind;

typedef struct sw_sig {
	size_t entry;   /* WIN_CERTIFICATE entry it came from */
	int depth;      /* 0 for an entry's own signature */
	sw_err err;     /* SW_OK, or why it could not be read */
	char why[160];  /* detail for err, or for !sig_ok */
	size_t der_len; /* length of the DER of this ContentInfo */
	bool parsed;    /* the SignedData structure was readable */

	X509 *signer;          /* owned reference */
	X509 *issuer;          /* owned reference; NULL when not carried */
	STACK_OF(X509) *certs; /* owned: every certificate carried (full mode) */
	int md_nid;            /* Authenticode digest algorithm (NID) */
	uint8_t digest[SW_DIGEST_MAX];
	size_t digest_len;
	bool sig_ok; /* signature verifies and covers the content */

	sw_cs_kind cs_kind;
	int64_t cs_time;          /* ms, SW_TIME_NULL when none */
	bool cs_ok;               /* countersignature verifies over our signature */
	X509 *cs_signer;          /* owned: the TSA / countersigner certificate */
	STACK_OF(X509) *cs_certs; /* owned: certificates to build its chain */
} sw_sig;

typedef struct sw_sigs {
	sw_sig v[SW_SIG_MAX_COUNT];
	size_t n;
	bool limit_hit; /* signatures beyond the caps were ignored */
} sw_sigs;

typedef struct sw_auth_opts {
	bool verify;     /* false: identity only (no signature checks, no chains) */
	sw_cache *cache; /* may be NULL */
} sw_auth_opts;

/* Parse one entry's DER (len bytes; trailing slack allowed and measured in
 * der_len) into sigs: the entry's signature, then its nested signatures
 * depth-first. Each appended sw_sig carries its own verdict in err;
 * returns SW_ERR_LIMIT only when no room was left at all. */
sw_err sw_authenticode_parse(const uint8_t *der, size_t len, size_t entry, const sw_auth_opts *o,
                             sw_sigs *sigs);

void sw_sigs_free(sw_sigs *sigs);
/* Free what one sw_sig owns (it may then be reused). */
void sw_sig_free(sw_sig *s);

/* The same walk and checks for a SignedData of another content type (a
 * catalog's CTL): ctype is the DER contents of the eContentType OID that
 * is required, ct_msg the verdict when it is not that (or has no
 * content). One SignerInfo is verified over the encapsulated content as
 * for Authenticode (PKCS#7 content: its contents octets; CMS OCTET
 * STRING: its value) and its countersignature read; nested signatures
 * are not followed. On success *econtent is the encapsulated content's
 * TLV (borrowed from der) for the caller to parse, and s holds the
 * signer; s->sig_ok says whether the signature verified (o->verify). On
 * failure s->err/why say why; s->signer may still be set. */
sw_err sw_signed_content_parse(const uint8_t *der, size_t len, const uint8_t *ctype, size_t ctype_len,
                               const char *ct_msg, const sw_auth_opts *o, sw_sig *s, const uint8_t **econtent,
                               size_t *econtent_len);

/* SpcIndirectDataContent (the TLV) of a PE image: its digest algorithm
 * and digest (digest has room for SW_DIGEST_MAX). SW_ERR_UNSUPPORTED when
 * it describes something else or an unknown algorithm, SW_ERR_BAD_DER
 * when malformed. */
sw_err sw_spc_indirect_parse(const uint8_t *tlv, size_t len, int *md_nid, uint8_t *digest,
                             size_t *digest_len);

/* Lower-case short name of a digest NID ("sha256"); NULL when unsupported. */
const char *sw_md_name(int nid);

#endif
