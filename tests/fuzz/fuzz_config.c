/* libFuzzer target over the agent's YAML configuration loader: every
 * input is either a configuration or a clear error, and printing an
 * accepted one must work. Directory checks and secrets' file modes come
 * from callbacks, answered here without touching the file system. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

static int dir_ok(void *ud, const char *path, char *why, size_t n)
{
	(void)ud;
	(void)path;
	(void)why;
	(void)n;
	return 0;
}

static const char *get_env(void *ud, const char *name)
{
	(void)ud;
	return name && name[0] == 'S' ? "fuzz-secret" : NULL;
}

static int file_mode(void *ud, const char *path, unsigned *mode)
{
	(void)ud;
	(void)path;
	*mode = 0600;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sw_config_env env = { NULL, dir_ok, get_env, file_mode };
	sw_config *cfg = NULL;
	char err[4096];
	if (sw_config_load_buffer("fuzz.yaml", (const char *)data, size, &env, &cfg, err, sizeof(err)) ==
	    SW_OK) {
		FILE *devnull = fopen("/dev/null", "w");
		if (devnull) {
			sw_config_print(cfg, devnull);
			fclose(devnull);
		}
		(void)sw_config_excluded(cfg, "/home/user/node_modules/x.exe");
		sw_config_free(cfg);
	}
	return 0;
}
