/* Data-plane counters: registry, histogram and rendering. */
#include "stats.h"
#include "json.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t rp_lat_bounds_us[RP_LAT_BUCKETS] = {
	250,    500,     1000,    2000,    3000,     5000,     7500,     10000,
	15000,  25000,   50000,   75000,   100000,   150000,   250000,   500000,
	750000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

struct rp_global_stats rp_gstats;

static struct rp_stats *registry; /* main thread only */

static int status_class(int status)
{
	return status >= 100 && status < 600 ? status / 100 : 0;
}

void rp_stats_status(struct rp_stats *s, int status)
{
	int k = status_class(status);
	if (s)
		rp_inc(&s->status[k]);
	rp_inc(&rp_gstats.status[k]);
}

void rp_stats_latency(struct rp_stats *s, uint64_t us)
{
	size_t i = 0;
	while (i < RP_LAT_BUCKETS && us > rp_lat_bounds_us[i])
		i++;
	rp_inc(&s->lat_bucket[i]);
	atomic_fetch_add_explicit(&s->lat_sum_us, us, memory_order_relaxed);
	rp_inc(&s->lat_count);
}

double rp_stats_quantile_ms(struct rp_stats *s, double q)
{
	uint64_t counts[RP_LAT_BUCKETS + 1], total = 0;
	for (size_t i = 0; i <= RP_LAT_BUCKETS; i++)
		total += counts[i] = rp_get(&s->lat_bucket[i]);
	if (total == 0)
		return -1;
	double rank = q * (double)total, seen = 0;
	for (size_t i = 0; i <= RP_LAT_BUCKETS; i++) {
		if (counts[i] == 0 || seen + (double)counts[i] < rank) {
			seen += (double)counts[i];
			continue;
		}
		double lo = i ? (double)rp_lat_bounds_us[i - 1] : 0;
		if (i == RP_LAT_BUCKETS)
			return lo / 1000.0; /* beyond the last bound: report the bound */
		double hi = (double)rp_lat_bounds_us[i];
		double frac = ((rank - seen) / (double)counts[i]);
		return (lo + (hi - lo) * frac) / 1000.0;
	}
	return (double)rp_lat_bounds_us[RP_LAT_BUCKETS - 1] / 1000.0;
}

struct rp_stats *rp_stats_get(int kind, const char *name)
{
	for (struct rp_stats *s = registry; s; s = s->next) {
		if (s->kind == kind && strcmp(s->name, name) == 0) {
			s->refs++;
			return s;
		}
	}
	struct rp_stats *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	snprintf(s->name, sizeof s->name, "%s", name);
	s->kind = kind;
	s->refs = 1;
	s->next = registry;
	registry = s;
	return s;
}

void rp_stats_put(struct rp_stats *s)
{
	if (!s || --s->refs > 0)
		return;
	for (struct rp_stats **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	free(s);
}

static const char *const class_names[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

json_t *rp_stats_json(struct rp_stats *s)
{
	json_t *classes = json_object();
	for (int i = 0; i < 6; i++)
		json_object_set_new(classes, class_names[i],
				    rp_json_u64((uint64_t)rp_get(&s->status[i])));
	json_t *lat = json_object();
	uint64_t n = rp_get(&s->lat_count);
	json_object_set_new(lat, "count", rp_json_u64((uint64_t)n));
	json_object_set_new(lat, "mean_ms",
			    json_real(n ? (double)rp_get(&s->lat_sum_us) / (double)n / 1000.0 : 0));
	json_object_set_new(lat, "p50_ms", json_real(rp_stats_quantile_ms(s, 0.50)));
	json_object_set_new(lat, "p90_ms", json_real(rp_stats_quantile_ms(s, 0.90)));
	json_object_set_new(lat, "p99_ms", json_real(rp_stats_quantile_ms(s, 0.99)));
	json_t *o = json_pack("{s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "requests",
			      (json_int_t)rp_get(&s->rq_total), "active_requests",
			      (json_int_t)rp_get(&s->rq_active), "responses", classes,
			      "upstream_requests", (json_int_t)rp_get(&s->upstream_rq), "retries",
			      (json_int_t)rp_get(&s->retries), "retry_overflow",
			      (json_int_t)rp_get(&s->retry_overflow), "connect_failures",
			      (json_int_t)rp_get(&s->connect_fail), "resets",
			      (json_int_t)rp_get(&s->resets), "timeouts",
			      (json_int_t)rp_get(&s->timeouts), "no_healthy_upstream",
			      (json_int_t)rp_get(&s->no_healthy), "upstream_latency", lat);
	if (s->kind == RP_STATS_CLUSTER) {
		json_object_set_new(o, "active_connections",
				    rp_json_u64((uint64_t)rp_get(&s->cx_active)));
		json_object_set_new(o, "ejections", rp_json_u64((uint64_t)rp_get(&s->ejections)));
		json_object_set_new(o, "connections_opened",
				    rp_json_u64((uint64_t)rp_get(&s->cx_total)));
	}
	return o;
}

struct family {
	const char *name, *type, *label; /* label: extra label "k=v" or NULL */
	size_t off;
	int cluster_only;
};

#define OFF(f) offsetof(struct rp_stats, f)
static const struct family families[] = {
	{"requests_total", "counter", NULL, OFF(rq_total), 0},
	{"active_requests", "gauge", NULL, OFF(rq_active), 0},
	{"upstream_requests_total", "counter", NULL, OFF(upstream_rq), 0},
	{"retries_total", "counter", NULL, OFF(retries), 0},
	{"retry_overflow_total", "counter", NULL, OFF(retry_overflow), 0},
	{"upstream_errors_total", "counter", "kind=\"connect\"", OFF(connect_fail), 0},
	{"upstream_errors_total", NULL, "kind=\"reset\"", OFF(resets), 0},
	{"upstream_errors_total", NULL, "kind=\"timeout\"", OFF(timeouts), 0},
	{"upstream_errors_total", NULL, "kind=\"no_healthy\"", OFF(no_healthy), 0},
	{"active_connections", "gauge", NULL, OFF(cx_active), 1},
	{"ejections_total", "counter", NULL, OFF(ejections), 1},
	{"connections_opened_total", "counter", NULL, OFF(cx_total), 1},
};
#undef OFF

static void prom_histogram(struct rp_stats **v, size_t n, const char *k, struct rp_buf *b)
{
	rp_buf_printf(b, "# TYPE raftplane_proxy_%s_upstream_latency_seconds histogram\n", k);
	for (size_t j = 0; j < n; j++) {
		struct rp_stats *s = v[j];
		uint64_t cum = 0;
		for (size_t i = 0; i <= RP_LAT_BUCKETS; i++) {
			cum += rp_get(&s->lat_bucket[i]);
			char le[32];
			if (i < RP_LAT_BUCKETS)
				snprintf(le, sizeof le, "%g", (double)rp_lat_bounds_us[i] / 1e6);
			else
				snprintf(le, sizeof le, "+Inf");
			rp_buf_printf(b,
				      "raftplane_proxy_%s_upstream_latency_seconds_bucket{%s=\"%"
				      "s\",le=\"%s\"} %lu\n",
				      k, k, s->name, le, (unsigned long)cum);
		}
		rp_buf_printf(b,
			      "raftplane_proxy_%s_upstream_latency_seconds_sum{%s=\"%s\"} %.6f\n",
			      k, k, s->name, (double)rp_get(&s->lat_sum_us) / 1e6);
		rp_buf_printf(b,
			      "raftplane_proxy_%s_upstream_latency_seconds_count{%s=\"%s\"} %lu\n",
			      k, k, s->name, (unsigned long)rp_get(&s->lat_count));
	}
}

void rp_stats_prometheus(struct rp_stats **v, size_t n, int kind, struct rp_buf *b)
{
	const char *k = kind == RP_STATS_ROUTE ? "route" : "cluster";
	for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
		const struct family *fm = &families[f];
		if (fm->cluster_only && kind != RP_STATS_CLUSTER)
			continue;
		if (fm->type)
			rp_buf_printf(b, "# TYPE raftplane_proxy_%s_%s %s\n", k, fm->name,
				      fm->type);
		for (size_t j = 0; j < n; j++) {
			rp_counter_t *c = (rp_counter_t *)((char *)v[j] + fm->off);
			rp_buf_printf(b, "raftplane_proxy_%s_%s{%s=\"%s\"%s%s} %lu\n", k, fm->name,
				      k, v[j]->name, fm->label ? "," : "",
				      fm->label ? fm->label : "", (unsigned long)rp_get(c));
		}
	}
	rp_buf_printf(b, "# TYPE raftplane_proxy_%s_responses_total counter\n", k);
	for (size_t j = 0; j < n; j++)
		for (int i = 0; i < 6; i++)
			rp_buf_printf(
				b,
				"raftplane_proxy_%s_responses_total{%s=\"%s\",class=\"%s\"} %lu\n",
				k, k, v[j]->name, class_names[i],
				(unsigned long)rp_get(&v[j]->status[i]));
	prom_histogram(v, n, k, b);
}

size_t rp_stats_list(int kind, struct rp_stats **out, size_t max)
{
	size_t n = 0;
	for (struct rp_stats *s = registry; s && n < max; s = s->next)
		if (s->kind == kind)
			out[n++] = s;
	return n;
}

void rp_buf_printf(struct rp_buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void rp_buf_free(struct rp_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}
