/* Getting a request to the ready leader.
 *
 * A request that needs the leader (every write, every linearizable read,
 * membership changes) runs its local work on this node when it is the
 * ready leader; otherwise it is forwarded over HTTP to the leader it knows,
 * or waits (re-checking on every leader change and every RETRY_MS) until
 * its deadline, then gets 503 no_leader.
 *
 * A forwarded request is never forwarded again (no loops): a node that gets
 * one and is not the leader answers no_leader, and the origin retries, which
 * is safe because nothing was proposed. A write whose forward fails after it
 * was sent may have been applied: it gets 503 outcome_unknown, never a
 * definite failure.
 *
 * Invariants (beside call.h's)
 * 1. The state (struct rp_leader_call) is in the request pool, made by the
 *    first entry (rp_leader_run, rp_leader_read, rp_propose_and_respond).
 * 2. While the call waits for a leader it is parked on `leader_wait` (its
 *    waiter registered with the node, the call's timer armed); while a
 *    forward is in flight it is parked on `leader_forward` and the forward
 *    holds a ref. Never both: each step leaves one before it takes the
 *    other. Answering or disposing the call unparks it, which unregisters
 *    the waiter or cancels the forward, so neither callback runs on an
 *    answered call or a gone request.
 * 3. A proposal, a read barrier and a membership change cannot be taken
 *    back: each holds a ref, and its callback checks rp_call_live() before
 *    it reads any state.
 * 4. A forward carries the client's Authorization header as it came (the
 *    leader authenticates the request again itself: a token revoked in
 *    between is refused there) and, in x-raftplane-client, the client's
 *    address as this node saw it; the leader records that address only
 *    when the forward comes from a member (call.h:
 *    rp_call_client_address).
 * 5. Every proposal carries its audit fields (actor, client address,
 *    wall-clock time), set here on the proposer, so that apply never reads
 *    a clock. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "leader.h"
#include "params.h"
#include "raftplane/err.h"

#define RETRY_MS 50

/* What a call needs of the leader (invariant 1). */
struct rp_leader_call {
	struct rp_call *c;
	int is_write;      /* a forward failure after sending is outcome_unknown */
	int forwarded;     /* arrived from another node: never forward again */
	uint64_t deadline; /* uv_now() ms by which a leader must be found */
	struct rp_leader_waiter lw;
	struct rp_http_req *fwd;
	/* what to do on the ready leader */
	void (*local)(struct rp_call *c);
	void (*reader)(struct rp_call *c); /* linearizable read, after a barrier */
	void (*on_ok)(struct rp_call *c, const struct rp_apply_result *res);
	const Raftplane__Command *pending_cmd; /* what local() proposes */
};

static void cancel_wait(struct rp_call *c);
static void cancel_forward(struct rp_call *c);
static const struct rp_park leader_wait = {"leader wait", cancel_wait};
static const struct rp_park leader_forward = {"forward", cancel_forward};

static struct rp_leader_call *lead_of(struct rp_call *c)
{
	if (!c->lead) {
		struct rp_leader_call *l = rp_call_alloc(c, sizeof *l, NULL);
		l->c = c;
		l->forwarded = h2o_find_header_by_str(&c->req->headers,
						      H2O_STRLIT("x-raftplane-forwarded"), -1) >= 0;
		l->lw.next = l->lw.prev = &l->lw;
		c->lead = l;
	}
	return c->lead;
}

static void dispatch(struct rp_call *c);

static void cancel_wait(struct rp_call *c)
{
	rp_node_unwait_leader(c->api->node, &c->lead->lw);
}

static void cancel_forward(struct rp_call *c)
{
	struct rp_leader_call *l = c->lead;
	assert(l->fwd);
	rp_http_cancel(l->fwd); /* its callback will not run: drop its ref */
	l->fwd = NULL;
	rp_call_unref(c);
}

static void on_wait_timer(struct rp_call *c)
{
	assert(c->park == &leader_wait); /* invariant 2 */
	rp_call_unpark(c);               /* unregisters the waiter */
	dispatch(c);
}

static void on_leader_changed(struct rp_leader_waiter *w)
{
	struct rp_leader_call *l = (struct rp_leader_call *)((char *)w -
							     offsetof(struct rp_leader_call, lw));
	struct rp_call *c = l->c;
	assert(rp_call_live(c) && c->park == &leader_wait); /* invariant 2 */
	rp_call_park_done(c, &leader_wait);                 /* the node detached the waiter */
	rp_call_stop_timer(c);
	dispatch(c);
}

static void wait_for_leader(struct rp_call *c, unsigned ms)
{
	struct rp_leader_call *l = c->lead;
	uint64_t now = uv_now(c->api->loop);
	if (now >= l->deadline) {
		rp_respond_error(c, RP_ERR_NO_LEADER, "no leader elected in time", -1);
		return;
	}
	if (rp_node_closing(c->api->node)) {
		rp_respond_error(c, RP_ERR_UNAVAILABLE, "this node is shutting down", -1);
		return;
	}
	uint64_t left = l->deadline - now;
	l->lw.cb = on_leader_changed;
	rp_call_park(c, &leader_wait);
	rp_node_unwait_leader(c->api->node, &l->lw);
	rp_node_wait_leader(c->api->node, &l->lw);
	rp_call_set_timer(c, left < ms ? left : ms, on_wait_timer);
}

/* The API's meaning of an HTTP client error (net/client.h) on a forward: a
 * request that cannot have reached the leader is "no leader" (nothing was
 * proposed), one that may have is of unknown outcome. */
static int forward_err(int http_err)
{
	if (http_err == RP_HTTP_OK)
		return RP_OK;
	if (http_err == RP_HTTP_ERR_NOMEM)
		return RP_ERR_NOMEM;
	return rp_http_err_sent(http_err) ? RP_ERR_UNKNOWN_OUTCOME : RP_ERR_NO_LEADER;
}

/* The leader's x-raftplane-* answer headers that a client reads (GET
 * /v1/backup: revision, cluster id, checksum), relayed as they came. */
static void relay_headers(struct rp_call *c, const struct rp_http_response *res)
{
	static const char *const names[] = {"x-raftplane-revision", "x-raftplane-cluster-id",
					    "x-raftplane-checksum"};
	char v[128];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!rp_http_header(res, names[i], v, sizeof v) || strpbrk(v, "\r\n"))
			continue;
		h2o_iovec_t dup = h2o_strdup(&c->req->pool, v, SIZE_MAX);
		h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, names[i],
				      strlen(names[i]), 0, NULL, dup.base, dup.len);
	}
}

static void on_forwarded(void *arg, int http_err, const struct rp_http_response *res)
{
	struct rp_call *c = arg;
	int err = forward_err(http_err);
	/* invariant 2: answering or disposing the call cancels the forward */
	assert(rp_call_live(c) && c->park == &leader_forward);
	c->lead->fwd = NULL;
	rp_call_park_done(c, &leader_forward);
	if (!err && (res->status < 200 || res->status > 599)) /* not a final HTTP status */
		err = RP_ERR_UNKNOWN_OUTCOME;                 /* never relay it */
	if (err == RP_ERR_NO_LEADER || (err && !c->lead->is_write)) {
		wait_for_leader(c, RETRY_MS); /* nothing applied, or a read: retry */
	} else if (err) {
		rp_respond_error(c, RP_ERR_UNKNOWN_OUTCOME,
				 "lost the connection to the leader after forwarding", -1);
	} else if (res->status == 503 && memmem(res->body, res->body_len, "\"no_leader\"", 11)) {
		wait_for_leader(c, RETRY_MS);
	} else {
		c->api->forwarded++;
		relay_headers(c, res);
		rp_respond_relay(c, res->status, res->content_type, res->etag, res->retry_after,
				 res->body, res->body_len);
	}
	rp_call_unref(c);
}

/* Append header @t to @buf; -1 when it does not fit (a precondition must
 * never be dropped: the leader would apply the write unconditionally). */
static int append_header(char *buf, size_t cap, h2o_req_t *req, const h2o_token_t *t)
{
	/* preconditions are lists: forward all their field lines as one */
	const char *v = t == H2O_TOKEN_CONTENT_TYPE ? rp_header(req, t) : rp_header_list(req, t);
	if (!v)
		return 0;
	if (strlen(buf) + strlen(v) + 64 >= cap || strpbrk(v, "\r\n"))
		return -1;
	snprintf(buf + strlen(buf), cap - strlen(buf), "%s: %s\r\n", t->buf.base, v);
	return 0;
}

/* Invariant 4: Authorization and the client's address. */
static int append_identity(char *buf, size_t cap, struct rp_call *c)
{
	char addr[RP_MAX_ADDRESS];
	if (append_header(buf, cap, c->req, H2O_TOKEN_AUTHORIZATION) != 0)
		return -1;
	rp_call_client_address(c, addr, sizeof addr);
	if (addr[0])
		snprintf(buf + strlen(buf), cap - strlen(buf), "x-raftplane-client: %s\r\n", addr);
	return 0;
}

static void forward(struct rp_call *c, const char *http)
{
	char headers[1024] = "x-raftplane-forwarded: 1\r\n";
	char method[16], target[8192];
	h2o_req_t *req = c->req;
	if (req->method.len >= sizeof method || req->path.len >= sizeof target) {
		rp_respond_error(c, RP_ERR_INVALID, "request line too long", -1);
		return;
	}
	memcpy(method, req->method.base, req->method.len);
	method[req->method.len] = '\0';
	if (strcmp(method, "HEAD") == 0) /* our client reads bodies; h2o drops it for HEAD */
		strcpy(method, "GET");
	memcpy(target, req->path.base, req->path.len);
	target[req->path.len] = '\0';
	if (append_header(headers, sizeof headers, req, H2O_TOKEN_CONTENT_TYPE) != 0 ||
	    append_header(headers, sizeof headers, req, H2O_TOKEN_IF_MATCH) != 0 ||
	    append_header(headers, sizeof headers, req, H2O_TOKEN_IF_NONE_MATCH) != 0 ||
	    append_identity(headers, sizeof headers, c) != 0) {
		rp_respond_error(c, RP_ERR_INVALID,
				 "Content-Type, If-Match, If-None-Match and Authorization "
				 "together must stay under 800 bytes",
				 -1);
		return;
	}
	rp_call_ref(c);
	rp_call_park(c, &leader_forward);
	int rv = rp_http_request(c->api->loop, http, method, target, headers, req->entity.base,
				 req->entity.base ? req->entity.len : 0,
				 c->api->opts.forward_timeout_ms, on_forwarded, c, &c->lead->fwd);
	if (rv != 0) {
		rp_call_park_done(c, &leader_forward);
		rp_call_unref(c);
		wait_for_leader(c, RETRY_MS);
	}
}

static void dispatch(struct rp_call *c)
{
	struct rp_leader_call *l = c->lead;
	struct rp_node *node = c->api->node;
	char http[64];
	if (!rp_call_live(c))
		return;
	if (!l->deadline)
		l->deadline = uv_now(c->api->loop) + c->api->opts.leader_wait_ms;
	if (rp_node_leader_ready(node)) { /* never while closing: then wait_for_leader answers */
		l->local(c);
		return;
	}
	uint64_t leader = rp_node_leader(node, http, sizeof http);
	uint64_t self = rp_node_config(node)->id;
	if (leader && leader != self && l->forwarded) {
		rp_respond_error(c, RP_ERR_NO_LEADER, "this node is no longer the leader", -1);
		return;
	}
	if (leader && leader != self && http[0]) {
		forward(c, http);
		return;
	}
	wait_for_leader(c, 100);
}

static void on_read_ready(void *arg, int status)
{
	struct rp_call *c = arg;
	if (rp_call_live(c)) { /* invariant 3 */
		if (status == RP_OK)
			c->lead->reader(c);
		else
			wait_for_leader(c, RETRY_MS);
	}
	rp_call_unref(c);
}

static void barrier_then_read(struct rp_call *c)
{
	rp_call_ref(c);
	if (rp_node_read_barrier(c->api->node, on_read_ready, c) != RP_OK) {
		rp_call_unref(c);
		wait_for_leader(c, RETRY_MS);
	}
}

void rp_leader_run(struct rp_call *c, int is_write, void (*local)(struct rp_call *c))
{
	struct rp_leader_call *l = lead_of(c);
	l->is_write = is_write;
	l->local = local;
	dispatch(c);
}

void rp_leader_read(struct rp_call *c, void (*reader)(struct rp_call *c))
{
	if (c->api->opts.unsafe_reads) {
		reader(c); /* test-only fault: no proof of leadership */
		return;
	}
	lead_of(c)->reader = reader;
	rp_leader_run(c, 0, barrier_then_read);
}

void rp_leader_retry(struct rp_call *c)
{
	wait_for_leader(c, RETRY_MS);
}

/* ---- proposals ---------------------------------------------------------- */

static void on_proposed(void *arg, int status, const struct rp_apply_result *res)
{
	struct rp_call *c = arg;
	if (rp_call_live(c)) { /* invariant 3: else answered, or the client went */
		if (status != RP_OK)
			rp_respond_error(c, status, NULL, -1);
		else if (res->status != RP_OK)
			rp_respond_error(c, res->status, res->message, res->op_index);
		else
			c->lead->on_ok(c, res);
	}
	rp_call_unref(c);
}

static void propose_local(struct rp_call *c)
{
	Raftplane__Command cmd = *c->lead->pending_cmd; /* packed by the propose */
	struct rp_audit audit;
	rp_call_audit(c, &audit); /* invariant 5 */
	cmd.actor = audit.actor;
	cmd.address = audit.address;
	cmd.time_ms = audit.time_ms;
	rp_call_ref(c);
	int rv = rp_node_propose(c->api->node, &cmd, on_proposed, c);
	if (rv == RP_ERR_NO_LEADER) {
		rp_call_unref(c);
		rp_leader_retry(c); /* transfer under way or leadership lost: wait */
	} else if (rv != RP_OK) {
		rp_call_unref(c);
		rp_respond_error(c, rv, NULL, -1);
	}
}

void rp_propose_and_respond(struct rp_call *c, const Raftplane__Command *cmd,
			    void (*ok)(struct rp_call *c, const struct rp_apply_result *res))
{
	struct rp_leader_call *l = lead_of(c);
	l->pending_cmd = cmd;
	l->on_ok = ok;
	rp_leader_run(c, 1, propose_local);
}
