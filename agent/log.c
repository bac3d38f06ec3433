#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform.h"
#include "record.h"
#include "text_escape.h"

/* The level is part of the process's configuration. */
static sw_log_level min_level = SW_LOG_INFO;

void sw_log_set_level(sw_log_level l) { min_level = l; }

void sw_log(sw_log_level l, const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	if (l < min_level)
		return;
	char msg[2048], ts[40];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *e = sw_escape_terminal(msg);
	fprintf(stderr, "%s signwatch[%s]: %s\n", sw_time_iso(sw_plat_now_ms(), ts, sizeof(ts)), names[l],
	        e ? e : msg);
	free(e);
	fflush(stderr);
}
