/* YARA scanning: the built-in rule file, externals from the record, real
 * fixtures, compile errors with file:line, folders with a bad file, limits
 * as verdicts, and concurrent scans over one compiled rule set.
 * argv[1]: tests/fixtures, argv[2]: agent/yara/pulseway.yar. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "tap.h"
#include "tap_os.h"
#include "yara_scan.h"

static const char *fixtures;
static char tmpdir[256];

static char *fixture(const char *name)
{
	static char buf[4][1024];
	static int k;
	char *b = buf[k++ % 4];
	snprintf(b, sizeof buf[0], "%s/%s", fixtures, name);
	return b;
}

static char *tmp_write(const char *name, const char *text)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s" TAP_SEP "%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

/* The matches as one comma-separated string, for comparisons. */
static char *join_into(char *b, size_t cap, char **v, size_t n)
{
	b[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strncat(b, ",", cap - 1 - strlen(b));
		strncat(b, v[i], cap - 1 - strlen(b));
	}
	return b;
}

/* Main thread only (rotating static buffers). */
static char *joined(char **v, size_t n)
{
	static char buf[8][2048];
	static int k;
	return join_into(buf[k++ % 8], sizeof buf[0], v, n);
}

static char *scan_file_s(const sw_yara *y, const char *path, const sw_record *rec, sw_err *e)
{
	char **v;
	size_t n;
	*e = sw_yara_scan_file(y, path, rec, 10, &v, &n);
	char *s = joined(v, n);
	sw_yara_free_matches(v, n);
	return s;
}

static char *scan_mem_s(const sw_yara *y, const char *mem, const sw_record *rec, sw_err *e)
{
	char **v;
	size_t n;
	*e = sw_yara_scan_mem(y, mem, strlen(mem), rec, 10, &v, &n);
	char *s = joined(v, n);
	sw_yara_free_matches(v, n);
	return s;
}

static void signed_record(sw_record *r, const char *signer, sw_tri trusted)
{
	sw_record_init(r);
	r->is_signed = true;
	r->signer = strdup(signer);
	r->issuer = strdup("signwatch Test Code Signing CA");
	r->is_trusted = trusted;
	r->digest_matches = SW_YES;
}

static sw_yara *compiled(const char *src)
{
	sw_yara *y;
	char why[512];
	if (sw_yara_new(&y) != SW_OK)
		return NULL;
	if (sw_yara_add_string(y, "<test>", src, why, sizeof why) != SW_OK || sw_yara_finish(y) != SW_OK) {
		printf("# %s\n", why);
		sw_yara_free(y);
		return NULL;
	}
	return y;
}

static void test_builtin(const char *yar_path)
{
	sw_yara *y;
	char why[512];
	sw_err e;
	is_int(sw_yara_new(&y), SW_OK, "new");
	is_int(sw_yara_add_builtin(y, why, sizeof why), SW_OK, "the built-in rule file compiles");
	is_str(why, "", "no message on success");
	is_int(sw_yara_finish(y), SW_OK, "finish");
	is_int(sw_yara_rule_count(y), 4, "four built-in rules");

	sw_record mm, bad, contoso;
	signed_record(&mm, "MMSoft Design Ltd.", SW_YES);
	signed_record(&bad, "MMSoft Design Ltd.", SW_NO);
	signed_record(&contoso, "Contoso Tools", SW_YES);
	const char *exe = fixture("mmsoft-sha256-ts.exe");
	is_str(scan_file_s(y, exe, &mm, &e), "Pulseway_Signed_Binary",
	       "mmsoft fixture, trusted: signed rule");
	is_int(e, SW_OK, "scan ok");
	is_str(scan_file_s(y, exe, &bad, &e), "Pulseway_Signed_Binary,Pulseway_Untrusted_Signer",
	       "mmsoft fixture, untrusted: also the untrusted-signer rule");
	is_str(scan_file_s(y, exe, NULL, &e), "", "no record: the externals are false, nothing matches");
	is_str(scan_file_s(y, fixture("contoso-sha256.exe"), &contoso, &e), "", "contoso: nothing");
	is_str(scan_file_s(y, fixture("hello64.exe"), NULL, &e), "", "unsigned hello64: nothing");

	/* The heuristic strings rule: an MZ buffer naming the service and the
	 * product, and the product alone (not enough). */
	is_str(scan_mem_s(y, "MZ....PCMonitorSrv....Pulseway", NULL, &e), "Pulseway_Agent_Strings",
	       "service and product names in an executable: heuristic rule");
	is_str(scan_mem_s(y, "MZ....Pulseway", NULL, &e), "", "product name alone: no match");
	is_str(scan_mem_s(y, "text PCMonitorSrv Pulseway", NULL, &e), "", "not an executable: no match");
	sw_record_free(&mm);
	sw_record_free(&bad);
	sw_record_free(&contoso);
	sw_yara_free(y);

	/* The shipped file itself (what the build embeds) compiles from disk. */
	is_int(sw_yara_new(&y), SW_OK, "new");
	is_int(sw_yara_add_file(y, yar_path, why, sizeof why), SW_OK, "%s compiles as a file", yar_path);
	is_int(sw_yara_finish(y), SW_OK, "finish");
	is_int(sw_yara_rule_count(y), 4, "same four rules");
	sw_yara_free(y);
}

static void test_externals(void)
{
	sw_yara *y = compiled("rule T_signer { condition: signer contains \"MMSoft\" }\n"
	                      "rule T_issuer { condition: issuer == \"signwatch Test Code Signing CA\" }\n"
	                      "rule T_signed { condition: is_signed }\n"
	                      "rule T_trusted { condition: is_trusted }\n"
	                      "rule T_digest { condition: digest_matches }\n");
	ok(y != NULL, "rules on the externals compile");
	if (!y)
		return;
	sw_err e;
	sw_record r;
	signed_record(&r, "MMSoft Design Ltd.", SW_YES);
	is_str(scan_mem_s(y, "x", &r, &e), "T_signer,T_issuer,T_signed,T_trusted,T_digest",
	       "every external reaches the rules");
	is_int(e, SW_OK, "scan ok");
	sw_record_free(&r);
	signed_record(&r, "Contoso Tools", SW_NO);
	r.digest_matches = SW_NULL;
	is_str(scan_mem_s(y, "x", &r, &e), "T_issuer,T_signed",
	       "other signer; untrusted; NULL digest is false");
	sw_record_free(&r);
	sw_record_init(&r);
	is_str(scan_mem_s(y, "x", &r, &e), "", "unsigned record: nothing");
	is_str(scan_mem_s(y, "", NULL, &e), "", "empty buffer, no record: nothing");
	is_int(e, SW_OK, "empty buffer scans");
	sw_record_free(&r);
	sw_yara_free(y);
}

static void test_fixtures(void)
{
	sw_yara *y =
	        compiled("import \"pe\"\n"
	                 "rule T_pe64 { condition: pe.is_pe and pe.machine == pe.MACHINE_AMD64 }\n"
	                 "rule T_hello { strings: $a = \"hello from a signwatch fixture\" condition: $a }\n"
	                 "rule T_pesig { condition: pe.number_of_signatures > 0 }\n"
	                 "rule T_any { condition: true }\n");
	ok(y != NULL, "pe-module rules compile");
	if (!y)
		return;
	sw_err e;
	is_str(scan_file_s(y, fixture("hello64.exe"), NULL, &e), "T_pe64,T_hello,T_any",
	       "hello64.exe: PE32+, its string");
	is_str(scan_file_s(y, fixture("mmsoft-sha256-ts.exe"), NULL, &e), "T_pe64,T_hello,T_pesig,T_any",
	       "mmsoft-sha256-ts.exe: the pe module sees its signature");
	is_str(scan_file_s(y, fixture("notpe.txt"), NULL, &e), "T_any", "notpe.txt: not a PE");
	is_str(scan_file_s(y, fixture("empty.bin"), NULL, &e), "T_any", "empty file scans");
	is_int(e, SW_OK, "empty file: ok");
	is_str(scan_file_s(y, fixture("no-such-file.exe"), NULL, &e), "", "missing file");
	is_int(e, SW_ERR_IO, "missing file: SW_ERR_IO");
	is_str(scan_file_s(y, fixtures, NULL, &e), "", "a folder");
	is_int(e, SW_ERR_UNSUPPORTED, "a folder is not scanned: SW_ERR_UNSUPPORTED");

	char link[1024];
	snprintf(link, sizeof link, "%s" TAP_SEP "link.exe", tmpdir);
	if (tap_symlink(fixture("hello64.exe"), link) == 0) {
		scan_file_s(y, link, NULL, &e);
		is_int(e, SW_ERR_IO, "a symbolic link is not followed");
		ok(tap_unlink(link) == 0, "the link is removed");
	} else {
		skip("symlink not possible here (wine makes none; Windows needs the privilege or developer "
		     "mode)");
	}
	sw_yara_free(y);
}

static void test_errors(void)
{
	sw_yara *y;
	char why[1024];
	is_int(sw_yara_new(&y), SW_OK, "new");
	char *bad = tmp_write("syntax.yar", "rule Fine { condition: true }\n"
	                                    "\n"
	                                    "rule Broken { condition: true and }\n");
	is_int(sw_yara_add_file(y, bad, why, sizeof why), SW_ERR_RULE, "syntax error: SW_ERR_RULE");
	char want[1100];
	snprintf(want, sizeof want, "%s" TAP_SEP "syntax.yar:3: ", tmpdir);
	ok(!strncmp(why, want, strlen(want)), "message names file:line (%s)", why);

	char *undef = tmp_write("undef.yar", "rule U { condition: no_such_external }\n");
	is_int(sw_yara_add_file(y, undef, why, sizeof why), SW_ERR_RULE, "undefined identifier: SW_ERR_RULE");
	ok(strstr(why, "undef.yar:1: ") && strstr(why, "no_such_external"), "message quotes it (%s)", why);

	is_int(sw_yara_add_file(y, "/nonexistent/x.yar", why, sizeof why), SW_ERR_IO,
	       "missing file: SW_ERR_IO");
	ok(strstr(why, "/nonexistent/x.yar") != NULL, "message names it (%s)", why);

	/* The failures left the set usable. */
	is_int(sw_yara_add_string(y, "<a>", "rule Same { condition: true }", why, sizeof why), SW_OK,
	       "a good file after bad ones still compiles");
	is_int(sw_yara_add_string(y, "<b>", "rule Same { condition: true }", why, sizeof why), SW_OK,
	       "the same rule name in another file is fine (own namespace)");
	is_int(sw_yara_add_string(y, "<c>", "rule X { condition: \n\n nope }", why, sizeof why), SW_ERR_RULE,
	       "in-memory source with an error");
	ok(!strncmp(why, "<c>:3: ", 7), "labelled with its name and line (%s)", why);

	char **v;
	size_t n;
	is_int(sw_yara_scan_mem(y, "x", 1, NULL, 0, &v, &n), SW_ERR_USAGE,
	       "scan before finish: SW_ERR_USAGE");
	is_int(sw_yara_finish(y), SW_OK, "finish");
	is_int(sw_yara_rule_count(y), 2, "two rules named Same");
	sw_err e;
	is_str(scan_mem_s(y, "x", NULL, &e), "Same", "a name that matches twice is reported once");
	is_int(sw_yara_add_string(y, "<d>", "rule D { condition: true }", why, sizeof why), SW_ERR_USAGE,
	       "add after finish: SW_ERR_USAGE");
	is_int(sw_yara_finish(y), SW_ERR_USAGE, "finish twice: SW_ERR_USAGE");
	sw_yara_free(y);
}

static void test_folder(void)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s" TAP_SEP "rules", tmpdir);
	ok(tap_mkdir(dir) == 0, "a rule folder");
	char p[1100];
	const struct {
		const char *name, *text;
	} files[] = {
		{ "a_bad.yar", "rule A {\n condition:\n  filesize >\n}\n" },
		{ "b_good.yara", "rule B_good { strings: $s = \"needle\" condition: $s }\n" },
		{ "C_UPPER.YAR", "rule C_upper { condition: true }\n" },
		{ "notes.txt", "this is not a rule file" },
		{ ".hidden.yar", "garbage that would not compile" },
		{ "d_bad.yar", "rule D { condition: true }\nrule D { condition: false }\n" },
	};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "%s" TAP_SEP "%s", dir, files[i].name);
		if (tap_write_file(p, files[i].text, strlen(files[i].text)) != 0)
			printf("# cannot write %s\n", p);
	}
	snprintf(p, sizeof p, "%s" TAP_SEP "sub.yar", dir);
	tap_mkdir(p); /* a folder named like a rule file is skipped */

	sw_yara *y;
	char why[2048];
	is_int(sw_yara_new(&y), SW_OK, "new");
	is_int(sw_yara_add_folder(y, dir, why, sizeof why), SW_ERR_RULE,
	       "folder with bad files: SW_ERR_RULE");
	for (char *l = why, *e; *l; l = e + (*e != 0)) {
		e = l + strcspn(l, "\n");
		printf("# %.*s\n", (int)(e - l), l);
	}
	/* (sw_yara_add_folder joins the folder and a name with '/', on
	 * Windows too.) */
	char want[1200];
	snprintf(want, sizeof want, "%s/a_bad.yar:4: ", dir);
	ok(strstr(why, want) != NULL, "bad file reported with file:line");
	snprintf(want, sizeof want, "%s/d_bad.yar:2: ", dir);
	ok(strstr(why, want) != NULL, "second bad file reported too");
	ok(strstr(why, "a_bad.yar") < strstr(why, "d_bad.yar"), "in name order");
	ok(!strstr(why, "hidden") && !strstr(why, "notes"), "hidden and non-rule files ignored");
	ok(strchr(why, '\n') != NULL && !strchr(strchr(why, '\n') + 1, '\n'), "one line per failed file");
	is_int(sw_yara_finish(y), SW_OK, "the good files still compile");
	is_int(sw_yara_rule_count(y), 2, "two good rules (.yara and .YAR)");
	sw_err e;
	/* Byte order puts C_UPPER.YAR before b_good.yara; rules report in load order. */
	is_str(scan_mem_s(y, "a needle here", NULL, &e), "C_upper,B_good", "good rules match, in load order");
	sw_yara_free(y);

	is_int(sw_yara_new(&y), SW_OK, "new");
	snprintf(p, sizeof p, "%s" TAP_SEP "missing", tmpdir);
	is_int(sw_yara_add_folder(y, p, why, sizeof why), SW_ERR_IO, "missing folder: SW_ERR_IO");
	ok(strstr(why, "missing") != NULL, "named (%s)", why);
	sw_yara_free(y);
}

static void test_limits(void)
{
	/* More matching rules than the cap. */
	char src[8192] = "";
	for (int i = 0; i < SW_YARA_MAX_MATCHES + 6; i++) {
		char line[64];
		snprintf(line, sizeof line, "rule r%02d { condition: true }\n", i);
		strcat(src, line);
	}
	sw_yara *y = compiled(src);
	ok(y != NULL, "70 rules compile");
	if (y) {
		char **v;
		size_t n;
		is_int(sw_yara_scan_mem(y, "x", 1, NULL, 0, &v, &n), SW_ERR_LIMIT,
		       "70 matches: SW_ERR_LIMIT");
		is_int(n, SW_YARA_MAX_MATCHES, "capped at 64 names");
		is_str(n ? v[0] : NULL, "r00", "first rules kept");
		sw_yara_free_matches(v, n);
		sw_yara_free(y);
	}

	/* A rule that would run for hours: quadratic over a 64 KiB buffer.
	 * The ranges stay inside the buffer: uint8(filesize) is undefined,
	 * which YARA 4.3 and later take as false and so leave "for all" at
	 * once. */
	y = compiled("rule Slow { condition: for all i in (0..filesize - 1) : "
	             "(for all j in (0..filesize - 1) : (uint8(i) == uint8(j))) }");
	ok(y != NULL, "slow rule compiles");
	if (y) {
		size_t len = 64 * 1024;
		char *buf = calloc(1, len);
		char **v;
		size_t n;
		time_t t0 = time(NULL);
		is_int(sw_yara_scan_mem(y, buf, len, NULL, 1, &v, &n), SW_ERR_LIMIT, "timeout: SW_ERR_LIMIT");
		ok(time(NULL) - t0 <= 5, "stopped by the 1 s timeout (%lds)", (long)(time(NULL) - t0));
		is_int(n, 0, "no verdict from a timed-out scan");
		sw_yara_free_matches(v, n);
		free(buf);
		sw_yara_free(y);
	}
}

/* Several threads, one compiled rule set. */
typedef struct job {
	const sw_yara *y;
	const char **paths;
	const sw_record *recs;
	size_t n;
	int rounds;
	char (*want)[256];
	int mismatches;
} job;

static void *worker(void *ud)
{
	job *j = ud;
	for (int r = 0; r < j->rounds; r++)
		for (size_t i = 0; i < j->n; i++) {
			char **v;
			size_t n;
			char got[256];
			sw_err e = sw_yara_scan_file(j->y, j->paths[i], &j->recs[i % 3], 10, &v, &n);
			if (e != SW_OK || strcmp(join_into(got, sizeof got, v, n), j->want[i]) != 0)
				j->mismatches++;
			sw_yara_free_matches(v, n);
		}
	return NULL;
}

static void test_threads(void)
{
	sw_yara *y;
	char why[512];
	sw_yara_new(&y);
	sw_yara_add_builtin(y, why, sizeof why);
	sw_yara_add_string(y, "<t>",
	                   "import \"pe\"\n"
	                   "rule T_pe64 { condition: pe.is_pe and pe.machine == pe.MACHINE_AMD64 }\n"
	                   "rule T_hello { strings: $a = \"hello from\" condition: $a }\n",
	                   why, sizeof why);
	is_int(sw_yara_finish(y), SW_OK, "builtin + test rules compiled once");

	const char *names[] = { "mmsoft-sha256-ts.exe", "contoso-sha256.exe", "hello64.exe",
		                "hello32.exe",          "notpe.txt",          "mmsoft-sha1.exe",
		                "nested.exe",           "bad-tampered.exe" };
	enum { N = sizeof names / sizeof *names };
	const char *paths[N];
	static char pathbuf[N][1024];
	for (size_t i = 0; i < N; i++) {
		snprintf(pathbuf[i], sizeof pathbuf[i], "%s/%s", fixtures, names[i]);
		paths[i] = pathbuf[i];
	}
	sw_record recs[3];
	signed_record(&recs[0], "MMSoft Design Ltd.", SW_YES);
	signed_record(&recs[1], "MMSoft Design Ltd.", SW_NO);
	sw_record_init(&recs[2]);

	/* Baseline, on this thread. This thread's joined() buffers would be
	 * overwritten, so keep copies. */
	static char want[N][256];
	for (size_t i = 0; i < N; i++) {
		char **v;
		size_t n;
		sw_yara_scan_file(y, paths[i], &recs[i % 3], 10, &v, &n);
		snprintf(want[i], sizeof want[i], "%s", joined(v, n));
		sw_yara_free_matches(v, n);
	}
	is_str(want[0], "Pulseway_Signed_Binary,T_pe64,T_hello", "baseline: mmsoft fixture, trusted record");

	enum { T = 4 };
	pthread_t th[T];
	job jobs[T];
	for (int t = 0; t < T; t++) {
		jobs[t] = (job){ y, paths, recs, N, 25, want, 0 };
		pthread_create(&th[t], NULL, worker, &jobs[t]);
	}
	int mismatches = 0;
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		mismatches += jobs[t].mismatches;
	}
	is_int(mismatches, 0, "%d threads x 25 rounds x %d files: same results as one thread", T, N);

	/* Two rule sets alive at once (a reload): freeing one keeps libyara up
	 * for the other. */
	sw_yara *y2 = compiled("rule Two { condition: true }");
	ok(y2 != NULL, "second rule set while the first lives");
	sw_yara_free(y);
	sw_err e;
	is_str(y2 ? scan_mem_s(y2, "x", NULL, &e) : "", "Two", "second set scans after the first is freed");
	sw_yara_free(y2);
	for (int i = 0; i < 3; i++)
		sw_record_free(&recs[i]);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s FIXTURES_DIR PULSEWAY_YAR\n", argv[0]);
		return 2;
	}
	fixtures = argv[1];
	if (tap_mkdtemp(tmpdir, sizeof tmpdir, NULL, "sw-yara-") != 0) {
		printf("Bail out! cannot make a temporary folder\n");
		return 1;
	}
	test_builtin(argv[2]);
	test_externals();
	test_fixtures();
	test_errors();
	test_folder();
	test_limits();
	test_threads();
	ok(tap_rmtree(tmpdir) == 0 && !tap_is_dir(tmpdir), "the temporary folder is removed");
	return done_testing();
}
