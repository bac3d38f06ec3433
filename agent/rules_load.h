/* signwatch: loading the rule set the way every command does. */
#ifndef SW_RULES_LOAD_H
#define SW_RULES_LOAD_H

#include <stdbool.h>
#include <stdio.h>

#include "rules.h"

/* Load the given paths (files or folders of Sentinel YAML) and the
 * built-in Pulseway rule. Errors are printed to err as they are found
 * (prefixed with prog); returns the rule set (NULL only without memory)
 * and *bad = number of rejected files/rules. */
sw_rules *sw_load_rules(const char *prog, const char *const *paths, size_t n, FILE *err, size_t *bad);

/* The rules a configuration names (its default rule pack folder is
 * optional: missing, it is skipped), plus the built-in rule. */
struct sw_config;
sw_rules *sw_load_config_rules(const char *prog, const struct sw_config *cfg, FILE *err, size_t *bad);

/* The YARA rules: the built-in Pulseway file plus the configuration's
 * yara_rules (files or folders), compiled. Errors name file and line. */
struct sw_yara;
sw_err sw_load_yara(const struct sw_config *cfg, struct sw_yara **out, FILE *err);

/* Print a (possibly multi-line) message, ending it with a newline. */
void sw_print_error(FILE *f, const char *msg);

#endif
