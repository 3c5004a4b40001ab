/* GET /v1/watch: long polls on the change log (watch.c). */
#ifndef RP_API_WATCH_H
#define RP_API_WATCH_H

#include "call.h"

/** The /v1/watch handler: answers @c now or parks it until a change of its
 * kinds, the wait's end or the client leaving. */
void rp_route_watch(struct rp_call *c);

/** After changes were applied: answer every parked watch they concern. */
void rp_watch_notify(struct rp_api *api);

/** Bit per kind changed in (*seen_rev, revision]; moves *seen_rev on. All
 * bits when the history does not reach back that far. */
unsigned rp_changed_kinds(struct rp_api *api, uint64_t *seen_rev);

#endif
