/* signwatch summary: each rule's summary rows, the KQL output shape. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "pipeline.h"
#include "rules_load.h"

#define MAX_RULE_PATHS 64
#define USAGE "usage: signwatch summary [--db F] [--rules P]... [--rule ID] [--json]\n"

int sw_cmd_summary(int argc, char **argv)
{
	const char *rule_paths[MAX_RULE_PATHS];
	size_t nrp = 0;
	const char *db = sw_plat_default_store(), *only = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		int m;
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if ((m = sw_opt_value(argc, argv, &i, "--db", &v)) != 0) {
			if (m < 0)
				return 2;
			db = v;
		} else if ((m = sw_opt_value(argc, argv, &i, "--rule", &v)) != 0) {
			if (m < 0)
				return 2;
			only = v;
		} else if ((m = sw_opt_value(argc, argv, &i, "--rules", &v)) != 0) {
			if (m < 0)
				return 2;
			if (nrp == MAX_RULE_PATHS) {
				fprintf(stderr, "signwatch summary: at most %d --rules\n", MAX_RULE_PATHS);
				return 2;
			}
			rule_paths[nrp++] = v;
		} else {
			fprintf(stderr, "signwatch summary: unexpected argument '%s'\n" USAGE, argv[i]);
			return 2;
		}
	}
	size_t bad = 0;
	sw_rules *rules = sw_load_rules("signwatch summary", rule_paths, nrp, stderr, &bad);
	if (!rules || bad) {
		sw_rules_free(rules);
		return rules ? 2 : 1;
	}
	if (only && sw_rules_find(rules, only) < 0) {
		fprintf(stderr,
		        "signwatch summary: --rule %s: no loaded rule has that id (see signwatch rules "
		        "list)\n",
		        only);
		sw_rules_free(rules);
		return 2;
	}
	sw_file *f = NULL;
	char why[512];
	if (sw_plat_is_dir(db) != 0 || sw_plat_file_open(db, &f, why, sizeof(why)) != SW_OK) {
		fprintf(stderr,
		        "signwatch summary: %s: no database there (give --db, or run signwatch scan first)\n",
		        db);
		sw_rules_free(rules);
		return 2;
	}
	sw_plat_file_close(f);
	sw_store *st = NULL;
	if (sw_store_open(db, &st, why, sizeof(why)) != SW_OK) {
		fprintf(stderr, "signwatch summary: %s\n", why);
		sw_rules_free(rules);
		return 1;
	}
	int rc = sw_print_summaries(st, rules, only, json, sw_plat_now_ms());
	sw_store_close(st);
	sw_rules_free(rules);
	return rc;
}
