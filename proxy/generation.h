/* A generation: one applied snapshot turned into the immutable structures
 * the workers route with (the listeners, routes and clusters of routing.h,
 * whose balancer tables balancer.c builds and whose paths router.c
 * normalises), refcounted so that each request pins the generation it
 * started on. Include order: routing.h (data) <- balancer.h, router.h <-
 * generation.h; neither the router nor the balancers know the generation.
 *
 * Invariants:
 *  1. After rp_gen_create() returns, nothing in a generation changes except
 *     the atomics it points to (balancer cursor, shared health and stats
 *     objects), so workers read it without locks.
 *  2. refs counts the main thread's hold (one, until the generation is
 *     retired), each worker whose current generation it is, and each request
 *     that started on it. Only the main thread frees a generation, and only
 *     once refs == 0 after its retirement; workers only decrement.
 *  3. A worker obtains a reference only from the published pointer, under
 *     the publish lock (see worker.c), so a retired generation can never gain
 *     a reference back.
 *  4. refs never goes below zero, a reference is only taken on a generation
 *     that is still held (refs > 0: the caller holds one, or the publish
 *     lock guards the main thread's), and rp_gen_destroy() runs only at zero;
 *     rp_gen_ref/unref/free assert this.
 */
#ifndef RP_PROXY_GENERATION_H
#define RP_PROXY_GENERATION_H

#include <assert.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "health.h"
#include "listeners.h"
#include "raftplane.pb-c.h"
#include "routing.h"
#include "stats.h"

/** One applied snapshot and what was built from it (invariants above). */
struct rp_generation {
	atomic_int refs;
	uint64_t version;
	uint64_t revision;
	char server[64];           /* where it came from, or "cache" */
	uint64_t applied_at;       /* wall-clock unix ms */
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
struct rp_generation *rp_gen_create(uv_loop_t *loop, const void *raw, size_t len,
				    unsigned n_workers, char *err, size_t errlen);

/** Take a reference to @g, which the caller holds or reads from the
 * published pointer under the publish lock (invariants 3 and 4). */
static inline void rp_gen_ref(struct rp_generation *g)
{
	int before = atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	assert(before > 0); /* a generation at zero may be freed at any time */
	(void)before;
}

/** Drop a reference (any thread); freeing is the main thread's job. */
static inline void rp_gen_unref(struct rp_generation *g)
{
	int before = atomic_fetch_sub_explicit(&g->refs, 1, memory_order_release);
	assert(before > 0); /* never below zero */
	(void)before;
}

/** Whether @g is held by someone (refs > 0); for assertions. */
static inline int rp_gen_held(struct rp_generation *g)
{
	return atomic_load_explicit(&g->refs, memory_order_relaxed) > 0;
}

/** Free @g (main thread, refs must be 0). */
void rp_gen_destroy(struct rp_generation *g);

/** The listener of @g that a connection accepted on @local belongs to, or NULL. */
const struct rp_listener *rp_gen_listener(const struct rp_generation *g,
					  const struct sockaddr *local);

#endif
