/* signwatch: YARA content rules over scanned files (libyara).
 *
 * Life cycle: sw_yara_new, then any number of sw_yara_add_*, then
 * sw_yara_finish once; after that the rule set is read-only and
 * sw_yara_scan_* may be called from any number of threads at once (each call
 * makes its own scanner). new/add/finish/free belong to one thread (the loop
 * thread, which owns configuration and reloads).
 *
 * Every rule file sees five external variables, set per scan from the
 * file's Authenticode record: signer, issuer (strings), is_signed,
 * is_trusted, digest_matches (booleans). Without a record they are "" and
 * false. Each file is compiled in its own namespace, so two files may use
 * the same rule name without breaking each other. */
#ifndef SW_YARA_SCAN_H
#define SW_YARA_SCAN_H

#include <stddef.h>

#include "record.h"
#include "sw_error.h"

/* Matching rule names reported per scan, at most; more is SW_ERR_LIMIT. */
#define SW_YARA_MAX_MATCHES 64

typedef struct sw_yara sw_yara;

sw_err sw_yara_new(sw_yara **out);
void sw_yara_free(sw_yara *y); /* NULL is fine */

/* Add rules. A file that does not compile adds nothing and gives
 * SW_ERR_RULE with "file:line: message" in why (several such lines, one
 * per failed file, separated by '\n', for a folder); rules already added
 * stay. why may be NULL (n 0); it is "" on success. */
sw_err sw_yara_add_file(sw_yara *y, const char *path, char *why, size_t n);
/* Every *.yar and *.yara in dir (not recursive, hidden files skipped), in
 * byte order of their names. The files that compile are added even when
 * others do not; SW_ERR_RULE then lists each one that failed, and the
 * caller decides (the CLI exits 2). SW_ERR_IO when dir cannot be listed. */
sw_err sw_yara_add_folder(sw_yara *y, const char *dir, char *why, size_t n);
/* The default rule file shipped in the binary (agent/yara/pulseway.yar). */
sw_err sw_yara_add_builtin(sw_yara *y, char *why, size_t n);
/* Rules from a string; label names it in messages ("<test>:3: ..."). */
sw_err sw_yara_add_string(sw_yara *y, const char *label, const char *src, char *why, size_t n);

/* Compile what was added. SW_ERR_RULE if a file changed between its check
 * and its final compile (it is read twice; see yara_scan.c). Adding after
 * finish is SW_ERR_USAGE. */
sw_err sw_yara_finish(sw_yara *y);
/* Number of rules compiled (0 before finish). */
size_t sw_yara_rule_count(const sw_yara *y);

/* Scan a file or a buffer with the externals taken from rec (may be NULL).
 * timeout_s <= 0 means none. *matches receives a malloc'd array of
 * malloc'd rule names (valid UTF-8, no duplicates, in rule order), which
 * can be moved straight into sw_record.yara_matches.
 *   SW_OK          the scan completed; *matches is every matching rule.
 *   SW_ERR_LIMIT   a defined, partial verdict: the timeout expired, a string
 *                  hit libyara's per-string match cap, or more than
 *                  SW_YARA_MAX_MATCHES rules matched; *matches holds what was
 *                  found (on a timeout usually nothing).
 *   SW_ERR_IO      the file could not be opened or mapped, changed (was
 *                  replaced) during the scan, or is gone.
 *   SW_ERR_UNSUPPORTED  the path is not a regular file.
 *   SW_ERR_USAGE   sw_yara_finish was not called.
 * On errors other than SW_ERR_LIMIT, *matches is NULL and *n 0. */
sw_err sw_yara_scan_file(const sw_yara *y, const char *path, const sw_record *rec, int timeout_s,
                         char ***matches, size_t *n);
sw_err sw_yara_scan_mem(const sw_yara *y, const void *data, size_t len, const sw_record *rec, int timeout_s,
                        char ***matches, size_t *n);

void sw_yara_free_matches(char **matches, size_t n);

#endif
