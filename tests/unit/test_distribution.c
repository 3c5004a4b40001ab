/* Unit tests: storage/distribution.c through the real store — listener
 * clashes, the epochs that move a proxy's version when something leaves its
 * snapshot, and the failures that must stop a node rather than skip a bump
 * (defect 2 of the architecture pass: a listener value that failed to parse
 * silently skipped the node epochs, leaving a proxy on a stale version). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "distribution.h"
#include "helpers.h"
#include "raftplane/err.h"
#include "raftplane/log.h"
#include "snapshot.h"
#include "store.h"

#define CLUSTER "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":9001}]}"

static char *listener(int port, const char *nodes)
{
	static char buf[256];
	snprintf(buf, sizeof buf, "{\"address\":\"127.0.0.1\",\"port\":%d,\"nodes\":%s}", port,
		 nodes);
	return buf;
}

static char *route(const char *on, const char *cluster)
{
	static char buf[256];
	snprintf(buf, sizeof buf,
		 "{\"listener\":\"%s\",\"match\":{\"prefix\":\"/\"},\"cluster\":\"%s\"}", on,
		 cluster);
	return buf;
}

/* Apply one op without asserting the outcome; returns rp_store_apply's value. */
static int apply_one(struct rp_store *s, int is_delete, const char *kind, const char *name,
		     const char *value, struct rp_apply_result *res)
{
	Raftplane__Command cmd;
	Raftplane__Op op, *ops = &op;
	void *buf;
	size_t len;
	raftplane__command__init(&cmd);
	rp_op_init(&op, is_delete, kind, name, value, value ? strlen(value) : 0);
	cmd.ops = &ops;
	cmd.n_ops = 1;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	int rv = rp_store_apply(s, buf, len, res);
	free(buf);
	return rv;
}

/* ---- clashes ------------------------------------------------------------ */

static int clash(const char *a, const char *b)
{
	struct rp_mesh_facts x, y;
	char msg[200];
	assert_int_equal(rp_mesh_decode(RP_KIND_LISTENERS, a, strlen(a), &x, msg, sizeof msg),
			 RP_OK);
	assert_int_equal(rp_mesh_decode(RP_KIND_LISTENERS, b, strlen(b), &y, msg, sizeof msg),
			 RP_OK);
	int c = rp_listener_clash(&x, &y);
	assert_int_equal(rp_listener_clash(&y, &x), c); /* symmetric */
	rp_mesh_facts_release(&x);
	rp_mesh_facts_release(&y);
	return c;
}

static void test_clash_rule(void **state)
{
	(void)state;
	const char *a1 = "{\"address\":\"10.0.0.1\",\"port\":80,\"nodes\":[\"a\",\"b\"]}";
	assert_true(clash(a1, "{\"address\":\"10.0.0.1\",\"port\":80,\"nodes\":[\"b\"]}"));
	assert_false(clash(a1, "{\"address\":\"10.0.0.1\",\"port\":81,\"nodes\":[\"a\"]}"));
	assert_false(clash(a1, "{\"address\":\"10.0.0.2\",\"port\":80,\"nodes\":[\"a\"]}"));
	assert_false(clash(a1, "{\"address\":\"10.0.0.1\",\"port\":80,\"nodes\":[\"c\"]}"));
	assert_true(clash(a1, "{\"address\":\"0.0.0.0\",\"port\":80,\"nodes\":[\"a\"]}"));
	assert_true(clash(a1, "{\"address\":\"::\",\"port\":80,\"nodes\":[\"b\"]}"));
	assert_true(clash(a1, "{\"address\":\"10.0.0.1\",\"port\":80,\"nodes\":[\"*\"]}"));
}

static void test_clash_in_apply(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	assert_int_equal(put(s, "listeners", "a", listener(80, "[\"n1\"]")), RP_OK);
	assert_int_equal(put(s, "listeners", "b", listener(80, "[\"n2\"]")), RP_OK);
	assert_int_equal(apply_one(s, 0, "listeners", "c", listener(80, "[\"*\"]"), &res), RP_OK);
	assert_int_equal(res.status, RP_ERR_CONFLICT);
	/* the first clashing listener by name, the same on every node */
	assert_string_equal(res.message,
			    "apply put listeners/c: clashes with listeners/a on port 80 "
			    "for a common node");
	/* a listener never clashes with its own stored value */
	assert_int_equal(put(s, "listeners", "a", listener(80, "[\"n1\",\"n3\"]")), RP_OK);
	assert_int_equal(rp_store_revision(s), 3);
	rp_store_destroy(s);
}

/* ---- epochs ------------------------------------------------------------- */

static void test_route_moves(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	assert_int_equal(put(s, "clusters", "c", CLUSTER), RP_OK);
	assert_int_equal(put(s, "listeners", "la", listener(1000, "[\"a\"]")), RP_OK);
	assert_int_equal(put(s, "listeners", "lb", listener(1001, "[\"b\"]")), RP_OK);
	assert_int_equal(put(s, "routes", "r", route("la", "c")), RP_OK); /* rev 4 */
	assert_int_equal(version_of(s, "a"), 4);
	assert_int_equal(version_of(s, "b"), 3);
	assert_int_equal(put(s, "routes", "r", route("lb", "c")), RP_OK); /* rev 5: off la */
	assert_int_equal(version_of(s, "a"), 5);
	assert_int_equal(version_of(s, "b"), 5);
	assert_int_equal(put(s, "kv", "k", "v"), RP_OK); /* rev 6: nobody's business */
	assert_int_equal(version_of(s, "a"), 5);
	assert_int_equal(del(s, "routes", "r"), RP_OK); /* rev 7: off lb */
	assert_int_equal(version_of(s, "a"), 5);
	assert_int_equal(version_of(s, "b"), 7);
	rp_store_destroy(s);
}

static void test_listener_nodes_leave(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	assert_int_equal(put(s, "listeners", "l", listener(1000, "[\"a\",\"b\"]")), RP_OK);
	assert_int_equal(put(s, "listeners", "m", listener(1001, "[\"c\"]")), RP_OK); /* rev 2 */
	assert_int_equal(put(s, "listeners", "l", listener(1000, "[\"b\"]")), RP_OK); /* rev 3 */
	assert_int_equal(version_of(s, "a"), 3); /* node epoch: l left a */
	assert_int_equal(version_of(s, "b"), 3);
	assert_int_equal(version_of(s, "c"), 2);
	assert_int_equal(put(s, "listeners", "l", listener(1000, "[\"*\"]")), RP_OK); /* rev 4 */
	assert_int_equal(version_of(s, "a"), 4);
	assert_int_equal(version_of(s, "c"), 4);
	assert_int_equal(put(s, "listeners", "l", listener(1000, "[\"b\"]")), RP_OK); /* rev 5 */
	assert_int_equal(version_of(s, "a"), 5); /* the "*" epoch: l left everyone else */
	assert_int_equal(version_of(s, "zzz"), 5);
	assert_int_equal(del(s, "listeners", "l"), RP_OK); /* rev 6 */
	assert_int_equal(version_of(s, "b"), 6);
	assert_int_equal(version_of(s, "c"), 5);
	rp_store_destroy(s);
}

/* ---- every change a node sees moves its version up ---------------------- */

/* A node's snapshot without its version and revision, encoded. */
static void content_of(struct rp_store *s, const char *node, char **out, size_t *out_len,
		       uint64_t *version)
{
	struct rp_mesh *m;
	void *buf;
	size_t len;
	assert_int_equal(rp_mesh_build(s, &m), RP_OK);
	assert_int_equal(rp_mesh_node_snapshot(m, node, &buf, &len, version), RP_OK);
	assert_true(*version <= rp_store_revision(s));
	Raftplane__Snapshot *snap = raftplane__snapshot__unpack(NULL, len, buf);
	assert_non_null(snap);
	snap->version = 0;
	snap->revision = 0;
	*out_len = raftplane__snapshot__get_packed_size(snap);
	*out = malloc(*out_len + 1);
	raftplane__snapshot__pack(snap, (uint8_t *)*out);
	raftplane__snapshot__free_unpacked(snap, NULL);
	free(buf);
	rp_mesh_destroy(m);
}

static int check_epoch(void *arg, int kind, const char *name, uint64_t rev)
{
	struct rp_store *s = arg;
	(void)kind;
	(void)name;
	assert_true(rev <= rp_store_revision(s)); /* distribution.h invariant 2 */
	return 0;
}

static unsigned next_rand(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 16;
}

static void random_op(struct rp_store *s, unsigned *seed)
{
	static const char *const node_sets[] = {"[\"a\"]", "[\"b\"]", "[\"a\",\"b\"]",
						"[\"c\",\"a\"]", "[\"*\"]"};
	char name[8], other[8], cl[8];
	unsigned r = next_rand(seed);
	snprintf(name, sizeof name, "x%u", next_rand(seed) % 3);
	snprintf(other, sizeof other, "x%u", next_rand(seed) % 3);
	snprintf(cl, sizeof cl, "c%u", next_rand(seed) % 2);
	int port = 1000 + name[1] - '0'; /* one port per listener: no clashes here */
	switch (r % 6) {
	case 0: put(s, "listeners", name, listener(port, node_sets[next_rand(seed) % 5])); break;
	case 1: del(s, "listeners", name); break;
	case 2: put(s, "routes", name, route(other, cl)); break;
	case 3: del(s, "routes", name); break;
	case 4: put(s, "clusters", cl, CLUSTER); break;
	default: del(s, "clusters", cl); break;
	}
}

static void test_versions_follow_content(void **state)
{
	(void)state;
	static const char *const nodes[] = {"a", "b", "c", "d"};
	struct rp_store *s = new_store(), *twin = new_store();
	char *prev[4] = {0};
	size_t prev_len[4] = {0};
	uint64_t prev_v[4] = {0};
	unsigned seed = 7, twin_seed = 7;
	for (int step = 0; step < 400; step++) {
		random_op(s, &seed);
		random_op(twin, &twin_seed);
		rp_store_epochs(s, check_epoch, s);
		for (int n = 0; n < 4; n++) {
			char *c;
			size_t len;
			uint64_t v;
			content_of(s, nodes[n], &c, &len, &v);
			assert_true(v >= prev_v[n]);
			if (prev[n] && (len != prev_len[n] || memcmp(c, prev[n], len) != 0))
				assert_true(v > prev_v[n]); /* else the proxy keeps a stale copy */
			free(prev[n]);
			prev[n] = c;
			prev_len[n] = len;
			prev_v[n] = v;
			assert_int_equal(version_of(twin, nodes[n]), v); /* deterministic */
		}
	}
	assert_true(rp_store_revision(s) > 100);
	for (int n = 0; n < 4; n++)
		free(prev[n]);
	rp_store_destroy(s);
	rp_store_destroy(twin);
}

/* ---- defect 2: a stored listener that does not decode ------------------- */

/* Replace the stored value of listener @name by @value behind the store's
 * back, as damage to this node's database would. */
static void damage_listener(struct rp_store *s, const char *name, const char *value)
{
	void *buf;
	size_t len;
	sqlite3 *db;
	char sql[256];
	assert_int_equal(rp_store_serialize(s, &buf, &len), RP_OK);
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_deserialize(db, "main", buf, (sqlite3_int64)len, (sqlite3_int64)len,
				    SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
		SQLITE_OK);
	snprintf(sql, sizeof sql, "UPDATE items SET value='%s' WHERE kind=%d AND name='%s'", value,
		 RP_KIND_LISTENERS, name);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_int64 n;
	void *copy = sqlite3_serialize(db, "main", &n, 0);
	assert_non_null(copy);
	assert_int_equal(rp_store_restore(s, copy, (size_t)n), RP_OK);
	sqlite3_free(copy);
	sqlite3_close(db);
}

static void test_undecodable_stored_listener(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	struct rp_apply_result res;
	assert_int_equal(put(s, "listeners", "edge", listener(1000, "[\"a\",\"b\"]")), RP_OK);
	assert_int_equal(version_of(s, "a"), 1);
	damage_listener(s, "edge", "{\"address\":");
	/* no snapshot without edge under edge's version */
	struct rp_mesh *m = NULL;
	assert_int_equal(rp_mesh_build(s, &m), RP_ERR_NOMEM);
	assert_null(m);
	/* a leaves edge: its epoch must move, or the apply must fail; never a
	 * silent success that leaves a's proxy on version 1 */
	int rv = apply_one(s, 0, "listeners", "edge", listener(1000, "[\"b\"]"), &res);
	assert_int_equal(rv, RP_ERR_STORAGE);
	const char *want = "apply put listeners/edge: stored listeners/edge does not decode: ";
	assert_memory_equal(res.message, want, strlen(want)); /* then jansson's reason */
	assert_int_equal(rp_store_revision(s), 1);            /* rolled back */
	rv = apply_one(s, 1, "listeners", "edge", NULL, &res);
	assert_int_equal(rv, RP_ERR_STORAGE);
	/* another listener's clash check reads it too */
	rv = apply_one(s, 0, "listeners", "other", listener(2000, "[\"a\"]"), &res);
	assert_int_equal(rv, RP_ERR_STORAGE);
	assert_int_equal(rp_store_revision(s), 1);
	rp_store_destroy(s);
}

/* ---- defect 2: memory running out while apply parses -------------------- */

static long alloc_countdown; /* fail the allocation that takes it to 0 */

static void *failing_malloc(size_t size)
{
	if (--alloc_countdown == 0) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(size);
}

/* Fail the k-th jansson allocation of the put that takes node a off
 * listener edge, for every k: the apply either fails (the node stops) or
 * succeeds with a's version moved. A rejection or a success with a stale
 * version would be this node alone disagreeing with its peers. */
static void test_memory_fails_in_apply(void **state)
{
	(void)state;
	int failed = 0;
	rp_log_set_level(RP_LOG_FATAL); /* one error line per k otherwise */
	for (long k = 1;; k++) {
		struct rp_store *s = new_store();
		struct rp_apply_result res;
		assert_int_equal(put(s, "listeners", "edge", listener(1000, "[\"a\",\"b\"]")),
				 RP_OK);
		assert_int_equal(put(s, "listeners", "other", listener(2000, "[\"c\"]")), RP_OK);
		alloc_countdown = k;
		json_set_alloc_funcs(failing_malloc, free);
		int rv = apply_one(s, 0, "listeners", "edge", listener(1000, "[\"b\"]"), &res);
		json_set_alloc_funcs(malloc, free);
		int hit = alloc_countdown <= 0;
		if (rv != RP_OK) {
			assert_true(hit);
			assert_int_equal(rv, RP_ERR_NOMEM);
			assert_non_null(strstr(res.message, "apply put listeners/edge: "));
			assert_int_equal(rp_store_revision(s), 2);
			failed++;
		} else {
			assert_int_equal(res.status, RP_OK);
			assert_int_equal(rp_store_revision(s), 3);
			assert_int_equal(version_of(s, "a"), 3);
		}
		rp_store_destroy(s);
		if (!hit)
			break; /* the put made fewer than k allocations: every one was tried */
	}
	rp_log_set_level(RP_LOG_INFO);
	assert_true(failed >= 3); /* the new value, the other listener, the old value */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clash_rule),
		cmocka_unit_test(test_clash_in_apply),
		cmocka_unit_test(test_route_moves),
		cmocka_unit_test(test_listener_nodes_leave),
		cmocka_unit_test(test_versions_follow_content),
		cmocka_unit_test(test_undecodable_stored_listener),
		cmocka_unit_test(test_memory_fails_in_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
