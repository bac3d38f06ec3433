/* YARA content rules: compile rule files with the Authenticode externals
 * declared, scan files on pool threads with one shared compiled rule set.
 * libyara does all the matching; this file only manages its objects,
 * turns its errors into sw_err and its messages into "file:line: ...". */
#include "yara_scan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yara.h>

#include "platform.h"

#include "builtin_yara.h" /* sw_builtin_yara[], generated from agent/yara/pulseway.yar */
#include "sw_attr.h"

/* Rule names longer than this are cut: YARA identifiers are at most 128
 * bytes anyway, and the name ends up in every record and log line. */
#define NAME_MAX_BYTES 128

/* The five externals every rule file may use, with their defaults. */
static const char *const ext_strings[] = { "signer", "issuer" };
static const char *const ext_bools[] = { "is_signed", "is_trusted", "digest_matches" };

/* yr_initialize/yr_finalize act on libyara's process-wide state (module
 * tables, the thread-local keys its scanners use), so they cannot live in
 * an object. This counter is the one global of the module: it lets several
 * rule sets exist at once (a SIGHUP reload builds the new set before the
 * old one is freed) without finalizing libyara under the survivor. It is
 * not locked because new/free run only on the thread that owns
 * configuration; scans never touch it. */
static unsigned yr_users;

struct sw_yara {
	YR_COMPILER *comp; /* collects the files that passed their check; NULL after finish */
	YR_RULES *rules;   /* after finish: read-only, shared by every scan */
	size_t n_ns;       /* namespaces handed out, one per added file */
	size_t n_rules;
	bool broken; /* comp saw an error: libyara forbids adding to it again */
};

/* strnlen is POSIX, not C11. */
static size_t bounded_len(const char *s, size_t max)
{
	const char *z = memchr(s, '\0', max);
	return z ? (size_t)(z - s) : max;
}

/* Append one line to why (separated by '\n' from what is there). */
#if defined(__GNUC__) || defined(__clang__)
SW_PRINTF(3, 4)
#endif
static void why_add(char *why, size_t n, const char *fmt, ...)
{
	if (!why || n == 0)
		return;
	size_t len = bounded_len(why, n - 1);
	if (len > 0 && len + 1 < n)
		why[len++] = '\n', why[len] = '\0';
	if (len + 1 >= n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why + len, n - len, fmt, ap);
	va_end(ap);
	/* Compiler messages quote pieces of the rule file; keep control bytes
	 * out of the terminal and the system log. */
	for (char *p = why + len; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* What the compiler callback writes into. */
typedef struct diag {
	const char *label; /* the path, or the name of an in-memory source */
	char *why;
	size_t n;
	int errors;
} diag;

static void on_compile_msg(int level, const char *file, int line, const YR_RULE *rule, const char *msg,
                           void *ud)
{
	(void)rule;
	diag *d = ud;
	/* Warnings (a slow string, say) do not stop a rule file from loading;
	 * only errors are reported, so why says exactly what must be fixed. */
	if (level != YARA_ERROR_LEVEL_ERROR)
		return;
	d->errors++;
	/* file is NULL for in-memory sources and names the included file when
	 * the error is inside an include. */
	why_add(d->why, d->n, "%s:%d: %s", file ? file : d->label, line, msg ? msg : "error");
}

static sw_err yr_to_sw(int rc)
{
	switch (rc) {
	case ERROR_SUCCESS: return SW_OK;
	case ERROR_INSUFFICIENT_MEMORY: return SW_ERR_NOMEM;
	case ERROR_COULD_NOT_OPEN_FILE:
	case ERROR_COULD_NOT_MAP_FILE: return SW_ERR_IO;
	case ERROR_SCAN_TIMEOUT:
	case ERROR_TOO_MANY_MATCHES:
	case ERROR_EXEC_STACK_OVERFLOW:
	case ERROR_TOO_MANY_RE_FIBERS: return SW_ERR_LIMIT;
	default: return SW_ERR_UNSUPPORTED;
	}
}

/* A compiler with the externals declared, as every file must see them. */
static sw_err compiler_new(YR_COMPILER **out)
{
	YR_COMPILER *c;
	if (yr_compiler_create(&c) != ERROR_SUCCESS)
		return SW_ERR_NOMEM;
	int rc = ERROR_SUCCESS;
	for (size_t i = 0; rc == ERROR_SUCCESS && i < sizeof ext_strings / sizeof *ext_strings; i++)
		rc = yr_compiler_define_string_variable(c, ext_strings[i], "");
	for (size_t i = 0; rc == ERROR_SUCCESS && i < sizeof ext_bools / sizeof *ext_bools; i++)
		rc = yr_compiler_define_boolean_variable(c, ext_bools[i], 0);
	if (rc != ERROR_SUCCESS) {
		yr_compiler_destroy(c);
		return SW_ERR_NOMEM;
	}
	*out = c;
	return SW_OK;
}

sw_err sw_yara_new(sw_yara **out)
{
	*out = NULL;
	sw_yara *y = calloc(1, sizeof *y);
	if (!y)
		return SW_ERR_NOMEM;
	if (yr_users == 0 && yr_initialize() != ERROR_SUCCESS) {
		free(y);
		return SW_ERR_NOMEM;
	}
	yr_users++;
	sw_err e = compiler_new(&y->comp);
	if (e != SW_OK) {
		sw_yara_free(y);
		return e;
	}
	*out = y;
	return SW_OK;
}

void sw_yara_free(sw_yara *y)
{
	if (!y)
		return;
	if (y->comp)
		yr_compiler_destroy(y->comp);
	if (y->rules)
		yr_rules_destroy(y->rules);
	free(y);
	if (yr_users > 0 && --yr_users == 0)
		yr_finalize();
}

/* One source: a path (src NULL) or a string. */
static int compile_into(YR_COMPILER *c, const char *path, const char *src, const char *ns, diag *d)
{
	yr_compiler_set_callback(c, on_compile_msg, d);
	if (src)
		return yr_compiler_add_string(c, src, ns);
	FILE *f = fopen(path, "rb");
	if (!f) {
		why_add(d->why, d->n, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	int errs = yr_compiler_add_file(c, f, ns, path);
	fclose(f);
	return errs;
}

/* libyara cannot recover a compiler after an error (later add calls
 * assert), yet one bad file in a folder must not lose the good ones. So
 * each source is compiled first in a throw-away compiler, and only a source
 * that compiled there is added to the real one. Each file gets its own
 * namespace, so nothing in one file (a rule name) can clash with another
 * and make the second compile fail where the check passed; only a file
 * rewritten between the two reads can, and that marks the set broken. */
static sw_err add_source(sw_yara *y, const char *label, const char *path, const char *src, char *why,
                         size_t n)
{
	if (why && n)
		why[0] = '\0';
	if (!y->comp)
		return SW_ERR_USAGE;
	if (y->broken)
		return SW_ERR_RULE;
	char ns[32];
	snprintf(ns, sizeof ns, "sw%zu", y->n_ns);

	YR_COMPILER *check;
	sw_err e = compiler_new(&check);
	if (e != SW_OK)
		return e;
	diag d = { label, why, n, 0 };
	int errs = compile_into(check, path, src, ns, &d);
	yr_compiler_destroy(check);
	if (errs < 0)
		return SW_ERR_IO;
	if (errs > 0 || d.errors > 0) {
		if (d.errors == 0)
			why_add(why, n, "%s: does not compile", label);
		return SW_ERR_RULE;
	}

	d.errors = 0;
	errs = compile_into(y->comp, path, src, ns, &d);
	y->n_ns++;
	if (errs < 0)
		return SW_ERR_IO; /* gone before the second read: comp untouched */
	if (errs > 0 || d.errors > 0) {
		y->broken = true;
		if (d.errors == 0)
			why_add(why, n, "%s: changed while it was loaded", label);
		return SW_ERR_RULE;
	}
	return SW_OK;
}

sw_err sw_yara_add_file(sw_yara *y, const char *path, char *why, size_t n)
{
	return add_source(y, path, path, NULL, why, n);
}

sw_err sw_yara_add_string(sw_yara *y, const char *label, const char *src, char *why, size_t n)
{
	return add_source(y, label ? label : "<string>", NULL, src, why, n);
}

sw_err sw_yara_add_builtin(sw_yara *y, char *why, size_t n)
{
	return add_source(y, "pulseway.yar (built in)", NULL, sw_builtin_yara, why, n);
}

static bool is_rule_file(const char *name)
{
	/* Hidden files are skipped: editors' backups and macOS "._x.yar"
	 * AppleDouble files would otherwise be compiled as rules. */
	if (name[0] == '.')
		return false;
	const char *dot = strrchr(name, '.');
	if (!dot)
		return false;
	/* Case-insensitive: on Windows "RULES.YAR" is the same file name. */
	char ext[6] = { 0 };
	size_t k = strlen(dot + 1);
	if (k == 0 || k >= sizeof ext)
		return false;
	for (size_t i = 0; i < k; i++)
		ext[i] = (char)(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] + 32 : dot[1 + i]);
	return !strcmp(ext, "yar") || !strcmp(ext, "yara");
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

sw_err sw_yara_add_folder(sw_yara *y, const char *dir, char *why, size_t n)
{
	if (why && n)
		why[0] = '\0';
	char **names;
	size_t nn;
	sw_err e = sw_plat_list_dir(dir, &names, &nn);
	if (e != SW_OK) {
		sw_yara_free_matches(names, nn);
		why_add(why, n, "%s: cannot list the folder", dir);
		return e;
	}
	/* Sorted so that load order, and so messages, are the same on every
	 * machine whatever order the file system lists. */
	if (nn > 1)
		qsort(names, nn, sizeof *names, cmp_names);

	size_t dl = strlen(dir);
	bool sep = dl > 0 && dir[dl - 1] != '/' && dir[dl - 1] != '\\';
	sw_err ret = SW_OK;
	char one[1024];
	for (size_t i = 0; i < nn; i++) {
		if (!is_rule_file(names[i]))
			continue;
		size_t pl = dl + 1 + strlen(names[i]) + 1;
		char *path = malloc(pl);
		if (!path) {
			ret = SW_ERR_NOMEM;
			break;
		}
		snprintf(path, pl, "%s%s%s", dir, sep ? "/" : "", names[i]);
		if (sw_plat_is_dir(path) != 0) { /* a folder named x.yar */
			free(path);
			continue;
		}
		e = add_source(y, path, path, NULL, one, sizeof one);
		free(path);
		if (e == SW_OK)
			continue;
		why_add(why, n, "%s", one);
		if (e == SW_ERR_NOMEM || e == SW_ERR_USAGE || y->broken) {
			ret = e;
			break;
		}
		/* A file that does not compile outranks one that cannot be read:
		 * both are bad input, SW_ERR_RULE says which kind to fix. */
		if (ret == SW_OK || e == SW_ERR_RULE)
			ret = e;
	}
	sw_yara_free_matches(names, nn);
	return ret;
}

sw_err sw_yara_finish(sw_yara *y)
{
	if (!y->comp)
		return SW_ERR_USAGE;
	if (y->broken)
		return SW_ERR_RULE;
	YR_RULES *r;
	int rc = yr_compiler_get_rules(y->comp, &r);
	if (rc != ERROR_SUCCESS)
		return rc == ERROR_INSUFFICIENT_MEMORY ? SW_ERR_NOMEM : SW_ERR_RULE;
	/* The compiled rules no longer need the compiler. */
	yr_compiler_destroy(y->comp);
	y->comp = NULL;
	y->rules = r;
	const YR_RULE *rule;
	yr_rules_foreach(r, rule) y->n_rules++;
	return SW_OK;
}

size_t sw_yara_rule_count(const sw_yara *y) { return y->n_rules; }

void sw_yara_free_matches(char **matches, size_t n)
{
	if (!matches)
		return;
	for (size_t i = 0; i < n; i++)
		free(matches[i]);
	free(matches);
}

/* One scan's results; lives on the scanning thread's stack. */
typedef struct hits {
	char **v;
	size_t n;
	bool limited; /* a cap was hit: the verdict is partial */
	bool nomem;
} hits;

static int on_scan_msg(YR_SCAN_CONTEXT *ctx, int msg, void *data, void *ud)
{
	(void)ctx;
	hits *h = ud;
	if (msg == CALLBACK_MSG_TOO_MANY_MATCHES) {
		/* libyara stops recording that string's matches and goes on; the
		 * rules using it may be judged on a truncated count. */
		h->limited = true;
		return CALLBACK_CONTINUE;
	}
	/* Console-module output and module data requests are ignored: a rule
	 * file must not write to the agent's stdout. */
	if (msg != CALLBACK_MSG_RULE_MATCHING)
		return CALLBACK_CONTINUE;
	const YR_RULE *rule = data;
	const char *name = rule->identifier;
	/* The same name can match from two files (two namespaces). */
	for (size_t i = 0; i < h->n; i++)
		if (!strncmp(h->v[i], name, NAME_MAX_BYTES))
			return CALLBACK_CONTINUE;
	if (h->n == SW_YARA_MAX_MATCHES) {
		/* Enough to act on; the rest cannot change the verdict's use. */
		h->limited = true;
		return CALLBACK_ABORT;
	}
	if (!h->v && !(h->v = calloc(SW_YARA_MAX_MATCHES, sizeof *h->v))) {
		h->nomem = true;
		return CALLBACK_ERROR;
	}
	size_t len = bounded_len(name, NAME_MAX_BYTES);
	char *s = sw_utf8_sanitize(name, len);
	if (!s) {
		h->nomem = true;
		return CALLBACK_ERROR;
	}
	h->v[h->n++] = s;
	return CALLBACK_CONTINUE;
}

static sw_err scanner_new(const sw_yara *y, const sw_record *rec, int timeout_s, hits *h, YR_SCANNER **out)
{
	if (!y->rules)
		return SW_ERR_USAGE;
	YR_SCANNER *s;
	/* A scanner holds per-scan state (matches, external values) and is not
	 * thread-safe; the compiled rules it points to are read-only. One per
	 * call lets any pool thread scan with the same YR_RULES at once. */
	if (yr_scanner_create(y->rules, &s) != ERROR_SUCCESS)
		return SW_ERR_NOMEM;
	yr_scanner_set_callback(s, on_scan_msg, h);
	yr_scanner_set_flags(s, SCAN_FLAGS_REPORT_RULES_MATCHING);
	if (timeout_s > 0)
		yr_scanner_set_timeout(s, timeout_s);
	const char *signer = rec && rec->signer ? rec->signer : "";
	const char *issuer = rec && rec->issuer ? rec->issuer : "";
	int rc = yr_scanner_define_string_variable(s, "signer", signer);
	if (rc == ERROR_SUCCESS)
		rc = yr_scanner_define_string_variable(s, "issuer", issuer);
	if (rc == ERROR_SUCCESS)
		rc = yr_scanner_define_boolean_variable(s, "is_signed", rec && rec->is_signed);
	/* NULL (not computed, --signer-only) is false: a rule that asks
	 * "is_trusted" must not be satisfied by an unknown. */
	if (rc == ERROR_SUCCESS)
		rc = yr_scanner_define_boolean_variable(s, "is_trusted", rec && rec->is_trusted == SW_YES);
	if (rc == ERROR_SUCCESS)
		rc = yr_scanner_define_boolean_variable(s, "digest_matches",
		                                        rec && rec->digest_matches == SW_YES);
	if (rc != ERROR_SUCCESS) {
		yr_scanner_destroy(s);
		return SW_ERR_NOMEM;
	}
	*out = s;
	return SW_OK;
}

/* Turn a finished scan into the caller's verdict. */
static sw_err scan_result(int rc, hits *h, char ***matches, size_t *n)
{
	sw_err e = h->nomem ? SW_ERR_NOMEM : yr_to_sw(rc);
	if (e == SW_OK && h->limited)
		e = SW_ERR_LIMIT;
	if (e != SW_OK && e != SW_ERR_LIMIT) {
		sw_yara_free_matches(h->v, h->n);
		return e;
	}
	*matches = h->v;
	*n = h->n;
	return e;
}

sw_err sw_yara_scan_mem(const sw_yara *y, const void *data, size_t len, const sw_record *rec, int timeout_s,
                        char ***matches, size_t *n)
{
	*matches = NULL;
	*n = 0;
	hits h = { 0 };
	YR_SCANNER *s;
	sw_err e = scanner_new(y, rec, timeout_s, &h, &s);
	if (e != SW_OK)
		return e;
	int rc = yr_scanner_scan_mem(s, len ? data : (const uint8_t *)"", len);
	yr_scanner_destroy(s);
	return scan_result(rc, &h, matches, n);
}

static bool same_file(const sw_file_id *a, const sw_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

/* Why libyara opens the file by name (yr_scanner_scan_file) rather than
 * being handed bytes or our descriptor:
 *  - it maps the file, so a 512 MB executable costs no heap (reading it into
 *    memory for yr_scanner_scan_mem would break the agent's memory bound,
 *    and the pe module needs the file as one block, so it cannot be fed in
 *    chunks through yr_scanner_scan_mem_blocks);
 *  - a file truncated under the mapping raises SIGBUS, which libyara's own
 *    try/catch turns into ERROR_COULD_NOT_MAP_FILE (SW_ERR_IO), not a crash;
 *  - yr_scanner_scan_fd takes an int on POSIX and a HANDLE on Windows, and
 *    platform.h does not expose the descriptor behind sw_file.
 * libyara's open follows symbolic links and would block on a FIFO, so the
 * path is first opened through the platform layer (no-follow, non-blocking)
 * and must be a regular file, and the same file (device, inode, size,
 * times) must still be there afterwards, or the verdict is dropped: the
 * matches then belong to the file the record describes. */
sw_err sw_yara_scan_file(const sw_yara *y, const char *path, const sw_record *rec, int timeout_s,
                         char ***matches, size_t *n)
{
	*matches = NULL;
	*n = 0;
	if (!y->rules)
		return SW_ERR_USAGE;
	char why[256];
	sw_file *f;
	sw_err e = sw_plat_file_open(path, &f, why, sizeof why);
	if (e != SW_OK)
		return e;
	if (!sw_plat_file_is_regular(f)) {
		sw_plat_file_close(f);
		return SW_ERR_UNSUPPORTED;
	}
	sw_file_id before, after;
	bool known = sw_plat_file_identity(f, &before); /* else not compared, as before */

	hits h = { 0 };
	YR_SCANNER *s;
	e = scanner_new(y, rec, timeout_s, &h, &s);
	if (e != SW_OK) {
		sw_plat_file_close(f);
		return e;
	}
	int rc = yr_scanner_scan_file(s, path);
	yr_scanner_destroy(s);
	sw_plat_file_close(f);
	e = scan_result(rc, &h, matches, n);
	if (e != SW_OK && e != SW_ERR_LIMIT)
		return e;

	sw_file *g;
	bool same = sw_plat_file_open(path, &g, why, sizeof why) == SW_OK;
	if (same) {
		same = !known || (sw_plat_file_identity(g, &after) && same_file(&before, &after));
		sw_plat_file_close(g);
	}
	if (!same) {
		sw_yara_free_matches(*matches, *n);
		*matches = NULL;
		*n = 0;
		return SW_ERR_IO;
	}
	return e;
}
