/* Getting a call to the ready leader: run its work there, forward it to
 * the leader, or wait for one (leader.c); proposals and linearizable reads
 * on top of that. */
#ifndef RP_API_LEADER_H
#define RP_API_LEADER_H

#include "call.h"

/** Run @local(c) on the ready leader: here when this node is the ready
 * leader, else after forwarding the request to the leader (whose answer
 * is relayed) or waiting for one until leader_wait_ms (then 503
 * no_leader). @is_write: a forward that fails after sending is answered
 * 503 outcome_unknown, never retried. @local must answer @c, or call
 * rp_leader_retry. Keeps its state in c->lead (request pool). */
void rp_leader_run(struct rp_call *c, int is_write, void (*local)(struct rp_call *c));

/** Linearizable read: @reader(c) runs on the ready leader after a read
 * barrier (or the request is forwarded), and answers @c. */
void rp_leader_read(struct rp_call *c, void (*reader)(struct rp_call *c));

/** The ready leader refused the work (e.g. a leadership transfer is under
 * way): dispatch again after a short delay, until the deadline. Only from
 * the @local of rp_leader_run. */
void rp_leader_retry(struct rp_call *c);

/** Propose @cmd on the leader (a write, see rp_leader_run) and answer:
 * @ok(c, res) when it applied, the JSON error of a rejection otherwise.
 * @cmd is borrowed: it must stay valid while c->req is set (the family
 * state of the caller, freed with the request, is the usual owner);
 * @ok runs only while the call is live. */
void rp_propose_and_respond(struct rp_call *c, const Raftplane__Command *cmd,
			    void (*ok)(struct rp_call *c, const struct rp_apply_result *res));

#endif
