/* signwatch inspect: one record per signature, for people and pipelines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "inspect.h"
#include "pipeline.h"
#include "platform.h"
#include "text_escape.h"

static void print_kv(const char *k, const char *v)
{
	char *e = sw_escape_terminal(v ? v : "-");
	printf("  %-32s %s\n", k, e ? e : "?");
	free(e);
}

static const char *tri(sw_tri t) { return t == SW_NULL ? "-" : t == SW_YES ? "true" : "false"; }

static void print_time(const char *k, int64_t t)
{
	char buf[40];
	print_kv(k, t == SW_TIME_NULL ? NULL : sw_time_iso(t, buf, sizeof(buf)));
}

static void print_table(const sw_record *r, const char *path)
{
	char *e = sw_escape_terminal(path);
	printf("%s [signature %d]\n", e ? e : "?", r->signature_index);
	free(e);
	char num[32];
	print_kv("IsSigned", r->is_signed ? "true" : "false");
	print_kv("Signer", r->signer);
	print_kv("SignerDN", r->signer_dn);
	print_kv("SignerHash", r->signer_hash[0] ? r->signer_hash : NULL);
	print_kv("Issuer", r->issuer);
	print_kv("IssuerDN", r->issuer_dn);
	print_kv("IssuerHash", r->issuer_hash[0] ? r->issuer_hash : NULL);
	print_kv("CertificateSerialNumber", r->serial);
	print_time("CertificateCreationTime", r->cert_created);
	print_time("CertificateExpirationTime", r->cert_expires);
	print_time("CertificateCountersignatureTime", r->countersig_time);
	print_kv("CountersignatureType", r->countersig_type);
	print_kv("DigestAlgorithm", r->digest_algorithm);
	print_kv("DigestMatches", tri(r->digest_matches));
	print_kv("IsTrusted", tri(r->is_trusted));
	print_kv("IsRootSignerMicrosoft", tri(r->is_root_signer_microsoft));
	print_kv("IsNested", r->is_nested ? "true" : "false");
	for (size_t i = 0; i < r->n_crl_urls; i++)
		print_kv(i ? "" : "CrlDistributionPointUrls", r->crl_urls[i]);
	for (size_t i = 0; i < r->n_anomalies; i++)
		print_kv(i ? "" : "Anomalies", r->anomaly_v[i]);
	print_kv("SHA1", r->sha1[0] ? r->sha1 : NULL);
	print_kv("SHA256", r->sha256[0] ? r->sha256 : NULL);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)r->file_size);
	print_kv("FileSize", num);
	if (r->error)
		print_kv("Error", r->error);
	if (r->trust_error)
		print_kv("TrustError", r->trust_error);
	printf("\n");
}

int sw_cmd_inspect(int argc, char **argv)
{
	bool json = false;
	sw_inspect_opts o = { 0 };
	const char *ca = NULL;
	int first = argc;
	for (int i = 1; i < argc; i++) {
		const char *v;
		int m;
		if (!strcmp(argv[i], "--")) {
			first = i + 1;
			break;
		}
		if (argv[i][0] != '-' || !argv[i][1]) {
			first = i;
			break;
		}
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--signer-only"))
			o.signer_only = true;
		else if ((m = sw_opt_value(argc, argv, &i, "--ca-file", &v)) != 0) {
			if (m < 0)
				return 2;
			ca = v;
		} else {
			fprintf(stderr,
			        "signwatch inspect: unknown option '%s'\n"
			        "usage: signwatch inspect [--json] [--ca-file F] [--signer-only] FILE...\n",
			        argv[i]);
			return 2;
		}
	}
	if (first >= argc) {
		fprintf(stderr, "signwatch inspect: no FILE given\n"
		                "usage: signwatch inspect [--json] [--ca-file F] [--signer-only] FILE...\n");
		return 2;
	}
	/* --ca-file, else the OS root store (Windows), else none. */
	sw_trust *trust = NULL;
	char twhy[512];
	if (sw_trust_setup(ca, &trust, twhy, sizeof(twhy)) != SW_OK) {
		fprintf(stderr, "signwatch inspect: --ca-file %s\n", twhy);
		return 2;
	}
	if (twhy[0])
		fprintf(stderr, "signwatch inspect: warning: %s; IsTrusted will be false\n", twhy);
	o.trust = trust;
	/* Files without an embedded signature: the OS catalogs, where there are some. */
	if (!o.signer_only && sw_plat_has_catalogs()) {
		o.catalog_find = sw_catalog_find_system;
		o.catalog_ud = sw_plat_catdb_open(); /* one thread: contexts kept for every FILE */
	}
	o.cache = sw_cache_new(); /* one thread: one memo of certificates and chains */
	char dev_id[41], dev_name[256];
	if (sw_plat_device_id(dev_id) != SW_OK)
		snprintf(dev_id, sizeof(dev_id), "%040d", 0);
	if (sw_plat_device_name(dev_name, sizeof(dev_name)) != SW_OK)
		snprintf(dev_name, sizeof(dev_name), "localhost");

	int status = 0;
	for (int i = first; i < argc; i++) {
		const char *path = argv[i];
		char why[256] = "";
		sw_file *f = NULL;
		sw_err e = sw_plat_file_open(path, &f, why, sizeof(why));
		if (!e && !sw_plat_file_is_regular(f)) {
			snprintf(why, sizeof(why), "not a regular file");
			e = SW_ERR_IO;
		}
		sw_record *recs = NULL;
		size_t n = 0;
		if (!e) {
			sw_src src = sw_plat_file_source(f);
			o.now_ms = sw_plat_now_ms();
			e = sw_inspect(&src, &o, &recs, &n, why, sizeof(why));
		}
		sw_plat_file_close(f);
		if (e) {
			char *ep = sw_escape_terminal(path);
			char *ew = sw_escape_terminal(why[0] ? why : sw_err_str(e));
			fprintf(stderr, "signwatch inspect: %s: %s\n", ep ? ep : "?", ew ? ew : "?");
			free(ep);
			free(ew);
			status = 1;
			continue;
		}
		char *folder = NULL, *name = NULL;
		sw_plat_split_path(path, &folder, &name);
		int64_t now = sw_plat_now_ms();
		for (size_t k = 0; k < n; k++) {
			sw_record *r = &recs[k];
			r->timestamp = now;
			memcpy(r->device_id, dev_id, sizeof(dev_id));
			r->device_name = strdup(dev_name);
			r->folder_path = folder ? strdup(folder) : NULL;
			r->file_name = name ? strdup(name) : NULL;
			if (json) {
				char *s = sw_record_json(r);
				if (s)
					puts(s);
				free(s);
			} else {
				print_table(r, path);
			}
		}
		free(folder);
		free(name);
		sw_records_free(recs, n);
	}
	sw_cache_free(o.cache);
	sw_plat_catdb_close(o.catalog_ud);
	sw_trust_free(trust);
	if (fflush(stdout) != 0)
		status = 1;
	return status;
}
