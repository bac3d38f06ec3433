/* signwatch: Authenticode SignedData (PKCS#7) through OpenSSL, checked the
 * way a careful verifier does: every ASN.1 type is checked here, not
 * trusted to OpenSSL's convenience functions (CVE-2026-22796), and
 * PKCS7_verify is never called (CVE-2026-45447). */
#ifndef SW_AUTHENTICODE_H
#define SW_AUTHENTICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "sw_error.h"

#define SW_SIG_MAX_DEPTH 4  /* nesting levels followed */
#define SW_SIG_MAX_COUNT 32 /* signatures per file */
#define SW_DIGEST_MAX 64

typedef enum sw_cs_kind { SW_CS_NONE = 0, SW_CS_PKCS9, SW_CS_RFC3161 } sw_cs_kind;

typedef struct sw_sig {
	size_t entry;   /* WIN_CERTIFICATE entry it came from */
	int depth;      /* 0 for an entry's own signature */
	sw_err err;     /* SW_OK, or why it could not be read */
	char why[160];  /* detail for err, or for !sig_ok */
	size_t der_len; /* length of the DER of this ContentInfo */

	PKCS7 *p7;    /* owned */
	X509 *signer; /* borrowed from p7's certificates */
	X509 *issuer; /* borrowed; NULL when not carried */
	int md_nid;   /* Authenticode digest algorithm (NID) */
	uint8_t digest[SW_DIGEST_MAX];
	size_t digest_len;
	bool sig_ok; /* signature verifies and covers the content */

	sw_cs_kind cs_kind;
	int64_t cs_time;                /* ms, SW_TIME_NULL when none */
	bool cs_ok;                     /* countersignature verifies over our signature */
	CMS_ContentInfo *cs_cms;        /* owned: the RFC 3161 token (CMS parses its
	                           * CertificateChoices, PKCS7 does not) */
	STACK_OF(X509) *cs_certs_owned; /* owned: the token's certificates */
	X509 *cs_signer;                /* borrowed: the TSA / countersigner certificate */
	STACK_OF(X509) *cs_certs;       /* borrowed: certificates to build its chain */
} sw_sig;

typedef struct sw_sigs {
	sw_sig v[SW_SIG_MAX_COUNT];
	size_t n;
	bool limit_hit; /* signatures beyond the caps were ignored */
} sw_sigs;

/* Parse one entry's DER (len bytes; trailing slack allowed and measured in
 * der_len) into sigs: the entry's signature, then its nested signatures
 * depth-first. Each appended sw_sig carries its own verdict in err;
 * returns SW_ERR_LIMIT only when no room was left at all. */
sw_err sw_authenticode_parse(const uint8_t *der, size_t len, size_t entry, sw_sigs *sigs);

void sw_sigs_free(sw_sigs *sigs);

/* Lower-case short name of a digest NID ("sha256"); NULL when unsupported. */
const char *sw_md_name(int nid);

#endif
