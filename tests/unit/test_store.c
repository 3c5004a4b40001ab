/* Unit tests: the SQLite state machine — every command type, preconditions,
 * references, determinism and snapshot round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "raftplane/err.h"
#include "store.h"

#define CLUSTER "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":9001}]}"
#define LISTENER "{\"address\":\"127.0.0.1\",\"port\":10000,\"nodes\":[\"*\"]}"
#define ROUTE "{\"listener\":\"edge\",\"match\":{\"prefix\":\"/\"},\"cluster\":\"api\"}"

#include "helpers.h"

/* ---- a logical dump of everything, to compare stores ---------------------- */

struct dump {
	char *p;
	size_t len;
	FILE *f;
};

static int dump_item(void *arg, const struct rp_item *it)
{
	fprintf(arg, "item %d %s %llu %.*s\n", it->kind, it->name, (unsigned long long)it->version,
		(int)it->value_len, (const char *)it->value);
	return 0;
}

static int dump_change(void *arg, const struct rp_change *c)
{
	fprintf(arg, "change %llu %d %s %d\n", (unsigned long long)c->revision, c->kind, c->name,
		c->deleted);
	return 0;
}

static int dump_member(void *arg, const struct rp_member *m)
{
	fprintf(arg, "member %llu %s %s %d\n", (unsigned long long)m->id, m->raft, m->http,
		m->role);
	return 0;
}

static char *dump(struct rp_store *s)
{
	char *p;
	size_t len;
	FILE *f = open_memstream(&p, &len);
	fprintf(f, "revision %llu compacted %llu\n", (unsigned long long)rp_store_revision(s),
		(unsigned long long)rp_store_compacted(s));
	for (int k = 0; k < RP_KIND_MEMBERS; k++)
		rp_store_list(s, k, "", dump_item, f);
	rp_store_changes(s, rp_store_compacted(s), ~0u, dump_change, f);
	rp_store_members(s, dump_member, f);
	fclose(f);
	return p;
}

/* ---- tests -------------------------------------------------------------- */

/* Apply one put or delete and return its result's message. */
static const char *op_message(struct rp_store *s, int is_delete, const char *kind, const char *name,
			      const char *value, int status)
{
	static struct rp_apply_result res;
	struct op_spec o = {is_delete, kind, name, value, 0, 0};
	assert_int_equal(txn(s, &o, 1, &res), status);
	return res.message;
}

static void test_kv_put_get_delete(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	void *v;
	size_t len;
	uint64_t ver;
	assert_int_equal(put(s, "kv", "a", "one"), RP_OK);
	assert_int_equal(put(s, "kv", "a", "two"), RP_OK);
	assert_int_equal(rp_store_revision(s), 2);
	assert_int_equal(rp_store_get(s, RP_KIND_KV, "a", &v, &len, &ver), RP_OK);
	assert_int_equal(len, 3);
	assert_memory_equal(v, "two", 3);
	assert_int_equal(ver, 2);
	free(v);
	assert_int_equal(del(s, "kv", "a"), RP_OK);
	assert_int_equal(rp_store_get(s, RP_KIND_KV, "a", &v, &len, &ver), RP_ERR_NOT_FOUND);
	assert_int_equal(del(s, "kv", "a"), RP_ERR_NOT_FOUND);
	assert_int_equal(rp_store_revision(s), 3); /* the failed delete made no revision */
	assert_int_equal(put(s, "kv", "bad/name", "x"), RP_ERR_INVALID);
	assert_string_equal(op_message(s, 0, "nope", "a", "x", RP_ERR_INVALID),
			    "apply put nope/a: unknown kind");
	assert_string_equal(op_message(s, 1, "kv", "a", NULL, RP_ERR_NOT_FOUND),
			    "apply delete kv/a: does not exist");
	rp_store_destroy(s);
}

/* Apply re-checks the structure of a mesh value (storage/validate.h), not
 * the API's schema. */
static void test_mesh_structure(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	const char *m = op_message(s, 0, "clusters", "c", "{", RP_ERR_INVALID);
	assert_memory_equal(m, "apply put clusters/c: not JSON: ", 32); /* then jansson's reason */
	assert_int_equal(put(s, "clusters", "c", "[1]"), RP_ERR_INVALID);
	assert_int_equal(put(s, "listeners", "l", "{\"address\":1,\"port\":1,\"nodes\":[\"*\"]}"),
			 RP_ERR_INVALID);
	assert_int_equal(put(s, "listeners", "l", "{\"address\":\"::\",\"port\":1,\"nodes\":[7]}"),
			 RP_ERR_INVALID);
	assert_string_equal(op_message(s, 0, "routes", "r", "{\"listener\":5}", RP_ERR_INVALID),
			    "apply put routes/r: route: listener must be a string");
	assert_int_equal(rp_store_revision(s), 0);
	/* the schema is the API's: apply stores what decodes */
	assert_int_equal(put(s, "clusters", "c", "{\"lb_policy\":\"bogus\"}"), RP_OK);
	rp_store_destroy(s);
}

static void test_preconditions(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	struct op_spec absent = {0, "kv", "k", "v", RAFTPLANE__OP__COND__IF_ABSENT, 0};
	struct op_spec exists = {0, "kv", "k", "v", RAFTPLANE__OP__COND__IF_EXISTS, 0};
	struct op_spec ver1 = {0, "kv", "k", "v2", RAFTPLANE__OP__COND__IF_VERSION, 1};
	assert_int_equal(txn(s, &exists, 1, &res), RP_ERR_PRECONDITION);
	assert_int_equal(txn(s, &absent, 1, &res), RP_OK);
	assert_int_equal(txn(s, &absent, 1, &res), RP_ERR_PRECONDITION);
	assert_int_equal(res.op_index, 0);
	assert_int_equal(txn(s, &ver1, 1, &res), RP_OK); /* version was 1 */
	assert_int_equal(txn(s, &ver1, 1, &res), RP_ERR_PRECONDITION);
	assert_string_equal(res.message, "apply put kv/k: has version 2, not 1");
	assert_int_equal(rp_store_revision(s), 2);
	rp_store_destroy(s);
}

static void test_txn_all_or_nothing(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	struct op_spec ops[3] = {
		{0, "kv", "a", "1", 0, 0},
		{0, "kv", "b", "2", 0, 0},
		{0, "kv", "a", "3", RAFTPLANE__OP__COND__IF_VERSION, 99},
	};
	assert_int_equal(txn(s, ops, 3, &res), RP_ERR_PRECONDITION);
	assert_int_equal(res.op_index, 2);
	assert_int_equal(rp_store_revision(s), 0);
	void *v;
	size_t len;
	uint64_t ver;
	assert_int_equal(rp_store_get(s, RP_KIND_KV, "a", &v, &len, &ver), RP_ERR_NOT_FOUND);
	assert_int_equal(txn(s, ops, 2, &res), RP_OK);
	assert_int_equal(res.revision, 1); /* both ops share one revision */
	rp_store_destroy(s);
}

static void test_mesh_references(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	assert_string_equal(op_message(s, 0, "routes", "r", ROUTE, RP_ERR_DANGLING),
			    "apply put routes/r: listener edge missing");
	assert_int_equal(put(s, "clusters", "api", CLUSTER), RP_OK);
	assert_int_equal(put(s, "routes", "r", ROUTE), RP_ERR_DANGLING); /* no listener yet */
	assert_int_equal(put(s, "listeners", "edge", LISTENER), RP_OK);
	assert_int_equal(put(s, "routes", "r", ROUTE), RP_OK);
	assert_string_equal(op_message(s, 1, "clusters", "api", NULL, RP_ERR_IN_USE),
			    "apply delete clusters/api: still referenced by routes/r");
	assert_int_equal(del(s, "listeners", "edge"), RP_ERR_IN_USE);
	/* a listener clash: same port, overlapping nodes */
	assert_string_equal(op_message(s, 0, "listeners", "edge2", LISTENER, RP_ERR_CONFLICT),
			    "apply put listeners/edge2: clashes with listeners/edge on port 10000 "
			    "for a common node");
	assert_int_equal(put(s, "listeners", "edge3",
			     "{\"address\":\"127.0.0.2\",\"port\":10000,\"nodes\":[\"*\"]}"),
			 RP_OK);
	assert_int_equal(del(s, "routes", "r"), RP_OK);
	assert_int_equal(del(s, "clusters", "api"), RP_OK);
	assert_int_equal(del(s, "listeners", "edge"), RP_OK);
	rp_store_destroy(s);
}

static void test_txn_mesh_order(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	struct op_spec create[3] = {
		{0, "clusters", "api", CLUSTER, 0, 0},
		{0, "listeners", "edge", LISTENER, 0, 0},
		{0, "routes", "r", ROUTE, 0, 0},
	};
	assert_int_equal(txn(s, create, 3, &res), RP_OK);
	struct op_spec bad[2] = {{1, "routes", "r", NULL, 0, 0}, {0, "routes", "r2", ROUTE, 0, 0}};
	bad[1].value = "{\"listener\":\"edge\",\"match\":{\"path\":\"/x\"},\"cluster\":\"gone\"}";
	assert_int_equal(txn(s, bad, 2, &res), RP_ERR_DANGLING);
	assert_int_equal(res.op_index, 1);
	void *v;
	size_t len;
	uint64_t ver;
	assert_int_equal(rp_store_get(s, RP_KIND_ROUTES, "r", &v, &len, &ver), RP_OK);
	free(v); /* the delete of r was rolled back */
	rp_store_destroy(s);
}

static void test_members(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_member m;
	assert_int_equal(members(s, RAFTPLANE__COMMAND__TYPE__MEMBER_SEED, 1, "127.0.0.1:8001"),
			 RP_OK);
	assert_int_equal(members(s, RAFTPLANE__COMMAND__TYPE__MEMBER_SEED, 2, "127.0.0.1:8002"),
			 RP_ERR_CONFLICT);
	assert_int_equal(members(s, RAFTPLANE__COMMAND__TYPE__MEMBER_PUT, 4, "127.0.0.1:8004"),
			 RP_OK);
	assert_int_equal(rp_store_member_get(s, 4, &m), RP_OK);
	assert_string_equal(m.http, "127.0.0.1:8004");
	assert_int_equal(members(s, RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE, 4, ""), RP_OK);
	assert_int_equal(rp_store_member_get(s, 4, &m), RP_ERR_NOT_FOUND);
	assert_int_equal(members(s, RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE, 4, ""),
			 RP_ERR_NOT_FOUND);
	rp_store_destroy(s);
}

static void test_corrupt_command(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	static const unsigned char junk[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f};
	assert_int_equal(rp_store_apply(s, junk, sizeof junk, &res), RP_ERR_CORRUPT);
	assert_int_equal(rp_store_revision(s), 0);
	rp_store_destroy(s);
}

/* An entry of a newer release stops the node (RP_ERR_NEWER_FORMAT, never
 * a rejection some members would not share) and changes nothing. */
static void test_newer_entry(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	put(s, "kv", "a", "1");
	Raftplane__Command cmd;
	Raftplane__Op op, *ops[1] = {&op};
	raftplane__command__init(&cmd);
	rp_op_init(&op, 0, "kv", "b", "2", 1);
	cmd.ops = ops;
	cmd.n_ops = 1;
	void *buf;
	size_t len;
	struct rp_apply_result res;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	((unsigned char *)buf)[3] = '2';
	assert_int_equal(rp_store_apply(s, buf, len, &res), RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(res.message, "RPC2"));
	assert_non_null(strstr(res.message, "upgrade it"));
	free(buf);
	cmd.type = (Raftplane__Command__Type)42;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	assert_int_equal(rp_store_apply(s, buf, len, &res), RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(res.message, "command type 42"));
	free(buf);
	assert_int_equal(rp_store_revision(s), 1);
	rp_store_destroy(s);
}

/* Rewrite meta `format` of a serialized store: @value < 0 deletes the key
 * (a database of the previous release). Returns a sqlite3_malloc'd copy. */
static void *with_format(const void *buf, size_t len, int value, size_t *out_len)
{
	sqlite3 *db;
	char sql[96];
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	unsigned char *copy = sqlite3_malloc64(len);
	memcpy(copy, buf, len);
	assert_int_equal(
		sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
				    SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
		SQLITE_OK);
	if (value < 0)
		snprintf(sql, sizeof sql, "DELETE FROM meta WHERE key='format'");
	else
		snprintf(sql, sizeof sql, "UPDATE meta SET value=%d WHERE key='format'", value);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1); /* the key was there */
	sqlite3_int64 n = 0;
	void *out = sqlite3_serialize(db, "main", &n, 0);
	assert_non_null(out);
	sqlite3_close(db);
	*out_len = (size_t)n;
	return out;
}

/* Snapshots carry meta format 1; none is format 1 (the previous release's);
 * a higher one is refused before anything is changed. */
static void test_snapshot_format(void **state)
{
	(void)state;
	struct rp_store *a = new_store(), *b = new_store();
	put(a, "kv", "k", "v");
	put(b, "kv", "mine", "x");
	void *buf, *f2, *old, *again;
	size_t len, f2_len, old_len, again_len, f1_len;
	assert_int_equal(rp_store_serialize(a, &buf, &len), RP_OK);
	void *f1 = with_format(buf, len, 1, &f1_len); /* fails unless the key holds 1 */
	sqlite3_free(f1);
	f2 = with_format(buf, len, 2, &f2_len);
	assert_int_equal(rp_store_restore(b, f2, f2_len), RP_ERR_NEWER_FORMAT);
	old = with_format(buf, len, -1, &old_len);
	assert_int_equal(rp_store_restore(b, old, old_len), RP_OK);
	assert_int_equal(rp_store_revision(b), 1);
	/* what this release snapshots next carries the key again */
	assert_int_equal(rp_store_serialize(b, &again, &again_len), RP_OK);
	f1 = with_format(again, again_len, 1, &f1_len);
	sqlite3_free(f1);
	char *da = dump(a), *db = dump(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	sqlite3_free(buf);
	sqlite3_free(f2);
	sqlite3_free(old);
	sqlite3_free(again);
	rp_store_destroy(a);
	rp_store_destroy(b);
}

/* The same command sequence — successes and rejections — gives the same
 * state on two stores. */
static void run_sequence(struct rp_store *s)
{
	char name[16], value[32];
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "k%d", i % 17);
		snprintf(value, sizeof value, "v%d", i);
		if (i % 5 == 0)
			del(s, "kv", name);
		else
			put(s, "kv", name, value);
	}
	put(s, "clusters", "api", CLUSTER);
	put(s, "listeners", "edge", LISTENER);
	put(s, "routes", "r", ROUTE);
	del(s, "clusters", "api");
	members(s, RAFTPLANE__COMMAND__TYPE__MEMBER_SEED, 1, "127.0.0.1:8001");
}

static void test_determinism(void **state)
{
	(void)state;
	struct rp_store *a = new_store(), *b = new_store();
	run_sequence(a);
	run_sequence(b);
	char *da = dump(a), *db = dump(b);
	assert_string_equal(da, db);
	assert_non_null(strstr(da, "item 2 r "));
	free(da);
	free(db);
	rp_store_destroy(a);
	rp_store_destroy(b);
}

static void test_snapshot_round_trip(void **state)
{
	(void)state;
	struct rp_store *a = new_store(), *b = new_store();
	run_sequence(a);
	put(b, "kv", "stale", "x"); /* restore replaces whatever b had */
	void *buf;
	size_t len;
	assert_int_equal(rp_store_serialize(a, &buf, &len), RP_OK);
	assert_int_equal(rp_store_restore(b, buf, len), RP_OK);
	sqlite3_free(buf);
	char *da = dump(a), *db = dump(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	/* both continue identically after the restore */
	put(a, "kv", "after", "1");
	put(b, "kv", "after", "1");
	da = dump(a);
	db = dump(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	assert_int_equal(rp_store_restore(b, "not a database", 14), RP_ERR_CORRUPT);
	rp_store_destroy(a);
	rp_store_destroy(b);
}

static int count_change(void *arg, const struct rp_change *c)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static void test_history_compaction(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	int n = 0;
	for (int i = 0; i < RP_HISTORY_REVS + 5; i++)
		put(s, "kv", "k", "v");
	assert_int_equal(rp_store_compacted(s), 5);
	assert_int_equal(rp_store_changes(s, 4, ~0u, count_change, &n), RP_ERR_GONE);
	assert_int_equal(rp_store_changes(s, 5, ~0u, count_change, &n), RP_OK);
	assert_int_equal(n, RP_HISTORY_REVS);
	n = 0;
	assert_int_equal(rp_store_changes(s, 5, 1u << RP_KIND_ROUTES, count_change, &n), RP_OK);
	assert_int_equal(n, 0);
	rp_store_destroy(s);
}

static int set_cluster_id(struct rp_store *s, const char *id)
{
	Raftplane__Command cmd;
	struct rp_apply_result res;
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID;
	cmd.cluster_id = (char *)id;
	return apply_cmd(s, &cmd, &res);
}

/* The cluster id is set once, makes no revision and travels in snapshots. */
static void test_cluster_id(void **state)
{
	(void)state;
	const char *a = "0123456789abcdef00112233445566ff", *b = "ffffffffffffffff0000000000000000";
	struct rp_store *s = new_store(), *t = new_store();
	assert_string_equal(rp_store_cluster_id(s), "");
	put(s, "kv", "k", "v");
	assert_int_equal(set_cluster_id(s, "0123"), RP_ERR_INVALID);
	assert_int_equal(set_cluster_id(s, "0123456789ABCDEF00112233445566FF"), RP_ERR_INVALID);
	assert_int_equal(set_cluster_id(s, a), RP_OK);
	assert_int_equal(rp_store_revision(s), 1);
	assert_int_equal(set_cluster_id(s, b), RP_ERR_CONFLICT);
	assert_string_equal(rp_store_cluster_id(s), a);
	void *buf;
	size_t len;
	assert_int_equal(rp_store_serialize(s, &buf, &len), RP_OK);
	assert_int_equal(rp_store_restore(t, buf, len), RP_OK);
	sqlite3_free(buf);
	assert_string_equal(rp_store_cluster_id(t), a);
	assert_int_equal(set_cluster_id(t, b), RP_ERR_CONFLICT);
	struct rp_store *u = new_store();
	assert_int_equal(set_cluster_id(u, b), RP_OK);
	assert_string_equal(rp_store_cluster_id(u), b);
	rp_store_destroy(u);
	rp_store_destroy(s);
	rp_store_destroy(t);
}

/* A dry run checks like apply, shows the result, and changes nothing. */
struct dry_seen {
	uint64_t revision;
	char *dump;
	int fail;
};

static int dry_look(void *arg, struct rp_store *s)
{
	struct dry_seen *d = arg;
	d->revision = rp_store_revision(s);
	d->dump = dump(s);
	return d->fail;
}

static int dry(struct rp_store *s, const struct op_spec *spec, size_t n,
	       struct rp_apply_result *res, struct dry_seen *seen)
{
	Raftplane__Command cmd;
	Raftplane__Op ops[8], *ptrs[8];
	build_txn(spec, n, &cmd, ops, ptrs);
	void *buf;
	size_t len;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	int rv = rp_store_dry_run(s, buf, len, res, dry_look, seen);
	free(buf);
	return rv;
}

static void test_dry_run(void **state)
{
	(void)state;
	struct rp_store *s = new_store(), *t = new_store();
	struct rp_apply_result res;
	struct dry_seen seen = {0};
	assert_int_equal(put(s, "clusters", "api", CLUSTER), RP_OK);
	assert_int_equal(put(t, "clusters", "api", CLUSTER), RP_OK);
	char *before = dump(s);
	struct op_spec ops[3] = {
		{0, "listeners", "edge", LISTENER, 0, 0},
		{0, "routes", "r", ROUTE, 0, 0},
		{1, "clusters", "api", NULL, 0, 0},
	};
	/* rejected (the route still needs the cluster): the same message as apply */
	struct rp_apply_result real;
	assert_int_not_equal(txn(t, ops, 3, &real), RP_OK);
	assert_int_equal(dry(s, ops, 3, &res, &seen), RP_OK);
	assert_int_equal(res.status, real.status);
	assert_int_equal(res.op_index, 2);
	assert_null(seen.dump); /* inspect never ran */
	assert_string_equal(res.message, real.message);
	/* passed: inspect sees revision 2 with the items, the store stays at 1 */
	assert_int_equal(dry(s, ops, 2, &res, &seen), RP_OK);
	assert_int_equal(res.status, RP_OK);
	assert_int_equal(res.revision, 2);
	assert_int_equal(seen.revision, 2);
	assert_int_equal(txn(t, ops, 2, &real), RP_OK);
	char *applied = dump(t);
	assert_string_equal(seen.dump, applied); /* exactly what apply makes */
	free(seen.dump);
	free(applied);
	char *after = dump(s);
	assert_string_equal(before, after);
	assert_int_equal(rp_store_revision(s), 1);
	free(after);
	/* an inspect failure ends it, still changing nothing */
	seen = (struct dry_seen){.fail = RP_ERR_NOMEM};
	assert_int_equal(dry(s, ops, 2, &res, &seen), RP_ERR_NOMEM);
	free(seen.dump);
	after = dump(s);
	assert_string_equal(before, after);
	free(after);
	/* and the store applies normally afterwards */
	assert_int_equal(txn(s, ops, 2, &res), RP_OK);
	assert_int_equal(res.revision, 2);
	free(before);
	rp_store_destroy(s);
	rp_store_destroy(t);
}

/* SET_HISTORY: retention by count and by age, replicated and deterministic. */
static int set_history(struct rp_store *s, uint64_t revs, uint64_t age_ms)
{
	struct rp_apply_result res;
	Raftplane__Command cmd;
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__SET_HISTORY;
	cmd.history_revisions = revs;
	cmd.history_max_age_ms = age_ms;
	return apply_cmd(s, &cmd, &res);
}

static int put_at(struct rp_store *s, const char *key, uint64_t time_ms)
{
	struct rp_apply_result res;
	Raftplane__Command cmd;
	Raftplane__Op op, *ops[1] = {&op};
	raftplane__command__init(&cmd);
	rp_op_init(&op, 0, "kv", key, "v", 1);
	cmd.ops = ops;
	cmd.n_ops = 1;
	cmd.time_ms = time_ms;
	return apply_cmd(s, &cmd, &res);
}

static void test_history_retention(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_history_retention k;
	rp_store_retention(s, &k);
	assert_int_equal(k.revisions, RP_HISTORY_REVS);
	assert_int_equal(k.max_age_ms, 0);
	/* out of range: refused, nothing changes */
	assert_int_equal(set_history(s, 99, 0), RP_ERR_INVALID);
	assert_int_equal(set_history(s, RP_HISTORY_REVS_MAX + 1, 0), RP_ERR_INVALID);
	assert_int_equal(set_history(s, 100, 999), RP_ERR_INVALID);
	assert_int_equal(set_history(s, 100, RP_HISTORY_AGE_MAX_MS + 1), RP_ERR_INVALID);
	assert_int_equal(rp_store_revision(s), 0);
	/* by count: no revision of its own, applies from the next one */
	assert_int_equal(set_history(s, 100, 0), RP_OK);
	assert_int_equal(rp_store_revision(s), 0);
	for (int i = 0; i < 150; i++)
		assert_int_equal(put_at(s, "k", 1000), RP_OK);
	assert_int_equal(rp_store_compacted(s), 50);
	/* a larger count keeps more from now on, never brings back */
	assert_int_equal(set_history(s, 200, 0), RP_OK);
	assert_int_equal(put_at(s, "k", 1000), RP_OK);
	assert_int_equal(rp_store_compacted(s), 50);
	/* by age, from the entries' own times: revisions 51..151 are at 1000 */
	assert_int_equal(set_history(s, 200, 5000), RP_OK);
	assert_int_equal(put_at(s, "k", 5999), RP_OK); /* cutoff 999: nothing older */
	assert_int_equal(rp_store_compacted(s), 50);
	assert_int_equal(put_at(s, "k", 6001), RP_OK); /* cutoff 1001: 51..151 go */
	assert_int_equal(rp_store_compacted(s), 151);
	/* a clock going back compacts nothing more, and nothing comes back */
	assert_int_equal(put_at(s, "k", 10), RP_OK);
	assert_int_equal(rp_store_compacted(s), 151);
	/* the newest revision always stays, however old */
	assert_int_equal(put_at(s, "k", 100000000), RP_OK);
	assert_int_equal(rp_store_compacted(s), rp_store_revision(s) - 1);
	/* a snapshot carries it */
	void *buf;
	size_t len;
	assert_int_equal(rp_store_serialize(s, &buf, &len), RP_OK);
	struct rp_store *t = new_store();
	assert_int_equal(rp_store_restore(t, buf, len), RP_OK);
	sqlite3_free(buf);
	rp_store_retention(t, &k);
	assert_int_equal(k.revisions, 200);
	assert_int_equal(k.max_age_ms, 5000);
	assert_int_equal(rp_store_compacted(t), rp_store_compacted(s));
	/* and both go on the same way */
	assert_int_equal(put_at(s, "k", 100004000), RP_OK);
	assert_int_equal(put_at(t, "k", 100004000), RP_OK);
	char *a = dump(s), *b = dump(t);
	assert_string_equal(a, b);
	free(a);
	free(b);
	rp_store_destroy(s);
	rp_store_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv_put_get_delete),
		cmocka_unit_test(test_preconditions),
		cmocka_unit_test(test_txn_all_or_nothing),
		cmocka_unit_test(test_mesh_references),
		cmocka_unit_test(test_mesh_structure),
		cmocka_unit_test(test_txn_mesh_order),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_corrupt_command),
		cmocka_unit_test(test_newer_entry),
		cmocka_unit_test(test_snapshot_format),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_snapshot_round_trip),
		cmocka_unit_test(test_history_compaction),
		cmocka_unit_test(test_cluster_id),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_history_retention),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
