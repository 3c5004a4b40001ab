/* Leadership tracking and leader readiness.
 *
 * A new leader appends a barrier in its term and is "ready" once that
 * barrier was applied. This guards against canonical/raft 0.15 committing
 * earlier-term entries by counting replicas (upstream #336): the barrier is
 * a current-term entry, so once it commits every earlier entry is committed
 * the safe way, and our applied state includes every write acknowledged by
 * any leader. Proposals, linearizable reads and membership changes check
 * rp_readiness_ready() first.
 *
 * Invariants
 *
 * 1. ready <=> raft is leader, ready_term == current_term, not closing, and
 *    the node's log writes persist (diskguard.h: none held).
 * 2. ready_term is set only by the readiness barrier's callback, with
 *    status 0, while raft is still leader in the term the barrier was
 *    appended in (req_term): an entry of the leader's own term was applied.
 *    Losing leadership makes the node not ready at once (by 1), and a later
 *    term needs a barrier of its own.
 * 3. At most one readiness barrier is in flight (inflight), appended from
 *    the tick, never from inside a raft callback.
 * 4. Waiters are woken from the tick only, never from inside a raft
 *    callback; the list is detached before the callbacks run, so a waiter
 *    may re-register or go away in its callback.
 *
 *    follower/candidate --elected--> leader(not ready) --barrier applied-->
 *    leader(ready) --term change/step down--> follower
 */
#include "readiness.h"

#include <assert.h>

#include "raftplane/log.h"

void rp_readiness_init(struct rp_readiness *rd, struct raft *raft, struct rp_node_stats *stats)
{
	*rd = (struct rp_readiness){.raft = raft, .stats = stats};
	rd->waiters.next = rd->waiters.prev = &rd->waiters;
}

int rp_readiness_ready(const struct rp_readiness *rd)
{
	if (rd->closing || raft_state(rd->raft) != RAFT_LEADER ||
	    rd->ready_term != rd->raft->current_term || rd->stats->disk_state != 0)
		return 0;
	assert(rd->ready_term != 0); /* invariant 2: a term-0 leader does not exist */
	return 1;
}

void rp_readiness_close(struct rp_readiness *rd)
{
	rd->closing = 1;
}

const char *rp_raft_state_name(int raft_state)
{
	switch (raft_state) {
	case RAFT_FOLLOWER: return "follower";
	case RAFT_CANDIDATE: return "candidate";
	case RAFT_LEADER: return "leader";
	default: return "unavailable";
	}
}

static void on_ready_barrier(struct raft_barrier *req, int status)
{
	struct rp_readiness *rd = req->data;
	assert(rd->inflight); /* invariant 3 */
	rd->inflight = 0;
	if (status == 0 && raft_state(rd->raft) == RAFT_LEADER &&
	    rd->raft->current_term == rd->req_term) {
		assert(rd->req_term > rd->ready_term); /* terms only grow */
		rd->ready_term = rd->req_term;
		rp_log_info("leader ready in term %llu", rd->ready_term);
		rd->wake_pending = 1; /* woken from the tick, not inside raft's callback */
	}
}

static void wake_waiters(struct rp_readiness *rd)
{
	/* Detach the list first: callbacks may re-register or free waiters. */
	struct rp_leader_waiter *w = rd->waiters.next;
	rd->waiters.next = rd->waiters.prev = &rd->waiters;
	while (w != &rd->waiters) {
		struct rp_leader_waiter *next = w->next;
		w->next = w->prev = w;
		w->cb(w);
		w = next;
	}
}

void rp_readiness_tick(struct rp_readiness *rd)
{
	struct raft *r = rd->raft;
	int state = raft_state(r);
	raft_id leader;
	const char *addr;
	raft_leader(r, &leader, &addr);
	if (state != rd->last_state || leader != rd->last_leader) {
		if (leader != rd->last_leader)
			rd->stats->leader_changes++;
		rp_log_info("state %s, leader %llu, term %llu", rp_raft_state_name(state),
			    (unsigned long long)leader, r->current_term);
		rd->last_state = state;
		rd->last_leader = leader;
		rd->wake_pending = 1;
	}
	if (rd->wake_pending) {
		rd->wake_pending = 0;
		wake_waiters(rd);
	}
	if (state == RAFT_LEADER && rd->ready_term != r->current_term && !rd->inflight &&
	    !rd->closing && rd->stats->disk_state == 0) {
		rd->req.data = rd;
		rd->req_term = r->current_term;
		if (raft_barrier(r, &rd->req, on_ready_barrier) == 0)
			rd->inflight = 1;
	}
}

void rp_readiness_wait(struct rp_readiness *rd, struct rp_leader_waiter *w)
{
	assert(!w->next || w->next == w); /* not on the list already */
	w->prev = rd->waiters.prev;
	w->next = &rd->waiters;
	rd->waiters.prev->next = w;
	rd->waiters.prev = w;
}

void rp_readiness_unwait(struct rp_leader_waiter *w)
{
	if (w->next && w->next != w) {
		w->prev->next = w->next;
		w->next->prev = w->prev;
	}
	w->next = w->prev = w;
}
