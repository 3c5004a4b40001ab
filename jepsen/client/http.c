/* A blocking HTTP/1.1 client: one request per connection, a deadline for
 * the whole exchange, and an exact account of whether anything was sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jc.h"

#define MAX_RESPONSE (64u << 20)

static int parse_hostport(const char *hp, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(hp, ':');
	if (!colon || (size_t)(colon - hp) >= sizeof host)
		return -1;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Wait for @events on @fd until @deadline (jc_mono_ms). 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - jc_mono_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		return 1;
	}
}

static const char *find_header(const char *head, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");
	while (p && p[2] != '\r' && p[2]) {
		const char *line = p + 2;
		const char *eol = strstr(line, "\r\n");
		if (!eol)
			break;
		if ((size_t)(eol - line) > nl && line[nl] == ':' && !strncasecmp(line, name, nl)) {
			const char *v = line + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *e = eol;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*len = (size_t)(e - v);
			return v;
		}
		p = eol;
	}
	return NULL;
}

/* Decode a chunked body in place. Returns 1 complete, 0 incomplete, -1 bad.
 * The buffer is only modified once the whole body is known to be there. */
static int dechunk(char *b, size_t len, size_t *out_len)
{
	for (int pass = 0; pass < 2; pass++) {
		size_t r = 0, w = 0;
		for (;;) {
			char *eol = memmem(b + r, len - r, "\r\n", 2);
			if (!eol)
				return 0;
			char *end;
			unsigned long n = strtoul(b + r, &end, 16);
			if (end == b + r)
				return -1;
			r = (size_t)(eol - b) + 2;
			if (n == 0) {
				*out_len = w;
				break;
			}
			if (len - r < n + 2)
				return 0;
			if (pass)
				memmove(b + w, b + r, n);
			w += n;
			r += n + 2;
		}
	}
	return 1;
}

void jc_resp_free(struct jc_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

static void error_code(struct jc_resp *r)
{
	if (r->status < 400 || !r->body)
		return;
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
	const char *c = NULL;
	if (json_is_object(j))
		c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	if (c)
		snprintf(r->code, sizeof r->code, "%s", c);
	json_decref(j);
}

/* Parse @buf (@n bytes, NUL at buf[n]) into @r. 1 complete, 0 incomplete. */
static int parse_response(char *buf, size_t n, int eof, struct jc_resp *r)
{
	char *hend = strstr(buf, "\r\n\r\n");
	if (!hend)
		return 0;
	int st = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1)
		return -1;
	hend[2] = 0; /* terminate the header block after the last CRLF */
	char *body = hend + 4;
	size_t have = n - (size_t)(body - buf);
	size_t hl;
	const char *h;
	int chunked = 0;
	long long cl = -1;
	if ((h = find_header(buf, "transfer-encoding", &hl)) && hl >= 7 &&
	    !strncasecmp(h, "chunked", 7))
		chunked = 1;
	else if ((h = find_header(buf, "content-length", &hl)))
		cl = strtoll(h, NULL, 10);
	size_t blen = have;
	if (chunked) {
		int d = dechunk(body, have, &blen);
		if (d <= 0) {
			hend[2] = '\r';
			return d;
		}
	} else if (cl >= 0) {
		if ((long long)have < cl) {
			hend[2] = '\r';
			return 0;
		}
		blen = (size_t)cl;
	} else if (st != 204 && st != 304 && !eof) {
		hend[2] = '\r';
		return 0;
	}
	r->status = st;
	if ((h = find_header(buf, "etag", &hl))) {
		const char *v = h;
		if (*v == '"')
			v++;
		char *end;
		unsigned long long e = strtoull(v, &end, 10);
		if (end != v) {
			r->has_etag = 1;
			r->etag = e;
		}
	}
	r->body = malloc(blen + 1);
	if (!r->body)
		return -1;
	memcpy(r->body, body, blen);
	r->body[blen] = 0;
	r->body_len = blen;
	error_code(r);
	return 1;
}

int jc_http(const char *hostport, const char *method, const char *path, const char *headers,
	    const char *body, size_t body_len, int timeout_ms, struct jc_resp *r)
{
	memset(r, 0, sizeof *r);
	int64_t deadline = jc_mono_ms() + timeout_ms;
	struct sockaddr_in sa;
	if (parse_hostport(hostport, &sa) != 0) {
		snprintf(r->why, sizeof r->why, "bad address %s", hostport);
		return JC_NOT_SENT;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(r->why, sizeof r->why, "socket: %s", strerror(errno));
		return JC_NOT_SENT;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int rc = JC_NOT_SENT;
	char *buf = NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno != EINPROGRESS) {
			snprintf(r->why, sizeof r->why, "connect: %s", strerror(errno));
			goto out;
		}
		int w = wait_fd(fd, POLLOUT, deadline);
		if (w <= 0) {
			snprintf(r->why, sizeof r->why, "connect: %s",
				 w == 0 ? "timeout" : strerror(errno));
			goto out;
		}
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			snprintf(r->why, sizeof r->why, "connect: %s", strerror(err));
			goto out;
		}
	}
	/* request */
	char head[1024];
	int with_len = body || strcmp(method, "GET") != 0;
	int hn = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n",
			  method, path, hostport);
	if (with_len)
		hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: %zu\r\n",
			       body_len);
	size_t total = (size_t)hn + (headers ? strlen(headers) : 0) + 2 + body_len;
	char *req = malloc(total + 1);
	if (!req) {
		snprintf(r->why, sizeof r->why, "out of memory");
		goto out;
	}
	int off = snprintf(req, total + 1, "%s%s\r\n", head, headers ? headers : "");
	if (body_len)
		memcpy(req + off, body, body_len);
	size_t sent = 0;
	while (sent < total) {
		ssize_t k = send(fd, req + sent, total - sent, MSG_NOSIGNAL);
		if (k > 0) {
			sent += (size_t)k;
			rc = JC_UNKNOWN; /* from now on the server may act on it */
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			int w = wait_fd(fd, POLLOUT, deadline);
			if (w > 0)
				continue;
			snprintf(r->why, sizeof r->why, "send: %s",
				 w == 0 ? "timeout" : strerror(errno));
		} else {
			snprintf(r->why, sizeof r->why, "send: %s", strerror(errno));
		}
		free(req);
		goto out;
	}
	free(req);
	rc = JC_UNKNOWN;
	/* response */
	size_t cap = 8192, n = 0;
	buf = malloc(cap + 1);
	if (!buf) {
		snprintf(r->why, sizeof r->why, "out of memory");
		goto out;
	}
	for (;;) {
		if (n == cap) {
			if (cap >= MAX_RESPONSE) {
				snprintf(r->why, sizeof r->why, "response too large");
				goto out;
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				snprintf(r->why, sizeof r->why, "out of memory");
				goto out;
			}
			buf = nb;
		}
		ssize_t k = recv(fd, buf + n, cap - n, 0);
		if (k > 0) {
			n += (size_t)k;
			buf[n] = 0;
			int p = parse_response(buf, n, 0, r);
			if (p < 0) {
				snprintf(r->why, sizeof r->why, "malformed response");
				goto out;
			}
			if (p > 0) {
				rc = JC_DONE;
				goto out;
			}
			continue;
		}
		if (k == 0) {
			buf[n] = 0;
			int p = parse_response(buf, n, 1, r);
			if (p > 0) {
				rc = JC_DONE;
			} else {
				snprintf(r->why, sizeof r->why, "connection closed after %zu bytes",
					 n);
			}
			goto out;
		}
		if (errno == EAGAIN || errno == EINTR) {
			int w = wait_fd(fd, POLLIN, deadline);
			if (w > 0)
				continue;
			snprintf(r->why, sizeof r->why, "recv: %s",
				 w == 0 ? "timeout" : strerror(errno));
			goto out;
		}
		snprintf(r->why, sizeof r->why, "recv: %s", strerror(errno));
		goto out;
	}
out:
	free(buf);
	close(fd);
	if (rc != JC_DONE)
		jc_resp_free(r);
	return rc;
}
