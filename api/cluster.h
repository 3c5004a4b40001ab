/* /v1/status, /v1/members, /healthz and /readyz (cluster.c). */
#ifndef RP_API_CLUSTER_H
#define RP_API_CLUSTER_H

#include "call.h"

/** GET /v1/status: this node's view of raft and the store. */
void rp_route_status(struct rp_call *c);
/** GET (list) or POST (add, on the leader) /v1/members. */
void rp_route_members(struct rp_call *c, const char *method);
/** DELETE /v1/members/{id}, or with @leadership POST
 * /v1/members/{id}/leadership; @id is the decoded path parameter. */
void rp_route_member(struct rp_call *c, const char *method, const char *id, size_t id_len,
		     int leadership);
/** GET /healthz: the process answers. */
void rp_route_healthz(struct rp_call *c);
/** GET /readyz: 200 with a known leader and the log applied, else 503. */
void rp_route_readyz(struct rp_call *c);

#endif
