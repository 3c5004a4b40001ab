/* The disk guard: wraps the raft_io of canonical/raft 0.15 (raft_uv).
 *
 * raftplane-meta (diskcheck.h) follows every term and vote raft persists,
 * and the last log index this node has stored (at most a second behind,
 * lowered before raft truncates its log or installs a snapshot), so that the
 * next start detects a damaged metadata file and a log that lost entries. */
#ifndef RP_RAFT_DISKGUARD_H
#define RP_RAFT_DISKGUARD_H

#include <raft.h>
#include <stdint.h>

struct rp_diskguard {
	struct raft_io *io;
	struct raft *r;
	const char *dir; /* the data dir (the node's copy) */
	/* the io's own methods */
	int (*set_term)(struct raft_io *io, raft_term term);
	int (*set_vote)(struct raft_io *io, raft_id server_id);
	int (*truncate)(struct raft_io *io, raft_index index);
	int (*snapshot_put)(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			    const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb);
	uint64_t mark;    /* last index recorded as stored in raftplane-meta */
	int mark_known;   /* since rp_diskguard_started() */
	uint64_t mark_at; /* uv_now() of the last record */
	struct rp_diskguard *next;
};

/** Wrap @io (already given to raft_init(@r)) for the data dir @dir, which
 * must outlive the guard; call before raft_start(). */
void rp_diskguard_install(struct rp_diskguard *g, struct raft *r, struct raft_io *io,
			  const char *dir);

/** raft_start() succeeded: record what it loaded. */
void rp_diskguard_started(struct rp_diskguard *g);

/** Periodically (the node's tick; @now in ms): record newly stored entries,
 * at most once a second. */
void rp_diskguard_tick(struct rp_diskguard *g, uint64_t now);

/** Record the final state and unlink; after raft_close()'s callback. */
void rp_diskguard_close(struct rp_diskguard *g);

#endif
