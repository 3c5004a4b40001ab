/* The admin API's HTTP server (h2o on the node's libuv loop): request
 * lifecycle, routing and response helpers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "closewatch.h"
#include "httpcheck.h"
#include "utf8.h"
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

/* The answer when a JSON body cannot be built (allocation failure or our
 * bug): still the documented error shape. */
static const char internal_body[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the answer\"}}\n";

void rp_respond_json(struct rp_call *c, int status, json_t *body, uint64_t etag)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text) { /* a NULL body is a json_pack() that failed: never answer "{}" */
		rp_respond_raw(c, 500, "application/json", internal_body, sizeof internal_body - 1, 0);
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
	rp_respond_json(c, rp_err_http_status(err), e ? json_pack("{s:o}", "error", e) : NULL, 0);
}


/* ---- request helpers ---------------------------------------------------- */

/* Percent-decode @len bytes of @v into @out (NUL-terminated, *outlen bytes);
 * @plus: '+' means a space (query strings). -1 on bad escapes, NUL or overflow. */
static int url_decode(const char *v, size_t len, char *out, size_t outcap, int plus,
		      size_t *outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = v[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= len || (hi = rp_http_hexval(v[i + 1])) < 0 || (lo = rp_http_hexval(v[i + 2])) < 0)
				return -1;
			ch = (char)(hi * 16 + lo);
			i += 2;
		} else if (ch == '+' && plus) {
			ch = ' ';
		}
		if (ch == '\0' || o + 1 >= outcap)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return 0;
}

int rp_path_decode(const char *v, size_t len, char *out, size_t outcap, size_t *outlen)
{
	return url_decode(v, len, out, outcap, 0, outlen);
}

int rp_query_param(h2o_req_t *req, const char *name, char *out, size_t outlen)
{
	if (req->query_at == SIZE_MAX)
		return 0;
	const char *q = req->path.base + req->query_at + 1;
	const char *end = req->path.base + req->path.len;
	size_t nlen = strlen(name);
	int found = 0;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		if (!amp)
			amp = end;
		const char *eq = memchr(q, '=', (size_t)(amp - q));
		const char *kend = eq ? eq : amp;
		if ((size_t)(kend - q) == nlen && memcmp(q, name, nlen) == 0) {
			const char *v = eq ? eq + 1 : amp;
			if (found++ || url_decode(v, (size_t)(amp - v), out, outlen, 1, NULL) != 0)
				return -1; /* a repeated parameter is ambiguous: refused */
		}
		q = amp + 1;
	}
	return found;
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

/* DIGITS[.DIGITS] then ms, s, m or nothing (seconds); nothing else (no sign,
 * space, hex, exponent, inf or nan). Integer arithmetic: exact, no overflow. */
int rp_parse_wait(const char *s, uint64_t max_ms, uint64_t *ms)
{
	size_t i = 0, int_len, frac_len = 0;
	uint64_t whole, frac = 0, scale = 1, unit;
	while (s[i] >= '0' && s[i] <= '9')
		i++;
	int_len = i;
	if (int_len == 0 || int_len > 9 || rp_parse_u64(s, int_len, &whole) != 0)
		return -1;
	if (s[i] == '.') {
		size_t f0 = ++i;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
		frac_len = i - f0;
		if (frac_len == 0 || frac_len > 6 || rp_parse_u64(s + f0, frac_len, &frac) != 0)
			return -1;
		for (size_t k = 0; k < frac_len; k++)
			scale *= 10;
	}
	if (strcmp(s + i, "ms") == 0)
		unit = 1;
	else if (strcmp(s + i, "s") == 0 || s[i] == '\0')
		unit = 1000;
	else if (strcmp(s + i, "m") == 0)
		unit = 60000;
	else
		return -1;
	*ms = whole * unit + frac * unit / scale;
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

const char *rp_header_list(h2o_req_t *req, const h2o_token_t *token)
{
	size_t total = 0, n = 0;
	for (ssize_t i = -1; (i = h2o_find_header(&req->headers, token, i)) >= 0; n++)
		total += req->headers.entries[i].value.len + 2;
	if (n == 0)
		return NULL;
	char *out = h2o_mem_alloc_pool(&req->pool, total + 1), *o = out;
	for (ssize_t i = -1; (i = h2o_find_header(&req->headers, token, i)) >= 0;) {
		h2o_iovec_t v = req->headers.entries[i].value;
		if (o != out)
			*o++ = ',', *o++ = ' ';
		memcpy(o, v.base, v.len);
		o += v.len;
	}
	*o = '\0';
	return out;
}

/* ---- requests ----------------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct rp_api *api = *(struct rp_api **)(self + 1);
	struct rp_call *c = call_create(api, req);
	if (!c)
		return -1;
	c->forwarded = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-raftplane-forwarded"),
					      -1) >= 0;
	struct rp_http_head head;
	const char *bad_framing = rp_http_check_request(req, &head); /* net/httpcheck.h */
	if (bad_framing) {
		req->http1_is_persistent = 0; /* never read what follows as a request */
		rp_respond_error(c, RP_ERR_INVALID, bad_framing, -1);
	} else if (req->entity.base && req->entity.len > RP_MAX_BODY) {
		rp_respond_error(c, RP_ERR_TOO_LARGE, "body over 1 MiB", -1);
	} else {
		rp_route_request(c);
	}
	return 0;
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
			 req->res.headers.entries[i].value.len, H2O_STRLIT("text/plain; charset=utf-8"));
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
			 : text[0]		 ? text
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

static void add_error_filter(h2o_pathconf_t *path, struct rp_api *api)
{
	struct error_filter *f = (struct error_filter *)h2o_create_filter(path, sizeof *f);
	f->api = api;
	f->super.on_setup_ostream = on_error_filter_setup;
}

/* ---- server ------------------------------------------------------------- */

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
	/* h2o refuses larger bodies before buffering them: on Content-Length at
	 * once, a chunked body when it reaches this size. A Content-Length of
	 * exactly RP_MAX_BODY + 1 gets through and is refused by on_req. */
	api->config.max_request_entity_size = RP_MAX_BODY + 1;
	/* HTTP/1.1 only, as documented: no h2c upgrade, no prior-knowledge
	 * HTTP/2 (the framing checks and close watches are HTTP/1's) */
	api->config.http1.upgrade_to_http2 = 0;
	h2o_hostconf_t *host =
	    h2o_config_register_host(&api->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h2o_pathconf_t *paths[2] = {h2o_config_register_path(host, "/", 0), &host->fallback_path};
	for (int i = 0; i < 2; i++) { /* the fallback: targets not starting with '/' */
		h2o_handler_t *h = h2o_create_handler(paths[i], sizeof *h + sizeof(struct rp_api *));
		*(struct rp_api **)(h + 1) = api;
		h->on_req = on_req;
		add_error_filter(paths[i], api);
	}
	h2o_context_init(&api->ctx, loop, &api->config);
	api->accept_ctx.ctx = &api->ctx;
	api->accept_ctx.hosts = api->config.hosts;
	if (rp_subscribe_init(api) != RP_OK) {
		snprintf(errmsg, errlen, "out of memory");
		return -1;
	}
	if ((rv = rp_listen(loop, &api->listener, api, (struct sockaddr *)&sa, 1024,
			    on_accept)) != 0) {
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
