#include "sw_error.h"

const char *sw_err_str(sw_err e)
{
	switch (e) {
	case SW_OK: return "ok";
	case SW_ERR_NOMEM: return "out of memory";
	case SW_ERR_IO: return "I/O error";
	case SW_ERR_TRUNCATED: return "truncated data";
	case SW_ERR_NOT_PE: return "not a PE file";
	case SW_ERR_BAD_PE: return "malformed PE headers";
	case SW_ERR_BAD_TABLE: return "malformed certificate table";
	case SW_ERR_BAD_PKCS7: return "malformed PKCS#7 signature";
	case SW_ERR_BAD_DER: return "malformed DER";
	case SW_ERR_LIMIT: return "limit exceeded";
	case SW_ERR_UNSUPPORTED: return "unsupported";
	case SW_ERR_TOO_LARGE: return "file too large";
	case SW_ERR_USAGE: return "bad usage";
	case SW_ERR_CONFIG: return "bad configuration";
	case SW_ERR_RULE: return "bad rule";
	case SW_ERR_STORE: return "store error";
	case SW_ERR_NET: return "network error";
	case SW_ERR_CRYPTO: return "crypto library error";
	case SW_ERR__COUNT: break;
	}
	return "unknown error";
}
