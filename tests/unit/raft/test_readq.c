/* Batched read barriers (raft/readq.c) on canonical/raft's fixture: reads
 * queued while a barrier is in flight are served by the next one, in
 * order; on leadership loss every read fails with RP_ERR_NO_LEADER. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster.h"
#include "raftplane/err.h"

#define MAX_READS 8

struct reads {
	struct tcluster *c;
	unsigned leader;
	unsigned n;           /* answered so far */
	int order[MAX_READS]; /* which read, in answer order */
	int status[MAX_READS];
	uint64_t barrier[MAX_READS]; /* barriers issued when answered */
};

struct read_arg {
	struct reads *r;
	int which;
};

static void on_read(void *arg, int status)
{
	struct read_arg *a = arg;
	struct reads *r = a->r;
	assert_true(r->n < MAX_READS);
	r->order[r->n] = a->which;
	r->status[r->n] = status;
	r->barrier[r->n] = r->c->stats[r->leader].barriers;
	r->n++;
}

static bool all_answered(void *arg)
{
	struct reads *r = arg;
	return r->n == 4;
}

/* Elect server 0 and ready it, then submit four reads on it. */
static void submit_four(struct tcluster *c, struct reads *r, struct read_arg a[4])
{
	tc_elect_ready(c, 0);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct read_arg){r, i};
		assert_int_equal(rp_readq_submit(&c->readq[0], on_read, &a[i]), RP_OK);
	}
}

static void test_reads_queued_behind_a_barrier_share_the_next(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct reads r = {.c = c, .leader = 0};
	struct read_arg a[4];
	submit_four(c, &r, a);
	/* the first read started a barrier; the other three wait for the next */
	assert_int_equal(c->stats[0].barriers, 1);
	assert_int_equal(r.n, 0);
	assert_true(tc_step_until(c, all_answered, &r, 5000));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.order[i], i);
		assert_int_equal(r.status[i], RP_OK);
	}
	assert_int_equal(r.barrier[0], 1); /* served by the first barrier */
	for (int i = 1; i < 4; i++)
		assert_int_equal(r.barrier[i], 2); /* all three by the second */
	assert_int_equal(c->stats[0].barriers, 2);
	assert_int_equal(c->stats[0].reads_batched, 4);
	tc_free(c);
}

static void test_reads_fail_in_order_when_leadership_is_lost(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct reads r = {.c = c, .leader = 0};
	struct read_arg a[4];
	submit_four(c, &r, a);
	raft_fixture_depose(&c->f); /* the barrier in flight never commits */
	assert_int_not_equal(raft_state(tc_raft(c, 0)), RAFT_LEADER);
	assert_int_equal(r.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.order[i], i);
		assert_int_equal(r.status[i], RP_ERR_NO_LEADER);
	}
	assert_int_equal(c->stats[0].barriers, 1);
	assert_int_equal(c->stats[0].reads_batched, 0);
	/* a follower does not queue reads at all */
	assert_int_equal(rp_readq_submit(&c->readq[0], on_read, &a[0]), RP_ERR_NO_LEADER);
	assert_int_equal(r.n, 4);
	tc_free(c);
}

static void test_a_follower_refuses_reads(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct reads r = {.c = c, .leader = 1};
	struct read_arg a = {&r, 0};
	tc_elect_ready(c, 0);
	assert_int_equal(rp_readq_submit(&c->readq[1], on_read, &a), RP_ERR_NO_LEADER);
	assert_int_equal(c->stats[1].barriers, 0);
	tc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_queued_behind_a_barrier_share_the_next),
		cmocka_unit_test(test_reads_fail_in_order_when_leadership_is_lost),
		cmocka_unit_test(test_a_follower_refuses_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
