/* Batched read barriers: linearizable reads on the leader wait for the
 * next barrier that starts after they arrived. */
#ifndef RP_RAFT_READQ_H
#define RP_RAFT_READQ_H

#include <raft.h>
#include <uv.h>

#include "nodetypes.h"
#include "readiness.h"

struct rp_read_waiter; /* private to readq.c */

/* Caller-embedded; loop thread only. */
struct rp_readq {
	struct raft *raft;                /* not owned */
	const struct rp_readiness *ready; /* not owned */
	struct rp_node_stats *stats;      /* barriers, reads_batched; not owned */
	uv_timer_t kick;                  /* starts the next barrier outside raft's callbacks */
	struct raft_barrier req;
	int inflight; /* req is in raft's hands */
	int closing;
	struct rp_read_waiter *queue; /* FIFO: waiting for the next barrier */
	struct rp_read_waiter **queue_tail;
	struct rp_read_waiter *batch; /* FIFO: served by the barrier in flight */
	uint64_t next_seq;            /* arrival number of the next read */
	void (*closed_cb)(void *arg);
	void *closed_arg;
};

/** Initialise @q (its timer on @loop). */
void rp_readq_init(struct rp_readq *q, uv_loop_t *loop, struct raft *raft,
		   const struct rp_readiness *ready, struct rp_node_stats *stats);

/**
 * Queue a linearizable read: @cb runs once, RP_OK after a barrier that
 * started after this call was applied while still the ready leader, else
 * RP_ERR_NO_LEADER. Reads are answered in the order they were submitted.
 * Returns RP_ERR_NO_LEADER (not ready) or RP_ERR_NOMEM without queueing
 * (then @cb never runs).
 */
int rp_readq_submit(struct rp_readq *q, rp_read_cb cb, void *arg);

/**
 * Fail the reads not yet given to a barrier (RP_ERR_NO_LEADER) and close
 * the timer; @cb(@arg) runs from the timer's close callback. A barrier in
 * flight answers its batch when raft fails it (raft_close()).
 */
void rp_readq_close(struct rp_readq *q, void (*cb)(void *arg), void *arg);

#endif
