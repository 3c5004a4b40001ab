/* /v1/proxies and /v1/rollouts/{revision}: the whole fleet, from any server.
 *
 * Each server knows the proxies attached to it (subscribe.c, soft state).
 * These endpoints ask every other member for its local entries
 * (GET /v1/proxies?scope=local, 1 s timeout) and merge them, keeping for
 * each node id the entry seen most recently. Members that do not answer are
 * listed in "unreachable". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "raftplane/err.h"

#define PEER_TIMEOUT_MS 1000
#define ROLLOUT_POLL_MS 50
#define MAX_ROLLOUT_WAIT_MS (600 * 1000)

struct fanout {
	struct rp_call *c;
	int pending;
	json_t *by_node;
	json_t *unreachable;
	uint64_t revision; /* rollouts: the revision asked about; 0 for /v1/proxies */
};

static void merge(json_t *by_node, json_t *entries)
{
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "node_id"));
		if (!id)
			continue;
		json_t *cur = json_object_get(by_node, id);
		json_int_t seen = json_integer_value(json_object_get(e, "last_seen"));
		if (!cur || seen > json_integer_value(json_object_get(cur, "last_seen")))
			json_object_set(by_node, id, e);
	}
}

static void answer_proxies(struct fanout *f)
{
	json_t *arr = json_array();
	const char *key;
	json_t *e;
	json_object_foreach(f->by_node, key, e) json_array_append(arr, e);
	rp_respond_json(f->c, 200, json_pack("{s:o,s:O}", "proxies", arr, "unreachable",
					     f->unreachable), 0);
}

/* @v covers revision @r for the proxy of entry @e when it is at least r, or
 * when it is the node's current version at a server revision at least r
 * (then r did not touch the node). */
static int has_reached(json_t *e, json_t *jv, uint64_t r)
{
	uint64_t v = (uint64_t)json_integer_value(jv);
	uint64_t cur = (uint64_t)json_integer_value(json_object_get(e, "current_version"));
	uint64_t srv = (uint64_t)json_integer_value(json_object_get(e, "server_revision"));
	return json_is_integer(jv) && (v >= r || (srv >= r && v >= cur));
}

static void rollout_poll(struct rp_call *c);

static void answer_rollout(struct fanout *f)
{
	struct rp_call *c = f->c;
	json_int_t acked = 0, nacked = 0, pending = 0;
	json_t *nacks = json_array(), *waiting = json_array();
	const char *key;
	json_t *e;
	json_object_foreach(f->by_node, key, e)
	{
		json_t *nack = json_object_get(e, "nack");
		if (has_reached(e, json_object_get(e, "acked_version"), f->revision)) {
			acked++;
		} else if (json_is_object(nack) &&
			   has_reached(e, json_object_get(nack, "version"), f->revision)) {
			nacked++;
			json_array_append_new(nacks, json_pack("{s:s,s:O,s:O}", "node_id", key, "version",
							       json_object_get(nack, "version"), "error",
							       json_object_get(nack, "error")));
		} else {
			pending++;
			if (json_array_size(waiting) < 100)
				json_array_append_new(waiting, json_string(key));
		}
	}
	uint64_t now = uv_now(c->api->loop);
	if (pending > 0 && now + ROLLOUT_POLL_MS < c->deadline) {
		json_decref(nacks);
		json_decref(waiting);
		rp_call_set_timer(c, ROLLOUT_POLL_MS, rollout_poll);
		return;
	}
	rp_respond_json(c, 200,
			json_pack("{s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:O}", "revision",
				  (json_int_t)f->revision, "proxies", acked + nacked + pending, "acked",
				  acked, "nacked", nacked, "pending", pending, "nacks", nacks,
				  "pending_nodes", waiting, "unreachable", f->unreachable),
			0);
}

static void fanout_done(struct fanout *f)
{
	if (f->c->req && !f->c->responded) {
		if (f->revision)
			answer_rollout(f);
		else
			answer_proxies(f);
	}
	rp_call_unref(f->c);
	json_decref(f->by_node);
	json_decref(f->unreachable);
	free(f);
}

struct peer_req {
	struct fanout *f;
	char http[64];
};

static void on_peer(void *arg, int err, const struct rp_http_response *res)
{
	struct peer_req *p = arg;
	struct fanout *f = p->f;
	json_t *body = !err && res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL)
						   : NULL;
	json_t *entries = json_object_get(body, "proxies");
	if (json_is_array(entries))
		merge(f->by_node, entries);
	else
		json_array_append_new(f->unreachable, json_string(p->http));
	json_decref(body);
	free(p);
	if (--f->pending == 0)
		fanout_done(f);
}

static void start_fanout(struct rp_call *c, uint64_t revision)
{
	struct rp_node *n = c->api->node;
	struct raft_configuration *conf = &rp_node_raft(n)->configuration;
	struct fanout *f = calloc(1, sizeof *f);
	if (!f) {
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return;
	}
	f->c = c;
	f->revision = revision;
	f->by_node = json_object();
	f->unreachable = json_array();
	f->pending = 1; /* ourselves, released below */
	rp_call_ref(c);
	json_t *mine = rp_subscribe_local_fleet(c->api);
	merge(f->by_node, mine);
	json_decref(mine);
	for (unsigned i = 0; i < conf->n; i++) {
		if (conf->servers[i].id == rp_node_config(n)->id)
			continue;
		struct peer_req *p = calloc(1, sizeof *p);
		if (!p)
			continue;
		p->f = f;
		rp_node_member_http(n, conf->servers[i].id, p->http, sizeof p->http);
		f->pending++;
		if (!p->http[0] ||
		    rp_http_request(c->api->loop, p->http, "GET", "/v1/proxies?scope=local", "", NULL,
				    0, PEER_TIMEOUT_MS, on_peer, p, NULL) != 0)
			on_peer(p, RP_ERR_NO_LEADER, NULL);
	}
	if (--f->pending == 0)
		fanout_done(f);
}

void rp_route_proxies(struct rp_call *c)
{
	char scope[16];
	if (strncmp(c->req->method.base, "GET", c->req->method.len) != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use GET", -1);
		return;
	}
	int has = rp_query_param(c->req, "scope", scope, sizeof scope);
	if (has < 0 || (has == 1 && strcmp(scope, "local") != 0 && strcmp(scope, "fleet") != 0)) {
		rp_respond_error(c, RP_ERR_INVALID, "scope must be local or fleet", -1);
		return;
	}
	if (has == 1 && strcmp(scope, "local") == 0) {
		rp_respond_json(c, 200, json_pack("{s:o}", "proxies", rp_subscribe_local_fleet(c->api)),
				0);
		return;
	}
	start_fanout(c, 0);
}

static void rollout_poll(struct rp_call *c)
{
	start_fanout(c, c->if_version);
}

void rp_route_rollout(struct rp_call *c, const char *rev, size_t len)
{
	char wait[32];
	uint64_t wait_ms = 0;
	if (strncmp(c->req->method.base, "GET", c->req->method.len) != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use GET", -1);
		return;
	}
	if (rp_parse_u64(rev, len, &c->if_version) != 0 || c->if_version > INT64_MAX) {
		rp_respond_error(c, RP_ERR_INVALID, "revision must be a positive integer", -1);
		return;
	}
	int has = rp_query_param(c->req, "wait", wait, sizeof wait);
	if (c->if_version == 0 ||
	    (has != 0 && (has < 0 || rp_parse_wait(wait, MAX_ROLLOUT_WAIT_MS, &wait_ms) != 0))) {
		rp_respond_error(c, RP_ERR_INVALID,
				 c->if_version ? "wait must be like 10s or 500ms, at most 10m"
					       : "revision must be a positive integer",
				 -1);
		return;
	}
	c->deadline = uv_now(c->api->loop) + wait_ms;
	start_fanout(c, c->if_version);
}
