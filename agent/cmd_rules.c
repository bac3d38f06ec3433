/* signwatch rules list|check [PATH...]: what is accepted, or why not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "platform.h"
#include "rules_load.h"
#include "text_escape.h"

static void put(const char *label, const char *v)
{
	char *e = sw_escape_terminal(v ? v : "");
	printf("  %-12s %s\n", label, e ? e : "?");
	free(e);
}

int sw_cmd_rules(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "list") && strcmp(argv[1], "check"))) {
		fprintf(stderr, "usage: signwatch rules list|check [PATH...]\n"
		                "  PATH: Sentinel hunting-rule YAML files or folders of them; the built-in\n"
		                "  Pulseway rule is always included.\n");
		return 2;
	}
	bool check = !strcmp(argv[1], "check");
	const char *def[1];
	const char *const *paths = (const char *const *)argv + 2;
	size_t n = (size_t)argc - 2;
	if (n == 0 && sw_plat_is_dir(sw_plat_default_rules()) == 1) {
		def[0] = sw_plat_default_rules();
		paths = def;
		n = 1;
	}
	size_t bad = 0;
	sw_rules *rs = sw_load_rules("signwatch rules", paths, n, stderr, &bad);
	if (!rs) {
		fprintf(stderr, "signwatch rules: out of memory\n");
		return 1;
	}
	size_t count = sw_rules_count(rs);
	for (size_t i = 0; i < count; i++) {
		if (check) {
			char line[1024];
			snprintf(line, sizeof(line), "ok %s: %s", sw_rule_file(rs, i), sw_rule_id(rs, i));
			char *e = sw_escape_terminal(line);
			printf("%s\n", e ? e : "?");
			free(e);
			continue;
		}
		char *pred = sw_kql_describe(sw_rule_kql(rs, i));
		put("id", sw_rule_id(rs, i));
		put("name", sw_rule_name(rs, i));
		put("file", sw_rule_file(rs, i));
		put("table", "DeviceFileCertificateInfo");
		put("predicate", pred);
		printf("\n");
		free(pred);
	}
	fprintf(check ? stdout : stderr, "%zu rule%s accepted, %zu rejected\n", count, count == 1 ? "" : "s",
	        bad);
	sw_rules_free(rs);
	return bad ? 2 : 0;
}
