/* Telemetry sender: Report encoding under a size cap, and the timer that
 * POSTs one Report per announced interval (invariants in reporter.h).
 *
 *   interval 0 --server announces N--> armed: first tick after a random
 *   delay in [0, N) --tick--> build, POST (timeout min(N, 5 s)), re-arm N
 *   --answer--> count the result (429: block that server for Retry-After)
 *   armed --interval 0 (no header, failover)--> stopped
 */
#include "reporter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "client.h"
#include "raftplane/log.h"

const char *const rp_report_result_names[RP_REPORT__N] = {"accepted", "throttled", "refused",
							  "failed"};

/* ---- the message --------------------------------------------------------- */

static void init_traffic(struct rp_report_traffic *t)
{
	raftplane__traffic_stats__init(&t->m);
	t->m.name = t->name;
	t->m.n_responses = RP_REPORT_CLASSES;
	t->m.responses = t->responses;
	t->m.n_latency = RP_REPORT_LAT_BUCKETS;
	t->m.latency = t->latency;
}

int rp_report_msg_alloc(struct rp_report_msg *m, size_t routes, size_t clusters, size_t endpoints)
{
	memset(m, 0, sizeof *m);
	raftplane__report__init(&m->r);
	m->r.node_id = m->node_id;
	m->r.cluster_id = m->cluster_id;
	m->routes = calloc(routes ? routes : 1, sizeof *m->routes);
	m->clusters = calloc(clusters ? clusters : 1, sizeof *m->clusters);
	m->endpoints = calloc(endpoints ? endpoints : 1, sizeof *m->endpoints);
	m->route_v = calloc(routes ? routes : 1, sizeof *m->route_v);
	m->cluster_v = calloc(clusters ? clusters : 1, sizeof *m->cluster_v);
	m->endpoint_v = calloc(endpoints ? endpoints : 1, sizeof *m->endpoint_v);
	if (!m->routes || !m->clusters || !m->endpoints || !m->route_v || !m->cluster_v ||
	    !m->endpoint_v) {
		rp_report_msg_free(m);
		return -1;
	}
	for (size_t i = 0; i < routes; i++) {
		init_traffic(&m->routes[i]);
		m->route_v[i] = &m->routes[i].m;
	}
	for (size_t i = 0; i < clusters; i++) {
		init_traffic(&m->clusters[i]);
		m->cluster_v[i] = &m->clusters[i].m;
	}
	for (size_t i = 0; i < endpoints; i++) {
		struct rp_report_endpoint *e = &m->endpoints[i];
		raftplane__endpoint_stats__init(&e->m);
		e->m.cluster = e->cluster;
		e->m.address = e->address;
		e->m.reason = e->reason;
		m->endpoint_v[i] = &e->m;
	}
	m->r.routes = m->route_v;
	m->r.n_routes = routes;
	m->r.clusters = m->cluster_v;
	m->r.n_clusters = clusters;
	m->r.endpoints = m->endpoint_v;
	m->r.n_endpoints = endpoints;
	return 0;
}

void rp_report_msg_free(struct rp_report_msg *m)
{
	free(m->routes);
	free(m->clusters);
	free(m->endpoints);
	free(m->route_v);
	free(m->cluster_v);
	free(m->endpoint_v);
	memset(m, 0, sizeof *m);
}

static size_t varint_len(size_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Bytes one embedded entry of @sz bytes takes (fields 7-9: one tag byte). */
static size_t entry_len(size_t sz)
{
	return 1 + varint_len(sz) + sz;
}

/* Keep routes and clusters alternately while they fit in @budget. */
static void cap_traffic(struct rp_report_msg *m, size_t budget)
{
	size_t nr = m->r.n_routes, nc = m->r.n_clusters, kr = 0, kc = 0, used = 0;
	for (int progress = 1; progress;) {
		progress = 0;
		if (kr < nr) {
			size_t l = entry_len(
				raftplane__traffic_stats__get_packed_size(m->route_v[kr]));
			if (used + l <= budget)
				used += l, kr++, progress = 1;
			else
				nr = kr; /* this one does not fit: keep order, stop here */
		}
		if (kc < nc) {
			size_t l = entry_len(
				raftplane__traffic_stats__get_packed_size(m->cluster_v[kc]));
			if (used + l <= budget)
				used += l, kc++, progress = 1;
			else
				nc = kc;
		}
	}
	m->r.n_routes = kr;
	m->r.n_clusters = kc;
}

int rp_report_pack(struct rp_report_msg *m, size_t max, uint8_t **out, size_t *len,
		   size_t *truncated)
{
	size_t nr = m->r.n_routes, nc = m->r.n_clusters, ne = m->r.n_endpoints;
	*truncated = 0;
	if (raftplane__report__get_packed_size(&m->r) > max) {
		m->r.n_routes = m->r.n_clusters = m->r.n_endpoints = 0;
		size_t base = raftplane__report__get_packed_size(&m->r);
		if (base > max)
			return -1;
		size_t traffic = 0;
		for (size_t i = 0; i < nr; i++)
			traffic += entry_len(
				raftplane__traffic_stats__get_packed_size(m->route_v[i]));
		for (size_t i = 0; i < nc; i++)
			traffic += entry_len(
				raftplane__traffic_stats__get_packed_size(m->cluster_v[i]));
		if (base + traffic <= max) {
			/* every route and cluster, then the endpoints that fit */
			m->r.n_routes = nr;
			m->r.n_clusters = nc;
			size_t used = base + traffic, k = 0;
			while (k < ne) {
				size_t l = entry_len(raftplane__endpoint_stats__get_packed_size(
					m->endpoint_v[k]));
				if (used + l > max)
					break;
				used += l;
				k++;
			}
			m->r.n_endpoints = k;
		} else {
			m->r.n_routes = nr;
			m->r.n_clusters = nc;
			cap_traffic(m, max - base);
		}
		*truncated = (nr - m->r.n_routes) + (nc - m->r.n_clusters) +
			     (ne - m->r.n_endpoints);
	}
	size_t sz = raftplane__report__get_packed_size(&m->r);
	*out = malloc(sz ? sz : 1);
	if (!*out)
		return -1;
	*len = raftplane__report__pack(&m->r, *out);
	return 0;
}

uint64_t rp_report_instance(void)
{
	uint64_t v = 0;
	while (v == 0) {
		if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
			v = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)rand();
	}
	return v;
}

/* ---- the sender ------------------------------------------------------------ */

static void on_tick(uv_timer_t *t);

/* Log @why once until it changes or a report succeeds. */
static void note_failure(struct rp_reporter *r, int result, const char *why)
{
	r->results[result]++;
	r->last_result = result;
	snprintf(r->last_error, sizeof r->last_error, "%s: %s", r->server, why);
	if (!r->quiet && strcmp(r->logged, r->last_error) != 0) {
		rp_log_warn("telemetry: report to %s: %s (reporting again at the next interval; "
			    "each new failure is logged once)",
			    r->server, why);
		snprintf(r->logged, sizeof r->logged, "%s", r->last_error);
	}
}

/* Seconds of a Retry-After (delay-seconds only; anything else: 1 s). */
static unsigned retry_after_s(const char *v)
{
	unsigned long n = 0;
	if (!v || !*v)
		return 1;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return 1;
		n = n * 10 + (unsigned long)(*p - '0');
		if (n > RP_REPORT_MAX_RETRY_AFTER_S)
			n = RP_REPORT_MAX_RETRY_AFTER_S;
	}
	return (unsigned)n;
}

static void answered(void *arg, int err, const struct rp_http_response *res);

/* The final report was answered: tell rp_reporter_flush()'s caller from a
 * timer, not from inside the HTTP client's callback (the caller closes
 * every handle, the client's connection among them, which the client
 * itself closes right after this callback). */
static void on_flushed(uv_timer_t *t)
{
	struct rp_reporter *r = t->data;
	void (*done)(void *) = r->flushed;
	r->flushed = NULL;
	if (done)
		done(r->flushed_arg);
}

static void on_answer(void *arg, int err, const struct rp_http_response *res)
{
	struct rp_reporter *r = arg;
	answered(arg, err, res);
	if (r->flushed)
		uv_timer_start(&r->timer, on_flushed, 0, 0);
}

static void answered(void *arg, int err, const struct rp_http_response *res)
{
	struct rp_reporter *r = arg;
	r->req = NULL;
	if (r->stopped)
		return;
	if (err) {
		note_failure(r, RP_REPORT_FAILED,
			     err == RP_HTTP_ERR_TLS ? rp_http_tls_error() : rp_http_strerror(err));
		return;
	}
	char why[160];
	if (res->status >= 200 && res->status < 300) {
		r->results[RP_REPORT_ACCEPTED]++;
		r->last_result = RP_REPORT_ACCEPTED;
		r->last_error[0] = '\0';
		if (r->logged[0] && !r->quiet)
			rp_log_info("telemetry: reports to %s accepted again", r->server);
		r->logged[0] = '\0';
		return;
	}
	if (res->status == 429) {
		unsigned s = retry_after_s(res->retry_after);
		r->blocked_until = uv_now(r->loop) + (uint64_t)s * 1000;
		snprintf(r->blocked_server, sizeof r->blocked_server, "%s", r->server);
		snprintf(why, sizeof why, "HTTP 429: slowed down for %u s", s);
		note_failure(r, RP_REPORT_THROTTLED, why);
		return;
	}
	snprintf(why, sizeof why, "HTTP %d", res->status);
	note_failure(r,
		     res->status >= 400 && res->status < 500 ? RP_REPORT_REFUSED : RP_REPORT_FAILED,
		     why);
}

/* Build, encode and POST one report to the current server. */
static void send_report(struct rp_reporter *r, unsigned interval)
{
	struct rp_report_msg m;
	snprintf(r->server, sizeof r->server, "%s", rp_sub_server(r->sub));
	if (r->build(r, &m) != 0) {
		note_failure(r, RP_REPORT_FAILED, "out of memory building the report");
		return;
	}
	snprintf(m.node_id, sizeof m.node_id, "%s", r->sub->node_id);
	m.r.node_id = m.node_id;
	m.r.instance = r->instance;
	m.r.seq = ++r->seq;
	m.r.uptime_ms = uv_hrtime() / 1000000 - r->started_ms;
	uint8_t *buf;
	size_t len, truncated;
	int rv = rp_report_pack(&m, RP_REPORT_MAX_BYTES, &buf, &len, &truncated);
	rp_report_msg_free(&m);
	if (rv != 0) {
		note_failure(r, RP_REPORT_FAILED, "cannot encode the report");
		return;
	}
	r->truncated += truncated;
	r->last_seq = r->seq;
	unsigned timeout = interval < RP_REPORT_TIMEOUT_MS ? interval : RP_REPORT_TIMEOUT_MS;
	rv = rp_http_request_tls(r->sub->tls, r->loop, r->server, "POST", "/v1/report",
				 "Content-Type: application/x-protobuf\r\n", buf, len, timeout,
				 on_answer, r, &r->req);
	free(buf);
	if (rv != 0) {
		r->req = NULL;
		note_failure(r, RP_REPORT_FAILED, rp_http_strerror(rv));
	}
}

static void on_tick(uv_timer_t *t)
{
	struct rp_reporter *r = t->data;
	unsigned interval = rp_sub_report_interval(r->sub);
	r->interval_ms = interval;
	if (r->stopped || interval == 0)
		return;
	uv_timer_start(&r->timer, on_tick, interval, 0); /* the next one */
	if (r->req)
		return; /* invariant 2: the last one is still out */
	const char *server = rp_sub_server(r->sub);
	if (uv_now(r->loop) < r->blocked_until && strcmp(server, r->blocked_server) == 0)
		return; /* invariant 4 */
	send_report(r, interval);
}

static void on_interval(struct rp_sub_client *c, void *arg)
{
	struct rp_reporter *r = arg;
	unsigned interval = rp_sub_report_interval(c);
	if (r->stopped)
		return;
	if (interval == 0) {
		r->interval_ms = 0;
		uv_timer_stop(&r->timer);
		return;
	}
	if (r->interval_ms == 0 || !uv_is_active((uv_handle_t *)&r->timer)) {
		/* a fleet restarting together must not report in lockstep */
		r->interval_ms = interval;
		uv_timer_start(&r->timer, on_tick, (uint64_t)(rand() % (int)interval), 0);
	}
	/* otherwise a new interval takes effect at the next tick */
}

void rp_reporter_init(struct rp_reporter *r, uv_loop_t *loop, struct rp_sub_client *sub,
		      rp_report_build_cb build, void *data)
{
	memset(r, 0, sizeof *r);
	r->loop = loop;
	r->sub = sub;
	r->build = build;
	r->data = data;
	r->instance = rp_report_instance();
	r->started_ms = uv_hrtime() / 1000000;
	r->last_result = RP_REPORT_NONE;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	rp_sub_on_interval(sub, on_interval, r);
	on_interval(sub, r);
}

void rp_reporter_flush(struct rp_reporter *r, unsigned timeout_ms, void (*done)(void *arg),
		       void *arg)
{
	const char *server = rp_sub_server(r->sub);
	if (r->stopped || r->interval_ms == 0 || !server[0] ||
	    (uv_now(r->loop) < r->blocked_until && strcmp(server, r->blocked_server) == 0)) {
		done(arg);
		return;
	}
	uv_timer_stop(&r->timer);
	if (r->req) {
		rp_http_cancel(r->req);
		r->req = NULL;
	}
	r->flushed = done;
	r->flushed_arg = arg;
	send_report(r, timeout_ms);
	if (!r->req && r->flushed) { /* nothing went out */
		r->flushed = NULL;
		done(arg);
	}
}

void rp_reporter_close(struct rp_reporter *r)
{
	if (r->stopped)
		return;
	r->stopped = 1;
	rp_sub_on_interval(r->sub, NULL, NULL);
	if (r->req) {
		rp_http_cancel(r->req);
		r->req = NULL;
	}
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, NULL);
}
