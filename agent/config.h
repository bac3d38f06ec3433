/* signwatch: the agent's configuration (`signwatch run [--config F]`,
 * `signwatch run --check-config`). docs/CONFIG.md is the reference of every
 * key; this header is the C view of the same model.
 *
 * The loader is strict on purpose: the agent runs as root/SYSTEM from a file
 * an MDM pushed, so a typo must stop it with a message that names the file,
 * line:col, the key path and the fix, rather than run with a silent default.
 * Everything the loader needs from the OS (is this a readable folder, an
 * environment variable, a file's permission bits) comes through
 * sw_config_env so the tests can inject it. */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "sw_error.h"

/* A config file larger than this is refused without being read whole. */
#define SW_CONFIG_MAX_BYTES (1024 * 1024)
/* At most this many errors are reported from one load (then a count). */
#define SW_CONFIG_MAX_ERRORS 20

typedef enum sw_config_log_level {
	SW_CONFIG_LOG_DEBUG,
	SW_CONFIG_LOG_INFO,
	SW_CONFIG_LOG_WARN,
	SW_CONFIG_LOG_ERROR
} sw_config_log_level;

typedef enum sw_out_type {
	SW_OUT_FILE,           /* JSON Lines to a local file, rotated by size */
	SW_OUT_LOGS_INGESTION, /* Azure Monitor Logs Ingestion API (Sentinel) */
	SW_OUT_SYSLOG_TLS,     /* RFC 5424 over TLS, RFC 5425 framing */
	SW_OUT_HTTPS_JSON      /* NDJSON over HTTPS */
} sw_out_type;

typedef enum sw_send_records {
	SW_SEND_ALL,      /* every record */
	SW_SEND_MATCHING, /* records some rule matched */
	SW_SEND_NONE      /* summaries only */
} sw_send_records;

typedef struct sw_strv {
	char **v;
	size_t n;
} sw_strv;

/* One entry of `outputs`. Fields that do not belong to the type are NULL/0.
 * Paths are absolute; URLs are https and have no trailing '/'. */
typedef struct sw_config_output {
	sw_out_type type;
	/* A stable identity for the outbox and logs ("file:/var/log/...",
	 * "syslog_tls:host:6514", ...): it survives reordering the list. */
	char *id;

	/* Every type. */
	sw_send_records send_records; /* default matching */
	bool send_summaries;          /* default true */
	int heartbeat_minutes;        /* 0..10080, 0 = off, default 60 */
	int outbox_mb;                /* 1..1048576, default 256 */
	int max_backoff_s;            /* 1..86400, default 300 */

	/* TLS, for the network types. */
	char *ca_file;                         /* NULL: the system trust store */
	char *client_certificate, *client_key; /* both or neither. For
		 * logs_ingestion the pair is the Entra ID client credential,
		 * for syslog_tls/https_json it is mutual TLS. */
	char *pin_sha256;                      /* syslog_tls, https_json: base64 SHA-256 of the
			   * server's SubjectPublicKeyInfo (44 chars), or NULL */

	/* file */
	char *path;
	int max_mb; /* rotate at this size, 1..65536, default 64 */
	int keep;   /* rotated files kept, 0..1000, default 5 */

	/* logs_ingestion */
	char *endpoint; /* https://<dce>.<region>.ingest.monitor.azure.com */
	char *dcr_id;   /* the DCR's immutable id, dcr-<32 hex> */
	char *stream;   /* Custom-SignwatchCertificateInfo_CL */
	char *tenant_id, *client_id;
	char *token_url; /* resolved: the override or the Entra ID default */

	/* syslog_tls */
	char *host;
	int port;       /* default 6514 */
	char *app_name; /* RFC 5424 APP-NAME, default signwatch */

	/* https_json */
	char *url;
	bool gzip; /* default true */

	/* The secret: client_secret (logs_ingestion) or bearer_token
	 * (https_json), resolved at load time from the file or from the
	 * environment variable named by secret_env. NULL when none. Never
	 * print or log it; sw_config_print() redacts it. */
	char *secret;
	char *secret_env; /* the variable's name, NULL when from the file */
} sw_config_output;

/* The whole configuration, every default filled in. */
typedef struct sw_config {
	char *file;                    /* where it was loaded from (for messages) */
	sw_strv roots;                 /* folders watched; readable directories */
	sw_strv exclude;               /* glob patterns, see sw_glob_match() */
	char *store;                   /* the SQLite database */
	sw_strv rules;                 /* Sentinel YAML files or folders */
	bool rules_default;            /* rules is the platform's rule pack folder,
			      * not from the file: missing is no error */
	sw_strv yara_rules;            /* YARA files or folders (the built-in
			      * Pulseway rule is always loaded) */
	char *ca_file;                 /* code-signing roots for IsTrusted, or NULL */
	char device_id[41];            /* "" = derived from the OS machine id */
	int settle_ms;                 /* 10..60000, default 300 */
	int reconcile_hours;           /* 0..720, 0 = off, default 6 */
	int max_file_mb;               /* 1..4096, default 512 */
	sw_config_log_level log_level; /* default info */
	int cpu_budget_percent;        /* 1..100 of one core, default 25 */
	int threads;                   /* 1..64, default 2 */
	bool cross_filesystems;        /* default false */
	sw_config_output *outputs;
	size_t n_outputs;     /* >= 1 */
	bool outputs_default; /* no `outputs` key: the embedded default */
} sw_config;

/* What the loader asks of the OS. Any callback may be NULL: dir_ok NULL
 * accepts every root, get_env NULL means no variable is set, file_mode
 * NULL means "unknown", which refuses secrets in the file. */
typedef struct sw_config_env {
	void *ud;
	/* 0 when path is an existing directory the agent can read; else
	 * non-zero with a short reason in why ("no such directory"). */
	int (*dir_ok)(void *ud, const char *path, char *why, size_t n);
	/* The environment variable's value or NULL; valid until the next
	 * call. */
	const char *(*get_env)(void *ud, const char *name);
	/* 0 with *mode = the file's permission bits (POSIX st_mode & 07777;
	 * on Windows the platform maps its ACL to the same bits), non-zero
	 * when they cannot be known. */
	int (*file_mode)(void *ud, const char *path, unsigned *mode);
} sw_config_env;

/* The env the agent uses: platform/ for directories, getenv(). file_mode
 * is NULL until platform.h has a way to read permission bits (see
 * docs/CONFIG.md), so secrets must come from *_env variables until then. */
sw_config_env sw_config_env_platform(void);

/* Load path. On error *out is NULL and err holds one message per line,
 * "FILE:LINE:COL: KEY.PATH: what is wrong; the fix", at most
 * SW_CONFIG_MAX_ERRORS of them. Returns SW_OK, SW_ERR_CONFIG or
 * SW_ERR_NOMEM. Secrets never appear in err. */
sw_err sw_config_load_file(const char *path, const sw_config_env *env, sw_config **out, char *err,
                           size_t errlen);
/* The same over bytes in memory; name is used in messages and given to
 * env->file_mode. An empty buffer gives every default. */
sw_err sw_config_load_buffer(const char *name, const char *buf, size_t len, const sw_config_env *env,
                             sw_config **out, char *err, size_t errlen);
/* Every default, as if from an empty file. */
sw_err sw_config_load_defaults(const sw_config_env *env, sw_config **out, char *err, size_t errlen);
/* True when path names something fopen can read (to tell "no config file
 * yet" apart from "a bad one" before loading). */
bool sw_config_file_exists(const char *path);

void sw_config_free(sw_config *c);

/* The effective configuration as YAML that loads back (secrets are shown
 * as a comment, never their value). */
sw_err sw_config_print(const sw_config *c, FILE *f);

/* Is path excluded by any of c->exclude? */
bool sw_config_excluded(const sw_config *c, const char *path);

/* Path-aware glob (docs/CONFIG.md "exclude"): '*' and '?' and '[...]' never
 * match a separator, '**' matches across them; a pattern without a leading
 * separator may match starting at any component; a pattern that matches a
 * leading part of the path ending at a component boundary matches the
 * whole path (a folder excludes what is under it). */
#define SW_GLOB_WINDOWS 1u /* '\\' is a separator too, not an escape; ASCII case-insensitive */
bool sw_glob_match(const char *pattern, const char *path, unsigned flags);
/* NULL when pattern is well formed, else why not (a static string). */
const char *sw_glob_check(const char *pattern, unsigned flags);

#endif
