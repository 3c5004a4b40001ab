/* GET /v1/history: the audit trail of the replicated state (history.c). */
#ifndef RP_API_HISTORY_H
#define RP_API_HISTORY_H

#include "call.h"

#define RP_HISTORY_DEFAULT_LIMIT 100
#define RP_HISTORY_MAX_LIMIT 1000
#define RP_HISTORY_MAX_CHANGES 10000 /* changes in one answer (then "truncated") */

/** Parse the history query of @req into @q (strings in @actor and @name,
 * which must stay valid as long as @q). 0, or -1 with a sentence in @msg.
 * Pure (no call state): the fuzzers drive it. */
int rp_history_query_parse(h2o_req_t *req, struct rp_history_query *q, char *actor, size_t actorlen,
			   char *name, size_t namelen, char *msg, size_t msglen);

/** The GET /v1/history handler (a linearizable read). */
void rp_route_history(struct rp_call *c);

#endif
