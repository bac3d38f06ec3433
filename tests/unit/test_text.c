/* Unit tests for common/text.c: the vectors in tests/data/has_vectors.tsv
 * (path in argv[1]) and the folding/validation primitives. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "text.h"

/* Decode \xHH, \t, \n, \\ in place; returns the length, or -1 if malformed. */
static long unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		p++;
		if (*p == 't') {
			*o++ = '\t';
		} else if (*p == 'n') {
			*o++ = '\n';
		} else if (*p == '\\') {
			*o++ = '\\';
		} else if (*p == 'x' && p[1] && p[2]) {
			char hex[3] = { p[1], p[2], 0 };
			char *end;
			long v = strtol(hex, &end, 16);
			if (*end)
				return -1;
			*o++ = (char)v;
			p += 2;
		} else {
			return -1;
		}
	}
	return (long)(o - s);
}

typedef struct opname {
	const char *name;
	sw_text_op op;
	int neg;
} opname;

static const opname ops[] = {
	{ "has", SW_TEXT_HAS, 0 },
	{ "!has", SW_TEXT_HAS, 1 },
	{ "has_cs", SW_TEXT_HAS_CS, 0 },
	{ "!has_cs", SW_TEXT_HAS_CS, 1 },
	{ "contains", SW_TEXT_CONTAINS, 0 },
	{ "!contains", SW_TEXT_CONTAINS, 1 },
	{ "contains_cs", SW_TEXT_CONTAINS_CS, 0 },
	{ "!contains_cs", SW_TEXT_CONTAINS_CS, 1 },
	{ "startswith", SW_TEXT_STARTSWITH, 0 },
	{ "startswith_cs", SW_TEXT_STARTSWITH_CS, 0 },
	{ "endswith", SW_TEXT_ENDSWITH, 0 },
	{ "endswith_cs", SW_TEXT_ENDSWITH_CS, 0 },
	{ "==", SW_TEXT_EQ, 0 },
	{ "!=", SW_TEXT_EQ, 1 },
	{ "=~", SW_TEXT_EQ_CI, 0 },
	{ "!~", SW_TEXT_EQ_CI, 1 },
};

static int run_vectors(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		ok(0, "open %s", path);
		return 0;
	}
	char line[4096];
	int n = 0, lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#' || strncmp(line, "haystack\t", 9) == 0)
			continue;
		char *field[5];
		char *p = line;
		int k = 0;
		for (; k < 5; k++) {
			field[k] = p;
			char *t = strchr(p, '\t');
			if (!t) {
				k++;
				break;
			}
			*t = '\0';
			p = t + 1;
		}
		if (k != 5) {
			ok(0, "line %d: five tab-separated columns", lineno);
			continue;
		}
		char src[256];
		snprintf(src, sizeof src, "%s", field[4]);
		char hay[1024], nee[1024];
		snprintf(hay, sizeof hay, "%s", field[0]);
		snprintf(nee, sizeof nee, "%s", field[2]);
		long hl = unescape(hay), nl = unescape(nee);
		const opname *op = NULL;
		for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
			if (strcmp(ops[i].name, field[1]) == 0)
				op = &ops[i];
		int want = strcmp(field[3], "true") == 0;
		if (hl < 0 || nl < 0 || !op || (!want && strcmp(field[3], "false") != 0)) {
			ok(0, "line %d: well-formed vector", lineno);
			continue;
		}
		int got = sw_text_match(op->op, hay, (size_t)hl, nee, (size_t)nl) != op->neg;
		/* A needle that does not compile never matches, negated or not. */
		sw_needle *nd;
		if (sw_needle_new(op->op, nee, (size_t)nl, &nd) != SW_OK)
			got = 0;
		else
			sw_needle_free(nd);
		ok(got == want, "line %d: '%s' %s '%s' is %s (%s)", lineno, field[0], field[1], field[2],
		   field[3], src);
		n++;
	}
	fclose(f);
	return n;
}

static void test_fold(void)
{
	char out[64];
	size_t n = sw_text_fold("KRÄMER", strlen("KRÄMER"), out);
	is_str(out, "krämer", "fold Latin");
	is_int(n, strlen("krämer"), "fold length");
	sw_text_fold("ΣΊΣΥΦΟΣ", strlen("ΣΊΣΥΦΟΣ"), out);
	is_str(out, "σίσυφοσ", "fold Greek: every sigma to σ");
	sw_text_fold("σίσυφος", strlen("σίσυφος"), out);
	is_str(out, "σίσυφοσ", "fold Greek: final sigma to σ");
	sw_text_fold("ЯНДЕКС", strlen("ЯНДЕКС"), out);
	is_str(out, "яндекс", "fold Cyrillic");
	n = sw_text_fold("a\xFF"
	                 "b\xC3",
	                 4, out);
	is_int(n, 4, "invalid bytes stay one byte each");
	ok(memcmp(out,
	          "a\xFF"
	          "b\xFF",
	          4) == 0,
	   "invalid bytes fold to 0xFF");
	/* U+023A (2 bytes) lowercases to U+2C65 (3 bytes): the bound must hold. */
	char big[16];
	n = sw_text_fold("\xC8\xBA\xC8\xBA", 4, big);
	ok(n <= sw_text_fold_bound(4) - 1, "fold that grows stays within the bound (%zu)", n);
	is_str(big, "\xE2\xB1\xA5\xE2\xB1\xA5", "U+023A folds to U+2C65");
}

static void test_utf8(void)
{
	size_t bad = 99;
	ok(sw_text_utf8_valid("Krämer", strlen("Krämer"), &bad), "valid UTF-8");
	ok(!sw_text_utf8_valid("Kr\xE4mer", 6, &bad) && bad == 2, "Latin-1 byte found at 2");
	ok(!sw_text_utf8_valid("\xC0\xAF", 2, NULL), "overlong refused");
	ok(!sw_text_utf8_valid("\xED\xA0\x80", 3, NULL), "surrogate refused");
	ok(!sw_text_utf8_valid("\xF4\x90\x80\x80", 4, NULL), "past U+10FFFF refused");
	ok(sw_text_utf8_valid("\xF4\x8F\xBF\xBF", 4, NULL), "U+10FFFF accepted");
	sw_needle *nd = NULL;
	is_int(sw_needle_new(SW_TEXT_HAS, "Kr\xE4mer", 6, &nd), SW_ERR_RULE, "invalid needle refused");
	ok(nd == NULL, "no needle on failure");
	is_int(sw_needle_new(SW_TEXT_HAS, "a\0b", 3, &nd), SW_ERR_RULE, "needle with NUL refused");
	is_int(sw_needle_new(SW_TEXT_HAS, "MMSoft Design", 13, &nd), SW_OK, "needle compiles");
	is_str(sw_needle_text(nd), "MMSoft Design", "needle keeps its text");
	ok(sw_needle_op(nd) == SW_TEXT_HAS, "needle keeps its op");
	/* The no-allocation path: fold the haystack once, match many needles. */
	const char *h = "MMSOFT DESIGN LTD.";
	char f[64];
	size_t fl = sw_text_fold(h, strlen(h), f);
	ok(sw_needle_match(nd, h, strlen(h), f, fl), "match against a caller-folded haystack");
	ok(!sw_needle_match(nd, h, strlen(h), NULL, 0), "folding op without a folded haystack is false");
	sw_needle_free(nd);
	is_str(sw_text_op_name(SW_TEXT_HAS_CS), "has_cs", "op name");
	ok(sw_text_op_name(SW_TEXT__COUNT) == NULL, "op name out of range");
	ok(sw_text_op_folds(SW_TEXT_EQ_CI) && !sw_text_op_folds(SW_TEXT_EQ), "op folds");
}

/* Random bytes through every op: no crash, and has implies contains. */
static void test_random(void)
{
	uint32_t x = 12345;
	int bad = 0;
	for (int it = 0; it < 20000; it++) {
		char h[48], n[8];
		size_t hl = 0, nl;
		for (; hl < sizeof h; hl++) {
			x = x * 1103515245u + 12345u;
			if ((x >> 16) % 17 == 0)
				break;
			/* Mostly a small alphabet so matches happen, some raw bytes. */
			static const char alpha[] = "aAbB \xC3\xA4\xC3\x84.-1\xFF\x80";
			h[hl] = alpha[(x >> 8) % (sizeof alpha - 1)];
		}
		x = x * 1103515245u + 12345u;
		nl = 1 + (x >> 16) % 3;
		memcpy(n, h + (hl > nl ? (x >> 4) % (hl - nl) : 0), hl > nl ? nl : 0);
		if (hl <= nl) {
			memcpy(n, "ab", 2);
			nl = 2;
		}
		bool hs = sw_text_match(SW_TEXT_HAS, h, hl, n, nl);
		bool ct = sw_text_match(SW_TEXT_CONTAINS, h, hl, n, nl);
		for (int op = 0; op < SW_TEXT__COUNT; op++)
			(void)sw_text_match((sw_text_op)op, h, hl, n, nl);
		if (hs && !ct)
			bad++;
	}
	is_int(bad, 0, "20000 random haystacks: no crash, has implies contains");
}

int main(int argc, char **argv)
{
	test_fold();
	test_utf8();
	test_random();
	if (argc < 2) {
		skip("no vectors file given");
	} else {
		int n = run_vectors(argv[1]);
		ok(n >= 700, "ran %d vectors", n);
	}
	return done_testing();
}
