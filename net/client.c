/* A small HTTP/1.1 client on libuv with keep-alive connection reuse.
 *
 * Objects
 * - struct conn: one TCP connection to a host:port. It is either busy
 *   (c->req set: carrying one request) or idle (on the loop's idle list,
 *   still reading so that a close by the server is noticed at once and the
 *   connection dropped). Idle connections older than IDLE_MS are closed, so
 *   that we never reuse one the server is about to time out.
 * - struct rp_http_req: one request; owns a timer. Its callback runs at most
 *   once; after rp_http_cancel() never.
 *
 * Framing (RFC 9112 6.3): Content-Length, chunked (decoded in place; it wins
 * over a Content-Length, and such a connection is not reused) or the close
 * of the connection; differing Content-Length values, a transfer coding
 * other than chunked, a malformed chunk or a status outside 100-599 are a
 * failed request. 1xx answers are skipped. Bodies are bounded by
 * RP_CLIENT_MAX_RESPONSE.
 *
 * Outcome rule: err is RP_HTTP_ERR_CONNECT only when the request bytes
 * cannot have reached a server (connect failed or timed out); once written,
 * a failure is LINK, TIMEOUT or BAD_RESPONSE (rp_http_err_sent()). Requests
 * are never retried here: a retry of a write whose first attempt was
 * processed would apply it twice.
 *
 * Invariants (asserted in Debug builds):
 * 1. A connection is in exactly one of three states: busy (c->req set and
 *    c->req->conn == c while the request reads), idle (c->req NULL, on this
 *    thread's idle list exactly once) or closing (c->closing; on no list,
 *    freed in its close callback).
 * 2. n_idle is the length of the idle list and never above
 *    MAX_IDLE_PER_LOOP.
 * 3. A request is sent once (r->sent), its callback runs at most once
 *    (r->done), and never after rp_http_cancel(); its timer is closed
 *    exactly once (r->closing) and the request freed only in that close
 *    callback. */
#include "client.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* picohttpparser's chunked decoder, as exported by libh2o */
struct rp_phr_chunked_decoder {
	size_t bytes_left_in_chunk;
	char consume_trailer;
	char _hex_count;
	char _state;
};
ssize_t phr_decode_chunked(struct rp_phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#define IDLE_MS 4000          /* below h2o's 10 s keep-alive timeout */
#define MAX_IDLE_PER_LOOP 256 /* per thread */

struct conn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	char hostport[64];
	struct rp_http_req *req; /* busy with this request, or NULL when idle */
	struct conn *next_idle;
	uint64_t idle_since;
	int closing;
	char *in;
	size_t in_len, in_cap;
	/* the response being read (reset for each request) */
	size_t head_len;   /* 0 until the head is complete */
	int minor, status; /* of the status line, once head_len is set */
	int chunked;       /* Transfer-Encoding: chunked */
	int no_reuse;      /* framing forbids reusing the connection */
	size_t length;     /* Content-Length, or SIZE_MAX (delimited by close) */
	size_t dec_end;    /* chunked: c->in[..dec_end) is head + decoded body */
	struct rp_phr_chunked_decoder dec;
};

struct rp_http_req {
	uv_loop_t *loop;
	uv_timer_t timer;
	struct conn *conn;
	char *out;
	size_t out_len;
	int sent, done, closing;
	rp_http_cb cb;
	void *arg;
};

/* Idle connections, most recently used first. One list per thread: a loop
 * is driven by one thread, so connections never cross loops. */
static _Thread_local struct conn *idle_head;
static _Thread_local unsigned n_idle;

int rp_parse_hostport(const char *hostport, struct sockaddr_storage *sa)
{
	char host[64];
	const char *colon;
	if (hostport[0] == '[') {
		const char *end = strchr(hostport, ']');
		if (!end || end[1] != ':' || (size_t)(end - hostport - 1) >= sizeof host)
			return -1;
		memcpy(host, hostport + 1, (size_t)(end - hostport - 1));
		host[end - hostport - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(hostport, ':');
		if (!colon || (size_t)(colon - hostport) >= sizeof host)
			return -1;
		memcpy(host, hostport, (size_t)(colon - hostport));
		host[colon - hostport] = '\0';
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	/* digits only: strtol alone also takes spaces and a sign */
	if (*end || end == colon + 1 || colon[1] < '0' || colon[1] > '9' || port < 1 ||
	    port > 65535)
		return -1;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return -1;
}

int rp_hostport_loopback(const char *hostport)
{
	struct sockaddr_storage sa;
	if (rp_parse_hostport(hostport, &sa) != 0)
		return 0;
	if (sa.ss_family == AF_INET) {
		const unsigned char *a =
			(const unsigned char *)&((struct sockaddr_in *)&sa)->sin_addr.s_addr;
		return a[0] == 127;
	}
	const unsigned char *a = ((struct sockaddr_in6 *)&sa)->sin6_addr.s6_addr;
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (memcmp(a, one, 16) == 0)
		return 1;
	return memcmp(a, v4mapped, 12) == 0 && a[12] == 127;
}

/* ---- connections -------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	free(c->in);
	free(c);
}

#ifndef NDEBUG
static int on_idle_list(const struct conn *c)
{
	unsigned n = 0, found = 0;
	for (const struct conn *i = idle_head; i; i = i->next_idle, n++)
		found += i == c;
	assert(n == n_idle);
	return found == 1;
}
#endif

static void unlink_idle(struct conn *c)
{
	assert(!c->req && on_idle_list(c));
	for (struct conn **pp = &idle_head; *pp; pp = &(*pp)->next_idle) {
		if (*pp == c) {
			*pp = c->next_idle;
			n_idle--;
			break;
		}
	}
	c->next_idle = NULL;
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (!c->req)
		unlink_idle(c);
	c->req = NULL;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Take an idle connection to @hostport, closing stale ones on the way. */
static struct conn *take_idle(uv_loop_t *loop, const char *hostport)
{
	uint64_t now = uv_now(loop);
	struct conn **pp = &idle_head;
	while (*pp) {
		struct conn *c = *pp;
		if (now - c->idle_since > IDLE_MS) {
			conn_close(c); /* unlinks itself */
			continue;
		}
		if (strcmp(c->hostport, hostport) == 0) {
			assert(!c->req && !c->closing);
			*pp = c->next_idle;
			c->next_idle = NULL;
			n_idle--;
			uv_ref((uv_handle_t *)&c->tcp);
			return c;
		}
		pp = &c->next_idle;
	}
	return NULL;
}

static void make_idle(struct conn *c)
{
	assert(!c->closing && !c->next_idle && idle_head != c);
	if (n_idle >= MAX_IDLE_PER_LOOP) {
		conn_close(c); /* still busy: it is on no list */
		return;
	}
	c->req = NULL;
	c->in_len = 0;
	c->idle_since = uv_now(c->tcp.loop);
	/* an idle connection must not keep its loop running */
	uv_unref((uv_handle_t *)&c->tcp);
	c->next_idle = idle_head;
	idle_head = c;
	n_idle++;
	assert(n_idle <= MAX_IDLE_PER_LOOP);
}

/* ---- requests ----------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
	struct rp_http_req *r = h->data;
	free(r->out);
	free(r);
}

static void req_release(struct rp_http_req *r)
{
	if (r->closing)
		return;
	assert(!r->conn);
	r->closing = 1;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

/* Finish @r; @reuse: its connection may carry further requests. */
static void finish(struct rp_http_req *r, int err, const struct rp_http_response *res, int reuse)
{
	struct conn *c = r->conn;
	assert(!c || c->req == r);
	r->conn = NULL;
	if (c) {
		if (reuse)
			make_idle(c);
		else
			conn_close(c);
	}
	if (!r->done) {
		r->done = 1;
		if (r->cb)
			r->cb(r->arg, err, res);
	}
	req_release(r);
}

void rp_http_cancel(struct rp_http_req *r)
{
	r->cb = NULL;
	finish(r, 0, NULL, 0);
}

const char *rp_http_strerror(int err)
{
	switch (err) {
	case RP_HTTP_OK: return "ok";
	case RP_HTTP_ERR_INVALID: return "invalid address or target";
	case RP_HTTP_ERR_NOMEM: return "out of memory";
	case RP_HTTP_ERR_CONNECT: return "connect failed";
	case RP_HTTP_ERR_LINK: return "connection lost";
	case RP_HTTP_ERR_TIMEOUT: return "timed out";
	case RP_HTTP_ERR_BAD_RESPONSE: return "bad response";
	}
	return "unknown error";
}

/* Fail @r with @err once sent; before that nothing reached the server. */
static void fail(struct rp_http_req *r, int err)
{
	finish(r, r->sent ? err : RP_HTTP_ERR_CONNECT, NULL, 0);
}

static void on_timeout(uv_timer_t *t)
{
	fail(t->data, RP_HTTP_ERR_TIMEOUT);
}

/* Copy the value of header @name (case-insensitive) into @out. */
static void header_value(const char *head, size_t head_len, const char *name, char *out,
			 size_t outlen)
{
	size_t nlen = strlen(name);
	out[0] = '\0';
	for (const char *p = head; p && p < head + head_len;) {
		const char *eol = memmem(p, (size_t)(head + head_len - p), "\r\n", 2);
		if (!eol)
			break;
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			size_t vlen = (size_t)(eol - v) < outlen - 1 ? (size_t)(eol - v)
								     : outlen - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return;
		}
		p = eol + 2;
	}
}

/* 1 when the comma-separated @v (@len bytes) is exactly one token @tok. */
static int value_is(const char *v, size_t len, const char *tok)
{
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	return len == strlen(tok) && strncasecmp(v, tok, len) == 0;
}

/* The framing of the head c->in[0..head_len) (RFC 9112 6.1, 6.3): chunked
 * wins over Content-Length (and the connection is then not reused);
 * differing or malformed Content-Length values, or a transfer coding other
 * than chunked, are an error (-1). */
static int read_framing(struct conn *c, size_t head_len)
{
	unsigned ncl = 0, te = 0;
	c->length = SIZE_MAX;
	const char *end = c->in + head_len;
	for (const char *p = memmem(c->in, head_len, "\r\n", 2) + 2; p < end;) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon)
			return -1; /* obs-fold or garbage */
		const char *v = colon + 1;
		size_t vlen = (size_t)(eol - v), nlen = (size_t)(colon - p);
		if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
			if (te++ || !value_is(v, vlen, "chunked"))
				return -1;
		} else if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
			while (vlen && (*v == ' ' || *v == '\t'))
				v++, vlen--;
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			size_t n = 0;
			if (vlen == 0 || vlen > 18)
				return -1;
			for (size_t i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9')
					return -1;
				n = n * 10 + (size_t)(v[i] - '0');
			}
			if (ncl++ && n != c->length)
				return -1;
			c->length = n;
		}
		p = eol + 2;
	}
	c->chunked = te > 0;
	if (c->chunked) {
		c->no_reuse = ncl > 0;
		c->length = SIZE_MAX;
		memset(&c->dec, 0, sizeof c->dec);
		c->dec.consume_trailer = 1;
		c->dec_end = head_len + 2;
	}
	return 0;
}

/* Decode what arrived of a chunked body in place. 1 complete (extra bytes
 * after it forbid reuse), 0 more to come, -1 malformed. */
static int decode_chunked(struct conn *c)
{
	size_t sz = c->in_len - c->dec_end;
	if (sz == 0)
		return 0;
	ssize_t rv = phr_decode_chunked(&c->dec, c->in + c->dec_end, &sz);
	if (rv == -1)
		return -1;
	c->in_len = c->dec_end + sz;
	c->dec_end = c->in_len;
	c->in[c->in_len] = '\0';
	if (rv == -2)
		return 0;
	if (rv > 0)
		c->no_reuse = 1;
	return 1;
}

/* The status line of the head @in (RFC 9112 4): "HTTP/1." DIGIT SP 3DIGIT,
 * then SP or the end of the line. 0 or -1. (sscanf("%d") used to skip CR and
 * LF and read the status from the next lines or the body, found by
 * tests/fuzz/fuzz_http_response.) */
static int parse_status_line(const char *in, size_t head_len, int *minor, int *status)
{
	if (head_len < 14 || memcmp(in, "HTTP/1.", 7) != 0 || in[7] < '0' || in[7] > '9' ||
	    in[8] != ' ' || (in[12] != ' ' && in[12] != '\r'))
		return -1;
	*status = 0;
	for (int i = 9; i < 12; i++) {
		if (in[i] < '0' || in[i] > '9')
			return -1;
		*status = *status * 10 + (in[i] - '0');
	}
	*minor = in[7] - '0';
	return 0;
}

/* Try to parse a complete response from c->in; 1 when r is finished. */
static int try_parse(struct rp_http_req *r, struct conn *c, int eof)
{
	int minor, status;
	if (!c->head_len) {
		char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
		if (!end)
			return 0;
		size_t head_len = (size_t)(end - c->in) + 2;
		if (parse_status_line(c->in, head_len, &minor, &status) != 0 || status < 100 ||
		    status > 599 || status == 101 || read_framing(c, head_len) != 0) {
			finish(r, RP_HTTP_ERR_BAD_RESPONSE, NULL, 0);
			return 1;
		}
		if (status < 200) { /* informational: drop it, wait for the final head */
			size_t skip = head_len + 2;
			memmove(c->in, c->in + skip, c->in_len - skip + 1);
			c->in_len -= skip;
			return try_parse(r, c, eof);
		}
		c->head_len = head_len;
		c->minor = minor;
		c->status = status;
	}
	size_t head_len = c->head_len;
	minor = c->minor;
	status = c->status; /* never re-read: the body may have changed what follows */
	char ctype[128], etag[64], retry[32], connection[32];
	header_value(c->in, head_len, "connection", connection, sizeof connection);
	size_t body_off = head_len + 2, body_len;
	int reuse = minor == 1 && strcasecmp(connection, "close") != 0 && !c->no_reuse;
	if (c->chunked) {
		int rv = decode_chunked(c);
		if (rv < 0) {
			finish(r, RP_HTTP_ERR_BAD_RESPONSE, NULL, 0);
			return 1;
		}
		if (rv == 0) {
			if (eof)
				finish(r, RP_HTTP_ERR_LINK, NULL, 0);
			return eof;
		}
		reuse = reuse && !c->no_reuse;
		body_len = c->in_len - body_off;
	} else if (c->length != SIZE_MAX) {
		body_len = c->in_len - body_off;
		if (body_len < c->length)
			return 0;
		reuse = reuse && body_len == c->length; /* nothing unexpected after it */
		body_len = c->length;
	} else if (!eof) {
		return 0; /* body delimited by connection close */
	} else {
		reuse = 0;
		body_len = c->in_len - body_off;
	}
	header_value(c->in, head_len, "content-type", ctype, sizeof ctype);
	header_value(c->in, head_len, "etag", etag, sizeof etag);
	header_value(c->in, head_len, "retry-after", retry, sizeof retry);
	struct rp_http_response res = {status, ctype, etag, retry, c->in + body_off, body_len};
	/* the callback reads c->in: detach the connection only afterwards */
	r->conn = NULL;
	if (!r->done) {
		r->done = 1;
		if (r->cb)
			r->cb(r->arg, 0, &res);
	}
	req_release(r);
	if (reuse && !c->closing)
		make_idle(c);
	else
		conn_close(c);
	return 1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)suggested;
	if (c->in_cap - c->in_len < 16384) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
		char *p = cap <= RP_CLIENT_MAX_RESPONSE + 65536 ? realloc(c->in, cap) : NULL;
		if (!p) {
			buf->base = NULL;
			buf->len = 0;
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	buf->base = c->in + c->in_len;
	buf->len = c->in_cap - c->in_len - 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	struct rp_http_req *r = c->req;
	(void)buf;
	if (!r) { /* idle: the server closed it or sent garbage */
		if (nread != 0)
			conn_close(c);
		return;
	}
	assert(r->conn == c || r->done);
	if (nread > 0) {
		c->in_len += (size_t)nread;
		c->in[c->in_len] = '\0';
		try_parse(r, c, 0);
	} else if (nread < 0) {
		if (!(nread == UV_EOF && c->in && try_parse(r, c, 1)))
			fail(r, nread == UV_ENOBUFS ? RP_HTTP_ERR_BAD_RESPONSE : RP_HTTP_ERR_LINK);
	}
}

static void on_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;
	if (status != 0 && c->req && !c->req->done)
		fail(c->req, RP_HTTP_ERR_LINK);
}

static void send_request(struct rp_http_req *r)
{
	struct conn *c = r->conn;
	assert(c && c->req == r && !r->sent && !r->done);
	uv_buf_t b = uv_buf_init(r->out, (unsigned)r->out_len);
	r->sent = 1;
	c->write.data = c;
	c->in_len = 0;
	c->head_len = 0;
	c->chunked = 0;
	c->no_reuse = 0;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
		fail(r, RP_HTTP_ERR_LINK);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	struct rp_http_req *r = c->req;
	if (!r || c->closing)
		return;
	if (status != 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		fail(r, RP_HTTP_ERR_CONNECT);
		return;
	}
	send_request(r);
}

int rp_http_request(uv_loop_t *loop, const char *hostport, const char *method, const char *target,
		    const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
		    rp_http_cb cb, void *arg, struct rp_http_req **out)
{
	struct sockaddr_storage sa;
	if (strlen(hostport) >= sizeof(((struct conn *)0)->hostport) ||
	    rp_parse_hostport(hostport, &sa) != 0)
		return RP_HTTP_ERR_INVALID;
	for (const char *t = target; *t; t++) /* never a byte that ends the request line */
		if ((unsigned char)*t <= ' ' || *t == 0x7f)
			return RP_HTTP_ERR_INVALID;
	struct rp_http_req *r = calloc(1, sizeof *r);
	if (!r)
		return RP_HTTP_ERR_NOMEM;
	size_t cap = strlen(method) + strlen(target) + strlen(hostport) + strlen(headers) + 128 +
		     body_len;
	r->out = malloc(cap);
	if (!r->out) {
		free(r);
		return RP_HTTP_ERR_NOMEM;
	}
	int n = snprintf(r->out, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n",
			 method, target, hostport, headers, body_len);
	if (body_len)
		memcpy(r->out + n, body, body_len);
	r->out_len = (size_t)n + body_len;
	r->loop = loop;
	r->cb = cb;
	r->arg = arg;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
	if (out)
		*out = r;
	struct conn *c = take_idle(loop, hostport);
	if (c) {
		c->req = r;
		r->conn = c;
		send_request(r);
		return RP_HTTP_OK;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		r->cb = NULL;
		req_release(r);
		return RP_HTTP_ERR_NOMEM;
	}
	snprintf(c->hostport, sizeof c->hostport, "%s", hostport);
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c->connect.data = c;
	c->req = r;
	r->conn = c;
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&sa, on_connected) != 0) {
		r->cb = NULL;
		finish(r, 0, NULL, 0);
		return RP_HTTP_ERR_CONNECT;
	}
	return RP_HTTP_OK;
}
