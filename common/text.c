/* signwatch: KQL string predicates over UTF-8. See text.h. */
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

struct sw_needle {
	sw_text_op op;
	bool term_before; /* has: the needle starts with a term character */
	bool term_after;  /* has: the needle ends with a term character */
	size_t len;       /* bytes of pat */
	uint64_t mask;    /* sw_text_mask(pat) */
	char *pat;        /* folded for case-insensitive ops, else as written */
	char *text;       /* as written, for messages */
};

static const char *const op_names[SW_TEXT__COUNT] = {
	"has",           "has_cs",   "contains",    "contains_cs", "startswith",
	"startswith_cs", "endswith", "endswith_cs", "==",          "=~",
};

const char *sw_text_op_name(sw_text_op op) { return (unsigned)op < SW_TEXT__COUNT ? op_names[op] : NULL; }

bool sw_text_op_folds(sw_text_op op)
{
	return op == SW_TEXT_HAS || op == SW_TEXT_CONTAINS || op == SW_TEXT_STARTSWITH ||
	       op == SW_TEXT_ENDSWITH || op == SW_TEXT_EQ_CI;
}

/* Decode one code point at s[0..n); returns its length, or 0 when the bytes
 * there are not a well-formed sequence (strict: no overlongs, surrogates or
 * values past U+10FFFF), so that attacker bytes never alias a real letter. */
static size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	int32_t v, min;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

static size_t utf8_encode(int32_t cp, char *out)
{
	unsigned char *o = (unsigned char *)out;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

bool sw_text_utf8_valid(const char *s, size_t len, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		int32_t cp;
		size_t k = utf8_decode(p + i, len - i, &cp);
		if (k == 0) {
			if (bad)
				*bad = i;
			return false;
		}
		i += k;
	}
	return true;
}

/* Simple case folding: to upper then to lower, so that e.g. final sigma,
 * sigma and capital sigma, or the Kelvin sign and 'k', land on one code
 * point, while each code point still maps to exactly one. */
static int32_t fold_cp(int32_t cp)
{
	if (cp < 0x80)
		return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
	return utf8proc_tolower(utf8proc_toupper(cp));
}

size_t sw_text_fold(const char *s, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;
	while (i < len) {
		unsigned char c = p[i];
		if (c < 0x80) {
			out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
			i++;
			continue;
		}
		int32_t cp;
		size_t k = utf8_decode(p + i, len - i, &cp);
		if (k == 0) {
			out[o++] = (char)0xFF;
			i++;
			continue;
		}
		/* k >= 2 input bytes become at most 4: within the 2x bound. */
		o += utf8_encode(fold_cp(cp), out + o);
		i += k;
	}
	out[o] = '\0';
	return o;
}

/* Term characters for has: Unicode letters, digits and other numbers, plus
 * combining marks, because a mark belongs to the letter before it (a
 * decomposed "a" + U+0308 is one letter to a reader). */
static bool is_term_cp(int32_t cp)
{
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
	utf8proc_category_t cat = utf8proc_category(cp);
	return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO;
}

/* Is the code point that starts at s[i] a term character? Invalid bytes are
 * separators. */
static bool term_at(const unsigned char *s, size_t n, size_t i)
{
	int32_t cp;
	size_t k = utf8_decode(s + i, n - i, &cp);
	return k != 0 && is_term_cp(cp);
}

/* Is the code point that ends just before s[i] a term character? Walk back
 * over at most three continuation bytes and accept only a sequence that
 * decodes to exactly [j, i). */
static bool term_before(const unsigned char *s, size_t i)
{
	size_t j = i;
	int steps = 0;
	do {
		j--;
		steps++;
	} while (j > 0 && steps < 4 && (s[j] & 0xC0) == 0x80);
	int32_t cp;
	size_t k = utf8_decode(s + j, i - j, &cp);
	return k == i - j && is_term_cp(cp);
}

/* First occurrence of pat (m > 0 bytes) in h[from..n), or SIZE_MAX. */
static size_t find(const char *h, size_t n, size_t from, const char *pat, size_t m)
{
	if (m > n)
		return SIZE_MAX;
	size_t last = n - m;
	unsigned char first = (unsigned char)pat[0];
	while (from <= last) {
		const char *p = memchr(h + from, first, last - from + 1);
		if (!p)
			return SIZE_MAX;
		size_t at = (size_t)(p - h);
		if (memcmp(p + 1, pat + 1, m - 1) == 0)
			return at;
		from = at + 1;
	}
	return SIZE_MAX;
}

static bool has_match(const sw_needle *nd, const char *h, size_t n)
{
	const unsigned char *u = (const unsigned char *)h;
	if (nd->len == 0)
		return true;
	size_t from = 0;
	for (;;) {
		size_t at = find(h, n, from, nd->pat, nd->len);
		if (at == SIZE_MAX)
			return false;
		size_t end = at + nd->len;
		bool ok = true;
		if (nd->term_before && at > 0 && term_before(u, at))
			ok = false;
		if (ok && nd->term_after && end < n && term_at(u, n, end))
			ok = false;
		if (ok)
			return true;
		from = at + 1;
	}
}

bool sw_needle_match(const sw_needle *nd, const char *raw, size_t rawlen, const char *folded, size_t flen)
{
	const char *h = raw;
	size_t n = rawlen;
	if (sw_text_op_folds(nd->op)) {
		if (!folded)
			return false;
		h = folded;
		n = flen;
	}
	switch (nd->op) {
	case SW_TEXT_HAS:
	case SW_TEXT_HAS_CS: return has_match(nd, h, n);
	case SW_TEXT_CONTAINS:
	case SW_TEXT_CONTAINS_CS: return nd->len == 0 || find(h, n, 0, nd->pat, nd->len) != SIZE_MAX;
	case SW_TEXT_STARTSWITH:
	case SW_TEXT_STARTSWITH_CS: return n >= nd->len && memcmp(h, nd->pat, nd->len) == 0;
	case SW_TEXT_ENDSWITH:
	case SW_TEXT_ENDSWITH_CS: return n >= nd->len && memcmp(h + n - nd->len, nd->pat, nd->len) == 0;
	case SW_TEXT_EQ:
	case SW_TEXT_EQ_CI: return n == nd->len && memcmp(h, nd->pat, n) == 0;
	case SW_TEXT__COUNT: break;
	}
	return false;
}

sw_err sw_needle_new(sw_text_op op, const char *s, size_t len, sw_needle **out)
{
	*out = NULL;
	if ((unsigned)op >= SW_TEXT__COUNT)
		return SW_ERR_RULE;
	if (memchr(s, '\0', len) || !sw_text_utf8_valid(s, len, NULL))
		return SW_ERR_RULE;
	sw_needle *nd = calloc(1, sizeof *nd);
	if (!nd)
		return SW_ERR_NOMEM;
	nd->op = op;
	nd->text = malloc(len + 1);
	nd->pat = malloc(sw_text_op_folds(op) ? sw_text_fold_bound(len) : len + 1);
	if (!nd->text || !nd->pat) {
		sw_needle_free(nd);
		return SW_ERR_NOMEM;
	}
	memcpy(nd->text, s, len);
	nd->text[len] = '\0';
	if (sw_text_op_folds(op)) {
		nd->len = sw_text_fold(s, len, nd->pat);
	} else {
		memcpy(nd->pat, s, len);
		nd->pat[len] = '\0';
		nd->len = len;
	}
	nd->mask = sw_text_mask(nd->pat, nd->len);
	if (nd->len > 0) {
		const unsigned char *u = (const unsigned char *)nd->pat;
		nd->term_before = term_at(u, nd->len, 0);
		nd->term_after = term_before(u, nd->len);
	}
	*out = nd;
	return SW_OK;
}

void sw_needle_free(sw_needle *nd)
{
	if (!nd)
		return;
	free(nd->pat);
	free(nd->text);
	free(nd);
}

uint64_t sw_text_mask(const char *s, size_t len)
{
	uint64_t m = 0;
	for (size_t i = 0; i < len; i++)
		m |= (uint64_t)1 << ((unsigned char)s[i] & 63);
	return m;
}

uint64_t sw_needle_mask(const sw_needle *nd) { return nd->mask; }
sw_text_op sw_needle_op(const sw_needle *nd) { return nd->op; }
const char *sw_needle_text(const sw_needle *nd) { return nd->text; }

bool sw_text_match(sw_text_op op, const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	sw_needle *nd;
	if (sw_needle_new(op, needle, nlen, &nd) != SW_OK)
		return false;
	char small[512];
	char *f = NULL;
	size_t flen = 0;
	bool heap = false;
	if (sw_text_op_folds(op)) {
		size_t need = sw_text_fold_bound(hlen);
		if (need <= sizeof small) {
			f = small;
		} else {
			f = malloc(need);
			heap = true;
			if (!f) {
				sw_needle_free(nd);
				return false;
			}
		}
		flen = sw_text_fold(hay, hlen, f);
	}
	bool r = sw_needle_match(nd, hay, hlen, f, flen);
	if (heap)
		free(f);
	sw_needle_free(nd);
	return r;
}
