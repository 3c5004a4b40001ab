/* The disk guard (see diskguard.h).
 *
 * Invariants
 *
 * 1. raftplane-meta is rewritten after every term or vote raft persisted
 *    successfully, before raft acts on it (set_term and set_vote are
 *    synchronous in raft 0.15): it never lags the metadata by more than the
 *    write in progress, which diskcheck.c accepts after a crash.
 * 2. The recorded mark never exceeds what the disk holds: it is raised only
 *    to r->last_stored (entries whose write completed) and lowered, and
 *    recorded, before raft truncates its log or installs a snapshot below
 *    it. So a log that ends before the mark at the next start lost entries
 *    it had stored.
 */
#include "diskguard.h"

#include "diskcheck.h"

#define MARK_EVERY_MS 1000

static struct rp_diskguard *guards; /* one per raft instance in the process */

static struct rp_diskguard *find(struct raft_io *io)
{
	struct rp_diskguard *g = guards;
	while (g && g->io != io)
		g = g->next;
	return g;
}

static void record(struct rp_diskguard *g)
{
	rp_diskcheck_meta_sync(g->dir, g->mark_known ? g->mark : RP_DISKCHECK_KEEP);
}

static void lower_mark(struct rp_diskguard *g, uint64_t to)
{
	if (g->mark_known && g->mark > to) {
		g->mark = to;
		record(g);
	}
}

static int guard_set_term(struct raft_io *io, raft_term term)
{
	struct rp_diskguard *g = find(io);
	int rv = g->set_term(io, term);
	if (rv == 0)
		record(g);
	return rv;
}

static int guard_set_vote(struct raft_io *io, raft_id server_id)
{
	struct rp_diskguard *g = find(io);
	int rv = g->set_vote(io, server_id);
	if (rv == 0)
		record(g);
	return rv;
}

static int guard_truncate(struct raft_io *io, raft_index index)
{
	struct rp_diskguard *g = find(io);
	lower_mark(g, index - 1);
	return g->truncate(io, index);
}

static int guard_snapshot_put(struct raft_io *io, unsigned trailing,
			      struct raft_io_snapshot_put *req,
			      const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
	struct rp_diskguard *g = find(io);
	if (trailing == 0) /* an installed snapshot replaces the whole log */
		lower_mark(g, snapshot->index);
	return g->snapshot_put(io, trailing, req, snapshot, cb);
}

void rp_diskguard_install(struct rp_diskguard *g, struct raft *r, struct raft_io *io,
			  const char *dir)
{
	*g = (struct rp_diskguard){.io = io,
				   .r = r,
				   .dir = dir,
				   .set_term = io->set_term,
				   .set_vote = io->set_vote,
				   .truncate = io->truncate,
				   .snapshot_put = io->snapshot_put};
	io->set_term = guard_set_term;
	io->set_vote = guard_set_vote;
	io->truncate = guard_truncate;
	io->snapshot_put = guard_snapshot_put;
	g->next = guards;
	guards = g;
}

void rp_diskguard_started(struct rp_diskguard *g)
{
	g->mark = g->r->last_stored;
	g->mark_known = 1;
	g->mark_at = 0;
	record(g);
}

void rp_diskguard_tick(struct rp_diskguard *g, uint64_t now)
{
	if (!g->mark_known || g->r->last_stored <= g->mark || now - g->mark_at < MARK_EVERY_MS)
		return;
	g->mark = g->r->last_stored;
	g->mark_at = now;
	record(g);
}

void rp_diskguard_close(struct rp_diskguard *g)
{
	if (g->mark_known && g->r->last_stored != g->mark) {
		g->mark = g->r->last_stored;
		record(g);
	}
	g->mark_known = 0;
	for (struct rp_diskguard **p = &guards; *p; p = &(*p)->next) {
		if (*p == g) {
			*p = g->next;
			break;
		}
	}
}
