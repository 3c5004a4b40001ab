/* Leader readiness (raft/readiness.c) on canonical/raft's fixture: a new
 * leader is not ready until an entry of its own term (our barrier) was
 * applied, and not ready again after it lost leadership until it applied
 * one in its new term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster.h"
#include "raftplane/err.h"

/* Checked after every fixture step: ready only once the barrier appended
 * in the current term is applied. */
struct watch {
	struct tcluster *c;
	unsigned i;
	raft_index barrier_index; /* last index right after the tick appended it */
	raft_term term;
	int violations;
};

static bool watch_ready(void *arg)
{
	struct watch *w = arg;
	struct raft *r = tc_raft(w->c, w->i);
	int ready = rp_readiness_ready(&w->c->ready[w->i]);
	if (ready && (r->current_term != w->term || raft_last_applied(r) < w->barrier_index))
		w->violations++;
	return ready;
}

static struct rp_readiness *rd(struct tcluster *c, unsigned i)
{
	return &c->ready[i];
}

/* Elect @i without ticking, then tick once: the barrier is appended. */
static void elect_and_append(struct tcluster *c, unsigned i, struct watch *w)
{
	struct raft *r = tc_raft(c, i);
	raft_fixture_elect(&c->f, i);
	assert_int_equal(raft_state(r), RAFT_LEADER);
	assert_false(rp_readiness_ready(rd(c, i))); /* leader, but no barrier yet */
	raft_index before = raft_last_index(r);
	rp_readiness_tick(rd(c, i));
	assert_true(rd(c, i)->inflight);
	assert_int_equal(raft_last_index(r), before + 1);
	assert_false(rp_readiness_ready(rd(c, i))); /* appended, not applied */
	*w = (struct watch){
		.c = c, .i = i, .barrier_index = raft_last_index(r), .term = r->current_term};
}

static void test_not_ready_until_a_barrier_of_its_term_is_applied(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct watch w;
	elect_and_append(c, 0, &w);
	assert_true(tc_step_until(c, watch_ready, &w, 5000));
	assert_int_equal(w.violations, 0);
	assert_int_equal(rd(c, 0)->ready_term, tc_raft(c, 0)->current_term);
	for (unsigned i = 1; i < 3; i++)
		assert_false(rp_readiness_ready(rd(c, i)));
	tc_free(c);
}

static void test_not_ready_after_losing_leadership(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct watch w;
	elect_and_append(c, 0, &w);
	assert_true(tc_step_until(c, watch_ready, &w, 5000));
	raft_term first = tc_raft(c, 0)->current_term;

	raft_fixture_depose(&c->f);
	assert_false(rp_readiness_ready(rd(c, 0)));

	/* leader again, in a later term: the old barrier does not count */
	elect_and_append(c, 0, &w);
	assert_true(tc_raft(c, 0)->current_term > first);
	assert_int_equal(rd(c, 0)->ready_term, first);
	assert_true(tc_step_until(c, watch_ready, &w, 5000));
	assert_int_equal(w.violations, 0);
	tc_free(c);
}

static void test_a_barrier_lost_with_leadership_makes_nobody_ready(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct watch w;
	elect_and_append(c, 0, &w);
	raft_fixture_depose(&c->f); /* the barrier fails: never committed */
	assert_false(rd(c, 0)->inflight);
	assert_int_equal(rd(c, 0)->ready_term, 0);
	assert_false(rp_readiness_ready(rd(c, 0)));

	/* another server leads now; it needs its own barrier */
	elect_and_append(c, 1, &w);
	assert_true(tc_step_until(c, watch_ready, &w, 5000));
	assert_int_equal(w.violations, 0);
	assert_false(rp_readiness_ready(rd(c, 0)));
	tc_free(c);
}

struct woken {
	struct rp_leader_waiter w;
	int n;
};

static void on_woken(struct rp_leader_waiter *w)
{
	((struct woken *)w)->n++;
}

static bool was_woken(void *arg)
{
	return ((struct woken *)arg)->n > 0;
}

static void test_waiters_are_woken_when_ready(void **state)
{
	(void)state;
	struct tcluster *c = tc_new(3);
	struct watch w;
	struct woken k = {.w.cb = on_woken};
	elect_and_append(c, 0, &w);
	tc_tick(c); /* the election itself wakes nothing we registered later */
	rp_readiness_wait(rd(c, 0), &k.w);
	assert_true(tc_step_until(c, was_woken, &k, 5000));
	assert_int_equal(k.n, 1);
	assert_true(rp_readiness_ready(rd(c, 0)));
	rp_readiness_unwait(&k.w); /* harmless: no longer waiting */
	tc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_ready_until_a_barrier_of_its_term_is_applied),
		cmocka_unit_test(test_not_ready_after_losing_leadership),
		cmocka_unit_test(test_a_barrier_lost_with_leadership_makes_nobody_ready),
		cmocka_unit_test(test_waiters_are_woken_when_ready),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
