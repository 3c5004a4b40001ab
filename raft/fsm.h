/* The raft FSM: committed entries into the store, snapshots out of and
 * into it. */
#ifndef RP_RAFT_FSM_H
#define RP_RAFT_FSM_H

#include <raft.h>

#include "confguard.h"
#include "nodetypes.h"
#include "push.h"
#include "snapbytes.h"

/* Caller-embedded; loop thread only. Give &f->fsm to raft_init() (or to
 * canonical/raft's test fixture). */
struct rp_fsm {
	struct raft_fsm fsm;         /* version 2; fsm.data is this */
	struct raft *raft;           /* whose entries we apply; not owned */
	struct rp_store *store;      /* not owned */
	struct rp_node_stats *stats; /* not owned */
	struct rp_snapbytes snapbytes;
	struct rp_confguard *guard;         /* refreshed before a snapshot; NULL: none */
	struct rp_push *push;               /* told of every apply; NULL: none */
	struct rp_apply_result last_result; /* of the entry being applied */
};

/**
 * Set up @f to apply @raft's entries to @store. @guard and @push may be
 * NULL; @cfg gives the snapshot limits (snapbytes.h) and is not kept.
 * Nothing is allocated.
 */
void rp_fsm_init(struct rp_fsm *f, struct raft *raft, struct rp_store *store,
		 struct rp_node_stats *stats, struct rp_confguard *guard, struct rp_push *push,
		 const struct rp_node_config *cfg);

#endif
