/* signwatch run [--config F] [--check-config]: the agent. */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "commands.h"
#include "config.h"
#include "platform.h"
#include "rules_load.h"
#include "trust.h"
#include "yara_scan.h"

#define USAGE "usage: signwatch run [--config F] [--check-config]\n"

/* Load everything the agent would and print the effective configuration. */
static int check_config(const char *path, bool given)
{
	char err[8192];
	sw_config_env env = sw_config_env_platform();
	sw_config *cfg = NULL;
	if (!given && !sw_config_file_exists(path)) {
		fprintf(stderr,
		        "signwatch run: %s does not exist; these are the defaults (redirect them into that "
		        "file to "
		        "start from them):\n",
		        path);
		if (sw_config_load_defaults(&env, &cfg, err, sizeof(err)) == SW_OK) {
			sw_config_print(cfg, stdout);
			sw_config_free(cfg);
		}
		return 2;
	}
	if (sw_config_load_file(path, &env, &cfg, err, sizeof(err)) != SW_OK) {
		sw_print_error(stderr, err);
		return 2;
	}
	size_t bad = 0;
	sw_rules *rules = sw_load_config_rules("signwatch run", cfg, stderr, &bad);
	int rc = rules && !bad ? 0 : 2;
	sw_yara *y = NULL;
	if (sw_load_yara(cfg, &y, stderr) != SW_OK)
		rc = 2; /* a YARA rule that does not compile: named with file and line */
	sw_yara_free(y);
	if (cfg->ca_file) {
		sw_trust *t = NULL;
		char why[512];
		if (sw_trust_load_file(cfg->ca_file, &t, why, sizeof(why)) != SW_OK) {
			fprintf(stderr, "%s: ca_file: %s\n", path, why);
			rc = 2;
		}
		sw_trust_free(t);
	}
	if (!rc) {
		sw_config_print(cfg, stdout);
		fprintf(stderr, "signwatch run: %s is valid (%zu rules)\n", path, sw_rules_count(rules));
	}
	sw_rules_free(rules);
	sw_config_free(cfg);
	return rc;
}

int sw_cmd_run(int argc, char **argv)
{
	const char *path = sw_plat_default_config();
	bool given = false, check = false;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		int m;
		if (!strcmp(argv[i], "--check-config"))
			check = true;
		else if ((m = sw_opt_value(argc, argv, &i, "--config", &v)) != 0) {
			if (m < 0)
				return 2;
			path = v;
			given = true;
		} else {
			fprintf(stderr, "signwatch run: unexpected argument '%s'\n" USAGE, argv[i]);
			return 2;
		}
	}
	if (check)
		return check_config(path, given);
	return sw_agent_run(path, given);
}
