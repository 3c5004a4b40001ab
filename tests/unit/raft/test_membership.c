/* Membership changes (raft/membership.c) on canonical/raft's fixture: an
 * add whose promotion fails is rolled back (raft_remove, then the member
 * row deleted) before it is answered; a successful add stays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cluster.h"
#include "raftplane/err.h"

struct done {
	int called;
	int status;
	char msg[256];
};

static void on_done(void *arg, int status, const char *msg)
{
	struct done *d = arg;
	d->called++;
	d->status = status;
	snprintf(d->msg, sizeof d->msg, "%s", msg);
}

static bool is_done(void *arg)
{
	return ((struct done *)arg)->called > 0;
}

struct has {
	struct tcluster *c;
	uint64_t id;
};

static bool has_member(void *arg)
{
	struct has *h = arg;
	return rp_membership_has(&h->c->members[0], h->id);
}

static struct rp_member member(uint64_t id, int role)
{
	struct rp_member m = {.id = id, .role = role};
	snprintf(m.raft, sizeof m.raft, "%llu", (unsigned long long)id); /* fixture addresses */
	snprintf(m.http, sizeof m.http, "127.0.0.1:%llu", 8000 + (unsigned long long)id);
	return m;
}

static void test_failed_add_is_rolled_back(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(1);
	struct done d = {0};
	struct has h = {c, 9};
	struct rp_member row;
	tc_elect_ready(c, 0);
	/* server 9 does not exist: it can never catch up to be promoted */
	struct rp_member m = member(9, RP_ROLE_VOTER);
	assert_int_equal(rp_membership_add(&c->members[0], &m, on_done, &d), RP_OK);
	assert_int_equal(c->members[0].ops, 1);
	/* the add itself succeeds first: recorded, then a spare in raft */
	assert_true(tc_step_until(c, has_member, &h, 10000));
	assert_int_equal(rp_store_member_get(c->store[0], 9, &row), RP_OK);
	assert_false(d.called);
	/* the promotion gives up (catch-up round over raft's limit) */
	assert_true(tc_step_until(c, is_done, &d, 120000));
	assert_int_equal(d.called, 1);
	assert_int_equal(d.status, RP_ERR_UNAVAILABLE);
	assert_string_equal(d.msg, "adding member 9 failed: the new node did not catch up in "
				   "time (is it running?)");
	/* undone: neither in raft's configuration nor in the members table */
	assert_false(rp_membership_has(&c->members[0], 9));
	assert_int_equal(tc_raft(c, 0)->configuration.n, 1);
	assert_int_equal(rp_store_member_get(c->store[0], 9, &row), RP_ERR_NOT_FOUND);
	assert_int_equal(c->members[0].ops, 0);
	/* the address is free again: a second attempt is not a conflict */
	struct done d2 = {0};
	m = member(9, RP_ROLE_SPARE);
	assert_int_equal(rp_membership_add(&c->members[0], &m, on_done, &d2), RP_OK);
	assert_true(tc_step_until(c, is_done, &d2, 10000));
	assert_int_equal(d2.status, RP_OK);
	tc_free(c);
}

static void test_spare_add_stays(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(1);
	struct done d = {0};
	struct rp_member row;
	tc_elect_ready(c, 0);
	struct rp_member m = member(7, RP_ROLE_SPARE);
	assert_int_equal(rp_membership_add(&c->members[0], &m, on_done, &d), RP_OK);
	assert_true(tc_step_until(c, is_done, &d, 10000));
	assert_int_equal(d.status, RP_OK);
	assert_string_equal(d.msg, "member added");
	assert_true(rp_membership_has(&c->members[0], 7));
	assert_int_equal(rp_store_member_get(c->store[0], 7, &row), RP_OK);
	assert_string_equal(row.http, "127.0.0.1:8007");
	/* the same id again is a conflict, refused before anything starts */
	struct done d2 = {0};
	assert_int_equal(rp_membership_add(&c->members[0], &m, on_done, &d2), RP_ERR_CONFLICT);
	assert_int_equal(c->members[0].ops, 0);
	assert_false(d2.called);
	tc_free(c);
}

static void test_add_refused_without_ready_leader(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct done d = {0};
	struct rp_member m = member(9, RP_ROLE_VOTER);
	raft_fixture_elect(&c->f, 0); /* leader, not ready yet */
	assert_int_equal(rp_membership_add(&c->members[0], &m, on_done, &d), RP_ERR_NO_LEADER);
	assert_int_equal(rp_membership_add(&c->members[1], &m, on_done, &d), RP_ERR_NO_LEADER);
	assert_false(d.called);
	tc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_add_is_rolled_back),
		cmocka_unit_test(test_spare_add_stays),
		cmocka_unit_test(test_add_refused_without_ready_leader),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
