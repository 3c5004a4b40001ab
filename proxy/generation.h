/* A generation: one applied snapshot turned into the immutable structures
 * the workers route with (listeners, route table, clusters with their
 * balancers), refcounted so that each request pins the generation it
 * started on.
 *
 * Invariants:
 *  1. After rp_gen_build() returns, nothing in a generation changes except
 *     the atomics it points to (balancer cursor, shared health and stats
 *     objects), so workers read it without locks.
 *  2. refs counts the main thread's hold (one, until the generation is
 *     retired), each worker whose current generation it is, and each request
 *     that started on it. Only the main thread frees a generation, and only
 *     once refs == 0 after its retirement; workers only decrement.
 *  3. A worker obtains a reference only from the published pointer, under
 *     the publish lock (see worker.c), so a retired generation can never gain
 *     a reference back.
 */
#ifndef RP_PROXY_GENERATION_H
#define RP_PROXY_GENERATION_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "health.h"
#include "listeners.h"
#include "raftplane.pb-c.h"
#include "stats.h"

enum rp_lb { RP_LB_ROUND_ROBIN, RP_LB_LEAST_REQUEST, RP_LB_RING_HASH, RP_LB_RANDOM };

struct rp_endpoint {
	char hostport[80];
	struct sockaddr_storage sa;
	socklen_t salen;
	uint32_t weight;
};

struct rp_ring_entry {
	uint64_t hash;
	uint32_t ep;
};

struct rp_cluster {
	const char *name;
	uint64_t version;
	enum rp_lb lb;
	char *hash_header; /* lower-case header name for ring_hash, else NULL */
	size_t hash_header_len;
	uint32_t connect_timeout_ms;
	struct rp_endpoint *eps;
	struct rp_health **health; /* parallel to eps */
	size_t n_eps;
	uint64_t total_weight;
	/* balancer tables (immutable) */
	uint32_t *rr_seq; /* smooth weighted round-robin order */
	size_t rr_len;
	uint64_t *cum_weight; /* prefix sums of weights, for weighted random */
	struct rp_ring_entry *ring;
	size_t ring_len;
	/* mutable, shared */
	atomic_uint_fast64_t rr_next;
	struct rp_stats *stats;
};

struct rp_header_match {
	char *name; /* lower-case */
	size_t name_len;
	char *value;
	size_t value_len;
};

struct rp_weighted {
	struct rp_cluster *cluster;
	uint32_t weight;
};

struct rp_route {
	const char *name;
	uint64_t version;
	uint32_t priority;
	int exact; /* match.path (exact) instead of match.prefix */
	char *match;
	size_t match_len;
	struct rp_header_match *headers;
	size_t n_headers;
	struct rp_weighted *clusters;
	size_t n_clusters;
	uint64_t total_weight;
	uint32_t timeout_ms;
	uint32_t retries;
	int retry_connect_failure, retry_5xx;
	char *rewrite; /* prefix_rewrite or NULL */
	size_t rewrite_len;
	struct rp_stats *stats;
};

struct rp_listener {
	const char *name;
	uint64_t version;
	struct sockaddr_storage sa; /* as configured; wildcard when any */
	int wildcard;
	struct rp_lsock *sock;
	struct rp_route **routes; /* this listener's routes in evaluation order */
	size_t n_routes;
};

struct rp_generation {
	atomic_int refs;
	uint64_t version;
	uint64_t revision;
	char server[64];    /* where it came from, or "cache" */
	uint64_t applied_at; /* wall-clock unix ms */
	Raftplane__Snapshot *snap; /* decoded snapshot (names point into it) */
	void *raw;                 /* its encoding, for the cache */
	size_t raw_len;
	struct rp_listener *listeners;
	size_t n_listeners;
	struct rp_route *routes;
	size_t n_routes;
	struct rp_cluster *clusters;
	size_t n_clusters;
	struct rp_generation *next_retired;
};

/**
 * Build a generation from the encoded snapshot @raw (copied) on the main
 * thread: decode, resolve names, build balancers, take the shared health and
 * stats objects and bind every listener that is not bound yet.
 * Returns the generation with refs = 1, or NULL with a reason in @err
 * (nothing is kept: sockets bound for it are closed again).
 */
struct rp_generation *rp_gen_build(uv_loop_t *loop, const void *raw, size_t len,
				   unsigned n_workers, char *err, size_t errlen);

static inline void rp_gen_ref(struct rp_generation *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

/** Drop a reference (any thread); freeing is the main thread's job. */
static inline void rp_gen_unref(struct rp_generation *g)
{
	atomic_fetch_sub_explicit(&g->refs, 1, memory_order_release);
}

/** Free @g (main thread, refs must be 0). */
void rp_gen_free(struct rp_generation *g);

/** The listener of @g that a connection accepted on @local belongs to, or NULL. */
const struct rp_listener *rp_gen_listener(const struct rp_generation *g,
					  const struct sockaddr *local);

#endif
