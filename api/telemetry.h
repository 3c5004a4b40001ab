/* Telemetry intake and store (telemetry.c): POST /v1/report, the samples of
 * each reporting proxy instance (soft state, never in the raft log), their
 * retention and GC, and this server's local view for the fleet merge
 * (telemetry_query.c). docs/telemetry.md. */
#ifndef RP_API_TELEMETRY_H
#define RP_API_TELEMETRY_H

#include "call.h"

/* Outcomes of POST /v1/report, the labels of raftplane_telemetry_reports_total. */
enum rp_tl_result {
	RP_TL_ACCEPTED,
	RP_TL_DUPLICATE,
	RP_TL_MALFORMED,
	RP_TL_TOO_LARGE,
	RP_TL_UNAUTHENTICATED,
	RP_TL_FORBIDDEN,
	RP_TL_CONFLICT,
	RP_TL_RATE_LIMITED,
	RP_TL_FULL,
	RP_TL_RESULT__N
};

extern const char *const rp_tl_result_names[RP_TL_RESULT__N];

/** What /metrics shows of this server's store. */
struct rp_tl_stats {
	uint64_t reports[RP_TL_RESULT__N];
	uint64_t reporters; /* node ids with at least one instance */
	uint64_t instances;
	uint64_t samples;
	uint64_t bytes;         /* allocated for the store, headers included */
	uint64_t ignored_names; /* routes/clusters/endpoints not in the mesh */
};

/** Set up the store and its GC timer (api->loop set; api->opts read).
 * RP_OK or RP_ERR_NOMEM. */
int rp_telemetry_init(struct rp_api *api);
/** Stop the GC timer and free the store (the handle closes on the loop). */
void rp_telemetry_close(struct rp_api *api);

/** POST /v1/report. */
void rp_route_report(struct rp_call *c);

/** The report interval this server asks for (ms). */
unsigned rp_telemetry_interval_ms(const struct rp_api *api);

const struct rp_tl_stats *rp_telemetry_stats(struct rp_api *api);

/** What a local query asks for (see rp_telemetry_local). */
struct rp_tl_query {
	const uint64_t *at; /* unix ms time points, for every instance */
	size_t n_at;
	const char *node; /* only this node id, or NULL for all */
	json_t *node_at;  /* node id -> array of more time points for it, or NULL */
	int endpoints;    /* add the endpoints of each instance's newest sample */
	/* what the samples carry (a smaller answer): RP_TLQ_ROUTES and/or
	 * RP_TLQ_CLUSTERS, optionally only the entry named @name; endpoints
	 * only of cluster @cluster when set */
	unsigned kinds;
	const char *name;
	const char *cluster;
};

#define RP_TLQ_ROUTES 1u
#define RP_TLQ_CLUSTERS 2u

/**
 * This server's samples for @q as JSON (caller owns it):
 *   {"instances":[{"node_id":N,"instance":"DECIMAL","last":T,
 *                  "first":S,                 // the oldest sample kept
 *                  "points":[i|-1,...],       // per time point: index in samples
 *                  "samples":[S,...],
 *                  "endpoints":[[cluster,address,state,reason,since_unix_ms,
 *                                requests,errors],...]}]}   // with q->endpoints
 * where S = {"seq":..,"t":..,"version":..,"routes":{name:[RP_TV__N numbers]},
 * "clusters":{...}}, the sample of largest t <= the point (-1 when none);
 * "routes"/"clusters" only as q->kinds asks, with only q->name if set.
 * With node_at the points of a node are q->at followed by its own, where a
 * negative point -T asks for the OLDEST sample with t > T; without
 * q->at only the nodes of node_at are listed.
 */
json_t *rp_telemetry_local(struct rp_api *api, const struct rp_tl_query *q);

/** "IP:port" / "[IPv6]:port" of every endpoint of cluster @name in the
 * store, as a JSON array of strings (caller owns it); NULL when there is no
 * such cluster (or out of memory). */
json_t *rp_telemetry_cluster_endpoints(struct rp_api *api, const char *name);
/** The names of routes (@kind RP_KIND_ROUTES) or clusters in the store
 * now, sorted; valid until the next call into telemetry.c. 0, or -1 out of
 * memory. */
int rp_telemetry_mesh_names(struct rp_api *api, int kind, char *const **v, size_t *n);
/** 1 when the store holds a route (@kind RP_KIND_ROUTES) or cluster
 * (RP_KIND_CLUSTERS) named @name. */
int rp_telemetry_in_mesh(struct rp_api *api, int kind, const char *name);

#endif
