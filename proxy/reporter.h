/* Telemetry sender (docs/telemetry.md): every interval the subscribed
 * server announced, build one Report and POST it to that server
 * (/v1/report, protobuf). Shared by raftplane-proxy (real counters) and
 * raftplane-subscriber --report (synthetic ones): both speak exactly this. */
#ifndef RP_REPORTER_H
#define RP_REPORTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raftplane.pb-c.h"
#include "subscription.h"

#define RP_REPORT_MAX_BYTES (256 * 1024) /* the server refuses larger (413) */
#define RP_REPORT_LAT_BUCKETS 24         /* TrafficStats.latency entries */
#define RP_REPORT_CLASSES 6              /* TrafficStats.responses entries */
#define RP_REPORT_TIMEOUT_MS 5000        /* at most; less when the interval is shorter */
#define RP_REPORT_MAX_RETRY_AFTER_S 3600 /* a longer Retry-After counts as this */

/* One TrafficStats with the storage its fields point to. */
struct rp_report_traffic {
	Raftplane__TrafficStats m;
	uint64_t responses[RP_REPORT_CLASSES];
	uint64_t latency[RP_REPORT_LAT_BUCKETS];
	char name[132];
};

/* One EndpointStats with its storage. */
struct rp_report_endpoint {
	Raftplane__EndpointStats m;
	char cluster[132];
	char address[80];
	char reason[256]; /* <= 255 bytes (the contract) */
};

/*
 * A Report being built: rp_report_msg_alloc() gives room for the counts
 * asked, with every entry initialised and linked into r; the builder fills
 * them and may lower r.n_routes / n_clusters / n_endpoints. The Report's
 * strings point into the entries or into storage the builder keeps alive
 * until rp_report_pack() returned.
 */
struct rp_report_msg {
	Raftplane__Report r;
	struct rp_report_traffic *routes, *clusters;
	struct rp_report_endpoint *endpoints;
	Raftplane__TrafficStats **route_v, **cluster_v;
	Raftplane__EndpointStats **endpoint_v;
	char node_id[132];
	char cluster_id[33];
};

/** Room for @routes, @clusters, @endpoints entries. 0, or -1 (out of memory,
 *  nothing to free). */
int rp_report_msg_alloc(struct rp_report_msg *m, size_t routes, size_t clusters, size_t endpoints);
void rp_report_msg_free(struct rp_report_msg *m);

/**
 * Encode @m in at most @max bytes. When the whole report does not fit,
 * endpoints are dropped first (from the end), then routes and clusters
 * beyond an equal cap; *@truncated = how many entries were left out.
 * Returns 0 with *@out (malloc'd, the caller frees) and *@len, or -1 when
 * out of memory or not even the report without entries fits.
 * @m's counts are lowered to what was encoded.
 */
int rp_report_pack(struct rp_report_msg *m, size_t max, uint8_t **out, size_t *len,
		   size_t *truncated);

/** A random nonzero instance id (getrandom, with a fallback). */
uint64_t rp_report_instance(void);

struct rp_reporter;

/**
 * Fill @m (allocate it with rp_report_msg_alloc) with the counters: version,
 * cluster_id and entries. node_id, instance, seq and uptime_ms are the
 * reporter's. 0, or -1 (nothing to free): no report this time.
 */
typedef int (*rp_report_build_cb)(struct rp_reporter *r, struct rp_report_msg *m);

enum rp_report_result {
	RP_REPORT_NONE = -1,
	RP_REPORT_ACCEPTED = 0, /* 2xx */
	RP_REPORT_THROTTLED,    /* 429 */
	RP_REPORT_REFUSED,      /* another 4xx */
	RP_REPORT_FAILED,       /* 5xx, transport error, timeout, build/encode failure */
	RP_REPORT__N
};
extern const char *const rp_report_result_names[RP_REPORT__N];

/*
 * Invariants:
 *  1. Reports go only to the server the subscription is attached to, and
 *     only while it announced an interval (rp_sub_report_interval() > 0);
 *     then the timer is armed, else it is stopped.
 *  2. At most one report in flight (req); a tick that finds one skips.
 *  3. seq counts the reports built: 1, 2, 3 ... for this instance.
 *  4. After 429 nothing goes to blocked_server before blocked_until.
 *  5. A failure changes nothing but the counters: the next interval's
 *     report carries the cumulative counters again.
 */
struct rp_reporter {
	uv_loop_t *loop;
	struct rp_sub_client *sub;
	rp_report_build_cb build;
	void *data;
	uint64_t instance;
	uint64_t seq;
	uint64_t started_ms;  /* uv_hrtime in ms at init */
	unsigned interval_ms; /* as last seen from the subscription; 0: not reporting */
	uv_timer_t timer;
	struct rp_http_req *req;
	char server[64];        /* where the last report went */
	uint64_t blocked_until; /* uv_now() */
	char blocked_server[64];
	uint64_t results[RP_REPORT__N];
	uint64_t truncated; /* entries left out of reports, in all */
	uint64_t last_seq;  /* of the last report answered */
	int last_result;    /* enum rp_report_result */
	char last_error[256];
	char logged[256]; /* the last failure logged ("" after a success) */
	int quiet;        /* no log lines (many simulated reporters) */
	int stopped;
	void (*flushed)(void *arg); /* rp_reporter_flush() waits for its report */
	void *flushed_arg;
};

/**
 * Start reporting for @sub (which must outlive @r, and whose interval hook
 * @r takes): its node id goes into each report, its TLS settings are used.
 */
void rp_reporter_init(struct rp_reporter *r, uv_loop_t *loop, struct rp_sub_client *sub,
		      rp_report_build_cb build, void *data);

/**
 * One last report of the final counters (at shutdown, once traffic has
 * drained), so that a restart loses nothing: cancels a report in flight,
 * sends one with a timeout of @timeout_ms and calls @done(@arg) when it
 * was answered or failed — at once when this process is not reporting
 * (no interval, or throttled by that server). Then rp_reporter_close().
 */
void rp_reporter_flush(struct rp_reporter *r, unsigned timeout_ms, void (*done)(void *arg),
		       void *arg);

/** Stop: cancel a report in flight; the timer closes asynchronously (@r
 *  must stay allocated until the loop has run once more). */
void rp_reporter_close(struct rp_reporter *r);

#endif
