/* /v1/proxies and /v1/rollouts/{revision}: the whole fleet, from any server.
 *
 * Each server knows the proxies attached to it (subscribe.c, soft state).
 * These endpoints ask every other member for its local entries
 * (GET /v1/proxies?scope=local, through fanout.c: 1 s timeout) and merge
 * them per node id (merge_node). Members that do not answer are listed in
 * "unreachable".
 *
 * Invariants
 * 1. Rollout waits never fan out on their own: they read a merged view
 *    shared by every waiter of this server (api->fleet), refreshed by at
 *    most one fan-out in flight and at most once per SHARE_MS. The peer load
 *    is therefore independent of the number of waiters.
 * 2. A rollout wait's state (struct rollout_call, c->ctx) is in the
 *    request pool: read only while the call is live (fanout.c runs its
 *    callbacks only for live calls).
 * 3. Merging keeps each node's most recent entry, but a NACK recorded by any
 *    server stands unless some server saw an ACK that clears it (an ACK of
 *    a newer version, or of that version after it was sent again): the rule
 *    of subscribe.c invariant 6 applied across servers. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "park.h"
#include "fleet.h"
#include "params.h"
#include "raftplane/err.h"
#include "subscribe.h"
#include "telemetry_query.h"

#define SHARE_KEY "proxies"
#define MAX_ROLLOUT_TELEMETRY 10000 /* ACKed proxies whose telemetry a rollout shows */
#define ROLLOUT_POLL_MS 250
#define SHARE_MS 250
#define MAX_ROLLOUT_WAIT_MS (600 * 1000)

/* A rollout wait (c->ctx). */
struct rollout_call {
	uint64_t revision;
	uint64_t window;   /* of the telemetry before/after the ACK (ms) */
	uint64_t deadline; /* uv_now() ms of the last look */
};

struct rp_fleet_share {
	json_t *by_node, *unreachable; /* last merged view, NULL before the first */
	uint64_t at;                   /* uv_now() when it was merged */
};

/* ---- merging ------------------------------------------------------------ */

static void collect(json_t *by_node, json_t *entries)
{
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "node_id"));
		if (!id || !json_is_object(e))
			continue;
		json_t *list = json_object_get(by_node, id);
		if (!list) {
			list = json_array();
			json_object_set_new(by_node, id, list);
		}
		json_array_append(list, e);
	}
}

static json_int_t ival(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* Does some entry of @list clear the NACK @nack (invariant 3)? */
static int nack_cleared(json_t *list, json_t *nack)
{
	json_int_t v = ival(nack, "version"), at = ival(nack, "at");
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		json_t *a = json_object_get(e, "acked_version");
		if (!json_is_integer(a))
			continue;
		if (json_integer_value(a) > v ||
		    (json_integer_value(a) == v && json_is_true(json_object_get(e, "ack_backed")) &&
		     ival(e, "acked_at") > at))
			return 1;
	}
	return 0;
}

/* One entry for a node from what every server said about it. */
static json_t *merge_node(json_t *list)
{
	json_t *base = NULL, *best = NULL, *e;
	size_t i;
	json_array_foreach(list, i, e) if (!base || ival(e, "last_seen") > ival(base, "last_seen"))
		base = e;
	json_array_foreach(list, i, e)
	{
		json_t *n = json_object_get(e, "nack");
		if (json_is_object(n) && !nack_cleared(list, n) &&
		    (!best || ival(n, "version") > ival(best, "version")))
			best = n;
	}
	base = json_copy(base);
	json_object_set(base, "nack", best ? best : json_null());
	/* when the version was first ACKed, on whichever server saw it first */
	json_t *since = json_object_get(base, "acked_since");
	json_array_foreach(list, i, e) if (json_equal(json_object_get(e, "acked_version"),
						      json_object_get(base, "acked_version")) &&
					   json_is_integer(json_object_get(e, "acked_since")) &&
					   ival(e, "acked_since") > 0 &&
					   (!json_is_integer(since) ||
					    ival(e, "acked_since") < json_integer_value(since)))
		since = json_object_get(e, "acked_since");
	if (since)
		json_object_set(base, "acked_since", since);
	json_t *acked = json_object_get(base, "acked_version");
	if (best && json_is_integer(acked) && json_integer_value(acked) >= ival(best, "version")) {
		/* that ACK does not clear the NACK: report the newest one below it */
		json_t *below = json_null();
		json_array_foreach(list, i, e)
		{
			json_t *a = json_object_get(e, "acked_version");
			if (json_is_integer(a) && json_integer_value(a) < ival(best, "version") &&
			    (!json_is_integer(below) ||
			     json_integer_value(a) > json_integer_value(below)))
				below = a;
		}
		json_object_set(base, "acked_version", below);
	}
	return base;
}

static void merge_all(json_t *by_node)
{
	const char *key;
	json_t *list;
	void *tmp;
	json_object_foreach_safe(by_node, tmp, key, list)
		json_object_set_new(by_node, key, merge_node(list));
}

/* ---- answers ------------------------------------------------------------ */

static void answer_proxies(struct rp_call *c, json_t *by_node, json_t *unreachable)
{
	json_t *arr = json_array();
	const char *key;
	json_t *e;
	json_object_foreach(by_node, key, e) json_array_append(arr, e);
	rp_respond_json(c, 200, json_pack("{s:o,s:O}", "proxies", arr, "unreachable", unreachable),
			0);
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

static void answer_rollout(struct rp_call *c, json_t *by_node, json_t *unreachable)
{
	struct rollout_call *ro = c->ctx;
	uint64_t r = ro->revision;
	json_int_t acked = 0, nacked = 0, pending = 0;
	json_t *nacks = json_array(), *waiting = json_array(), *ackers = json_object();
	const char *key;
	json_t *e;
	json_object_foreach(by_node, key, e)
	{
		json_t *nack = json_object_get(e, "nack");
		if (has_reached(e, json_object_get(e, "acked_version"), r)) {
			acked++;
			json_t *since = json_object_get(e, "acked_since");
			if (!json_is_integer(since) || json_integer_value(since) <= 0)
				since = json_object_get(e, "acked_at");
			if (json_is_integer(since) &&
			    json_object_size(ackers) < MAX_ROLLOUT_TELEMETRY)
				json_object_set(ackers, key, since);
		} else if (json_is_object(nack) &&
			   has_reached(e, json_object_get(nack, "version"), r)) {
			nacked++;
			json_array_append_new(nacks,
					      json_pack("{s:s,s:O,s:O}", "node_id", key, "version",
							json_object_get(nack, "version"), "error",
							json_object_get(nack, "error")));
		} else {
			pending++;
			if (json_array_size(waiting) < 100)
				json_array_append_new(waiting, json_string(key));
		}
	}
	uint64_t now = uv_now(c->api->loop);
	if (pending > 0 && now < ro->deadline) { /* look again, last at the deadline */
		uint64_t left = ro->deadline - now;
		json_decref(nacks);
		json_decref(waiting);
		json_decref(ackers);
		rp_call_set_timer(c, left < ROLLOUT_POLL_MS ? left : ROLLOUT_POLL_MS, rollout_poll);
		return;
	}
	json_t *answer = json_pack("{s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:O}", "revision", (json_int_t)r,
				   "proxies", acked + nacked + pending, "acked", acked, "nacked",
				   nacked, "pending", pending, "nacks", nacks, "pending_nodes",
				   waiting, "unreachable", unreachable);
	rp_tq_rollout(c, answer, ackers, ro->window); /* adds "telemetry", answers */
}

/* ---- fan-out (fanout.c) --------------------------------------------------- */

static json_t *reduce_proxies(struct rp_api *api, json_t *bodies, void *arg)
{
	(void)api;
	(void)arg;
	json_t *by_node = json_object(), *b;
	size_t i;
	json_array_foreach(bodies, i, b)
	{
		json_t *entries = json_object_get(b, "proxies");
		if (json_is_array(entries))
			collect(by_node, entries);
	}
	merge_all(by_node);
	return by_node;
}

/* The shared view's cache (invariant 1). */
static void keep_view(struct rp_api *api, json_t *by_node, json_t *unreachable, void *arg)
{
	(void)arg;
	struct rp_fleet_share *sh = api->fleet;
	json_decref(sh->by_node);
	json_decref(sh->unreachable);
	sh->by_node = json_incref(by_node);
	sh->unreachable = json_incref(unreachable);
	sh->at = uv_now(api->loop);
}

/* Ask every member; @c (with @cb) is the first waiter. @shared: the
 * rollouts' fan-out (one in flight, its view cached). */
static void start_fanout(struct rp_call *c, rp_fanout_cb cb, int shared)
{
	struct rp_fanout_spec spec = {
		.method = "GET",
		.path = "/v1/proxies?scope=local",
		.key = shared ? SHARE_KEY : NULL,
		.local = json_pack("{s:o}", "proxies", rp_subscribe_local_fleet(c->api)),
		.reduce = reduce_proxies,
		.done = shared ? keep_view : NULL,
	};
	rp_fanout_start(c, cb, &spec);
}

/* Give @c the shared view: at once when fresh (unless @fresh), else after
 * the fan-out in flight or a new one (invariant 1). */
static void shared_view(struct rp_call *c, rp_fanout_cb cb, int fresh)
{
	struct rp_api *api = c->api;
	if (!api->fleet && !(api->fleet = calloc(1, sizeof *api->fleet))) {
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return;
	}
	struct rp_fleet_share *sh = api->fleet;
	if (!fresh && sh->by_node && uv_now(api->loop) - sh->at < SHARE_MS) {
		cb(c, sh->by_node, sh->unreachable);
		return;
	}
	if (rp_fanout_join(c, SHARE_KEY, cb) == 0)
		start_fanout(c, cb, 1);
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
		rp_respond_json(c, 200,
				json_pack("{s:o}", "proxies", rp_subscribe_local_fleet(c->api)), 0);
		return;
	}
	start_fanout(c, answer_proxies, 0);
}

void rp_fleet_view(struct rp_call *c,
		   void (*cb)(struct rp_call *c, json_t *by_node, json_t *unreachable))
{
	shared_view(c, cb, 1);
}

static void rollout_poll(struct rp_call *c)
{
	shared_view(c, answer_rollout, 0);
}

void rp_route_rollout(struct rp_call *c, const char *rev, size_t len)
{
	char wait[32];
	uint64_t wait_ms = 0;
	struct rollout_call *ro = rp_call_alloc(c, sizeof *ro, NULL);
	c->ctx = ro;
	if (strncmp(c->req->method.base, "GET", c->req->method.len) != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use GET", -1);
		return;
	}
	if (rp_parse_u64(rev, len, &ro->revision) != 0 || ro->revision > INT64_MAX) {
		rp_respond_error(c, RP_ERR_INVALID, "revision must be a positive integer", -1);
		return;
	}
	int has = rp_query_param(c->req, "wait", wait, sizeof wait);
	if (ro->revision == 0 ||
	    (has != 0 && (has < 0 || rp_parse_wait(wait, MAX_ROLLOUT_WAIT_MS, &wait_ms) != 0))) {
		rp_respond_error(c, RP_ERR_INVALID,
				 ro->revision ? "wait must be like 10s or 500ms, at most 10m"
					      : "revision must be a positive integer",
				 -1);
		return;
	}
	char win[32];
	int hw = rp_query_param(c->req, "window", win, sizeof win);
	ro->window = 60000;
	if (hw != 0 &&
	    (hw < 0 || rp_parse_wait(win, 15 * 60 * 1000, &ro->window) != 0 || ro->window < 1000)) {
		rp_respond_error(c, RP_ERR_INVALID,
				 "window must be like 30s, 1m or 15m: at least 1s, at most 15m",
				 -1);
		return;
	}
	ro->deadline = uv_now(c->api->loop) + wait_ms;
	if (wait_ms > 0)
		rp_call_watch_close(c);
	/* the first look does not take the cached view (it may join a fan-out
	 * in flight, at most PEER_TIMEOUT_MS old); re-checks share it */
	shared_view(c, answer_rollout, 1);
}
