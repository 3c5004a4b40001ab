/* The replicated state machine: SQLite changed only by applying commands.
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
 *
 * Schema: items(kind, name, value, version), refs(kind, name -> ref_kind,
 * ref_name) for routes, changes(rev, seq, kind, name, op, version) for
 * watches, members(id, raft, http, role), meta(key, value). */
#include "store.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "raftplane.pb-c.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
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
	ST__COUNT
};

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
    [ST_REFS_PUT] = "INSERT OR IGNORE INTO refs(kind,name,ref_kind,ref_name) VALUES(?1,?2,?3,?4)",
    [ST_REFS_USER] = "SELECT kind, name FROM refs WHERE ref_kind=?1 AND ref_name=?2 "
		     "ORDER BY kind, name LIMIT 1",
    [ST_CHANGE_PUT] = "INSERT INTO changes(rev,seq,kind,name,op,version) VALUES(?1,?2,?3,?4,?5,?6)",
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
    [ST_LISTENER_ALL] = "SELECT name, value FROM items WHERE kind=?1 AND name<>?2",
    [ST_EPOCH_BUMP] = "INSERT INTO epochs(kind,name,rev) VALUES(?1,?2,?3) "
		      "ON CONFLICT(kind,name) DO UPDATE SET rev=excluded.rev",
    [ST_EPOCH_LIST] = "SELECT kind, name, rev FROM epochs ORDER BY kind, name",
    [ST_REF_OF_KIND] = "SELECT ref_name FROM refs WHERE kind=?1 AND name=?2 AND ref_kind=?3",
};

static const char schema[] =
    "CREATE TABLE items(kind INTEGER NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
    " version INTEGER NOT NULL, PRIMARY KEY(kind, name)) WITHOUT ROWID;"
    "CREATE TABLE refs(kind INTEGER NOT NULL, name TEXT NOT NULL, ref_kind INTEGER NOT NULL,"
    " ref_name TEXT NOT NULL, PRIMARY KEY(kind, name, ref_kind, ref_name)) WITHOUT ROWID;"
    "CREATE INDEX refs_target ON refs(ref_kind, ref_name);"
    "CREATE TABLE changes(rev INTEGER NOT NULL, seq INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " name TEXT NOT NULL, op INTEGER NOT NULL, version INTEGER NOT NULL,"
    " PRIMARY KEY(rev, seq)) WITHOUT ROWID;"
    "CREATE TABLE members(id INTEGER PRIMARY KEY, raft TEXT NOT NULL, http TEXT NOT NULL,"
    " role INTEGER NOT NULL);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE epochs(kind INTEGER NOT NULL, name TEXT NOT NULL, rev INTEGER NOT NULL,"
    " PRIMARY KEY(kind, name)) WITHOUT ROWID;";

struct rp_store {
	sqlite3 *db;
	sqlite3_stmt *stmts[ST__COUNT];
	uint64_t revision;
	uint64_t compacted;
	char cluster_id[33]; /* "" until SET_CLUSTER_ID applied */
	unsigned seq; /* change rows written in the current command */
	rp_store_change_cb change_cb;
	void *change_arg;
};

/* ---- statements --------------------------------------------------------- */

static sqlite3_stmt *stmt(struct rp_store *s, enum stmt_id id)
{
	if (!s->stmts[id] && sqlite3_prepare_v3(s->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT,
						&s->stmts[id], NULL) != SQLITE_OK) {
		fprintf(stderr, "store: prepare %s: %s\n", sql[id], sqlite3_errmsg(s->db));
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

/* Run a statement that returns no rows. */
static int exec_stmt(struct rp_store *s, sqlite3_stmt *st)
{
	if (!st)
		return RP_ERR_STORAGE;
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "store: %s: %s\n", sqlite3_sql(st), sqlite3_errmsg(s->db));
		return RP_ERR_STORAGE;
	}
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
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RP_OK : RP_ERR_STORAGE;
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
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		goto err;
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
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? RP_OK : RP_ERR_STORAGE;
}

static int record_change(struct rp_store *s, uint64_t rev, int kind, const char *name,
			 int deleted)
{
	sqlite3_stmt *st = stmt(s, ST_CHANGE_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	sqlite3_bind_int(st, 2, (int)s->seq++);
	sqlite3_bind_int(st, 3, kind);
	bind_text(st, 4, name);
	sqlite3_bind_int(st, 5, deleted);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)rev);
	return exec_stmt(s, st);
}


/* ---- reference and clash checks ----------------------------------------- */

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
		return reject(res, RP_ERR_IN_USE, i, "ops[%d]: %s/%s is used by %s/%s", i, op->kind,
			      op->name, rp_kind_name(user_kind), user);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? RP_OK : RP_ERR_STORAGE;
}

/* Listener address/port/nodes, parsed from canonical JSON. */
struct lsn {
	const char *address;
	long long port;
	json_t *nodes;
};

static int lsn_parse(json_t *o, struct lsn *l)
{
	l->address = json_string_value(json_object_get(o, "address"));
	l->port = json_integer_value(json_object_get(o, "port"));
	l->nodes = json_object_get(o, "nodes");
	return l->address && json_is_array(l->nodes);
}

static int addr_wild(const char *a)
{
	return strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0;
}

/* Two listeners clash when some proxy would have to bind both. */
static int lsn_clash(const struct lsn *a, const struct lsn *b)
{
	if (a->port != b->port)
		return 0;
	if (strcmp(a->address, b->address) != 0 && !addr_wild(a->address) && !addr_wild(b->address))
		return 0;
	for (size_t i = 0; i < json_array_size(a->nodes); i++) {
		const char *x = json_string_value(json_array_get(a->nodes, i));
		for (size_t j = 0; j < json_array_size(b->nodes); j++) {
			const char *y = json_string_value(json_array_get(b->nodes, j));
			if (strcmp(x, "*") == 0 || strcmp(y, "*") == 0 || strcmp(x, y) == 0)
				return 1;
		}
	}
	return 0;
}

static int check_listener_clash(struct rp_store *s, const Raftplane__Op *op, const char *canon,
				int i, struct rp_apply_result *res)
{
	json_t *mine = json_loads(canon, 0, NULL);
	struct lsn a, b;
	int rv = RP_OK;
	if (!mine || !lsn_parse(mine, &a)) {
		json_decref(mine);
		return RP_ERR_INTERNAL;
	}
	sqlite3_stmt *st = stmt(s, ST_LISTENER_ALL);
	if (!st) {
		json_decref(mine);
		return RP_ERR_STORAGE;
	}
	sqlite3_bind_int(st, 1, RP_KIND_LISTENERS);
	bind_text(st, 2, op->name);
	while (rv == RP_OK && sqlite3_step(st) == SQLITE_ROW) {
		json_t *other = json_loadb(sqlite3_column_blob(st, 1),
					   (size_t)sqlite3_column_bytes(st, 1), 0, NULL);
		if (other && lsn_parse(other, &b) && lsn_clash(&a, &b))
			rv = reject(res, RP_ERR_CONFLICT, i,
				    "ops[%d]: listener %s clashes with listener %s on port %lld "
				    "for a common node",
				    i, op->name, (const char *)sqlite3_column_text(st, 0), a.port);
		json_decref(other);
	}
	sqlite3_reset(st);
	json_decref(mine);
	return rv;
}

/* Validate a mesh value and check the items it refers to exist. */
static int check_mesh_put(struct rp_store *s, const Raftplane__Op *op, int kind, int i,
			  struct rp_refs *refs, struct rp_apply_result *res)
{
	char msg[200], *canon = NULL;
	size_t canon_len;
	int rv = rp_mesh_validate(kind, op->name, (const char *)op->value.data, op->value.len,
				  &canon, &canon_len, refs, msg, sizeof msg);
	if (rv == RP_ERR_INVALID)
		return reject(res, rv, i, "ops[%d]: %s", i, msg);
	if (rv)
		return rv;
	for (unsigned r = 0; r < refs->n && rv == RP_OK; r++) {
		uint64_t v;
		if ((rv = item_version(s, refs->ref[r].kind, refs->ref[r].name, &v)))
			break;
		if (v == 0)
			rv = reject(res, RP_ERR_DANGLING, i, "ops[%d]: %s/%s refers to missing %s/%s",
				    i, op->kind, op->name, rp_kind_name(refs->ref[r].kind),
				    refs->ref[r].name);
	}
	if (rv == RP_OK && kind == RP_KIND_LISTENERS)
		rv = check_listener_clash(s, op, canon, i, res);
	free(canon);
	return rv;
}

/* ---- proxy snapshot epochs ---------------------------------------------- *
 *
 * A proxy's snapshot version is the highest revision that changed any part
 * of it (storage/snapshot.c). Versions of the items still in the snapshot
 * cover puts; these epochs cover what left it: a route deleted from or moved
 * off a listener bumps the listener's epoch, and a listener deleted or no
 * longer naming a node bumps that node's epoch (or the "*" epoch). They are
 * written by apply, so every server computes the same versions. */

static int bump_epoch(struct rp_store *s, int kind, const char *name, uint64_t rev)
{
	sqlite3_stmt *st = stmt(s, ST_EPOCH_BUMP);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rev);
	return exec_stmt(s, st);
}

/* Bump the epoch of the listener route @name is on now (before the change). */
static int bump_old_route_listener(struct rp_store *s, const char *name, uint64_t rev)
{
	char listener[RP_MAX_NAME + 1] = "";
	sqlite3_stmt *st = stmt(s, ST_REF_OF_KIND);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, RP_KIND_ROUTES);
	bind_text(st, 2, name);
	sqlite3_bind_int(st, 3, RP_KIND_LISTENERS);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(listener, sizeof listener, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return RP_ERR_STORAGE;
	return listener[0] ? bump_epoch(s, RP_EPOCH_LISTENER, listener, rev) : RP_OK;
}

static int nodes_contain(json_t *nodes, const char *node)
{
	for (size_t i = 0; i < json_array_size(nodes); i++)
		if (strcmp(json_string_value(json_array_get(nodes, i)), node) == 0)
			return 1;
	return 0;
}

/* Listener @name goes from its stored value to @new_value (NULL: deleted). */
static int bump_listener_nodes(struct rp_store *s, const char *name, const Raftplane__Op *op,
			       uint64_t rev)
{
	void *old;
	size_t old_len;
	uint64_t v;
	int rv = rp_store_get(s, RP_KIND_LISTENERS, name, &old, &old_len, &v);
	if (rv == RP_ERR_NOT_FOUND)
		return RP_OK;
	if (rv)
		return rv;
	json_t *o = json_loadb(old, old_len, 0, NULL);
	json_t *n = op ? json_loadb((const char *)op->value.data, op->value.len, 0, NULL) : NULL;
	json_t *old_nodes = json_object_get(o, "nodes"), *new_nodes = json_object_get(n, "nodes");
	free(old);
	for (size_t i = 0; rv == RP_OK && i < json_array_size(old_nodes); i++) {
		const char *node = json_string_value(json_array_get(old_nodes, i));
		if (strcmp(node, "*") == 0) {
			if (!nodes_contain(new_nodes, "*"))
				rv = bump_epoch(s, RP_EPOCH_STAR, "*", rev);
		} else if (!nodes_contain(new_nodes, node) && !nodes_contain(new_nodes, "*")) {
			rv = bump_epoch(s, RP_EPOCH_NODE, node, rev);
		}
	}
	json_decref(o);
	json_decref(n);
	return rv;
}

static int bump_epochs(struct rp_store *s, int kind, const char *name, const Raftplane__Op *put,
		       const struct rp_refs *refs, uint64_t rev)
{
	int rv = RP_OK;
	if (kind == RP_KIND_ROUTES) {
		rv = bump_old_route_listener(s, name, rev);
		for (unsigned i = 0; rv == RP_OK && refs && i < refs->n; i++)
			if (refs->ref[i].kind == RP_KIND_LISTENERS)
				rv = bump_epoch(s, RP_EPOCH_LISTENER, refs->ref[i].name, rev);
	} else if (kind == RP_KIND_LISTENERS) {
		rv = bump_epoch(s, RP_EPOCH_LISTENER, name, rev);
		if (rv == RP_OK)
			rv = bump_listener_nodes(s, name, put, rev);
	}
	return rv;
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

static int check_cond(const Raftplane__Op *op, uint64_t cur, int i, struct rp_apply_result *res)
{
	if (op->cond == RAFTPLANE__OP__COND__IF_ABSENT && cur != 0)
		return reject(res, RP_ERR_PRECONDITION, i, "ops[%d]: %s/%s exists (version %llu)", i,
			      op->kind, op->name, (unsigned long long)cur);
	if (op->cond == RAFTPLANE__OP__COND__IF_EXISTS && cur == 0)
		return reject(res, RP_ERR_PRECONDITION, i, "ops[%d]: %s/%s does not exist", i,
			      op->kind, op->name);
	if (op->cond == RAFTPLANE__OP__COND__IF_VERSION && cur != op->if_version)
		return reject(res, RP_ERR_PRECONDITION, i,
			      "ops[%d]: %s/%s has version %llu, not %llu", i, op->kind, op->name,
			      (unsigned long long)cur, (unsigned long long)op->if_version);
	return RP_OK;
}

static int apply_put(struct rp_store *s, const Raftplane__Op *op, int kind, uint64_t rev, int i,
		     struct rp_apply_result *res)
{
	struct rp_refs refs = {0};
	int rv;
	if (op->value.len > RP_MAX_BODY)
		return reject(res, RP_ERR_TOO_LARGE, i, "ops[%d]: value over %d bytes", i,
			      RP_MAX_BODY);
	if (kind != RP_KIND_KV && (rv = check_mesh_put(s, op, kind, i, &refs, res)))
		return rv;
	if ((rv = bump_epochs(s, kind, op->name, op, &refs, rev)))
		return rv;
	sqlite3_stmt *st = stmt(s, ST_ITEM_PUT);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, op->name);
	sqlite3_bind_blob(st, 3, op->value.len ? (const void *)op->value.data : "", (int)op->value.len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)rev);
	if ((rv = exec_stmt(s, st)) || (rv = replace_refs(s, kind, op->name, &refs)))
		return rv;
	return record_change(s, rev, kind, op->name, 0);
}

static int apply_delete(struct rp_store *s, const Raftplane__Op *op, int kind, uint64_t rev,
			int i, struct rp_apply_result *res)
{
	int rv;
	if ((rv = check_unreferenced(s, op, kind, i, res)) ||
	    (rv = bump_epochs(s, kind, op->name, NULL, NULL, rev)))
		return rv;
	sqlite3_stmt *st = stmt(s, ST_ITEM_DEL);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, op->name);
	if ((rv = exec_stmt(s, st)) || (rv = replace_refs(s, kind, op->name, NULL)))
		return rv;
	return record_change(s, rev, kind, op->name, 1);
}

static int apply_op(struct rp_store *s, const Raftplane__Op *op, uint64_t rev, int i,
		    struct rp_apply_result *res)
{
	int kind = rp_kind_parse(op->kind, strlen(op->kind));
	uint64_t cur;
	int rv;
	if (kind < 0 || kind == RP_KIND_MEMBERS)
		return reject(res, RP_ERR_INVALID, i, "ops[%d]: unknown kind \"%s\"", i, op->kind);
	if (!rp_name_valid(op->name, strlen(op->name)))
		return reject(res, RP_ERR_INVALID, i, "ops[%d]: invalid name", i);
	if ((rv = item_version(s, kind, op->name, &cur)) || (rv = check_cond(op, cur, i, res)))
		return rv;
	if (op->type == RAFTPLANE__OP__TYPE__PUT)
		return apply_put(s, op, kind, rev, i, res);
	if (cur == 0)
		return reject(res, RP_ERR_NOT_FOUND, i, "ops[%d]: %s/%s does not exist", i, op->kind,
			      op->name);
	return apply_delete(s, op, kind, rev, i, res);
}

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

static int apply_members(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
			 struct rp_apply_result *res)
{
	int rv = RP_OK;
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__MEMBER_SEED) {
		sqlite3_stmt *st = stmt(s, ST_MEMBER_COUNT);
		if (!st || sqlite3_step(st) != SQLITE_ROW)
			return RP_ERR_STORAGE;
		int n = sqlite3_column_int(st, 0);
		sqlite3_reset(st);
		if (n > 0)
			return reject(res, RP_ERR_CONFLICT, -1, "members already seeded");
	}
	if (cmd->type == RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE) {
		if (cmd->n_members != 1)
			return reject(res, RP_ERR_INVALID, -1, "member delete names one member");
		char name[32];
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
	for (size_t i = 0; i < cmd->n_members && rv == RP_OK; i++)
		rv = put_member(s, cmd->members[i], rev);
	return rv;
}

/* ---- apply -------------------------------------------------------------- */

static int finish_revision(struct rp_store *s, uint64_t rev)
{
	uint64_t compacted = rev > RP_HISTORY_REVS ? rev - RP_HISTORY_REVS : 0;
	int rv;
	sqlite3_stmt *st = stmt(s, ST_CHANGE_TRIM);
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)compacted);
	if ((rv = exec_stmt(s, st)) || (rv = meta_put(s, "revision", rev)) ||
	    (rv = meta_put(s, "compacted", compacted)))
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
		return reject(res, RP_ERR_INVALID, -1, "cluster id must be 32 lowercase hex digits");
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

static int run_command(struct rp_store *s, const Raftplane__Command *cmd, uint64_t rev,
		       struct rp_apply_result *res)
{
	int rv = RP_OK;
	switch (cmd->type) {
	case RAFTPLANE__COMMAND__TYPE__TXN:
		if (cmd->n_ops == 0 || cmd->n_ops > RP_MAX_TXN_OPS)
			return reject(res, RP_ERR_INVALID, -1, "a transaction holds 1 to %d ops",
				      RP_MAX_TXN_OPS);
		for (size_t i = 0; i < cmd->n_ops && rv == RP_OK; i++)
			rv = apply_op(s, cmd->ops[i], rev, (int)i, res);
		return rv;
	case RAFTPLANE__COMMAND__TYPE__MEMBER_PUT:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_SEED:
		return apply_members(s, cmd, rev, res);
	case RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID:
		return apply_cluster_id(s, cmd, res);
	default:
		return reject(res, RP_ERR_INVALID, -1, "unknown command type %d", (int)cmd->type);
	}
}

int rp_store_apply(struct rp_store *s, const void *buf, size_t len, struct rp_apply_result *res)
{
	uint64_t rev = s->revision + 1;
	int rv;
	memset(res, 0, sizeof *res);
	res->op_index = -1;
	res->revision = s->revision;
	Raftplane__Command *cmd = rp_command_unpack(buf, len);
	if (!cmd) {
		reject(res, RP_ERR_CORRUPT, -1, "undecodable command (%zu bytes)", len);
		return RP_ERR_CORRUPT;
	}
	if ((rv = exec_simple(s, ST_BEGIN)))
		goto out;
	s->seq = 0;
	rv = run_command(s, cmd, rev, res);
	int identity = cmd->type == RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID; /* no revision */
	if (rv == RP_OK && !identity)
		rv = finish_revision(s, rev);
	if (rv != RP_OK) {
		exec_simple(s, ST_ROLLBACK);
		if (res->status != RP_OK) /* rejected by the command's own checks */
			rv = RP_OK;
		goto out;
	}
	if ((rv = exec_simple(s, ST_COMMIT)))
		goto out;
	if (identity) {
		rv = load_cluster_id(s);
		goto out;
	}
	s->revision = rev;
	s->compacted = rev > RP_HISTORY_REVS ? rev - RP_HISTORY_REVS : 0;
	res->revision = rev;
	if (s->change_cb)
		rp_store_changes(s, rev - 1, ~0u, notify_one, s);
out:
	raftplane__command__free_unpacked(cmd, NULL);
	return rv;
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
				     SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "store: deserialize: %s\n", sqlite3_errstr(rc));
		return RP_ERR_CORRUPT;
	}
	if (meta_get(s, "revision", &s->revision) || meta_get(s, "compacted", &s->compacted) ||
	    load_cluster_id(s))
		return RP_ERR_CORRUPT;
	return RP_OK;
}

/* ---- queries ------------------------------------------------------------ */

int rp_store_get(struct rp_store *s, int kind, const char *name, void **value,
		 size_t *value_len, uint64_t *version)
{
	sqlite3_stmt *st = stmt(s, ST_ITEM_GET);
	int rv = RP_ERR_NOT_FOUND;
	if (!st)
		return RP_ERR_STORAGE;
	sqlite3_bind_int(st, 1, kind);
	bind_text(st, 2, name);
	if (sqlite3_step(st) == SQLITE_ROW) {
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

int rp_store_changes(struct rp_store *s, uint64_t after, unsigned kind_mask,
		     rp_change_iter_cb cb, void *arg)
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
		if (c.kind >= 0 && c.kind < 32 && (kind_mask & (1u << c.kind)))
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
