/* platform.h on Windows (Windows 8 / Server 2012 and later).
 *
 * Paths come in and go out as UTF-8; every call into the OS uses the wide
 * (UTF-16) API, and every string from the OS is converted back with
 * WideCharToMultiByte and then sanitized (sw_utf8_sanitize), as the POSIX
 * code sanitizes what readdir gives it. Long absolute paths get the \\?\
 * prefix so MAX_PATH is no limit. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602
#endif
#include <windows.h>

#include <aclapi.h>
#include <bcrypt.h>
#include <fcntl.h>
#include <io.h>
#include <knownfolders.h>
#include <sddl.h>
#include <shlobj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "record.h"
#include "win_internal.h"

#ifndef RRF_SUBKEY_WOW6464KEY
#define RRF_SUBKEY_WOW6464KEY 0x00010000 /* declared only for _WIN32_WINNT >= 0x0A00 */
#endif
#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS ((NTSTATUS)0)
#endif

/* SYSTEM and Administrators full control, protected (nothing inherited from
 * the parent). OW (Owner Rights) keeps the owner able to use what it
 * created when the agent runs as an ordinary user (`signwatch scan --db`),
 * as 0700 does on POSIX; under the service the owner is SYSTEM or
 * Administrators anyway. */
static const wchar_t private_sddl[] = L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)";

/* ------------------------------------------------------------ strings */

char *sw_win_wide_to_utf8(const wchar_t *w, int wlen)
{
	if (wlen < 0)
		wlen = (int)wcslen(w);
	if (wlen == 0)
		return sw_utf8_sanitize("", 0);
	/* Unpaired surrogates (legal in NTFS names) become U+FFFD here. */
	int n = WideCharToMultiByte(CP_UTF8, 0, w, wlen, NULL, 0, NULL, NULL);
	if (n <= 0)
		return NULL;
	char *tmp = malloc((size_t)n + 1);
	if (!tmp)
		return NULL;
	WideCharToMultiByte(CP_UTF8, 0, w, wlen, tmp, n, NULL, NULL);
	tmp[n] = 0;
	char *out = sw_utf8_sanitize(tmp, (size_t)n);
	free(tmp);
	return out;
}

void sw_win_wide_to_utf8_buf(const wchar_t *w, char *out, size_t n)
{
	if (!n)
		return;
	out[0] = 0;
	char *u = sw_win_wide_to_utf8(w, -1);
	if (!u)
		return;
	size_t l = strlen(u);
	if (l >= n) {
		l = n - 1;
		while (l && ((unsigned char)u[l] & 0xc0) == 0x80)
			l--; /* not inside a character */
	}
	memcpy(out, u, l);
	out[l] = 0;
	free(u);
}

wchar_t *sw_win_utf8_to_wide(const char *s)
{
	int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
	if (n <= 0)
		return NULL;
	wchar_t *w = malloc((size_t)n * sizeof(wchar_t));
	if (w)
		MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
	return w;
}

static bool is_sep(char c) { return c == '/' || c == '\\'; }

static bool is_drive_abs(const char *p)
{
	return ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' && is_sep(p[2]);
}

/* UTF-8 path to a malloc'd wide path; NULL on invalid UTF-8 or no memory.
 * A long drive-absolute or UNC path gets the \\?\ prefix (then / is no
 * separator, so those are turned into \). */
static wchar_t *path_to_wide(const char *path)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
	if (n <= 0)
		return NULL;
	bool unc = is_sep(path[0]) && is_sep(path[1]) && path[2] != '?' && path[2] != '.';
	bool prefix = n >= MAX_PATH - 12 && (is_drive_abs(path) || unc);
	size_t extra = prefix ? (unc ? 6 : 4) : 0; /* \\?\UNC\ replaces \\ */
	wchar_t *w = malloc(((size_t)n + extra) * sizeof(wchar_t));
	if (!w)
		return NULL;
	wchar_t *d = w;
	if (prefix) {
		memcpy(d, unc ? L"\\\\?\\UNC\\" : L"\\\\?\\", (unc ? 8 : 4) * sizeof(wchar_t));
		d += unc ? 8 : 4;
		path += unc ? 2 : 0;
		n -= unc ? 2 : 0;
	}
	MultiByteToWideChar(CP_UTF8, 0, path, -1, d, n);
	if (prefix)
		for (wchar_t *p = d; *p; p++)
			if (*p == L'/')
				*p = L'\\';
	return w;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

void sw_win_strerror(unsigned long err, char *out, size_t n)
{
	wchar_t *msg = NULL;
	char *u = NULL;
	if (FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
	                           FORMAT_MESSAGE_IGNORE_INSERTS,
	                   NULL, err, MAKELANGID(LANG_ENGLISH, SUBLANG_ENGLISH_US), (LPWSTR)&msg, 0, NULL) ||
	    FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
	                           FORMAT_MESSAGE_IGNORE_INSERTS,
	                   NULL, err, 0, (LPWSTR)&msg, 0, NULL))
		u = sw_win_wide_to_utf8(msg, -1);
	if (msg)
		LocalFree(msg);
	if (u) {
		size_t l = strlen(u);
		while (l && (u[l - 1] == '\n' || u[l - 1] == '\r' || u[l - 1] == ' ' || u[l - 1] == '.'))
			u[--l] = 0;
		snprintf(out, n, "%s", u);
		free(u);
	} else {
		snprintf(out, n, "Windows error %lu", (unsigned long)err);
	}
}

/* ------------------------------------------------------- device identity */

static sw_err sha1_hex(const char *in, size_t len, char out[41])
{
	BCRYPT_ALG_HANDLE alg = NULL;
	BCRYPT_HASH_HANDLE h = NULL;
	UCHAR d[20];
	sw_err ret = SW_ERR_CRYPTO;
	if (BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA1_ALGORITHM, NULL, 0) != STATUS_SUCCESS)
		return SW_ERR_CRYPTO;
	if (BCryptCreateHash(alg, &h, NULL, 0, NULL, 0, 0) == STATUS_SUCCESS &&
	    BCryptHashData(h, (PUCHAR)in, (ULONG)len, 0) == STATUS_SUCCESS &&
	    BCryptFinishHash(h, d, sizeof(d), 0) == STATUS_SUCCESS) {
		static const char hx[] = "0123456789abcdef";
		for (unsigned i = 0; i < 20; i++) {
			out[2 * i] = hx[d[i] >> 4];
			out[2 * i + 1] = hx[d[i] & 15];
		}
		out[40] = 0;
		ret = SW_OK;
	}
	if (h)
		BCryptDestroyHash(h);
	BCryptCloseAlgorithmProvider(alg, 0);
	return ret;
}

sw_err sw_plat_device_id(char out[41])
{
	wchar_t guid[128];
	DWORD cb = sizeof(guid);
	char *id = NULL;
	/* The 64-bit view: a 32-bit process would otherwise be redirected. */
	if (RegGetValueW(HKEY_LOCAL_MACHINE, L"SOFTWARE\\Microsoft\\Cryptography", L"MachineGuid",
	                 RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY, NULL, guid, &cb) == ERROR_SUCCESS)
		id = sw_win_wide_to_utf8(guid, -1);
	if (!id || !id[0]) {
		free(id);
		wchar_t name[MAX_COMPUTERNAME_LENGTH + 1];
		DWORD n = MAX_COMPUTERNAME_LENGTH + 1;
		if (!GetComputerNameW(name, &n))
			return SW_ERR_IO;
		id = sw_win_wide_to_utf8(name, (int)n);
		if (!id)
			return SW_ERR_NOMEM;
	}
	/* Hash it, as on POSIX: the machine id itself should not leave the
	 * device. Same input shape, so the same id hashes the same. */
	char in[160];
	int len = snprintf(in, sizeof(in), "signwatch-device:%s", id);
	free(id);
	if (len < 0 || (size_t)len >= sizeof(in))
		return SW_ERR_IO;
	return sha1_hex(in, (size_t)len, out);
}

sw_err sw_plat_device_name(char *out, size_t n)
{
	static const COMPUTER_NAME_FORMAT fmts[] = { ComputerNameDnsFullyQualified, ComputerNameDnsHostname,
		                                     ComputerNameNetBIOS };
	char *name = NULL;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]) && !name; i++) {
		DWORD len = 0;
		GetComputerNameExW(fmts[i], NULL, &len);
		if (len == 0)
			continue;
		wchar_t *w = malloc(((size_t)len + 1) * sizeof(wchar_t));
		if (!w)
			return SW_ERR_NOMEM;
		if (GetComputerNameExW(fmts[i], w, &len) && len > 0)
			name = sw_win_wide_to_utf8(w, (int)len);
		free(w);
	}
	if (!name)
		return SW_ERR_IO;
	snprintf(out, n, "%s", name);
	free(name);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return SW_OK;
}

/* ------------------------------------------------------------- clocks */

/* 100 ns intervals between 1601-01-01 and 1970-01-01. */
#define EPOCH_DIFF_100NS 116444736000000000LL

static int64_t filetime_100ns(FILETIME ft)
{
	return (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
}

static int64_t real_now_ms(void)
{
	FILETIME ft;
	GetSystemTimePreciseAsFileTime(&ft);
	return (filetime_100ns(ft) - EPOCH_DIFF_100NS) / 10000;
}

int64_t sw_plat_now_ms(void)
{
	/* Read once: the override is part of the process's configuration. */
	static int inited;
	static int64_t offset;
	if (!inited) {
		const char *t = getenv("SIGNWATCH_TEST_NOW");
		int64_t at;
		if (t && *t && sw_time_parse(t, &at) == 0)
			offset = at - real_now_ms();
		inited = 1;
	}
	return real_now_ms() + offset;
}

int64_t sw_plat_cpu_us(void)
{
	FILETIME c, e, k, u;
	if (!GetProcessTimes(GetCurrentProcess(), &c, &e, &k, &u))
		return 0;
	return (filetime_100ns(k) + filetime_100ns(u)) / 10;
}

/* Unix-epoch nanoseconds from a FILETIME-style 100 ns count (0 stays 0). */
static int64_t ft100_to_unix_ns(int64_t t) { return t ? (t - EPOCH_DIFF_100NS) * 100 : 0; }

/* ------------------------------------------------------ private objects */

static PSECURITY_DESCRIPTOR private_sd(void)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(private_sddl, SDDL_REVISION_1, &sd, NULL))
		return NULL;
	return sd;
}

sw_err sw_plat_mkdirs(const char *dir)
{
	size_t len = strlen(dir);
	if (len == 0 || len > 32000)
		return SW_ERR_USAGE;
	char *p = xstrdup(dir);
	if (!p)
		return SW_ERR_NOMEM;
	PSECURITY_DESCRIPTOR sd = private_sd();
	if (!sd) {
		free(p);
		return SW_ERR_IO;
	}
	SECURITY_ATTRIBUTES sa = { sizeof(sa), sd, FALSE };
	/* Skip what cannot be created: a drive ("C:\"), a UNC share
	 * ("\\server\share\"), a leading separator. */
	size_t start = 0;
	if (len >= 2 && p[1] == ':')
		start = is_sep(p[2]) ? 3 : 2;
	else if (is_sep(p[0]) && is_sep(p[1])) {
		size_t i = 2, seps = 0;
		while (p[i] && seps < 2) {
			if (is_sep(p[i]))
				seps++;
			i++;
		}
		start = i;
	} else if (is_sep(p[0]))
		start = 1;
	sw_err ret = SW_OK;
	for (size_t i = start; i <= len && ret == SW_OK; i++) {
		if (i < len && !is_sep(p[i]))
			continue;
		if (i > start && !is_sep(p[i - 1])) {
			char save = p[i];
			p[i] = 0;
			wchar_t *w = path_to_wide(p);
			if (!w) {
				ret = SW_ERR_IO;
			} else {
				if (!CreateDirectoryW(w, &sa)) {
					DWORD e = GetLastError();
					DWORD a = GetFileAttributesW(w);
					if (e != ERROR_ALREADY_EXISTS || a == INVALID_FILE_ATTRIBUTES ||
					    !(a & FILE_ATTRIBUTE_DIRECTORY))
						ret = SW_ERR_IO;
				}
				free(w);
			}
			p[i] = save;
		}
	}
	LocalFree(sd);
	free(p);
	return ret;
}

FILE *sw_plat_fopen_private(const char *path, const char *mode)
{
	wchar_t *w = path_to_wide(path);
	if (!w)
		return NULL;
	PSECURITY_DESCRIPTOR sd = private_sd();
	SECURITY_ATTRIBUTES sa = { sizeof(sa), sd, FALSE };
	/* Created with the private DACL, so it is never briefly readable by
	 * others; an existing file keeps its ACL, as on POSIX. Appending, not
	 * following a final reparse point (O_NOFOLLOW). */
	HANDLE h = CreateFileW(w, FILE_GENERIC_WRITE | FILE_GENERIC_READ,
	                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, sd ? &sa : NULL,
	                       OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	free(w);
	if (sd)
		LocalFree(sd);
	if (h == INVALID_HANDLE_VALUE)
		return NULL;
	BY_HANDLE_FILE_INFORMATION bi;
	if (!GetFileInformationByHandle(h, &bi) || (bi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) ||
	    (bi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
		CloseHandle(h);
		return NULL;
	}
	int fd = _open_osfhandle((intptr_t)h, _O_APPEND | _O_BINARY);
	if (fd < 0) {
		CloseHandle(h);
		return NULL;
	}
	/* Binary: records are LF-terminated on every OS. */
	char m[8];
	size_t k = 0;
	for (const char *s = mode; *s && k < sizeof(m) - 2; s++)
		if (*s != 'b' && *s != 't')
			m[k++] = *s;
	m[k++] = 'b';
	m[k] = 0;
	FILE *f = _fdopen(fd, m);
	if (!f)
		_close(fd);
	return f;
}

void sw_plat_background_priority(void)
{
	/* CPU: below normal. I/O (and memory) priority: background mode,
	 * which also lowers the CPU priority further while set. */
	HANDLE self = GetCurrentProcess();
	(void)SetPriorityClass(self, BELOW_NORMAL_PRIORITY_CLASS);
	(void)SetPriorityClass(self, PROCESS_MODE_BACKGROUND_BEGIN);
}

/* The service's state goes to the SCM (service_windows.c: READY=1 reports
 * RUNNING, STOPPING=1 STOP_PENDING); nothing outside a service. */
void sw_plat_notify(const char *state, const char *status)
{
	(void)status;
	sw_win_service_notify(state);
}

/* ---------------------------------------------------------------- paths */

char *sw_plat_dirname(const char *path)
{
	const char *last = NULL;
	for (const char *s = path; *s; s++)
		if (is_sep(*s))
			last = s;
	/* "C:foo" and "C:\foo": the drive (with its root) is the folder. */
	size_t root = 0;
	if (path[0] && path[1] == ':')
		root = is_sep(path[2]) ? 3 : 2;
	if (!last) {
		if (root == 2) {
			char *d = malloc(3);
			if (d)
				memcpy(d, path, 2), d[2] = 0;
			return d;
		}
		return xstrdup(".");
	}
	size_t n = (size_t)(last - path);
	if (n < root)
		n = root;
	if (n == 0)
		n = 1; /* "\foo" -> "\" */
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, path, n);
	d[n] = 0;
	return d;
}

void sw_plat_split_path(const char *path, char **folder, char **name)
{
	/* Make the folder absolute (GetFullPathNameW resolves "." and ".."
	 * lexically; it follows no links). */
	char *abs = NULL;
	wchar_t *w = path_to_wide(path);
	if (w) {
		DWORD n = GetFullPathNameW(w, 0, NULL, NULL);
		if (n) {
			wchar_t *full = malloc((size_t)n * sizeof(wchar_t));
			if (full) {
				DWORD m = GetFullPathNameW(w, n, full, NULL);
				if (m && m < n) {
					const wchar_t *f = full;
					/* Report paths as users write them. */
					if (!wcsncmp(f, L"\\\\?\\UNC\\", 8)) {
						f += 6;
						full[6] = L'\\';
					} else if (!wcsncmp(f, L"\\\\?\\", 4)) {
						f += 4;
					}
					abs = sw_win_wide_to_utf8(f, -1);
				}
				free(full);
			}
		}
		free(w);
	}
	const char *p = abs ? abs : path;
	const char *last = NULL;
	for (const char *s = p; *s; s++)
		if (is_sep(*s))
			last = s;
	if (!last) {
		*folder = sw_utf8_sanitize(".", 1);
		*name = sw_utf8_sanitize(p, strlen(p));
	} else {
		size_t flen = (size_t)(last - p);
		/* Keep the root's separator: "C:\x.exe" is in "C:\". */
		if (flen == 2 && p[1] == ':')
			flen = 3;
		if (flen == 0)
			flen = 1;
		*folder = sw_utf8_sanitize(p, flen);
		*name = sw_utf8_sanitize(last + 1, strlen(last + 1));
	}
	free(abs);
}

bool sw_plat_isatty(int fd) { return _isatty(fd) != 0; }

bool sw_plat_windows_paths(void) { return true; }

/* ---------------------------------------------------------------- files */

struct sw_file {
	HANDLE h;
	uint64_t size;
	bool regular;
};

static sw_err file_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	sw_file *f = ctx;
	uint8_t *p = buf;
	while (len) {
		DWORD want = len > 0x40000000u ? 0x40000000u : (DWORD)len;
		DWORD got = 0;
		OVERLAPPED ov;
		memset(&ov, 0, sizeof(ov));
		ov.Offset = (DWORD)(off & 0xffffffffu);
		ov.OffsetHigh = (DWORD)(off >> 32);
		if (!ReadFile(f->h, p, want, &got, &ov)) {
			if (GetLastError() == ERROR_HANDLE_EOF)
				return SW_ERR_TRUNCATED;
			return SW_ERR_IO;
		}
		if (got == 0)
			return SW_ERR_TRUNCATED; /* shrank under us */
		p += got;
		off += got;
		len -= got;
	}
	return SW_OK;
}

/* Is this reparse tag a link (symlink, junction, ...) rather than a file
 * that merely carries reparse data? */
static bool tag_is_link(DWORD tag) { return IsReparseTagNameSurrogate(tag) != 0; }

static void fill_id_from_info(const BY_HANDLE_FILE_INFORMATION *bi, sw_file_id *id)
{
	id->dev = bi->dwVolumeSerialNumber;
	id->ino = ((uint64_t)bi->nFileIndexHigh << 32) | bi->nFileIndexLow;
	id->size = ((uint64_t)bi->nFileSizeHigh << 32) | bi->nFileSizeLow;
	id->mtime_ns = ft100_to_unix_ns(filetime_100ns(bi->ftLastWriteTime));
	id->ctime_ns = 0;
}

/* The identity of an open handle: volume serial and file id (the 128-bit
 * FileIdInfo folded to 64 bits on ReFS), size, last write time and, as
 * the ctime, the change time (FileBasicInfo.ChangeTime: metadata changes
 * too, as POSIX ctime). */
static bool handle_identity(HANDLE h, sw_file_id *id)
{
	memset(id, 0, sizeof(*id));
	BY_HANDLE_FILE_INFORMATION bi;
	if (!GetFileInformationByHandle(h, &bi))
		return false;
	fill_id_from_info(&bi, id);
	FILE_ID_INFO fid;
	if (GetFileInformationByHandleEx(h, FileIdInfo, &fid, sizeof(fid))) {
		uint64_t lo, hi;
		memcpy(&lo, fid.FileId.Identifier, 8);
		memcpy(&hi, fid.FileId.Identifier + 8, 8);
		id->dev = fid.VolumeSerialNumber;
		id->ino = lo ^ hi; /* hi is 0 on NTFS: the same 64-bit index */
	}
	FILE_BASIC_INFO basic;
	if (GetFileInformationByHandleEx(h, FileBasicInfo, &basic, sizeof(basic))) {
		id->mtime_ns = ft100_to_unix_ns(basic.LastWriteTime.QuadPart);
		id->ctime_ns = ft100_to_unix_ns(basic.ChangeTime.QuadPart);
	}
	return true;
}

/* Open path for metadata (or reading) without following a final reparse
 * point; directories too (backup semantics). */
static HANDLE open_nofollow(const wchar_t *w, DWORD access, DWORD flags)
{
	return CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
	                   OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS | flags,
	                   NULL);
}

/* 0 ok, else why it must not be read. */
static const char *refuse_reparse(HANDLE h, DWORD attrs)
{
	if (!(attrs & FILE_ATTRIBUTE_REPARSE_POINT))
		return NULL;
	FILE_ATTRIBUTE_TAG_INFO ti;
	if (GetFileInformationByHandleEx(h, FileAttributeTagInfo, &ti, sizeof(ti)) &&
	    !tag_is_link(ti.ReparseTag))
		return "is a reparse point (not opened)";
	return "is a symbolic link or junction (not followed)";
}

sw_err sw_plat_file_open(const char *path, sw_file **out, char *why, size_t n)
{
	wchar_t *w = path_to_wide(path);
	if (!w) {
		snprintf(why, n, "%s", "invalid path (not UTF-8)");
		return SW_ERR_IO;
	}
	/* Never blocking writers (share everything, delete included), never
	 * following a final link, read front to back. */
	HANDLE h = open_nofollow(w, GENERIC_READ, FILE_FLAG_SEQUENTIAL_SCAN);
	free(w);
	if (h == INVALID_HANDLE_VALUE) {
		sw_win_strerror(GetLastError(), why, n);
		return SW_ERR_IO;
	}
	BY_HANDLE_FILE_INFORMATION bi;
	if (!GetFileInformationByHandle(h, &bi)) {
		sw_win_strerror(GetLastError(), why, n);
		CloseHandle(h);
		return SW_ERR_IO;
	}
	const char *no = refuse_reparse(h, bi.dwFileAttributes);
	if (no) {
		snprintf(why, n, "%s", no);
		CloseHandle(h);
		return SW_ERR_IO;
	}
	sw_file *f = calloc(1, sizeof(*f));
	if (!f) {
		CloseHandle(h);
		return SW_ERR_NOMEM;
	}
	f->h = h;
	f->regular = !(bi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) && GetFileType(h) == FILE_TYPE_DISK;
	f->size = f->regular ? ((uint64_t)bi.nFileSizeHigh << 32) | bi.nFileSizeLow : 0;
	*out = f;
	return SW_OK;
}

sw_src sw_plat_file_source(sw_file *f)
{
	sw_src s = { file_read_at, f, f->size };
	return s;
}

bool sw_plat_file_is_regular(const sw_file *f) { return f->regular; }

void sw_plat_file_close(sw_file *f)
{
	if (!f)
		return;
	CloseHandle(f->h);
	free(f);
}

bool sw_plat_file_identity(const sw_file *f, sw_file_id *id)
{
	if (handle_identity(f->h, id))
		return true;
	memset(id, 0, sizeof(*id));
	return false;
}

sw_err sw_plat_stat_nofollow(const char *path, sw_file_id *id)
{
	wchar_t *w = path_to_wide(path);
	if (!w)
		return SW_ERR_IO;
	HANDLE h = open_nofollow(w, FILE_READ_ATTRIBUTES, 0);
	free(w);
	if (h == INVALID_HANDLE_VALUE)
		return SW_ERR_IO;
	BY_HANDLE_FILE_INFORMATION bi;
	sw_err ret = SW_OK;
	if (!GetFileInformationByHandle(h, &bi))
		ret = SW_ERR_IO;
	else if ((bi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)) ||
	         GetFileType(h) != FILE_TYPE_DISK)
		ret = SW_ERR_UNSUPPORTED;
	else if (!handle_identity(h, id))
		ret = SW_ERR_IO;
	CloseHandle(h);
	return ret;
}

int sw_plat_is_dir(const char *path)
{
	wchar_t *w = path_to_wide(path);
	if (!w)
		return -1;
	DWORD a = GetFileAttributesW(w);
	DWORD e = GetLastError();
	free(w);
	if (a == INVALID_FILE_ATTRIBUTES)
		return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND || e == ERROR_INVALID_NAME ? 0
		                                                                                         : -1;
	return (a & FILE_ATTRIBUTE_DIRECTORY) ? 1 : 0;
}

/* dir + "\*" as a wide pattern. */
static wchar_t *dir_pattern(const char *dir)
{
	size_t n = strlen(dir);
	char *p = malloc(n + 3);
	if (!p)
		return NULL;
	memcpy(p, dir, n);
	if (n && !is_sep(dir[n - 1]))
		p[n++] = '\\';
	p[n++] = '*';
	p[n] = 0;
	wchar_t *w = path_to_wide(p);
	free(p);
	return w;
}

static bool dot_or_dotdot(const wchar_t *s)
{
	return s[0] == L'.' && (s[1] == 0 || (s[1] == L'.' && s[2] == 0));
}

static HANDLE find_first(const wchar_t *pattern, WIN32_FIND_DATAW *fd)
{
	return FindFirstFileExW(pattern, FindExInfoBasic, fd, FindExSearchNameMatch, NULL,
	                        FIND_FIRST_EX_LARGE_FETCH);
}

static sw_err push_name(char ***names, size_t *n, size_t *cap, const wchar_t *w)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nv = realloc(*names, nc * sizeof(char *));
		if (!nv)
			return SW_ERR_NOMEM;
		*names = nv;
		*cap = nc;
	}
	if (!((*names)[*n] = sw_win_wide_to_utf8(w, -1)))
		return SW_ERR_NOMEM;
	(*n)++;
	return SW_OK;
}

sw_err sw_plat_list_dir(const char *dir, char ***names, size_t *n)
{
	*names = NULL;
	*n = 0;
	wchar_t *pat = dir_pattern(dir);
	if (!pat)
		return SW_ERR_IO;
	WIN32_FIND_DATAW fd;
	HANDLE h = find_first(pat, &fd);
	free(pat);
	if (h == INVALID_HANDLE_VALUE)
		return GetLastError() == ERROR_FILE_NOT_FOUND ? SW_OK : SW_ERR_IO; /* empty drive root */
	size_t cap = 0;
	sw_err ret = SW_OK;
	do {
		if (dot_or_dotdot(fd.cFileName))
			continue;
		ret = push_name(names, n, &cap, fd.cFileName);
	} while (ret == SW_OK && FindNextFileW(h, &fd));
	FindClose(h);
	if (ret != SW_OK) {
		for (size_t i = 0; i < *n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		*n = 0;
	}
	return ret;
}

bool sw_plat_dir_readable(const char *path)
{
	wchar_t *pat = dir_pattern(path);
	if (!pat)
		return false;
	WIN32_FIND_DATAW fd;
	HANDLE h = find_first(pat, &fd);
	DWORD e = GetLastError();
	free(pat);
	if (h == INVALID_HANDLE_VALUE)
		return e == ERROR_FILE_NOT_FOUND; /* listable, just empty */
	FindClose(h);
	return true;
}

/* ----------------------------------------------------------------- walk */

typedef struct walker {
	bool cross_fs;
	DWORD vol;
	sw_walk_visit_fn visit;
	sw_walk_error_fn on_error;
	void *ud;
	size_t cap;
	char *path; /* UTF-8, grows */
} walker;

static int walk_err(walker *w, const char *path, DWORD err)
{
	if (!w->on_error)
		return 0;
	char why[256];
	sw_win_strerror(err, why, sizeof(why));
	return w->on_error(w->ud, path, why);
}

static DWORD volume_serial(const char *path)
{
	wchar_t *w = path_to_wide(path);
	if (!w)
		return 0;
	DWORD serial = 0;
	HANDLE h = open_nofollow(w, FILE_READ_ATTRIBUTES, 0);
	free(w);
	if (h != INVALID_HANDLE_VALUE) {
		BY_HANDLE_FILE_INFORMATION bi;
		if (GetFileInformationByHandle(h, &bi))
			serial = bi.dwVolumeSerialNumber;
		CloseHandle(h);
	}
	return serial;
}

/* w->path is a folder; walk it. Names come from FindFirstFileExW, whose
 * attributes tell links (reparse points) apart without opening them: a
 * symbolic link or junction to a folder is never descended into, and a
 * link to a file is not visited. The visit's identity comes from opening
 * the entry for its attributes (not following a link), so it is the same
 * identity sw_plat_file_identity gives the scan. */
static int walk_dir(walker *w, int depth)
{
	wchar_t *pat = dir_pattern(w->path);
	if (!pat)
		return w->on_error ? w->on_error(w->ud, w->path, "invalid path (not UTF-8)") : 0;
	WIN32_FIND_DATAW fd;
	HANDLE h = find_first(pat, &fd);
	DWORD ferr = GetLastError();
	free(pat);
	if (h == INVALID_HANDLE_VALUE)
		return ferr == ERROR_FILE_NOT_FOUND ? 0 : walk_err(w, w->path, ferr);
	size_t base = strlen(w->path);
	int stop = 0;
	do {
		if (dot_or_dotdot(fd.cFileName))
			continue;
		char *name = sw_win_wide_to_utf8(fd.cFileName, -1);
		if (!name) {
			stop = w->on_error ? w->on_error(w->ud, w->path, "out of memory") : 0;
			break;
		}
		size_t nl = strlen(name);
		bool need_sep = base && !is_sep(w->path[base - 1]);
		if (base + need_sep + nl + 1 > w->cap) {
			size_t nc = (base + need_sep + nl + 1) * 2;
			char *np = realloc(w->path, nc);
			if (!np) {
				free(name);
				stop = w->on_error ? w->on_error(w->ud, w->path, "out of memory") : 0;
				break;
			}
			w->path = np;
			w->cap = nc;
		}
		if (need_sep)
			w->path[base] = '\\';
		memcpy(w->path + base + need_sep, name, nl + 1);
		free(name);
		DWORD a = fd.dwFileAttributes;
		if (a & FILE_ATTRIBUTE_REPARSE_POINT) {
			/* Links and junctions: not followed. Other reparse points
			 * (dedup, cloud placeholders) are refused by file_open
			 * too, so they are not visited. */
		} else if (a & FILE_ATTRIBUTE_DIRECTORY) {
			if (depth + 1 > SW_WALK_MAX_DEPTH) {
				if (w->on_error)
					stop = w->on_error(w->ud, w->path, "too deep (not scanned)");
			} else if (w->cross_fs || volume_serial(w->path) == w->vol) {
				stop = walk_dir(w, depth + 1);
			}
		} else if (!(a & FILE_ATTRIBUTE_DEVICE)) {
			sw_file_id id;
			sw_err e = sw_plat_stat_nofollow(w->path, &id);
			if (e == SW_OK) {
				stop = w->visit(w->ud, w->path, &id);
			} else if (e == SW_ERR_IO) {
				DWORD le = GetLastError();
				if (le != ERROR_FILE_NOT_FOUND && le != ERROR_PATH_NOT_FOUND) /* vanished */
					stop = walk_err(w, w->path, le);
			}
		}
		w->path[base] = 0;
	} while (!stop && FindNextFileW(h, &fd));
	if (!stop && GetLastError() != ERROR_NO_MORE_FILES)
		stop = walk_err(w, w->path, GetLastError());
	FindClose(h);
	return stop;
}

sw_err sw_plat_walk(const char *root, bool cross_fs, sw_walk_visit_fn visit, sw_walk_error_fn on_error,
                    void *ud)
{
	walker w;
	memset(&w, 0, sizeof(w));
	w.cross_fs = cross_fs;
	w.visit = visit;
	w.on_error = on_error;
	w.ud = ud;
	w.cap = strlen(root) + 260;
	if (!(w.path = malloc(w.cap)))
		return SW_ERR_NOMEM;
	memcpy(w.path, root, strlen(root) + 1);
	/* Strip trailing separators but keep a drive root's ("C:\"). */
	size_t rl = strlen(w.path);
	while (rl > 1 && is_sep(w.path[rl - 1]) && !(rl == 3 && w.path[1] == ':'))
		w.path[--rl] = 0;
	sw_err ret = SW_OK;
	wchar_t *wr = path_to_wide(root);
	/* The root may be a link the user named on purpose: follow it. */
	DWORD a = wr ? GetFileAttributesW(wr) : INVALID_FILE_ATTRIBUTES;
	DWORD err = GetLastError();
	if (a == INVALID_FILE_ATTRIBUTES) {
		if (on_error) {
			char why[256];
			if (wr)
				sw_win_strerror(err, why, sizeof(why));
			else
				snprintf(why, sizeof(why), "%s", "invalid path (not UTF-8)");
			on_error(ud, root, why);
		}
		ret = SW_ERR_IO;
	} else if (!(a & FILE_ATTRIBUTE_DIRECTORY)) {
		HANDLE h = CreateFileW(wr, FILE_READ_ATTRIBUTES,
		                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
		                       OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
		sw_file_id id;
		if (h != INVALID_HANDLE_VALUE) {
			if (GetFileType(h) == FILE_TYPE_DISK && handle_identity(h, &id))
				visit(ud, root, &id);
			CloseHandle(h);
		}
	} else {
		HANDLE h = CreateFileW(wr, FILE_READ_ATTRIBUTES,
		                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
		                       OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
		if (h != INVALID_HANDLE_VALUE) {
			BY_HANDLE_FILE_INFORMATION bi;
			if (GetFileInformationByHandle(h, &bi))
				w.vol = bi.dwVolumeSerialNumber;
			CloseHandle(h);
		}
		walk_dir(&w, 0);
	}
	free(wr);
	free(w.path);
	return ret;
}

/* ------------------------------------------------------------ file mode */

/* POSIX-style bits from the DACL: 0600 when only SYSTEM, Administrators
 * and the owner (or Owner Rights / Creator Owner) may read, else 0644.
 * A NULL DACL (everyone has access) is 0666. */
static bool sid_is_private(PSID sid, PSID owner)
{
	if (owner && EqualSid(sid, owner))
		return true;
	return IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinBuiltinAdministratorsSid) ||
	       IsWellKnownSid(sid, WinCreatorOwnerSid) || IsWellKnownSid(sid, WinCreatorOwnerRightsSid);
}

int sw_plat_file_mode(const char *path, unsigned *mode)
{
	wchar_t *w = path_to_wide(path);
	if (!w)
		return -1;
	PSID owner = NULL;
	PACL dacl = NULL;
	PSECURITY_DESCRIPTOR sd = NULL;
	DWORD e = GetNamedSecurityInfoW(w, SE_FILE_OBJECT,
	                                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, NULL,
	                                &dacl, NULL, &sd);
	free(w);
	if (e != ERROR_SUCCESS)
		return -1;
	unsigned m = 0600;
	if (!dacl) {
		m = 0666;
	} else {
		for (DWORD i = 0; i < dacl->AceCount; i++) {
			ACE_HEADER *hdr;
			if (!GetAce(dacl, i, (LPVOID *)&hdr))
				continue;
			if (hdr->AceType != ACCESS_ALLOWED_ACE_TYPE || (hdr->AceFlags & INHERIT_ONLY_ACE))
				continue;
			ACCESS_ALLOWED_ACE *ace = (ACCESS_ALLOWED_ACE *)hdr;
			const ACCESS_MASK readish = FILE_READ_DATA | GENERIC_READ | GENERIC_ALL;
			if (!(ace->Mask & readish))
				continue;
			if (!sid_is_private((PSID)&ace->SidStart, owner)) {
				m = 0644;
				break;
			}
		}
	}
	LocalFree(sd);
	*mode = m;
	return 0;
}

/* ------------------------------------------------------- default paths */

/* A known folder as UTF-8 (malloc'd), or NULL. */
static char *known_folder(REFKNOWNFOLDERID id)
{
	PWSTR w = NULL;
	char *s = NULL;
	if (SHGetKnownFolderPath(id, KF_FLAG_DONT_VERIFY, NULL, &w) == S_OK && w)
		s = sw_win_wide_to_utf8(w, -1);
	CoTaskMemFree(w);
	return s;
}

static char *join2(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 2);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	size_t o = la;
	if (la && !is_sep(a[la - 1]))
		s[o++] = '\\';
	memcpy(s + o, b, lb + 1);
	return s;
}

static const char *program_data(void)
{
	static char *pd;
	if (!pd) {
		pd = known_folder(&FOLDERID_ProgramData);
		if (!pd)
			pd = xstrdup("C:\\ProgramData");
	}
	return pd ? pd : "C:\\ProgramData";
}

/* %ProgramData%\signwatch\rel, computed once per name. */
static const char *data_path(char **slot, const char *rel)
{
	if (!*slot) {
		char *base = join2(program_data(), "signwatch");
		*slot = base ? join2(base, rel) : NULL;
		free(base);
	}
	return *slot;
}

/* %ProgramData%\signwatch gets a protected DACL: full control for SYSTEM
 * and Administrators only, inherited by what is created inside. The files
 * are created owner-only already (private_sddl), but the folder itself
 * would inherit ProgramData's ACL, under which Users may list it and
 * create files and folders in it (a planted rules\ or logs\ entry, a
 * hard link). Existing children with inherited ACEs are updated by
 * SetNamedSecurityInfoW; those with a protected DACL are left as they are.
 * Called by service_windows.c: at every service start, at install and from
 * the MSI's set-recovery action (after its configure action). */
static const wchar_t data_dir_sddl[] = L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

sw_err sw_win_protect_data_dir(char *why, size_t n)
{
	char *dir = join2(program_data(), "signwatch");
	if (!dir)
		return SW_ERR_NOMEM;
	DWORD e = ERROR_SUCCESS;
	wchar_t *w = NULL;
	PSECURITY_DESCRIPTOR sd = NULL;
	PACL dacl = NULL;
	BOOL present = FALSE, defaulted = FALSE;
	if (sw_plat_mkdirs(dir) != SW_OK)
		e = GetLastError() ? GetLastError() : ERROR_PATH_NOT_FOUND;
	else if (!(w = path_to_wide(dir)))
		e = ERROR_INVALID_NAME;
	else if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(data_dir_sddl, SDDL_REVISION_1, &sd,
	                                                               NULL) ||
	         !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted))
		e = GetLastError();
	else if (!present || !dacl)
		e = ERROR_INVALID_SECURITY_DESCR;
	else
		e = SetNamedSecurityInfoW(w, SE_FILE_OBJECT,
		                          DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
		                          NULL, NULL, dacl, NULL);
	if (e != ERROR_SUCCESS) {
		char msg[256];
		sw_win_strerror(e, msg, sizeof(msg));
		snprintf(why, n, "securing %s (SYSTEM and Administrators only): %s", dir, msg);
	}
	if (sd)
		LocalFree(sd);
	free(w);
	free(dir);
	return e == ERROR_SUCCESS ? SW_OK : SW_ERR_IO;
}

const char *sw_plat_default_store(void)
{
	static char *p;
	const char *r = data_path(&p, "signwatch.db");
	return r ? r : "C:\\ProgramData\\signwatch\\signwatch.db";
}

const char *sw_plat_default_config(void)
{
	static char *p;
	const char *r = data_path(&p, "signwatch.yaml");
	return r ? r : "C:\\ProgramData\\signwatch\\signwatch.yaml";
}

const char *sw_plat_default_rules(void)
{
	static char *p;
	const char *r = data_path(&p, "rules");
	return r ? r : "C:\\ProgramData\\signwatch\\rules";
}

const char *sw_plat_default_records(void)
{
	static char *p;
	const char *r = data_path(&p, "logs\\records.jsonl");
	return r ? r : "C:\\ProgramData\\signwatch\\logs\\records.jsonl";
}

const char *const *sw_plat_default_roots(size_t *n)
{
	static const char *roots[5];
	static size_t count;
	if (!count) {
		static const struct {
			const KNOWNFOLDERID *id;
			const char *fallback;
		} want[] = {
			{ &FOLDERID_UserProfiles, "C:\\Users" },
			{ &FOLDERID_ProgramData, "C:\\ProgramData" },
			{ &FOLDERID_ProgramFilesX64, "C:\\Program Files" },
			{ &FOLDERID_ProgramFilesX86, "C:\\Program Files (x86)" },
			{ NULL, "Temp" }, /* %SystemRoot%\Temp */
		};
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			char *s = NULL;
			if (want[i].id) {
				s = known_folder(want[i].id);
			} else {
				char *win = known_folder(&FOLDERID_Windows);
				s = join2(win ? win : "C:\\Windows", want[i].fallback);
				free(win);
			}
			roots[count++] = s ? s : want[i].fallback;
		}
		/* Two known folders can be one (Program Files on 32-bit). */
		if (count == 5 && _stricmp(roots[2], roots[3]) == 0)
			roots[3] = roots[4], count = 4;
	}
	*n = count;
	return roots;
}
