/* Unit tests for agent/config.c.
 *   test_config [SHIPPED_YAML]
 * The OS is injected through sw_config_env: which folders exist, the
 * environment, the config file's mode. Files (the oversized one, the
 * missing one, the print round trip) go to a temporary folder.
 *
 * The cases are written with POSIX paths. Where the platform has Windows
 * paths (sw_plat_windows_paths: a drive is what makes a path absolute
 * there), native() gives each path that starts a value a drive: "/a"
 * becomes "C:/a" (Windows takes / as a separator), in the YAML and in the
 * expected values alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "platform.h"
#include "tap.h"
#include "tap_os.h"

/* ---- the injected OS ---- */

typedef struct fake_os {
	unsigned mode;              /* the config file's permission bits */
	int mode_rc;                /* non-zero: "cannot tell" */
	const char *missing_prefix; /* folders starting with this do not exist */
	const char *env_name, *env_value;
	int dir_calls;
} fake_os;

static int f_dir_ok(void *ud, const char *path, char *why, size_t n)
{
	fake_os *o = ud;
	o->dir_calls++;
	if (o->missing_prefix && !strncmp(path, o->missing_prefix, strlen(o->missing_prefix))) {
		snprintf(why, n, "no such directory");
		return 1;
	}
	return 0;
}

static const char *f_get_env(void *ud, const char *name)
{
	fake_os *o = ud;
	return o->env_name && !strcmp(name, o->env_name) ? o->env_value : NULL;
}

static int f_file_mode(void *ud, const char *path, unsigned *mode)
{
	fake_os *o = ud;
	(void)path;
	*mode = o->mode;
	return o->mode_rc;
}

static fake_os os;
static sw_config_env env = { &os, f_dir_ok, f_get_env, f_file_mode };

static void reset_os(void)
{
	memset(&os, 0, sizeof os);
	os.mode = 0600;
}

static char err[8192];

/* s as TAP comment lines ("#   " before each line). */
static void diag(const char *label, const char *s)
{
	for (const char *l = s, *e; *l; l = e + (*e != 0)) {
		e = l + strcspn(l, "\n");
		printf("#   %s%.*s\n", l == s ? label : "", (int)(e - l), l);
	}
}

/* A path starts at the beginning of s, after a blank, an opening bracket
 * or a quote: "store: /x", "[/a, '/b c']", "(/home)", but not "a/b",
 * "https://h/x", the glob "*" "/node_modules" or '"y"/' "*". */
static bool starts_path(const char *s, const char *p)
{
	return p[0] == '/' && p[1] != '/' && p[1] != '*' && (p == s || strchr(" [{('\"", p[-1]));
}

/* s with a drive before each path where paths need one (malloc'd). */
static char *native(const char *s)
{
	bool win = sw_plat_windows_paths();
	size_t n = 0;
	for (const char *p = s; win && *p; p++)
		n += starts_path(s, p);
	char *out = malloc(strlen(s) + 2 * n + 1), *o = out;
	if (!out)
		abort();
	for (const char *p = s; *p; p++) {
		if (win && starts_path(s, p))
			*o++ = 'C', *o++ = ':';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* native() for short expected values (rotating static buffers). */
static const char *P(const char *s)
{
	static char buf[8][512];
	static int k;
	char *t = native(s), *b = buf[k++ % 8];
	snprintf(b, sizeof buf[0], "%s", t);
	free(t);
	return b;
}

/* An error message starting with its line:column, which differs where
 * native() lengthened the line before it. */
#define AT(posix, windows, rest) (sw_plat_windows_paths() ? windows rest : posix rest)

static sw_err load(const char *yaml, sw_config **c)
{
	char *y = native(yaml);
	sw_err e = sw_config_load_buffer("t.yaml", y, strlen(y), &env, c, err, sizeof err);
	free(y);
	return e;
}

/* Load yaml, expect SW_ERR_CONFIG and an error line containing want. */
static void fails(const char *yaml, const char *want_posix, const char *what)
{
	sw_config *c = NULL;
	sw_err e = load(yaml, &c);
	char *want = native(want_posix);
	ok(e == SW_ERR_CONFIG && c == NULL && strstr(err, want) != NULL, "%s", what);
	if (e != SW_ERR_CONFIG || !strstr(err, want)) {
		printf("#   got %d:\n", e);
		diag("", err);
		diag("want: ", want);
	}
	free(want);
	sw_config_free(c);
}

static sw_config *loads(const char *yaml, const char *what)
{
	sw_config *c = NULL;
	sw_err e = load(yaml, &c);
	if (!ok(e == SW_OK && c, "%s", what)) {
		printf("#   got %d:\n", e);
		diag("", err);
	}
	return c;
}

static int count_lines(const char *s)
{
	int n = *s ? 1 : 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static char tmpdir[512];

static char *tmp_path(const char *name)
{
	static char p[1024];
	snprintf(p, sizeof p, "%s" TAP_SEP "%s", tmpdir, name);
	return p;
}

/* "C:\\x" (or "C:/x"): what the platform's defaults look like on Windows. */
static bool drive_abs(const char *p)
{
	return p && ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
	       (p[2] == '\\' || p[2] == '/');
}

/* Does s end with the separator-joined parts (Windows: backslashes)? */
static bool ends_with(const char *s, const char *tail)
{
	size_t a = s ? strlen(s) : 0, b = strlen(tail);
	return a >= b && !strcmp(s + a - b, tail);
}

/* ---- tests ---- */

static void test_shipped(const char *path)
{
	reset_os();
	sw_config *c = NULL;
	sw_err e = sw_config_load_file(path, &env, &c, err, sizeof err);
	if (sw_plat_windows_paths()) {
		/* Its paths are not absolute on Windows: refused, with the hint. */
		ok(e == SW_ERR_CONFIG && c == NULL &&
		           strstr(err, ": roots[0]: expected an absolute path, got '/home'; use an absolute "
		                       "path (starting with a drive, C:\\)"),
		   "the shipped Linux file is refused on Windows (%s)", path);
		diag("", err);
		sw_config_free(c);
		return;
	}
	if (!ok(e == SW_OK && c, "the shipped Linux default loads (%s)", path)) {
		diag("", err);
		return;
	}
	is_int(c->roots.n, 3, "shipped: three roots");
	is_str(c->roots.v[0], "/home", "shipped: /home first");
	is_str(c->store, "/var/lib/signwatch/signwatch.db", "shipped: store");
	is_int(c->n_outputs, 1, "shipped: one output");
	is_int(c->outputs[0].type, SW_OUT_FILE, "shipped: a file output");
	is_str(c->outputs[0].path, "/var/log/signwatch/records.jsonl", "shipped: records path");
	ok(!c->outputs_default, "shipped: outputs from the file");
	sw_config_free(c);
}

static void test_defaults(void)
{
	reset_os();
	const char *docs[] = { "", "# only a comment\n", "~\n", "---\n", "null\n", "\xEF\xBB\xBF" };
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		sw_config *c = loads(docs[i], "an empty or null document loads");
		if (!c)
			continue;
		is_int(c->n_outputs, 1, "  with one output");
		sw_config_free(c);
	}
	sw_config *c = loads("", "defaults");
	if (!c)
		return;
	size_t n_roots = 0;
	const char *const *roots = sw_plat_default_roots(&n_roots);
	is_int(c->roots.n, n_roots, "default roots: the platform's");
	for (size_t i = 0; i < n_roots && i < c->roots.n; i++)
		is_str(c->roots.v[i], roots[i], "default root %zu", i);
	is_str(c->store, sw_plat_default_store(), "default store from platform");
	is_int(c->rules.n, 1, "default rules: one folder");
	is_str(c->rules.v[0], sw_plat_default_rules(), "default rules folder from platform");
	is_str(c->outputs[0].path, sw_plat_default_records(), "default output path from platform");
	if (!sw_plat_windows_paths()) {
		is_int(c->roots.n, 3, "default roots: three");
		is_str(c->roots.v[0], "/home", "default root /home");
		is_str(c->roots.v[1], "/tmp", "default root /tmp");
		is_str(c->roots.v[2], "/opt", "default root /opt");
		is_str(c->store, "/var/lib/signwatch/signwatch.db", "default store");
		is_str(c->rules.v[0], "/usr/share/signwatch/rules", "default rules folder");
		is_str(c->outputs[0].path, "/var/log/signwatch/records.jsonl", "default output path");
		is_str(c->outputs[0].id, "file:/var/log/signwatch/records.jsonl", "output identity");
	} else {
		/* Under %ProgramData% (wherever it is); the watched folders
		 * with a drive. */
		int abs_roots = 0;
		for (size_t i = 0; i < c->roots.n; i++)
			abs_roots += drive_abs(c->roots.v[i]);
		ok(c->roots.n >= 3 && abs_roots == (int)c->roots.n, "default roots: %zu, each with a drive",
		   c->roots.n);
		ok(drive_abs(c->store) && ends_with(c->store, "\\signwatch\\signwatch.db"),
		   "default store %s", c->store);
		ok(drive_abs(c->rules.v[0]) && ends_with(c->rules.v[0], "\\signwatch\\rules"),
		   "default rules folder %s", c->rules.v[0]);
		ok(drive_abs(c->outputs[0].path) &&
		           ends_with(c->outputs[0].path, "\\signwatch\\logs\\records.jsonl"),
		   "default output path %s", c->outputs[0].path);
		char id[1024];
		snprintf(id, sizeof id, "file:%s", sw_plat_default_records());
		is_str(c->outputs[0].id, id, "output identity");
	}
	is_int(c->exclude.n, 0, "default exclude: none");
	ok(c->rules_default, "rules marked as the default");
	is_int(c->yara_rules.n, 0, "default yara_rules: none");
	ok(c->ca_file == NULL, "default ca_file: none");
	is_str(c->device_id, "", "default device_id: derived");
	is_int(c->settle_ms, 300, "default settle_ms");
	is_int(c->reconcile_hours, 6, "default reconcile_hours");
	is_int(c->max_file_mb, 512, "default max_file_mb");
	is_int(c->log_level, SW_CONFIG_LOG_INFO, "default log_level");
	is_int(c->cpu_budget_percent, 25, "default cpu_budget_percent");
	is_int(c->threads, 2, "default threads");
	ok(!c->cross_filesystems, "default cross_filesystems false");
	ok(c->outputs_default, "the embedded default output");
	is_int(c->outputs[0].type, SW_OUT_FILE, "default output is a file");
	is_int(c->outputs[0].max_mb, 64, "default max_mb");
	is_int(c->outputs[0].keep, 5, "default keep");
	is_int(c->outputs[0].send_records, SW_SEND_MATCHING, "default send_records");
	ok(c->outputs[0].send_summaries, "default send_summaries");
	is_int(c->outputs[0].heartbeat_minutes, 60, "default heartbeat_minutes");
	is_int(c->outputs[0].outbox_mb, 256, "default outbox_mb");
	is_int(c->outputs[0].max_backoff_s, 300, "default max_backoff_s");
	sw_config_free(c);

	/* The last default root (/opt; Windows: %SystemRoot%\Temp) is the
	 * prefix of no other. */
	os.missing_prefix = roots[n_roots - 1];
	c = loads("", "a missing default root is skipped");
	if (c) {
		is_int(c->roots.n, n_roots - 1, "  the other roots left");
		ok(c->roots.n == n_roots - 1 && c->roots.n && !strcmp(c->roots.v[0], roots[0]) &&
		           strcmp(c->roots.v[c->roots.n - 1], roots[n_roots - 1]) != 0,
		   "  the missing one dropped");
		sw_config_free(c);
	}
	os.missing_prefix = sw_plat_windows_paths() ? "" : "/"; /* every folder */
	fails("", "t.yaml: roots: none of the default roots exists here", "no default root exists: error");
	reset_os();

	c = loads("roots: [/srv/]\nsettle_ms:\nexclude: ~\n",
	          "null values take defaults, trailing '/' dropped");
	if (c) {
		is_str(c->roots.v[0], P("/srv"), "  root normalized");
		is_int(c->settle_ms, 300, "  settle_ms default");
		sw_config_free(c);
	}
}

static void test_values(void)
{
	reset_os();
	sw_config *c = loads("roots: [/a, /b]\n"
	                     "exclude: ['*/node_modules/*', '*.tmp']\n"
	                     "store: /x/db\n"
	                     "rules: [/r1, /r2/x.yaml]\n"
	                     "yara_rules:\n  - /y\n"
	                     "ca_file: /etc/ca.pem\n"
	                     "device_id: 0123456789abcdef0123456789abcdef01234567\n"
	                     "settle_ms: 10\n"
	                     "reconcile_hours: 0\n"
	                     "max_file_mb: 4096\n"
	                     "log_level: debug\n"
	                     "cpu_budget_percent: 100\n"
	                     "threads: 64\n"
	                     "cross_filesystems: true\n"
	                     "outputs:\n"
	                     "  - type: syslog_tls\n"
	                     "    host: syslog.example.com\n"
	                     "    pin_sha256: sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	                     "  - type: https_json\n"
	                     "    url: https://collector.example.com/ingest/\n"
	                     "    gzip: false\n"
	                     "    send_records: none\n"
	                     "    send_summaries: false\n"
	                     "    heartbeat_minutes: 0\n"
	                     "    client_certificate: /etc/c.pem\n"
	                     "    client_key: /etc/k.pem\n"
	                     "  - type: file\n"
	                     "    path: /var/tmp/r.jsonl\n"
	                     "    max_mb: 1\n"
	                     "    keep: 0\n",
	                     "every key at a boundary value loads");
	if (!c)
		return;
	is_int(c->roots.n, 2, "roots");
	is_int(c->exclude.n, 2, "exclude");
	is_str(c->rules.v[1], P("/r2/x.yaml"), "rules");
	ok(!c->rules_default, "rules from the file");
	is_str(c->yara_rules.v[0], P("/y"), "yara_rules");
	is_str(c->device_id, "0123456789abcdef0123456789abcdef01234567", "device_id");
	is_int(c->settle_ms, 10, "settle_ms");
	is_int(c->reconcile_hours, 0, "reconcile_hours 0 = off");
	is_int(c->log_level, SW_CONFIG_LOG_DEBUG, "log_level");
	ok(c->cross_filesystems, "cross_filesystems");
	is_int(c->n_outputs, 3, "three outputs");
	is_int(c->outputs[0].port, 6514, "syslog default port");
	is_str(c->outputs[0].app_name, "signwatch", "syslog default app_name");
	is_str(c->outputs[0].pin_sha256,
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "pin without curl's prefix");
	is_str(c->outputs[0].id, "syslog_tls:syslog.example.com:6514", "syslog identity");
	is_str(c->outputs[1].url, "https://collector.example.com/ingest", "url without trailing /");
	ok(!c->outputs[1].gzip, "gzip false");
	is_int(c->outputs[1].send_records, SW_SEND_NONE, "send_records none");
	ok(!c->outputs[1].send_summaries, "send_summaries false");
	is_int(c->outputs[1].heartbeat_minutes, 0, "heartbeat 0");
	ok(c->outputs[1].secret == NULL, "no bearer token");
	is_int(c->outputs[2].keep, 0, "keep 0");
	ok(sw_config_excluded(c, P("/a/p/node_modules/x.exe")), "excluded: node_modules");
	ok(sw_config_excluded(c, P("/a/p/setup.tmp")), "excluded: *.tmp");
	ok(!sw_config_excluded(c, P("/a/p/setup.exe")), "not excluded: setup.exe");
	if (sw_plat_windows_paths()) {
		/* What the watcher gives on Windows: backslashes, any case. */
		ok(sw_config_excluded(c, "C:\\a\\p\\node_modules\\x.exe"), "excluded: C:\\...\\node_modules");
		ok(sw_config_excluded(c, "c:\\a\\p\\SETUP.TMP"), "excluded: *.tmp in upper case");
		ok(!sw_config_excluded(c, "C:\\a\\p\\setup.exe"), "not excluded: C:\\a\\p\\setup.exe");
	}
	sw_config_free(c);

	c = loads("outputs:\n  - type: https_json\n    url: https://h\n", "https_json: only a url");
	if (c) {
		ok(c->outputs[0].gzip, "  gzip default true");
		sw_config_free(c);
	}
}

static void test_errors(void)
{
	reset_os();
	fails("roots: [/home]\nrootz: [/x]\n",
	      "t.yaml:2:1: rootz: unknown key 'rootz'; did you mean 'roots'?",
	      "unknown top-level key, with a suggestion");
	fails("outputs:\n  - type: syslog_tls\n    host: h\n    prot: 1\n",
	      "t.yaml:4:5: outputs[0].prot: unknown key 'prot'; did you mean 'port'? (keys of a syslog_tls "
	      "output:",
	      "unknown key inside an output");
	fails("outputs:\n  - type: file\n    path: /x\n    port: 1\n",
	      "t.yaml:4:5: outputs[0].port: 'port' is not a key of a file output (it is for syslog_tls)",
	      "a key of another output type");
	fails("settle_ms: [1]\n", "t.yaml:1:12: settle_ms: expected an integer 10..60000, got a list",
	      "wrong type: list for an integer");
	fails("roots: /home\n", "t.yaml:1:8: roots: expected a list of absolute folder paths, got text",
	      "wrong type: text for a list");
	fails("store: {a: 1}\n", "t.yaml:1:8: store: expected an absolute path, got a mapping",
	      "wrong type: mapping");
	fails("cross_filesystems: yes\n",
	      "t.yaml:1:20: cross_filesystems: expected true or false (unquoted), got 'yes'",
	      "yes is not a boolean");
	fails("settle_ms: \"300\"\n",
	      "settle_ms: expected an integer 10..60000, got the quoted text '300'; remove the quotes",
	      "a quoted integer");
	fails("settle_ms: 0300\n", "drop the leading zeros", "a leading zero (octal in YAML 1.1)");
	fails("settle_ms: 5\n", "t.yaml:1:12: settle_ms: expected an integer 10..60000, got 5",
	      "out of range: low");
	fails("threads: 65\n", "threads: expected an integer 1..64, got 65", "out of range: high");
	fails("cpu_budget_percent: 0\n", "cpu_budget_percent: expected an integer 1..100, got 0",
	      "cpu budget 0");
	fails("reconcile_hours: 721\n", "reconcile_hours: expected an integer 0..720, got 721",
	      "reconcile > 720");
	fails("max_file_mb: 99999999999999\n", "max_file_mb: expected an integer 1..4096, got",
	      "a huge number");
	fails("outputs:\n  - type: syslog_tls\n    host: h\n    port: 70000\n",
	      "t.yaml:4:11: outputs[0].port: expected an integer 1..65535, got 70000", "port out of range");
	fails("outputs:\n  - type: syslog_tls\n    host: h\n    port: abc\n",
	      "t.yaml:4:11: outputs[0].port: expected an integer 1..65535, got 'abc'", "port not a number");
	fails("store: var/lib/db\n",
	      "t.yaml:1:8: store: expected an absolute path, got 'var/lib/db'; use an absolute path",
	      "relative store");
	fails("rules: [/ok, rel/x]\n",
	      AT("t.yaml:1:14", "t.yaml:1:16",
	         ": rules[1]: expected an absolute path, got 'rel/x'; use an absolute path"),
	      "relative path in a list");
	fails("outputs:\n  - type: file\n    path: out.jsonl\n", "outputs[0].path: expected an absolute path",
	      "relative output path");
	fails("outputs:\n  - type: file\n",
	      "t.yaml:2:5: outputs[0].path: missing, and a file output needs it; add path:",
	      "missing required key: file path");
	fails("outputs:\n  - path: /x\n", "t.yaml:2:5: outputs[0].type: missing; add type: file",
	      "missing type");
	fails("outputs:\n  - type: kafka\n",
	      "t.yaml:2:11: outputs[0].type: expected one of file, logs_ingestion, syslog_tls or https_json, "
	      "got 'kafka'",
	      "bad output type");
	fails("outputs:\n  - type: syslog_tls\n",
	      "outputs[0].host: missing, and a syslog_tls output needs it", "missing syslog host");
	fails("outputs:\n  - type: https_json\n", "outputs[0].url: missing", "missing https url");
	fails("roots: [/a]\nstore: /x\nroots: [/b]\n",
	      "t.yaml:3:1: roots: duplicate key (first given at line 1); keep one",
	      "duplicate top-level key");
	fails("outputs:\n  - type: file\n    path: /a\n    path: /b\n",
	      "t.yaml:4:5: outputs[0].path: duplicate key (first given at line 3)",
	      "duplicate key in an output");
	fails("log_level: verbose\n",
	      "t.yaml:1:12: log_level: expected one of debug, info, warn or error, got 'verbose'",
	      "bad log level");
	fails("outputs:\n  - type: file\n    path: /x\n    send_records: some\n",
	      "outputs[0].send_records: expected one of all, matching or none, got 'some'",
	      "bad send_records");
	fails("device_id: 0123456789ABCDEF0123456789abcdef01234567\n", "(write it in lowercase)",
	      "uppercase device id");
	fails("device_id: abc\n",
	      "t.yaml:1:12: device_id: expected null or 40 lowercase hex digits, got 'abc'",
	      "short device id");
	fails("outputs: []\n", "t.yaml:1:10: outputs: an empty list", "no outputs");
	fails("outputs:\n  - file\n", "t.yaml:2:5: outputs[0]: expected a mapping",
	      "an output that is not a mapping");
	fails("roots: []\n", "roots: no roots", "empty roots");
	fails("- a\n- b\n", "t.yaml:1:1: the configuration must be a mapping", "a list document");
	fails("store: /x\n---\nstore: /y\n", "t.yaml:2:1: a second YAML document", "two documents");
	fails("a: &x /p\nstore: *x\n", "t.yaml:2:8: YAML aliases", "aliases refused");
	fails("store: !!str /x\n", "YAML tags", "tags refused");
	fails("store: /x\n\tsettle_ms: 3\n", "t.yaml:2:", "a tab: syntax error with its line");
	fails("outputs:\n  - type: file\n     path: /x\n", "YAML syntax error", "bad indentation");
	fails("exclude: ['[abc']\n", "exclude[0]: bad pattern '[abc': '[' without a closing ']'", "bad glob");
	fails("exclude: ['']\n", "exclude[0]: expected a glob pattern, got an empty string", "empty glob");
	fails("rules: [/a, ~]\n", "rules[1]: an empty item", "null list item");
	fails("store: \"/x\\0y\"\n", "without NUL characters", "a NUL in a value");

	os.missing_prefix = P("/nope");
	fails("roots: [/home, /nope/x]\n",
	      AT("t.yaml:1:16", "t.yaml:1:18",
	         ": roots[1]: '/nope/x' is not a readable directory (no such directory); create it"),
	      "missing root");
	reset_os();
	fails("roots: [/home, /home/u]\n", "roots[1]: overlaps roots[0] (/home)", "nested roots");
	fails("roots: [/home/u, /home]\n", "roots[1]: overlaps roots[0] (/home/u)",
	      "nested roots, outer second");
	sw_config *c = loads("roots: [/home, /homework]\n", "a sibling with a common prefix is not nested");
	sw_config_free(c);

	/* several errors in one pass, each on its own line */
	fails("settle_ms: 1\nthreads: 0\nlog_level: loud\n",
	      "t.yaml:3:12: log_level:", "all errors collected");
	is_int(count_lines(err), 3, "  three error lines");
	ok(strstr(err, "t.yaml:1:12: settle_ms:") && strstr(err, "t.yaml:2:10: threads:"), "  in file order");

	/* the cap */
	char big[4096] = "";
	for (int i = 0; i < 30; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), "bogus%d: 1\n", i);
	fails(big, "(10 more errors not shown)", "errors are capped");
	is_int(count_lines(err), SW_CONFIG_MAX_ERRORS + 1, "  cap + the count line");

	/* a small buffer is not overrun */
	char small[24];
	memset(small, 'X', sizeof small);
	sw_config *c2 = NULL;
	sw_err e = sw_config_load_buffer("t.yaml", "threads: 0\n", 11, &env, &c2, small, 16);
	ok(e == SW_ERR_CONFIG && strlen(small) == 15 && small[16] == 'X',
	   "a short error buffer is truncated, not overrun");

	/* hostile nesting stops at the depth cap, without recursion */
	{
		size_t n = 200000;
		char *deep = malloc(n + 16);
		memcpy(deep, "roots: ", 7);
		memset(deep + 7, '[', n);
		deep[7 + n] = '\0';
		fails(deep, "nesting deeper than 16 levels", "deep nesting is refused");
		free(deep);
	}

	/* invalid UTF-8 */
	fails("store: /ok\nrules: [/r\xff]\n",
	      AT("t.yaml:2:11", "t.yaml:2:13", ": not UTF-8 text (byte 0xFF)"),
	      "invalid UTF-8, with its position");
	fails("store: /\xC0\xAF\n", AT("t.yaml:1:9", "t.yaml:1:11", ": not UTF-8 text (byte 0xC0)"),
	      "an overlong UTF-8 sequence");
	fails("\xFF\xFEs\0t\0", "perhaps UTF-16", "UTF-16 gets a hint");
	{
		const char nul[] = "store: /x\n\0";
		sw_config *c3 = NULL;
		e = sw_config_load_buffer("t.yaml", nul, sizeof nul - 1, &env, &c3, err, sizeof err);
		ok(e == SW_ERR_CONFIG && strstr(err, "t.yaml:2:1: not UTF-8 text (byte 0x00)"),
		   "a NUL byte in the file");
	}
}

static void test_logs_ingestion(void)
{
	reset_os();
	const char *li = "outputs:\n"
	                 "  - type: logs_ingestion\n"
	                 "    endpoint: https://dce-1.westeurope-1.ingest.monitor.azure.com/\n"
	                 "    dcr_id: dcr-0123456789abcdef0123456789abcdef\n"
	                 "    stream: Custom-SignwatchCertificateInfo_CL\n"
	                 "    tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
	                 "    client_id: 11111111-2222-3333-4444-555555555555\n";
	char y[2048];
	os.env_name = "SW_SECRET";
	os.env_value = "env-Secret-Value-42";
	snprintf(y, sizeof y, "%s    client_secret_env: SW_SECRET\n", li);
	sw_config *c = loads(y, "logs_ingestion with client_secret_env");
	if (c) {
		const sw_config_output *o = &c->outputs[0];
		is_str(o->secret, "env-Secret-Value-42", "  the secret is read from the environment");
		is_str(o->secret_env, "SW_SECRET", "  and its variable remembered");
		is_str(o->endpoint, "https://dce-1.westeurope-1.ingest.monitor.azure.com",
		       "  endpoint without /");
		is_str(o->token_url,
		       "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/"
		       "token",
		       "  default token_url from the tenant");
		is_int(o->send_records, SW_SEND_MATCHING, "  send_records default");
		tap_mem m;
		FILE *f = tap_mem_open(&m);
		ok(f && sw_config_print(c, f) == SW_OK, "  print");
		char *buf = tap_mem_close(&m, NULL);
		ok(buf && !strstr(buf, "env-Secret-Value-42") &&
		           strstr(buf, "client_secret_env: \"SW_SECRET\""),
		   "  print names the variable, never the value");
		free(buf);
		sw_config_free(c);
	}

	os.env_value = NULL;
	fails(y, "t.yaml:8:24: outputs[0].client_secret_env: the environment variable SW_SECRET is not set",
	      "an unset variable");
	os.env_value = "";
	fails(y, "the environment variable SW_SECRET is empty", "an empty variable");
	os.env_value = "line1\nline2-Secret";
	fails(y, "holds a control character", "a variable with a line break");
	ok(!strstr(err, "line2-Secret"), "  the variable's value is not shown");
	reset_os();

	snprintf(y, sizeof y, "%s    client_secret: 'File-Secret-Value-7'\n", li);
	os.mode = 0600;
	c = loads(y, "client_secret in a mode 0600 file");
	if (c) {
		is_str(c->outputs[0].secret, "File-Secret-Value-7", "  the secret is kept");
		ok(c->outputs[0].secret_env == NULL, "  from the file");
		tap_mem m;
		FILE *f = tap_mem_open(&m);
		ok(f && sw_config_print(c, f) == SW_OK, "  print");
		char *buf = tap_mem_close(&m, NULL);
		ok(buf && !strstr(buf, "File-Secret-Value-7") &&
		           strstr(buf, "# client_secret: set in the file, not shown"),
		   "  print redacts it");
		free(buf);
		sw_config_free(c);
	}
	os.mode = 0644;
	fails(y,
	      "t.yaml:8:20: outputs[0].client_secret: t.yaml is readable by every user (mode 0644), so it "
	      "must "
	      "not hold a secret; run chmod 600 t.yaml",
	      "a world-readable file with a secret");
	ok(!strstr(err, "File-Secret-Value-7"), "  the secret is not in the message");
	os.mode = 0640;
	fails(y, "t.yaml is readable by its group (mode 0640)", "a group-readable file with a secret");
	os.mode = 0600;
	os.mode_rc = -1;
	fails(y, "cannot check who may read t.yaml", "unknown permissions refuse a secret");
	reset_os();
	{
		sw_config_env noperm = { &os, f_dir_ok, f_get_env, NULL };
		sw_config *c3 = NULL;
		sw_err e = sw_config_load_buffer("t.yaml", y, strlen(y), &noperm, &c3, err, sizeof err);
		ok(e == SW_ERR_CONFIG && strstr(err, "cannot check who may read"),
		   "no file_mode callback refuses a secret");
	}

	fails(li, "t.yaml:2:5: outputs[0].client_secret: no credential for Entra ID", "no credential");
	os.env_name = "V";
	os.env_value = "x";
	snprintf(y, sizeof y, "%s    client_secret: 'S3cr3t-in-file'\n    client_secret_env: V\n", li);
	fails(y, "more than one credential", "two credentials");
	ok(!strstr(err, "S3cr3t-in-file"), "  the secret is not in the message");
	snprintf(y, sizeof y, "%s    client_certificate: /etc/c.pem\n", li);
	fails(y, "outputs[0].client_key: missing: client_certificate and client_key go together",
	      "cert without key");
	snprintf(y, sizeof y, "%s    client_certificate: /etc/c.pem\n    client_key: /etc/k.pem\n", li);
	c = loads(y, "certificate credential");
	sw_config_free(c);

	snprintf(y, sizeof y, "%s    client_secret_env: 'not a name S3cr3t'\n", li);
	fails(y, "outputs[0].client_secret_env: expected the name of an environment variable",
	      "a bad variable name");
	ok(!strstr(err, "S3cr3t"), "  a value there is not echoed (it may be the secret)");
	snprintf(y, sizeof y, "%s    client_secrt: 'Typo-S3cr3t'\n    client_secret_env: V\n", li);
	fails(y, "outputs[0].client_secrt: unknown key 'client_secrt'; did you mean 'client_secret'?",
	      "a misspelled secret key");
	ok(!strstr(err, "Typo-S3cr3t"), "  the unknown key's value is not echoed");
	snprintf(y, sizeof y, "%s    client_secret: \"bad\\nS3cr3t\"\n", li);
	fails(y, "the secret contains a control character", "a secret with a line break");
	ok(!strstr(err, "S3cr3t"), "  not echoed");
	snprintf(y, sizeof y, "%s    client_secret: [Listed-S3cr3t]\n", li);
	fails(y, "outputs[0].client_secret: expected the secret as text, got a list",
	      "a secret of the wrong type");
	ok(!strstr(err, "Listed-S3cr3t"), "  not echoed");

	fails("outputs:\n  - type: logs_ingestion\n    endpoint: http://x.example.com\n",
	      "t.yaml:3:15: outputs[0].endpoint: expected an https:// URL", "an http endpoint");
	fails("outputs:\n  - type: logs_ingestion\n    endpoint: https://user:Pa55word@x.example.com\n",
	      "credentials in the URL are not allowed", "credentials in a URL");
	ok(!strstr(err, "Pa55word"), "  and they are not echoed");
	fails("outputs:\n  - type: logs_ingestion\n    dcr_id: 12345\n",
	      "outputs[0].dcr_id: expected the DCR's immutable id", "a bad dcr_id");
	fails("outputs:\n  - type: logs_ingestion\n    client_id: not-a-guid\n",
	      "outputs[0].client_id: expected a GUID", "a bad client_id");
	fails("outputs:\n  - type: logs_ingestion\n    tenant_id: a/b\n",
	      "outputs[0].tenant_id: expected the tenant's GUID", "a tenant that would break the token URL");
	fails("outputs:\n  - type: logs_ingestion\n    stream: 'Custom Bad'\n",
	      "outputs[0].stream: expected a stream name", "a bad stream");
	fails("outputs:\n  - type: logs_ingestion\n",
	      "outputs[0].dcr_id: missing, and a logs_ingestion output needs it", "missing dcr_id");
}

static void test_https_syslog(void)
{
	reset_os();
	os.env_name = "TOK";
	os.env_value = "Bearer-Env-Token";
	sw_config *c =
	        loads("outputs:\n  - type: https_json\n    url: https://h/x\n    bearer_token_env: TOK\n",
	              "https_json with bearer_token_env");
	if (c) {
		is_str(c->outputs[0].secret, "Bearer-Env-Token", "  token from the environment");
		sw_config_free(c);
	}
	os.mode = 0604;
	fails("outputs:\n  - type: https_json\n    url: https://h/x\n    bearer_token: File-Token-99\n",
	      "outputs[0].bearer_token: t.yaml is readable by every user (mode 0604)",
	      "bearer_token in a readable file");
	ok(!strstr(err, "File-Token-99"), "  the token is not in the message");
	os.mode = 0600;
	fails("outputs:\n  - type: https_json\n    url: https://h/x\n    bearer_token: File-Token-99\n"
	      "    bearer_token_env: TOK\n",
	      "both bearer_token and bearer_token_env", "both token forms");
	ok(!strstr(err, "File-Token-99"), "  the token is not in the message");
	fails("outputs:\n  - type: https_json\n    url: https://h/x\n    pin_sha256: abc\n",
	      "outputs[0].pin_sha256: expected the base64 SHA-256", "a bad pin");
	fails("outputs:\n  - type: syslog_tls\n    host: tls://h:6514\n",
	      "outputs[0].host: expected a host name or IP address only", "a URL as a host");
	fails("outputs:\n  - type: syslog_tls\n    host: h\n    app_name: 'sign watch'\n",
	      "outputs[0].app_name: expected 1..48 printable ASCII", "a bad app_name");
	fails("outputs:\n  - type: syslog_tls\n    host: h\n    client_key: /k\n",
	      "outputs[0].client_certificate: missing: client_certificate and client_key go together",
	      "mTLS key alone");
	fails("outputs:\n  - {type: file, path: /a}\n  - {type: file, path: /a/}\n",
	      "t.yaml:3:5: outputs[1]: the same destination as outputs[0]", "the same output twice");
	reset_os();
}

static void test_files(void)
{
	reset_os();
	sw_config *c = NULL;
	sw_err e = sw_config_load_file(tmp_path("absent.yaml"), &env, &c, err, sizeof err);
	ok(e == SW_ERR_CONFIG && c == NULL && strstr(err, "absent.yaml: no such file; create it"),
	   "a missing file");
	ok(!sw_config_file_exists(tmp_path("absent.yaml")), "sw_config_file_exists: no");

	FILE *f = fopen(tmp_path("big.yaml"), "wb");
	fputs("store: /x\n", f);
	for (int i = 0; i < 70000; i++)
		fputs("# padding line\n", f);
	fclose(f);
	ok(sw_config_file_exists(tmp_path("big.yaml")), "sw_config_file_exists: yes");
	e = sw_config_load_file(tmp_path("big.yaml"), &env, &c, err, sizeof err);
	ok(e == SW_ERR_CONFIG && c == NULL && strstr(err, "big.yaml: larger than 1024 KiB"),
	   "an oversized file is refused");

	sw_config *c2 = NULL;
	char *huge = calloc(1, SW_CONFIG_MAX_BYTES + 2);
	memset(huge, '#', SW_CONFIG_MAX_BYTES + 1);
	e = sw_config_load_buffer("b.yaml", huge, SW_CONFIG_MAX_BYTES + 1, &env, &c2, err, sizeof err);
	ok(e == SW_ERR_CONFIG && strstr(err, "b.yaml: larger than 1024 KiB"),
	   "an oversized buffer is refused");
	free(huge);

	/* POSIX opens a folder and fails to read it; Windows does not open it. */
	e = sw_config_load_file(tmpdir, &env, &c, err, sizeof err);
	ok(e == SW_ERR_CONFIG && c == NULL &&
	           strstr(err, sw_plat_windows_paths() ? "cannot open" : "cannot read"),
	   "a directory is not a config file");
	diag("", err);

	/* print -> load -> print is a fixed point */
	os.env_name = "SEC";
	os.env_value = "zzz-Secret";
	const char *full = "roots: [/a, '/b c']\nexclude: ['*/x \"y\"/*']\nca_file: /ca.pem\nthreads: 3\n"
	                   "device_id: 0123456789abcdef0123456789abcdef01234567\nlog_level: warn\n"
	                   "outputs:\n"
	                   "  - type: logs_ingestion\n"
	                   "    endpoint: https://dce.ingest.monitor.azure.com\n"
	                   "    dcr_id: dcr-0123456789abcdef0123456789abcdef\n"
	                   "    stream: Custom-X_CL\n"
	                   "    tenant_id: contoso.onmicrosoft.com\n"
	                   "    client_id: 11111111-2222-3333-4444-555555555555\n"
	                   "    client_secret_env: SEC\n"
	                   "    ca_file: /etc/li-ca.pem\n"
	                   "  - type: syslog_tls\n    host: '::1'\n    port: 1514\n    ca_file: /c.pem\n"
	                   "  - type: https_json\n    url: https://h/p\n    bearer_token_env: SEC\n"
	                   "    pin_sha256: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	                   "  - type: file\n    path: /r.jsonl\n    send_records: all\n";
	c = loads(full, "a full configuration loads");
	if (!c)
		return;
	f = fopen(tmp_path("p1.yaml"), "w");
	sw_config_print(c, f);
	fclose(f);
	sw_config_free(c);
	c = NULL;
	e = sw_config_load_file(tmp_path("p1.yaml"), &env, &c, err, sizeof err);
	if (!ok(e == SW_OK && c, "the printed configuration loads back"))
		diag("", err);
	if (!c)
		return;
	is_str(c->outputs[1].host, "::1", "  an IPv6 host survives");
	is_str(c->exclude.v[0], "*/x \"y\"/*", "  quotes in a pattern survive");
	f = fopen(tmp_path("p2.yaml"), "w");
	sw_config_print(c, f);
	fclose(f);
	sw_config_free(c);
	char a[8192], b[8192];
	f = fopen(tmp_path("p1.yaml"), "r");
	size_t na = fread(a, 1, sizeof a - 1, f);
	fclose(f);
	f = fopen(tmp_path("p2.yaml"), "r");
	size_t nb = fread(b, 1, sizeof b - 1, f);
	fclose(f);
	a[na] = b[nb] = '\0';
	/* The first line names the source file; compare the rest. */
	ok(!strcmp(strchr(a, '\n'), strchr(b, '\n')), "print -> load -> print is a fixed point");
	ok(!strstr(a, "zzz-Secret"), "  the secret is never printed");
	reset_os();
}

static void test_glob(void)
{
	static const struct {
		const char *pat, *path;
		int want;
		unsigned fl;
	} v[] = {
		{ "*/node_modules/*", "/home/u/p/node_modules/x.exe", 1, 0 },
		{ "*/node_modules/*", "/home/u/p/node_modules/a/b/c.exe", 1, 0 },
		{ "*/node_modules/*", "/home/u/p/node_modulesX/a.exe", 0, 0 },
		{ "node_modules", "/home/u/node_modules/a.exe", 1, 0 },
		{ "node_modules", "/home/u/my_node_modules/a.exe", 0, 0 },
		{ "*.tmp", "/tmp/a/b.tmp", 1, 0 },
		{ "*.tmp", "/tmp/a.tmp/b.exe", 1, 0 },
		{ "*.tmp", "/tmp/a.tmpx", 0, 0 },
		{ "/home/*/.cache", "/home/u/.cache/x/y.exe", 1, 0 },
		{ "/home/*/.cache", "/home/u/v/.cache/y.exe", 0, 0 },
		{ "/home/*/.cache", "/srv/home/u/.cache/y", 0, 0 },
		{ "/home/**/.cache", "/home/u/v/.cache/y.exe", 1, 0 },
		{ "/home/**/.cache", "/home/.cache/y.exe", 1, 0 },
		{ "/opt/**", "/opt/x", 1, 0 },
		{ "/opt", "/optimal/x", 0, 0 },
		{ "/opt", "/opt", 1, 0 },
		{ "a?c", "/x/abc", 1, 0 },
		{ "a?c", "/x/a/c", 0, 0 },
		{ "[abc]x", "/bx", 1, 0 },
		{ "[!abc]x", "/bx", 0, 0 },
		{ "[^abc]x", "/dx", 1, 0 },
		{ "[a-f]1", "/e1", 1, 0 },
		{ "[]]", "/]", 1, 0 },
		{ "caf?", "/caf\xC3\xA9", 1, 0 },
		{ "\\*", "/*", 1, 0 },
		{ "\\*", "/a", 0, 0 },
		{ "*.EXE", "/a/setup.exe", 0, 0 },
		{ "*.EXE", "C:\\Users\\u\\setup.exe", 1, SW_GLOB_WINDOWS },
		{ "C:\\Users\\*\\AppData", "c:\\users\\bob\\appdata\\x.exe", 1, SW_GLOB_WINDOWS },
		{ "C:/Users/*/AppData", "C:\\Users\\bob\\AppData\\x.exe", 1, SW_GLOB_WINDOWS },
		{ "*\\node_modules\\*", "C:\\p\\node_modules\\a.exe", 1, SW_GLOB_WINDOWS },
		{ "*a*a*a*a*a*a*a*a*a*a*b", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  0, 0 },
		{ "**a**a**a**a**a**a**a**b",
		  "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a", 0, 0 },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		is_int(sw_glob_match(v[i].pat, v[i].path, v[i].fl), v[i].want, "glob '%s' vs '%s'", v[i].pat,
		       v[i].path);
	ok(sw_glob_check("[abc", 0) != NULL, "glob check: unclosed [");
	ok(sw_glob_check("[[:alpha:]]", 0) != NULL, "glob check: classes refused");
	ok(sw_glob_check("a\\", 0) != NULL, "glob check: a lone backslash");
	ok(sw_glob_check("a\\", SW_GLOB_WINDOWS) == NULL, "glob check: backslash is a separator on Windows");
	ok(sw_glob_check("*/x/[a-z]*.exe", 0) == NULL, "glob check: a good pattern");
}

int main(int argc, char **argv)
{
	if (tap_mkdtemp(tmpdir, sizeof tmpdir, NULL, "sw-config-") != 0) {
		printf("Bail out! cannot make a temporary folder\n");
		return 1;
	}
	const char *shipped = argc > 1 ? argv[1] : "packaging/linux/signwatch.yaml";
	if (tap_readable(shipped))
		test_shipped(shipped);
	else
		skip("the shipped config file was not found (pass its path)");
	test_defaults();
	test_values();
	test_errors();
	test_logs_ingestion();
	test_https_syslog();
	test_files();
	test_glob();
	ok(tap_unlink(tmp_path("big.yaml")) == 0 && tap_unlink(tmp_path("p1.yaml")) == 0 &&
	           tap_unlink(tmp_path("p2.yaml")) == 0 && tap_rmdir(tmpdir) == 0,
	   "the temporary folder is removed, no file left in it");
	return done_testing();
}
