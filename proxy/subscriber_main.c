/* raftplane-subscriber: light subscribers speaking the real protocol, for
 * tests and benchmarks. One process runs one or many subscribers on one loop
 * and prints a JSON line per snapshot received. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ptls.h"
#include "reporter.h"
#include "subscription.h"

static const char usage[] =
	"usage: raftplane-subscriber --servers IP:PORT,... (--node-id ID | --node-prefix P --count "
	"N)\n"
	"  --wait-ms N          long-poll wait (default 30000)\n"
	"  --nack-version V     refuse version V (NACK) instead of applying it\n"
	"  --nack-all           refuse every version\n"
	"  --until-version V    exit 0 once every subscriber holds a version >= V\n"
	"  --timeout S          with --until-version: exit 1 after S seconds (default 60)\n"
	"  --duration S         exit 0 after S seconds\n"
	"  --quiet              print only the summary\n"
	"  --report             each subscriber also sends a telemetry Report every interval\n"
	"                       its server announces (synthetic traffic: 2 routes, 2 clusters,\n"
	"                       3 endpoints, counters growing), as raftplane-proxy does\n"
	"  --max-snapshot-bytes N  largest snapshot accepted (default 67108864)\n"
	"TLS towards the servers:\n"
	"  --tls-cert-dir DIR       instead of --tls-cert/--tls-key: each subscriber presents\n"
	"                           DIR/NODE-ID.pem with its key DIR/NODE-ID.key (for\n"
	"                           --node-prefix/--count; --tls-ca is still needed)\n";

static struct {
	struct rp_sub_client *subs;
	unsigned n;
	uint64_t nack_version, until;
	int nack_all, quiet, until_set;
	uv_timer_t deadline;
	uv_signal_t sigterm, sigint;
	int exit_code;
	struct rp_proxy_tls tls;
	const char *cert_dir;          /* --tls-cert-dir: one certificate per subscriber */
	struct rp_tls **node_tls;      /* [n] with cert_dir */
	struct rp_http_tls *node_http; /* [n] with cert_dir */
	int report;                    /* --report */
	struct rp_reporter *reporters; /* [n] with report */
	struct synth *synth;           /* [n] with report */
} g;

/* ---- synthetic telemetry (--report) ------------------------------------------
 * Cumulative counters of a made-up proxy: route r<k> sends to cluster c<k>;
 * c0 has endpoints e0, e1 and c1 has e2. Each report adds 80-120 requests per
 * route, about 2% of them 5xx, latencies spread over the 1-25 ms buckets. */

#define SYN_ROUTES 2
#define SYN_EPS 3

struct syn_traffic {
	uint64_t requests, upstream, retries, connect, resets, timeouts;
	uint64_t responses[RP_REPORT_CLASSES], latency[RP_REPORT_LAT_BUCKETS], lat_sum_us;
};

struct synth {
	struct syn_traffic t[SYN_ROUTES]; /* route k and cluster k see the same traffic */
	uint64_t ep_requests[SYN_EPS], ep_errors[SYN_EPS];
	unsigned rng;
	uint64_t started;
};

static unsigned syn_rand(struct synth *s, unsigned n)
{
	s->rng = s->rng * 1103515245u + 12345u;
	return (s->rng >> 16) % n;
}

static void syn_advance(struct synth *s)
{
	for (int k = 0; k < SYN_ROUTES; k++) {
		struct syn_traffic *t = &s->t[k];
		unsigned n = 80 + syn_rand(s, 41), errors = syn_rand(s, 5),
			 retries = syn_rand(s, 3);
		t->requests += n;
		t->upstream += n + retries;
		t->retries += retries;
		t->resets += errors > 3;
		t->connect += retries > 1;
		t->responses[2] += n - errors;
		t->responses[5] += errors;
		for (unsigned i = 0; i < n; i++) {
			unsigned b = 2 + syn_rand(s, 8); /* 1 ms .. 25 ms */
			t->latency[b]++;
			t->lat_sum_us += 500 + 1000 * (uint64_t)b;
		}
		if (k == 0) {
			unsigned half = (n + retries) / 2;
			s->ep_requests[0] += half;
			s->ep_requests[1] += n + retries - half;
			s->ep_errors[0] += errors / 2;
			s->ep_errors[1] += errors - errors / 2;
		} else {
			s->ep_requests[2] += n + retries;
			s->ep_errors[2] += errors;
		}
	}
}

static void syn_fill(struct rp_report_traffic *o, const struct syn_traffic *t, const char *name)
{
	snprintf(o->name, sizeof o->name, "%s", name);
	o->m.requests = t->requests;
	memcpy(o->responses, t->responses, sizeof o->responses);
	o->m.upstream_requests = t->upstream;
	o->m.retries = t->retries;
	o->m.connect_errors = t->connect;
	o->m.resets = t->resets;
	o->m.timeouts = t->timeouts;
	o->m.active = t->requests % 7;
	memcpy(o->latency, t->latency, sizeof o->latency);
	o->m.latency_sum_us = t->lat_sum_us;
}

static int syn_build(struct rp_reporter *r, struct rp_report_msg *m)
{
	struct synth *s = r->data;
	if (rp_report_msg_alloc(m, SYN_ROUTES, SYN_ROUTES, SYN_EPS) != 0)
		return -1;
	syn_advance(s);
	for (int k = 0; k < SYN_ROUTES; k++) {
		char name[16];
		snprintf(name, sizeof name, "r%d", k);
		syn_fill(&m->routes[k], &s->t[k], name);
		snprintf(name, sizeof name, "c%d", k);
		syn_fill(&m->clusters[k], &s->t[k], name);
	}
	for (int e = 0; e < SYN_EPS; e++) {
		struct rp_report_endpoint *o = &m->endpoints[e];
		snprintf(o->cluster, sizeof o->cluster, "c%d", e < 2 ? 0 : 1);
		snprintf(o->address, sizeof o->address, "10.0.0.%d:8080", e + 1);
		o->m.requests = s->ep_requests[e];
		o->m.errors = s->ep_errors[e];
		o->m.since_ms = uv_now(r->loop) - s->started;
		if (e == 2 && s->rng % 10 == 0) { /* now and then one is failing */
			o->m.state = RAFTPLANE__ENDPOINT_STATS__STATE__UNHEALTHY;
			snprintf(o->reason, sizeof o->reason, "health check: HTTP 503");
			o->m.since_ms = 0;
		}
	}
	m->r.version = r->sub->version;
	snprintf(m->cluster_id, sizeof m->cluster_id, "%s", r->sub->cluster_id);
	return 0;
}

static uint64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void print_names(const char *key, size_t n, char **(*name)(size_t i, const void *),
			const void *arr)
{
	printf(",\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		printf("%s\"%s\"", i ? "," : "", *name(i, arr));
	printf("]");
}

static char **lname(size_t i, const void *a)
{
	return &((Raftplane__Listener *const *)a)[i]->name;
}
static char **rname(size_t i, const void *a)
{
	return &((Raftplane__Route *const *)a)[i]->name;
}
static char **cname(size_t i, const void *a)
{
	return &((Raftplane__Cluster *const *)a)[i]->name;
}

static void stop_all(int code)
{
	g.exit_code = code;
	for (unsigned i = 0; g.reporters && i < g.n; i++)
		rp_reporter_close(&g.reporters[i]);
	for (unsigned i = 0; i < g.n; i++)
		rp_sub_close(&g.subs[i]);
	uv_timer_stop(&g.deadline);
	uv_close((uv_handle_t *)&g.deadline, NULL);
	uv_close((uv_handle_t *)&g.sigterm, NULL);
	uv_close((uv_handle_t *)&g.sigint, NULL);
	rp_sighup_stop(&g.tls.sighup);
}

static void check_until(void)
{
	if (!g.until_set)
		return;
	for (unsigned i = 0; i < g.n; i++)
		if (!g.subs[i].has_version || g.subs[i].version < g.until)
			return;
	stop_all(0);
}

static void on_snapshot(struct rp_sub_client *c, const Raftplane__Snapshot *s, const void *raw,
			size_t len)
{
	(void)raw;
	int nack = g.nack_all || (g.nack_version && s->version == g.nack_version);
	if (!g.quiet) {
		printf("{\"t\":%" PRIu64 ",\"node\":\"%s\",\"version\":%" PRIu64
		       ",\"server\":\"%s\",\"bytes\":%zu,\"ack\":%s",
		       wall_ms(), c->node_id, s->version, rp_sub_server(c), len,
		       nack ? "false" : "true");
		print_names("listeners", s->n_listeners, lname, s->listeners);
		print_names("routes", s->n_routes, rname, s->routes);
		print_names("clusters", s->n_clusters, cname, s->clusters);
		printf("}\n");
		fflush(stdout);
	}
	if (nack) {
		char err[96];
		snprintf(err, sizeof err, "test subscriber refuses version %" PRIu64, s->version);
		rp_sub_nack(c, s->version, err);
	} else {
		rp_sub_ack(c, s->version);
		check_until();
	}
}

static void on_deadline(uv_timer_t *t)
{
	(void)t;
	stop_all(g.until_set ? 1 : 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	stop_all(0);
}

static unsigned long num(const char *flag, const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || end == s || s[0] == '-') {
		fprintf(stderr, "raftplane-subscriber: %s needs a number, got \"%s\"\n", flag, s);
		exit(2);
	}
	return v;
}

/* --tls-cert-dir: subscriber @i (node @id) gets a client context of its own
 * from DIR/ID.pem and DIR/ID.key. 0, or -1 with the reason in @err. */
static int node_tls_load(unsigned i, const char *id, char *err, size_t errlen)
{
	char cert[4096], key[4096];
	if (snprintf(cert, sizeof cert, "%s/%s.pem", g.cert_dir, id) >= (int)sizeof cert ||
	    snprintf(key, sizeof key, "%s/%s.key", g.cert_dir, id) >= (int)sizeof key) {
		snprintf(err, errlen, "--tls-cert-dir: path too long");
		return -1;
	}
	struct rp_tls_files f = {cert, key, g.tls.ca};
	g.node_tls[i] = rp_tls_create(RP_TLS_CLIENT, &f, RP_TLS_VERIFY_REQUIRE, err, errlen);
	if (!g.node_tls[i])
		return -1;
	g.node_http[i] = (struct rp_http_tls){.tls = g.node_tls[i],
					      .trust_domain = g.tls.trust_domain,
					      .kind = RP_PEER_SERVER};
	return 0;
}

int main(int argc, char **argv)
{
	const char *servers = NULL, *node = NULL, *prefix = NULL;
	unsigned long count = 1, wait_ms = 30000, timeout = 60, duration = 0;
	unsigned long max_snapshot = RP_SUB_DEFAULT_MAX_SNAPSHOT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		char terr[200];
		int tls_flag = rp_proxy_tls_flag(&g.tls, argc, argv, &i, terr, sizeof terr);
		if (tls_flag < 0) {
			fprintf(stderr, "raftplane-subscriber: %s\n", terr);
			return 2;
		}
		if (tls_flag)
			continue;
		if (!strcmp(a, "--tls-cert-dir") && v && v[0]) {
			g.cert_dir = v;
			i++;
			continue;
		}
		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			fputs(rp_proxy_tls_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--nack-all")) {
			g.nack_all = 1, takes = 0;
		} else if (!strcmp(a, "--quiet")) {
			g.quiet = 1, takes = 0;
		} else if (!strcmp(a, "--report")) {
			g.report = 1, takes = 0;
		} else if (!v) {
			fprintf(stderr, "raftplane-subscriber: %s needs a value (see --help)\n", a);
			return 2;
		} else if (!strcmp(a, "--servers")) {
			servers = v;
		} else if (!strcmp(a, "--node-id")) {
			node = v;
		} else if (!strcmp(a, "--node-prefix")) {
			prefix = v;
		} else if (!strcmp(a, "--count")) {
			count = num(a, v);
		} else if (!strcmp(a, "--wait-ms")) {
			wait_ms = num(a, v);
		} else if (!strcmp(a, "--nack-version")) {
			g.nack_version = num(a, v);
		} else if (!strcmp(a, "--until-version")) {
			g.until = num(a, v), g.until_set = 1;
		} else if (!strcmp(a, "--timeout")) {
			timeout = num(a, v);
		} else if (!strcmp(a, "--max-snapshot-bytes")) {
			max_snapshot = num(a, v);
			if (max_snapshot < 4096 || max_snapshot > RP_CLIENT_MAX_RESPONSE) {
				fprintf(stderr,
					"raftplane-subscriber: --max-snapshot-bytes needs "
					"4096..%d\n",
					RP_CLIENT_MAX_RESPONSE);
				return 2;
			}
		} else if (!strcmp(a, "--duration")) {
			duration = num(a, v);
		} else {
			fprintf(stderr, "raftplane-subscriber: unknown flag \"%s\" (see --help)\n",
				a);
			return 2;
		}
		i += takes;
	}
	if (!servers || (!node == !prefix) || count == 0 || count > 100000) {
		fprintf(stderr, "raftplane-subscriber: need --servers and one of --node-id or "
				"--node-prefix with --count 1..100000\n");
		return 2;
	}
	char terr[400];
	if (g.cert_dir && (g.tls.cert || g.tls.key || !g.tls.ca)) {
		fprintf(stderr, "raftplane-subscriber: --tls-cert-dir needs --tls-ca and neither "
				"--tls-cert nor --tls-key\n");
		return 2;
	}
	if (g.cert_dir && !g.tls.trust_domain)
		g.tls.trust_domain = RP_TLS_DEFAULT_TRUST_DOMAIN;
	if (g.cert_dir && !rp_tls_trust_domain_valid(g.tls.trust_domain)) {
		fprintf(stderr, "raftplane-subscriber: bad --trust-domain \"%s\"\n",
			g.tls.trust_domain);
		return 2;
	}
	if (!g.cert_dir && (rp_proxy_tls_check(&g.tls, servers, NULL, terr, sizeof terr) != 0 ||
			    rp_proxy_tls_load(&g.tls, node, terr, sizeof terr) != 0)) {
		fprintf(stderr, "raftplane-subscriber: %s\n", terr);
		return 2;
	}
	uv_loop_t *loop = uv_default_loop();
	srand((unsigned)wall_ms());
	rp_proxy_tls_watch(&g.tls, loop);
	g.n = node ? 1 : (unsigned)count;
	g.subs = calloc(g.n, sizeof *g.subs);
	if (g.cert_dir) {
		g.node_tls = calloc(g.n, sizeof *g.node_tls);
		g.node_http = calloc(g.n, sizeof *g.node_http);
	}
	if (g.report) {
		g.reporters = calloc(g.n, sizeof *g.reporters);
		g.synth = calloc(g.n, sizeof *g.synth);
	}
	if (!g.subs || (g.cert_dir && (!g.node_tls || !g.node_http)) ||
	    (g.report && (!g.reporters || !g.synth))) {
		fprintf(stderr, "raftplane-subscriber: out of memory\n");
		return 2;
	}
	for (unsigned i = 0; i < g.n; i++) {
		char id[RP_MAX_NAME + 1];
		if (node)
			snprintf(id, sizeof id, "%s", node);
		else
			snprintf(id, sizeof id, "%.100s-%u", prefix, i);
		if (rp_sub_init(&g.subs[i], loop, id, servers, (unsigned)wait_ms, on_snapshot) !=
		    0) {
			fprintf(stderr, "raftplane-subscriber: %s\n", g.subs[i].last_error);
			return 2;
		}
		g.subs[i].max_snapshot = max_snapshot;
		if (g.cert_dir) {
			if (node_tls_load(i, id, terr, sizeof terr) != 0) {
				fprintf(stderr, "raftplane-subscriber: %s\n", terr);
				return 2;
			}
			rp_sub_set_tls(&g.subs[i], &g.node_http[i]);
		} else {
			rp_sub_set_tls(&g.subs[i], rp_proxy_tls_http(&g.tls));
		}
		rp_sub_start(&g.subs[i], 0, 0);
		if (g.report) {
			g.synth[i].rng = (unsigned)rand();
			g.synth[i].started = uv_now(loop);
			rp_reporter_init(&g.reporters[i], loop, &g.subs[i], syn_build, &g.synth[i]);
			g.reporters[i].quiet =
				g.n > 1; /* one line per failure kind, not per subscriber */
		}
	}
	uv_timer_init(loop, &g.deadline);
	if (g.until_set || duration)
		uv_timer_start(&g.deadline, on_deadline, 1000 * (duration ? duration : timeout), 0);
	uv_signal_init(loop, &g.sigterm);
	uv_signal_init(loop, &g.sigint);
	uv_signal_start(&g.sigterm, on_signal, SIGTERM);
	uv_signal_start(&g.sigint, on_signal, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	uv_run(loop, UV_RUN_DEFAULT);
	uint64_t snaps = 0, errors = 0, minv = UINT64_MAX, rep[RP_REPORT__N] = {0};
	for (unsigned i = 0; g.reporters && i < g.n; i++)
		for (int k = 0; k < RP_REPORT__N; k++)
			rep[k] += g.reporters[i].results[k];
	for (unsigned i = 0; i < g.n; i++) {
		snaps += g.subs[i].snapshots;
		errors += g.subs[i].errors;
		if (g.subs[i].version < minv)
			minv = g.subs[i].version;
	}
	printf("{\"summary\":{\"subscribers\":%u,\"snapshots\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"min_version\":%" PRIu64 ",\"exit\":%d",
	       g.n, snaps, errors, minv, g.exit_code);
	if (g.report)
		printf(",\"reports\":{\"accepted\":%" PRIu64 ",\"throttled\":%" PRIu64
		       ",\"refused\":%" PRIu64 ",\"failed\":%" PRIu64 "}",
		       rep[RP_REPORT_ACCEPTED], rep[RP_REPORT_THROTTLED], rep[RP_REPORT_REFUSED],
		       rep[RP_REPORT_FAILED]);
	printf("}}\n");
	free(g.subs);
	free(g.reporters);
	free(g.synth);
	if (g.cert_dir) {
		for (unsigned i = 0; i < g.n; i++)
			rp_tls_destroy(g.node_tls[i]);
		free(g.node_tls);
		free(g.node_http);
	}
	rp_proxy_tls_close(&g.tls);
	return g.exit_code;
}
