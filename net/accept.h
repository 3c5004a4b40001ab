/* Listening TCP sockets, and accepting a connection into h2o on a libuv
 * loop (server API, proxy workers, proxy admin). */
#ifndef RP_ACCEPT_H
#define RP_ACCEPT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <uv.h>

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

#endif
