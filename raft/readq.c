/* Batched read barriers.
 *
 * A linearizable read on the leader must not be served from state that a
 * newer leader may already have overwritten. raft_barrier() proves
 * leadership: once a barrier appended after the read arrived is applied,
 * every write acknowledged before the read is in our applied state. One
 * barrier serves every read queued before it started.
 *
 * Invariants
 *
 * 1. A read is in exactly one of: the queue (waiting for a barrier not
 *    started yet) or the batch (behind the barrier in flight). Both are
 *    FIFO by arrival; reads are answered in arrival order (seq grows).
 * 2. A batch is non-empty only while its barrier is in flight, and at most
 *    one read barrier is in flight.
 * 3. A read is answered RP_OK only by a barrier that started after it
 *    arrived, and only while the node is still the ready leader; every
 *    read is answered exactly once.
 * 4. No barrier is appended from inside a raft callback (0.15 crashes when
 *    that happens during a step-down): the next one starts from a 0 ms
 *    timer.
 *
 *    idle --read--> barrier in flight --applied--> (queue empty) idle
 *                        ^                   | (queue not empty)
 *                        +------kick---------+
 *    any failure of the barrier: batch and queue fail with NO_LEADER
 */
#include "readq.h"

#include <assert.h>
#include <stdlib.h>

#include "raftplane/err.h"

struct rp_read_waiter {
	rp_read_cb cb;
	void *arg;
	uint64_t seq;
	struct rp_read_waiter *next;
};

static void start_barrier(struct rp_readq *q);

static void on_kick(uv_timer_t *t)
{
	start_barrier(t->data);
}

void rp_readq_init(struct rp_readq *q, uv_loop_t *loop, struct raft *raft,
		   const struct rp_readiness *ready, struct rp_node_stats *stats)
{
	*q = (struct rp_readq){.raft = raft, .ready = ready, .stats = stats};
	q->queue_tail = &q->queue;
	uv_timer_init(loop, &q->kick);
	q->kick.data = q;
}

/* Answer every read of @w (a detached list) in order, freeing them. */
static void answer(struct rp_read_waiter *w, int rv)
{
	uint64_t last = 0;
	while (w) {
		struct rp_read_waiter *next = w->next;
		assert(last == 0 || w->seq > last); /* invariant 1 */
		last = w->seq;
		(void)last; /* read only by the assert */
		w->cb(w->arg, rv);
		free(w);
		w = next;
	}
}

static struct rp_read_waiter *take_queue(struct rp_readq *q)
{
	struct rp_read_waiter *w = q->queue;
	q->queue = NULL;
	q->queue_tail = &q->queue;
	return w;
}

static void on_barrier(struct raft_barrier *req, int status)
{
	struct rp_readq *q = req->data;
	struct rp_read_waiter *w = q->batch;
	assert(q->inflight && w); /* invariant 2 */
	q->batch = NULL;
	q->inflight = 0;
	if (status != 0) {
		/* Leadership is being lost: raft fails its requests while it is
		 * still converting, and appending from here crashes 0.15. Fail
		 * the queued reads too; they retry from a timer (api/leader.c). */
		struct rp_read_waiter *rest = take_queue(q);
		answer(w, RP_ERR_NO_LEADER);
		answer(rest, RP_ERR_NO_LEADER);
		return;
	}
	for (struct rp_read_waiter *x = w; x; x = x->next)
		q->stats->reads_batched++;
	answer(w, rp_readiness_ready(q->ready) ? RP_OK : RP_ERR_NO_LEADER);
	if (q->queue && !q->closing) /* never append from inside a raft callback */
		uv_timer_start(&q->kick, on_kick, 0, 0);
}

static void start_barrier(struct rp_readq *q)
{
	if (q->inflight || !q->queue)
		return;
	if (!rp_readiness_ready(q->ready) || q->closing) {
		answer(take_queue(q), RP_ERR_NO_LEADER);
		return;
	}
	assert(!q->batch); /* invariant 2 */
	q->batch = take_queue(q);
	q->req.data = q;
	q->inflight = 1;
	q->stats->barriers++;
	if (raft_barrier(q->raft, &q->req, on_barrier) != 0) {
		struct rp_read_waiter *b = q->batch;
		q->batch = NULL;
		q->inflight = 0;
		answer(b, RP_ERR_NO_LEADER);
	}
}

int rp_readq_submit(struct rp_readq *q, rp_read_cb cb, void *arg)
{
	if (!rp_readiness_ready(q->ready) || q->closing)
		return RP_ERR_NO_LEADER;
	struct rp_read_waiter *w = malloc(sizeof *w);
	if (!w)
		return RP_ERR_NOMEM;
	*w = (struct rp_read_waiter){.cb = cb, .arg = arg, .seq = ++q->next_seq};
	*q->queue_tail = w;
	q->queue_tail = &w->next;
	if (!q->inflight)
		start_barrier(q);
	return RP_OK;
}

static void on_kick_closed(uv_handle_t *h)
{
	struct rp_readq *q = h->data;
	if (q->closed_cb)
		q->closed_cb(q->closed_arg);
}

void rp_readq_close(struct rp_readq *q, void (*cb)(void *arg), void *arg)
{
	q->closing = 1;
	q->closed_cb = cb;
	q->closed_arg = arg;
	answer(take_queue(q), RP_ERR_NO_LEADER);
	uv_close((uv_handle_t *)&q->kick, on_kick_closed);
}
