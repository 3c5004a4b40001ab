/* Getting a request to the ready leader.
 *
 * A request that needs the leader (every write, every linearizable read,
 * membership changes) runs c->local on this node when it is the ready
 * leader; otherwise it is forwarded over HTTP to the leader it knows, or
 * waits (re-checking on every leader change and every RETRY_MS) until
 * c->deadline, then gets 503 no_leader.
 *
 * A forwarded request is never forwarded again (no loops): a node that gets
 * one and is not the leader answers no_leader, and the origin retries, which
 * is safe because nothing was proposed. A write whose forward fails after it
 * was sent may have been applied: it gets 503 outcome_unknown, never a
 * definite failure. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "raftplane/err.h"

#define RETRY_MS 50

static void on_wait_timer(struct rp_call *c)
{
	rp_node_unwait_leader(c->api->node, &c->lw);
	rp_leader_dispatch(c);
}

static void on_leader_changed(struct rp_leader_waiter *w)
{
	struct rp_call *c = (struct rp_call *)((char *)w - offsetof(struct rp_call, lw));
	rp_call_stop_timer(c);
	rp_leader_dispatch(c);
}

static void wait_for_leader(struct rp_call *c, unsigned ms)
{
	uint64_t now = uv_now(c->api->loop);
	if (now >= c->deadline) {
		rp_respond_error(c, RP_ERR_NO_LEADER, "no leader elected in time", -1);
		return;
	}
	uint64_t left = c->deadline - now;
	c->lw.cb = on_leader_changed;
	rp_node_unwait_leader(c->api->node, &c->lw);
	rp_node_wait_leader(c->api->node, &c->lw);
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

static void on_forwarded(void *arg, int http_err, const struct rp_http_response *res)
{
	struct rp_call *c = arg;
	int err = forward_err(http_err);
	c->fwd = NULL;
	if (!c->req || c->responded) {
		rp_call_unref(c);
		return;
	}
	if (!err && (res->status < 200 || res->status > 599)) /* not a final HTTP status */
		err = RP_ERR_UNKNOWN_OUTCOME;                   /* never relay it */
	if (err == RP_ERR_NO_LEADER || (err && !c->is_write)) {
		wait_for_leader(c, RETRY_MS); /* nothing applied, or a read: retry */
	} else if (err) {
		rp_respond_error(c, RP_ERR_UNKNOWN_OUTCOME,
				 "lost the connection to the leader after forwarding", -1);
	} else if (res->status == 503 && memmem(res->body, res->body_len, "\"no_leader\"", 11)) {
		wait_for_leader(c, RETRY_MS);
	} else {
		c->api->forwarded++;
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
	    append_header(headers, sizeof headers, req, H2O_TOKEN_IF_NONE_MATCH) != 0) {
		rp_respond_error(c, RP_ERR_INVALID, "Content-Type, If-Match and If-None-Match "
				 "together must stay under 900 bytes", -1);
		return;
	}
	rp_call_ref(c);
	int rv = rp_http_request(c->api->loop, http, method, target, headers, req->entity.base,
				 req->entity.base ? req->entity.len : 0, c->api->opts.forward_timeout_ms,
				 on_forwarded, c, &c->fwd);
	if (rv != 0) {
		rp_call_unref(c);
		wait_for_leader(c, RETRY_MS);
	}
}

void rp_leader_dispatch(struct rp_call *c)
{
	struct rp_node *node = c->api->node;
	char http[64];
	if (!c->req || c->responded)
		return;
	if (!c->deadline)
		c->deadline = uv_now(c->api->loop) + c->api->opts.leader_wait_ms;
	if (rp_node_leader_ready(node)) {
		c->local(c);
		return;
	}
	uint64_t leader = rp_node_leader(node, http, sizeof http);
	uint64_t self = rp_node_config(node)->id;
	if (leader && leader != self && c->forwarded) {
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
	if (c->req && !c->responded) {
		if (status == RP_OK)
			c->reader(c);
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

void rp_leader_read(struct rp_call *c)
{
	if (c->api->opts.unsafe_reads) {
		c->reader(c); /* test-only fault: no proof of leadership */
		return;
	}
	c->local = barrier_then_read;
	rp_leader_dispatch(c);
}

void rp_leader_retry(struct rp_call *c)
{
	wait_for_leader(c, RETRY_MS);
}

void rp_leader_cancel(struct rp_call *c)
{
	rp_node_unwait_leader(c->api->node, &c->lw);
	if (c->fwd) {
		rp_http_cancel(c->fwd);
		c->fwd = NULL;
		rp_call_unref(c);
	}
}
