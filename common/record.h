/* signwatch: the record, one per signature of a file observation, shaped
 * like Defender's DeviceFileCertificateInfo (column names are Defender's so
 * its queries run unchanged on forwarded data), plus signwatch's own. */
#ifndef SW_RECORD_H
#define SW_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sw_error.h"

#define SW_TIME_NULL INT64_MIN /* a time column with no value */

typedef enum sw_tri { SW_NULL = -1, SW_NO = 0, SW_YES = 1 } sw_tri;

/* Layout anomalies (bit flags); each is reported by name in Anomalies. */
enum {
	SW_ANOM_DATA_AFTER_TABLE = 1u << 0,   /* bytes after the certificate table */
	SW_ANOM_NONZERO_PADDING = 1u << 1,    /* padding inside the table not zero */
	SW_ANOM_UNACCOUNTED_BYTES = 1u << 2,  /* table bytes no entry covers (CVE-2013-3900) */
	SW_ANOM_OVERLAPS_SECTIONS = 1u << 3,  /* table overlaps section data */
	SW_ANOM_TABLE_NOT_AT_END = 1u << 4,   /* table not after all section data */
	SW_ANOM_BAD_ENTRY_REVISION = 1u << 5, /* an entry with wRevision != 0x0200 */
	SW_ANOM_BAD_ENTRY_TYPE = 1u << 6,     /* an entry with wCertificateType != 2 */
	SW_ANOM_LENGTH_MISMATCH = 1u << 7,    /* sum of aligned dwLength != directory size */
	SW_ANOM_TABLE_OUTSIDE_FILE = 1u << 8, /* directory points outside the file */
	SW_ANOM_BAD_SIGNATURE_BLOB = 1u << 9, /* an entry's PKCS#7 could not be parsed */
	SW_ANOM_MULTIPLE_ENTRIES = 1u << 10,  /* more than one WIN_CERTIFICATE entry */
	SW_ANOM_SIGNATURE_LIMIT = 1u << 11,   /* entries or nested signatures beyond the caps ignored */
	SW_ANOM_UNALIGNED_TABLE = 1u << 12,   /* table offset not 8-aligned */
	SW_ANOM_TABLE_TOO_LARGE = 1u << 13,   /* table over SW_PE_TABLE_MAX: never read */
	SW_ANOM__COUNT = 14
};
/* Name of anomaly bit index i (0..SW_ANOM__COUNT-1), e.g. "DataAfterTable". */
const char *sw_anomaly_name(unsigned i);

typedef struct sw_record {
	int64_t timestamp;  /* observation time, ms since the Unix epoch, UTC */
	char device_id[41]; /* 40 lowercase hex */
	char *device_name;  /* lowercase FQDN */
	char *folder_path;  /* directory of the file */
	char *file_name;
	char sha1[41]; /* "" when not computed (--signer-only) */
	char sha256[65];
	uint64_t file_size;

	bool is_signed;
	char *signature_type; /* "Embedded", "Catalog", or NULL when unsigned */
	char *signer;         /* simple display name: CN, else O */
	char *signer_dn;      /* RFC 2253 */
	char signer_hash[41]; /* SHA-1 thumbprint of the signer certificate */
	char *issuer;
	char *issuer_dn;
	char issuer_hash[41]; /* "" when the issuer certificate is not carried */
	char *serial;         /* uppercase hex, no separators */
	char **crl_urls;      /* CrlDistributionPointUrls */
	size_t n_crl_urls;
	int64_t cert_created;    /* CertificateCreationTime (notBefore), ms */
	int64_t cert_expires;    /* CertificateExpirationTime (notAfter), ms */
	int64_t countersig_time; /* CertificateCountersignatureTime, ms */
	char *countersig_type;   /* "rfc3161", "pkcs9" or NULL */
	sw_tri is_trusted;       /* NULL with --signer-only */
	sw_tri is_root_signer_microsoft;
	int64_t report_id; /* -1 until the store assigns one */

	int signature_index; /* 0.. over the file's signatures */
	bool is_nested;
	char *digest_algorithm;                /* "sha256", ... */
	sw_tri digest_matches;                 /* NULL with --signer-only */
	uint32_t anomalies;                    /* SW_ANOM_* bits; set with sw_record_set_anomalies */
	const char *anomaly_v[SW_ANOM__COUNT]; /* their names, for the Anomalies column */
	size_t n_anomalies;
	char *error;         /* why a signature could not be read, or NULL */
	char *trust_error;   /* why IsTrusted is false, or NULL */
	char **yara_matches; /* YaraMatches: rule names */
	size_t n_yara_matches;
} sw_record;

/* Columns, for rules and output. Names are case-sensitive as in KQL. */
typedef enum sw_col {
	SW_COL_TIMESTAMP,
	SW_COL_DEVICE_ID,
	SW_COL_DEVICE_NAME,
	SW_COL_SHA1,
	SW_COL_IS_SIGNED,
	SW_COL_SIGNATURE_TYPE,
	SW_COL_SIGNER,
	SW_COL_SIGNER_HASH,
	SW_COL_ISSUER,
	SW_COL_ISSUER_HASH,
	SW_COL_SERIAL,
	SW_COL_CRL_URLS,
	SW_COL_CERT_CREATED,
	SW_COL_CERT_EXPIRES,
	SW_COL_COUNTERSIG_TIME,
	SW_COL_IS_TRUSTED,
	SW_COL_IS_ROOT_SIGNER_MICROSOFT,
	SW_COL_REPORT_ID,
	SW_COL_FOLDER_PATH,
	SW_COL_FILE_NAME,
	SW_COL_SHA256,
	SW_COL_FILE_SIZE,
	SW_COL_SIGNATURE_INDEX,
	SW_COL_IS_NESTED,
	SW_COL_DIGEST_ALGORITHM,
	SW_COL_DIGEST_MATCHES,
	SW_COL_ANOMALIES,
	SW_COL_SIGNER_DN,
	SW_COL_ISSUER_DN,
	SW_COL_COUNTERSIG_TYPE,
	SW_COL_YARA_MATCHES,
	SW_COL__COUNT
} sw_col;

typedef enum sw_vtype { SW_V_NULL, SW_V_STRING, SW_V_BOOL, SW_V_LONG, SW_V_TIME, SW_V_ARRAY } sw_vtype;

typedef struct sw_value {
	sw_vtype type;
	const char *s;          /* SW_V_STRING: UTF-8, NUL-terminated, never NULL */
	int64_t i;              /* SW_V_BOOL (0/1), SW_V_LONG, SW_V_TIME (ms) */
	const char *const *arr; /* SW_V_ARRAY of strings */
	size_t n;
} sw_value;

/* Column name ("Signer") and declared type; lookup by exact name, -1 if none.
 * "TimeGenerated" is an alias of Timestamp. */
const char *sw_col_name(sw_col c);
sw_vtype sw_col_type(sw_col c);
int sw_col_lookup(const char *name);

/* The value of column c in r (borrowed from r). */
void sw_record_get(const sw_record *r, sw_col c, sw_value *out);

void sw_record_init(sw_record *r);
void sw_record_set_anomalies(sw_record *r, uint32_t mask);
void sw_record_free(sw_record *r); /* frees the strings; r may be reused after init */
sw_err sw_record_copy(sw_record *dst, const sw_record *src);

/* Duplicate s (len bytes, may hold anything) as valid UTF-8: invalid
 * sequences and NULs become U+FFFD. Never NULL unless out of memory. */
char *sw_utf8_sanitize(const char *s, size_t len);

/* Format ms since epoch as "2024-01-02T03:04:05Z" (or with .mmm when ms != 0)
 * into buf (>= 32 bytes). Returns buf. */
char *sw_time_iso(int64_t ms, char *buf, size_t n);
/* ms since the epoch of a UTC civil time (proleptic Gregorian). */
int64_t sw_time_make(int y, int mon, int d, int h, int mi, int s);
/* Parse an ISO 8601 UTC time (Z, optional fraction); 0 on success. */
int sw_time_parse(const char *s, int64_t *ms);

/* The record as one JSON object on one line (no newline), malloc'd. */
char *sw_record_json(const sw_record *r);
/* Read a record back from sw_record_json's shape (missing keys stay
 * null); SW_ERR_USAGE when it is not such an object. */
sw_err sw_record_from_json(const char *js, size_t len, sw_record *r);

#endif
