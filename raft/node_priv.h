/* Private to the node's own files (node.c, node_ops.c): struct rp_node,
 * the concern modules it embeds and wires together. Includes neither
 * node.h nor anything that includes it. */
#ifndef RP_RAFT_NODE_PRIV_H
#define RP_RAFT_NODE_PRIV_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "confguard.h"
#include "diskguard.h"
#include "fsm.h"
#include "membership.h"
#include "nodetypes.h"
#include "propose.h"
#include "push.h"
#include "readiness.h"
#include "readq.h"

struct rp_node {
	uv_loop_t *loop;
	struct rp_node_config cfg;
	char data_dir[512], raft_addr[64], http_addr[64];
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct rp_confguard guard; /* libraft 0.15's configuration rollback (confguard.h) */
	struct rp_diskguard disk;  /* raftplane-meta, disk faults (diskguard.h) */
	struct rp_store *store;
	struct rp_fsm fsm;            /* apply, snapshot, restore */
	struct rp_readiness ready;    /* leadership and readiness */
	struct rp_proposer proposer;  /* proposals */
	struct rp_readq readq;        /* batched read barriers */
	struct rp_push push;          /* commit push */
	struct rp_membership members; /* membership changes */
	uv_timer_t tick;

	void (*change_cb)(void *arg, const struct rp_change *c);
	void *change_arg;
	struct rp_node_stats stats;

	/* lifecycle (node.c) */
	int have_transport, have_io, have_raft, have_guard, have_disk, tick_inited;
	int open_handles; /* handles still to close before n is freed */
	int closing;
	uint64_t close_deadline; /* uv_now() ms: raft_close() even if writes are queued */
	unsigned close_quiet;    /* drain ticks in a row with every entry stored */
	void (*close_cb)(void *arg);
	void *close_arg;
};

#endif
