/* Worker threads: one libuv loop and h2o context each, their listening
 * sockets, upstream connection pools and timeouts (see proxy.h for the
 * generation hand-over). */
#ifndef RP_PROXY_WORKER_H
#define RP_PROXY_WORKER_H

#include <h2o.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "proxy.h"
#include "upconn.h"

#define RP_POOL_BUCKETS 256

struct rp_wlistener {
	uv_tcp_t tcp;
	struct rp_lsock *sock;
	struct rp_worker *w;
	struct rp_wlistener *next;
};

struct rp_wtimeout {
	uint64_t ms;
	h2o_timeout_t timeout;
	struct rp_wtimeout *next;
};

#define RP_SOCKNAME_CACHE 256

/* Local address of a client connection, cached per connection (h2o asks
 * the kernel each time). */
struct rp_sockname {
	const h2o_conn_t *conn;
	uint64_t conn_id;
	socklen_t len;
	struct sockaddr_storage sa;
};

struct rp_worker {
	unsigned id;
	struct rp_proxy *proxy;
	uv_thread_t thread;
	uv_sem_t started;
	int init_failed;
	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t drain;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	struct rp_generation *gen; /* current (holds a reference) */
	atomic_uint_fast64_t adopted_epoch;
	struct rp_wlistener *listeners;
	struct rp_pool *pools[RP_POOL_BUCKETS];
	struct rp_wtimeout *timeouts;
	uint64_t rng;
	struct rp_sockname socknames[RP_SOCKNAME_CACHE];
	uint64_t active; /* requests in flight */
	uint64_t conns;  /* client connections open */
	uint64_t drain_started;
	int stopping;
};

/** Start @p's workers (threads running). 0, or -1 with a log line. */
int rp_workers_start(struct rp_proxy *p);
/** Wake every worker to adopt the published generation (or to stop). */
void rp_workers_wake(struct rp_proxy *p);
/** Ask the workers to stop (close listeners, drain) and join them. */
void rp_workers_stop(struct rp_proxy *p);

/** The pool of @w for endpoint @e, created on first use. NULL on OOM. */
struct rp_pool *rp_worker_pool(struct rp_worker *w, const struct rp_endpoint *e);
/** A timeout list of @w firing after @ms (shared by all users of that value). */
h2o_timeout_t *rp_worker_timeout(struct rp_worker *w, uint64_t ms);

#endif
