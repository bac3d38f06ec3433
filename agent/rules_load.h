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

#endif
