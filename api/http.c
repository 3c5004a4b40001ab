/* The admin API's HTTP server (h2o on the node's libuv loop): request
 * lifecycle, routing and response helpers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "closewatch.h"
#include "raftplane/err.h"

const char *const rp_route_names[RP_ROUTE__COUNT] = {
    [RP_ROUTE_KV] = "kv",
    [RP_ROUTE_KV_LIST] = "kv_list",
    [RP_ROUTE_MESH] = "mesh",
    [RP_ROUTE_MESH_LIST] = "mesh_list",
    [RP_ROUTE_TXN] = "txn",
    [RP_ROUTE_WATCH] = "watch",
    [RP_ROUTE_STATUS] = "status",
    [RP_ROUTE_MEMBERS] = "members",
    [RP_ROUTE_MEMBER] = "member",
    [RP_ROUTE_LEADERSHIP] = "leadership",
    [RP_ROUTE_HEALTHZ] = "healthz",
    [RP_ROUTE_READYZ] = "readyz",
    [RP_ROUTE_METRICS] = "metrics",
    [RP_ROUTE_SUBSCRIBE] = "subscribe",
    [RP_ROUTE_PROXIES] = "proxies",
    [RP_ROUTE_ROLLOUTS] = "rollouts",
    [RP_ROUTE_OTHER] = "other",
};

/* ---- call lifecycle ----------------------------------------------------- */

void rp_call_ref(struct rp_call *c)
{
	c->refs++;
}

void rp_call_unref(struct rp_call *c)
{
	if (--c->refs > 0)
		return;
	free(c->canon);
	if (c->cmd)
		raftplane__command__free_unpacked(c->cmd, NULL);
	free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	rp_call_unref(h->data);
}

static void on_call_timer(uv_timer_t *t)
{
	struct rp_call *c = t->data;
	if (c->on_timer)
		c->on_timer(c);
}

void rp_call_set_timer(struct rp_call *c, uint64_t ms, void (*fn)(struct rp_call *c))
{
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

/* Stop everything the call waits for; it can then only be freed. */
static void call_quiesce(struct rp_call *c)
{
	rp_closewatch_destroy(c->cw); /* park.c */
	c->cw = NULL;
	rp_leader_cancel(c);
	rp_watch_cancel(c);
	rp_subscribe_cancel(c);
	if (c->timer_on) {
		c->timer_on = 0;
		uv_timer_stop(&c->timer);
		uv_close((uv_handle_t *)&c->timer, on_timer_closed);
	}
}

/* h2o disposes the request pool once the response is done or the client is
 * gone; the slot lets us notice. */
static void on_req_dispose(void *p)
{
	struct rp_call *c = *(struct rp_call **)p;
	c->req = NULL;
	call_quiesce(c);
	rp_call_unref(c);
}

static struct rp_call *call_create(struct rp_api *api, h2o_req_t *req)
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
	c->lw.next = c->lw.prev = &c->lw;
	c->wnext = c->wprev = NULL;
	return c;
}

/* ---- responses ---------------------------------------------------------- */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 499: return "Client Closed Request";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

static int begin_response(struct rp_call *c, int status)
{
	if (c->responded || !c->req)
		return 0;
	c->responded = 1;
	call_quiesce(c);
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

void rp_respond_raw(struct rp_call *c, int status, const char *ctype, const void *data,
		    size_t len, uint64_t etag)
{
	if (!begin_response(c, status))
		return;
	h2o_req_t *req = c->req;
	h2o_iovec_t ct = h2o_strdup(&req->pool, ctype, SIZE_MAX);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base, ct.len);
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
	if (!begin_response(c, status))
		return;
	add_str_header(c, H2O_TOKEN_CONTENT_TYPE, ctype);
	add_str_header(c, H2O_TOKEN_ETAG, etag);
	add_str_header(c, H2O_TOKEN_RETRY_AFTER, retry_after);
	c->req->res.content_length = len;
	h2o_send_inline(c->req, body, len);
}

void rp_respond_json(struct rp_call *c, int status, json_t *body, uint64_t etag)
{
	if (!body)
		body = json_object();
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text) {
		rp_respond_raw(c, 500, "application/json",
			       "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"encode\"}}", 54, 0);
		return;
	}
	size_t len = strlen(text);
	text[len] = '\0';
	char *nl = realloc(text, len + 2); /* trailing newline for curl users */
	if (nl) {
		text = nl;
		text[len++] = '\n';
	}
	rp_respond_raw(c, status, "application/json", text, len, etag);
	free(text);
}

void rp_respond_error(struct rp_call *c, int err, const char *message, int index)
{
	if (!c->req || c->responded)
		return;
	json_t *e = json_pack("{s:s,s:s}", "code", rp_err_code(err), "message",
			      message && *message ? message : rp_err_message(err));
	if (index >= 0)
		json_object_set_new(e, "index", json_integer(index));
	if (err == RP_ERR_NO_LEADER || err == RP_ERR_UNKNOWN_OUTCOME || err == RP_ERR_UNAVAILABLE)
		h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
			       H2O_STRLIT("1"));
	rp_respond_json(c, rp_err_http_status(err), json_pack("{s:o}", "error", e), 0);
}

/* ---- request helpers ---------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode @len bytes of @v into @out; -1 on bad escapes, NUL or overflow. */
static int url_decode(const char *v, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = v[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= len || (hi = hexval(v[i + 1])) < 0 || (lo = hexval(v[i + 2])) < 0)
				return -1;
			ch = (char)(hi * 16 + lo);
			i += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if (ch == '\0' || o + 1 >= outlen)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return 0;
}

int rp_query_param(h2o_req_t *req, const char *name, char *out, size_t outlen)
{
	if (req->query_at == SIZE_MAX)
		return 0;
	const char *q = req->path.base + req->query_at + 1;
	const char *end = req->path.base + req->path.len;
	size_t nlen = strlen(name);
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		if (!amp)
			amp = end;
		const char *eq = memchr(q, '=', (size_t)(amp - q));
		const char *kend = eq ? eq : amp;
		if ((size_t)(kend - q) == nlen && memcmp(q, name, nlen) == 0) {
			const char *v = eq ? eq + 1 : amp;
			return url_decode(v, (size_t)(amp - v), out, outlen) == 0 ? 1 : -1;
		}
		q = amp + 1;
	}
	return 0;
}

int rp_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int rp_parse_wait(const char *s, uint64_t max_ms, uint64_t *ms)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v >= 0) || v > 1e9)
		return -1;
	if (strcmp(end, "ms") == 0)
		*ms = (uint64_t)v;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		*ms = (uint64_t)(v * 1000);
	else if (strcmp(end, "m") == 0)
		*ms = (uint64_t)(v * 60000);
	else
		return -1;
	return *ms <= max_ms ? 0 : -1;
}

const char *rp_header(h2o_req_t *req, const h2o_token_t *token)
{
	ssize_t i = h2o_find_header(&req->headers, token, -1);
	if (i < 0)
		return NULL;
	h2o_iovec_t v = req->headers.entries[i].value;
	return h2o_strdup(&req->pool, v.base, v.len).base;
}

/* ---- routing ------------------------------------------------------------ */

static int path_is(h2o_iovec_t p, const char *s)
{
	return p.len == strlen(s) && memcmp(p.base, s, p.len) == 0;
}

static int path_prefix(h2o_iovec_t p, const char *s)
{
	size_t n = strlen(s);
	return p.len > n && memcmp(p.base, s, n) == 0;
}

static void route_v1(struct rp_call *c, const char *method, const char *rest, size_t len)
{
	const char *slash = memchr(rest, '/', len);
	size_t first = slash ? (size_t)(slash - rest) : len;
	int kind = rp_kind_parse(rest, first);
	if (kind == RP_KIND_KV || kind == RP_KIND_CLUSTERS || kind == RP_KIND_ROUTES ||
	    kind == RP_KIND_LISTENERS) {
		int is_kv = kind == RP_KIND_KV;
		if (!slash) {
			c->route = is_kv ? RP_ROUTE_KV_LIST : RP_ROUTE_MESH_LIST;
			if (strcmp(method, "GET") != 0)
				rp_respond_error(c, RP_ERR_METHOD, "use GET to list", -1);
			else if (is_kv)
				rp_route_kv_list(c);
			else
				rp_route_mesh_list(c, kind);
			return;
		}
		c->route = is_kv ? RP_ROUTE_KV : RP_ROUTE_MESH;
		if (is_kv)
			rp_route_kv(c, method, slash + 1, len - first - 1);
		else
			rp_route_mesh(c, kind, method, slash + 1, len - first - 1);
		return;
	}
	if (kind == RP_KIND_MEMBERS) {
		if (!slash) {
			c->route = RP_ROUTE_MEMBERS;
			rp_route_members(c, method);
			return;
		}
		const char *id = slash + 1, *end = rest + len;
		const char *s2 = memchr(id, '/', (size_t)(end - id));
		int leadership = s2 && (size_t)(end - s2) == strlen("/leadership") &&
				 memcmp(s2, "/leadership", (size_t)(end - s2)) == 0;
		if (s2 && !leadership) {
			rp_respond_error(c, RP_ERR_NO_ROUTE, "no such endpoint", -1);
			return;
		}
		c->route = leadership ? RP_ROUTE_LEADERSHIP : RP_ROUTE_MEMBER;
		rp_route_member(c, method, id, (size_t)((s2 ? s2 : end) - id), leadership);
		return;
	}
	if (len == 3 && memcmp(rest, "txn", 3) == 0) {
		c->route = RP_ROUTE_TXN;
		if (strcmp(method, "POST") != 0)
			rp_respond_error(c, RP_ERR_METHOD, "use POST", -1);
		else
			rp_route_txn(c);
		return;
	}
	if (len == 5 && memcmp(rest, "watch", 5) == 0) {
		c->route = RP_ROUTE_WATCH;
		rp_route_watch(c);
		return;
	}
	if (len == 9 && memcmp(rest, "subscribe", 9) == 0) {
		c->route = RP_ROUTE_SUBSCRIBE;
		rp_route_subscribe(c);
		return;
	}
	if (len == 7 && memcmp(rest, "proxies", 7) == 0) {
		c->route = RP_ROUTE_PROXIES;
		rp_route_proxies(c);
		return;
	}
	if (len > 9 && memcmp(rest, "rollouts/", 9) == 0) {
		c->route = RP_ROUTE_ROLLOUTS;
		rp_route_rollout(c, rest + 9, len - 9);
		return;
	}
	if (len == 6 && memcmp(rest, "status", 6) == 0) {
		c->route = RP_ROUTE_STATUS;
		rp_route_status(c);
		return;
	}
	rp_respond_error(c, RP_ERR_NO_ROUTE, "no such endpoint", -1);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct rp_api *api = *(struct rp_api **)(self + 1);
	struct rp_call *c = call_create(api, req);
	char method[16];
	if (!c)
		return -1;
	size_t mlen = req->method.len < sizeof method - 1 ? req->method.len : sizeof method - 1;
	memcpy(method, req->method.base, mlen);
	method[mlen] = '\0';
	c->forwarded = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-raftplane-forwarded"),
					      -1) >= 0;
	h2o_iovec_t p = req->path_normalized;
	if (req->entity.base && req->entity.len > RP_MAX_BODY) {
		rp_respond_error(c, RP_ERR_TOO_LARGE, "body over 1 MiB", -1);
	} else if (path_prefix(p, "/v1/")) {
		route_v1(c, method, p.base + 4, p.len - 4);
	} else if (path_is(p, "/healthz")) {
		c->route = RP_ROUTE_HEALTHZ;
		rp_route_healthz(c);
	} else if (path_is(p, "/readyz")) {
		c->route = RP_ROUTE_READYZ;
		rp_route_readyz(c);
	} else if (path_is(p, "/metrics")) {
		c->route = RP_ROUTE_METRICS;
		rp_route_metrics(c);
	} else {
		rp_respond_error(c, RP_ERR_NO_ROUTE, "no such endpoint", -1);
	}
	return 0;
}

/* ---- server ------------------------------------------------------------- */

h2o_socket_t *rp_accept_socket(uv_stream_t *listener, uv_close_cb on_close)
{
	uv_tcp_t *conn = h2o_mem_alloc(sizeof *conn);
	uv_tcp_init(listener->loop, conn);
	if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
		uv_close((uv_handle_t *)conn, (uv_close_cb)free);
		return NULL;
	}
	uv_tcp_nodelay(conn, 1);
	return h2o_uv_socket_create((uv_stream_t *)conn, on_close);
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct rp_api *api = listener->data;
	h2o_socket_t *sock = status == 0 ? rp_accept_socket(listener, (uv_close_cb)free) : NULL;
	if (sock)
		h2o_accept(&api->accept_ctx, sock);
}

int rp_api_start(struct rp_api *api, uv_loop_t *loop, struct rp_node *node, const char *addr,
		 const struct rp_api_options *opts, char *errmsg, size_t errlen)
{
	struct sockaddr_storage sa;
	int rv;
	api->loop = loop;
	api->node = node;
	api->opts = *opts;
	if (rp_parse_hostport(addr, &sa) != 0) {
		snprintf(errmsg, errlen, "--http %s: not an IP:port", addr);
		return -1;
	}
	h2o_config_init(&api->config);
	/* h2o refuses bodies over this with its own plain-text 413 before any
	 * handler runs; ours (JSON) is 1 MiB. Between the two h2o buffers the
	 * body (at most 64 MiB per request) so that the answer is JSON. */
	api->config.max_request_entity_size = 64 * RP_MAX_BODY;
	h2o_hostconf_t *host =
	    h2o_config_register_host(&api->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	h2o_handler_t *h = h2o_create_handler(path, sizeof *h + sizeof(struct rp_api *));
	*(struct rp_api **)(h + 1) = api;
	h->on_req = on_req;
	h2o_context_init(&api->ctx, loop, &api->config);
	api->accept_ctx.ctx = &api->ctx;
	api->accept_ctx.hosts = api->config.hosts;
	if (rp_subscribe_init(api) != RP_OK) {
		snprintf(errmsg, errlen, "out of memory");
		return -1;
	}
	uv_tcp_init(loop, &api->listener);
	api->listener.data = api;
	if ((rv = uv_tcp_bind(&api->listener, (struct sockaddr *)&sa, 0)) != 0 ||
	    (rv = uv_listen((uv_stream_t *)&api->listener, 1024, on_accept)) != 0) {
		snprintf(errmsg, errlen, "listen on %s: %s", addr, uv_strerror(rv));
		return -1;
	}
	return 0;
}

void rp_api_close(struct rp_api *api)
{
	rp_subscribe_close(api);
	uv_close((uv_handle_t *)&api->listener, NULL);
}
