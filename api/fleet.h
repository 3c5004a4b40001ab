/* /v1/proxies and /v1/rollouts/{revision}: the fleet of proxies merged
 * over every member (fleet.c). */
#ifndef RP_API_FLEET_H
#define RP_API_FLEET_H

#include "call.h"

/** GET /v1/proxies[?scope=local|fleet]: this server's entries, or every
 * member's merged. */
void rp_route_proxies(struct rp_call *c);
/** GET /v1/rollouts/{revision}[?wait=]: how far the fleet got with
 * revision @rev (the decoded path parameter, @len bytes), waiting up to
 * the wait for every proxy to ACK or NACK it. */
void rp_route_rollout(struct rp_call *c, const char *rev, size_t len);

/** The merged fleet (node id -> entry) and the unreachable members, as
 * fresh as one fan-out (shared with the rollout waits): @cb(c, by_node,
 * unreachable) runs once, only while @c is live, and must answer @c. */
void rp_fleet_view(struct rp_call *c,
		   void (*cb)(struct rp_call *c, json_t *by_node, json_t *unreachable));

#endif
