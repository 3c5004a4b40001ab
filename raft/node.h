/* One raftplane server's raft instance: canonical/raft on libuv, our FSM,
 * leader readiness, batched read barriers and membership changes. */
#ifndef RP_NODE_H
#define RP_NODE_H

#include <raft.h>
#include <stdint.h>
#include <uv.h>

#include "raftplane.pb-c.h"
#include "store.h"

#define RP_MAX_PEERS 16

struct rp_node;

struct rp_peer {
	uint64_t id;
	char raft[64];
	char http[64];
};

struct rp_node_config {
	uint64_t id;
	const char *data_dir;
	const char *raft_addr;
	const char *http_addr;
	struct rp_peer bootstrap[RP_MAX_PEERS]; /* from --bootstrap */
	unsigned n_bootstrap;
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	/* snapshot also once the command bytes applied since the last one reach
	 * max(snapshot_bytes, size of the last snapshot); 0: by entries only */
	uint64_t snapshot_bytes;
	/* keep at most this many bytes of entries after a snapshot (at least
	 * one entry, at most snapshot_trailing entries); 0: by entries only */
	uint64_t snapshot_trailing_bytes;
	unsigned election_timeout_ms;
	unsigned heartbeat_ms;
	unsigned install_snapshot_timeout_ms;
	int unsafe_reads; /* test-only: serve linearizable reads without a barrier */
	int commit_push;  /* append a barrier after commands so followers learn the commit */
	unsigned raft_handshake_timeout_ms; /* raft transport: 0 = default (3000) */
	unsigned raft_max_pending;          /* unauthenticated raft connections; 0 = 32 */
	int raft_relay_outbound;            /* copy outbound raft bytes too (mutual TLS path) */
};

/* Metrics the node keeps for /metrics. */
#define RP_LAT_BUCKETS 14
extern const double rp_latency_bounds[RP_LAT_BUCKETS]; /* seconds, upper bounds */

struct rp_histogram {
	uint64_t buckets[RP_LAT_BUCKETS + 1]; /* last one is +Inf */
	uint64_t count;
	double sum;
};

void rp_histogram_observe(struct rp_histogram *h, double seconds);

struct rp_node_stats {
	struct rp_histogram apply;   /* FSM apply of one entry */
	struct rp_histogram propose; /* leader: propose until applied */
	uint64_t barriers;           /* read barriers issued */
	uint64_t reads_batched;      /* linearizable reads served behind them */
	uint64_t snapshots_taken;
	uint64_t snapshots_restored;
	uint64_t leader_changes;
};

/**
 * Create a node: open the data dir, init raft_uv + our transport on @loop,
 * bootstrap when the config says so and the dir is pristine. Nothing runs
 * until rp_node_start(). On error returns non-zero with a reason in @errmsg.
 */
int rp_node_create(uv_loop_t *loop, const struct rp_node_config *cfg, struct rp_node **out,
		   char *errmsg, size_t errlen);

int rp_node_start(struct rp_node *n, char *errmsg, size_t errlen);

/** Stop raft and free everything; @cb (may be NULL) runs when done. */
void rp_node_close(struct rp_node *n, void (*cb)(void *arg), void *arg);

struct rp_store *rp_node_store(struct rp_node *n);
struct raft *rp_node_raft(struct rp_node *n);
const struct rp_node_stats *rp_node_stats(struct rp_node *n);
const struct rp_node_config *rp_node_config(struct rp_node *n);
/** Our raft transport (raft/transport.h): stats, join peers. */
struct raft_uv_transport *rp_node_transport(struct rp_node *n);

/** 1 when this node is leader and has committed a barrier in its term. */
int rp_node_leader_ready(struct rp_node *n);

/**
 * The known leader: its id and HTTP address (from the members table, or the
 * bootstrap list). Returns 0 when no leader is known.
 */
uint64_t rp_node_leader(struct rp_node *n, char *http, size_t httplen);

/** HTTP address of member @id, "" when unknown. */
void rp_node_member_http(struct rp_node *n, uint64_t id, char *http, size_t httplen);

/* Callback for proposals; @res is valid only during the call. status is
 * RP_OK when the command was applied (then see res->status), else
 * RP_ERR_NO_LEADER (never proposed) or RP_ERR_UNKNOWN_OUTCOME. */
typedef void (*rp_propose_cb)(void *arg, int status, const struct rp_apply_result *res);

/** Propose @cmd (leader only). RP_ERR_NO_LEADER when not ready leader. */
int rp_node_propose(struct rp_node *n, const Raftplane__Command *cmd, rp_propose_cb cb, void *arg);

/* Callback for read barriers: RP_OK means local state is linearizable now. */
typedef void (*rp_read_cb)(void *arg, int status);

/** Queue a linearizable read behind the next barrier (leader only). */
int rp_node_read_barrier(struct rp_node *n, rp_read_cb cb, void *arg);

/* Generic callback for membership operations: status RP_OK or an error with
 * @msg explaining it. */
typedef void (*rp_change_done_cb)(void *arg, int status, const char *msg);

/** Add @m (leader only): record its HTTP address, raft_add, assign role. */
int rp_node_add_member(struct rp_node *n, const struct rp_member *m, rp_change_done_cb cb,
		       void *arg);
/** Remove member @id (leader only). */
int rp_node_remove_member(struct rp_node *n, uint64_t id, rp_change_done_cb cb, void *arg);
/** Transfer leadership to @id (leader only). */
int rp_node_transfer(struct rp_node *n, uint64_t id, rp_change_done_cb cb, void *arg);

/* Waiters woken when the leader or readiness changes (or on timeout by the
 * owner). The node never frees a waiter. */
struct rp_leader_waiter {
	void (*cb)(struct rp_leader_waiter *w);
	struct rp_leader_waiter *prev, *next;
};
void rp_node_wait_leader(struct rp_node *n, struct rp_leader_waiter *w);
void rp_node_unwait_leader(struct rp_node *n, struct rp_leader_waiter *w);

/* Called after each applied change (the store's change callback). */
typedef void (*rp_node_change_cb)(void *arg, const struct rp_change *c);
void rp_node_on_change(struct rp_node *n, rp_node_change_cb cb, void *arg);

const char *rp_node_state_name(struct rp_node *n);

#endif
