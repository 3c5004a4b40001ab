/* POST /v1/rollback: the mesh back to a revision, as one new revision
 * (rollback.c). */
#ifndef RP_API_ROLLBACK_H
#define RP_API_ROLLBACK_H

#include "call.h"

/** The /v1/rollback handler ({"revision": N}, ?dry_run=true|false). */
void rp_route_rollback(struct rp_call *c);

#endif
