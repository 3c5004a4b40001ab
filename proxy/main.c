/* raftplane-proxy: flags, start-up, applying snapshots, shutdown.
 *
 * Applying a snapshot (main thread):
 *   subscription hands over version V --> build a generation (binds new
 *   listeners) --fails--> NACK V, keep serving the old generation
 *                 --ok--> publish, wake workers --every worker adopted-->
 *   write the cache, ACK V.
 * Only one update is in flight: the subscription client waits for the
 * ACK/NACK before it polls again. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin.h"
#include "cache.h"
#include "health.h"
#include "raftplane/log.h"
#include "raftplane/version.h"
#include "proxy.h"
#include "report.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

static const char usage[] =
	"usage: raftplane-proxy --node-id ID --servers IP:PORT,... --admin IP:PORT [options]\n"
	"  --node-id ID             this proxy's node id (selects its listeners)\n"
	"  --servers LIST           raftplane-server HTTP addresses, comma-separated\n"
	"  --admin IP:PORT          admin server: /ready /config_dump /stats /metrics\n"
	"  --cache-dir DIR          keep the last applied snapshot here; start from it\n"
	"  --workers N              event-loop threads (default: number of cores)\n"
	"  --wait-ms N              subscription long-poll wait (default 30000)\n"
	"  --outlier-consecutive N  eject an endpoint after N errors in a row (default 5, 0 off)\n"
	"  --outlier-eject-ms N     how long an ejection lasts (default 10000)\n"
	"  --outlier-max-percent N  at most N% of a cluster ejected at once (default 50)\n"
	"  --pool-max-idle N        idle keep-alive connections per endpoint and worker (default "
	"64)\n"
	"  --pool-idle-timeout-ms N close idle upstream connections after N ms (default 4000)\n"
	"  --drain-ms N             on SIGTERM, wait up to N ms for requests in flight (default "
	"2000)\n"
	"  --max-request-body N     largest request body in bytes, 413 beyond (default 1048576)\n"
	"  --max-conns-per-ip N     client connections from one address (IPv6: one /64) on\n"
	"                           the traffic listeners; more are closed at accept (default\n"
	"                           0: unlimited: behind a load balancer all clients share\n"
	"                           its address)\n"
	"  --admin-max-conns-per-ip N  the same on --admin (default 16; 0: unlimited)\n"
	"  --no-report              send no telemetry reports (otherwise the proxy reports\n"
	"                           to its server at the interval that server announces)\n"
	"  --max-snapshot-bytes N   largest snapshot accepted from a server; a larger one\n"
	"                           is refused before buffering (default 67108864)\n"
	"  --version                the release and the format versions, then exit\n"
	"TLS towards the servers (the traffic listeners serve plain HTTP/1.1):\n";

static struct rp_proxy P;
static struct rp_admin A;
static struct rp_reporter R;
static size_t max_snapshot = RP_SUB_DEFAULT_MAX_SNAPSHOT; /* --max-snapshot-bytes */
static uv_signal_t sigterm_h, sigint_h;

/* LeakSanitizer (in -DRP_SANITIZE=ON builds): h2o 2.2.5 offers no way to
 * dispose a context that has served (its internal timeouts stay linked), so
 * what libh2o allocated for its contexts and connections is released by the
 * process exit, as in h2o's own server. Leaks in our code are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libh2o.so\n";
}

uint64_t rp_wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- generations ---------------------------------------------------------- */

static void sweep(struct rp_proxy *p)
{
	struct rp_generation **pp = &p->retired;
	while (*pp) {
		struct rp_generation *g = *pp;
		assert(g != p->published); /* the current generation is always held */
		if (atomic_load_explicit(&g->refs, memory_order_acquire) != 0) {
			pp = &g->next_retired;
			continue;
		}
		*pp = g->next_retired;
		rp_gen_destroy(g);
		rp_dec(&rp_gstats.generations_live);
	}
}

static void on_sweep(uv_timer_t *t)
{
	sweep(t->data);
}

static void publish(struct rp_proxy *p, struct rp_generation *g, int ack)
{
	struct rp_lsock *keep[g->n_listeners ? g->n_listeners : 1];
	for (size_t i = 0; i < g->n_listeners; i++)
		keep[i] = g->listeners[i].sock;
	rp_lsock_retire_others(keep, g->n_listeners);
	assert(rp_gen_held(g) && g != p->published); /* our reference becomes the published one */
	uv_mutex_lock(&p->publish_lock);
	struct rp_generation *old = p->published;
	p->published = g;
	uint64_t epoch = ++p->epoch;
	uv_mutex_unlock(&p->publish_lock);
	rp_inc(&rp_gstats.generations_live);
	if (old) {
		old->next_retired = p->retired;
		p->retired = old;
		rp_gen_unref(old);
	}
	p->pending = 1;
	p->pending_epoch = epoch;
	p->pending_ack = ack;
	rp_workers_wake(p);
}

static void on_adopted(uv_async_t *a)
{
	struct rp_proxy *p = a->data;
	sweep(p);
	if (!p->pending)
		return;
	for (unsigned i = 0; i < p->n_workers; i++)
		if (atomic_load(&p->workers[i].adopted_epoch) < p->pending_epoch)
			return;
	p->pending = 0;
	struct rp_generation *g = p->published;
	assert(g && rp_gen_held(g));
	p->ready = 1;
	rp_inc(&rp_gstats.updates_applied);
	rp_log_info("serving version %" PRIu64 " (revision %" PRIu64
		    ", from %s): %zu listeners, %zu "
		    "routes, %zu clusters",
		    g->version, g->revision, g->server, g->n_listeners, g->n_routes, g->n_clusters);
	if (p->opts.cache_dir && p->pending_ack) {
		char err[256];
		if (rp_cache_write(p->opts.cache_dir, p->opts.node_id, g->raw, g->raw_len, err,
				   sizeof err) != 0) {
			rp_inc(&rp_gstats.cache_errors);
			rp_log_info("cache: %s", err);
		} else {
			rp_inc(&rp_gstats.cache_writes);
		}
	}
	if (p->pending_ack && !p->stopping)
		rp_sub_ack(&p->sub, g->version);
}

static void on_bind_retry(uv_timer_t *t);

#define BIND_RETRY_EVERY_MS 100
#define BIND_RETRY_FOR_MS 3000

static void drop_retry(struct rp_proxy *p)
{
	uv_timer_stop(&p->bind_retry);
	free(p->retry_raw);
	p->retry_raw = NULL;
}

/* Build and publish snapshot @version, or refuse it. A port in use may be
 * one that another proxy on this host is releasing right now (a listener
 * moving from one node id to another), so that failure is tried again for
 * BIND_RETRY_FOR_MS before the NACK; a port still held then belongs to
 * someone else. */
static void apply_snapshot(struct rp_proxy *p, const void *raw, size_t len, uint64_t version)
{
	char err[400];
	unsigned busy = rp_lsock_busy_failures;
	struct rp_generation *g = rp_gen_create(p->loop, raw, len, p->n_workers, err, sizeof err);
	if (g) {
		snprintf(g->server, sizeof g->server, "%s", rp_sub_server(&p->sub));
		g->applied_at = rp_wall_ms();
		p->from_cache = 0;
		publish(p, g, 1);
		return;
	}
	int again = rp_lsock_busy_failures != busy && !p->stopping;
	if (again && raw != p->retry_raw) {
		void *copy = malloc(len ? len : 1);
		if (copy) {
			drop_retry(p);
			memcpy(copy, raw, len);
			p->retry_raw = copy;
			p->retry_len = len;
			p->retry_version = version;
			p->retry_since = uv_now(p->loop);
		}
		again = copy != NULL;
	}
	if (again && uv_now(p->loop) - p->retry_since < BIND_RETRY_FOR_MS) {
		uv_timer_start(&p->bind_retry, on_bind_retry, BIND_RETRY_EVERY_MS, 0);
		return;
	}
	rp_inc(&rp_gstats.updates_rejected);
	rp_log_warn("rejecting version %" PRIu64 " from %s: %s", version, rp_sub_server(&p->sub),
		    err);
	snprintf(p->last_nack, sizeof p->last_nack, "%s", err);
	p->last_nack_version = version;
	rp_sub_nack(&p->sub, version, err);
}

static void on_bind_retry(uv_timer_t *t)
{
	struct rp_proxy *p = t->data;
	void *raw = p->retry_raw;
	if (!raw)
		return;
	apply_snapshot(p, raw, p->retry_len, p->retry_version);
	if (!uv_is_active((uv_handle_t *)&p->bind_retry) && p->retry_raw == raw)
		drop_retry(p); /* applied or refused */
}

static void on_snapshot(struct rp_sub_client *c, const Raftplane__Snapshot *snap, const void *raw,
			size_t len)
{
	struct rp_proxy *p = c->data;
	drop_retry(p);
	apply_snapshot(p, raw, len, snap->version);
}

/* Start from the cached snapshot, if there is a usable one. Returns its
 * version in *version and 1, or 0. */
static int start_from_cache(struct rp_proxy *p, uint64_t *version)
{
	void *data = NULL;
	size_t len = 0;
	char err[400];
	int rv = rp_cache_load(p->opts.cache_dir, p->opts.node_id, &data, &len, err, sizeof err);
	if (rv <= 0) {
		if (rv < 0)
			rp_log_warn("cache: ignored: %s", err);
		return 0;
	}
	struct rp_generation *g = rp_gen_create(p->loop, data, len, p->n_workers, err, sizeof err);
	free(data);
	if (!g) {
		rp_log_warn("cache: cannot apply the cached snapshot: %s", err);
		return 0;
	}
	if (strcmp(g->snap->node_id, p->opts.node_id) != 0) {
		rp_log_warn("cache: snapshot is for node %s, not %s: ignored", g->snap->node_id,
			    p->opts.node_id);
		atomic_store(&g->refs, 0);
		rp_gen_destroy(g);
		return 0;
	}
	snprintf(g->server, sizeof g->server, "cache");
	g->applied_at = rp_wall_ms();
	p->from_cache = 1;
	*version = g->version;
	rp_sub_set_cluster(&p->sub, g->snap->cluster_id); /* versions are this cluster's */
	rp_log_info("cache: starting from cached version %" PRIu64, g->version);
	publish(p, g, 0);
	return 1;
}

/* ---- flags ----------------------------------------------------------------- */

static unsigned long num(const char *flag, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || end == s || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr,
			"raftplane-proxy: %s needs a number between %lu and %lu, got \"%s\"\n",
			flag, lo, hi, s);
		exit(2);
	}
	return v;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > RP_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void parse_flags(int argc, char **argv, struct rp_proxy_opts *o, struct rp_proxy_tls *t)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	*o = (struct rp_proxy_opts){.workers = cores > 0 ? (unsigned)cores : 1,
				    .wait_ms = 30000,
				    .pool_max_idle = 64,
				    .pool_idle_timeout_ms = 4000,
				    .drain_ms = 2000,
				    .max_request_body = 1024 * 1024,
				    .admin_max_conns_per_ip = 16};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			fputs(rp_proxy_tls_usage, stdout);
			exit(0);
		}
		if (!strcmp(a, "--version")) {
			rp_print_version("raftplane-proxy");
			exit(0);
		}
		char terr[200];
		int took = rp_proxy_tls_flag(t, argc, argv, &i, terr, sizeof terr);
		if (took < 0) {
			fprintf(stderr, "raftplane-proxy: %s\n", terr);
			exit(2);
		}
		if (took)
			continue;
		if (!strcmp(a, "--no-report")) {
			o->no_report = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "raftplane-proxy: %s needs a value (see --help)\n", a);
			exit(2);
		}
		if (!strcmp(a, "--node-id"))
			o->node_id = v;
		else if (!strcmp(a, "--servers"))
			o->servers = v;
		else if (!strcmp(a, "--admin"))
			o->admin = v;
		else if (!strcmp(a, "--cache-dir"))
			o->cache_dir = v;
		else if (!strcmp(a, "--workers"))
			o->workers = (unsigned)num(a, v, 1, 256);
		else if (!strcmp(a, "--wait-ms"))
			o->wait_ms = (unsigned)num(a, v, 100, 600000);
		else if (!strcmp(a, "--outlier-consecutive"))
			rp_outlier.consecutive = (unsigned)num(a, v, 0, 1000);
		else if (!strcmp(a, "--outlier-eject-ms"))
			rp_outlier.eject_ms = (unsigned)num(a, v, 1, 3600000);
		else if (!strcmp(a, "--outlier-max-percent"))
			rp_outlier.max_percent = (unsigned)num(a, v, 0, 100);
		else if (!strcmp(a, "--pool-max-idle"))
			o->pool_max_idle = (unsigned)num(a, v, 0, 100000);
		else if (!strcmp(a, "--pool-idle-timeout-ms"))
			o->pool_idle_timeout_ms = (unsigned)num(a, v, 1, 3600000);
		else if (!strcmp(a, "--drain-ms"))
			o->drain_ms = (unsigned)num(a, v, 0, 600000);
		else if (!strcmp(a, "--max-request-body"))
			o->max_request_body = num(a, v, 0, 1024UL * 1024 * 1024);
		else if (!strcmp(a, "--max-conns-per-ip"))
			o->max_conns_per_ip = (unsigned)num(a, v, 0, 10000000);
		else if (!strcmp(a, "--max-snapshot-bytes"))
			max_snapshot = num(a, v, 4096, RP_CLIENT_MAX_RESPONSE);
		else if (!strcmp(a, "--admin-max-conns-per-ip"))
			o->admin_max_conns_per_ip = (unsigned)num(a, v, 0, 10000000);
		else {
			fprintf(stderr, "raftplane-proxy: unknown flag \"%s\" (see --help)\n", a);
			exit(2);
		}
		i++;
	}
	if (!o->node_id || !o->servers || !o->admin) {
		fprintf(stderr, "raftplane-proxy: --node-id, --servers and --admin are required\n");
		exit(2);
	}
	if (!valid_name(o->node_id)) {
		fprintf(stderr, "raftplane-proxy: --node-id must be 1-128 of [A-Za-z0-9._-]\n");
		exit(2);
	}
	char terr[300];
	if (rp_proxy_tls_check(t, o->servers, o->admin, terr, sizeof terr) != 0) {
		fprintf(stderr, "raftplane-proxy: %s\n", terr);
		exit(2);
	}
	struct stat st;
	if (o->cache_dir && (stat(o->cache_dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		if (mkdir(o->cache_dir, 0755) != 0) {
			fprintf(stderr, "raftplane-proxy: --cache-dir %s: %s\n", o->cache_dir,
				strerror(errno));
			exit(2);
		}
	}
}

/* ---- start and stop ----------------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

#define FINAL_REPORT_MS 1000 /* the last report at shutdown waits at most this */

static void finish_stop(void *arg);

static void on_signal(uv_signal_t *s, int signum)
{
	struct rp_proxy *p = s->data;
	if (p->stopping)
		return;
	rp_log_info("signal %d: stopping", signum);
	/* workers read it in on_wake under the lock (the main thread alone
	 * writes it, so its own reads need none) */
	uv_mutex_lock(&p->publish_lock);
	p->stopping = 1;
	uv_mutex_unlock(&p->publish_lock);
	if (p->reporter)
		uv_timer_stop(&p->reporter->timer); /* no periodic report while draining */
	rp_sub_close(&p->sub);
	drop_retry(p);
	rp_admin_close(&A);
	rp_workers_stop(p);
	/* every request finished: one last report of the final counters, so a
	 * restart loses none of them (docs/telemetry.md) */
	if (p->reporter)
		rp_reporter_flush(p->reporter, FINAL_REPORT_MS, finish_stop, p);
	else
		finish_stop(p);
}

static void finish_stop(void *arg)
{
	struct rp_proxy *p = arg;
	if (p->reporter)
		rp_reporter_close(p->reporter);
	/* every worker is joined: free the generations nobody holds any more */
	if (p->published) {
		p->published->next_retired = p->retired;
		p->retired = p->published;
		rp_gen_unref(p->published);
		p->published = NULL;
	}
	sweep(p);
	if (p->retired)
		rp_log_warn("exit: a generation is still held by a request that was cut");
	uv_close((uv_handle_t *)&p->adopted, NULL);
	uv_timer_stop(&p->sweep);
	uv_close((uv_handle_t *)&p->sweep, NULL);
	/* what is left (h2o's context of the admin server) closes without
	 * ceremony; h2o keeps its allocations until exit */
	uv_walk(p->loop, close_walk, NULL);
}

/* Telemetry: the Report of this process's registries and applied version. */
static int build_report(struct rp_reporter *r, struct rp_report_msg *m)
{
	struct rp_proxy *p = r->data;
	return rp_report_build(m, p->published, rp_now_ms());
}

/* The Via pseudonym: "<node id>.<16 hex digits>", random per process. */
static void make_via_id(struct rp_proxy *p)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
		r = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ rp_wall_ms();
	int n = snprintf(p->via_id, sizeof p->via_id, "%s.%016" PRIx64, p->opts.node_id, r);
	p->via_id_len = (size_t)n;
}

static void setup_data_plane_config(struct rp_proxy *p)
{
	h2o_config_init(&p->h2o_config);
	p->h2o_config.server_name = h2o_iovec_init(H2O_STRLIT("raftplane-proxy"));
	/* h2o refuses a larger Content-Length at once and cuts a chunked body
	 * when it reaches the limit, both with 413 and a closed connection */
	p->h2o_config.max_request_entity_size = p->opts.max_request_body;
	/* HTTP/1.1 only (docs/proxy.md): no h2c upgrade, no prior knowledge */
	p->h2o_config.http1.upgrade_to_http2 = 0;
	h2o_hostconf_t *host = h2o_config_register_host(&p->h2o_config,
							h2o_iovec_init(H2O_STRLIT("default")),
							65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
	h->on_req = rp_upstream_on_req;
}

int main(int argc, char **argv)
{
	struct rp_proxy *p = &P;
	char err[400];
	parse_flags(argc, argv, &p->opts, &p->tls);
	rp_log_init("raftplane-proxy");
	rp_log_set_node(p->opts.node_id);
	rp_log_info("release %s; subscription protocol %d", rp_release(), RP_FORMAT_PROTOCOL);
	if (rp_proxy_tls_load(&p->tls, p->opts.node_id, err, sizeof err) != 0) {
		fprintf(stderr, "raftplane-proxy: %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)(rp_wall_ms() ^ (uint64_t)getpid()));
	p->loop = uv_default_loop();
	p->n_workers = p->opts.workers;
	make_via_id(p);
	uv_mutex_init(&p->publish_lock);
	uv_async_init(p->loop, &p->adopted, on_adopted);
	p->adopted.data = p;
	uv_timer_init(p->loop, &p->bind_retry);
	p->bind_retry.data = p;
	uv_timer_init(p->loop, &p->sweep);
	p->sweep.data = p;
	uv_timer_start(&p->sweep, on_sweep, 500, 500);
	if (rp_sub_init(&p->sub, p->loop, p->opts.node_id, p->opts.servers, p->opts.wait_ms,
			on_snapshot) != 0) {
		fprintf(stderr, "raftplane-proxy: --servers: %s\n", p->sub.last_error);
		return 2;
	}
	p->sub.data = p;
	p->sub.max_snapshot = max_snapshot;
	rp_sub_set_tls(&p->sub, rp_proxy_tls_http(&p->tls));
	rp_proxy_tls_watch(&p->tls, p->loop);
	if (rp_admin_start(&A, p, p->opts.admin, err, sizeof err) != 0) {
		rp_log_error("%s", err);
		return 1;
	}
	setup_data_plane_config(p);
	struct rp_connlimit_config lc = {.per_ip = p->opts.max_conns_per_ip, .what = "traffic"};
	if (rp_connlimit_init(&p->traffic_conns, &lc, 1) != 0) {
		rp_log_error("out of memory");
		return 1;
	}
	if (rp_workers_start(p) != 0)
		return 1;
	rp_log_info("%u workers, admin on %s, servers %s%s%s%s", p->n_workers, p->opts.admin,
		    p->opts.servers, p->tls.tls ? " (TLS)" : "",
		    p->opts.cache_dir ? ", cache in " : "",
		    p->opts.cache_dir ? p->opts.cache_dir : "");
	uint64_t cached = 0;
	int have_cache = p->opts.cache_dir && start_from_cache(p, &cached);
	rp_sub_start(&p->sub, have_cache, cached);
	if (!p->opts.no_report) {
		rp_reporter_init(&R, p->loop, &p->sub, build_report, p);
		p->reporter = &R;
	}
	uv_signal_init(p->loop, &sigterm_h);
	uv_signal_init(p->loop, &sigint_h);
	sigterm_h.data = sigint_h.data = p;
	uv_signal_start(&sigterm_h, on_signal, SIGTERM);
	uv_signal_start(&sigint_h, on_signal, SIGINT);
	uv_run(p->loop, UV_RUN_DEFAULT);

	uv_mutex_destroy(&p->publish_lock);
	rp_proxy_tls_close(&p->tls);
	rp_log_info("stopped");
	return 0;
}
