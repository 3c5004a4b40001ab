/* /v1/status, /v1/members, /healthz and /readyz.
 *
 * GET /v1/status?scope=cluster asks every member for its own /v1/status
 * (fanout.c: 1 s timeout each) and lists each member of this server's
 * configuration with what it answered, or "reachable": false: the one view
 * a browser (which talks only to the server that served the page) needs to
 * show the whole cluster.
 *
 * A membership call's state (struct member_call, c->ctx) is in the request
 * pool; the membership change's callback reads it only while the call is
 * live (leader.c invariant 3). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cluster.h"
#include "fanout.h"
#include "json.h"
#include "leader.h"
#include "params.h"
#include "raftplane/err.h"
#include "raftplane/version.h"
#include "retention.h"

struct member_call {
	struct rp_member member; /* POST /v1/members */
	uint64_t target_id;      /* DELETE or leadership */
};

static struct member_call *member_of(struct rp_call *c)
{
	if (!c->ctx)
		c->ctx = rp_call_alloc(c, sizeof(struct member_call), NULL);
	return c->ctx;
}

static const char *role_name(int role)
{
	switch (role) {
	case RP_ROLE_VOTER: return "voter";
	case RP_ROLE_STANDBY: return "standby";
	case RP_ROLE_SPARE: return "spare";
	default: return "unknown";
	}
}

static int role_parse(const char *s)
{
	if (strcmp(s, "voter") == 0)
		return RP_ROLE_VOTER;
	if (strcmp(s, "standby") == 0)
		return RP_ROLE_STANDBY;
	if (strcmp(s, "spare") == 0)
		return RP_ROLE_SPARE;
	return -1;
}

static json_t *leader_json(const struct rp_node_status *st)
{
	if (!st->leader_id)
		return json_null();
	return json_pack("{s:o,s:s,s:s}", "id", rp_json_u64(st->leader_id), "raft", st->leader_raft,
			 "http", st->leader_http);
}

static json_t *local_status(struct rp_api *api);

/* Each member of the configuration with the status it answered (matched
 * by id), in configuration order. */
static json_t *reduce_cluster(struct rp_api *api, json_t *bodies, void *arg)
{
	(void)arg;
	struct rp_node_member *ms;
	unsigned n;
	json_t *out = json_array();
	if (rp_node_members(api->node, &ms, &n) != RP_OK)
		return out;
	for (unsigned i = 0; i < n; i++) {
		json_t *st = NULL, *b;
		size_t j;
		json_array_foreach(bodies, j, b)
		{
			json_t *id = json_object_get(b, "id");
			if (json_is_integer(id) && (uint64_t)json_integer_value(id) == ms[i].id)
				st = b;
		}
		json_array_append_new(out, json_pack("{s:o,s:s,s:s,s:s,s:b,s:O}", "id",
						     rp_json_u64(ms[i].id), "raft", ms[i].raft,
						     "http", ms[i].http, "role",
						     role_name(ms[i].role), "reachable", st != NULL,
						     "status", st ? st : json_null()));
	}
	free(ms);
	return out;
}

static void answer_cluster(struct rp_call *c, json_t *members, json_t *unreachable)
{
	rp_respond_json(c, 200,
			json_pack("{s:o,s:O,s:O}", "answered_by",
				  rp_json_u64(rp_node_config(c->api->node)->id), "members", members,
				  "unreachable", unreachable),
			0);
}

void rp_route_status(struct rp_call *c)
{
	char scope[16];
	int has = rp_query_param(c->req, "scope", scope, sizeof scope);
	if (has < 0 || (has == 1 && strcmp(scope, "local") != 0 && strcmp(scope, "cluster") != 0)) {
		rp_respond_error(c, RP_ERR_INVALID, "scope must be local or cluster", -1);
		return;
	}
	if (has == 1 && strcmp(scope, "cluster") == 0) {
		struct rp_fanout_spec spec = {
			.method = "GET",
			.path = "/v1/status?scope=local",
			.key = "cluster-status", /* concurrent callers share one */
			.local = local_status(c->api),
			.reduce = reduce_cluster,
		};
		if (rp_fanout_join(c, spec.key, answer_cluster) == 0)
			rp_fanout_start(c, answer_cluster, &spec);
		return;
	}
	rp_respond_json(c, 200, local_status(c->api), 0);
}

static json_t *local_status(struct rp_api *api)
{
	struct rp_node *n = api->node;
	struct rp_node_status st;
	rp_node_status(n, &st);
	/* raft's values are uint64: rp_json_u64, never a negative json_int_t */
	json_t *o = json_pack("{s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "id", rp_json_u64(st.id),
			      "state", rp_state_name(st.state), "leader", leader_json(&st), "term",
			      rp_json_u64(st.term), "commit_index", rp_json_u64(st.commit_index),
			      "applied_index", rp_json_u64(st.applied_index), "last_index",
			      rp_json_u64(st.last_index), "revision",
			      rp_json_u64(rp_store_revision(rp_node_store(n))), "leader_ready",
			      st.leader_ready);
	const char *cid = rp_store_cluster_id(rp_node_store(n));
	json_object_set_new(o, "cluster_id", cid[0] ? json_string(cid) : json_null());
	/* what this member runs: the gate of a new command type (docs/upgrades.md) */
	json_object_set_new(o, "release", json_string(rp_release()));
	struct rp_history_retention keep;
	rp_store_retention(rp_node_store(n), &keep);
	json_object_set_new(o, "history",
			    json_pack("{s:o,s:o,s:o}", "revisions", rp_json_u64(keep.revisions),
				      "max_age_ms", rp_json_u64(keep.max_age_ms), "compacted",
				      rp_json_u64(rp_store_compacted(rp_node_store(n)))));
	json_object_set_new(o, "formats",
			    json_pack("{s:i,s:i,s:i}", "log", RP_FORMAT_LOG, "snapshot",
				      RP_FORMAT_SNAPSHOT, "protocol", RP_FORMAT_PROTOCOL));
	return o;
}

/* ---- members ------------------------------------------------------------ */

static void list_members(struct rp_call *c)
{
	struct rp_node_member *ms;
	unsigned n;
	int rv = rp_node_members(c->api->node, &ms, &n);
	if (rv != RP_OK) {
		rp_respond_error(c, rv, NULL, -1);
		return;
	}
	json_t *arr = json_array();
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(arr,
				      json_pack("{s:o,s:s,s:s,s:s}", "id", rp_json_u64(ms[i].id),
						"raft", ms[i].raft, "http", ms[i].http, "role",
						role_name(ms[i].role)));
	free(ms);
	rp_respond_json(c, 200, json_pack("{s:o}", "members", arr), 0);
}

static void on_member_done(void *arg, int status, const char *msg)
{
	struct rp_call *c = arg;
	struct member_call *m = c->ctx;
	if (!rp_call_live(c)) {
		/* answered, or the client went: m is gone with the request */
	} else if (status != RP_OK) {
		rp_respond_error(c, status, msg, -1);
	} else if (c->route == RP_ROUTE_MEMBERS) {
		rp_respond_json(c, 201,
				json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)m->member.id,
					  "raft", m->member.raft, "http", m->member.http, "role",
					  role_name(m->member.role)),
				0);
	} else {
		rp_respond_json(
			c, 200,
			json_pack("{s:I,s:s}", "id", (json_int_t)m->target_id, "result", msg), 0);
	}
	rp_call_unref(c);
}

static void run_member_op(struct rp_call *c)
{
	struct member_call *m = c->ctx;
	struct rp_node *n = c->api->node;
	int rv;
	struct rp_audit audit;
	rp_call_audit(c, &audit); /* call.h: who asks, from where, now */
	rp_call_ref(c);
	if (c->route == RP_ROUTE_MEMBERS) {
		m->member.audit = audit;
		rv = rp_node_add_member(n, &m->member, on_member_done, c);
	} else if (c->route == RP_ROUTE_LEADERSHIP) {
		rv = rp_node_transfer(n, m->target_id, on_member_done, c);
	} else {
		rv = rp_node_remove_member(n, m->target_id, &audit, on_member_done, c);
	}
	if (rv == RP_OK)
		return;
	rp_call_unref(c);
	if (rv == RP_ERR_NO_LEADER) {
		rp_leader_retry(c);
		return;
	}
	const char *msg = NULL;
	uint64_t self = rp_node_config(n)->id;
	if (c->route == RP_ROUTE_MEMBERS && rv == RP_ERR_CONFLICT)
		msg = "id, raft or http address already in use by a member, or another "
		      "membership change is in progress";
	else if (c->route == RP_ROUTE_MEMBER && rv == RP_ERR_CONFLICT)
		msg = m->target_id == self ? "cannot remove the leader itself: transfer leadership "
					     "to another voter first"
					   : "another membership change is in progress";
	else if (c->route == RP_ROUTE_LEADERSHIP && rv == RP_ERR_INVALID)
		msg = "the target must be a voter other than the current leader";
	else if (rv == RP_ERR_NOT_FOUND)
		msg = "no such member";
	rp_respond_error(c, rv, msg, -1);
}

static int parse_member(struct rp_call *c, char *msg, size_t msglen)
{
	struct member_call *m = member_of(c);
	static const char *const fields[] = {"id", "raft", "http", "role", NULL};
	h2o_iovec_t e = c->req->entity;
	json_t *o = e.base ? json_loadb(e.base, e.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	struct sockaddr_storage sa;
	const char *key;
	json_t *val;
	int rv = RP_ERR_INVALID;
	if (!json_is_object(o)) {
		snprintf(msg, msglen, "body must be {\"id\",\"raft\",\"http\",\"role\"}");
		goto out;
	}
	json_object_foreach(o, key, val)
	{
		int ok = 0;
		for (const char *const *f = fields; *f; f++)
			ok |= strcmp(*f, key) == 0;
		if (!ok) {
			snprintf(msg, msglen, "unknown field \"%s\"", key);
			goto out;
		}
	}
	json_t *id = json_object_get(o, "id");
	const char *raft = json_string_value(json_object_get(o, "raft"));
	const char *http = json_string_value(json_object_get(o, "http"));
	json_t *jrole = json_object_get(o, "role");
	const char *role = jrole ? json_string_value(jrole) : "voter";
	if (!json_is_integer(id) || json_integer_value(id) < 1) {
		snprintf(msg, msglen, "\"id\" must be an integer >= 1");
		goto out;
	}
	if (!raft || strlen(raft) >= 64 || rp_parse_hostport(raft, &sa) != 0 || !http ||
	    strlen(http) >= 64 || rp_parse_hostport(http, &sa) != 0) {
		snprintf(msg, msglen, "\"raft\" and \"http\" must be IP:port");
		goto out;
	}
	if (!role || role_parse(role) < 0) {
		snprintf(msg, msglen, "\"role\" must be voter, standby or spare");
		goto out;
	}
	m->member.id = (uint64_t)json_integer_value(id);
	snprintf(m->member.raft, sizeof m->member.raft, "%s", raft);
	snprintf(m->member.http, sizeof m->member.http, "%s", http);
	m->member.role = role_parse(role);
	rv = RP_OK;
out:
	json_decref(o);
	return rv;
}

void rp_route_members(struct rp_call *c, const char *method)
{
	char msg[200];
	if (strcmp(method, "GET") == 0) {
		list_members(c);
		return;
	}
	if (strcmp(method, "POST") != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use GET or POST", -1);
		return;
	}
	if (parse_member(c, msg, sizeof msg) != RP_OK) {
		rp_respond_error(c, RP_ERR_INVALID, msg, -1);
		return;
	}
	rp_leader_run(c, 1, run_member_op);
}

void rp_route_member(struct rp_call *c, const char *method, const char *id, size_t id_len,
		     int leadership)
{
	struct member_call *m = member_of(c);
	if (rp_parse_u64(id, id_len, &m->target_id) != 0 || m->target_id == 0 ||
	    m->target_id > INT64_MAX) {
		rp_respond_error(c, RP_ERR_INVALID, "member id must be a positive integer", -1);
		return;
	}
	if (strcmp(method, leadership ? "POST" : "DELETE") != 0) {
		rp_respond_error(c, RP_ERR_METHOD, leadership ? "use POST" : "use DELETE", -1);
		return;
	}
	rp_leader_run(c, 1, run_member_op);
}

/* ---- health ------------------------------------------------------------- */

void rp_route_healthz(struct rp_call *c)
{
	/* features: what this release applies, for the upgrade gate of a new
	 * command type (docs/upgrades.md rule 3; retention.c) */
	rp_respond_json(c, 200,
			json_pack("{s:s,s:[s]}", "status", "ok", "features", RP_FEATURE_HISTORY),
			0);
}

void rp_route_readyz(struct rp_call *c)
{
	struct rp_node_status st;
	rp_node_status(c->api->node, &st);
	uint64_t leader = st.leader_id;
	int caught_up = st.applied_index >= st.commit_index;
	int disk_ok = st.disk_state == 0; /* raft's log writes persist (raft/diskguard.h) */
	int ready = leader != 0 && caught_up && disk_ok &&
		    (st.state != RP_STATE_LEADER || st.leader_ready);
	static const char *disk_names[] = {"ok", "full", "failed"};
	json_t *o =
		json_pack("{s:s,s:b,s:b,s:s}", "status", ready ? "ready" : "not_ready",
			  "has_leader", leader != 0, "caught_up", caught_up, "disk",
			  disk_names[st.disk_state >= 0 && st.disk_state <= 2 ? st.disk_state : 2]);
	if (o && !disk_ok)
		json_object_set_new(o, "reason", json_string(st.disk_reason));
	rp_respond_json(c, ready ? 200 : 503, o, 0);
}
