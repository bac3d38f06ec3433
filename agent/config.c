/* signwatch: the agent's configuration. See config.h and docs/CONFIG.md.
 *
 * Two passes: libyaml's event API builds a small tree (with an explicit
 * stack and a depth cap, so a hostile file cannot exhaust ours, and with
 * aliases refused, so nothing expands), then the tree is checked against a
 * table of keys. The second pass never stops at the first problem: every
 * error is collected (up to SW_CONFIG_MAX_ERRORS), each naming file,
 * line:col, key path and the fix, because an admin fixing a fleet's file
 * one error per deployment round is the failure we want to avoid. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "platform.h"
#include "text.h"

#if defined(__GNUC__) || defined(__clang__)
#include "sw_attr.h"
#else
#define SW_PRINTF(f, a)
#endif

/* What differs per OS comes from platform.h: default roots, the default
 * file output, and path syntax. */
#define PATH_FLAGS (sw_plat_windows_paths() ? SW_GLOB_WINDOWS : 0u)

#define MAX_DEPTH 16  /* the schema needs 4; more is a mistake or an attack */
#define MAX_LIST 1024 /* items in any list */
#define MAX_OUTPUTS 16
#define MAX_TEXT 4096 /* bytes in any one value */
#define SHOW_MAX 60   /* bytes of a bad value echoed in a message */

/* ---------- errors ---------- */

typedef struct cx {
	const char *file;
	const sw_config_env *env;
	char *msg;
	size_t len, cap;
	int n;
	bool nomem;
	int mode_rc; /* file_mode's answer, asked once, when a secret is found */
	unsigned mode;
	bool mode_asked;
} cx;

static void append(cx *x, const char *s, size_t n)
{
	if (x->nomem)
		return;
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 1024;
		while (cap < x->len + n + 1)
			cap *= 2;
		char *m = realloc(x->msg, cap);
		if (!m) {
			x->nomem = true;
			return;
		}
		x->msg = m;
		x->cap = cap;
	}
	memcpy(x->msg + x->len, s, n);
	x->len += n;
	x->msg[x->len] = '\0';
}

/* One error: "FILE:LINE:COL: PATH: message". m NULL = no position (the
 * file as a whole); path NULL or "" = the document as a whole. */
static SW_PRINTF(4, 5) void emit(cx *x, const yaml_mark_t *m, const char *path, const char *fmt, ...)
{
	x->n++;
	if (x->n > SW_CONFIG_MAX_ERRORS)
		return;
	char line[1536];
	int k;
	if (m)
		k = snprintf(line, sizeof line, "%s:%ld:%ld: ", x->file, (long)m->line + 1,
		             (long)m->column + 1);
	else
		k = snprintf(line, sizeof line, "%s: ", x->file);
	if (k < 0 || (size_t)k >= sizeof line)
		k = 0;
	if (path && *path) {
		int j = snprintf(line + k, sizeof line - (size_t)k, "%s: ", path);
		if (j > 0 && (size_t)j < sizeof line - (size_t)k)
			k += j;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
	va_end(ap);
	append(x, line, strlen(line));
	append(x, "\n", 1);
}

/* A value as it may be quoted in a message: escaped, cut at SHOW_MAX.
 * Never called on a secret. */
static const char *show(const char *s, size_t n, char *out, size_t outn)
{
	size_t o = 0;
	out[o++] = '\'';
	for (size_t i = 0; i < n && o + 8 < outn; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= SHOW_MAX) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7F) {
			o += (size_t)snprintf(out + o, outn - o, "\\x%02X", c);
		} else if (c == '\'' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

/* ---------- the tree ---------- */

enum { N_SCALAR, N_SEQ, N_MAP };

typedef struct node {
	int kind;
	yaml_mark_t mark;
	char *s; /* scalar text, NUL-terminated (may hold NULs: len counts) */
	size_t len;
	bool plain;        /* unquoted: may be null, a bool or a number */
	struct node **kid; /* N_MAP: key, value, key, value, ... */
	size_t n, cap;
} node;

static void node_free(node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kid[i]); /* depth <= MAX_DEPTH */
	free(n->kid);
	free(n->s);
	free(n);
}

static bool node_add(node *parent, node *k)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		node **v = realloc(parent->kid, cap * sizeof *v);
		if (!v)
			return false;
		parent->kid = v;
		parent->cap = cap;
	}
	parent->kid[parent->n++] = k;
	return true;
}

static void syntax_error(cx *x, const yaml_parser_t *y)
{
	if (y->error == YAML_MEMORY_ERROR) {
		x->nomem = true;
		return;
	}
	const char *problem = y->problem ? y->problem : "malformed YAML";
	char ctx[128] = "";
	if (y->context)
		snprintf(ctx, sizeof ctx, " (%s at line %ld)", y->context, (long)y->context_mark.line + 1);
	const char *hint = "; check the indentation and quoting";
	if (strstr(problem, "cannot start any token") || strstr(problem, "tab"))
		hint = "; YAML indents with spaces, not tabs";
	else if (strstr(problem, "mapping values are not allowed"))
		hint = "; a value holding ': ' or starting with a special character must be quoted";
	else if (strstr(problem, "expected key") || strstr(problem, "expected <block end>"))
		hint = "; keys of one mapping must line up, and in a list item the keys after '- ' line up "
		       "with the first one";
	emit(x, &y->problem_mark, NULL, "YAML syntax error: %s%s%s", problem, ctx, hint);
}

/* Parse buf into a tree. *root is NULL for an empty stream or a null
 * document. False on any error (reported). */
static bool parse_tree(cx *x, const char *buf, size_t len, node **root)
{
	*root = NULL;
	yaml_parser_t y;
	if (!yaml_parser_initialize(&y)) {
		x->nomem = true;
		return false;
	}
	/* No yaml_parser_set_encoding(): libyaml then skips a UTF-8 BOM. */
	yaml_parser_set_input_string(&y, (const unsigned char *)buf, len);
	node *stack[MAX_DEPTH];
	int sp = 0, docs = 0;
	bool ok = true, done = false;
	while (ok && !done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&y, &ev)) {
			syntax_error(x, &y);
			ok = false;
			break;
		}
		node *nn = NULL;
		const unsigned char *tag = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT: done = true; break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				emit(x, &ev.start_mark, NULL,
				     "a second YAML document ('---'); the configuration is one document, "
				     "remove "
				     "the separator and merge the keys");
				ok = false;
			}
			break;
		case YAML_ALIAS_EVENT:
			emit(x, &ev.start_mark, NULL,
			     "YAML aliases ('*name') are not supported here; write the value out");
			ok = false;
			break;
		case YAML_SCALAR_EVENT:
			tag = ev.data.scalar.tag;
			nn = calloc(1, sizeof *nn);
			if (nn) {
				nn->kind = N_SCALAR;
				nn->len = ev.data.scalar.length;
				nn->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
				nn->s = malloc(nn->len + 1);
				if (nn->s) {
					memcpy(nn->s, ev.data.scalar.value, nn->len);
					nn->s[nn->len] = '\0';
				}
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			tag = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
			                                           : ev.data.mapping_start.tag;
			nn = calloc(1, sizeof *nn);
			if (nn)
				nn->kind = ev.type == YAML_SEQUENCE_START_EVENT ? N_SEQ : N_MAP;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (sp > 0)
				sp--;
			break;
		default: break;
		}
		if (ok && nn) {
			nn->mark = ev.start_mark;
			bool attached = nn->kind == N_SCALAR && !nn->s ? false
			                : sp > 0                       ? node_add(stack[sp - 1], nn)
			                : !*root                       ? (*root = nn, true)
			                                               : false;
			if (!attached) {
				x->nomem = true;
				ok = false;
			} else {
				node *mine = nn;
				nn = NULL; /* the tree owns it now */
				if (tag) {
					emit(x, &ev.start_mark, NULL,
					     "YAML tags ('%.40s') are not used in this configuration; remove "
					     "the tag "
					     "(quote the value to make it text)",
					     (const char *)tag);
					ok = false;
				} else if (mine->kind != N_SCALAR) {
					if (sp >= MAX_DEPTH) {
						emit(x, &ev.start_mark, NULL, "nesting deeper than %d levels",
						     MAX_DEPTH);
						ok = false;
					} else {
						stack[sp++] = mine;
					}
				}
			}
		} else if (ok && (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
		                  ev.type == YAML_MAPPING_START_EVENT)) {
			x->nomem = true; /* calloc failed */
			ok = false;
		}
		node_free(nn);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&y);
	if (!ok) {
		node_free(*root);
		*root = NULL;
	}
	return ok;
}

/* ---------- scalars ---------- */

static bool is_null(const node *n)
{
	if (!n)
		return true;
	if (n->kind != N_SCALAR || !n->plain)
		return false;
	return n->len == 0 || !strcmp(n->s, "~") || !strcmp(n->s, "null") || !strcmp(n->s, "Null") ||
	       !strcmp(n->s, "NULL");
}

static const char *kind_name(const node *n)
{
	return n->kind == N_SEQ ? "a list" : n->kind == N_MAP ? "a mapping" : "text";
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* Overwrite a secret before freeing it, so it does not linger in freed heap
 * (core dumps, later allocations). volatile: the store must not be elided. */
static void wipe_free(char *s)
{
	if (!s)
		return;
	for (volatile char *p = s; *p; p++)
		*p = 0;
	free(s);
}

static void set_str(cx *x, char **dst, const char *s, size_t n)
{
	char *d = dupn(s, n);
	if (!d) {
		x->nomem = true;
		return;
	}
	free(*dst);
	*dst = d;
}

/* The node as text for path. secret: never quote it back. */
static bool want_text(cx *x, const node *v, const char *path, bool secret, const char *what)
{
	if (v->kind != N_SCALAR) {
		emit(x, &v->mark, path, "expected %s, got %s; write a single value", what, kind_name(v));
		return false;
	}
	if (v->len == 0) {
		emit(x, &v->mark, path, "expected %s, got an empty string; give a value or remove the key",
		     what);
		return false;
	}
	if (memchr(v->s, '\0', v->len) || v->len > MAX_TEXT) {
		emit(x, &v->mark, path, "expected %s of at most %d bytes without NUL characters", what,
		     MAX_TEXT);
		return false;
	}
	for (size_t i = 0; secret && i < v->len; i++) {
		unsigned char c = (unsigned char)v->s[i];
		if (c < 0x20 || c == 0x7F) {
			/* A line break in a bearer token would split an HTTP header. */
			emit(x, &v->mark, path,
			     "the secret contains a control character (a line break?); remove it");
			return false;
		}
	}
	return true;
}

static bool is_abs(const char *s)
{
	if (PATH_FLAGS & SW_GLOB_WINDOWS) {
		if (((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) && s[1] == ':' &&
		    (s[2] == '\\' || s[2] == '/'))
			return true;
		return s[0] == '\\' && s[1] == '\\' && s[2]; /* UNC */
	}
	return s[0] == '/';
}

static bool is_sep(unsigned char c, unsigned fl) { return c == '/' || ((fl & SW_GLOB_WINDOWS) && c == '\\'); }

/* An absolute path, without trailing separators (so "/home/" and "/home"
 * are one root). */
static bool want_abs(cx *x, const node *v, const char *path, char **dst)
{
	if (!want_text(x, v, path, false, "an absolute path"))
		return false;
	if (!is_abs(v->s)) {
		char b[SHOW_MAX * 4 + 16];
		emit(x, &v->mark, path,
		     "expected an absolute path, got %s; use an absolute path (starting with %s)",
		     show(v->s, v->len, b, sizeof b), (PATH_FLAGS & SW_GLOB_WINDOWS) ? "a drive, C:\\" : "/");
		return false;
	}
	size_t n = v->len;
	size_t keep = (PATH_FLAGS & SW_GLOB_WINDOWS) && v->s[1] == ':' ? 3 : 1;
	while (n > keep && is_sep((unsigned char)v->s[n - 1], PATH_FLAGS))
		n--;
	set_str(x, dst, v->s, n);
	return true;
}

static bool want_int(cx *x, const node *v, const char *path, long lo, long hi, int *dst)
{
	char b[SHOW_MAX * 4 + 16];
	if (v->kind != N_SCALAR) {
		emit(x, &v->mark, path, "expected an integer %ld..%ld, got %s", lo, hi, kind_name(v));
		return false;
	}
	if (!v->plain) {
		emit(x, &v->mark, path,
		     "expected an integer %ld..%ld, got the quoted text %s; remove the quotes", lo, hi,
		     show(v->s, v->len, b, sizeof b));
		return false;
	}
	const char *s = v->s;
	size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
	bool digits = v->len > i && v->len - i <= 12;
	for (size_t j = i; digits && j < v->len; j++)
		digits = s[j] >= '0' && s[j] <= '9';
	if (!digits) {
		emit(x, &v->mark, path, "expected an integer %ld..%ld, got %s", lo, hi,
		     show(s, v->len, b, sizeof b));
		return false;
	}
	if (s[i] == '0' && v->len - i > 1) {
		/* YAML 1.1 reads 0300 as octal: refuse the ambiguity. */
		emit(x, &v->mark, path, "expected a decimal integer %ld..%ld, got %s; drop the leading zeros",
		     lo, hi, show(s, v->len, b, sizeof b));
		return false;
	}
	long long val = strtoll(s, NULL, 10);
	if (val < lo || val > hi) {
		emit(x, &v->mark, path, "expected an integer %ld..%ld, got %lld", lo, hi, val);
		return false;
	}
	*dst = (int)val;
	return true;
}

static bool want_bool(cx *x, const node *v, const char *path, bool *dst)
{
	char b[SHOW_MAX * 4 + 16];
	if (v->kind == N_SCALAR && v->plain) {
		if (!strcmp(v->s, "true") || !strcmp(v->s, "True") || !strcmp(v->s, "TRUE")) {
			*dst = true;
			return true;
		}
		if (!strcmp(v->s, "false") || !strcmp(v->s, "False") || !strcmp(v->s, "FALSE")) {
			*dst = false;
			return true;
		}
	}
	if (v->kind != N_SCALAR)
		emit(x, &v->mark, path, "expected true or false, got %s", kind_name(v));
	else
		emit(x, &v->mark, path, "expected true or false (unquoted), got %s",
		     show(v->s, v->len, b, sizeof b));
	return false;
}

/* Index of v in names (NULL-terminated), or -1 (reported). */
static int want_enum(cx *x, const node *v, const char *path, const char *const *names)
{
	char list[256] = "", b[SHOW_MAX * 4 + 16];
	for (size_t i = 0; names[i]; i++) {
		if (v->kind == N_SCALAR && !strcmp(v->s, names[i]))
			return (int)i;
		size_t l = strlen(list);
		snprintf(list + l, sizeof list - l, "%s%s", i ? (names[i + 1] ? ", " : " or ") : "",
		         names[i]);
	}
	if (v->kind != N_SCALAR)
		emit(x, &v->mark, path, "expected one of %s, got %s", list, kind_name(v));
	else
		emit(x, &v->mark, path, "expected one of %s, got %s", list, show(v->s, v->len, b, sizeof b));
	return -1;
}

/* https://host[:port][/path], no credentials, no spaces. Stored without a
 * trailing '/' so paths can be appended. URLs are not echoed: one could
 * carry a token in its query. */
static bool want_https(cx *x, const node *v, const char *path, char **dst)
{
	if (!want_text(x, v, path, true, "an https:// URL"))
		return false;
	const char *s = v->s;
	if (strncmp(s, "https://", 8) != 0) {
		emit(x, &v->mark, path,
		     "expected an https:// URL; signwatch sends only over TLS, write https://...");
		return false;
	}
	const char *host = s + 8;
	size_t hl = strcspn(host, "/?#");
	if (hl == 0 || memchr(host, '@', hl)) {
		emit(x, &v->mark, path,
		     hl ? "credentials in the URL are not allowed; use the output's secret keys instead"
		        : "the URL has no host name; write https://HOST/...");
		return false;
	}
	for (size_t i = 0; i < v->len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7F || c == '"' || c == '<' || c == '>' || c == '\\') {
			emit(x, &v->mark, path,
			     "the URL contains a space, quote or control character; percent-encode it");
			return false;
		}
	}
	size_t n = v->len;
	while (n > 8 + hl && s[n - 1] == '/')
		n--;
	set_str(x, dst, s, n);
	return true;
}

static bool all_in(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

#define HEX "0123456789abcdefABCDEF"
#define LHEX "0123456789abcdef"

static bool is_guid(const char *s, size_t n)
{
	static const int dash[] = { 8, 13, 18, 23 };
	if (n != 36)
		return false;
	for (size_t i = 0, d = 0; i < n; i++) {
		if (d < 4 && (int)i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
		} else if (!strchr(HEX, s[i]) || !s[i]) {
			return false;
		}
	}
	return true;
}

/* ---------- glob ---------- */

enum { G_MATCH, G_NOMATCH, G_ABORT_ALL, G_ABORT_TO_STARSTAR };

static size_t u8len(const unsigned char *s)
{
	size_t k = *s < 0x80 ? 1 : *s >= 0xF0 ? 4 : *s >= 0xE0 ? 3 : *s >= 0xC0 ? 2 : 1;
	for (size_t i = 1; i < k; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 1; /* a stray byte counts as one character */
	return k;
}

static uint32_t u8get(const unsigned char *s, size_t *k, unsigned fl)
{
	*k = u8len(s);
	uint32_t c = *k == 1 ? s[0] : *k == 2 ? (s[0] & 0x1Fu) : *k == 3 ? (s[0] & 0x0Fu) : (s[0] & 0x07u);
	for (size_t i = 1; i < *k; i++)
		c = (c << 6) | (s[i] & 0x3Fu);
	if ((fl & SW_GLOB_WINDOWS) && c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	return c;
}

/* p against t, where reaching the end of p at the end of t or at a
 * separator in t is a match (a folder pattern covers its contents). The
 * abort codes are git's wildmatch's: they cut the backtracking that would
 * otherwise be exponential in the number of stars. */
static int gmatch(const unsigned char *p, const unsigned char *t, unsigned fl)
{
	const unsigned char *p0 = p;
	while (*p) {
		if (*p == '*') {
			bool dbl = p[1] == '*';
			const unsigned char *prev = p - 1;
			while (*p == '*')
				p++;
			if (!*p)
				return G_MATCH; /* to the end or the next separator: a prefix match */
			/* A whole-component double star may also stand for no folder
			 * at all: "a/" "**" "/b" matches "a/b". */
			if (dbl && (prev < p0 || is_sep(*prev, fl)) && is_sep(*p, fl) &&
			    gmatch(p + 1, t, fl) == G_MATCH)
				return G_MATCH;
			for (;;) {
				int r = gmatch(p, t, fl);
				if (r != G_NOMATCH) {
					if (!dbl || r != G_ABORT_TO_STARSTAR)
						return r;
				} else if (!dbl && is_sep(*t, fl)) {
					return G_ABORT_TO_STARSTAR;
				}
				if (!*t)
					return G_ABORT_ALL;
				t += u8len(t);
			}
		}
		if (!*t)
			return G_ABORT_ALL;
		size_t tk;
		uint32_t tc = u8get(t, &tk, fl);
		if (*p == '?') {
			if (is_sep(*t, fl))
				return G_NOMATCH;
			p++;
			t += tk;
			continue;
		}
		if (*p == '[') {
			p++;
			bool neg = *p == '!' || *p == '^', hit = false, first = true;
			if (neg)
				p++;
			while (first || *p != ']') {
				first = false;
				if (!*p)
					return G_ABORT_ALL; /* sw_glob_check refuses this */
				if (*p == '\\' && !(fl & SW_GLOB_WINDOWS) && p[1])
					p++;
				size_t k;
				uint32_t lo = u8get(p, &k, fl), hi = lo;
				p += k;
				if (*p == '-' && p[1] && p[1] != ']') {
					p++;
					if (*p == '\\' && !(fl & SW_GLOB_WINDOWS) && p[1])
						p++;
					hi = u8get(p, &k, fl);
					p += k;
				}
				if (lo <= tc && tc <= hi)
					hit = true;
			}
			p++;
			if (hit == neg || is_sep(*t, fl))
				return G_NOMATCH;
			t += tk;
			continue;
		}
		if (*p == '\\' && !(fl & SW_GLOB_WINDOWS) && p[1])
			p++;
		size_t pk;
		uint32_t pc = u8get(p, &pk, fl);
		if (is_sep(*p, fl) ? !is_sep(*t, fl) : pc != tc)
			return G_NOMATCH;
		p += pk;
		t += tk;
	}
	return !*t || is_sep(*t, fl) ? G_MATCH : G_NOMATCH;
}

const char *sw_glob_check(const char *pattern, unsigned flags)
{
	if (!*pattern)
		return "an empty pattern matches nothing";
	if (strlen(pattern) > 1024)
		return "the pattern is longer than 1024 bytes";
	for (const char *p = pattern; *p; p++) {
		if (*p == '\\' && !(flags & SW_GLOB_WINDOWS)) {
			if (!p[1])
				return "the pattern ends with a lone '\\'; write '\\\\' for a backslash";
			p++;
		} else if (*p == '[') {
			const char *q = p + 1;
			if (*q == '!' || *q == '^')
				q++;
			if (*q == '[' && q[1] == ':')
				return "character classes like [:alpha:] are not supported; list the "
				       "characters, [a-z]";
			if (*q == ']')
				q++;
			while (*q && *q != ']') {
				if (*q == '\\' && !(flags & SW_GLOB_WINDOWS) && q[1])
					q++;
				q++;
			}
			if (!*q)
				return "'[' without a closing ']'; write '\\[' for a literal bracket";
			p = q;
		}
	}
	return NULL;
}

bool sw_glob_match(const char *pattern, const char *path, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)pattern, *t = (const unsigned char *)path;
	bool anchored = is_sep(p[0], flags) || ((flags & SW_GLOB_WINDOWS) && p[0] && p[1] == ':');
	if (anchored)
		return gmatch(p, t, flags) == G_MATCH;
	/* Unanchored: try from the start of every component, as if the
	 * pattern began with a double star and a separator. */
	for (;;) {
		while (is_sep(*t, flags))
			t++;
		if (!*t)
			return false;
		if (gmatch(p, t, flags) == G_MATCH)
			return true;
		while (*t && !is_sep(*t, flags))
			t++;
	}
}

bool sw_config_excluded(const sw_config *c, const char *path)
{
	for (size_t i = 0; i < c->exclude.n; i++)
		if (sw_glob_match(c->exclude.v[i], path, PATH_FLAGS))
			return true;
	return false;
}

/* ---------- the schema ---------- */

typedef enum vkind {
	V_TEXT,    /* any non-empty text */
	V_ABS,     /* an absolute path */
	V_ABSLIST, /* a list of absolute paths */
	V_ROOTS,   /* a list of absolute paths to readable directories */
	V_GLOBS,   /* a list of glob patterns */
	V_INT,
	V_BOOL,
	V_ENUM,
	V_HTTPS,
	V_DEVID,
	V_SECRET,  /* a secret in the file */
	V_ENVNAME, /* the name of a variable holding the secret */
	V_PIN,
	V_HOST,
	V_APPNAME,
	V_DCR,
	V_GUID,
	V_TENANT,
	V_STREAM,
	V_OUTPUTS,
	V_TYPE /* an output's type: read before the other keys */
} vkind;

/* Output types as bits, for which keys a type has. */
#define T_FILE (1u << SW_OUT_FILE)
#define T_LI (1u << SW_OUT_LOGS_INGESTION)
#define T_SYS (1u << SW_OUT_SYSLOG_TLS)
#define T_HJ (1u << SW_OUT_HTTPS_JSON)
#define T_ALL (T_FILE | T_LI | T_SYS | T_HJ)
#define T_NET (T_LI | T_SYS | T_HJ)

typedef struct field {
	const char *key;
	vkind k;
	size_t off;
	long lo, hi;
	unsigned types;    /* outputs: the types that have this key */
	unsigned required; /* outputs: the types that need it */
	const char *hint;  /* for "missing": what to write */
} field;

static const char *const log_names[] = { "debug", "info", "warn", "error", NULL };
static const char *const type_names[] = { "file", "logs_ingestion", "syslog_tls", "https_json", NULL };
static const char *const send_names[] = { "all", "matching", "none", NULL };
/* "a file output", "an https_json output" */
static const char *const type_articles[] = { "a", "a", "a", "an" };

#define C(m) offsetof(sw_config, m)
static const field top_fields[] = {
	{ "roots", V_ROOTS, C(roots), 0, 0, 0, 0, NULL },
	{ "exclude", V_GLOBS, C(exclude), 0, 0, 0, 0, NULL },
	{ "store", V_ABS, C(store), 0, 0, 0, 0, NULL },
	{ "rules", V_ABSLIST, C(rules), 0, 0, 0, 0, NULL },
	{ "yara_rules", V_ABSLIST, C(yara_rules), 0, 0, 0, 0, NULL },
	{ "ca_file", V_ABS, C(ca_file), 0, 0, 0, 0, NULL },
	{ "device_id", V_DEVID, C(device_id), 0, 0, 0, 0, NULL },
	{ "settle_ms", V_INT, C(settle_ms), 10, 60000, 0, 0, NULL },
	{ "reconcile_hours", V_INT, C(reconcile_hours), 0, 720, 0, 0, NULL },
	{ "max_file_mb", V_INT, C(max_file_mb), 1, 4096, 0, 0, NULL },
	{ "log_level", V_ENUM, C(log_level), 0, 0, 0, 0, NULL },
	{ "cpu_budget_percent", V_INT, C(cpu_budget_percent), 1, 100, 0, 0, NULL },
	{ "threads", V_INT, C(threads), 1, 64, 0, 0, NULL },
	{ "cross_filesystems", V_BOOL, C(cross_filesystems), 0, 0, 0, 0, NULL },
	{ "outputs", V_OUTPUTS, C(outputs), 0, 0, 0, 0, NULL },
};
#undef C

#define O(m) offsetof(sw_config_output, m)
static const field out_fields[] = {
	{ "type", V_TYPE, O(type), 0, 0, T_ALL, T_ALL,
	  "type: file, logs_ingestion, syslog_tls or https_json" },
	{ "send_records", V_ENUM, O(send_records), 0, 0, T_ALL, 0, NULL },
	{ "send_summaries", V_BOOL, O(send_summaries), 0, 0, T_ALL, 0, NULL },
	{ "heartbeat_minutes", V_INT, O(heartbeat_minutes), 0, 10080, T_ALL, 0, NULL },
	{ "outbox_mb", V_INT, O(outbox_mb), 1, 1048576, T_ALL, 0, NULL },
	{ "max_backoff_s", V_INT, O(max_backoff_s), 1, 86400, T_ALL, 0, NULL },
	{ "path", V_ABS, O(path), 0, 0, T_FILE, T_FILE, "path: the platform's default records file" },
	{ "max_mb", V_INT, O(max_mb), 1, 65536, T_FILE, 0, NULL },
	{ "keep", V_INT, O(keep), 0, 1000, T_FILE, 0, NULL },
	{ "endpoint", V_HTTPS, O(endpoint), 0, 0, T_LI, T_LI,
	  "endpoint: https://<your DCE>.<region>.ingest.monitor.azure.com" },
	{ "dcr_id", V_DCR, O(dcr_id), 0, 0, T_LI, T_LI,
	  "dcr_id: dcr-<the DCR's immutableId, 32 hex digits>" },
	{ "stream", V_STREAM, O(stream), 0, 0, T_LI, T_LI, "stream: Custom-SignwatchCertificateInfo_CL" },
	{ "tenant_id", V_TENANT, O(tenant_id), 0, 0, T_LI, T_LI, "tenant_id: <your Entra ID tenant GUID>" },
	{ "client_id", V_GUID, O(client_id), 0, 0, T_LI, T_LI,
	  "client_id: <the app registration's client id>" },
	{ "client_secret", V_SECRET, O(secret), 0, 0, T_LI, 0, NULL },
	{ "client_secret_env", V_ENVNAME, O(secret), 0, 0, T_LI, 0, NULL },
	{ "token_url", V_HTTPS, O(token_url), 0, 0, T_LI, 0, NULL },
	{ "host", V_HOST, O(host), 0, 0, T_SYS, T_SYS, "host: <the collector's DNS name>" },
	{ "port", V_INT, O(port), 1, 65535, T_SYS, 0, NULL },
	{ "app_name", V_APPNAME, O(app_name), 0, 0, T_SYS, 0, NULL },
	{ "url", V_HTTPS, O(url), 0, 0, T_HJ, T_HJ, "url: https://<collector>/<path>" },
	{ "gzip", V_BOOL, O(gzip), 0, 0, T_HJ, 0, NULL },
	{ "bearer_token", V_SECRET, O(secret), 0, 0, T_HJ, 0, NULL },
	{ "bearer_token_env", V_ENVNAME, O(secret), 0, 0, T_HJ, 0, NULL },
	{ "client_certificate", V_ABS, O(client_certificate), 0, 0, T_NET, 0, NULL },
	{ "client_key", V_ABS, O(client_key), 0, 0, T_NET, 0, NULL },
	{ "ca_file", V_ABS, O(ca_file), 0, 0, T_NET, 0, NULL },
	{ "pin_sha256", V_PIN, O(pin_sha256), 0, 0, T_SYS | T_HJ, 0, NULL },
};
#undef O
#define N_TOP (sizeof top_fields / sizeof top_fields[0])
#define N_OUT (sizeof out_fields / sizeof out_fields[0])

static int field_index(const field *fs, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(fs[i].key, key))
			return (int)i;
	return -1;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t row[41];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* "unknown key 'x'; did you mean 'y'? (keys of ...: a, b, c)" */
static void unknown_key(cx *x, const node *k, const char *path, const field *fs, size_t n, unsigned mask,
                        const char *where)
{
	char keys[768] = "", b[SHOW_MAX * 4 + 16];
	const char *best = NULL;
	size_t bd = 3;
	for (size_t i = 0; i < n; i++) {
		if (mask && !(fs[i].types & mask))
			continue;
		size_t l = strlen(keys);
		snprintf(keys + l, sizeof keys - l, "%s%s", l ? ", " : "", fs[i].key);
		size_t d = edit_distance(k->s, fs[i].key);
		if (d < bd) {
			bd = d;
			best = fs[i].key;
		}
	}
	char mean[80] = "";
	if (best)
		snprintf(mean, sizeof mean, "did you mean '%s'? ", best);
	emit(x, &k->mark, path, "unknown key %s; %s(%s: %s)", show(k->s, k->len, b, sizeof b), mean, where,
	     keys);
}

static void key_path(char *out, size_t n, const char *prefix, const char *key, size_t klen)
{
	char b[SHOW_MAX * 4 + 16];
	bool simple = klen <= SHOW_MAX && klen > 0;
	for (size_t i = 0; simple && i < klen; i++)
		simple = (key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
		         (key[i] >= '0' && key[i] <= '9') || key[i] == '_' || key[i] == '-';
	const char *k = simple ? key : show(key, klen, b, sizeof b);
	if (prefix && *prefix)
		snprintf(out, n, "%s.%s", prefix, k);
	else
		snprintf(out, n, "%s", k);
}

/* Do the mapping's keys say something twice? Reports each repeat; returns
 * whether kid i is the first of its key. */
static bool first_of_key(cx *x, const node *map, size_t i, const char *path)
{
	const node *k = map->kid[i];
	for (size_t j = 0; j < i; j += 2) {
		const node *o = map->kid[j];
		if (o->kind == N_SCALAR && o->len == k->len && !memcmp(o->s, k->s, k->len)) {
			emit(x, &k->mark, path, "duplicate key (first given at line %ld); keep one of them",
			     (long)o->mark.line + 1);
			return false;
		}
	}
	return true;
}

static bool key_ok(cx *x, const node *k, const char *prefix)
{
	if (k->kind != N_SCALAR) {
		emit(x, &k->mark, prefix, "a key must be plain text, not %s", kind_name(k));
		return false;
	}
	return true;
}

/* The secret rule: a file that holds one must be readable by its owner
 * only, since the forwarders would otherwise hand the collector's
 * credentials to every local user. */
static void secret_in_file(cx *x, const node *v, const char *path, const char *key)
{
	if (!x->mode_asked) {
		x->mode_asked = true;
		x->mode_rc =
		        x->env && x->env->file_mode ? x->env->file_mode(x->env->ud, x->file, &x->mode) : -1;
	}
	if (x->mode_rc != 0)
		emit(x, &v->mark, path,
		     "cannot check who may read %s on this system, so it must not hold a secret; put the "
		     "secret in "
		     "an environment variable and name it with %s_env",
		     x->file, key);
	else if (x->mode & 044)
		emit(x, &v->mark, path,
		     "%s is readable by %s (mode %04o), so it must not hold a secret; run chmod 600 %s, or "
		     "put the "
		     "secret in an environment variable and name it with %s_env",
		     x->file, (x->mode & 004) ? "every user" : "its group", x->mode & 07777, x->file, key);
}

static void want_list(cx *x, const node *v, const char *path, sw_strv *dst, vkind k);

/* Convert value v of field f into base. */
static void convert(cx *x, const field *f, const node *v, void *base, const char *path)
{
	char *at = (char *)base + f->off;
	char b[SHOW_MAX * 4 + 16];
	switch (f->k) {
	case V_TEXT:
		if (want_text(x, v, path, false, "text"))
			set_str(x, (char **)at, v->s, v->len);
		break;
	case V_ABS: want_abs(x, v, path, (char **)at); break;
	case V_ABSLIST:
	case V_ROOTS:
	case V_GLOBS: want_list(x, v, path, (sw_strv *)at, f->k); break;
	case V_INT: want_int(x, v, path, f->lo, f->hi, (int *)at); break;
	case V_BOOL: want_bool(x, v, path, (bool *)at); break;
	case V_ENUM: {
		/* Set through the real member: an enum's storage type is the
		 * compiler's choice, so no int* aliasing. */
		if (!strcmp(f->key, "log_level")) {
			int i = want_enum(x, v, path, log_names);
			if (i >= 0)
				((sw_config *)base)->log_level = (sw_config_log_level)i;
		} else {
			int i = want_enum(x, v, path, send_names);
			if (i >= 0)
				((sw_config_output *)base)->send_records = (sw_send_records)i;
		}
		break;
	}
	case V_HTTPS: want_https(x, v, path, (char **)at); break;
	case V_DEVID:
		if (!want_text(x, v, path, false, "40 lowercase hex digits"))
			break;
		if (v->len != 40 || !all_in(v->s, v->len, LHEX)) {
			emit(x, &v->mark, path,
			     "expected null or 40 lowercase hex digits, got %s%s; or remove the key to "
			     "derive it "
			     "from the machine id",
			     show(v->s, v->len, b, sizeof b),
			     v->len == 40 && all_in(v->s, v->len, HEX) ? " (write it in lowercase)" : "");
			break;
		}
		memcpy(at, v->s, 41);
		break;
	case V_SECRET:
		if (!want_text(x, v, path, true, "the secret as text"))
			break;
		secret_in_file(x, v, path, f->key);
		wipe_free(*(char **)at);
		*(char **)at = dupn(v->s, v->len);
		if (!*(char **)at)
			x->nomem = true;
		break;
	case V_ENVNAME: {
		sw_config_output *o = base;
		if (!want_text(x, v, path, false, "an environment variable's name"))
			break;
		if (!all_in(v->s, v->len,
		            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ||
		    (v->s[0] >= '0' && v->s[0] <= '9')) {
			/* Not echoed: a secret pasted here by mistake must not reach
			 * the log. */
			emit(x, &v->mark, path,
			     "expected the name of an environment variable (letters, digits, '_', not "
			     "starting "
			     "with a digit); the secret itself goes in the variable, not here");
			break;
		}
		const char *val = x->env && x->env->get_env ? x->env->get_env(x->env->ud, v->s) : NULL;
		if (!val || !*val) {
			emit(x, &v->mark, path,
			     "the environment variable %s is %s; set it in the agent's environment (systemd: "
			     "EnvironmentFile= in a drop-in; Windows: the service's Environment value)",
			     v->s, val ? "empty" : "not set");
			break;
		}
		for (const char *c = val; *c; c++) {
			if ((unsigned char)*c < 0x20 || *c == 0x7F) {
				emit(x, &v->mark, path,
				     "the environment variable %s holds a control character (a line break?); "
				     "remove it",
				     v->s);
				return;
			}
		}
		wipe_free(o->secret);
		o->secret = dupn(val, strlen(val));
		set_str(x, &o->secret_env, v->s, v->len);
		if (!o->secret)
			x->nomem = true;
		break;
	}
	case V_PIN: {
		if (!want_text(x, v, path, false, "a base64 SHA-256 pin"))
			break;
		const char *s = v->s;
		size_t n = v->len;
		if (n > 8 && !strncmp(s, "sha256//", 8)) {
			s += 8; /* curl's spelling of the same pin */
			n -= 8;
		}
		if (n != 44 || s[43] != '=' ||
		    !all_in(s, 43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")) {
			emit(x, &v->mark, path,
			     "expected the base64 SHA-256 of the server's public key (44 characters ending "
			     "in '='), "
			     "got %s; make it with: openssl x509 -in server.pem -pubkey -noout | openssl "
			     "pkey "
			     "-pubin -outform der | openssl dgst -sha256 -binary | base64",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, s, n);
		break;
	}
	case V_HOST:
		if (!want_text(x, v, path, false, "a host name"))
			break;
		if (strstr(v->s, "://") || strchr(v->s, '/') ||
		    !all_in(v->s, v->len,
		            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]_")) {
			emit(x, &v->mark, path,
			     "expected a host name or IP address only, got %s; put the port in 'port'",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, v->s, v->len);
		break;
	case V_APPNAME: {
		if (!want_text(x, v, path, false, "an RFC 5424 APP-NAME"))
			break;
		bool good = v->len <= 48;
		for (size_t i = 0; good && i < v->len; i++)
			good = v->s[i] > 32 && v->s[i] < 127;
		if (!good) {
			emit(x, &v->mark, path,
			     "expected 1..48 printable ASCII characters without spaces, got %s",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, v->s, v->len);
		break;
	}
	case V_DCR:
		if (!want_text(x, v, path, false, "a DCR immutable id"))
			break;
		if (v->len != 36 || strncmp(v->s, "dcr-", 4) != 0 || !all_in(v->s + 4, 32, HEX)) {
			emit(x, &v->mark, path,
			     "expected the DCR's immutable id, 'dcr-' and 32 hex digits, got %s; copy "
			     "immutableId "
			     "from the DCR's JSON view in the Azure portal",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, v->s, v->len);
		break;
	case V_GUID:
		if (!want_text(x, v, path, false, "a GUID"))
			break;
		if (!is_guid(v->s, v->len)) {
			emit(x, &v->mark, path,
			     "expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got %s; copy the "
			     "application (client) id from the app registration",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, v->s, v->len);
		break;
	case V_TENANT:
		if (!want_text(x, v, path, false, "a tenant id"))
			break;
		/* It goes into the token URL's path: a GUID or a domain only. */
		if (!is_guid(v->s, v->len) &&
		    !all_in(v->s, v->len,
		            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")) {
			emit(x, &v->mark, path,
			     "expected the tenant's GUID or domain (contoso.onmicrosoft.com), got %s",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, v->s, v->len);
		break;
	case V_STREAM:
		if (!want_text(x, v, path, false, "a stream name"))
			break;
		if (!all_in(v->s, v->len,
		            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")) {
			emit(x, &v->mark, path,
			     "expected a stream name from the DCR (letters, digits, '_', '-'), got %s; for "
			     "example "
			     "Custom-SignwatchCertificateInfo_CL",
			     show(v->s, v->len, b, sizeof b));
			break;
		}
		set_str(x, (char **)at, v->s, v->len);
		break;
	case V_OUTPUTS:
	case V_TYPE: break; /* handled by their callers */
	}
}

static bool strv_add(cx *x, sw_strv *l, char *s)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v) {
		free(s);
		x->nomem = true;
		return false;
	}
	l->v = v;
	l->v[l->n++] = s;
	return true;
}

static void strv_free(sw_strv *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Is b inside a (or the same)? Both normalized, no trailing separator. */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(a);
	bool win = PATH_FLAGS & SW_GLOB_WINDOWS;
	for (size_t i = 0; i < n; i++) {
		unsigned char ca = (unsigned char)a[i], cb = (unsigned char)b[i];
		if (win && ca >= 'A' && ca <= 'Z')
			ca += 32;
		if (win && cb >= 'A' && cb <= 'Z')
			cb += 32;
		if (!(ca == cb || (is_sep(ca, PATH_FLAGS) && is_sep(cb, PATH_FLAGS))))
			return false;
	}
	return !b[n] || is_sep((unsigned char)b[n], PATH_FLAGS) ||
	       is_sep((unsigned char)a[n - 1], PATH_FLAGS);
}

static void want_list(cx *x, const node *v, const char *path, sw_strv *dst, vkind k)
{
	const char *what = k == V_GLOBS   ? "glob patterns"
	                   : k == V_ROOTS ? "absolute folder paths"
	                                  : "absolute paths";
	if (v->kind != N_SEQ) {
		emit(x, &v->mark, path, "expected a list of %s, got %s; write [a, b] or one '- a' per line",
		     what, kind_name(v));
		return;
	}
	if (v->n > MAX_LIST) {
		emit(x, &v->mark, path, "more than %d items", MAX_LIST);
		return;
	}
	strv_free(dst); /* the file's list replaces the default */
	for (size_t i = 0; i < v->n; i++) {
		const node *it = v->kid[i];
		char ip[160];
		snprintf(ip, sizeof ip, "%s[%zu]", path, i);
		if (is_null(it)) {
			emit(x, &it->mark, ip, "an empty item; remove it or give a value");
			continue;
		}
		char *s = NULL;
		if (k == V_GLOBS) {
			if (!want_text(x, it, ip, false, "a glob pattern"))
				continue;
			const char *why = sw_glob_check(it->s, PATH_FLAGS);
			if (why) {
				char b[SHOW_MAX * 4 + 16];
				emit(x, &it->mark, ip, "bad pattern %s: %s",
				     show(it->s, it->len, b, sizeof b), why);
				continue;
			}
			set_str(x, &s, it->s, it->len);
		} else if (!want_abs(x, it, ip, &s)) {
			continue;
		}
		if (!s)
			continue;
		if (k == V_ROOTS) {
			char why[160] = "";
			if (x->env && x->env->dir_ok && x->env->dir_ok(x->env->ud, s, why, sizeof why) != 0) {
				char b[SHOW_MAX * 4 + 16];
				emit(x, &it->mark, ip,
				     "%s is not a readable directory (%s); create it, fix the path or remove "
				     "it",
				     show(s, strlen(s), b, sizeof b), why[0] ? why : "refused");
				free(s);
				continue;
			}
			bool clash = false;
			for (size_t j = 0; j < dst->n && !clash; j++) {
				if (path_within(dst->v[j], s) || path_within(s, dst->v[j])) {
					emit(x, &it->mark, ip,
					     "overlaps %s[%zu] (%s); a root is watched with everything "
					     "under it, keep only the outer one",
					     path, j, dst->v[j]);
					clash = true;
				}
			}
			if (clash) {
				free(s);
				continue;
			}
		}
		strv_add(x, dst, s);
	}
	if (k == V_ROOTS && v->n == 0)
		emit(x, &v->mark, path,
		     "no roots: nothing would be watched; list at least one folder or remove the "
		     "key for the defaults");
}

/* ---------- outputs ---------- */

static void output_defaults(cx *x, sw_config_output *o, int type)
{
	o->send_records = SW_SEND_MATCHING;
	o->send_summaries = true;
	o->heartbeat_minutes = 60;
	o->outbox_mb = 256;
	o->max_backoff_s = 300;
	if (type < 0)
		return;
	o->type = (sw_out_type)type;
	switch (o->type) {
	case SW_OUT_FILE:
		o->max_mb = 64;
		o->keep = 5;
		break;
	case SW_OUT_LOGS_INGESTION: break;
	case SW_OUT_SYSLOG_TLS:
		o->port = 6514;
		set_str(x, &o->app_name, "signwatch", 9);
		break;
	case SW_OUT_HTTPS_JSON: o->gzip = true; break;
	}
}

static void output_free(sw_config_output *o)
{
	free(o->id);
	free(o->ca_file);
	free(o->client_certificate);
	free(o->client_key);
	free(o->pin_sha256);
	free(o->path);
	free(o->endpoint);
	free(o->dcr_id);
	free(o->stream);
	free(o->tenant_id);
	free(o->client_id);
	free(o->token_url);
	free(o->host);
	free(o->app_name);
	free(o->url);
	wipe_free(o->secret);
	free(o->secret_env);
}

static char *fmt_dup(cx *x, const char *fmt, ...) SW_PRINTF(2, 3);
static char *fmt_dup(cx *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (!s) {
		x->nomem = true;
		return NULL;
	}
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Only for an output whose identifying keys are all valid, so two broken
 * outputs are not also reported as the same destination. */
static void set_id(cx *x, sw_config_output *o)
{
	switch (o->type) {
	case SW_OUT_FILE:
		if (o->path)
			o->id = fmt_dup(x, "file:%s", o->path);
		break;
	case SW_OUT_LOGS_INGESTION:
		if (o->endpoint && o->dcr_id && o->stream)
			o->id = fmt_dup(x, "logs_ingestion:%s/%s/%s", o->endpoint, o->dcr_id, o->stream);
		break;
	case SW_OUT_SYSLOG_TLS:
		if (o->host)
			o->id = fmt_dup(x, "syslog_tls:%s:%d", o->host, o->port);
		break;
	case SW_OUT_HTTPS_JSON:
		if (o->url)
			o->id = fmt_dup(x, "https_json:%s", o->url);
		break;
	}
}

static bool conv_output(cx *x, const node *n, const char *path, sw_config_output *o)
{
	if (n->kind != N_MAP) {
		output_defaults(x, o, -1);
		emit(x, &n->mark, path, "expected a mapping (type: file, path: ...), got %s", kind_name(n));
		return false;
	}
	/* The type first: it decides which keys the others may be. */
	int type = -1;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const node *k = n->kid[i];
		if (k->kind == N_SCALAR && !strcmp(k->s, "type")) {
			char tp[160];
			snprintf(tp, sizeof tp, "%s.type", path);
			if (!is_null(n->kid[i + 1]))
				type = want_enum(x, n->kid[i + 1], tp, type_names);
			else
				type = -2;
			break;
		}
	}
	output_defaults(x, o, type);
	unsigned mask = type >= 0 ? 1u << type : T_ALL;
	const node *seen[N_OUT] = { 0 };
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const node *k = n->kid[i], *v = n->kid[i + 1];
		if (!key_ok(x, k, path))
			continue;
		char kp[200];
		key_path(kp, sizeof kp, path, k->s, k->len);
		if (!first_of_key(x, n, i, kp))
			continue;
		int fi = field_index(out_fields, N_OUT, k->s);
		if (fi < 0) {
			char where[64];
			if (type >= 0)
				snprintf(where, sizeof where, "keys of %s %s output", type_articles[type],
				         type_names[type]);
			else
				snprintf(where, sizeof where, "output keys");
			unknown_key(x, k, kp, out_fields, N_OUT, mask, where);
			continue;
		}
		const field *f = &out_fields[fi];
		if (!(f->types & mask)) {
			char owners[96] = "";
			for (int t = 0; type_names[t]; t++) {
				if (f->types & (1u << t)) {
					size_t l = strlen(owners);
					snprintf(owners + l, sizeof owners - l, "%s%s", l ? ", " : "",
					         type_names[t]);
				}
			}
			emit(x, &k->mark, kp, "'%s' is not a key of %s %s output (it is for %s); remove it",
			     f->key, type_articles[type], type_names[type], owners);
			continue;
		}
		if (is_null(v))
			continue;
		seen[fi] = v;
		if (f->k != V_TYPE)
			convert(x, f, v, o, kp);
	}
	if (type == -1 && !seen[0]) {
		char tp[160];
		snprintf(tp, sizeof tp, "%s.type", path);
		emit(x, &n->mark, tp, "missing; add type: file, logs_ingestion, syslog_tls or https_json");
	} else if (type == -2) {
		char tp[160];
		snprintf(tp, sizeof tp, "%s.type", path);
		emit(x, &n->mark, tp, "empty; give type: file, logs_ingestion, syslog_tls or https_json");
	}
	if (type < 0)
		return false;
	for (size_t fi = 1; fi < N_OUT; fi++) {
		if ((out_fields[fi].required & mask) && !seen[fi]) {
			char kp[200];
			snprintf(kp, sizeof kp, "%s.%s", path, out_fields[fi].key);
			emit(x, &n->mark, kp, "missing, and %s %s output needs it; add %s",
			     type_articles[type], type_names[type], out_fields[fi].hint);
		}
	}
#define SEEN(key) (seen[field_index(out_fields, N_OUT, key)])
	const node *cert = SEEN("client_certificate"), *key = SEEN("client_key");
	if (!cert != !key) {
		const node *at = cert ? cert : key;
		char kp[200];
		snprintf(kp, sizeof kp, "%s.%s", path, cert ? "client_key" : "client_certificate");
		emit(x, &at->mark, kp, "missing: client_certificate and client_key go together; add %s",
		     cert ? "client_key: /path/to/key.pem" : "client_certificate: /path/to/cert.pem");
	}
	if (o->type == SW_OUT_LOGS_INGESTION) {
		int ways = !!SEEN("client_secret") + !!SEEN("client_secret_env") + !!(cert || key);
		char kp[200];
		snprintf(kp, sizeof kp, "%s.client_secret", path);
		if (ways == 0)
			emit(x, &n->mark, kp,
			     "no credential for Entra ID; add client_secret_env: VARIABLE (recommended), "
			     "client_secret, or client_certificate and client_key");
		else if (ways > 1)
			emit(x, &n->mark, path,
			     "more than one credential; give exactly one of client_secret, "
			     "client_secret_env, or "
			     "client_certificate with client_key");
		if (!o->token_url && o->tenant_id)
			o->token_url = fmt_dup(x, "https://login.microsoftonline.com/%s/oauth2/v2.0/token",
			                       o->tenant_id);
	}
	if (o->type == SW_OUT_HTTPS_JSON && SEEN("bearer_token") && SEEN("bearer_token_env"))
		emit(x, &SEEN("bearer_token_env")->mark, path,
		     "both bearer_token and bearer_token_env; keep one of them");
#undef SEEN
	return true;
}

static void conv_outputs(cx *x, const node *v, sw_config *c)
{
	if (v->kind != N_SEQ) {
		emit(x, &v->mark, "outputs", "expected a list of outputs ('- type: file' ...), got %s",
		     kind_name(v));
		return;
	}
	if (v->n == 0) {
		emit(x, &v->mark, "outputs",
		     "an empty list: records would go nowhere; add one ('- type: file') or remove the key "
		     "for the "
		     "default file output");
		return;
	}
	if (v->n > MAX_OUTPUTS) {
		emit(x, &v->mark, "outputs", "more than %d outputs", MAX_OUTPUTS);
		return;
	}
	sw_config_output *o = calloc(v->n, sizeof *o);
	if (!o) {
		x->nomem = true;
		return;
	}
	for (size_t i = 0; i < c->n_outputs; i++)
		output_free(&c->outputs[i]);
	free(c->outputs);
	c->outputs = o;
	c->n_outputs = v->n;
	c->outputs_default = false;
	for (size_t i = 0; i < v->n; i++) {
		char path[32];
		snprintf(path, sizeof path, "outputs[%zu]", i);
		if (conv_output(x, v->kid[i], path, &o[i]))
			set_id(x, &o[i]);
		for (size_t j = 0; j < i && o[i].id; j++) {
			if (o[j].id && !strcmp(o[i].id, o[j].id)) {
				emit(x, &v->kid[i]->mark, path,
				     "the same destination as outputs[%zu]; records would be sent twice, "
				     "remove one",
				     j);
				break;
			}
		}
	}
}

/* ---------- loading ---------- */

static void config_defaults(cx *x, sw_config *c)
{
	set_str(x, &c->store, sw_plat_default_store(), strlen(sw_plat_default_store()));
	char *r = dupn(sw_plat_default_rules(), strlen(sw_plat_default_rules()));
	if (r)
		strv_add(x, &c->rules, r);
	else
		x->nomem = true;
	c->rules_default = true;
	c->settle_ms = 300;
	c->reconcile_hours = 6;
	c->max_file_mb = 512;
	c->log_level = SW_CONFIG_LOG_INFO;
	c->cpu_budget_percent = 25;
	c->threads = 2;
	c->cross_filesystems = false;
}

/* Line and column (1-based, in characters) of byte offset off. */
static void pos_of(const char *b, size_t n, size_t off, yaml_mark_t *m)
{
	m->line = 0;
	m->column = 0;
	for (size_t i = 0; i < off && i < n; i++) {
		if (b[i] == '\n') {
			m->line++;
			m->column = 0;
		} else if (((unsigned char)b[i] & 0xC0) != 0x80) {
			m->column++;
		}
	}
}

static void finish_errors(cx *x, char *err, size_t errlen)
{
	if (x->n > SW_CONFIG_MAX_ERRORS) {
		char more[80];
		snprintf(more, sizeof more, "(%d more errors not shown)\n", x->n - SW_CONFIG_MAX_ERRORS);
		append(x, more, strlen(more));
	}
	if (err && errlen) {
		const char *m = x->nomem ? "out of memory reading the configuration\n" : x->msg ? x->msg : "";
		snprintf(err, errlen, "%s", m);
		size_t l = strlen(err);
		if (l && err[l - 1] == '\n')
			err[l - 1] = '\0'; /* the caller adds its own line end */
	}
	free(x->msg);
}

sw_err sw_config_load_buffer(const char *name, const char *buf, size_t len, const sw_config_env *env,
                             sw_config **out, char *err, size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	cx X = { .file = name ? name : "(config)", .env = env };
	cx *x = &X;
	sw_config *c = calloc(1, sizeof *c);
	if (!c)
		return SW_ERR_NOMEM;
	config_defaults(x, c);
	set_str(x, &c->file, X.file, strlen(X.file));

	node *root = NULL;
	size_t bad;
	if (len > SW_CONFIG_MAX_BYTES) {
		emit(x, NULL, NULL,
		     "larger than %d KiB; a configuration is a few lines, is this the right file?",
		     SW_CONFIG_MAX_BYTES / 1024);
	} else if (!sw_text_utf8_valid(buf, len, &bad) || (bad = len, memchr(buf, '\0', len))) {
		if (bad == len)
			bad = (size_t)((const char *)memchr(buf, '\0', len) - buf);
		yaml_mark_t m;
		pos_of(buf, len, bad, &m);
		unsigned char b0 = (unsigned char)buf[bad];
		emit(x, &m, NULL, "not UTF-8 text (byte 0x%02X)%s; save the file as UTF-8", b0,
		     (b0 == 0xFF || b0 == 0xFE || b0 == 0) ? ", perhaps UTF-16" : "");
	} else if (parse_tree(x, buf, len, &root) && root && !is_null(root)) {
		if (root->kind != N_MAP) {
			emit(x, &root->mark, NULL,
			     "the configuration must be a mapping of keys (roots:, store:, outputs: ...), "
			     "got %s",
			     kind_name(root));
		} else {
			for (size_t i = 0; i + 1 < root->n; i += 2) {
				const node *k = root->kid[i], *v = root->kid[i + 1];
				if (!key_ok(x, k, NULL))
					continue;
				char kp[200];
				key_path(kp, sizeof kp, NULL, k->s, k->len);
				if (!first_of_key(x, root, i, kp))
					continue;
				int fi = field_index(top_fields, N_TOP, k->s);
				if (fi < 0) {
					unknown_key(x, k, kp, top_fields, N_TOP, 0, "top-level keys");
					continue;
				}
				if (is_null(v))
					continue; /* the default */
				const field *f = &top_fields[fi];
				if (f->k == V_OUTPUTS) {
					conv_outputs(x, v, c);
				} else {
					if (f->k == V_ABSLIST && !strcmp(f->key, "rules"))
						c->rules_default = false;
					convert(x, f, v, c, kp);
				}
			}
		}
	}
	if (!X.n && !X.nomem && c->roots.n == 0) {
		/* Built-in roots that this machine lacks are skipped, not errors:
		 * a workstation without /opt should still start. */
		size_t n_default_roots = 0;
		const char *const *default_roots = sw_plat_default_roots(&n_default_roots);
		for (size_t i = 0; i < n_default_roots; i++) {
			char why[160];
			if (env && env->dir_ok &&
			    env->dir_ok(env->ud, default_roots[i], why, sizeof why) != 0)
				continue;
			char *r = dupn(default_roots[i], strlen(default_roots[i]));
			if (r)
				strv_add(x, &c->roots, r);
			else
				X.nomem = true;
		}
		if (c->roots.n == 0)
			emit(x, NULL, "roots",
			     "none of the default roots exists here; list the folders to watch");
	}
	if (!X.n && !X.nomem && c->n_outputs == 0) {
		/* The embedded default: JSON Lines to a local file. */
		c->outputs = calloc(1, sizeof *c->outputs);
		if (c->outputs) {
			c->n_outputs = 1;
			c->outputs_default = true;
			output_defaults(x, &c->outputs[0], SW_OUT_FILE);
			set_str(x, &c->outputs[0].path, sw_plat_default_records(),
			        strlen(sw_plat_default_records()));
			set_id(x, &c->outputs[0]);
		} else {
			X.nomem = true;
		}
	}
	node_free(root);
	if (X.n || X.nomem) {
		sw_err e = X.nomem && !X.n ? SW_ERR_NOMEM : SW_ERR_CONFIG;
		finish_errors(x, err, errlen);
		sw_config_free(c);
		return e;
	}
	free(X.msg);
	*out = c;
	return SW_OK;
}

sw_err sw_config_load_defaults(const sw_config_env *env, sw_config **out, char *err, size_t errlen)
{
	return sw_config_load_buffer("(built-in defaults)", "", 0, env, out, err, errlen);
}

bool sw_config_file_exists(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f)
		fclose(f);
	return f != NULL;
}

sw_err sw_config_load_file(const char *path, const sw_config_env *env, sw_config **out, char *err,
                           size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	errno = 0;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		if (err && errlen) {
			if (e == ENOENT)
				snprintf(err, errlen,
				         "%s: no such file; create it (docs/CONFIG.md has examples; "
				         "`signwatch run --check-config` prints the defaults to start from) "
				         "or pass "
				         "--config FILE",
				         path);
			else
				snprintf(err, errlen, "%s: cannot open: %s", path,
				         e ? strerror(e) : "unknown error");
		}
		return SW_ERR_CONFIG;
	}
	/* Read at most one byte past the cap: a huge file is refused
	 * without being read whole. */
	char *buf = malloc(SW_CONFIG_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return SW_ERR_NOMEM;
	}
	errno = 0;
	size_t n = fread(buf, 1, SW_CONFIG_MAX_BYTES + 1, f);
	int e = errno;
	bool failed = ferror(f) != 0;
	fclose(f);
	sw_err r;
	if (failed) {
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot read: %s", path, e ? strerror(e) : "read error");
		r = SW_ERR_CONFIG;
	} else if (n > SW_CONFIG_MAX_BYTES) {
		if (err && errlen)
			snprintf(err, errlen,
			         "%s: larger than %d KiB; a configuration is a few lines, is this the right "
			         "file?",
			         path, SW_CONFIG_MAX_BYTES / 1024);
		r = SW_ERR_CONFIG;
	} else {
		r = sw_config_load_buffer(path, buf, n, env, out, err, errlen);
	}
	free(buf);
	return r;
}

void sw_config_free(sw_config *c)
{
	if (!c)
		return;
	free(c->file);
	strv_free(&c->roots);
	strv_free(&c->exclude);
	free(c->store);
	strv_free(&c->rules);
	strv_free(&c->yara_rules);
	free(c->ca_file);
	for (size_t i = 0; i < c->n_outputs; i++)
		output_free(&c->outputs[i]);
	free(c->outputs);
	free(c);
}

/* ---------- the platform env ---------- */

static int plat_dir_ok(void *ud, const char *path, char *why, size_t n)
{
	(void)ud;
	int r = sw_plat_is_dir(path);
	if (r == 0) {
		snprintf(why, n, "missing or not a directory");
		return 1;
	}
	if (r < 0) {
		snprintf(why, n, "cannot be examined");
		return 1;
	}
	if (!sw_plat_dir_readable(path)) {
		snprintf(why, n, "cannot be read by this user");
		return 1;
	}
	return 0;
}

static int plat_file_mode(void *ud, const char *path, unsigned *mode)
{
	(void)ud;
	return sw_plat_file_mode(path, mode);
}

static const char *plat_get_env(void *ud, const char *name)
{
	(void)ud;
	return getenv(name);
}

sw_config_env sw_config_env_platform(void)
{
	sw_config_env e = { NULL, plat_dir_ok, plat_get_env, plat_file_mode };
	return e;
}

/* ---------- printing ---------- */

static void put_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7F)
			fprintf(f, "\\x%02X", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void put_list(FILE *f, const char *key, const sw_strv *l)
{
	fprintf(f, "%s:", key);
	if (!l->n) {
		fputs(" []\n", f);
		return;
	}
	fputc('\n', f);
	for (size_t i = 0; i < l->n; i++) {
		fputs("  - ", f);
		put_str(f, l->v[i]);
		fputc('\n', f);
	}
}

static void put_kv(FILE *f, const char *key, const char *s)
{
	if (!s)
		return;
	fprintf(f, "    %s: ", key);
	put_str(f, s);
	fputc('\n', f);
}

sw_err sw_config_print(const sw_config *c, FILE *f)
{
	fprintf(f, "# signwatch: effective configuration from %s, defaults filled in\n", c->file);
	put_list(f, "roots", &c->roots);
	put_list(f, "exclude", &c->exclude);
	fputs("store: ", f);
	put_str(f, c->store);
	fputc('\n', f);
	put_list(f, "rules", &c->rules);
	put_list(f, "yara_rules", &c->yara_rules);
	fputs("ca_file: ", f);
	put_str(f, c->ca_file);
	fputc('\n', f);
	fputs("device_id: ", f);
	put_str(f, c->device_id[0] ? c->device_id : NULL);
	fputs(c->device_id[0] ? "\n" : "  # derived from the machine id\n", f);
	fprintf(f, "settle_ms: %d\nreconcile_hours: %d\nmax_file_mb: %d\nlog_level: %s\n", c->settle_ms,
	        c->reconcile_hours, c->max_file_mb, log_names[c->log_level]);
	fprintf(f, "cpu_budget_percent: %d\nthreads: %d\ncross_filesystems: %s\n", c->cpu_budget_percent,
	        c->threads, c->cross_filesystems ? "true" : "false");
	fprintf(f, "outputs:%s\n", c->outputs_default ? "  # the embedded default" : "");
	for (size_t i = 0; i < c->n_outputs; i++) {
		const sw_config_output *o = &c->outputs[i];
		fprintf(f, "  - type: %s\n", type_names[o->type]);
		switch (o->type) {
		case SW_OUT_FILE:
			put_kv(f, "path", o->path);
			fprintf(f, "    max_mb: %d\n    keep: %d\n", o->max_mb, o->keep);
			break;
		case SW_OUT_LOGS_INGESTION:
			put_kv(f, "endpoint", o->endpoint);
			put_kv(f, "dcr_id", o->dcr_id);
			put_kv(f, "stream", o->stream);
			put_kv(f, "tenant_id", o->tenant_id);
			put_kv(f, "client_id", o->client_id);
			put_kv(f, "token_url", o->token_url);
			if (o->secret_env)
				put_kv(f, "client_secret_env", o->secret_env);
			else if (o->secret)
				fputs("    # client_secret: set in the file, not shown\n", f);
			break;
		case SW_OUT_SYSLOG_TLS:
			put_kv(f, "host", o->host);
			fprintf(f, "    port: %d\n", o->port);
			put_kv(f, "app_name", o->app_name);
			break;
		case SW_OUT_HTTPS_JSON:
			put_kv(f, "url", o->url);
			fprintf(f, "    gzip: %s\n", o->gzip ? "true" : "false");
			if (o->secret_env)
				put_kv(f, "bearer_token_env", o->secret_env);
			else if (o->secret)
				fputs("    # bearer_token: set in the file, not shown\n", f);
			break;
		}
		put_kv(f, "client_certificate", o->client_certificate);
		put_kv(f, "client_key", o->client_key);
		put_kv(f, "ca_file", o->ca_file);
		put_kv(f, "pin_sha256", o->pin_sha256);
		fprintf(f, "    send_records: %s\n    send_summaries: %s\n", send_names[o->send_records],
		        o->send_summaries ? "true" : "false");
		fprintf(f, "    heartbeat_minutes: %d\n    outbox_mb: %d\n    max_backoff_s: %d\n",
		        o->heartbeat_minutes, o->outbox_mb, o->max_backoff_s);
	}
	return fflush(f) == 0 && !ferror(f) ? SW_OK : SW_ERR_IO;
}
