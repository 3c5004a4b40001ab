/* Asking every member at once: see fanout.h.
 *
 * Invariants
 * 1. A waiter holds a reference on its call while it is on a fan-out's
 *    list, and the call is parked on `fanout_wait` (call.h invariant 5);
 *    a call that answered meanwhile (client gone, deadline) leaves the
 *    park at once but stays on the list, unreferenced when the fan-out
 *    ends. Waiter callbacks run only for live calls; a callback may park
 *    its call again, on another fan-out (a rollout's telemetry).
 * 2. A keyed fan-out is on api->fanouts exactly while it is in flight; at
 *    most one per key, so the peer load of concurrent callers asking the
 *    same thing does not grow with their number.
 * 3. The fan-out owns its bodies and result; waiters borrow them during
 *    their callback only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fanout.h"
#include "params.h"
#include "raftplane/err.h"

#define PEER_TIMEOUT_MS 1000

struct rp_fanout {
	struct rp_api *api;
	struct rp_fanout *next; /* on api->fanouts while keyed and in flight */
	char *key;
	int pending;
	json_t *bodies, *unreachable;
	rp_fanout_reduce reduce;
	void *reduce_arg;
	void (*done)(struct rp_api *api, json_t *result, json_t *unreachable, void *arg);
	struct rp_call **waiters;
	rp_fanout_cb *cbs;
	size_t n_waiters, cap;
};

static void leave_fanout(struct rp_call *c)
{
	(void)c; /* the fan-out keeps its ref and lets go when it ends */
}

static const struct rp_park fanout_wait = {"fleet fan-out", leave_fanout};

static int add_waiter(struct rp_fanout *f, struct rp_call *c, rp_fanout_cb cb)
{
	if (f->n_waiters == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 4;
		struct rp_call **w = realloc(f->waiters, cap * sizeof *w);
		if (w)
			f->waiters = w;
		rp_fanout_cb *cbs = w ? realloc(f->cbs, cap * sizeof *cbs) : NULL;
		if (!cbs)
			return -1;
		f->cbs = cbs;
		f->cap = cap;
	}
	rp_call_ref(c);
	rp_call_park(c, &fanout_wait);
	f->waiters[f->n_waiters] = c;
	f->cbs[f->n_waiters++] = cb;
	return 0;
}

int rp_fanout_join(struct rp_call *c, const char *key, rp_fanout_cb cb)
{
	for (struct rp_fanout *f = c->api->fanouts; f; f = f->next)
		if (strcmp(f->key, key) == 0) {
			if (add_waiter(f, c, cb) == 0)
				return 1;
			rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
			return -1;
		}
	return 0;
}

static void fanout_done(struct rp_fanout *f)
{
	struct rp_api *api = f->api;
	if (f->key) { /* invariant 2: no new waiter from here on */
		struct rp_fanout **pp = &api->fanouts;
		while (*pp != f)
			pp = &(*pp)->next;
		*pp = f->next;
	}
	json_t *result = f->reduce(api, f->bodies, f->reduce_arg);
	if (!result)
		result = json_null();
	if (f->done)
		f->done(api, result, f->unreachable, f->reduce_arg);
	for (size_t i = 0; i < f->n_waiters; i++) {
		struct rp_call *c = f->waiters[i];
		if (rp_call_live(c)) { /* invariant 1: else it left the park */
			rp_call_park_done(c, &fanout_wait);
			f->cbs[i](c, result, f->unreachable); /* may join another fan-out */
		}
		rp_call_unref(c);
	}
	json_decref(result);
	free(f->waiters);
	free(f->cbs);
	free(f->key);
	json_decref(f->bodies);
	json_decref(f->unreachable);
	free(f);
}

struct peer_req {
	struct rp_fanout *f;
	char http[64];
};

static void on_peer(void *arg, int err, const struct rp_http_response *res)
{
	struct peer_req *p = arg;
	struct rp_fanout *f = p->f;
	json_t *body = !err && res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL)
						  : NULL;
	if (json_is_object(body))
		json_array_append(f->bodies, body);
	else
		json_array_append_new(f->unreachable, json_string(p->http));
	json_decref(body);
	free(p);
	if (--f->pending == 0)
		fanout_done(f);
}

void rp_fanout_start(struct rp_call *c, rp_fanout_cb cb, const struct rp_fanout_spec *spec)
{
	struct rp_api *api = c->api;
	struct rp_node_member *ms;
	unsigned n_ms;
	int rv = rp_node_members(api->node, &ms, &n_ms);
	if (rv != RP_OK) {
		json_decref(spec->local);
		rp_respond_error(c, rv, NULL, -1);
		return;
	}
	struct rp_fanout *f = calloc(1, sizeof *f);
	if (!f || (spec->key && !(f->key = strdup(spec->key))) || add_waiter(f, c, cb) != 0) {
		if (f)
			free(f->key);
		free(f);
		free(ms);
		json_decref(spec->local);
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return;
	}
	f->api = api;
	f->reduce = spec->reduce;
	f->reduce_arg = spec->reduce_arg;
	f->done = spec->done;
	f->bodies = json_array();
	f->unreachable = json_array();
	if (spec->local)
		json_array_append_new(f->bodies, spec->local);
	if (f->key) {
		f->next = api->fanouts;
		api->fanouts = f;
	}
	f->pending = 1; /* ourselves, released below */
	/* the peers authenticate the first waiter's token (every waiter passed
	 * the same role check here) */
	char auth[600] = "";
	const char *tok = rp_header(c->req, H2O_TOKEN_AUTHORIZATION);
	if (tok && strlen(tok) < sizeof auth - 32 && !strpbrk(tok, "\r\n"))
		snprintf(auth, sizeof auth, "authorization: %s\r\n", tok);
	if (spec->body)
		snprintf(auth + strlen(auth), sizeof auth - strlen(auth),
			 "content-type: application/json\r\n");
	size_t body_len = spec->body ? strlen(spec->body) : 0;
	for (unsigned i = 0; i < n_ms; i++) {
		if (ms[i].id == rp_node_config(api->node)->id)
			continue;
		struct peer_req *p = calloc(1, sizeof *p);
		if (!p)
			continue;
		p->f = f;
		snprintf(p->http, sizeof p->http, "%s", ms[i].http);
		f->pending++;
		if (!p->http[0] ||
		    rp_http_request(api->loop, p->http, spec->method, spec->path, auth, spec->body,
				    body_len, PEER_TIMEOUT_MS, on_peer, p, NULL) != 0)
			on_peer(p, RP_ERR_NO_LEADER, NULL);
	}
	free(ms);
	if (--f->pending == 0)
		fanout_done(f);
}
