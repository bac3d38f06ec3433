#include "rules_load.h"

#include "config.h"
#include "platform.h"
#include "yara_scan.h"

#include <string.h>
#include "text_escape.h"

#include <stdlib.h>

static int is_dir(void *ud, const char *path)
{
	(void)ud;
	return sw_plat_is_dir(path);
}

static sw_err list(void *ud, const char *dir, char ***names, size_t *n)
{
	(void)ud;
	return sw_plat_list_dir(dir, names, n);
}

sw_rules *sw_load_rules(const char *prog, const char *const *paths, size_t n, FILE *err, size_t *bad)
{
	sw_rules *rs = sw_rules_new();
	*bad = 0;
	if (!rs)
		return NULL;
	sw_rules_dir_ops ops = { is_dir, list, NULL };
	for (size_t i = 0; i < n; i++)
		(void)sw_rules_load_path(rs, paths[i], &ops);
	(void)sw_rules_add_builtin(rs, NULL);
	*bad = sw_rules_error_count(rs);
	for (size_t i = 0; i < *bad && err; i++) {
		char *e = sw_escape_terminal(sw_rules_error(rs, i));
		fprintf(err, "%s: %s\n", prog, e ? e : "?");
		free(e);
	}
	return rs;
}

sw_rules *sw_load_config_rules(const char *prog, const sw_config *cfg, FILE *err, size_t *bad)
{
	size_t n = cfg->rules.n;
	if (cfg->rules_default && n == 1 && sw_plat_is_dir(cfg->rules.v[0]) != 1)
		n = 0;
	return sw_load_rules(prog, (const char *const *)cfg->rules.v, n, err, bad);
}

sw_err sw_load_yara(const sw_config *cfg, sw_yara **out, FILE *err)
{
	char why[4096] = "";
	sw_yara *y = NULL;
	sw_err e = sw_yara_new(&y);
	if (!e)
		e = sw_yara_add_builtin(y, why, sizeof(why));
	for (size_t i = 0; !e && i < cfg->yara_rules.n; i++) {
		const char *p = cfg->yara_rules.v[i];
		e = sw_plat_is_dir(p) == 1 ? sw_yara_add_folder(y, p, why, sizeof(why))
		                           : sw_yara_add_file(y, p, why, sizeof(why));
	}
	if (!e)
		e = sw_yara_finish(y);
	if (e) {
		char msg[4400];
		snprintf(msg, sizeof(msg), "%s: yara_rules: %s", cfg->file ? cfg->file : "config",
		         why[0] ? why : sw_err_str(e));
		sw_print_error(err, msg);
		sw_yara_free(y);
		return e == SW_ERR_NOMEM ? e : SW_ERR_RULE;
	}
	*out = y;
	return SW_OK;
}

void sw_print_error(FILE *f, const char *msg)
{
	size_t n = strlen(msg);
	fputs(msg, f);
	if (!n || msg[n - 1] != '\n')
		fputc('\n', f);
}
