/* Building and freeing generations (main thread). */
#include "generation.h"

#include <assert.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "client.h"
#include "router.h"

static char *lower_dup(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = (char)tolower((unsigned char)s[i]);
	d[n] = '\0';
	*len = n;
	return d;
}

static int parse_lb(const char *s, enum rp_lb *lb)
{
	static const struct {
		const char *name;
		enum rp_lb lb;
	} t[] = {{"round_robin", RP_LB_ROUND_ROBIN},
		 {"", RP_LB_ROUND_ROBIN},
		 {"least_request", RP_LB_LEAST_REQUEST},
		 {"ring_hash", RP_LB_RING_HASH},
		 {"random", RP_LB_RANDOM}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (strcmp(s, t[i].name) == 0) {
			*lb = t[i].lb;
			return 0;
		}
	}
	return -1;
}

static int build_cluster(uv_loop_t *loop, struct rp_cluster *c, const Raftplane__Cluster *pc,
			 char *err, size_t errlen)
{
	c->name = pc->name;
	c->version = pc->version;
	c->connect_timeout_ms = pc->connect_timeout_ms ? pc->connect_timeout_ms : 1000;
	atomic_init(&c->rr_next, 0);
	if (parse_lb(pc->lb_policy, &c->lb) != 0) {
		snprintf(err, errlen, "cluster %s: unknown lb_policy \"%s\"", pc->name,
			 pc->lb_policy);
		return -1;
	}
	if (c->lb == RP_LB_RING_HASH) {
		if (strncmp(pc->hash_on, "header:", 7) != 0 || !pc->hash_on[7]) {
			snprintf(err, errlen, "cluster %s: ring_hash needs hash_on \"header:NAME\"",
				 pc->name);
			return -1;
		}
		if (!(c->hash_header = lower_dup(pc->hash_on + 7, &c->hash_header_len)))
			goto oom;
	}
	if (!(c->stats = rp_stats_get(RP_STATS_CLUSTER, pc->name)))
		goto oom;
	if (pc->n_endpoints) {
		c->eps = calloc(pc->n_endpoints, sizeof *c->eps);
		c->health = calloc(pc->n_endpoints, sizeof *c->health);
		if (!c->eps || !c->health)
			goto oom;
	}
	for (size_t i = 0; i < pc->n_endpoints; i++) {
		const Raftplane__Endpoint *pe = pc->endpoints[i];
		struct rp_endpoint *e = &c->eps[i];
		rp_hostport(e->hostport, sizeof e->hostport, pe->address, pe->port);
		if (pe->port == 0 || pe->port > 65535 ||
		    rp_parse_hostport(e->hostport, &e->sa) != 0) {
			snprintf(err, errlen,
				 "cluster %s: endpoint %s is not an IP address and port", pc->name,
				 e->hostport);
			return -1;
		}
		e->salen = e->sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						       : sizeof(struct sockaddr_in);
		e->weight = pe->weight ? pe->weight : 1;
		c->n_eps = i + 1;
		if (!(c->health[i] = rp_health_get(loop, pc->name, e->hostport, pc->health_check)))
			goto oom;
	}
	if (rp_balancer_init(c) != 0)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "cluster %s: out of memory", pc->name);
	return -1;
}

static struct rp_cluster *find_cluster(struct rp_generation *g, const char *name)
{
	size_t lo = 0, hi = g->n_clusters;
	while (lo < hi) { /* the snapshot sorts clusters by name */
		size_t mid = (lo + hi) / 2;
		int c = strcmp(g->clusters[mid].name, name);
		if (c == 0)
			return &g->clusters[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = 0; i < g->n_clusters; i++) /* in case a server does not sort */
		if (strcmp(g->clusters[i].name, name) == 0)
			return &g->clusters[i];
	return NULL;
}

static int build_route(struct rp_generation *g, struct rp_route *r, const Raftplane__Route *pr,
		       char *err, size_t errlen)
{
	r->name = pr->name;
	r->version = pr->version;
	r->priority = pr->priority;
	r->exact = pr->path && pr->path[0];
	const char *match = r->exact ? pr->path : pr->prefix;
	if (match[0] != '/') {
		snprintf(err, errlen, "route %s: match must be a path starting with /", pr->name);
		return -1;
	}
	/* matched against normalised request paths: normalise it the same way */
	if (!(r->match = rp_route_normalize(match, &r->match_len)))
		goto oom;
	r->timeout_ms = pr->timeout_ms ? pr->timeout_ms : 15000;
	r->retries = pr->retry_attempts;
	r->retry_connect_failure = pr->retry_connect_failure;
	r->retry_5xx = pr->retry_5xx;
	if (pr->has_prefix_rewrite && pr->prefix_rewrite[0] == '/') {
		/* forwarded as is: only bytes legal in a request target */
		if (!(r->rewrite = rp_route_normalize(pr->prefix_rewrite, &r->rewrite_len)))
			goto oom;
	} else if (pr->has_prefix_rewrite) {
		r->rewrite = strdup("");
		if (!r->rewrite)
			goto oom;
	}
	if (!(r->stats = rp_stats_get(RP_STATS_ROUTE, pr->name)))
		goto oom;
	if (pr->n_headers && !(r->headers = calloc(pr->n_headers, sizeof *r->headers)))
		goto oom;
	for (size_t i = 0; i < pr->n_headers; i++) {
		struct rp_header_match *h = &r->headers[i];
		if (!(h->name = lower_dup(pr->headers[i]->name, &h->name_len)))
			goto oom;
		r->n_headers = i + 1;
		h->value = pr->headers[i]->exact;
		h->value_len = strlen(h->value);
	}
	size_t n = pr->n_weighted_clusters ? pr->n_weighted_clusters : 1;
	if (!(r->clusters = calloc(n, sizeof *r->clusters)))
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const char *cn = pr->n_weighted_clusters ? pr->weighted_clusters[i]->cluster
							 : pr->cluster;
		uint32_t w = pr->n_weighted_clusters ? pr->weighted_clusters[i]->weight : 1;
		struct rp_cluster *c = find_cluster(g, cn);
		if (!c) {
			snprintf(err, errlen, "route %s: unknown cluster \"%s\"", pr->name, cn);
			return -1;
		}
		r->clusters[i] = (struct rp_weighted){c, w ? w : 1};
		r->total_weight += w ? w : 1;
		r->n_clusters = i + 1;
	}
	return 0;
oom:
	snprintf(err, errlen, "route %s: out of memory", pr->name);
	return -1;
}

static int cmp_route(const void *a, const void *b)
{
	const struct rp_route *x = *(struct rp_route *const *)a, *y = *(struct rp_route *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int is_wildcard(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	return memcmp(a, &in6addr_any, sizeof *a) == 0;
}

static int build_listener(struct rp_generation *g, struct rp_listener *l,
			  const Raftplane__Listener *pl, unsigned n_workers, char *err,
			  size_t errlen)
{
	char hp[80];
	l->name = pl->name;
	l->version = pl->version;
	rp_hostport(hp, sizeof hp, pl->address, pl->port);
	if (pl->port == 0 || pl->port > 65535 || rp_parse_hostport(hp, &l->sa) != 0) {
		snprintf(err, errlen, "listener %s: %s is not an IP address and port", pl->name,
			 hp);
		return -1;
	}
	l->wildcard = is_wildcard(&l->sa);
	for (size_t i = 0; i < g->n_routes; i++)
		if (strcmp(g->snap->routes[i]->listener, pl->name) == 0)
			l->n_routes++;
	if (l->n_routes && !(l->routes = calloc(l->n_routes, sizeof *l->routes))) {
		snprintf(err, errlen, "listener %s: out of memory", pl->name);
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < g->n_routes; i++)
		if (strcmp(g->snap->routes[i]->listener, pl->name) == 0)
			l->routes[k++] = &g->routes[i];
	if (l->n_routes)
		qsort(l->routes, l->n_routes, sizeof *l->routes, cmp_route);
	if (!(l->sock = rp_lsock_get(pl->address, pl->port, n_workers, err, errlen)))
		return -1;
	return 0;
}

struct rp_generation *rp_gen_create(uv_loop_t *loop, const void *raw, size_t len,
				    unsigned n_workers, char *err, size_t errlen)
{
	struct rp_generation *g = calloc(1, sizeof *g);
	if (!g || !(g->raw = malloc(len ? len : 1))) {
		free(g);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(g->raw, raw, len);
	g->raw_len = len;
	atomic_init(&g->refs, 1);
	g->snap = raftplane__snapshot__unpack(NULL, len, g->raw);
	if (!g->snap) {
		snprintf(err, errlen, "undecodable snapshot");
		goto fail;
	}
	g->version = g->snap->version;
	g->revision = g->snap->revision;
	const Raftplane__Snapshot *s = g->snap;
	if ((s->n_clusters && !(g->clusters = calloc(s->n_clusters, sizeof *g->clusters))) ||
	    (s->n_routes && !(g->routes = calloc(s->n_routes, sizeof *g->routes))) ||
	    (s->n_listeners && !(g->listeners = calloc(s->n_listeners, sizeof *g->listeners)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < s->n_clusters; i++) {
		g->n_clusters = i + 1;
		if (build_cluster(loop, &g->clusters[i], s->clusters[i], err, errlen) != 0)
			goto fail;
	}
	for (size_t i = 0; i < s->n_routes; i++) {
		g->n_routes = i + 1;
		if (build_route(g, &g->routes[i], s->routes[i], err, errlen) != 0)
			goto fail;
	}
	for (size_t i = 0; i < s->n_listeners; i++) {
		g->n_listeners = i + 1;
		if (build_listener(g, &g->listeners[i], s->listeners[i], n_workers, err, errlen) !=
		    0)
			goto fail;
	}
	return g;
fail:
	atomic_store(&g->refs, 0);
	rp_gen_destroy(g);
	return NULL;
}

void rp_gen_destroy(struct rp_generation *g)
{
	assert(atomic_load_explicit(&g->refs, memory_order_acquire) == 0); /* invariant 4 */
	for (size_t i = 0; i < g->n_listeners; i++) {
		rp_lsock_put(g->listeners[i].sock);
		free(g->listeners[i].routes);
	}
	for (size_t i = 0; i < g->n_routes; i++) {
		struct rp_route *r = &g->routes[i];
		rp_stats_put(r->stats);
		for (size_t j = 0; j < r->n_headers; j++)
			free(r->headers[j].name);
		free(r->headers);
		free(r->clusters);
		free(r->match);
		free(r->rewrite);
	}
	for (size_t i = 0; i < g->n_clusters; i++) {
		struct rp_cluster *c = &g->clusters[i];
		for (size_t j = 0; j < c->n_eps; j++)
			rp_health_put(c->health[j]);
		rp_stats_put(c->stats);
		rp_balancer_close(c);
		free(c->eps);
		free(c->health);
		free(c->hash_header);
	}
	free(g->listeners);
	free(g->routes);
	free(g->clusters);
	if (g->snap)
		raftplane__snapshot__free_unpacked(g->snap, NULL);
	free(g->raw);
	free(g);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static int same_port(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_port ==
		       ((const struct sockaddr_in *)b)->sin_port;
	return ((const struct sockaddr_in6 *)a)->sin6_port ==
	       ((const struct sockaddr_in6 *)b)->sin6_port;
}

const struct rp_listener *rp_gen_listener(const struct rp_generation *g,
					  const struct sockaddr *local)
{
	for (size_t i = 0; i < g->n_listeners; i++)
		if (!g->listeners[i].wildcard && same_addr(&g->listeners[i].sa, local))
			return &g->listeners[i];
	for (size_t i = 0; i < g->n_listeners; i++)
		if (g->listeners[i].wildcard && same_port(&g->listeners[i].sa, local))
			return &g->listeners[i];
	return NULL;
}
