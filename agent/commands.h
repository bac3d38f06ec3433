/* signwatch: the subcommands, each in its own file. Each returns the
 * process exit status: 0 success, 1 run-time failure, 2 bad usage/input. */
#ifndef SW_COMMANDS_H
#define SW_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

int sw_cmd_inspect(int argc, char **argv);
int sw_cmd_rules(int argc, char **argv);
int sw_cmd_scan(int argc, char **argv);
int sw_cmd_summary(int argc, char **argv);
int sw_cmd_run(int argc, char **argv);
int sw_cmd_service(int argc, char **argv); /* issue 6 */

typedef struct sw_store sw_store;
typedef struct sw_rules sw_rules;
/* Print each rule's summary rows (or only rule `only`); 1 on a store failure. */
int sw_print_summaries(sw_store *st, const sw_rules *rules, const char *only, bool json, int64_t now);

/* Shared argument helper: matches "--name" (value in the next argument)
 * or "--name=value"; advances *i past what it used. Returns 1 on a match
 * with *val set, 0 when argv[*i] is another option, -1 when the value is
 * missing (message printed). */
int sw_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

#endif
