/* The proxy subscription protocol, server side (subscribe.c,
 * docs/protocol.md): parked polls, per-node snapshot caches, the fleet
 * entries, the cluster id. */
#ifndef RP_API_SUBSCRIBE_H
#define RP_API_SUBSCRIBE_H

#include "call.h"

/** Set up @api's subscription state and timers (after api->loop and
 * api->node are set). RP_OK or RP_ERR_NOMEM (nothing to undo then). */
int rp_subscribe_init(struct rp_api *api);
/** Stop the timers of rp_subscribe_init (their handles close on the loop). */
void rp_subscribe_close(struct rp_api *api);
/** POST /v1/subscribe: answers @c with a snapshot, 304 or an error, or
 * parks it. */
void rp_route_subscribe(struct rp_call *c);
/** After changes were applied: re-evaluate the parked polls they may
 * concern. */
void rp_subscribe_notify(struct rp_api *api);
/** The metric label of a refusal (enum rp_sub_refuse in apitls.h). */
const char *rp_sub_refuse_name(int why);
/** With TLS on, a connection without a client certificate gets 401 (answered
 * here, counted and logged as a subscription refusal): RP_OK when it may go
 * on. Shared by /v1/subscribe and /v1/report. */
int rp_subscribe_check_cert(struct rp_call *c);
/** With TLS on, the client certificate must name node @node_id: RP_OK, or
 * RP_ERR_PERMISSION with @msg (not answered; counted and logged). */
int rp_subscribe_check_node(struct rp_call *c, const char *node_id, char *msg, size_t msglen);
/** This server's fleet entries as a JSON array (caller owns it). */
json_t *rp_subscribe_local_fleet(struct rp_api *api);

#endif
