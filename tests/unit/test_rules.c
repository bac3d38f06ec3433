/* Unit tests for common/rules.c.
 *   test_rules [PULSEWAY_YAML [PACK_DIR]]
 * Variants of the Pulseway rule (CRLF, BOM, tabs, mis-indented connector
 * list, each bad input) are written to a temporary folder at run time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "tap.h"
#include "tap_os.h"

/* The platform layer's job in the agent; the tests' own here (the test
 * links common/ only). */
static int t_is_dir(void *ud, const char *path)
{
	(void)ud;
	return tap_is_dir(path);
}

static sw_err t_list(void *ud, const char *dir, char ***names, size_t *n)
{
	(void)ud;
	return tap_list_dir(dir, names, n) == 0 ? SW_OK : SW_ERR_IO;
}

static const sw_rules_dir_ops dir_ops = { t_is_dir, t_list, NULL };

static char tmpdir[256];

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	*len = fread(b, 1, (size_t)n, f);
	b[*len] = '\0';
	fclose(f);
	return b;
}

static const char *put(const char *sub, const char *name, const char *data, size_t len)
{
	static char path[1024];
	char dir[700];
	snprintf(dir, sizeof dir, "%s" TAP_SEP "%s", tmpdir, sub);
	snprintf(path, sizeof path, "%s" TAP_SEP "%s", dir, name);
	if (tap_mkdir(dir) != 0 || tap_write_file(path, data, len) != 0)
		printf("# cannot write %s\n", path);
	return path;
}

/* s with every occurrence of a replaced by b (malloc'd). */
static char *replace(const char *s, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = 0;
	for (const char *p = strstr(s, a); p; p = strstr(p + la, a))
		n++;
	char *out = malloc(strlen(s) + n * (lb + 1) + 1), *o = out;
	const char *p = s, *q;
	while ((q = strstr(p, a))) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, b, lb);
		o += lb;
		p = q + la;
	}
	strcpy(o, p);
	return out;
}

/* Load text as file sub/name into a fresh set; returns the set. */
static sw_rules *load_text(const char *sub, const char *name, const char *text, char *path_out, size_t pn)
{
	const char *path = put(sub, name, text, strlen(text));
	if (path_out)
		snprintf(path_out, pn, "%s", path);
	sw_rules *rs = sw_rules_new();
	sw_rules_load_file(rs, path);
	return rs;
}

/* The one error of loading text must be "PATH:POS: ..." containing sub. */
static void bad_rule(const char *text, const char *name, const char *pos, const char *sub)
{
	char path[1024], want[1200];
	sw_rules *rs = load_text("bad", name, text, path, sizeof path);
	snprintf(want, sizeof want, "%s:%s: ", path, pos);
	const char *e = sw_rules_error(rs, 0);
	ok(sw_rules_count(rs) == 0 && sw_rules_error_count(rs) == 1, "%s: rejected", name);
	ok(e && strncmp(e, want, strlen(want)) == 0 && strstr(e, sub),
	   "%s: message '%s' starts with '%s' and has '%s'", name, e ? e : "(none)", want + strlen(tmpdir),
	   sub);
	sw_rules_free(rs);
}

static void test_pulseway(const char *yaml)
{
	char path[512];
	sw_rules *rs = load_text("ok", "pulseway.yaml", yaml, path, sizeof path);
	is_int(sw_rules_count(rs), 1, "Pulseway loads");
	is_int(sw_rules_error_count(rs), 0, "no errors");
	if (sw_rules_count(rs) == 1) {
		is_str(sw_rule_id(rs, 0), "6192b741-4540-4416-8dbb-ce0405166d0a", "id");
		is_str(sw_rule_name(rs, 0),
		       "Remote Management and Monitoring tool - Pulseway - File Signature", "name");
		ok(strncmp(sw_rule_description(rs, 0), "Remote Monitoring and Management (RMM)", 38) == 0,
		   "description");
		is_int(sw_rule_tactic_count(rs, 0), 1, "one tactic");
		is_str(sw_rule_tactic(rs, 0, 0), "CommandAndControl", "tactic");
		is_int(sw_rule_technique_count(rs, 0), 1, "one technique");
		is_str(sw_rule_technique(rs, 0, 0), "T1219", "technique");
		is_str(sw_rule_file(rs, 0), path, "file");
		ok(strstr(sw_rule_query(rs, 0), "| where Signer has 'MMSoft Design'") != NULL, "query text");
		const sw_kql *k = sw_rule_kql(rs, 0);
		ok(k && sw_kql_agg_count(k) == 4 && sw_kql_by_count(k) == 2, "summarize compiled");
		char *d = k ? sw_kql_describe(k) : NULL;
		is_str(d, "Timestamp between (now(-5d) .. now()) and Signer has 'MMSoft Design'",
		       "predicate");
		free(d);
		is_int(sw_rules_find(rs, "6192b741-4540-4416-8dbb-ce0405166d0a"), 0, "find by id");
		is_int(sw_rules_find(rs, "nope"), -1, "find missing id");
	}
	ok(sw_rule_id(rs, 5)[0] == '\0' && sw_rule_kql(rs, 5) == NULL, "out-of-range accessors are safe");
	/* The built-in copy yields to the loaded one with the same id. */
	bool added = true;
	is_int(sw_rules_add_builtin(rs, &added), SW_OK, "builtin after the file");
	ok(!added && sw_rules_count(rs) == 1, "builtin skipped: same id already loaded");
	sw_rules_free(rs);

	rs = sw_rules_new();
	is_int(sw_rules_add_builtin(rs, &added), SW_OK, "builtin alone");
	ok(added && sw_rules_count(rs) == 1, "builtin added");
	is_str(sw_rule_file(rs, 0), "<builtin>", "builtin file name");
	is_str(sw_rule_id(rs, 0), "6192b741-4540-4416-8dbb-ce0405166d0a", "builtin id");
	/* A file with the builtin's id after it is a duplicate. */
	put("dup", "p.yaml", yaml, strlen(yaml));
	snprintf(path, sizeof path, "%s" TAP_SEP "dup" TAP_SEP "p.yaml", tmpdir);
	ok(sw_rules_load_file(rs, path) == SW_ERR_RULE, "duplicate of the builtin refused");
	char want[600];
	snprintf(want, sizeof want, "%s:1:5: duplicate rule id", path);
	ok(sw_rules_error(rs, 0) && strncmp(sw_rules_error(rs, 0), want, strlen(want)) == 0 &&
	           strstr(sw_rules_error(rs, 0), "<builtin>:1"),
	   "duplicate names both places: %s", sw_rules_error(rs, 0));
	sw_rules_free(rs);
}

static void test_variants(const char *yaml)
{
	/* CRLF line endings. */
	char *crlf = replace(yaml, "\n", "\r\n");
	sw_rules *rs = load_text("ok", "crlf.yaml", crlf, NULL, 0);
	ok(sw_rules_count(rs) == 1 && sw_rules_error_count(rs) == 0, "CRLF loads");
	if (sw_rules_count(rs) == 1) {
		char *d = sw_kql_describe(sw_rule_kql(rs, 0));
		is_str(d, "Timestamp between (now(-5d) .. now()) and Signer has 'MMSoft Design'",
		       "CRLF predicate");
		free(d);
		ok(!strchr(sw_rule_query(rs, 0), '\r'), "CRLF query has no CR");
	}
	sw_rules_free(rs);
	char *crlf_bad = replace(crlf, "Signer has", "Signer hass");
	bad_rule(crlf_bad, "crlf-bad.yaml", "18:18", "'hass'");
	free(crlf_bad);
	free(crlf);

	/* UTF-8 BOM. */
	size_t n = strlen(yaml);
	char *bom = malloc(n + 4);
	memcpy(bom, "\xEF\xBB\xBF", 3);
	memcpy(bom + 3, yaml, n + 1);
	rs = load_text("ok", "bom.yaml", bom, NULL, 0);
	ok(sw_rules_count(rs) == 1 && sw_rules_error_count(rs) == 0, "BOM loads");
	ok(sw_rules_count(rs) == 1 && strcmp(sw_rule_id(rs, 0), "6192b741-4540-4416-8dbb-ce0405166d0a") == 0,
	   "BOM: id without the BOM");
	sw_rules_free(rs);
	char *bom_bad = replace(bom, "Signer has", "Signr has");
	bad_rule(bom_bad, "bom-bad.yaml", "18:11", "unknown column 'Signr'");
	free(bom_bad);
	free(bom);

	/* Tabs inside the block scalars, after the indentation. */
	char *tabs = replace(yaml, "| where Signer has 'MMSoft Design'",
	                     "|\twhere\tSigner\thas\t'MMSoft Design'\t");
	char *tabs2 = replace(tabs, "    https://github.com", "    \thttps://github.com");
	rs = load_text("ok", "tabs.yaml", tabs2, NULL, 0);
	ok(sw_rules_count(rs) == 1 && sw_rules_error_count(rs) == 0, "tabs in block scalars load (%s)",
	   sw_rules_error(rs, 0) ? sw_rules_error(rs, 0) : "");
	if (sw_rules_count(rs) == 1) {
		char *d = sw_kql_describe(sw_rule_kql(rs, 0));
		is_str(d, "Timestamp between (now(-5d) .. now()) and Signer has 'MMSoft Design'",
		       "tabs predicate");
		free(d);
		ok(strstr(sw_rule_description(rs, 0), "\thttps://") != NULL, "tab kept in the description");
	}
	sw_rules_free(rs);
	free(tabs);
	free(tabs2);
	/* A tab as indentation is an error, with a hint. */
	char *tabind = replace(yaml, "  | where Signer has", "\t| where Signer has");
	bad_rule(tabind, "tab-indent.yaml", "18:1", "tabs");
	free(tabind);

	/* Upstream's mis-indented requiredDataConnectors: "- connectorId" and
	 * "dataTypes:" in one column. Indented under the key it is invalid YAML
	 * and is refused with a position and the fix ... */
	char *mis = replace(
	        yaml,
	        "- connectorId: MicrosoftThreatProtection\n  dataTypes:\n  - DeviceFileCertificateInfo\n",
	        "  - connectorId: MicrosoftThreatProtection\n  dataTypes:\n    - "
	        "DeviceFileCertificateInfo\n");
	ok(strcmp(mis, yaml) != 0, "mis-indented variant made");
	bad_rule(mis, "misindent.yaml", "8:3", "dataTypes:' goes two spaces right of '-'");
	free(mis);
	/* ... at column 1 it is valid YAML (dataTypes becomes a top-level key,
	 * which is tolerated) and loads. */
	char *mis1 = replace(yaml, "\n  dataTypes:\n  - DeviceFileCertificateInfo\n",
	                     "\ndataTypes:\n- DeviceFileCertificateInfo\n");
	ok(strcmp(mis1, yaml) != 0, "column-1 mis-indented variant made");
	rs = load_text("ok", "misindent1.yaml", mis1, NULL, 0);
	ok(sw_rules_count(rs) == 1 && sw_rules_error_count(rs) == 0, "column-1 mis-indented variant loads");
	sw_rules_free(rs);
	free(mis1);

	/* Other Sentinel keys are tolerated; lists for tactics and techniques. */
	char *extra = replace(
	        yaml, "tactics: CommandAndControl\nrelevantTechniques: T1219\n",
	        "tactics:\n  - CommandAndControl\n  - Persistence\nrelevantTechniques:\n  - T1219\n  - "
	        "T1105\n"
	        "version: 1.0.1\nkind: Scheduled\ntags:\n  - RMM\nmetadata:\n  source:\n    kind: Community\n"
	        "  author:\n    name: someone\nentityMappings:\n  - entityType: Host\n    fieldMappings:\n"
	        "      - identifier: HostName\n        columnName: DeviceName\nanchored: &a [1, 2]\nref: "
	        "*a\n");
	rs = load_text("ok", "extra.yaml", extra, NULL, 0);
	ok(sw_rules_count(rs) == 1 && sw_rules_error_count(rs) == 0, "other Sentinel keys tolerated (%s)",
	   sw_rules_error(rs, 0) ? sw_rules_error(rs, 0) : "");
	ok(sw_rule_tactic_count(rs, 0) == 2 && strcmp(sw_rule_tactic(rs, 0, 1), "Persistence") == 0,
	   "tactics list");
	ok(sw_rule_technique_count(rs, 0) == 2 && strcmp(sw_rule_technique(rs, 0, 1), "T1105") == 0,
	   "techniques list");
	sw_rules_free(rs);
	free(extra);
	char *comma = replace(yaml, "relevantTechniques: T1219", "relevantTechniques: T1219, T1105");
	rs = load_text("ok", "comma.yaml", comma, NULL, 0);
	ok(sw_rule_technique_count(rs, 0) == 2 && strcmp(sw_rule_technique(rs, 0, 1), "T1105") == 0,
	   "comma-separated techniques");
	sw_rules_free(rs);
	free(comma);
}

static void test_bad(const char *yaml)
{
	char *t;
	t = replace(yaml, "Signer has 'MMSoft Design'", "Signer hasprefix 'MMSoft Design'");
	bad_rule(t, "op.yaml", "18:18", "unsupported operator");
	free(t);
	t = replace(yaml, "Signer has 'MMSoft Design'", "Signer matches regex 'MMSoft'");
	bad_rule(t, "regex.yaml", "18:18", "'matches'");
	free(t);
	t = replace(yaml, "| where Signer has", "| where signer has");
	bad_rule(t, "col.yaml", "18:11", "did you mean 'Signer'");
	free(t);
	t = replace(yaml, "  DeviceFileCertificateInfo\n", "  DeviceProcessEvents\n");
	bad_rule(t, "table.yaml", "16:3", "only DeviceFileCertificateInfo");
	free(t);
	t = replace(yaml, "'MMSoft Design'", "''");
	bad_rule(t, "empty.yaml", "18:22", "empty string");
	free(t);
	t = replace(yaml, "'MMSoft Design'", "'MMSoft Design' | take 5");
	bad_rule(t, "trailing.yaml", "18:40", "unsupported tabular operator");
	free(t);
	t = replace(yaml, "    Remote Monitoring", "    R\xE9mote Monitoring");
	bad_rule(t, "latin1.yaml", "4:6", "not UTF-8");
	free(t);
	t = replace(yaml, "now(-5d)", "now(-5x)");
	bad_rule(t, "span.yaml", "13:25", "units");
	free(t);
	t = replace(yaml, "id: 6192b741-4540-4416-8dbb-ce0405166d0a\n", "");
	bad_rule(t, "noid.yaml", "1:1", "missing 'id:'");
	free(t);
	t = replace(yaml, "id: 6192b741", "id: [6192b741]\nx: 1\nx2: 6192b741");
	bad_rule(t, "idlist.yaml", "1:5", "single text value");
	free(t);
	t = replace(yaml, "tactics: CommandAndControl", "tactics: CommandAndControl\nname: again");
	bad_rule(t, "dupkey.yaml", "11:1", "appears twice");
	free(t);
	size_t n = strlen(yaml);
	char *two = malloc(2 * n + 8);
	snprintf(two, 2 * n + 8, "%s---\n%s", yaml, yaml);
	bad_rule(two, "twodocs.yaml", "21:1", "one rule per file");
	free(two);
	bad_rule("", "empty-file.yaml", "1:1", "empty rule file");
	bad_rule("- a\n- b\n", "list.yaml", "1:1", "at the top level");
	bad_rule("id: 'unclosed\n", "syntax.yaml", "2:1", "YAML syntax error");
	/* Deep nesting under a key we skip. */
	char *deep = malloc(200100);
	strcpy(deep, "metadata: ");
	memset(deep + 10, '[', 200000);
	deep[200010] = '\0';
	bad_rule(deep, "deep.yaml", "1:75", "nesting deeper");
	free(deep);

	/* Missing file. */
	char path[512], want[600];
	snprintf(path, sizeof path, "%s" TAP_SEP "no" TAP_SEP "such.yaml", tmpdir);
	sw_rules *rs = sw_rules_new();
	ok(sw_rules_load_file(rs, path) == SW_ERR_IO, "missing file: I/O error");
	snprintf(want, sizeof want, "%s:1:1: cannot open rule file: ", path);
	ok(sw_rules_error(rs, 0) && strncmp(sw_rules_error(rs, 0), want, strlen(want)) == 0,
	   "missing file: %s", sw_rules_error(rs, 0));
	sw_rules_free(rs);

	/* A 100 MB file (sparse) is refused without being read whole. */
	snprintf(path, sizeof path, "%s" TAP_SEP "big.yaml", tmpdir);
	FILE *f = fopen(path, "wb");
	fseek(f, 100L * 1024 * 1024 - 1, SEEK_SET);
	fputc('\n', f);
	fclose(f);
	rs = sw_rules_new();
	ok(sw_rules_load_file(rs, path) == SW_ERR_TOO_LARGE, "100 MB file: too large");
	snprintf(want, sizeof want, "%s:1:1: rule file is larger than 1024 KiB", path);
	ok(sw_rules_error(rs, 0) && strncmp(sw_rules_error(rs, 0), want, strlen(want)) == 0,
	   "100 MB file: %s", sw_rules_error(rs, 0));
	sw_rules_free(rs);
	ok(tap_unlink(path) == 0, "100 MB file removed");

	/* From memory, the same caps. */
	rs = sw_rules_new();
	ok(sw_rules_load_buffer(rs, "mem.yaml", yaml, SW_RULES_MAX_FILE + 1) == SW_ERR_TOO_LARGE,
	   "buffer cap");
	sw_rules_free(rs);

	/* A directory given as a file. */
	rs = sw_rules_new();
	ok(sw_rules_load_file(rs, tmpdir) == SW_ERR_IO, "directory as a file: I/O error (%s)",
	   sw_rules_error(rs, 0) ? sw_rules_error(rs, 0) : "");
	sw_rules_free(rs);
}

static void test_folder(const char *yaml)
{
	/* One bad file does not stop the others; names are loaded in order. */
	const char *bad = "id: x\nname: y\nquery: DeviceProcessEvents\n";
	put("mix", "b_bad.yaml", bad, strlen(bad));
	char *c =
	        replace(yaml, "6192b741-4540-4416-8dbb-ce0405166d0a", "c0000000-0000-0000-0000-000000000000");
	put("mix", "c_ok.yml", c, strlen(c));
	free(c);
	put("mix", "a_ok.yaml", yaml, strlen(yaml));
	put("mix", "d_dup.YAML", yaml, strlen(yaml));
	put("mix", "notes.txt", "not a rule", 10);
	put("mix", ".#e.yaml", "junk", 4);
	char dir[700];
	snprintf(dir, sizeof dir, "%s" TAP_SEP "mix", tmpdir);
	sw_rules *rs = sw_rules_new();
	sw_err e = sw_rules_load_path(rs, dir, &dir_ops);
	ok(e == SW_ERR_RULE, "folder with bad files reports the first error");
	is_int(sw_rules_count(rs), 2, "the good files load");
	is_int(sw_rules_error_count(rs), 2, "two errors (bad table, duplicate id)");
	ok(strstr(sw_rules_error(rs, 0), "b_bad.yaml:3:8: ") != NULL, "first error is b_bad.yaml:3:8: %s",
	   sw_rules_error(rs, 0));
	ok(strstr(sw_rules_error(rs, 1), "d_dup.YAML:1:5: duplicate rule id") != NULL, "then d_dup: %s",
	   sw_rules_error(rs, 1));
	ok(sw_rules_count(rs) == 2 && strstr(sw_rule_file(rs, 0), "a_ok.yaml") &&
	           strstr(sw_rule_file(rs, 1), "c_ok.yml"),
	   "sorted by name");
	sw_rules_free(rs);

	/* Without directory callbacks a folder cannot be read. */
	rs = sw_rules_new();
	ok(sw_rules_load_path(rs, dir, NULL) != SW_OK && sw_rules_error_count(rs) == 1,
	   "folder without dir ops");
	sw_rules_free(rs);
}

static void test_pack(const char *packdir, const char *yaml)
{
	sw_rules *rs = sw_rules_new();
	sw_err e = sw_rules_load_path(rs, packdir, &dir_ops);
	is_int(e, SW_OK, "the rmm pack loads");
	is_int(sw_rules_error_count(rs), 0, "no errors in the pack");
	for (size_t i = 0; i < sw_rules_error_count(rs); i++)
		printf("# %s\n", sw_rules_error(rs, i));
	is_int(sw_rules_count(rs), 51, "51 rules in the pack");
	int shape = 0;
	for (size_t i = 0; i < sw_rules_count(rs); i++) {
		const sw_kql *k = sw_rule_kql(rs, i);
		char *d = sw_kql_describe(k);
		int64_t a, b;
		if (strncmp(sw_rule_name(rs, i), "Remote Management and Monitoring tool - ", 40) == 0 &&
		    strstr(sw_rule_name(rs, i), " - File Signature") && d &&
		    strncmp(d, "Timestamp between (now(-5d) .. now()) and Signer has", 52) == 0 &&
		    sw_kql_window(k, 0, &a, &b) == 1 && a == -5 * 86400000LL && b == 0 &&
		    sw_kql_agg_count(k) == 4 && sw_kql_by_count(k) == 2 && strlen(sw_rule_id(rs, i)) == 36)
			shape++;
		else
			printf("# odd rule %s: %s\n", sw_rule_file(rs, i), d ? d : "");
		free(d);
	}
	is_int(shape, 51, "every pack rule has the Pulseway shape");
	/* Non-ASCII needles survived as UTF-8. */
	long dw = -1, se = -1, pw = -1;
	for (size_t i = 0; i < sw_rules_count(rs); i++) {
		if (strstr(sw_rule_name(rs, i), "- DWService -"))
			dw = (long)i;
		if (strstr(sw_rule_name(rs, i), "- ServerEye -"))
			se = (long)i;
		if (strstr(sw_rule_name(rs, i), "- Pulseway -"))
			pw = (long)i;
	}
	ok(dw >= 0 && strstr(sw_rule_query(rs, (size_t)dw), "'DWSNET O\xC3\x9C'"),
	   "DWService needle has U+00DC");
	ok(se >= 0 && strstr(sw_rule_query(rs, (size_t)se), "'Kr\xC3\xA4mer IT Solutions GmbH'"),
	   "ServerEye needle has U+00E4");
	/* Pulseway's pack file is the shipped rule. */
	if (yaml && pw >= 0) {
		sw_rules *one = sw_rules_new();
		sw_rules_load_buffer(one, "shipped", yaml, strlen(yaml));
		ok(sw_rules_count(one) == 1, "shipped rule loads");
		if (sw_rules_count(one) == 1) {
			size_t p = (size_t)pw;
			char *d1 = sw_kql_describe(sw_rule_kql(rs, p)),
			     *d2 = sw_kql_describe(sw_rule_kql(one, 0));
			ok(!strcmp(sw_rule_id(rs, p), sw_rule_id(one, 0)) &&
			           !strcmp(sw_rule_name(rs, p), sw_rule_name(one, 0)) &&
			           !strcmp(sw_rule_description(rs, p), sw_rule_description(one, 0)) &&
			           !strcmp(sw_rule_query(rs, p), sw_rule_query(one, 0)) && !strcmp(d1, d2) &&
			           !strcmp(sw_rule_tactic(rs, p, 0), sw_rule_tactic(one, 0, 0)) &&
			           !strcmp(sw_rule_technique(rs, p, 0), sw_rule_technique(one, 0, 0)),
			   "pack Pulseway equals the shipped rule");
			free(d1);
			free(d2);
		}
		sw_rules_free(one);
	} else {
		skip("no shipped Pulseway rule to compare with");
	}
	bool added = true;
	sw_rules_add_builtin(rs, &added);
	ok(!added && sw_rules_count(rs) == 51, "builtin not added twice next to the pack");
	sw_rules_free(rs);
}

int main(int argc, char **argv)
{
	if (tap_mkdtemp(tmpdir, sizeof tmpdir, NULL, "sw-test-rules-") != 0) {
		ok(0, "make a temporary folder");
		return done_testing();
	}
	size_t n = 0;
	char *yaml = argc > 1 ? slurp(argv[1], &n) : NULL;
	if (!yaml) {
		skip("Pulseway rule not found (pass its path as argv[1])");
	} else {
		test_pulseway(yaml);
		test_variants(yaml);
		test_bad(yaml);
		test_folder(yaml);
	}
	if (argc > 2)
		test_pack(argv[2], yaml);
	else
		skip("no rule pack folder given (argv[2])");
	free(yaml);
	ok(tap_rmtree(tmpdir) == 0 && !tap_is_dir(tmpdir), "the temporary folder is removed");
	return done_testing();
}
