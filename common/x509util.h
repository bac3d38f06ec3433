/* signwatch: what a record shows of a certificate, taken safely: every
 * string is converted to UTF-8 and sanitized, every count capped. */
#ifndef SW_X509UTIL_H
#define SW_X509UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "sw_error.h"

#define SW_MAX_CRL_URLS 16

/* Simple display name as Windows shows it: CN, else O, else the DN. */
char *sw_x509_display_name(const X509_NAME *name);
/* RFC 2253 DN with UTF-8 kept (not \-escaped), sanitized. */
char *sw_x509_dn(const X509_NAME *name);
/* Serial as uppercase hex of the DER integer's bytes (no sign byte). */
char *sw_x509_serial_hex(const X509 *x);
/* Lowercase SHA-1 of the DER; out must hold 41 bytes. */
void sw_x509_thumbprint(const X509 *x, char out[41]);
/* CRL distribution point URIs; returns count, *urls malloc'd. */
size_t sw_x509_crl_urls(const X509 *x, char ***urls);
/* The certificate in certs that issued x (x itself when self-issued). */
X509 *sw_x509_find_issuer(STACK_OF(X509) *certs, X509 *x);
/* ASN1_TIME as ms since the epoch; 0 on success. */
int sw_asn1_time_ms(const ASN1_TIME *t, int64_t *ms);

#endif
