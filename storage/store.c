/* The replicated state machine: SQLite changed only by applying commands.
 * This file holds the SQL, the apply dispatch and the revision; which
 * proxies a change reaches (epochs, listener clashes) is decided by
 * storage/distribution.c through the rp_dist_io this file implements, and
 * what apply checks of a value is the contract in storage/validate.h.
 *
 * Design notes
 *
 * 1. The database lives in memory. The durable record is the raft log plus
 *    raft snapshots (serialized copies of this database); at start the node
 *    restores the last snapshot and re-applies the log after it.
 * 2. rp_store_apply() is deterministic: its result depends only on the
 *    database and the command bytes — no clock, no randomness, no state
 *    outside SQLite. Every node therefore holds the same rows.
 * 3. One command = one SQLite transaction = at most one new revision. A
 *    command rejected by a precondition or a reference check is rolled back
 *    and leaves the revision unchanged.
 * 4. revision and compacted live in the meta table so that snapshots carry
 *    them; the struct caches them.
 * 5. The cluster id (128 bits, meta keys cluster_id_hi/lo/set) is written
 *    once by SET_CLUSTER_ID, which is a no-op rejection when one is set and
 *    makes no revision: it is identity, not configuration. Every node and
 *    every snapshot therefore carries the id the first leader proposed.
 * 6. The revision never decreases: it grows by exactly one per command that
 *    succeeds (SET_CLUSTER_ID aside), and every version, change and epoch
 *    row carries a revision no higher than it. Apply asserts this for what
 *    it writes; rp_store_restore() refuses a database that breaks it.
 * 7. A rejection is a user-level status with a message naming the command
 *    ("apply delete clusters/c: still referenced by routes/x"); a failure
 *    of this node (SQLite, memory, a stored value that no longer decodes)
 *    is returned as an error with the same kind of message, logged, and
 *    stops the node: it must never become a rejection, which every node
 *    would not share.
 *
 * 8. API tokens (tokens table) hold a SHA-256 of the secret, never the
 *    secret. Creating one sets meta tokens_enabled for good: the API of
 *    every member then requires tokens, even once every token is revoked.
 *    TOKEN_BOOTSTRAP creates only while tokens_enabled is not set; the
 *    last admin token cannot be revoked.
 * 9. Every revision gets an audit row (who, from where, when: what the
 *    proposer put into the command, so apply stays deterministic), trimmed
 *    with the change history. Token changes are change rows of kind
 *    RP_KIND_TOKENS, reported by rp_store_history() only, never to
 *    watches or the change callback.
 *
 * 10. Formats (docs/upgrades.md). A log entry this release cannot decode
 *    because a newer release wrote it (another log format, an unknown
 *    command type, op type, condition or field: storage/codec.h) is
 *    RP_ERR_NEWER_FORMAT, and the node stops (raft/fsm.c): a rejection here
 *    while the newer members apply it would fork the state. Only an entry
 *    malformed for every release (RP_ERR_CORRUPT) is rejected. A database
 *    carries meta `format` (RP_FORMAT_SNAPSHOT; absent in the previous
 *    release's, which is format 1); rp_store_restore() refuses a higher
 *    one with RP_ERR_NEWER_FORMAT before it changes anything in it.
 * 11. Point-in-time reads. A change row of a mesh item or kv key also keeps
 *    the value the put wrote and prev, the item's version before the
 *    change (0: absent); token and member rows keep neither. The value at
 *    revision N >= compacted is the last change <= N (a delete: absent);
 *    without one, the current value if its version <= N; else the first
 *    change after N says: prev 0, absent; otherwise compacted. The columns
 *    are nullable additions, so the format stays 1: the previous release
 *    restores our snapshots and writes NULLs, which read as compacted.
 * 12. Retention (SET_HISTORY, meta history_revisions / history_max_age_ms,
 *    absent: 10,000 and none). Each revision compacts to the highest of:
 *    the last compacted (it never decreases), revision - revisions, and
 *    the last revision whose audit time is below this command's time_ms
 *    minus the age (at most 1,000 audit rows looked at per apply; never
 *    the current revision). Only the entry's own time is read, never a
 *    clock, so every member compacts at the same revision.
 *
 * Schema: items(kind, name, value, version), refs(kind, name -> ref_kind,
 * ref_name) for routes, changes(rev, seq, kind, name, op, version) for
 * watches, members(id, raft, http, role), meta(key, value),
 * epochs(kind, name, rev), tokens(name, role, hash, created, created_by),
 * audit(rev, time, actor, address). */
#include "store.h"

#include <assert.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "distribution.h"
#include "raftplane.pb-c.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "raftplane/log.h"
#include "raftplane/version.h"
#include "wire.h"

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_ITEM_VERSION,
	ST_ITEM_GET,
	ST_ITEM_PUT,
	ST_ITEM_DEL,
	ST_ITEM_LIST,
	ST_REFS_DEL,
	ST_REFS_PUT,
	ST_REFS_USER,
	ST_CHANGE_PUT,
	ST_CHANGE_TRIM,
	ST_CHANGE_LIST,
	ST_META_PUT,
	ST_META_GET,
	ST_MEMBER_PUT,
	ST_MEMBER_DEL,
	ST_MEMBER_COUNT,
	ST_MEMBER_LIST,
	ST_MEMBER_GET,
	ST_LISTENER_ALL,
	ST_EPOCH_BUMP,
	ST_EPOCH_LIST,
	ST_REF_OF_KIND,
	ST_TOKEN_GET,
	ST_TOKEN_BY_HASH,
	ST_TOKEN_PUT,
	ST_TOKEN_DEL,
	ST_TOKEN_LIST,
	ST_TOKEN_ADMINS,
	ST_AUDIT_PUT,
	ST_AUDIT_TRIM,
	ST_AUDIT_SCAN,
	ST_HISTORY_DESC,
	ST_HISTORY_ASC,
	ST_CHANGE_OF_REV,
	ST_AT_LAST,
	ST_AT_FIRST,
	ST__COUNT
};

/* The audit history: revisions of the change rows (older ones may have no
 * audit row), filtered by actor (?3), kind (?4, -1 any) and name (?5). */
#define HISTORY_SQL(order)                                                                \
	"SELECT r.rev, ifnull(a.time,0), ifnull(a.actor,''), ifnull(a.address,'') FROM "  \
	"(SELECT DISTINCT rev FROM changes WHERE rev>=?1 AND rev<=?2) r "                 \
	"LEFT JOIN audit a ON a.rev=r.rev "                                               \
	"WHERE (?3 IS NULL OR ifnull(a.actor,'')=?3) AND (?4<0 AND ?5 IS NULL OR EXISTS(" \
	"SELECT 1 FROM changes c WHERE c.rev=r.rev AND (?4<0 OR c.kind=?4) AND "          \
	"(?5 IS NULL OR c.name=?5))) ORDER BY r.rev " order " LIMIT ?6"

static const char *const sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_ITEM_VERSION] = "SELECT version FROM items WHERE kind=?1 AND name=?2",
	[ST_ITEM_GET] = "SELECT value, version FROM items WHERE kind=?1 AND name=?2",
	[ST_ITEM_PUT] = "INSERT INTO items(kind,name,value,version) VALUES(?1,?2,?3,?4) "
			"ON CONFLICT(kind,name) DO UPDATE SET value=excluded.value, "
			"version=excluded.version",
	[ST_ITEM_DEL] = "DELETE FROM items WHERE kind=?1 AND name=?2",
	[ST_ITEM_LIST] = "SELECT name, value, version FROM items WHERE kind=?1 AND name>=?2 "
			 "ORDER BY name",
	[ST_REFS_DEL] = "DELETE FROM refs WHERE kind=?1 AND name=?2",
	[ST_REFS_PUT] =
		"INSERT OR IGNORE INTO refs(kind,name,ref_kind,ref_name) VALUES(?1,?2,?3,?4)",
	[ST_REFS_USER] = "SELECT kind, name FROM refs WHERE ref_kind=?1 AND ref_name=?2 "
			 "ORDER BY kind, name LIMIT 1",
	[ST_CHANGE_PUT] = "INSERT INTO changes(rev,seq,kind,name,op,version,value,prev) "
			  "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
	[ST_CHANGE_TRIM] = "DELETE FROM changes WHERE rev<=?1",
	[ST_CHANGE_LIST] = "SELECT rev, kind, name, op, version FROM changes WHERE rev>?1 "
			   "ORDER BY rev, seq",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta(key,value) VALUES(?1,?2)",
	[ST_META_GET] = "SELECT value FROM meta WHERE key=?1",
	[ST_MEMBER_PUT] = "INSERT OR REPLACE INTO members(id,raft,http,role) VALUES(?1,?2,?3,?4)",
	[ST_MEMBER_DEL] = "DELETE FROM members WHERE id=?1",
	[ST_MEMBER_COUNT] = "SELECT count(*) FROM members",
	[ST_MEMBER_LIST] = "SELECT id, raft, http, role FROM members ORDER BY id",
	[ST_MEMBER_GET] = "SELECT id, raft, http, role FROM members WHERE id=?1",
	[ST_LISTENER_ALL] =
		"SELECT name, value FROM items WHERE kind=?1 AND name<>?2 ORDER BY name",
	[ST_EPOCH_BUMP] = "INSERT INTO epochs(kind,name,rev) VALUES(?1,?2,?3) "
			  "ON CONFLICT(kind,name) DO UPDATE SET rev=max(rev,excluded.rev)",
	[ST_EPOCH_LIST] = "SELECT kind, name, rev FROM epochs ORDER BY kind, name",
	[ST_REF_OF_KIND] = "SELECT ref_name FROM refs WHERE kind=?1 AND name=?2 AND ref_kind=?3",
	[ST_TOKEN_GET] = "SELECT name, role, hash, created, created_by FROM tokens WHERE name=?1",
	[ST_TOKEN_BY_HASH] = "SELECT 1 FROM tokens WHERE hash=?1",
	[ST_TOKEN_PUT] = "INSERT INTO tokens(name,role,hash,created,created_by) "
			 "VALUES(?1,?2,?3,?4,?5)",
	[ST_TOKEN_DEL] = "DELETE FROM tokens WHERE name=?1",
	[ST_TOKEN_LIST] = "SELECT name, role, hash, created, created_by FROM tokens ORDER BY name",
	[ST_TOKEN_ADMINS] = "SELECT count(*) FROM tokens WHERE role>=3",
	[ST_AUDIT_PUT] = "INSERT OR REPLACE INTO audit(rev,time,actor,address) VALUES(?1,?2,?3,?4)",
	[ST_AUDIT_TRIM] = "DELETE FROM audit WHERE rev<=?1",
	[ST_AUDIT_SCAN] =
		"SELECT rev,time FROM audit WHERE rev>?1 AND rev<?2 ORDER BY rev LIMIT ?3",
	[ST_HISTORY_DESC] = HISTORY_SQL("DESC"),
	[ST_HISTORY_ASC] = HISTORY_SQL("ASC"),
	[ST_CHANGE_OF_REV] =
		"SELECT kind, name, op, version FROM changes WHERE rev=?1 ORDER BY seq",
	/* design note 11: the item's last change at or before ?3, its first after */
	[ST_AT_LAST] = "SELECT op, rev, value FROM changes WHERE kind=?1 AND name=?2 AND rev<=?3 "
		       "ORDER BY rev DESC, seq DESC LIMIT 1",
	[ST_AT_FIRST] = "SELECT prev FROM changes WHERE kind=?1 AND name=?2 AND rev>?3 "
			"ORDER BY rev, seq LIMIT 1",
};

static const char schema[] =
	"CREATE TABLE items(kind INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
	" version INTEGER NOT NULL, PRIMARY KEY(kind, name)) WITHOUT ROWID;"
	"CREATE TABLE refs(kind INTEGER NOT NULL, name TEXT NOT NULL, ref_kind INTEGER NOT NULL,"
	" ref_name TEXT NOT NULL, PRIMARY KEY(kind, name, ref_kind, ref_name)) WITHOUT ROWID;"
	"CREATE INDEX refs_target ON refs(ref_kind, ref_name);"
	"CREATE TABLE changes(rev INTEGER NOT NULL, seq INTEGER NOT NULL, kind INTEGER NOT NULL,"
	" name TEXT NOT NULL, op INTEGER NOT NULL, version INTEGER NOT NULL, value BLOB,"
	" prev INTEGER, PRIMARY KEY(rev, seq)) WITHOUT ROWID;"
	"CREATE INDEX changes_item ON changes(kind, name, rev);"
	"CREATE TABLE members(id INTEGER PRIMARY KEY, raft TEXT NOT NULL, http TEXT NOT NULL,"
	" role INTEGER NOT NULL);"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE epochs(kind INTEGER NOT NULL, name TEXT NOT NULL, rev INTEGER NOT NULL,"
	" PRIMARY KEY(kind, name)) WITHOUT ROWID;";

/* Tables added after the first release: also created in a restored
 * database that predates them (design note 8, 9). */
static const char schema_tokens[] =
	"CREATE TABLE IF NOT EXISTS tokens(name TEXT PRIMARY KEY, role INTEGER NOT NULL,"
	" hash BLOB NOT NULL, created INTEGER NOT NULL, created_by TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS tokens_hash ON tokens(hash);"
	"CREATE TABLE IF NOT EXISTS audit(rev INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
	" actor TEXT NOT NULL, address TEXT NOT NULL);";

struct rp_store {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST__COUNT];
	uint64_t revision;
	uint64_t compacted;
	uint64_t next_compacted;          /* what the command being applied compacts to */
	struct rp_history_retention keep; /* meta history_revisions, history_max_age_ms */
	char cluster_id[33];              /* "" until SET_CLUSTER_ID applied */
	int tokens_enabled;               /* meta tokens_enabled (design note 8) */
	uint64_t tokens_gen;              /* rp_store_tokens_gen() */
	unsigned seq;                     /* change rows written in the current command */
	int applying;                     /* inside rp_store_apply's transaction */
	char errmsg[256];                 /* the last SQLite failure, for the apply's message */
	struct rp_dist_io dist;           /* for storage/distribution.c, arg = this store */
	rp_store_change_cb change_cb;
	void *change_arg;
};

/* ---- statements --------------------------------------------------------- */

static sqlite3_stmt *stmt(struct rp_store *s, enum stmt_id id)
{
	if (!s->stmts[id] && sqlite3_prepare_v3(s->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT,
						&s->stmts[id], NULL) != SQLITE_OK) {
		snprintf(s->errmsg, sizeof s->errmsg, "store: prepare %.120s: %s", sql[id],
			 sqlite3_errmsg(s->db));
		rp_log_error("%s", s->errmsg);
		return NULL;
	}
	sqlite3_reset(s->stmts[id]);
	sqlite3_clear_bindings(s->stmts[id]);
	return s->stmts[id];
}

static void finalize_all(struct rp_store *s)
{
	for (int i = 0; i < ST__COUNT; i++) {
		sqlite3_finalize(s->stmts[i]);
		s->stmts[i] = NULL;
	}
}

/* A step of @st failed: keep and log the reason, reset @st. */
static int step_failed(struct rp_store *s, sqlite3_stmt *st)
{
	snprintf(s->errmsg, sizeof s->errmsg, "store: %s: %s", sqlite3_sql(st),
		 sqlite3_errmsg(s->db));
	rp_log_error("%s", s->errmsg);
	sqlite3_reset(st);
	return RP_ERR_STORAGE;
}

/* Run a statement that returns no rows. */
static int exec_stmt(struct rp_store *s, sqlite3_stmt *st)
{
	if (!st)
		return RP_ERR_STORAGE;
	if (sqlite3_step(st) != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return RP_OK;
}

static int exec_simple(struct rp_store *s, enum stmt_id id)
{
	return exec_stmt(s, stmt(s, id));
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
	sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

static int meta_get(struct rp_store *s, const char *key, uint64_t *out)
{
	sqlite3_stmt *st = stmt(s, ST_META_GET);
	if (!st)
		return RP_ERR_STORAGE;
	bind_text(st, 1, key);
	*out = 0;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return RP_OK;
}

static int meta_put(struct rp_store *s, const char *key, uint64_t value)
{
	sqlite3_stmt *st = stmt(s, ST_META_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	bind_text(st, 1, key);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)value);
	return exec_stmt(s, st);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int io_route_listener(void *arg, const char *route, char out[RP_MAX_NAME + 1]);
static int io_listener_get(void *arg, const char *name, void **value, size_t *len);
static int io_listeners_each(void *arg, const char *except, rp_dist_value_cb cb, void *cb_arg);
static int io_epoch_set(void *arg, int kind, const char *name, uint64_t rev);

int rp_store_create(struct rp_store **out, char *errmsg, size_t errlen)
{
	struct rp_store *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(errmsg, errlen, "out of memory");
		return RP_ERR_NOMEM;
	}
	if (sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		goto err;
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=MEMORY; PRAGMA foreign_keys=OFF;", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema_tokens, NULL, NULL, NULL) != SQLITE_OK)
		goto err;
	if (meta_put(s, "format", RP_FORMAT_SNAPSHOT) != RP_OK)
		goto err;
	s->dist = (struct rp_dist_io){
		.arg = s,
		.route_listener = io_route_listener,
		.listener_get = io_listener_get,
		.listeners_each = io_listeners_each,
		.epoch_set = io_epoch_set,
	};
	*out = s;
	return RP_OK;
err:
	snprintf(errmsg, errlen, "sqlite: %s", s->db ? sqlite3_errmsg(s->db) : "open failed");
	sqlite3_close(s->db);
	free(s);
	return RP_ERR_STORAGE;
}

void rp_store_destroy(struct rp_store *s)
{
	if (!s)
		return;
	finalize_all(s);
	sqlite3_close(s->db);
	free(s);
}

void rp_store_on_change(struct rp_store *s, rp_store_change_cb cb, void *arg)
{
	s->change_cb = cb;
	s->change_arg = arg;
}

uint64_t rp_store_revision(struct rp_store *s)
{
	return s->revision;
}

uint64_t rp_store_compacted(struct rp_store *s)
{
	return s->compacted;
}

const char *rp_store_cluster_id(struct rp_store *s)
{
	return s->cluster_id;
}

/* Load the cached cluster id from the meta table ("" when none is set). */
/* Revisions kept by count (design note 12). */
static uint64_t keep_revisions(const struct rp_store *s)
{
	return s->keep.revisions ? s->keep.revisions : RP_HISTORY_REVS;
}

/* The retention SET_HISTORY stored (absent: the defaults, 0 and 0). A
 * value out of range (a damaged or foreign database) is refused. */
static int load_retention(struct rp_store *s)
{
	struct rp_history_retention k;
	int rv;
	if ((rv = meta_get(s, "history_revisions", &k.revisions)) ||
	    (rv = meta_get(s, "history_max_age_ms", &k.max_age_ms)))
		return rv;
	if ((k.revisions &&
	     (k.revisions < RP_HISTORY_REVS_MIN || k.revisions > RP_HISTORY_REVS_MAX)) ||
	    k.max_age_ms > RP_HISTORY_AGE_MAX_MS) {
		rp_log_error("store: history retention out of range (%llu revisions, %llu ms)",
			     (unsigned long long)k.revisions, (unsigned long long)k.max_age_ms);
		return RP_ERR_CORRUPT;
	}
	s->keep = k;
	return RP_OK;
}

void rp_store_retention(struct rp_store *s, struct rp_history_retention *out)
{
	out->revisions = keep_revisions(s);
	out->max_age_ms = s->keep.max_age_ms;
}

static int load_cluster_id(struct rp_store *s)
{
	uint64_t set, hi, lo;
	if (meta_get(s, "cluster_id_set", &set) || meta_get(s, "cluster_id_hi", &hi) ||
	    meta_get(s, "cluster_id_lo", &lo))
		return RP_ERR_STORAGE;
	if (set)
		snprintf(s->cluster_id, sizeof s->cluster_id, "%016llx%016llx",
			 (unsigned long long)hi, (unsigned long long)lo);
	else
		s->cluster_id[0] = '\0';
	return RP_OK;
}

/* ---- apply helpers ------------------------------------------------------ */

/* Reject the command with user-level @status; the reason goes to
 * res->message, to which apply_op or run_command prefixes what was being
 * applied. */
__attribute__((format(printf, 4, 5))) static int reject(struct rp_apply_result *res, int status,
							int op_index, const char *fmt, ...)
{
	va_list ap;
	res->status = status;
	res->op_index = op_index;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof res->message, fmt, ap);
	va_end(ap);
	return status;
}

/* A failure of this node (not of the command): res->status stays RP_OK and
 * @rv, which stops the node, travels up; @why (may be NULL or "") says what
 * failed, else the store's last SQLite error. */
static int internal(struct rp_store *s, struct rp_apply_result *res, int rv, const char *why)
{
	const char *reason = why && why[0] ? why : s->errmsg[0] ? s->errmsg : rp_err_message(rv);
	snprintf(res->message, sizeof res->message, "%s", reason);
	return rv;
}

/* Prefix res->message with @ctx ("apply put routes/x: listener edge missing"). */
static void add_context(struct rp_store *s, struct rp_apply_result *res, int rv, const char *ctx)
{
	char reason[sizeof res->message];
	if (!res->message[0])
		internal(s, res, rv, NULL);
	memcpy(reason, res->message, sizeof reason);
	/* bounded so that the line always fits: a long context cuts the reason */
	enum {
		CTX_MAX = 190,
		REASON_MAX = (int)sizeof res->message - CTX_MAX - 3
	};
	snprintf(res->message, sizeof res->message, "%.*s: %.*s", CTX_MAX, ctx, REASON_MAX, reason);
}

/* The singular noun for an item of @kind, for messages. */
static const char *noun(int kind)
{
	switch (kind) {
	case RP_KIND_CLUSTERS: return "cluster";
	case RP_KIND_ROUTES: return "route";
	case RP_KIND_LISTENERS: return "listener";
	case RP_KIND_KV: return "key";
	default: return "item";
	}
}

/* *version = current version or 0 when absent. */
static int item_version(struct rp_store *s, int kind, const char *name, uint64_t *version)
{
	sqlite3_stmt *st = stmt(s, ST_ITEM_VERSION);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	int rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return RP_OK;
}

/* A change row; @value (NULL: none kept) and @prev (the item's version
 * before the change, 0 when absent) for items only (design note 11). */
static int record_item_change(struct rp_store *s, uint64_t rev, int kind, const char *name,
			      int deleted, const void *value, size_t len, uint64_t prev)
{
	assert(s->applying && rev == s->revision + 1);
	sqlite3_stmt *st = stmt(s, ST_CHANGE_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	sqlite3_bind_int(st, 2, (int)s->seq++);
	sqlite3_bind_int(st, 3, kind);
	bind_text(st, 4, name);
	sqlite3_bind_int(st, 5, deleted);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)rev);
	/* mesh items only: kv values (up to 1 MiB each, rewritten at will) kept
	 * for the whole retained history would hold gigabytes */
	if (value && kind != RP_KIND_KV)
		sqlite3_bind_blob(st, 7, len ? value : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)prev);
	return exec_stmt(s, st);
}

static int record_change(struct rp_store *s, uint64_t rev, int kind, const char *name, int deleted)
{
	return record_item_change(s, rev, kind, name, deleted, NULL, 0, 0);
}

/* ---- what the distribution reads and writes (struct rp_dist_io) --------- */

static int io_route_listener(void *arg, const char *route, char out[RP_MAX_NAME + 1])
{
	struct rp_store *s = arg;
	sqlite3_stmt *st = stmt(s, ST_REF_OF_KIND);
	out[0] = '\0';
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, RP_KIND_ROUTES);
	bind_text(st, 2, route);
	sqlite3_bind_int(st, 3, RP_KIND_LISTENERS);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(out, RP_MAX_NAME + 1, "%s", (const char *)sqlite3_column_text(st, 0));
	else if (rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return RP_OK;
}

static int io_listener_get(void *arg, const char *name, void **value, size_t *len)
{
	uint64_t version;
	return rp_store_get(arg, RP_KIND_LISTENERS, name, value, len, &version);
}

static int io_listeners_each(void *arg, const char *except, rp_dist_value_cb cb, void *cb_arg)
{
	struct rp_store *s = arg;
	sqlite3_stmt *st = stmt(s, ST_LISTENER_ALL);
	int rv = 0, rc;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, RP_KIND_LISTENERS);
	bind_text(st, 2, except);
	while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		rv = cb(cb_arg, (const char *)sqlite3_column_text(st, 0),
			sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
	if (rv == 0 && rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return rv;
}

static int io_epoch_set(void *arg, int kind, const char *name, uint64_t rev)
{
	struct rp_store *s = arg;
	assert(s->applying && rev == s->revision + 1); /* distribution.h invariant 2 */
	sqlite3_stmt *st = stmt(s, ST_EPOCH_BUMP);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rev);
	return exec_stmt(s, st);
}

int rp_store_epochs(struct rp_store *s, rp_epoch_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt(s, ST_EPOCH_LIST);
	int rv = 0;
	if (!st)
		return RP_ERR_STORAGE;
	while (rv == 0 && sqlite3_step(st) == SQLITE_ROW)
		rv = cb(arg, sqlite3_column_int(st, 0), (const char *)sqlite3_column_text(st, 1),
			(uint64_t)sqlite3_column_int64(st, 2));
	sqlite3_reset(st);
	return rv;
}

/* ---- references --------------------------------------------------------- */

static int replace_refs(struct rp_store *s, int kind, const char *name, const struct rp_refs *refs)
{
	sqlite3_stmt *st = stmt(s, ST_REFS_DEL);
	int rv;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	if ((rv = exec_stmt(s, st)))
		return rv;
	for (unsigned i = 0; refs && i < refs->n; i++) {
		if (!(st = stmt(s, ST_REFS_PUT)))
			return RP_ERR_STORAGE;
		sqlite3_bind_int(st, 1, kind);
		bind_text(st, 2, name);
		sqlite3_bind_int(st, 3, refs->ref[i].kind);
		bind_text(st, 4, refs->ref[i].name);
		if ((rv = exec_stmt(s, st)))
			return rv;
	}
	return RP_OK;
}

static int check_unreferenced(struct rp_store *s, const Raftplane__Op *op, int kind, int i,
			      struct rp_apply_result *res)
{
	sqlite3_stmt *st = stmt(s, ST_REFS_USER);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, op->name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int user_kind = sqlite3_column_int(st, 0);
		char user[RP_MAX_NAME + 1];
		snprintf(user, sizeof user, "%s", (const char *)sqlite3_column_text(st, 1));
		sqlite3_reset(st);
		return reject(res, RP_ERR_IN_USE, i, "still referenced by %s/%s",
			      rp_kind_name(user_kind), user);
	}
	if (rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return RP_OK;
}

/* Every item @refs names exists. */
static int check_refs_exist(struct rp_store *s, const struct rp_refs *refs, int i,
			    struct rp_apply_result *res)
{
	int rv = RP_OK;
	for (unsigned r = 0; r < refs->n && rv == RP_OK; r++) {
		uint64_t v;
		if ((rv = item_version(s, refs->ref[r].kind, refs->ref[r].name, &v)))
			break;
		if (v == 0)
			rv = reject(res, RP_ERR_DANGLING, i, "%s %s missing",
				    noun(refs->ref[r].kind), refs->ref[r].name);
	}
	return rv;
}

/* ---- one op ------------------------------------------------------------- */

/* Decode a mesh value (the structural checks of validate.h), then what
 * depends on the state: references, listener clashes. On RP_OK @facts is
 * filled; the caller releases it in every case. */
static int check_mesh_put(struct rp_store *s, const Raftplane__Op *op, int kind, int i,
			  struct rp_mesh_facts *facts, struct rp_apply_result *res)
{
	char why[256];
	int rv = rp_mesh_decode(kind, op->value.data, op->value.len, facts, why, sizeof why);
	if (rv == RP_ERR_INVALID)
		return reject(res, rv, i, "%s", why);
	if (rv)
		return internal(s, res, rv, why);
	if ((rv = check_refs_exist(s, &facts->refs, i, res)) || kind != RP_KIND_LISTENERS)
		return rv;
	rv = rp_dist_check_listener(&s->dist, op->name, facts, why, sizeof why);
	if (rv == RP_ERR_CONFLICT)
		return reject(res, rv, i, "%s", why);
	return rv ? internal(s, res, rv, why) : RP_OK;
}

static int check_cond(const Raftplane__Op *op, uint64_t cur, int i, struct rp_apply_result *res)
{
	if (op->cond == RAFTPLANE__OP__COND__IF_ABSENT && cur != 0)
		return reject(res, RP_ERR_PRECONDITION, i, "exists (version %llu)",
			      (unsigned long long)cur);
	if (op->cond == RAFTPLANE__OP__COND__IF_EXISTS && cur == 0)
		return reject(res, RP_ERR_PRECONDITION, i, "does not exist");
	if (op->cond == RAFTPLANE__OP__COND__IF_VERSION && cur != op->if_version)
		return reject(res, RP_ERR_PRECONDITION, i, "has version %llu, not %llu",
			      (unsigned long long)cur, (unsigned long long)op->if_version);
	return RP_OK;
}

static int apply_put(struct rp_store *s, const Raftplane__Op *op, int kind, uint64_t rev,
		     uint64_t cur, int i, struct rp_apply_result *res)
{
	struct rp_mesh_facts facts = {0};
	char why[256];
	int rv;
	if (op->value.len > RP_MAX_BODY)
		return reject(res, RP_ERR_TOO_LARGE, i, "value over %d bytes", RP_MAX_BODY);
	if (kind != RP_KIND_KV && (rv = check_mesh_put(s, op, kind, i, &facts, res)))
		goto out;
	if ((rv = rp_dist_record(&s->dist, kind, op->name, kind == RP_KIND_KV ? NULL : &facts, rev,
				 why, sizeof why))) {
		internal(s, res, rv, why);
		goto out;
	}
	sqlite3_stmt *st = stmt(s, ST_ITEM_PUT);
	if (!st) {
		rv = RP_ERR_STORAGE;
		goto out;
	}
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, op->name);
	sqlite3_bind_blob(st, 3, op->value.len ? (const void *)op->value.data : "",
			  (int)op->value.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)rev);
	if ((rv = exec_stmt(s, st)) || (rv = replace_refs(s, kind, op->name, &facts.refs)))
		goto out;
	rv = record_item_change(s, rev, kind, op->name, 0,
				op->value.len ? (const void *)op->value.data : "", op->value.len,
				cur);
out:
	rp_mesh_facts_release(&facts);
	return rv;
}

static int apply_delete(struct rp_store *s, const Raftplane__Op *op, int kind, uint64_t rev,
			uint64_t cur, int i, struct rp_apply_result *res)
{
	char why[256];
	int rv;
	if ((rv = check_unreferenced(s, op, kind, i, res)))
		return rv;
	if ((rv = rp_dist_record(&s->dist, kind, op->name, NULL, rev, why, sizeof why)))
		return internal(s, res, rv, why);
	sqlite3_stmt *st = stmt(s, ST_ITEM_DEL);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, op->name);
	if ((rv = exec_stmt(s, st)) || (rv = replace_refs(s, kind, op->name, NULL)))
		return rv;
	return record_item_change(s, rev, kind, op->name, 1, NULL, 0, cur);
}

static int run_op(struct rp_store *s, const Raftplane__Op *op, int is_put, uint64_t rev, int i,
		  struct rp_apply_result *res)
{
	int kind = rp_kind_parse(op->kind, strlen(op->kind));
	uint64_t cur;
	int rv;
	if (kind < 0 || kind >= RP_KIND_MEMBERS)
		return reject(res, RP_ERR_INVALID, i, "unknown kind");
	if (!rp_name_valid(op->name, strlen(op->name)))
		return reject(res, RP_ERR_INVALID, i, "invalid name");
	if ((rv = item_version(s, kind, op->name, &cur)) || (rv = check_cond(op, cur, i, res)))
		return rv;
	if (is_put)
		return apply_put(s, op, kind, rev, cur, i, res);
	if (cur == 0)
		return reject(res, RP_ERR_NOT_FOUND, i, "does not exist");
	return apply_delete(s, op, kind, rev, cur, i, res);
}

/* Apply op @i; a failure's message names it: "apply put routes/x: ...". */
static int apply_op(struct rp_store *s, const Raftplane__Op *op, uint64_t rev, int i,
		    struct rp_apply_result *res)
{
	int is_put = op->type == RAFTPLANE__OP__TYPE__PUT;
	int rv = run_op(s, op, is_put, rev, i, res);
	if (rv != RP_OK) {
		char ctx[200];
		snprintf(ctx, sizeof ctx, "apply %s %.16s/%.*s", is_put ? "put" : "delete",
			 op->kind, RP_MAX_NAME, op->name);
		add_context(s, res, rv, ctx);
	}
	return rv;
}

/* ---- members ------------------------------------------------------------ */

static int put_member(struct rp_store *s, const Raftplane__Member *m, uint64_t rev)
{
	char name[32];
	sqlite3_stmt *st = stmt(s, ST_MEMBER_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)m->id);
	bind_text(st, 2, m->raft);
	bind_text(st, 3, m->http);
	sqlite3_bind_int(st, 4, (int)m->role);
	int rv = exec_stmt(s, st);
	snprintf(name, sizeof name, "%llu", (unsigned long long)m->id);
	return rv ? rv : record_change(s, rev, RP_KIND_MEMBERS, name, 0);
}

static int delete_member(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
			 struct rp_apply_result *res)
{
	char name[32];
	int rv;
	if (cmd->n_members != 1)
		return reject(res, RP_ERR_INVALID, -1, "names %zu members, not one",
			      cmd->n_members);
	sqlite3_stmt *st = stmt(s, ST_MEMBER_DEL);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)cmd->members[0]->id);
	snprintf(name, sizeof name, "%llu", (unsigned long long)cmd->members[0]->id);
	if ((rv = exec_stmt(s, st)))
		return rv;
	if (sqlite3_changes(s->db) == 0)
		return reject(res, RP_ERR_NOT_FOUND, -1, "no member %s", name);
	return record_change(s, rev, RP_KIND_MEMBERS, name, 1);
}

static int apply_members(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
			 struct rp_apply_result *res)
{
	int rv = RP_OK;
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__MEMBER_SEED) {
		sqlite3_stmt *st = stmt(s, ST_MEMBER_COUNT);
		if (!st)
			return RP_ERR_STORAGE;
		if (sqlite3_step(st) != SQLITE_ROW)
			return step_failed(s, st);
		int n = sqlite3_column_int(st, 0);
		sqlite3_reset(st);
		if (n > 0)
			return reject(res, RP_ERR_CONFLICT, -1, "members already seeded");
	}
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE)
		return delete_member(s, cmd, rev, res);
	for (size_t i = 0; i < cmd->n_members && rv == RP_OK; i++)
		rv = put_member(s, cmd->members[i], rev);
	return rv;
}

/* ---- tokens (design note 8) -------------------------------------------- */

static int token_exists_by_hash(struct rp_store *s, const ProtobufCBinaryData *hash, int *found)
{
	sqlite3_stmt *st = stmt(s, ST_TOKEN_BY_HASH);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_blob(st, 1, hash->data, (int)hash->len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return step_failed(s, st);
	*found = rc == SQLITE_ROW;
	sqlite3_reset(st);
	return RP_OK;
}

static int count_admins(struct rp_store *s, int *n)
{
	sqlite3_stmt *st = stmt(s, ST_TOKEN_ADMINS);
	if (!st)
		return RP_ERR_STORAGE;
	if (sqlite3_step(st) != SQLITE_ROW)
		return step_failed(s, st);
	*n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return RP_OK;
}

/* TOKEN_PUT and TOKEN_BOOTSTRAP: a new token; created and created_by are
 * the command's audit fields. */
static int put_token(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
		     struct rp_apply_result *res)
{
	const Raftplane__Token *t = cmd->token;
	struct rp_token old;
	uint64_t enabled;
	int rv, found;
	if (!t || !rp_token_name_valid(t->name, strlen(t->name)))
		return reject(res, RP_ERR_INVALID, -1, "a token name matches [A-Za-z0-9._-]{1,64}");
	if (t->role < RP_TOKEN_READ || t->role > RP_TOKEN_ADMIN)
		return reject(res, RP_ERR_INVALID, -1, "token role %u is not 1 to 3", t->role);
	if (t->hash.len != RP_TOKEN_HASH_LEN)
		return reject(res, RP_ERR_INVALID, -1, "token hash is %zu bytes, not %d",
			      t->hash.len, RP_TOKEN_HASH_LEN);
	if ((rv = meta_get(s, "tokens_enabled", &enabled)))
		return rv;
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__TOKEN_BOOTSTRAP && enabled)
		return reject(res, RP_ERR_CONFLICT, -1, "the cluster already has tokens");
	if ((rv = rp_store_token_get(s, t->name, &old)) != RP_ERR_NOT_FOUND)
		return rv ? rv : reject(res, RP_ERR_CONFLICT, -1, "token %s exists", t->name);
	if ((rv = token_exists_by_hash(s, &t->hash, &found)))
		return rv;
	if (found)
		return reject(res, RP_ERR_CONFLICT, -1, "a token with this secret exists");
	sqlite3_stmt *st = stmt(s, ST_TOKEN_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	bind_text(st, 1, t->name);
	sqlite3_bind_int(st, 2, (int)t->role);
	sqlite3_bind_blob(st, 3, t->hash.data, (int)t->hash.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)cmd->time_ms);
	sqlite3_bind_text(st, 5, cmd->actor, (int)strnlen(cmd->actor, RP_MAX_ACTOR - 1),
			  SQLITE_STATIC);
	if ((rv = exec_stmt(s, st)) || (rv = meta_put(s, "tokens_enabled", 1)))
		return rv;
	return record_change(s, rev, RP_KIND_TOKENS, t->name, 0);
}

static int delete_token(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
			struct rp_apply_result *res)
{
	const Raftplane__Token *t = cmd->token;
	struct rp_token old;
	int rv, admins;
	if (!t || !rp_token_name_valid(t->name, strlen(t->name)))
		return reject(res, RP_ERR_INVALID, -1, "a token name matches [A-Za-z0-9._-]{1,64}");
	if ((rv = rp_store_token_get(s, t->name, &old)) == RP_ERR_NOT_FOUND)
		return reject(res, RP_ERR_NOT_FOUND, -1, "no token %s", t->name);
	if (rv || (rv = count_admins(s, &admins)))
		return rv;
	if (old.role == RP_TOKEN_ADMIN && admins <= 1)
		return reject(res, RP_ERR_CONFLICT, -1,
			      "the last admin token cannot be revoked: create another first");
	sqlite3_stmt *st = stmt(s, ST_TOKEN_DEL);
	if (!st)
		return RP_ERR_STORAGE;
	bind_text(st, 1, t->name);
	if ((rv = exec_stmt(s, st)))
		return rv;
	return record_change(s, rev, RP_KIND_TOKENS, t->name, 1);
}

/* ---- apply -------------------------------------------------------------- */

/* The audit row of revision @rev (design note 9). Over-long fields are cut
 * (the same way on every node). */
static int record_audit(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev)
{
	sqlite3_stmt *st = stmt(s, ST_AUDIT_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)cmd->time_ms);
	sqlite3_bind_text(st, 3, cmd->actor, (int)strnlen(cmd->actor, RP_MAX_ACTOR - 1),
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 4, cmd->address, (int)strnlen(cmd->address, RP_MAX_ADDRESS - 1),
			  SQLITE_STATIC);
	return exec_stmt(s, st);
}

#define AGE_SCAN_MAX 1000 /* audit rows an apply looks at for the age limit */

/* Move *compacted past the revisions older than the age limit: their
 * audit time (the proposer's clock, in the entry) below @now - max_age.
 * A time of 0 (an internal proposal) reads as old. At most AGE_SCAN_MAX
 * rows per apply, the rest at the next ones; never past @rev - 1. */
static int compact_by_age(struct rp_store *s, uint64_t now, uint64_t rev, uint64_t *compacted)
{
	if (!s->keep.max_age_ms || now <= s->keep.max_age_ms)
		return RP_OK;
	uint64_t cutoff = now - s->keep.max_age_ms;
	sqlite3_stmt *st = stmt(s, ST_AUDIT_SCAN);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)*compacted);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)rev);
	sqlite3_bind_int(st, 3, AGE_SCAN_MAX);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t r = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t t = (uint64_t)sqlite3_column_int64(st, 1);
		if (t >= cutoff)
			break;
		*compacted = r;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return RP_OK;
}

static int finish_revision(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev)
{
	uint64_t keep = keep_revisions(s);
	uint64_t compacted = rev > keep ? rev - keep : 0;
	int rv;
	if (compacted < s->compacted) /* a larger count cannot bring back what went */
		compacted = s->compacted;
	if ((rv = compact_by_age(s, cmd->time_ms, rev, &compacted)))
		return rv;
	sqlite3_stmt *st = stmt(s, ST_CHANGE_TRIM);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)compacted);
	if ((rv = exec_stmt(s, st)))
		return rv;
	if (!(st = stmt(s, ST_AUDIT_TRIM)))
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)compacted);
	if ((rv = exec_stmt(s, st)) || (rv = record_audit(s, cmd, rev)) ||
	    (rv = meta_put(s, "revision", rev)) || (rv = meta_put(s, "compacted", compacted)))
		return rv;
	s->next_compacted = compacted;
	return RP_OK;
}

/* SET_HISTORY: the retention of the change history, by count and by age
 * (no revision of its own; it applies from the next revision on). */
static int apply_history(struct rp_store *s, const Raftplane__Command *cmd,
			 struct rp_apply_result *res)
{
	uint64_t n = cmd->history_revisions, age = cmd->history_max_age_ms;
	int rv;
	if (n < RP_HISTORY_REVS_MIN || n > RP_HISTORY_REVS_MAX)
		return reject(res, RP_ERR_INVALID, -1, "history revisions must be %d to %d",
			      RP_HISTORY_REVS_MIN, RP_HISTORY_REVS_MAX);
	if (age != 0 && (age < RP_HISTORY_AGE_MIN_MS || age > RP_HISTORY_AGE_MAX_MS))
		return reject(res, RP_ERR_INVALID, -1,
			      "history max age must be 0 (none) or %d s to %d days",
			      RP_HISTORY_AGE_MIN_MS / 1000,
			      (int)(RP_HISTORY_AGE_MAX_MS / 86400000));
	if ((rv = meta_put(s, "history_revisions", n)) ||
	    (rv = meta_put(s, "history_max_age_ms", age)))
		return rv;
	return RP_OK;
}

static int notify_one(void *arg, const struct rp_change *c)
{
	struct rp_store *s = arg;
	s->change_cb(s->change_arg, c);
	return 0;
}

static int apply_cluster_id(struct rp_store *s, const Raftplane__Command *cmd,
			    struct rp_apply_result *res)
{
	uint64_t set, hi = 0, lo = 0;
	int rv;
	if (!rp_cluster_id_valid(cmd->cluster_id))
		return reject(res, RP_ERR_INVALID, -1,
			      "cluster id must be 32 lowercase hex digits");
	if ((rv = meta_get(s, "cluster_id_set", &set)))
		return rv;
	if (set)
		return reject(res, RP_ERR_CONFLICT, -1, "cluster id already set");
	for (int i = 0; i < 32; i++) {
		char ch = cmd->cluster_id[i];
		uint64_t d = (uint64_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
		if (i < 16)
			hi = hi << 4 | d;
		else
			lo = lo << 4 | d;
	}
	if ((rv = meta_put(s, "cluster_id_hi", hi)) || (rv = meta_put(s, "cluster_id_lo", lo)))
		return rv;
	return meta_put(s, "cluster_id_set", 1);
}

static int run_txn(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
		   struct rp_apply_result *res)
{
	int rv = RP_OK;
	if (cmd->n_ops == 0 || cmd->n_ops > RP_MAX_TXN_OPS) {
		rv = reject(res, RP_ERR_INVALID, -1, "a transaction holds 1 to %d ops",
			    RP_MAX_TXN_OPS);
		add_context(s, res, rv, "apply txn");
		return rv;
	}
	for (size_t i = 0; i < cmd->n_ops && rv == RP_OK; i++)
		rv = apply_op(s, cmd->ops[i], rev, (int)i, res); /* names the op itself */
	return rv;
}

static int run_command(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
		       struct rp_apply_result *res)
{
	const char *ctx;
	int rv;
	switch (cmd->type) {
	case RAFTPLANE__COMMAND__TYPE__TXN: return run_txn(s, cmd, rev, res);
	case RAFTPLANE__COMMAND__TYPE__MEMBER_PUT:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_SEED:
		ctx = cmd->type == RAFTPLANE__COMMAND__TYPE__MEMBER_PUT      ? "apply member put"
		      : cmd->type == RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE ? "apply member delete"
									     : "apply member seed";
		rv = apply_members(s, cmd, rev, res);
		break;
	case RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID:
		ctx = "apply set cluster id";
		rv = apply_cluster_id(s, cmd, res);
		break;
	case RAFTPLANE__COMMAND__TYPE__SET_HISTORY:
		ctx = "apply set history";
		rv = apply_history(s, cmd, res);
		break;
	case RAFTPLANE__COMMAND__TYPE__TOKEN_PUT:
	case RAFTPLANE__COMMAND__TYPE__TOKEN_BOOTSTRAP:
		ctx = cmd->type == RAFTPLANE__COMMAND__TYPE__TOKEN_PUT ? "apply token put"
								       : "apply token bootstrap";
		rv = put_token(s, cmd, rev, res);
		break;
	case RAFTPLANE__COMMAND__TYPE__TOKEN_DELETE:
		ctx = "apply token delete";
		rv = delete_token(s, cmd, rev, res);
		break;
	default:
		ctx = "apply";
		rv = reject(res, RP_ERR_INVALID, -1, "unknown command type %d", (int)cmd->type);
		break;
	}
	if (rv != RP_OK)
		add_context(s, res, rv, ctx);
	return rv;
}

/* A dry run's look at the applied, uncommitted state (rp_store_dry_run):
 * the store reads as revision @rev while @inspect runs, then rolls back. */
struct dry_look {
	rp_store_inspect_cb inspect;
	void *arg;
};

static int dry_inspect(struct rp_store *s, const struct dry_look *dry, uint64_t rev)
{
	uint64_t revision = s->revision, compacted = s->compacted;
	s->revision = rev;
	s->compacted = s->next_compacted;
	int rv = dry->inspect(dry->arg, s);
	s->revision = revision;
	s->compacted = compacted;
	return rv;
}

/* Run @cmd in one transaction; RP_OK also when the command was rejected.
 * With @dry, show the result to dry->inspect and roll it back. */
static int transact(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
		    struct rp_apply_result *res, const struct dry_look *dry)
{
	/* no revision of their own */
	int identity = cmd->type == RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID ||
		       cmd->type == RAFTPLANE__COMMAND__TYPE__SET_HISTORY;
	int rv = exec_simple(s, ST_BEGIN);
	if (rv != RP_OK)
		return rv;
	s->seq = 0;
	s->applying = 1;
	rv = run_command(s, cmd, rev, res);
	if (rv == RP_OK && !identity)
		rv = finish_revision(s, cmd, rev);
	if (rv == RP_OK && dry) {
		rv = dry_inspect(s, dry, rev);
		s->applying = 0;
		exec_simple(s, ST_ROLLBACK);
		if (rv == RP_OK)
			res->revision = rev;
		return res->status != RP_OK ? RP_OK : rv;
	}
	if (rv == RP_OK)
		rv = exec_simple(s, ST_COMMIT);
	s->applying = 0;
	if (rv != RP_OK) {
		exec_simple(s, ST_ROLLBACK);
		return res->status != RP_OK ? RP_OK : rv; /* rejected by the command's own checks */
	}
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__SET_HISTORY)
		return load_retention(s);
	if (identity)
		return load_cluster_id(s);
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__TOKEN_PUT ||
	    cmd->type == RAFTPLANE__COMMAND__TYPE__TOKEN_BOOTSTRAP ||
	    cmd->type == RAFTPLANE__COMMAND__TYPE__TOKEN_DELETE) {
		s->tokens_gen++;
		if (cmd->type != RAFTPLANE__COMMAND__TYPE__TOKEN_DELETE)
			s->tokens_enabled = 1;
	}
	assert(rev == s->revision + 1); /* design note 6 */
	s->revision = rev;
	s->compacted = s->next_compacted;
	res->revision = rev;
	return RP_OK;
}

int rp_store_apply(struct rp_store *s, const void *buf, size_t len, struct rp_apply_result *res)
{
	uint64_t rev = s->revision + 1;
	assert(!s->applying); /* not from inside the change callback */
	memset(res, 0, sizeof *res);
	res->op_index = -1;
	res->revision = s->revision;
	s->errmsg[0] = '\0';
	Raftplane__Command *cmd;
	char why[RP_MAX_ERROR_MESSAGE - 16];
	int drv = rp_command_decode(buf, len, &cmd, why, sizeof why);
	if (drv != RP_OK) { /* design note 10 */
		reject(res, drv, -1, "apply: %s", why);
		return drv;
	}
	int rv = transact(s, cmd, rev, res, NULL);
	raftplane__command__free_unpacked(cmd, NULL);
	if (rv != RP_OK) {
		if (!res->message[0])
			add_context(s, res, rv, "apply");
		rp_log_error("%s", res->message);
		return rv;
	}
	if (res->status != RP_OK) {
		rp_log_debug("%s", res->message);
		return RP_OK;
	}
	if (s->change_cb && res->revision == rev)
		rp_store_changes(s, rev - 1, ~0u, notify_one, s);
	return RP_OK;
}

int rp_store_dry_run(struct rp_store *s, const void *buf, size_t len, struct rp_apply_result *res,
		     rp_store_inspect_cb inspect, void *arg)
{
	struct dry_look dry = {inspect, arg};
	Raftplane__Command *cmd;
	char why[RP_MAX_ERROR_MESSAGE - 16];
	assert(!s->applying);
	memset(res, 0, sizeof *res);
	res->op_index = -1;
	res->revision = s->revision;
	s->errmsg[0] = '\0';
	int rv = rp_command_decode(buf, len, &cmd, why, sizeof why);
	if (rv != RP_OK)
		return reject(res, rv, -1, "dry run: %s", why);
	if (cmd->type != RAFTPLANE__COMMAND__TYPE__TXN)
		rv = reject(res, RP_ERR_INVALID, -1, "dry run: only a transaction");
	else
		rv = transact(s, cmd, s->revision + 1, res, &dry);
	raftplane__command__free_unpacked(cmd, NULL);
	if (rv != RP_OK && !res->message[0])
		add_context(s, res, rv, "dry run");
	return res->status != RP_OK ? RP_OK : rv;
}

/* ---- snapshots ---------------------------------------------------------- */

int rp_store_serialize(struct rp_store *s, void **buf, size_t *len)
{
	sqlite3_int64 size = 0;
	unsigned char *data = sqlite3_serialize(s->db, "main", &size, 0);
	if (!data)
		return RP_ERR_NOMEM;
	*buf = data;
	*len = (size_t)size;
	return RP_OK;
}

/* Design note 6 for a database that comes from disk or a peer: no version,
 * change or epoch above the revision, compacted not above it either. */
static int check_revisions(struct rp_store *s)
{
	static const char q[] = "SELECT max((SELECT ifnull(max(version),0) FROM items),"
				" (SELECT ifnull(max(rev),0) FROM changes),"
				" (SELECT ifnull(max(rev),0) FROM epochs),"
				" (SELECT ifnull(max(rev),0) FROM audit))";
	sqlite3_stmt *st;
	uint64_t top = UINT64_MAX;
	if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) {
		rp_log_error("store: restore: %s", sqlite3_errmsg(s->db));
		return RP_ERR_CORRUPT;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		top = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (top > s->revision || s->compacted > s->revision) {
		rp_log_error(
			"store: restore: a row carries revision %llu, compacted is %llu, above "
			"the database's revision %llu",
			(unsigned long long)top, (unsigned long long)s->compacted,
			(unsigned long long)s->revision);
		return RP_ERR_CORRUPT;
	}
	return RP_OK;
}

/* The change columns added after format 1's release (design note 11): a
 * restored database that predates them gets them, empty (NULL). */
static int add_history_columns(struct rp_store *s)
{
	sqlite3_stmt *st = NULL;
	/* a statement naming the columns compiles only when they exist */
	int has = sqlite3_prepare_v2(s->db, "SELECT value, prev FROM changes LIMIT 0", -1, &st,
				     NULL) == SQLITE_OK;
	sqlite3_finalize(st);
	if (has)
		return RP_OK;
	return sqlite3_exec(s->db,
			    "ALTER TABLE changes ADD COLUMN value BLOB;"
			    "ALTER TABLE changes ADD COLUMN prev INTEGER;"
			    "CREATE INDEX IF NOT EXISTS changes_item ON changes(kind, name, rev);",
			    NULL, NULL, NULL) == SQLITE_OK
		       ? RP_OK
		       : RP_ERR_STORAGE;
}

int rp_store_restore(struct rp_store *s, const void *buf, size_t len)
{
	if (len == 0 || len > ((size_t)1 << 40))
		return RP_ERR_CORRUPT;
	unsigned char *copy = sqlite3_malloc64(len);
	if (!copy)
		return RP_ERR_NOMEM;
	memcpy(copy, buf, len);
	finalize_all(s);
	int rc = sqlite3_deserialize(s->db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
				     SQLITE_DESERIALIZE_FREEONCLOSE |
					     SQLITE_DESERIALIZE_RESIZEABLE);
	if (rc != SQLITE_OK) {
		rp_log_error("store: deserialize: %s", sqlite3_errstr(rc));
		return RP_ERR_CORRUPT;
	}
	uint64_t enabled = 0, format = 0;
	s->tokens_gen++; /* whatever the outcome, the tokens may differ now */
	if (meta_get(s, "format", &format))
		return RP_ERR_CORRUPT;
	if (format > RP_FORMAT_SNAPSHOT) { /* design note 10: before changing anything */
		rp_log_error(
			"store: restore: snapshot of format %llu, this release reads format %d "
			"at most: this member runs an older release than the snapshot's "
			"writer: upgrade it",
			(unsigned long long)format, RP_FORMAT_SNAPSHOT);
		return RP_ERR_NEWER_FORMAT;
	}
	if (sqlite3_exec(s->db, schema_tokens, NULL, NULL, NULL) != SQLITE_OK ||
	    add_history_columns(s) != RP_OK) {
		rp_log_error("store: restore: %s", sqlite3_errmsg(s->db));
		return RP_ERR_CORRUPT;
	}
	if (meta_get(s, "revision", &s->revision) || meta_get(s, "compacted", &s->compacted) ||
	    meta_get(s, "tokens_enabled", &enabled) || load_cluster_id(s) || load_retention(s) ||
	    check_revisions(s))
		return RP_ERR_CORRUPT;
	/* format 1 without the key: the previous release's; ours carry it */
	if (format == 0 && meta_put(s, "format", RP_FORMAT_SNAPSHOT) != RP_OK)
		return RP_ERR_CORRUPT;
	s->tokens_enabled = enabled != 0;
	return RP_OK;
}

/* ---- queries ------------------------------------------------------------ */

/* Copy column @col of @st into a malloc'd, NUL-terminated buffer. */
static int copy_blob(sqlite3_stmt *st, int col, void **value, size_t *value_len)
{
	size_t n = (size_t)sqlite3_column_bytes(st, col);
	if (!(*value = malloc(n + 1)))
		return RP_ERR_NOMEM;
	if (n) /* SQLite gives NULL for an empty blob */
		memcpy(*value, sqlite3_column_blob(st, col), n);
	((char *)*value)[n] = '\0';
	*value_len = n;
	return RP_OK;
}

int rp_store_get_at(struct rp_store *s, int kind, const char *name, uint64_t at, void **value,
		    size_t *value_len, uint64_t *version)
{
	if (at > s->revision)
		return RP_ERR_INVALID;
	if (at < s->compacted)
		return RP_ERR_GONE;
	sqlite3_stmt *st = stmt(s, ST_AT_LAST);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)at);
	int rc = sqlite3_step(st), rv;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_int(st, 0)) {
			rv = RP_ERR_NOT_FOUND; /* deleted */
		} else if (sqlite3_column_type(st, 2) == SQLITE_NULL) {
			rv = RP_ERR_GONE; /* written by a release that kept no values */
		} else {
			*version = (uint64_t)sqlite3_column_int64(st, 1);
			rv = copy_blob(st, 2, value, value_len);
		}
		sqlite3_reset(st);
		return rv;
	}
	if (rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	/* no retained change at or before @at: the current value if it is old
	 * enough, else what the first later change replaced */
	uint64_t cur_version = 0;
	void *cur = NULL;
	size_t cur_len = 0;
	rv = rp_store_get(s, kind, name, &cur, &cur_len, &cur_version);
	if (rv == RP_OK && cur_version <= at) {
		*value = cur, *value_len = cur_len, *version = cur_version;
		return RP_OK;
	}
	free(cur);
	if (rv != RP_OK && rv != RP_ERR_NOT_FOUND)
		return rv;
	if (!(st = stmt(s, ST_AT_FIRST)))
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)at);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) /* prev 0: created after @at; else its value is compacted */
		rv = sqlite3_column_type(st, 0) != SQLITE_NULL && sqlite3_column_int64(st, 0) == 0
			     ? RP_ERR_NOT_FOUND
			     : RP_ERR_GONE;
	else if (rc == SQLITE_DONE)
		rv = RP_ERR_NOT_FOUND;
	else
		return step_failed(s, st);
	sqlite3_reset(st);
	return rv;
}

int rp_store_get(struct rp_store *s, int kind, const char *name, void **value, size_t *value_len,
		 uint64_t *version)
{
	sqlite3_stmt *st = stmt(s, ST_ITEM_GET);
	int rv = RP_ERR_NOT_FOUND;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return step_failed(s, st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		*value = malloc(n + 1);
		if (*value) {
			if (n) /* SQLite gives NULL for an empty blob */
				memcpy(*value, sqlite3_column_blob(st, 0), n);
			((char *)*value)[n] = '\0';
			*value_len = n;
			*version = (uint64_t)sqlite3_column_int64(st, 1);
			rv = RP_OK;
		} else {
			rv = RP_ERR_NOMEM;
		}
	}
	sqlite3_reset(st);
	return rv;
}

int rp_store_list(struct rp_store *s, int kind, const char *prefix, rp_item_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt(s, ST_ITEM_LIST);
	size_t plen = strlen(prefix);
	int rv = 0;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, prefix);
	while (rv == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct rp_item it = {
			.kind = kind,
			.name = (const char *)sqlite3_column_text(st, 0),
			.value = sqlite3_column_blob(st, 1),
			.value_len = (size_t)sqlite3_column_bytes(st, 1),
			.version = (uint64_t)sqlite3_column_int64(st, 2),
		};
		if (strncmp(it.name, prefix, plen) != 0)
			break; /* names are ordered: past the prefix range */
		rv = cb(arg, &it);
	}
	sqlite3_reset(st);
	return rv;
}

int rp_store_changes(struct rp_store *s, uint64_t after, unsigned kind_mask, rp_change_iter_cb cb,
		     void *arg)
{
	if (after < s->compacted)
		return RP_ERR_GONE;
	sqlite3_stmt *st = stmt(s, ST_CHANGE_LIST);
	int rv = 0;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
	while (rv == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct rp_change c = {
			.revision = (uint64_t)sqlite3_column_int64(st, 0),
			.kind = sqlite3_column_int(st, 1),
			.name = (const char *)sqlite3_column_text(st, 2),
			.deleted = sqlite3_column_int(st, 3),
			.version = (uint64_t)sqlite3_column_int64(st, 4),
		};
		if (c.kind >= 0 && c.kind < 32 && c.kind != RP_KIND_TOKENS &&
		    (kind_mask & (1u << c.kind)))
			rv = cb(arg, &c);
	}
	sqlite3_reset(st);
	return rv;
}

static void member_from_row(sqlite3_stmt *st, struct rp_member *m)
{
	m->id = (uint64_t)sqlite3_column_int64(st, 0);
	snprintf(m->raft, sizeof m->raft, "%s", (const char *)sqlite3_column_text(st, 1));
	snprintf(m->http, sizeof m->http, "%s", (const char *)sqlite3_column_text(st, 2));
	m->role = sqlite3_column_int(st, 3);
}

int rp_store_members(struct rp_store *s, rp_member_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt(s, ST_MEMBER_LIST);
	int rv = 0;
	if (!st)
		return RP_ERR_STORAGE;
	while (rv == 0 && sqlite3_step(st) == SQLITE_ROW) {
		struct rp_member m;
		member_from_row(st, &m);
		rv = cb(arg, &m);
	}
	sqlite3_reset(st);
	return rv;
}

int rp_store_member_get(struct rp_store *s, uint64_t id, struct rp_member *out)
{
	sqlite3_stmt *st = stmt(s, ST_MEMBER_GET);
	int rv = RP_ERR_NOT_FOUND;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		member_from_row(st, out);
		rv = RP_OK;
	}
	sqlite3_reset(st);
	return rv;
}

/* ---- tokens and the audit history ------------------------------------------ */

uint64_t rp_store_tokens_gen(struct rp_store *s)
{
	return s->tokens_gen;
}

int rp_store_tokens_enabled(struct rp_store *s)
{
	return s->tokens_enabled;
}

static void token_from_row(sqlite3_stmt *st, struct rp_token *t)
{
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", (const char *)sqlite3_column_text(st, 0));
	t->role = sqlite3_column_int(st, 1);
	if (sqlite3_column_bytes(st, 2) == RP_TOKEN_HASH_LEN)
		memcpy(t->hash, sqlite3_column_blob(st, 2), RP_TOKEN_HASH_LEN);
	t->created = (uint64_t)sqlite3_column_int64(st, 3);
	snprintf(t->created_by, sizeof t->created_by, "%s",
		 (const char *)sqlite3_column_text(st, 4));
}

int rp_store_tokens(struct rp_store *s, rp_token_cb cb, void *arg)
{
	sqlite3_stmt *st = stmt(s, ST_TOKEN_LIST);
	int rv = 0, rc;
	if (!st)
		return RP_ERR_STORAGE;
	while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct rp_token t;
		token_from_row(st, &t);
		rv = cb(arg, &t);
	}
	if (rv == 0 && rc != SQLITE_DONE)
		return step_failed(s, st);
	sqlite3_reset(st);
	return rv;
}

int rp_store_token_get(struct rp_store *s, const char *name, struct rp_token *out)
{
	sqlite3_stmt *st = stmt(s, ST_TOKEN_GET);
	int rv = RP_ERR_NOT_FOUND;
	if (!st)
		return RP_ERR_STORAGE;
	bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		token_from_row(st, out);
		rv = RP_OK;
	} else if (rc != SQLITE_DONE) {
		return step_failed(s, st);
	}
	sqlite3_reset(st);
	return rv;
}

/* The changes of revision @rev into *out (names strdup'd): free_changes(). */
static int changes_of(struct rp_store *s, uint64_t rev, struct rp_change **out, size_t *n)
{
	sqlite3_stmt *st = stmt(s, ST_CHANGE_OF_REV);
	struct rp_change *v = NULL;
	size_t len = 0, cap = 0;
	int rc, rv = RP_OK;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			struct rp_change *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rv = RP_ERR_NOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		char *name = strdup((const char *)sqlite3_column_text(st, 1));
		if (!name) {
			rv = RP_ERR_NOMEM;
			break;
		}
		v[len++] = (struct rp_change){.revision = rev,
					      .kind = sqlite3_column_int(st, 0),
					      .name = name,
					      .deleted = sqlite3_column_int(st, 2),
					      .version = (uint64_t)sqlite3_column_int64(st, 3)};
	}
	if (rv == RP_OK && rc != SQLITE_DONE)
		rv = step_failed(s, st);
	else
		sqlite3_reset(st);
	*out = v;
	*n = len;
	return rv;
}

static void free_changes(struct rp_change *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)v[i].name);
	free(v);
}

/* One audit record as read from its row (strings copied: the row's
 * statement is stepped again while the record is handed out). */
struct hist_row {
	uint64_t rev, time;
	char actor[RP_MAX_ACTOR];
	char address[RP_MAX_ADDRESS];
};

int rp_store_history(struct rp_store *s, const struct rp_history_query *q, rp_history_cb cb,
		     void *arg)
{
	enum {
		BATCH = 64
	};
	struct hist_row *rows = malloc(BATCH * sizeof *rows);
	uint64_t from = q->from_revision > s->compacted ? q->from_revision : s->compacted + 1;
	uint64_t to = q->to_revision ? q->to_revision : s->revision;
	unsigned left = q->limit;
	int rv = 0;
	if (!rows)
		return RP_ERR_NOMEM;
	/* in batches, so that the callback never runs with a statement open */
	while (rv == 0 && left > 0 && from <= to) {
		sqlite3_stmt *st = stmt(s, q->oldest_first ? ST_HISTORY_ASC : ST_HISTORY_DESC);
		size_t n = 0;
		int rc;
		if (!st) {
			rv = RP_ERR_STORAGE;
			break;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(to > INT64_MAX ? INT64_MAX : to));
		if (q->actor)
			bind_text(st, 3, q->actor);
		sqlite3_bind_int(st, 4, q->kind);
		if (q->name && q->name[0])
			bind_text(st, 5, q->name);
		sqlite3_bind_int(st, 6, left < BATCH ? (int)left : BATCH);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct hist_row *r = &rows[n++];
			r->rev = (uint64_t)sqlite3_column_int64(st, 0);
			r->time = (uint64_t)sqlite3_column_int64(st, 1);
			snprintf(r->actor, sizeof r->actor, "%s",
				 (const char *)sqlite3_column_text(st, 2));
			snprintf(r->address, sizeof r->address, "%s",
				 (const char *)sqlite3_column_text(st, 3));
		}
		if (rc != SQLITE_DONE) {
			rv = step_failed(s, st);
			break;
		}
		sqlite3_reset(st);
		for (size_t i = 0; i < n && rv == 0; i++) {
			struct rp_change *ch = NULL;
			size_t nch = 0;
			if ((rv = changes_of(s, rows[i].rev, &ch, &nch)) == RP_OK) {
				struct rp_history_record rec = {
					.revision = rows[i].rev,
					.time_ms = rows[i].time,
					.actor = rows[i].actor,
					.address = rows[i].address,
					.changes = ch,
					.n_changes = nch,
				};
				rv = cb(arg, &rec);
			}
			free_changes(ch, nch);
		}
		left -= (unsigned)n;
		if (n < BATCH)
			break;
		if (q->oldest_first)
			from = rows[n - 1].rev + 1;
		else if (rows[n - 1].rev == 0 || (to = rows[n - 1].rev - 1) < from)
			break;
	}
	free(rows);
	return rv;
}
