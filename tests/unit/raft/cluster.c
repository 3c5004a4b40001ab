/* The fixture-based test cluster (see cluster.h). Its asserts carry the
 * calls they check, so they stay on in every build type. */
#undef NDEBUG
#include "cluster.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "raftplane/err.h"

struct tcluster *tc_new(unsigned n)
{
	struct tcluster *c = calloc(1, sizeof *c);
	struct raft_configuration conf;
	char err[256];
	assert(c && n <= TC_MAX);
	c->n = n;
	assert(uv_loop_init(&c->loop) == 0);
	assert(raft_fixture_initialize(&c->f) == 0);
	struct rp_node_config cfg = {.snapshot_threshold = 1024, .snapshot_trailing = 128};
	for (unsigned i = 0; i < n; i++) {
		assert(rp_store_create(&c->store[i], err, sizeof err) == RP_OK);
		rp_fsm_init(&c->fsm[i], NULL, c->store[i], &c->stats[i], NULL, NULL, &cfg);
		assert(raft_fixture_grow(&c->f, &c->fsm[i].fsm) == 0);
		struct raft *r = raft_fixture_get(&c->f, i);
		c->fsm[i].raft = r;
		snprintf(c->http[i], sizeof c->http[i], "127.0.0.1:%u", 9000 + i);
		rp_readiness_init(&c->ready[i], r, &c->stats[i]);
		rp_proposer_init(&c->proposer[i], r, &c->ready[i], &c->stats[i]);
		rp_readq_init(&c->readq[i], &c->loop, r, &c->ready[i], &c->stats[i]);
		rp_membership_init(&c->members[i], r, &c->proposer[i], &c->ready[i], c->store[i],
				   r->id, c->http[i], NULL, 0);
	}
	assert(raft_fixture_configuration(&c->f, n, &conf) == 0);
	assert(raft_fixture_bootstrap(&c->f, &conf) == 0);
	raft_configuration_close(&conf);
	assert(raft_fixture_start(&c->f) == 0);
	return c;
}

static void on_closed(void *arg)
{
	(*(unsigned *)arg)--;
}

void tc_free(struct tcluster *c)
{
	unsigned open = c->n;
	for (unsigned i = 0; i < c->n; i++) {
		rp_readiness_close(&c->ready[i]);
		rp_readq_close(&c->readq[i], on_closed, &open);
	}
	raft_fixture_close(&c->f); /* fails what raft still holds */
	uv_run(&c->loop, UV_RUN_DEFAULT);
	assert(open == 0);
	assert(uv_loop_close(&c->loop) == 0);
	for (unsigned i = 0; i < c->n; i++)
		rp_store_destroy(c->store[i]);
	free(c);
}

struct raft *tc_raft(struct tcluster *c, unsigned i)
{
	return raft_fixture_get(&c->f, i);
}

void tc_tick(struct tcluster *c)
{
	uv_run(&c->loop, UV_RUN_NOWAIT);
	for (unsigned i = 0; i < c->n; i++)
		rp_readiness_tick(&c->ready[i]);
}

struct until {
	struct tcluster *c;
	bool (*stop)(void *arg);
	void *arg;
};

static bool until_stop(struct raft_fixture *f, void *arg)
{
	struct until *u = arg;
	(void)f;
	tc_tick(u->c);
	return u->stop(u->arg);
}

bool tc_step_until(struct tcluster *c, bool (*stop)(void *arg), void *arg, unsigned max_ms)
{
	struct until u = {c, stop, arg};
	tc_tick(c);
	if (stop(arg))
		return true;
	return raft_fixture_step_until(&c->f, until_stop, &u, max_ms);
}

struct ready_arg {
	struct tcluster *c;
	unsigned i;
};

static bool is_ready(void *arg)
{
	struct ready_arg *a = arg;
	return rp_readiness_ready(&a->c->ready[a->i]);
}

void tc_elect_ready(struct tcluster *c, unsigned i)
{
	struct ready_arg a = {c, i};
	/* raft_fixture_elect() of 0.15 resets the winner's election timeout
	 * after a lone server already became leader, which overwrites the
	 * leader state it shares a union with: let a lone server elect itself */
	if (c->n == 1)
		assert(raft_fixture_step_until_has_leader(&c->f, 10000));
	else
		raft_fixture_elect(&c->f, i);
	assert(tc_step_until(c, is_ready, &a, 10000));
}
