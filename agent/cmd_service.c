/* signwatch service install|uninstall|start|stop|reload|status|set-recovery
 *                   |configure|remove-data   (issue 6)
 *
 * The Windows service's management, through platform.h (on POSIX the
 * systemd unit is used instead: those subcommands say so and exit 2), and
 * two helpers the MSI runs as custom actions: `configure` writes the YAML
 * configuration from the MSI's public properties, `remove-data` deletes the
 * store, logs and configuration when REMOVE_DATA=1 at uninstall. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "platform.h"

#define USAGE                                                                                                \
	"usage: signwatch service install [--config F]\n"                                                    \
	"       signwatch service uninstall|start|stop [--timeout S]\n"                                      \
	"       signwatch service reload|status|set-recovery\n"                                              \
	"       signwatch service configure [--config F] [--force] [--roots 'DIR;DIR...']\n"                 \
	"           [--logs-ingestion-endpoint URL --dcr-id ID [--stream S] --tenant-id T --client-id C\n"   \
	"            --client-secret-env VAR] [--syslog-host H [--syslog-port P]] [--https-url URL]\n"       \
	"       signwatch service remove-data [--config F] [--store F]\n"

/* ------------------------------------------------------------ configure */

typedef struct conf_args {
	const char *config, *roots, *endpoint, *dcr_id, *stream, *tenant_id, *client_id, *secret_env,
	        *syslog_host, *syslog_port, *https_url;
	int force;
} conf_args;

/* Trimmed copy of [b, e). */
static char *trimdup(const char *b, const char *e)
{
	while (b < e && (*b == ' ' || *b == '\t'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	char *d = malloc((size_t)(e - b) + 1);
	if (d) {
		memcpy(d, b, (size_t)(e - b));
		d[e - b] = 0;
	}
	return d;
}

/* Set and not blank: the MSI passes "" (or " ") for a property not set. */
static int given(const char *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t')
			return 1;
	return 0;
}

/* A trimmed copy (leading/trailing blanks), NULL for NULL. The MSI's
 * command lines put a blank before a closing quote so that a value ending
 * in a backslash ("C:\Users\") does not escape the quote. */
static const char *trim_arg(const char *s) { return s ? trimdup(s, s + strlen(s)) : NULL; }

/* A YAML single-quoted scalar: only ' needs escaping (doubled). Control
 * characters are refused by the caller. */
static void put_sq(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static int bad_text(const char *what, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(stderr, "signwatch service configure: %s holds a control character\n", what);
			return 1;
		}
	return 0;
}

static int write_config(FILE *f, const conf_args *c)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm *tm = gmtime(&now);
	if (!tm || !strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", tm))
		snprintf(ts, sizeof ts, "%s", "?");
	fprintf(f,
	        "# signwatch configuration, written by `signwatch service configure` (the MSI's\n"
	        "# public properties) at %s. docs/CONFIG.md describes every key; check a\n"
	        "# change with: signwatch run --check-config --config <this file>\n"
	        "# An upgrade without properties keeps this file; one with properties\n"
	        "# rewrites it (the previous one is kept as .bak).\n\n",
	        ts);
	if (given(c->roots)) {
		fputs("roots: [", f);
		int first = 1;
		for (const char *p = c->roots; *p;) {
			const char *e = strchr(p, ';');
			if (!e)
				e = p + strlen(p);
			char *r = trimdup(p, e);
			if (!r)
				return 1;
			size_t rl = strlen(r);
			while (rl > 3 && (r[rl - 1] == '\\' || r[rl - 1] == '/'))
				r[--rl] = 0; /* "C:\Users\" (an MSI folder property) is C:\Users */
			if (*r) {
				if (!first)
					fputs(", ", f);
				put_sq(f, r);
				first = 0;
			}
			free(r);
			p = *e ? e + 1 : e;
		}
		fputs("]\n", f);
	} else {
		fputs("# roots: the defaults (C:\\Users, C:\\ProgramData, C:\\Program Files, ...)\n", f);
	}
	fprintf(f, "%s",
	        "exclude: []\n"
	        "# rules: the installed rule pack folder (the Pulseway rule is built in)\n"
	        "yara_rules: []             # the Pulseway YARA rule is built in\n"
	        "settle_ms: 300\n"
	        "reconcile_hours: 6\n"
	        "max_file_mb: 512\n"
	        "log_level: info\n"
	        "\n"
	        "outputs:\n"
	        "  - type: file             # every record, locally\n"
	        "    path: ");
	put_sq(f, sw_plat_default_records());
	fputs("\n    send_records: all\n    send_summaries: true\n", f);
	if (given(c->endpoint)) {
		fputs("  - type: logs_ingestion   # Microsoft Sentinel\n    endpoint: ", f);
		put_sq(f, c->endpoint);
		fputs("\n    dcr_id: ", f);
		put_sq(f, c->dcr_id);
		fputs("\n    stream: ", f);
		put_sq(f, given(c->stream) ? c->stream : "Custom-SignwatchCertificateInfo_CL");
		fputs("\n    tenant_id: ", f);
		put_sq(f, c->tenant_id);
		fputs("\n    client_id: ", f);
		put_sq(f, c->client_id);
		fputs("\n    client_secret_env: ", f);
		put_sq(f, c->secret_env);
		fputs("\n    send_records: matching\n", f);
	}
	if (given(c->syslog_host)) {
		fputs("  - type: syslog_tls\n    host: ", f);
		put_sq(f, c->syslog_host);
		fprintf(f, "\n    port: %s\n", given(c->syslog_port) ? c->syslog_port : "6514");
	}
	if (given(c->https_url)) {
		fputs("  - type: https_json\n    url: ", f);
		put_sq(f, c->https_url);
		fputs("\n", f);
	}
	return ferror(f) ? 1 : 0;
}

static int cmd_configure(const conf_args *c)
{
	const char *path = given(c->config) ? c->config : sw_plat_default_config();
	const char *vals[] = { c->roots,     c->endpoint,   c->dcr_id,      c->stream,      c->tenant_id,
		               c->client_id, c->secret_env, c->syslog_host, c->syslog_port, c->https_url };
	const char *names[] = {
		"ROOTS",     "LOGS_INGESTION_ENDPOINT", "DCR_ID",      "STREAM",      "TENANT_ID",
		"CLIENT_ID", "CLIENT_SECRET_ENV",       "SYSLOG_HOST", "SYSLOG_PORT", "HTTPS_URL"
	};
	int any = 0;
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		if (given(vals[i])) {
			any = 1;
			if (bad_text(names[i], vals[i]))
				return 2;
		}
	}
	FILE *probe = fopen(path, "rb");
	int exists = probe != NULL;
	if (probe)
		fclose(probe);
	if (exists && !any && !c->force) {
		fprintf(stderr, "signwatch service configure: %s exists and no property was given: kept\n",
		        path);
		return 0;
	}
	/* Sentinel needs all of its settings (the stream has a default). */
	int li = given(c->endpoint) || given(c->dcr_id) || given(c->tenant_id) || given(c->client_id) ||
	         given(c->secret_env) || given(c->stream);
	if (li) {
		const char *need[] = { c->endpoint, c->dcr_id, c->tenant_id, c->client_id, c->secret_env };
		const char *nn[] = { "LOGS_INGESTION_ENDPOINT (--logs-ingestion-endpoint)",
			             "DCR_ID (--dcr-id)", "TENANT_ID (--tenant-id)",
			             "CLIENT_ID (--client-id)", "CLIENT_SECRET_ENV (--client-secret-env)" };
		for (size_t i = 0; i < 5; i++)
			if (!given(need[i])) {
				fprintf(stderr,
				        "signwatch service configure: the logs_ingestion output needs %s too "
				        "(its "
				        "settings: LOGS_INGESTION_ENDPOINT, DCR_ID, TENANT_ID, CLIENT_ID, "
				        "CLIENT_SECRET_ENV, optional STREAM)\n",
				        nn[i]);
				return 2;
			}
	}
	if (given(c->syslog_port)) {
		char *end;
		long p = strtol(c->syslog_port, &end, 10);
		if (*end || p < 1 || p > 65535) {
			fprintf(stderr,
			        "signwatch service configure: SYSLOG_PORT: expected 1..65535, got '%s'\n",
			        c->syslog_port);
			return 2;
		}
		if (!given(c->syslog_host)) {
			fprintf(stderr, "signwatch service configure: SYSLOG_PORT without SYSLOG_HOST\n");
			return 2;
		}
	}

	char *dir = sw_plat_dirname(path);
	if (dir)
		(void)sw_plat_mkdirs(dir);
	free(dir);
	size_t pl = strlen(path);
	char *tmp = malloc(pl + 8), *bak = malloc(pl + 8);
	if (!tmp || !bak) {
		free(tmp);
		free(bak);
		return 1;
	}
	snprintf(tmp, pl + 8, "%s.new", path);
	snprintf(bak, pl + 8, "%s.bak", path);
	(void)remove(tmp);
	FILE *f = sw_plat_fopen_private(tmp, "w"); /* owner (SYSTEM/Administrators) only */
	int rc = 1;
	if (!f) {
		fprintf(stderr, "signwatch service configure: cannot create %s\n", tmp);
	} else {
		int bad = write_config(f, c);
		if (fclose(f) != 0 || bad) {
			fprintf(stderr, "signwatch service configure: cannot write %s\n", tmp);
			(void)remove(tmp);
		} else {
			if (exists) {
				(void)remove(bak);
				if (rename(path, bak) != 0)
					(void)remove(path);
			}
			if (rename(tmp, path) != 0) {
				fprintf(stderr, "signwatch service configure: cannot rename %s to %s\n", tmp,
				        path);
				(void)remove(tmp);
			} else {
				fprintf(stderr, "signwatch service configure: wrote %s%s\n", path,
				        exists ? " (the previous one is .bak)" : "");
				rc = 0;
			}
		}
	}
	free(tmp);
	free(bak);
	return rc;
}

/* ---------------------------------------------------------- remove-data */

static void rm(const char *p)
{
	if (remove(p) == 0)
		fprintf(stderr, "signwatch service remove-data: removed %s\n", p);
}

static void rm_suffixed(const char *base, const char *sfx)
{
	size_t n = strlen(base) + strlen(sfx) + 1;
	char *p = malloc(n);
	if (!p)
		return;
	snprintf(p, n, "%s%s", base, sfx);
	rm(p);
	free(p);
}

/* The store (and SQLite's side files), every file in the records' folder,
 * the configuration and its backup. Rules and binaries are the MSI's. */
static int cmd_remove_data(const char *config, const char *store)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < 4; i++)
		rm_suffixed(store, sfx[i]);
	char *logs = sw_plat_dirname(sw_plat_default_records());
	if (logs) {
		char **names = NULL;
		size_t n = 0;
		if (sw_plat_list_dir(logs, &names, &n) == SW_OK) {
			for (size_t i = 0; i < n; i++) {
				size_t l = strlen(logs) + strlen(names[i]) + 2;
				char *p = malloc(l);
				if (p) {
					snprintf(p, l, "%s%s%s", logs, sw_plat_windows_paths() ? "\\" : "/",
					         names[i]);
					if (sw_plat_is_dir(p) == 0)
						rm(p);
					free(p);
				}
				free(names[i]);
			}
			free(names);
		}
		free(logs);
	}
	rm_suffixed(config, "");
	rm_suffixed(config, ".bak");
	return 0;
}

/* ---------------------------------------------------------------- main */

int sw_cmd_service(int argc, char **argv)
{
	if (argc < 2) {
		fputs(USAGE, stderr);
		return 2;
	}
	const char *sub = argv[1];
	conf_args c;
	memset(&c, 0, sizeof c);
	const char *store = NULL, *timeout = NULL;
	struct {
		const char *opt;
		const char **val;
	} opts[] = {
		{ "--config", &c.config },
		{ "--roots", &c.roots },
		{ "--logs-ingestion-endpoint", &c.endpoint },
		{ "--dcr-id", &c.dcr_id },
		{ "--stream", &c.stream },
		{ "--tenant-id", &c.tenant_id },
		{ "--client-id", &c.client_id },
		{ "--client-secret-env", &c.secret_env },
		{ "--syslog-host", &c.syslog_host },
		{ "--syslog-port", &c.syslog_port },
		{ "--https-url", &c.https_url },
		{ "--store", &store },
		{ "--timeout", &timeout },
	};
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--force")) {
			c.force = 1;
			continue;
		}
		int m = 0;
		for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !m; k++)
			m = sw_opt_value(argc, argv, &i, opts[k].opt, opts[k].val);
		if (m < 0)
			return 2;
		if (!m) {
			fprintf(stderr, "signwatch service %s: unexpected argument '%s'\n" USAGE, sub,
			        argv[i]);
			return 2;
		}
	}
	unsigned timeout_ms = 60000;
	if (timeout) {
		char *end;
		long t = strtol(timeout, &end, 10);
		if (*end || t < 1 || t > 3600) {
			fprintf(stderr, "signwatch service: --timeout: expected seconds 1..3600, got '%s'\n",
			        timeout);
			return 2;
		}
		timeout_ms = (unsigned)t * 1000;
	}

	if (!strcmp(sub, "configure")) {
		const char **all[] = { &c.config,      &c.roots,       &c.endpoint,  &c.dcr_id,
			               &c.stream,      &c.tenant_id,   &c.client_id, &c.secret_env,
			               &c.syslog_host, &c.syslog_port, &c.https_url };
		for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
			*all[k] = trim_arg(*all[k]); /* freed at exit */
		return cmd_configure(&c);
	}
	if (!strcmp(sub, "remove-data"))
		return cmd_remove_data(given(c.config) ? c.config : sw_plat_default_config(),
		                       given(store) ? store : sw_plat_default_store());

	char why[1024] = "";
	sw_err e;
	char state[64] = "";
	if (!strcmp(sub, "install")) {
		sw_service_opts o = { given(c.config) ? c.config : NULL, NULL };
		e = sw_plat_service_install(&o, why, sizeof why);
	} else if (!strcmp(sub, "set-recovery")) {
		e = sw_plat_service_set_recovery(why, sizeof why);
	} else if (!strcmp(sub, "uninstall")) {
		e = sw_plat_service_uninstall(timeout_ms, why, sizeof why);
	} else if (!strcmp(sub, "start")) {
		e = sw_plat_service_start(timeout_ms, why, sizeof why);
	} else if (!strcmp(sub, "stop")) {
		e = sw_plat_service_stop(timeout_ms, why, sizeof why);
	} else if (!strcmp(sub, "reload")) {
		/* SERVICE_CONTROL_PARAMCHANGE: configuration, trust stores and
		 * rules read again, as SIGHUP does on POSIX */
		e = sw_plat_service_reload(why, sizeof why);
	} else if (!strcmp(sub, "status")) {
		e = sw_plat_service_state(state, sizeof state, why, sizeof why);
	} else {
		fprintf(stderr, "signwatch service: unknown subcommand '%s'\n" USAGE, sub);
		return 2;
	}
	if (e == SW_ERR_UNSUPPORTED) {
		fprintf(stderr, "signwatch service %s: %s\n", sub, why);
		return 2;
	}
	if (e != SW_OK) {
		fprintf(stderr, "signwatch service %s: %s\n", sub, why);
		return e == SW_ERR_USAGE ? 2 : 1;
	}
	if (!strcmp(sub, "status"))
		printf("%s\n", state);
	else
		fprintf(stderr, "signwatch service %s: done\n", sub);
	return 0;
}
