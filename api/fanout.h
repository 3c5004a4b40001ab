/* Asking every member at once (fanout.c): the fan-out behind the fleet
 * views (/v1/proxies, rollouts, telemetry). One request per other member
 * with a 1 s timeout; members that do not answer 200 with JSON are listed
 * in "unreachable". Concurrent callers asking the same thing (same key)
 * share the one fan-out in flight. */
#ifndef RP_API_FANOUT_H
#define RP_API_FANOUT_H

#include "call.h"

/** Turns the answers (a JSON array: this server's first, then each peer's
 * that answered) into what every waiter gets. Returns a new reference; runs
 * once per fan-out. */
typedef json_t *(*rp_fanout_reduce)(struct rp_api *api, json_t *bodies, void *arg);
/** A waiter's answer: runs once, with @c live; @result and @unreachable are
 * borrowed. */
typedef void (*rp_fanout_cb)(struct rp_call *c, json_t *result, json_t *unreachable);

struct rp_fanout_spec {
	const char *method; /* of the peers' local query: "GET" or "POST" */
	const char *path;   /* e.g. "/v1/proxies?scope=local" */
	const char *body;   /* POST body (JSON), or NULL */
	const char *key;    /* waiters of the same key share it; NULL: not shared */
	json_t *local;      /* this server's own answer (stolen) */
	rp_fanout_reduce reduce;
	void *reduce_arg;
	/** Runs once with the result before the waiters (e.g. to cache it), or NULL. */
	void (*done)(struct rp_api *api, json_t *result, json_t *unreachable, void *arg);
};

/** Join the fan-out in flight under @key as a waiter (cb runs when it
 * ends): 1 when joined, 0 when none is in flight; -1 out of memory (then @c
 * was answered). */
int rp_fanout_join(struct rp_call *c, const char *key, rp_fanout_cb cb);

/** Start a fan-out for @spec with @c (and @cb) its first waiter; the peers
 * authenticate with @c's Authorization header. On failure @c is answered
 * (and spec->local released). */
void rp_fanout_start(struct rp_call *c, rp_fanout_cb cb, const struct rp_fanout_spec *spec);

#endif
