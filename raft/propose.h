/* Proposals: a command packed into one raft entry, answered when applied. */
#ifndef RP_RAFT_PROPOSE_H
#define RP_RAFT_PROPOSE_H

#include <raft.h>

#include "nodetypes.h"
#include "raftplane.pb-c.h"
#include "readiness.h"

/* Caller-embedded; loop thread only. */
struct rp_proposer {
	struct raft *raft;                /* not owned */
	const struct rp_readiness *ready; /* not owned */
	struct rp_node_stats *stats;      /* propose latency; not owned */
};

/** Propose to @raft, only while @ready says so; latencies go to @stats.
 *  Nothing is allocated. */
void rp_proposer_init(struct rp_proposer *p, struct raft *raft, const struct rp_readiness *ready,
		      struct rp_node_stats *stats);

/**
 * Propose @cmd (copied: packed into a raft_malloc'd buffer raft owns). @cb
 * runs exactly once when RP_OK is returned (see rp_propose_cb). Returns
 * RP_ERR_NO_LEADER when not the ready leader or raft refused the entry,
 * RP_ERR_NOMEM, or the codec's error; then @cb never runs.
 */
int rp_propose(struct rp_proposer *p, const Raftplane__Command *cmd, rp_propose_cb cb, void *arg);

#endif
