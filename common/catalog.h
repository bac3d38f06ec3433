/* signwatch: Windows security catalogs (.cat): a PKCS#7/CMS SignedData
 * whose content is a Certificate Trust List (szOID_CTL) listing the
 * Authenticode digests of the files it signs. Walked with our bounded
 * DER reader and verified with the same code as embedded signatures
 * (authenticode.c); OpenSSL does only certificates and cryptography.
 *
 * CertificateTrustList ::= SEQUENCE {
 *   version INTEGER OPTIONAL, subjectUsage SEQUENCE OF OID,
 *   listIdentifier OCTET STRING OPTIONAL, sequenceNumber INTEGER OPTIONAL,
 *   thisUpdate Time, nextUpdate Time OPTIONAL,
 *   subjectAlgorithm AlgorithmIdentifier,
 *   trustedSubjects SEQUENCE OF TrustedSubject OPTIONAL,
 *   extensions [0] EXPLICIT Extensions OPTIONAL }
 * TrustedSubject ::= SEQUENCE { subjectIdentifier OCTET STRING (the member
 *   tag), attributes SET OF Attribute OPTIONAL }
 * A member's SPC_INDIRECT_DATA attribute carries the file's digest. */
#ifndef SW_CATALOG_H
#define SW_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "authenticode.h"
#include "source.h"

#define SW_CAT_MAX_BYTES (64u << 20)  /* a catalog file larger than this is refused */
#define SW_CAT_MAX_MEMBERS (1u << 20) /* trustedSubjects walked */
#define SW_CAT_MAX_ATTRS 64           /* attributes per member */

/* One Authenticode digest of the file being looked up. */
typedef struct sw_digest {
	int nid; /* NID_sha1, NID_sha256, ... */
	uint8_t d[SW_DIGEST_MAX];
	size_t len;
} sw_digest;

typedef enum sw_cat_verdict {
	SW_CAT_LISTED,     /* the file is a member: sig describes the catalog's signer */
	SW_CAT_NOT_LISTED, /* a well-formed catalog that does not list the file */
	SW_CAT_MALFORMED,  /* not a catalog, malformed, or over a cap: sig->why says how */
} sw_cat_verdict;

/* Check the catalog in der (len bytes) for a member whose SPC_INDIRECT_DATA
 * digest equals one of want[0..nwant) (same algorithm, same bytes; when
 * members match several, the earliest in want is kept). The
 * whole CTL is walked, so a malformed one is MALFORMED wherever the fault
 * is. On LISTED, sig holds the catalog's signer (owned references: free
 * with sw_sig_free), md_nid/digest of the matching member, and sig_ok when
 * (o->verify) its signature verifies over the CTL. On the other verdicts
 * sig holds nothing to free but err/why. */
sw_cat_verdict sw_catalog_check(const uint8_t *der, size_t len, const sw_digest *want, size_t nwant,
                                const sw_auth_opts *o, sw_sig *sig);

/* The same over a source (read whole, at most SW_CAT_MAX_BYTES); an I/O
 * failure or a file over the cap is MALFORMED with why saying so. */
sw_cat_verdict sw_catalog_check_src(const sw_src *src, const sw_digest *want, size_t nwant,
                                    const sw_auth_opts *o, sw_sig *sig);

/* The identity of a catalog file as the platform reports it for the open
 * handle it is read through (sw_plat_file_identity): the caller fills it,
 * common/ has no OS headers. */
typedef struct sw_cat_id {
	const char *path;
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
} sw_cat_id;

/* Memo bounds, per cache (per thread). A catalog whose parsed form alone
 * is over the byte bound is answered but not kept. */
#define SW_CAT_MEMO_ENTRIES 32
#define SW_CAT_MEMO_BYTES (32u << 20)

/* sw_catalog_check_src, memoized in o->cache by id: the first lookup reads
 * and parses the catalog whole (signature verified, every member's digest
 * kept sorted per algorithm); later ones with the same path and identity
 * (dev, ino, size, mtime, ctime) answer from the memo, with the same
 * verdict and sig (new references) as the uncached call. A different
 * identity re-reads it. Without a cache or an id, or when id->size is not
 * src->size, or with !o->verify, it is sw_catalog_check_src. Read errors
 * are not memoized. Chain verdicts are not part of it: the caller asks
 * sw_trust_verify, memoized in the same cache with their span of time. */
sw_cat_verdict sw_catalog_check_memo(const sw_src *src, const sw_cat_id *id, const sw_digest *want,
                                     size_t nwant, const sw_auth_opts *o, sw_sig *sig);

/* Tighten the memo's bounds for this cache (tests); 0 keeps a bound. */
void sw_catalog_memo_limits(sw_cache *c, size_t entries, size_t bytes);

#endif
