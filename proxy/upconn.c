/* Upstream connection: the keep-alive pool and the HTTP/1.1 exchange.
 *
 * States of a connection:
 *
 *   CONNECTING --connected--> HEAD --final head--> BODY --complete--+
 *        ^                     ^                                    |
 *        | (new)               +--- IDLE (in pool->idle) <--recycle-+
 *                                   | data, EOF, idle timeout
 *                                   v
 *                                 closed
 *
 * Invariants:
 *  1. A connection is either idle (in pool->idle, reading only to notice a
 *     close, idle timer linked) or checked out (counted in pool->busy) until
 *     it is recycled or closed; pool->busy counts exactly the checked-out
 *     connections, so a pool with busy == 0 and no idle connection has no
 *     connection left pointing at it.
 *  2. c->x is the exchange using the connection; it is cleared before any
 *     callback that ends the exchange runs, and no callback runs for an
 *     exchange after rp_uc_cancel().
 *  3. A connection is recycled only after the whole response was read with a
 *     known length (Content-Length or chunked), the server allowed
 *     keep-alive, nothing followed the response, and the request was written
 *     completely.
 *  4. Every byte in the socket's input is consumed by each read callback
 *     (moved to the exchange's body buffer or dropped as trailing garbage),
 *     so each callback sees only newly read bytes.
 *  5. Only the transitions of the diagram happen (set_state checks them):
 *     CONNECTING->HEAD, IDLE->HEAD, HEAD->BODY, BODY->IDLE, BODY->FINISHING
 *     (the request is still being written), FINISHING->IDLE; any state may
 *     end in close_conn().
 *  6. An idle connection has no exchange (c->x == NULL) and is linked in its
 *     own pool's idle list and nowhere else; a checked-out one is in no list.
 *     FINISHING is the only checked-out state without an exchange.
 */
#include "upconn.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpcheck.h"

#define MAX_HEADERS 100
#define MAX_HEAD_BYTES (64 * 1024)

/* picohttpparser, as exported by libh2o (its header is not installed) */
struct phr_chunked_decoder {
	size_t bytes_left_in_chunk;
	char consume_trailer;
	char _hex_count;
	char _state;
};
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
		       const char **msg, size_t *msg_len, struct rp_header_view *headers,
		       size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

enum state {
	ST_CONNECTING,
	ST_HEAD,
	ST_BODY,
	ST_IDLE,
	ST_FINISHING
};
enum framing {
	F_NONE,
	F_LENGTH,
	F_CHUNKED,
	F_CLOSE
};

struct rp_upconn {
	h2o_socket_t *sock;
	struct rp_pool *pool;
	h2o_linklist_t link; /* in pool->idle */
	h2o_timeout_entry_t idle_timer;
	struct rp_uc_exchange *x;
	enum state state;
	enum framing framing;
	size_t left; /* F_LENGTH: body bytes still to come */
	struct phr_chunked_decoder dec;
	int writing;
	int keepalive;
	int paused;
};

static void on_read(h2o_socket_t *sock, const char *err);

/* Invariant 5: the legal transitions, by the state entered. */
static __attribute__((unused)) int legal(enum state from, enum state to)
{
	switch (to) {
	case ST_HEAD: return from == ST_CONNECTING || from == ST_IDLE;
	case ST_BODY: return from == ST_HEAD;
	case ST_FINISHING: return from == ST_BODY;
	case ST_IDLE: return from == ST_BODY || from == ST_FINISHING;
	case ST_CONNECTING: break; /* only a new connection starts there */
	}
	return 0;
}

static void set_state(struct rp_upconn *c, enum state to)
{
	assert(legal(c->state, to));
	c->state = to;
}

/* ---- pool ----------------------------------------------------------------- */

void rp_pool_init(struct rp_pool *pool, h2o_loop_t *loop, const struct rp_pool_opts *opts)
{
	memset(pool, 0, sizeof *pool);
	snprintf(pool->hostport, sizeof pool->hostport, "%s", opts->hostport);
	memcpy(&pool->sa, opts->sa, opts->salen);
	pool->salen = opts->salen;
	pool->loop = loop;
	pool->max_idle = opts->max_idle;
	pool->idle_timeout = opts->idle_timeout;
	h2o_linklist_init_anchor(&pool->idle);
}

void rp_pool_stop(struct rp_pool *pool)
{
	pool->stopping = 1;
}

static void close_conn(struct rp_upconn *c)
{
	struct rp_pool *pool = c->pool;
	if (h2o_linklist_is_linked(&c->link)) {
		assert(c->state == ST_IDLE && !c->x && pool->n_idle > 0);
		h2o_linklist_unlink(&c->link);
		pool->n_idle--;
	} else {
		assert(c->state != ST_IDLE && pool->busy > 0);
		pool->busy--;
	}
	if (h2o_timeout_is_linked(&c->idle_timer))
		h2o_timeout_unlink(&c->idle_timer);
	if (c->sock) {
		c->sock->data = NULL;
		h2o_socket_close(c->sock);
	}
	free(c);
}

void rp_pool_close_idle(struct rp_pool *pool)
{
	while (!h2o_linklist_is_empty(&pool->idle))
		close_conn(H2O_STRUCT_FROM_MEMBER(struct rp_upconn, link, pool->idle.next));
}

static void on_idle_timeout(h2o_timeout_entry_t *e)
{
	struct rp_upconn *c = H2O_STRUCT_FROM_MEMBER(struct rp_upconn, idle_timer, e);
	assert(c->state == ST_IDLE);
	close_conn(c);
}

static void on_idle_read(h2o_socket_t *sock, const char *err)
{
	(void)err;
	struct rp_upconn *c = sock->data;
	if (!c)
		return;
	assert(c->state == ST_IDLE && !c->x); /* invariant 6 */
	close_conn(c); /* an idle upstream must not talk: closed or confused */
}

/* Make @cb the socket's read callback. On a socket that is already reading
 * h2o_socket_read_start() only replaces the callback: h2o's libuv binding
 * calls uv_read_start() again, which leaves a reading stream as it is
 * (UV_EALREADY), so switching costs no epoll_ctl and the socket never stops
 * watching for a close (a stop/start pair would re-register it). */
static void set_reader(struct rp_upconn *c, h2o_socket_cb cb)
{
	h2o_socket_read_start(c->sock, cb);
	assert(h2o_socket_is_reading(c->sock));
}

/* Put a checked-out connection back, or close it (invariant 3). */
static void recycle(struct rp_upconn *c)
{
	struct rp_pool *pool = c->pool;
	assert(!c->x && !c->writing); /* invariants 3 and 6 */
	if (!c->keepalive || c->sock->input->size || pool->n_idle >= pool->max_idle ||
	    pool->stopping) {
		close_conn(c);
		return;
	}
	assert(pool->busy > 0 && !h2o_linklist_is_linked(&c->link));
	pool->busy--;
	set_state(c, ST_IDLE);
	c->paused = 0;
	h2o_linklist_insert(pool->idle.next, &c->link);
	pool->n_idle++;
	set_reader(c, on_idle_read);
	c->idle_timer.cb = on_idle_timeout;
	h2o_timeout_link(pool->loop, pool->idle_timeout, &c->idle_timer);
}

/* ---- exchange --------------------------------------------------------------- */

void rp_uc_init(struct rp_uc_exchange *x, const struct rp_uc_callbacks *cb, void *data)
{
	memset(x, 0, sizeof *x);
	x->cb = cb;
	x->data = data;
	h2o_buffer_init(&x->body, &h2o_socket_buffer_prototype);
}

void rp_uc_close(struct rp_uc_exchange *x)
{
	rp_uc_cancel(x);
	h2o_buffer_dispose(&x->body);
}

/* End the exchange with an error; the connection is closed. */
static void fail(struct rp_upconn *c, enum rp_uc_error kind, const char *why)
{
	struct rp_uc_exchange *x = c->x;
	assert(x && x->conn == c);
	c->x = NULL;
	x->conn = NULL;
	close_conn(c);
	x->cb->on_error(x, kind, why);
}

/* The response is complete: detach the exchange, then tell it. */
static void complete(struct rp_upconn *c)
{
	struct rp_uc_exchange *x = c->x;
	assert(x && x->conn == c);
	c->x = NULL;
	x->conn = NULL;
	if (c->writing)
		set_state(c, ST_FINISHING); /* recycled when the write completes */
	else
		recycle(c);
	x->cb->on_body(x, 1);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
	struct rp_upconn *c = sock->data;
	if (!c)
		return;
	c->writing = 0;
	if (err) {
		if (c->x)
			fail(c, RP_UC_RESET, "write failed");
		else
			close_conn(c);
		return;
	}
	if (c->state == ST_FINISHING)
		recycle(c);
}

static void begin_request(struct rp_upconn *c)
{
	struct rp_uc_exchange *x = c->x;
	assert(x && x->conn == c && !h2o_linklist_is_linked(&c->link));
	set_state(c, ST_HEAD);
	c->framing = F_NONE;
	c->left = 0;
	memset(&c->dec, 0, sizeof c->dec);
	c->keepalive = 0;
	c->paused = 0;
	c->writing = 1;
	x->cb->on_connected(x);
	h2o_socket_write(c->sock, x->bufs, x->nbufs, on_written);
	set_reader(c, on_read);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
	struct rp_upconn *c = sock->data;
	if (!c)
		return;
	if (err) {
		fail(c, RP_UC_CONNECT, err);
		return;
	}
	begin_request(c);
}

void rp_uc_start(struct rp_uc_exchange *x, struct rp_pool *pool)
{
	struct rp_upconn *c;
	assert(!x->conn); /* one connection per exchange (upconn.h invariant 1) */
	pool->busy++;
	if (!h2o_linklist_is_empty(&pool->idle)) {
		c = H2O_STRUCT_FROM_MEMBER(struct rp_upconn, link, pool->idle.next);
		assert(c->pool == pool && c->state == ST_IDLE && !c->x && pool->n_idle > 0);
		h2o_linklist_unlink(&c->link);
		pool->n_idle--;
		h2o_timeout_unlink(&c->idle_timer);
		c->x = x;
		x->conn = c;
		x->reused = 1;
		begin_request(c);
		return;
	}
	x->reused = 0;
	if (!(c = calloc(1, sizeof *c))) {
		pool->busy--;
		x->cb->on_error(x, RP_UC_CONNECT, "out of memory");
		return;
	}
	c->pool = pool;
	c->x = x;
	x->conn = c;
	c->state = ST_CONNECTING;
	c->sock = h2o_socket_connect(pool->loop, (struct sockaddr *)&pool->sa, pool->salen,
				     on_connect);
	if (!c->sock) {
		fail(c, RP_UC_CONNECT, "cannot create a socket");
		return;
	}
	c->sock->data = c;
}

void rp_uc_cancel(struct rp_uc_exchange *x)
{
	struct rp_upconn *c = x->conn;
	if (!c)
		return;
	x->conn = NULL;
	c->x = NULL;
	close_conn(c);
}

void rp_uc_pause(struct rp_uc_exchange *x)
{
	struct rp_upconn *c = x->conn;
	if (c && c->state == ST_BODY && !c->paused) {
		c->paused = 1;
		h2o_socket_read_stop(c->sock);
	}
}

void rp_uc_resume(struct rp_uc_exchange *x)
{
	struct rp_upconn *c = x->conn;
	if (c && c->paused) {
		c->paused = 0;
		h2o_socket_read_start(c->sock, on_read);
	}
}

/* ---- reading the response ------------------------------------------------------ */

static int name_is(const struct rp_header_view *h, const char *name)
{
	return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

static int has_token(const struct rp_header_view *h, const char *tok)
{
	return rp_http_has_token(h->value, h->value_len, tok, strlen(tok));
}

/* Framing and keep-alive of a response head (RFC 9112 6.1, 6.3). NULL, or
 * why we refuse the response (the client gets a 502): a status outside
 * 100-599, an obs-fold line, a transfer coding other than a lone chunked,
 * Content-Length values that differ or are not a number. Transfer-Encoding
 * overrides Content-Length; such a connection is not reused. */
static const char *read_framing(struct rp_upconn *c, int minor, int status,
				const struct rp_header_view *h, size_t n)
{
	int no_body = c->x->is_head || status == 204 || status == 304;
	size_t cl = SIZE_MAX;
	unsigned te = 0, ncl = 0;
	if (status < 100 || status > 599)
		return "invalid status code";
	c->keepalive = minor >= 1;
	c->framing = F_CLOSE;
	for (size_t i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].name_len == 0)
			return "obsolete line folding";
		if (name_is(&h[i], "connection")) {
			if (has_token(&h[i], "close"))
				c->keepalive = 0;
			else if (has_token(&h[i], "keep-alive"))
				c->keepalive = 1;
		} else if (name_is(&h[i], "transfer-encoding")) {
			if (!h2o_lcstris(h[i].value, h[i].value_len, H2O_STRLIT("chunked")) || te++)
				return "unsupported transfer-encoding";
		} else if (name_is(&h[i], "content-length")) {
			size_t v = h2o_strtosize(h[i].value, h[i].value_len);
			if (v == SIZE_MAX || (ncl++ && v != cl))
				return "invalid content-length";
			cl = v;
		}
	}
	c->x->content_length = SIZE_MAX;
	if (te) {
		c->framing = F_CHUNKED;
		c->dec.consume_trailer = 1;
		if (ncl)
			c->keepalive = 0; /* smuggling attempt or broken server: no reuse */
	} else if (ncl) {
		c->framing = F_LENGTH;
		c->left = cl;
		c->x->content_length = cl;
	}
	if (no_body) {
		c->framing = F_NONE;
		c->x->content_length = SIZE_MAX;
	} else if (c->framing == F_CLOSE) {
		c->keepalive = 0;
	}
	return NULL;
}

/* Move @n bytes from the socket's input to the exchange's body. */
static void move_body(struct rp_upconn *c, size_t n)
{
	h2o_buffer_t **in = &c->sock->input;
	struct rp_uc_exchange *x = c->x;
	if (n == 0)
		return;
	if (x->body->size == 0 && (*in)->size == n) {
		h2o_buffer_t *t = x->body; /* no copy */
		x->body = *in;
		*in = t;
		return;
	}
	h2o_iovec_t dst = h2o_buffer_reserve(&x->body, n);
	memcpy(dst.base, (*in)->bytes, n);
	x->body->size += n;
	h2o_buffer_consume(in, n);
}

/* Decode the new input as body. 1: complete, 0: more to come, -1: broken. */
static int read_body(struct rp_upconn *c)
{
	h2o_buffer_t *in = c->sock->input;
	size_t n = in->size;
	switch (c->framing) {
	case F_NONE: return 1;
	case F_LENGTH:
		if (n > c->left) {
			in->size = c->left; /* trailing garbage: drop, do not reuse */
			c->keepalive = 0;
			n = c->left;
		}
		c->left -= n;
		move_body(c, n);
		return c->left == 0;
	case F_CHUNKED: {
		if (n == 0)
			return 0;
		size_t sz = n;
		ssize_t rv = phr_decode_chunked(&c->dec, in->bytes, &sz);
		if (rv == -1)
			return -1;
		in->size = sz;
		move_body(c, sz);
		if (rv >= 0) {
			if (rv > 0 || c->sock->input->size)
				c->keepalive = 0;
			h2o_buffer_consume(&c->sock->input, c->sock->input->size);
			return 1;
		}
		return 0;
	}
	case F_CLOSE: move_body(c, n); return 0;
	}
	return -1;
}

/* Parse the head; 1 when the final head was handled, 0 incomplete, -1 done
 * with the connection (failed or dropped). */
static int read_head(struct rp_upconn *c)
{
	for (;;) {
		struct rp_header_view h[MAX_HEADERS];
		size_t n = MAX_HEADERS, msg_len;
		int minor, status;
		const char *msg;
		h2o_buffer_t *in = c->sock->input;
		int rlen = phr_parse_response(in->bytes, in->size, &minor, &status, &msg, &msg_len,
					      h, &n, 0);
		if (rlen == -2) {
			if (in->size > MAX_HEAD_BYTES) {
				fail(c, RP_UC_INVALID, "response head too large");
				return -1;
			}
			return 0;
		}
		if (rlen < 0) {
			fail(c, RP_UC_INVALID, "malformed response");
			return -1;
		}
		if (status >= 100 && status < 200 && status != 101) {
			h2o_buffer_consume(&c->sock->input, (size_t)rlen);
			continue; /* informational: wait for the final answer */
		}
		const char *why = status == 101 ? "protocol upgrade"
						: read_framing(c, minor, status, h, n);
		if (why) {
			fail(c, RP_UC_INVALID, why);
			return -1;
		}
		/* detached during the call: on_head may start another exchange on
		 * x (a retry) and return -1 */
		struct rp_uc_exchange *x = c->x;
		c->x = NULL;
		x->conn = NULL;
		if (x->cb->on_head(x, status, h2o_iovec_init(msg, msg_len), h, n) != 0) {
			close_conn(c);
			return -1;
		}
		c->x = x;
		x->conn = c;
		h2o_buffer_consume(&c->sock->input, (size_t)rlen);
		set_state(c, ST_BODY);
		return 1;
	}
}

static void on_read(h2o_socket_t *sock, const char *err)
{
	struct rp_upconn *c = sock->data;
	if (!c)
		return;
	if (!c->x) { /* finishing: the answer is complete, nothing may follow */
		assert(c->state == ST_FINISHING); /* invariant 6 */
		c->keepalive = 0;
		h2o_buffer_consume(&sock->input, sock->input->size);
		return;
	}
	if (err) {
		if (c->state == ST_BODY && c->framing == F_CLOSE) {
			c->keepalive = 0;
			complete(c);
		} else {
			fail(c, c->state == ST_BODY ? RP_UC_BROKEN : RP_UC_RESET,
			     "upstream closed the connection");
		}
		return;
	}
	if (c->state == ST_HEAD && read_head(c) <= 0)
		return;
	int rv = read_body(c);
	if (rv < 0) {
		fail(c, RP_UC_BROKEN, "malformed chunked body");
		return;
	}
	if (rv == 1) {
		complete(c);
		return;
	}
	if (c->x->body->size)
		c->x->cb->on_body(c->x, 0);
}
