/* Forwarding one request: route, pick, connect through the worker's pool,
 * relay the response as it streams, retry, time out.
 *
 * States of a forwarded request (struct fwd):
 *
 *   routed --start_attempt--> connecting --on_connect--> waiting head
 *      ^                          |                            |
 *      |  retry (budget, kind,    | connect error/timeout      | head
 *      +--attempts, deadline)-----+------ reset, 5xx ----------+
 *                                                              v
 *                        responding: streaming body (h2o generator) --> final
 *
 * Invariants:
 *  1. At most one upstream attempt (fwd->x) exists at a time; in_attempt
 *     says its per-endpoint counters are held, end_attempt() releases them
 *     exactly once.
 *  2. Nothing is retried once the response has started (responding): the
 *     client may have seen bytes. A 5xx answer is retried only before that.
 *  3. The fwd lives in the request's memory pool; h2o calls on_dispose when
 *     it frees the request (done or client gone), which cancels whatever is
 *     pending and drops the generation reference. No callback of ours runs
 *     after that, because every one of them is cancelled there.
 *  4. Only the route timer may end a request that is still waiting for an
 *     upstream: 504 before the response started, an aborted stream after.
 *  5. Retries of a cluster in flight stay under the retry budget:
 *     3 + 20% of the cluster's active requests, so that retries cannot
 *     multiply the load on a failing cluster.
 *  6. Nothing reaches the upstream that was not checked: the request head
 *     (net/httpcheck.c: framing, Host), the target (normalised, only legal
 *     bytes), no Via of ours (a loop), and no framing or hop-by-hop header
 *     of either side is relayed; the upstream's framing is decided in
 *     upconn.c and only its decoded length reaches the client.
 *  7. A request still here after WATCH_AFTER_MS gets a close watch; when
 *     the client is gone the upstream exchange is cancelled at once, and
 *     on_dispose destroys the watch. Faster requests never pay for one. */
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "balancer.h"
#include "closewatch.h"
#include "httpcheck.h"
#include "upconn.h"
#include "upstream.h"
#include "health.h"
#include "router.h"
#include "stats.h"
#include "worker.h"

#define SEND_CHUNK (1024 * 1024)  /* at most this much per h2o_send */
#define PAUSE_BYTES (1024 * 1024) /* stop reading upstream beyond this backlog */
#define WATCH_AFTER_MS 1000       /* arm a close watch for requests still here after this */
#define MAX_VIA_HOPS 16           /* more proxies than this in Via: 508 */
#define RETRY_BUDGET_MIN 3
#define RETRY_BUDGET_PERCENT 20

enum fail_kind {
	FAIL_CONNECT,
	FAIL_RESET,
	FAIL_5XX,
	FAIL_INVALID
};

struct fwd {
	h2o_generator_t super; /* first: h2o hands it back to proceed/stop */
	h2o_req_t *req;
	struct rp_worker *w;
	struct rp_generation *gen;
	const struct rp_route *route;
	struct rp_cluster *cluster;
	struct rp_http_target target;
	h2o_iovec_t host; /* the host sent upstream */
	h2o_iovec_t reqbufs[2];
	size_t n_reqbufs;
	int is_head, idempotent;
	/* the current attempt */
	struct rp_uc_exchange x;
	struct rp_pool *pool;
	int ep; /* endpoint index, -1 before the first pick */
	int in_attempt;
	int upstream_done; /* the whole response was received */
	int stale_retried; /* retried once after a reset on a pooled connection */
	unsigned attempts;
	int retrying; /* counted in the cluster's retry_active */
	uint64_t attempt_start_ns;
	h2o_timeout_entry_t connect_timer;
	h2o_timeout_entry_t route_timer;
	h2o_timeout_entry_t watch_timer;
	struct rp_closewatch *watch; /* armed by watch_timer: the client may leave */
	/* the response */
	int responding;
	int broken; /* upstream failed or timed out mid-body: end with an error */
	int sending;
	int final_sent;
	int have_buffers;
	h2o_doublebuffer_t db;
};

static void start_attempt(struct fwd *f);
static void do_send(struct fwd *f);

/* ---- helpers ------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 499: return "Client Closed Request";
	case 508: return "Loop Detected";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

static struct rp_stats *cstats(struct fwd *f)
{
	return f->cluster->stats;
}

/* Answer with an error of our own (nothing was sent to the client yet). */
static void respond_error(struct fwd *f, int status, const char *body)
{
	if (f->responding)
		return;
	f->responding = 1;
	h2o_timeout_unlink(&f->route_timer);
	rp_stats_status(f->route->stats, status);
	rp_inc(&cstats(f)->status[status / 100]);
	h2o_send_error_generic(f->req, status, reason(status), body, 0);
}

static int method_is(h2o_req_t *req, const char *m)
{
	size_t n = strlen(m);
	return req->method.len == n && memcmp(req->method.base, m, n) == 0;
}

/* ---- the upstream request ------------------------------------------------ */

static size_t peer_addr(h2o_req_t *req, char *out)
{
	struct sockaddr_storage ss;
	socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
	if (len == 0)
		return SIZE_MAX;
	return h2o_socket_getnumerichost((struct sockaddr *)&ss, len, out);
}

#define APPEND(p, s, l) (memcpy((p), (s), (l)), (p) += (l))

static int name_eq(const h2o_iovec_t *n, const char *s, size_t len)
{
	return n->len == len && h2o_lcstris(n->base, n->len, s, len);
}

/* Hop-by-hop headers (RFC 9110 7.6.1) and those we emit ourselves. */
static int drop_for_upstream(const h2o_header_t *h, h2o_iovec_t connection)
{
	if (h2o_iovec_is_token(h->name)) {
		const h2o_token_t *t = (const h2o_token_t *)h->name;
		if (t->proxy_should_drop_for_req || t == H2O_TOKEN_CONTENT_LENGTH ||
		    t == H2O_TOKEN_HOST || t == H2O_TOKEN_EXPECT ||
		    t == H2O_TOKEN_X_FORWARDED_FOR || t == H2O_TOKEN_VIA)
			return 1;
	} else if (name_eq(h->name, H2O_STRLIT("proxy-connection")) ||
		   name_eq(h->name, H2O_STRLIT("trailer"))) {
		return 1;
	}
	return connection.len &&
	       rp_http_has_token(connection.base, connection.len, h->name->base, h->name->len);
}

/* An HTTP/2 header h2o did not check for us: a name that is not a token or
 * a value with CR, LF or NUL cannot be written on HTTP/1.1. */
static int unsafe_header(const h2o_header_t *h)
{
	if (!rp_http_is_token(h->name->base, h->name->len))
		return 1;
	for (size_t i = 0; i < h->value.len; i++) {
		char c = h->value.base[i];
		if (c == '\r' || c == '\n' || c == '\0')
			return 1;
	}
	return 0;
}

/* The combined value of every @token header of @req (into @pool). */
static h2o_iovec_t combined(h2o_req_t *req, const h2o_token_t *token)
{
	ssize_t at = h2o_find_header(&req->headers, token, -1);
	if (at < 0)
		return h2o_iovec_init(NULL, 0);
	h2o_iovec_t v = req->headers.entries[at].value;
	while ((at = h2o_find_header(&req->headers, token, at)) >= 0)
		v = h2o_concat(&req->pool, v, h2o_iovec_init(H2O_STRLIT(", ")),
			       req->headers.entries[at].value);
	return v;
}

/* The request line and headers for the upstream, in the request's pool.
 * NULL, or why the request cannot be forwarded (a 400). */
static const char *build_request(struct fwd *f)
{
	h2o_req_t *req = f->req;
	struct rp_proxy *px = f->w->proxy;
	h2o_iovec_t target = rp_route_target(f->route, req, f->target.path, f->target.query);
	h2o_iovec_t connection = combined(req, H2O_TOKEN_CONNECTION);
	h2o_iovec_t xff = combined(req, H2O_TOKEN_X_FORWARDED_FOR);
	h2o_iovec_t via = combined(req, H2O_TOKEN_VIA);
	char peer[NI_MAXHOST];
	size_t peer_len = peer_addr(req, peer);
	size_t cap = req->method.len + target.len + f->host.len + xff.len + via.len +
		     px->via_id_len + 256 + (peer_len == SIZE_MAX ? 0 : peer_len);
	for (size_t i = 0; i < req->headers.size; i++)
		cap += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
	char *buf = h2o_mem_alloc_pool(&req->pool, cap), *p = buf;
	APPEND(p, req->method.base, req->method.len);
	*p++ = ' ';
	APPEND(p, target.base, target.len);
	APPEND(p, " HTTP/1.1\r\nhost: ", 17);
	APPEND(p, f->host.base, f->host.len);
	APPEND(p, "\r\n", 2);
	for (size_t i = 0; i < req->headers.size; i++) {
		const h2o_header_t *h = &req->headers.entries[i];
		if (drop_for_upstream(h, connection))
			continue;
		if (req->version >= 0x200 && unsafe_header(h))
			return "header not allowed in HTTP/1.1";
		APPEND(p, h->name->base, h->name->len);
		APPEND(p, ": ", 2);
		APPEND(p, h->value.base, h->value.len);
		APPEND(p, "\r\n", 2);
	}
	if (peer_len != SIZE_MAX) {
		APPEND(p, "x-forwarded-for: ", 17);
		if (xff.len) {
			APPEND(p, xff.base, xff.len);
			APPEND(p, ", ", 2);
		}
		APPEND(p, peer, peer_len);
		APPEND(p, "\r\n", 2);
	}
	APPEND(p, "via: ", 5);
	if (via.len) {
		APPEND(p, via.base, via.len);
		APPEND(p, ", ", 2);
	}
	p += sprintf(p, "%s %s\r\n",
		     req->version >= 0x200   ? "2"
		     : req->version == 0x100 ? "1.0"
					     : "1.1",
		     px->via_id);
	if (req->entity.base)
		p += sprintf(p, "content-length: %zu\r\n", req->entity.len);
	APPEND(p, "\r\n", 2);
	f->reqbufs[0] = h2o_iovec_init(buf, (size_t)(p - buf));
	f->n_reqbufs = 1;
	if (req->entity.base && req->entity.len)
		f->reqbufs[f->n_reqbufs++] = req->entity;
	f->is_head = method_is(req, "HEAD");
	f->idempotent = f->is_head || method_is(req, "GET") || method_is(req, "PUT") ||
			method_is(req, "DELETE") || method_is(req, "OPTIONS");
	return NULL;
}

/* ---- attempts ------------------------------------------------------------ */

/* Release what the current attempt holds; the client is gone or closing. */
static void end_attempt(struct fwd *f)
{
	h2o_timeout_unlink(&f->connect_timer);
	if (!f->in_attempt)
		return;
	f->in_attempt = 0;
	atomic_fetch_sub(&f->cluster->health[f->ep]->active_rq, 1);
	rp_dec(&cstats(f)->cx_active);
}

static int may_retry(struct fwd *f, enum fail_kind kind)
{
	const struct rp_route *r = f->route;
	if (f->responding || !h2o_timeout_is_linked(&f->route_timer) || f->attempts > r->retries)
		return 0;
	if (kind == FAIL_CONNECT ? !(r->retry_connect_failure || r->retry_5xx) : !r->retry_5xx)
		return 0;
	if (!f->retrying) {
		uint64_t active = rp_get(&cstats(f)->rq_active);
		uint64_t budget = RETRY_BUDGET_MIN + active * RETRY_BUDGET_PERCENT / 100;
		if (rp_get(&cstats(f)->retry_active) >= budget) {
			rp_inc(&cstats(f)->retry_overflow);
			rp_inc(&r->stats->retry_overflow);
			return 0;
		}
		f->retrying = 1;
		rp_inc(&cstats(f)->retry_active);
	}
	return 1;
}

static void attempt_failed(struct fwd *f, enum fail_kind kind)
{
	struct rp_cluster *c = f->cluster;
	end_attempt(f);
	if (kind == FAIL_RESET && f->x.reused && f->idempotent && !f->stale_retried &&
	    !f->responding) {
		/* the classic keep-alive race: the upstream closed a pooled
		 * connection as we reused it. Not the endpoint's fault. */
		f->stale_retried = 1;
		f->attempts--;
		start_attempt(f);
		return;
	}
	if (kind == FAIL_CONNECT) {
		rp_inc(&c->stats->connect_fail);
		rp_inc(&f->route->stats->connect_fail);
	} else {
		rp_inc(&c->stats->resets);
		rp_inc(&f->route->stats->resets);
	}
	rp_health_passive(c->health, c->n_eps, (size_t)f->ep, 1, c->stats);
	if (may_retry(f, kind)) {
		start_attempt(f);
		return;
	}
	if (kind == FAIL_CONNECT)
		respond_error(f, 503, "upstream connect error\n");
	else if (kind == FAIL_INVALID)
		respond_error(f, 502, "invalid upstream response\n");
	else
		respond_error(f, 502, "upstream reset\n");
}

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
	struct fwd *f = H2O_STRUCT_FROM_MEMBER(struct fwd, connect_timer, entry);
	rp_uc_cancel(&f->x);
	attempt_failed(f, FAIL_CONNECT);
}

/* Hop-by-hop response headers (RFC 9110 7.6.1), framing (ours to make) and
 * those h2o sets itself. */
static int drop_for_client(const h2o_token_t *t, const char *name, size_t len,
			   h2o_iovec_t connection)
{
	if (t)
		return t->proxy_should_drop_for_res || t == H2O_TOKEN_SERVER ||
		       t == H2O_TOKEN_CONTENT_LENGTH || t == H2O_TOKEN_TRANSFER_ENCODING ||
		       (connection.len &&
			rp_http_has_token(connection.base, connection.len, name, len));
	if ((len == 16 && memcmp(name, "proxy-connection", 16) == 0) ||
	    (len == 7 && memcmp(name, "trailer", 7) == 0))
		return 1;
	return connection.len && rp_http_has_token(connection.base, connection.len, name, len);
}

static h2o_iovec_t connection_of(const struct rp_header_view *headers, size_t n,
				 h2o_mem_pool_t *pool)
{
	h2o_iovec_t v = {NULL, 0};
	for (size_t i = 0; i < n; i++) {
		const struct rp_header_view *h = &headers[i];
		if (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0)
			v = v.len ? h2o_concat(pool, v, h2o_iovec_init(H2O_STRLIT(",")),
					       h2o_iovec_init(h->value, h->value_len))
				  : h2o_iovec_init(h->value, h->value_len);
	}
	return v;
}

/* Copy the upstream's status and headers into the response and start it.
 * The body length is the one the upstream connection framed (upconn.c);
 * no framing header of the upstream's is relayed. */
static void start_response(struct fwd *f, int status, h2o_iovec_t msg,
			   const struct rp_header_view *headers, size_t n)
{
	h2o_req_t *req = f->req;
	h2o_iovec_t connection = connection_of(headers, n, &req->pool);
	req->res.status = status;
	req->res.reason = h2o_strdup(&req->pool, msg.base, msg.len).base;
	if (!f->is_head)
		req->res.content_length = f->x.content_length;
	for (size_t i = 0; i < n; i++) {
		const struct rp_header_view *h = &headers[i];
		char *name = h2o_mem_alloc_pool(&req->pool, h->name_len + 1);
		for (size_t k = 0; k < h->name_len; k++)
			name[k] = (char)h2o_tolower(h->name[k]);
		name[h->name_len] = '\0';
		const h2o_token_t *t = h2o_lookup_token(name, h->name_len);
		if (drop_for_client(t, name, h->name_len, connection))
			continue;
		h2o_iovec_t v = h2o_strdup(&req->pool, h->value, h->value_len);
		if (t)
			h2o_add_header(&req->pool, &req->res.headers, t, NULL, v.base, v.len);
		else
			h2o_add_header_by_str(&req->pool, &req->res.headers, name, h->name_len, 0,
					      NULL, v.base, v.len);
	}
	f->responding = 1;
	rp_stats_status(f->route->stats, status);
	rp_inc(&cstats(f)->status[status / 100]);
	h2o_doublebuffer_init(&f->db, &h2o_socket_buffer_prototype);
	f->have_buffers = 1;
	h2o_start_response(req, &f->super);
}

/* The upstream answered completely: record it. */
static void upstream_done(struct fwd *f)
{
	uint64_t us = (uv_hrtime() - f->attempt_start_ns) / 1000;
	rp_stats_latency(f->route->stats, us);
	rp_stats_latency(cstats(f), us);
	end_attempt(f);
	f->upstream_done = 1;
	h2o_timeout_unlink(&f->route_timer); /* what is left is sending to the client */
}

static int on_up_head(struct rp_uc_exchange *x, int status, h2o_iovec_t msg,
		      const struct rp_header_view *headers, size_t n)
{
	struct fwd *f = x->data;
	struct rp_cluster *c = f->cluster;
	int failed = status >= 500;
	rp_health_passive(c->health, c->n_eps, (size_t)f->ep, failed, c->stats);
	if (failed && may_retry(f, FAIL_5XX)) {
		end_attempt(f);
		start_attempt(f);
		return -1;
	}
	start_response(f, status, msg, headers, n);
	return 0;
}

static void on_up_body(struct rp_uc_exchange *x, int eos)
{
	struct fwd *f = x->data;
	if (eos)
		upstream_done(f);
	if (!f->sending)
		do_send(f);
	else if (!eos && f->x.body->size >= PAUSE_BYTES)
		rp_uc_pause(&f->x);
}

static void on_up_error(struct rp_uc_exchange *x, enum rp_uc_error kind, const char *why)
{
	struct fwd *f = x->data;
	(void)why;
	if (!f->responding) {
		attempt_failed(f, kind == RP_UC_CONNECT   ? FAIL_CONNECT
				  : kind == RP_UC_INVALID ? FAIL_INVALID
							  : FAIL_RESET);
	} else { /* broken after the response started: abort the client's response */
		struct rp_cluster *c = f->cluster;
		rp_inc(&c->stats->resets);
		rp_inc(&f->route->stats->resets);
		rp_health_passive(c->health, c->n_eps, (size_t)f->ep, 1, c->stats);
		end_attempt(f);
		f->broken = 1;
		if (!f->sending)
			do_send(f);
	}
}

static void on_up_connected(struct rp_uc_exchange *x)
{
	struct fwd *f = x->data;
	h2o_timeout_unlink(&f->connect_timer);
	if (!x->reused)
		rp_inc(&cstats(f)->cx_total);
}

static const struct rp_uc_callbacks up_callbacks = {
	.on_connected = on_up_connected,
	.on_head = on_up_head,
	.on_body = on_up_body,
	.on_error = on_up_error,
};

static void start_attempt(struct fwd *f)
{
	struct rp_worker *w = f->w;
	struct rp_cluster *c = f->cluster;
	int ep = rp_balancer_pick(c, f->req, &w->rng, f->ep);
	if (ep < 0) {
		rp_inc(&c->stats->no_healthy);
		rp_inc(&f->route->stats->no_healthy);
		respond_error(f, 503, "no healthy upstream\n");
		return;
	}
	struct rp_pool *pool = rp_worker_pool(w, &c->eps[ep]);
	if (!pool) {
		respond_error(f, 503, "out of memory\n");
		return;
	}
	f->ep = ep;
	f->pool = pool;
	f->in_attempt = 1;
	atomic_fetch_add(&c->health[ep]->active_rq, 1);
	rp_inc(&c->stats->cx_active);
	rp_inc(&c->stats->upstream_rq);
	rp_inc(&f->route->stats->upstream_rq);
	if (f->attempts++ > 0) {
		rp_inc(&c->stats->retries);
		rp_inc(&f->route->stats->retries);
	}
	f->attempt_start_ns = uv_hrtime();
	f->connect_timer.cb = on_connect_timeout;
	h2o_timeout_link(&w->loop, rp_worker_timeout(w, c->connect_timeout_ms), &f->connect_timer);
	f->x.bufs = f->reqbufs;
	f->x.nbufs = f->n_reqbufs;
	f->x.is_head = f->is_head;
	rp_uc_start(&f->x, pool);
}

/* ---- streaming the response ---------------------------------------------- */

static void do_send(struct fwd *f)
{
	if (f->final_sent || f->sending)
		return;
	if (f->broken) {
		f->final_sent = 1;
		h2o_send(f->req, NULL, 0, H2O_SEND_STATE_ERROR);
		return;
	}
	h2o_iovec_t vec = h2o_doublebuffer_prepare(&f->db, &f->x.body, SEND_CHUNK);
	int final = f->upstream_done && f->db.buf->size == f->db.bytes_inflight &&
		    f->x.body->size == 0;
	if (vec.len == 0 && !final)
		return;
	if (final)
		f->final_sent = 1;
	else
		f->sending = 1;
	h2o_send(f->req, &vec, vec.len ? 1 : 0,
		 final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
	struct fwd *f = (struct fwd *)gen;
	(void)req;
	f->sending = 0;
	if (f->db.bytes_inflight)
		h2o_doublebuffer_consume(&f->db);
	rp_uc_resume(&f->x);
	do_send(f);
}

/* Cancel whatever is pending upstream (the request is going away). */
static void quiesce(struct fwd *f)
{
	rp_uc_cancel(&f->x);
	end_attempt(f);
	h2o_timeout_unlink(&f->route_timer);
	h2o_timeout_unlink(&f->watch_timer);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
	(void)req;
	quiesce((struct fwd *)gen);
}

static void on_route_timeout(h2o_timeout_entry_t *entry)
{
	struct fwd *f = H2O_STRUCT_FROM_MEMBER(struct fwd, route_timer, entry);
	struct rp_cluster *c = f->cluster;
	rp_inc(&c->stats->timeouts);
	rp_inc(&f->route->stats->timeouts);
	if (f->in_attempt)
		rp_health_passive(c->health, c->n_eps, (size_t)f->ep, 1, c->stats);
	rp_uc_cancel(&f->x);
	end_attempt(f);
	if (!f->responding) {
		respond_error(f, 504, "upstream timeout\n");
		return;
	}
	f->broken = 1;
	do_send(f);
}

static void on_dispose(void *p)
{
	struct fwd *f = p;
	quiesce(f);
	rp_closewatch_destroy(f->watch);
	if (f->have_buffers)
		h2o_doublebuffer_dispose(&f->db);
	rp_uc_close(&f->x);
	rp_dec(&f->route->stats->rq_active);
	rp_dec(&cstats(f)->rq_active);
	if (f->retrying)
		rp_dec(&cstats(f)->retry_active);
	f->w->active--;
	rp_gen_unref(f->gen);
}

/* ---- entry --------------------------------------------------------------- */

static int send_plain_error(h2o_req_t *req, int status, const char *body)
{
	rp_stats_status(NULL, status);
	h2o_send_error_generic(req, status, reason(status), body, 0);
	return 0;
}

/* A request we refuse to read further: 400 and close the connection (its
 * remaining input cannot be trusted to start a request). */
static int send_bad_request(h2o_req_t *req, const char *why)
{
	char *body = h2o_mem_alloc_pool(&req->pool, strlen(why) + 2);
	sprintf(body, "%s\n", why);
	req->http1_is_persistent = 0;
	rp_inc(&rp_gstats.bad_requests);
	rp_stats_status(NULL, 400);
	h2o_send_error_generic(req, 400, reason(400), body, H2O_SEND_ERROR_HTTP1_CLOSE_CONNECTION);
	return 0;
}

/* Loop detection (RFC 9110 7.6.3): a request whose Via already names this
 * process went around a loop; one through too many proxies is refused too. */
static int is_loop(h2o_req_t *req, const struct rp_proxy *px)
{
	size_t hops = 0;
	for (ssize_t at = -1; (at = h2o_find_header(&req->headers, H2O_TOKEN_VIA, at)) >= 0;) {
		h2o_iovec_t v = req->headers.entries[at].value;
		if (memmem(v.base, v.len, px->via_id, px->via_id_len))
			return 1;
		hops++;
		for (size_t i = 0; i < v.len; i++)
			hops += v.base[i] == ',';
	}
	return hops >= MAX_VIA_HOPS;
}

/* The client may leave while we wait for the upstream; h2o would not
 * notice. Watching costs a dup and two epoll_ctl, so only requests still
 * here after WATCH_AFTER_MS get a watch. */
static void on_client_gone(struct rp_closewatch *cw, void *data)
{
	struct fwd *f = data;
	(void)cw;
	rp_inc(&rp_gstats.client_gone);
	rp_uc_cancel(&f->x);
	end_attempt(f);
	h2o_timeout_unlink(&f->route_timer);
	if (!f->responding) {
		respond_error(f, 499, "client closed the connection\n");
		return;
	}
	f->broken = 1;
	if (!f->sending)
		do_send(f);
}

static void on_watch_timer(h2o_timeout_entry_t *entry)
{
	struct fwd *f = H2O_STRUCT_FROM_MEMBER(struct fwd, watch_timer, entry);
	if (!f->final_sent)
		f->watch = rp_closewatch_create(&f->w->loop, f->req, on_client_gone, f);
}

static h2o_iovec_t listener_host(h2o_req_t *req, struct rp_sockname *sn)
{
	char host[NI_MAXHOST];
	size_t len = h2o_socket_getnumerichost((struct sockaddr *)&sn->sa, sn->len, host);
	if (len == SIZE_MAX)
		return h2o_iovec_init(H2O_STRLIT("localhost"));
	int port = h2o_socket_getport((struct sockaddr *)&sn->sa);
	char *out = h2o_mem_alloc_pool(&req->pool, len + 16);
	int v6 = sn->sa.ss_family == AF_INET6;
	int n = sprintf(out, "%s%.*s%s:%d", v6 ? "[" : "", (int)len, host, v6 ? "]" : "", port);
	return h2o_iovec_init(out, (size_t)n);
}

/* Check the request and find what to forward. 0 with @t and @host set, or
 * -1 when an answer was sent. */
static int vet_request(h2o_req_t *req, struct rp_worker *w, struct rp_sockname *sn,
		       struct rp_http_target *t, h2o_iovec_t *host)
{
	struct rp_http_head head;
	const char *why = rp_http_check_request(req, &head);
	if (!why)
		why = rp_http_parse_target(&req->pool, req->input.path, t);
	if (why) {
		send_bad_request(req, why);
		return -1;
	}
	if (is_loop(req, w->proxy)) {
		rp_inc(&rp_gstats.loops);
		send_plain_error(req, 508, "request loop: this proxy is already in Via\n");
		return -1;
	}
	if (t->authority.base)
		*host = t->authority; /* RFC 9112 3.2.2: the target's authority wins */
	else if (head.no_host)
		*host = listener_host(req, sn);
	else
		*host = req->input.authority;
	return 0;
}

int rp_upstream_on_req(h2o_handler_t *self, h2o_req_t *req)
{
	(void)self;
	struct rp_worker *w = H2O_STRUCT_FROM_MEMBER(struct rp_worker, ctx, req->conn->ctx);
	struct rp_generation *g = w->gen;
	rp_inc(&rp_gstats.rq_total);
	if (!g)
		return send_plain_error(req, 503, "no configuration yet\n");
	struct rp_sockname *sn = &w->socknames[req->conn->id % RP_SOCKNAME_CACHE];
	if (sn->conn != req->conn || sn->conn_id != req->conn->id) {
		sn->len = req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&sn->sa);
		sn->conn = req->conn;
		sn->conn_id = req->conn->id;
	}
	const struct rp_listener *l = sn->len ? rp_gen_listener(g, (struct sockaddr *)&sn->sa)
					      : NULL;
	if (!l) {
		rp_inc(&rp_gstats.no_listener);
		return send_plain_error(req, 404, "no listener\n");
	}
	struct rp_http_target t;
	h2o_iovec_t host;
	if (vet_request(req, w, sn, &t, &host) != 0)
		return 0;
	const struct rp_route *r = rp_route_match(l, req, t.path, host);
	if (!r) {
		rp_inc(&rp_gstats.no_route);
		return send_plain_error(req, 404, "no route\n");
	}
	struct fwd *f = h2o_mem_alloc_shared(&req->pool, sizeof *f, on_dispose);
	memset(f, 0, sizeof *f);
	f->super.proceed = on_proceed;
	f->super.stop = on_stop;
	f->req = req;
	f->w = w;
	f->gen = g;
	rp_gen_ref(g);
	w->active++;
	f->route = r;
	f->ep = -1;
	f->target = t;
	f->host = host;
	rp_uc_init(&f->x, &up_callbacks, f);
	f->cluster = rp_route_cluster(r, &w->rng);
	rp_inc(&r->stats->rq_total);
	rp_inc(&r->stats->rq_active);
	rp_inc(&cstats(f)->rq_total);
	rp_inc(&cstats(f)->rq_active);
	const char *why = build_request(f);
	if (why) {
		respond_error(f, 400, "header not allowed in HTTP/1.1\n");
		return 0;
	}
	f->route_timer.cb = on_route_timeout;
	h2o_timeout_link(&w->loop, rp_worker_timeout(w, r->timeout_ms), &f->route_timer);
	f->watch_timer.cb = on_watch_timer;
	h2o_timeout_link(&w->loop, rp_worker_timeout(w, WATCH_AFTER_MS), &f->watch_timer);
	start_attempt(f);
	return 0;
}
