/* GET /metrics: Prometheus text exposition format 0.0.4.
 *
 * This server's own metrics, then the fleet's telemetry aggregates, which
 * need every member's samples: the answer waits for one fan-out
 * (telemetry_query.c, shared by concurrent scrapes; 1 s peer timeout).
 * Label values of the fleet metrics come from the store's mesh only (route
 * and cluster names; endpoint addresses of clusters of at most
 * MAX_ENDPOINT_LABELS endpoints), so a hostile reporter cannot grow them. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "apitls.h"
#include "fdbudget.h"
#include "metrics.h"
#include "raftplane/err.h"
#include "subscribe.h"
#include "telemetry.h"
#include "telemetry_query.h"
#include "validate.h"
#include "transport.h"

#define MAX_ENDPOINT_LABELS 16

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

/* A scrape waiting for the fleet (c->ctx, request pool). */
struct metrics_call {
	struct buf b;
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

/* TLS (only when on): handshake failures and reloads by context. */
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
}

/* Refused subscription polls by reason: the caps always, the client
 * certificate checks when TLS is on. */
static void subscribe_metrics(struct buf *b, const struct rp_api *api)
{
	const struct rp_api_tls *t = api->opts.tls;
	put(b,
	    "# HELP raftplane_subscribe_refused_total Subscription polls refused, by reason "
	    "(per_node: 429, the node id's parked polls at --max-subscriptions-per-node; "
	    "server_full: 503, --max-subscribers; no_cert, wrong_node: with TLS, the client "
	    "certificate).\n# TYPE raftplane_subscribe_refused_total counter\n"
	    "raftplane_subscribe_refused_total{reason=\"per_node\"} %" PRIu64 "\n"
	    "raftplane_subscribe_refused_total{reason=\"server_full\"} %" PRIu64 "\n",
	    api->sub_refused_per_node, api->sub_refused_full);
	for (int i = 0; t && t->api && i < RP_SUB_REFUSE__N; i++)
		put(b, "raftplane_subscribe_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    rp_sub_refuse_name(i), t->sub_refused[i]);
	counter(b, "raftplane_proxy_snapshot_encodings_total",
		"Proxy snapshots encoded: one per listener selection and version, shared by "
		"every node id that has it (docs/design.md).",
		api->snapshots_encoded);
	counter(b, "raftplane_proxy_snapshots_sent_total", "Proxy snapshots sent to subscribers.",
		api->snapshots_sent);
}

/* The API listener's limits (net/connlimit.h). */
static void conn_metrics(struct buf *b, struct rp_api *api)
{
	struct rp_connlimit_stats st;
	rp_connlimit_stats(&api->conns, &st);
	gauge(b, "raftplane_connections_open", "API connections open (counted by the limits).",
	      st.open);
	put(b, "# HELP raftplane_connections_refused_total API connections closed at accept, by "
	       "reason (per_ip: --max-conns-per-ip, total: --max-conns, fds: the client "
	       "descriptor budget).\n"
	       "# TYPE raftplane_connections_refused_total counter\n");
	for (int i = 0; i < RP_CONN_REFUSE__N; i++)
		put(b, "raftplane_connections_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    rp_conn_refuse_names[i], st.refused[i]);
	gauge(b, "raftplane_client_fd_budget",
	      "Descriptors clients may hold (connections and close watches): ulimit -n less a "
	      "reserve for raft; 0 when unlimited.",
	      rp_fd_budget_limit());
	gauge(b, "raftplane_client_fds",
	      "Descriptors clients hold (connections and close watches).", rp_fd_budget_used());
	counter(b, "raftplane_close_watches_skipped_total",
		"Polls parked without a close watch because the client descriptor budget was "
		"spent.",
		rp_fd_budget_watches_skipped());
	counter(b, "raftplane_connections_member_exempt_total",
		"API connections from a member's address admitted over --max-conns-per-ip.",
		st.exempted);
	put(b, "# HELP raftplane_request_heads_refused_total Request heads refused with 431, by "
	       "reason (bytes: --max-header-bytes, count: --max-headers).\n"
	       "# TYPE raftplane_request_heads_refused_total counter\n");
	for (int i = 0; i < RP_HEAD_REFUSE__N; i++)
		put(b, "raftplane_request_heads_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    rp_head_refuse_names[i], st.heads_refused[i]);
	counter(b, "raftplane_request_head_guard_fallbacks_total",
		"Connections whose request heads were checked only after h2o parsed them.",
		st.guard_fallbacks);
}

/* This server's telemetry store (telemetry.c). */
static void telemetry_metrics(struct buf *b, struct rp_api *api)
{
	const struct rp_tl_stats *ts = rp_telemetry_stats(api);
	put(b, "# HELP raftplane_telemetry_reports_total POST /v1/report answers of this server, "
	       "by result.\n# TYPE raftplane_telemetry_reports_total counter\n");
	for (int i = 0; i < RP_TL_RESULT__N; i++)
		put(b, "raftplane_telemetry_reports_total{result=\"%s\"} %" PRIu64 "\n",
		    rp_tl_result_names[i], ts->reports[i]);
	gauge(b, "raftplane_telemetry_reporters", "Node ids whose reports this server keeps.",
	      ts->reporters);
	gauge(b, "raftplane_telemetry_instances",
	      "Proxy instances whose reports this server keeps.", ts->instances);
	gauge(b, "raftplane_telemetry_samples", "Report samples this server keeps.", ts->samples);
	gauge(b, "raftplane_telemetry_bytes",
	      "Bytes allocated for the reports this server keeps (table included).", ts->bytes);
	counter(b, "raftplane_telemetry_ignored_names_total",
		"Routes, clusters and endpoints in accepted reports that the mesh does not have.",
		ts->ignored_names);
}

static const char *const kinds[2][2] = {{"cluster", "clusters"}, {"route", "routes"}};
static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const struct {
	const char *label;
	int idx;
} up_errors[4] = {{"connect", RP_TV_CONNECT},
		  {"reset", RP_TV_RESETS},
		  {"timeout", RP_TV_TIMEOUTS},
		  {"no_healthy", RP_TV_NO_HEALTHY}};

/* One metric family's lines for one item (@kind, @name) with totals @v. */
typedef void (*item_lines)(struct buf *b, const char *kind, const char *name, const uint64_t *v);

/* @emit for every cluster and route of the mesh, with its fleet totals
 * (zero when no proxy reported it). */
static void each_item(struct buf *b, struct rp_api *api, struct rp_tq_totals *tt, item_lines emit)
{
	static const uint64_t zero[RP_TV__N];
	for (int k = 0; k < 2; k++) {
		char *const *names;
		size_t n;
		if (rp_telemetry_mesh_names(api, k ? RP_KIND_ROUTES : RP_KIND_CLUSTERS, &names,
					    &n) != 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			const uint64_t *v = rp_tq_total(&tt[k], names[i]);
			emit(b, kinds[k][0], names[i], v ? v : zero);
		}
	}
}

static void requests_lines(struct buf *b, const char *kind, const char *name, const uint64_t *v)
{
	put(b, "raftplane_fleet_requests_total{kind=\"%s\",name=\"%s\"} %" PRIu64 "\n", kind, name,
	    v[RP_TV_REQUESTS]);
}

static void responses_lines(struct buf *b, const char *kind, const char *name, const uint64_t *v)
{
	for (int j = 0; j < 6; j++)
		put(b,
		    "raftplane_fleet_responses_total{kind=\"%s\",name=\"%s\",class=\"%s\"} %" PRIu64
		    "\n",
		    kind, name, classes[j], v[RP_TV_RESP + j]);
}

static void errors_lines(struct buf *b, const char *kind, const char *name, const uint64_t *v)
{
	for (int j = 0; j < 4; j++)
		put(b,
		    "raftplane_fleet_upstream_errors_total{kind=\"%s\",name=\"%s\",error=\"%s\"} "
		    "%" PRIu64 "\n",
		    kind, name, up_errors[j].label, v[up_errors[j].idx]);
}

static void latency_lines(struct buf *b, const char *kind, const char *name, const uint64_t *v)
{
	uint64_t cum = 0;
	for (int j = 0; j < RP_TL_LAT_BOUNDS; j++) {
		cum += v[RP_TV_LAT + j];
		put(b,
		    "raftplane_fleet_latency_seconds_bucket{kind=\"%s\",name=\"%s\",le=\"%g\"} "
		    "%" PRIu64 "\n",
		    kind, name, (double)rp_tl_lat_bounds_us[j] / 1e6, cum);
	}
	cum += v[RP_TV_LAT + RP_TL_LAT_BOUNDS];
	put(b,
	    "raftplane_fleet_latency_seconds_bucket{kind=\"%s\",name=\"%s\",le=\"+Inf\"} %" PRIu64
	    "\n"
	    "raftplane_fleet_latency_seconds_sum{kind=\"%s\",name=\"%s\"} %.6f\n"
	    "raftplane_fleet_latency_seconds_count{kind=\"%s\",name=\"%s\"} %" PRIu64 "\n",
	    kind, name, cum, kind, name, (double)v[RP_TV_LAT_SUM] / 1e6, kind, name, cum);
}

static void fleet_counters(struct buf *b, struct rp_api *api, struct rp_tq_totals *tt)
{
	put(b, "# HELP raftplane_fleet_requests_total Requests by route or cluster, every proxy "
	       "of the fleet (sum of each instance's newest report).\n"
	       "# TYPE raftplane_fleet_requests_total counter\n");
	each_item(b, api, tt, requests_lines);
	put(b, "# HELP raftplane_fleet_responses_total Responses by class, every proxy.\n"
	       "# TYPE raftplane_fleet_responses_total counter\n");
	each_item(b, api, tt, responses_lines);
	put(b, "# HELP raftplane_fleet_upstream_errors_total Upstream failures by kind, every "
	       "proxy.\n# TYPE raftplane_fleet_upstream_errors_total counter\n");
	each_item(b, api, tt, errors_lines);
}

static void fleet_latency(struct buf *b, struct rp_api *api, struct rp_tq_totals *tt)
{
	put(b, "# HELP raftplane_fleet_latency_seconds Latency of requests by route or cluster, "
	       "every proxy (the proxies' fixed buckets).\n"
	       "# TYPE raftplane_fleet_latency_seconds histogram\n");
	each_item(b, api, tt, latency_lines);
}

static void fleet_endpoints(struct buf *b, struct rp_call *c, json_t *merged)
{
	static const char *const states[3] = {"healthy", "unhealthy", "ejected"};
	char *const *names;
	size_t n;
	if (rp_telemetry_mesh_names(c->api, RP_KIND_CLUSTERS, &names, &n) != 0)
		return;
	json_t *index = rp_tq_endpoint_index(c, merged, rp_wall_ms());
	put(b, "# HELP raftplane_fleet_endpoint_proxies Proxies (reported within 3 intervals) "
	       "that see an endpoint in a state; clusters of at most 16 endpoints.\n"
	       "# TYPE raftplane_fleet_endpoint_proxies gauge\n");
	for (size_t i = 0; i < n; i++) {
		json_t *eps = rp_telemetry_cluster_endpoints(c->api, names[i]), *a;
		size_t j;
		if (json_array_size(eps) <= MAX_ENDPOINT_LABELS)
			json_array_foreach(eps, j, a)
			{
				char key[512];
				snprintf(key, sizeof key, "%s %s", names[i], json_string_value(a));
				json_t *cnt = json_object_get(index, key);
				for (int s = 0; s < 3; s++)
					put(b,
					    "raftplane_fleet_endpoint_proxies{cluster=\"%s\","
					    "address=\"%s\",state=\"%s\"} %" JSON_INTEGER_FORMAT
					    "\n",
					    names[i], json_string_value(a), states[s],
					    json_integer_value(json_array_get(cnt, (size_t)s)));
			}
		json_decref(eps);
	}
	json_decref(index);
}

static void finish(struct rp_call *c, struct buf *b)
{
	if (b->oom)
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
	else
		rp_respond_raw(c, 200, "text/plain; version=0.0.4", b->p, b->len, 0);
	free(b->p);
	b->p = NULL;
}

static void on_fleet(struct rp_call *c, json_t *merged, json_t *unreachable)
{
	struct metrics_call *m = c->ctx;
	struct rp_tq_totals tt[2] = {{0}};
	gauge(&m->b, "raftplane_fleet_unreachable_members",
	      "Members that did not answer this scrape's telemetry fan-out.",
	      json_array_size(unreachable));
	if (rp_tq_totals(merged, "clusters", &tt[0]) == 0 &&
	    rp_tq_totals(merged, "routes", &tt[1]) == 0) {
		fleet_counters(&m->b, c->api, tt);
		fleet_latency(&m->b, c->api, tt);
		fleet_endpoints(&m->b, c, merged);
	} else {
		m->b.oom = 1;
	}
	rp_tq_totals_release(&tt[0]);
	rp_tq_totals_release(&tt[1]);
	finish(c, &m->b);
}

static void on_metrics_dispose(void *p)
{
	free(((struct metrics_call *)p)->b.p);
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
	gauge(&b, "raftplane_disk_state",
	      "Raft log writes: 0 persist, 1 held (disk full, retried), 2 failed (restart).",
	      st->disk_state);
	gauge(&b, "raftplane_disk_held_writes", "Raft log operations held, not yet persisted.",
	      st->disk_held);
	counter(&b, "raftplane_disk_write_failures_total", "Local raft writes that failed.",
		st->disk_failures);
	counter(&b, "raftplane_raft_stale_results_total",
		"AppendEntries results raft tried to send while not a follower (dropped: a raft "
		"0.15 bug after a snapshot install, docs/design.md).",
		st->stale_results);
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
	subscribe_metrics(&b, api);
	conn_metrics(&b, api);
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
	telemetry_metrics(&b, api);
	struct metrics_call *m = rp_call_alloc(c, sizeof *m, on_metrics_dispose);
	m->b = b; /* freed by finish, or when the request goes */
	c->ctx = m;
	rp_tq_fleet_newest(c, on_fleet);
}
