/* Close watch: see closewatch.h.
 *
 * Invariants:
 *  1. fd is a dup() of the client socket owned by the watch; it is closed
 *     only in the poll handle's close callback, after libuv removed it from
 *     epoll, so the kernel never reports events for a closed descriptor.
 *  2. The callback runs at most once, and never after destroy().
 *  3. While the dup is open the socket stays open even if h2o closed its own
 *     descriptor: owners destroy the watch when their request is disposed. */
#include "closewatch.h"

#include <assert.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdbudget.h"

struct rp_closewatch {
	uv_poll_t poll;
	int fd;
	int fired;
	int destroyed;
	rp_closewatch_cb cb;
	void *data;
};

/* atomic: the proxy's worker threads create and close watches at once */
atomic_size_t rp_closewatch_active;

static void on_closed(uv_handle_t *h)
{
	struct rp_closewatch *w = h->data;
	close(w->fd);
	rp_fd_budget_give();
	atomic_fetch_sub_explicit(&rp_closewatch_active, 1, memory_order_relaxed);
	free(w);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct rp_closewatch *w = p->data;
	assert(!w->destroyed);
	if (status == 0 && !(events & UV_DISCONNECT))
		return;
	uv_poll_stop(&w->poll);
	if (w->fired)
		return;
	w->fired = 1;
	/* Make h2o's next write fail so it releases the connection now rather
	 * than answering a peer that left. */
	shutdown(w->fd, SHUT_RDWR);
	w->cb(w, w->data);
}

struct rp_closewatch *rp_closewatch_create(uv_loop_t *loop, h2o_req_t *req, rp_closewatch_cb cb,
					   void *data)
{
	if (req->version >= 0x200 || !req->conn->callbacks->get_socket)
		return NULL;
	h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
	if (!sock)
		return NULL;
	int orig = h2o_socket_get_fd(sock);
	if (orig < 0)
		return NULL;
	if (!rp_fd_budget_take_watch()) {
		rp_fd_budget_count_watch_skipped();
		return NULL;
	}
	struct rp_closewatch *w = calloc(1, sizeof *w);
	if (!w)
		goto err_after_take;
	if ((w->fd = fcntl(orig, F_DUPFD_CLOEXEC, 0)) < 0)
		goto err_after_alloc;
	if (uv_poll_init_socket(loop, &w->poll, w->fd) != 0)
		goto err_after_dup;
	w->poll.data = w;
	w->cb = cb;
	w->data = data;
	atomic_fetch_add_explicit(&rp_closewatch_active, 1, memory_order_relaxed);
	if (uv_poll_start(&w->poll, UV_DISCONNECT, on_poll) != 0) {
		w->destroyed = 1;
		uv_close((uv_handle_t *)&w->poll, on_closed);
		return NULL;
	}
	return w;

err_after_dup:
	close(w->fd);
err_after_alloc:
	free(w);
err_after_take:
	rp_fd_budget_give();
	return NULL;
}

void rp_closewatch_destroy(struct rp_closewatch *w)
{
	if (!w)
		return;
	assert(!w->destroyed);
	w->destroyed = 1;
	uv_close((uv_handle_t *)&w->poll, on_closed);
}
