/* Listening TCP sockets, and accepting a connection into h2o on a libuv
 * loop (server API, proxy workers, proxy admin), in plain text or TLS.
 *
 * A connection accepted with rp_accept_http() carries a struct rp_conn
 * beside its uv_tcp_t: the peer's address and, after a TLS handshake, the
 * identity its certificate names (net/tls.h). A request finds it through
 * its socket (rp_conn_identity()): h2o leaves sock->on_close unused on
 * accepted sockets (only its socket pool, a client-side object, sets it),
 * so on_close.data points to the struct rp_conn.
 *
 * TLS: the handshake is ours (h2o_socket_ssl_handshake with the context
 * rp_tls_ctx() returns at that accept, so a reload applies to new
 * connections only), bounded by h2o's handshake timeout; then
 * h2o_http1_accept(): HTTP/1.1 only, whatever ALPN a client offers. h2o
 * 2.2 has no getter for a socket's SSL*: we read it from h2o's private
 * struct st_h2o_socket_ssl_t (lib/common/socket.c at v2.2.5: SSL_CTX *
 * first, SSL * second) and trust it only when the first field is the
 * context we passed and the SSL's read BIO is h2o's for this very socket.
 * Otherwise the connection has no identity (fail closed). */
#ifndef RP_ACCEPT_H
#define RP_ACCEPT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <uv.h>

#include "tls.h"

/**
 * Initialise @listener on @loop (its data set to @data), bind it to @sa and
 * listen with @backlog, @on_connection called for each connection. Returns 0
 * or a libuv error;
 * @listener is initialised either way (the caller uv_close()s it).
 */
int rp_listen(uv_loop_t *loop, uv_tcp_t *listener, void *data, const struct sockaddr *sa,
	      int backlog, uv_connection_cb on_connection);

/**
 * Accept a connection on @listener as an h2o socket (TCP_NODELAY set).
 * @on_close frees the uv_tcp_t (h2o_mem_alloc'd) when h2o closes it.
 * Returns NULL when the accept failed (nothing to release).
 */
h2o_socket_t *rp_accept_socket(uv_stream_t *listener, uv_close_cb on_close);

/* How rp_accept_http() accepts. */
struct rp_accept_opts {
	struct rp_tls *tls;       /* RP_TLS_SERVER context, or NULL: plain HTTP */
	const char *trust_domain; /* of the identities (with tls) */
};

/**
 * Accept one connection on @listener and hand it to h2o (@actx): at once in
 * plain text, after a TLS handshake with @o->tls (failures counted in it by
 * reason and logged, at most one line a second). A failed accept is dropped.
 */
void rp_accept_http(uv_stream_t *listener, h2o_accept_ctx_t *actx, const struct rp_accept_opts *o);

/**
 * The identity of the client of @req's connection: NULL for a connection
 * not accepted by rp_accept_http(), or whose socket h2o does not expose;
 * kind RP_PEER_NONE without TLS, without a client certificate, or when the
 * SSL object could not be read safely.
 */
const struct rp_peer_id *rp_conn_identity(h2o_req_t *req);

/** The same for an accepted socket (NULL when not ours). */
const struct rp_peer_id *rp_sock_identity(h2o_socket_t *sock);

#endif
