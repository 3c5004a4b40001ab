/* Membership changes.
 *
 * Adding a member takes three steps, each started from the previous one's
 * callback: record its HTTP address (a MEMBER_PUT entry: the members table
 * is where the API finds it), raft_add it as a spare, raft_assign its role
 * (a voter is promoted only after catching up). Removing is raft_remove,
 * then a MEMBER_DELETE entry (cosmetic: rows of non-members are ignored).
 *
 * Invariants
 *
 * 1. An operation has exactly one request in flight at a time, named by
 *    op->step; each callback checks it is the one expected.
 * 2. A failed add is undone in reverse before it is answered: raft_remove
 *    when raft_add had succeeded (STEP_UNDO_ADD), then the row is deleted
 *    (STEP_UNDO_ROW); the answer is the original failure. If even the undo
 *    fails the member stays a spare, which /v1/members shows.
 * 3. When leadership is lost nothing is undone: no raft call may be made
 *    from inside raft's callbacks while it steps down, and the next leader
 *    sees only a row of a non-member (harmless) or a spare to remove.
 * 4. Every operation ends in op_done() exactly once, which answers and
 *    frees it; ms->ops counts those in flight.
 * 5. Only rows of current members count for HTTP address clashes: a row
 *    left by a failed add never blocks its address.
 *
 *   add:    RECORD --> ADD --> ASSIGN --> done
 *             |         |        |
 *             |         +--------+--> UNDO_ADD --> UNDO_ROW --> done(failure)
 *             +----------------------------------> UNDO_ROW (raft_add refused)
 *   remove: REMOVE --> FORGET --> done     transfer: TRANSFER --> done
 */
#include "membership.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"

static_assert(RP_ROLE_STANDBY == RAFT_STANDBY && RP_ROLE_VOTER == RAFT_VOTER &&
		      RP_ROLE_SPARE == RAFT_SPARE,
	      "enum rp_role must keep canonical/raft's role values (they are in the log)");

enum op_step {
	STEP_RECORD,   /* MEMBER_PUT proposed */
	STEP_ADD,      /* raft_add in flight */
	STEP_ASSIGN,   /* raft_assign in flight */
	STEP_UNDO_ADD, /* raft_remove of a failed add in flight */
	STEP_UNDO_ROW, /* MEMBER_DELETE of a failed add proposed */
	STEP_REMOVE,   /* raft_remove in flight */
	STEP_FORGET,   /* MEMBER_DELETE after a removal proposed */
	STEP_TRANSFER, /* raft_transfer in flight */
};

struct member_op {
	struct rp_membership *ms;
	enum op_step step;
	struct raft_change change;
	struct raft_transfer transfer;
	struct rp_member m;
	int in_raft; /* raft_add succeeded: undo with raft_remove */
	int status;  /* the failure being rolled back */
	char msg[RAFT_ERRMSG_BUF_SIZE];
	rp_change_done_cb cb;
	void *arg;
};

void rp_membership_init(struct rp_membership *ms, struct raft *raft, struct rp_proposer *proposer,
			const struct rp_readiness *ready, struct rp_store *store, uint64_t self_id,
			const char *self_http, const struct rp_peer *bootstrap,
			unsigned n_bootstrap)
{
	*ms = (struct rp_membership){.raft = raft,
				     .proposer = proposer,
				     .ready = ready,
				     .store = store,
				     .self_id = self_id,
				     .self_http = self_http,
				     .bootstrap = bootstrap,
				     .n_bootstrap = n_bootstrap};
}

static struct member_op *op_new(struct rp_membership *ms, uint64_t id, enum op_step step,
				rp_change_done_cb cb, void *arg)
{
	struct member_op *op = calloc(1, sizeof *op);
	if (!op)
		return NULL;
	op->ms = ms;
	op->step = step;
	op->m.id = id;
	op->cb = cb;
	op->arg = arg;
	op->change.data = op;
	op->transfer.data = op;
	ms->ops++;
	return op;
}

/* An operation that never started: nobody is answered. */
static void op_abandon(struct member_op *op)
{
	assert(op->ms->ops > 0);
	op->ms->ops--;
	free(op);
}

static void op_done(struct member_op *op, int status, const char *msg)
{
	op->cb(op->arg, status, msg);
	op_abandon(op);
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

static int propose_member(struct rp_membership *ms, int type, const struct rp_member *m,
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
	cmd.actor = (char *)m->audit.actor; /* who asked, for the audit trail */
	cmd.address = (char *)m->audit.address;
	cmd.time_ms = m->audit.time_ms;
	return rp_propose(ms->proposer, &cmd, cb, arg);
}

/* ---- add and its rollback ------------------------------------------------ */

static void on_rollback_row(void *arg, int status, const struct rp_apply_result *res)
{
	struct member_op *op = arg;
	(void)status;
	(void)res;
	assert(op->step == STEP_UNDO_ROW);
	op_done(op, op->status, op->msg);
}

static void rollback_row(struct member_op *op)
{
	op->step = STEP_UNDO_ROW;
	if (propose_member(op->ms, RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE, &op->m, on_rollback_row,
			   op) != RP_OK)
		op_done(op, op->status, op->msg);
}

static void on_rollback_raft(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	(void)status; /* if even this fails the member stays a spare: visible */
	assert(op->step == STEP_UNDO_ADD);
	rollback_row(op);
}

/* A step of adding a member failed: undo what was done, then answer. */
static void add_failed(struct member_op *op, int raft_rv, const char *msg)
{
	assert(op->step == STEP_ADD || op->step == STEP_ASSIGN);
	op->status = raft_to_rp(raft_rv);
	snprintf(op->msg, sizeof op->msg, "adding member %llu failed: %s",
		 (unsigned long long)op->m.id, msg);
	if (op->status == RP_ERR_NO_LEADER) { /* invariant 3 */
		op_done(op, op->status, op->msg);
		return;
	}
	op->step = STEP_UNDO_ADD;
	if (op->in_raft && raft_remove(op->ms->raft, &op->change, op->m.id, on_rollback_raft) == 0)
		return;
	rollback_row(op);
}

static void on_role_assigned(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	assert(op->step == STEP_ASSIGN);
	if (status != 0) {
		add_failed(op, status,
			   status == RAFT_NOCONNECTION
				   ? "the new node did not catch up in time (is it running?)"
				   : raft_strerror(status));
		return;
	}
	op_done(op, RP_OK, "member added");
}

static void on_raft_added(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	struct raft *r = op->ms->raft;
	assert(op->step == STEP_ADD);
	if (status != 0) {
		add_failed(op, status, raft_strerror(status));
		return;
	}
	op->in_raft = 1;
	if (op->m.role == RAFT_SPARE) {
		op_done(op, RP_OK, "member added");
		return;
	}
	op->step = STEP_ASSIGN;
	int rv = raft_assign(r, &op->change, op->m.id, op->m.role, on_role_assigned);
	if (rv != 0)
		add_failed(op, rv, raft_errmsg(r));
}

static void on_member_recorded(void *arg, int status, const struct rp_apply_result *res)
{
	struct member_op *op = arg;
	struct raft *r = op->ms->raft;
	assert(op->step == STEP_RECORD);
	if (status != RP_OK) {
		op_done(op, status, "recording the member failed");
		return;
	}
	if (res->status != RP_OK) {
		op_done(op, res->status, res->message);
		return;
	}
	op->step = STEP_ADD;
	int rv = raft_add(r, &op->change, op->m.id, op->m.raft, on_raft_added);
	if (rv != 0)
		add_failed(op, rv, raft_errmsg(r));
}

int rp_membership_has(const struct rp_membership *ms, uint64_t id)
{
	const struct raft_configuration *conf = &ms->raft->configuration;
	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return 1;
	return 0;
}

struct http_clash {
	const struct rp_membership *ms;
	const struct rp_member *m;
	int clash;
};

/* Invariant 5. */
static int find_http_clash(void *arg, const struct rp_member *m)
{
	struct http_clash *c = arg;
	if (m->id != c->m->id && strcmp(m->http, c->m->http) == 0 &&
	    rp_membership_has(c->ms, m->id))
		c->clash = 1;
	return c->clash;
}

static int add_conflicts(struct rp_membership *ms, const struct rp_member *m)
{
	const struct raft_configuration *conf = &ms->raft->configuration;
	struct http_clash hc = {ms, m, 0};
	for (unsigned i = 0; i < conf->n; i++) {
		if (conf->servers[i].id == m->id)
			return 1;
		if (strcmp(conf->servers[i].address, m->raft) == 0)
			return 1;
	}
	rp_store_members(ms->store, find_http_clash, &hc);
	if (hc.clash || strcmp(m->http, ms->self_http) == 0)
		return 1;
	/* before the bootstrap members are recorded, the --bootstrap list knows */
	for (unsigned i = 0; i < ms->n_bootstrap; i++)
		if (strcmp(ms->bootstrap[i].http, m->http) == 0 &&
		    rp_membership_has(ms, ms->bootstrap[i].id))
			return 1;
	return 0;
}

int rp_membership_add(struct rp_membership *ms, const struct rp_member *m, rp_change_done_cb cb,
		      void *arg)
{
	if (!rp_readiness_ready(ms->ready))
		return RP_ERR_NO_LEADER;
	if (add_conflicts(ms, m))
		return RP_ERR_CONFLICT;
	struct member_op *op = op_new(ms, m->id, STEP_RECORD, cb, arg);
	if (!op)
		return RP_ERR_NOMEM;
	op->m = *m;
	int rv = propose_member(ms, RAFTPLANE__COMMAND__TYPE__MEMBER_PUT, m, on_member_recorded,
				op);
	if (rv)
		op_abandon(op);
	return rv;
}

/* ---- remove and transfer ----------------------------------------------------- */

static void on_member_forgotten(void *arg, int status, const struct rp_apply_result *res)
{
	struct member_op *op = arg;
	(void)status;
	(void)res; /* the raft removal already committed; the row is cosmetic */
	assert(op->step == STEP_FORGET);
	op_done(op, RP_OK, "member removed");
}

static void on_raft_removed(struct raft_change *req, int status)
{
	struct member_op *op = req->data;
	assert(op->step == STEP_REMOVE);
	if (status != 0) {
		op_done(op, raft_to_rp(status), raft_strerror(status));
		return;
	}
	op->step = STEP_FORGET;
	if (propose_member(op->ms, RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE, &op->m,
			   on_member_forgotten, op) != RP_OK)
		op_done(op, RP_OK, "member removed");
}

int rp_membership_remove(struct rp_membership *ms, uint64_t id, const struct rp_audit *audit,
			 rp_change_done_cb cb, void *arg)
{
	if (!rp_readiness_ready(ms->ready))
		return RP_ERR_NO_LEADER;
	if (!rp_membership_has(ms, id))
		return RP_ERR_NOT_FOUND;
	if (id == ms->self_id)
		return RP_ERR_CONFLICT;
	struct member_op *op = op_new(ms, id, STEP_REMOVE, cb, arg);
	if (!op)
		return RP_ERR_NOMEM;
	if (audit)
		op->m.audit = *audit;
	int rv = raft_remove(ms->raft, &op->change, id, on_raft_removed);
	if (rv != 0) {
		op_abandon(op);
		return raft_to_rp(rv);
	}
	return RP_OK;
}

static void on_transferred(struct raft_transfer *req)
{
	struct member_op *op = req->data;
	raft_id leader;
	const char *addr;
	assert(op->step == STEP_TRANSFER);
	raft_leader(op->ms->raft, &leader, &addr);
	if (leader == op->m.id)
		op_done(op, RP_OK, "leadership transferred");
	else
		op_done(op, RP_ERR_TIMEOUT, "target did not become leader in time");
}

int rp_membership_transfer(struct rp_membership *ms, uint64_t id, rp_change_done_cb cb, void *arg)
{
	if (!rp_readiness_ready(ms->ready))
		return RP_ERR_NO_LEADER;
	if (!rp_membership_has(ms, id))
		return RP_ERR_NOT_FOUND;
	struct member_op *op = op_new(ms, id, STEP_TRANSFER, cb, arg);
	if (!op)
		return RP_ERR_NOMEM;
	int rv = raft_transfer(ms->raft, &op->transfer, id, on_transferred);
	if (rv != 0) {
		op_abandon(op);
		return rv == RAFT_BADID ? RP_ERR_INVALID : raft_to_rp(rv);
	}
	return RP_OK;
}

/* ---- seeding and addresses ------------------------------------------------- */

static int any_member(void *arg, const struct rp_member *m)
{
	(void)m;
	*(int *)arg = 1;
	return 1;
}

static void on_seeded(void *arg, int status, const struct rp_apply_result *res)
{
	struct rp_membership *ms = arg;
	(void)status;
	(void)res;
	ms->seed_inflight = 0;
}

/* MEMBER_SEED is a no-op when the table already has rows. */
void rp_membership_seed(struct rp_membership *ms)
{
	int any = 0;
	if (ms->seed_inflight || ms->n_bootstrap == 0)
		return;
	rp_store_members(ms->store, any_member, &any);
	if (any)
		return;
	Raftplane__Command cmd;
	Raftplane__Member pm[RP_MAX_PEERS], *pp[RP_MAX_PEERS];
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__MEMBER_SEED;
	assert(ms->n_bootstrap <= RP_MAX_PEERS);
	for (unsigned i = 0; i < ms->n_bootstrap; i++) {
		raftplane__member__init(&pm[i]);
		pm[i].id = ms->bootstrap[i].id;
		pm[i].raft = (char *)ms->bootstrap[i].raft;
		pm[i].http = (char *)ms->bootstrap[i].http;
		pm[i].role = RAFT_VOTER;
		pp[i] = &pm[i];
	}
	cmd.n_members = ms->n_bootstrap;
	cmd.members = pp;
	if (rp_propose(ms->proposer, &cmd, on_seeded, ms) == RP_OK)
		ms->seed_inflight = 1;
}

void rp_membership_http(const struct rp_membership *ms, uint64_t id, char *http, size_t httplen)
{
	struct rp_member m;
	http[0] = '\0';
	if (id == ms->self_id) {
		snprintf(http, httplen, "%s", ms->self_http);
		return;
	}
	if (rp_store_member_get(ms->store, id, &m) == RP_OK) {
		snprintf(http, httplen, "%s", m.http);
		return;
	}
	for (unsigned i = 0; i < ms->n_bootstrap; i++)
		if (ms->bootstrap[i].id == id)
			snprintf(http, httplen, "%s", ms->bootstrap[i].http);
}
