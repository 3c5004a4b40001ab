/* A small HTTP/1.1 client on non-blocking sockets: one request per
 * connection, a deadline for the whole exchange (connect, TLS handshake,
 * request, response), and an exact account of whether anything of the
 * request was sent. With jc_http_setup(CA, ...) every request is HTTPS:
 * the server's chain must verify against the CA and its certificate must
 * name the address connected to (IP SAN); with a token file every request
 * carries "Authorization: Bearer <token>". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jc.h"

#define MAX_RESPONSE (64u << 20)

static int parse_hostport(const char *hp, struct sockaddr_in *sa, char host[64])
{
	const char *colon = strrchr(hp, ':');
	if (!colon || (size_t)(colon - hp) >= 64)
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

/* ---- TLS and tokens ------------------------------------------------------- */

static SSL_CTX *tls_ctx;   /* NULL: plain HTTP */
static char auth_hdr[128]; /* "Authorization: Bearer rpt_...\r\n" or "" */

static void ssl_reason(char *out, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, out, len);
	else
		snprintf(out, len, "%s", errno ? strerror(errno) : "connection closed");
	ERR_clear_error();
}

/* The token string of @path: "rpt_" and 43 base64url characters, one line. */
static int load_token(const char *path, char *tok, size_t toklen, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "token file %s: %s", path, strerror(errno));
		return -1;
	}
	char line[128] = "";
	if (!fgets(line, sizeof line, f))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	size_t n = strlen(line);
	int ok = n == 47 && !strncmp(line, "rpt_", 4) && n < toklen;
	for (size_t k = 4; ok && k < n; k++)
		ok = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
			    line[k]) != NULL;
	if (!ok) {
		snprintf(err, errlen, "token file %s: not one token string (rpt_ + 43 base64url)",
			 path);
		return -1;
	}
	memcpy(tok, line, n + 1);
	return 0;
}

int jc_http_setup(const char *ca_file, const char *token_file, char *err, size_t errlen)
{
	if (token_file) {
		char tok[64];
		if (load_token(token_file, tok, sizeof tok, err, errlen) != 0)
			return -1;
		snprintf(auth_hdr, sizeof auth_hdr, "Authorization: Bearer %s\r\n", tok);
	}
	if (!ca_file)
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		char why[200];
		ssl_reason(why, sizeof why);
		snprintf(err, errlen, "CA file %s: %s", ca_file, why);
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* a server that closes without close_notify ends the body like plain EOF */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	/* every request is one fresh connection: no session resumption */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	tls_ctx = ctx;
	return 0;
}

int jc_http_tls(void)
{
	return tls_ctx != NULL;
}

/* One connection: plain or TLS. */
struct conn {
	int fd;
	SSL *ssl;
	unsigned long sent_mark; /* TLS: bytes on the socket when the handshake ended */
};

/* Run the TLS handshake on @c until @deadline. 0, or -1 with r->why set
 * (nothing of the request was sent). */
static int tls_start(struct conn *c, const char *host, int64_t deadline, struct jc_resp *r)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	c->ssl = SSL_new(tls_ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(r->why, sizeof r->why, "tls: SSL_new failed");
		return -1;
	}
	/* the certificate must name the address we connected to */
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) {
		snprintf(r->why, sizeof r->why, "tls: bad address %s", host);
		return -1;
	}
	SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int k = SSL_connect(c->ssl);
		if (k == 1)
			break;
		int e = SSL_get_error(c->ssl, k);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			int w = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
					deadline);
			if (w > 0)
				continue;
			snprintf(r->why, sizeof r->why, "tls handshake: %s",
				 w == 0 ? "timeout" : strerror(errno));
			return -1;
		}
		long v = SSL_get_verify_result(c->ssl);
		char why[200];
		if (v != X509_V_OK)
			snprintf(why, sizeof why, "certificate: %s",
				 X509_verify_cert_error_string(v));
		else
			ssl_reason(why, sizeof why);
		snprintf(r->why, sizeof r->why, "tls handshake: %.100s", why);
		return -1;
	}
	c->sent_mark = BIO_number_written(SSL_get_wbio(c->ssl));
	return 0;
}

/* Send up to @len bytes. >0 sent; 0 would block (*ev: what to wait for);
 * -1 failed (r->why set). */
static ssize_t conn_send(struct conn *c, const char *b, size_t len, short *ev, struct jc_resp *r)
{
	if (!c->ssl) {
		ssize_t k = send(c->fd, b, len, MSG_NOSIGNAL);
		if (k > 0)
			return k;
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			*ev = POLLOUT;
			return 0;
		}
		snprintf(r->why, sizeof r->why, "send: %s", strerror(errno));
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	int k = SSL_write(c->ssl, b, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (k > 0)
		return k;
	int e = SSL_get_error(c->ssl, k);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	char why[200];
	ssl_reason(why, sizeof why);
	snprintf(r->why, sizeof r->why, "tls send: %.100s", why);
	return -1;
}

/* Receive. >0 bytes; 0 end of stream; -1 would block (*ev set); -2 failed
 * (r->why set). */
static ssize_t conn_recv(struct conn *c, char *b, size_t len, short *ev, struct jc_resp *r)
{
	if (!c->ssl) {
		ssize_t k = recv(c->fd, b, len, 0);
		if (k >= 0)
			return k;
		if (errno == EAGAIN || errno == EINTR) {
			*ev = POLLIN;
			return -1;
		}
		snprintf(r->why, sizeof r->why, "recv: %s", strerror(errno));
		return -2;
	}
	ERR_clear_error();
	errno = 0;
	int k = SSL_read(c->ssl, b, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (k > 0)
		return k;
	int e = SSL_get_error(c->ssl, k);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return -1;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)
		return 0; /* EOF without close_notify */
	char why[200];
	ssl_reason(why, sizeof why);
	snprintf(r->why, sizeof r->why, "tls recv: %.100s", why);
	return -2;
}

/* Whether any byte of the request may have reached the server. */
static int conn_sent_any(const struct conn *c, size_t sent)
{
	if (sent)
		return 1;
	return c->ssl && BIO_number_written(SSL_get_wbio(c->ssl)) > c->sent_mark;
}

static void conn_close(struct conn *c, int clean)
{
	if (c->ssl) {
		if (clean) /* one try at close_notify, never waiting for it */
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
}

int jc_http(const char *hostport, const char *method, const char *path, const char *headers,
	    const char *body, size_t body_len, int timeout_ms, struct jc_resp *r)
{
	memset(r, 0, sizeof *r);
	int64_t deadline = jc_mono_ms() + timeout_ms;
	struct sockaddr_in sa;
	char host[64];
	if (parse_hostport(hostport, &sa, host) != 0) {
		snprintf(r->why, sizeof r->why, "bad address %s", hostport);
		return JC_NOT_SENT;
	}
	struct conn c = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
	if (c.fd < 0) {
		snprintf(r->why, sizeof r->why, "socket: %s", strerror(errno));
		return JC_NOT_SENT;
	}
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int rc = JC_NOT_SENT;
	char *buf = NULL, *req = NULL;
	if (connect(c.fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno != EINPROGRESS) {
			snprintf(r->why, sizeof r->why, "connect: %s", strerror(errno));
			goto out;
		}
		int w = wait_fd(c.fd, POLLOUT, deadline);
		if (w <= 0) {
			snprintf(r->why, sizeof r->why, "connect: %s",
				 w == 0 ? "timeout" : strerror(errno));
			goto out;
		}
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			snprintf(r->why, sizeof r->why, "connect: %s", strerror(err));
			goto out;
		}
	}
	if (tls_ctx && tls_start(&c, host, deadline, r) != 0)
		goto out;
	/* request */
	char head[1024];
	int with_len = body || strcmp(method, "GET") != 0;
	int hn = snprintf(head, sizeof head,
			  "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s", method, path,
			  hostport, auth_hdr);
	if (with_len)
		hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: %zu\r\n",
			       body_len);
	size_t total = (size_t)hn + (headers ? strlen(headers) : 0) + 2 + body_len;
	req = malloc(total + 1);
	if (!req) {
		snprintf(r->why, sizeof r->why, "out of memory");
		goto out;
	}
	int off = snprintf(req, total + 1, "%s%s\r\n", head, headers ? headers : "");
	if (body_len)
		memcpy(req + off, body, body_len);
	size_t sent = 0;
	while (sent < total) {
		short ev = 0;
		ssize_t k = conn_send(&c, req + sent, total - sent, &ev, r);
		if (k > 0) {
			sent += (size_t)k;
			rc = JC_UNKNOWN; /* from now on the server may act on it */
			continue;
		}
		if (k == 0) {
			int w = wait_fd(c.fd, ev, deadline);
			if (w > 0)
				continue;
			snprintf(r->why, sizeof r->why, "send: %s",
				 w == 0 ? "timeout" : strerror(errno));
		}
		if (conn_sent_any(&c, sent))
			rc = JC_UNKNOWN;
		goto out;
	}
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
		short ev = 0;
		ssize_t k = conn_recv(&c, buf + n, cap - n, &ev, r);
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
		if (k == -1) {
			int w = wait_fd(c.fd, ev, deadline);
			if (w > 0)
				continue;
			snprintf(r->why, sizeof r->why, "recv: %s",
				 w == 0 ? "timeout" : strerror(errno));
		}
		goto out;
	}
out:
	free(req);
	free(buf);
	conn_close(&c, rc == JC_DONE);
	if (rc != JC_DONE)
		jc_resp_free(r);
	return rc;
}
