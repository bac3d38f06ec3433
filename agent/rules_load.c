#include "rules_load.h"

#include "platform.h"
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
