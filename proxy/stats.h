/* Counters of the data plane: per route, per cluster and process-wide, kept
 * in atomics so that every worker thread updates them without locks, and
 * rendered as JSON (/stats) and Prometheus text (/metrics) by the admin
 * server on the main thread. */
#ifndef RP_PROXY_STATS_H
#define RP_PROXY_STATS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the upstream latency buckets in microseconds; one more
 * bucket (+Inf) follows. */
#define RP_LAT_BUCKETS 23
extern const uint64_t rp_lat_bounds_us[RP_LAT_BUCKETS];

typedef atomic_uint_fast64_t rp_counter_t;

/*
 * The counters of one route or one cluster. Objects are keyed by name in a
 * registry owned by the main thread and shared (refcounted by generations)
 * across generations, so a config change does not reset them.
 */
struct rp_stats {
	char name[132];
	int kind; /* RP_STATS_ROUTE or RP_STATS_CLUSTER */
	int refs; /* generations using it (main thread only) */
	struct rp_stats *next;
	rp_counter_t rq_total;       /* requests routed here */
	rp_counter_t rq_active;      /* requests routed here and not finished */
	rp_counter_t status[6];      /* answers by class: [1]=1xx .. [5]=5xx, [0] other */
	rp_counter_t upstream_rq;    /* upstream attempts (tries, incl. retries) */
	rp_counter_t retries;        /* attempts after the first */
	rp_counter_t retry_overflow; /* retries refused by the retry budget */
	rp_counter_t retry_active;   /* requests that retried and are not finished */
	rp_counter_t connect_fail;   /* connect errors and connect timeouts */
	rp_counter_t resets;         /* upstream closed or broke the response */
	rp_counter_t timeouts;       /* route timeouts (504 or aborted stream) */
	rp_counter_t no_healthy;     /* 503: no endpoint in rotation */
	rp_counter_t cx_active;      /* upstream connections in use */
	rp_counter_t cx_total;       /* upstream connections opened (not reused) */
	rp_counter_t ejections;      /* passive outlier ejections (cluster) */
	rp_counter_t lat_bucket[RP_LAT_BUCKETS + 1];
	rp_counter_t lat_sum_us;
	rp_counter_t lat_count;
};

enum {
	RP_STATS_ROUTE,
	RP_STATS_CLUSTER
};

/* Process-wide counters. */
struct rp_global_stats {
	rp_counter_t downstream_cx_total;
	rp_counter_t downstream_cx_active;
	rp_counter_t rq_total;
	rp_counter_t no_listener;  /* 404: the socket's listener is not in the generation */
	rp_counter_t no_route;     /* 404: no route matched */
	rp_counter_t bad_requests; /* 400: framing, Host or target refused */
	rp_counter_t loops;        /* 508: this proxy already in Via, or too many hops */
	rp_counter_t client_gone;  /* the client left while we waited: upstream cancelled */
	rp_counter_t status[6];
	rp_counter_t updates_applied;
	rp_counter_t updates_rejected;
	rp_counter_t cache_writes;
	rp_counter_t cache_errors;
	rp_counter_t generations_live;
};

extern struct rp_global_stats rp_gstats;

static inline void rp_inc(rp_counter_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}
static inline void rp_dec(rp_counter_t *c)
{
	atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}
static inline uint64_t rp_get(rp_counter_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/** Count one answer with @status in @s (may be NULL) and globally. */
void rp_stats_status(struct rp_stats *s, int status);
/** Record one upstream latency sample. */
void rp_stats_latency(struct rp_stats *s, uint64_t us);
/** Estimate the @q quantile (0..1) of @s's latency histogram, in ms; -1 if empty. */
double rp_stats_quantile_ms(struct rp_stats *s, double q);

/**
 * Find or create the stats object of @kind named @name and take a
 * reference. Main thread only. NULL when out of memory.
 */
struct rp_stats *rp_stats_get(int kind, const char *name);
/** Drop a reference; frees the object at zero. Main thread only. */
void rp_stats_put(struct rp_stats *s);

/** JSON of one stats object (new reference). */
json_t *rp_stats_json(struct rp_stats *s);
struct rp_buf;
/** Append the Prometheus families of the @n objects @v (all of @kind) to @out. */
void rp_stats_prometheus(struct rp_stats **v, size_t n, int kind, struct rp_buf *out);
/** Fill @out with up to @max registered objects of @kind; returns how many. Main thread. */
size_t rp_stats_list(int kind, struct rp_stats **out, size_t max);

/* A growing text buffer for the admin answers. */
struct rp_buf {
	char *p;
	size_t len, cap;
	int oom;
};
void rp_buf_printf(struct rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rp_buf_free(struct rp_buf *b);

#endif
