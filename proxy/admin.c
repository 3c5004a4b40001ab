/* The admin HTTP server (--admin), on the main loop: /ready, /config_dump,
 * /stats (JSON) and /metrics (Prometheus). Everything it shows is owned by
 * the main thread or read through atomics. */
#include "admin.h"
#include "json.h"
#include "accept.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "health.h"
#include "stats.h"

#define MAX_LISTED 100000

static void respond(h2o_req_t *req, int status, const char *ctype, const char *body, size_t len)
{
	req->res.status = status;
	req->res.reason = status == 200   ? "OK"
			  : status == 404 ? "Not Found"
					  : "Service Unavailable";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype,
		       strlen(ctype));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
		       H2O_STRLIT("no-store"));
	req->res.content_length = len;
	h2o_send_inline(req, body, len);
}

static void respond_json(h2o_req_t *req, int status, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text) {
		respond(req, 503, "text/plain", "out of memory\n", 14);
		return;
	}
	size_t len = strlen(text);
	char *body = h2o_mem_alloc_pool(&req->pool, len + 1);
	memcpy(body, text, len);
	body[len] = '\n';
	free(text);
	respond(req, status, "application/json", body, len + 1);
}

/* ---- /ready --------------------------------------------------------------- */

/* Which control plane the config is from; foreign_cluster: a server of
 * another cluster offered a config that could not be applied yet. */
static void add_cluster_fields(struct rp_proxy *p, json_t *j)
{
	const struct rp_sub_client *s = &p->sub;
	json_object_set_new(j, "cluster_id",
			    s->cluster_id[0] ? json_string(s->cluster_id) : json_null());
	json_object_set_new(j, "previous_cluster_id",
			    s->prev_cluster_id[0] ? json_string(s->prev_cluster_id) : json_null());
	json_object_set_new(j, "foreign_cluster", json_boolean(s->foreign));
}

static void on_ready(struct rp_proxy *p, h2o_req_t *req)
{
	const struct rp_generation *g = p->published;
	json_t *j = json_pack("{s:b,s:I,s:s,s:b}", "ready", p->ready && g != NULL, "version",
			      (json_int_t)(g ? g->version : 0), "source",
			      !g              ? "none"
			      : p->from_cache ? "cache"
					      : "server",
			      "control_plane_connected", p->sub.connected);
	add_cluster_fields(p, j);
	respond_json(req, p->ready && g ? 200 : 503, j);
}

/* ---- /config_dump --------------------------------------------------------- */

static json_t *endpoints_json(const struct rp_cluster *c)
{
	json_t *a = json_array();
	uint64_t now = rp_now_ms();
	for (size_t i = 0; i < c->n_eps; i++) {
		struct rp_health *h = c->health[i];
		json_array_append_new(a,
				      json_pack("{s:s,s:i,s:b,s:b,s:b,s:i}", "endpoint",
						c->eps[i].hostport, "weight", (int)c->eps[i].weight,
						"healthy", atomic_load(&h->hc_ok), "ejected",
						now < atomic_load(&h->ejected_until_ms),
						"in_rotation", rp_health_usable(h, now),
						"active_requests", atomic_load(&h->active_rq)));
	}
	return a;
}

static json_t *cluster_json(const Raftplane__Cluster *pc, const struct rp_cluster *c)
{
	json_t *o = json_pack("{s:s,s:I,s:s,s:i}", "name", pc->name, "version",
			      (json_int_t)pc->version, "lb_policy",
			      pc->lb_policy[0] ? pc->lb_policy : "round_robin",
			      "connect_timeout_ms", (int)pc->connect_timeout_ms);
	if (pc->hash_on[0])
		json_object_set_new(o, "hash_on", json_string(pc->hash_on));
	json_t *eps = endpoints_json(c);
	for (size_t i = 0; i < pc->n_endpoints && i < json_array_size(eps); i++) {
		json_t *e = json_array_get(eps, i);
		json_object_set_new(e, "address", json_string(pc->endpoints[i]->address));
		json_object_set_new(e, "port", json_integer(pc->endpoints[i]->port));
	}
	json_object_set_new(o, "endpoints", eps);
	if (pc->health_check) {
		const Raftplane__HealthCheck *h = pc->health_check;
		json_object_set_new(o, "health_check",
				    json_pack("{s:s,s:i,s:i,s:i,s:i}", "path", h->path,
					      "interval_ms", (int)h->interval_ms, "timeout_ms",
					      (int)h->timeout_ms, "unhealthy_threshold",
					      (int)h->unhealthy_threshold, "healthy_threshold",
					      (int)h->healthy_threshold));
	}
	return o;
}

static json_t *route_json(const Raftplane__Route *r)
{
	json_t *o = json_pack("{s:s,s:I,s:s,s:i,s:i}", "name", r->name, "version",
			      (json_int_t)r->version, "listener", r->listener, "priority",
			      (int)r->priority, "timeout_ms", (int)r->timeout_ms);
	json_object_set_new(o, "match",
			    r->path[0] ? json_pack("{s:s}", "path", r->path)
				       : json_pack("{s:s}", "prefix", r->prefix));
	if (r->n_headers) {
		json_t *h = json_array();
		for (size_t i = 0; i < r->n_headers; i++)
			json_array_append_new(h, json_pack("{s:s,s:s}", "name", r->headers[i]->name,
							   "exact", r->headers[i]->exact));
		json_object_set_new(o, "headers", h);
	}
	if (r->n_weighted_clusters) {
		json_t *w = json_array();
		for (size_t i = 0; i < r->n_weighted_clusters; i++)
			json_array_append_new(w,
					      json_pack("{s:s,s:i}", "cluster",
							r->weighted_clusters[i]->cluster, "weight",
							(int)r->weighted_clusters[i]->weight));
		json_object_set_new(o, "weighted_clusters", w);
	} else {
		json_object_set_new(o, "cluster", json_string(r->cluster));
	}
	json_t *on = json_array();
	if (r->retry_connect_failure)
		json_array_append_new(on, json_string("connect-failure"));
	if (r->retry_5xx)
		json_array_append_new(on, json_string("5xx"));
	json_object_set_new(o, "retries",
			    json_pack("{s:i,s:o}", "attempts", (int)r->retry_attempts, "on", on));
	if (r->has_prefix_rewrite)
		json_object_set_new(o, "prefix_rewrite", json_string(r->prefix_rewrite));
	return o;
}

/* TLS towards the servers: files, failures by reason, reloads. */
static json_t *tls_json(const struct rp_proxy *p)
{
	const struct rp_proxy_tls *t = &p->tls;
	if (!t->tls)
		return json_pack("{s:b}", "enabled", 0);
	struct rp_tls_stats st;
	rp_tls_get_stats(t->tls, &st);
	json_t *f = json_object();
	for (int i = 0; i < RP_TLS_FAIL__N; i++)
		json_object_set_new(f, rp_tls_fail_names[i], rp_json_u64(st.failures[i]));
	return json_pack("{s:b,s:s,s:s,s:s,s:o,s:{s:o,s:o,s:s}}", "enabled", 1, "cert", t->cert,
			 "ca", t->ca, "trust_domain", t->trust_domain, "handshake_failures", f,
			 "reloads", "ok", rp_json_u64(st.reloads_ok), "failed",
			 rp_json_u64(st.reloads_failed), "last_error", t->last_reload_error);
}

static void tls_metrics(const struct rp_proxy *p, struct rp_buf *b)
{
	if (!p->tls.tls)
		return;
	struct rp_tls_stats st;
	rp_tls_get_stats(p->tls.tls, &st);
	rp_buf_printf(b, "# TYPE raftplane_proxy_tls_handshake_failures_total counter\n");
	for (int i = 0; i < RP_TLS_FAIL__N; i++)
		rp_buf_printf(b,
			      "raftplane_proxy_tls_handshake_failures_total{reason=\"%s\"} %lu\n",
			      rp_tls_fail_names[i], (unsigned long)st.failures[i]);
	rp_buf_printf(b,
		      "# TYPE raftplane_proxy_tls_reloads_total counter\n"
		      "raftplane_proxy_tls_reloads_total{result=\"ok\"} %lu\n"
		      "raftplane_proxy_tls_reloads_total{result=\"failed\"} %lu\n",
		      (unsigned long)st.reloads_ok, (unsigned long)st.reloads_failed);
}

/* The subscription's failures by kind and the last one, kept after the
 * proxy moved to another server: why a server was left. */
static json_t *faults_json(const struct rp_sub_client *s)
{
	json_t *by = json_object();
	for (int k = 0; k < RP_SUB_F_N; k++)
		json_object_set_new(by, rp_sub_fault_name(k),
				    json_integer((json_int_t)s->faults[k]));
	json_t *last = !s->last_fault[0]
			       ? json_null()
			       : json_pack("{s:s,s:s,s:I}", "error", s->last_fault, "reason",
					   rp_sub_fault_name(s->last_fault_kind), "at",
					   (json_int_t)s->last_fault_at);
	return json_pack("{s:o,s:o}", "by_reason", by, "last", last);
}

static void on_config_dump(struct rp_proxy *p, h2o_req_t *req)
{
	const struct rp_generation *g = p->published;
	json_t *j = json_pack("{s:s,s:b,s:{s:b,s:s,s:s}}", "node_id", p->opts.node_id, "ready",
			      p->ready && g, "control_plane", "connected", p->sub.connected,
			      "server", rp_sub_server(&p->sub), "last_error",
			      p->sub.connected ? "" : p->sub.last_error);
	add_cluster_fields(p, j);
	json_object_set_new(json_object_get(j, "control_plane"), "tls", tls_json(p));
	json_object_set_new(json_object_get(j, "control_plane"), "failures", faults_json(&p->sub));
	if (p->last_nack_version || p->last_nack[0])
		json_object_set_new(j, "last_nack",
				    json_pack("{s:I,s:s}", "version",
					      (json_int_t)p->last_nack_version, "error",
					      p->last_nack));
	if (!g) {
		json_object_set_new(j, "version", json_null());
		respond_json(req, 200, j);
		return;
	}
	const Raftplane__Snapshot *s = g->snap;
	json_object_set_new(j, "version", rp_json_u64((uint64_t)g->version));
	json_object_set_new(j, "revision", rp_json_u64((uint64_t)g->revision));
	json_object_set_new(j, "server", json_string(g->server));
	json_object_set_new(j, "source", json_string(p->from_cache ? "cache" : "server"));
	json_object_set_new(j, "applied_at", rp_json_u64((uint64_t)g->applied_at));
	json_t *ls = json_array(), *rs = json_array(), *cs = json_array();
	for (size_t i = 0; i < s->n_listeners; i++) {
		const Raftplane__Listener *l = s->listeners[i];
		json_t *names = json_array();
		for (size_t k = 0; k < g->listeners[i].n_routes; k++)
			json_array_append_new(names, json_string(g->listeners[i].routes[k]->name));
		json_array_append_new(ls,
				      json_pack("{s:s,s:I,s:s,s:i,s:o}", "name", l->name, "version",
						(json_int_t)l->version, "address", l->address,
						"port", (int)l->port, "routes", names));
	}
	for (size_t i = 0; i < s->n_routes; i++)
		json_array_append_new(rs, route_json(s->routes[i]));
	for (size_t i = 0; i < s->n_clusters; i++)
		json_array_append_new(cs, cluster_json(s->clusters[i], &g->clusters[i]));
	json_object_set_new(j, "listeners", ls);
	json_object_set_new(j, "routes", rs);
	json_object_set_new(j, "clusters", cs);
	respond_json(req, 200, j);
}

/* ---- /stats and /metrics -------------------------------------------------- */

static json_t *classes_json(rp_counter_t *status)
{
	static const char *const names[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	json_t *o = json_object();
	for (int i = 0; i < 6; i++)
		json_object_set_new(o, names[i], rp_json_u64((uint64_t)rp_get(&status[i])));
	return o;
}

static const struct rp_cluster *find_gen_cluster(const struct rp_generation *g, const char *name)
{
	for (size_t i = 0; g && i < g->n_clusters; i++)
		if (strcmp(g->clusters[i].name, name) == 0)
			return &g->clusters[i];
	return NULL;
}

/* ---- telemetry ------------------------------------------------------------ */

static json_t *telemetry_json(const struct rp_proxy *p)
{
	const struct rp_reporter *r = p->reporter;
	if (!r)
		return json_pack("{s:b,s:i}", "enabled", 0, "interval_ms", 0);
	char instance[24];
	snprintf(instance, sizeof instance, "%" PRIu64, r->instance);
	json_t *results = json_object();
	for (int i = 0; i < RP_REPORT__N; i++)
		json_object_set_new(results, rp_report_result_names[i], rp_json_u64(r->results[i]));
	unsigned interval = rp_sub_report_interval(&p->sub);
	return json_pack("{s:b,s:i,s:s,s:s,s:s?,s:o,s:s,s:o,s:o}", "enabled", 1, "interval_ms",
			 (int)interval, "server", interval ? rp_sub_server(&p->sub) : "",
			 "last_result",
			 r->last_result >= 0 ? rp_report_result_names[r->last_result] : "none",
			 "last_error", r->last_error[0] ? r->last_error : NULL, "seq",
			 rp_json_u64(r->seq), "instance", instance, "reports", results, "truncated",
			 rp_json_u64(r->truncated));
}

static void telemetry_metrics(const struct rp_proxy *p, struct rp_buf *b)
{
	const struct rp_reporter *r = p->reporter;
	rp_buf_printf(b, "# TYPE raftplane_proxy_reports_total counter\n");
	for (int i = 0; i < RP_REPORT__N; i++)
		rp_buf_printf(b, "raftplane_proxy_reports_total{result=\"%s\"} %" PRIu64 "\n",
			      rp_report_result_names[i], r ? r->results[i] : 0);
	rp_buf_printf(b,
		      "# TYPE raftplane_proxy_report_last_seq gauge\n"
		      "raftplane_proxy_report_last_seq %" PRIu64 "\n"
		      "# TYPE raftplane_proxy_report_interval_ms gauge\n"
		      "raftplane_proxy_report_interval_ms %u\n"
		      "# TYPE raftplane_proxy_report_truncated_total counter\n"
		      "raftplane_proxy_report_truncated_total %" PRIu64 "\n",
		      r ? r->last_seq : 0, r ? rp_sub_report_interval(&p->sub) : 0,
		      r ? r->truncated : 0);
}

static void on_stats(struct rp_proxy *p, h2o_req_t *req)
{
	const struct rp_generation *g = p->published;
	struct rp_global_stats *s = &rp_gstats;
	json_t *j = json_pack("{s:s,s:o,s:b,s:{s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:o}}", "node_id",
			      p->opts.node_id, "version",
			      g ? rp_json_u64((uint64_t)g->version) : json_null(),
			      "control_plane_connected", p->sub.connected, "updates", "applied",
			      (json_int_t)rp_get(&s->updates_applied), "rejected",
			      (json_int_t)rp_get(&s->updates_rejected), "downstream",
			      "connections_total", (json_int_t)rp_get(&s->downstream_cx_total),
			      "active_connections", (json_int_t)rp_get(&s->downstream_cx_active),
			      "requests", (json_int_t)rp_get(&s->rq_total), "no_route",
			      (json_int_t)rp_get(&s->no_route), "no_listener",
			      (json_int_t)rp_get(&s->no_listener), "responses",
			      classes_json(s->status));
	json_t *ds = json_object_get(j, "downstream");
	json_object_set_new(ds, "bad_requests", rp_json_u64((uint64_t)rp_get(&s->bad_requests)));
	json_object_set_new(ds, "loops", rp_json_u64((uint64_t)rp_get(&s->loops)));
	json_object_set_new(ds, "client_gone", rp_json_u64((uint64_t)rp_get(&s->client_gone)));
	static struct rp_stats *v[4096];
	json_t *routes = json_object(), *clusters = json_object();
	size_t n = rp_stats_list(RP_STATS_ROUTE, v, 4096);
	for (size_t i = 0; i < n; i++)
		json_object_set_new(routes, v[i]->name, rp_stats_json(v[i]));
	n = rp_stats_list(RP_STATS_CLUSTER, v, 4096);
	for (size_t i = 0; i < n; i++) {
		json_t *o = rp_stats_json(v[i]);
		const struct rp_cluster *c = find_gen_cluster(g, v[i]->name);
		if (c)
			json_object_set_new(o, "endpoints", endpoints_json(c));
		json_object_set_new(clusters, v[i]->name, o);
	}
	json_object_set_new(j, "routes", routes);
	json_object_set_new(j, "clusters", clusters);
	json_object_set_new(j, "generations_live",
			    rp_json_u64((uint64_t)rp_get(&s->generations_live)));
	json_object_set_new(j, "cache",
			    json_pack("{s:I,s:I}", "writes", (json_int_t)rp_get(&s->cache_writes),
				      "errors", (json_int_t)rp_get(&s->cache_errors)));
	json_object_set_new(j, "telemetry", telemetry_json(p));
	respond_json(req, 200, j);
}

static struct rp_admin *the_admin; /* one per process */

/* Connections refused at accept by listener and reason (net/connlimit.h). */
static void conn_metrics(struct rp_proxy *p, struct rp_buf *b)
{
	struct rp_connlimit_stats st[2];
	rp_connlimit_stats(&p->traffic_conns, &st[0]);
	rp_connlimit_stats(&the_admin->limits, &st[1]);
	static const char *const listener[2] = {"traffic", "admin"};
	rp_buf_printf(b, "# TYPE raftplane_proxy_connections_refused_total counter\n");
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < RP_CONN_REFUSE__N; i++)
			rp_buf_printf(b,
				      "raftplane_proxy_connections_refused_total{listener=\"%s\","
				      "reason=\"%s\"} %lu\n",
				      listener[k], rp_conn_refuse_names[i],
				      (unsigned long)st[k].refused[i]);
}

static void on_metrics(struct rp_proxy *p, h2o_req_t *req)
{
	const struct rp_generation *g = p->published;
	struct rp_global_stats *s = &rp_gstats;
	struct rp_buf b = {0};
	static const char *const names[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_snapshot_version gauge\n"
		      "raftplane_proxy_snapshot_version %" PRIu64 "\n",
		      g ? g->version : 0);
	rp_buf_printf(&b, "# TYPE raftplane_proxy_ready gauge\nraftplane_proxy_ready %d\n",
		      p->ready && g);
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_control_plane_connected gauge\n"
		      "raftplane_proxy_control_plane_connected %d\n",
		      p->sub.connected);
	rp_buf_printf(&b, "# TYPE raftplane_proxy_control_plane_failures_total counter\n");
	for (int k = 0; k < RP_SUB_F_N; k++)
		rp_buf_printf(&b,
			      "raftplane_proxy_control_plane_failures_total{reason=\"%s\"} %lu\n",
			      rp_sub_fault_name(k), (unsigned long)p->sub.faults[k]);
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_config_updates_total counter\n"
		      "raftplane_proxy_config_updates_total{result=\"applied\"} %lu\n"
		      "raftplane_proxy_config_updates_total{result=\"rejected\"} %lu\n",
		      (unsigned long)rp_get(&s->updates_applied),
		      (unsigned long)rp_get(&s->updates_rejected));
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_downstream_active_connections gauge\n"
		      "raftplane_proxy_downstream_active_connections %lu\n",
		      (unsigned long)rp_get(&s->downstream_cx_active));
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_downstream_connections_total counter\n"
		      "raftplane_proxy_downstream_connections_total %lu\n",
		      (unsigned long)rp_get(&s->downstream_cx_total));
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_requests_total counter\n"
		      "raftplane_proxy_requests_total %lu\n",
		      (unsigned long)rp_get(&s->rq_total));
	rp_buf_printf(&b, "# TYPE raftplane_proxy_responses_total counter\n");
	for (int i = 0; i < 6; i++)
		rp_buf_printf(&b, "raftplane_proxy_responses_total{class=\"%s\"} %lu\n", names[i],
			      (unsigned long)rp_get(&s->status[i]));
	rp_buf_printf(&b,
		      "# TYPE raftplane_proxy_no_route_total counter\n"
		      "raftplane_proxy_no_route_total %lu\n",
		      (unsigned long)rp_get(&s->no_route));
	static struct rp_stats *v[4096];
	size_t n = rp_stats_list(RP_STATS_ROUTE, v, 4096);
	rp_stats_prometheus(v, n, RP_STATS_ROUTE, &b);
	n = rp_stats_list(RP_STATS_CLUSTER, v, 4096);
	rp_stats_prometheus(v, n, RP_STATS_CLUSTER, &b);
	rp_buf_printf(&b, "# TYPE raftplane_proxy_endpoint_in_rotation gauge\n");
	uint64_t now = rp_now_ms();
	for (size_t i = 0; g && i < g->n_clusters; i++)
		for (size_t k = 0; k < g->clusters[i].n_eps; k++)
			rp_buf_printf(&b,
				      "raftplane_proxy_endpoint_in_rotation{cluster=\"%s\","
				      "endpoint=\"%s\"} %d\n",
				      g->clusters[i].name, g->clusters[i].eps[k].hostport,
				      rp_health_usable(g->clusters[i].health[k], now));
	tls_metrics(p, &b);
	conn_metrics(p, &b);
	telemetry_metrics(p, &b);
	if (b.oom) {
		rp_buf_free(&b);
		respond(req, 503, "text/plain", "out of memory\n", 14);
		return;
	}
	char *body = h2o_mem_alloc_pool(&req->pool, b.len ? b.len : 1);
	memcpy(body, b.p, b.len);
	respond(req, 200, "text/plain; version=0.0.4", body, b.len);
	rp_buf_free(&b);
}

/* ---- server --------------------------------------------------------------- */

static int path_is(h2o_req_t *req, const char *s)
{
	size_t n = strlen(s);
	return req->path_normalized.len == n && memcmp(req->path_normalized.base, s, n) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct rp_proxy *p = *(struct rp_proxy **)(self + 1);
	if (path_is(req, "/ready"))
		on_ready(p, req);
	else if (path_is(req, "/config_dump"))
		on_config_dump(p, req);
	else if (path_is(req, "/stats"))
		on_stats(p, req);
	else if (path_is(req, "/metrics"))
		on_metrics(p, req);
	else if (path_is(req, "/healthz"))
		respond(req, 200, "text/plain", "ok\n", 3);
	else
		respond(req, 404, "text/plain", "not found\n", 10);
	return 0;
}

static void on_conn_closed(void *arg)
{
	struct rp_admin *a = arg;
	a->conns--;
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct rp_admin *a = listener->data;
	struct rp_accept_opts o = {.limits = &a->limits,
				   .on_close = on_conn_closed,
				   .close_arg = a};
	if (status == 0 && rp_accept_http(listener, &a->accept_ctx, &o) == 0)
		a->conns++;
}

int rp_admin_start(struct rp_admin *a, struct rp_proxy *p, const char *addr, char *err,
		   size_t errlen)
{
	struct sockaddr_storage sa;
	int rv;
	if (rp_parse_hostport(addr, &sa) != 0) {
		snprintf(err, errlen, "--admin %s: not an IP:PORT", addr);
		return -1;
	}
	struct rp_connlimit_config lc = {.per_ip = p->opts.admin_max_conns_per_ip,
					 .what = "admin",
					 .per_ip_flag = "--admin-max-conns-per-ip"};
	if (rp_connlimit_init(&a->limits, &lc, 0) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	the_admin = a;
	h2o_config_init(&a->config);
	h2o_hostconf_t *host =
		h2o_config_register_host(&a->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	h2o_handler_t *h = h2o_create_handler(path, sizeof *h + sizeof(struct rp_proxy *));
	*(struct rp_proxy **)(h + 1) = p;
	h->on_req = on_req;
	h2o_context_init(&a->ctx, p->loop, &a->config);
	a->accept_ctx.ctx = &a->ctx;
	a->accept_ctx.hosts = a->config.hosts;
	if ((rv = rp_listen(p->loop, &a->listener, a, (struct sockaddr *)&sa, 128, on_accept)) !=
	    0) {
		snprintf(err, errlen, "--admin %s: %s", addr, uv_strerror(rv));
		return -1;
	}
	a->started = 1;
	return 0;
}

void rp_admin_close(struct rp_admin *a)
{
	if (a->started)
		uv_close((uv_handle_t *)&a->listener, NULL);
	a->started = 0;
}
