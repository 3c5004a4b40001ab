/* Active health checks (main loop) and passive outlier ejection (workers). */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "raftplane/log.h"

struct rp_outlier_config rp_outlier = {5, 10000, 50};

static struct rp_health *registry; /* main thread only */

uint64_t rp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- active checks ------------------------------------------------------ */

static void set_verdict(struct rp_health *h, int ok, const char *why)
{
	if (atomic_load(&h->hc_ok) == ok)
		return;
	atomic_store(&h->hc_ok, ok);
	atomic_store_explicit(&h->hc_changed_ms, rp_now_ms(), memory_order_relaxed);
	if (ok)
		rp_log_info("health: %s in cluster %s is healthy again", h->hostport, h->cluster);
	else
		rp_log_warn("health: %s in cluster %s is unhealthy (%s)", h->hostport, h->cluster,
			    why);
}

static void on_check_done(void *arg, int err, const struct rp_http_response *res)
{
	struct rp_health *h = arg;
	h->req = NULL;
	h->checks++;
	int ok = err == 0 && res->status >= 200 && res->status < 300;
	if (ok) {
		h->fail_run = 0;
		if (++h->ok_run >= h->hc.healthy_threshold)
			set_verdict(h, 1, NULL);
		return;
	}
	h->check_failures++;
	if (err)
		snprintf(h->last_error, sizeof h->last_error, "%s",
			 err == RP_HTTP_ERR_CONNECT ? "connect failed" : "no valid answer in time");
	else
		snprintf(h->last_error, sizeof h->last_error, "HTTP %d", res->status);
	h->ok_run = 0;
	if (++h->fail_run >= h->hc.unhealthy_threshold)
		set_verdict(h, 0, h->last_error);
}

static void on_check_timer(uv_timer_t *t)
{
	struct rp_health *h = t->data;
	if (h->req || !h->hc_on)
		return; /* previous check still running */
	if (rp_http_request(t->loop, h->hostport, "GET", h->hc.path,
			    "User-Agent: raftplane-proxy-health\r\n", NULL, 0, h->hc.timeout_ms,
			    on_check_done, h, &h->req) != 0) {
		h->req = NULL;
		on_check_done(h, RP_HTTP_ERR_CONNECT, NULL);
	}
}

static void configure(struct rp_health *h, const Raftplane__HealthCheck *hc)
{
	if (!hc) {
		if (h->hc_on) {
			h->hc_on = 0;
			uv_timer_stop(&h->timer);
			if (h->req) {
				rp_http_cancel(h->req);
				h->req = NULL;
			}
			set_verdict(h, 1, NULL);
		}
		return;
	}
	struct rp_hc_config c = {
		.interval_ms = hc->interval_ms ? hc->interval_ms : 1000,
		.timeout_ms = hc->timeout_ms ? hc->timeout_ms : 500,
		.unhealthy_threshold = hc->unhealthy_threshold ? hc->unhealthy_threshold : 3,
		.healthy_threshold = hc->healthy_threshold ? hc->healthy_threshold : 2};
	snprintf(c.path, sizeof c.path, "%s",
		 hc->path && hc->path[0] == '/' ? hc->path : "/healthz");
	if (h->hc_on && memcmp(&c, &h->hc, sizeof c) == 0)
		return;
	h->hc = c;
	h->hc_on = 1;
	/* first check soon, spread over a short window */
	uint64_t first = (uint64_t)(rand() % (int)(c.interval_ms < 100 ? c.interval_ms : 100));
	uv_timer_start(&h->timer, on_check_timer, first, c.interval_ms);
}

struct rp_health *rp_health_get(uv_loop_t *loop, const char *cluster, const char *hostport,
				const Raftplane__HealthCheck *hc)
{
	struct rp_health *h;
	for (h = registry; h; h = h->next)
		if (strcmp(h->cluster, cluster) == 0 && strcmp(h->hostport, hostport) == 0)
			break;
	if (!h) {
		h = calloc(1, sizeof *h);
		if (!h)
			return NULL;
		snprintf(h->cluster, sizeof h->cluster, "%s", cluster);
		snprintf(h->hostport, sizeof h->hostport, "%s", hostport);
		atomic_init(&h->hc_ok, 1);
		atomic_init(&h->hc_changed_ms, rp_now_ms());
		uv_timer_init(loop, &h->timer);
		h->timer.data = h;
		h->next = registry;
		registry = h;
	}
	h->refs++;
	configure(h, hc);
	return h;
}

static void on_timer_closed(uv_handle_t *t)
{
	free(t->data);
}

void rp_health_put(struct rp_health *h)
{
	if (!h || --h->refs > 0)
		return;
	for (struct rp_health **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	if (h->req)
		rp_http_cancel(h->req);
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

/* ---- state for telemetry -------------------------------------------------- */

enum rp_health_state rp_health_state(struct rp_health *h, uint64_t now_ms, uint64_t *since_ms,
				     char *reason, size_t len)
{
	uint64_t changed = atomic_load_explicit(&h->hc_changed_ms, memory_order_relaxed);
	uint64_t until = atomic_load(&h->ejected_until_ms); /* seq_cst: pairs with the CAS */
	reason[0] = '\0';
	if (!atomic_load_explicit(&h->hc_ok, memory_order_relaxed)) {
		*since_ms = changed;
		snprintf(reason, len, "health check: %s",
			 h->last_error[0] ? h->last_error : "failed");
		return RP_HEALTH_UNHEALTHY;
	}
	if (now_ms < until) {
		uint64_t at = atomic_load(&h->ejected_at_ms);
		*since_ms = at > changed ? at : changed;
		snprintf(reason, len, "ejected after %u consecutive errors",
			 atomic_load(&h->eject_run));
		return RP_HEALTH_EJECTED;
	}
	/* healthy since the checks passed again or the last ejection ended */
	*since_ms = until > changed ? until : changed;
	return RP_HEALTH_HEALTHY;
}

size_t rp_health_list(struct rp_health **out, size_t max)
{
	size_t n = 0;
	for (struct rp_health *h = registry; h; h = h->next, n++)
		if (n < max)
			out[n] = h;
	return n;
}

/* ---- passive ejection ---------------------------------------------------- */

int rp_health_passive(struct rp_health *const *peers, size_t n, size_t idx, int failed,
		      struct rp_stats *cluster_stats)
{
	struct rp_health *h = peers[idx];
	atomic_fetch_add_explicit(&h->requests, 1, memory_order_relaxed);
	if (!failed) {
		if (atomic_load_explicit(&h->consecutive_errors, memory_order_relaxed))
			atomic_store_explicit(&h->consecutive_errors, 0, memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&h->errors, 1, memory_order_relaxed);
	unsigned run = atomic_fetch_add(&h->consecutive_errors, 1) + 1;
	if (rp_outlier.consecutive == 0 || run < rp_outlier.consecutive)
		return 0;
	uint64_t now = rp_now_ms();
	size_t ejected = 0;
	for (size_t i = 0; i < n; i++)
		if (now < atomic_load(&peers[i]->ejected_until_ms))
			ejected++;
	if ((ejected + 1) * 100 > rp_outlier.max_percent * n)
		return 0; /* would take too much of the cluster out */
	uint64_t until = atomic_load(&h->ejected_until_ms);
	if (now < until)
		return 0; /* already out */
	/* written before the CAS publishes the ejection: a reader that sees it
	 * in force sees these, or those of a racing ejection that lost */
	atomic_store(&h->ejected_at_ms, now);
	atomic_store(&h->eject_run, run);
	if (!atomic_compare_exchange_strong(&h->ejected_until_ms, &until,
					    now + rp_outlier.eject_ms))
		return 0; /* another worker did it */
	atomic_store(&h->consecutive_errors, 0);
	atomic_fetch_add(&h->ejections, 1);
	if (cluster_stats)
		rp_inc(&cluster_stats->ejections);
	rp_log_warn("outlier: ejected %s from cluster %s for %u ms after %u errors in a row",
		    h->hostport, h->cluster, rp_outlier.eject_ms, run);
	return 1;
}
