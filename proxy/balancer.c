/* The four load-balancing policies.
 *
 * round_robin   smooth weighted order precomputed per generation (each
 *               endpoint appears weight times, evenly spread), walked with
 *               an atomic cursor shared by the workers.
 * least_request power of two choices: two distinct weighted-random endpoints, the one
 *               with fewer requests in flight per unit of weight wins.
 * ring_hash     a ring of 160 points per unit of weight placed by hashing
 *               "host:port#k", so a point's position depends only on its
 *               endpoint: adding or removing one endpoint moves only the keys
 *               of its own arcs (~1/N). Keyed by a request header; a request
 *               without it is balanced at random.
 * random        weighted random.
 * Every policy skips endpoints out of rotation (health.h); with none left
 * the pick fails (503). */
#include "balancer.h"

#include <stdlib.h>
#include <string.h>

#include "health.h"

#define RR_MAX_LEN 65536
#define RING_POINTS 160
#define RING_MAX 131072

uint64_t rp_hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	/* murmur3 finaliser: FNV alone clusters short keys */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* ---- building ------------------------------------------------------------ */

struct slot {
	double t;
	uint32_t ep;
};

static int cmp_slot(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->ep < y->ep ? -1 : x->ep > y->ep;
}

/* Endpoint i gets w_i slots at times (k + 0.5) / w_i: sorted by time, the
 * order interleaves endpoints in proportion to their weights. */
static int build_rr(struct rp_cluster *c)
{
	double scale = c->total_weight > RR_MAX_LEN ? (double)RR_MAX_LEN / (double)c->total_weight
						    : 1;
	size_t len = 0;
	for (size_t i = 0; i < c->n_eps; i++) {
		uint32_t w = (uint32_t)((double)c->eps[i].weight * scale);
		len += w ? w : 1;
	}
	struct slot *s = malloc(len * sizeof *s);
	c->rr_seq = malloc(len * sizeof *c->rr_seq);
	if (!s || !c->rr_seq) {
		free(s);
		return -1;
	}
	size_t n = 0;
	for (size_t i = 0; i < c->n_eps; i++) {
		uint32_t w = (uint32_t)((double)c->eps[i].weight * scale);
		w = w ? w : 1;
		for (uint32_t k = 0; k < w; k++)
			s[n++] = (struct slot){((double)k + 0.5) / (double)w, (uint32_t)i};
	}
	qsort(s, n, sizeof *s, cmp_slot);
	for (size_t i = 0; i < n; i++)
		c->rr_seq[i] = s[i].ep;
	c->rr_len = n;
	free(s);
	return 0;
}

static int cmp_ring(const void *a, const void *b)
{
	const struct rp_ring_entry *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->ep < y->ep ? -1 : x->ep > y->ep;
}

static int build_ring(struct rp_cluster *c)
{
	uint64_t want = c->total_weight * RING_POINTS;
	double scale = want > RING_MAX ? (double)RING_MAX / (double)want : 1;
	size_t len = 0;
	for (size_t i = 0; i < c->n_eps; i++) {
		size_t k = (size_t)((double)c->eps[i].weight * RING_POINTS * scale);
		len += k ? k : 1;
	}
	c->ring = malloc(len * sizeof *c->ring);
	if (!c->ring)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < c->n_eps; i++) {
		size_t k = (size_t)((double)c->eps[i].weight * RING_POINTS * scale);
		k = k ? k : 1;
		for (size_t j = 0; j < k; j++) {
			char key[112];
			int kl = snprintf(key, sizeof key, "%s#%zu", c->eps[i].hostport, j);
			c->ring[n++] = (struct rp_ring_entry){rp_hash64(key, (size_t)kl),
							      (uint32_t)i};
		}
	}
	qsort(c->ring, n, sizeof *c->ring, cmp_ring);
	c->ring_len = n;
	return 0;
}

int rp_balancer_init(struct rp_cluster *c)
{
	c->total_weight = 0;
	if (c->n_eps == 0)
		return 0;
	c->cum_weight = malloc(c->n_eps * sizeof *c->cum_weight);
	if (!c->cum_weight)
		return -1;
	for (size_t i = 0; i < c->n_eps; i++) {
		c->total_weight += c->eps[i].weight ? c->eps[i].weight : 1;
		c->cum_weight[i] = c->total_weight;
	}
	if (c->lb == RP_LB_ROUND_ROBIN && build_rr(c) != 0)
		return -1;
	if (c->lb == RP_LB_RING_HASH && build_ring(c) != 0)
		return -1;
	return 0;
}

void rp_balancer_close(struct rp_cluster *c)
{
	free(c->cum_weight);
	free(c->rr_seq);
	free(c->ring);
}

/* ---- picking ------------------------------------------------------------- */

static int ok2(struct rp_cluster *c, size_t i, int skip, int skip2, uint64_t now)
{
	return (int)i != skip && (int)i != skip2 && rp_health_usable(c->health[i], now);
}

static int ok(struct rp_cluster *c, size_t i, int skip, uint64_t now)
{
	return ok2(c, i, skip, -1, now);
}

/* Weighted random among the usable endpoints: a few blind draws (cheap when
 * most are in rotation), then an exact draw over the usable ones. */
static int pick_random2(struct rp_cluster *c, uint64_t *rng, int skip, int skip2, uint64_t now)
{
	for (int tries = 0; tries < 4; tries++) {
		uint64_t r = rp_rand(rng) % c->total_weight;
		size_t lo = 0, hi = c->n_eps - 1;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (c->cum_weight[mid] > r)
				hi = mid;
			else
				lo = mid + 1;
		}
		if (ok2(c, lo, skip, skip2, now))
			return (int)lo;
	}
	uint64_t usable = 0;
	for (size_t i = 0; i < c->n_eps; i++)
		if (ok2(c, i, skip, skip2, now))
			usable += c->eps[i].weight;
	if (usable == 0)
		return -1;
	uint64_t r = rp_rand(rng) % usable;
	for (size_t i = 0; i < c->n_eps; i++) {
		if (!ok2(c, i, skip, skip2, now))
			continue;
		if (r < c->eps[i].weight)
			return (int)i;
		r -= c->eps[i].weight;
	}
	return -1;
}

static int pick_random(struct rp_cluster *c, uint64_t *rng, int skip, uint64_t now)
{
	return pick_random2(c, rng, skip, -1, now);
}

static int pick_rr(struct rp_cluster *c, int skip, uint64_t now)
{
	uint64_t start = atomic_fetch_add_explicit(&c->rr_next, 1, memory_order_relaxed);
	for (size_t k = 0; k < c->rr_len; k++) {
		uint32_t i = c->rr_seq[(start + k) % c->rr_len];
		if (ok(c, i, skip, now))
			return (int)i;
	}
	return -1;
}

static int pick_least(struct rp_cluster *c, uint64_t *rng, int skip, uint64_t now)
{
	int a = pick_random(c, rng, skip, now);
	if (a < 0)
		return -1;
	int b = pick_random2(c, rng, skip, a, now); /* two distinct candidates */
	if (b < 0)
		return a;
	uint64_t ra = (uint64_t)atomic_load_explicit(&c->health[a]->active_rq,
						     memory_order_relaxed);
	uint64_t rb = (uint64_t)atomic_load_explicit(&c->health[b]->active_rq,
						     memory_order_relaxed);
	/* ra / wa < rb / wb without division */
	uint64_t la = ra * c->eps[b].weight, lb = rb * c->eps[a].weight;
	if (la != lb)
		return la < lb ? a : b;
	return (rp_rand(rng) & 1) ? a : b;
}

static int pick_ring(struct rp_cluster *c, const char *key, size_t len, int skip, uint64_t now)
{
	uint64_t h = rp_hash64(key, len);
	size_t lo = 0, hi = c->ring_len;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t k = 0; k < c->ring_len; k++) {
		uint32_t i = c->ring[(lo + k) % c->ring_len].ep;
		if (ok(c, i, skip, now))
			return (int)i;
	}
	return -1;
}

static int pick_once(struct rp_cluster *c, const char *key, size_t key_len, uint64_t *rng, int skip)
{
	uint64_t now = rp_now_ms();
	switch (c->lb) {
	case RP_LB_ROUND_ROBIN: return pick_rr(c, skip, now);
	case RP_LB_LEAST_REQUEST: return pick_least(c, rng, skip, now);
	case RP_LB_RING_HASH:
		if (key)
			return pick_ring(c, key, key_len, skip, now);
		return pick_random(c, rng, skip, now);
	case RP_LB_RANDOM:
	default: return pick_random(c, rng, skip, now);
	}
}

int rp_balancer_pick_key(struct rp_cluster *c, const char *key, size_t key_len, uint64_t *rng,
			 int avoid)
{
	if (c->n_eps == 0)
		return -1;
	int i = pick_once(c, key, key_len, rng, avoid);
	if (i < 0 && avoid >= 0)
		i = pick_once(c, key, key_len, rng, -1);
	return i;
}

int rp_balancer_pick(struct rp_cluster *c, h2o_req_t *req, uint64_t *rng, int avoid)
{
	const char *key = NULL;
	size_t key_len = 0;
	if (c->lb == RP_LB_RING_HASH && c->hash_header) {
		ssize_t at = h2o_find_header_by_str(&req->headers, c->hash_header,
						    c->hash_header_len, -1);
		if (at >= 0) {
			key = req->headers.entries[at].value.base;
			key_len = req->headers.entries[at].value.len;
		}
	}
	return rp_balancer_pick_key(c, key, key_len, rng, avoid);
}
