/* A test cluster on canonical/raft's in-memory fixture (raft_fixture_*):
 * each server applies to a real store through our FSM, and runs our
 * readiness, proposal, read-barrier and membership modules. No sockets, no
 * sleeps: time is the fixture's; the timers our modules use (0 ms kicks)
 * run on a private libuv loop between fixture steps. */
#ifndef RP_TEST_RAFT_CLUSTER_H
#define RP_TEST_RAFT_CLUSTER_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <uv.h>

#include "fsm.h"
#include "membership.h"
#include "propose.h"
#include "readiness.h"
#include "readq.h"

#define TC_MAX 5

struct tcluster {
	struct raft_fixture f;
	unsigned n;
	uv_loop_t loop;
	struct rp_store *store[TC_MAX];
	struct rp_node_stats stats[TC_MAX];
	struct rp_fsm fsm[TC_MAX];
	struct rp_readiness ready[TC_MAX];
	struct rp_proposer proposer[TC_MAX];
	struct rp_readq readq[TC_MAX];
	struct rp_membership members[TC_MAX];
	char http[TC_MAX][32];
};

/** Heap-allocate, bootstrap (all voters) and start @n servers (ids 1..n). */
struct tcluster *tc_new(unsigned n);

/** Close our modules, the fixture and the loop (asserting it is empty). */
void tc_free(struct tcluster *c);

struct raft *tc_raft(struct tcluster *c, unsigned i);

/** One round of the node's periodic work on every server: readiness ticks
 *  and due libuv timers. */
void tc_tick(struct tcluster *c);

/** Step the fixture, ticking between steps, until @stop(@arg) or
 *  @max_ms of fixture time passed. Returns whether @stop held. */
bool tc_step_until(struct tcluster *c, bool (*stop)(void *arg), void *arg, unsigned max_ms);

/** Elect server @i and step until it is the ready leader. */
void tc_elect_ready(struct tcluster *c, unsigned i);

#endif
