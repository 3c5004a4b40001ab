/* Guard against canonical/raft 0.15 crashing when it rolls back an
 * uncommitted configuration change (upstream canonical/raft#250).
 *
 * When an AppendEntries truncates an uncommitted configuration entry,
 * libraft 0.15 (membershipRollback) re-reads the last committed
 * configuration from the log entry at r->configuration_index without
 * checking that the entry is still there. Once a snapshot compacted it
 * (or it came with an installed snapshot), that is a NULL dereference
 * (SEGV at address 0x10). The jepsen member nemesis hits it: a leader
 * appends a removal, loses leadership before it commits, and the next
 * leader overwrites it.
 *
 * The guard wraps the raft_io's receive callback. It keeps a copy of the
 * last committed configuration while the entry is still readable, and
 * before an AppendEntries that would make libraft roll back with the entry
 * gone, it does the rollback itself (restores that copy, clears
 * configuration_uncommitted_index): libraft then truncates without
 * rolling back, and ends in the state its own rollback would have left.
 * If no copy is known (should not happen, see confguard.c), the message is
 * dropped and counted instead of delivered: the node stalls, it does not
 * crash. */
#ifndef RP_RAFT_CONFGUARD_H
#define RP_RAFT_CONFGUARD_H

#include <raft.h>
#include <stdint.h>

struct rp_confguard {
	struct raft *r;
	struct raft_io *io;
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);  /* the io's own */
	raft_io_recv_cb recv;                /* libraft's */
	struct raft_configuration committed; /* copy of the last committed one... */
	raft_index index;                    /* ...at this index, 0: none yet */
	uint64_t rollbacks;                  /* rollbacks done on libraft's behalf */
	uint64_t dropped;                    /* AppendEntries withheld (no copy) */
	struct rp_confguard *next;
};

/** Wrap @io (already given to raft_init(@r)); call before raft_start(). */
void rp_confguard_install(struct rp_confguard *g, struct raft *r, struct raft_io *io);

/** Refresh the copy of the committed configuration. Called on every
 * received message; call it also from the FSM's snapshot callback (before
 * libraft compacts the log) and periodically. Cheap when nothing changed. */
void rp_confguard_observe(struct rp_confguard *g);

/** Unlink and free; after raft_close()'s callback. */
void rp_confguard_close(struct rp_confguard *g);

#endif
