/* signwatch: the subcommands, each in its own file. Each returns the
 * process exit status: 0 success, 1 run-time failure, 2 bad usage/input. */
#ifndef SW_COMMANDS_H
#define SW_COMMANDS_H

int sw_cmd_inspect(int argc, char **argv);
int sw_cmd_rules(int argc, char **argv);

/* Shared argument helper: matches "--name" (value in the next argument)
 * or "--name=value"; advances *i past what it used. Returns 1 on a match
 * with *val set, 0 when argv[*i] is another option, -1 when the value is
 * missing (message printed). */
int sw_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

#endif
