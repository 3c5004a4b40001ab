/* Value and callback types of the raft layer's interface, shared by the
 * public node.h and the node's concern modules. Free of libraft types:
 * nothing outside raft/ sees struct raft. */
#ifndef RP_RAFT_NODETYPES_H
#define RP_RAFT_NODETYPES_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "store.h"

#define RP_MAX_PEERS 16

/* A member's role. The values are canonical/raft's (RAFT_STANDBY,
 * RAFT_VOTER, RAFT_SPARE; checked at compile time in membership.c): they
 * are stored in member rows of the log and the members table. */
enum rp_role {
	RP_ROLE_STANDBY = 0, /* replicates the log, not in the quorum */
	RP_ROLE_VOTER = 1,   /* replicates the log, in the quorum */
	RP_ROLE_SPARE = 2,   /* neither */
};

/* This node's raft state. */
enum rp_raft_state {
	RP_STATE_UNAVAILABLE,
	RP_STATE_FOLLOWER,
	RP_STATE_CANDIDATE,
	RP_STATE_LEADER,
};

struct rp_tls; /* net/tls.h */

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
	/* --restore: the database (rp_restore_prepare's) the bootstrapped
	 * cluster starts from, written as its first raft snapshot (index 1) */
	const void *restore_image;
	size_t restore_len;
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
	int raft_relay_outbound;            /* copy outbound raft bytes too (implied by TLS) */
	/* mutual TLS on the raft port (raft/transport.h): both or neither;
	 * borrowed, they outlive the node */
	struct rp_tls *raft_tls_in;    /* inbound: server side, peer certificate required */
	struct rp_tls *raft_tls_out;   /* outbound: client side, our certificate */
	const char *raft_trust_domain; /* of peer identities; NULL: "raftplane" */
};

/* A point-in-time view of the node's raft state (rp_node_status()). */
struct rp_node_status {
	uint64_t id; /* ours */
	enum rp_raft_state state;
	uint64_t term;
	uint64_t leader_id;     /* 0: no leader known */
	char leader_raft[64];   /* its raft address, "" when unknown */
	char leader_http[64];   /* its HTTP address, "" when unknown */
	uint64_t commit_index;  /* highest index known committed */
	uint64_t applied_index; /* highest index applied to the store */
	uint64_t last_index;    /* last index in the local log */
	int leader_ready;       /* leader with a barrier of its term applied */
	int disk_state;         /* enum rp_disk_state: 0 ok, 1 full (writes held), 2 failed */
	char disk_reason[256];  /* why, when not ok */
};

/* One server of the latest raft configuration (committed or not). */
struct rp_node_member {
	uint64_t id;
	char raft[64];
	char http[64]; /* "" when unknown */
	enum rp_role role;
};

/* Callback for proposals; @res is valid only during the call. status is
 * RP_OK when the command was applied (then see res->status), else
 * RP_ERR_NO_LEADER (never proposed) or RP_ERR_UNKNOWN_OUTCOME. */
typedef void (*rp_propose_cb)(void *arg, int status, const struct rp_apply_result *res);

/* Callback for read barriers: RP_OK means local state is linearizable now;
 * RP_ERR_NO_LEADER when leadership was lost (retry elsewhere). */
typedef void (*rp_read_cb)(void *arg, int status);

/* Callback for membership operations: status RP_OK or an error, with @msg
 * (valid during the call) explaining it. */
typedef void (*rp_change_done_cb)(void *arg, int status, const char *msg);

/* Waiters woken when the leader or readiness changes (or on timeout by the
 * owner). Caller-embedded; the node never frees a waiter. */
struct rp_leader_waiter {
	void (*cb)(struct rp_leader_waiter *w);
	struct rp_leader_waiter *prev, *next;
};

#endif
