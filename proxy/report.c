/* Building a Report from the proxy's registries. Counters are read with
 * relaxed atomics while workers keep counting: each value is exact at some
 * instant during the build, so consecutive reports are monotonic per
 * counter (the server's deltas never go negative), though not one
 * consistent snapshot across counters. */
#include "report.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generation.h"
#include "health.h"
#include "stats.h"

_Static_assert(RP_LAT_BUCKETS + 1 == RP_REPORT_LAT_BUCKETS,
	       "TrafficStats.latency has one entry per bucket of stats.h");

static void fill_traffic(struct rp_report_traffic *t, struct rp_stats *s)
{
	snprintf(t->name, sizeof t->name, "%s", s->name);
	t->m.requests = rp_get(&s->rq_total);
	for (int i = 0; i < RP_REPORT_CLASSES; i++)
		t->responses[i] = rp_get(&s->status[i]);
	t->m.upstream_requests = rp_get(&s->upstream_rq);
	t->m.retries = rp_get(&s->retries);
	t->m.connect_errors = rp_get(&s->connect_fail);
	t->m.resets = rp_get(&s->resets);
	t->m.timeouts = rp_get(&s->timeouts);
	t->m.no_healthy = rp_get(&s->no_healthy);
	t->m.active = rp_get(&s->rq_active);
	for (int i = 0; i < RP_REPORT_LAT_BUCKETS; i++)
		t->latency[i] = rp_get(&s->lat_bucket[i]);
	t->m.latency_sum_us = rp_get(&s->lat_sum_us);
}

static void fill_endpoint(struct rp_report_endpoint *e, struct rp_health *h, uint64_t now)
{
	uint64_t since = now;
	snprintf(e->cluster, sizeof e->cluster, "%s", h->cluster);
	snprintf(e->address, sizeof e->address, "%s", h->hostport);
	e->m.state = (Raftplane__EndpointStats__State)rp_health_state(h, now, &since, e->reason,
								      sizeof e->reason);
	e->m.since_ms = now > since ? now - since : 0;
	e->m.requests = atomic_load_explicit(&h->requests, memory_order_relaxed);
	e->m.errors = atomic_load_explicit(&h->errors, memory_order_relaxed);
}

/* Every registered stats object of @kind in a new array (*@n of them). */
static struct rp_stats **list_stats(int kind, size_t *n)
{
	size_t cap = 64;
	for (;;) {
		struct rp_stats **v = malloc(cap * sizeof *v);
		if (!v)
			return NULL;
		*n = rp_stats_list(kind, v, cap);
		if (*n < cap)
			return v;
		free(v);
		cap *= 4;
	}
}

int rp_report_build(struct rp_report_msg *m, const struct rp_generation *g, uint64_t now_ms)
{
	size_t nr = 0, nc = 0, ne = rp_health_list(NULL, 0);
	struct rp_stats **routes = list_stats(RP_STATS_ROUTE, &nr);
	struct rp_stats **clusters = list_stats(RP_STATS_CLUSTER, &nc);
	struct rp_health **eps = malloc((ne ? ne : 1) * sizeof *eps);
	int rv = -1;
	if (!routes || !clusters || !eps || rp_report_msg_alloc(m, nr, nc, ne) != 0)
		goto out;
	size_t got = rp_health_list(eps, ne);
	assert(got == ne);
	(void)got;
	for (size_t i = 0; i < nr; i++)
		fill_traffic(&m->routes[i], routes[i]);
	for (size_t i = 0; i < nc; i++)
		fill_traffic(&m->clusters[i], clusters[i]);
	for (size_t i = 0; i < ne; i++)
		fill_endpoint(&m->endpoints[i], eps[i], now_ms);
	if (g) {
		m->r.version = g->version;
		snprintf(m->cluster_id, sizeof m->cluster_id, "%s",
			 g->snap && g->snap->cluster_id ? g->snap->cluster_id : "");
	}
	rv = 0;
out:
	free(routes);
	free(clusters);
	free(eps);
	return rv;
}
