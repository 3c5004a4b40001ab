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
 * Otherwise the connection has no identity (fail closed).
 *
 * Limits (connlimit.h): with rp_accept_opts.limits, a connection over the
 * per-address or total limit is closed at accept (a reset), before any
 * read or handshake; an admitted one holds its slot until its socket
 * closes. With TLS, a connection let over the per-address limit because it
 * comes from a member's address must then present a server certificate.
 *
 * The head guard (limits->cfg.max_head_bytes): h2o 2.2.5 buffers up to
 * H2O_MAX_REQLEN (8192 + 4096 * 100 bytes) of a request head before it
 * refuses it (lib/http1.c: handle_incoming_request). We bound it while it is
 * read instead, one level below h2o: the socket's libuv read callbacks. h2o
 * reads with uv_read_start(stream, alloc, read) on our uv_tcp_t
 * (lib/common/socket/uv-binding.c.h); once it started, we save those two
 * callbacks (public uv_stream_t fields) and read through our own, which
 * call h2o's. Ours, before each read, scan what sock->input holds (h2o's
 * public buffer): while the head is incomplete they let h2o reserve only
 * the room left under the limit, and at the limit (or past max_headers
 * lines) they refuse to read: 431 with the JSON error shape, written
 * through h2o_socket_write(), then we give the connection back to h2o as
 * closed by the peer (its read callback with UV_EOF), which closes it.
 * h2o stops reading while it serves a request and starts again with
 * uv_read_start() for the next head; we start ours just before, when the
 * request's pool is disposed (rp_conn_check_head() registers that), and
 * libuv keeps the callbacks of a stream that already reads (UV_EALREADY,
 * libuv >= 1.41). Run-time checks, each falling back to the check after
 * parsing (counted in guard_fallbacks): a self-test of that libuv
 * behaviour, h2o's callbacks set after accept, and in plain text h2o's
 * reservation right after the bytes of sock->input. No h2o field is
 * written. A head that completes within the last read is parsed by h2o
 * before we look again: rp_conn_check_head() checks it then (with TLS the
 * plaintext of one read can overshoot the room by up to one record). */
#ifndef RP_ACCEPT_H
#define RP_ACCEPT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <uv.h>

#include "connlimit.h"
#include "tls.h"

/**
 * Initialise @listener on @loop (its data set to @data), bind it to @sa and
 * listen with @backlog, @on_connection called for each connection. Returns 0
 * or a libuv error;
 * @listener is initialised either way (the caller uv_close()s it).
 */
int rp_listen(uv_loop_t *loop, uv_tcp_t *listener, void *data, const struct sockaddr *sa,
	      int backlog, uv_connection_cb on_connection);

/* How rp_accept_http() accepts. */
struct rp_accept_opts {
	struct rp_tls *tls;          /* RP_TLS_SERVER context, or NULL: plain HTTP */
	const char *trust_domain;    /* of the identities (with tls) */
	struct rp_connlimit *limits; /* the listener's limits, or NULL */
	void (*on_close)(void *arg); /* an admitted connection closed, or NULL */
	void *close_arg;
};

/**
 * Accept one connection on @listener (TCP_NODELAY set) and hand it to h2o
 * (@actx): at once in plain text, after a TLS handshake with @o->tls
 * (failures counted in it by reason and logged, at most one line a
 * second). 0 when the connection was admitted: @o->on_close runs once when
 * it closes, in a later loop phase. -1 when it was dropped: a failed accept,
 * or over @o->limits (closed at once, counted and logged there).
 */
int rp_accept_http(uv_stream_t *listener, h2o_accept_ctx_t *actx, const struct rp_accept_opts *o);

/**
 * Check the head of @req, which h2o has just parsed, against its
 * connection's max_head_bytes and max_headers, and arrange for the read
 * side of the connection's next head (the head guard above). Call first
 * thing for every request. 0, or -1 (counted, logged) with a sentence in
 * @msg: answer 431 header_too_large and close the connection.
 */
int rp_conn_check_head(h2o_req_t *req, char *msg, size_t msglen);

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
