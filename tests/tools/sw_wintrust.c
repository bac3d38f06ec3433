/* Windows-only test helper for tests/integration/test_wine_trust.sh: puts
 * a test certificate into a LocalMachine system store and a catalog into
 * the catalog database, the way an administrator (certutil -addstore,
 * pnputil) would, so signwatch sees them through the OS APIs.
 *   sw_wintrust addcert STORE FILE.der   e.g. ROOT, Disallowed
 *   sw_wintrust addcat FILE.cat NAME     CryptCATAdminAddCatalog (DRIVER_ACTION_VERIFY)
 * Exit status 0 on success, 1 with a message on failure. */
#include <windows.h>

#include <wincrypt.h>

#include <mscat.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static const GUID driver_action_verify = {
	0xf750e6c3, 0x38ee, 0x11d1, { 0x85, 0xe5, 0x00, 0xc0, 0x4f, 0xc2, 0x95, 0xee }
};

static BYTE *slurp(const wchar_t *path, DWORD *n)
{
	FILE *f = _wfopen(path, L"rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	BYTE *p = len > 0 ? malloc((size_t)len) : NULL;
	if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*n = (DWORD)len;
	return p;
}

static int addcert(const wchar_t *store, const wchar_t *file)
{
	DWORD n;
	BYTE *der = slurp(file, &n);
	if (!der) {
		fwprintf(stderr, L"cannot read %ls\n", file);
		return 1;
	}
	HCERTSTORE s = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE, store);
	BOOL ok = s && CertAddEncodedCertificateToStore(s, X509_ASN_ENCODING, der, n,
	                                                CERT_STORE_ADD_REPLACE_EXISTING, NULL);
	if (!ok)
		fwprintf(stderr, L"cannot add %ls to LocalMachine\\%ls (error %lu)\n", file, store,
		         GetLastError());
	if (s)
		CertCloseStore(s, 0);
	free(der);
	return ok ? 0 : 1;
}

static int addcat(wchar_t *file, wchar_t *name)
{
	HCATADMIN h;
	if (!CryptCATAdminAcquireContext(&h, &driver_action_verify, 0)) {
		fwprintf(stderr, L"CryptCATAdminAcquireContext failed (error %lu)\n", GetLastError());
		return 1;
	}
	HCATINFO ci = CryptCATAdminAddCatalog(h, file, name, 0);
	if (!ci)
		fwprintf(stderr, L"CryptCATAdminAddCatalog %ls failed (error %lu)\n", file, GetLastError());
	else
		CryptCATAdminReleaseCatalogContext(h, ci, 0);
	CryptCATAdminReleaseContext(h, 0);
	return ci ? 0 : 1;
}

int wmain(int argc, wchar_t **argv)
{
	if (argc == 4 && !wcscmp(argv[1], L"addcert"))
		return addcert(argv[2], argv[3]);
	if (argc == 4 && !wcscmp(argv[1], L"addcat"))
		return addcat(argv[2], argv[3]);
	fwprintf(stderr, L"usage: sw_wintrust addcert STORE FILE.der | addcat FILE.cat NAME\n");
	return 2;
}
