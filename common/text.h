/* signwatch: KQL string predicates over UTF-8 (has, contains, startswith,
 * endswith, ==, =~ and their case-sensitive forms).
 *
 * Needles are compiled once (validated, case-folded, term flags worked out)
 * so that evaluating a rule pack over a record costs no allocation: the
 * caller folds each haystack once per record and column with sw_text_fold()
 * and matches every compiled needle against that folded copy. */
#ifndef SW_TEXT_H
#define SW_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sw_error.h"

typedef enum sw_text_op {
	SW_TEXT_HAS,      /* term match, case-insensitive */
	SW_TEXT_HAS_CS,   /* term match, case-sensitive */
	SW_TEXT_CONTAINS, /* substring, case-insensitive */
	SW_TEXT_CONTAINS_CS,
	SW_TEXT_STARTSWITH, /* prefix, case-insensitive (KQL's default) */
	SW_TEXT_STARTSWITH_CS,
	SW_TEXT_ENDSWITH,
	SW_TEXT_ENDSWITH_CS,
	SW_TEXT_EQ,    /* == : byte-exact equality */
	SW_TEXT_EQ_CI, /* =~ : case-insensitive equality */
	SW_TEXT__COUNT
} sw_text_op;

/* "has", "has_cs", ..., "==", "=~" (the KQL spelling); NULL if out of range. */
const char *sw_text_op_name(sw_text_op op);
/* True when op compares case-insensitively (matches want the folded haystack). */
bool sw_text_op_folds(sw_text_op op);

/* A compiled needle. */
typedef struct sw_needle sw_needle;

/* Compile needle s (len bytes) for op. SW_ERR_RULE when s is not valid
 * UTF-8 or holds a NUL; an empty needle is accepted here (the KQL layer
 * decides whether it makes sense). */
sw_err sw_needle_new(sw_text_op op, const char *s, size_t len, sw_needle **out);
void sw_needle_free(sw_needle *n);
sw_text_op sw_needle_op(const sw_needle *n);
/* The needle as written (NUL-terminated). */
const char *sw_needle_text(const sw_needle *n);

/* Upper bound of sw_text_fold's output for len input bytes. */
static inline size_t sw_text_fold_bound(size_t len) { return 2 * len + 1; }

/* Case-fold s (len bytes, any bytes) into out, which must hold
 * sw_text_fold_bound(len) bytes; returns the folded length and
 * NUL-terminates. Each code point maps to one code point (simple folding,
 * as KQL's ordinal-ignore-case does); each byte that is not part of a valid
 * UTF-8 sequence becomes the single byte 0xFF, which no valid needle
 * contains and which counts as a separator. */
size_t sw_text_fold(const char *s, size_t len, char *out);

/* Match n against a haystack. raw/rawlen is the haystack as stored; folded/
 * flen is sw_text_fold() of it, needed only when sw_text_op_folds(op) (may
 * be NULL otherwise). No allocation. */
bool sw_needle_match(const sw_needle *n, const char *raw, size_t rawlen, const char *folded, size_t flen);

/* Which byte values (bit b & 63) occur in s: a cheap prefilter for a rule
 * pack, since a needle whose mask has a bit the haystack's lacks cannot
 * match under any op. Compare a needle's mask with the mask of the same
 * form of the haystack (folded for folding ops, raw otherwise). */
uint64_t sw_text_mask(const char *s, size_t len);
uint64_t sw_needle_mask(const sw_needle *n);

/* One-shot convenience for tests and cold paths: compiles, folds (on the
 * stack for short haystacks) and matches. False also when the needle is
 * invalid or memory runs out. */
bool sw_text_match(sw_text_op op, const char *hay, size_t hlen, const char *needle, size_t nlen);

/* True when s is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF). If not and bad is non-NULL, *bad is the offset of the first
 * offending byte. */
bool sw_text_utf8_valid(const char *s, size_t len, size_t *bad);

#endif
