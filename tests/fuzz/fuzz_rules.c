/* libFuzzer target: the Sentinel rule loader over arbitrary bytes from
 * memory (sw_rules_load_buffer), then every accessor of what loaded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sw_rules *rs = sw_rules_new();
	if (!rs)
		return 0;
	sw_err e = sw_rules_load_buffer(rs, "fuzz.yaml", (const char *)data, size);
	/* Every failure leaves a message naming the file and a position. */
	if (e != SW_OK && e != SW_ERR_NOMEM &&
	    (sw_rules_error_count(rs) != 1 || strncmp(sw_rules_error(rs, 0), "fuzz.yaml:", 10) != 0))
		abort();
	/* Loading the same bytes again is a duplicate, never a second rule. */
	if (e == SW_OK && sw_rules_load_buffer(rs, "again.yaml", (const char *)data, size) == SW_OK)
		abort();
	for (size_t i = 0; i < sw_rules_count(rs); i++) {
		size_t n = strlen(sw_rule_id(rs, i)) + strlen(sw_rule_name(rs, i)) +
		           strlen(sw_rule_description(rs, i)) + strlen(sw_rule_query(rs, i)) +
		           strlen(sw_rule_file(rs, i));
		for (size_t j = 0; j < sw_rule_tactic_count(rs, i); j++)
			n += strlen(sw_rule_tactic(rs, i, j));
		for (size_t j = 0; j < sw_rule_technique_count(rs, i); j++)
			n += strlen(sw_rule_technique(rs, i, j));
		(void)n;
		const sw_kql *q = sw_rule_kql(rs, i);
		if (!q)
			abort();
		sw_record r;
		sw_record_init(&r);
		r.timestamp = 1717243200000LL;
		r.signer = "MMSoft Design Ltd.";
		(void)sw_kql_match(q, &r, 1717243200000LL);
		free(sw_kql_describe(q));
	}
	bool added;
	(void)sw_rules_add_builtin(rs, &added);
	sw_rules_free(rs);
	return 0;
}
