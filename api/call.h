/* The bottom of the REST API: the server every call belongs to, the call
 * lifecycle (refs, timer, parking, the close watch) and the answers
 * (rp_respond_*, our errors mapped to HTTP and JSON in one place).
 *
 * Every other api/ file builds on this one; it includes none of them.
 *
 * The call state machine (struct rp_call), invariants
 * 1. A call is malloc'd and refcounted: one ref for the request link, one
 *    per outstanding asynchronous operation (timer handle, forward, raft
 *    callback, fan-out). It is freed when the last ref goes.
 * 2. c->req is NULL once h2o disposed the request (response finished or
 *    client gone); nothing touches the request after that.
 * 3. The state of each handler family (c->ctx, c->lead) lives in the
 *    request pool (rp_call_alloc): it is valid exactly while c->req is
 *    non-NULL. An asynchronous callback that may run after the request
 *    went (raft proposal, read barrier, membership change, fan-out) checks
 *    rp_call_live() before it touches that state.
 * 4. A call is answered at most once: rp_call_begin_response() is the
 *    only place that starts a response, it sets c->responded, and every
 *    later answer (a result arriving after a 499 or a deadline) is
 *    dropped.
 * 5. A parked call is on at most one queue (leader wait, forward, watch
 *    list, subscription list, fleet fan-out): c->park names it. The first
 *    answer and the request's dispose both take the call off its queue,
 *    stop its timer and stop its close watch, so no queue, timer or watch
 *    ever holds a call that was answered or whose request went. When the
 *    call is freed it is on no queue and has no close watch.
 *
 *   created --route--> handled --park--> parked --answer--> answered
 *      |                  |                 |                  |
 *      +------------------+-----------------+-- dispose -------+--> req NULL
 *                                                                   (freed at refs 0)
 */
#ifndef RP_API_CALL_H
#define RP_API_CALL_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "connlimit.h"
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
	RP_ROUTE_TOKENS,
	RP_ROUTE_TOKEN,
	RP_ROUTE_HISTORY,
	RP_ROUTE_BACKUP,
	RP_ROUTE_REPORT,
	RP_ROUTE_TELEMETRY,
	RP_ROUTE_HEALTH,
	RP_ROUTE_ROLLBACK,
	RP_ROUTE_UI,
	RP_ROUTE_OTHER,
	RP_ROUTE__COUNT
};

/** Label of each route in the request counters (static strings). */
extern const char *const rp_route_names[RP_ROUTE__COUNT];

struct rp_api_options {
	unsigned leader_wait_ms;             /* how long a request waits for a leader */
	unsigned forward_timeout_ms;         /* timeout of one forwarded request */
	int unsafe_reads;                    /* test-only: linearizable reads served locally */
	unsigned max_subscribers;            /* parked subscription polls allowed at once */
	unsigned max_subscriptions_per_node; /* parked polls per node id; 0: unlimited */
	/* connections and request heads (net/connlimit.h); 0: unlimited */
	unsigned max_conns_per_ip;
	unsigned max_conns;
	unsigned max_header_bytes; /* request line and headers */
	unsigned max_headers;      /* header lines of a request */
	/* API tokens (auth.c, docs/security.md) */
	int tokens_required;              /* --bootstrap-token-file given */
	int have_bootstrap_token;         /* bootstrap_hash is set */
	unsigned char bootstrap_hash[32]; /* SHA-256 of the bootstrap secret */
	unsigned max_writes_per_token;    /* per second; 0: unlimited */
	int max_writes_given;             /* the flag was given: also per IP without tokens */
	struct rp_api_tls *tls;           /* TLS contexts (apitls.h), or NULL: plain HTTP */
	/* telemetry (telemetry.c); 0: the default */
	unsigned report_interval_ms;     /* asked of proxies (default 10000) */
	unsigned max_reporters;          /* node ids in the store (default 100000) */
	unsigned telemetry_retention_ms; /* test-only override of the 15 minutes */
	/* change history retention (retention.c): followed when given */
	int history_given;
	uint64_t history_revisions;  /* --history-revisions (default RP_HISTORY_REVS) */
	uint64_t history_max_age_ms; /* --history-max-age; 0: none */
};

struct rp_call;
struct rp_watcher;
struct rp_sub_node;
struct rp_mesh;
struct rp_closewatch;
struct rp_fleet_share;
struct rp_fanout;
struct rp_telemetry;
struct rp_leader_call;
struct rp_auth;
struct rp_api_tls;
struct rp_retention;
struct rp_sub_classes;

/*
 * The API server of one node (embedded by the caller, started by
 * rp_api_start in api.h). The fields after `forwarded` belong each to the
 * file named beside it; no other file touches them.
 */
struct rp_api {
	uv_loop_t *loop;
	struct rp_node *node;
	struct rp_api_options opts;
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	uv_tcp_t listener;
	uint64_t requests[RP_ROUTE__COUNT][600]; /* answers by route and status */
	uint64_t forwarded;
	struct rp_connlimit conns;   /* connections and heads of the listener (api.c) */
	struct rp_watcher *watchers; /* parked watch calls, doubly linked (watch.c) */
	uint64_t watch_seen_rev;     /* revision rp_watch_notify last looked at (watch.c) */
	/* proxy subscriptions (subscribe.c) */
	struct rp_mesh *mesh;               /* parsed mesh at mesh->revision */
	struct rp_sub_node **sub_buckets;   /* node id -> snapshot cache + fleet entry */
	struct rp_sub_classes *sub_classes; /* shared encodings of api->mesh */
	size_t n_sub_nodes;
	uv_timer_t sub_gc;
	uint64_t snapshots_encoded, snapshots_sent, subscribers;
	uint64_t subscribers_behind; /* of them: parked before validation (this server is behind) */
	uint64_t sub_refused_per_node, sub_refused_full; /* polls refused by the caps */
	unsigned proxy_ttl_ms;
	uint64_t sub_seq;   /* orders sends, ACKs and NACKs */
	uv_timer_t sub_cid; /* proposes/notices the cluster id */
	int cid_inflight;
	char cid_seen[33];              /* cluster id the subscriptions last saw */
	uint64_t sub_seen_rev;          /* revision rp_subscribe_notify last looked at */
	struct rp_fleet_share *fleet;   /* shared fan-out of rollout waits (fleet.c) */
	struct rp_auth *auth;           /* tokens, roles, write limits (auth.c) */
	struct rp_fanout *fanouts;      /* fan-outs in flight, shared by key (fanout.c) */
	struct rp_telemetry *tele;      /* reports of the attached proxies (telemetry.c) */
	struct rp_retention *retention; /* the history retention flags (retention.c) */
	/* calls whose close watch is deferred, oldest first (park.c) */
	struct rp_call *cw_head, *cw_tail;
	uv_timer_t cw_timer;
	int cw_timer_init;
};

/** A queue a call can be parked on (invariant 5). */
struct rp_park {
	const char *what; /* for debugging: "watch", "leader wait", ... */
	/** Take @c off the queue (the call is being answered or its request
	 * went). Runs once per park; must not answer @c. */
	void (*cancel)(struct rp_call *c);
};

/* One API request; see the invariants above. Only what every call needs:
 * each handler family keeps its own state in c->ctx (and the way to the
 * leader in c->lead), allocated with rp_call_alloc. */
struct rp_call {
	struct rp_api *api;
	h2o_req_t *req; /* NULL once disposed (invariant 2) */
	int route;      /* enum rp_route, for the counters */
	int refs;
	int responded;
	/* the call's one timer (deadlines, retries, polls) */
	uv_timer_t timer;
	int timer_on; /* the handle is initialised and holds a ref */
	void (*on_timer)(struct rp_call *c);
	/* parking (invariant 5) */
	const struct rp_park *park; /* the queue the call is on, NULL when none */
	struct rp_closewatch *cw;   /* the client's connection, while parked (park.c) */
	/* waiting for its close watch (park.c: deferred by PARK_WATCH_DELAY_MS) */
	struct rp_call *cw_next, *cw_prev;
	uint64_t cw_due;
	int cw_pending;
	/* family state in the request pool (invariant 3) */
	struct rp_leader_call *lead; /* leader.c, once the call needs the leader */
	void *ctx;                   /* the route handler's own state */
	/* who the caller is, set by the route's authentication (auth.c):
	 * "token:NAME", "cert:ID" or "anonymous"; "" before it ran */
	char actor[RP_MAX_ACTOR];
};

/* ---- lifecycle ---------------------------------------------------------- */

/** A call for @req, holding the request link (invariant 1); NULL when out of
 * memory. It is released when h2o disposes @req. */
struct rp_call *rp_call_create(struct rp_api *api, h2o_req_t *req);
/** Take a ref for an asynchronous operation that will call back with @c. */
void rp_call_ref(struct rp_call *c);
/** Drop a ref; the call is freed at zero (then it is on no queue). */
void rp_call_unref(struct rp_call *c);

/** The call can still be answered, and its family state is valid. */
static inline int rp_call_live(const struct rp_call *c)
{
	return c->req != NULL && !c->responded;
}

/** @size zeroed bytes in @c's request pool, valid while c->req is set
 * (invariant 3). With @dispose, it runs on them when the request goes (to
 * free what the state owns outside the pool). Aborts when out of memory,
 * like every h2o pool allocation. Only while c->req is set. */
void *rp_call_alloc(struct rp_call *c, size_t size, void (*dispose)(void *));

/** (Re)arm the call's timer: @fn(c) runs after @ms unless the call is
 * answered or its request goes first. */
void rp_call_set_timer(struct rp_call *c, uint64_t ms, void (*fn)(struct rp_call *c));
/** Stop the call's timer (it stays initialised for a later set). */
void rp_call_stop_timer(struct rp_call *c);

/** Record that @c is on queue @q (the caller linked it). @c must be live
 * and on no queue (invariant 5). */
void rp_call_park(struct rp_call *c, const struct rp_park *q);
/** Take @c off the list of calls whose close watch is deferred
 * (api->cw_head, park.c) when it is on it. */
void rp_call_watch_dequeue(struct rp_call *c);

/** Take @c off its queue through the queue's cancel; nothing when it is on
 * none. */
void rp_call_unpark(struct rp_call *c);
/** The queue @q let go of @c by itself (a waiter list that was detached, a
 * forward that finished): clear the record without cancel. */
void rp_call_park_done(struct rp_call *c, const struct rp_park *q);

/* ---- who is calling ------------------------------------------------------ */

/** Certificate identity of the connection, e.g. spiffe://td/node/7; set by
 * the TLS layer; NULL without TLS. */
const char *rp_call_peer_identity(struct rp_call *c);

/** The immediate peer of @c's connection as "IP:port" ("[IPv6]:port") in
 * @buf; "" when unknown. */
void rp_call_peer_address(struct rp_call *c, char *buf, size_t len);

/** Whether the immediate peer is a cluster member: its certificate
 * identity is spiffe://TRUST-DOMAIN/server/N with N a member id, or its IP
 * is the host of a member's HTTP address (@peer_ip without port; IPv6
 * without brackets). Pure, for the tests: @members are @n entries. */
int rp_peer_is_member(const char *identity, const char *peer_ip,
		      const struct rp_node_member *members, unsigned n);

/** rp_peer_is_member() for @c's connection and this node's members. */
int rp_call_from_member(struct rp_call *c);

/** The client address to record for @c: the x-raftplane-client header a
 * member's forward carries, when the immediate peer is a member
 * (rp_call_from_member) and the value is an address; else the immediate
 * peer. */
void rp_call_client_address(struct rp_call *c, char *buf, size_t len);

/** The audit fields of a proposal made for @c: its actor ("anonymous"
 * when none was set), client address, and the wall clock now (ms). */
void rp_call_audit(struct rp_call *c, struct rp_audit *out);

/** Unix time in ms (CLOCK_REALTIME). */
uint64_t rp_wall_ms(void);

/* ---- answers ------------------------------------------------------------ */

/** Start the one answer of @c with @status (invariant 4): takes the call
 * off its queue, stops its timer and close watch, counts the answer and
 * sets the status line. Returns 1 when the caller must now add headers and
 * send the body itself (h2o_send_inline / h2o_start_response), 0 when the
 * call was answered already or its request went (send nothing). */
int rp_call_begin_response(struct rp_call *c, int status);

/** Respond with @body (stolen, may be NULL for an empty object). */
void rp_respond_json(struct rp_call *c, int status, json_t *body, uint64_t etag);
/** Respond with @len bytes of @data (copied by h2o before this returns)
 * as @ctype; @etag 0 sends no ETag. */
void rp_respond_raw(struct rp_call *c, int status, const char *ctype, const void *data, size_t len,
		    uint64_t etag);
/** Relay a forwarded answer (strings may be "" when absent). */
void rp_respond_relay(struct rp_call *c, int status, const char *ctype, const char *etag,
		      const char *retry_after, const void *body, size_t len);
/** JSON error body for @err; @index >= 0 adds "index" (failing txn op). */
void rp_respond_error(struct rp_call *c, int err, const char *message, int index);

/** Turn the text/plain errors h2o answers by itself (413, 400, 417 before
 * any handler runs) on @path into our JSON error shape. */
void rp_call_add_error_filter(h2o_pathconf_t *path, struct rp_api *api);

#endif
