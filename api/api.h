/* The REST admin API: shared types of the api/ files. */
#ifndef RP_API_H
#define RP_API_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <jansson.h>

#include "json.h"
#include <stdint.h>
#include <uv.h>

#include "accept.h"
#include "client.h"
#include "node.h"

/* Routes, as labels of the request counters in /metrics. */
enum rp_route {
	RP_ROUTE_KV,
	RP_ROUTE_KV_LIST,
	RP_ROUTE_MESH,
	RP_ROUTE_MESH_LIST,
	RP_ROUTE_TXN,
	RP_ROUTE_WATCH,
	RP_ROUTE_STATUS,
	RP_ROUTE_MEMBERS,
	RP_ROUTE_MEMBER,
	RP_ROUTE_LEADERSHIP,
	RP_ROUTE_HEALTHZ,
	RP_ROUTE_READYZ,
	RP_ROUTE_METRICS,
	RP_ROUTE_SUBSCRIBE,
	RP_ROUTE_PROXIES,
	RP_ROUTE_ROLLOUTS,
	RP_ROUTE_OTHER,
	RP_ROUTE__COUNT
};

extern const char *const rp_route_names[RP_ROUTE__COUNT];

struct rp_api_options {
	unsigned leader_wait_ms;     /* how long a request waits for a leader */
	unsigned forward_timeout_ms; /* timeout of one forwarded request */
	int unsafe_reads;            /* test-only: linearizable reads served locally */
	unsigned max_subscribers;    /* parked subscription polls allowed at once */
};

struct rp_call;
struct rp_sub_node;
struct rp_mesh;
struct rp_closewatch;
struct rp_fleet_share;

struct rp_api {
	uv_loop_t *loop;
	struct rp_node *node;
	struct rp_api_options opts;
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	uv_tcp_t listener;
	struct rp_call *watchers; /* parked watch calls, doubly linked */
	uint64_t requests[RP_ROUTE__COUNT][600];
	uint64_t forwarded;
	/* proxy subscriptions (subscribe.c) */
	struct rp_mesh *mesh;             /* parsed mesh at mesh->revision */
	struct rp_sub_node **sub_buckets; /* node id -> snapshot cache + fleet entry */
	size_t n_sub_nodes;
	uv_timer_t sub_gc;
	uint64_t snapshots_encoded, snapshots_sent, subscribers;
	unsigned proxy_ttl_ms;
	uint64_t sub_seq;         /* orders sends, ACKs and NACKs (subscribe.c) */
	uv_timer_t sub_cid;       /* proposes/notices the cluster id (subscribe.c) */
	int cid_inflight;
	char cid_seen[33];        /* cluster id the subscriptions last saw */
	uint64_t watch_seen_rev;  /* revision rp_watch_notify last looked at (watch.c) */
	uint64_t sub_seen_rev;    /* revision rp_subscribe_notify last looked at */
	struct rp_fleet_share *fleet; /* shared fan-out of rollout waits (fleet.c) */
};

/*
 * One API request that may finish asynchronously.
 *
 * Invariants: c->req is NULL once h2o disposed the request (client gone or
 * response finished); nothing touches the request after that. c stays
 * allocated while refs > 0: one ref for the request link, one per
 * outstanding async operation (raft callback, forward, timer handle).
 */
struct rp_call {
	struct rp_api *api;
	h2o_req_t *req;
	int route;
	int refs;
	int responded;
	int is_write;   /* a forward failure after sending is outcome_unknown */
	int forwarded;  /* arrived from another node: never forward again */
	uint64_t deadline; /* uv_now() ms by which a leader must be found */
	uv_timer_t timer;
	int timer_on;
	void (*on_timer)(struct rp_call *c);
	struct rp_leader_waiter lw;
	int waiting_leader;
	struct rp_http_req *fwd;
	/* what to do on the ready leader */
	void (*local)(struct rp_call *c);
	void (*reader)(struct rp_call *c); /* linearizable read, after a barrier */
	void (*on_ok)(struct rp_call *c, const struct rp_apply_result *res);
	const Raftplane__Command *pending_cmd; /* what local() proposes */
	/* request data (borrowed from req until responded) */
	int kind;
	char name[RP_MAX_NAME + 1];
	int cond;
	uint64_t if_version;
	char *canon; size_t canon_len; /* malloc'd canonical JSON of a mesh put */
	Raftplane__Command *cmd;        /* heap-built txn, freed with the call */
	struct rp_member member;
	uint64_t target_id;
	/* subscription */
	struct rp_sub_node *sub;
	struct rp_call *sprev, *snext;
	uint64_t held, nack_version;
	int has_held, has_nack, sub_validated, sub_parked;
	uint64_t sub_deadline, behind_deadline;
	const char *sub_nack_error; /* validated NACK text (request pool) */
	char sub_cluster[33];       /* cluster id the request's versions refer to */
	int sub_foreign;            /* versions are another cluster's: ignored */
	/* parked: the client's connection is watched (park.c) */
	struct rp_closewatch *cw;
	/* watch */
	struct rp_call *wprev, *wnext;
	uint64_t watch_after;
	unsigned watch_mask;
};

/* http.c */
int rp_api_start(struct rp_api *api, uv_loop_t *loop, struct rp_node *node, const char *addr,
		 const struct rp_api_options *opts, char *errmsg, size_t errlen);
void rp_api_close(struct rp_api *api);
void rp_call_ref(struct rp_call *c);
void rp_call_unref(struct rp_call *c);
void rp_call_set_timer(struct rp_call *c, uint64_t ms, void (*fn)(struct rp_call *c));
void rp_call_stop_timer(struct rp_call *c);
/** Respond with @body (stolen, may be NULL for an empty object). */
void rp_respond_json(struct rp_call *c, int status, json_t *body, uint64_t etag);
void rp_respond_raw(struct rp_call *c, int status, const char *ctype, const void *data,
		    size_t len, uint64_t etag);
/** Relay a forwarded answer (strings may be "" when absent). */
void rp_respond_relay(struct rp_call *c, int status, const char *ctype, const char *etag,
		      const char *retry_after, const void *body, size_t len);
/** JSON error body for @err; @index >= 0 adds "index" (failing txn op). */
void rp_respond_error(struct rp_call *c, int err, const char *message, int index);
/** Value of query parameter @name, decoded into @out; 1 if present, 0 if
 * absent, -1 when malformed, too long or given more than once. */
int rp_query_param(h2o_req_t *req, const char *name, char *out, size_t outlen);
/** Parse @len decimal digits into *out; -1 on anything else or overflow. */
int rp_parse_u64(const char *s, size_t len, uint64_t *out);
/** Parse DIGITS[.DIGITS] + "ms", "s", "m" or nothing (seconds) into *ms;
 * -1 on anything else (sign, space, hex, exponent, inf, nan) or > max. */
int rp_parse_wait(const char *s, uint64_t max_ms, uint64_t *ms);
/** Header value as a NUL-terminated pool string, NULL when absent. */
const char *rp_header(h2o_req_t *req, const h2o_token_t *token);
/** Every field line of list header @token joined with ", " (RFC 9110
 * 5.3), as a pool string; NULL when absent. */
const char *rp_header_list(h2o_req_t *req, const h2o_token_t *token);
/** Percent-decode a path segment ('+' is literal) into @out; -1 on a bad
 * escape, an encoded NUL or when it does not fit. */
int rp_path_decode(const char *v, size_t len, char *out, size_t outcap, size_t *outlen);

/* route.c: the routing table, with exact method checks and 405 + Allow. */
void rp_route_request(struct rp_call *c);

/* park.c: a parked request notices its client leaving. */
/** Watch @c's connection while it is parked: when the client closes (or TCP
 * keepalive finds it dead) the call answers 499 at once, which fails to
 * write, so h2o disposes the request and every parked resource goes. Also
 * turns on TCP keepalive with short probes on the socket. Idempotent. */
void rp_call_watch_close(struct rp_call *c);

/* leader.c: run c->local on the ready leader, forwarding or waiting. */
void rp_leader_dispatch(struct rp_call *c);
/** Linearizable read: run c->local after a barrier (or forward). */
void rp_leader_read(struct rp_call *c);
void rp_leader_cancel(struct rp_call *c);
/** The ready leader refused the work (e.g. a leadership transfer is under
 * way): dispatch again after a short delay, until the deadline. */
void rp_leader_retry(struct rp_call *c);

/* Route handlers, each validates its input and answers. */
void rp_route_kv(struct rp_call *c, const char *method, const char *name, size_t name_len);
void rp_route_kv_list(struct rp_call *c);
void rp_route_mesh(struct rp_call *c, int kind, const char *method, const char *name,
		   size_t name_len);
void rp_route_mesh_list(struct rp_call *c, int kind);
void rp_route_txn(struct rp_call *c);
void rp_route_watch(struct rp_call *c);
void rp_watch_notify(struct rp_api *api);
void rp_watch_cancel(struct rp_call *c);
/** Bit per kind changed in (*seen_rev, revision]; moves *seen_rev on. */
unsigned rp_changed_kinds(struct rp_api *api, uint64_t *seen_rev);
void rp_route_status(struct rp_call *c);
void rp_route_members(struct rp_call *c, const char *method);
void rp_route_member(struct rp_call *c, const char *method, const char *id, size_t id_len,
		     int leadership);
void rp_route_healthz(struct rp_call *c);
void rp_route_readyz(struct rp_call *c);
void rp_route_metrics(struct rp_call *c);

/* subscribe.c: the proxy subscription protocol (docs/protocol.md). */
int rp_subscribe_init(struct rp_api *api);
void rp_subscribe_close(struct rp_api *api);
void rp_route_subscribe(struct rp_call *c);
void rp_subscribe_notify(struct rp_api *api);
void rp_subscribe_cancel(struct rp_call *c);
/** This server's fleet entries as a JSON array (caller owns it). */
json_t *rp_subscribe_local_fleet(struct rp_api *api);

/* fleet.c: /v1/proxies and /v1/rollouts, merged over every member. */
void rp_route_proxies(struct rp_call *c);
void rp_route_rollout(struct rp_call *c, const char *rev, size_t len);

/* Shared by item handlers: respond with the result of a proposal. */
void rp_propose_and_respond(struct rp_call *c, const Raftplane__Command *cmd,
			    void (*ok)(struct rp_call *c, const struct rp_apply_result *res));

#endif
