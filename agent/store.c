/* signwatch: the store (see store.h). SQLite does the storage; this file
 * holds the schema, its migrations and the SQL. */
#include "store.h"

#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include <errno.h>

#include "log.h"
#include "platform.h"
#include "sw_attr.h"

#define APP_ID 0x53574154 /* PRAGMA application_id: "SWAT" */
#define BUSY_TIMEOUT_MS 5000
#define PLAN_CACHE 8 /* summary plans kept prepared */

/* Adding a column to the record needs a migration that adds it to
 * records; this stops the enum from growing past the schema unnoticed. */
_Static_assert(SW_COL__COUNT == 31, "a new sw_col needs a store migration");

/* ---- schema ------------------------------------------------------------ */

/* Migration i takes user_version i to i + 1. Frozen once released: change
 * the schema only by appending. Column names in records and matches are
 * exactly sw_col_name()'s, so SQL can be generated from the enum. */
static const char *const MIGRATIONS[SW_STORE_SCHEMA_VERSION] = {
	/* 0 -> 1 */
	"CREATE TABLE report_ids("
	"  DeviceId TEXT PRIMARY KEY,"
	"  last_id INTEGER NOT NULL"
	") WITHOUT ROWID;"
	/* Each (DeviceId, DeviceName) pair seen, DeviceName '' when missing
	 * (KQL's view of a missing string). Interned so that matches and their
	 * indexes carry a small integer instead of ~60 bytes of text. */
	"CREATE TABLE devices("
	"  id INTEGER PRIMARY KEY,"
	"  DeviceId TEXT NOT NULL,"
	"  DeviceName TEXT NOT NULL,"
	"  UNIQUE(DeviceId, DeviceName)"
	");"
	"CREATE TABLE records("
	"  id INTEGER PRIMARY KEY,"
	"  device INTEGER NOT NULL REFERENCES devices(id),"
	"  Timestamp INTEGER," /* ms since the epoch, UTC */
	"  DeviceId TEXT NOT NULL,"
	"  DeviceName TEXT,"
	"  SHA1 TEXT,"
	"  IsSigned INTEGER," /* 0/1, NULL unknown */
	"  SignatureType TEXT,"
	"  Signer TEXT,"
	"  SignerHash TEXT,"
	"  Issuer TEXT,"
	"  IssuerHash TEXT,"
	"  CertificateSerialNumber TEXT,"
	"  CrlDistributionPointUrls TEXT," /* JSON array of strings */
	"  CertificateCreationTime INTEGER,"
	"  CertificateExpirationTime INTEGER,"
	"  CertificateCountersignatureTime INTEGER,"
	"  IsTrusted INTEGER,"
	"  IsRootSignerMicrosoft INTEGER,"
	"  ReportId INTEGER NOT NULL,"
	"  FolderPath TEXT,"
	"  FileName TEXT,"
	"  SHA256 TEXT,"
	"  FileSize INTEGER,"
	"  SignatureIndex INTEGER,"
	"  IsNested INTEGER,"
	"  DigestAlgorithm TEXT,"
	"  DigestMatches INTEGER,"
	"  Anomalies TEXT," /* JSON array of names */
	"  SignerDN TEXT,"
	"  IssuerDN TEXT,"
	"  CountersignatureType TEXT,"
	"  YaraMatches TEXT," /* JSON array of rule names */
	"  Error TEXT,"
	"  TrustError TEXT,"
	"  UNIQUE(DeviceId, ReportId)"
	");"
	"CREATE TABLE rules("
	"  id INTEGER PRIMARY KEY,"
	"  rule_id TEXT NOT NULL UNIQUE"
	");"
	/* A rule hit. The record's Timestamp, device pair and ReportId are
	 * copied here so that the usual summarize (min/max(Timestamp),
	 * make_set(ReportId), count() by DeviceId, DeviceName) reads one
	 * covering index of integers in group order, never the records; rules
	 * (UUIDs) are interned for the same reason. */
	"CREATE TABLE matches("
	"  rule INTEGER NOT NULL REFERENCES rules(id),"
	"  record INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,"
	"  Timestamp INTEGER,"
	"  device INTEGER NOT NULL REFERENCES devices(id),"
	"  ReportId INTEGER NOT NULL,"
	"  PRIMARY KEY(rule, record)"
	") WITHOUT ROWID;"
	"CREATE INDEX matches_window ON matches(rule, Timestamp);"
	"CREATE INDEX matches_device ON matches(rule, device, ReportId, Timestamp);"
	"CREATE INDEX matches_record ON matches(record);" /* ON DELETE CASCADE lookups */
	"CREATE TABLE file_state("
	"  device INTEGER NOT NULL,"
	"  file_id INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  mtime_ns INTEGER NOT NULL,"
	"  ctime_ns INTEGER NOT NULL,"
	"  result_hash TEXT NOT NULL,"
	"  PRIMARY KEY(device, file_id)"
	") WITHOUT ROWID;",
	/* 1 -> 2: a (rule, device) group's window is one range of this index,
	 * in Timestamp order with ReportId beside it (covering), so a summary
	 * seeks to each group's window and reads only the matches inside it;
	 * (rule, device, ReportId, Timestamp) made it read the whole group. */
	"DROP INDEX matches_device;"
	"CREATE INDEX matches_group ON matches(rule, device, Timestamp, ReportId);",
	/* 2 -> 3: the outbox (what is to be sent, per output, until the
	 * collector accepted it), its per-output counters, and the last
	 * summary row sent per (rule, device) with its version.
	 * AUTOINCREMENT: a seq is never reused, even once the table was
	 * emptied, so an ack of a batch in flight can never delete an item
	 * that came after it. */
	"CREATE TABLE outbox("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  output_id TEXT NOT NULL,"
	"  kind INTEGER NOT NULL," /* sw_outbox_kind: 0 record, 1 summary */
	"  idem_key TEXT NOT NULL,"
	"  payload TEXT NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX outbox_output ON outbox(output_id, seq);"
	"CREATE INDEX outbox_records ON outbox(output_id, kind, seq);"
	"CREATE TABLE outbox_state("
	"  output_id TEXT PRIMARY KEY,"
	"  items INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  dropped INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE TABLE summary_state("
	"  rule_id TEXT NOT NULL,"
	"  device_id TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  json TEXT NOT NULL,"
	"  PRIMARY KEY(rule_id, device_id)"
	") WITHOUT ROWID;",
};

/* Columns copied into matches (see above); the device pair is reached
 * through matches.device. */
static bool in_matches(int c) { return c == SW_COL_TIMESTAMP || c == SW_COL_REPORT_ID; }
static bool is_device_col(int c) { return c == SW_COL_DEVICE_ID || c == SW_COL_DEVICE_NAME; }

/* ---- the store ----------------------------------------------------------- */

typedef struct i64vec {
	int64_t *v;
	size_t n, cap;
} i64vec;

/* Where sw_collect() appends; sorted turns false once a value is not
 * greater than the one before it. */
typedef struct collector {
	i64vec *v;
	bool sorted;
} collector;

enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_NEXT_ID,
	Q_PUT_RECORD,
	Q_DEV_FIND,
	Q_DEV_ADD,
	Q_RULE_FIND,
	Q_RULE_ADD,
	Q_PUT_MATCH,
	Q_PRUNE_RECORDS,
	Q_PRUNE_MATCHES,
	Q_FS_GET,
	Q_FS_PUT,
	Q_READ_BEGIN,
	Q_NEXT_GROUP,
	Q_GROUP_IDS,
	Q_GROUP_TIMES,
	Q_GROUP_COUNT,
	Q_GROUP_FIRST,
	Q_GROUP_LAST,
	Q_DEV_GET,
	Q_OB_PUT,
	Q_OB_STATE_ADD,
	Q_OB_PEEK,
	Q_OB_SPAN,
	Q_OB_DELETE,
	Q_OB_STATE_GET,
	Q_OB_REC_SCAN,
	Q_OB_REC_SPAN,
	Q_OB_REC_DELETE,
	Q_SUM_GET,
	Q_SUM_PUT,
	Q_OB_SUP_SPAN,
	Q_OB_SUP_DELETE,
	Q__COUNT
};

static const char *const FIXED_SQL[Q__COUNT] = {
	/* IMMEDIATE takes the write lock now, so the busy timeout applies;
	 * a deferred transaction that upgrades later can fail at once. */
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_NEXT_ID] = "INSERT INTO report_ids(DeviceId, last_id) VALUES(?1, 1) "
	              "ON CONFLICT(DeviceId) DO UPDATE SET last_id = last_id + 1 RETURNING last_id",
	[Q_PUT_RECORD] = NULL, /* generated from sw_col_name() */
	[Q_DEV_FIND] = "SELECT id FROM devices WHERE DeviceId = ?1 AND DeviceName = ?2",
	[Q_DEV_ADD] = "INSERT INTO devices(DeviceId, DeviceName) VALUES(?1, ?2)",
	[Q_RULE_FIND] = "SELECT id FROM rules WHERE rule_id = ?1",
	[Q_RULE_ADD] = "INSERT INTO rules(rule_id) VALUES(?1)",
	[Q_PUT_MATCH] = "INSERT INTO matches(rule, record, Timestamp, device, ReportId) "
	                "SELECT ?1, id, Timestamp, device, ReportId "
	                "FROM records WHERE id = ?2 ON CONFLICT(rule, record) DO NOTHING",
	[Q_PRUNE_RECORDS] = "DELETE FROM records WHERE id IN "
	                    "(SELECT record FROM matches WHERE Timestamp < ?1)",
	[Q_PRUNE_MATCHES] = "DELETE FROM matches WHERE Timestamp < ?1",
	[Q_FS_GET] = "SELECT size, mtime_ns, ctime_ns, result_hash FROM file_state "
	             "WHERE device = ?1 AND file_id = ?2",
	[Q_FS_PUT] = "INSERT INTO file_state(device, file_id, size, mtime_ns, ctime_ns, result_hash) "
	             "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(device, file_id) DO UPDATE SET "
	             "size = excluded.size, mtime_ns = excluded.mtime_ns, "
	             "ctime_ns = excluded.ctime_ns, result_hash = excluded.result_hash",
	/* The direct summary (see summary_direct): one snapshot for all its
	 * statements; the next device with matches of rule ?1 after ?2 (a
	 * seek, not a scan); a group's ReportIds or Timestamps in the window
	 * (collected in C, see collect_step), or their count and first and
	 * last Timestamp (two more seeks). All are ranges of matches_group. */
	[Q_READ_BEGIN] = "BEGIN DEFERRED",
	[Q_NEXT_GROUP] = "SELECT device FROM matches WHERE rule = ?1 AND device > ?2 "
	                 "ORDER BY device LIMIT 1",
	[Q_GROUP_IDS] = "SELECT sw_collect(ReportId) FROM matches "
	                "WHERE rule = ?1 AND device = ?2 AND Timestamp BETWEEN ?3 AND ?4",
	[Q_GROUP_TIMES] = "SELECT sw_collect(Timestamp) FROM matches "
	                  "WHERE rule = ?1 AND device = ?2 AND Timestamp BETWEEN ?3 AND ?4",
	[Q_GROUP_COUNT] = "SELECT count(*) FROM matches "
	                  "WHERE rule = ?1 AND device = ?2 AND Timestamp BETWEEN ?3 AND ?4",
	[Q_GROUP_FIRST] = "SELECT Timestamp FROM matches WHERE rule = ?1 AND device = ?2 "
	                  "AND Timestamp BETWEEN ?3 AND ?4 ORDER BY Timestamp LIMIT 1",
	[Q_GROUP_LAST] = "SELECT Timestamp FROM matches WHERE rule = ?1 AND device = ?2 "
	                 "AND Timestamp BETWEEN ?3 AND ?4 ORDER BY Timestamp DESC LIMIT 1",
	[Q_DEV_GET] = "SELECT DeviceId, DeviceName FROM devices WHERE id = ?1",
	/* The outbox. Counters in outbox_state change with every insert and
	 * delete, in the same transaction, so the cap check reads one row. */
	[Q_OB_PUT] = "INSERT INTO outbox(output_id, kind, idem_key, payload, bytes, created_ms) "
	             "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_OB_STATE_ADD] =
	        "INSERT INTO outbox_state(output_id, items, bytes, dropped) VALUES(?1, ?2, ?3, ?4) "
	        "ON CONFLICT(output_id) DO UPDATE SET items = max(0, items + excluded.items), "
	        "bytes = max(0, bytes + excluded.bytes), dropped = dropped + excluded.dropped",
	[Q_OB_PEEK] = "SELECT seq, kind, idem_key, payload, bytes, created_ms FROM outbox "
	              "WHERE output_id = ?1 ORDER BY seq LIMIT ?2",
	[Q_OB_SPAN] =
	        "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox WHERE output_id = ?1 AND seq <= ?2",
	[Q_OB_DELETE] = "DELETE FROM outbox WHERE output_id = ?1 AND seq <= ?2",
	[Q_OB_STATE_GET] = "SELECT items, bytes, dropped FROM outbox_state WHERE output_id = ?1",
	[Q_OB_REC_SCAN] = "SELECT seq, bytes FROM outbox WHERE output_id = ?1 AND kind = 0 ORDER BY seq",
	[Q_OB_REC_SPAN] = "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox "
	                  "WHERE output_id = ?1 AND kind = 0 AND seq <= ?2",
	[Q_OB_REC_DELETE] = "DELETE FROM outbox WHERE output_id = ?1 AND kind = 0 AND seq <= ?2",
	/* superseded summaries: the output's pending summaries are few (one per
	 * rule and device, once superseded ones are gone) */
	[Q_OB_SUP_SPAN] =
	        "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox WHERE output_id = ?1 AND kind = 1 "
	        "AND substr(idem_key, 1, length(?2)) = ?2",
	[Q_OB_SUP_DELETE] = "DELETE FROM outbox WHERE output_id = ?1 AND kind = 1 "
	                    "AND substr(idem_key, 1, length(?2)) = ?2",
	[Q_SUM_GET] = "SELECT version, json FROM summary_state WHERE rule_id = ?1 AND device_id = ?2",
	[Q_SUM_PUT] = "INSERT INTO summary_state(rule_id, device_id, version, json) VALUES(?1, ?2, ?3, ?4) "
	              "ON CONFLICT(rule_id, device_id) DO UPDATE SET version = excluded.version, "
	              "json = excluded.json",
};

/* A summary's prepared statements: [0] the scalar aggregates, then one per
 * make_set. Keyed by their SQL, which depends only on the spec's shape. */
typedef struct plan {
	char *key;
	size_t n;
	sqlite3_stmt **st;
} plan;

struct sw_store {
	sqlite3 *db;
	sqlite3_stmt *q[Q__COUNT];
	/* Last rule and device pair looked up; a scan puts many hits of one
	 * rule and records of one device. Forgotten on rollback. */
	char *rule_id;
	int64_t rule_key;
	char *dev_id, *dev_name;
	int64_t dev_key;
	plan plans[PLAN_CACHE];
	unsigned plan_next;
	struct collector *collect; /* sw_collect()'s target, set around a step */
	char err[512];
};

#if defined(__GNUC__) || defined(__clang__)
SW_PRINTF(2, 3)
#endif
static void set_err(sw_store *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

static sw_err db_err(sw_store *st, const char *what)
{
	int rc = sqlite3_extended_errcode(st->db);
	set_err(st, "%s: %s", what, sqlite3_errmsg(st->db));
	return rc == SQLITE_NOMEM ? SW_ERR_NOMEM : SW_ERR_STORE;
}

const char *sw_store_errmsg(const sw_store *st) { return st ? st->err : "no store"; }

/* Run a statement that returns no rows we need. */
static sw_err run(sw_store *st, sqlite3_stmt *s, const char *what)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? SW_OK : db_err(st, what);
}

/* ---- open / close ---------------------------------------------------------- */

/* Create path owner-only if it does not exist yet. On POSIX SQLite gives
 * its -wal and -shm files the database file's mode, so they are 0600 too;
 * on Windows they take their folder's ACL, so a folder others may read is
 * warned about when the store is created there (the agent's own
 * %ProgramData%\signwatch is locked down). An existing file keeps its
 * mode (an administrator's choice). */
static sw_err create_private(const char *path, char *why, size_t n)
{
	/* Created owner-only before SQLite opens it (platform: 0600 / a
	 * SYSTEM+Administrators DACL), so it is never briefly readable. */
	sw_file_id id;
	bool existed = sw_plat_stat_nofollow(path, &id) == SW_OK;
	FILE *f = sw_plat_fopen_private(path, "ab");
	if (!f) {
		snprintf(why, n, "%s: cannot create: %s", path, strerror(errno));
		return SW_ERR_IO;
	}
	fclose(f);
	unsigned mode;
	char *dir = sw_plat_windows_paths() && !existed ? sw_plat_dirname(path) : NULL;
	if (dir && sw_plat_file_mode(dir, &mode) == 0 && (mode & 044))
		sw_log(SW_LOG_WARN,
		       "%s: other users may read this folder, and with it the store's -wal and -shm files "
		       "(recent records); keep the store in a folder only SYSTEM and Administrators can read",
		       dir);
	free(dir);
	return SW_OK;
}

static int64_t pragma_int(sqlite3 *db, const char *sql, int *ok)
{
	sqlite3_stmt *s = NULL;
	int64_t v = 0;
	*ok = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
		v = sqlite3_column_int64(s, 0);
		*ok = 1;
	}
	sqlite3_finalize(s);
	return v;
}

/* Refuse what we must not touch: another program's database, or a schema
 * from a newer signwatch (it may rely on invariants we do not keep). */
static sw_err check_version(sw_store *st, int64_t *version)
{
	int ok;
	int64_t app = pragma_int(st->db, "PRAGMA application_id", &ok);
	if (!ok)
		return db_err(st, "read header");
	if (app != 0 && app != APP_ID) {
		set_err(st, "not a signwatch database (application_id %#llx)", (unsigned long long)app);
		return SW_ERR_STORE;
	}
	*version = pragma_int(st->db, "PRAGMA user_version", &ok);
	if (!ok)
		return db_err(st, "read schema version");
	if (*version > SW_STORE_SCHEMA_VERSION || *version < 0) {
		set_err(st,
		        "database schema version %lld is newer than this signwatch supports "
		        "(%d); use a newer signwatch or another database file",
		        (long long)*version, SW_STORE_SCHEMA_VERSION);
		return SW_ERR_STORE;
	}
	return SW_OK;
}

static sw_err migrate(sw_store *st)
{
	int64_t v;
	sw_err e = check_version(st, &v);
	if (e || v == SW_STORE_SCHEMA_VERSION)
		return e;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, "begin migration");
	/* Another process may have migrated while we waited for the lock. */
	e = check_version(st, &v);
	for (; !e && v < SW_STORE_SCHEMA_VERSION; v++)
		if (sqlite3_exec(st->db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK)
			e = db_err(st, "migrate schema");
	if (!e) {
		char sql[96];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
		         SW_STORE_SCHEMA_VERSION, APP_ID);
		if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			e = db_err(st, "commit migration");
	}
	if (e)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return e;
}

static sw_err configure(sw_store *st, bool memory)
{
	sqlite3_stmt *s = NULL;
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return db_err(st, "set WAL journal");
	}
	const char *mode = (const char *)sqlite3_column_text(s, 0);
	bool wal = mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(s);
	if (!wal && !memory) {
		set_err(st, "cannot use a WAL journal (file system without shared memory?)");
		return SW_ERR_STORE;
	}
	/* FULL in WAL mode fsyncs each commit: a committed ReportId may
	 * already have been forwarded, so a power loss must not undo it. */
	if (sqlite3_exec(st->db,
	                 "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
	                 "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384",
	                 NULL, NULL, NULL) != SQLITE_OK)
		return db_err(st, "configure");
	return SW_OK;
}

static sw_err prepare_fixed(sw_store *st)
{
	char sql[2048];
	size_t len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO records(");
	for (int c = 0; c < SW_COL__COUNT; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "\"%s\",", sw_col_name((sw_col)c));
	len += (size_t)snprintf(sql + len, sizeof(sql) - len, "Error,TrustError,device) VALUES(");
	for (int c = 0; c < SW_COL__COUNT + 3; c++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s?%d", c ? "," : "", c + 1);
	snprintf(sql + len, sizeof(sql) - len, ")");
	for (int i = 0; i < Q__COUNT; i++) {
		const char *text = i == Q_PUT_RECORD ? sql : FIXED_SQL[i];
		if (sqlite3_prepare_v3(st->db, text, -1, SQLITE_PREPARE_PERSISTENT, &st->q[i], NULL) !=
		    SQLITE_OK)
			return db_err(st, "prepare");
	}
	return SW_OK;
}

static bool vec_reserve(i64vec *a, size_t extra)
{
	if (a->n + extra <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 1024;
	while (cap < a->n + extra)
		cap *= 2;
	int64_t *v = realloc(a->v, cap * sizeof(*v));
	if (!v)
		return false;
	a->v = v;
	a->cap = cap;
	return true;
}

/* sw_collect(x), an aggregate for the direct summary: appends each x (an
 * integer, never null there) to st->collect's vector. Half a million
 * values pass through here in a VDBE loop, which is about twice as fast as
 * stepping through them as result rows. Only this file's statements use
 * it (DIRECTONLY: not from a schema's triggers or views). */
static void collect_step(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	sw_store *st = sqlite3_user_data(cx);
	collector *c = st->collect;
	if (!c) {
		sqlite3_result_error(cx, "sw_collect() outside a summary", -1);
		return;
	}
	i64vec *a = c->v;
	int64_t x = sqlite3_value_int64(argv[0]);
	if (a->n == a->cap && !vec_reserve(a, 1)) {
		sqlite3_result_error_nomem(cx);
		return;
	}
	if (a->n && a->v[a->n - 1] >= x)
		c->sorted = false;
	a->v[a->n++] = x;
}

static void collect_final(sqlite3_context *cx) { sqlite3_result_null(cx); }

sw_err sw_store_open(const char *path, sw_store **out, char *why, size_t n)
{
	*out = NULL;
	if (!path || !*path) {
		snprintf(why, n, "no database path");
		return SW_ERR_USAGE;
	}
	bool memory = strcmp(path, ":memory:") == 0;
	sw_err e;
	if (!memory && (e = create_private(path, why, n)))
		return e;
	sw_store *st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(why, n, "%s: out of memory", path);
		return SW_ERR_NOMEM;
	}
	/* NOMUTEX: a store is used by one thread at a time (store.h), so the
	 * per-call connection mutex is pure cost (~10% of a summary). */
	if (sqlite3_open_v2(path, &st->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE |
	                            SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		e = st->db ? db_err(st, "open") : SW_ERR_NOMEM;
	} else {
		e = configure(st, memory);
		if (!e)
			e = migrate(st);
		if (!e &&
		    sqlite3_create_function_v2(st->db, "sw_collect", 1,
		                               SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, st,
		                               NULL, collect_step, collect_final, NULL) != SQLITE_OK)
			e = db_err(st, "register sw_collect");
		if (!e)
			e = prepare_fixed(st);
	}
	if (e) {
		snprintf(why, n, "%s: %s", path, st->err[0] ? st->err : sw_err_str(e));
		sw_store_close(st);
		return e;
	}
	*out = st;
	return SW_OK;
}

static void plan_clear(plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		sqlite3_finalize(p->st[i]);
	free(p->st);
	free(p->key);
	memset(p, 0, sizeof(*p));
}

void sw_store_close(sw_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < Q__COUNT; i++)
		sqlite3_finalize(st->q[i]);
	for (int i = 0; i < PLAN_CACHE; i++)
		plan_clear(&st->plans[i]);
	free(st->rule_id);
	free(st->dev_id);
	free(st->dev_name);
	/* close_v2 so that a forgotten statement cannot keep the file open
	 * in a zombie connection without us knowing: all are finalized. */
	sqlite3_close_v2(st->db);
	free(st);
}

/* ---- transactions, ids, records, matches ------------------------------------ */

static void forget_rule(sw_store *st)
{
	free(st->rule_id);
	free(st->dev_id);
	free(st->dev_name);
	st->rule_id = st->dev_id = st->dev_name = NULL;
}

sw_err sw_store_begin(sw_store *st) { return run(st, st->q[Q_BEGIN], "begin"); }
sw_err sw_store_commit(sw_store *st) { return run(st, st->q[Q_COMMIT], "commit"); }

sw_err sw_store_rollback(sw_store *st)
{
	/* The cached rule key may name a row that no longer exists. */
	forget_rule(st);
	return run(st, st->q[Q_ROLLBACK], "rollback");
}

sw_err sw_store_next_report_id(sw_store *st, const char *device_id, int64_t *out)
{
	if (!device_id || !*device_id) {
		set_err(st, "next report id: no DeviceId");
		return SW_ERR_USAGE;
	}
	sqlite3_stmt *s = st->q[Q_NEXT_ID];
	sqlite3_bind_text(s, 1, device_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	/* RETURNING's change is only complete once the statement has run to
	 * its end. */
	int rc2 = rc == SQLITE_ROW ? sqlite3_step(s) : rc;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW && rc2 == SQLITE_DONE ? SW_OK : db_err(st, "next report id");
}

/* Key of the device pair in devices, added when new. */
static sw_err device_key(sw_store *st, const char *id, const char *name, int64_t *key)
{
	if (st->dev_id && strcmp(st->dev_id, id) == 0 && strcmp(st->dev_name, name) == 0) {
		*key = st->dev_key;
		return SW_OK;
	}
	sqlite3_stmt *s = st->q[Q_DEV_FIND];
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	*key = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, "find device");
	if (!*key) {
		s = st->q[Q_DEV_ADD];
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sw_err e = run(st, s, "add device");
		if (e)
			return e;
		*key = sqlite3_last_insert_rowid(st->db);
	}
	char *a = strdup(id), *b = strdup(name);
	if (a && b) { /* the cache is an optimisation; no copy, no cache */
		free(st->dev_id);
		free(st->dev_name);
		st->dev_id = a;
		st->dev_name = b;
		st->dev_key = *key;
	} else {
		free(a);
		free(b);
	}
	return SW_OK;
}

/* An array column as JSON text ("[]" when empty). */
static char *json_strings(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		json_t *s = json_string(v[i] ? v[i] : "");
		if (!s) { /* not UTF-8: records are sanitized, but be safe */
			char *fixed = sw_utf8_sanitize(v[i], strlen(v[i]));
			s = fixed ? json_string(fixed) : NULL;
			free(fixed);
		}
		if (!s || json_array_append_new(a, s)) {
			json_decref(a);
			return NULL;
		}
	}
	char *out = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return out;
}

sw_err sw_store_put_record(sw_store *st, const sw_record *r, int64_t *rowid)
{
	if (r->report_id < 0 || !r->device_id[0]) {
		set_err(st, "put record: no ReportId or DeviceId");
		return SW_ERR_USAGE;
	}
	int64_t dev;
	sw_err e = device_key(st, r->device_id, r->device_name ? r->device_name : "", &dev);
	if (e)
		return e;
	sqlite3_stmt *s = st->q[Q_PUT_RECORD];
	char *arrays[SW_COL__COUNT] = { 0 };
	for (int c = 0; c < SW_COL__COUNT && !e; c++) {
		sw_value v;
		sw_record_get(r, (sw_col)c, &v);
		switch (v.type) {
		case SW_V_NULL: sqlite3_bind_null(s, c + 1); break;
		case SW_V_STRING: sqlite3_bind_text(s, c + 1, v.s, -1, SQLITE_STATIC); break;
		case SW_V_BOOL:
		case SW_V_LONG:
		case SW_V_TIME: sqlite3_bind_int64(s, c + 1, v.i); break;
		case SW_V_ARRAY:
			if (v.n == 0) /* the usual case; spares jansson a round trip */
				sqlite3_bind_text(s, c + 1, "[]", 2, SQLITE_STATIC);
			else if (!(arrays[c] = json_strings(v.arr, v.n)))
				e = SW_ERR_NOMEM;
			else
				sqlite3_bind_text(s, c + 1, arrays[c], -1, SQLITE_STATIC);
			break;
		}
	}
	sqlite3_bind_text(s, SW_COL__COUNT + 1, r->error, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, SW_COL__COUNT + 2, r->trust_error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, SW_COL__COUNT + 3, dev);
	if (e)
		set_err(st, "put record: out of memory");
	else if ((e = run(st, s, "put record")) == SW_OK && rowid)
		*rowid = sqlite3_last_insert_rowid(st->db);
	sqlite3_clear_bindings(s);
	for (int c = 0; c < SW_COL__COUNT; c++)
		free(arrays[c]);
	return e;
}

/* Key of rule_id in rules; adds it when add is true, else 0 if absent. */
static sw_err rule_key(sw_store *st, const char *rule_id, bool add, int64_t *key)
{
	if (st->rule_id && strcmp(st->rule_id, rule_id) == 0) {
		*key = st->rule_key;
		return SW_OK;
	}
	sqlite3_stmt *s = st->q[Q_RULE_FIND];
	sqlite3_bind_text(s, 1, rule_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	*key = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_err(st, "find rule");
	if (!*key && add) {
		s = st->q[Q_RULE_ADD];
		sqlite3_bind_text(s, 1, rule_id, -1, SQLITE_STATIC);
		sw_err e = run(st, s, "add rule");
		if (e)
			return e;
		*key = sqlite3_last_insert_rowid(st->db);
	}
	if (*key) {
		char *copy = strdup(rule_id);
		if (copy) { /* the cache is an optimisation; no copy, no cache */
			free(st->rule_id);
			st->rule_id = copy;
			st->rule_key = *key;
		}
	}
	return SW_OK;
}

sw_err sw_store_put_match(sw_store *st, const char *rule_id, int64_t rowid)
{
	if (!rule_id || !*rule_id) {
		set_err(st, "put match: no rule id");
		return SW_ERR_USAGE;
	}
	int64_t key;
	sw_err e = rule_key(st, rule_id, true, &key);
	if (e)
		return e;
	sqlite3_stmt *s = st->q[Q_PUT_MATCH];
	sqlite3_bind_int64(s, 1, key);
	sqlite3_bind_int64(s, 2, rowid);
	int before = sqlite3_total_changes(st->db);
	e = run(st, s, "put match");
	if (!e && sqlite3_total_changes(st->db) == before) {
		/* Either a repeated hit (fine) or no such record (caller bug). */
		sqlite3_stmt *q = NULL;
		int found = 0;
		if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM records WHERE id = ?1", -1, &q, NULL) ==
		    SQLITE_OK) {
			sqlite3_bind_int64(q, 1, rowid);
			found = sqlite3_step(q) == SQLITE_ROW;
		}
		sqlite3_finalize(q);
		if (!found) {
			set_err(st, "put match: no record %lld", (long long)rowid);
			e = SW_ERR_USAGE;
		}
	}
	return e;
}

/* ---- summaries --------------------------------------------------------------- */

static bool col_ok(int c) { return c >= 0 && c < SW_COL__COUNT; }

/* The SQL value of column c as KQL sees it. Names come from sw_col_name()
 * only, so nothing in a rule reaches the SQL text. */
static void col_expr(sw_strbuf *b, int c)
{
	const char *name = sw_col_name((sw_col)c);
	if (in_matches(c))
		sw_sb_printf(b, "m.\"%s\"", name);
	else if (is_device_col(c))
		sw_sb_printf(b, "d.\"%s\"", name); /* NOT NULL, '' when missing */
	else if (sw_col_type((sw_col)c) == SW_V_STRING)
		sw_sb_printf(b, "COALESCE(r.\"%s\", '')", name); /* KQL strings are never null */
	else
		sw_sb_printf(b, "r.\"%s\"", name);
}

/* How a spec's by-columns become SQL group keys. Grouping by both DeviceId
 * and DeviceName is grouping by the interned pair m.device (one key for
 * both), which the matches_group index delivers in order without a sort
 * and without touching devices or records per match. */
typedef struct shape {
	bool pair; /* by holds DeviceId and DeviceName */
	int n_keys;
	int key_of[SW_KQL_MAX_BY]; /* by i -> key index */
	int dev_key;               /* key index of m.device, or -1 */
	bool join_r, join_d;       /* per-match joins with records, devices */
} shape;

static void make_shape(const sw_summary_spec *sp, shape *sh)
{
	bool has_id = false, has_name = false;
	memset(sh, 0, sizeof(*sh));
	sh->dev_key = -1;
	for (size_t i = 0; i < sp->n_by; i++) {
		has_id |= sp->by[i] == SW_COL_DEVICE_ID;
		has_name |= sp->by[i] == SW_COL_DEVICE_NAME;
	}
	sh->pair = has_id && has_name;
	for (size_t i = 0; i < sp->n_by; i++) {
		int c = sp->by[i];
		if (sh->pair && is_device_col(c)) {
			if (sh->dev_key < 0)
				sh->dev_key = sh->n_keys++;
			sh->key_of[i] = sh->dev_key;
			continue;
		}
		sh->key_of[i] = sh->n_keys++; /* a repeated column is a repeated key: harmless */
		sh->join_r |= !in_matches(c) && !is_device_col(c);
		sh->join_d |= is_device_col(c);
	}
	for (size_t i = 0; i < sp->n_aggs; i++) {
		int c = sp->aggs[i].col;
		if (sp->aggs[i].fn == SW_AGG_COUNT)
			continue;
		sh->join_r |= !in_matches(c) && !is_device_col(c);
		sh->join_d |= is_device_col(c);
	}
}

/* The SQL of key k of shape sh. */
static void key_expr(sw_strbuf *b, const sw_summary_spec *sp, const shape *sh, int k)
{
	if (k == sh->dev_key) {
		sw_sb_printf(b, "m.device");
		return;
	}
	for (size_t i = 0; i < sp->n_by; i++)
		if (sh->key_of[i] == k) {
			col_expr(b, sp->by[i]);
			return;
		}
}

/* FROM and WHERE shared by a plan's statements; ?1 rule, ?2..?3 window.
 * array_col >= 0 adds json_each over that array column. */
static void from_where(sw_strbuf *b, const shape *sh, int array_col)
{
	sw_sb_printf(b, " FROM matches m");
	if (sh->join_r || array_col >= 0)
		sw_sb_printf(b, " JOIN records r ON r.id = m.record");
	if (sh->join_d)
		sw_sb_printf(b, " JOIN devices d ON d.id = m.device");
	if (array_col >= 0)
		sw_sb_printf(b, " JOIN json_each(r.\"%s\") j", sw_col_name((sw_col)array_col));
	sw_sb_printf(b, " WHERE m.rule = ?1 AND m.Timestamp BETWEEN ?2 AND ?3");
}

static void positions(sw_strbuf *b, const char *what, int n)
{
	sw_sb_printf(b, " %s ", what);
	for (int i = 0; i < n; i++)
		sw_sb_printf(b, "%s%d", i ? "," : "", i + 1);
}

/* The SQL of a spec's statements, each NUL-terminated, one after another
 * in one buffer (also the plan's cache key).
 *   [0]  SELECT by-values..., keys..., count, min/max... (one row per group)
 *   [k]  SELECT keys..., value (a make_set's distinct values per group)
 * all ordered by the keys, so that fill() walks them in lockstep. */
static sw_err build_sql(sw_store *st, const sw_summary_spec *sp, sw_strbuf *b, size_t *n_st)
{
	for (size_t i = 0; i < sp->n_by; i++) {
		int c = sp->by[i];
		if (!col_ok(c)) {
			set_err(st, "summary: bad by column %d", c);
			return SW_ERR_USAGE;
		}
		if (sw_col_type((sw_col)c) == SW_V_ARRAY) {
			set_err(st, "summary: cannot group by array column %s", sw_col_name((sw_col)c));
			return SW_ERR_UNSUPPORTED;
		}
	}
	for (size_t i = 0; i < sp->n_aggs; i++) {
		int c = sp->aggs[i].col;
		if (sp->aggs[i].fn == SW_AGG_COUNT)
			continue;
		if (!col_ok(c) || sp->aggs[i].fn > SW_AGG_COUNT) {
			set_err(st, "summary: bad aggregation %zu", i);
			return SW_ERR_USAGE;
		}
		if (sp->aggs[i].fn != SW_AGG_MAKE_SET && sw_col_type((sw_col)c) == SW_V_ARRAY) {
			set_err(st, "summary: %s() of array column %s",
			        sp->aggs[i].fn == SW_AGG_MIN ? "min" : "max", sw_col_name((sw_col)c));
			return SW_ERR_UNSUPPORTED;
		}
	}
	shape sh;
	make_shape(sp, &sh);

	/* [0]: aggregate per key in an inner query (count(*) first keeps it
	 * valid when there is nothing else), then name the device pair of
	 * each group: a join over groups, not over matches. */
	sw_sb_printf(b, "SELECT ");
	for (size_t i = 0; i < sp->n_by; i++) {
		if (sh.key_of[i] == sh.dev_key)
			sw_sb_printf(b, "dd.\"%s\", ", sw_col_name((sw_col)sp->by[i]));
		else
			sw_sb_printf(b, "g.k%d, ", sh.key_of[i]);
	}
	sw_sb_printf(b, "g.* FROM (SELECT ");
	for (int k = 0; k < sh.n_keys; k++) {
		key_expr(b, sp, &sh, k);
		sw_sb_printf(b, " AS k%d, ", k);
	}
	sw_sb_printf(b, "count(*)");
	for (size_t i = 0; i < sp->n_aggs; i++) {
		if (sp->aggs[i].fn != SW_AGG_MIN && sp->aggs[i].fn != SW_AGG_MAX)
			continue;
		sw_sb_printf(b, ", %s(", sp->aggs[i].fn == SW_AGG_MIN ? "min" : "max");
		col_expr(b, sp->aggs[i].col);
		sw_sb_printf(b, ")");
	}
	from_where(b, &sh, -1);
	if (sh.n_keys) {
		positions(b, "GROUP BY", sh.n_keys);
		positions(b, "ORDER BY", sh.n_keys);
	}
	sw_sb_printf(b, ") g");
	if (sh.dev_key >= 0)
		sw_sb_printf(b, " JOIN devices dd ON dd.id = g.k%d", sh.dev_key);
	for (int k = 0; k < sh.n_keys; k++)
		sw_sb_printf(b, "%sg.k%d", k ? ", " : " ORDER BY ", k);
	sw_sb_printf(b, "%c", 0);
	*n_st = 1;

	/* One per make_set: the distinct non-null values of each group. */
	for (size_t i = 0; i < sp->n_aggs; i++) {
		if (sp->aggs[i].fn != SW_AGG_MAKE_SET)
			continue;
		int c = sp->aggs[i].col;
		bool arr = sw_col_type((sw_col)c) == SW_V_ARRAY;
		sw_sb_printf(b, "SELECT ");
		for (int k = 0; k < sh.n_keys; k++) {
			key_expr(b, sp, &sh, k);
			sw_sb_printf(b, ", ");
		}
		if (arr)
			sw_sb_printf(b, "j.value");
		else
			col_expr(b, c);
		from_where(b, &sh, arr ? c : -1);
		sw_sb_printf(b, " AND ");
		if (arr)
			sw_sb_printf(b, "j.value");
		else
			col_expr(b, c);
		sw_sb_printf(b, " IS NOT NULL");
		/* Within a group of one device, ReportIds are already distinct
		 * (UNIQUE(DeviceId, ReportId), one match per rule and record):
		 * skip the GROUP BY, which costs as much as the scan. */
		if (!(c == SW_COL_REPORT_ID && sh.pair))
			positions(b, "GROUP BY", sh.n_keys + 1);
		positions(b, "ORDER BY", sh.n_keys + 1);
		sw_sb_printf(b, "%c", 0);
		(*n_st)++;
	}
	if (b->oom) {
		set_err(st, "summary: out of memory");
		return SW_ERR_NOMEM;
	}
	return SW_OK;
}

static plan *get_plan(sw_store *st, const sw_summary_spec *sp, sw_err *e)
{
	sw_strbuf b = { 0 };
	size_t n_st;
	if ((*e = build_sql(st, sp, &b, &n_st))) {
		free(b.p);
		return NULL;
	}
	for (int i = 0; i < PLAN_CACHE; i++)
		if (st->plans[i].key && st->plans[i].n == n_st && memcmp(st->plans[i].key, b.p, b.len) == 0) {
			free(b.p);
			return &st->plans[i];
		}
	plan *p = &st->plans[st->plan_next++ % PLAN_CACHE];
	plan_clear(p);
	p->st = calloc(n_st, sizeof(*p->st));
	if (!p->st) {
		free(b.p);
		set_err(st, "summary: out of memory");
		*e = SW_ERR_NOMEM;
		return NULL;
	}
	p->key = b.p;
	p->n = n_st;
	const char *sql = b.p;
	for (size_t i = 0; i < n_st; i++, sql += strlen(sql) + 1)
		if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &p->st[i], NULL) !=
		    SQLITE_OK) {
			*e = db_err(st, "prepare summary");
			plan_clear(p);
			return NULL;
		}
	return p;
}

/* The typed cell of column col at result column i. */
static sw_err cell_from(sqlite3_stmt *s, int i, sw_vtype type, sw_summary_cell *c)
{
	memset(c, 0, sizeof(*c));
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return SW_OK;
	c->type = type;
	if (type == SW_V_STRING) {
		const char *t = (const char *)sqlite3_column_text(s, i);
		if (!t || !(c->s = strdup(t)))
			return SW_ERR_NOMEM;
	} else {
		c->i = sqlite3_column_int64(s, i);
	}
	return SW_OK;
}

/* Same key tuple in n result columns of a (from ao) and b (from bo)? */
static bool same_key(sqlite3_stmt *a, int ao, sqlite3_stmt *b, int bo, int n)
{
	for (int j = 0; j < n; j++) {
		int ta = sqlite3_column_type(a, ao + j), tb = sqlite3_column_type(b, bo + j);
		int i = ao + j, i2 = bo + j;
		if (ta != tb)
			return false;
		if (ta == SQLITE_INTEGER) {
			if (sqlite3_column_int64(a, i) != sqlite3_column_int64(b, i2))
				return false;
		} else if (ta == SQLITE_TEXT || ta == SQLITE_BLOB) {
			const void *pa = ta == SQLITE_TEXT ? (const void *)sqlite3_column_text(a, i)
			                                   : sqlite3_column_blob(a, i);
			const void *pb = ta == SQLITE_TEXT ? (const void *)sqlite3_column_text(b, i2)
			                                   : sqlite3_column_blob(b, i2);
			int la = sqlite3_column_bytes(a, i), lb = sqlite3_column_bytes(b, i2);
			if (la != lb || (la && memcmp(pa, pb, (size_t)la) != 0))
				return false;
		} else if (ta == SQLITE_FLOAT) {
			if (sqlite3_column_double(a, i) != sqlite3_column_double(b, i2))
				return false;
		}
	}
	return true;
}

/* Append the value at result column i, of KQL type type, to a JSON array. */
static void json_elem(sw_strbuf *b, sqlite3_stmt *s, int i, sw_vtype type, bool first)
{
	if (!first)
		sw_sb_put(b, ",", 1);
	if (type == SW_V_LONG) {
		/* by hand: a set can hold a million ReportIds */
		char t[24], *e = t + sizeof(t), *p = e;
		int64_t v = sqlite3_column_int64(s, i);
		uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
		do
			*--p = (char)('0' + u % 10);
		while (u /= 10);
		if (v < 0)
			*--p = '-';
		sw_sb_put(b, p, (size_t)(e - p));
	} else if (type == SW_V_BOOL) {
		sw_sb_printf(b, "%s", sqlite3_column_int64(s, i) ? "true" : "false");
	} else if (type == SW_V_TIME) {
		char t[40];
		sw_sb_printf(b, "\"%s\"", sw_time_iso(sqlite3_column_int64(s, i), t, sizeof(t)));
	} else {
		const char *t = (const char *)sqlite3_column_text(s, i);
		json_t *js = json_string(t ? t : "");
		char *enc = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
		if (enc)
			sw_sb_printf(b, "%s", enc);
		else
			b->oom = true;
		free(enc);
		json_decref(js);
	}
}

/* SQLite's order: NULL first, numbers, then text in byte order. */
static int cell_cmp(const sw_summary_cell *a, const sw_summary_cell *b)
{
	bool ta = a->type == SW_V_STRING, tb = b->type == SW_V_STRING;
	if ((a->type == SW_V_NULL) != (b->type == SW_V_NULL))
		return a->type == SW_V_NULL ? -1 : 1;
	if (a->type == SW_V_NULL)
		return 0;
	if (ta != tb)
		return ta ? 1 : -1;
	if (ta)
		return strcmp(a->s, b->s);
	return (a->i > b->i) - (a->i < b->i);
}

static int row_cmp(const sw_summary_row *a, const sw_summary_row *b, int nb)
{
	for (int i = 0; i < nb; i++) {
		int c = cell_cmp(&a->by[i], &b->by[i]);
		if (c)
			return c;
	}
	return 0;
}

/* Stable merge sort (qsort has no context argument in C11). */
static int sort_rows(sw_summary_row *rows, size_t n, int nb)
{
	sw_summary_row *tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return -1;
	for (size_t w = 1; w < n; w *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			size_t i = lo, j = mid, o = lo;
			while (i < mid && j < hi)
				tmp[o++] = row_cmp(&rows[j], &rows[i], nb) < 0 ? rows[j++] : rows[i++];
			while (i < mid)
				tmp[o++] = rows[i++];
			while (j < hi)
				tmp[o++] = rows[j++];
		}
		memcpy(rows, tmp, n * sizeof(*rows));
	}
	free(tmp);
	return 0;
}

void sw_summary_free(sw_summary_row *rows, size_t n)
{
	for (size_t r = 0; rows && r < n; r++) {
		for (size_t i = 0; i < SW_KQL_MAX_BY; i++)
			free(rows[r].by[i].s);
		for (size_t i = 0; i < SW_KQL_MAX_AGGS; i++)
			free(rows[r].agg[i].s);
	}
	free(rows);
}

static sw_err fill(sw_store *st, const sw_summary_spec *sp, plan *p, sw_summary_row **rows_out, size_t *n_out)
{
	sw_summary_row *rows = NULL;
	size_t n = 0, cap = 0;
	int nb = (int)sp->n_by;
	shape sh;
	make_shape(sp, &sh);
	int nk = sh.n_keys;
	int rc = SQLITE_OK;
	/* has_row[k]: set statement k currently holds an unconsumed row. */
	bool has_row[SW_KQL_MAX_AGGS + 1] = { 0 };
	for (size_t k = 1; k < p->n; k++) {
		rc = sqlite3_step(p->st[k]);
		has_row[k] = rc == SQLITE_ROW;
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			goto db_fail;
	}
	sqlite3_stmt *s0 = p->st[0];
	while ((rc = sqlite3_step(s0)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			sw_summary_row *nr = realloc(rows, ncap * sizeof(*rows));
			if (!nr)
				goto oom;
			rows = nr;
			cap = ncap;
		}
		sw_summary_row *row = &rows[n++];
		memset(row, 0, sizeof(*row));
		for (int i = 0; i < nb; i++)
			if (cell_from(s0, i, sw_col_type((sw_col)sp->by[i]), &row->by[i]))
				goto oom;
		int col = nb + nk + 1; /* after by-values, keys and count(*) */
		size_t k = 1;
		for (size_t a = 0; a < sp->n_aggs; a++) {
			sw_summary_cell *c = &row->agg[a];
			int ac = sp->aggs[a].col;
			switch (sp->aggs[a].fn) {
			case SW_AGG_COUNT:
				c->type = SW_V_LONG;
				c->i = sqlite3_column_int64(s0, nb + nk);
				break;
			case SW_AGG_MIN:
			case SW_AGG_MAX:
				if (cell_from(s0, col++, sw_col_type((sw_col)ac), c))
					goto oom;
				break;
			case SW_AGG_MAKE_SET: {
				sqlite3_stmt *sk = p->st[k];
				sw_vtype et = sw_col_type((sw_col)ac);
				size_t limit = sp->aggs[a].set_cap;
				if (!limit || limit > SW_KQL_SET_CAP_DEFAULT)
					limit = SW_KQL_SET_CAP_DEFAULT;
				sw_strbuf b = { 0 };
				sw_sb_printf(&b, "[");
				size_t cnt = 0;
				/* Values beyond the cap are the largest ones: skipped. */
				while (has_row[k] && same_key(s0, nb, sk, 0, nk)) {
					if (cnt < limit)
						json_elem(&b, sk, nk, et == SW_V_ARRAY ? SW_V_STRING : et,
						          cnt == 0);
					cnt++;
					rc = sqlite3_step(sk);
					has_row[k] = rc == SQLITE_ROW;
					if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
						free(b.p);
						goto db_fail;
					}
				}
				sw_sb_printf(&b, "]");
				if (b.oom) {
					free(b.p);
					goto oom;
				}
				c->type = SW_V_ARRAY;
				c->s = b.p;
				c->i = (int64_t)(cnt < limit ? cnt : limit);
				k++;
				break;
			}
			}
		}
	}
	if (rc != SQLITE_DONE)
		goto db_fail;
	/* KQL: with by-keys, no input means no rows; without, one row. Keys
	 * are in interned order; present rows in by-value order. */
	if (n > 1 && sort_rows(rows, n, nb)) {
		sw_summary_free(rows, n);
		set_err(st, "summary: out of memory");
		return SW_ERR_NOMEM;
	}
	*rows_out = rows;
	*n_out = n;
	return SW_OK;
oom:
	sw_summary_free(rows, n);
	set_err(st, "summary: out of memory");
	return SW_ERR_NOMEM;
db_fail:
	sw_summary_free(rows, n);
	return db_err(st, "summary");
}

/* ---- the direct summary ------------------------------------------------------ */

/* The rules' usual summarize (count, and min/max/make_set of Timestamp or
 * ReportId, by DeviceId and DeviceName or by nothing) needs no SQL
 * grouping. For each device that has matches of the rule (found by seeks
 * on matches_group: a skip scan), the window is one contiguous range of
 * matches_group, so only the window's matches are read, once:
 *   min/max(Timestamp)  the range's first and last entries (two seeks)
 *   count()             the range's length (count(*) of the range), or the
 *                       number of values collected below
 *   make_set(ReportId)  the range's ReportIds, appended to a C array by
 *                       sw_collect() (see collect_step)
 * A make_set is ascending and distinct. The range is in Timestamp order and
 * ReportIds are handed out in time order, so they usually arrive ascending;
 * strictly ascending values are distinct and need nothing more. Otherwise
 * (records stored out of time order, equal values, several devices in one
 * group) they are radix-sorted and deduplicated here. Within one
 * (rule, device) group ReportIds are distinct anyway: a device pair has
 * one DeviceId, records are UNIQUE(DeviceId, ReportId), and a record has
 * at most one match per rule (PRIMARY KEY(rule, record), put_match is
 * idempotent); the check costs one comparison a value. Every statement
 * runs in one read transaction, so the groups agree with each other. Other
 * shapes go to the generic SQL below. */

enum { V_TS, V_RID, V__COUNT }; /* the value columns this path reads */

static int value_of(int col) { return col == SW_COL_TIMESTAMP ? V_TS : col == SW_COL_REPORT_ID ? V_RID : -1; }

/* One output group being accumulated. */
typedef struct group_acc {
	int64_t count;
	int64_t min[V__COUNT], max[V__COUNT]; /* valid when count > 0 */
	bool want[V__COUNT];                  /* a make_set reads this column */
	i64vec set[V__COUNT];
	bool sorted[V__COUNT]; /* set[] is ascending and distinct */
} group_acc;

static bool direct_shape(const sw_summary_spec *sp, bool *rows)
{
	bool id = false, name = false;
	for (size_t i = 0; i < sp->n_by; i++) {
		id |= sp->by[i] == SW_COL_DEVICE_ID;
		name |= sp->by[i] == SW_COL_DEVICE_NAME;
		if (!is_device_col(sp->by[i]))
			return false;
	}
	if (sp->n_by && !(id && name))
		return false;
	*rows = false;
	for (size_t i = 0; i < sp->n_aggs; i++) {
		sw_agg_fn fn = sp->aggs[i].fn;
		if (fn == SW_AGG_COUNT)
			continue;
		if ((fn != SW_AGG_MIN && fn != SW_AGG_MAX && fn != SW_AGG_MAKE_SET) ||
		    value_of(sp->aggs[i].col) < 0)
			return false; /* includes bad specs: the generic path explains them */
		/* min/max(ReportId) are not at the ends of the range */
		*rows |= fn == SW_AGG_MAKE_SET || value_of(sp->aggs[i].col) == V_RID;
	}
	return true;
}

/* Sort v[0..n) ascending: LSD radix on the sign-flipped bits, 8 bits a
 * pass, skipping passes where every key has the same byte. */
static bool radix_sort(int64_t *v, size_t n)
{
	uint64_t *a = (uint64_t *)(void *)v, *b = malloc(n * sizeof(*b));
	if (!b)
		return false;
	for (size_t i = 0; i < n; i++)
		a[i] ^= UINT64_C(1) << 63;
	uint64_t *src = a, *dst = b;
	for (int shift = 0; shift < 64; shift += 8) {
		size_t cnt[256] = { 0 };
		for (size_t i = 0; i < n; i++)
			cnt[(src[i] >> shift) & 0xff]++;
		if (cnt[(src[0] >> shift) & 0xff] == n)
			continue;
		size_t pos = 0;
		for (int d = 0; d < 256; d++) {
			size_t c = cnt[d];
			cnt[d] = pos;
			pos += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[cnt[(src[i] >> shift) & 0xff]++] = src[i];
		uint64_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof(*a));
	for (size_t i = 0; i < n; i++)
		a[i] ^= UINT64_C(1) << 63;
	free(b);
	return true;
}

/* Make a set ascending and distinct; usually it already is. */
static bool set_normalize(i64vec *a)
{
	size_t n = a->n, i = 1;
	int64_t *v = a->v;
	while (i < n && v[i - 1] < v[i])
		i++;
	if (i >= n)
		return true;
	if (!radix_sort(v, n))
		return false;
	size_t o = 1;
	for (i = 1; i < n; i++)
		if (v[i] != v[o - 1])
			v[o++] = v[i];
	a->n = o;
	return true;
}

static const char DIGITS2[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";

static size_t u64_len(uint64_t u)
{
	size_t k = 1;
	while (u >= 10000) {
		u /= 10000;
		k += 4;
	}
	return k + (u >= 10) + (u >= 100) + (u >= 1000);
}

/* Write u's digits ending at end (exclusive). */
static void u64_put(char *end, uint64_t u)
{
	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;
		u /= 100;
		*--end = DIGITS2[d + 1];
		*--end = DIGITS2[d];
	}
	if (u >= 10) {
		*--end = DIGITS2[u * 2 + 1];
		*--end = DIGITS2[u * 2];
	} else {
		*--end = (char)('0' + u);
	}
}

/* A JSON array of n longs, sized exactly first (a set can hold a million
 * ReportIds). */
static char *json_longs(const int64_t *v, size_t n)
{
	size_t len = 2 + (n ? n - 1 : 0);
	for (size_t i = 0; i < n; i++)
		len += (v[i] < 0) + u64_len(v[i] < 0 ? 0 - (uint64_t)v[i] : (uint64_t)v[i]);
	char *out = malloc(len + 1), *p = out;
	if (!out)
		return NULL;
	*p++ = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		uint64_t u = v[i] < 0 ? 0 - (uint64_t)v[i] : (uint64_t)v[i];
		if (v[i] < 0)
			*p++ = '-';
		p += u64_len(u);
		u64_put(p, u);
	}
	*p++ = ']';
	*p = 0;
	return out;
}

/* A JSON array of n times as ISO 8601 strings. */
static char *json_times(const int64_t *v, size_t n)
{
	sw_strbuf b = { 0 };
	sw_sb_printf(&b, "[");
	for (size_t i = 0; i < n; i++) {
		char t[40];
		sw_sb_printf(&b, "%s\"%s\"", i ? "," : "", sw_time_iso(v[i], t, sizeof(t)));
	}
	sw_sb_printf(&b, "]");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The one integer statement q gives for device dev's window; *rc is
 * SQLITE_ROW then, SQLITE_DONE when there is no row, else an error. */
static int64_t window_int(sqlite3_stmt *q, const sw_summary_spec *sp, int64_t rule, int64_t dev, int *rc)
{
	sqlite3_bind_int64(q, 1, rule);
	sqlite3_bind_int64(q, 2, dev);
	sqlite3_bind_int64(q, 3, sp->from_ms);
	sqlite3_bind_int64(q, 4, sp->to_ms);
	*rc = sqlite3_step(q);
	int64_t v = *rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	return v;
}

/* Append device dev's window's values to v through statement q (an
 * sw_collect() aggregate). */
static sw_err collect(sw_store *st, int q, const sw_summary_spec *sp, int64_t rule, int64_t dev, i64vec *v,
                      bool *sorted)
{
	sqlite3_stmt *s = st->q[q];
	collector c = { v, *sorted };
	sqlite3_bind_int64(s, 1, rule);
	sqlite3_bind_int64(s, 2, dev);
	sqlite3_bind_int64(s, 3, sp->from_ms);
	sqlite3_bind_int64(s, 4, sp->to_ms);
	st->collect = &c;
	int rc = sqlite3_step(s);
	st->collect = NULL;
	*sorted = c.sorted;
	sw_err e = rc == SQLITE_ROW ? SW_OK : db_err(st, "summary: collect");
	sqlite3_reset(s);
	return e;
}

/* Add device dev's matches in the window to g. min/max(Timestamp) come
 * from the range's ends; with rows false the count is the range's count,
 * with rows true its ReportIds are collected (count, min/max(ReportId),
 * make_set), and its Timestamps too for a make_set of them. */
static sw_err group_add(sw_store *st, const sw_summary_spec *sp, int64_t rule, int64_t dev, bool rows,
                        group_acc *g)
{
	int rc;
	int64_t mn = window_int(st->q[Q_GROUP_FIRST], sp, rule, dev, &rc);
	if (rc == SQLITE_DONE)
		return SW_OK; /* nothing in the window */
	if (rc != SQLITE_ROW)
		return db_err(st, "summary: first");
	int64_t mx = window_int(st->q[Q_GROUP_LAST], sp, rule, dev, &rc);
	if (rc != SQLITE_ROW)
		return db_err(st, "summary: last");
	int64_t cnt = 0;
	if (!rows) {
		cnt = window_int(st->q[Q_GROUP_COUNT], sp, rule, dev, &rc);
		if (rc != SQLITE_ROW)
			return db_err(st, "summary: count");
	} else {
		/* ReportIds always (they give the count and min/max), Timestamps
		 * for a make_set of them. */
		i64vec *ids = &g->set[V_RID];
		size_t from = ids->n;
		sw_err e = collect(st, Q_GROUP_IDS, sp, rule, dev, ids, &g->sorted[V_RID]);
		if (!e && g->want[V_TS])
			e = collect(st, Q_GROUP_TIMES, sp, rule, dev, &g->set[V_TS], &g->sorted[V_TS]);
		if (e)
			return e;
		cnt = (int64_t)(ids->n - from);
		for (size_t i = from; i < ids->n; i++) {
			int64_t v = ids->v[i];
			if ((!g->count && i == from) || v < g->min[V_RID])
				g->min[V_RID] = v;
			if ((!g->count && i == from) || v > g->max[V_RID])
				g->max[V_RID] = v;
		}
	}
	if (!g->count || mn < g->min[V_TS])
		g->min[V_TS] = mn;
	if (!g->count || mx > g->max[V_TS])
		g->max[V_TS] = mx;
	g->count += cnt;
	return SW_OK;
}

/* Turn g into row (by-cells from the device pair id/name when n_by). */
static sw_err group_row(const sw_summary_spec *sp, group_acc *g, const char *id, const char *name,
                        sw_summary_row *row)
{
	memset(row, 0, sizeof(*row));
	for (size_t i = 0; i < sp->n_by; i++) {
		row->by[i].type = SW_V_STRING;
		if (!(row->by[i].s = strdup(sp->by[i] == SW_COL_DEVICE_ID ? id : name)))
			return SW_ERR_NOMEM;
	}
	for (size_t a = 0; a < sp->n_aggs; a++) {
		sw_summary_cell *c = &row->agg[a];
		int k = value_of(sp->aggs[a].col);
		sw_vtype t = k == V_TS ? SW_V_TIME : SW_V_LONG;
		switch (sp->aggs[a].fn) {
		case SW_AGG_COUNT:
			c->type = SW_V_LONG;
			c->i = g->count;
			break;
		case SW_AGG_MIN:
		case SW_AGG_MAX:
			if (g->count) {
				c->type = t;
				c->i = sp->aggs[a].fn == SW_AGG_MIN ? g->min[k] : g->max[k];
			}
			break;
		case SW_AGG_MAKE_SET: {
			i64vec *set = &g->set[k];
			if (!g->sorted[k]) {
				if (!set_normalize(set))
					return SW_ERR_NOMEM;
				g->sorted[k] = true;
			}
			/* Values beyond the cap are the largest ones: skipped. */
			size_t limit = sp->aggs[a].set_cap;
			if (!limit || limit > SW_KQL_SET_CAP_DEFAULT)
				limit = SW_KQL_SET_CAP_DEFAULT;
			size_t m = set->n < limit ? set->n : limit;
			c->type = SW_V_ARRAY;
			c->i = (int64_t)m;
			if (!(c->s = t == SW_V_TIME ? json_times(set->v, m) : json_longs(set->v, m)))
				return SW_ERR_NOMEM;
			break;
		}
		}
	}
	return SW_OK;
}

static void group_reset(group_acc *g)
{
	g->count = 0;
	for (int k = 0; k < V__COUNT; k++) {
		g->set[k].n = 0;
		g->sorted[k] = true;
	}
}

static sw_err summary_direct(sw_store *st, const sw_summary_spec *sp, int64_t rule, bool rows_needed,
                             sw_summary_row **rows_out, size_t *n_out)
{
	sw_summary_row *rows = NULL;
	size_t n = 0, cap = 0;
	group_acc g;
	memset(&g, 0, sizeof(g));
	for (size_t a = 0; a < sp->n_aggs; a++)
		if (sp->aggs[a].fn == SW_AGG_MAKE_SET)
			g.want[value_of(sp->aggs[a].col)] = true;
	group_reset(&g);
	bool by = sp->n_by > 0;
	sw_err e = SW_OK;
	/* One snapshot for every statement below, unless the caller's
	 * transaction already is one. */
	bool own = sqlite3_get_autocommit(st->db) != 0;
	if (own && (e = run(st, st->q[Q_READ_BEGIN], "summary: begin")))
		return e;
	sqlite3_stmt *next = st->q[Q_NEXT_GROUP], *dq = st->q[Q_DEV_GET];
	int64_t dev = INT64_MIN;
	int rc = SQLITE_OK;
	while (!e) {
		sqlite3_bind_int64(next, 1, rule);
		sqlite3_bind_int64(next, 2, dev);
		rc = sqlite3_step(next);
		if (rc == SQLITE_ROW)
			dev = sqlite3_column_int64(next, 0);
		sqlite3_reset(next);
		if (rc != SQLITE_ROW) {
			if (rc != SQLITE_DONE)
				e = db_err(st, "summary: next device");
			break;
		}
		if ((e = group_add(st, sp, rule, dev, rows_needed, &g)) || !by || !g.count)
			continue;
		/* A group of one device pair, complete: make its row. */
		sqlite3_bind_int64(dq, 1, dev);
		rc = sqlite3_step(dq);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(dq);
			e = rc == SQLITE_DONE ? SW_ERR_STORE : db_err(st, "summary: device");
			if (rc == SQLITE_DONE)
				set_err(st, "summary: matches name a missing device %lld", (long long)dev);
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			sw_summary_row *nr = realloc(rows, ncap * sizeof(*rows));
			if (!nr) {
				sqlite3_reset(dq);
				e = SW_ERR_NOMEM;
				break;
			}
			rows = nr;
			cap = ncap;
		}
		const char *id = (const char *)sqlite3_column_text(dq, 0);
		const char *name = (const char *)sqlite3_column_text(dq, 1);
		e = group_row(sp, &g, id ? id : "", name ? name : "", &rows[n++]);
		sqlite3_reset(dq);
		group_reset(&g);
	}
	/* KQL: without by-keys, one row even for no input. */
	if (!e && !by) {
		rows = calloc(1, sizeof(*rows));
		if (!rows)
			e = SW_ERR_NOMEM;
		else
			e = group_row(sp, &g, "", "", &rows[n++]);
	}
	for (int k = 0; k < V__COUNT; k++)
		free(g.set[k].v);
	if (own) {
		if (e)
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		else
			e = run(st, st->q[Q_COMMIT], "summary: end");
	}
	/* Devices are in interned order; rows go in by-value order. */
	if (!e && n > 1 && sort_rows(rows, n, (int)sp->n_by))
		e = SW_ERR_NOMEM;
	if (e) {
		if (e == SW_ERR_NOMEM)
			set_err(st, "summary: out of memory");
		sw_summary_free(rows, n);
		return e;
	}
	*rows_out = rows;
	*n_out = n;
	return SW_OK;
}

sw_err sw_store_summary(sw_store *st, const sw_summary_spec *sp, sw_summary_row **rows, size_t *n)
{
	*rows = NULL;
	*n = 0;
	if (!sp->rule_id || sp->n_aggs > SW_KQL_MAX_AGGS || sp->n_by > SW_KQL_MAX_BY) {
		set_err(st, "summary: bad spec");
		return SW_ERR_USAGE;
	}
	sw_err e;
	int64_t key;
	bool rows_needed;
	if (direct_shape(sp, &rows_needed)) {
		if ((e = rule_key(st, sp->rule_id, false, &key)))
			return e;
		return summary_direct(st, sp, key, rows_needed, rows, n);
	}
	plan *p = get_plan(st, sp, &e);
	if (!p)
		return e;
	if ((e = rule_key(st, sp->rule_id, false, &key)))
		return e;
	/* An unknown rule has no matches; key 0 is never a rowid, so the same
	 * statements give KQL's answer for empty input. */
	for (size_t i = 0; i < p->n; i++) {
		sqlite3_bind_int64(p->st[i], 1, key);
		sqlite3_bind_int64(p->st[i], 2, sp->from_ms);
		sqlite3_bind_int64(p->st[i], 3, sp->to_ms);
	}
	e = fill(st, sp, p, rows, n);
	for (size_t i = 0; i < p->n; i++)
		sqlite3_reset(p->st[i]);
	return e;
}

/* ---- pruning and the file-state cache ---------------------------------------- */

sw_err sw_store_prune(sw_store *st, int64_t older_than_ms)
{
	bool own = sqlite3_get_autocommit(st->db) != 0;
	sw_err e = own ? sw_store_begin(st) : SW_OK;
	if (e)
		return e;
	/* Deleting a record cascades to its matches; the second statement
	 * only catches matches whose record is gone some other way. */
	sqlite3_bind_int64(st->q[Q_PRUNE_RECORDS], 1, older_than_ms);
	sqlite3_bind_int64(st->q[Q_PRUNE_MATCHES], 1, older_than_ms);
	e = run(st, st->q[Q_PRUNE_RECORDS], "prune records");
	if (!e)
		e = run(st, st->q[Q_PRUNE_MATCHES], "prune matches");
	if (own) {
		if (e)
			sw_store_rollback(st);
		else
			e = sw_store_commit(st);
	}
	return e;
}

/* SQLite integers are signed; keep the 64-bit pattern of a file id. */
static int64_t u2i(uint64_t u)
{
	int64_t i;
	memcpy(&i, &u, sizeof(i));
	return i;
}

sw_err sw_store_file_state_get(sw_store *st, sw_file_state *fs, bool *found)
{
	sqlite3_stmt *s = st->q[Q_FS_GET];
	*found = false;
	sqlite3_bind_int64(s, 1, u2i(fs->device));
	sqlite3_bind_int64(s, 2, u2i(fs->file_id));
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == fs->size &&
	    sqlite3_column_int64(s, 1) == fs->mtime_ns && sqlite3_column_int64(s, 2) == fs->ctime_ns) {
		const char *h = (const char *)sqlite3_column_text(s, 3);
		snprintf(fs->result_hash, sizeof(fs->result_hash), "%s", h ? h : "");
		*found = true;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SW_OK : db_err(st, "file state");
}

sw_err sw_store_file_state_put(sw_store *st, const sw_file_state *fs)
{
	sqlite3_stmt *s = st->q[Q_FS_PUT];
	sqlite3_bind_int64(s, 1, u2i(fs->device));
	sqlite3_bind_int64(s, 2, u2i(fs->file_id));
	sqlite3_bind_int64(s, 3, fs->size);
	sqlite3_bind_int64(s, 4, fs->mtime_ns);
	sqlite3_bind_int64(s, 5, fs->ctime_ns);
	sqlite3_bind_text(s, 6, fs->result_hash, -1, SQLITE_STATIC);
	return run(st, s, "file state");
}

/* ---- the outbox ------------------------------------------------------------- */

/* What a row costs on disk beyond its payload and key, roughly: the
 * record header, the seq, kind, bytes and created_ms, and two index
 * entries carrying output_id and seq. */
#define OUTBOX_ROW_OVERHEAD 48

/* Run f inside the caller's transaction, or in one of its own. */
#define OWN_TX_BEGIN(st, e)                                                                                  \
	bool own_tx_ = sqlite3_get_autocommit((st)->db) != 0;                                                \
	if (own_tx_ && ((e) = sw_store_begin(st)) != SW_OK)                                                  \
		return (e);
#define OWN_TX_END(st, e)                                                                                    \
	if (own_tx_) {                                                                                       \
		if (e)                                                                                       \
			(void)run(st, st->q[Q_ROLLBACK], "rollback");                                        \
		else                                                                                         \
			(e) = sw_store_commit(st);                                                           \
	}

static sw_err state_add(sw_store *st, const char *output_id, int64_t items, int64_t bytes, int64_t dropped)
{
	sqlite3_stmt *s = st->q[Q_OB_STATE_ADD];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, items);
	sqlite3_bind_int64(s, 3, bytes);
	sqlite3_bind_int64(s, 4, dropped);
	sw_err e = run(st, s, "outbox: counters");
	sqlite3_clear_bindings(s);
	return e;
}

sw_err sw_store_outbox_put(sw_store *st, const char *output_id, sw_outbox_kind kind, const char *idem_key,
                           const char *payload, int64_t created_ms)
{
	if (!output_id || !*output_id || !idem_key || !payload ||
	    (kind != SW_OUTBOX_RECORD && kind != SW_OUTBOX_SUMMARY)) {
		set_err(st, "outbox put: bad argument");
		return SW_ERR_USAGE;
	}
	int64_t bytes =
	        (int64_t)(strlen(payload) + strlen(idem_key) + strlen(output_id)) + OUTBOX_ROW_OVERHEAD;
	sw_err e;
	OWN_TX_BEGIN(st, e);
	sqlite3_stmt *s = st->q[Q_OB_PUT];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)kind);
	sqlite3_bind_text(s, 3, idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, payload, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, bytes);
	sqlite3_bind_int64(s, 6, created_ms);
	e = run(st, s, "outbox put");
	sqlite3_clear_bindings(s);
	if (!e)
		e = state_add(st, output_id, 1, bytes, 0);
	OWN_TX_END(st, e);
	return e;
}

void sw_outbox_items_free(sw_outbox_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		free(items[i].idem_key);
		free(items[i].payload);
	}
	free(items);
}

sw_err sw_store_outbox_peek(sw_store *st, const char *output_id, size_t max_items, size_t max_bytes,
                            sw_outbox_item **items_out, size_t *n_out)
{
	*items_out = NULL;
	*n_out = 0;
	if (!output_id || !max_items) {
		set_err(st, "outbox peek: bad argument");
		return SW_ERR_USAGE;
	}
	sqlite3_stmt *s = st->q[Q_OB_PEEK];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, max_items > INT64_MAX ? INT64_MAX : (int64_t)max_items);
	sw_outbox_item *items = NULL;
	size_t n = 0, cap = 0, total = 0;
	sw_err e = SW_OK;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 2);
		const char *pl = (const char *)sqlite3_column_text(s, 3);
		size_t len = (size_t)sqlite3_column_bytes(s, 3);
		if (n && total + len > max_bytes)
			break;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			sw_outbox_item *ni = realloc(items, nc * sizeof(*items));
			if (!ni) {
				e = SW_ERR_NOMEM;
				break;
			}
			items = ni;
			cap = nc;
		}
		sw_outbox_item *it = &items[n];
		it->seq = sqlite3_column_int64(s, 0);
		it->kind = sqlite3_column_int(s, 1) ? SW_OUTBOX_SUMMARY : SW_OUTBOX_RECORD;
		it->idem_key = strdup(key ? key : "");
		it->payload = strdup(pl ? pl : "");
		it->bytes = sqlite3_column_int64(s, 4);
		it->created_ms = sqlite3_column_int64(s, 5);
		if (!it->idem_key || !it->payload) {
			free(it->idem_key);
			free(it->payload);
			e = SW_ERR_NOMEM;
			break;
		}
		n++;
		total += len;
	}
	if (!e && rc != SQLITE_ROW && rc != SQLITE_DONE)
		e = db_err(st, "outbox peek");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (e) {
		if (e == SW_ERR_NOMEM)
			set_err(st, "outbox peek: out of memory");
		sw_outbox_items_free(items, n);
		return e;
	}
	*items_out = items;
	*n_out = n;
	return SW_OK;
}

/* count and bytes of what statement q (output ?1, seq <= ?2) covers */
static sw_err span(sw_store *st, int q, const char *output_id, int64_t upto, int64_t *count, int64_t *bytes)
{
	sqlite3_stmt *s = st->q[q];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, upto);
	int rc = sqlite3_step(s);
	*count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	*bytes = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW ? SW_OK : db_err(st, "outbox span");
}

static sw_err delete_upto(sw_store *st, int q, const char *output_id, int64_t upto)
{
	sqlite3_stmt *s = st->q[q];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, upto);
	sw_err e = run(st, s, "outbox delete");
	sqlite3_clear_bindings(s);
	return e;
}

sw_err sw_store_outbox_ack(sw_store *st, const char *output_id, int64_t upto_seq)
{
	if (!output_id) {
		set_err(st, "outbox ack: bad argument");
		return SW_ERR_USAGE;
	}
	sw_err e;
	int64_t count = 0, bytes = 0;
	OWN_TX_BEGIN(st, e);
	e = span(st, Q_OB_SPAN, output_id, upto_seq, &count, &bytes);
	if (!e && count)
		e = delete_upto(st, Q_OB_DELETE, output_id, upto_seq);
	if (!e && count)
		e = state_add(st, output_id, -count, -bytes, 0);
	OWN_TX_END(st, e);
	return e;
}

sw_err sw_store_outbox_stats_get(sw_store *st, const char *output_id, sw_outbox_stats *out)
{
	memset(out, 0, sizeof(*out));
	sqlite3_stmt *s = st->q[Q_OB_STATE_GET];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->items = sqlite3_column_int64(s, 0);
		out->bytes = sqlite3_column_int64(s, 1);
		out->dropped = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SW_OK : db_err(st, "outbox stats");
}

sw_err sw_store_outbox_enforce_cap(sw_store *st, const char *output_id, int64_t max_bytes, int64_t *dropped)
{
	if (dropped)
		*dropped = 0;
	sw_outbox_stats os;
	sw_err e = sw_store_outbox_stats_get(st, output_id, &os);
	if (e || os.bytes <= max_bytes)
		return e;
	/* Over the cap: drop the oldest records down to 90% of it, so that a
	 * full outbox does not drop one record per new one, each in its own
	 * scan transaction. */
	int64_t excess = os.bytes - (max_bytes - max_bytes / 10);
	OWN_TX_BEGIN(st, e);
	sqlite3_stmt *s = st->q[Q_OB_REC_SCAN];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	int64_t sum = 0, last = -1;
	int rc = SQLITE_DONE;
	while (sum < excess && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		last = sqlite3_column_int64(s, 0);
		sum += sqlite3_column_int64(s, 1);
	}
	if (sum < excess && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = db_err(st, "outbox cap");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	int64_t count = 0, bytes = 0;
	if (!e && last >= 0)
		e = span(st, Q_OB_REC_SPAN, output_id, last, &count, &bytes);
	if (!e && count)
		e = delete_upto(st, Q_OB_REC_DELETE, output_id, last);
	if (!e && count)
		e = state_add(st, output_id, -count, -bytes, count);
	OWN_TX_END(st, e);
	if (!e && dropped)
		*dropped = count;
	return e;
}

sw_err sw_store_outbox_retain(sw_store *st, const char *const *ids, size_t n, int64_t *removed)
{
	if (removed)
		*removed = 0;
	sqlite3_stmt *list = NULL;
	sw_err e;
	OWN_TX_BEGIN(st, e);
	if (sqlite3_prepare_v2(st->db, "SELECT output_id, items FROM outbox_state", -1, &list, NULL) !=
	    SQLITE_OK)
		e = db_err(st, "outbox retain");
	char **gone = NULL;
	size_t ngone = 0;
	while (!e && sqlite3_step(list) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(list, 0);
		bool keep = false;
		for (size_t i = 0; id && i < n && !keep; i++)
			keep = strcmp(ids[i], id) == 0;
		if (keep || !id)
			continue;
		char **ng = realloc(gone, (ngone + 1) * sizeof(*gone));
		if (!ng || !(ng[ngone] = strdup(id))) {
			gone = ng ? ng : gone;
			e = SW_ERR_NOMEM;
			break;
		}
		gone = ng;
		ngone++;
		if (removed)
			*removed += sqlite3_column_int64(list, 1);
	}
	sqlite3_finalize(list);
	for (size_t i = 0; i < ngone; i++) {
		sqlite3_stmt *d = NULL;
		if (!e && sqlite3_prepare_v2(st->db, "DELETE FROM outbox WHERE output_id = ?1; ", -1, &d,
		                             NULL) == SQLITE_OK) {
			sqlite3_bind_text(d, 1, gone[i], -1, SQLITE_STATIC);
			e = run(st, d, "outbox retain");
		}
		sqlite3_finalize(d);
		d = NULL;
		if (!e && sqlite3_prepare_v2(st->db, "DELETE FROM outbox_state WHERE output_id = ?1", -1, &d,
		                             NULL) == SQLITE_OK) {
			sqlite3_bind_text(d, 1, gone[i], -1, SQLITE_STATIC);
			e = run(st, d, "outbox retain");
		}
		sqlite3_finalize(d);
		free(gone[i]);
	}
	free(gone);
	OWN_TX_END(st, e);
	return e;
}

sw_err sw_store_summary_state_get(sw_store *st, const char *rule_id, const char *device_id, int64_t *version,
                                  char **json)
{
	*version = 0;
	*json = NULL;
	sqlite3_stmt *s = st->q[Q_SUM_GET];
	sqlite3_bind_text(s, 1, rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, device_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sw_err e = SW_OK;
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int64(s, 0);
		const char *j = (const char *)sqlite3_column_text(s, 1);
		if (!(*json = strdup(j ? j : "")))
			e = SW_ERR_NOMEM;
	} else if (rc != SQLITE_DONE) {
		e = db_err(st, "summary state");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return e;
}

sw_err sw_store_summary_state_put(sw_store *st, const char *rule_id, const char *device_id, int64_t version,
                                  const char *json)
{
	sqlite3_stmt *s = st->q[Q_SUM_PUT];
	sqlite3_bind_text(s, 1, rule_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, version);
	sqlite3_bind_text(s, 4, json, -1, SQLITE_STATIC);
	sw_err e = run(st, s, "summary state");
	sqlite3_clear_bindings(s);
	return e;
}

sw_err sw_store_outbox_supersede(sw_store *st, const char *output_id, const char *key_prefix,
                                 int64_t *removed)
{
	if (removed)
		*removed = 0;
	if (!output_id || !key_prefix || !*key_prefix) {
		set_err(st, "outbox supersede: bad argument");
		return SW_ERR_USAGE;
	}
	sw_err e;
	OWN_TX_BEGIN(st, e);
	sqlite3_stmt *s = st->q[Q_OB_SUP_SPAN];
	sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key_prefix, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	int64_t count = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	int64_t bytes = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		e = db_err(st, "outbox supersede");
	if (!e && count) {
		s = st->q[Q_OB_SUP_DELETE];
		sqlite3_bind_text(s, 1, output_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, key_prefix, -1, SQLITE_STATIC);
		e = run(st, s, "outbox supersede");
		sqlite3_clear_bindings(s);
	}
	if (!e && count)
		e = state_add(st, output_id, -count, -bytes, 0);
	OWN_TX_END(st, e);
	if (!e && removed)
		*removed = count;
	return e;
}
