/* The REST API's routing table (route.c): method set + path pattern ->
 * handler, with exact method checks and 405 + Allow. */
#ifndef RP_API_ROUTE_H
#define RP_API_ROUTE_H

#include "call.h"

/** Find @c's route and run its handler, or answer 400 (dot segments, bad
 * parameter), 404 or 405. Sets c->route for the counters. */
void rp_route_request(struct rp_call *c);

#endif
