/* The raftplane-proxy process: options, the object shared by the main
 * thread and the workers, and the generation hand-over between them.
 *
 * Threads: the main thread runs the subscription client, the admin server,
 * the active health checks and every allocation or release of generations
 * and registries. N worker threads each run their own libuv loop and h2o
 * context, accept on their own descriptor of each listening socket (one
 * bound socket per address:port, see listeners.h) and forward requests.
 *
 * Generation swap (invariants):
 *  1. The main thread builds a generation completely (listeners bound),
 *     then publishes it: under publish_lock it replaces `published` and bumps
 *     `epoch`, then wakes every worker. The previous generation goes to the
 *     retired list; the main thread's reference to it is dropped.
 *  2. A worker woken up takes a reference to `published` under publish_lock,
 *     opens/closes its listening sockets to match, makes it its current
 *     generation, drops its reference to the previous one and reports the
 *     epoch it runs in adopted_epoch.
 *  3. A request takes a reference to its worker's current generation when it
 *     starts and drops it when h2o disposes the request, so a swap never
 *     changes the routing of a request in flight.
 *  4. Once every worker reports the new epoch, the new generation serves
 *     everywhere: the snapshot is written to the cache and ACKed.
 *  5. The main thread frees a retired generation once its refcount is zero
 *     (checked when workers report and on a timer); nobody can take a new
 *     reference to it by (2).
 */
#ifndef RP_PROXY_PROXY_H
#define RP_PROXY_PROXY_H

#include <h2o.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "connlimit.h"
#include "generation.h"
#include "ptls.h"
#include "reporter.h"
#include "subscription.h"

struct rp_worker;

struct rp_proxy_opts {
	const char *node_id;
	const char *servers;
	const char *admin;
	const char *cache_dir;
	unsigned workers;
	unsigned wait_ms;
	unsigned pool_max_idle;
	unsigned pool_idle_timeout_ms;
	unsigned drain_ms;
	size_t max_request_body;         /* bytes; larger bodies get 413 before buffering */
	unsigned max_conns_per_ip;       /* traffic listeners, all workers; 0: unlimited */
	unsigned admin_max_conns_per_ip; /* the admin server; 0: unlimited */
	int no_report;                   /* --no-report: no telemetry */
};

struct rp_proxy {
	struct rp_proxy_opts opts;
	uv_loop_t *loop;
	struct rp_sub_client sub;
	struct rp_reporter *reporter; /* telemetry (main thread); NULL with --no-report */
	struct rp_proxy_tls tls;      /* towards the servers (ptls.h) */
	/* this process's Via pseudonym (RFC 9110 7.6.3): node id and a random
	 * per-process token, so that a request coming back is recognised */
	char via_id[RP_MAX_NAME + 24];
	size_t via_id_len;
	h2o_globalconf_t h2o_config;       /* data plane, shared by the workers */
	struct rp_connlimit traffic_conns; /* per client address, shared by the workers */
	struct rp_worker *workers;
	unsigned n_workers;
	/* generation hand-over */
	uv_mutex_t publish_lock;
	struct rp_generation *published; /* guarded by publish_lock for workers */
	uint64_t epoch;                  /* guarded by publish_lock */
	struct rp_generation *retired;   /* main thread */
	uv_async_t adopted;              /* a worker adopted an epoch */
	uv_timer_t sweep;
	/* the update waiting for every worker (main thread) */
	int pending;
	uint64_t pending_epoch;
	int pending_ack; /* came from a server: ACK when adopted */
	/* state shown by the admin server (main thread) */
	int ready;
	int from_cache;
	int stopping; /* written by the main thread under publish_lock, read by workers under it */
	char last_nack[400];
	uint64_t last_nack_version;
	/* a snapshot whose port was in use, tried again before it is NACKed
	 * (main thread): retry_raw is our copy, NULL when none waits */
	uv_timer_t bind_retry;
	void *retry_raw;
	size_t retry_len;
	uint64_t retry_version;
	uint64_t retry_since;
};

/** Wall-clock unix milliseconds. */
uint64_t rp_wall_ms(void);

#endif
