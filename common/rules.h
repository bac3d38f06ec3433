/* signwatch: Sentinel hunting rules, loaded unchanged from their YAML.
 *
 * A rule set collects rules from files, folders and the built-in Pulseway
 * rule. Loading never stops at the first bad file: each failure is kept as
 * a message "FILE:LINE:COL: what is wrong; how to fix it" and the caller
 * decides (the CLI exits 2 when sw_rules_error_count() > 0). */
#ifndef SW_RULES_H
#define SW_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "kql.h"
#include "sw_error.h"

#define SW_RULES_MAX_FILE (1024u * 1024u) /* bytes; a rule file is a few KiB */
#define SW_RULES_MAX_RULES 10000
#define SW_RULES_MAX_ERRORS 1000 /* kept messages; the count goes on */

typedef struct sw_rules sw_rules;

/* Folders are listed by the platform layer (common/ includes no OS header),
 * so folder loading takes these callbacks. */
typedef struct sw_rules_dir_ops {
	/* 1 if path is a directory, 0 if not (a file, or missing: the open
	 * reports that), -1 on error. */
	int (*is_dir)(void *ud, const char *path);
	/* Entry names (not paths) of dir, in any order, as a malloc'd array of
	 * malloc'd strings; rules.c frees them. */
	sw_err (*list)(void *ud, const char *dir, char ***names, size_t *n);
	void *ud;
} sw_rules_dir_ops;

sw_rules *sw_rules_new(void);
void sw_rules_free(sw_rules *rs);

/* Load one rule from a YAML buffer; name is used in messages ("FILE"). */
sw_err sw_rules_load_buffer(sw_rules *rs, const char *name, const char *buf, size_t len);
/* Load one file (at most SW_RULES_MAX_FILE bytes; a bigger one is refused
 * without reading it whole). */
sw_err sw_rules_load_file(sw_rules *rs, const char *path);
/* Load a file, or every *.yaml / *.yml in a folder (not recursive, in
 * byte order of the names). With ops NULL only files can be loaded. One bad
 * file does not stop the others; returns the first error, SW_OK if none. */
sw_err sw_rules_load_path(sw_rules *rs, const char *path, const sw_rules_dir_ops *ops);
/* Add the built-in Pulseway rule unless a rule with its id is already
 * loaded (a site's copy on disk wins); *added says which, may be NULL. */
sw_err sw_rules_add_builtin(sw_rules *rs, bool *added);

/* Errors so far, in load order. */
size_t sw_rules_error_count(const sw_rules *rs);
const char *sw_rules_error(const sw_rules *rs, size_t i);

size_t sw_rules_count(const sw_rules *rs);
/* Accessors for rule i (0 <= i < count); strings are owned by rs and
 * never NULL ("" when the YAML has no such key). */
const char *sw_rule_id(const sw_rules *rs, size_t i);
const char *sw_rule_name(const sw_rules *rs, size_t i);
const char *sw_rule_description(const sw_rules *rs, size_t i);
const char *sw_rule_query(const sw_rules *rs, size_t i);
const char *sw_rule_file(const sw_rules *rs, size_t i); /* "<builtin>" for the default */
size_t sw_rule_tactic_count(const sw_rules *rs, size_t i);
const char *sw_rule_tactic(const sw_rules *rs, size_t i, size_t j);
size_t sw_rule_technique_count(const sw_rules *rs, size_t i);
const char *sw_rule_technique(const sw_rules *rs, size_t i, size_t j);
const sw_kql *sw_rule_kql(const sw_rules *rs, size_t i);
/* Index of the rule with this id, or -1. */
long sw_rules_find(const sw_rules *rs, const char *id);

#endif
