/* Commit push: after the leader applies commands, one barrier whose
 * replication tells followers the new commit index at once. */
#ifndef RP_RAFT_PUSH_H
#define RP_RAFT_PUSH_H

#include <raft.h>
#include <uv.h>

#include "readiness.h"

/* Caller-embedded; loop thread only. */
struct rp_push {
	struct raft *raft;                /* not owned */
	const struct rp_readiness *ready; /* not owned */
	uv_timer_t timer;                 /* appends outside raft's callbacks */
	struct raft_barrier req;
	int enabled; /* --no-commit-push turns it off */
	int inflight, again, scheduled, closing;
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

/** Initialise @p (its timer on @loop); with @enabled 0 it never appends. */
void rp_push_init(struct rp_push *p, uv_loop_t *loop, struct raft *raft,
		  const struct rp_readiness *ready, int enabled);

/** An entry was applied (the FSM's apply): on a leader, push soon. */
void rp_push_applied(struct rp_push *p);

/** Stop pushing and close the timer; @cb(@arg) runs from its close
 *  callback. A barrier in flight is failed by raft_close(). */
void rp_push_close(struct rp_push *p, void (*cb)(void *arg), void *arg);

#endif
