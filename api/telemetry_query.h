/* The fleet's telemetry (telemetry_query.c): every member's samples merged
 * per proxy instance, window deltas, percentiles from merged histograms;
 * the /v1/telemetry endpoints and /v1/clusters/{name}/health. */
#ifndef RP_API_TELEMETRY_QUERY_H
#define RP_API_TELEMETRY_QUERY_H

#include "call.h"

enum rp_tq_what {
	RP_TQ_CLUSTERS, /* /v1/telemetry/clusters[/{name}] */
	RP_TQ_ROUTES,   /* /v1/telemetry/routes[/{name}] */
	RP_TQ_PROXY,    /* /v1/telemetry/proxies/{node_id} */
	RP_TQ_HEALTH,   /* /v1/clusters/{name}/health */
};

/** POST /v1/telemetry/points: this server's samples (the members' local
 * query; body {"at":[unix ms...],"node":ID?,"node_at":{ID:[ms...]}?,
 * "endpoints":bool?}). */
void rp_route_telemetry_points(struct rp_call *c);
/** GET of @what; @name (decoded, @len bytes) is "" for the lists. */
void rp_route_telemetry(struct rp_call *c, int what, const char *name, size_t len);

/** Percentile @q (0..1) in ms of @n bucket counts (bounds of report.h),
 * interpolated linearly inside the bucket; -1 when the counts are all 0.
 * Pure, for the tests. */
double rp_tq_percentile(const uint64_t *buckets, double q);

#endif
