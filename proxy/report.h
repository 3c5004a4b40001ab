/* Telemetry of raftplane-proxy: one Report (net/raftplane.proto) built from
 * the stats registry (routes, clusters) and the health registry (endpoints)
 * on the main thread; reporter.h sends it. */
#ifndef RP_PROXY_REPORT_H
#define RP_PROXY_REPORT_H

#include <stdint.h>

#include "reporter.h"

struct rp_generation;

/**
 * Fill @m (allocated here: rp_report_msg_free() it) with every registered
 * route and cluster (those of live generations: refs > 0) and endpoint, and
 * the version and cluster id of @g (the generation applied; NULL: none).
 * @now_ms is rp_now_ms(). Main thread. 0, or -1 when out of memory (nothing
 * to free). The strings of @m point into @m and @g: encode it before @g can
 * be released.
 */
int rp_report_build(struct rp_report_msg *m, const struct rp_generation *g, uint64_t now_ms);

#endif
