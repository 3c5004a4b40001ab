/* Accepting a TCP connection into h2o on a libuv loop (server and proxy). */
#ifndef RP_ACCEPT_H
#define RP_ACCEPT_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <uv.h>

/**
 * Accept a connection on @listener as an h2o socket (TCP_NODELAY set).
 * @on_close frees the uv_tcp_t (h2o_mem_alloc'd) when h2o closes it.
 * Returns NULL when the accept failed (nothing to release).
 */
h2o_socket_t *rp_accept_socket(uv_stream_t *listener, uv_close_cb on_close);

#endif
