/* Unit tests: set checker and parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit_util.h"

#define ADD(p, type, v) EV(p, type, "add", "s", #v)

static void test_set_lost_ack(void **state)
{
	struct ut_run r;

	(void)state;
	assert_int_equal(ut_set(&r,
				ADD(0, "invoke", 1) ADD(0, "ok", 1) ADD(1, "invoke", 2)
					ADD(1, "ok", 2) ADD(0, "invoke", 3) ADD(0, "ok", 3)
						EV(2, "invoke", "final-read", "s", "null")
							EV(2, "ok", "final-read", "s", "[1,3]")),
			 RP_VERDICT_INVALID);
	assert_int_equal(r.set.n_keys, 1);
	assert_int_equal(r.set.keys[0].n_lost, 1);
	assert_int_equal(r.set.keys[0].lost[0], 2);
	ut_free(&r);
}

static void test_set_info_missing_valid(void **state)
{
	struct ut_run r;

	(void)state;
	assert_int_equal(
		ut_set(&r,
		       ADD(0, "invoke", 1) ADD(0, "ok", 1) ADD(1, "invoke", 2) ADD(1, "info", 2)
			       ADD(3, "invoke", 3) ADD(3, "info", 3) ADD(4, "invoke", 4)
				       ADD(4, "fail", 4) EV(2, "invoke", "final-read", "s", "null")
					       EV(2, "ok", "final-read", "s", "[1,3]")),
		RP_VERDICT_VALID);
	assert_int_equal(r.set.keys[0].info_present, 1);
	assert_int_equal(r.set.keys[0].info_absent, 1);
	assert_int_equal(r.set.keys[0].n_lost, 0);
	ut_free(&r);
}

static void test_set_unexpected_and_concurrent(void **state)
{
	struct ut_run r;

	(void)state;
	/* 9 was never added; 2 was acked only after the read began. */
	assert_int_equal(ut_set(&r,
				ADD(0, "invoke", 1) ADD(0, "ok", 1) ADD(1, "invoke", 2)
					EV(2, "invoke", "final-read", "s", "null") ADD(1, "ok", 2)
						EV(2, "ok", "final-read", "s", "[1,9]")),
			 RP_VERDICT_INVALID);
	assert_int_equal(r.set.keys[0].n_unexpected, 1);
	assert_int_equal(r.set.keys[0].unexpected[0], 9);
	assert_int_equal(r.set.keys[0].n_lost, 0);
	assert_int_equal(r.set.keys[0].concurrent_absent, 1);
	ut_free(&r);
}

static void test_set_no_final_read_unknown(void **state)
{
	struct ut_run r;

	(void)state;
	assert_int_equal(ut_set(&r, ADD(0, "invoke", 1) ADD(0, "ok", 1)), RP_VERDICT_UNKNOWN);
	ut_free(&r);
}

static void expect_parse_error(const char *text, int err, const char *needle)
{
	struct ut_run r;

	assert_int_equal(ut_load(&r, text, false), err);
	if (strstr(r.errmsg, needle) == NULL) {
		print_error("errmsg '%s' lacks '%s'\n", r.errmsg, needle);
		fail();
	}
	ut_free(&r);
}

static void test_jsonl_malformed(void **state)
{
	(void)state;
	expect_parse_error(EV(0, "invoke", "read", "k", "null") "\n{oops\n", RP_CHK_EPARSE,
			   "line 3");
	expect_parse_error(EV(0, "invoke", "write", "k", "1.5"), RP_CHK_EPARSE, "line 1");
	expect_parse_error(EV(0, "invoke", "write", "k", "99999999999999999999"), RP_CHK_EPARSE,
			   "line 1");
	expect_parse_error(EV(0, "invoke", "cas", "k", "[1]"), RP_CHK_EPARSE, "line 1");
	expect_parse_error("{\"process\":0,\"type\":\"begin\",\"f\":\"read\"}", RP_CHK_EPARSE,
			   "type");
	expect_parse_error(EV(0, "ok", "read", "k", "1"), RP_CHK_EHISTORY, "no pending invocation");
	expect_parse_error(EV(0, "invoke", "read", "k", "null")
				   EV(0, "invoke", "read", "k", "null"),
			   RP_CHK_EHISTORY, "line 2");
	expect_parse_error("{\"index\":5,\"process\":0,\"type\":\"invoke\","
			   "\"f\":\"read\"}\n{\"index\":5,\"process\":0,"
			   "\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n",
			   RP_CHK_EPARSE, "does not increase");
}

static void test_jsonl_line_too_long(void **state)
{
	size_t n = ((size_t)1 << 20) + 10;
	char *text = malloc(n + 1);

	(void)state;
	memset(text, ' ', n);
	text[n] = '\0';
	expect_parse_error(text, RP_CHK_ELIMIT, "line 1");
	free(text);
}

static void test_jsonl_nemesis_skipped(void **state)
{
	struct ut_run r;

	(void)state;
	assert_int_equal(ut_register(&r,
				     EV(0, "invoke", "write", "k",
					"1") "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":"
					     "\"start-partition\",\"value\":[\"n1\",\"n2\"]}\n" EV(
						     0, "ok", "write", "k", "1")
						     EV(0, "invoke", "read", "k", "null")
							     EV(0, "ok", "read", "k", "1"),
				     NULL),
			 RP_VERDICT_VALID);
	assert_int_equal(r.ops.n, 2);
	assert_int_equal(r.ops.n_nemesis, 1);
	ut_free(&r);
}

static void test_etcd_format(void **state)
{
	struct ut_run r;

	(void)state;
	assert_int_equal(ut_load(&r,
				 "INFO  jepsen.util - 0\t:invoke\t:write\t3\n"
				 "INFO  jepsen.util - 0   :ok     :write  3\n"
				 "INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n"
				 "INFO  jepsen.util - 2\t:invoke\t:read\tnil\n"
				 "INFO  jepsen.util - 2\t:fail\t:read\t:timed-out\n"
				 "INFO  jepsen.util - 1\t:info\t:cas\t:timed-out\n",
				 true),
			 RP_CHK_OK);
	assert_int_equal(r.ops.n, 3);
	assert_int_equal(r.ops.ops[1].inv_value.kind, RP_VAL_PAIR);
	assert_int_equal(r.ops.ops[1].inv_value.b, 4);
	assert_int_equal(r.ops.ops[1].outcome, RP_OUT_INFO);
	assert_int_equal(r.ops.ops[2].outcome, RP_OUT_FAIL);
	ut_free(&r);
	assert_int_equal(ut_load(&r, "INFO  jepsen.util - 0\t:invoke\t:write\tx\n", true),
			 RP_CHK_EPARSE);
	assert_non_null(strstr(r.errmsg, "line 1"));
	ut_free(&r);
}

int run_set_parse_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_lost_ack),
		cmocka_unit_test(test_set_info_missing_valid),
		cmocka_unit_test(test_set_unexpected_and_concurrent),
		cmocka_unit_test(test_set_no_final_read_unknown),
		cmocka_unit_test(test_jsonl_malformed),
		cmocka_unit_test(test_jsonl_line_too_long),
		cmocka_unit_test(test_jsonl_nemesis_skipped),
		cmocka_unit_test(test_etcd_format),
	};

	return cmocka_run_group_tests_name("set_and_parse", tests, NULL, NULL);
}
