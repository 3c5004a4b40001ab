/* One raftplane server's raft instance, as api/ and server/ see it:
 * lifecycle, proposals, linearizable reads, membership, status. No libraft
 * type appears here; the node's parts are in raft/ (see node.c). */
#ifndef RP_NODE_H
#define RP_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "nodetypes.h"
#include "raftplane.pb-c.h"
#include "store.h"

struct rp_node;
struct raft_uv_transport;

/**
 * Create a node: open the data dir, init raft_uv + our transport on @loop,
 * bootstrap when the config says so and the dir is pristine. Nothing runs
 * until rp_node_start(). On error returns non-zero with a reason in
 * @errmsg, *@out untouched; whatever was acquired is being released by
 * handles closing on @loop: run the loop until it has no live handles
 * (uv_run(), UV_RUN_DEFAULT) before uv_loop_close().
 */
int rp_node_create(uv_loop_t *loop, const struct rp_node_config *cfg, struct rp_node **out,
		   char *errmsg, size_t errlen);

/** Start raft (replays the log) and the node's tick. Returns 0, or -1 with
 *  a reason in @errmsg (then only rp_node_close() is left to do). */
int rp_node_start(struct rp_node *n, char *errmsg, size_t errlen);

/** Stop raft and free everything (started or not); @cb (may be NULL) runs
 *  from the last close callback, after which @n is gone. */
void rp_node_close(struct rp_node *n, void (*cb)(void *arg), void *arg);

/** The store raft applies to; owned by the node. */
struct rp_store *rp_node_store(struct rp_node *n);
/** Counters and histograms for /metrics; owned by the node. */
const struct rp_node_stats *rp_node_stats(struct rp_node *n);
/** The config given to rp_node_create() (strings copied into the node). */
const struct rp_node_config *rp_node_config(struct rp_node *n);
/** Our raft transport (raft/transport.h): stats, join peers. */
struct raft_uv_transport *rp_node_transport(struct rp_node *n);

/** Fill @st with the node's raft state now. */
void rp_node_status(struct rp_node *n, struct rp_node_status *st);

/**
 * The servers of the latest raft configuration (committed or not), with
 * their HTTP addresses, in configuration order. On RP_OK *@out is a
 * malloc'd array of *@count entries (NULL when 0) the caller frees; on
 * RP_ERR_NOMEM *@out is NULL and *@count 0.
 */
int rp_node_members(struct rp_node *n, struct rp_node_member **out, unsigned *count);

/** 1 when @id is in the latest raft configuration (committed or not). */
int rp_node_is_member(struct rp_node *n, uint64_t id);

/** 1 when this node is leader and has applied a barrier of its term. */
int rp_node_leader_ready(struct rp_node *n);

/**
 * The known leader: its id and HTTP address (from the members table, or the
 * bootstrap list; @http may be NULL). Returns 0 when no leader is known.
 */
uint64_t rp_node_leader(struct rp_node *n, char *http, size_t httplen);

/** HTTP address of member @id, "" when unknown. */
void rp_node_member_http(struct rp_node *n, uint64_t id, char *http, size_t httplen);

/** Propose @cmd (leader only; copied). RP_ERR_NO_LEADER when not the ready
 *  leader; on RP_OK @cb runs exactly once (see rp_propose_cb). */
int rp_node_propose(struct rp_node *n, const Raftplane__Command *cmd, rp_propose_cb cb, void *arg);

/** Queue a linearizable read behind the next barrier (ready leader only);
 *  on RP_OK @cb runs exactly once, reads in the order queued. */
int rp_node_read_barrier(struct rp_node *n, rp_read_cb cb, void *arg);

/** Add @m (leader only): record its HTTP address, raft_add, assign role
 *  (m->role an enum rp_role); a failed add is rolled back before @cb.
 *  m->audit says who asks (the audit rows of the member-row changes). */
int rp_node_add_member(struct rp_node *n, const struct rp_member *m, rp_change_done_cb cb,
		       void *arg);
/** Remove member @id (leader only); @audit (may be NULL) says who asks, for
 *  the audit row of the member-row deletion. */
int rp_node_remove_member(struct rp_node *n, uint64_t id, const struct rp_audit *audit,
			  rp_change_done_cb cb, void *arg);
/** Transfer leadership to @id (leader only). */
int rp_node_transfer(struct rp_node *n, uint64_t id, rp_change_done_cb cb, void *arg);

/** Whether rp_node_close() ran: the node then takes no new work (calls
 *  return RP_ERR_UNAVAILABLE, the status says unavailable, no leader). */
int rp_node_closing(const struct rp_node *n);

/** Wake @w once at the next leader or readiness change (see
 *  struct rp_leader_waiter); unwait is harmless when not waiting. Not
 *  while closing (check rp_node_closing() first): no wake would come. */
void rp_node_wait_leader(struct rp_node *n, struct rp_leader_waiter *w);
void rp_node_unwait_leader(struct rp_node *n, struct rp_leader_waiter *w);

/* Called after each applied change (the store's change callback). */
typedef void (*rp_node_change_cb)(void *arg, const struct rp_change *c);
/** Set the one change callback (@cb NULL: none). */
void rp_node_on_change(struct rp_node *n, rp_node_change_cb cb, void *arg);

/** "follower", "candidate", "leader" or "unavailable". */
const char *rp_node_state_name(struct rp_node *n);

/** The name of @state, as rp_node_state_name() gives it. */
const char *rp_state_name(enum rp_raft_state state);

#endif
