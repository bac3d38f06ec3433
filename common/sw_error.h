/* signwatch: the one error enum shared by every layer. */
#ifndef SW_ERROR_H
#define SW_ERROR_H

typedef enum sw_err {
	SW_OK = 0,
	SW_ERR_NOMEM,       /* allocation failed */
	SW_ERR_IO,          /* the OS refused a read, open or write */
	SW_ERR_TRUNCATED,   /* a length or offset points past the data */
	SW_ERR_NOT_PE,      /* no MZ/PE signature: not an executable */
	SW_ERR_BAD_PE,      /* PE headers present but malformed */
	SW_ERR_BAD_TABLE,   /* attribute certificate table malformed */
	SW_ERR_BAD_PKCS7,   /* signature blob is not valid SignedData */
	SW_ERR_BAD_DER,     /* malformed DER inside a signature */
	SW_ERR_LIMIT,       /* a cap on size, nesting or count was hit */
	SW_ERR_UNSUPPORTED, /* well-formed but outside what we handle */
	SW_ERR_TOO_LARGE,   /* file over the configured size cap */
	SW_ERR_USAGE,       /* bad command line */
	SW_ERR_CONFIG,      /* bad configuration file */
	SW_ERR_RULE,        /* bad rule file or query */
	SW_ERR_STORE,       /* the local database failed */
	SW_ERR_NET,         /* a collector could not be reached */
	SW_ERR_CRYPTO,      /* OpenSSL failed for a reason not in the input */
	SW_ERR__COUNT
} sw_err;

/* Short, stable, human-readable name ("truncated", "not a PE file", ...). */
const char *sw_err_str(sw_err e);

#endif
