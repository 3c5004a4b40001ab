/* The call lifecycle and the answers of the REST API (invariants in
 * call.h): refs, the call's timer, parking, rp_respond_*, and every mapping
 * of an error to its HTTP status and JSON body, h2o's own included. */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accept.h"
#include "call.h"
#include "closewatch.h"
#include "utf8.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"

const char *const rp_route_names[RP_ROUTE__COUNT] = {
	[RP_ROUTE_KV] = "kv",           [RP_ROUTE_KV_LIST] = "kv_list",
	[RP_ROUTE_MESH] = "mesh",       [RP_ROUTE_MESH_LIST] = "mesh_list",
	[RP_ROUTE_TXN] = "txn",         [RP_ROUTE_WATCH] = "watch",
	[RP_ROUTE_STATUS] = "status",   [RP_ROUTE_MEMBERS] = "members",
	[RP_ROUTE_MEMBER] = "member",   [RP_ROUTE_LEADERSHIP] = "leadership",
	[RP_ROUTE_HEALTHZ] = "healthz", [RP_ROUTE_READYZ] = "readyz",
	[RP_ROUTE_METRICS] = "metrics", [RP_ROUTE_SUBSCRIBE] = "subscribe",
	[RP_ROUTE_PROXIES] = "proxies", [RP_ROUTE_ROLLOUTS] = "rollouts",
	[RP_ROUTE_TOKENS] = "tokens",   [RP_ROUTE_TOKEN] = "token",
	[RP_ROUTE_HISTORY] = "history", [RP_ROUTE_BACKUP] = "backup",
	[RP_ROUTE_REPORT] = "report",   [RP_ROUTE_TELEMETRY] = "telemetry",
	[RP_ROUTE_HEALTH] = "health",   [RP_ROUTE_ROLLBACK] = "rollback",
	[RP_ROUTE_UI] = "ui",           [RP_ROUTE_OTHER] = "other",
};

/* ---- call lifecycle ----------------------------------------------------- */

void rp_call_ref(struct rp_call *c)
{
	c->refs++;
}

void rp_call_unref(struct rp_call *c)
{
	assert(c->refs > 0);
	if (--c->refs > 0)
		return;
	/* invariant 5: the request went, and took the call off everything */
	assert(!c->req && !c->park && !c->cw && !c->cw_pending && !c->timer_on);
	free(c);
}

void *rp_call_alloc(struct rp_call *c, size_t size, void (*dispose)(void *))
{
	assert(c->req);
	void *p = dispose ? h2o_mem_alloc_shared(&c->req->pool, size, dispose)
			  : h2o_mem_alloc_pool(&c->req->pool, size);
	memset(p, 0, size);
	return p;
}

static void on_timer_closed(uv_handle_t *h)
{
	rp_call_unref(h->data);
}

static void on_call_timer(uv_timer_t *t)
{
	struct rp_call *c = t->data;
	assert(rp_call_live(c)); /* answering or disposing closes the timer */
	if (c->on_timer)
		c->on_timer(c);
}

void rp_call_set_timer(struct rp_call *c, uint64_t ms, void (*fn)(struct rp_call *c))
{
	assert(rp_call_live(c));
	if (!c->timer_on) {
		uv_timer_init(c->api->loop, &c->timer);
		c->timer.data = c;
		c->timer_on = 1;
		rp_call_ref(c);
	}
	c->on_timer = fn;
	uv_timer_start(&c->timer, on_call_timer, ms, 0);
}

void rp_call_stop_timer(struct rp_call *c)
{
	if (c->timer_on)
		uv_timer_stop(&c->timer);
}

/* ---- parking (invariant 5) ---------------------------------------------- */

void rp_call_park(struct rp_call *c, const struct rp_park *q)
{
	assert(rp_call_live(c));
	assert(!c->park); /* on one queue at a time */
	c->park = q;
}

void rp_call_unpark(struct rp_call *c)
{
	const struct rp_park *q = c->park;
	if (!q)
		return;
	c->park = NULL;
	q->cancel(c);
	assert(!c->park); /* a cancel never parks again */
}

void rp_call_park_done(struct rp_call *c, const struct rp_park *q)
{
	assert(c->park == q);
	(void)q;
	c->park = NULL;
}

void rp_call_watch_dequeue(struct rp_call *c)
{
	struct rp_api *api = c->api;
	if (!c->cw_pending)
		return;
	if (c->cw_prev)
		c->cw_prev->cw_next = c->cw_next;
	else
		api->cw_head = c->cw_next;
	if (c->cw_next)
		c->cw_next->cw_prev = c->cw_prev;
	else
		api->cw_tail = c->cw_prev;
	c->cw_next = c->cw_prev = NULL;
	c->cw_pending = 0;
}

/* Stop everything the call waits for; it can then only be freed. */
static void call_quiesce(struct rp_call *c)
{
	rp_call_watch_dequeue(c); /* a close watch not started yet (park.c) */
	rp_closewatch_destroy(c->cw);
	c->cw = NULL;
	rp_call_unpark(c);
	if (c->timer_on) {
		c->timer_on = 0;
		uv_timer_stop(&c->timer);
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	}
}

/* h2o disposes the request pool once the response is done or the client is
 * gone; the slot lets us notice. h2o releases a pool's shared entries (this
 * slot among them) before any of its plain memory (h2o_mem_clear_pool), so
 * the queues' cancels still read their family state here (invariant 3). */
static void on_req_dispose(void *p)
{
	struct rp_call *c = *(struct rp_call **)p;
	c->req = NULL;
	call_quiesce(c);
	c->lead = NULL; /* the pool goes now: a late use is a NULL dereference */
	c->ctx = NULL;
	rp_call_unref(c);
}

struct rp_call *rp_call_create(struct rp_api *api, h2o_req_t *req)
{
	struct rp_call *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	struct rp_call **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_req_dispose);
	*slot = c;
	c->api = api;
	c->req = req;
	c->refs = 1;
	c->route = RP_ROUTE_OTHER;
	return c;
}

/* ---- who is calling ------------------------------------------------------ */

const char *rp_call_peer_identity(struct rp_call *c)
{
	/* the verified certificate identity of the connection (net/accept.c):
	 * its URI (spiffe://TD/node/7) or "CN=..."; NULL without TLS or without
	 * a certificate that verified */
	const struct rp_peer_id *id = rp_conn_identity(c->req);
	if (id == NULL || id->kind == RP_PEER_NONE || id->name[0] == '\0')
		return NULL;
	return id->name;
}

static void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len, int with_port)
{
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned port = 0;
	buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		port = ntohs(in->sin_port);
		if (with_port)
			snprintf(buf, len, "%s:%u", ip, port);
		else
			snprintf(buf, len, "%s", ip);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		port = ntohs(in6->sin6_port);
		if (with_port)
			snprintf(buf, len, "[%s]:%u", ip, port);
		else
			snprintf(buf, len, "%s", ip);
	}
}

static void peer_sockaddr(struct rp_call *c, char *buf, size_t len, int with_port)
{
	struct sockaddr_storage ss;
	buf[0] = '\0';
	if (!c->req || !c->req->conn || !c->req->conn->callbacks->get_peername)
		return;
	memset(&ss, 0, sizeof ss);
	if (c->req->conn->callbacks->get_peername(c->req->conn, (struct sockaddr *)&ss) == 0)
		return;
	format_sockaddr((struct sockaddr *)&ss, buf, len, with_port);
}

void rp_call_peer_address(struct rp_call *c, char *buf, size_t len)
{
	peer_sockaddr(c, buf, len, 1);
}

/* The host of "IP:port" or "[IPv6]:port" into @out (no brackets). */
static int host_of(const char *hostport, char *out, size_t len)
{
	const char *colon = strrchr(hostport, ':');
	const char *p = hostport;
	if (!colon)
		return -1;
	size_t n = (size_t)(colon - p);
	if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
		p++;
		n -= 2;
	}
	if (n == 0 || n >= len)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int rp_peer_is_member(const char *identity, const char *peer_ip,
		      const struct rp_node_member *members, unsigned n)
{
	static const char scheme[] = "spiffe://";
	if (identity && strncmp(identity, scheme, sizeof scheme - 1) == 0) {
		const char *td = identity + sizeof scheme - 1;
		const char *slash = strchr(td, '/');
		uint64_t id = 0;
		const char *d;
		if (!slash || slash == td || strncmp(slash, "/server/", 8) != 0)
			return 0;
		for (d = slash + 8; *d >= '0' && *d <= '9' && id < UINT64_MAX / 10; d++)
			id = id * 10 + (uint64_t)(*d - '0');
		if (*d || d == slash + 8)
			return 0;
		for (unsigned i = 0; i < n; i++)
			if (members[i].id == id)
				return 1;
		return 0;
	}
	if (!peer_ip || !peer_ip[0])
		return 0;
	for (unsigned i = 0; i < n; i++) {
		char host[64];
		if (host_of(members[i].http, host, sizeof host) == 0 && strcmp(host, peer_ip) == 0)
			return 1;
	}
	return 0;
}

int rp_call_from_member(struct rp_call *c)
{
	struct rp_node_member *ms = NULL;
	unsigned n = 0;
	char ip[INET6_ADDRSTRLEN] = "";
	const char *identity = NULL;
	if (c->api->opts.tls != NULL) {
		/* with TLS only a server certificate proves a member, never the
		 * source address (any process on a member's host has that) */
		const struct rp_peer_id *id = rp_conn_identity(c->req);
		if (id == NULL || id->kind != RP_PEER_SERVER)
			return 0;
		identity = id->name;
	} else {
		peer_sockaddr(c, ip, sizeof ip, 0);
	}
	if (rp_node_members(c->api->node, &ms, &n) != RP_OK)
		return 0;
	int yes = rp_peer_is_member(identity, ip, ms, n);
	free(ms);
	return yes;
}

/* What x-raftplane-client may hold: an address as rp_call_peer_address
 * writes it. */
static int address_valid(const char *v)
{
	size_t n = strlen(v);
	if (n < 3 || n >= RP_MAX_ADDRESS || strspn(v, "0123456789abcdefABCDEF.:[]") != n)
		return 0;
	return strchr(v, ':') != NULL;
}

void rp_call_client_address(struct rp_call *c, char *buf, size_t len)
{
	ssize_t i = c->req ? h2o_find_header_by_str(&c->req->headers,
						    H2O_STRLIT("x-raftplane-client"), -1)
			   : -1;
	if (i >= 0) {
		h2o_iovec_t v = c->req->headers.entries[i].value;
		char val[RP_MAX_ADDRESS];
		if (v.len < sizeof val) {
			memcpy(val, v.base, v.len);
			val[v.len] = '\0';
			if (address_valid(val) && rp_call_from_member(c)) {
				snprintf(buf, len, "%s", val);
				return;
			}
		}
	}
	rp_call_peer_address(c, buf, len);
}

uint64_t rp_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void rp_call_audit(struct rp_call *c, struct rp_audit *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->actor, sizeof out->actor, "%s", c->actor[0] ? c->actor : "anonymous");
	rp_call_client_address(c, out->address, sizeof out->address);
	out->time_ms = rp_wall_ms();
}

/* ---- responses ---------------------------------------------------------- */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

int rp_call_begin_response(struct rp_call *c, int status)
{
	if (c->responded || !c->req)
		return 0; /* invariant 4: the first answer wins */
	c->responded = 1;
	call_quiesce(c);
	assert(!c->park && !c->cw && !c->timer_on);
	if (status >= 100 && status < 600)
		c->api->requests[c->route][status]++;
	c->req->res.status = status;
	c->req->res.reason = reason_phrase(status);
	return 1;
}

static void add_etag(struct rp_call *c, uint64_t etag)
{
	if (!etag)
		return;
	char buf[32];
	int n = snprintf(buf, sizeof buf, "\"%" PRIu64 "\"", etag);
	h2o_iovec_t v = h2o_strdup(&c->req->pool, buf, (size_t)n);
	h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_ETAG, NULL, v.base, v.len);
}

void rp_respond_raw(struct rp_call *c, int status, const char *ctype, const void *data, size_t len,
		    uint64_t etag)
{
	if (!rp_call_begin_response(c, status))
		return;
	h2o_req_t *req = c->req;
	h2o_iovec_t ct = h2o_strdup(&req->pool, ctype, SIZE_MAX);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base,
		       ct.len);
	add_etag(c, etag);
	req->res.content_length = len;
	h2o_send_inline(req, data, len);
}

static void add_str_header(struct rp_call *c, const h2o_token_t *token, const char *value)
{
	if (!value || !*value)
		return;
	h2o_iovec_t v = h2o_strdup(&c->req->pool, value, SIZE_MAX);
	h2o_add_header(&c->req->pool, &c->req->res.headers, token, NULL, v.base, v.len);
}

void rp_respond_relay(struct rp_call *c, int status, const char *ctype, const char *etag,
		      const char *retry_after, const void *body, size_t len)
{
	if (!rp_call_begin_response(c, status))
		return;
	add_str_header(c, H2O_TOKEN_CONTENT_TYPE, ctype);
	add_str_header(c, H2O_TOKEN_ETAG, etag);
	add_str_header(c, H2O_TOKEN_RETRY_AFTER, retry_after);
	if (status == 401) /* the leader's challenge (our client does not keep it) */
		add_str_header(c, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer");
	c->req->res.content_length = len;
	h2o_send_inline(c->req, body, len);
}

/* The answer when a JSON body cannot be built (allocation failure or our
 * bug): still the documented error shape. */
static const char internal_body[] =
	"{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the answer\"}}\n";

void rp_respond_json(struct rp_call *c, int status, json_t *body, uint64_t etag)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text) { /* a NULL body is a json_pack() that failed: never answer "{}" */
		rp_respond_raw(c, 500, "application/json", internal_body, sizeof internal_body - 1,
			       0);
		return;
	}
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2); /* trailing newline for curl users */
	if (nl) {
		text = nl;
		text[len++] = '\n';
		text[len] = '\0';
	}
	rp_respond_raw(c, status, "application/json", text, len, etag);
	free(text);
}

void rp_respond_error(struct rp_call *c, int err, const char *message, int index)
{
	char msg[RP_MAX_ERROR_MESSAGE];
	if (!c->req || c->responded)
		return;
	rp_utf8_sanitize(msg, sizeof msg, message && *message ? message : rp_err_message(err));
	json_t *e = json_pack("{s:s,s:s}", "code", rp_err_code(err), "message", msg);
	if (e && index >= 0)
		json_object_set_new(e, "index", json_integer(index));
	if (err == RP_ERR_NO_LEADER || err == RP_ERR_UNKNOWN_OUTCOME || err == RP_ERR_UNAVAILABLE)
		h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
			       H2O_STRLIT("1"));
	if (err == RP_ERR_UNAUTHENTICATED)
		h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE,
			       NULL, H2O_STRLIT("Bearer"));
	rp_respond_json(c, rp_err_http_status(err), e ? json_pack("{s:o}", "error", e) : NULL, 0);
}

/* ---- h2o's own error answers -------------------------------------------
 *
 * h2o answers some requests itself, before any handler runs, with a
 * text/plain body from h2o_send_error_generic(): a body over
 * max_request_entity_size (413: on Content-Length, or when a chunked body
 * reaches it), a broken chunked encoding or Content-Length (400), an
 * unknown Expect (417). Such answers are bound to the host's fallback path
 * when no path was chosen yet. This filter, on every path including the
 * fallback, turns them into our JSON error shape. It recognises them by
 * their content type, which no handler of ours uses. (A request line or
 * header h2o cannot parse at all still gets h2o's raw "400 Bad Request",
 * written straight to the socket.) */

struct json_error_ostream {
	h2o_ostream_t super;
	struct rp_api *api;
	int sent;
};

struct error_filter {
	h2o_filter_t super;
	struct rp_api *api;
};

static int is_h2o_error(h2o_req_t *req)
{
	ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
	return req->res.status >= 400 && i >= 0 &&
	       h2o_memis(req->res.headers.entries[i].value.base,
			 req->res.headers.entries[i].value.len,
			 H2O_STRLIT("text/plain; charset=utf-8"));
}

static int h2o_status_err(int status)
{
	switch (status) {
	case 413: return RP_ERR_TOO_LARGE;
	case 404: return RP_ERR_NO_ROUTE;
	case 405: return RP_ERR_METHOD;
	default: return status < 500 ? RP_ERR_INVALID : RP_ERR_INTERNAL;
	}
}

/* h2o_send_inline() sends its whole body in one final call (none for HEAD). */
static void on_json_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
			       size_t bufcnt, h2o_send_state_t state)
{
	struct json_error_ostream *o = (struct json_error_ostream *)self;
	char text[RP_MAX_ERROR_MESSAGE] = "", msg[RP_MAX_ERROR_MESSAGE], *body = NULL;
	int err = h2o_status_err(req->res.status);
	if (o->sent) { /* our body went out with the first call */
		h2o_ostream_send_next(self, req, NULL, 0, state);
		return;
	}
	for (size_t i = 0; i < bufcnt; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "%.*s", (int)bufs[i].len,
			 bufs[i].base);
	rp_utf8_sanitize(msg, sizeof msg,
			 err == RP_ERR_TOO_LARGE ? "body over 1 MiB"
			 : text[0]               ? text
						 : rp_err_message(err));
	json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", rp_err_code(err), "message", msg);
	body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	h2o_iovec_t b = h2o_iovec_init(internal_body, sizeof internal_body - 1);
	if (body) {
		b.len = strlen(body) + 1;
		b.base = h2o_mem_alloc_pool(&req->pool, b.len);
		memcpy(b.base, body, b.len - 1);
		b.base[b.len - 1] = '\n';
		free(body);
	}
	req->res.content_length = b.len; /* headers go out with the first send below */
	o->sent = 1;
	o->api->requests[RP_ROUTE_OTHER][req->res.status]++;
	h2o_ostream_send_next(self, req, bufcnt ? &b : NULL, bufcnt ? 1 : 0, state);
}

static void on_error_filter_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	struct error_filter *f = (struct error_filter *)self;
	if (is_h2o_error(req) && req->res.status < 600) {
		ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
		req->res.headers.entries[i].value = h2o_iovec_init(H2O_STRLIT("application/json"));
		struct json_error_ostream *o =
			(struct json_error_ostream *)h2o_add_ostream(req, sizeof *o, slot);
		o->super.do_send = on_json_error_send;
		o->api = f->api;
		o->sent = 0;
		slot = &o->super.next;
	}
	h2o_setup_next_ostream(req, slot);
}

void rp_call_add_error_filter(h2o_pathconf_t *path, struct rp_api *api)
{
	struct error_filter *f = (struct error_filter *)h2o_create_filter(path, sizeof *f);
	f->api = api;
	f->super.on_setup_ostream = on_error_filter_setup;
}
