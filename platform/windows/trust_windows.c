/* signwatch: Windows code-signing trust. The LocalMachine ROOT store
 * becomes the sw_trust that IsTrusted builds chains against (the
 * Disallowed store distrusted), and the catalog database (CryptCATAdmin)
 * says which system catalogs list a file's Authenticode digest. The
 * catalogs themselves are verified by common/catalog.c, not by the OS:
 * the same rules as embedded signatures, and the same on every platform. */
#include <windows.h>

#include <wincrypt.h>

#include <mscat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "trust.h"
#include "win_internal.h"

/* DRIVER_ACTION_VERIFY: the subsystem of the OS's own catalogs
 * (catroot\{F750E6C3-38EE-11D1-85E5-00C04FC295EE}), and of third-party
 * drivers' catalogs installed with CryptCATAdminAddCatalog. */
static const GUID catalog_subsystem = {
	0xf750e6c3, 0x38ee, 0x11d1, { 0x85, 0xe5, 0x00, 0xc0, 0x4f, 0xc2, 0x95, 0xee }
};

static HCERTSTORE open_machine_store(const wchar_t *name)
{
	return CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0,
	                     CERT_SYSTEM_STORE_LOCAL_MACHINE | CERT_STORE_READONLY_FLAG |
	                             CERT_STORE_OPEN_EXISTING_FLAG,
	                     name);
}

/* What a root may anchor, from its enhanced-key-usage property (set by an
 * administrator or by root auto-update), as Windows reads it: no property
 * means every usage; code signing (1.3.6.1.5.5.7.3.3) and time stamping
 * (1.3.6.1.5.5.7.3.8) each allow their own chains only; a property that
 * is present but empty is what "Disable all purposes for this
 * certificate" writes, and means none (CertGetEnhancedKeyUsage: no
 * identifiers with GetLastError() 0 is "no valid uses", with
 * CRYPT_E_NOT_FOUND "all uses"). A root for neither is not added. */
static unsigned root_usages(PCCERT_CONTEXT c)
{
	DWORD n = 0;
	if (!CertGetEnhancedKeyUsage(c, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, NULL, &n))
		return GetLastError() == (DWORD)CRYPT_E_NOT_FOUND ? SW_ANCHOR_ALL : 0;
	if (n < sizeof(CERT_ENHKEY_USAGE))
		return 0;
	CERT_ENHKEY_USAGE *u = malloc(n);
	unsigned m = 0;
	SetLastError(0);
	if (u && CertGetEnhancedKeyUsage(c, CERT_FIND_PROP_ONLY_ENHKEY_USAGE_FLAG, u, &n)) {
		if (u->cUsageIdentifier == 0 && GetLastError() == (DWORD)CRYPT_E_NOT_FOUND)
			m = SW_ANCHOR_ALL;
		for (DWORD i = 0; i < u->cUsageIdentifier; i++) {
			const char *oid = u->rgpszUsageIdentifier[i];
			if (!oid)
				continue;
			if (!strcmp(oid, szOID_PKIX_KP_CODE_SIGNING))
				m |= SW_ANCHOR_CODE_SIGNING;
			else if (!strcmp(oid, szOID_PKIX_KP_TIMESTAMP_SIGNING))
				m |= SW_ANCHOR_TIMESTAMPING;
		}
	}
	free(u);
	return m;
}

sw_err sw_plat_system_trust(sw_trust **out, char *why, size_t n)
{
	*out = NULL;
	HCERTSTORE root = open_machine_store(L"ROOT");
	if (!root) {
		snprintf(why, n, "cannot open the LocalMachine ROOT store (error %lu)", GetLastError());
		return SW_ERR_IO;
	}
	sw_trust *t = sw_trust_new();
	if (!t) {
		CertCloseStore(root, 0);
		return SW_ERR_NOMEM;
	}
	size_t bad = 0;
	PCCERT_CONTEXT c = NULL;
	while ((c = CertEnumCertificatesInStore(root, c)) != NULL) {
		unsigned usages = root_usages(c);
		if (usages && sw_trust_add_der(t, c->pbCertEncoded, c->cbCertEncoded, usages) != SW_OK)
			bad++; /* one the OS keeps but OpenSSL cannot parse: not a root for us */
	}
	CertCloseStore(root, 0);
	/* Disallowed: revoked roots, intermediates and leaves (e.g. after a CA
	 * compromise). Absent on a fresh system, which is fine. */
	HCERTSTORE dis = open_machine_store(L"Disallowed");
	if (dis) {
		while ((c = CertEnumCertificatesInStore(dis, c)) != NULL)
			(void)sw_trust_add_distrusted_der(t, c->pbCertEncoded, c->cbCertEncoded);
		CertCloseStore(dis, 0);
	}
	if (!sw_trust_count(t)) {
		snprintf(why, n, "the LocalMachine ROOT store holds no usable certificate (%zu unreadable)",
		         bad);
		sw_trust_free(t);
		return SW_ERR_IO;
	}
	*out = t;
	return SW_OK;
}

typedef BOOL(WINAPI *acquire2_fn)(HCATADMIN *, const GUID *, const WCHAR *, const CERT_STRONG_SIGN_PARA *,
                                  DWORD);

/* SHA-256 lookups need CryptCATAdminAcquireContext2 (Windows 8 and
 * later); it is resolved at run time, once per process, so the binary
 * still starts on systems without it, where only SHA-1 lookups work. */
static INIT_ONCE acquire2_once = INIT_ONCE_STATIC_INIT;
static acquire2_fn acquire2;

static BOOL CALLBACK resolve_acquire2(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
	(void)once;
	(void)param;
	(void)ctx;
	HMODULE m = GetModuleHandleW(L"wintrust.dll");
	acquire2 = m ? (acquire2_fn)(void (*)(void))GetProcAddress(m, "CryptCATAdminAcquireContext2") : NULL;
	return TRUE;
}

static bool acquire(HCATADMIN *h, size_t len)
{
	if (len == 20)
		return CryptCATAdminAcquireContext(h, &catalog_subsystem, 0);
	InitOnceExecuteOnce(&acquire2_once, resolve_acquire2, NULL, NULL);
	return acquire2 && acquire2(h, &catalog_subsystem, L"SHA256", NULL, 0);
}

/* One thread's contexts: [0] SHA-1, [1] SHA-256, each acquired at its
 * first lookup; one that could not be acquired is not asked for again. */
struct sw_plat_catdb {
	HCATADMIN h[2];
	bool tried[2];
};

sw_plat_catdb *sw_plat_catdb_open(void) { return calloc(1, sizeof(sw_plat_catdb)); }

void sw_plat_catdb_close(sw_plat_catdb *db)
{
	if (!db)
		return;
	for (int i = 0; i < 2; i++)
		if (db->h[i])
			CryptCATAdminReleaseContext(db->h[i], 0);
	free(db);
}

sw_err sw_plat_catalogs_for_hash(sw_plat_catdb *db, const uint8_t *digest, size_t len, size_t max,
                                 char ***paths, size_t *n)
{
	*paths = NULL;
	*n = 0;
	if ((len != 20 && len != 32) || !max)
		return SW_ERR_UNSUPPORTED;
	HCATADMIN h = NULL;
	int k = len == 32;
	if (db) {
		if (!db->tried[k]) {
			db->tried[k] = true;
			if (!acquire(&db->h[k], len))
				db->h[k] = NULL;
		}
		h = db->h[k];
	} else if (!acquire(&h, len)) {
		h = NULL;
	}
	if (!h)
		return SW_ERR_UNSUPPORTED;
	char **v = calloc(max, sizeof(*v));
	if (!v) {
		if (!db)
			CryptCATAdminReleaseContext(h, 0);
		return SW_ERR_NOMEM;
	}
	/* The hash is ours (authenticode digest computed by inspect), never
	 * CryptCATAdminCalcHashFromFileHandle's. Each call releases the
	 * previous context passed in; one kept past the loop is released here. */
	HCATINFO prev = NULL;
	/* Bounded even when contexts keep coming without a usable path. */
	for (size_t iter = 0; *n < max && iter / 4 < max; iter++) {
		HCATINFO ci = CryptCATAdminEnumCatalogFromHash(h, (BYTE *)digest, (DWORD)len, 0, &prev);
		if (!ci) {
			prev = NULL;
			break;
		}
		prev = ci;
		CATALOG_INFO info;
		memset(&info, 0, sizeof(info));
		info.cbStruct = sizeof(info);
		if (CryptCATCatalogInfoFromContext(ci, &info, 0) &&
		    (v[*n] = sw_win_wide_to_utf8(info.wszCatalogFile, -1)) != NULL)
			(*n)++;
	}
	if (prev)
		CryptCATAdminReleaseCatalogContext(h, prev, 0);
	if (!db)
		CryptCATAdminReleaseContext(h, 0);
	if (!*n) {
		free(v);
		v = NULL;
	}
	*paths = v;
	return SW_OK;
}

bool sw_plat_has_catalogs(void) { return true; }
