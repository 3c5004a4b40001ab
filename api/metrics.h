/* GET /metrics: Prometheus text exposition (metrics.c). */
#ifndef RP_API_METRICS_H
#define RP_API_METRICS_H

#include "call.h"

/** The /metrics handler: raft, store, transport and request counters. */
void rp_route_metrics(struct rp_call *c);

#endif
