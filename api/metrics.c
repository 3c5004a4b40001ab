/* GET /metrics: Prometheus text exposition format 0.0.4. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "apitls.h"
#include "metrics.h"
#include "raftplane/err.h"
#include "subscribe.h"
#include "transport.h"

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0 || b->oom)
			return;
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 16384) + (size_t)n;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void histogram(struct buf *b, const char *name, const char *help,
		      const struct rp_histogram *h)
{
	uint64_t cum = 0;
	put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (int i = 0; i < RP_LAT_BUCKETS; i++) {
		cum += h->buckets[i];
		put(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, rp_latency_bounds[i], cum);
	}
	cum += h->buckets[RP_LAT_BUCKETS];
	put(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9f\n%s_count %" PRIu64 "\n", name, cum,
	    name, h->sum, name, h->count);
}

static void gauge(struct buf *b, const char *name, const char *help, uint64_t v)
{
	put(b, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
	put(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

/* The raft transport (raft/transport.h): refusals and drops by reason. */
static void transport_metrics(struct buf *b, struct rp_node *n)
{
	const struct rp_transport_stats *ts = rp_transport_stats(rp_node_transport(n));
	counter(b, "raftplane_raft_conns_accepted_total", "Raft peer handshakes accepted.",
		ts->accepted);
	gauge(b, "raftplane_raft_conns_pending", "Raft connections before their handshake.",
	      ts->pending);
	gauge(b, "raftplane_raft_conns_relayed", "Raft connections relayed (in + out).",
	      ts->relayed_in + ts->relayed_out);
	put(b, "# HELP raftplane_raft_conns_refused_total Raft connections refused, by reason.\n"
	       "# TYPE raftplane_raft_conns_refused_total counter\n");
	for (int i = 0; i < RP_REFUSE__N; i++)
		put(b, "raftplane_raft_conns_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    rp_refuse_reason_names[i], ts->refused[i]);
	put(b,
	    "# HELP raftplane_raft_msgs_dropped_total Inbound raft messages dropped, by reason.\n"
	    "# TYPE raftplane_raft_msgs_dropped_total counter\n");
	for (int i = 0; i < RP_DROP__N; i++)
		put(b, "raftplane_raft_msgs_dropped_total{reason=\"%s\"} %" PRIu64 "\n",
		    rp_drop_reason_names[i], ts->dropped[i]);
	put(b, "# HELP raftplane_raft_tls_failures_total Raft TLS handshakes and certificate "
	       "checks failed, by direction and reason.\n"
	       "# TYPE raftplane_raft_tls_failures_total counter\n");
	for (int i = 0; i < RP_TLS_FAIL__N; i++)
		put(b,
		    "raftplane_raft_tls_failures_total{direction=\"in\",reason=\"%s\"} %" PRIu64
		    "\n"
		    "raftplane_raft_tls_failures_total{direction=\"out\",reason=\"%s\"} %" PRIu64
		    "\n",
		    rp_tls_fail_names[i], ts->tls_in[i], rp_tls_fail_names[i], ts->tls_out[i]);
}

/* TLS (only when on): handshake failures and reloads by context, refused
 * subscriptions. */
static void tls_metrics(struct buf *b, const struct rp_api_tls *t)
{
	if (!t || !t->api)
		return;
	const char *names[3] = {"api", "client", "raft"};
	struct rp_tls *ctxs[3] = {t->api, t->client, t->peer};
	struct rp_tls_stats st[3];
	for (int k = 0; k < 3; k++)
		if (ctxs[k])
			rp_tls_get_stats(ctxs[k], &st[k]);
	put(b, "# HELP raftplane_tls_handshake_failures_total TLS handshakes and peer identity "
	       "checks that failed, by context (api: our API listener, client: our connections "
	       "to other servers, raft: our raft port) and reason.\n"
	       "# TYPE raftplane_tls_handshake_failures_total counter\n");
	for (int k = 0; k < 3; k++)
		for (int i = 0; ctxs[k] && i < RP_TLS_FAIL__N; i++)
			put(b,
			    "raftplane_tls_handshake_failures_total{context=\"%s\",reason=\"%s\"} "
			    "%" PRIu64 "\n",
			    names[k], rp_tls_fail_names[i], st[k].failures[i]);
	put(b, "# HELP raftplane_tls_reloads_total Certificate reloads (SIGHUP) by context and "
	       "result.\n# TYPE raftplane_tls_reloads_total counter\n");
	for (int k = 0; k < 3; k++)
		if (ctxs[k])
			put(b,
			    "raftplane_tls_reloads_total{context=\"%s\",result=\"ok\"} %" PRIu64
			    "\nraftplane_tls_reloads_total{context=\"%s\",result=\"failed\"} "
			    "%" PRIu64 "\n",
			    names[k], st[k].reloads_ok, names[k], st[k].reloads_failed);
	put(b, "# HELP raftplane_subscribe_refused_total Subscriptions refused for their client "
	       "certificate, by reason.\n# TYPE raftplane_subscribe_refused_total counter\n");
	for (int i = 0; i < RP_SUB_REFUSE__N; i++)
		put(b, "raftplane_subscribe_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    rp_sub_refuse_name(i), t->sub_refused[i]);
}

void rp_route_metrics(struct rp_call *c)
{
	struct rp_api *api = c->api;
	struct rp_node *n = api->node;
	struct rp_node_status rs;
	rp_node_status(n, &rs);
	const struct rp_node_stats *st = rp_node_stats(n);
	struct buf b = {0};
	gauge(&b, "raftplane_raft_term", "Current raft term.", rs.term);
	gauge(&b, "raftplane_raft_commit_index", "Highest log index known committed.",
	      rs.commit_index);
	gauge(&b, "raftplane_raft_applied_index", "Highest log index applied to the store.",
	      rs.applied_index);
	gauge(&b, "raftplane_raft_last_index", "Last log index appended locally.", rs.last_index);
	gauge(&b, "raftplane_leader_id", "Id of the known leader, 0 when none.", rs.leader_id);
	gauge(&b, "raftplane_is_leader", "1 when this node is the ready leader.",
	      (uint64_t)rs.leader_ready);
	gauge(&b, "raftplane_store_revision", "Store revision.",
	      rp_store_revision(rp_node_store(n)));
	counter(&b, "raftplane_leader_changes_total", "Leader changes seen.", st->leader_changes);
	counter(&b, "raftplane_read_barriers_total", "Barriers issued for linearizable reads.",
		st->barriers);
	counter(&b, "raftplane_reads_batched_total", "Linearizable reads served after barriers.",
		st->reads_batched);
	counter(&b, "raftplane_snapshots_taken_total", "Raft snapshots taken.",
		st->snapshots_taken);
	counter(&b, "raftplane_snapshots_restored_total", "Raft snapshots restored or installed.",
		st->snapshots_restored);
	counter(&b, "raftplane_forwarded_total", "Requests forwarded to the leader.",
		api->forwarded);
	transport_metrics(&b, api->node);
	const struct rp_auth_stats *as = rp_auth_stats(api);
	gauge(&b, "raftplane_auth_enabled", "1 when this node requires API tokens.",
	      (uint64_t)rp_auth_enforced(api));
	gauge(&b, "raftplane_tokens", "API tokens in the replicated state.",
	      (uint64_t)rp_auth_token_count(api));
	put(&b,
	    "# HELP raftplane_auth_failures_total Requests refused by authentication, by "
	    "reason.\n# TYPE raftplane_auth_failures_total counter\n"
	    "raftplane_auth_failures_total{reason=\"unauthenticated\"} %" PRIu64 "\n"
	    "raftplane_auth_failures_total{reason=\"permission_denied\"} %" PRIu64 "\n",
	    as->unauthenticated, as->permission_denied);
	counter(&b, "raftplane_rate_limited_writes_total",
		"Writes refused with 429 by the writes-per-token limit.", as->rate_limited);
	tls_metrics(&b, api->opts.tls);
	histogram(&b, "raftplane_apply_seconds", "Time to apply one log entry to SQLite.",
		  &st->apply);
	histogram(&b, "raftplane_propose_seconds", "Leader: time from propose to applied.",
		  &st->propose);
	put(&b, "# HELP raftplane_http_requests_total HTTP requests by route and status.\n"
		"# TYPE raftplane_http_requests_total counter\n");
	for (int rt = 0; rt < RP_ROUTE__COUNT; rt++)
		for (int s = 100; s < 600; s++)
			if (api->requests[rt][s])
				put(&b,
				    "raftplane_http_requests_total{route=\"%s\",status=\"%d\"} "
				    "%" PRIu64 "\n",
				    rp_route_names[rt], s, api->requests[rt][s]);
	if (b.oom) {
		free(b.p);
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return;
	}
	rp_respond_raw(c, 200, "text/plain; version=0.0.4", b.p, b.len, 0);
	free(b.p);
}
