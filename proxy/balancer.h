/* Load balancing: the tables each policy needs (built once per generation)
 * and the pick of one endpoint per attempt. */
#ifndef RP_PROXY_BALANCER_H
#define RP_PROXY_BALANCER_H

#include <h2o.h>
#include <stdint.h>

#include "routing.h"

/** Build @c's tables for its policy (@c embeds them; release with
 * rp_balancer_close()). 0, or -1 when out of memory. */
int rp_balancer_init(struct rp_cluster *c);
/** Free the tables rp_balancer_init() built (the cluster itself is the caller's). */
void rp_balancer_close(struct rp_cluster *c);

/**
 * Pick an endpoint of @c that is in rotation for @req (ring_hash reads its
 * header), preferring one other than @avoid (an index, or -1) when another
 * is available. @rng is the calling thread's generator state.
 * Returns an index into c->eps, or -1 when no endpoint is in rotation.
 */
int rp_balancer_pick(struct rp_cluster *c, h2o_req_t *req, uint64_t *rng, int avoid);

/** Same for a raw key (ring_hash) — used by the unit tests. */
int rp_balancer_pick_key(struct rp_cluster *c, const char *key, size_t key_len, uint64_t *rng,
			 int avoid);

/** 64-bit hash used by ring_hash. */
uint64_t rp_hash64(const void *data, size_t len);

/** xorshift64* step: a uniformly distributed 64-bit value. */
static inline uint64_t rp_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif
