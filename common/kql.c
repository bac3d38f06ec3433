/* signwatch: the KQL subset. See kql.h for what is accepted.
 *
 * A hand-written lexer and recursive-descent parser (depth-capped) build a
 * small tree; and/or nodes are n-ary so a long chain of terms does not turn
 * into deep recursion at evaluation time. */
#include "kql.h"

#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* Let the compiler check our printf-style message helpers. */
#if defined(__GNUC__) || defined(__clang__)
#include "sw_attr.h"
#else
#define SW_PRINTF(f, a)
#endif

_Static_assert(SW_COL__COUNT <= 64, "the fold cache keeps one bit per column");

/* ---------- values ---------- */

/* A time operand: now() + off when rel, else the absolute time off. */
typedef struct tval {
	bool rel;
	int64_t off;
} tval;

static int64_t tval_at(tval v, int64_t now_ms)
{
	if (!v.rel)
		return v.off;
	/* Saturate rather than overflow on absurd offsets from a rule file. */
	if (v.off > 0 && now_ms > INT64_MAX - v.off)
		return INT64_MAX;
	if (v.off < 0 && now_ms < INT64_MIN + 1 - v.off)
		return INT64_MIN + 1;
	return now_ms + v.off;
}

/* ---------- tree ---------- */

typedef enum nk {
	NK_AND,
	NK_OR,
	NK_NOT,
	NK_TEXT,    /* col op needle */
	NK_TEXTSET, /* has_any / has_all / in / in~ */
	NK_NUMSET,  /* in (numbers) on a long column */
	NK_CMP,     /* ==, !=, <, <=, >, >= on long/time/bool */
	NK_BETWEEN,
	NK_EMPTY,  /* isempty; neg = isnotempty */
	NK_BOOLCOL /* a bare bool column */
} nk;

typedef enum cmpop { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } cmpop;
static const char *const cmp_names[] = { "==", "!=", "<", "<=", ">", ">=" };

typedef struct node {
	nk k;
	bool neg;           /* the ! form of the operator */
	bool all;           /* NK_TEXTSET: has_all */
	const char *opname; /* as written, for describe */
	int col;
	cmpop cmp;
	tval a, b; /* NK_CMP: a; NK_BETWEEN: a..b (long operands: rel = false) */
	size_t n;
	struct node **kids; /* NK_AND/NK_OR: n; NK_NOT: 1 */
	struct node **ord;  /* NK_AND: kids in evaluation order (see plan()) */
	sw_needle **nd;     /* NK_TEXT: 1; NK_TEXTSET: n */
	uint64_t *masks;    /* sw_needle_mask of each nd, copied to skip a call */
	bool fold;          /* the needles' op folds case */
	int64_t *nums;      /* NK_NUMSET: n */
} node;

typedef struct let_def {
	char *name;
	tval v;
} let_def;

struct sw_kql {
	node *where;     /* NK_AND of the where clauses, NULL when none */
	const node *pre; /* a case-folded text test the whole query requires, or NULL */
	bool has_sum;
	size_t n_aggs;
	sw_kql_agg aggs[SW_KQL_MAX_AGGS];
	size_t n_by;
	int by[SW_KQL_MAX_BY];
};

static void node_free(node *n)
{
	if (!n)
		return;
	if (n->kids) {
		size_t m = n->k == NK_NOT ? 1 : n->n;
		for (size_t i = 0; i < m; i++)
			node_free(n->kids[i]);
		free(n->kids);
	}
	free(n->ord);
	free(n->masks);
	if (n->nd) {
		size_t m = n->k == NK_TEXT ? 1 : n->n;
		for (size_t i = 0; i < m; i++)
			sw_needle_free(n->nd[i]);
		free(n->nd);
	}
	free(n->nums);
	free(n);
}

void sw_kql_free(sw_kql *q)
{
	if (!q)
		return;
	node_free(q->where);
	for (size_t i = 0; i < q->n_aggs; i++)
		free((char *)q->aggs[i].name);
	free(q);
}

/* ---------- lexer ---------- */

typedef enum tk { TK_EOF, TK_IDENT, TK_STRING, TK_NUMBER, TK_TIMESPAN, TK_PUNCT, TK_BAD } tk;

typedef struct token {
	tk k;
	size_t pos, len; /* source span */
	int line, col;   /* 1-based, within the query */
	int64_t num;     /* TK_NUMBER value, TK_TIMESPAN milliseconds */
	bool real;       /* TK_NUMBER had a fraction */
	size_t slen;     /* TK_STRING: decoded bytes in parser.sbuf */
	const char *bad; /* TK_BAD: why */
} token;

typedef struct parser {
	const char *src;
	size_t len, pos;
	int line;
	size_t line_start;
	size_t col_pos; /* col_of() memo: column col_val is at byte col_pos */
	int col_val;
	int line_base, col_base;
	token cur;
	char *sbuf; /* decoded string of cur (TK_STRING) */
	char *err;
	size_t errlen;
	sw_err failed; /* SW_OK until the first error */
	int depth;
	size_t nodes;
	let_def lets[SW_KQL_MAX_LETS];
	size_t n_lets;
} parser;

static int col_of(parser *p, size_t pos)
{
	/* Columns count code points, as editors and libyaml do. Tokens come in
	 * order, so continue from the last answer on the same line rather than
	 * rescanning it (a 64 KiB one-line query would be quadratic). */
	size_t i = p->line_start;
	int c = 1;
	if (p->col_pos >= p->line_start && p->col_pos <= pos) {
		i = p->col_pos;
		c = p->col_val;
	}
	for (; i < pos && i < p->len; i++)
		if (((unsigned char)p->src[i] & 0xC0) != 0x80)
			c++;
	p->col_pos = pos;
	p->col_val = c;
	return c;
}

static SW_PRINTF(4, 5) void fail_at(parser *p, const token *t, sw_err e, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = e;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* Show the token, cut at 40 bytes on a character boundary, with control
	 * bytes replaced: it is user input going to a terminal. */
	char shown[64];
	size_t n = 0;
	if (t->k != TK_EOF) {
		size_t L = t->len > 40 ? 40 : t->len;
		while (L > 0 && L < t->len && ((unsigned char)p->src[t->pos + L] & 0xC0) == 0x80)
			L--;
		for (size_t i = 0; i < L && n < sizeof shown - 4; i++) {
			unsigned char c = (unsigned char)p->src[t->pos + i];
			shown[n++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
		}
		if (L < t->len) {
			memcpy(shown + n, "...", 3);
			n += 3;
		}
	}
	shown[n] = '\0';
	long line = (long)p->line_base + t->line - 1;
	long col = (long)p->col_base + t->col - 1;
	if (!p->err || p->errlen == 0)
		return;
	if (t->k == TK_EOF)
		snprintf(p->err, p->errlen, "%ld:%ld: %s (at end of query)", line, col, msg);
	else
		snprintf(p->err, p->errlen, "%ld:%ld: %s (at '%s')", line, col, msg, shown);
}

static bool is_ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(unsigned char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Skip blanks and // comments, tracking lines. */
static void skip_space(parser *p)
{
	while (p->pos < p->len) {
		char c = p->src[p->pos];
		if (c == '\n') {
			p->pos++;
			p->line++;
			p->line_start = p->pos;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			p->pos++;
		} else if (c == '/' && p->pos + 1 < p->len && p->src[p->pos + 1] == '/') {
			while (p->pos < p->len && p->src[p->pos] != '\n')
				p->pos++;
		} else {
			break;
		}
	}
}

/* Decode a quoted string starting at the quote at p->pos. */
static void lex_string(parser *p, token *t, bool verbatim)
{
	char q = p->src[p->pos++];
	size_t o = 0;
	for (;;) {
		if (p->pos >= p->len || p->src[p->pos] == '\n') {
			t->k = TK_BAD;
			t->bad = "unterminated string";
			return;
		}
		char c = p->src[p->pos++];
		if (c == q) {
			if (verbatim && p->pos < p->len && p->src[p->pos] == q) {
				p->pos++; /* a doubled quote stands for the quote */
			} else {
				break;
			}
		} else if (c == '\\' && !verbatim) {
			if (p->pos >= p->len) {
				t->k = TK_BAD;
				t->bad = "unterminated string";
				return;
			}
			char e = p->src[p->pos++];
			switch (e) {
			case '\\': c = '\\'; break;
			case '\'': c = '\''; break;
			case '"': c = '"'; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			default:
				t->k = TK_BAD;
				t->bad = "unknown escape in string (use \\\\, \\', \\\", \\n, \\t or \\r)";
				return;
			}
		}
		if (o >= SW_KQL_MAX_STRING) {
			t->k = TK_BAD;
			t->bad = "string literal too long";
			return;
		}
		p->sbuf[o++] = c;
	}
	p->sbuf[o] = '\0';
	t->k = TK_STRING;
	t->slen = o;
}

/* Milliseconds per timespan unit, 0 if the suffix is not one. */
static int64_t unit_ms(const char *s, size_t n)
{
	if (n == 1 && s[0] == 'd')
		return 86400000;
	if (n == 1 && s[0] == 'h')
		return 3600000;
	if (n == 1 && s[0] == 'm')
		return 60000;
	if (n == 1 && s[0] == 's')
		return 1000;
	if (n == 2 && s[0] == 'm' && s[1] == 's')
		return 1;
	return 0;
}

static void lex_number(parser *p, token *t)
{
	const char *s = p->src;
	int64_t ip = 0;
	bool over = false;
	while (p->pos < p->len && is_digit((unsigned char)s[p->pos])) {
		int d = s[p->pos++] - '0';
		if (ip > (INT64_MAX - d) / 10)
			over = true;
		else
			ip = ip * 10 + d;
	}
	int64_t frac = 0, scale = 1;
	bool real = false;
	/* "1..5" is 1, "..", 5: a dot is a fraction only before a digit. */
	if (p->pos + 1 < p->len && s[p->pos] == '.' && is_digit((unsigned char)s[p->pos + 1])) {
		real = true;
		p->pos++;
		while (p->pos < p->len && is_digit((unsigned char)s[p->pos])) {
			if (scale < 1000000000) {
				frac = frac * 10 + (s[p->pos] - '0');
				scale *= 10;
			}
			p->pos++;
		}
	}
	size_t us = p->pos;
	while (p->pos < p->len && is_ident_char((unsigned char)s[p->pos]))
		p->pos++;
	size_t un = p->pos - us;
	t->len = p->pos - t->pos;
	if (over) {
		t->k = TK_BAD;
		t->bad = "number too large";
		return;
	}
	if (un == 0) {
		t->k = TK_NUMBER;
		t->num = ip;
		t->real = real;
		return;
	}
	int64_t u = unit_ms(s + us, un);
	if (!u) {
		t->k = TK_BAD;
		t->bad = "bad number or timespan (units: d, h, m, s, ms)";
		return;
	}
	if (ip > INT64_MAX / u) {
		t->k = TK_BAD;
		t->bad = "timespan too large";
		return;
	}
	t->k = TK_TIMESPAN;
	t->num = ip * u + (frac * u) / scale;
}

static void next(parser *p)
{
	skip_space(p);
	token *t = &p->cur;
	memset(t, 0, sizeof *t);
	t->pos = p->pos;
	t->line = p->line;
	t->col = col_of(p, p->pos);
	if (p->pos >= p->len) {
		t->k = TK_EOF;
		return;
	}
	const char *s = p->src;
	unsigned char c = (unsigned char)s[p->pos];
	size_t rest = p->len - p->pos;
	if (c == '\'' || c == '"') {
		lex_string(p, t, false);
	} else if (c == '@' && rest > 1 && (s[p->pos + 1] == '\'' || s[p->pos + 1] == '"')) {
		p->pos++;
		lex_string(p, t, true);
	} else if ((c == 'h' || c == 'H') && rest > 1 && (s[p->pos + 1] == '\'' || s[p->pos + 1] == '"')) {
		p->pos++; /* h'...': KQL's obfuscated string, the same value */
		lex_string(p, t, false);
	} else if ((c == 'h' || c == 'H') && rest > 2 && s[p->pos + 1] == '@' &&
	           (s[p->pos + 2] == '\'' || s[p->pos + 2] == '"')) {
		p->pos += 2;
		lex_string(p, t, true);
	} else if (is_ident_start(c) ||
	           (c == '!' && rest > 1 && is_ident_start((unsigned char)s[p->pos + 1]))) {
		/* "!has" and friends are one token, as are "in~" and "!in~". */
		p->pos++;
		while (p->pos < p->len && is_ident_char((unsigned char)s[p->pos]))
			p->pos++;
		size_t n = p->pos - t->pos;
		if (p->pos < p->len && s[p->pos] == '~' &&
		    ((n == 2 && memcmp(s + t->pos, "in", 2) == 0) ||
		     (n == 3 && memcmp(s + t->pos, "!in", 3) == 0)))
			p->pos++;
		t->k = TK_IDENT;
	} else if (is_digit(c)) {
		lex_number(p, t);
	} else {
		static const char *const two[] = { "==", "!=", "=~", "!~", "..", "<=", ">=" };
		t->k = TK_PUNCT;
		p->pos++;
		for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
			if (rest >= 2 && s[t->pos] == two[i][0] && s[t->pos + 1] == two[i][1]) {
				p->pos++;
				break;
			}
		if (p->pos - t->pos == 1 && !strchr("|(),;=<>-", (char)c)) {
			/* Step over a whole UTF-8 sequence so the message shows it. */
			while (p->pos < p->len && ((unsigned char)s[p->pos] & 0xC0) == 0x80)
				p->pos++;
			t->k = TK_BAD;
			t->bad = "unexpected character";
		}
	}
	t->len = p->pos - t->pos;
	if (t->k == TK_BAD)
		fail_at(p, t, SW_ERR_RULE, "%s", t->bad);
}

static bool is_tok(const parser *p, tk k, const char *text)
{
	const token *t = &p->cur;
	if (t->k != k)
		return false;
	size_t n = strlen(text);
	return t->len == n && memcmp(p->src + t->pos, text, n) == 0;
}

static bool is_punct(const parser *p, const char *s) { return is_tok(p, TK_PUNCT, s); }
static bool is_word(const parser *p, const char *s) { return is_tok(p, TK_IDENT, s); }

static bool expect_punct(parser *p, const char *s, const char *what)
{
	if (p->failed)
		return false;
	if (!is_punct(p, s)) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected '%s' %s", s, what);
		return false;
	}
	next(p);
	return !p->failed;
}

/* Copy the current identifier into buf (NUL-terminated); false if too long. */
static bool ident_text(const parser *p, char *buf, size_t n)
{
	if (p->cur.len >= n)
		return false;
	memcpy(buf, p->src + p->cur.pos, p->cur.len);
	buf[p->cur.len] = '\0';
	return true;
}

static int ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int x = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a;
		int y = (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;
		if (x != y || !x)
			return x - y;
	}
}

/* Is the next non-blank character after the current token c (and, when
 * not_next is set, not followed by it)? Lets "Name=min(..)" be told from a
 * condition and "f(" from a column without a second token of lookahead. */
static bool followed_by(const parser *p, char c, const char *not_next)
{
	size_t i = p->pos;
	while (i < p->len &&
	       (p->src[i] == ' ' || p->src[i] == '\t' || p->src[i] == '\r' || p->src[i] == '\n'))
		i++;
	if (i >= p->len || p->src[i] != c)
		return false;
	if (not_next && i + 1 < p->len && p->src[i + 1] && strchr(not_next, p->src[i + 1]))
		return false;
	return true;
}

static node *new_node(parser *p, nk k)
{
	if (p->failed)
		return NULL;
	if (++p->nodes > SW_KQL_MAX_NODES) {
		fail_at(p, &p->cur, SW_ERR_LIMIT, "query too complex (more than %d conditions)",
		        SW_KQL_MAX_NODES);
		return NULL;
	}
	node *n = calloc(1, sizeof *n);
	if (!n)
		fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
	else
		n->k = k;
	return n;
}

/* Append kid to an and/or node; takes ownership of kid either way. */
static bool add_kid(parser *p, node *n, node *kid)
{
	if (!kid)
		return false;
	if ((n->n & (n->n - 1)) == 0) { /* grow at powers of two */
		size_t cap = n->n ? n->n * 2 : 2;
		node **k = realloc(n->kids, cap * sizeof *k);
		if (!k) {
			node_free(kid);
			fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
			return false;
		}
		n->kids = k;
	}
	n->kids[n->n++] = kid;
	return true;
}

static int parse_column(parser *p)
{
	if (p->failed)
		return -1;
	if (p->cur.k != TK_IDENT) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected a column name");
		return -1;
	}
	char name[64];
	if (!ident_text(p, name, sizeof name)) {
		fail_at(p, &p->cur, SW_ERR_RULE, "unknown column");
		return -1;
	}
	int c = sw_col_lookup(name);
	if (c < 0) {
		if (followed_by(p, '(', NULL)) {
			fail_at(p, &p->cur, SW_ERR_RULE, "unsupported function '%s'", name);
			return -1;
		}
		for (int i = 0; i < SW_COL__COUNT; i++) {
			const char *cn = sw_col_name((sw_col)i);
			if (cn && ascii_casecmp(cn, name) == 0) {
				fail_at(p, &p->cur, SW_ERR_RULE,
				        "unknown column '%s' (column names are case-sensitive: did you mean "
				        "'%s'?)",
				        name, cn);
				return -1;
			}
		}
		fail_at(p, &p->cur, SW_ERR_RULE, "unknown column '%s' of DeviceFileCertificateInfo", name);
		return -1;
	}
	next(p);
	return c;
}

/* ---------- dates ---------- */

static bool take_digits(const char *s, size_t n, size_t *i, int k, unsigned *v)
{
	*v = 0;
	for (int j = 0; j < k; j++) {
		if (*i >= n || !is_digit((unsigned char)s[*i]))
			return false;
		*v = *v * 10 + (unsigned)(s[(*i)++] - '0');
	}
	return true;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z], UTC. */
static bool parse_datetime(const char *s, size_t n, int64_t *ms)
{
	while (n && (s[0] == ' ' || s[0] == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 2 && (s[0] == '\'' || s[0] == '"') && s[n - 1] == s[0])
		s++, n -= 2;
	size_t i = 0;
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	if (!take_digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' || !take_digits(s, n, &i, 2, &mo) ||
	    i >= n || s[i++] != '-' || !take_digits(s, n, &i, 2, &d))
		return false;
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return false;
	if (i < n && (s[i] == 'T' || s[i] == ' ')) {
		i++;
		if (!take_digits(s, n, &i, 2, &h) || i >= n || s[i++] != ':' ||
		    !take_digits(s, n, &i, 2, &mi))
			return false;
		if (i < n && s[i] == ':') {
			i++;
			if (!take_digits(s, n, &i, 2, &sec))
				return false;
			if (i < n && s[i] == '.') {
				i++;
				unsigned scale = 100;
				size_t start = i;
				while (i < n && is_digit((unsigned char)s[i])) {
					frac += (unsigned)(s[i] - '0') * scale;
					scale /= 10;
					i++;
				}
				if (i == start)
					return false;
			}
		}
		if (h > 23 || mi > 59 || sec > 59)
			return false;
	}
	if (i < n && (s[i] == 'Z' || s[i] == 'z'))
		i++;
	if (i != n)
		return false;
	*ms = sw_time_make((int)y, (int)mo, (int)d, (int)h, (int)mi, (int)sec) + frac;
	return true;
}

/* ---------- operands ---------- */

/* [-]TIMESPAN at cur; false (with an error) otherwise. */
static bool parse_timespan(parser *p, int64_t *ms)
{
	bool minus = false;
	if (is_punct(p, "-")) {
		minus = true;
		next(p);
	}
	if (p->failed)
		return false;
	if (p->cur.k != TK_TIMESPAN) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected a timespan such as 5d, 12h, 30m, 10s or 500ms");
		return false;
	}
	*ms = minus ? -p->cur.num : p->cur.num;
	next(p);
	return !p->failed;
}

/* datetime(...) with cur at "datetime": its argument is raw text, not tokens. */
static bool parse_datetime_call(parser *p, tval *out)
{
	token at = p->cur;
	size_t i = p->pos;
	while (i < p->len && (p->src[i] == ' ' || p->src[i] == '\t'))
		i++;
	if (i >= p->len || p->src[i] != '(') {
		next(p);
		fail_at(p, &p->cur, SW_ERR_RULE, "expected '(' after datetime");
		return false;
	}
	size_t start = ++i;
	while (i < p->len && p->src[i] != ')' && p->src[i] != '\n')
		i++;
	if (i >= p->len || p->src[i] != ')') {
		fail_at(p, &at, SW_ERR_RULE, "unterminated datetime(...)");
		return false;
	}
	int64_t ms;
	if (!parse_datetime(p->src + start, i - start, &ms)) {
		at.len = i + 1 - at.pos;
		fail_at(p, &at, SW_ERR_RULE,
		        "bad datetime (use datetime(2024-01-31) or datetime(2024-01-31T12:00:00Z))");
		return false;
	}
	p->pos = i + 1;
	next(p);
	out->rel = false;
	out->off = ms;
	return !p->failed;
}

/* now(...), ago(...), datetime(...) or a let name. */
static bool parse_time(parser *p, tval *out)
{
	if (p->failed)
		return false;
	if (is_word(p, "now") || is_word(p, "ago")) {
		bool ago = is_word(p, "ago");
		next(p);
		if (!expect_punct(p, "(", ago ? "after ago" : "after now"))
			return false;
		int64_t ms = 0;
		if (ago || !is_punct(p, ")"))
			if (!parse_timespan(p, &ms))
				return false;
		if (!expect_punct(p, ")", "to close the call"))
			return false;
		out->rel = true;
		out->off = ago ? -ms : ms;
		return true;
	}
	if (is_word(p, "datetime"))
		return parse_datetime_call(p, out);
	if (p->cur.k == TK_IDENT) {
		for (size_t i = 0; i < p->n_lets; i++) {
			size_t n = strlen(p->lets[i].name);
			if (n == p->cur.len && memcmp(p->lets[i].name, p->src + p->cur.pos, n) == 0) {
				*out = p->lets[i].v;
				next(p);
				return !p->failed;
			}
		}
		if (followed_by(p, '(', NULL))
			fail_at(p, &p->cur, SW_ERR_RULE,
			        "unsupported function (time values: now(), ago(), datetime())");
		else
			fail_at(p, &p->cur, SW_ERR_RULE, "unknown name (not defined by a let statement)");
		return false;
	}
	fail_at(p, &p->cur, SW_ERR_RULE, "expected a time: now(...), ago(...), datetime(...) or a let name");
	return false;
}

static bool parse_long(parser *p, int64_t *out)
{
	bool minus = false;
	if (is_punct(p, "-")) {
		minus = true;
		next(p);
	}
	if (p->failed)
		return false;
	if (p->cur.k != TK_NUMBER || p->cur.real) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected an integer");
		return false;
	}
	*out = minus ? -p->cur.num : p->cur.num;
	next(p);
	return !p->failed;
}

/* A value for column type t: a time, a long, or (for bool) true/false/1/0. */
static bool parse_scalar(parser *p, sw_vtype t, tval *out)
{
	out->rel = false;
	if (t == SW_V_TIME)
		return parse_time(p, out);
	if (t == SW_V_BOOL) {
		if (is_word(p, "true") || (p->cur.k == TK_NUMBER && !p->cur.real && p->cur.num == 1)) {
			out->off = 1;
		} else if (is_word(p, "false") ||
		           (p->cur.k == TK_NUMBER && !p->cur.real && p->cur.num == 0)) {
			out->off = 0;
		} else {
			fail_at(p, &p->cur, SW_ERR_RULE, "expected true, false, 1 or 0 for a bool column");
			return false;
		}
		next(p);
		return !p->failed;
	}
	return parse_long(p, &out->off);
}

/* ---------- operators ---------- */

typedef struct strop {
	const char *name;
	sw_text_op op;
	bool neg;
} strop;

static const strop str_ops[] = {
	{ "has", SW_TEXT_HAS, false },
	{ "!has", SW_TEXT_HAS, true },
	{ "has_cs", SW_TEXT_HAS_CS, false },
	{ "!has_cs", SW_TEXT_HAS_CS, true },
	{ "contains", SW_TEXT_CONTAINS, false },
	{ "!contains", SW_TEXT_CONTAINS, true },
	{ "contains_cs", SW_TEXT_CONTAINS_CS, false },
	{ "!contains_cs", SW_TEXT_CONTAINS_CS, true },
	{ "startswith", SW_TEXT_STARTSWITH, false },
	{ "!startswith", SW_TEXT_STARTSWITH, true },
	{ "startswith_cs", SW_TEXT_STARTSWITH_CS, false },
	{ "!startswith_cs", SW_TEXT_STARTSWITH_CS, true },
	{ "endswith", SW_TEXT_ENDSWITH, false },
	{ "!endswith", SW_TEXT_ENDSWITH, true },
	{ "endswith_cs", SW_TEXT_ENDSWITH_CS, false },
	{ "!endswith_cs", SW_TEXT_ENDSWITH_CS, true },
	{ "==", SW_TEXT_EQ, false },
	{ "!=", SW_TEXT_EQ, true },
	{ "=~", SW_TEXT_EQ_CI, false },
	{ "!~", SW_TEXT_EQ_CI, true },
};

static const strop set_ops[] = {
	{ "has_any", SW_TEXT_HAS, false }, { "has_all", SW_TEXT_HAS, false }, { "in", SW_TEXT_EQ, false },
	{ "!in", SW_TEXT_EQ, true },       { "in~", SW_TEXT_EQ_CI, false },   { "!in~", SW_TEXT_EQ_CI, true },
};

static bool is_stringy(sw_vtype t) { return t == SW_V_STRING || t == SW_V_ARRAY; }

/* Needle ops where '' would match everything or nothing: a rule bug. */
static bool empty_needle_is_bug(sw_text_op op) { return op != SW_TEXT_EQ && op != SW_TEXT_EQ_CI; }

static sw_needle *parse_needle(parser *p, sw_text_op op, const char *opname)
{
	if (p->failed)
		return NULL;
	if (p->cur.k != TK_STRING) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected a string after '%s'", opname);
		return NULL;
	}
	if (p->cur.slen == 0 && empty_needle_is_bug(op)) {
		fail_at(p, &p->cur, SW_ERR_RULE,
		        "empty string after '%s' (it would match every value; use isempty() or remove the "
		        "condition)",
		        opname);
		return NULL;
	}
	sw_needle *nd;
	sw_err e = sw_needle_new(op, p->sbuf, p->cur.slen, &nd);
	if (e != SW_OK) {
		fail_at(p, &p->cur, e,
		        e == SW_ERR_NOMEM ? "out of memory" : "string is not valid UTF-8 or holds a NUL");
		return NULL;
	}
	next(p);
	if (p->failed) {
		sw_needle_free(nd);
		return NULL;
	}
	return nd;
}

static node *parse_list(parser *p, node *n, int col, const strop *so)
{
	sw_vtype t = sw_col_type((sw_col)col);
	bool numbers = t == SW_V_LONG && so->op == SW_TEXT_EQ && !n->all && strcmp(so->name, "has_any") != 0;
	if (!numbers && !is_stringy(t)) {
		fail_at(p, &p->cur, SW_ERR_RULE, "'%s' needs a string column", so->name);
		return n;
	}
	if (!expect_punct(p, "(", "to open the list"))
		return n;
	size_t cap = 0;
	for (;;) {
		if (n->n >= SW_KQL_MAX_LIST) {
			fail_at(p, &p->cur, SW_ERR_LIMIT, "list longer than %d items", SW_KQL_MAX_LIST);
			return n;
		}
		if (n->n == cap) {
			cap = cap ? cap * 2 : 4;
			if (numbers) {
				int64_t *v = realloc(n->nums, cap * sizeof *v);
				if (!v) {
					fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
					return n;
				}
				n->nums = v;
			} else {
				sw_needle **v = realloc(n->nd, cap * sizeof *v);
				if (!v) {
					fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
					return n;
				}
				n->nd = v;
			}
		}
		if (numbers) {
			if (!parse_long(p, &n->nums[n->n]))
				return n;
		} else {
			sw_needle *nd = parse_needle(p, so->op, so->name);
			if (!nd)
				return n;
			n->nd[n->n] = nd;
		}
		n->n++;
		if (is_punct(p, ",")) {
			next(p);
			continue;
		}
		break;
	}
	expect_punct(p, ")", "to close the list");
	return n;
}

static node *parse_or(parser *p);

/* col OP value, with cur just past the column. */
static node *parse_compare(parser *p, int col, const token *coltok)
{
	sw_vtype t = sw_col_type((sw_col)col);
	char opname[32] = "";
	if ((p->cur.k == TK_IDENT || p->cur.k == TK_PUNCT) && p->cur.len < sizeof opname) {
		memcpy(opname, p->src + p->cur.pos, p->cur.len);
		opname[p->cur.len] = '\0';
	}
	/* A bare bool column is a condition of its own. */
	if (t == SW_V_BOOL && (p->cur.k == TK_EOF || is_word(p, "and") || is_word(p, "or") ||
	                       is_punct(p, ")") || is_punct(p, "|") || is_punct(p, ";"))) {
		node *n = new_node(p, NK_BOOLCOL);
		if (n)
			n->col = col;
		return n;
	}
	if (strcmp(opname, "between") == 0 || strcmp(opname, "!between") == 0) {
		if (t != SW_V_TIME && t != SW_V_LONG) {
			fail_at(p, &p->cur, SW_ERR_RULE, "'between' needs a time or long column");
			return NULL;
		}
		node *n = new_node(p, NK_BETWEEN);
		if (!n)
			return NULL;
		n->col = col;
		n->neg = opname[0] == '!';
		next(p);
		if (expect_punct(p, "(", "after between") && parse_scalar(p, t, &n->a) &&
		    expect_punct(p, "..", "between the two ends") && parse_scalar(p, t, &n->b))
			expect_punct(p, ")", "to close between");
		return n;
	}
	for (size_t i = 0; i < sizeof set_ops / sizeof set_ops[0]; i++) {
		if (strcmp(opname, set_ops[i].name) != 0)
			continue;
		node *n = new_node(p, NK_TEXTSET);
		if (!n)
			return NULL;
		n->col = col;
		n->neg = set_ops[i].neg;
		n->all = strcmp(opname, "has_all") == 0;
		n->opname = set_ops[i].name;
		next(p);
		if (!p->failed && t == SW_V_LONG && set_ops[i].op == SW_TEXT_EQ && opname[0] != 'h')
			n->k = NK_NUMSET;
		return parse_list(p, n, col, &set_ops[i]);
	}
	static const char *const cmps[] = { "==", "!=", "<", "<=", ">", ">=" };
	if (!is_stringy(t)) {
		for (int i = 0; i < 6; i++) {
			if (strcmp(opname, cmps[i]) != 0)
				continue;
			if (t == SW_V_BOOL && i >= CMP_LT) {
				fail_at(p, &p->cur, SW_ERR_RULE, "'%s' does not apply to a bool column",
				        opname);
				return NULL;
			}
			node *n = new_node(p, NK_CMP);
			if (!n)
				return NULL;
			n->col = col;
			n->cmp = (cmpop)i;
			next(p);
			parse_scalar(p, t, &n->a);
			return n;
		}
	}
	for (size_t i = 0; i < sizeof str_ops / sizeof str_ops[0]; i++) {
		if (strcmp(opname, str_ops[i].name) != 0)
			continue;
		if (!is_stringy(t)) {
			fail_at(p, &p->cur, SW_ERR_RULE, "'%s' needs a string column, and %s is not one",
			        opname, sw_col_name((sw_col)col));
			return NULL;
		}
		node *n = new_node(p, NK_TEXT);
		if (!n)
			return NULL;
		n->col = col;
		n->neg = str_ops[i].neg;
		n->opname = str_ops[i].name;
		n->nd = calloc(1, sizeof *n->nd);
		if (!n->nd) {
			fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
			return n;
		}
		next(p);
		n->nd[0] = parse_needle(p, str_ops[i].op, str_ops[i].name);
		return n;
	}
	(void)coltok;
	if (p->cur.k == TK_EOF)
		fail_at(p, &p->cur, SW_ERR_RULE, "expected an operator after %s", sw_col_name((sw_col)col));
	else
		fail_at(p, &p->cur, SW_ERR_RULE,
		        "unsupported operator (supported: has, !has, has_cs, has_any, has_all, "
		        "contains, !contains, startswith, endswith, ==, !=, =~, !~, in, in~, between, <, >)");
	return NULL;
}

static node *parse_unary(parser *p)
{
	if (p->failed)
		return NULL;
	bool is_not = is_word(p, "not");
	if (is_not || is_punct(p, "(")) {
		if (++p->depth > SW_KQL_MAX_DEPTH) {
			fail_at(p, &p->cur, SW_ERR_LIMIT, "nesting deeper than %d", SW_KQL_MAX_DEPTH);
			return NULL;
		}
		node *n = NULL;
		if (is_not) {
			next(p);
			if (!expect_punct(p, "(", "after not"))
				return NULL;
			n = new_node(p, NK_NOT);
			if (!n)
				return NULL;
			n->kids = calloc(1, sizeof *n->kids);
			if (!n->kids) {
				fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
				return n;
			}
			n->kids[0] = parse_or(p);
		} else {
			next(p);
			n = parse_or(p);
		}
		expect_punct(p, ")", "to close the parenthesis");
		p->depth--;
		return n;
	}
	if (is_word(p, "isempty") || is_word(p, "isnotempty")) {
		node *n = new_node(p, NK_EMPTY);
		if (!n)
			return NULL;
		n->neg = is_word(p, "isnotempty");
		next(p);
		if (expect_punct(p, "(", "after isempty/isnotempty")) {
			n->col = parse_column(p);
			expect_punct(p, ")", "to close the call");
		}
		return n;
	}
	if (p->cur.k != TK_IDENT) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected a condition such as Signer has 'Name'");
		return NULL;
	}
	token coltok = p->cur;
	int col = parse_column(p);
	if (col < 0)
		return NULL;
	return parse_compare(p, col, &coltok);
}

/* An n-ary node of kind k over sub-expressions parsed by sub, joined by word. */
static node *parse_chain(parser *p, nk k, const char *word, node *(*sub)(parser *))
{
	node *first = sub(p);
	if (!first || p->failed || !is_word(p, word))
		return first;
	node *n = new_node(p, k);
	if (!n) {
		node_free(first);
		return NULL;
	}
	add_kid(p, n, first);
	while (!p->failed && is_word(p, word)) {
		next(p);
		if (!add_kid(p, n, sub(p)))
			break;
	}
	return n;
}

static node *parse_and(parser *p) { return parse_chain(p, NK_AND, "and", parse_unary); }
static node *parse_or(parser *p) { return parse_chain(p, NK_OR, "or", parse_and); }

/* ---------- statements ---------- */

static void parse_let(parser *p)
{
	next(p);
	if (p->failed)
		return;
	if (p->cur.k != TK_IDENT) {
		fail_at(p, &p->cur, SW_ERR_RULE, "expected a name after let");
		return;
	}
	if (p->n_lets >= SW_KQL_MAX_LETS) {
		fail_at(p, &p->cur, SW_ERR_LIMIT, "more than %d let statements", SW_KQL_MAX_LETS);
		return;
	}
	char name[64];
	if (!ident_text(p, name, sizeof name)) {
		fail_at(p, &p->cur, SW_ERR_RULE, "let name too long");
		return;
	}
	for (size_t i = 0; i < p->n_lets; i++)
		if (strcmp(p->lets[i].name, name) == 0) {
			fail_at(p, &p->cur, SW_ERR_RULE, "'%s' is already defined", name);
			return;
		}
	token nametok = p->cur;
	next(p);
	if (!expect_punct(p, "=", "after the let name"))
		return;
	tval v;
	if (!(is_word(p, "now") || is_word(p, "ago") || is_word(p, "datetime"))) {
		fail_at(p, &p->cur, SW_ERR_RULE,
		        "unsupported let value (only now(...), ago(...) and datetime(...))");
		return;
	}
	if (!parse_time(p, &v))
		return;
	if (!expect_punct(p, ";", "to end the let statement"))
		return;
	char *dup = malloc(strlen(name) + 1);
	if (!dup) {
		fail_at(p, &nametok, SW_ERR_NOMEM, "out of memory");
		return;
	}
	strcpy(dup, name);
	p->lets[p->n_lets].name = dup;
	p->lets[p->n_lets].v = v;
	p->n_lets++;
}

static bool agg_name_taken(const sw_kql *q, const char *name)
{
	for (size_t i = 0; i < q->n_aggs; i++)
		if (strcmp(q->aggs[i].name, name) == 0)
			return true;
	return false;
}

static void parse_summarize(parser *p, sw_kql *q)
{
	next(p);
	while (!p->failed && !is_word(p, "by") && p->cur.k == TK_IDENT) {
		if (q->n_aggs >= SW_KQL_MAX_AGGS) {
			fail_at(p, &p->cur, SW_ERR_LIMIT, "more than %d aggregations", SW_KQL_MAX_AGGS);
			return;
		}
		char name[64] = "";
		token nametok = p->cur;
		if (followed_by(p, '=', "=~")) {
			if (!ident_text(p, name, sizeof name)) {
				fail_at(p, &p->cur, SW_ERR_RULE, "output name too long");
				return;
			}
			next(p);
			next(p); /* the '=' */
			if (p->failed)
				return;
		}
		sw_kql_agg *a = &q->aggs[q->n_aggs];
		a->col = -1;
		a->cap = 0;
		if (is_word(p, "min")) {
			a->fn = SW_AGG_MIN;
		} else if (is_word(p, "max")) {
			a->fn = SW_AGG_MAX;
		} else if (is_word(p, "make_set")) {
			a->fn = SW_AGG_MAKE_SET;
			a->cap = SW_KQL_SET_CAP_DEFAULT;
		} else if (is_word(p, "count")) {
			a->fn = SW_AGG_COUNT;
		} else {
			fail_at(p, &p->cur, SW_ERR_RULE,
			        "unsupported aggregation (only min, max, make_set and count)");
			return;
		}
		next(p);
		if (!expect_punct(p, "(", "after the aggregation"))
			return;
		if (a->fn != SW_AGG_COUNT) {
			token ct = p->cur;
			a->col = parse_column(p);
			if (a->col < 0)
				return;
			sw_vtype t = sw_col_type((sw_col)a->col);
			if (a->fn != SW_AGG_MAKE_SET && t != SW_V_TIME && t != SW_V_LONG &&
			    t != SW_V_STRING) {
				fail_at(p, &ct, SW_ERR_RULE, "min/max need a time, long or string column");
				return;
			}
			if (a->fn == SW_AGG_MAKE_SET && is_punct(p, ",")) {
				next(p);
				token nt = p->cur;
				int64_t cap;
				if (!parse_long(p, &cap))
					return;
				if (cap < 1 || cap > SW_KQL_SET_CAP_DEFAULT) {
					fail_at(p, &nt, SW_ERR_RULE, "make_set size must be 1..%d",
					        SW_KQL_SET_CAP_DEFAULT);
					return;
				}
				a->cap = (size_t)cap;
			}
		}
		if (!expect_punct(p, ")", "to close the aggregation"))
			return;
		if (!name[0]) {
			/* KQL's default output names. */
			const char *cn = a->col >= 0 ? sw_col_name((sw_col)a->col) : "";
			static const char *const pre[] = { "min_", "max_", "set_", "count_" };
			snprintf(name, sizeof name, "%s%s", pre[a->fn], a->fn == SW_AGG_COUNT ? "" : cn);
		}
		if (agg_name_taken(q, name)) {
			fail_at(p, &nametok, SW_ERR_RULE, "output name '%s' used twice", name);
			return;
		}
		char *dup = malloc(strlen(name) + 1);
		if (!dup) {
			fail_at(p, &nametok, SW_ERR_NOMEM, "out of memory");
			return;
		}
		strcpy(dup, name);
		a->name = dup;
		q->n_aggs++;
		if (!is_punct(p, ","))
			break;
		next(p);
	}
	if (p->failed)
		return;
	if (is_word(p, "by")) {
		next(p);
		for (;;) {
			if (q->n_by >= SW_KQL_MAX_BY) {
				fail_at(p, &p->cur, SW_ERR_LIMIT, "more than %d by-columns", SW_KQL_MAX_BY);
				return;
			}
			token ct = p->cur;
			int c = parse_column(p);
			if (c < 0)
				return;
			if (agg_name_taken(q, sw_col_name((sw_col)c))) {
				fail_at(p, &ct, SW_ERR_RULE, "'%s' is both an output name and a by-column",
				        sw_col_name((sw_col)c));
				return;
			}
			q->by[q->n_by++] = c;
			if (!is_punct(p, ","))
				break;
			next(p);
		}
	}
	if (q->n_aggs == 0 && q->n_by == 0 && !p->failed)
		fail_at(p, &p->cur, SW_ERR_RULE,
		        "expected an aggregation such as count() or 'by' after summarize");
	q->has_sum = true;
}

/* Prepare evaluation: copy needle masks into their nodes, and order each
 * and's terms so that string predicates run first, since in a rule pack
 * most records fail them on the mask test alone and the rest is skipped.
 * Terms have no side effects, so the order does not change the result;
 * describe() keeps the written order. Depth is bounded by the parser. */
static bool plan(node *n)
{
	if (n->k == NK_TEXT || n->k == NK_TEXTSET) {
		size_t m = n->k == NK_TEXT ? 1 : n->n;
		n->masks = malloc((m ? m : 1) * sizeof *n->masks);
		if (!n->masks)
			return false;
		for (size_t i = 0; i < m; i++)
			n->masks[i] = sw_needle_mask(n->nd[i]);
		n->fold = m > 0 && sw_text_op_folds(sw_needle_op(n->nd[0]));
		return true;
	}
	if (n->k == NK_NOT)
		return plan(n->kids[0]);
	if (n->k != NK_AND && n->k != NK_OR)
		return true;
	for (size_t i = 0; i < n->n; i++)
		if (!plan(n->kids[i]))
			return false;
	if (n->k == NK_AND) {
		n->ord = malloc(n->n * sizeof *n->ord);
		if (!n->ord)
			return false;
		size_t o = 0;
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < n->n; i++) {
				bool text = n->kids[i]->k == NK_TEXT || n->kids[i]->k == NK_TEXTSET;
				if (text == (pass == 0))
					n->ord[o++] = n->kids[i];
			}
	}
	return true;
}

/* A test every match must pass, cheap to check first: a positive,
 * case-folded text predicate on a string column among the top-level
 * and-ed clauses (one level of nesting). Its needles' byte masks decide
 * most records for a pack of rules without evaluating the query. */
static bool prefilterable(const node *n)
{
	return (n->k == NK_TEXT || n->k == NK_TEXTSET) && !n->neg && n->fold && n->masks &&
	       sw_col_type((sw_col)n->col) == SW_V_STRING;
}

static const node *prefilter(const node *w)
{
	if (!w || w->k != NK_AND)
		return w && prefilterable(w) ? w : NULL;
	for (size_t i = 0; i < w->n; i++) {
		const node *k = w->kids[i];
		if (prefilterable(k))
			return k;
		if (k->k == NK_AND)
			for (size_t j = 0; j < k->n; j++)
				if (prefilterable(k->kids[j]))
					return k->kids[j];
	}
	return NULL;
}

sw_err sw_kql_compile(const char *query, size_t len, int line_base, int col_base, sw_kql **out, char *err,
                      size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	parser P;
	memset(&P, 0, sizeof P);
	parser *p = &P;
	p->src = query;
	p->len = len;
	p->line = 1;
	p->col_val = 1;
	p->line_base = line_base;
	p->col_base = col_base;
	p->err = err;
	p->errlen = errlen;
	if (len > SW_KQL_MAX_QUERY) {
		p->cur.line = 1;
		p->cur.col = 1;
		p->cur.k = TK_EOF;
		fail_at(p, &p->cur, SW_ERR_LIMIT, "query longer than %u bytes", SW_KQL_MAX_QUERY);
		return p->failed;
	}
	size_t bad = len;
	const char *nul = memchr(query, '\0', len);
	(void)sw_text_utf8_valid(query, len, &bad); /* leaves bad = len when valid */
	if (nul && (size_t)(nul - query) < bad)
		bad = (size_t)(nul - query);
	if (bad < len) {
		for (size_t i = 0; i < bad; i++)
			if (query[i] == '\n') {
				p->line++;
				p->line_start = i + 1;
			}
		token t = { .k = TK_PUNCT, .pos = bad, .len = 1, .line = p->line, .col = col_of(p, bad) };
		fail_at(p, &t, SW_ERR_RULE, "query is not valid UTF-8 text");
		return p->failed;
	}
	p->sbuf = malloc(len + 1);
	sw_kql *q = calloc(1, sizeof *q);
	if (!p->sbuf || !q) {
		free(p->sbuf);
		free(q);
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return SW_ERR_NOMEM;
	}
	next(p);
	while (!p->failed && is_word(p, "let"))
		parse_let(p);
	if (!p->failed) {
		if (p->cur.k != TK_IDENT)
			fail_at(p, &p->cur, SW_ERR_RULE, "expected the table name DeviceFileCertificateInfo");
		else if (!is_word(p, "DeviceFileCertificateInfo"))
			fail_at(p, &p->cur, SW_ERR_RULE,
			        "unsupported table (only DeviceFileCertificateInfo)");
		else
			next(p);
	}
	while (!p->failed && is_punct(p, "|")) {
		next(p);
		if (q->has_sum) {
			fail_at(p, &p->cur, SW_ERR_RULE, "summarize must be the last operator");
			break;
		}
		if (is_word(p, "where")) {
			next(p);
			node *w = parse_or(p);
			if (!w)
				break;
			if (!q->where && !(q->where = new_node(p, NK_AND))) {
				node_free(w);
				break;
			}
			if (!add_kid(p, q->where, w))
				break;
		} else if (is_word(p, "summarize")) {
			parse_summarize(p, q);
		} else {
			fail_at(p, &p->cur, SW_ERR_RULE,
			        "unsupported tabular operator (only where and summarize)");
		}
	}
	if (!p->failed && is_punct(p, ";"))
		next(p);
	if (!p->failed && p->cur.k != TK_EOF)
		fail_at(p, &p->cur, SW_ERR_RULE, "unexpected text after the query");
	for (size_t i = 0; i < p->n_lets; i++)
		free(p->lets[i].name);
	free(p->sbuf);
	if (!p->failed && q->where && !plan(q->where))
		fail_at(p, &p->cur, SW_ERR_NOMEM, "out of memory");
	if (p->failed) {
		sw_kql_free(q);
		return p->failed;
	}
	q->pre = prefilter(q->where);
	*out = q;
	return SW_OK;
}

/* ---------- evaluation ---------- */

struct sw_kql_scratch {
	const sw_record *rec;
	uint64_t have; /* bit c: column c's fold is cached */
	size_t off[SW_COL__COUNT];
	size_t flen[SW_COL__COUNT];
	uint64_t mask[SW_COL__COUNT]; /* sw_text_mask of the fold */
	char *buf;
	size_t cap, used;
	bool own; /* buf is malloc'd (else caller's stack) */
};

sw_kql_scratch *sw_kql_scratch_new(void)
{
	sw_kql_scratch *s = calloc(1, sizeof *s);
	if (s)
		s->own = true;
	return s;
}

void sw_kql_scratch_free(sw_kql_scratch *s)
{
	if (!s)
		return;
	if (s->own)
		free(s->buf);
	free(s);
}

void sw_kql_scratch_reset(sw_kql_scratch *s)
{
	s->rec = NULL;
	s->have = 0;
	s->used = 0;
}

static bool scratch_reserve(sw_kql_scratch *s, size_t need)
{
	if (need > SIZE_MAX - s->used)
		return false;
	if (s->used + need <= s->cap)
		return true;
	size_t cap = s->cap ? s->cap : 256;
	while (cap < s->used + need) {
		if (cap > SIZE_MAX / 2)
			return false;
		cap *= 2;
	}
	char *b;
	if (s->own) {
		b = realloc(s->buf, cap);
	} else {
		b = malloc(cap);
		if (b && s->used)
			memcpy(b, s->buf, s->used);
	}
	if (!b)
		return false;
	s->buf = b;
	s->cap = cap;
	s->own = true;
	return true;
}

typedef struct ev {
	const sw_record *r;
	int64_t now;
	sw_kql_scratch *s;
} ev;

/* Does needle nd hold on column col (some element, for an array)? On out
 * of memory a folded comparison is false: a missed match, never a crash. */
static bool needle_col(ev *e, const sw_needle *nd, uint64_t mask, bool fold, int col)
{
	sw_kql_scratch *s = e->s;
	if (fold && (s->have >> col) & 1) {
		/* The common case for a pack: most needles fail the mask test. */
		if (mask & ~s->mask[col])
			return false;
		return sw_needle_match(nd, "", 0, s->buf + s->off[col], s->flen[col]);
	}
	sw_value v;
	sw_record_get(e->r, (sw_col)col, &v);
	if (v.type == SW_V_ARRAY) {
		for (size_t i = 0; i < v.n; i++) {
			const char *str = v.arr && v.arr[i] ? v.arr[i] : "";
			size_t len = strlen(str);
			if (!fold) {
				if (sw_needle_match(nd, str, len, NULL, 0))
					return true;
				continue;
			}
			/* Elements are folded into the free tail, not cached. */
			if (!scratch_reserve(s, sw_text_fold_bound(len)))
				return false;
			size_t fl = sw_text_fold(str, len, s->buf + s->used);
			if (sw_needle_match(nd, str, len, s->buf + s->used, fl))
				return true;
		}
		return false;
	}
	const char *str = v.type == SW_V_STRING && v.s ? v.s : "";
	size_t len = strlen(str);
	if (!fold)
		return sw_needle_match(nd, str, len, NULL, 0);
	if (!scratch_reserve(s, sw_text_fold_bound(len)))
		return false;
	s->off[col] = s->used;
	s->flen[col] = sw_text_fold(str, len, s->buf + s->used);
	s->used += s->flen[col] + 1;
	s->mask[col] = sw_text_mask(s->buf + s->off[col], s->flen[col]);
	s->have |= (uint64_t)1 << col;
	return sw_needle_match(nd, str, len, s->buf + s->off[col], s->flen[col]);
}

static bool num_of(const sw_value *v, int64_t *out)
{
	if (v->type != SW_V_BOOL && v->type != SW_V_LONG && v->type != SW_V_TIME)
		return false;
	if (v->type == SW_V_TIME && v->i == SW_TIME_NULL)
		return false;
	*out = v->i;
	return true;
}

static bool eval(const node *n, ev *e)
{
	switch (n->k) {
	case NK_AND:
		for (size_t i = 0; i < n->n; i++)
			if (!eval(n->ord[i], e))
				return false;
		return true;
	case NK_OR:
		for (size_t i = 0; i < n->n; i++)
			if (eval(n->kids[i], e))
				return true;
		return false;
	case NK_NOT: return !eval(n->kids[0], e);
	case NK_TEXT: return needle_col(e, n->nd[0], n->masks[0], n->fold, n->col) != n->neg;
	case NK_TEXTSET: {
		bool r;
		if (n->all) {
			r = true;
			for (size_t i = 0; i < n->n && r; i++)
				r = needle_col(e, n->nd[i], n->masks[i], n->fold, n->col);
		} else {
			r = false;
			for (size_t i = 0; i < n->n && !r; i++)
				r = needle_col(e, n->nd[i], n->masks[i], n->fold, n->col);
		}
		return r != n->neg;
	}
	case NK_NUMSET: {
		sw_value v;
		int64_t x;
		sw_record_get(e->r, (sw_col)n->col, &v);
		if (!num_of(&v, &x))
			return false;
		bool r = false;
		for (size_t i = 0; i < n->n && !r; i++)
			r = n->nums[i] == x;
		return r != n->neg;
	}
	case NK_CMP: {
		sw_value v;
		int64_t x;
		sw_record_get(e->r, (sw_col)n->col, &v);
		if (!num_of(&v, &x))
			return false;
		int64_t y = tval_at(n->a, e->now);
		switch (n->cmp) {
		case CMP_EQ: return x == y;
		case CMP_NE: return x != y;
		case CMP_LT: return x < y;
		case CMP_LE: return x <= y;
		case CMP_GT: return x > y;
		case CMP_GE: return x >= y;
		}
		return false;
	}
	case NK_BETWEEN: {
		sw_value v;
		int64_t x;
		sw_record_get(e->r, (sw_col)n->col, &v);
		if (!num_of(&v, &x))
			return false;
		bool in = x >= tval_at(n->a, e->now) && x <= tval_at(n->b, e->now);
		return in != n->neg;
	}
	case NK_EMPTY: {
		sw_value v;
		sw_record_get(e->r, (sw_col)n->col, &v);
		bool empty;
		switch (v.type) {
		case SW_V_STRING: empty = !v.s || !v.s[0]; break;
		case SW_V_ARRAY: empty = v.n == 0; break;
		case SW_V_TIME: empty = v.i == SW_TIME_NULL; break;
		case SW_V_NULL: empty = true; break;
		default: empty = false; break;
		}
		return empty != n->neg;
	}
	case NK_BOOLCOL: {
		sw_value v;
		sw_record_get(e->r, (sw_col)n->col, &v);
		return v.type == SW_V_BOOL && v.i != 0;
	}
	}
	return false;
}

bool sw_kql_match_scratch(const sw_kql *q, const sw_record *r, int64_t now_ms, sw_kql_scratch *s)
{
	if (!q->where)
		return true;
	if (s->rec != r) {
		sw_kql_scratch_reset(s);
		s->rec = r;
	}
	/* Once the column is folded for this record, a needle with a byte the
	 * column lacks cannot match: reject without walking the query. */
	const node *pre = q->pre;
	if (pre && ((s->have >> pre->col) & 1)) {
		uint64_t hay = s->mask[pre->col];
		size_t m = pre->k == NK_TEXT ? 1 : pre->n;
		bool all = pre->k == NK_TEXTSET && pre->all;
		bool any_ok = false, all_ok = true;
		for (size_t i = 0; i < m; i++) {
			bool ok = !(pre->masks[i] & ~hay);
			any_ok |= ok;
			all_ok &= ok;
		}
		if (all ? !all_ok : !any_ok)
			return false;
	}
	ev e = { r, now_ms, s };
	return eval(q->where, &e);
}

bool sw_kql_match(const sw_kql *q, const sw_record *r, int64_t now_ms)
{
	char local[1024];
	sw_kql_scratch s; /* the per-column arrays are guarded by have: no memset */
	s.rec = NULL;
	s.have = 0;
	s.used = 0;
	s.buf = local;
	s.cap = sizeof local;
	s.own = false;
	bool m = sw_kql_match_scratch(q, r, now_ms, &s);
	if (s.own)
		free(s.buf);
	return m;
}

/* ---------- window ---------- */

static void window_of(const node *n, int64_t now, int64_t *lo, int64_t *hi, int *found)
{
	if (n->k == NK_AND) {
		for (size_t i = 0; i < n->n; i++)
			window_of(n->kids[i], now, lo, hi, found);
		return;
	}
	if (n->col != SW_COL_TIMESTAMP || n->neg)
		return;
	if (n->k == NK_BETWEEN) {
		int64_t a = tval_at(n->a, now), b = tval_at(n->b, now);
		if (a > *lo)
			*lo = a;
		if (b < *hi)
			*hi = b;
		*found = 1;
	} else if (n->k == NK_CMP) {
		int64_t v = tval_at(n->a, now);
		switch (n->cmp) {
		case CMP_EQ:
			if (v > *lo)
				*lo = v;
			if (v < *hi)
				*hi = v;
			break;
		case CMP_GT:
			if (v < INT64_MAX && v + 1 > *lo)
				*lo = v + 1;
			break;
		case CMP_GE:
			if (v > *lo)
				*lo = v;
			break;
		case CMP_LT:
			if (v > INT64_MIN && v - 1 < *hi)
				*hi = v - 1;
			break;
		case CMP_LE:
			if (v < *hi)
				*hi = v;
			break;
		case CMP_NE: return;
		}
		*found = 1;
	}
}

int sw_kql_window(const sw_kql *q, int64_t now_ms, int64_t *from_ms, int64_t *to_ms)
{
	int64_t lo = INT64_MIN, hi = INT64_MAX;
	int found = 0;
	if (q->where)
		window_of(q->where, now_ms, &lo, &hi, &found);
	if (found) {
		*from_ms = lo;
		*to_ms = hi;
	}
	return found;
}

/* ---------- summarize accessors ---------- */

bool sw_kql_has_summarize(const sw_kql *q) { return q->has_sum; }
size_t sw_kql_agg_count(const sw_kql *q) { return q->n_aggs; }
size_t sw_kql_by_count(const sw_kql *q) { return q->n_by; }

bool sw_kql_agg_get(const sw_kql *q, size_t i, sw_kql_agg *out)
{
	if (i >= q->n_aggs)
		return false;
	*out = q->aggs[i];
	return true;
}

int sw_kql_by_col(const sw_kql *q, size_t i) { return i < q->n_by ? q->by[i] : -1; }

const char *sw_agg_fn_name(sw_agg_fn fn)
{
	switch (fn) {
	case SW_AGG_MIN: return "min";
	case SW_AGG_MAX: return "max";
	case SW_AGG_MAKE_SET: return "make_set";
	case SW_AGG_COUNT: return "count";
	}
	return "?";
}

/* ---------- describe ---------- */

static void sb_quoted(sw_strbuf *b, const char *s)
{
	sw_sb_puts(b, "'");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\'' || c == '\\') {
			char e[2] = { '\\', (char)c };
			sw_sb_put(b, e, 2);
		} else if (c == '\n') {
			sw_sb_puts(b, "\\n");
		} else if (c == '\t') {
			sw_sb_puts(b, "\\t");
		} else if (c == '\r') {
			sw_sb_puts(b, "\\r");
		} else {
			sw_sb_put(b, (const char *)&c, 1);
		}
	}
	sw_sb_puts(b, "'");
}

static void sb_span(sw_strbuf *b, int64_t ms)
{
	static const struct {
		int64_t ms;
		const char *u;
	} units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" },
	};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (ms % units[i].ms == 0) {
			sw_sb_printf(b, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
			return;
		}
}

static void sb_time(sw_strbuf *b, tval v)
{
	if (v.rel) {
		if (v.off == 0) {
			sw_sb_puts(b, "now()");
		} else {
			sw_sb_puts(b, "now(");
			sb_span(b, v.off);
			sw_sb_puts(b, ")");
		}
		return;
	}
	/* datetime(ISO 8601 with Z): the record's own time format. */
	char iso[40];
	sw_time_iso(v.off, iso, sizeof(iso));
	iso[strlen(iso) - 1] = 0; /* the Z goes after */
	sw_sb_printf(b, "datetime(%s", iso);
	sw_sb_puts(b, "Z)");
}

static void sb_value(sw_strbuf *b, int col, tval v)
{
	sw_vtype t = sw_col_type((sw_col)col);
	if (t == SW_V_TIME)
		sb_time(b, v);
	else if (t == SW_V_BOOL)
		sw_sb_puts(b, v.off ? "true" : "false");
	else
		sw_sb_printf(b, "%lld", (long long)v.off);
}

static void describe(sw_strbuf *b, const node *n, bool in_and)
{
	const char *cn = n->col >= 0 ? sw_col_name((sw_col)n->col) : "?";
	switch (n->k) {
	case NK_AND:
	case NK_OR: {
		bool paren = n->k == NK_OR && in_and;
		if (paren)
			sw_sb_puts(b, "(");
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				sw_sb_puts(b, n->k == NK_AND ? " and " : " or ");
			describe(b, n->kids[i], n->k == NK_AND);
		}
		if (paren)
			sw_sb_puts(b, ")");
		return;
	}
	case NK_NOT:
		sw_sb_puts(b, "not(");
		describe(b, n->kids[0], false);
		sw_sb_puts(b, ")");
		return;
	case NK_TEXT:
		sw_sb_printf(b, "%s %s ", cn, n->opname);
		sb_quoted(b, sw_needle_text(n->nd[0]));
		return;
	case NK_TEXTSET:
	case NK_NUMSET:
		sw_sb_printf(b, "%s %s (", cn, n->opname);
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				sw_sb_puts(b, ", ");
			if (n->k == NK_NUMSET)
				sw_sb_printf(b, "%lld", (long long)n->nums[i]);
			else
				sb_quoted(b, sw_needle_text(n->nd[i]));
		}
		sw_sb_puts(b, ")");
		return;
	case NK_CMP:
		sw_sb_printf(b, "%s %s ", cn, cmp_names[n->cmp]);
		sb_value(b, n->col, n->a);
		return;
	case NK_BETWEEN:
		sw_sb_printf(b, "%s %sbetween (", cn, n->neg ? "!" : "");
		sb_value(b, n->col, n->a);
		sw_sb_puts(b, " .. ");
		sb_value(b, n->col, n->b);
		sw_sb_puts(b, ")");
		return;
	case NK_EMPTY: sw_sb_printf(b, "%s(%s)", n->neg ? "isnotempty" : "isempty", cn); return;
	case NK_BOOLCOL: sw_sb_puts(b, cn); return;
	}
}

char *sw_kql_describe(const sw_kql *q)
{
	sw_strbuf b = { NULL, 0, 0, false };
	if (q->where)
		describe(&b, q->where, false);
	else
		sw_sb_puts(&b, "true");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
