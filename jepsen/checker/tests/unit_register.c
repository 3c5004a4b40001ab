/* Unit tests: register linearizability on hand-made histories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit_util.h"

static void expect_verdict(const char *text, enum rp_verdict want)
{
	struct ut_run r;
	int got = ut_register(&r, text, NULL);

	if (got < 0) {
		print_error("error: %s\n", r.errmsg);
	}
	assert_int_equal(got, want);
	ut_free(&r);
}

static void test_valid_sequential(void **state)
{
	(void)state;
	expect_verdict(EV(0, "invoke", "read", "k", "null") EV(0, "ok", "read", "k", "null") EV(
			       0, "invoke", "write", "k", "1") EV(0, "ok", "write", "k", "1")
			       EV(1, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "1")
				       EV(1, "invoke", "cas", "k", "[1,2]")
					       EV(1, "ok", "cas", "k", "[1,2]")
						       EV(0, "invoke", "read", "k", "null")
							       EV(0, "ok", "read", "k", "2"),
		       RP_VERDICT_VALID);
}

static void test_concurrent_overlap_valid(void **state)
{
	(void)state;
	/* Two reads overlap a write: one sees the old value, one the new. */
	expect_verdict(EV(0, "invoke", "write", "k", "1") EV(1, "invoke", "read", "k", "null")
			       EV(2, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "1")
				       EV(2, "ok", "read", "k", "null")
					       EV(0, "ok", "write", "k", "1")
						       EV(1, "invoke", "read", "k", "null")
							       EV(1, "ok", "read", "k", "1"),
		       RP_VERDICT_VALID);
}

static const char stale_read[] = EV(0, "invoke", "write", "k", "1") EV(0, "ok", "write", "k", "1")
	EV(1, "invoke", "write", "k", "2") EV(1, "ok", "write", "k", "2")
		EV(2, "invoke", "read", "k", "null") EV(2, "ok", "read", "k", "1");

static void test_stale_read_invalid(void **state)
{
	(void)state;
	expect_verdict(stale_read, RP_VERDICT_INVALID);
}

static void test_lost_update_invalid(void **state)
{
	(void)state;
	/* Both cas from 0 succeed: only one can have seen 0. */
	expect_verdict(EV(0, "invoke", "write", "k",
			  "0") EV(0, "ok", "write", "k", "0") EV(1, "invoke", "cas", "k", "[0,1]")
			       EV(2, "invoke", "cas", "k", "[0,2]") EV(1, "ok", "cas", "k", "[0,1]")
				       EV(2, "ok", "cas", "k", "[0,2]"),
		       RP_VERDICT_INVALID);
}

static void test_info_write_took_effect(void **state)
{
	(void)state;
	expect_verdict(
		EV(0, "invoke", "write", "k", "1") EV(0, "info", "write", "k", "\"timed-out\"")
			EV(1, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "1")
				EV(1, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "1"),
		RP_VERDICT_VALID);
}

static void test_info_write_no_effect(void **state)
{
	(void)state;
	expect_verdict(EV(0, "invoke", "write", "k", "1") EV(0, "info", "write", "k", "null")
			       EV(1, "invoke", "read", "k", "null")
				       EV(1, "ok", "read", "k", "null"),
		       RP_VERDICT_VALID);
}

static void test_info_write_late_effect(void **state)
{
	(void)state;
	/* An info write may take effect long after it timed out... */
	expect_verdict(EV(0, "invoke", "write", "k", "1") EV(0, "info", "write", "k", "null")
			       EV(1, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "null")
				       EV(1, "invoke", "read", "k", "null")
					       EV(1, "ok", "read", "k", "1"),
		       RP_VERDICT_VALID);
	/* ...but only once: back to nil after seeing it is impossible. */
	expect_verdict(EV(0, "invoke", "write", "k", "1") EV(0, "info", "write", "k", "null")
			       EV(1, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "1")
				       EV(1, "invoke", "read", "k", "null")
					       EV(1, "ok", "read", "k", "null"),
		       RP_VERDICT_INVALID);
}

static void test_incomplete_is_info(void **state)
{
	(void)state;
	expect_verdict(EV(0, "invoke", "cas", "k", "[1,2]") EV(1, "invoke", "write", "k", "1")
			       EV(1, "ok", "write", "k", "1") EV(1, "invoke", "read", "k", "null")
				       EV(1, "ok", "read", "k", "2"),
		       RP_VERDICT_VALID);
}

static void test_read_never_written(void **state)
{
	(void)state;
	expect_verdict(EV(0, "invoke", "write", "k", "1") EV(0, "ok", "write", "k", "1")
			       EV(1, "invoke", "read", "k", "null") EV(1, "ok", "read", "k", "7"),
		       RP_VERDICT_INVALID);
}

static void test_failed_cas_ignored(void **state)
{
	(void)state;
	/* A failed cas that could have applied still did not. */
	expect_verdict(EV(0, "invoke", "write", "k", "1") EV(0, "ok", "write", "k", "1")
			       EV(1, "invoke", "cas", "k", "[1,3]")
				       EV(1, "fail", "cas", "k", "[1,3]") EV(2, "invoke", "cas",
									     "k", "[5,6]")
					       EV(2, "fail", "cas", "k", "[5,6]")
						       EV(0, "invoke", "read", "k", "null")
							       EV(0, "ok", "read", "k", "1"),
		       RP_VERDICT_VALID);
}

static void test_failed_read_dropped(void **state)
{
	(void)state;
	expect_verdict(EV(0, "invoke", "read", "k", "null")
			       EV(0, "fail", "read", "k", "\"timed-out\"")
				       EV(1, "invoke", "read", "k", "null")
					       EV(1, "info", "read", "k", "null"),
		       RP_VERDICT_VALID);
}

static void test_independent_keys(void **state)
{
	struct ut_run r;
	const struct rp_key_result *a, *b, *c;

	(void)state;
	assert_int_equal(
		ut_register(&r,
			    EV(0, "invoke", "write", "a", "1") EV(1, "invoke", "write", "b", "1")
				    EV(0, "ok", "write", "a", "1") EV(1, "ok", "write", "b", "1")
					    EV(2, "invoke", "read", "c", "null") EV(2, "ok", "read",
										    "c", "null")
						    EV(0, "invoke", "read", "a", "null")
							    EV(1, "invoke", "read", "b", "null")
								    EV(0, "ok", "read", "a", "1")
									    EV(1, "ok", "read", "b",
									       "null"),
			    NULL),
		RP_VERDICT_INVALID);
	a = ut_key(&r, "a");
	b = ut_key(&r, "b");
	c = ut_key(&r, "c");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(a->verdict, RP_VERDICT_VALID);
	assert_int_equal(b->verdict, RP_VERDICT_INVALID);
	assert_int_equal(c->verdict, RP_VERDICT_VALID);
	assert_int_equal(r.reg.n_keys, 3);
	ut_free(&r);
}

/* @n writers all concurrent, then a read of a value nobody wrote: the
 * search has to try every order of the writes before giving up. */
static char *wide_history(int n)
{
	size_t cap = (size_t)n * 256 + 512, len = 0;
	char *buf = malloc(cap);

	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, cap - len,
					"{\"process\":%d,\"type\":\"invoke\",\"f\":"
					"\"write\",\"key\":\"k\",\"value\":%d}\n",
					i, i);
	}
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, cap - len,
					"{\"process\":%d,\"type\":\"ok\",\"f\":"
					"\"write\",\"key\":\"k\",\"value\":%d}\n",
					i, i);
	}
	snprintf(buf + len, cap - len, "%s",
		 EV(999, "invoke", "read", "k", "null") EV(999, "ok", "read", "k", "999"));
	return buf;
}

static void test_budget_exhaustion_unknown(void **state)
{
	struct rp_lin_options opt = rp_lin_options_default();
	char *text = wide_history(40);
	struct ut_run r;

	(void)state;
	opt.key_budget_ms = 20;
	assert_int_equal(ut_register(&r, text, &opt), RP_VERDICT_UNKNOWN);
	assert_string_equal(r.reg.keys[0].reason, "time budget exceeded");
	ut_free(&r);

	opt.key_budget_ms = 0;
	opt.global_budget_ms = 20;
	assert_int_equal(ut_register(&r, text, &opt), RP_VERDICT_UNKNOWN);
	ut_free(&r);
	free(text);
}

static void test_stale_read_window(void **state)
{
	struct ut_run r;
	const struct rp_window *w;
	bool has_read = false;
	char *text;

	(void)state;
	assert_int_equal(ut_register(&r, stale_read, NULL), RP_VERDICT_INVALID);
	w = &r.reg.keys[0].window;
	assert_true(w->found);
	assert_true(w->minimal);
	/* events 2..5: the write of 2 and the read of 1 after it */
	assert_false(w->from_start);
	assert_int_equal(w->lo, 2);
	assert_int_equal(w->hi, 5);
	assert_int_equal(w->n_ops, 2);
	for (size_t i = 0; i < w->n_ops; i++) {
		const struct rp_op *op = &r.ops.ops[w->ops[i].op];
		has_read |= op->fn == RP_FN_READ && op->process == 2 && op->cmp_value.a == 1 &&
			    w->ops[i].required;
	}
	assert_true(has_read);
	text = ut_register_text(&r);
	assert_non_null(text);
	assert_non_null(strstr(text, "shortest failing window: events 2..5"));
	assert_non_null(strstr(text, "process 2      read  1"));
	assert_non_null(strstr(text, "window ends here"));
	free(text);
	ut_free(&r);
}

int run_register_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_sequential),
		cmocka_unit_test(test_concurrent_overlap_valid),
		cmocka_unit_test(test_stale_read_invalid),
		cmocka_unit_test(test_lost_update_invalid),
		cmocka_unit_test(test_info_write_took_effect),
		cmocka_unit_test(test_info_write_no_effect),
		cmocka_unit_test(test_info_write_late_effect),
		cmocka_unit_test(test_incomplete_is_info),
		cmocka_unit_test(test_read_never_written),
		cmocka_unit_test(test_failed_cas_ignored),
		cmocka_unit_test(test_failed_read_dropped),
		cmocka_unit_test(test_independent_keys),
		cmocka_unit_test(test_budget_exhaustion_unknown),
		cmocka_unit_test(test_stale_read_window),
	};

	return cmocka_run_group_tests_name("register", tests, NULL, NULL);
}
