/* Endpoint health: active HTTP checks run on the main loop and passive
 * outlier ejection fed by the workers. One object per (cluster, endpoint)
 * lives in a registry and is shared by every generation that has that
 * endpoint in that cluster, so a config change does not reset its state. */
#ifndef RP_PROXY_HEALTH_H
#define RP_PROXY_HEALTH_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "raftplane.pb-c.h"
#include "stats.h"

struct rp_http_req;

struct rp_hc_config {
	char path[1025];
	unsigned interval_ms, timeout_ms, unhealthy_threshold, healthy_threshold;
};

/*
 * Invariants:
 *  1. Fields under "shared" are atomics written by any thread; everything
 *     else belongs to the main thread.
 *  2. An endpoint is in rotation iff hc_ok == 1 and now >= ejected_until_ms.
 *     Without active checks hc_ok stays 1; with them it starts at 1 (the
 *     endpoint is trusted until checks say otherwise) and flips only after
 *     unhealthy_threshold consecutive failed checks (back after
 *     healthy_threshold consecutive successes).
 *  3. The object is freed (after its timer handle closed) once no
 *     generation refers to it; a check in flight is cancelled first.
 *  4. requests/errors count every attempt reported to rp_health_passive()
 *     (cumulative, relaxed: telemetry reads them without ordering).
 *     ejected_at_ms/eject_run describe the last ejection and are written
 *     before ejected_until_ms is published by its compare-and-swap;
 *     hc_changed_ms is when hc_ok last flipped (or the object was created).
 */
struct rp_health {
	char cluster[132];
	char hostport[80]; /* "1.2.3.4:80" or "[::1]:80" */
	int refs;
	struct rp_health *next;
	/* shared */
	atomic_int hc_ok;
	atomic_uint_fast64_t ejected_until_ms;
	atomic_uint consecutive_errors;
	atomic_int active_rq; /* requests in flight to it (least_request) */
	atomic_uint_fast64_t ejections;
	atomic_uint_fast64_t requests; /* attempts sent to it */
	atomic_uint_fast64_t errors;   /* of those: 5xx, connect failure or reset */
	atomic_uint_fast64_t ejected_at_ms;
	atomic_uint eject_run;              /* errors in a row that caused it */
	atomic_uint_fast64_t hc_changed_ms; /* main thread writes */
	/* active checks */
	int hc_on;
	struct rp_hc_config hc;
	uv_timer_t timer;
	struct rp_http_req *req;
	unsigned ok_run, fail_run;
	uint64_t checks, check_failures;
	char last_error[96];
};

/** Monotonic milliseconds, comparable across threads. */
uint64_t rp_now_ms(void);

/**
 * Find or create the object of (@cluster, @hostport) and take a reference,
 * (re)configuring its active checks from @hc (NULL: no active checks).
 * Main thread only. NULL when out of memory.
 */
struct rp_health *rp_health_get(uv_loop_t *loop, const char *cluster, const char *hostport,
				const Raftplane__HealthCheck *hc);
/** Drop a reference (main thread). */
void rp_health_put(struct rp_health *h);

static inline int rp_health_usable(struct rp_health *h, uint64_t now_ms)
{
	return atomic_load_explicit(&h->hc_ok, memory_order_relaxed) &&
	       now_ms >= atomic_load_explicit(&h->ejected_until_ms, memory_order_relaxed);
}

/* The state of an endpoint as telemetry reports it (EndpointStats.State). */
enum rp_health_state {
	RP_HEALTH_HEALTHY = 0,
	RP_HEALTH_UNHEALTHY = 1, /* active checks fail */
	RP_HEALTH_EJECTED = 2,   /* passive ejection in force */
};

/**
 * The state of @h at @now_ms (main thread): UNHEALTHY while active checks
 * fail (takes precedence), EJECTED while an ejection is in force, else
 * HEALTHY. *since_ms = when it entered that state; @reason (@len bytes)
 * gets why it is not healthy ("" when healthy).
 */
enum rp_health_state rp_health_state(struct rp_health *h, uint64_t now_ms, uint64_t *since_ms,
				     char *reason, size_t len);

/** Fill @out with up to @max registered objects; returns how many there are
 * in all (may exceed @max). Main thread. */
size_t rp_health_list(struct rp_health **out, size_t max);

/* Passive outlier detection settings (process-wide, set at start). */
struct rp_outlier_config {
	unsigned consecutive; /* errors in a row that eject; 0 disables */
	unsigned eject_ms;    /* how long an ejection lasts */
	unsigned max_percent; /* at most this share of a cluster ejected at once */
};
extern struct rp_outlier_config rp_outlier;

/**
 * Report the outcome of one upstream attempt to @peers[@idx] (any thread).
 * @failed: 5xx answer, connect failure or reset. Ejects the endpoint after
 * rp_outlier.consecutive failures in a row unless that would eject more
 * than max_percent of @peers. Returns 1 when this call ejected it.
 */
int rp_health_passive(struct rp_health *const *peers, size_t n, size_t idx, int failed,
		      struct rp_stats *cluster_stats);

#endif
