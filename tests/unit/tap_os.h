/* The few OS services the unit tests themselves need, for POSIX and
 * Windows: a fresh temporary folder, removing a tree, files and folders,
 * an in-memory FILE * (open_memstream), a monotonic clock, listing a
 * folder and a symbolic link. Test code only: the product goes through
 * platform/platform.h. Paths are UTF-8; on Windows every call uses the
 * wide API. TAP_SEP is the separator to join paths with. */
#ifndef SW_TAP_OS_H
#define SW_TAP_OS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <sddl.h>
#define TAP_SEP "\\"
#ifndef SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE
#define SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE 0x2
#endif
#else
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define TAP_SEP "/"
#endif

#ifdef _WIN32
/* UTF-8 to a malloc'd wide string (NULL on bad UTF-8). */
static inline wchar_t *tap_os_wide(const char *s)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
	if (n <= 0)
		return NULL;
	wchar_t *w = malloc((size_t)n * sizeof(wchar_t));
	if (w)
		MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
	return w;
}

/* Wide to UTF-8 into out; false when it does not fit. */
static inline bool tap_os_narrow(const wchar_t *w, char *out, size_t n)
{
	int k = WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)n, NULL, NULL);
	return k > 0;
}
#endif

/* Make a new, empty folder named PREFIX + random characters in parent
 * (NULL: $TMPDIR or /tmp; on Windows the user's temporary folder) and put
 * its path in out. 0 on success.
 *
 * On Windows the folder's ACL lets Everyone read what is created in it
 * (inherited), like a umask of 022 on POSIX: so a file that comes out
 * owner-only was made so by the code under test, not by the folder. */
static inline int tap_mkdtemp(char *out, size_t n, const char *parent, const char *prefix)
{
#ifdef _WIN32
	wchar_t wbase[MAX_PATH + 1];
	if (parent) {
		wchar_t *w = tap_os_wide(parent);
		if (!w || wcslen(w) + 2 > MAX_PATH) {
			free(w);
			return -1;
		}
		wcscpy(wbase, w);
		free(w);
		size_t l = wcslen(wbase);
		if (l && wbase[l - 1] != L'\\' && wbase[l - 1] != L'/')
			wcscat(wbase, L"\\");
	} else if (!GetTempPathW(MAX_PATH + 1, wbase)) {
		return -1;
	}
	char base[4 * MAX_PATH];
	if (!tap_os_narrow(wbase, base, sizeof base))
		return -1;
	PSECURITY_DESCRIPTOR sd = NULL;
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
	            L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)(A;OICI;FR;;;WD)", SDDL_REVISION_1,
	            &sd, NULL))
		return -1;
	SECURITY_ATTRIBUTES sa = { sizeof sa, sd, FALSE };
	static const char az[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint64_t seed = (uint64_t)GetTickCount64() ^ ((uint64_t)GetCurrentProcessId() << 32);
	LARGE_INTEGER qpc;
	QueryPerformanceCounter(&qpc);
	seed ^= (uint64_t)qpc.QuadPart * 0x9e3779b97f4a7c15ull;
	int rc = -1;
	for (int attempt = 0; attempt < 100 && rc != 0; attempt++) {
		char name[16];
		for (int i = 0; i < 8; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			name[i] = az[(seed >> 33) % (sizeof az - 1)];
		}
		name[8] = 0;
		if ((size_t)snprintf(out, n, "%s%s%s", base, prefix, name) >= n)
			break;
		wchar_t *w = tap_os_wide(out);
		if (!w)
			break;
		if (CreateDirectoryW(w, &sa))
			rc = 0;
		else if (GetLastError() != ERROR_ALREADY_EXISTS)
			attempt = 100;
		free(w);
	}
	LocalFree(sd);
	return rc;
#else
	if (!parent)
		parent = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if ((size_t)snprintf(out, n, "%s/%sXXXXXX", parent, prefix) >= n)
		return -1;
	return mkdtemp(out) ? 0 : -1;
#endif
}

/* mkdir, owner-only on POSIX. 0 on success (also when it exists). */
static inline int tap_mkdir(const char *path)
{
#ifdef _WIN32
	wchar_t *w = tap_os_wide(path);
	int rc = w && (CreateDirectoryW(w, NULL) || GetLastError() == ERROR_ALREADY_EXISTS) ? 0 : -1;
	free(w);
	return rc;
#else
	struct stat st;
	return mkdir(path, 0700) == 0 || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ? 0 : -1;
#endif
}

/* Remove a file (or a link). 0 on success. */
static inline int tap_unlink(const char *path)
{
#ifdef _WIN32
	wchar_t *w = tap_os_wide(path);
	if (!w)
		return -1;
	BOOL okd = DeleteFileW(w);
	if (!okd && GetLastError() == ERROR_ACCESS_DENIED) { /* read-only */
		SetFileAttributesW(w, FILE_ATTRIBUTE_NORMAL);
		okd = DeleteFileW(w);
	}
	free(w);
	return okd ? 0 : -1;
#else
	return unlink(path);
#endif
}

/* Remove an empty folder. 0 on success. */
static inline int tap_rmdir(const char *path)
{
#ifdef _WIN32
	wchar_t *w = tap_os_wide(path);
	int rc = w && RemoveDirectoryW(w) ? 0 : -1;
	free(w);
	return rc;
#else
	return rmdir(path);
#endif
}

/* 1 a folder (following a link), 0 not or missing. */
static inline int tap_is_dir(const char *path)
{
#ifdef _WIN32
	wchar_t *w = tap_os_wide(path);
	DWORD a = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
	free(w);
	return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY) ? 1 : 0;
#else
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 1 : 0;
#endif
}

/* Names in a folder (not . or ..), malloc'd array of malloc'd UTF-8
 * strings, in the order the OS gives them. 0 on success. */
static inline int tap_list_dir(const char *dir, char ***names, size_t *count)
{
	char **v = NULL;
	size_t k = 0, cap = 0;
	int bad = 0;
	*names = NULL;
	*count = 0;
#ifdef _WIN32
	size_t dl = strlen(dir);
	char *pat = malloc(dl + 3);
	if (!pat)
		return -1;
	snprintf(pat, dl + 3, "%s\\*", dir);
	wchar_t *w = tap_os_wide(pat);
	free(pat);
	if (!w)
		return -1;
	WIN32_FIND_DATAW fd;
	HANDLE h = FindFirstFileW(w, &fd);
	free(w);
	if (h == INVALID_HANDLE_VALUE)
		return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : -1;
	do {
		const wchar_t *s = fd.cFileName;
		if (s[0] == L'.' && (!s[1] || (s[1] == L'.' && !s[2])))
			continue;
		char name[4 * MAX_PATH];
		if (!tap_os_narrow(s, name, sizeof name) || !sw_strv_push(&v, &k, &cap, name)) {
			bad = 1;
			break;
		}
	} while (FindNextFileW(h, &fd));
	FindClose(h);
#else
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!sw_strv_push(&v, &k, &cap, e->d_name)) {
			bad = 1;
			break;
		}
	}
	closedir(d);
#endif
	if (bad) {
		sw_strv_free(&v, &k);
		return -1;
	}
	*names = v;
	*count = k;
	return 0;
}

/* Remove path and, when it is a folder, everything in it. Links (and
 * Windows junctions) are removed, never followed. 0 when all is gone. */
static inline int tap_rmtree(const char *path)
{
#ifdef _WIN32
	wchar_t *w = tap_os_wide(path);
	DWORD a = w ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
	free(w);
	if (a == INVALID_FILE_ATTRIBUTES)
		return -1;
	bool dir = a & FILE_ATTRIBUTE_DIRECTORY, link = a & FILE_ATTRIBUTE_REPARSE_POINT;
#else
	struct stat st;
	if (lstat(path, &st) != 0)
		return -1;
	bool dir = S_ISDIR(st.st_mode), link = false;
#endif
	if (!dir)
		return tap_unlink(path);
	int rc = 0;
	if (!link) {
		char **names;
		size_t n;
		if (tap_list_dir(path, &names, &n) != 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(path) + strlen(names[i]) + 2;
			char *p = malloc(len);
			if (p)
				snprintf(p, len, "%s" TAP_SEP "%s", path, names[i]);
			if (!p || tap_rmtree(p) != 0)
				rc = -1;
			free(p);
			free(names[i]);
		}
		free(names);
	}
	return tap_rmdir(path) == 0 ? rc : -1;
}

/* Write len bytes to path (created or truncated). 0 on success. */
static inline int tap_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, len, f);
	return fclose(f) == 0 && w == len ? 0 : -1;
}

/* Can path be opened for reading? */
static inline bool tap_readable(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f)
		fclose(f);
	return f != NULL;
}

/* A symbolic link at link to target (a file). 0 when the link is there
 * (checked: wine's CreateSymbolicLinkW succeeds without making one); -1
 * when this system or user cannot make one (Windows without the
 * privilege or developer mode, wine). */
static inline int tap_symlink(const char *target, const char *link)
{
#ifdef _WIN32
	wchar_t *wt = tap_os_wide(target), *wl = tap_os_wide(link);
	int rc = -1;
	if (wt && wl && CreateSymbolicLinkW(wl, wt, SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE)) {
		DWORD a = GetFileAttributesW(wl);
		rc = a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_REPARSE_POINT) ? 0 : -1;
	}
	free(wt);
	free(wl);
	return rc;
#else
	struct stat st;
	return symlink(target, link) == 0 && lstat(link, &st) == 0 && S_ISLNK(st.st_mode) ? 0 : -1;
#endif
}

/* An in-memory FILE *, as open_memstream: write to tap_mem_open's stream,
 * then tap_mem_close gives what was written, NUL-terminated (malloc'd;
 * NULL on an error). On Windows the stream is a temporary file deleted
 * when closed, read back at close. */
typedef struct tap_mem {
	FILE *f;
	char *buf;
	size_t len;
} tap_mem;

static inline FILE *tap_mem_open(tap_mem *m)
{
	memset(m, 0, sizeof *m);
#ifdef _WIN32
	wchar_t dir[MAX_PATH + 1], name[MAX_PATH + 1];
	/* D: deleted when closed, T: kept in memory when it can be. */
	if (GetTempPathW(MAX_PATH + 1, dir) && GetTempFileNameW(dir, L"swm", 0, name))
		m->f = _wfopen(name, L"w+bTD");
	if (!m->f)
		m->f = tmpfile();
#else
	m->f = open_memstream(&m->buf, &m->len);
#endif
	return m->f;
}

static inline char *tap_mem_close(tap_mem *m, size_t *len)
{
	if (!m->f)
		return NULL;
#ifdef _WIN32
	char *b = NULL;
	long n = -1;
	if (fflush(m->f) == 0 && fseek(m->f, 0, SEEK_END) == 0)
		n = ftell(m->f);
	if (n >= 0 && (b = malloc((size_t)n + 1)) != NULL) {
		rewind(m->f);
		if (fread(b, 1, (size_t)n, m->f) != (size_t)n) {
			free(b);
			b = NULL;
		} else {
			b[n] = 0;
		}
	}
	fclose(m->f);
	m->buf = b;
	m->len = b ? (size_t)n : 0;
#else
	if (fclose(m->f) != 0) {
		free(m->buf);
		m->buf = NULL;
		m->len = 0;
	}
#endif
	m->f = NULL;
	if (len)
		*len = m->len;
	return m->buf;
}

/* Seconds on a monotonic clock, for timings that are printed. */
static inline double tap_now_s(void)
{
#ifdef _WIN32
	LARGE_INTEGER f, c;
	QueryPerformanceFrequency(&f);
	QueryPerformanceCounter(&c);
	return (double)c.QuadPart / (double)f.QuadPart;
#else
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
#endif
}

#endif
