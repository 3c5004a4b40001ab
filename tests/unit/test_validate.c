/* Unit tests: names, kinds, the API's mesh schema and canonicalisation, and
 * apply's structural decode (the contract in storage/validate.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"
#include "validate.h"

static int check(int kind, const char *json, char **canon, struct rp_refs *refs, char *msg)
{
	size_t len;
	return rp_mesh_validate(kind, "x", json, strlen(json), canon, &len, refs, msg, 200);
}

/* Expect @json to be refused and the reason to mention @needle. */
static void refused(int kind, const char *json, const char *needle)
{
	char *canon = (char *)1, msg[200] = "";
	assert_int_equal(check(kind, json, &canon, NULL, msg), RP_ERR_INVALID);
	assert_null(canon);
	if (!strstr(msg, needle))
		fail_msg("reason \"%s\" lacks \"%s\" for %s", msg, needle, json);
}

static void test_names(void **state)
{
	(void)state;
	char long_name[130];
	memset(long_name, 'a', sizeof long_name);
	assert_true(rp_name_valid("a-b_c.D9", 8));
	assert_true(rp_name_valid(long_name, 128));
	assert_false(rp_name_valid(long_name, 129));
	assert_false(rp_name_valid("", 0));
	assert_false(rp_name_valid("a/b", 3));
	assert_false(rp_name_valid("a b", 3));
	assert_false(rp_name_valid("é", strlen("é")));
	assert_int_equal(rp_kind_parse("routes", 6), RP_KIND_ROUTES);
	assert_int_equal(rp_kind_parse("route", 5), -1);
	assert_string_equal(rp_kind_name(RP_KIND_LISTENERS), "listeners");
}

static void test_cluster_defaults(void **state)
{
	(void)state;
	char *canon, msg[200];
	assert_int_equal(check(RP_KIND_CLUSTERS,
			       "{\"endpoints\":[{\"port\":9001,\"address\":\"127.0.0.1\"}]}",
			       &canon, NULL, msg),
			 RP_OK);
	assert_string_equal(canon, "{\"connect_timeout_ms\":1000,\"endpoints\":[{\"address\":"
				   "\"127.0.0.1\",\"port\":9001,\"weight\":1}],\"lb_policy\":"
				   "\"round_robin\"}");
	free(canon);
	assert_int_equal(check(RP_KIND_CLUSTERS,
			       "{\"lb_policy\":\"ring_hash\",\"hash_on\":\"header:x-user\","
			       "\"health_check\":{\"path\":\"/h\"},\"name\":\"x\",\"version\":3}",
			       &canon, NULL, msg),
			 RP_OK);
	assert_non_null(strstr(canon, "\"healthy_threshold\":2"));
	assert_null(strstr(canon, "\"name\""));
	free(canon);
}

static void test_cluster_refused(void **state)
{
	(void)state;
	refused(RP_KIND_CLUSTERS, "{", "invalid JSON");
	refused(RP_KIND_CLUSTERS, "[]", "object");
	refused(RP_KIND_CLUSTERS, "{\"bogus\":1}", "unknown field");
	refused(RP_KIND_CLUSTERS, "{\"lb_policy\":\"fastest\"}", "lb_policy");
	refused(RP_KIND_CLUSTERS, "{\"lb_policy\":7}", "string");
	refused(RP_KIND_CLUSTERS, "{\"lb_policy\":\"ring_hash\"}", "hash_on");
	refused(RP_KIND_CLUSTERS, "{\"hash_on\":\"header:x\"}", "only valid");
	refused(RP_KIND_CLUSTERS, "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":0}]}",
		"port");
	refused(RP_KIND_CLUSTERS, "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":65536}]}",
		"port");
	refused(RP_KIND_CLUSTERS, "{\"endpoints\":[{\"address\":\"example.com\",\"port\":80}]}",
		"literal");
	refused(RP_KIND_CLUSTERS, "{\"endpoints\":[{\"address\":\"1.2.3.4\",\"port\":1.5}]}",
		"integer");
	refused(RP_KIND_CLUSTERS, "{\"connect_timeout_ms\":-1}", "between");
	refused(RP_KIND_CLUSTERS, "{\"health_check\":{\"interval_ms\":100,\"timeout_ms\":200}}",
		"timeout_ms");
	refused(RP_KIND_CLUSTERS, "{\"a\":1,\"a\":2}", "invalid JSON");
	refused(RP_KIND_CLUSTERS, "{\"name\":\"other\"}", "equal");
}

static void test_listener(void **state)
{
	(void)state;
	char *canon, msg[200];
	assert_int_equal(
		check(RP_KIND_LISTENERS,
		      "{\"address\":\"::1\",\"port\":10000,\"nodes\":[\"edge-1\",\"edge-2\"]}",
		      &canon, NULL, msg),
		RP_OK);
	free(canon);
	refused(RP_KIND_LISTENERS, "{\"address\":\"127.0.0.1\",\"port\":1}", "nodes");
	refused(RP_KIND_LISTENERS, "{\"address\":\"127.0.0.1\",\"port\":1,\"nodes\":[]}",
		"non-empty");
	refused(RP_KIND_LISTENERS, "{\"address\":\"127.0.0.1\",\"port\":1,\"nodes\":[\"*\",\"a\"]}",
		"only entry");
	refused(RP_KIND_LISTENERS, "{\"address\":\"127.0.0.1\",\"port\":1,\"nodes\":[\"a\",\"a\"]}",
		"twice");
	refused(RP_KIND_LISTENERS, "{\"address\":\"127.0.0.1\",\"port\":1,\"nodes\":[\"a b\"]}",
		"node id");
}

static void test_route_refs(void **state)
{
	(void)state;
	char *canon, msg[200];
	struct rp_refs refs;
	assert_int_equal(
		check(RP_KIND_ROUTES,
		      "{\"listener\":\"edge\",\"match\":{\"prefix\":\"/api\"},"
		      "\"weighted_clusters\":[{\"cluster\":\"a\",\"weight\":90},"
		      "{\"cluster\":\"b\",\"weight\":10},{\"cluster\":\"a\",\"weight\":1}],"
		      "\"retries\":{\"attempts\":2,\"on\":[\"5xx\"]},\"prefix_rewrite\":\"/\"}",
		      &canon, &refs, msg),
		RP_OK);
	free(canon);
	assert_int_equal(refs.n, 3); /* listener edge, clusters a and b, deduplicated */
	assert_int_equal(refs.ref[0].kind, RP_KIND_LISTENERS);
	assert_string_equal(refs.ref[0].name, "edge");
	assert_string_equal(refs.ref[2].name, "b");
	refused(RP_KIND_ROUTES, "{\"listener\":\"e\",\"match\":{\"prefix\":\"/\"}}", "exactly one");
	refused(RP_KIND_ROUTES,
		"{\"listener\":\"e\",\"match\":{\"prefix\":\"/\",\"path\":\"/"
		"\"},\"cluster\":\"c\"}",
		"exactly one");
	refused(RP_KIND_ROUTES, "{\"listener\":\"e\",\"match\":{\"path\":\"x\"},\"cluster\":\"c\"}",
		"start with");
	refused(RP_KIND_ROUTES,
		"{\"listener\":\"e\",\"match\":{\"path\":\"/"
		"x\"},\"cluster\":\"c\",\"prefix_rewrite\":\"/\"}",
		"prefix match");
	refused(RP_KIND_ROUTES,
		"{\"listener\":\"e\",\"match\":{\"path\":\"/"
		"x\"},\"cluster\":\"c\",\"retries\":{\"on\":[\"4xx\"]}}",
		"on[0]");
	refused(RP_KIND_ROUTES,
		"{\"listener\":\"e\",\"match\":{\"path\":\"/x\"},\"cluster\":\"bad name\"}",
		"valid name");
	refused(RP_KIND_ROUTES,
		"{\"listener\":\"e\",\"match\":{\"path\":\"/"
		"x\"},\"cluster\":\"c\",\"headers\":[{\"name\":\"a b\",\"exact\":\"v\"}]}",
		"header name");
}

/* ---- apply's structural decode ----------------------------------------- */

static int decode(int kind, const char *json, struct rp_mesh_facts *f, char *msg)
{
	return rp_mesh_decode(kind, json, strlen(json), f, msg, 200);
}

/* Expect apply's decode to refuse @json with a reason mentioning @needle. */
static void undecodable(int kind, const char *json, const char *needle)
{
	struct rp_mesh_facts f;
	char msg[200] = "";
	assert_int_equal(decode(kind, json, &f, msg), RP_ERR_INVALID);
	assert_null(f.json);
	if (!strstr(msg, needle))
		fail_msg("reason \"%s\" lacks \"%s\" for %s", msg, needle, json);
}

static void test_decode(void **state)
{
	(void)state;
	struct rp_mesh_facts f;
	char msg[200];
	assert_int_equal(
		decode(RP_KIND_LISTENERS,
		       "{\"address\":\"::\",\"port\":99999,\"nodes\":[\"a\",\"a\"],\"x\":1}", &f,
		       msg),
		RP_OK); /* schema errors are the API's business */
	assert_string_equal(f.address, "::");
	assert_int_equal(f.port, 99999);
	assert_int_equal(json_array_size(f.nodes), 2);
	rp_mesh_facts_release(&f);
	assert_int_equal(decode(RP_KIND_ROUTES,
				"{\"listener\":\"e\",\"cluster\":\"bad name\","
				"\"weighted_clusters\":[{\"cluster\":\"b\"}]}",
				&f, msg),
			 RP_OK);
	assert_int_equal(f.refs.n, 3); /* a bad name names no item: apply finds it dangling */
	assert_string_equal(f.refs.ref[1].name, "bad name");
	rp_mesh_facts_release(&f);
	assert_int_equal(decode(RP_KIND_CLUSTERS, "{\"lb_policy\":7}", &f, msg), RP_OK);
	rp_mesh_facts_release(&f);
	undecodable(RP_KIND_CLUSTERS, "{", "not JSON");
	undecodable(RP_KIND_CLUSTERS, "{\"a\":1,\"a\":2}", "not JSON");
	undecodable(RP_KIND_ROUTES, "[]", "object");
	undecodable(RP_KIND_ROUTES, "{\"cluster\":\"c\"}", "listener must be a string");
	undecodable(RP_KIND_ROUTES, "{\"listener\":\"e\",\"weighted_clusters\":{}}", "array");
	undecodable(RP_KIND_ROUTES, "{\"listener\":\"e\",\"weighted_clusters\":[1]}", "object");
	undecodable(RP_KIND_ROUTES, "{\"listener\":\"e\",\"weighted_clusters\":[{}]}", "cluster");
	undecodable(RP_KIND_ROUTES, "{\"listener\":\"\"}", "1 to 128");
	undecodable(RP_KIND_ROUTES, "{\"listener\":\"a\\u0000b\"}", "not JSON"); /* NUL */
	undecodable(RP_KIND_LISTENERS, "{\"port\":1,\"nodes\":[\"a\"]}", "address");
	undecodable(RP_KIND_LISTENERS, "{\"address\":\"::\",\"port\":\"1\",\"nodes\":[\"a\"]}",
		    "port");
	undecodable(RP_KIND_LISTENERS, "{\"address\":\"::\",\"port\":1,\"nodes\":[]}", "nodes");
	undecodable(RP_KIND_LISTENERS, "{\"address\":\"::\",\"port\":1,\"nodes\":[null]}",
		    "nodes[0]");
	undecodable(RP_KIND_KV, "{}", "no mesh value");
}

/* Whatever the API accepts, apply decodes, and finds the same references. */
static void test_validate_then_decode(void **state)
{
	(void)state;
	static const struct {
		int kind;
		const char *json;
	} ok[] = {
		{RP_KIND_CLUSTERS, "{}"},
		{RP_KIND_CLUSTERS, "{\"lb_policy\":\"ring_hash\",\"hash_on\":\"header:u\","
				   "\"endpoints\":[{\"address\":\"::1\",\"port\":1}]}"},
		{RP_KIND_LISTENERS, "{\"address\":\"0.0.0.0\",\"port\":80,\"nodes\":[\"*\"]}"},
		{RP_KIND_LISTENERS,
		 "{\"address\":\"10.1.1.1\",\"port\":80,\"nodes\":[\"a\",\"b\"]}"},
		{RP_KIND_ROUTES,
		 "{\"listener\":\"e\",\"match\":{\"path\":\"/\"},\"cluster\":\"c\"}"},
		{RP_KIND_ROUTES, "{\"listener\":\"e\",\"match\":{\"prefix\":\"/\"},"
				 "\"weighted_clusters\":[{\"cluster\":\"a\",\"weight\":1},"
				 "{\"cluster\":\"b\",\"weight\":2}]}"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char *canon, msg[200];
		struct rp_refs refs;
		struct rp_mesh_facts f;
		assert_int_equal(check(ok[i].kind, ok[i].json, &canon, &refs, msg), RP_OK);
		assert_int_equal(decode(ok[i].kind, canon, &f, msg), RP_OK);
		assert_int_equal(f.refs.n, refs.n);
		for (unsigned r = 0; r < refs.n; r++) {
			assert_int_equal(f.refs.ref[r].kind, refs.ref[r].kind);
			assert_string_equal(f.refs.ref[r].name, refs.ref[r].name);
		}
		rp_mesh_facts_release(&f);
		free(canon);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cluster_defaults),
		cmocka_unit_test(test_cluster_refused),
		cmocka_unit_test(test_listener),
		cmocka_unit_test(test_route_refs),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_validate_then_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
