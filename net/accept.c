/* Listening sockets and accept: see accept.h. */
#include "accept.h"

#include <h2o/http1.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "raftplane/log.h"

#define CONN_MAGIC 0x7270636eu /* "rpcn" */

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
	char refusal[320]; /* the 401 written to a refused certificate's connection */
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

/* ---- connections with an identity ------------------------------------------ */

static void conn_closed(uv_handle_t *h)
{
	struct rp_conn *c = (struct rp_conn *)h;
	c->magic = 0;
	if (h2o_timeout_is_linked(&c->timeout))
		h2o_timeout_unlink(&c->timeout);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
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
	h2o_http1_accept(c->actx, sock, c->connected_at);
}

static void on_handshake_timeout(h2o_timeout_entry_t *e)
{
	struct rp_conn *c = H2O_STRUCT_FROM_MEMBER(struct rp_conn, timeout, e);
	h2o_socket_t *sock = c->sock;
	rp_tls_count(c->tls, RP_TLS_FAIL_HANDSHAKE);
	log_refused(c, "handshake timed out");
	h2o_socket_close(sock);
}

static void peer_name(uv_tcp_t *t, char *out, size_t len)
{
	struct sockaddr_storage sa;
	int n = sizeof sa;
	char ip[48] = "?";
	int port = 0;
	if (uv_tcp_getpeername(t, (struct sockaddr *)&sa, &n) == 0) {
		if (sa.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
			port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
		} else if (sa.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
			port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
		}
	}
	snprintf(out, len, sa.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

void rp_accept_http(uv_stream_t *listener, h2o_accept_ctx_t *actx, const struct rp_accept_opts *o)
{
	struct rp_conn *c = h2o_mem_alloc(sizeof *c);
	memset(c, 0, sizeof *c);
	uv_tcp_init(listener->loop, &c->tcp);
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, conn_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->magic = CONN_MAGIC;
	c->actx = actx;
	peer_name(&c->tcp, c->peer, sizeof c->peer);
	h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
	sock->on_close.data = c; /* cb stays NULL: h2o calls nothing */
	c->sock = sock;
	if (o == NULL || o->tls == NULL) {
		h2o_accept(actx, sock);
		return;
	}
	c->tls = o->tls;
	c->trust_domain = o->trust_domain ? o->trust_domain : RP_TLS_DEFAULT_TRUST_DOMAIN;
	c->ctx = rp_tls_ctx(o->tls); /* read at each accept: a reload applies from here */
	SSL_CTX_up_ref(c->ctx);      /* the check in sock_ssl() needs it alive */
	gettimeofday(&c->connected_at, NULL);
	c->timeout.cb = on_handshake_timeout;
	h2o_timeout_link(actx->ctx->loop, &actx->ctx->handshake_timeout, &c->timeout);
	h2o_socket_ssl_handshake(sock, c->ctx, NULL, on_handshake);
}

const struct rp_peer_id *rp_sock_identity(h2o_socket_t *sock)
{
	if (sock == NULL)
		return NULL;
	const struct rp_conn *c = sock->on_close.data;
	if (c == NULL || sock->on_close.cb != NULL || c->magic != CONN_MAGIC)
		return NULL;
	return &c->id;
}

const struct rp_peer_id *rp_conn_identity(h2o_req_t *req)
{
	if (req == NULL || req->conn == NULL || req->conn->callbacks == NULL ||
	    req->conn->callbacks->get_socket == NULL)
		return NULL;
	return rp_sock_identity(req->conn->callbacks->get_socket(req->conn));
}
