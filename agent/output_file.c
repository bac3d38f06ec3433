#include "output_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

struct sw_outfile {
	char *path;
	size_t max_bytes;
	int keep;
	FILE *f;
	size_t size;
};

static sw_err reopen(sw_outfile *o, char *why, size_t n)
{
	if (o->f)
		fclose(o->f);
	o->f = sw_plat_fopen_private(o->path, "ab");
	if (!o->f) {
		if (why)
			snprintf(why, n, "%s: %s", o->path, strerror(errno));
		return SW_ERR_IO;
	}
	long pos = ftell(o->f);
	o->size = pos > 0 ? (size_t)pos : 0;
	return SW_OK;
}

sw_err sw_outfile_open(const char *path, size_t max_bytes, int keep, sw_outfile **out, char *why, size_t n)
{
	sw_outfile *o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup(path))) {
		free(o);
		return SW_ERR_NOMEM;
	}
	o->max_bytes = max_bytes;
	o->keep = keep;
	char *dir = sw_plat_dirname(path);
	if (dir)
		(void)sw_plat_mkdirs(dir);
	free(dir);
	sw_err e = reopen(o, why, n);
	if (e) {
		sw_outfile_close(o);
		return e;
	}
	*out = o;
	return SW_OK;
}

static void rotate(sw_outfile *o)
{
	size_t len = strlen(o->path) + 16;
	char *a = malloc(len), *b = malloc(len);
	if (a && b) {
		for (int i = o->keep; i >= 1; i--) {
			snprintf(a, len, "%s.%d", o->path, i);
			if (i == o->keep)
				(void)remove(a);
			else {
				snprintf(b, len, "%s.%d", o->path, i + 1);
				(void)rename(a, b);
			}
		}
		if (o->keep > 0) {
			snprintf(a, len, "%s.1", o->path);
			(void)rename(o->path, a);
		} else {
			(void)remove(o->path);
		}
	}
	free(a);
	free(b);
	(void)reopen(o, NULL, 0);
}

sw_err sw_outfile_write(sw_outfile *o, const char *line)
{
	if (!o->f && reopen(o, NULL, 0))
		return SW_ERR_IO;
	size_t len = strlen(line);
	if (o->size > 0 && o->size + len + 1 > o->max_bytes)
		rotate(o);
	if (!o->f || fwrite(line, 1, len, o->f) != len || fputc('\n', o->f) == EOF || fflush(o->f) != 0)
		return SW_ERR_IO;
	o->size += len + 1;
	return SW_OK;
}

void sw_outfile_close(sw_outfile *o)
{
	if (!o)
		return;
	if (o->f)
		fclose(o->f);
	free(o->path);
	free(o);
}
