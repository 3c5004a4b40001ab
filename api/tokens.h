/* /v1/tokens: create, list, show and revoke API tokens (tokens.c). */
#ifndef RP_API_TOKENS_H
#define RP_API_TOKENS_H

#include "call.h"

/** POST (create) and GET (list) /v1/tokens; @method is "GET" or "POST". */
void rp_route_tokens(struct rp_call *c, const char *method);
/** GET and DELETE (revoke) /v1/tokens/{name}. */
void rp_route_token(struct rp_call *c, const char *method, const char *name, size_t len);

#endif
