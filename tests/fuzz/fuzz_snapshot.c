/* The proxy's snapshot decode and generation build (proxy/generation.c
 * rp_gen_create: protobuf-c decode, cluster/route/listener resolution,
 * balancer tables, shared health and stats objects), on the body of a
 * subscription answer or a cache file. Listening sockets are replaced by test
 * doubles that count instead of binding (the
 * fuzzer must not bind the addresses it invents), and health-check timers
 * are stopped by rp_gen_destroy before the loop runs, so nothing connects.
 * A built generation picks endpoints inside its clusters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/balancer.h"
#include "proxy/generation.h"
#include "proxy/listeners.h"

/* ---- test doubles for proxy/listeners.c (its object is not linked) ---- */
unsigned rp_lsock_busy_failures;
static int lsocks;

void rp_hostport(char *out, size_t outlen, const char *address, unsigned port)
{
	snprintf(out, outlen, strchr(address, ':') ? "[%s]:%u" : "%s:%u", address, port);
}

struct rp_lsock *rp_lsock_get(const char *address, unsigned port, unsigned n_workers, char *err,
			      size_t errlen)
{
	(void)n_workers;
	struct rp_lsock *ls = calloc(1, sizeof *ls);
	if (!ls) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rp_hostport(ls->key, sizeof ls->key, address, port);
	ls->refs = 1;
	lsocks++;
	return ls;
}

void rp_lsock_put(struct rp_lsock *ls)
{
	if (ls) {
		lsocks--;
		free(ls);
	}
}

void rp_lsock_retire_others(struct rp_lsock *const *keep, size_t n)
{
	(void)keep, (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uv_loop_t loop;
	static int init;
	if (!init) {
		uv_loop_init(&loop);
		init = 1;
	}
	char err[256];
	err[0] = '\0';
	struct rp_generation *g = rp_gen_create(&loop, data, size, 2, err, sizeof err);
	if (!g) {
		if (!err[0] || lsocks != 0)
			abort();
	} else {
		uint64_t rng = 88172645463325252ull;
		for (size_t i = 0; i < g->n_clusters; i++) {
			struct rp_cluster *c = &g->clusters[i];
			for (int k = 0; k < 4; k++) {
				int e = rp_balancer_pick_key(c, (const char *)data,
							     size < 16 ? size : 16, &rng, k - 1);
				if (e < -1 || (e >= 0 && (size_t)e >= c->n_eps))
					abort();
			}
		}
		for (size_t i = 0; i < g->n_listeners; i++)
			for (size_t j = 0; j < g->listeners[i].n_routes; j++)
				if (!g->listeners[i].routes[j]->n_clusters)
					abort();
		atomic_store(&g->refs, 0);
		rp_gen_destroy(g);
		if (lsocks != 0)
			abort();
	}
	uv_run(&loop, UV_RUN_NOWAIT); /* closes the health timers */
	return 0;
}
