/* bench_rules: the whole RMM rule pack evaluated with sw_kql_match_scratch
 * over 1,000,000 synthetic records on one core, next to a floor: the same
 * records scanned with a naive per-needle case-insensitive substring search
 * (strcasestr) over the same needles. Prints figures; asserts nothing.
 *
 *   bench_rules [RULES_DIR] [--records N] [--runs N]
 *
 * RULES_DIR defaults to agent/rules/rmm (run from the source tree). Records come
 * from a pool of POOL distinct ones cycled, so memory stays small; the
 * scratch is reset per record as the pipeline does. The floor is not the
 * same predicate: strcasestr is a substring test with ASCII-only case
 * folding, where KQL's has is a term test with Unicode folding, so the two
 * hit counts differ on purpose (near-miss signers). */
#include "kql.h"
#include "platform.h"
#include "record.h"
#include "rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bench_util.h"

#define POOL 4096 /* distinct records, a power of two */
#define MAX_NEEDLES 8
#define MAX_RUNS 15

/* Signers an endpoint sees: mostly ordinary publishers, some RMM vendors
 * the pack looks for, and near misses (a needle as a substring but not as
 * whole terms, other spellings, non-ASCII case). */
static const char *const COMMON[] = {
	"Microsoft Corporation",
	"Microsoft Windows",
	"Microsoft Windows Publisher",
	"Microsoft 3rd Party Application Component",
	"Google LLC",
	"Mozilla Corporation",
	"Adobe Inc.",
	"Oracle America, Inc.",
	"Intel(R) Software",
	"Intel Corporation",
	"NVIDIA Corporation",
	"Advanced Micro Devices, Inc.",
	"Dell Inc",
	"HP Inc.",
	"Hewlett-Packard Company",
	"Lenovo",
	"Apple Inc.",
	"Valve Corp.",
	"Zoom Video Communications, Inc.",
	"Slack Technologies, LLC",
	"Dropbox, Inc",
	"Citrix Systems, Inc.",
	"VMware, Inc.",
	"Cisco Systems, Inc.",
	"Realtek Semiconductor Corp.",
	"Logitech Inc",
	"Notepad++",
	"Igor Pavlov",
	"Python Software Foundation",
	"JetBrains s.r.o.",
	"Docker Inc",
	"GitHub, Inc.",
	"Node.js Foundation",
	"The Qt Company Oy",
	"Brave Software, Inc.",
	"Opera Norway AS",
	"Spotify AB",
	"Discord Inc.",
	"Elasticsearch, Inc.",
	"CrowdStrike, Inc.",
	"Sophos Ltd",
	"ESET, spol. s r.o.",
	"Kaspersky Lab JSC",
	"Symantec Corporation",
	"Bitdefender SRL",
	"Malwarebytes Inc",
	"Avast Software s.r.o.",
	"Corel Corporation",
	"Autodesk, Inc.",
	"Bentley Systems, Incorporated",
	"SAP SE",
	"Siemens AG",
	"Fortinet Technologies (Canada) ULC",
	"Palo Alto Networks",
	"Western Digital Technologies, Inc.",
	"Samsung Electronics CO., LTD.",
	"ASUSTeK Computer Inc.",
	"Micro-Star International CO., LTD.",
	"Tencent Technology(Shenzhen) Company Limited",
	"Beijing Kingsoft Security software Co.,Ltd",
	"Yandex LLC",
	"Ubisoft Entertainment Sweden AB",
	"Electronic Arts, Inc.",
	"Epic Games Inc.",
	"Riot Games, Inc.",
	"Blizzard Entertainment, Inc.",
	"Foxit Software Incorporated",
	"Tracker Software Products (Canada) Ltd.",
	"WinZip Computing LLC",
	"RARLab",
	"Piriform Software Ltd",
	"IObit Information Technology",
	"Ookla, LLC",
	"Wireshark Foundation",
	"Sysinternals",
	"Martin Prikryl",
	"Simon Tatham",
	"Don HO",
	"Nullsoft, Inc.",
	"VideoLAN",
};
static const char *const HITS[] = {
	"MMSoft Design Ltd.",
	"AnyDesk Software GmbH",
	"philandro Software GmbH",
	"TeamViewer Germany GmbH",
	"TeamViewer GmbH",
	"Splashtop Inc.",
	"ConnectWise, LLC",
	"ScreenConnect Software",
	"Kaseya Holdings Inc.",
	"NinjaRMM LLC",
	"Zoho Corporation Private Limited",
	"Datto Inc",
	"Atera Networks Ltd",
	"N-Able Technologies Ltd",
	"LogMeIn, Inc.",
	"GoTo, Inc",
	"RealVNC Limited",
	"Bomgar Corporation",
	"BeyondTrust Corporation",
	"NetSupport Ltd",
	"Level Software, Inc",
	"SimpleHelp Ltd",
	"Parsec Cloud, Inc.",
	"Krämer IT Solutions GmbH",
	"DWSNET OÜ",
	"AOMEI International Network Limited",
	"Nanosystems S.R.L.",
	"Remote Utilities LLC",
	"pcvisit software ag",
	"Servably, Inc.",
	"FleetDeck Inc.",
	"Duc Fabulous Co.,ltd",
	"XMReality AB",
	"glavsoft LLC",
	"AmidaWare LLC",
	"ISL Online Ltd.",
	"Enter Srl",
	"Barracuda Networks, Inc.",
	"Action1 Corporation",
	"PDQ.com Corporation",
	"KRÄMER IT SOLUTIONS GMBH",
};
static const char *const NEAR[] = {
	"MMSoft Designs Ltd",
	"MMSoftDesign",
	"AnyDeskSoftware GmbH",
	"TeamViewers GmbH",
	"Splashtopia Inc.",
	"Zohocorp",
	"NinjaRMMs LLC",
	"Kaseyas Ltd",
	"meshcentralx",
	"Atera Network Ltd",
	"LogMeInc",
	"Parsec Clouds",
	"Datto Incorporated",
	"RealVNCs",
	"NetSupporter Ltd",
	"Level Softwares, Inc",
	"Ammyyy",
	"Splash Top Inc.",
	"Team Viewer GmbH",
	"Remote Utility LLC",
	"pcvisitor software",
	"AeroAdministrator",
	"Idriveline",
	"ShowMyPCs",
	"glavsofts",
	"Connect Wise LLC",
	"ScreenConnected",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A signer name: the base name, or one of its variants (so the pool's
 * names are distinct strings, as versions and builds of a product are). */
static char *signer_variant(const char *base, unsigned v, unsigned k)
{
	char buf[256];
	switch (v % 6) {
	case 3: snprintf(buf, sizeof(buf), "%s (%u)", base, k); break;
	case 4: snprintf(buf, sizeof(buf), "%s #%u", base, k); break;
	case 5: snprintf(buf, sizeof(buf), "%s, Build %u", base, k); break;
	default: snprintf(buf, sizeof(buf), "%s", base); break;
	}
	return strdup(buf);
}

static char *dup_u(const char *prefix, unsigned k, const char *suffix)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s%u%s", prefix, k, suffix);
	return strdup(buf);
}

/* pool[i]: a record as an inspected file gives it, signer drawn at random:
 * 4% unsigned, 8% RMM hits, 8% near misses, the rest ordinary. */
static void make_pool(sw_record *pool, int64_t now_ms, size_t *n_hit, size_t *n_near, size_t *n_none)
{
	for (unsigned i = 0; i < POOL; i++) {
		sw_record *r = &pool[i];
		sw_record_init(r);
		r->timestamp = now_ms - (int64_t)(rnd() % (4ull * 86400000)); /* inside every rule's 5 days */
		snprintf(r->device_id, sizeof(r->device_id), "%040llx", (unsigned long long)(0xd0c0 + i % 3));
		r->device_name = dup_u("ws-", i % 3, ".corp.example.com");
		r->folder_path = dup_u("C:\\Program Files\\Vendor\\v", i, "");
		r->file_name = dup_u("setup", i, ".exe");
		snprintf(r->sha256, sizeof(r->sha256), "%064x", i * 2654435761u);
		r->file_size = 100000 + rnd() % 50000000;
		unsigned roll = (unsigned)(rnd() % 100);
		const char *base;
		if (roll < 4) {
			base = NULL;
			(*n_none)++;
		} else if (roll < 12) {
			base = HITS[rnd() % N_OF(HITS)];
			(*n_hit)++;
		} else if (roll < 20) {
			base = NEAR[rnd() % N_OF(NEAR)];
			(*n_near)++;
		} else {
			base = COMMON[rnd() % N_OF(COMMON)];
		}
		r->is_signed = base != NULL;
		if (base) {
			r->signature_type = strdup("Embedded");
			r->signer = signer_variant(base, (unsigned)(rnd() % 6), i);
			r->issuer = strdup(i % 2 ? "DigiCert Trusted G4 Code Signing RSA4096 SHA384 2021 CA1"
			                         : "Sectigo Public Code Signing CA R36");
			r->is_trusted = (sw_tri)(rnd() % 2);
			r->digest_algorithm = strdup("sha256");
		}
	}
}

/* The quoted literals of the Signer predicates in a rule's description,
 * e.g. "... and Signer has_any ('a', 'b')". */
static size_t needles_of(const char *desc, char out[][160], size_t max)
{
	size_t n = 0;
	for (const char *p = desc; (p = strstr(p, "Signer has")) != NULL;) {
		p += strlen("Signer has");
		while (*p && *p != ' ')
			p++; /* "_any", "_cs", ... */
		while (*p == ' ')
			p++;
		bool list = *p == '(';
		do {
			while (*p == '(' || *p == ',' || *p == ' ')
				p++;
			if (*p != '\'')
				break;
			size_t k = 0;
			for (p++; *p && *p != '\''; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (n < max && k + 1 < 160)
					out[n][k++] = *p;
			}
			if (*p == '\'')
				p++;
			if (n < max)
				out[n++][k] = 0;
		} while (list && *p == ',');
	}
	return n;
}

static int dir_is_dir(void *ud, const char *path)
{
	(void)ud;
	return sw_plat_is_dir(path);
}

static sw_err dir_list(void *ud, const char *d, char ***names, size_t *n)
{
	(void)ud;
	return sw_plat_list_dir(d, names, n);
}

int main(int argc, char **argv)
{
	const char *dir = "agent/rules/rmm";
	long n_records = 1000000;
	int runs = 3;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--records") == 0 && i + 1 < argc)
			n_records = atol(argv[++i]);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (argv[i][0] != '-')
			dir = argv[i];
		else {
			fprintf(stderr, "usage: bench_rules [RULES_DIR] [--records N] [--runs N]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > MAX_RUNS)
		runs = 3;
	if (n_records < 1)
		n_records = 1000000;

	sw_rules *rs = sw_rules_new();
	if (!rs)
		return 2;
	sw_rules_dir_ops ops = { dir_is_dir, dir_list, NULL }; /* as agent/rules_load.c */
	sw_rules_load_path(rs, dir, &ops);
	size_t nr = sw_rules_count(rs), nerr = sw_rules_error_count(rs);
	for (size_t i = 0; i < nerr; i++)
		fprintf(stderr, "bench_rules: %s\n", sw_rules_error(rs, i));
	if (!nr) {
		fprintf(stderr, "bench_rules: no rules loaded from %s\n", dir);
		sw_rules_free(rs);
		return 2;
	}
	const sw_kql **q = calloc(nr, sizeof(*q));
	char(*needle)[MAX_NEEDLES][160] = calloc(nr, sizeof(*needle));
	size_t *n_needle = calloc(nr, sizeof(*n_needle)), total_needles = 0;
	for (size_t i = 0; i < nr; i++) {
		q[i] = sw_rule_kql(rs, i);
		char *d = sw_kql_describe(q[i]);
		n_needle[i] = d ? needles_of(d, needle[i], MAX_NEEDLES) : 0;
		total_needles += n_needle[i];
		free(d);
	}

	const int64_t now_ms = sw_time_make(2024, 6, 1, 12, 0, 0);
	static sw_record pool[POOL];
	size_t n_hit = 0, n_near = 0, n_none = 0;
	make_pool(pool, now_ms, &n_hit, &n_near, &n_none);
	printf("rules: %zu from %s (%zu load errors), %zu Signer needles\n", nr, dir, nerr, total_needles);
	printf("records: %ld, cycling a pool of %d distinct (%zu RMM signers, %zu near misses, %zu "
	       "unsigned)\n",
	       n_records, POOL, n_hit, n_near, n_none);

	sw_kql_scratch *s = sw_kql_scratch_new();
	double tk[MAX_RUNS], ck[MAX_RUNS], tf[MAX_RUNS], cf[MAX_RUNS];
	unsigned long long hits_k = 0, hits_f = 0, recs_k = 0;
	/* one untimed warm-up of each, then interleaved runs */
	for (int run = -1; run < runs; run++) {
		long n = run < 0 ? n_records / 10 : n_records;
		unsigned long long h = 0, rec_hit = 0;
		double c0 = cpu_s(), t0 = now_s();
		for (long i = 0; i < n; i++) {
			const sw_record *r = &pool[i & (POOL - 1)];
			sw_kql_scratch_reset(s);
			unsigned long long before = h;
			for (size_t j = 0; j < nr; j++)
				h += sw_kql_match_scratch(q[j], r, now_ms, s);
			rec_hit += h != before;
		}
		double t1 = now_s(), c1 = cpu_s();
		if (run >= 0) {
			tk[run] = t1 - t0;
			ck[run] = c1 - c0;
			hits_k = h;
			recs_k = rec_hit;
		}

		h = 0;
		c0 = cpu_s(), t0 = now_s();
		for (long i = 0; i < n; i++) {
			const char *signer = pool[i & (POOL - 1)].signer;
			if (!signer)
				continue;
			for (size_t j = 0; j < nr; j++)
				for (size_t k = 0; k < n_needle[j]; k++)
					if (strcasestr(signer, needle[j][k])) {
						h++;
						break;
					}
		}
		t1 = now_s(), c1 = cpu_s();
		if (run >= 0) {
			tf[run] = t1 - t0;
			cf[run] = c1 - c0;
			hits_f = h;
		}
	}
	qsort(tk, (size_t)runs, sizeof(double), cmp_d);
	qsort(ck, (size_t)runs, sizeof(double), cmp_d);
	qsort(tf, (size_t)runs, sizeof(double), cmp_d);
	qsort(cf, (size_t)runs, sizeof(double), cmp_d);
	double mk = tk[runs / 2], mf = tf[runs / 2], mck = ck[runs / 2], mcf = cf[runs / 2];
	printf("%-46s %12s %12s %12s %10s\n", "", "records/s", "best rec/s", "cpu rec/s", "ns/record");
	printf("%-46s %12.0f %12.0f %12.0f %10.0f\n", "sw_kql_match_scratch, whole pack", n_records / mk,
	       n_records / tk[0], n_records / mck, mk * 1e9 / n_records);
	printf("%-46s %12.0f %12.0f %12.0f %10.0f\n", "floor: strcasestr per needle", n_records / mf,
	       n_records / tf[0], n_records / mcf, mf * 1e9 / n_records);
	printf("time ratio kql/floor: median %.2f, best %.2f, cpu %.2f (below 1: the pack beats the floor)\n",
	       mk / mf, tk[0] / tf[0], mck / mcf);
	printf("hits: kql %llu rule hits (%llu records), strcasestr %llu (substring, ASCII folding)\n",
	       hits_k, recs_k, hits_f);
	printf("runs: %d each (median; one warm-up of a tenth first)\n", runs);
	printf("target: >= 1,000,000 records/s per core: %s\n", n_records / mk >= 1e6 ? "met" : "NOT met");

	sw_kql_scratch_free(s);
	for (unsigned i = 0; i < POOL; i++)
		sw_record_free(&pool[i]);
	free(q);
	free(needle);
	free(n_needle);
	sw_rules_free(rs);
	return 0;
}
