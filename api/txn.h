/* POST /v1/txn: several puts and deletes applied all or nothing (txn.c). */
#ifndef RP_API_TXN_H
#define RP_API_TXN_H

#include "call.h"

/** The /v1/txn handler: parses and checks the body, proposes it on the
 * leader and answers with every op's result or the failing op's error. */
void rp_route_txn(struct rp_call *c);

#endif
