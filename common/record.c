#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char *const ANOM_NAMES[SW_ANOM__COUNT] = {
	"DataAfterTable",   "NonZeroPadding",   "UnaccountedTableBytes", "TableOverlapsSections",
	"TableNotAtEnd",    "BadEntryRevision", "BadEntryType",          "TableLengthMismatch",
	"TableOutsideFile", "BadSignatureBlob", "MultipleEntries",       "SignatureLimit",
	"UnalignedTable",   "TableTooLarge",
};

const char *sw_anomaly_name(unsigned i) { return i < SW_ANOM__COUNT ? ANOM_NAMES[i] : "Unknown"; }

static const struct {
	const char *name;
	sw_vtype type;
} COLS[SW_COL__COUNT] = {
	[SW_COL_TIMESTAMP] = { "Timestamp", SW_V_TIME },
	[SW_COL_DEVICE_ID] = { "DeviceId", SW_V_STRING },
	[SW_COL_DEVICE_NAME] = { "DeviceName", SW_V_STRING },
	[SW_COL_SHA1] = { "SHA1", SW_V_STRING },
	[SW_COL_IS_SIGNED] = { "IsSigned", SW_V_BOOL },
	[SW_COL_SIGNATURE_TYPE] = { "SignatureType", SW_V_STRING },
	[SW_COL_SIGNER] = { "Signer", SW_V_STRING },
	[SW_COL_SIGNER_HASH] = { "SignerHash", SW_V_STRING },
	[SW_COL_ISSUER] = { "Issuer", SW_V_STRING },
	[SW_COL_ISSUER_HASH] = { "IssuerHash", SW_V_STRING },
	[SW_COL_SERIAL] = { "CertificateSerialNumber", SW_V_STRING },
	[SW_COL_CRL_URLS] = { "CrlDistributionPointUrls", SW_V_ARRAY },
	[SW_COL_CERT_CREATED] = { "CertificateCreationTime", SW_V_TIME },
	[SW_COL_CERT_EXPIRES] = { "CertificateExpirationTime", SW_V_TIME },
	[SW_COL_COUNTERSIG_TIME] = { "CertificateCountersignatureTime", SW_V_TIME },
	[SW_COL_IS_TRUSTED] = { "IsTrusted", SW_V_BOOL },
	[SW_COL_IS_ROOT_SIGNER_MICROSOFT] = { "IsRootSignerMicrosoft", SW_V_BOOL },
	[SW_COL_REPORT_ID] = { "ReportId", SW_V_LONG },
	[SW_COL_FOLDER_PATH] = { "FolderPath", SW_V_STRING },
	[SW_COL_FILE_NAME] = { "FileName", SW_V_STRING },
	[SW_COL_SHA256] = { "SHA256", SW_V_STRING },
	[SW_COL_FILE_SIZE] = { "FileSize", SW_V_LONG },
	[SW_COL_SIGNATURE_INDEX] = { "SignatureIndex", SW_V_LONG },
	[SW_COL_IS_NESTED] = { "IsNested", SW_V_BOOL },
	[SW_COL_DIGEST_ALGORITHM] = { "DigestAlgorithm", SW_V_STRING },
	[SW_COL_DIGEST_MATCHES] = { "DigestMatches", SW_V_BOOL },
	[SW_COL_ANOMALIES] = { "Anomalies", SW_V_ARRAY },
	[SW_COL_SIGNER_DN] = { "SignerDN", SW_V_STRING },
	[SW_COL_ISSUER_DN] = { "IssuerDN", SW_V_STRING },
	[SW_COL_COUNTERSIG_TYPE] = { "CountersignatureType", SW_V_STRING },
	[SW_COL_YARA_MATCHES] = { "YaraMatches", SW_V_ARRAY },
};

const char *sw_col_name(sw_col c) { return (unsigned)c < SW_COL__COUNT ? COLS[c].name : NULL; }
sw_vtype sw_col_type(sw_col c) { return (unsigned)c < SW_COL__COUNT ? COLS[c].type : SW_V_NULL; }

int sw_col_lookup(const char *name)
{
	if (strcmp(name, "TimeGenerated") == 0)
		return SW_COL_TIMESTAMP;
	for (int i = 0; i < SW_COL__COUNT; i++)
		if (strcmp(COLS[i].name, name) == 0)
			return i;
	return -1;
}

static void vstr(sw_value *v, const char *s)
{
	if (s) {
		v->type = SW_V_STRING;
		v->s = s;
	}
}
static void vtri(sw_value *v, sw_tri t)
{
	if (t != SW_NULL) {
		v->type = SW_V_BOOL;
		v->i = t == SW_YES;
	}
}
static void vtime(sw_value *v, int64_t t)
{
	if (t != SW_TIME_NULL) {
		v->type = SW_V_TIME;
		v->i = t;
	}
}
static void vlong(sw_value *v, int64_t i)
{
	v->type = SW_V_LONG;
	v->i = i;
}
static void varr(sw_value *v, const char *const *a, size_t n)
{
	v->type = SW_V_ARRAY;
	v->arr = a;
	v->n = n;
}

void sw_record_get(const sw_record *r, sw_col c, sw_value *v)
{
	memset(v, 0, sizeof(*v));
	v->type = SW_V_NULL;
	switch (c) {
	case SW_COL_TIMESTAMP: vtime(v, r->timestamp); break;
	case SW_COL_DEVICE_ID: vstr(v, r->device_id); break;
	case SW_COL_DEVICE_NAME: vstr(v, r->device_name); break;
	case SW_COL_SHA1: vstr(v, r->sha1[0] ? r->sha1 : NULL); break;
	case SW_COL_IS_SIGNED: vtri(v, r->is_signed ? SW_YES : SW_NO); break;
	case SW_COL_SIGNATURE_TYPE: vstr(v, r->signature_type); break;
	case SW_COL_SIGNER: vstr(v, r->signer); break;
	case SW_COL_SIGNER_HASH: vstr(v, r->signer_hash[0] ? r->signer_hash : NULL); break;
	case SW_COL_ISSUER: vstr(v, r->issuer); break;
	case SW_COL_ISSUER_HASH: vstr(v, r->issuer_hash[0] ? r->issuer_hash : NULL); break;
	case SW_COL_SERIAL: vstr(v, r->serial); break;
	case SW_COL_CRL_URLS: varr(v, (const char *const *)r->crl_urls, r->n_crl_urls); break;
	case SW_COL_CERT_CREATED: vtime(v, r->cert_created); break;
	case SW_COL_CERT_EXPIRES: vtime(v, r->cert_expires); break;
	case SW_COL_COUNTERSIG_TIME: vtime(v, r->countersig_time); break;
	case SW_COL_IS_TRUSTED: vtri(v, r->is_trusted); break;
	case SW_COL_IS_ROOT_SIGNER_MICROSOFT: vtri(v, r->is_root_signer_microsoft); break;
	case SW_COL_REPORT_ID:
		if (r->report_id >= 0)
			vlong(v, r->report_id);
		break;
	case SW_COL_FOLDER_PATH: vstr(v, r->folder_path); break;
	case SW_COL_FILE_NAME: vstr(v, r->file_name); break;
	case SW_COL_SHA256: vstr(v, r->sha256[0] ? r->sha256 : NULL); break;
	case SW_COL_FILE_SIZE: vlong(v, (int64_t)r->file_size); break;
	case SW_COL_SIGNATURE_INDEX: vlong(v, r->signature_index); break;
	case SW_COL_IS_NESTED: vtri(v, r->is_nested ? SW_YES : SW_NO); break;
	case SW_COL_DIGEST_ALGORITHM: vstr(v, r->digest_algorithm); break;
	case SW_COL_DIGEST_MATCHES: vtri(v, r->digest_matches); break;
	case SW_COL_ANOMALIES: varr(v, r->anomaly_v, r->n_anomalies); break;
	case SW_COL_SIGNER_DN: vstr(v, r->signer_dn); break;
	case SW_COL_ISSUER_DN: vstr(v, r->issuer_dn); break;
	case SW_COL_COUNTERSIG_TYPE: vstr(v, r->countersig_type); break;
	case SW_COL_YARA_MATCHES: varr(v, (const char *const *)r->yara_matches, r->n_yara_matches); break;
	case SW_COL__COUNT: break;
	}
}

void sw_record_init(sw_record *r)
{
	memset(r, 0, sizeof(*r));
	r->cert_created = r->cert_expires = r->countersig_time = SW_TIME_NULL;
	r->timestamp = SW_TIME_NULL;
	r->is_trusted = r->is_root_signer_microsoft = r->digest_matches = SW_NULL;
	r->report_id = -1;
}

void sw_record_set_anomalies(sw_record *r, uint32_t mask)
{
	r->anomalies = mask;
	r->n_anomalies = 0;
	for (unsigned i = 0; i < SW_ANOM__COUNT; i++)
		if (mask & (1u << i))
			r->anomaly_v[r->n_anomalies++] = ANOM_NAMES[i];
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void sw_record_free(sw_record *r)
{
	free(r->device_name);
	free(r->folder_path);
	free(r->file_name);
	free(r->signature_type);
	free(r->signer);
	free(r->signer_dn);
	free(r->issuer);
	free(r->issuer_dn);
	free(r->serial);
	free_list(r->crl_urls, r->n_crl_urls);
	free(r->countersig_type);
	free(r->digest_algorithm);
	free(r->error);
	free(r->trust_error);
	free_list(r->yara_matches, r->n_yara_matches);
	sw_record_init(r);
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static int dup_list(char ***dst, const char *const *src, size_t n)
{
	*dst = NULL;
	if (!n)
		return 0;
	*dst = calloc(n, sizeof(char *));
	if (!*dst)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (dup_str(&(*dst)[i], src[i]))
			return -1;
	return 0;
}

sw_err sw_record_copy(sw_record *d, const sw_record *s)
{
	*d = *s;
	int bad = 0;
	bad |= dup_str(&d->device_name, s->device_name);
	bad |= dup_str(&d->folder_path, s->folder_path);
	bad |= dup_str(&d->file_name, s->file_name);
	bad |= dup_str(&d->signature_type, s->signature_type);
	bad |= dup_str(&d->signer, s->signer);
	bad |= dup_str(&d->signer_dn, s->signer_dn);
	bad |= dup_str(&d->issuer, s->issuer);
	bad |= dup_str(&d->issuer_dn, s->issuer_dn);
	bad |= dup_str(&d->serial, s->serial);
	bad |= dup_list(&d->crl_urls, (const char *const *)s->crl_urls, s->n_crl_urls);
	bad |= dup_str(&d->countersig_type, s->countersig_type);
	bad |= dup_str(&d->digest_algorithm, s->digest_algorithm);
	bad |= dup_str(&d->error, s->error);
	bad |= dup_str(&d->trust_error, s->trust_error);
	bad |= dup_list(&d->yara_matches, (const char *const *)s->yara_matches, s->n_yara_matches);
	if (bad) {
		sw_record_free(d);
		return SW_ERR_NOMEM;
	}
	return SW_OK;
}

char *sw_utf8_sanitize(const char *in, size_t len)
{
	const uint8_t *s = (const uint8_t *)in;
	char *out = malloc(len * 3 + 1); /* each bad byte may become 3 bytes */
	if (!out)
		return NULL;
	size_t o = 0, i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c >= 0x01 && c < 0x80) {
			out[o++] = (char)c;
			i++;
			continue;
		}
		/* Expected length, and the range of the second byte that rules
		 * out overlongs, surrogates and values past U+10FFFF. */
		size_t n = 0;
		uint8_t lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		size_t k = 1;
		while (n && k < n && i + k < len) {
			uint8_t b = s[i + k];
			if (k == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80)
				break;
			k++;
		}
		if (n && k == n) {
			memcpy(out + o, s + i, n);
			o += n;
		} else {
			/* One U+FFFD per maximal ill-formed subpart (Unicode's
			 * recommendation); NUL becomes one too. */
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
		i += n && k == n ? n : k;
	}
	out[o] = 0;
	return out;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t sw_time_make(int y, int mon, int d, int h, int mi, int s)
{
	return (days_from_civil(y, (unsigned)mon, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
}

char *sw_time_iso(int64_t ms, char *buf, size_t n)
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int frac = (int)(ms - secs * 1000);
	int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	int64_t rem = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (frac)
		snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
		         (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), frac);
	else
		snprintf(buf, n, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d, (int)(rem / 3600),
		         (int)(rem / 60 % 60), (int)(rem % 60));
	return buf;
}

int sw_time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3)
		return -1;
	const char *p = s + used;
	int frac = 0;
	if (*p == 'T' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &used) != 3)
			return -1;
		p += 1 + used;
		if (*p == '.') {
			int digits = 0;
			for (p++; *p >= '0' && *p <= '9'; p++, digits++)
				if (digits < 3)
					frac = frac * 10 + (*p - '0');
			for (; digits < 3 && digits > 0; digits++)
				frac *= 10;
		}
	}
	if (*p == 'Z')
		p++;
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	*ms = sw_time_make(y, mo, d, h, mi, sec) + frac;
	return 0;
}

static json_t *jstr(const char *s) { return s ? json_string(s) : json_null(); }
static json_t *jtri(sw_tri t) { return t == SW_NULL ? json_null() : json_boolean(t == SW_YES); }
static json_t *jtime(int64_t t)
{
	char buf[40];
	return t == SW_TIME_NULL ? json_null() : json_string(sw_time_iso(t, buf, sizeof(buf)));
}
static json_t *jlist(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char *sw_record_json(const sw_record *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
#define SET(k, v) json_object_set_new(o, k, v)
	SET("Timestamp", jtime(r->timestamp));
	SET("DeviceId", json_string(r->device_id));
	SET("DeviceName", jstr(r->device_name));
	SET("FolderPath", jstr(r->folder_path));
	SET("FileName", jstr(r->file_name));
	SET("SHA1", jstr(r->sha1[0] ? r->sha1 : NULL));
	SET("SHA256", jstr(r->sha256[0] ? r->sha256 : NULL));
	SET("FileSize", json_integer((json_int_t)r->file_size));
	SET("IsSigned", json_boolean(r->is_signed));
	SET("SignatureType", jstr(r->signature_type));
	SET("Signer", jstr(r->signer));
	SET("SignerDN", jstr(r->signer_dn));
	SET("SignerHash", jstr(r->signer_hash[0] ? r->signer_hash : NULL));
	SET("Issuer", jstr(r->issuer));
	SET("IssuerDN", jstr(r->issuer_dn));
	SET("IssuerHash", jstr(r->issuer_hash[0] ? r->issuer_hash : NULL));
	SET("CertificateSerialNumber", jstr(r->serial));
	SET("CrlDistributionPointUrls", jlist((const char *const *)r->crl_urls, r->n_crl_urls));
	SET("CertificateCreationTime", jtime(r->cert_created));
	SET("CertificateExpirationTime", jtime(r->cert_expires));
	SET("CertificateCountersignatureTime", jtime(r->countersig_time));
	SET("CountersignatureType", jstr(r->countersig_type));
	SET("IsTrusted", jtri(r->is_trusted));
	SET("IsRootSignerMicrosoft", jtri(r->is_root_signer_microsoft));
	SET("ReportId", r->report_id >= 0 ? json_integer(r->report_id) : json_null());
	SET("SignatureIndex", json_integer(r->signature_index));
	SET("IsNested", json_boolean(r->is_nested));
	SET("DigestAlgorithm", jstr(r->digest_algorithm));
	SET("DigestMatches", jtri(r->digest_matches));
	SET("Anomalies", jlist(r->anomaly_v, r->n_anomalies));
	SET("YaraMatches", jlist((const char *const *)r->yara_matches, r->n_yara_matches));
	SET("Error", jstr(r->error));
	SET("TrustError", jstr(r->trust_error));
#undef SET
	/* Strings are sanitized UTF-8 already; jansson escapes control
	 * characters and quotes. ENSURE_ASCII also escapes bidi overrides. */
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

/* ---- reading a record back from its JSON ------------------------------ */

static int get_str(json_t *o, const char *k, char **dst)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	*dst = sw_utf8_sanitize(json_string_value(v), json_string_length(v));
	return *dst ? 0 : -1;
}

static int get_fixed(json_t *o, const char *k, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= cap)
		return -1;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_time(json_t *o, const char *k, int64_t *dst)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	return json_is_string(v) && sw_time_parse(json_string_value(v), dst) == 0 ? 0 : -1;
}

static int get_tri(json_t *o, const char *k, sw_tri *dst)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return -1;
	*dst = json_is_true(v) ? SW_YES : SW_NO;
	return 0;
}

static int get_list(json_t *o, const char *k, char ***dst, size_t *n)
{
	json_t *v = json_object_get(o, k);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > 1024)
		return -1;
	*n = 0;
	if (!json_array_size(v))
		return 0;
	*dst = calloc(json_array_size(v), sizeof(char *));
	if (!*dst)
		return -1;
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e))
			return -1;
		(*dst)[(*n)++] = sw_utf8_sanitize(json_string_value(e), json_string_length(e));
	}
	return 0;
}

sw_err sw_record_from_json(const char *js, size_t len, sw_record *r)
{
	sw_record_init(r);
	json_error_t jerr;
	json_t *o = json_loadb(js, len, 0, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return SW_ERR_USAGE;
	}
	int bad = 0;
	bad |= get_time(o, "Timestamp", &r->timestamp);
	bad |= get_fixed(o, "DeviceId", r->device_id, sizeof(r->device_id));
	bad |= get_str(o, "DeviceName", &r->device_name);
	bad |= get_str(o, "FolderPath", &r->folder_path);
	bad |= get_str(o, "FileName", &r->file_name);
	bad |= get_fixed(o, "SHA1", r->sha1, sizeof(r->sha1));
	bad |= get_fixed(o, "SHA256", r->sha256, sizeof(r->sha256));
	json_t *v = json_object_get(o, "FileSize");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		r->file_size = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "IsSigned");
	r->is_signed = json_is_true(v);
	bad |= get_str(o, "SignatureType", &r->signature_type);
	bad |= get_str(o, "Signer", &r->signer);
	bad |= get_str(o, "SignerDN", &r->signer_dn);
	bad |= get_fixed(o, "SignerHash", r->signer_hash, sizeof(r->signer_hash));
	bad |= get_str(o, "Issuer", &r->issuer);
	bad |= get_str(o, "IssuerDN", &r->issuer_dn);
	bad |= get_fixed(o, "IssuerHash", r->issuer_hash, sizeof(r->issuer_hash));
	bad |= get_str(o, "CertificateSerialNumber", &r->serial);
	bad |= get_list(o, "CrlDistributionPointUrls", &r->crl_urls, &r->n_crl_urls);
	bad |= get_time(o, "CertificateCreationTime", &r->cert_created);
	bad |= get_time(o, "CertificateExpirationTime", &r->cert_expires);
	bad |= get_time(o, "CertificateCountersignatureTime", &r->countersig_time);
	bad |= get_str(o, "CountersignatureType", &r->countersig_type);
	bad |= get_tri(o, "IsTrusted", &r->is_trusted);
	bad |= get_tri(o, "IsRootSignerMicrosoft", &r->is_root_signer_microsoft);
	v = json_object_get(o, "ReportId");
	if (json_is_integer(v))
		r->report_id = json_integer_value(v);
	v = json_object_get(o, "SignatureIndex");
	if (json_is_integer(v))
		r->signature_index = (int)json_integer_value(v);
	r->is_nested = json_is_true(json_object_get(o, "IsNested"));
	bad |= get_str(o, "DigestAlgorithm", &r->digest_algorithm);
	bad |= get_tri(o, "DigestMatches", &r->digest_matches);
	json_t *an = json_object_get(o, "Anomalies");
	uint32_t mask = 0;
	for (size_t i = 0; json_is_array(an) && i < json_array_size(an); i++)
		for (unsigned b = 0; b < SW_ANOM__COUNT; b++)
			if (json_is_string(json_array_get(an, i)) &&
			    !strcmp(json_string_value(json_array_get(an, i)), ANOM_NAMES[b]))
				mask |= 1u << b;
	sw_record_set_anomalies(r, mask);
	bad |= get_list(o, "YaraMatches", &r->yara_matches, &r->n_yara_matches);
	bad |= get_str(o, "Error", &r->error);
	bad |= get_str(o, "TrustError", &r->trust_error);
	json_decref(o);
	if (bad) {
		sw_record_free(r);
		return SW_ERR_USAGE;
	}
	return SW_OK;
}
