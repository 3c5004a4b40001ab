/* The raft peers a node admits besides its current configuration.
 *
 * r->configuration is the LATEST configuration in the log, committed or
 * not. Admitting only its members deadlocks a node that appended a change
 * removing member X which the cluster then discarded: X becomes leader, and
 * the node refuses the very leader that would truncate the change (found by
 * the jepsen suite's member nemesis). So every server seen in any
 * configuration stays admitted until its removal is known to be committed
 * (the node applies the deletion of its member row), and the set survives
 * restarts (raft 0.15 reloads the latest, possibly uncommitted,
 * configuration at start). */
#ifndef RP_RAFT_PEERS_H
#define RP_RAFT_PEERS_H

#include <stdint.h>

#include "peeraddr.h"

struct raft;

#define RP_PEERSET_MAX 64

struct rp_peerset {
	struct rp_transport_peer p[RP_PEERSET_MAX];
	unsigned n;
	char path[4096]; /* DIR/raft-peers, "" when not persisted */
	uint64_t id;     /* ours, for log lines */
};

/** Load @dir/raft-peers into @s (empty when missing). A damaged file only
 * loses its hint: bad lines are skipped and logged, never fatal. */
void rp_peerset_load(struct rp_peerset *s, uint64_t id, const char *dir);

/** Add every server of @r's configuration (or its new address). Persists
 * (atomically) on change. */
void rp_peerset_update(struct rp_peerset *s, const struct raft *r);

/** Forget @id: its removal from the cluster has committed. Persists. */
void rp_peerset_forget(struct rp_peerset *s, uint64_t id);

/** The raft address remembered for @id, or NULL. */
const char *rp_peerset_find(const struct rp_peerset *s, uint64_t id);

#endif
