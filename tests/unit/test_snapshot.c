/* Unit tests: per-node snapshot selection and versioning — which changes
 * wake which nodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "raftplane.pb-c.h"
#include "raftplane/err.h"
#include "snapshot.h"

#define CL(port) "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":" #port "}]}"
#define LS(port, nodes) "{\"address\":\"127.0.0.1\",\"port\":" #port ",\"nodes\":" nodes "}"
#define RT(l, c, prio)                                \
	"{\"listener\":\"" l "\",\"priority\":" #prio \
	",\"match\":{\"prefix\":\"/\"},\"cluster\":\"" c "\"}"

static Raftplane__Snapshot *snapshot_of(struct rp_store *s, const char *node)
{
	struct rp_mesh *m;
	void *buf;
	size_t len;
	uint64_t v;
	assert_int_equal(rp_mesh_build(s, &m), RP_OK);
	assert_int_equal(rp_mesh_node_snapshot(m, node, &buf, &len, &v), RP_OK);
	Raftplane__Snapshot *snap = raftplane__snapshot__unpack(NULL, len, buf);
	assert_non_null(snap);
	assert_int_equal(snap->version, v);
	assert_int_equal(v, rp_mesh_node_version(m, node));
	free(buf);
	rp_mesh_destroy(m);
	return snap;
}

/* a, b clusters; l1 for edge-1, l2 for everyone, l3 for edge-2;
 * r1: l1 -> a, r2: l3 -> b, r3: l2 -> a (revisions 1..8). */
static struct rp_store *fixture(void)
{
	struct rp_store *s = new_store();
	assert_int_equal(put(s, "clusters", "a", CL(9001)), RP_OK);
	assert_int_equal(put(s, "clusters", "b", CL(9002)), RP_OK);
	assert_int_equal(put(s, "listeners", "l1", LS(10001, "[\"edge-1\"]")), RP_OK);
	assert_int_equal(put(s, "listeners", "l2", LS(10002, "[\"*\"]")), RP_OK);
	assert_int_equal(put(s, "listeners", "l3", LS(10003, "[\"edge-2\"]")), RP_OK);
	assert_int_equal(put(s, "routes", "r1", RT("l1", "a", 5)), RP_OK);
	assert_int_equal(put(s, "routes", "r2", RT("l3", "b", 5)), RP_OK);
	assert_int_equal(put(s, "routes", "r3", RT("l2", "a", 9)), RP_OK);
	return s;
}

static void test_scoping(void **state)
{
	(void)state;
	struct rp_store *s = fixture();
	Raftplane__Snapshot *e1 = snapshot_of(s, "edge-1");
	assert_int_equal(e1->n_listeners, 2);
	assert_string_equal(e1->listeners[0]->name, "l1");
	assert_string_equal(e1->listeners[1]->name, "l2");
	assert_int_equal(e1->n_routes, 2);
	assert_string_equal(e1->routes[0]->name, "r3"); /* priority 9 first */
	assert_string_equal(e1->routes[1]->name, "r1");
	assert_int_equal(e1->n_clusters, 1);
	assert_string_equal(e1->clusters[0]->name, "a");
	assert_int_equal(e1->clusters[0]->endpoints[0]->port, 9001);
	assert_int_equal(e1->version, 8);
	raftplane__snapshot__free_unpacked(e1, NULL);
	Raftplane__Snapshot *e2 = snapshot_of(s, "edge-2");
	assert_int_equal(e2->n_listeners, 2); /* l2, l3 */
	assert_int_equal(e2->n_clusters, 2);  /* a via r3, b via r2 */
	raftplane__snapshot__free_unpacked(e2, NULL);
	Raftplane__Snapshot *other = snapshot_of(s, "edge-9");
	assert_int_equal(other->n_listeners, 1); /* only the "*" listener */
	assert_int_equal(other->n_routes, 1);
	raftplane__snapshot__free_unpacked(other, NULL);
	rp_store_destroy(s);
}

static void test_unrelated_changes_do_not_wake(void **state)
{
	(void)state;
	struct rp_store *s = fixture();
	uint64_t e1 = version_of(s, "edge-1"), e2 = version_of(s, "edge-2");
	assert_int_equal(put(s, "kv", "flag", "on"), RP_OK);        /* rev 9 */
	assert_int_equal(put(s, "clusters", "b", CL(9102)), RP_OK); /* rev 10: only edge-2 */
	assert_int_equal(put(s, "clusters", "c", CL(9103)), RP_OK); /* rev 11: nobody */
	assert_int_equal(version_of(s, "edge-1"), e1);
	assert_int_equal(version_of(s, "edge-2"), 10);
	assert_true(e2 < 10);
	assert_int_equal(put(s, "routes", "r2", RT("l3", "c", 1)), RP_OK); /* rev 12 */
	assert_int_equal(version_of(s, "edge-1"), e1);
	assert_int_equal(version_of(s, "edge-2"), 12);
	assert_int_equal(put(s, "clusters", "b", CL(9202)), RP_OK); /* b left edge-2: rev 13 */
	assert_int_equal(version_of(s, "edge-2"), 12);
	rp_store_destroy(s);
}

static void test_removals_wake(void **state)
{
	(void)state;
	struct rp_store *s = fixture();
	assert_int_equal(del(s, "routes", "r1"), RP_OK); /* rev 9: r1 left edge-1 */
	assert_int_equal(version_of(s, "edge-1"), 9);
	assert_int_equal(version_of(s, "edge-2"), 8);
	/* route moved from l3 to l1: both edge-1 and edge-2 change */
	assert_int_equal(put(s, "routes", "r2", RT("l1", "b", 1)), RP_OK); /* rev 10 */
	assert_int_equal(version_of(s, "edge-1"), 10);
	assert_int_equal(version_of(s, "edge-2"), 10);
	/* l3 no longer names edge-2 but edge-3: both change */
	assert_int_equal(put(s, "listeners", "l3", LS(10003, "[\"edge-3\"]")), RP_OK); /* rev 11 */
	assert_int_equal(version_of(s, "edge-2"), 11);
	assert_int_equal(version_of(s, "edge-3"), 11);
	assert_int_equal(version_of(s, "edge-1"), 10);
	/* the "*" listener narrows to edge-1: every node changes */
	assert_int_equal(put(s, "listeners", "l2", LS(10002, "[\"edge-1\"]")), RP_OK); /* rev 12 */
	assert_int_equal(version_of(s, "edge-2"), 12);
	assert_int_equal(version_of(s, "anyone"), 12);
	/* deleting an empty listener wakes the nodes it named */
	assert_int_equal(del(s, "listeners", "l3"), RP_OK); /* rev 13 */
	assert_int_equal(version_of(s, "edge-3"), 13);
	assert_int_equal(version_of(s, "edge-1"), 12);
	rp_store_destroy(s);
}

/* Versions are a function of applied state: the same after a snapshot
 * restore on another store (another server). */
static void test_versions_survive_restore(void **state)
{
	(void)state;
	struct rp_store *a = fixture(), *b = new_store();
	assert_int_equal(del(a, "routes", "r1"), RP_OK);
	assert_int_equal(put(a, "listeners", "l3", LS(10003, "[\"edge-3\"]")), RP_OK);
	void *buf;
	size_t len;
	assert_int_equal(rp_store_serialize(a, &buf, &len), RP_OK);
	assert_int_equal(rp_store_restore(b, buf, len), RP_OK);
	sqlite3_free(buf);
	const char *nodes[] = {"edge-1", "edge-2", "edge-3", "x"};
	for (int i = 0; i < 4; i++)
		assert_int_equal(version_of(a, nodes[i]), version_of(b, nodes[i]));
	assert_int_equal(version_of(b, "edge-2"), 10);
	rp_store_destroy(a);
	rp_store_destroy(b);
}

static void test_empty(void **state)
{
	(void)state;
	struct rp_store *s = new_store();
	Raftplane__Snapshot *snap = snapshot_of(s, "edge-1");
	assert_int_equal(snap->version, 0);
	assert_int_equal(snap->n_listeners, 0);
	raftplane__snapshot__free_unpacked(snap, NULL);
	rp_store_destroy(s);
}

/* One encoding per key: prefix(node) + the key's bytes == the node's own
 * encoding, byte for byte; nodes that get the same listeners at the same
 * version share a key, others do not. */
static void check_shared(struct rp_mesh *m, const char *node, struct rp_node_key *k)
{
	void *own, *body;
	size_t own_len, body_len;
	uint64_t v;
	unsigned char prefix[RP_SNAPSHOT_PREFIX_MAX];
	assert_int_equal(rp_mesh_node_snapshot(m, node, &own, &own_len, &v), RP_OK);
	assert_int_equal(rp_mesh_node_key(m, node, k), RP_OK);
	assert_int_equal(k->version, v);
	assert_int_equal(rp_mesh_key_snapshot(m, k, &body, &body_len), RP_OK);
	size_t pl = rp_snapshot_node_prefix(node, prefix);
	assert_int_equal(pl + body_len, own_len);
	assert_memory_equal(own, prefix, pl);
	assert_memory_equal((char *)own + pl, body, body_len);
	free(own);
	free(body);
}

static void test_shared_encodings(void **state)
{
	(void)state;
	struct rp_store *s = fixture();
	char long_id[RP_MAX_NAME + 1];
	memset(long_id, 'n', RP_MAX_NAME); /* a two-byte length varint */
	long_id[RP_MAX_NAME] = '\0';
	/* a node epoch for edge-3: a listener that named it goes */
	assert_int_equal(put(s, "listeners", "l4", LS(10004, "[\"edge-3\"]")), RP_OK);
	assert_int_equal(del(s, "listeners", "l4"), RP_OK);
	struct rp_mesh *m;
	assert_int_equal(rp_mesh_build(s, &m), RP_OK);
	const char *nodes[] = {"edge-1", "edge-2", "edge-3", "x", "y", long_id};
	struct rp_node_key k[6];
	for (int i = 0; i < 6; i++)
		check_shared(m, nodes[i], &k[i]);
	assert_true(rp_node_key_equal(&k[3], &k[4])); /* only "*": one encoding */
	assert_true(rp_node_key_equal(&k[3], &k[5]));
	assert_false(rp_node_key_equal(&k[0], &k[3])); /* l1 too */
	assert_false(rp_node_key_equal(&k[0], &k[1])); /* l1 versus l3 */
	assert_false(rp_node_key_equal(&k[2], &k[3])); /* same listeners, later version */
	assert_true(k[2].version > k[3].version);
	for (int i = 0; i < 6; i++)
		rp_node_key_release(&k[i]);
	rp_mesh_destroy(m);
	/* random listener churn: named, unnamed and once-named node ids keep
	 * agreeing with the per-node encoding */
	static const char *lists[] = {"[\"*\"]", "[\"a\"]", "[\"b\",\"c\"]", "[\"a\",\"d\"]"};
	static const char *ids[] = {"a", "b", "c", "d", "e"};
	unsigned seed = 7;
	for (int step = 0; step < 60; step++) {
		char name[16], value[128];
		seed = seed * 1103515245u + 12345u;
		snprintf(name, sizeof name, "z%u", (seed >> 8) % 5);
		if ((seed >> 16) % 4 == 0) {
			del(s, "listeners", name); /* may not exist: fine */
		} else {
			snprintf(value, sizeof value,
				 "{\"address\":\"127.0.0.1\",\"port\":%u,\"nodes\":%s}",
				 20000 + (seed >> 8) % 5, lists[(seed >> 20) % 4]);
			put(s, "listeners", name, value);
		}
		assert_int_equal(rp_mesh_build(s, &m), RP_OK);
		for (int i = 0; i < 5; i++) {
			struct rp_node_key key;
			check_shared(m, ids[i], &key);
			rp_node_key_release(&key);
		}
		rp_mesh_destroy(m);
	}
	rp_store_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scoping),
		cmocka_unit_test(test_unrelated_changes_do_not_wake),
		cmocka_unit_test(test_removals_wake),
		cmocka_unit_test(test_versions_survive_restore),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_shared_encodings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
