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
 *    it.
 * 3. raft sees log operations complete in the order it issued them, and a
 *    log write's callback only with success (or RAFT_CANCELED while
 *    closing): a failed append or installed snapshot is held, never
 *    reported, and raft_uv rolled its position back, so retrying it writes
 *    it where it belongs.
 * 4. While anything is held (state != OK), every new append, truncate and
 *    snapshot put is held behind it, and held operations are forwarded one
 *    at a time, only when no append nor installed snapshot is in flight in
 *    raft_uv (a local snapshot may be: raft_uv orders appends after it, and
 *    it may be waiting for those appends to close a segment).
 * 5. A failed append that raft_uv ordered before a truncate or an installed
 *    snapshot already forwarded cannot be retried in its place: FAILED.
 *    So is any failure other than "cannot create a segment: no space" (or
 *    "... too many open files": the same path, nothing written).
 */
#include "diskguard.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskcheck.h"
#include "raftplane/log.h"

#define MARK_EVERY_MS 1000
#define TRANSFER_EVERY_MS 1000

enum op_kind {
	OP_APPEND,
	OP_TRUNCATE,
	OP_PUT
};

struct rp_diskop {
	enum op_kind kind;
	uint64_t seq;
	struct raft_io_append *areq;
	const struct raft_entry *entries;
	unsigned n;
	raft_io_append_cb acb;
	raft_index index; /* OP_TRUNCATE */
	struct raft_io_snapshot_put *preq;
	unsigned trailing;
	const struct raft_snapshot *snapshot;
	raft_io_snapshot_put_cb pcb;
	int draining;            /* forwarded from the head of the held queue */
	struct rp_diskop *next;  /* held queue */
	struct rp_diskop *inext; /* in flight (a draining op is on both lists) */
};

static struct rp_diskguard *guards; /* one per raft instance in the process */

static struct rp_diskguard *find(struct raft_io *io)
{
	struct rp_diskguard *g = guards;
	while (g && g->io != io)
		g = g->next;
	return g;
}

const char *rp_disk_state_name(enum rp_disk_state s)
{
	switch (s) {
	case RP_DISK_OK: return "ok";
	case RP_DISK_FULL: return "full";
	default: return "failed";
	}
}

int rp_diskguard_blocked(const struct rp_diskguard *g)
{
	return g->state != RP_DISK_OK;
}

/* ---- raftplane-meta ---------------------------------------------------------- */

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

/* ---- the queues ---------------------------------------------------------------- */

/* The held queue's links agree with its count, tail and back insertion
 * point (debug builds; bounded so a long outage stays cheap). */
static void check_queue(const struct rp_diskguard *g)
{
#ifndef NDEBUG
	unsigned n = 0;
	int back_ok = g->back_at == &g->held;
	struct rp_diskop *const *tail = &g->held;
	if (g->nheld > 256)
		return;
	for (const struct rp_diskop *op = g->held; op; op = op->next) {
		n++;
		back_ok |= &op->next == g->back_at;
		tail = &op->next;
	}
	assert(n == g->nheld && back_ok && tail == g->held_tail);
#else
	(void)g;
#endif
}

static void stats_update(struct rp_diskguard *g)
{
	check_queue(g);
	g->stats->disk_state = (uint64_t)g->state;
	g->stats->disk_held = g->nheld;
}

static void inflight_add(struct rp_diskguard *g, struct rp_diskop *op)
{
	op->inext = g->inflight;
	g->inflight = op;
}

static struct rp_diskop *inflight_take(struct rp_diskguard *g, const void *req)
{
	for (struct rp_diskop **p = &g->inflight; *p; p = &(*p)->inext) {
		struct rp_diskop *op = *p;
		if ((op->kind == OP_APPEND && (void *)op->areq == req) ||
		    (op->kind == OP_PUT && (void *)op->preq == req)) {
			*p = op->inext;
			op->inext = NULL;
			return op;
		}
	}
	return NULL;
}

static void hold_tail(struct rp_diskguard *g, struct rp_diskop *op)
{
	op->next = NULL;
	*g->held_tail = op;
	g->held_tail = &op->next;
	g->nheld++;
	stats_update(g);
}

/* A forwarded op that failed: before everything held since (invariant 3),
 * after those that failed before it. */
static void hold_back(struct rp_diskguard *g, struct rp_diskop *op)
{
	op->next = *g->back_at;
	*g->back_at = op;
	if (g->held_tail == g->back_at)
		g->held_tail = &op->next;
	g->back_at = &op->next;
	g->nheld++;
	stats_update(g);
}

static struct rp_diskop *held_pop(struct rp_diskguard *g)
{
	struct rp_diskop *op = g->held;
	g->held = op->next;
	if (!g->held)
		g->held_tail = &g->held;
	if (g->back_at == &op->next)
		g->back_at = &g->held;
	g->nheld--;
	op->next = NULL;
	stats_update(g);
	return op;
}

/* raft_uv's message for EMFILE and ENFILE (uv_strerror) */
static int out_of_fds(const char *msg)
{
	return msg && (strstr(msg, "too many open files") || strstr(msg, "file table overflow"));
}

static void block(struct rp_diskguard *g, enum rp_disk_state s, const char *what, int status,
		  const char *msg)
{
	g->stats->disk_failures++;
	g->next_retry = g->now + RP_DISK_RETRY_MS;
	if (g->state == RP_DISK_FAILED || g->state == s)
		return;
	int first = g->state == RP_DISK_OK;
	g->state = s;
	if (first)
		g->since = g->now;
	snprintf(g->reason, sizeof g->reason, "%s %s: %s (%s)",
		 s != RP_DISK_FULL ? "disk failed:"
		 : out_of_fds(msg) ? "out of file descriptors:"
				   : "disk full:",
		 what, status == RAFT_NOSPACE ? "no space left" : raft_strerror(status),
		 msg && *msg ? msg : "no detail");
	stats_update(g);
	if (s == RP_DISK_FULL)
		rp_log_error("%s; raft's log writes are held and retried every %d ms: this node "
			     "acknowledges no entry, is not ready and steps down as leader until "
			     "they persist (data dir %s)",
			     g->reason, RP_DISK_RETRY_MS, g->dir);
	else
		rp_log_error(
			"%s; this node stopped writing its raft log and acknowledges no entry: "
			"restart it with the same command line once the disk is repaired "
			"(data dir %s)",
			g->reason, g->dir);
}

/* ---- forwarding -------------------------------------------------------------------- */

static void drain(struct rp_diskguard *g);

/* The guard that forwarded @req (an append or a snapshot put). */
static struct rp_diskguard *guard_of_req(const void *req)
{
	for (struct rp_diskguard *g = guards; g; g = g->next)
		for (struct rp_diskop *op = g->inflight; op; op = op->inext)
			if ((void *)op->areq == req || (void *)op->preq == req)
				return g;
	return NULL;
}

static int retryable(struct rp_diskguard *g, int status)
{
	/* raft_uv could not preallocate a segment: nothing was written and its
	 * append position was rolled back (uvAliveSegmentPrepareCb) */
	if (strncmp(g->io->errmsg, "create segment", 14) != 0)
		return 0;
	/* the same failure when the process ran out of descriptors (EMFILE,
	 * ENFILE): nothing written either, and it passes like a full disk */
	return status == RAFT_NOSPACE || out_of_fds(g->io->errmsg);
}

static void append_done(struct raft_io_append *req, int status)
{
	struct rp_diskguard *g = guard_of_req(req);
	struct rp_diskop *op = g ? inflight_take(g, req) : NULL;
	if (!op) { /* cannot happen: every forwarded append is in a guard's list */
		rp_log_fatal("disk guard: unknown append callback");
		abort();
	}
	if (status == 0 || status == RAFT_CANCELED || g->closing) {
		raft_io_append_cb cb = op->acb;
		if (op->draining)
			held_pop(g); /* op itself, the head */
		free(op);
		cb(req, status);
		if (status == 0)
			drain(g);
		return;
	}
	/* every append that the failed segment creation failed sees the same
	 * message: it is cleared only before a retry and once writes persist */
	char msg[RAFT_ERRMSG_BUF_SIZE];
	snprintf(msg, sizeof msg, "%s", g->io->errmsg);
	int again = retryable(g, status) && op->seq > g->barrier_seq;
	block(g, again ? RP_DISK_FULL : RP_DISK_FAILED, "cannot append to the raft log", status,
	      msg);
	if (op->draining) {
		op->draining = 0; /* stays the head of the held queue */
		return;
	}
	hold_back(g, op);
}

static void put_done(struct raft_io_snapshot_put *req, int status)
{
	struct rp_diskguard *g = guard_of_req(req);
	struct rp_diskop *op = g ? inflight_take(g, req) : NULL;
	if (!op) {
		rp_log_fatal("disk guard: unknown snapshot callback");
		abort();
	}
	/* a snapshot taken locally that failed changed nothing raft relies on:
	 * report it; an installed one moved raft_uv's append position: hold it */
	if (status == 0 || status == RAFT_CANCELED || g->closing || op->trailing > 0) {
		if (status != 0 && status != RAFT_CANCELED && !g->closing) {
			g->stats->disk_failures++;
			rp_log_warn("disk: could not write a snapshot at index %llu: %s (%s)",
				    (unsigned long long)op->snapshot->index, raft_strerror(status),
				    g->io->errmsg);
			g->io->errmsg[0] = '\0';
		}
		raft_io_snapshot_put_cb cb = op->pcb;
		if (op->draining)
			held_pop(g); /* op itself, the head */
		free(op);
		cb(req, status);
		drain(g);
		return;
	}
	char msg[RAFT_ERRMSG_BUF_SIZE];
	snprintf(msg, sizeof msg, "%s", g->io->errmsg);
	g->io->errmsg[0] = '\0';
	block(g, RP_DISK_FULL, "cannot write an installed snapshot", status, msg);
	if (op->draining) {
		op->draining = 0;
		return;
	}
	hold_back(g, op);
}

/* Forward @op to raft_uv; 0, or raft_uv's synchronous error. */
static int forward(struct rp_diskguard *g, struct rp_diskop *op)
{
	int rv;
	op->seq = ++g->seq;
	switch (op->kind) {
	case OP_APPEND:
		inflight_add(g, op);
		rv = g->append(g->io, op->areq, op->entries, op->n, append_done);
		break;
	case OP_PUT:
		if (op->trailing == 0)
			g->barrier_seq = op->seq;
		inflight_add(g, op);
		rv = g->snapshot_put(g->io, op->trailing, op->preq, op->snapshot, put_done);
		break;
	default: g->barrier_seq = op->seq; return g->truncate(g->io, op->index);
	}
	if (rv != 0)
		inflight_take(g, op->kind == OP_APPEND ? (void *)op->areq : (void *)op->preq);
	return rv;
}

/* Whether an append or an installed snapshot is in flight (invariant 4). */
static int busy(const struct rp_diskguard *g)
{
	for (const struct rp_diskop *op = g->inflight; op; op = op->inext)
		if (op->kind == OP_APPEND || op->trailing == 0)
			return 1;
	return 0;
}

/* Forward the held operations, the first first, while nothing else is in
 * flight (invariant 4). */
static void drain(struct rp_diskguard *g)
{
	while (g->state == RP_DISK_FULL && !g->closing && !busy(g) && g->held &&
	       g->now >= g->next_retry) {
		struct rp_diskop *op = g->held;
		op->draining = 1;
		g->io->errmsg[0] = '\0'; /* a failure of this retry sets it afresh */
		int rv = forward(g, op);
		if (rv != 0) {
			op->draining = 0;
			block(g, RP_DISK_FAILED, "raft_uv refused a held operation", rv,
			      g->io->errmsg);
			return;
		}
		if (op->kind == OP_TRUNCATE) {
			free(held_pop(g));
			continue;
		}
		return; /* its callback continues */
	}
	if (g->state == RP_DISK_FULL && !g->held && !busy(g)) {
		rp_log_info("disk: raft's log writes persist again after %.1f s; ready once caught "
			    "up",
			    (double)(g->now - g->since) / 1000);
		g->state = RP_DISK_OK;
		g->reason[0] = '\0';
		g->io->errmsg[0] = '\0';
		g->back_at = &g->held;
		stats_update(g);
	}
}

/* ---- the wrapped methods ------------------------------------------------------------ */

static struct rp_diskop *new_op(enum op_kind kind)
{
	struct rp_diskop *op = calloc(1, sizeof *op);
	if (op)
		op->kind = kind;
	return op;
}

/* raft 0.15's installSnapshotCb() answers the leader through
 * sendAppendEntriesResult(), which takes the id and address from
 * r->follower_state.current_leader whatever r->state is by then. A node
 * that became a candidate while a big snapshot was being written hands the
 * transport the candidate's half of that union: the `votes` pointer as the
 * id and its flags as the address (ASan: SEGV in strlen at 0x100,
 * hostile_raft_big_snapshot on a loaded machine). Candidates and leaders
 * also send AppendEntries results legitimately (rejecting a stale term),
 * with a real id and address, and 0.15 frees twice when such a send fails:
 * so those must go out. From a node that is not a follower, a result is
 * sent to the address the configuration gives for its server id, never
 * through the pointer in the message; an id that is no member (only the
 * bug above makes one) is dropped before anything reads the address, and
 * installSnapshotCb frees the request once on the error. */
static int guard_send(struct raft_io *io, struct raft_io_send *req,
		      const struct raft_message *message, raft_io_send_cb cb)
{
	struct rp_diskguard *g = find(io);
	if (message->type != RAFT_IO_APPEND_ENTRIES_RESULT || g->r->state == RAFT_FOLLOWER)
		return g->send(io, req, message, cb);
	const struct raft_configuration *conf = &g->r->configuration;
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == message->server_id) {
			struct raft_message m = *message;
			m.server_address = conf->servers[i].address;
			return g->send(io, req, &m, cb);
		}
	g->stats->stale_results++;
	return RAFT_CANCELED;
}

static int guard_append(struct raft_io *io, struct raft_io_append *req,
			const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
	struct rp_diskguard *g = find(io);
	struct rp_diskop *op = new_op(OP_APPEND);
	if (!op)
		return RAFT_NOMEM;
	op->areq = req;
	op->entries = entries;
	op->n = n;
	op->acb = cb;
	if (g->state != RP_DISK_OK || g->held) {
		hold_tail(g, op);
		return 0;
	}
	int rv = forward(g, op);
	if (rv != 0)
		free(op);
	return rv;
}

static int guard_truncate(struct raft_io *io, raft_index index)
{
	struct rp_diskguard *g = find(io);
	lower_mark(g, index - 1);
	if (g->state == RP_DISK_OK && !g->held) {
		g->barrier_seq = ++g->seq;
		return g->truncate(io, index);
	}
	struct rp_diskop *op = new_op(OP_TRUNCATE);
	if (!op)
		return RAFT_NOMEM;
	op->index = index;
	hold_tail(g, op);
	return 0;
}

static int guard_snapshot_put(struct raft_io *io, unsigned trailing,
			      struct raft_io_snapshot_put *req,
			      const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
	struct rp_diskguard *g = find(io);
	if (trailing == 0) /* an installed snapshot replaces the whole log */
		lower_mark(g, snapshot->index);
	struct rp_diskop *op = new_op(OP_PUT);
	if (!op)
		return RAFT_NOMEM;
	op->preq = req;
	op->trailing = trailing;
	op->snapshot = snapshot;
	op->pcb = cb;
	if (g->state != RP_DISK_OK || g->held) {
		hold_tail(g, op);
		return 0;
	}
	int rv = forward(g, op);
	if (rv != 0)
		free(op);
	return rv;
}

/* raft_close(): held operations end as raft_uv's own would, canceled. raft
 * 0.15 truncates its log from each canceled leader append's first index, so
 * the newest go first (docs/design.md, known risk 7). */
static void guard_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct rp_diskguard *g = find(io);
	g->closing = 1;
	struct rp_diskop *rev = NULL;
	while (g->held) {
		struct rp_diskop *op = held_pop(g);
		op->next = rev;
		rev = op;
	}
	g->back_at = &g->held;
	while (rev) {
		struct rp_diskop *op = rev;
		rev = op->next;
		if (op->kind == OP_APPEND)
			op->acb(op->areq, RAFT_CANCELED);
		else if (op->kind == OP_PUT)
			op->pcb(op->preq, RAFT_CANCELED);
		free(op);
	}
	g->close(io, cb);
}

/* ---- stepping down, the tick ------------------------------------------------------------ */

static void on_transfer(struct raft_transfer *req)
{
	struct rp_diskguard *g = req->data;
	g->transferring = 0;
}

static void step_down(struct rp_diskguard *g)
{
	struct raft *r = g->r;
	if (raft_state(r) != RAFT_LEADER || g->transferring || r->transfer ||
	    g->now < g->next_transfer)
		return;
	g->next_transfer = g->now + TRANSFER_EVERY_MS;
	g->transfer.data = g;
	int rv = raft_transfer(r, &g->transfer, 0, on_transfer);
	if (rv == 0) {
		g->transferring = 1;
		rp_log_warn("disk: cannot persist the log as leader: transferring leadership");
	} else {
		rp_log_warn("disk: cannot persist the log as leader, no voter to transfer "
			    "leadership to yet: %s",
			    raft_strerror(rv));
	}
}

void rp_diskguard_tick(struct rp_diskguard *g, uint64_t now)
{
	g->now = now;
	if (g->mark_known && g->r->last_stored > g->mark && now - g->mark_at >= MARK_EVERY_MS) {
		g->mark = g->r->last_stored;
		g->mark_at = now;
		record(g);
	}
	if (g->state == RP_DISK_OK || g->closing)
		return;
	step_down(g);
	if (g->state == RP_DISK_FULL && now >= g->next_retry && !busy(g))
		drain(g); /* a failure sets the next retry */
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

void rp_diskguard_install(struct rp_diskguard *g, struct raft *r, struct raft_io *io,
			  const char *dir, struct rp_node_stats *stats)
{
	*g = (struct rp_diskguard){.io = io,
				   .r = r,
				   .dir = dir,
				   .stats = stats,
				   .set_term = io->set_term,
				   .set_vote = io->set_vote,
				   .append = io->append,
				   .truncate = io->truncate,
				   .snapshot_put = io->snapshot_put,
				   .send = io->send,
				   .close = io->close};
	g->held_tail = &g->held;
	g->back_at = &g->held;
	io->set_term = guard_set_term;
	io->set_vote = guard_set_vote;
	io->append = guard_append;
	io->truncate = guard_truncate;
	io->snapshot_put = guard_snapshot_put;
	io->send = guard_send;
	io->close = guard_close;
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

void rp_diskguard_close(struct rp_diskguard *g)
{
	if (g->mark_known && g->state == RP_DISK_OK && g->r->last_stored != g->mark) {
		g->mark = g->r->last_stored;
		record(g);
	}
	g->mark_known = 0;
	while (g->inflight) { /* raft_uv canceled them all before its close callback */
		struct rp_diskop *op = g->inflight;
		g->inflight = op->inext;
		free(op);
	}
	for (struct rp_diskguard **p = &guards; *p; p = &(*p)->next) {
		if (*p == g) {
			*p = g->next;
			break;
		}
	}
}
