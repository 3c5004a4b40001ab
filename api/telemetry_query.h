/* The fleet's telemetry (telemetry_query.c): every member's samples merged
 * per proxy instance, window deltas, percentiles from merged histograms;
 * the /v1/telemetry endpoints and /v1/clusters/{name}/health. */
#ifndef RP_API_TELEMETRY_QUERY_H
#define RP_API_TELEMETRY_QUERY_H

#include "call.h"
#include "fanout.h"
#include "report.h"

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

/** Ask every member for the newest sample of every instance (one fan-out
 * per quantum, shared), then @cb(c, merged, unreachable) with merged as
 * described in telemetry_query.c (point 0: the newest sample). */
void rp_tq_fleet_newest(struct rp_call *c, rp_fanout_cb cb);

/** Fleet totals: per name of @kind ("routes" or "clusters") the sum over
 * the instances of @merged of their newest cumulative vector. */
struct rp_tq_totals {
	json_t *index; /* name -> index in v */
	uint64_t (*v)[RP_TV__N];
	size_t n;
};
/** Fill @t (release it with rp_tq_totals_release); 0, -1 out of memory. */
int rp_tq_totals(json_t *merged, const char *kind, struct rp_tq_totals *t);
/** The totals of @name, or NULL when no instance reported it. */
const uint64_t *rp_tq_total(const struct rp_tq_totals *t, const char *name);
void rp_tq_totals_release(struct rp_tq_totals *t);

/** Endpoint health as the fresh proxies see it (the freshest instance of
 * each node id): "CLUSTER ADDRESS" -> [healthy, unhealthy, ejected]
 * (caller owns it). @now: unix ms. */
json_t *rp_tq_endpoint_index(struct rp_call *c, json_t *merged, uint64_t now);

/** Answer the rollout @answer (stolen) of @c with "telemetry" added: for
 * the ACKed proxies @acked (stolen; node id -> unix ms of the ACK), the
 * requests, error rate and p99 of their routes in [ack - @window, ack]
 * ("before") and [ack, min(ack + @window, now)] ("after"), summed over
 * the proxies, where "after" starts at the first report received after
 * the ACK: the last report before it still counts traffic from before
 * the proxy applied the revision. Replaces
 * c->ctx. */
void rp_tq_rollout(struct rp_call *c, json_t *answer, json_t *acked, uint64_t window);

/** Percentile @q (0..1) in ms of @n bucket counts (bounds of report.h),
 * interpolated linearly inside the bucket; -1 when the counts are all 0.
 * Pure, for the tests. */
double rp_tq_percentile(const uint64_t *buckets, double q);

#endif
