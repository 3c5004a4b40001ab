/* Proposals (see propose.h).
 *
 * Invariants
 *
 * 1. Only a ready leader proposes (readiness.c): nothing is appended before
 *    the barrier of the leader's term was applied.
 * 2. A proposal accepted by raft_apply() is answered exactly once, from its
 *    callback, and freed there; one refused is freed at once and never
 *    answered.
 */
#include "propose.h"

#include <stdlib.h>
#include <uv.h>

#include "codec.h"
#include "raftplane/err.h"

struct proposal {
	struct raft_apply req;
	rp_propose_cb cb;
	void *arg;
	uint64_t start;
	struct rp_proposer *owner;
};

void rp_proposer_init(struct rp_proposer *p, struct raft *raft, const struct rp_readiness *ready,
		      struct rp_node_stats *stats)
{
	*p = (struct rp_proposer){.raft = raft, .ready = ready, .stats = stats};
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;
	if (status == 0) {
		rp_histogram_observe(&p->owner->stats->propose,
				     (double)(uv_hrtime() - p->start) / 1e9);
		p->cb(p->arg, RP_OK, result);
	} else {
		p->cb(p->arg, RP_ERR_UNKNOWN_OUTCOME, NULL);
	}
	free(p);
}

int rp_propose(struct rp_proposer *pr, const Raftplane__Command *cmd, rp_propose_cb cb, void *arg)
{
	struct raft_buffer buf;
	if (!rp_readiness_ready(pr->ready))
		return RP_ERR_NO_LEADER;
	struct proposal *p = calloc(1, sizeof *p);
	if (!p)
		return RP_ERR_NOMEM;
	int rv = rp_command_pack(cmd, raft_malloc, &buf.base, &buf.len);
	if (rv) {
		free(p);
		return rv;
	}
	p->req.data = p;
	p->cb = cb;
	p->arg = arg;
	p->owner = pr;
	p->start = uv_hrtime();
	if (raft_apply(pr->raft, &p->req, &buf, 1, on_applied) != 0) {
		raft_free(buf.base);
		free(p);
		return RP_ERR_NO_LEADER;
	}
	return RP_OK;
}
