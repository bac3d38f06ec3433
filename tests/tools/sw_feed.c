/* Test tool: feed records (JSON Lines on stdin, sw_record_json's shape)
 * through the real pipeline into a real store, as the agent would have
 * observed them at their Timestamp; prints each one's ReportId.
 *
 * usage: sw_feed DB [RULES_PATH...] < records.jsonl */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "rules_load.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sw_feed DB [RULES_PATH...] < records.jsonl\n");
		return 2;
	}
	size_t bad = 0;
	sw_rules *rules =
	        sw_load_rules("sw_feed", (const char *const *)argv + 2, (size_t)argc - 2, stderr, &bad);
	if (!rules || bad)
		return 2;
	sw_store *st = NULL;
	char why[512];
	if (sw_store_open(argv[1], &st, why, sizeof(why)) != SW_OK) {
		fprintf(stderr, "sw_feed: %s\n", why);
		return 1;
	}
	sw_pipeline *p = sw_pipeline_new(st, rules);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;
	while (p && (len = getline(&line, &cap, stdin)) > 0) {
		sw_scan_result res = { 0 };
		res.status = SW_SCAN_RECORDS;
		res.recs = calloc(1, sizeof(sw_record));
		res.n = 1;
		if (!res.recs || sw_record_from_json(line, (size_t)len, &res.recs[0]) != SW_OK) {
			fprintf(stderr, "sw_feed: bad record line\n");
			rc = 2;
			sw_scan_result_free(&res);
			break;
		}
		if (sw_pipeline_apply(p, &res, res.recs[0].timestamp, why, sizeof(why)) != SW_OK) {
			fprintf(stderr, "sw_feed: %s\n", why);
			rc = 1;
			sw_scan_result_free(&res);
			break;
		}
		printf("%lld\n", (long long)res.recs[0].report_id);
		sw_scan_result_free(&res);
	}
	free(line);
	sw_pipeline_free(p);
	sw_store_close(st);
	sw_rules_free(rules);
	return rc;
}
