/* Glue between canonical/raft 0.15 and raftplane.
 *
 * Invariants
 *
 * 1. Every RAFT_COMMAND entry goes through fsm_apply() -> rp_store_apply(),
 *    in log order, on the loop thread. SQLite failing there is fatal: the
 *    node aborts rather than diverge from its peers.
 * 2. A leader serves nothing (no proposals, no linearizable reads) until a
 *    barrier it appended in its current term has been applied ("ready").
 *    This guards against canonical/raft 0.15 committing earlier-term entries
 *    by counting replicas (upstream #336): the barrier is a current-term
 *    entry, so once it commits every earlier entry is committed the safe way,
 *    and our applied state includes every write acknowledged by any leader.
 * 3. Linearizable reads queue for the next barrier that starts after they
 *    arrive; one barrier serves every read queued before it started.
 * 4. Pre-vote is on, so a partitioned node rejoining does not depose a
 *    healthy leader by inflating terms.
 * 5. The raft log in memory (and its segments on disk) is bounded by bytes,
 *    not only by entries: see "snapshots by bytes" below.
 *
 *    follower/candidate --elected--> leader(not ready) --barrier applied-->
 *    leader(ready) --term change/step down--> follower
 */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <raft/uv.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "confguard.h"
#include "raftplane/err.h"
#include "raftplane/log.h"
#include "snapbytes.h"
#include "transport.h"

#define TICK_MS 10

const double rp_latency_bounds[RP_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
						  0.005,  0.01,    0.025,  0.05,  0.1,
						  0.25,   0.5,     1.0,    2.5};

void rp_histogram_observe(struct rp_histogram *h, double seconds)
{
	int i = 0;
	while (i < RP_LAT_BUCKETS && seconds > rp_latency_bounds[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}

struct read_waiter {
	rp_read_cb cb;
	void *arg;
	struct read_waiter *next;
};

struct rp_node {
	uv_loop_t *loop;
	struct rp_node_config cfg;
	char data_dir[512], raft_addr[64], http_addr[64];
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct raft_fsm fsm;
	struct rp_confguard guard; /* libraft 0.15's configuration rollback (confguard.h) */
	struct rp_store *store;
	struct rp_apply_result last_result; /* result of the entry being applied */
	uv_timer_t tick;

	/* leadership tracking */
	int last_state;
	uint64_t last_leader;
	raft_term ready_term;        /* term in which our barrier was applied */
	struct raft_barrier ready_req;
	int ready_inflight;
	raft_term ready_req_term;
	int seed_inflight;
	int wake_pending;
	struct rp_leader_waiter waiters; /* sentinel of a circular list */

	/* commit push: a barrier after applied commands, see on_push_timer */
	uv_timer_t push_timer;
	struct raft_barrier push_req;
	int push_inflight, push_again, push_scheduled;

	/* read barriers */
	uv_timer_t read_kick;
	struct raft_barrier read_req;
	int read_inflight;
	struct read_waiter *read_queue, *read_batch;

	struct rp_snapbytes snapbytes; /* snapshots by bytes (snapbytes.h) */

	rp_node_change_cb change_cb;
	void *change_arg;
	struct rp_node_stats stats;
	void (*close_cb)(void *arg);
	void *close_arg;
	int closing;
};

/* ---- commit push ---------------------------------------------------------
 *
 * canonical/raft tells followers about a new commit index only with the next
 * AppendEntries, i.e. up to one heartbeat after the commit. Followers serve
 * watches and proxy subscriptions from their applied state, so that delay
 * is the floor of config propagation. After the leader applies commands it
 * appends one barrier (coalesced: at most one in flight, one more queued);
 * replicating it carries the new commit index at once. Barriers do not pass
 * through the FSM, so this does not feed itself. */

static void start_push(struct rp_node *n);
static void on_push_timer(uv_timer_t *t);

static void on_push_done(struct raft_barrier *req, int status)
{
	struct rp_node *n = req->data;
	(void)status;
	n->push_inflight = 0;
	if (n->push_again && status == 0 && !n->push_scheduled) {
		/* never append from inside a raft callback: next loop turn */
		n->push_again = 0;
		n->push_scheduled = 1;
		uv_timer_start(&n->push_timer, on_push_timer, 0, 0);
	}
	if (status != 0)
		n->push_again = 0;
}

static void start_push(struct rp_node *n)
{
	if (n->push_inflight) {
		n->push_again = 1;
		return;
	}
	if (!rp_node_leader_ready(n) || n->closing)
		return;
	n->push_req.data = n;
	if (raft_barrier(&n->raft, &n->push_req, on_push_done) == 0)
		n->push_inflight = 1;
}

static void on_push_timer(uv_timer_t *t)
{
	struct rp_node *n = t->data;
	n->push_scheduled = 0;
	start_push(n);
}

/* ---- FSM ---------------------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct rp_node *n = fsm->data;
	uint64_t t0 = uv_hrtime();
	rp_snapbytes_applied(&n->snapbytes, &n->raft, &n->cfg, buf->len);
	int rv = rp_store_apply(n->store, buf->base, buf->len, &n->last_result);
	if (rv == RP_ERR_STORAGE || rv == RP_ERR_NOMEM) {
		rp_log_fatal("applying a log entry failed (%s); stopping rather than diverging",
			     rp_err_message(rv));
		abort();
	}
	if (rv != RP_OK) /* undecodable: the same on every node, reject it */
		n->last_result.status = rv;
	if (rv == RP_ERR_CORRUPT)
		rp_log_error("CORRUPT log entry after revision %" PRIu64 ": %s",
			     rp_store_revision(n->store), n->last_result.message);
	rp_histogram_observe(&n->stats.apply, (double)(uv_hrtime() - t0) / 1e9);
	*result = &n->last_result;
	if (n->cfg.commit_push && raft_state(&n->raft) == RAFT_LEADER && !n->push_scheduled) {
		n->push_scheduled = 1;
		uv_timer_start(&n->push_timer, on_push_timer, 0, 0);
	}
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct rp_node *n = fsm->data;
	void *data;
	size_t len;
	if (rp_store_serialize(n->store, &data, &len) != RP_OK)
		return RAFT_NOMEM;
	*bufs = raft_malloc(sizeof **bufs);
	if (!*bufs) {
		sqlite3_free(data);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = data;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	n->stats.snapshots_taken++;
	rp_confguard_observe(&n->guard); /* before libraft compacts the log */
	rp_snapbytes_taken(&n->snapbytes, &n->raft, &n->cfg, len);
	return 0;
}

/* fsm version 2: raft does not own the buffers, we free them here. */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				 unsigned *n_bufs)
{
	(void)fsm;
	if (*bufs) {
		for (unsigned i = 0; i < *n_bufs; i++)
			sqlite3_free((*bufs)[i].base);
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* Takes ownership of buf->base on success (canonical/raft contract). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct rp_node *n = fsm->data;
	int rv = rp_store_restore(n->store, buf->base, buf->len);
	if (rv != RP_OK) {
		rp_log_error("restore snapshot: %s", rp_err_message(rv));
		return RAFT_CORRUPT;
	}
	raft_free(buf->base);
	rp_snapbytes_restored(&n->snapbytes, buf->len);
	n->stats.snapshots_restored++;
	rp_log_info("restored snapshot at revision %" PRIu64, rp_store_revision(n->store));
	return 0;
}

static void on_store_change(void *arg, const struct rp_change *c)
{
	struct rp_node *n = arg;
	if (c->kind == RP_KIND_MEMBERS && c->deleted) {
		char *end;
		unsigned long long id = strtoull(c->name, &end, 10);
		if (*end == '\0' && id != 0) /* its name is the id, written by us */
			rp_transport_forget_peer(&n->transport, id); /* the removal committed */
	}
	if (n->change_cb)
		n->change_cb(n->change_arg, c);
}

/* ---- leadership --------------------------------------------------------- */

static void wake_waiters(struct rp_node *n)
{
	/* Detach the list first: callbacks may re-register or free waiters. */
	struct rp_leader_waiter *w = n->waiters.next;
	n->waiters.next = n->waiters.prev = &n->waiters;
	while (w != &n->waiters) {
		struct rp_leader_waiter *next = w->next;
		w->next = w->prev = w;
		w->cb(w);
		w = next;
	}
}

void rp_node_wait_leader(struct rp_node *n, struct rp_leader_waiter *w)
{
	w->prev = n->waiters.prev;
	w->next = &n->waiters;
	n->waiters.prev->next = w;
	n->waiters.prev = w;
}

void rp_node_unwait_leader(struct rp_node *n, struct rp_leader_waiter *w)
{
	(void)n;
	if (w->next && w->next != w) {
		w->prev->next = w->next;
		w->next->prev = w->prev;
	}
	w->next = w->prev = w;
}

int rp_node_leader_ready(struct rp_node *n)
{
	return raft_state(&n->raft) == RAFT_LEADER && n->ready_term == n->raft.current_term;
}

static void on_ready_barrier(struct raft_barrier *req, int status)
{
	struct rp_node *n = req->data;
	n->ready_inflight = 0;
	if (status == 0 && raft_state(&n->raft) == RAFT_LEADER &&
	    n->raft.current_term == n->ready_req_term) {
		n->ready_term = n->ready_req_term;
		rp_log_info("leader ready in term %llu", n->ready_term);
		n->wake_pending = 1; /* woken from the tick, not inside raft's callback */
	}
}

static int seed_member(void *arg, const struct rp_member *m)
{
	(void)m;
	*(int *)arg = 1;
	return 1;
}

static void on_seeded(void *arg, int status, const struct rp_apply_result *res)
{
	struct rp_node *n = arg;
	(void)status;
	(void)res;
	n->seed_inflight = 0;
}

/* First ready leader of a bootstrapped cluster records everyone's HTTP
 * address; MEMBER_SEED is a no-op when the table already has rows. */
static void maybe_seed_members(struct rp_node *n)
{
	int any = 0;
	if (n->seed_inflight || n->cfg.n_bootstrap == 0)
		return;
	rp_store_members(n->store, seed_member, &any);
	if (any)
		return;
	Raftplane__Command cmd;
	Raftplane__Member ms[RP_MAX_PEERS], *mp[RP_MAX_PEERS];
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__MEMBER_SEED;
	for (unsigned i = 0; i < n->cfg.n_bootstrap; i++) {
		raftplane__member__init(&ms[i]);
		ms[i].id = n->cfg.bootstrap[i].id;
		ms[i].raft = n->cfg.bootstrap[i].raft;
		ms[i].http = n->cfg.bootstrap[i].http;
		ms[i].role = RAFT_VOTER;
		mp[i] = &ms[i];
	}
	cmd.n_members = n->cfg.n_bootstrap;
	cmd.members = mp;
	if (rp_node_propose(n, &cmd, on_seeded, n) == RP_OK)
		n->seed_inflight = 1;
}

static void on_tick(uv_timer_t *t)
{
	struct rp_node *n = t->data;
	int state = raft_state(&n->raft);
	raft_id leader;
	const char *addr;
	rp_confguard_observe(&n->guard);
	raft_leader(&n->raft, &leader, &addr);
	if (state != n->last_state || leader != n->last_leader) {
		if (leader != n->last_leader)
			n->stats.leader_changes++;
		rp_log_info("state %s, leader %llu, term %llu", rp_node_state_name(n),
			    (unsigned long long)leader, n->raft.current_term);
		n->last_state = state;
		n->last_leader = leader;
		n->wake_pending = 1;
	}
	if (n->wake_pending) {
		n->wake_pending = 0;
		wake_waiters(n);
	}
	if (state == RAFT_LEADER && n->ready_term != n->raft.current_term && !n->ready_inflight) {
		n->ready_req.data = n;
		n->ready_req_term = n->raft.current_term;
		if (raft_barrier(&n->raft, &n->ready_req, on_ready_barrier) == 0)
			n->ready_inflight = 1;
	}
	if (rp_node_leader_ready(n))
		maybe_seed_members(n);
}

/* ---- proposals and reads ------------------------------------------------ */

struct proposal {
	struct raft_apply req;
	rp_propose_cb cb;
	void *arg;
	uint64_t start;
	struct rp_node *node;
};

static void on_applied(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;
	if (status == 0) {
		rp_histogram_observe(&p->node->stats.propose,
				     (double)(uv_hrtime() - p->start) / 1e9);
		p->cb(p->arg, RP_OK, result);
	} else {
		p->cb(p->arg, RP_ERR_UNKNOWN_OUTCOME, NULL);
	}
	free(p);
}

int rp_node_propose(struct rp_node *n, const Raftplane__Command *cmd, rp_propose_cb cb, void *arg)
{
	struct raft_buffer buf;
	if (!rp_node_leader_ready(n) || n->closing)
		return RP_ERR_NO_LEADER;
	struct proposal *p = calloc(1, sizeof *p);
	if (!p)
		return RP_ERR_NOMEM;
	int rv = rp_command_pack(cmd, raft_malloc, &buf.base, &buf.len);
	if (rv) {
		free(p);
		return rv;
	}
	p->req.data = p;
	p->cb = cb;
	p->arg = arg;
	p->node = n;
	p->start = uv_hrtime();
	if (raft_apply(&n->raft, &p->req, &buf, 1, on_applied) != 0) {
		raft_free(buf.base);
		free(p);
		return RP_ERR_NO_LEADER;
	}
	return RP_OK;
}

static void start_read_barrier(struct rp_node *n);
static void on_read_kick(uv_timer_t *t);

static void fail_reads(struct read_waiter *w, int rv)
{
	while (w) {
		struct read_waiter *next = w->next;
		w->cb(w->arg, rv);
		free(w);
		w = next;
	}
}

static void on_read_barrier(struct raft_barrier *req, int status)
{
	struct rp_node *n = req->data;
	struct read_waiter *w = n->read_batch;
	n->read_batch = NULL;
	n->read_inflight = 0;
	if (status != 0) {
		/* Leadership is being lost: raft fails its requests while it is
		 * still converting, and appending from here crashes 0.15. Fail
		 * the queued reads too; they retry from a timer (api/leader.c). */
		struct read_waiter *q = n->read_queue;
		n->read_queue = NULL;
		fail_reads(w, RP_ERR_NO_LEADER);
		fail_reads(q, RP_ERR_NO_LEADER);
		return;
	}
	for (struct read_waiter *x = w; x; x = x->next)
		n->stats.reads_batched++;
	fail_reads(w, rp_node_leader_ready(n) ? RP_OK : RP_ERR_NO_LEADER);
	if (n->read_queue) /* never append from inside a raft callback */
		uv_timer_start(&n->read_kick, on_read_kick, 0, 0);
}

static void start_read_barrier(struct rp_node *n)
{
	if (n->read_inflight || !n->read_queue)
		return;
	if (!rp_node_leader_ready(n) || n->closing) {
		struct read_waiter *q = n->read_queue;
		n->read_queue = NULL;
		fail_reads(q, RP_ERR_NO_LEADER);
		return;
	}
	n->read_batch = n->read_queue;
	n->read_queue = NULL;
	n->read_req.data = n;
	n->read_inflight = 1;
	n->stats.barriers++;
	if (raft_barrier(&n->raft, &n->read_req, on_read_barrier) != 0) {
		struct read_waiter *b = n->read_batch;
		n->read_batch = NULL;
		n->read_inflight = 0;
		fail_reads(b, RP_ERR_NO_LEADER);
	}
}

static void on_read_kick(uv_timer_t *t)
{
	start_read_barrier(t->data);
}

int rp_node_read_barrier(struct rp_node *n, rp_read_cb cb, void *arg)
{
	if (!rp_node_leader_ready(n) || n->closing)
		return RP_ERR_NO_LEADER;
	struct read_waiter *w = malloc(sizeof *w);
	if (!w)
		return RP_ERR_NOMEM;
	w->cb = cb;
	w->arg = arg;
	w->next = n->read_queue;
	n->read_queue = w;
	if (!n->read_inflight)
		start_read_barrier(n);
	return RP_OK;
}

/* ---- membership --------------------------------------------------------- */

struct member_op {
	struct rp_node *node;
	struct raft_change change;
	struct raft_transfer transfer;
	struct rp_member m;
	int in_raft;     /* raft_add succeeded: undo with raft_remove */
	int status;      /* the failure being rolled back */
	char msg[RAFT_ERRMSG_BUF_SIZE];
	rp_change_done_cb cb;
	void *arg;
};

static struct member_op *member_op_new(struct rp_node *n, uint64_t id, rp_change_done_cb cb,
				       void *arg)
{
	struct member_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->node = n;
	op->m.id = id;
	op->cb = cb;
	op->arg = arg;
	op->change.data = op;
	op->transfer.data = op;
	return op;
}

static void member_op_done(struct member_op *op, int status, const char *msg)
{
	op->cb(op->arg, status, msg);
	free(op);
}

static int raft_to_rp(int rv)
{
	switch (rv) {
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST: return RP_ERR_NO_LEADER;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
	case RAFT_CANTCHANGE: return RP_ERR_CONFLICT;
	case RAFT_BADID:
	case RAFT_NOTFOUND: return RP_ERR_NOT_FOUND;
	case RAFT_BADROLE: return RP_ERR_INVALID;
	case RAFT_NOMEM: return RP_ERR_NOMEM;
	case RAFT_NOCONNECTION: return RP_ERR_UNAVAILABLE;
	default: return RP_ERR_INTERNAL;
	}
}

static int propose_member(struct rp_node *n, int type, const struct rp_member *m,
			  rp_propose_cb cb, void *arg);

static void on_rollback_row(void *arg, int status, const struct rp_apply_result *res)
{
	struct member_op *op = arg;
	(void)status;
	(void)res;
	member_op_done(op, op->status, op->msg);
}

static void rollback_row(struct member_op *op)
{
	if (propose_member(op->node, RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE, &op->m,
			   on_rollback_row, op) != RP_OK)
		member_op_done(op, op->status, op->msg);
}

static void on_rollback_raft(struct raft_change *req, int status)
{
	(void)status; /* if even this fails the member stays a spare: visible */
	rollback_row(req->data);
}

/* A step of adding a member failed: undo what was done, then answer. */
static void member_add_failed(struct member_op *op, int raft_rv, const char *msg)
{
	op->status = raft_to_rp(raft_rv);
	snprintf(op->msg, sizeof op->msg, "adding member %llu failed: %s",
		 (unsigned long long)op->m.id, msg);
	if (op->status == RP_ERR_NO_LEADER) {
		/* leadership lost: no raft call from inside its callbacks; the
		 * new leader sees the row (harmless: rows of non-members are
		 * ignored) and, if raft_add committed, a spare to remove */
		member_op_done(op, op->status, op->msg);
		return;
	}
	if (op->in_raft &&
	    raft_remove(&op->node->raft, &op->change, op->m.id, on_rollback_raft) == 0)
		return;
	rollback_row(op);
}

static void on_role_assigned(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	if (status != 0) {
		member_add_failed(op, status,
				  status == RAFT_NOCONNECTION
				      ? "the new node did not catch up in time (is it running?)"
				      : raft_strerror(status));
		return;
	}
	member_op_done(op, RP_OK, "member added");
}

static void on_raft_added(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	struct rp_node *n = op->node;
	if (status != 0) {
		member_add_failed(op, status, raft_strerror(status));
		return;
	}
	op->in_raft = 1;
	if (op->m.role == RAFT_SPARE) {
		member_op_done(op, RP_OK, "member added");
		return;
	}
	int rv = raft_assign(&n->raft, &op->change, op->m.id, op->m.role, on_role_assigned);
	if (rv != 0)
		member_add_failed(op, rv, raft_errmsg(&n->raft));
}

static void on_member_recorded(void *arg, int status, const struct rp_apply_result *res)
{
	struct member_op *op = arg;
	struct rp_node *n = op->node;
	if (status != RP_OK) {
		member_op_done(op, status, "recording the member failed");
		return;
	}
	if (res->status != RP_OK) {
		member_op_done(op, res->status, res->message);
		return;
	}
	op->change.data = op;
	int rv = raft_add(&n->raft, &op->change, op->m.id, op->m.raft, on_raft_added);
	if (rv != 0)
		member_add_failed(op, rv, raft_errmsg(&n->raft));
}

static int propose_member(struct rp_node *n, int type, const struct rp_member *m,
			  rp_propose_cb cb, void *arg)
{
	Raftplane__Command cmd;
	Raftplane__Member pm, *pmp = &pm;
	raftplane__command__init(&cmd);
	raftplane__member__init(&pm);
	cmd.type = type;
	pm.id = m->id;
	pm.raft = (char *)m->raft;
	pm.http = (char *)m->http;
	pm.role = (uint32_t)m->role;
	cmd.members = &pmp;
	cmd.n_members = 1;
	return rp_node_propose(n, &cmd, cb, arg);
}

static int in_config(struct rp_node *n, uint64_t id)
{
	for (unsigned i = 0; i < n->raft.configuration.n; i++)
		if (n->raft.configuration.servers[i].id == id)
			return 1;
	return 0;
}

struct http_clash {
	struct rp_node *node;
	const struct rp_member *m;
	int clash;
};

/* Only rows of current members count: a row left by a failed add must not
 * block its address. */
static int find_http_clash(void *arg, const struct rp_member *m)
{
	struct http_clash *c = arg;
	if (m->id != c->m->id && strcmp(m->http, c->m->http) == 0 && in_config(c->node, m->id))
		c->clash = 1;
	return c->clash;
}

int rp_node_add_member(struct rp_node *n, const struct rp_member *m, rp_change_done_cb cb,
		       void *arg)
{
	struct raft_configuration *conf = &n->raft.configuration;
	struct http_clash hc = {n, m, 0};
	if (!rp_node_leader_ready(n))
		return RP_ERR_NO_LEADER;
	for (unsigned i = 0; i < conf->n; i++) {
		if (conf->servers[i].id == m->id)
			return RP_ERR_CONFLICT;
		if (strcmp(conf->servers[i].address, m->raft) == 0)
			return RP_ERR_CONFLICT;
	}
	rp_store_members(n->store, find_http_clash, &hc);
	if (hc.clash || strcmp(m->http, n->http_addr) == 0)
		return RP_ERR_CONFLICT;
	/* before the bootstrap members are recorded, the --bootstrap list knows */
	for (unsigned i = 0; i < n->cfg.n_bootstrap; i++)
		if (strcmp(n->cfg.bootstrap[i].http, m->http) == 0 &&
		    in_config(n, n->cfg.bootstrap[i].id))
			return RP_ERR_CONFLICT;
	struct member_op *op = member_op_new(n, m->id, cb, arg);
	if (!op)
		return RP_ERR_NOMEM;
	op->m = *m;
	int rv = propose_member(n, RAFTPLANE__COMMAND__TYPE__MEMBER_PUT, m, on_member_recorded, op);
	if (rv)
		free(op);
	return rv;
}

static void on_member_forgotten(void *arg, int status, const struct rp_apply_result *res)
{
	(void)status;
	(void)res; /* the raft removal already committed; the row is cosmetic */
	member_op_done(arg, RP_OK, "member removed");
}

static void on_raft_removed(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	if (status != 0) {
		member_op_done(op, raft_to_rp(status), raft_strerror(status));
		return;
	}
	if (propose_member(op->node, RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE, &op->m,
			   on_member_forgotten, op) != RP_OK)
		member_op_done(op, RP_OK, "member removed");
}

int rp_node_remove_member(struct rp_node *n, uint64_t id, rp_change_done_cb cb, void *arg)
{
	if (!rp_node_leader_ready(n))
		return RP_ERR_NO_LEADER;
	if (!in_config(n, id))
		return RP_ERR_NOT_FOUND;
	if (id == n->cfg.id)
		return RP_ERR_CONFLICT;
	struct member_op *op = member_op_new(n, id, cb, arg);
	if (!op)
		return RP_ERR_NOMEM;
	int rv = raft_remove(&n->raft, &op->change, id, on_raft_removed);
	if (rv != 0) {
		free(op);
		return raft_to_rp(rv);
	}
	return RP_OK;
}

static void on_transferred(struct raft_transfer *req)
{
	struct member_op *op = req->data;
	raft_id leader;
	const char *addr;
	raft_leader(&op->node->raft, &leader, &addr);
	if (leader == op->m.id)
		member_op_done(op, RP_OK, "leadership transferred");
	else
		member_op_done(op, RP_ERR_TIMEOUT, "target did not become leader in time");
}

int rp_node_transfer(struct rp_node *n, uint64_t id, rp_change_done_cb cb, void *arg)
{
	if (!rp_node_leader_ready(n))
		return RP_ERR_NO_LEADER;
	if (!in_config(n, id))
		return RP_ERR_NOT_FOUND;
	struct member_op *op = member_op_new(n, id, cb, arg);
	if (!op)
		return RP_ERR_NOMEM;
	int rv = raft_transfer(&n->raft, &op->transfer, id, on_transferred);
	if (rv != 0) {
		free(op);
		return rv == RAFT_BADID ? RP_ERR_INVALID : raft_to_rp(rv);
	}
	return RP_OK;
}

/* ---- queries ------------------------------------------------------------ */

void rp_node_member_http(struct rp_node *n, uint64_t id, char *http, size_t httplen)
{
	struct rp_member m;
	http[0] = '\0';
	if (id == n->cfg.id) {
		snprintf(http, httplen, "%s", n->http_addr);
		return;
	}
	if (rp_store_member_get(n->store, id, &m) == RP_OK) {
		snprintf(http, httplen, "%s", m.http);
		return;
	}
	for (unsigned i = 0; i < n->cfg.n_bootstrap; i++)
		if (n->cfg.bootstrap[i].id == id)
			snprintf(http, httplen, "%s", n->cfg.bootstrap[i].http);
}

uint64_t rp_node_leader(struct rp_node *n, char *http, size_t httplen)
{
	raft_id id;
	const char *addr;
	raft_leader(&n->raft, &id, &addr);
	if (http)
		rp_node_member_http(n, id, http, httplen);
	return id;
}

const char *rp_node_state_name(struct rp_node *n)
{
	switch (raft_state(&n->raft)) {
	case RAFT_FOLLOWER: return "follower";
	case RAFT_CANDIDATE: return "candidate";
	case RAFT_LEADER: return "leader";
	default: return "unavailable";
	}
}

struct rp_store *rp_node_store(struct rp_node *n)
{
	return n->store;
}

struct raft *rp_node_raft(struct rp_node *n)
{
	return &n->raft;
}

const struct rp_node_stats *rp_node_stats(struct rp_node *n)
{
	return &n->stats;
}

struct raft_uv_transport *rp_node_transport(struct rp_node *n)
{
	return &n->transport;
}

const struct rp_node_config *rp_node_config(struct rp_node *n)
{
	return &n->cfg;
}

void rp_node_on_change(struct rp_node *n, rp_node_change_cb cb, void *arg)
{
	n->change_cb = cb;
	n->change_arg = arg;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* The data dir remembers which id it belongs to, so that starting it with
 * another --id is refused instead of corrupting a cluster. */
static int check_identity(struct rp_node *n, char *errmsg, size_t errlen)
{
	char path[600], buf[32];
	snprintf(path, sizeof path, "%s/raftplane-id", n->data_dir);
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[r > 0 ? r : 0] = '\0';
		if (strtoull(buf, NULL, 10) != n->cfg.id) {
			snprintf(errmsg, errlen, "data dir %s belongs to node %s, not %" PRIu64,
				 n->data_dir, buf, n->cfg.id);
			return -1;
		}
		return 0;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		snprintf(errmsg, errlen, "create %s: %s", path, strerror(errno));
		return -1;
	}
	int len = snprintf(buf, sizeof buf, "%" PRIu64 "\n", n->cfg.id);
	int ok = write(fd, buf, (size_t)len) == len && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		snprintf(errmsg, errlen, "write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int do_bootstrap(struct rp_node *n, char *errmsg, size_t errlen)
{
	struct raft_configuration conf;
	int rv = 0, self = 0;
	raft_configuration_init(&conf);
	for (unsigned i = 0; i < n->cfg.n_bootstrap && rv == 0; i++) {
		rv = raft_configuration_add(&conf, n->cfg.bootstrap[i].id, n->cfg.bootstrap[i].raft,
					    RAFT_VOTER);
		self |= n->cfg.bootstrap[i].id == n->cfg.id;
	}
	if (rv == 0 && !self) {
		snprintf(errmsg, errlen, "--bootstrap does not list this node's id %" PRIu64,
			 n->cfg.id);
		rv = -1;
	} else if (rv != 0) {
		snprintf(errmsg, errlen, "--bootstrap: %s", raft_strerror(rv));
	} else {
		rv = raft_bootstrap(&n->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP) {
			rv = 0; /* the data dir already has state: resume it */
		} else if (rv != 0) {
			snprintf(errmsg, errlen, "bootstrap: %s", raft_errmsg(&n->raft));
		} else {
			rp_log_info("bootstrapped with %u voters", n->cfg.n_bootstrap);
		}
	}
	raft_configuration_close(&conf);
	return rv;
}

int rp_node_create(uv_loop_t *loop, const struct rp_node_config *cfg, struct rp_node **out,
		   char *errmsg, size_t errlen)
{
	struct rp_node *n = calloc(1, sizeof *n);
	int rv;
	if (!n) {
		snprintf(errmsg, errlen, "out of memory");
		return -1;
	}
	n->loop = loop;
	n->cfg = *cfg;
	snprintf(n->data_dir, sizeof n->data_dir, "%s", cfg->data_dir);
	snprintf(n->raft_addr, sizeof n->raft_addr, "%s", cfg->raft_addr);
	snprintf(n->http_addr, sizeof n->http_addr, "%s", cfg->http_addr);
	n->cfg.data_dir = n->data_dir;
	n->cfg.raft_addr = n->raft_addr;
	n->cfg.http_addr = n->http_addr;
	n->waiters.next = n->waiters.prev = &n->waiters;
	/* before raft_start: replaying the log at start runs fsm_apply */
	uv_timer_init(loop, &n->push_timer);
	n->push_timer.data = n;
	uv_timer_init(loop, &n->read_kick);
	n->read_kick.data = n;
	if (mkdir(n->data_dir, 0755) != 0 && errno != EEXIST) {
		snprintf(errmsg, errlen, "mkdir %s: %s", n->data_dir, strerror(errno));
		goto err;
	}
	if (check_identity(n, errmsg, errlen) != 0)
		goto err;
	if (rp_store_create(&n->store, errmsg, errlen) != RP_OK)
		goto err;
	rp_store_on_change(n->store, on_store_change, n);
	n->fsm = (struct raft_fsm){.version = 2, .data = n, .apply = fsm_apply,
				   .snapshot = fsm_snapshot, .restore = fsm_restore,
				   .snapshot_finalize = fsm_snapshot_finalize};
	struct rp_transport_config tcfg = {.handshake_timeout_ms = cfg->raft_handshake_timeout_ms,
					   .max_pending = cfg->raft_max_pending,
					   .relay_outbound = cfg->raft_relay_outbound};
	if ((rv = rp_transport_init(&n->transport, loop, &tcfg)) != 0) {
		snprintf(errmsg, errlen, "raft transport: %s", raft_strerror(rv));
		goto err_after_store;
	}
	if ((rv = raft_uv_init(&n->io, loop, n->data_dir, &n->transport)) != 0) {
		snprintf(errmsg, errlen, "raft io: %s", n->io.errmsg);
		goto err_after_transport;
	}
	if ((rv = raft_init(&n->raft, &n->io, &n->fsm, cfg->id, n->raft_addr)) != 0) {
		snprintf(errmsg, errlen, "raft init: %s", raft_errmsg(&n->raft));
		goto err_after_io;
	}
	n->raft.data = n;
	rp_confguard_install(&n->guard, &n->raft, &n->io);
	rp_transport_set_raft(&n->transport, &n->raft);
	rp_transport_set_data_dir(&n->transport, cfg->id, n->data_dir);
	raft_set_pre_vote(&n->raft, true);
	raft_set_election_timeout(&n->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms);
	/* 0.15's default is 30 s: a snapshot sent while the follower was down
	 * is only retried after it, stalling the follower's catch-up */
	raft_set_install_snapshot_timeout(&n->raft, cfg->install_snapshot_timeout_ms);
	raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
	if (cfg->n_bootstrap > 0 && do_bootstrap(n, errmsg, errlen) != 0)
		goto err_after_raft;
	*out = n;
	return 0;

err_after_raft:
	raft_close(&n->raft, NULL); /* never started: closes synchronously enough */
	return -1;                  /* leak n on purpose: the process exits */
err_after_io:
	raft_uv_close(&n->io);
err_after_transport:
	rp_transport_close(&n->transport);
err_after_store:
	rp_store_destroy(n->store);
err:
	free(n);
	return -1;
}

int rp_node_start(struct rp_node *n, char *errmsg, size_t errlen)
{
	int rv = raft_start(&n->raft);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft start: %s (%s; io: %s)", raft_strerror(rv),
			 raft_errmsg(&n->raft), n->io.errmsg);
		return -1;
	}
	uv_timer_init(n->loop, &n->tick);
	n->tick.data = n;
	uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
	rp_log_info("started raft on %s (revision %" PRIu64 ")", n->raft_addr,
		    rp_store_revision(n->store));
	return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
	struct rp_node *n = h->data;
	rp_store_destroy(n->store);
	if (n->close_cb)
		n->close_cb(n->close_arg);
	free(n);
}

static void on_raft_closed(struct raft *r)
{
	struct rp_node *n = r->data;
	raft_uv_close(&n->io);
	rp_transport_close(&n->transport);
	rp_confguard_close(&n->guard);
	uv_close((uv_handle_t *)&n->push_timer, NULL);
	uv_close((uv_handle_t *)&n->read_kick, NULL);
	uv_close((uv_handle_t *)&n->tick, on_tick_closed);
}

void rp_node_close(struct rp_node *n, void (*cb)(void *arg), void *arg)
{
	n->closing = 1;
	n->close_cb = cb;
	n->close_arg = arg;
	uv_timer_stop(&n->tick);
	uv_timer_stop(&n->push_timer);
	uv_timer_stop(&n->read_kick);
	raft_close(&n->raft, on_raft_closed);
}
