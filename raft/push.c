/* Commit push.
 *
 * canonical/raft tells followers about a new commit index only with the next
 * AppendEntries, i.e. up to one heartbeat after the commit. Followers serve
 * watches and proxy subscriptions from their applied state, so that delay
 * is the floor of config propagation. After the leader applies commands it
 * appends one barrier (coalesced); replicating it carries the new commit
 * index at once. Barriers do not pass through the FSM, so this does not feed
 * itself.
 *
 * Invariants
 *
 * 1. At most one push barrier is in flight (inflight) and at most one more
 *    is wanted (again); bursts of applies coalesce into them.
 * 2. Barriers are appended only from the timer callback, never from inside
 *    a raft callback (0.15 crashes when that happens during a step-down).
 * 3. Only a ready leader appends; after close nothing is appended.
 */
#include "push.h"

#include <assert.h>

static void on_timer(uv_timer_t *t);

static void schedule(struct rp_push *p)
{
	if (p->scheduled || p->closing)
		return;
	p->scheduled = 1;
	uv_timer_start(&p->timer, on_timer, 0, 0);
}

static void on_done(struct raft_barrier *req, int status)
{
	struct rp_push *p = req->data;
	assert(p->inflight); /* invariant 1 */
	p->inflight = 0;
	if (status != 0) {
		p->again = 0;
		return;
	}
	if (p->again && !p->scheduled) {
		p->again = 0;
		schedule(p); /* invariant 2: next loop turn */
	}
}

static void start(struct rp_push *p)
{
	if (p->inflight) {
		p->again = 1;
		return;
	}
	if (!rp_readiness_ready(p->ready) || p->closing)
		return;
	p->req.data = p;
	if (raft_barrier(p->raft, &p->req, on_done) == 0)
		p->inflight = 1;
}

static void on_timer(uv_timer_t *t)
{
	struct rp_push *p = t->data;
	p->scheduled = 0;
	start(p);
}

void rp_push_init(struct rp_push *p, uv_loop_t *loop, struct raft *raft,
		  const struct rp_readiness *ready, int enabled)
{
	*p = (struct rp_push){.raft = raft, .ready = ready, .enabled = enabled};
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
}

void rp_push_applied(struct rp_push *p)
{
	if (p->enabled && raft_state(p->raft) == RAFT_LEADER)
		schedule(p);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct rp_push *p = h->data;
	if (p->closed_cb)
		p->closed_cb(p->closed_arg);
}

void rp_push_close(struct rp_push *p, void (*cb)(void *arg), void *arg)
{
	p->closing = 1;
	p->closed_cb = cb;
	p->closed_arg = arg;
	uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}
