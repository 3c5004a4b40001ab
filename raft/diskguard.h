/* The disk guard: wraps the raft_io of canonical/raft 0.15 (raft_uv).
 *
 * 1. raftplane-meta (diskcheck.h) follows every term and vote raft
 *    persists, and the last log index this node has stored (at most a
 *    second behind, lowered before raft truncates its log or installs a
 *    snapshot), so the next start detects a damaged metadata file and a log
 *    that lost entries.
 *
 * 2. Disk full. raft 0.15 is not safe when a log write fails: a follower
 *    keeps the failed entries in memory and writes later ones at the wrong
 *    place on disk, then acknowledges them (measured: docs/design.md); a
 *    leader truncates its log under entries its followers may have
 *    committed. So raft never sees a failed log write: when raft_uv cannot
 *    create a segment (no space), the write and every later log operation
 *    (append, truncate, snapshot) are held, in order, and retried every
 *    RP_DISK_RETRY_MS; to raft the disk is only slow. Nothing held is
 *    acknowledged. While writes are held the node is not ready (/readyz),
 *    serves no proposals and, if leader, transfers leadership away; once
 *    the held writes persist it is back without a restart. Any other write
 *    failure (EIO, a short write) stops writing for good: the node stays up
 *    to report it and must be restarted with the same command line. */
#ifndef RP_RAFT_DISKGUARD_H
#define RP_RAFT_DISKGUARD_H

#include <raft.h>
#include <stdint.h>

#include "stats.h"

#define RP_DISK_RETRY_MS 500

/* The guard's state (also the raftplane_disk_state metric). */
enum rp_disk_state {
	RP_DISK_OK = 0,
	RP_DISK_FULL = 1,   /* writes held, retried: recovers on its own */
	RP_DISK_FAILED = 2, /* writes held for good: restart the node */
};

struct rp_diskop;

struct rp_diskguard {
	struct raft_io *io;
	struct raft *r;
	const char *dir; /* the data dir (the node's copy) */
	struct rp_node_stats *stats;
	/* the io's own methods */
	int (*set_term)(struct raft_io *io, raft_term term);
	int (*set_vote)(struct raft_io *io, raft_id server_id);
	int (*append)(struct raft_io *io, struct raft_io_append *req,
		      const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
	int (*truncate)(struct raft_io *io, raft_index index);
	int (*snapshot_put)(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			    const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb);
	int (*send)(struct raft_io *io, struct raft_io_send *req,
		    const struct raft_message *message, raft_io_send_cb cb);
	void (*close)(struct raft_io *io, raft_io_close_cb cb);
	/* raftplane-meta's stored mark (1.) */
	uint64_t mark;    /* last index recorded as stored */
	int mark_known;   /* since rp_diskguard_started() */
	uint64_t mark_at; /* uv_now() of the last record */
	/* held writes (2.) */
	enum rp_disk_state state;
	char reason[256];           /* why, for /readyz and the log */
	uint64_t since;             /* uv_now() when writes were first held */
	uint64_t next_retry;        /* uv_now() of the next retry */
	struct rp_diskop *inflight; /* forwarded to raft_uv, callback pending */
	struct rp_diskop *held;     /* in order: the first is retried first */
	struct rp_diskop **held_tail;
	struct rp_diskop **back_at; /* where a forwarded op that failed goes */
	unsigned nheld;
	uint64_t seq, barrier_seq; /* forwarding order; last truncate/install */
	uint64_t now;              /* uv_now() at the last tick */
	struct raft_transfer transfer;
	int transferring;
	uint64_t next_transfer;
	int closing;
	struct rp_diskguard *next;
};

/** Wrap @io (already given to raft_init(@r)) for the data dir @dir, which
 * must outlive the guard; counts into @stats. Call before raft_start(). */
void rp_diskguard_install(struct rp_diskguard *g, struct raft *r, struct raft_io *io,
			  const char *dir, struct rp_node_stats *stats);

/** raft_start() succeeded: record what it loaded. */
void rp_diskguard_started(struct rp_diskguard *g);

/** Periodically (the node's tick; @now in ms): record newly stored entries
 * (at most once a second), retry held writes, step down while they are
 * held. */
void rp_diskguard_tick(struct rp_diskguard *g, uint64_t now);

/** Whether log writes are held (the node is then not ready). */
int rp_diskguard_blocked(const struct rp_diskguard *g);

/** Name of @s: "ok", "full", "failed". */
const char *rp_disk_state_name(enum rp_disk_state s);

/** Record the final state and unlink; after raft_close()'s callback. */
void rp_diskguard_close(struct rp_diskguard *g);

#endif
