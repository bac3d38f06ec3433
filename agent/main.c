/* signwatch: the command line. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: signwatch COMMAND [OPTIONS]\n"
	        "\n"
	        "  inspect [--json] [--ca-file F] [--signer-only] FILE...\n"
	        "      one record per Authenticode signature of each file\n"
	        "  scan [--rules P]... [--db F] [--ca-file F] [--json] [--cross-fs] [--max-file-mb N] "
	        "PATH...\n"
	        "      one-shot recursive scan: records and matches stored, matches and summaries printed\n"
	        "  run [--config F] [--check-config]\n"
	        "      the agent: watch the configured roots, scan new executables, keep summaries\n"
	        "  service install|uninstall|start|stop|reload|status|set-recovery|configure|"
	        "remove-data\n"
	        "      the Windows service and its configuration (see signwatch service)\n"
	        "  summary [--db F] [--rules P]... [--rule ID] [--json]\n"
	        "      each rule's summary rows (FirstSeen, LastSeen, Report, Count per device)\n"
	        "  rules list|check [PATH...]\n"
	        "      load Sentinel rules (files or folders) and report what is accepted or why not\n"
	        "\n"
	        "  --help      this text\n"
	        "  --version   the version\n"
	        "\n"
	        "Exit status: 0 success, 1 a run-time failure, 2 bad usage or bad input.\n");
}

int sw_opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != 0)
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "signwatch: option %s needs a value\n", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("signwatch %s\n", SW_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "inspect"))
		return sw_cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(cmd, "rules"))
		return sw_cmd_rules(argc - 1, argv + 1);
	if (!strcmp(cmd, "scan"))
		return sw_cmd_scan(argc - 1, argv + 1);
	if (!strcmp(cmd, "summary"))
		return sw_cmd_summary(argc - 1, argv + 1);
	if (!strcmp(cmd, "run"))
		return sw_cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "service")) /* issue 6 */
		return sw_cmd_service(argc - 1, argv + 1);
	fprintf(stderr, "signwatch: unknown command '%s' (see signwatch --help)\n", cmd);
	return 2;
}
