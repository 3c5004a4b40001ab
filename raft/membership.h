/* Membership changes: add (with the rollback of a failed add), remove,
 * leadership transfer, and the HTTP addresses of members. */
#ifndef RP_RAFT_MEMBERSHIP_H
#define RP_RAFT_MEMBERSHIP_H

#include <raft.h>

#include "nodetypes.h"
#include "propose.h"
#include "readiness.h"

/* Caller-embedded; loop thread only. Every pointer is borrowed and must
 * outlive the operations in flight. */
struct rp_membership {
	struct raft *raft;
	struct rp_proposer *proposer; /* member rows are log entries */
	const struct rp_readiness *ready;
	struct rp_store *store;
	uint64_t self_id;
	const char *self_http;
	const struct rp_peer *bootstrap; /* the --bootstrap list */
	unsigned n_bootstrap;
	int seed_inflight;
	unsigned ops; /* operations in flight */
};

/** Set up @ms (nothing is allocated). @self_http and @bootstrap (with
 *  @n_bootstrap entries, at most RP_MAX_PEERS) are borrowed. */
void rp_membership_init(struct rp_membership *ms, struct raft *raft, struct rp_proposer *proposer,
			const struct rp_readiness *ready, struct rp_store *store, uint64_t self_id,
			const char *self_http, const struct rp_peer *bootstrap,
			unsigned n_bootstrap);

/**
 * Add @m (copied; m->role an enum rp_role): record its HTTP address (a
 * MEMBER_PUT entry), raft_add it as a spare, then raft_assign its role. If
 * a step after the record fails, what was done is undone (raft_remove, then
 * a MEMBER_DELETE entry) before @cb reports the failure; when leadership is
 * lost nothing is undone (see membership.c). Returns RP_OK (then @cb runs
 * exactly once), or RP_ERR_NO_LEADER / _CONFLICT (id, raft or HTTP address
 * taken) / _NOMEM without starting (then @cb never runs).
 */
int rp_membership_add(struct rp_membership *ms, const struct rp_member *m, rp_change_done_cb cb,
		      void *arg);

/** Remove member @id from raft, then forget its row. RP_OK (then @cb runs
 *  once), else RP_ERR_NO_LEADER, _NOT_FOUND, _CONFLICT (ourselves), ... */
int rp_membership_remove(struct rp_membership *ms, uint64_t id, const struct rp_audit *audit,
			 rp_change_done_cb cb, void *arg);

/** Transfer leadership to @id; same contract as rp_membership_remove(). */
int rp_membership_transfer(struct rp_membership *ms, uint64_t id, rp_change_done_cb cb, void *arg);

/** From the periodic tick on a ready leader: the first ready leader of a
 *  bootstrapped cluster records everyone's HTTP address (MEMBER_SEED). */
void rp_membership_seed(struct rp_membership *ms);

/** 1 when @id is in the latest raft configuration (committed or not). */
int rp_membership_has(const struct rp_membership *ms, uint64_t id);

/** HTTP address of member @id into @http (always NUL-terminated): ours, the
 *  members table's, or the --bootstrap list's; "" when unknown. */
void rp_membership_http(const struct rp_membership *ms, uint64_t id, char *http, size_t httplen);

#endif
