/* Listening sockets and accept: see accept.h. */
#include "accept.h"

#include <stdlib.h>

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
