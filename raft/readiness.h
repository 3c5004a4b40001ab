/* Leadership tracking and leader readiness: a leader serves nothing until
 * a barrier of its own term was applied. */
#ifndef RP_RAFT_READINESS_H
#define RP_RAFT_READINESS_H

#include <raft.h>

#include "nodetypes.h"

/* Caller-embedded; loop thread only. Works on any struct raft, including
 * one of canonical/raft's test fixture. */
struct rp_readiness {
	struct raft *raft;           /* not owned */
	struct rp_node_stats *stats; /* leader_changes; not owned */
	int last_state;              /* as seen by the last tick */
	raft_id last_leader;
	raft_term ready_term; /* term in which our barrier was applied, 0: none */
	raft_term req_term;   /* term of the barrier in flight */
	struct raft_barrier req;
	int inflight;
	int wake_pending; /* wake the waiters at the next tick */
	int closing;
	struct rp_leader_waiter waiters; /* sentinel of a circular list */
};

/** Start tracking @raft. Nothing is in flight until rp_readiness_tick(). */
void rp_readiness_init(struct rp_readiness *rd, struct raft *raft, struct rp_node_stats *stats);

/**
 * The periodic step (the node's tick, or a test): notice state and leader
 * changes (logged, counted, waiters woken), and on a leader that is not
 * ready append the readiness barrier. Never call it from a raft callback.
 */
void rp_readiness_tick(struct rp_readiness *rd);

/** 1 when @rd's raft is leader and a barrier of its current term was
 *  applied, and rp_readiness_close() was not called. */
int rp_readiness_ready(const struct rp_readiness *rd);

/** Ready never again (the node is closing). Waiters are not woken. */
void rp_readiness_close(struct rp_readiness *rd);

/** Wake @w (once) at the next leader or readiness change. @w must not be
 *  waiting already; it stays the caller's. */
void rp_readiness_wait(struct rp_readiness *rd, struct rp_leader_waiter *w);

/** Stop waiting; harmless when @w is not waiting (or was never added). */
void rp_readiness_unwait(struct rp_leader_waiter *w);

/** "follower", "candidate", "leader" or "unavailable" for raft_state(). */
const char *rp_raft_state_name(int raft_state);

#endif
