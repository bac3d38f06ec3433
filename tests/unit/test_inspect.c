/* sw_inspect over memory: the same verdicts as from a file, and a defined
 * verdict for every truncation of a signed file and for a file that
 * shrinks while it is read. */
#include <stdio.h>
#include <stdlib.h>

#include "inspect.h"
#include "tap.h"

static sw_err run(const uint8_t *p, size_t n, uint64_t claimed, bool quick, sw_record **recs, size_t *nrec)
{
	sw_mem_src m;
	sw_src s = sw_src_memory(&m, p, n);
	s.size = claimed;
	sw_inspect_opts o = { .signer_only = quick, .now_ms = sw_time_make(2026, 1, 1, 0, 0, 0) };
	char why[256];
	return sw_inspect(&s, &o, recs, nrec, why, sizeof(why));
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	size_t n;
	uint8_t *p = tap_slurp(argv[1], "nested.exe", &n);
	if (!ok(p != NULL, "fixture nested.exe readable"))
		return done_testing();
	sw_record *r;
	size_t nr;
	is_int(run(p, n, n, false, &r, &nr), SW_OK, "nested.exe inspects");
	is_int(nr, 2, "two signatures");
	if (nr == 2) {
		is_str(r[0].signer, "MMSoft Design Ltd.", "outer signer");
		is_str(r[1].signer, "Contoso Tools", "nested signer");
		ok(r[0].digest_matches == SW_YES && r[1].digest_matches == SW_YES, "both digests match");
		ok(!r[0].is_nested && r[1].is_nested, "nesting flagged");
		is_str(r[0].digest_algorithm, "sha1", "outer digest sha1");
		is_str(r[1].digest_algorithm, "sha256", "nested digest sha256");
		ok(r[0].is_trusted == SW_NO && r[0].trust_error,
		   "no trust store: not trusted, with a reason");
	}
	sw_records_free(r, nr);

	/* Every prefix: no crash, and either an error or records. */
	int bad = 0, errors = 0;
	for (size_t cut = 0; cut < n; cut += (cut < 4096 ? 1 : 61)) {
		sw_err e = run(p, cut, cut, false, &r, &nr);
		if (e == SW_OK && nr == 0)
			bad++;
		if (e != SW_OK && (r != NULL || nr != 0))
			bad++;
		errors += e != SW_OK;
		sw_records_free(r, nr);
	}
	is_int(bad, 0, "every truncation gives records or an error, never both or neither");
	ok(errors > 0, "short prefixes are errors (%d)", errors);

	/* The file shrinks after its size was taken. */
	sw_err e = run(p, n - 100, n, false, &r, &nr);
	is_int(e, SW_ERR_TRUNCATED, "shrinking file: truncated error");
	is_int(nr, 0, "shrinking file: no records");
	e = run(p, n - 100, n, true, &r, &nr);
	ok(e != SW_OK || nr >= 1, "shrinking file, signer only: defined");
	sw_records_free(r, nr);

	/* Every single-byte corruption of the signature area: defined. */
	int crashes_would_show_under_asan = 0;
	for (size_t i = n > 3000 ? n - 3000 : 0; i < n; i += 7) {
		uint8_t save = p[i];
		p[i] ^= 0x5a;
		e = run(p, n, n, false, &r, &nr);
		if (e == SW_OK && nr == 0)
			crashes_would_show_under_asan++;
		sw_records_free(r, nr);
		p[i] = save;
	}
	is_int(crashes_would_show_under_asan, 0, "byte flips in the table give defined verdicts");
	free(p);
	return done_testing();
}
