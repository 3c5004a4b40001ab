/* Unit tests of the proxy's pure parts: balancers, generation building
 * (including the bind failure that makes a NACK) and the snapshot cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "balancer.h"
#include "cache.h"
#include "generation.h"
#include "health.h"
#include "httpcheck.h"
#include "report.h"
#include "reporter.h"
#include "router.h"

/* ---- helpers ---------------------------------------------------------------- */

static void make_cluster(struct rp_cluster *c, enum rp_lb lb, size_t n, const uint32_t *weights)
{
	memset(c, 0, sizeof *c);
	c->name = "c";
	c->lb = lb;
	c->eps = calloc(n, sizeof *c->eps);
	c->health = calloc(n, sizeof *c->health);
	c->n_eps = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(c->eps[i].hostport, sizeof c->eps[i].hostport, "127.0.0.1:%zu", 9000 + i);
		c->eps[i].weight = weights ? weights[i] : 1;
		c->health[i] = rp_health_get(uv_default_loop(), "c", c->eps[i].hostport, NULL);
	}
	assert_int_equal(rp_balancer_init(c), 0);
}

static void free_cluster(struct rp_cluster *c)
{
	for (size_t i = 0; i < c->n_eps; i++)
		rp_health_put(c->health[i]);
	rp_balancer_close(c);
	free(c->eps);
	free(c->health);
	uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* close the health timers */
}

/* ---- balancers ----------------------------------------------------------------- */

static void test_round_robin_weights(void **state)
{
	(void)state;
	struct rp_cluster c;
	uint32_t w[3] = {1, 2, 3};
	uint64_t rng = 1;
	make_cluster(&c, RP_LB_ROUND_ROBIN, 3, w);
	int counts[3] = {0};
	for (int i = 0; i < 600; i++)
		counts[rp_balancer_pick_key(&c, NULL, 0, &rng, -1)]++;
	assert_int_equal(counts[0], 100);
	assert_int_equal(counts[1], 200);
	assert_int_equal(counts[2], 300);
	/* an ejected endpoint is skipped */
	atomic_store(&c.health[2]->ejected_until_ms, rp_now_ms() + 60000);
	for (int i = 0; i < 50; i++)
		assert_int_not_equal(rp_balancer_pick_key(&c, NULL, 0, &rng, -1), 2);
	/* avoid: prefer another endpoint */
	for (int i = 0; i < 50; i++)
		assert_int_not_equal(rp_balancer_pick_key(&c, NULL, 0, &rng, 1), 1);
	/* nothing in rotation */
	atomic_store(&c.health[0]->hc_ok, 0);
	atomic_store(&c.health[1]->hc_ok, 0);
	assert_int_equal(rp_balancer_pick_key(&c, NULL, 0, &rng, -1), -1);
	free_cluster(&c);
}

static void test_random_weights(void **state)
{
	(void)state;
	struct rp_cluster c;
	uint32_t w[2] = {1, 3};
	uint64_t rng = 12345;
	make_cluster(&c, RP_LB_RANDOM, 2, w);
	int counts[2] = {0};
	for (int i = 0; i < 40000; i++)
		counts[rp_balancer_pick_key(&c, NULL, 0, &rng, -1)]++;
	assert_true(counts[0] > 9000 && counts[0] < 11000);
	free_cluster(&c);
}

static void test_least_request(void **state)
{
	(void)state;
	struct rp_cluster c;
	uint64_t rng = 99;
	make_cluster(&c, RP_LB_LEAST_REQUEST, 2, NULL);
	atomic_store(&c.health[0]->active_rq, 10);
	for (int i = 0; i < 100; i++)
		assert_int_equal(rp_balancer_pick_key(&c, NULL, 0, &rng, -1), 1);
	atomic_store(&c.health[0]->active_rq, 0);
	atomic_store(&c.health[1]->active_rq, 0);
	free_cluster(&c);
}

static void test_ring_hash_consistency(void **state)
{
	(void)state;
	struct rp_cluster four, five;
	uint64_t rng = 7;
	make_cluster(&four, RP_LB_RING_HASH, 4, NULL);
	make_cluster(&five, RP_LB_RING_HASH, 5, NULL);
	int moved = 0, share[5] = {0};
	for (int k = 0; k < 10000; k++) {
		char key[32];
		int n = snprintf(key, sizeof key, "user-%d", k);
		int a = rp_balancer_pick_key(&four, key, (size_t)n, &rng, -1);
		int b = rp_balancer_pick_key(&five, key, (size_t)n, &rng, -1);
		assert_int_equal(a, rp_balancer_pick_key(&four, key, (size_t)n, &rng, -1));
		share[b]++;
		if (a != b) {
			moved++;
			assert_int_equal(b, 4); /* keys only move to the new endpoint */
		}
	}
	/* ~1/5 of the keys move */
	assert_true(moved > 1400 && moved < 2600);
	for (int i = 0; i < 5; i++)
		assert_true(share[i] > 1200 && share[i] < 2800);
	free_cluster(&four);
	free_cluster(&five);
}

/* ---- generations ------------------------------------------------------------------ */

static size_t pack_snapshot(uint8_t **out, unsigned port, const char *route_cluster)
{
	Raftplane__Snapshot s;
	Raftplane__Listener l;
	Raftplane__Route r;
	Raftplane__Cluster c;
	Raftplane__Endpoint e;
	raftplane__snapshot__init(&s);
	raftplane__listener__init(&l);
	raftplane__route__init(&r);
	raftplane__cluster__init(&c);
	raftplane__endpoint__init(&e);
	e.address = "127.0.0.1";
	e.port = 9;
	e.weight = 1;
	Raftplane__Endpoint *eps[] = {&e};
	c.name = "api";
	c.lb_policy = "round_robin";
	c.n_endpoints = 1;
	c.endpoints = eps;
	l.name = "edge";
	l.address = "127.0.0.1";
	l.port = port;
	r.name = "r";
	r.listener = "edge";
	r.prefix = "/";
	r.cluster = (char *)route_cluster;
	Raftplane__Listener *ls[] = {&l};
	Raftplane__Route *rs[] = {&r};
	Raftplane__Cluster *cs[] = {&c};
	s.node_id = "n";
	s.version = 3;
	s.n_listeners = 1;
	s.listeners = ls;
	s.n_routes = 1;
	s.routes = rs;
	s.n_clusters = 1;
	s.clusters = cs;
	size_t len = raftplane__snapshot__get_packed_size(&s);
	*out = malloc(len);
	raftplane__snapshot__pack(&s, *out);
	return len;
}

static int busy_port(int *fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(*fd, 1), 0);
	getsockname(*fd, (struct sockaddr *)&sa, &len);
	return ntohs(sa.sin_port);
}

static void test_generation_build(void **state)
{
	(void)state;
	char err[256];
	uint8_t *buf;
	int fd;
	int port = busy_port(&fd);
	close(fd); /* now free */
	size_t len = pack_snapshot(&buf, (unsigned)port, "api");
	struct rp_generation *g = rp_gen_create(uv_default_loop(), buf, len, 2, err, sizeof err);
	assert_non_null(g);
	assert_int_equal(g->version, 3);
	assert_int_equal(g->n_listeners, 1);
	assert_int_equal(g->listeners[0].n_routes, 1);
	assert_ptr_equal(g->routes[0].clusters[0].cluster, &g->clusters[0]);
	atomic_store(&g->refs, 0);
	rp_gen_destroy(g);
	free(buf);

	/* a route to a cluster the snapshot lacks */
	len = pack_snapshot(&buf, (unsigned)port, "nope");
	assert_null(rp_gen_create(uv_default_loop(), buf, len, 1, err, sizeof err));
	assert_non_null(strstr(err, "unknown cluster"));
	free(buf);

	/* a port someone else holds: the reason names it */
	port = busy_port(&fd);
	len = pack_snapshot(&buf, (unsigned)port, "api");
	assert_null(rp_gen_create(uv_default_loop(), buf, len, 1, err, sizeof err));
	char want[64];
	snprintf(want, sizeof want, "listen 127.0.0.1:%d:", port);
	assert_non_null(strstr(err, want));
	close(fd);
	free(buf);

	/* garbage */
	assert_null(rp_gen_create(uv_default_loop(), "\xff\xff\xff", 3, 1, err, sizeof err));
	uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

/* ---- cache ---------------------------------------------------------------------------- */

static void test_cache_roundtrip(void **state)
{
	(void)state;
	char dir[] = "/tmp/rp-unit-cache-XXXXXX", err[256], path[128];
	assert_non_null(mkdtemp(dir));
	void *data;
	size_t len;
	assert_int_equal(rp_cache_load(dir, "n", &data, &len, err, sizeof err), 0);
	assert_int_equal(rp_cache_write(dir, "n", "hello", 5, err, sizeof err), 0);
	assert_int_equal(rp_cache_write(dir, "n", "snapshot", 8, err, sizeof err), 0);
	assert_int_equal(rp_cache_load(dir, "n", &data, &len, err, sizeof err), 1);
	assert_int_equal(len, 8);
	assert_memory_equal(data, "snapshot", 8);
	free(data);
	/* flip a payload byte: refused */
	snprintf(path, sizeof path, "%s/snapshot-n.bin", dir);
	FILE *f = fopen(path, "r+b");
	fseek(f, 22, SEEK_SET);
	fputc('X', f);
	fclose(f);
	assert_int_equal(rp_cache_load(dir, "n", &data, &len, err, sizeof err), -1);
	assert_non_null(strstr(err, "checksum"));
	unlink(path);
	rmdir(dir);
}

/* The request target forwarded: one pass, escapes kept or decoded, dot
 * segments removed, unsafe bytes escaped (net/httpcheck.c). */
static void check_target(const char *raw, const char *want_path, const char *want_query,
			 const char *want_authority)
{
	h2o_mem_pool_t pool;
	h2o_mem_init_pool(&pool);
	struct rp_http_target t;
	const char *why = rp_http_parse_target(&pool, h2o_iovec_init(raw, strlen(raw)), &t);
	if (!want_path) {
		assert_non_null(why);
	} else {
		assert_null(why);
		assert_int_equal(t.path.len, strlen(want_path));
		assert_memory_equal(t.path.base, want_path, t.path.len);
		assert_int_equal(t.query.len, strlen(want_query));
		assert_memory_equal(t.query.base, want_query, t.query.len);
		if (want_authority) {
			assert_int_equal(t.authority.len, strlen(want_authority));
			assert_memory_equal(t.authority.base, want_authority, t.authority.len);
		} else {
			assert_null(t.authority.base);
		}
	}
	h2o_mem_clear_pool(&pool);
}

static void test_target_normalisation(void **state)
{
	(void)state;
	check_target("/", "/", "", NULL);
	check_target("/a/b", "/a/b", "", NULL);
	check_target("/a%0d%0aX:%20y", "/a%0D%0AX:%20y", "", NULL);
	check_target("/a%2fb%3f%00", "/a%2Fb%3F%00", "", NULL);
	check_target("/%41%7e%2D%5f%2e", "/A~-_.", "", NULL);
	check_target("/a/./b/../c", "/a/c", "", NULL);
	check_target("/a/%2e%2E/b", "/b", "", NULL);
	check_target("/..", "/", "", NULL);
	check_target("/../../x", "/x", "", NULL);
	check_target("/a/b/..", "/a/", "", NULL);
	check_target("/a/.", "/a/", "", NULL);
	check_target("/a/..%2f..", "/a/..%2F..", "", NULL);
	check_target("//a//b", "//a//b", "", NULL);
	check_target("/.a/..b/...", "/.a/..b/...", "", NULL);
	check_target("/q?x=%0d&y=\"<>", "/q", "?x=%0d&y=%22%3C%3E", NULL);
	check_target("/\x01\x7f\x80 #", "/%01%7F%80%20%23", "", NULL);
	check_target("http://h.test:81/p?q", "/p", "?q", "h.test:81");
	check_target("HTTP://h.test", "/", "", "h.test");
	check_target("https://h.test?q", "/", "?q", "h.test");
	check_target("/%zz", NULL, NULL, NULL);
	check_target("/%4", NULL, NULL, NULL);
	check_target("/%", NULL, NULL, NULL);
	check_target("*", NULL, NULL, NULL);
	check_target("h.test:443", NULL, NULL, NULL);
	check_target("ftp://h/p", NULL, NULL, NULL);
	check_target("http://a b/p", NULL, NULL, NULL);
	check_target("http:///p", NULL, NULL, NULL);
}

static void test_route_normalise(void **state)
{
	(void)state;
	size_t n;
	char *s = rp_route_normalize("/a?b%zz/x/%2e%2e/c%2f", &n);
	assert_string_equal(s, "/a%3Fb%25zz/c%2F");
	assert_int_equal(n, strlen(s));
	free(s);
	assert_true(rp_http_has_token("close, X-Hop ,keep-alive", 24, "x-hop", 5));
	assert_false(rp_http_has_token("x-hopper", 8, "x-hop", 5));
	assert_true(rp_http_valid_authority("[::1]:80", 8));
	assert_false(rp_http_valid_authority("a/b", 3));
	assert_false(rp_http_valid_authority("", 0));
}

/* ---- telemetry reports ----------------------------------------------------------- */

static const Raftplane__TrafficStats *find_traffic(Raftplane__TrafficStats **v, size_t n,
						   const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

static void test_report_counters(void **state)
{
	(void)state;
	struct rp_stats *r = rp_stats_get(RP_STATS_ROUTE, "tele-r");
	struct rp_stats *c = rp_stats_get(RP_STATS_CLUSTER, "tele-c");
	atomic_store(&r->rq_total, 50);
	atomic_store(&r->status[2], 40);
	atomic_store(&r->status[5], 10);
	atomic_store(&r->upstream_rq, 53);
	atomic_store(&r->retries, 3);
	atomic_store(&r->connect_fail, 1);
	atomic_store(&r->resets, 2);
	atomic_store(&r->timeouts, 4);
	atomic_store(&r->no_healthy, 5);
	atomic_store(&r->rq_active, 6);
	rp_stats_latency(r, 100);      /* bucket 0 */
	rp_stats_latency(r, 99999999); /* +Inf */
	atomic_store(&c->rq_total, 7);
	struct rp_health *h[3];
	for (int i = 0; i < 3; i++) {
		char hp[32];
		snprintf(hp, sizeof hp, "127.0.0.1:%d", 7000 + i);
		h[i] = rp_health_get(uv_default_loop(), "tele-c", hp, NULL);
	}
	unsigned saved = rp_outlier.consecutive;
	rp_outlier.consecutive = 2;
	rp_health_passive(h, 3, 0, 0, c);
	rp_health_passive(h, 3, 1, 1, c);
	assert_int_equal(rp_health_passive(h, 3, 1, 1, c), 1); /* ejected */
	rp_outlier.consecutive = saved;
	snprintf(h[2]->last_error, sizeof h[2]->last_error, "HTTP 503");
	atomic_store(&h[2]->hc_ok, 0);

	struct rp_report_msg m;
	assert_int_equal(rp_report_build(&m, NULL, rp_now_ms() + 5), 0);
	uint8_t *buf;
	size_t len, truncated;
	assert_int_equal(rp_report_pack(&m, RP_REPORT_MAX_BYTES, &buf, &len, &truncated), 0);
	rp_report_msg_free(&m);
	assert_int_equal(truncated, 0);
	Raftplane__Report *rep = raftplane__report__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(rep);
	const Raftplane__TrafficStats *t = find_traffic(rep->routes, rep->n_routes, "tele-r");
	assert_non_null(t);
	assert_int_equal(t->requests, 50);
	assert_int_equal(t->n_responses, 6);
	assert_int_equal(t->responses[2], 40);
	assert_int_equal(t->responses[5], 10);
	assert_int_equal(t->upstream_requests, 53);
	assert_int_equal(t->retries, 3);
	assert_int_equal(t->connect_errors, 1);
	assert_int_equal(t->resets, 2);
	assert_int_equal(t->timeouts, 4);
	assert_int_equal(t->no_healthy, 5);
	assert_int_equal(t->active, 6);
	assert_int_equal(t->n_latency, 24);
	assert_int_equal(t->latency[0], 1);
	assert_int_equal(t->latency[23], 1);
	assert_int_equal(t->latency_sum_us, 100 + 99999999);
	assert_null(find_traffic(rep->clusters, rep->n_clusters, "tele-r"));
	t = find_traffic(rep->clusters, rep->n_clusters, "tele-c");
	assert_non_null(t);
	assert_int_equal(t->requests, 7);
	int seen = 0;
	for (size_t i = 0; i < rep->n_endpoints; i++) {
		Raftplane__EndpointStats *e = rep->endpoints[i];
		if (strcmp(e->cluster, "tele-c") != 0)
			continue;
		seen++;
		if (strcmp(e->address, "127.0.0.1:7000") == 0) {
			assert_int_equal(e->state, RAFTPLANE__ENDPOINT_STATS__STATE__HEALTHY);
			assert_string_equal(e->reason, "");
			assert_int_equal(e->requests, 1);
			assert_int_equal(e->errors, 0);
		} else if (strcmp(e->address, "127.0.0.1:7001") == 0) {
			assert_int_equal(e->state, RAFTPLANE__ENDPOINT_STATS__STATE__EJECTED);
			assert_non_null(strstr(e->reason, "2 consecutive errors"));
			assert_int_equal(e->requests, 2);
			assert_int_equal(e->errors, 2);
			assert_true(e->since_ms >= 5);
		} else {
			assert_int_equal(e->state, RAFTPLANE__ENDPOINT_STATS__STATE__UNHEALTHY);
			assert_non_null(strstr(e->reason, "HTTP 503"));
			assert_int_equal(e->requests, 0);
		}
	}
	assert_int_equal(seen, 3);
	raftplane__report__free_unpacked(rep, NULL);
	for (int i = 0; i < 3; i++)
		rp_health_put(h[i]);
	rp_stats_put(r);
	rp_stats_put(c);
	uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

/* A message of @nr routes, @nc clusters, @ne endpoints with long names. */
static void big_msg(struct rp_report_msg *m, size_t nr, size_t nc, size_t ne)
{
	assert_int_equal(rp_report_msg_alloc(m, nr, nc, ne), 0);
	snprintf(m->node_id, sizeof m->node_id, "node-1");
	for (size_t i = 0; i < nr; i++) {
		snprintf(m->routes[i].name, sizeof m->routes[i].name, "route-%0120zu", i);
		m->routes[i].m.requests = i + 1;
	}
	for (size_t i = 0; i < nc; i++)
		snprintf(m->clusters[i].name, sizeof m->clusters[i].name, "cluster-%0120zu", i);
	for (size_t i = 0; i < ne; i++) {
		struct rp_report_endpoint *e = &m->endpoints[i];
		snprintf(e->cluster, sizeof e->cluster, "cluster-%0120zu", i % (nc ? nc : 1));
		snprintf(e->address, sizeof e->address, "10.0.%zu.%zu:8080", i / 256, i % 256);
		memset(e->reason, 'x', 200);
		e->reason[200] = '\0';
		e->m.state = RAFTPLANE__ENDPOINT_STATS__STATE__UNHEALTHY;
	}
}

static void test_report_truncation(void **state)
{
	(void)state;
	struct rp_report_msg m;
	uint8_t *buf;
	size_t len, truncated;

	/* endpoints go first */
	big_msg(&m, 20, 20, 2000);
	assert_true(raftplane__report__get_packed_size(&m.r) > RP_REPORT_MAX_BYTES);
	assert_int_equal(rp_report_pack(&m, RP_REPORT_MAX_BYTES, &buf, &len, &truncated), 0);
	assert_true(len <= RP_REPORT_MAX_BYTES);
	assert_true(truncated > 0);
	Raftplane__Report *rep = raftplane__report__unpack(NULL, len, buf);
	assert_non_null(rep);
	assert_int_equal(rep->n_routes, 20);
	assert_int_equal(rep->n_clusters, 20);
	assert_int_equal(rep->n_endpoints + truncated, 2000);
	assert_true(len > RP_REPORT_MAX_BYTES - 400); /* filled, not just cut */
	raftplane__report__free_unpacked(rep, NULL);
	free(buf);
	rp_report_msg_free(&m);

	/* then routes and clusters beyond an equal cap */
	big_msg(&m, 30, 10, 5);
	assert_int_equal(rp_report_pack(&m, 3000, &buf, &len, &truncated), 0);
	assert_true(len <= 3000);
	rep = raftplane__report__unpack(NULL, len, buf);
	assert_non_null(rep);
	assert_int_equal(rep->n_endpoints, 0);
	assert_true(rep->n_routes > 0 && rep->n_clusters > 0);
	assert_true(rep->n_routes >= rep->n_clusters);
	assert_int_equal(rep->n_routes + rep->n_clusters + truncated, 45);
	assert_int_equal(rep->routes[0]->requests, 1); /* kept in order */
	assert_string_equal(rep->node_id, "node-1");
	raftplane__report__free_unpacked(rep, NULL);
	free(buf);
	rp_report_msg_free(&m);

	/* what fits whole is not touched */
	big_msg(&m, 2, 2, 3);
	assert_int_equal(rp_report_pack(&m, RP_REPORT_MAX_BYTES, &buf, &len, &truncated), 0);
	assert_int_equal(truncated, 0);
	assert_int_equal(len, raftplane__report__get_packed_size(&m.r));
	free(buf);
	/* not even the empty report fits */
	assert_int_equal(rp_report_pack(&m, 4, &buf, &len, &truncated), -1);
	rp_report_msg_free(&m);
}

static int builds;
static int build_empty(struct rp_reporter *r, struct rp_report_msg *m)
{
	(void)r;
	builds++;
	if (rp_report_msg_alloc(m, 1, 0, 0) != 0)
		return -1;
	snprintf(m->routes[0].name, sizeof m->routes[0].name, "r");
	m->r.version = 9;
	return 0;
}

static void on_stop_loop(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void test_reporter_seq(void **state)
{
	(void)state;
	for (int i = 0; i < 100; i++)
		assert_true(rp_report_instance() != 0);
	assert_true(rp_report_instance() != rp_report_instance());
	uv_loop_t *loop = uv_default_loop();
	struct rp_sub_client sub;
	/* port 1 refuses: every report fails at once, and seq still counts them */
	assert_int_equal(rp_sub_init(&sub, loop, "n1", "127.0.0.1:1", 1000, NULL), 0);
	sub.report_interval_ms = 100; /* as if the server had announced it */
	struct rp_reporter r;
	rp_reporter_init(&r, loop, &sub, build_empty, NULL);
	assert_int_equal(r.interval_ms, 100);
	assert_true(r.instance != 0);
	uv_timer_t stop;
	uv_timer_init(loop, &stop);
	uv_timer_start(&stop, on_stop_loop, 560, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_true(r.seq >= 4 && r.seq <= 6);
	assert_int_equal((int)r.seq, builds);
	assert_int_equal(r.results[RP_REPORT_FAILED] + (r.req != NULL), r.seq);
	assert_int_equal(r.results[RP_REPORT_ACCEPTED], 0);
	assert_int_equal(r.last_result, RP_REPORT_FAILED);
	/* the server stops announcing: no more reports */
	sub.report_interval_ms = 0;
	sub.on_interval(&sub, sub.interval_arg);
	uint64_t seq = r.seq;
	uv_timer_start(&stop, on_stop_loop, 300, 0);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(r.seq, seq);
	rp_reporter_close(&r);
	rp_sub_close(&sub);
	uv_close((uv_handle_t *)&stop, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_robin_weights),
		cmocka_unit_test(test_random_weights),
		cmocka_unit_test(test_least_request),
		cmocka_unit_test(test_ring_hash_consistency),
		cmocka_unit_test(test_generation_build),
		cmocka_unit_test(test_cache_roundtrip),
		cmocka_unit_test(test_target_normalisation),
		cmocka_unit_test(test_route_normalise),
		cmocka_unit_test(test_report_counters),
		cmocka_unit_test(test_report_truncation),
		cmocka_unit_test(test_reporter_seq),
	};
	int rv = cmocka_run_group_tests(tests, NULL, NULL);
	uv_loop_close(uv_default_loop());
	return rv;
}
