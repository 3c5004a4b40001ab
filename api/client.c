/* A small HTTP/1.1 client on libuv.
 *
 * States: connecting -> writing -> reading -> done. The request owns a
 * uv_tcp_t and a uv_timer_t; it is freed after both handles are closed.
 * The callback runs at most once; after rp_http_cancel() it never runs. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "raftplane/err.h"

struct rp_http_req {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t connect;
	uv_write_t write;
	char *out;
	size_t out_len;
	char *in;
	size_t in_len, in_cap;
	int sent; /* the request bytes may have reached the server */
	int done;
	int closing;
	int handles_open;
	rp_http_cb cb;
	void *arg;
};

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
	if (*end || end == colon + 1 || port < 1 || port > 65535)
		return -1;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return -1;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct rp_http_req *r = h->data;
	if (--r->handles_open == 0) {
		free(r->out);
		free(r->in);
		free(r);
	}
}

static void shutdown_req(struct rp_http_req *r)
{
	if (r->closing)
		return;
	r->closing = 1;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->tcp, on_handle_closed);
}

static void finish(struct rp_http_req *r, int err, const struct rp_http_response *res)
{
	if (!r->done) {
		r->done = 1;
		if (r->cb)
			r->cb(r->arg, err, res);
	}
	shutdown_req(r);
}

void rp_http_cancel(struct rp_http_req *r)
{
	r->cb = NULL;
	r->done = 1;
	shutdown_req(r);
}

static void fail(struct rp_http_req *r)
{
	finish(r, r->sent ? RP_ERR_UNKNOWN_OUTCOME : RP_ERR_NO_LEADER, NULL);
}

static void on_timeout(uv_timer_t *t)
{
	fail(t->data);
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
			size_t vlen = (size_t)(eol - v) < outlen - 1 ? (size_t)(eol - v) : outlen - 1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return;
		}
		p = eol + 2;
	}
}

/* Try to parse a complete response from r->in; 1 when finished. */
static int try_parse(struct rp_http_req *r, int eof)
{
	char *end = memmem(r->in, r->in_len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t head_len = (size_t)(end - r->in) + 2;
	int minor, status;
	if (sscanf(r->in, "HTTP/1.%d %d", &minor, &status) != 2) {
		finish(r, RP_ERR_UNKNOWN_OUTCOME, NULL);
		return 1;
	}
	char clen[32], ctype[128], etag[64], retry[32];
	header_value(r->in, head_len, "content-length", clen, sizeof clen);
	size_t body_off = head_len + 2, body_len = r->in_len - body_off;
	if (clen[0]) {
		size_t want = strtoull(clen, NULL, 10);
		if (body_len < want)
			return 0;
		body_len = want;
	} else if (!eof) {
		return 0; /* body delimited by connection close */
	}
	header_value(r->in, head_len, "content-type", ctype, sizeof ctype);
	header_value(r->in, head_len, "etag", etag, sizeof etag);
	header_value(r->in, head_len, "retry-after", retry, sizeof retry);
	struct rp_http_response res = {status, ctype, etag, retry, r->in + body_off, body_len};
	finish(r, 0, &res);
	return 1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rp_http_req *r = h->data;
	(void)suggested;
	if (r->in_cap - r->in_len < 16384) {
		size_t cap = r->in_cap ? r->in_cap * 2 : 32768;
		char *p = cap <= RP_CLIENT_MAX_RESPONSE + 65536 ? realloc(r->in, cap) : NULL;
		if (!p) {
			buf->base = NULL;
			buf->len = 0;
			return;
		}
		r->in = p;
		r->in_cap = cap;
	}
	buf->base = r->in + r->in_len;
	buf->len = r->in_cap - r->in_len - 1;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_http_req *r = s->data;
	(void)buf;
	if (r->done)
		return;
	if (nread > 0) {
		r->in_len += (size_t)nread;
		r->in[r->in_len] = '\0';
		try_parse(r, 0);
	} else if (nread < 0) {
		if (!(nread == UV_EOF && r->in && try_parse(r, 1)))
			fail(r);
	}
}

static void on_written(uv_write_t *w, int status)
{
	struct rp_http_req *r = w->data;
	if (status != 0 && !r->done)
		fail(r);
}

static void on_connected(uv_connect_t *c, int status)
{
	struct rp_http_req *r = c->data;
	if (r->done)
		return;
	if (status != 0) {
		fail(r);
		return;
	}
	uv_buf_t b = uv_buf_init(r->out, (unsigned)r->out_len);
	r->sent = 1;
	r->write.data = r;
	if (uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_written) != 0 ||
	    uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read) != 0)
		fail(r);
}

int rp_http_request(uv_loop_t *loop, const char *hostport, const char *method, const char *target,
		    const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
		    rp_http_cb cb, void *arg, struct rp_http_req **out)
{
	struct sockaddr_storage sa;
	if (rp_parse_hostport(hostport, &sa) != 0)
		return RP_ERR_INVALID;
	struct rp_http_req *r = calloc(1, sizeof *r);
	if (!r)
		return RP_ERR_NOMEM;
	size_t cap = strlen(method) + strlen(target) + strlen(hostport) + strlen(headers) + 128 +
		     body_len;
	r->out = malloc(cap);
	if (!r->out) {
		free(r);
		return RP_ERR_NOMEM;
	}
	int n = snprintf(r->out, cap,
			 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
			 method, target, hostport, headers, body_len);
	if (body_len)
		memcpy(r->out + n, body, body_len);
	r->out_len = (size_t)n + body_len;
	r->cb = cb;
	r->arg = arg;
	uv_tcp_init(loop, &r->tcp);
	uv_timer_init(loop, &r->timer);
	r->tcp.data = r->timer.data = r->connect.data = r;
	r->handles_open = 2;
	uv_tcp_nodelay(&r->tcp, 1);
	uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
	if (uv_tcp_connect(&r->connect, &r->tcp, (struct sockaddr *)&sa, on_connected) != 0) {
		r->cb = NULL;
		shutdown_req(r);
		return RP_ERR_NO_LEADER;
	}
	if (out)
		*out = r;
	return 0;
}
