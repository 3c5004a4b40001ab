/* POST /v1/txn: several puts and deletes applied all or nothing (txn.c). */
#ifndef RP_API_TXN_H
#define RP_API_TXN_H

#include "call.h"
#include "raftplane.pb-c.h"

/** The /v1/txn handler: parses and checks the body, proposes it on the
 * leader and answers with every op's result or the failing op's error;
 * with ?dry_run=true, the result of a dry run instead (nothing proposed). */
void rp_route_txn(struct rp_call *c);

struct rp_txn_opts {
	int dry_run;          /* answer what it would do; propose nothing */
	uint64_t rollback_to; /* > 0: a rollback's, the answer says to which revision */
};

/** Propose transaction @cmd (heap-built, now owned by the call: freed with
 * the request) and answer as /v1/txn does. c->ctx must be NULL (it
 * becomes the txn's) or already the txn's (rp_route_txn). */
void rp_txn_submit(struct rp_call *c, Raftplane__Command *cmd, const struct rp_txn_opts *o);

/** The query of a request taking only dry_run=true|false: *dry_run set,
 * 0; -1 for any other query (refused, never ignored). */
int rp_txn_dry_run_param(struct rp_call *c, int *dry_run);

#endif
