/* Listening sockets and accept: see accept.h. */
#include "accept.h"

#include <h2o/http1.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "raftplane/err.h"
#include "raftplane/log.h"

#define CONN_MAGIC 0x7270636eu  /* "rpcn" */
#define DISCARD_MAX (64 * 1024) /* bytes read and dropped after a refused head */

/* A request head read so far (the head guard). */
struct head_state {
	size_t off;      /* bytes scanned */
	size_t line_len; /* non-CR bytes of the line being scanned */
	size_t len;      /* with done: bytes up to the end of the empty line */
	unsigned lines;  /* complete lines, the request line included */
	int done;        /* the head is complete */
};

/* One accepted connection: beside its uv_tcp_t, which h2o closes; our close
 * callback frees the whole struct. */
struct rp_conn {
	uv_tcp_t tcp; /* first: the close callback gets its address */
	uint32_t magic;
	h2o_accept_ctx_t *actx;
	h2o_socket_t *sock;
	struct rp_tls *tls;
	SSL_CTX *ctx; /* the context the handshake uses (ours: a reference) */
	const char *trust_domain;
	struct timeval connected_at;
	h2o_timeout_entry_t timeout; /* handshake deadline */
	struct rp_peer_id id;
	char peer[64];     /* "IP:port" for logs */
	char refusal[320]; /* the 401 or 431 written to a refused connection */
	/* limits (connlimit.h) */
	struct rp_connlimit *limits;
	struct rp_conn_slot slot;
	struct sockaddr_storage sa; /* the peer */
	int need_server_cert;       /* admitted over per_ip as a member: must prove it */
	void (*on_close)(void *arg);
	void *close_arg;
	/* the head guard (accept.h): h2o's libuv callbacks, the head being read */
	uv_alloc_cb h2o_alloc;
	uv_read_cb h2o_read;
	int guard;     /* our callbacks wrap h2o's */
	int fell_back; /* counted in limits->guard_fallbacks */
	int cut;       /* 1 + enum rp_head_refuse: refusing the head being read */
	struct head_state head;
	size_t discarded; /* bytes dropped after a refused head */
};

int rp_listen(uv_loop_t *loop, uv_tcp_t *listener, void *data, const struct sockaddr *sa,
	      int backlog, uv_connection_cb on_connection)
{
	int rv;
	uv_tcp_init(loop, listener);
	listener->data = data;
	if ((rv = uv_tcp_bind(listener, sa, 0)) != 0)
		return rv;
	return uv_listen((uv_stream_t *)listener, backlog, on_connection);
}

/* ---- connections with an identity ------------------------------------------ */

static void conn_closed(uv_handle_t *h)
{
	struct rp_conn *c = (struct rp_conn *)h;
	c->magic = 0;
	if (h2o_timeout_is_linked(&c->timeout))
		h2o_timeout_unlink(&c->timeout);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->limits)
		rp_connlimit_release(c->limits, &c->slot);
	if (c->on_close)
		c->on_close(c->close_arg);
	free(c);
}

/* The SSL object h2o made for @sock, or NULL when the private layout does
 * not check out (accept.h). */
struct h2o_ssl_head {
	SSL_CTX *ssl_ctx;
	SSL *ossl;
};

static SSL *sock_ssl(h2o_socket_t *sock, SSL_CTX *ctx)
{
	const struct h2o_ssl_head *h = (const void *)sock->ssl;
	if (h == NULL || ctx == NULL || h->ssl_ctx != ctx || h->ossl == NULL)
		return NULL;
	SSL *ssl = h->ossl;
	BIO *b = SSL_get_rbio(ssl);
	if (SSL_get_SSL_CTX(ssl) != ctx || b == NULL || BIO_get_data(b) != (void *)sock)
		return NULL;
	return ssl;
}

/* At most one line a second for a flood of failed handshakes. */
static void log_refused(const struct rp_conn *c, const char *what)
{
	static uint64_t last_ms;
	static unsigned suppressed;
	uint64_t now = uv_now(c->tcp.loop);
	if (last_ms != 0 && now - last_ms < 1000) {
		suppressed++;
		return;
	}
	if (suppressed)
		rp_log_warn("TLS handshake from %s failed: %s (%u more since the last line)",
			    c->peer, what, suppressed);
	else
		rp_log_warn("TLS handshake from %s failed: %s", c->peer, what);
	last_ms = now;
	suppressed = 0;
}

/* ---- refusing a certificate after the handshake (tls.h: soft verify) ------ */

static void on_linger_timeout(h2o_timeout_entry_t *e)
{
	struct rp_conn *c = H2O_STRUCT_FROM_MEMBER(struct rp_conn, timeout, e);
	h2o_socket_close(c->sock);
}

/* Read and drop what the client sends until it closes (or the deadline),
 * so that our close does not reset the connection before it read the 401. */
static void on_discard(h2o_socket_t *sock, const char *err)
{
	struct rp_conn *c = sock->on_close.data;
	if (err != NULL) {
		h2o_timeout_unlink(&c->timeout);
		h2o_socket_close(sock);
		return;
	}
	h2o_buffer_consume(&sock->input, sock->input->size);
}

static void on_refusal_written(h2o_socket_t *sock, const char *err)
{
	struct rp_conn *c = sock->on_close.data;
	if (err != NULL) {
		h2o_socket_close(sock);
		return;
	}
	h2o_buffer_consume(&sock->input, sock->input->size);
	c->timeout.cb = on_linger_timeout;
	h2o_timeout_link(c->actx->ctx->loop, &c->actx->ctx->handshake_timeout, &c->timeout);
	h2o_socket_read_start(sock, on_discard);
}

/* Answer 401 with the documented JSON error shape and close. */
static void refuse_certificate(struct rp_conn *c, enum rp_tls_fail why)
{
	char body[200];
	int bl = snprintf(body, sizeof body,
			  "{\"error\":{\"code\":\"unauthenticated\",\"message\":\"the client "
			  "certificate was refused: %s\"}}\n",
			  rp_tls_fail_names[why]);
	int n = snprintf(c->refusal, sizeof c->refusal,
			 "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
			 "Connection: close\r\nContent-Length: %d\r\n\r\n%s",
			 bl, body);
	char what[64];
	snprintf(what, sizeof what, "client certificate refused: %s", rp_tls_fail_names[why]);
	log_refused(c, what);
	h2o_iovec_t buf = h2o_iovec_init(c->refusal, (size_t)n);
	h2o_socket_write(c->sock, &buf, 1, on_refusal_written);
}

/* ---- the head guard (accept.h) ---------------------------------------------- */

static uv_once_t guard_once = UV_ONCE_INIT;
static int guard_works; /* libuv keeps a reading stream's callbacks (self-test) */

static void st_alloc1(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	(void)h;
	(void)n;
	*b = uv_buf_init(NULL, 0);
}
static void st_alloc2(uv_handle_t *h, size_t n, uv_buf_t *b)
{
	st_alloc1(h, n, b);
}
static void st_read1(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)s;
	(void)n;
	(void)b;
}
static void st_read2(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	st_read1(s, n, b);
}

/* Run once: does uv_read_start() on a stream already reading leave its
 * callbacks alone (UV_EALREADY, libuv >= 1.41)? The guard relies on it. */
static void guard_selftest(void)
{
	uv_loop_t loop;
	uv_pipe_t p;
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
		return;
	if (uv_loop_init(&loop) != 0) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	uv_pipe_init(&loop, &p, 0);
	if (uv_pipe_open(&p, fds[0]) == 0) {
		uv_stream_t *s = (uv_stream_t *)&p;
		guard_works = uv_read_start(s, st_alloc1, st_read1) == 0 &&
			      uv_read_start(s, st_alloc2, st_read2) == UV_EALREADY &&
			      s->alloc_cb == st_alloc1 && s->read_cb == st_read1;
	} else {
		close(fds[0]);
	}
	uv_close((uv_handle_t *)&p, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	close(fds[1]);
	if (!guard_works)
		rp_log_warn("request heads are checked only once h2o parsed them: libuv does not "
			    "keep the callbacks of a stream that reads (h2o may buffer up to %d "
			    "bytes of a head)",
			    H2O_MAX_REQLEN);
}

/* Heads of @c are checked only after h2o parsed them (counted once). */
static void note_fallback(struct rp_conn *c)
{
	if (!c->fell_back) {
		c->fell_back = 1;
		rp_connlimit_count_fallback(c->limits);
	}
}

static void guard_fallback(struct rp_conn *c)
{
	c->guard = 0;
	note_fallback(c);
}

/* Scan @n bytes at @p beyond h->off: count the head's lines and find its
 * end, an empty line after the request line. (Empty lines before the
 * request line are skipped here; h2o skips one and answers 400 to more.) */
static void head_scan(struct head_state *h, const char *p, size_t n)
{
	for (size_t i = h->off; i < n; i++) {
		char ch = p[i];
		if (ch == '\n') {
			if (h->line_len == 0 && h->lines > 0) {
				h->done = 1;
				h->len = h->off = i + 1;
				return;
			}
			if (h->line_len > 0)
				h->lines++;
			h->line_len = 0;
		} else if (ch != '\r') {
			h->line_len++;
		}
	}
	h->off = n;
}

/* Over a limit while the head is not complete? 1 + the reason, or 0. */
static int head_over(const struct rp_conn *c)
{
	const struct rp_connlimit_config *cfg = &c->limits->cfg;
	if (c->head.lines > cfg->max_headers + 1) /* the request line is not a header */
		return 1 + RP_HEAD_REFUSE_COUNT;
	if (c->sock->input->size >= cfg->max_head_bytes)
		return 1 + RP_HEAD_REFUSE_BYTES;
	return 0;
}

static void guard_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rp_conn *c = (struct rp_conn *)h;
	if (c->guard && !c->head.done) {
		head_scan(&c->head, c->sock->input->bytes, c->sock->input->size);
		if (!c->head.done && (c->cut = head_over(c)) != 0) {
			*buf = uv_buf_init(NULL, 0); /* libuv answers UV_ENOBUFS: guard_read */
			return;
		}
	}
	c->h2o_alloc(h, suggested, buf);
	if (!c->guard || c->head.done || buf->base == NULL)
		return;
	const h2o_buffer_t *in = c->sock->input;
	/* plain text: h2o reserved room right after what sock->input holds
	 * (uv-binding.c.h: alloc_inbuf_tcp); anything else and we step aside */
	if (c->sock->ssl == NULL && buf->base != in->bytes + in->size) {
		guard_fallback(c);
		return;
	}
	/* read no more than the head may still grow (ciphertext: at least as
	 * long as its plaintext); h2o's read callbacks use nread, not buf->len */
	size_t room = c->limits->cfg.max_head_bytes - in->size;
	if (buf->len > room)
		buf->len = room;
}

/* Hand @c's connection back to h2o as closed by the peer: h2o's read
 * callback then closes its connection and our socket (conn_closed). */
static void give_back_closed(struct rp_conn *c)
{
	uv_buf_t b = uv_buf_init(NULL, 0);
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->h2o_read((uv_stream_t *)&c->tcp, UV_EOF, &b);
}

static __thread char discard_buf[16384];

static void discard_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(discard_buf, sizeof discard_buf);
}

/* After the 431 and our FIN: drop what the client still sends until it
 * closes (so that our close does not reset the connection before it read
 * the answer), at most DISCARD_MAX bytes; h2o's request timeout (10 s from
 * the start of the head) bounds the time. */
static void discard_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_conn *c = (struct rp_conn *)s;
	(void)buf;
	if (nread > 0)
		c->discarded += (size_t)nread;
	if (nread < 0 || c->discarded > DISCARD_MAX)
		give_back_closed(c);
}

static void on_cut_written(h2o_socket_t *sock, const char *err)
{
	struct rp_conn *c = sock->on_close.data;
	uv_os_fd_t fd;
	/* the write queue is empty (this is its callback): half-close now */
	if (err == NULL && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		shutdown(fd, SHUT_WR);
	if (err != NULL || uv_read_start((uv_stream_t *)&c->tcp, discard_alloc, discard_read) != 0)
		give_back_closed(c);
}

/* Refuse the head being read: 431 with the JSON error shape, then close. */
static void cut_head(struct rp_conn *c)
{
	enum rp_head_refuse why = (enum rp_head_refuse)(c->cut - 1);
	const struct rp_connlimit_config *cfg = &c->limits->cfg;
	uv_read_stop((uv_stream_t *)&c->tcp);
	rp_connlimit_count_head(c->limits, why, c->peer, c->sock->input->size,
				c->head.lines ? c->head.lines - 1 : 0);
	if (h2o_socket_is_writing(c->sock)) { /* not in a head's phase after all */
		give_back_closed(c);
		return;
	}
	char body[200];
	int bl = why == RP_HEAD_REFUSE_BYTES
			 ? snprintf(body, sizeof body,
				    "{\"error\":{\"code\":\"%s\",\"message\":\"request head over "
				    "%zu bytes\"}}\n",
				    rp_err_code(RP_ERR_HEADER_TOO_LARGE), cfg->max_head_bytes)
			 : snprintf(body, sizeof body,
				    "{\"error\":{\"code\":\"%s\",\"message\":\"more than %u header "
				    "lines\"}}\n",
				    rp_err_code(RP_ERR_HEADER_TOO_LARGE), cfg->max_headers);
	int n = snprintf(c->refusal, sizeof c->refusal,
			 "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: "
			 "application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
			 bl, body);
	h2o_iovec_t b = h2o_iovec_init(c->refusal, (size_t)n);
	h2o_socket_write(c->sock, &b, 1, on_cut_written);
}

static void guard_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_conn *c = (struct rp_conn *)s;
	if (c->cut && nread == UV_ENOBUFS) {
		cut_head(c);
		return;
	}
	c->h2o_read(s, nread, buf);
}

/* h2o_http1_accept() just ran: read through our callbacks from now on.
 * h2o's own are those it reads with now, or (when it already serves a
 * request that came with the TLS handshake, and stopped reading) those it
 * read the handshake with: one pair per kind of socket
 * (uv-binding.c.h: do_read_start). */
static void guard_attach(struct rp_conn *c)
{
	uv_stream_t *s = (uv_stream_t *)&c->tcp;
	if (!c->limits || !c->limits->cfg.max_head_bytes)
		return;
	uv_once(&guard_once, guard_selftest);
	if (!guard_works || c->sock->input == NULL || s->alloc_cb == guard_alloc ||
	    (s->alloc_cb != NULL && c->h2o_alloc != NULL &&
	     (s->alloc_cb != c->h2o_alloc || s->read_cb != c->h2o_read))) {
		guard_fallback(c);
		return;
	}
	if (s->alloc_cb == NULL || s->read_cb == NULL) {
		/* not reading: ours start when that request is done
		 * (on_request_disposed) */
		if (c->h2o_alloc == NULL || c->h2o_read == NULL)
			guard_fallback(c);
		else
			c->guard = 1;
		return;
	}
	c->h2o_alloc = s->alloc_cb;
	c->h2o_read = s->read_cb;
	uv_read_stop(s);
	if (uv_read_start(s, guard_alloc, guard_read) != 0) {
		uv_read_start(s, c->h2o_alloc, c->h2o_read);
		guard_fallback(c);
		return;
	}
	c->guard = 1;
}

/* The request's pool goes: its response is done (or the connection is).
 * On a connection that stays, h2o next reads the following head with
 * uv_read_start(), after it stopped reading for this request; start ours
 * first so that libuv keeps them (accept.h). */
struct head_hook {
	struct rp_conn *c;
	h2o_req_t *req;
};

static void on_request_disposed(void *p)
{
	struct head_hook *hh = p;
	struct rp_conn *c = hh->c;
	if (c->magic != CONN_MAGIC)
		return;
	memset(&c->head, 0, sizeof c->head);
	uv_stream_t *s = (uv_stream_t *)&c->tcp;
	if (!c->guard || !hh->req->http1_is_persistent || uv_is_closing((uv_handle_t *)s))
		return;
	/* h2o stopped reading for the request (lib/http1.c: process_request
	 * follows h2o_socket_read_stop); if something reads with other
	 * callbacks, the next heads are checked after parsing only */
	if (uv_read_start(s, guard_alloc, guard_read) != 0 && s->alloc_cb != guard_alloc)
		guard_fallback(c);
}

static struct rp_conn *conn_of_sock(h2o_socket_t *sock)
{
	if (sock == NULL)
		return NULL;
	struct rp_conn *c = sock->on_close.data;
	if (c == NULL || sock->on_close.cb != NULL || c->magic != CONN_MAGIC)
		return NULL;
	return c;
}

static struct rp_conn *conn_of_req(h2o_req_t *req)
{
	if (req == NULL || req->conn == NULL || req->conn->callbacks == NULL ||
	    req->conn->callbacks->get_socket == NULL)
		return NULL;
	return conn_of_sock(req->conn->callbacks->get_socket(req->conn));
}

/* Does sock->input start with @req's request line? (h2o consumes a head
 * only once its response is done: lib/http1.c, on_send_complete.) */
static int input_is_request(const struct rp_conn *c, const h2o_req_t *req)
{
	const h2o_buffer_t *in = c->sock->input;
	size_t i = 0, m = req->input.method.len;
	while (i < in->size && (in->bytes[i] == '\r' || in->bytes[i] == '\n'))
		i++;
	return in->size - i > m && memcmp(in->bytes + i, req->input.method.base, m) == 0 &&
	       in->bytes[i + m] == ' ';
}

/* What h2o parsed, when the head cannot be found in its buffer: a lower
 * bound of its size (h2o keeps Content-Length, Transfer-Encoding, Expect and
 * Upgrade out of req->headers). */
static void head_estimate(const h2o_req_t *req, size_t *bytes, unsigned *headers)
{
	size_t n = req->input.method.len + 1 + req->input.path.len + 11 + 2;
	unsigned k = (unsigned)req->headers.size;
	for (size_t i = 0; i < req->headers.size; i++)
		n += req->headers.entries[i].name->len + 2 + req->headers.entries[i].value.len + 2;
	if (req->input.authority.base) {
		n += 6 + req->input.authority.len + 2;
		k++;
	}
	*bytes = n;
	*headers = k;
}

int rp_conn_check_head(h2o_req_t *req, char *msg, size_t msglen)
{
	struct rp_conn *c = conn_of_req(req);
	if (c == NULL || c->limits == NULL || !c->limits->cfg.max_head_bytes ||
	    req->version >= 0x200)
		return 0;
	struct head_hook *hh = h2o_mem_alloc_shared(&req->pool, sizeof *hh, on_request_disposed);
	hh->c = c;
	hh->req = req;
	const struct rp_connlimit_config *cfg = &c->limits->cfg;
	const h2o_buffer_t *in = c->sock->input;
	struct head_state h = {0};
	size_t bytes;
	unsigned headers;
	head_scan(&h, in->bytes, in->size); /* from the start: this request's head */
	if (h.done && input_is_request(c, req)) {
		bytes = h.len;
		headers = h.lines - 1;
	} else {
		note_fallback(c);
		head_estimate(req, &bytes, &headers);
	}
	if (bytes > cfg->max_head_bytes) {
		rp_connlimit_count_head(c->limits, RP_HEAD_REFUSE_BYTES, c->peer, bytes, headers);
		snprintf(msg, msglen, "request head of %zu bytes, over %zu", bytes,
			 cfg->max_head_bytes);
		return -1;
	}
	if (headers > cfg->max_headers) {
		rp_connlimit_count_head(c->limits, RP_HEAD_REFUSE_COUNT, c->peer, bytes, headers);
		snprintf(msg, msglen, "%u header lines, more than %u", headers, cfg->max_headers);
		return -1;
	}
	return 0;
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
	struct rp_conn *c = sock->on_close.data;
	h2o_timeout_unlink(&c->timeout);
	sock->data = NULL;
	SSL *ssl = sock_ssl(sock, c->ctx);
	if (err != NULL) {
		enum rp_tls_fail f = rp_tls_handshake_failed(c->tls, ssl);
		log_refused(c, rp_tls_fail_names[f]);
		h2o_socket_close(sock);
		return;
	}
	/* No close_notify when h2o closes the connection: once the client reset
	 * it (it closed with our answer unread), libuv's stream is no longer
	 * writable, h2o's write of the alert fails at once, h2o ignores that
	 * uv_write() error and waits for a write callback that never comes:
	 * the socket and its descriptor leaked for good (h2o 2.2.5, libuv >=
	 * 1.x). Every answer is framed (Content-Length or chunked), so the
	 * alert adds no truncation protection for our clients. */
	if (ssl != NULL)
		SSL_set_quiet_shutdown(ssl, 1);
	enum rp_tls_fail why;
	if (ssl != NULL && rp_tls_verify_error(ssl, &why)) {
		refuse_certificate(c, why); /* counted by the verify callback */
		return;
	}
	if (ssl != NULL)
		rp_tls_peer_identity(ssl, c->trust_domain, &c->id);
	/* else: no identity (fail closed) */
	if (c->need_server_cert && c->id.kind != RP_PEER_SERVER) {
		/* over the per-address limit, let in as a member's address: with
		 * TLS only a server certificate proves a member */
		rp_connlimit_refuse_exempted(c->limits, (struct sockaddr *)&c->sa, &c->slot);
		h2o_socket_close(sock);
		return;
	}
	h2o_http1_accept(c->actx, sock, c->connected_at);
	guard_attach(c);
}

static void on_handshake_timeout(h2o_timeout_entry_t *e)
{
	struct rp_conn *c = H2O_STRUCT_FROM_MEMBER(struct rp_conn, timeout, e);
	h2o_socket_t *sock = c->sock;
	rp_tls_count(c->tls, RP_TLS_FAIL_HANDSHAKE);
	log_refused(c, "handshake timed out");
	h2o_socket_close(sock);
}

static void peer_name(const struct sockaddr_storage *sa, char *out, size_t len)
{
	char ip[48] = "?";
	int port = 0;
	if (sa->ss_family == AF_INET) {
		uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	snprintf(out, len, sa->ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

int rp_accept_http(uv_stream_t *listener, h2o_accept_ctx_t *actx, const struct rp_accept_opts *o)
{
	struct rp_conn *c = h2o_mem_alloc(sizeof *c);
	memset(c, 0, sizeof *c);
	uv_tcp_init(listener->loop, &c->tcp);
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return -1;
	}
	struct rp_connlimit *l = o ? o->limits : NULL;
	int tls = o != NULL && o->tls != NULL;
	if (tls || rp_connlimit_counts(l) || (l && l->cfg.max_head_bytes)) {
		int n = sizeof c->sa;
		if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->sa, &n) != 0)
			c->sa.ss_family = AF_UNSPEC;
		peer_name(&c->sa, c->peer, sizeof c->peer);
	}
	if (rp_connlimit_counts(l)) {
		enum rp_conn_refuse why;
		if (c->sa.ss_family == AF_UNSPEC || /* the peer is already gone */
		    rp_connlimit_admit(l, (struct sockaddr *)&c->sa, &c->slot, &why) != 0) {
			/* before any read or handshake; a reset leaves no TIME_WAIT */
			if (uv_tcp_close_reset(&c->tcp, conn_closed) != 0)
				uv_close((uv_handle_t *)&c->tcp, conn_closed);
			c->limits = l; /* nothing held: conn_closed releases nothing */
			return -1;
		}
		c->need_server_cert = tls && c->slot.exempted;
	}
	c->limits = l;
	if (o) {
		c->on_close = o->on_close;
		c->close_arg = o->close_arg;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->magic = CONN_MAGIC;
	c->actx = actx;
	h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
	sock->on_close.data = c; /* cb stays NULL: h2o calls nothing */
	c->sock = sock;
	if (!tls) {
		h2o_accept(actx, sock);
		guard_attach(c);
		return 0;
	}
	c->tls = o->tls;
	c->trust_domain = o->trust_domain ? o->trust_domain : RP_TLS_DEFAULT_TRUST_DOMAIN;
	c->ctx = rp_tls_ctx(o->tls); /* read at each accept: a reload applies from here */
	SSL_CTX_up_ref(c->ctx);      /* the check in sock_ssl() needs it alive */
	gettimeofday(&c->connected_at, NULL);
	c->timeout.cb = on_handshake_timeout;
	h2o_timeout_link(actx->ctx->loop, &actx->ctx->handshake_timeout, &c->timeout);
	h2o_socket_ssl_handshake(sock, c->ctx, NULL, on_handshake);
	/* h2o reads the handshake with the callbacks it reads requests with
	 * later (guard_attach); c lives until the close callback */
	c->h2o_alloc = c->tcp.alloc_cb;
	c->h2o_read = c->tcp.read_cb;
	return 0;
}

const struct rp_peer_id *rp_sock_identity(h2o_socket_t *sock)
{
	const struct rp_conn *c = conn_of_sock(sock);
	return c ? &c->id : NULL;
}

const struct rp_peer_id *rp_conn_identity(h2o_req_t *req)
{
	const struct rp_conn *c = conn_of_req(req);
	return c ? &c->id : NULL;
}
