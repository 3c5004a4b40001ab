/* Noticing that an HTTP/1 client went away while its request is parked.
 *
 * h2o 2.2 does not read a connection while a request on it is being
 * handled, so a client that closes during a long poll (watch, subscribe,
 * rollout wait) or while the proxy waits for an upstream is noticed only
 * when the answer is written, possibly minutes later. A close watch polls a
 * duplicate of the connection's socket for the peer's shutdown (EPOLLRDHUP)
 * or an error, without reading a byte, and tells its owner at once.
 *
 * Cost: one dup() and two epoll_ctl() per watch, nothing while parked. */
#ifndef RP_NET_CLOSEWATCH_H
#define RP_NET_CLOSEWATCH_H

#include <h2o.h>
#include <stdatomic.h>
#include <uv.h>

struct rp_closewatch;

/** The client is gone. The connection has been shut down, so whatever the
 * owner answers now fails to write and h2o releases the request at once.
 * The watch has stopped itself; the owner must still call
 * rp_closewatch_destroy() (typically from its request's dispose). */
typedef void (*rp_closewatch_cb)(struct rp_closewatch *w, void *data);

/**
 * Watch the connection of @req. Returns NULL when there is nothing to watch
 * (HTTP/2, where h2o reads the socket itself, or no socket) or on failure
 * (out of descriptors): the caller then simply waits as before.
 * The watch is heap-allocated; destroy it exactly once.
 */
struct rp_closewatch *rp_closewatch_create(uv_loop_t *loop, h2o_req_t *req, rp_closewatch_cb cb,
					   void *data);

/** Stop and free @w (the memory goes in a close callback); no callback runs
 * after this. NULL is accepted. */
void rp_closewatch_destroy(struct rp_closewatch *w);

/** Open close watches in this process (for metrics and tests); updated by
 * any thread that runs watches, read with atomic_load. */
extern atomic_size_t rp_closewatch_active;

#endif
