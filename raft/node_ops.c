/* The calls of node.h besides the lifecycle: each forwards to the concern
 * module that owns it, or reads the node's state for api/ and server/
 * (status snapshot, members listing), so that nothing outside raft/ needs
 * struct raft.
 *
 * Once rp_node_close() ran, libraft's state is being torn down while the
 * loop still serves requests already read (pipelined ones, those of the
 * loop turn of SIGTERM): from then on no call here touches struct raft.
 * The node reports itself unavailable without a leader, refuses new work
 * with RP_ERR_UNAVAILABLE, and lists no members. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "node.h"
#include "node_priv.h"
#include "raftplane/err.h"

static enum rp_raft_state state_of(int raft_state)
{
	switch (raft_state) {
	case RAFT_FOLLOWER: return RP_STATE_FOLLOWER;
	case RAFT_CANDIDATE: return RP_STATE_CANDIDATE;
	case RAFT_LEADER: return RP_STATE_LEADER;
	default: return RP_STATE_UNAVAILABLE;
	}
}

static int raft_state_of(enum rp_raft_state state)
{
	switch (state) {
	case RP_STATE_FOLLOWER: return RAFT_FOLLOWER;
	case RP_STATE_CANDIDATE: return RAFT_CANDIDATE;
	case RP_STATE_LEADER: return RAFT_LEADER;
	default: return RAFT_UNAVAILABLE;
	}
}

const char *rp_state_name(enum rp_raft_state state)
{
	return rp_raft_state_name(raft_state_of(state));
}

const char *rp_node_state_name(struct rp_node *n)
{
	if (n->closing)
		return rp_raft_state_name(RAFT_UNAVAILABLE);
	return rp_raft_state_name(raft_state(&n->raft));
}

/* ---- status and members -------------------------------------------------- */

static const struct raft_server *config_server(const struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->configuration.n; i++)
		if (r->configuration.servers[i].id == id)
			return &r->configuration.servers[i];
	return NULL;
}

void rp_node_status(struct rp_node *n, struct rp_node_status *st)
{
	struct raft *r = &n->raft;
	*st = (struct rp_node_status){.id = n->cfg.id, .state = RP_STATE_UNAVAILABLE};
	if (n->closing)
		return;
	st->state = state_of(raft_state(r));
	st->term = r->current_term;
	st->leader_id = rp_node_leader(n, st->leader_http, sizeof st->leader_http);
	const struct raft_server *s = st->leader_id ? config_server(r, st->leader_id) : NULL;
	if (s)
		snprintf(st->leader_raft, sizeof st->leader_raft, "%s", s->address);
	st->commit_index = r->commit_index;
	st->applied_index = raft_last_applied(r);
	st->last_index = raft_last_index(r);
	st->leader_ready = rp_readiness_ready(&n->ready);
	st->disk_state = (int)n->disk.state;
	snprintf(st->disk_reason, sizeof st->disk_reason, "%s", n->disk.reason);
}

int rp_node_members(struct rp_node *n, struct rp_node_member **out, unsigned *count)
{
	const struct raft_configuration *conf = &n->raft.configuration;
	*out = NULL;
	*count = 0;
	if (n->closing)
		return RP_ERR_UNAVAILABLE;
	if (conf->n == 0)
		return RP_OK;
	struct rp_node_member *m = calloc(conf->n, sizeof *m);
	if (!m)
		return RP_ERR_NOMEM;
	for (unsigned i = 0; i < conf->n; i++) {
		m[i].id = conf->servers[i].id;
		snprintf(m[i].raft, sizeof m[i].raft, "%s", conf->servers[i].address);
		rp_membership_http(&n->members, m[i].id, m[i].http, sizeof m[i].http);
		m[i].role = (enum rp_role)conf->servers[i].role;
	}
	*out = m;
	*count = conf->n;
	return RP_OK;
}

int rp_node_is_member(struct rp_node *n, uint64_t id)
{
	return rp_membership_has(&n->members, id);
}

void rp_node_member_http(struct rp_node *n, uint64_t id, char *http, size_t httplen)
{
	rp_membership_http(&n->members, id, http, httplen);
}

uint64_t rp_node_leader(struct rp_node *n, char *http, size_t httplen)
{
	raft_id id = 0;
	const char *addr;
	if (http && httplen)
		http[0] = '\0';
	if (n->closing)
		return 0;
	raft_leader(&n->raft, &id, &addr);
	if (http)
		rp_node_member_http(n, id, http, httplen);
	return id;
}

int rp_node_leader_ready(struct rp_node *n)
{
	return rp_readiness_ready(&n->ready);
}

struct rp_store *rp_node_store(struct rp_node *n)
{
	return n->store;
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

/* ---- forwarded to the concern modules -------------------------------------- */

int rp_node_propose(struct rp_node *n, const Raftplane__Command *cmd, rp_propose_cb cb, void *arg)
{
	if (n->closing)
		return RP_ERR_UNAVAILABLE;
	return rp_propose(&n->proposer, cmd, cb, arg);
}

int rp_node_read_barrier(struct rp_node *n, rp_read_cb cb, void *arg)
{
	if (n->closing)
		return RP_ERR_UNAVAILABLE;
	return rp_readq_submit(&n->readq, cb, arg);
}

int rp_node_add_member(struct rp_node *n, const struct rp_member *m, rp_change_done_cb cb,
		       void *arg)
{
	if (n->closing)
		return RP_ERR_UNAVAILABLE;
	return rp_membership_add(&n->members, m, cb, arg);
}

int rp_node_remove_member(struct rp_node *n, uint64_t id, const struct rp_audit *audit,
			  rp_change_done_cb cb, void *arg)
{
	if (n->closing)
		return RP_ERR_UNAVAILABLE;
	return rp_membership_remove(&n->members, id, audit, cb, arg);
}

int rp_node_transfer(struct rp_node *n, uint64_t id, rp_change_done_cb cb, void *arg)
{
	if (n->closing)
		return RP_ERR_UNAVAILABLE;
	return rp_membership_transfer(&n->members, id, cb, arg);
}

int rp_node_closing(const struct rp_node *n)
{
	return n->closing;
}

void rp_node_wait_leader(struct rp_node *n, struct rp_leader_waiter *w)
{
	assert(!n->closing);
	rp_readiness_wait(&n->ready, w);
}

void rp_node_unwait_leader(struct rp_node *n, struct rp_leader_waiter *w)
{
	(void)n;
	rp_readiness_unwait(w);
}
