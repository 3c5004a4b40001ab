/* The fleet's telemetry, from any member (docs/telemetry.md).
 *
 * Each member keeps the samples of the proxies that report to it
 * (telemetry.c). A query here asks every member (fanout.c, 1 s timeout,
 * POST /v1/telemetry/points) for, per instance and per time point, the
 * newest sample at or before the point, then merges:
 *
 * Invariants
 * 1. Per instance and point, the merged sample is the one of highest seq
 *    any member holds: an instance that failed over between servers is one
 *    series, and nothing is counted twice (counters are cumulative).
 * 2. The delta of a window [now - W, now] is merged(now) - merged(now - W);
 *    with no sample at or before the start anywhere, the base is zero when
 *    the instance started within the window (receipt time - uptime, the
 *    earliest any member saw) or its earliest known sample is its seq 1,
 *    else that earliest sample. So an instance whose server died (its
 *    samples with it) is still counted whole from the next report on
 *    another server. A negative difference (only a lying proxy across
 *    servers can make one) counts as 0.
 * 3. Percentiles come from the sum of the instances' bucket deltas (never
 *    an average of percentiles), interpolated linearly inside the bucket
 *    the rank falls in; the +Inf bucket reports its lower bound.
 * 4. "now" is rounded up to QUANTUM_MS, so concurrent callers asking the
 *    same thing in one quantum share one fan-out (key = the peers' query);
 *    rounding up keeps every report already received inside the window.
 * 5. Only instances whose last report is at most FRESH_INTERVALS report
 *    intervals old count for gauges (active) and endpoint health. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout.h"
#include "json.h"
#include "params.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "report.h"
#include "telemetry.h"
#include "telemetry_query.h"
#include "validate.h"

#define QUANTUM_MS 250
#define DEFAULT_WINDOW_MS 60000
#define MAX_WINDOW_MS (15 * 60 * 1000)
#define MIN_WINDOW_MS 1000
#define FRESH_INTERVALS 3
#define MAX_POINTS 64
#define MAX_NODE_POINTS 8

/* A query's state (c->ctx, request pool). */
struct tq_call {
	int what;
	char name[RP_MAX_NAME + 1];
	uint64_t window, now;
};

/* ---- numbers ------------------------------------------------------------------ */

static uint64_t ju64(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	if (json_is_real(v) && json_real_value(v) > 0)
		return json_real_value(v) >= 1.8e19 ? UINT64_MAX : (uint64_t)json_real_value(v);
	return 0;
}

static void vec_read(json_t *a, uint64_t v[RP_TV__N])
{
	for (int k = 0; k < RP_TV__N; k++)
		v[k] = ju64(json_array_get(a, (size_t)k));
}

double rp_tq_percentile(const uint64_t *b, double q)
{
	uint64_t total = 0;
	for (int i = 0; i < RP_TL_LAT_BUCKETS; i++)
		total += b[i];
	if (total == 0)
		return -1;
	double rank = q * (double)total, cum = 0;
	for (int i = 0; i < RP_TL_LAT_BUCKETS; i++) {
		if (b[i] == 0 || cum + (double)b[i] < rank) {
			cum += (double)b[i];
			continue;
		}
		double lo = i == 0 ? 0 : (double)rp_tl_lat_bounds_us[i - 1];
		if (i == RP_TL_LAT_BOUNDS) /* +Inf: its lower bound */
			return lo / 1000;
		double hi = (double)rp_tl_lat_bounds_us[i];
		return (lo + (hi - lo) * (rank - cum) / (double)b[i]) / 1000;
	}
	return (double)rp_tl_lat_bounds_us[RP_TL_LAT_BOUNDS - 1] / 1000;
}

/* ---- the merge (invariant 1) --------------------------------------------------- */

static json_t *pick_newer(json_t *cur, json_t *s)
{
	if (!json_is_object(s))
		return cur;
	if (!cur || ju64(json_object_get(s, "seq")) > ju64(json_object_get(cur, "seq")))
		return s;
	return cur;
}

/* Of two samples of a "first after" point, the older (lower seq). */
static json_t *pick_older(json_t *cur, json_t *s)
{
	if (!json_is_object(s))
		return cur;
	if (!cur || ju64(json_object_get(s, "seq")) < ju64(json_object_get(cur, "seq")))
		return s;
	return cur;
}

/* One member's entry @e into the merged @m (same instance). Points listed
 * in @e's "after" ask for the first sample after a time: the lowest seq
 * wins there, the highest everywhere else (invariant 1). */
static void merge_entry(json_t *m, json_t *e)
{
	json_t *pts = json_object_get(m, "points"), *samples = json_object_get(e, "samples");
	json_t *idx;
	size_t p;
	json_array_foreach(json_object_get(e, "points"), p, idx)
	{
		json_int_t i = json_integer_value(idx);
		json_t *s = i >= 0 ? json_array_get(samples, (size_t)i) : NULL;
		json_t *cur = json_array_get(pts, p);
		if (!cur) {
			while (json_array_size(pts) < p)
				json_array_append_new(pts, json_null());
			json_array_append(pts, json_is_object(s) ? s : json_null());
			continue;
		}
		int after = 0;
		json_t *a;
		size_t k;
		json_array_foreach(json_object_get(e, "after"), k, a)
			after |= json_integer_value(a) == (json_int_t)p;
		json_t *best = after ? pick_older(json_is_object(cur) ? cur : NULL, s)
				     : pick_newer(json_is_object(cur) ? cur : NULL, s);
		if (best && best != cur)
			json_array_set(pts, p, best);
	}
	json_t *first = json_object_get(e, "first"), *mf = json_object_get(m, "first");
	if (json_is_object(first) &&
	    (!json_is_object(mf) ||
	     ju64(json_object_get(first, "seq")) < ju64(json_object_get(mf, "seq"))))
		json_object_set(m, "first", first);
	uint64_t st = ju64(json_object_get(e, "started")),
		 mst = ju64(json_object_get(m, "started"));
	if (st && (!mst || st < mst))
		json_object_set(m, "started", json_object_get(e, "started"));
	if (ju64(json_object_get(e, "last")) >= ju64(json_object_get(m, "last"))) {
		json_object_set(m, "last", json_object_get(e, "last"));
		json_t *eps = json_object_get(e, "endpoints");
		if (eps)
			json_object_set(m, "endpoints", eps);
	}
}

/* bodies -> {"NODE/INSTANCE": {node_id, instance, last, first, points:[S|null],
 * endpoints}} */
static json_t *reduce_points(struct rp_api *api, json_t *bodies, void *arg)
{
	(void)api;
	(void)arg;
	json_t *merged = json_object(), *b;
	size_t i;
	json_array_foreach(bodies, i, b)
	{
		json_t *e;
		size_t j;
		json_array_foreach(json_object_get(b, "instances"), j, e)
		{
			const char *node = json_string_value(json_object_get(e, "node_id"));
			const char *inst = json_string_value(json_object_get(e, "instance"));
			if (!node || !inst || !json_is_array(json_object_get(e, "points")))
				continue;
			char key[RP_MAX_NAME + 32];
			snprintf(key, sizeof key, "%s/%s", node, inst);
			json_t *m = json_object_get(merged, key);
			if (!m) {
				m = json_pack("{s:s,s:s,s:I,s:n,s:[]}", "node_id", node, "instance",
					      inst, "last", (json_int_t)0, "first", "points");
				json_object_set_new(merged, key, m);
			}
			merge_entry(m, e);
		}
	}
	return merged;
}

/* ---- window deltas (invariant 2) ------------------------------------------------- */

/* What one item (route or cluster) did over the window, summed. */
struct tq_sum {
	uint64_t v[RP_TV__N];
	int seen;
};

static json_t *point(json_t *inst, size_t p)
{
	json_t *s = json_array_get(json_object_get(inst, "points"), p);
	return json_is_object(s) ? s : NULL;
}

/* Add to @sum the delta of item @name of @kind ("routes"/"clusters") of
 * instance @inst between points @p_start (at wall ms @start_t) and @p_end;
 * @fresh_after: the gauge counts when the end sample is that recent (wall
 * ms). */
static void add_delta(struct tq_sum *sum, json_t *inst, const char *kind, const char *name,
		      size_t p_start, uint64_t start_t, size_t p_end, uint64_t fresh_after)
{
	json_t *end = point(inst, p_end), *start = point(inst, p_start);
	json_t *ev = end ? json_object_get(json_object_get(end, kind), name) : NULL;
	if (!ev)
		return;
	uint64_t e[RP_TV__N], s[RP_TV__N] = {0};
	vec_read(ev, e);
	json_t *base = start;
	uint64_t started = ju64(json_object_get(inst, "started"));
	if (!base && !(started && started >= start_t)) {
		json_t *first = json_object_get(inst, "first");
		base = json_is_object(first) && ju64(json_object_get(first, "seq")) != 1 ? first
											 : NULL;
	}
	json_t *bv = base ? json_object_get(json_object_get(base, kind), name) : NULL;
	if (bv)
		vec_read(bv, s);
	for (int k = 0; k < RP_TV__N; k++)
		if (k != RP_TV_ACTIVE)
			sum->v[k] += e[k] > s[k] ? e[k] - s[k] : 0;
	if (ju64(json_object_get(end, "t")) >= fresh_after)
		sum->v[RP_TV_ACTIVE] += e[RP_TV_ACTIVE];
	sum->seen = 1;
}

static json_t *pct(const uint64_t *b, double q)
{
	double v = rp_tq_percentile(b, q);
	return v < 0 ? json_null() : json_real((double)(int64_t)(v * 1000 + 0.5) / 1000);
}

/* The JSON of one summed item over a window of @window ms. */
static json_t *sum_json(const struct tq_sum *s, uint64_t window)
{
	const uint64_t *v = s->v;
	uint64_t responses = 0;
	for (int i = 0; i < 6; i++)
		responses += v[RP_TV_RESP + i];
	uint64_t errors = v[RP_TV_RESP + 5];
	json_t *classes =
		json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "1xx", rp_json_u64(v[RP_TV_RESP + 1]), "2xx",
			  rp_json_u64(v[RP_TV_RESP + 2]), "3xx", rp_json_u64(v[RP_TV_RESP + 3]),
			  "4xx", rp_json_u64(v[RP_TV_RESP + 4]), "5xx",
			  rp_json_u64(v[RP_TV_RESP + 5]), "other", rp_json_u64(v[RP_TV_RESP]));
	json_t *up = json_pack("{s:o,s:o,s:o,s:o}", "connect", rp_json_u64(v[RP_TV_CONNECT]),
			       "reset", rp_json_u64(v[RP_TV_RESETS]), "timeout",
			       rp_json_u64(v[RP_TV_TIMEOUTS]), "no_healthy",
			       rp_json_u64(v[RP_TV_NO_HEALTHY]));
	json_t *lat = json_pack("{s:o,s:o,s:o}", "p50", pct(v + RP_TV_LAT, 0.5), "p90",
				pct(v + RP_TV_LAT, 0.9), "p99", pct(v + RP_TV_LAT, 0.99));
	return json_pack("{s:o,s:f,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "requests",
			 rp_json_u64(v[RP_TV_REQUESTS]), "rate",
			 (double)v[RP_TV_REQUESTS] * 1000.0 / (double)window, "responses", classes,
			 "errors", rp_json_u64(errors), "error_rate",
			 responses ? json_real((double)errors / (double)responses) : json_null(),
			 "upstream_errors", up, "retries", rp_json_u64(v[RP_TV_RETRIES]),
			 "upstream_requests", rp_json_u64(v[RP_TV_UPSTREAM]), "active",
			 rp_json_u64(v[RP_TV_ACTIVE]), "latency_ms", lat, "latency_sum_ms",
			 json_real((double)v[RP_TV_LAT_SUM] / 1000));
}

/* ---- the answers ------------------------------------------------------------------- */

static uint64_t fresh_after(struct rp_call *c, uint64_t now)
{
	uint64_t span = (uint64_t)FRESH_INTERVALS * rp_telemetry_interval_ms(c->api);
	return now > span ? now - span : 0;
}

/* Item @name of @kind over the window: fleet-wide, and per proxy (node id)
 * when @per_proxy. NULL when no instance reported it. */
static json_t *item_json(struct rp_call *c, json_t *merged, const char *kind, const char *name,
			 int per_proxy, const char *only_node)
{
	struct tq_call *q = c->ctx;
	struct tq_sum total = {0};
	json_t *by_node = json_object(); /* node id -> index in sums */
	struct tq_sum *sums = NULL;
	size_t n_sums = 0;
	const char *key;
	json_t *inst;
	uint64_t fresh = fresh_after(c, q->now);
	json_object_foreach(merged, key, inst)
	{
		const char *node = json_string_value(json_object_get(inst, "node_id"));
		if (only_node && strcmp(node, only_node) != 0)
			continue;
		struct tq_sum one = {0};
		add_delta(&one, inst, kind, name, 1, q->now - q->window, 0, fresh);
		if (!one.seen)
			continue;
		for (int k = 0; k < RP_TV__N; k++)
			total.v[k] += one.v[k];
		total.seen = 1;
		if (!per_proxy)
			continue;
		json_t *idx = json_object_get(by_node, node);
		if (!idx) {
			struct tq_sum *more = realloc(sums, (n_sums + 1) * sizeof *sums);
			if (!more)
				continue;
			sums = more;
			memset(&sums[n_sums], 0, sizeof *sums);
			idx = json_integer((json_int_t)n_sums++);
			json_object_set_new(by_node, node, idx);
		}
		struct tq_sum *ps = &sums[json_integer_value(idx)];
		for (int k = 0; k < RP_TV__N; k++)
			ps->v[k] += one.v[k];
	}
	if (!total.seen) {
		json_decref(by_node);
		free(sums);
		return NULL;
	}
	json_t *o = sum_json(&total, q->window);
	json_object_set_new(o, "name", json_string(name));
	if (per_proxy) {
		json_t *arr = json_array(), *acc;
		json_object_foreach(by_node, key, acc)
		{
			json_t *p = sum_json(&sums[json_integer_value(acc)], q->window);
			json_object_set_new(p, "node_id", json_string(key));
			json_array_append_new(arr, p);
		}
		json_object_set_new(o, "proxies", arr);
	}
	json_decref(by_node);
	free(sums);
	return o;
}

/* Names of @kind reported by any instance (of @only_node when set). */
static json_t *reported_names(json_t *merged, const char *kind, const char *only_node)
{
	json_t *names = json_object(), *inst;
	const char *key;
	json_object_foreach(merged, key, inst)
	{
		const char *node = json_string_value(json_object_get(inst, "node_id"));
		if (only_node && strcmp(node, only_node) != 0)
			continue;
		json_t *s = point(inst, 0), *v;
		const char *name;
		json_object_foreach(json_object_get(s, kind), name, v)
			json_object_set_new(names, name, json_true());
	}
	return names;
}

static void answer_list(struct rp_call *c, json_t *merged, json_t *unreachable)
{
	struct tq_call *q = c->ctx;
	const char *kind = q->what == RP_TQ_CLUSTERS ? "clusters" : "routes";
	json_t *names = reported_names(merged, kind, NULL), *arr = json_array(), *v;
	const char *name;
	json_object_foreach(names, name, v)
	{
		json_t *o = item_json(c, merged, kind, name, 1, NULL);
		if (o)
			json_array_append_new(arr, o);
	}
	json_decref(names);
	rp_respond_json(c, 200,
			json_pack("{s:o,s:I,s:O}", kind, arr, "window_ms", (json_int_t)q->window,
				  "unreachable", unreachable),
			0);
}

static void answer_item(struct rp_call *c, json_t *merged, json_t *unreachable)
{
	struct tq_call *q = c->ctx;
	const char *kind = q->what == RP_TQ_CLUSTERS ? "clusters" : "routes";
	json_t *o = item_json(c, merged, kind, q->name, 1, NULL);
	if (!o) {
		char msg[RP_MAX_NAME + 64];
		if (!rp_telemetry_in_mesh(
			    c->api, q->what == RP_TQ_CLUSTERS ? RP_KIND_CLUSTERS : RP_KIND_ROUTES,
			    q->name)) {
			snprintf(msg, sizeof msg, "no %s %s reported or configured",
				 q->what == RP_TQ_CLUSTERS ? "cluster" : "route", q->name);
			rp_respond_error(c, RP_ERR_NOT_FOUND, msg, -1);
			return;
		}
		struct tq_sum zero = {0};
		o = sum_json(&zero, q->window);
		json_object_set_new(o, "name", json_string(q->name));
		json_object_set_new(o, "proxies", json_array());
	}
	json_object_set_new(o, "window_ms", json_integer((json_int_t)q->window));
	json_object_set(o, "unreachable", unreachable);
	rp_respond_json(c, 200, o, 0);
}

static const char *const state_names[3] = {"healthy", "unhealthy", "ejected"};

static json_t *endpoint_entry(json_t *e)
{
	json_int_t st = json_integer_value(json_array_get(e, 2));
	return json_pack("{s:O,s:O,s:s,s:O,s:O,s:O,s:O}", "cluster", json_array_get(e, 0),
			 "address", json_array_get(e, 1), "state",
			 st >= 0 && st < 3 ? state_names[st] : "?", "reason", json_array_get(e, 3),
			 "since", json_array_get(e, 4), "requests", json_array_get(e, 5), "errors",
			 json_array_get(e, 6));
}

static void answer_proxy(struct rp_call *c, json_t *merged, json_t *unreachable)
{
	struct tq_call *q = c->ctx;
	json_t *instances = json_array(), *inst, *eps = NULL;
	const char *key;
	uint64_t best = 0;
	json_object_foreach(merged, key, inst)
	{
		if (strcmp(json_string_value(json_object_get(inst, "node_id")), q->name) != 0)
			continue;
		json_t *s = point(inst, 0);
		json_array_append_new(
			instances, json_pack("{s:O,s:O,s:O,s:O}", "instance",
					     json_object_get(inst, "instance"), "seq",
					     s ? json_object_get(s, "seq") : json_null(), "version",
					     s ? json_object_get(s, "version") : json_null(),
					     "last_report", json_object_get(inst, "last")));
		if (ju64(json_object_get(inst, "last")) >= best) {
			best = ju64(json_object_get(inst, "last"));
			eps = json_object_get(inst, "endpoints");
		}
	}
	if (json_array_size(instances) == 0) {
		json_decref(instances);
		char msg[RP_MAX_NAME + 64];
		snprintf(msg, sizeof msg, "no telemetry from node %s", q->name);
		rp_respond_error(c, RP_ERR_NOT_FOUND, msg, -1);
		return;
	}
	json_t *out = json_pack("{s:s,s:I,s:o,s:O}", "node_id", q->name, "window_ms",
				(json_int_t)q->window, "instances", instances, "unreachable",
				unreachable);
	const char *kinds[2] = {"routes", "clusters"};
	for (int k = 0; k < 2; k++) {
		json_t *names = reported_names(merged, kinds[k], q->name), *arr = json_array(), *v;
		const char *name;
		json_object_foreach(names, name, v)
		{
			json_t *o = item_json(c, merged, kinds[k], name, 0, q->name);
			if (o)
				json_array_append_new(arr, o);
		}
		json_decref(names);
		json_object_set_new(out, kinds[k], arr);
	}
	json_t *earr = json_array(), *e;
	size_t i;
	json_array_foreach(eps, i, e) json_array_append_new(earr, endpoint_entry(e));
	json_object_set_new(out, "endpoints", earr);
	rp_respond_json(c, 200, out, 0);
}

/* ---- /v1/clusters/{name}/health (invariant 5) -------------------------------------- */

static json_t *health_slot(json_t *by_addr, const char *addr)
{
	json_t *h = json_object_get(by_addr, addr);
	if (!h) {
		h = json_pack("{s:s,s:i,s:i,s:i,s:[]}", "address", addr, "healthy", 0, "unhealthy",
			      0, "ejected", 0, "proxies");
		json_object_set_new(by_addr, addr, h);
	}
	return h;
}

static void answer_health(struct rp_call *c, json_t *merged, json_t *unreachable)
{
	struct tq_call *q = c->ctx;
	json_t *cfg = rp_telemetry_cluster_endpoints(c->api, q->name);
	if (!cfg) {
		char msg[RP_MAX_NAME + 32];
		snprintf(msg, sizeof msg, "no cluster %s", q->name);
		rp_respond_error(c, RP_ERR_NOT_FOUND, msg, -1);
		return;
	}
	json_t *by_addr = json_object(), *v, *newest = json_object(), *inst;
	size_t i;
	json_array_foreach(cfg, i, v) health_slot(by_addr, json_string_value(v));
	uint64_t fresh = fresh_after(c, q->now);
	const char *key;
	/* per node id its freshest instance */
	json_object_foreach(merged, key, inst)
	{
		const char *node = json_string_value(json_object_get(inst, "node_id"));
		json_t *cur = json_object_get(newest, node);
		uint64_t last = ju64(json_object_get(inst, "last"));
		if (last >= fresh && (!cur || last > ju64(json_object_get(cur, "last"))))
			json_object_set(newest, node, inst);
	}
	json_int_t seeing = 0; /* fresh proxies that report endpoints of the cluster */
	json_object_foreach(newest, key, inst)
	{
		json_t *e;
		int any = 0;
		json_array_foreach(json_object_get(inst, "endpoints"), i, e)
		{
			if (strcmp(json_string_value(json_array_get(e, 0)), q->name) != 0)
				continue;
			any = 1;
			json_t *h = health_slot(by_addr, json_string_value(json_array_get(e, 1)));
			json_int_t st = json_integer_value(json_array_get(e, 2));
			const char *sn = st >= 0 && st < 3 ? state_names[st] : "unhealthy";
			json_object_set_new(
				h, sn,
				json_integer(json_integer_value(json_object_get(h, sn)) + 1));
			json_array_append_new(json_object_get(h, "proxies"),
					      json_pack("{s:s,s:s,s:O,s:O}", "node_id", key,
							"state", sn, "reason", json_array_get(e, 3),
							"since", json_array_get(e, 4)));
		}
		seeing += any;
	}
	json_t *arr = json_array(), *h;
	json_object_foreach(by_addr, key, h) json_array_append(arr, h);
	rp_respond_json(c, 200,
			json_pack("{s:s,s:o,s:I,s:O}", "cluster", q->name, "endpoints", arr,
				  "proxies", seeing, "unreachable", unreachable),
			0);
	json_decref(by_addr);
	json_decref(newest);
	json_decref(cfg);
}

/* ---- the fan-out ---------------------------------------------------------------------- */

/* The "kinds" of a local query body: ["routes","clusters"] by default. */
static unsigned query_kinds(json_t *body)
{
	json_t *k = json_object_get(body, "kinds"), *v;
	size_t i;
	unsigned m = 0;
	if (!k)
		return RP_TLQ_ROUTES | RP_TLQ_CLUSTERS;
	json_array_foreach(k, i, v)
	{
		const char *s = json_string_value(v);
		m |= s && !strcmp(s, "routes") ? RP_TLQ_ROUTES : 0;
		m |= s && !strcmp(s, "clusters") ? RP_TLQ_CLUSTERS : 0;
	}
	return m;
}

/* Ask every member for @body's points (the local query), then @cb. */
static void fleet_points(struct rp_call *c, json_t *body, rp_fanout_cb cb)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		json_decref(body);
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return;
	}
	char *key = malloc(strlen(text) + 4);
	if (!key) {
		free(text);
		json_decref(body);
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return;
	}
	snprintf(key, strlen(text) + 4, "tl:%s", text);
	int joined = rp_fanout_join(c, key, cb);
	if (joined == 0) {
		uint64_t at[MAX_POINTS];
		size_t n = 0;
		json_t *v;
		size_t i;
		json_array_foreach(json_object_get(body, "at"), i, v) if (n < MAX_POINTS)
			at[n++] = ju64(v);
		json_t *node = json_object_get(body, "node");
		json_t *node_at = json_object_get(body, "node_at");
		struct rp_tl_query lq = {at,
					 n,
					 json_string_value(node),
					 json_is_object(node_at) ? node_at : NULL,
					 json_is_true(json_object_get(body, "endpoints")),
					 query_kinds(body),
					 json_string_value(json_object_get(body, "name")),
					 json_string_value(json_object_get(body, "cluster"))};
		struct rp_fanout_spec spec = {.method = "POST",
					      .path = "/v1/telemetry/points",
					      .body = text,
					      .key = key,
					      .local = rp_telemetry_local(c->api, &lq),
					      .reduce = reduce_points};
		rp_fanout_start(c, cb, &spec);
	}
	free(key);
	free(text);
	json_decref(body);
}

static int parse_window(struct rp_call *c, uint64_t *w)
{
	char buf[32];
	int has = rp_query_param(c->req, "window", buf, sizeof buf);
	*w = DEFAULT_WINDOW_MS;
	if (has == 0)
		return 0;
	if (has < 0 || rp_parse_wait(buf, MAX_WINDOW_MS, w) != 0 || *w < MIN_WINDOW_MS) {
		rp_respond_error(c, RP_ERR_INVALID,
				 "window must be like 30s, 1m or 15m: at least 1s, at most 15m",
				 -1);
		return -1;
	}
	return 0;
}

void rp_route_telemetry(struct rp_call *c, int what, const char *name, size_t len)
{
	struct tq_call *q = rp_call_alloc(c, sizeof *q, NULL);
	c->ctx = q;
	q->what = what;
	if (len && !rp_name_valid(name, len)) {
		rp_respond_error(c, RP_ERR_INVALID, "the name must match [A-Za-z0-9._-]{1,128}",
				 -1);
		return;
	}
	memcpy(q->name, name, len);
	q->name[len] = '\0';
	if (what != RP_TQ_HEALTH && parse_window(c, &q->window) != 0)
		return;
	if (what == RP_TQ_HEALTH)
		q->window = DEFAULT_WINDOW_MS;
	uint64_t now = rp_wall_ms();
	q->now = (now + QUANTUM_MS - 1) / QUANTUM_MS * QUANTUM_MS; /* invariant 4 */
	json_t *body = json_pack("{s:[I,I]}", "at", (json_int_t)q->now,
				 (json_int_t)(q->now - q->window));
	rp_fanout_cb cb = answer_list;
	const char *kind = what == RP_TQ_ROUTES ? "routes" : "clusters";
	if (what == RP_TQ_PROXY) {
		json_object_set_new(body, "node", json_string(q->name));
		json_object_set_new(body, "endpoints", json_true());
		cb = answer_proxy;
	} else if (what == RP_TQ_HEALTH) { /* the cluster's endpoints only */
		json_object_set_new(body, "endpoints", json_true());
		json_object_set_new(body, "cluster", json_string(q->name));
		json_object_set_new(body, "kinds", json_array());
		cb = answer_health;
	} else { /* only the kind asked for, only the item when named */
		json_object_set_new(body, "kinds", json_pack("[s]", kind));
		if (len) {
			json_object_set_new(body, "name", json_string(q->name));
			cb = answer_item;
		}
	}
	fleet_points(c, body, cb);
}

/* ---- fleet totals (/metrics) ------------------------------------------------------- */

void rp_tq_fleet_newest(struct rp_call *c, rp_fanout_cb cb)
{
	uint64_t now = rp_wall_ms();
	now = (now + QUANTUM_MS - 1) / QUANTUM_MS * QUANTUM_MS; /* invariant 4 */
	fleet_points(c, json_pack("{s:[I],s:b}", "at", (json_int_t)now, "endpoints", 1), cb);
}

int rp_tq_totals(json_t *merged, const char *kind, struct rp_tq_totals *t)
{
	const char *key, *name;
	json_t *inst, *vec;
	size_t cap = 0;
	memset(t, 0, sizeof *t);
	t->index = json_object();
	json_object_foreach(merged, key, inst)
	{
		json_t *s = point(inst, 0);
		json_object_foreach(json_object_get(s, kind), name, vec)
		{
			json_t *idx = json_object_get(t->index, name);
			if (!idx) {
				if (t->n == cap) {
					cap = cap ? 2 * cap : 16;
					void *more = realloc(t->v, cap * sizeof *t->v);
					if (!more)
						return -1;
					t->v = more;
				}
				memset(t->v[t->n], 0, sizeof t->v[t->n]);
				idx = json_integer((json_int_t)t->n++);
				json_object_set_new(t->index, name, idx);
			}
			uint64_t one[RP_TV__N];
			vec_read(vec, one);
			uint64_t *sum = t->v[json_integer_value(idx)];
			for (int k = 0; k < RP_TV__N; k++)
				sum[k] += one[k];
		}
	}
	return 0;
}

const uint64_t *rp_tq_total(const struct rp_tq_totals *t, const char *name)
{
	json_t *idx = json_object_get(t->index, name);
	return idx ? t->v[json_integer_value(idx)] : NULL;
}

void rp_tq_totals_release(struct rp_tq_totals *t)
{
	json_decref(t->index);
	free(t->v);
	memset(t, 0, sizeof *t);
}

json_t *rp_tq_endpoint_index(struct rp_call *c, json_t *merged, uint64_t now)
{
	json_t *newest = json_object(), *index = json_object(), *inst, *e;
	const char *key;
	uint64_t fresh = fresh_after(c, now);
	json_object_foreach(merged, key, inst)
	{
		const char *node = json_string_value(json_object_get(inst, "node_id"));
		json_t *cur = json_object_get(newest, node);
		uint64_t last = ju64(json_object_get(inst, "last"));
		if (last >= fresh && (!cur || last > ju64(json_object_get(cur, "last"))))
			json_object_set(newest, node, inst);
	}
	json_object_foreach(newest, key, inst)
	{
		size_t i;
		json_array_foreach(json_object_get(inst, "endpoints"), i, e)
		{
			char k[RP_MAX_NAME + RP_REPORT_MAX_ADDRESS + 2];
			json_int_t st = json_integer_value(json_array_get(e, 2));
			snprintf(k, sizeof k, "%s %s", json_string_value(json_array_get(e, 0)),
				 json_string_value(json_array_get(e, 1)));
			json_t *cnt = json_object_get(index, k);
			if (!cnt) {
				cnt = json_pack("[i,i,i]", 0, 0, 0);
				json_object_set_new(index, k, cnt);
			}
			if (st >= 0 && st < 3)
				json_array_set_new(cnt, (size_t)st,
						   json_integer(json_integer_value(json_array_get(
									cnt, (size_t)st)) +
								1));
		}
	}
	json_decref(newest);
	return index;
}

/* ---- rollouts: before and after the ACK --------------------------------------------- */

struct tq_rollout {
	json_t *answer, *acked;
	uint64_t window;
};

static void on_rollout_dispose(void *p)
{
	struct tq_rollout *r = p;
	json_decref(r->answer);
	json_decref(r->acked);
}

/* Every route of instance @inst between its points @a (at wall ms @a_t)
 * and @b into @sum. */
static void add_all_routes(struct tq_sum *sum, json_t *inst, size_t a, uint64_t a_t, size_t b)
{
	json_t *end = point(inst, b), *v;
	const char *name;
	json_object_foreach(json_object_get(end, "routes"), name, v)
		add_delta(sum, inst, "routes", name, a, a_t, b, UINT64_MAX);
}

static json_t *phase_json(const struct tq_sum *s)
{
	uint64_t responses = 0;
	for (int i = 0; i < 6; i++)
		responses += s->v[RP_TV_RESP + i];
	return json_pack("{s:o,s:o,s:o}", "requests", rp_json_u64(s->v[RP_TV_REQUESTS]),
			 "error_rate",
			 responses ? json_real((double)s->v[RP_TV_RESP + 5] / (double)responses)
				   : json_null(),
			 "p99_ms", pct(s->v + RP_TV_LAT, 0.99));
}

static void answer_rollout_tl(struct rp_call *c, json_t *merged, json_t *unreachable)
{
	(void)unreachable; /* the rollout answer lists the fleet view's */
	struct tq_rollout *r = c->ctx;
	struct tq_sum before = {0}, after = {0};
	json_t *inst, *seen = json_object(); /* node ids with telemetry in the windows */
	const char *key;
	json_object_foreach(merged, key, inst)
	{
		/* points of an ACKed node: ack - W, ack, the first report after
		 * the ACK, min(ack + W, now) (rp_tq_rollout); no report after the
		 * ACK within the window: nothing after */
		const char *node = json_string_value(json_object_get(inst, "node_id"));
		if (!json_object_get(r->acked, node))
			continue;
		uint64_t ack = ju64(json_object_get(r->acked, node));
		add_all_routes(&before, inst, 0, ack > r->window ? ack - r->window : 0, 1);
		json_t *first = point(inst, 2), *end = point(inst, 3);
		if (first && end &&
		    ju64(json_object_get(first, "seq")) <= ju64(json_object_get(end, "seq")))
			add_all_routes(&after, inst, 2, ack, 3);
		if (point(inst, 1) || point(inst, 3))
			json_object_set_new(seen, node, json_true());
	}
	json_object_set_new(r->answer, "telemetry",
			    json_pack("{s:I,s:o,s:o,s:I}", "window_ms", (json_int_t)r->window,
				      "before", phase_json(&before), "after", phase_json(&after),
				      "proxies", (json_int_t)json_object_size(seen)));
	json_decref(seen);
	rp_respond_json(c, 200, json_incref(r->answer), 0);
}

void rp_tq_rollout(struct rp_call *c, json_t *answer, json_t *acked, uint64_t window)
{
	struct tq_rollout *r = rp_call_alloc(c, sizeof *r, on_rollout_dispose);
	r->answer = answer;
	r->acked = acked;
	r->window = window;
	c->ctx = r;
	uint64_t now = rp_wall_ms();
	now = (now + QUANTUM_MS - 1) / QUANTUM_MS * QUANTUM_MS;
	json_t *node_at = json_object(), *v;
	const char *node;
	json_object_foreach(acked, node, v)
	{
		uint64_t at = ju64(v), end = at + window < now ? at + window : now;
		end = end > at ? end : at;
		/* "after" starts at the first report after the ACK: the report at
		 * or before it was built before the proxy applied the revision */
		json_object_set_new(node_at, node,
				    json_pack("[I,I,I,I]",
					      (json_int_t)(at > window ? at - window : 0),
					      (json_int_t)at, -(json_int_t)at, (json_int_t)end));
	}
	fleet_points(c, json_pack("{s:[],s:o,s:[s]}", "at", "node_at", node_at, "kinds", "routes"),
		     answer_rollout_tl);
}

/* ---- the local query ---------------------------------------------------------------- */

static int name_or_absent(json_t *v)
{
	return !v || (json_is_string(v) &&
		      rp_name_valid(json_string_value(v), strlen(json_string_value(v))));
}

static int filter_ok(json_t *body)
{
	json_t *k = json_object_get(body, "kinds"), *v;
	size_t i;
	if (k && (!json_is_array(k) || json_array_size(k) > 2))
		return 0;
	json_array_foreach(k, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || (strcmp(s, "routes") != 0 && strcmp(s, "clusters") != 0))
			return 0;
	}
	return name_or_absent(json_object_get(body, "name")) &&
	       name_or_absent(json_object_get(body, "cluster"));
}

/* Time points: unix ms; with @after_ok, -T too (the first sample after T). */
static int read_points(json_t *a, uint64_t *out, size_t max, size_t *n, int after_ok)
{
	json_t *v;
	size_t i;
	if (!json_is_array(a) || json_array_size(a) > max)
		return -1;
	json_array_foreach(a, i, v)
	{
		if (!json_is_integer(v) || (json_integer_value(v) < 0 && !after_ok) ||
		    json_integer_value(v) == INT64_MIN)
			return -1;
		if (out)
			out[i] = (uint64_t)json_integer_value(v);
	}
	*n = json_array_size(a);
	return 0;
}

void rp_route_telemetry_points(struct rp_call *c)
{
	h2o_iovec_t e = c->req->entity;
	json_t *body = e.base ? json_loadb(e.base, e.len, 0, NULL) : NULL;
	uint64_t at[MAX_POINTS];
	size_t n = 0, m;
	json_t *node = json_object_get(body, "node"), *node_at = json_object_get(body, "node_at");
	json_t *eps = json_object_get(body, "endpoints");
	const char *bad = NULL;
	if (!json_is_object(body))
		bad = "body must be a JSON object";
	else if (read_points(json_object_get(body, "at"), at, MAX_POINTS, &n, 0) != 0)
		bad = "at must be an array of at most 64 unix ms";
	else if (node && (!json_is_string(node) ||
			  !rp_name_valid(json_string_value(node), strlen(json_string_value(node)))))
		bad = "node must be a node id";
	else if (eps && !json_is_boolean(eps))
		bad = "endpoints must be a boolean";
	else if (node_at && !json_is_object(node_at))
		bad = "node_at must be an object";
	else if (!filter_ok(body))
		bad = "kinds must list \"routes\" or \"clusters\"; name and cluster must be names";
	const char *k;
	json_t *v;
	json_object_foreach(node_at, k,
			    v) if (!bad && read_points(v, NULL, MAX_NODE_POINTS, &m, 1) != 0)
		bad = "node_at values must be arrays of at most 8 unix ms (-T: first after T)";
	if (bad) {
		json_decref(body);
		rp_respond_error(c, RP_ERR_INVALID, bad, -1);
		return;
	}
	struct rp_tl_query q = {at,
				n,
				json_string_value(node),
				node_at,
				json_is_true(eps),
				query_kinds(body),
				json_string_value(json_object_get(body, "name")),
				json_string_value(json_object_get(body, "cluster"))};
	rp_respond_json(c, 200, rp_telemetry_local(c->api, &q), 0);
	json_decref(body);
}
