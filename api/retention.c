/* The change history's retention follows the flags of the ready leader.
 *
 * How much history the store keeps is replicated state (SET_HISTORY,
 * storage/store.h), so that every member compacts at the same revision.
 * --history-revisions and --history-max-age give what an operator wants;
 * when they are given and differ from the replicated retention, the ready
 * leader proposes them (checked every TICK_MS).
 *
 * Invariants
 * 1. The gate (docs/upgrades.md rule 3): SET_HISTORY is a command type
 *    that older releases stop on, so it is proposed only after every other
 *    member of the configuration answered GET /healthz within 1 s listing
 *    FEATURE in "features". A member that does not answer, or runs an
 *    older release, holds the change back (logged once per reason) and it
 *    is tried again at a later tick.
 * 2. At most one round (the members' answers, then the proposal) is in
 *    flight; its requests are cancelled when the API closes.
 * 3. Members started with other flags make the retention follow whichever
 *    is leader; the log says so each time it changes. Without the flags a
 *    member never proposes: the replicated value stays. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "raftplane/err.h"
#include "raftplane/log.h"
#include "retention.h"

#define TICK_MS 2000
#define PEER_TIMEOUT_MS 1000
#define MAX_PEERS 64

struct peer_ask {
	struct rp_retention *r;
	struct rp_http_req *req;
	char http[64];
	uint64_t id;
};

struct rp_retention {
	struct rp_api *api;
	uv_timer_t timer;
	int busy;      /* a round in flight (invariant 2) */
	int proposing; /* of it, the proposal (its callback runs exactly once) */
	int closing;
	unsigned pending;
	int held; /* a member did not pass the gate this round */
	char held_why[200], logged_why[200];
	struct peer_ask asks[MAX_PEERS];
	unsigned n_asks;
};

static int wanted_differs(struct rp_api *api)
{
	struct rp_history_retention k;
	rp_store_retention(rp_node_store(api->node), &k);
	return k.revisions != api->opts.history_revisions ||
	       k.max_age_ms != api->opts.history_max_age_ms;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_proposed(void *arg, int status, const struct rp_apply_result *res)
{
	struct rp_retention *r = arg;
	r->busy = r->proposing = 0;
	if (r->closing) { /* rp_retention_close left r to us */
		uv_close((uv_handle_t *)&r->timer, on_timer_closed);
		return;
	}
	if (status != RP_OK || res->status != RP_OK)
		rp_log_warn("history retention: the proposal failed (%s)",
			    status != RP_OK ? rp_err_message(status) : res->message);
	else
		rp_log_info("history retention: now %" PRIu64 " revisions, max age %" PRIu64
			    " s (this member's flags)",
			    r->api->opts.history_revisions, r->api->opts.history_max_age_ms / 1000);
}

static void round_done(struct rp_retention *r)
{
	struct rp_api *api = r->api;
	r->n_asks = 0;
	if (r->held) {
		if (strcmp(r->held_why, r->logged_why) != 0) {
			rp_log_warn("history retention: not changed yet: %s", r->held_why);
			snprintf(r->logged_why, sizeof r->logged_why, "%s", r->held_why);
		}
		r->busy = 0;
		return;
	}
	r->logged_why[0] = '\0';
	if (!rp_node_leader_ready(api->node) || !wanted_differs(api)) {
		r->busy = 0;
		return;
	}
	Raftplane__Command cmd;
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__SET_HISTORY;
	cmd.history_revisions = api->opts.history_revisions;
	cmd.history_max_age_ms = api->opts.history_max_age_ms;
	cmd.time_ms = rp_wall_ms();
	if (rp_node_propose(api->node, &cmd, on_proposed, r) == RP_OK)
		r->proposing = 1;
	else
		r->busy = 0;
}

/* Does a /healthz body list FEATURE? */
static int has_feature(const struct rp_http_response *res)
{
	json_t *j = res && res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL)
					      : NULL;
	json_t *f = json_object_get(j, "features");
	int found = 0;
	size_t i;
	json_t *e;
	json_array_foreach(f, i, e)
		found |= json_is_string(e) && strcmp(json_string_value(e), RP_FEATURE_HISTORY) == 0;
	json_decref(j);
	return found;
}

static void on_peer(void *arg, int err, const struct rp_http_response *res)
{
	struct peer_ask *p = arg;
	struct rp_retention *r = p->r;
	p->req = NULL;
	if (r->closing)
		return;
	if (err != RP_HTTP_OK) {
		r->held = 1;
		snprintf(r->held_why, sizeof r->held_why,
			 "member %" PRIu64 " (%s) did not answer GET /healthz (%s)", p->id, p->http,
			 rp_http_strerror(err));
	} else if (!has_feature(res)) {
		r->held = 1;
		snprintf(r->held_why, sizeof r->held_why,
			 "member %" PRIu64 " (%s) runs a release without %s: upgrade it first",
			 p->id, p->http, RP_FEATURE_HISTORY);
	}
	if (--r->pending == 0)
		round_done(r);
}

static void start_round(struct rp_retention *r)
{
	struct rp_api *api = r->api;
	struct rp_node_member *ms;
	unsigned n;
	if (rp_node_members(api->node, &ms, &n) != RP_OK)
		return;
	r->busy = 1;
	r->held = 0;
	r->pending = 1; /* this round itself, released below */
	r->n_asks = 0;
	uint64_t self = rp_node_config(api->node)->id;
	for (unsigned i = 0; i < n; i++) {
		if (ms[i].id == self)
			continue;
		if (r->n_asks == MAX_PEERS || !ms[i].http[0]) {
			r->held = 1;
			snprintf(r->held_why, sizeof r->held_why,
				 "member %" PRIu64 " cannot be asked", ms[i].id);
			continue;
		}
		struct peer_ask *p = &r->asks[r->n_asks++];
		memset(p, 0, sizeof *p);
		p->r = r;
		p->id = ms[i].id;
		snprintf(p->http, sizeof p->http, "%s", ms[i].http);
		r->pending++;
		if (rp_http_request(api->loop, p->http, "GET", "/healthz", "", NULL, 0,
				    PEER_TIMEOUT_MS, on_peer, p, &p->req) != RP_HTTP_OK)
			on_peer(p, RP_HTTP_ERR_CONNECT, NULL);
	}
	free(ms);
	if (--r->pending == 0)
		round_done(r);
}

static void on_tick(uv_timer_t *t)
{
	struct rp_retention *r = t->data;
	struct rp_api *api = r->api;
	if (r->busy || !rp_node_leader_ready(api->node) || !wanted_differs(api))
		return;
	start_round(r);
}

int rp_retention_init(struct rp_api *api)
{
	if (!api->opts.history_given)
		return RP_OK;
	struct rp_retention *r = calloc(1, sizeof *r);
	if (!r)
		return RP_ERR_NOMEM;
	r->api = api;
	uv_timer_init(api->loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, on_tick, 200, TICK_MS);
	api->retention = r;
	return RP_OK;
}

void rp_retention_close(struct rp_api *api)
{
	struct rp_retention *r = api->retention;
	if (!r)
		return;
	r->closing = 1;
	for (unsigned i = 0; i < r->n_asks; i++)
		if (r->asks[i].req) {
			rp_http_cancel(r->asks[i].req);
			r->asks[i].req = NULL;
		}
	api->retention = NULL;
	uv_timer_stop(&r->timer);
	if (r->proposing)
		return; /* on_proposed closes and frees */
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}
