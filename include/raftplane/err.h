/* Error codes shared by every raftplane module, with messages from one table. */
#ifndef RAFTPLANE_ERR_H
#define RAFTPLANE_ERR_H

/* Keep rp_err_name() in common/err.c in the same order. */
enum rp_err {
	RP_OK = 0,
	RP_ERR_NOMEM,            /* out of memory */
	RP_ERR_INVALID,          /* bad input from a user: 400 */
	RP_ERR_NOT_FOUND,        /* no such item: 404 */
	RP_ERR_PRECONDITION,     /* If-Match / If-None-Match / if_version failed: 412 */
	RP_ERR_CONFLICT,         /* clashes with another item: 409 */
	RP_ERR_DANGLING,         /* refers to an item that does not exist: 409 */
	RP_ERR_IN_USE,           /* still referred to by another item: 409 */
	RP_ERR_TOO_LARGE,        /* body or value over the limit: 413 */
	RP_ERR_NO_LEADER,        /* no leader reachable in time, nothing proposed: 503 */
	RP_ERR_UNKNOWN_OUTCOME,  /* proposed, then leadership or the link was lost: 503 */
	RP_ERR_UNAVAILABLE,      /* node shutting down or not ready: 503 */
	RP_ERR_STORAGE,          /* SQLite failed: 500, the node must stop */
	RP_ERR_CORRUPT,          /* undecodable log entry or snapshot: 500 */
	RP_ERR_GONE,             /* history compacted: 410 */
	RP_ERR_TIMEOUT,          /* operation timed out: 504 */
	RP_ERR_INTERNAL,         /* our bug or an unexpected library error: 500 */
	RP_ERR_METHOD,           /* method not allowed on this path: 405 */
	RP_ERR_NO_ROUTE,         /* no such endpoint: 404 */
	RP_ERR_UNAUTHENTICATED,  /* no valid API token: 401 */
	RP_ERR_PERMISSION,       /* the token's role does not allow the request: 403 */
	RP_ERR_RATE_LIMITED,     /* writes per token, parked polls per node id: 429 */
	RP_ERR_HEADER_TOO_LARGE, /* request head over its limits: 431 */
	RP_ERR_NEWER_FORMAT,     /* log entry or snapshot of a newer release: the node must stop */
	RP_ERR__COUNT
};

/** Return the snake_case code for @err (used in JSON error bodies). */
const char *rp_err_code(int err);

/** Return a one-line human description of @err. */
const char *rp_err_message(int err);

/** Return the HTTP status code that answers @err. */
int rp_err_http_status(int err);

#endif
