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
 * RP_CLIENT_MAX_RESPONSE or a request's own limit (rp_http_set_max_body),
 * checked before buffering: a Content-Length above it fails as soon as the
 * head arrives, a chunked or close-delimited body as soon as it grows past
 * it; a head is at most RP_CLIENT_MAX_HEAD bytes. Every failure leaves its
 * reason in rp_http_last_error() (what arrived, what was wrong).
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
 *    callback.
 *
 * TLS (client.h): a connection made for a TLS request has c->ssl with two
 * memory BIOs: what arrives is written into the read BIO, and what OpenSSL
 * produces is drained from the write BIO into uv_write()s of their own
 * (struct tls_write). The request is encrypted only once the handshake
 * completed and the server's identity checked out (c->verified), so that a
 * refused server never sees a byte of it; plaintext is read into c->in as
 * before, so framing and reuse are the same for both. */
#include "client.h"

#include <assert.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "raftplane/log.h"

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
	/* TLS: NULL/0 for plain connections */
	SSL *ssl;
	struct rp_tls *tls;      /* the configuration's context owner (counters) */
	int verified;            /* handshake done and the server's identity checked */
	uint64_t server_id;      /* the verified RP_PEER_SERVER id, or 0 */
	char *raw;               /* ciphertext read buffer, RAW_LEN bytes */
	int got_answer;          /* plaintext of the current answer arrived */
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
	struct rp_tls *tls;       /* NULL: plain */
	const char *trust_domain; /* with tls */
	enum rp_peer_kind kind;   /* required of the server, with tls */
	uint64_t expect;          /* the server id required, or 0 */
	int log_tls;              /* log a TLS refusal */
	uv_timer_t timer;
	struct conn *conn;
	char *out;
	size_t out_len;
	int sent, done, closing;
	rp_http_cb cb;
	void *arg;
	unsigned timeout_ms;
	size_t max_body; /* body limit, at most RP_CLIENT_MAX_RESPONSE */
};

/* Idle connections, most recently used first. One list per thread: a loop
 * is driven by one thread, so connections never cross loops. */
static _Thread_local struct conn *idle_head;
static _Thread_local unsigned n_idle;

#define RAW_LEN 16384

/* The loop whose rp_http_request()s use TLS (rp_http_set_tls), one per
 * thread, and the reason of the last RP_HTTP_ERR_TLS. */
static _Thread_local uv_loop_t *tls_loop;
static _Thread_local struct rp_http_tls tls_default;
static _Thread_local char tls_error[320];
/* Why this thread's last request failed; why_set: a failure path wrote it. */
static _Thread_local char last_error[240];
static _Thread_local int why_set;

void rp_http_set_tls(uv_loop_t *loop, const struct rp_http_tls *cfg)
{
	if (cfg == NULL || cfg->tls == NULL) {
		tls_loop = NULL;
		memset(&tls_default, 0, sizeof tls_default);
		return;
	}
	tls_loop = loop;
	tls_default = *cfg;
}

const char *rp_http_tls_error(void)
{
	return tls_error;
}

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
	if (c->ssl)
		SSL_free(c->ssl); /* frees its BIOs */
	free(c->raw);
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
static struct conn *take_idle(uv_loop_t *loop, const char *hostport, const struct rp_http_req *r)
{
	uint64_t now = uv_now(loop);
	struct conn **pp = &idle_head;
	while (*pp) {
		struct conn *c = *pp;
		if (now - c->idle_since > IDLE_MS) {
			conn_close(c); /* unlinks itself */
			continue;
		}
		if (strcmp(c->hostport, hostport) == 0 && c->tls == r->tls &&
		    (!r->expect || c->server_id == r->expect)) {
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
	if (err && !why_set)
		snprintf(last_error, sizeof last_error, "%s", rp_http_strerror(err));
	why_set = 0;
	if (!r->done) {
		r->done = 1;
		if (r->cb)
			r->cb(r->arg, err, res);
	}
	req_release(r);
}

/* Fail @r with @err and the reason @fmt. */
__attribute__((format(printf, 3, 4))) static void fail_why(struct rp_http_req *r, int err,
							   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	why_set = 1;
	finish(r, err, NULL, 0);
}

const char *rp_http_last_error(void)
{
	return last_error;
}

void rp_http_set_max_body(struct rp_http_req *r, size_t max)
{
	r->max_body = max && max < RP_CLIENT_MAX_RESPONSE ? max : RP_CLIENT_MAX_RESPONSE;
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
	case RP_HTTP_ERR_TLS: return "TLS refused";
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
	struct rp_http_req *r = t->data;
	struct conn *c = r->conn;
	if (!r->sent || !c) {
		fail(r, RP_HTTP_ERR_TIMEOUT);
	} else if (!c->in_len) {
		fail_why(r, RP_HTTP_ERR_TIMEOUT, "no answer within %u ms", r->timeout_ms);
	} else if (!c->head_len) {
		fail_why(r, RP_HTTP_ERR_TIMEOUT, "answer stalled in its head (%zu bytes) for %u ms",
			 c->in_len, r->timeout_ms);
	} else {
		fail_why(r, RP_HTTP_ERR_TIMEOUT,
			 "answer stalled in its body (%zu bytes received) for %u ms",
			 c->in_len - c->head_len - 2, r->timeout_ms);
	}
}

/* Copy the value of header @name (case-insensitive) into @out. */
static int header_value(const char *head, size_t head_len, const char *name, char *out,
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
			return 1;
		}
		p = eol + 2;
	}
	return 0;
}

int rp_http_header(const struct rp_http_response *res, const char *name, char *out, size_t outlen)
{
	return header_value(res->head, res->head_len, name, out, outlen);
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
		if (!end && c->in_len > RP_CLIENT_MAX_HEAD) {
			fail_why(r, RP_HTTP_ERR_BAD_RESPONSE,
				 "no HTTP response head within %d bytes", RP_CLIENT_MAX_HEAD);
			return 1;
		}
		if (!end && eof && c->in_len) {
			fail_why(r, RP_HTTP_ERR_LINK,
				 "connection closed after %zu bytes of a response head", c->in_len);
			return 1;
		}
		if (!end)
			return 0;
		size_t head_len = (size_t)(end - c->in) + 2;
		if (parse_status_line(c->in, head_len, &minor, &status) != 0 || status < 100 ||
		    status > 599 || status == 101) {
			fail_why(r, RP_HTTP_ERR_BAD_RESPONSE, "not an HTTP/1.x status line");
			return 1;
		}
		if (read_framing(c, head_len) != 0) {
			fail_why(r, RP_HTTP_ERR_BAD_RESPONSE,
				 "bad framing headers (Content-Length, Transfer-Encoding)");
			return 1;
		}
		if (c->length != SIZE_MAX && c->length > r->max_body) {
			fail_why(r, RP_HTTP_ERR_BAD_RESPONSE,
				 "Content-Length %zu over the limit of %zu bytes", c->length,
				 r->max_body);
			return 1;
		}
		if (status < 200) { /* informational: drop it, wait for the final head */
			size_t skip = head_len + 2;
			memmove(c->in, c->in + skip, c->in_len - skip + 1);
			c->in_len -= skip;
			return try_parse(r, c, eof);
		}
		if (status == 204 || status == 304) { /* never a body (RFC 9112 6.3) */
			c->chunked = 0;
			c->length = 0;
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
			fail_why(r, RP_HTTP_ERR_BAD_RESPONSE, "malformed chunked encoding");
			return 1;
		}
		if (c->in_len - body_off > r->max_body) {
			fail_why(r, RP_HTTP_ERR_BAD_RESPONSE,
				 "chunked body over the limit of %zu bytes", r->max_body);
			return 1;
		}
		if (rv == 0) {
			if (eof)
				fail_why(r, RP_HTTP_ERR_LINK,
					 "connection closed in a chunked body (%zu bytes decoded)",
					 c->in_len - body_off);
			return eof;
		}
		reuse = reuse && !c->no_reuse;
		body_len = c->in_len - body_off;
	} else if (c->length != SIZE_MAX) {
		body_len = c->in_len - body_off;
		if (body_len < c->length && eof) {
			fail_why(r, RP_HTTP_ERR_LINK,
				 "connection closed after %zu of %zu body bytes", body_len,
				 c->length);
			return 1;
		}
		if (body_len < c->length)
			return 0;
		reuse = reuse && body_len == c->length; /* nothing unexpected after it */
		body_len = c->length;
	} else if (c->in_len - body_off > r->max_body) {
		fail_why(r, RP_HTTP_ERR_BAD_RESPONSE, "body over the limit of %zu bytes",
			 r->max_body);
		return 1;
	} else if (!eof) {
		return 0; /* body delimited by connection close */
	} else {
		reuse = 0;
		body_len = c->in_len - body_off;
	}
	header_value(c->in, head_len, "content-type", ctype, sizeof ctype);
	header_value(c->in, head_len, "etag", etag, sizeof etag);
	header_value(c->in, head_len, "retry-after", retry, sizeof retry);
	struct rp_http_response res = {status,           ctype,    etag,  retry,
				       c->in + body_off, body_len, c->in, head_len};
	/* Idle before the callback (as finish() does), so that a request the
	 * callback makes to the same server (a subscription's next poll) takes
	 * this connection: with TLS a new one costs a full handshake. c->in stays
	 * valid during the callback: a request that takes @c only writes (reads
	 * into c->in start once the callback returned) and a close frees it in
	 * the close callback. A server that already closed (eof) is not reused. */
	r->conn = NULL;
	if (reuse && !eof && !c->closing)
		make_idle(c);
	else
		conn_close(c);
	if (!r->done) {
		r->done = 1;
		if (r->cb)
			r->cb(r->arg, 0, &res);
	}
	req_release(r);
	return 1;
}

/* Room for at least 16 KiB more in c->in (plaintext), within the bound:
 * 0, or -1 when over it or out of memory. */
static int in_reserve(struct conn *c)
{
	if (c->in_cap - c->in_len < 16384) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
		char *p = cap <= RP_CLIENT_MAX_RESPONSE + 65536 ? realloc(c->in, cap) : NULL;
		if (!p)
			return -1;
		c->in = p;
		c->in_cap = cap;
	}
	return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)suggested;
	if (c->ssl) { /* ciphertext: decrypted into c->in by tls_read */
		buf->base = c->raw;
		buf->len = RAW_LEN;
		return;
	}
	if (in_reserve(c) != 0) {
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	buf->base = c->in + c->in_len;
	buf->len = c->in_cap - c->in_len - 1;
}

/* ---- TLS ------------------------------------------------------------------- */

struct tls_write {
	uv_write_t w;
	struct conn *c;
	char data[];
};

static void on_tls_written(uv_write_t *w, int status)
{
	struct tls_write *tw = (struct tls_write *)w;
	struct conn *c = tw->c;
	free(tw);
	if (status != 0 && !c->closing && c->req && !c->req->done)
		fail(c->req, RP_HTTP_ERR_LINK);
}

/* Send what OpenSSL wrote into the write BIO. 0, or -1 (out of memory, or
 * the write could not start). */
static int tls_flush(struct conn *c)
{
	BIO *wb = SSL_get_wbio(c->ssl);
	size_t n;
	while ((n = BIO_ctrl_pending(wb)) > 0) {
		struct tls_write *tw = malloc(sizeof *tw + n);
		if (!tw)
			return -1;
		int got = BIO_read(wb, tw->data, (int)n);
		if (got <= 0) {
			free(tw);
			return -1;
		}
		tw->c = c;
		uv_buf_t b = uv_buf_init(tw->data, (unsigned)got);
		if (uv_write(&tw->w, (uv_stream_t *)&c->tcp, &b, 1, on_tls_written) != 0) {
			free(tw);
			return -1;
		}
	}
	return 0;
}

/* @r failed in TLS before its request was processed: say why (@fmt). */
__attribute__((format(printf, 2, 3))) static void fail_tls(struct rp_http_req *r, const char *fmt,
							   ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(tls_error, sizeof tls_error, fmt, ap);
	va_end(ap);
	static _Thread_local uint64_t last_ms;
	uint64_t now = uv_now(r->loop);
	if (r->log_tls && (last_ms == 0 || now - last_ms >= 1000)) {
		rp_log_warn("HTTPS request refused: %s", tls_error);
		last_ms = now;
	}
	finish(r, RP_HTTP_ERR_TLS, NULL, 0);
}

static void handshake_failed(struct rp_http_req *r, struct conn *c)
{
	enum rp_tls_fail f = rp_tls_handshake_failed(c->tls, c->ssl);
	long v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK)
		fail_tls(r, "TLS handshake with %s failed: %s (%s)", c->hostport,
			 rp_tls_fail_names[f], X509_verify_cert_error_string(v));
	else
		fail_tls(r, "TLS handshake with %s failed: %s", c->hostport, rp_tls_fail_names[f]);
}

/* The verified server must be who @r requires. 0, or -1 (counted). */
static int check_server(struct rp_http_req *r, struct conn *c)
{
	struct rp_peer_id id;
	rp_tls_peer_identity(c->ssl, r->trust_domain, &id);
	if (id.kind == r->kind && (!r->expect || id.server == r->expect)) {
		c->server_id = id.kind == RP_PEER_SERVER ? id.server : 0;
		return 0;
	}
	char got[400];
	rp_peer_id_str(&id, got, sizeof got);
	rp_tls_count(c->tls, RP_TLS_FAIL_IDENTITY);
	if (r->expect)
		fail_tls(r, "%s presented %s, not spiffe://%s/server/%llu", c->hostport, got,
			 r->trust_domain, (unsigned long long)r->expect);
	else
		fail_tls(r, "%s presented %s, not a raftplane %s certificate of %s", c->hostport,
			 got, r->kind == RP_PEER_SERVER ? "server" : "node", r->trust_domain);
	return -1;
}

static void send_request(struct rp_http_req *r);

/* Continue the handshake of @c for its request. */
static void tls_handshake(struct conn *c)
{
	struct rp_http_req *r = c->req;
	ERR_clear_error();
	int rv = SSL_do_handshake(c->ssl);
	if (tls_flush(c) != 0) {
		fail(r, RP_HTTP_ERR_LINK); /* not sent yet: CONNECT */
		return;
	}
	if (rv == 1) {
		if (check_server(r, c) != 0)
			return;
		c->verified = 1;
		send_request(r);
		return;
	}
	if (SSL_get_error(c->ssl, rv) == SSL_ERROR_WANT_READ)
		return;
	handshake_failed(r, c);
}

/* 1 when the error queue holds an alert the server sent (it refused the
 * handshake). */
static int peer_alerted(void)
{
	unsigned long e;
	while ((e = ERR_get_error()) != 0) {
		int reason = ERR_GET_REASON(e);
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ((reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) ||
		     reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)) {
			ERR_clear_error();
			return 1;
		}
	}
	return 0;
}

/* Decrypt what the read BIO holds into c->in. 1 data added, 0 none, -1
 * the connection failed (set *alert when the server sent a fatal alert),
 * -2 over the size limit, -3 the server closed TLS (close_notify). */
static int tls_read(struct conn *c, int *alert)
{
	int added = 0;
	for (;;) {
		if (in_reserve(c) != 0)
			return -2;
		ERR_clear_error();
		int n = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len - 1));
		if (n > 0) {
			c->in_len += (size_t)n;
			c->in[c->in_len] = '\0';
			added = 1;
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return added;
		if (e == SSL_ERROR_ZERO_RETURN)
			return added ? 1 : -3;
		*alert = peer_alerted();
		return -1;
	}
}

static void on_read_tls(struct conn *c, ssize_t nread)
{
	struct rp_http_req *r = c->req;
	if (nread > 0 && BIO_write(SSL_get_rbio(c->ssl), c->raw, (int)nread) != (int)nread) {
		if (r)
			fail(r, RP_HTTP_ERR_LINK);
		else
			conn_close(c);
		return;
	}
	if (!r) { /* idle: anything but handshake messages ends it */
		int alert = 0;
		if (nread < 0 || tls_read(c, &alert) != 0)
			conn_close(c);
		return;
	}
	if (!c->verified) {
		if (nread < 0) {
			rp_tls_count(c->tls, RP_TLS_FAIL_HANDSHAKE);
			fail_tls(r, "%s closed the connection during the TLS handshake",
				 c->hostport);
		} else if (nread > 0) {
			tls_handshake(c);
		}
		return;
	}
	if (nread == 0)
		return;
	int alert = 0, rv = nread > 0 ? tls_read(c, &alert) : -3;
	if (rv == 1) {
		c->got_answer = 1;
		try_parse(r, c, 0);
	} else if (rv == -2) {
		fail(r, RP_HTTP_ERR_BAD_RESPONSE);
	} else if (rv == -1 && alert && !c->got_answer) {
		/* TLS 1.3: the server refused our certificate after our Finished */
		rp_tls_count(c->tls, RP_TLS_FAIL_HANDSHAKE);
		fail_tls(r, "%s refused our TLS certificate", c->hostport);
	} else if (rv < 0) {
		if (!(rv == -3 && c->in && try_parse(r, c, 1)))
			fail(r, RP_HTTP_ERR_LINK);
	}
}

/* ---- I/O ------------------------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	struct rp_http_req *r = c->req;
	(void)buf;
	if (c->closing)
		return;
	if (c->ssl) {
		on_read_tls(c, nread);
		return;
	}
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
	assert(!c->ssl || c->verified);
	uv_buf_t b = uv_buf_init(r->out, (unsigned)r->out_len);
	r->sent = 1;
	c->write.data = c;
	c->in_len = 0;
	c->head_len = 0;
	c->chunked = 0;
	c->no_reuse = 0;
	c->got_answer = 0;
	if (c->ssl) { /* memory BIO: SSL_write takes it all at once */
		ERR_clear_error();
		if (SSL_write(c->ssl, r->out, (int)r->out_len) != (int)r->out_len ||
		    tls_flush(c) != 0)
			fail(r, RP_HTTP_ERR_LINK);
		return;
	}
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
		fail(r, RP_HTTP_ERR_LINK);
}

/* A TLS client object for @c with memory BIOs. 0 or -1. */
static int tls_start(struct conn *c)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	c->raw = malloc(RAW_LEN);
	c->ssl = c->raw ? SSL_new(rp_tls_ctx(c->tls)) : NULL;
	if (!c->ssl)
		return -1;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	if (!rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		return -1;
	}
	BIO_set_mem_eof_return(rb, -1); /* empty: "retry", not end of file */
	SSL_set_bio(c->ssl, rb, wb);
	SSL_set_connect_state(c->ssl);
	SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
	return 0;
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
	if (c->tls) {
		if (tls_start(c) != 0) {
			fail(r, RP_HTTP_ERR_CONNECT);
			return;
		}
		tls_handshake(c);
		return;
	}
	send_request(r);
}

int rp_http_request(uv_loop_t *loop, const char *hostport, const char *method, const char *target,
		    const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
		    rp_http_cb cb, void *arg, struct rp_http_req **out)
{
	const struct rp_http_tls *tls = tls_loop == loop ? &tls_default : NULL;
	return rp_http_request_tls(tls, loop, hostport, method, target, headers, body, body_len,
				   timeout_ms, cb, arg, out);
}

int rp_http_request_tls(const struct rp_http_tls *tls, uv_loop_t *loop, const char *hostport,
			const char *method, const char *target, const char *headers,
			const void *body, size_t body_len, unsigned timeout_ms, rp_http_cb cb,
			void *arg, struct rp_http_req **out)
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
	r->timeout_ms = timeout_ms;
	r->max_body = RP_CLIENT_MAX_RESPONSE;
	if (tls && tls->tls) {
		r->tls = tls->tls;
		r->trust_domain = tls->trust_domain ? tls->trust_domain
						    : RP_TLS_DEFAULT_TRUST_DOMAIN;
		r->kind = tls->kind;
		r->expect = tls->expect ? tls->expect(tls->expect_arg, hostport) : 0;
		r->log_tls = tls->log;
	}
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
	if (out)
		*out = r;
	struct conn *c = take_idle(loop, hostport, r);
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
	c->tls = r->tls;
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
