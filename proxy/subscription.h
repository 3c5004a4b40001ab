/* The proxy side of the subscription protocol (docs/protocol.md): long-poll
 * the servers for this node's snapshot, ACK or NACK each version, fail over
 * between servers with backoff and jitter. */
#ifndef RP_SUBSCRIPTION_H
#define RP_SUBSCRIPTION_H

#include <stdint.h>
#include <uv.h>

#include "client.h"
#include "raftplane.pb-c.h"
#include "raftplane/limits.h"

#define RP_SUB_MAX_SERVERS 16
/* The largest snapshot accepted by default (--max-snapshot-bytes): a larger
 * answer fails before more than this is buffered and the client moves on. */
#define RP_SUB_DEFAULT_MAX_SNAPSHOT (64 * 1024 * 1024)

/* Why an exchange with a server failed (docs/proxy.md "When a server
 * misbehaves"); each moves the client to the next server. */
enum rp_sub_fault {
	RP_SUB_F_CONNECT,      /* connection refused or not made */
	RP_SUB_F_LINK,         /* connection lost or closed before a full answer */
	RP_SUB_F_TIMEOUT,      /* no full answer within wait_ms + 5 s */
	RP_SUB_F_BAD_HTTP,     /* not HTTP, bad framing, malformed chunked encoding */
	RP_SUB_F_TOO_LARGE,    /* answer over max_snapshot */
	RP_SUB_F_STATUS,       /* a status other than 200/304 */
	RP_SUB_F_BAD_SNAPSHOT, /* undecodable, another node's, bad cluster id */
	RP_SUB_F_STALE,        /* a version not above the one the request reported */
	RP_SUB_F_TLS,          /* TLS refused */
	RP_SUB_F_N
};
/** The metric label of @f ("timeout", "too_large", ...). */
const char *rp_sub_fault_name(enum rp_sub_fault f);

struct rp_sub_client;

/*
 * Called with each new snapshot (version above the one held). @raw/@len are
 * its encoding (borrowed). The callee must answer with rp_sub_ack() or
 * rp_sub_nack() — then or later — before the next poll starts.
 */
typedef void (*rp_sub_snapshot_cb)(struct rp_sub_client *c, const Raftplane__Snapshot *snap,
				   const void *raw, size_t len);

/* Telemetry (docs/telemetry.md): the report interval the server announces in
 * the header x-raftplane-report-interval-ms of every answer to a poll. */
#define RP_SUB_REPORT_HEADER "x-raftplane-report-interval-ms"
#define RP_SUB_REPORT_MIN_MS 100
#define RP_SUB_REPORT_MAX_MS 600000

/* Called when rp_sub_report_interval() may have changed (main loop). */
typedef void (*rp_sub_interval_cb)(struct rp_sub_client *c, void *arg);

struct rp_sub_client {
	uv_loop_t *loop;
	void *data;
	char node_id[RP_MAX_NAME + 1];
	char servers[RP_SUB_MAX_SERVERS][64];
	unsigned n_servers, cur;
	unsigned wait_ms;
	rp_sub_snapshot_cb on_snapshot;
	/* what we hold / last refused */
	uint64_t version;
	int has_version;
	char cluster_id[33];      /* cluster of version ("" unknown) */
	char prev_cluster_id[33]; /* before the last switch ("" none) */
	uint64_t nack_version;
	int has_nack;
	char nack_cluster[33]; /* cluster of nack_version */
	char nack_error[256];  /* valid UTF-8, no control characters */
	/* the snapshot handed to on_snapshot last */
	uint64_t offered_version;
	char offered_cluster[33];
	int foreign; /* it came from another cluster and is not applied */
	uint64_t cluster_switches;
	/* state */
	int connected;       /* last exchange with a server succeeded */
	int awaiting_answer; /* snapshot handed to on_snapshot, no ack yet */
	int stopped;
	unsigned failures; /* consecutive, for the backoff */
	unsigned fast;     /* consecutive useless answers that came at once */
	int quick;         /* the last answer came within FAST_MS */
	int probe;         /* the poll in flight has wait 0 (to learn connected) */
	uint64_t sent_at;  /* uv_now() of the poll in flight */
	struct rp_http_req *req;
	uv_timer_t retry;
	uint64_t polls, snapshots, errors;
	uint64_t faults[RP_SUB_F_N]; /* failures by kind */
	char last_error[384];
	/* the last failure, kept after the client moved on and reconnected */
	char last_fault[384]; /* "server: reason" ("" none yet) */
	enum rp_sub_fault last_fault_kind;
	uint64_t last_fault_at; /* unix ms */
	size_t max_snapshot;    /* largest answer body accepted */
	int claimed;            /* the poll in flight reported a version of the held cluster */
	char logged_error[384]; /* the last failure logged (each new one once) */
	const struct rp_http_tls *tls; /* HTTPS to the servers, or NULL */
	/* telemetry: the interval servers[report_server] announced in its last
	 * answer (0: none, or no answer from the current server yet) */
	unsigned report_interval_ms;
	unsigned report_server;
	rp_sub_interval_cb on_interval; /* optional */
	void *interval_arg;
};

/**
 * Initialise @c for @node_id over a comma-separated @servers list.
 * Returns 0, or -1 with a reason in c->last_error.
 */
int rp_sub_init(struct rp_sub_client *c, uv_loop_t *loop, const char *node_id, const char *servers,
		unsigned wait_ms, rp_sub_snapshot_cb cb);

/** Poll over HTTPS with @tls (borrowed; NULL: plain), before rp_sub_start. */
void rp_sub_set_tls(struct rp_sub_client *c, const struct rp_http_tls *tls);

/** Start polling, optionally claiming @version already held (from a cache). */
void rp_sub_start(struct rp_sub_client *c, int has_version, uint64_t version);
/** The cluster id of the version held (from the cache), before rp_sub_start.
 * Ignored unless it is 32 lowercase hex digits. */
void rp_sub_set_cluster(struct rp_sub_client *c, const char *cluster_id);
void rp_sub_ack(struct rp_sub_client *c, uint64_t version);
void rp_sub_nack(struct rp_sub_client *c, uint64_t version, const char *error);
/** Stop polling and close @c. It must stay allocated until the loop has run once more
 * (its timer handle closes asynchronously). */
void rp_sub_close(struct rp_sub_client *c);
const char *rp_sub_server(const struct rp_sub_client *c);

/**
 * The report interval (ms) announced by the server currently subscribed to
 * in its last answer, or 0: that server announced none (an older release,
 * or no valid value) or has not answered since the subscription moved to
 * it. A value outside RP_SUB_REPORT_MIN_MS..MAX_MS is clamped into it.
 */
unsigned rp_sub_report_interval(const struct rp_sub_client *c);

/** Call @cb(@c, @arg) whenever rp_sub_report_interval() may have changed. */
void rp_sub_on_interval(struct rp_sub_client *c, rp_sub_interval_cb cb, void *arg);

#endif
