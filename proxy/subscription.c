/* Subscription client: POST /v1/subscribe in a loop.
 *
 * States: polling (a request in flight) -> answer 200: handed to the app
 * (awaiting_answer) -> app ACKs/NACKs -> polling; 304 -> polling; error ->
 * backoff timer (next server) -> polling.
 *
 * Invariants (asserted):
 *  1. At most one of req (the poll in flight), the retry timer and
 *     awaiting_answer is active at a time, and exactly one unless stopped or
 *     inside a callback: one outstanding poll at a time, and none while the
 *     application holds an offered snapshot.
 *  2. The application answers only the snapshot offered last, once:
 *     rp_sub_ack/rp_sub_nack need awaiting_answer and offered_version.
 *  3. Within a cluster the version held never goes backwards: a snapshot of
 *     the held cluster is offered only above the version held, so an ACK
 *     that is not of a foreign cluster raises it.
 *
 * Pacing: a useless answer (a NACKed or stale snapshot, a 304) that came
 * within FAST_MS of the poll counts as fast; from the second fast answer in a row
 * the next poll waits FAST_BACKOFF_MS << n (at most BACKOFF_MAX_MS), so a
 * server that answers at once never makes a tight loop. While not connected
 * the poll has wait 0 (a probe): connected is known after one round trip.
 *
 * Faults: every failure (enum rp_sub_fault) is counted by kind and kept
 * with its reason and time in last_fault after the client has moved on, so
 * that /config_dump and /metrics say why a server was left. A server that
 * answers a version not above the one the request reported breaks rule 2 of
 * docs/protocol.md and is left too (its answer ignored). Answers are limited
 * to max_snapshot bytes before buffering (net/client.c).
 *
 * Cluster identity: versions are numbers of one cluster (cluster_id). A
 * snapshot from another cluster is handed over even with a lower version
 * (the control plane was rebuilt); once ACKed it becomes the held cluster.
 * A NACK remembers the cluster it refers to; a request whose NACK is of
 * another cluster than the version held claims no version.
 *
 * Telemetry: every 200 or 304 answer sets the report interval from its
 * header (absent or not a number: 0); a failure moves to the next server
 * and clears it, so reports only go to a server that announced an interval
 * and is the one subscribed to. */
#include "subscription.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raftplane/log.h"
#include "client.h"
#include "utf8.h"
#include "wire.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define FAST_MS 500
#define FAST_BACKOFF_MS 100

static void poll_now(struct rp_sub_client *c);

/* Invariant 1: at most one of the three is active. */
static void assert_one_active(struct rp_sub_client *c)
{
	int n = (c->req != NULL) + (c->awaiting_answer != 0) +
		(!c->stopped && uv_is_active((uv_handle_t *)&c->retry));
	assert(n <= 1);
	(void)n;
}

int rp_sub_init(struct rp_sub_client *c, uv_loop_t *loop, const char *node_id, const char *servers,
		unsigned wait_ms, rp_sub_snapshot_cb cb)
{
	struct sockaddr_storage sa;
	memset(c, 0, sizeof *c);
	c->loop = loop;
	c->wait_ms = wait_ms;
	c->on_snapshot = cb;
	if (strlen(node_id) > RP_MAX_NAME) {
		snprintf(c->last_error, sizeof c->last_error, "node id too long");
		return -1;
	}
	snprintf(c->node_id, sizeof c->node_id, "%s", node_id);
	const char *p = servers;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (c->n_servers == RP_SUB_MAX_SERVERS || len == 0 || len >= sizeof c->servers[0]) {
			snprintf(c->last_error, sizeof c->last_error, "bad --servers list");
			return -1;
		}
		memcpy(c->servers[c->n_servers], p, len);
		c->servers[c->n_servers][len] = '\0';
		if (rp_parse_hostport(c->servers[c->n_servers], &sa) != 0) {
			snprintf(c->last_error, sizeof c->last_error,
				 "server \"%s\" is not IP:PORT", c->servers[c->n_servers]);
			return -1;
		}
		c->n_servers++;
		p += len + (comma ? 1 : 0);
	}
	if (c->n_servers == 0) {
		snprintf(c->last_error, sizeof c->last_error, "no servers");
		return -1;
	}
	c->max_snapshot = RP_SUB_DEFAULT_MAX_SNAPSHOT;
	uv_timer_init(loop, &c->retry);
	c->retry.data = c;
	return 0;
}

const char *rp_sub_server(const struct rp_sub_client *c)
{
	return c->servers[c->cur];
}

static void on_retry(uv_timer_t *t)
{
	poll_now(t->data);
}

void rp_sub_set_tls(struct rp_sub_client *c, const struct rp_http_tls *tls)
{
	c->tls = tls;
}

unsigned rp_sub_report_interval(const struct rp_sub_client *c)
{
	return c->report_server == c->cur ? c->report_interval_ms : 0;
}

void rp_sub_on_interval(struct rp_sub_client *c, rp_sub_interval_cb cb, void *arg)
{
	c->on_interval = cb;
	c->interval_arg = arg;
}

static void set_interval(struct rp_sub_client *c, unsigned ms)
{
	if (c->report_interval_ms == ms && c->report_server == c->cur)
		return;
	c->report_interval_ms = ms;
	c->report_server = c->cur;
	if (c->on_interval)
		c->on_interval(c, c->interval_arg);
}

/* The interval announced in @res: digits only, clamped; 0 when absent or
 * not a number. */
static unsigned parse_interval(const struct rp_http_response *res)
{
	char v[32];
	if (!rp_http_header(res, RP_SUB_REPORT_HEADER, v, sizeof v) || !v[0])
		return 0;
	unsigned long long n = 0;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		n = n * 10 + (unsigned)(*p - '0');
		if (n > RP_SUB_REPORT_MAX_MS)
			n = RP_SUB_REPORT_MAX_MS;
	}
	return n < RP_SUB_REPORT_MIN_MS ? RP_SUB_REPORT_MIN_MS : (unsigned)n;
}

const char *rp_sub_fault_name(enum rp_sub_fault f)
{
	static const char *const names[RP_SUB_F_N] = {
		"connect",     "connection_lost", "timeout",       "bad_http", "too_large",
		"http_status", "bad_snapshot",    "stale_version", "tls"};
	return (unsigned)f < RP_SUB_F_N ? names[f] : "other";
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Back off with jitter and move to the next server. */
static void fail_over(struct rp_sub_client *c, enum rp_sub_fault kind, const char *why)
{
	snprintf(c->last_error, sizeof c->last_error, "%s: %s", c->servers[c->cur], why);
	snprintf(c->last_fault, sizeof c->last_fault, "%s", c->last_error);
	c->last_fault_kind = kind;
	c->last_fault_at = wall_ms();
	c->faults[kind]++;
	if (strcmp(why, c->logged_error) != 0) { /* each new kind of failure once */
		rp_log_warn("subscription: %s", c->last_error);
		snprintf(c->logged_error, sizeof c->logged_error, "%s", why);
	}
	c->connected = 0;
	c->errors++;
	c->failures++;
	unsigned next = (c->cur + 1) % c->n_servers;
	if (next != c->cur && c->has_nack) {
		/* A NACK is reported to the server whose snapshot it refuses only:
		 * a version another server offered may be one this one never had
		 * (a hostile or broken server's: the server would answer 503 while
		 * behind it, then 400 forever). The new server offers the newest
		 * version again, refused again if it is the same bad one. */
		c->has_nack = 0;
		c->nack_version = 0;
		c->nack_error[0] = '\0';
	}
	c->cur = next;
	set_interval(c, 0);
	unsigned shift = c->failures < 6 ? c->failures : 6;
	unsigned base = BACKOFF_MIN_MS << shift;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	/* a full round over the servers first goes quickly, then backs off */
	if (c->failures <= c->n_servers)
		base = BACKOFF_MIN_MS / 2;
	unsigned delay = base / 2 + (unsigned)(rand() % (int)(base / 2 + 1));
	assert(!c->req && !c->awaiting_answer); /* invariant 1 */
	if (!c->stopped)
		uv_timer_start(&c->retry, on_retry, delay, 0);
	assert_one_active(c);
}

/* Poll again now, or after a pause when answers keep coming at once. */
static void next_poll(struct rp_sub_client *c)
{
	if (c->fast < 2) {
		poll_now(c);
		return;
	}
	unsigned shift = c->fast - 2 < 6 ? c->fast - 2 : 6;
	unsigned base = FAST_BACKOFF_MS << shift;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	unsigned delay = base / 2 + (unsigned)(rand() % (int)(base / 2 + 1));
	assert(!c->req && !c->awaiting_answer); /* invariant 1 */
	if (!c->stopped)
		uv_timer_start(&c->retry, on_retry, delay, 0);
	assert_one_active(c);
}

/* An answer arrived: was it at once (probes excepted)? */
static void note_pace(struct rp_sub_client *c)
{
	c->quick = !c->probe && uv_now(c->loop) - c->sent_at < FAST_MS;
	c->connected = 1;
	c->failures = 0;
	c->logged_error[0] = '\0';
}

/* A useless answer (304, stale or refused snapshot): count it if quick. */
static void count_useless(struct rp_sub_client *c)
{
	c->fast = c->quick ? c->fast + 1 : 0;
}

static void on_snapshot_answer(struct rp_sub_client *c, const struct rp_http_response *res)
{
	Raftplane__Snapshot *snap = raftplane__snapshot__unpack(NULL, res->body_len,
								(const uint8_t *)res->body);
	char why[300];
	why[0] = '\0';
	if (!snap)
		snprintf(why, sizeof why, "malformed snapshot: %zu bytes that do not decode",
			 res->body_len);
	else if (strcmp(snap->node_id, c->node_id) != 0)
		snprintf(why, sizeof why, "malformed snapshot: for another node id (%zu bytes)",
			 strlen(snap->node_id));
	else if (snap->cluster_id[0] && !rp_cluster_id_valid(snap->cluster_id))
		snprintf(why, sizeof why, "malformed snapshot: bad cluster_id");
	if (why[0]) {
		if (snap)
			raftplane__snapshot__free_unpacked(snap, NULL);
		fail_over(c, RP_SUB_F_BAD_SNAPSHOT, why);
		return;
	}
	int other = snap->cluster_id[0] && c->cluster_id[0] &&
		    strcmp(snap->cluster_id, c->cluster_id);
	if (!other && c->has_version && snap->version <= c->version && c->claimed) {
		/* rule 2 broken: the request reported version, this server must not
		 * answer it or anything older. Ignore it and leave the server. */
		snprintf(why, sizeof why,
			 "stale snapshot: version %llu is not above the version %llu held "
			 "(ignored)",
			 (unsigned long long)snap->version, (unsigned long long)c->version);
		raftplane__snapshot__free_unpacked(snap, NULL);
		fail_over(c, RP_SUB_F_STALE, why);
		return;
	}
	note_pace(c);
	if (!other && c->has_version && snap->version <= c->version) {
		/* never go backwards within a cluster, whatever a server says */
		raftplane__snapshot__free_unpacked(snap, NULL);
		count_useless(c);
		next_poll(c);
		return;
	}
	if (other)
		rp_log_warn(
			"subscription: control plane cluster changed from %s to %s (server %s): "
			"offering its version %llu although version %llu of the old cluster is "
			"held",
			c->cluster_id, snap->cluster_id, c->servers[c->cur],
			(unsigned long long)snap->version, (unsigned long long)c->version);
	assert(other || !c->has_version || snap->version > c->version); /* invariant 3 */
	assert(!c->req && !c->awaiting_answer);                         /* invariant 1 */
	c->foreign = other;
	c->offered_version = snap->version;
	snprintf(c->offered_cluster, sizeof c->offered_cluster, "%s", snap->cluster_id);
	c->snapshots++;
	c->awaiting_answer = 1;
	c->on_snapshot(c, snap, res->body, res->body_len);
	raftplane__snapshot__free_unpacked(snap, NULL);
}

static void on_answer(void *arg, int err, const struct rp_http_response *res)
{
	struct rp_sub_client *c = arg;
	c->req = NULL;
	if (c->stopped)
		return;
	if (err == RP_HTTP_ERR_TLS) {
		fail_over(c, RP_SUB_F_TLS, rp_http_tls_error());
		return;
	}
	if (err) {
		const char *detail = rp_http_last_error();
		enum rp_sub_fault kind = RP_SUB_F_LINK;
		if (err == RP_HTTP_ERR_CONNECT)
			kind = RP_SUB_F_CONNECT;
		else if (err == RP_HTTP_ERR_TIMEOUT)
			kind = RP_SUB_F_TIMEOUT;
		else if (err == RP_HTTP_ERR_BAD_RESPONSE)
			/* net/client.c words every size refusal "over the limit" */
			kind = strstr(detail, "over the limit") ? RP_SUB_F_TOO_LARGE
								: RP_SUB_F_BAD_HTTP;
		char why[300];
		const char *what = rp_http_err_sent(err) ? "connection lost" : "connection failed";
		if (strcmp(detail, rp_http_strerror(err)) == 0 || strcmp(detail, what) == 0)
			snprintf(why, sizeof why, "%s", what);
		else
			snprintf(why, sizeof why, "%s: %s", what, detail);
		fail_over(c, kind, why);
		return;
	}
	if (res->status == 200 || res->status == 304)
		set_interval(c, parse_interval(res));
	if (c->stopped)
		return; /* closed by the interval callback */
	if (res->status == 304) {
		note_pace(c);
		count_useless(c);
		next_poll(c);
		return;
	}
	if (res->status != 200) {
		char why[300];
		int n = res->body_len < 240 ? (int)res->body_len : 240;
		snprintf(why, sizeof why, "HTTP %d: %.*s", res->status, n, res->body);
		for (char *q = why; *q; q++) /* a body is the server's text: one line */
			if ((unsigned char)*q < 0x20)
				*q = ' ';
		fail_over(c, RP_SUB_F_STATUS, why);
		return;
	}
	on_snapshot_answer(c, res);
}

static void poll_now(struct rp_sub_client *c)
{
	Raftplane__SubscribeRequest r;
	unsigned char buf[1024];
	if (c->stopped || c->req || c->awaiting_answer)
		return;
	assert(!uv_is_active((uv_handle_t *)&c->retry)); /* invariant 1 */
	raftplane__subscribe_request__init(&r);
	r.node_id = c->node_id;
	/* a NACK of another cluster's version: we hold nothing of that cluster */
	int nack_elsewhere = c->has_nack && strcmp(c->nack_cluster, c->cluster_id) != 0;
	r.cluster_id = nack_elsewhere ? c->nack_cluster : c->cluster_id;
	r.version = nack_elsewhere ? 0 : c->version;
	r.has_version = nack_elsewhere ? 0 : c->has_version;
	c->claimed = r.has_version;
	r.has_nack = c->has_nack;
	r.nack_version = c->has_nack ? c->nack_version : 0;
	r.nack_error = c->has_nack ? c->nack_error : "";
	c->probe = !c->connected;
	r.wait_ms = c->probe ? 0 : c->wait_ms;
	size_t len = raftplane__subscribe_request__pack(&r, buf);
	c->polls++;
	c->sent_at = uv_now(c->loop);
	if (rp_http_request_tls(c->tls, c->loop, c->servers[c->cur], "POST", "/v1/subscribe",
				"Content-Type: application/x-protobuf\r\n", buf, len,
				r.wait_ms + 5000, on_answer, c, &c->req) != 0) {
		c->req = NULL;
		fail_over(c, RP_SUB_F_CONNECT, "cannot connect");
	} else if (c->req) { /* (NULL: it failed at once, its callback ran) */
		rp_http_set_max_body(c->req, c->max_snapshot);
	}
	assert_one_active(c);
}

void rp_sub_set_cluster(struct rp_sub_client *c, const char *cluster_id)
{
	if (cluster_id && rp_cluster_id_valid(cluster_id))
		snprintf(c->cluster_id, sizeof c->cluster_id, "%s", cluster_id);
}

void rp_sub_start(struct rp_sub_client *c, int has_version, uint64_t version)
{
	c->has_version = has_version;
	c->version = version;
	c->cur = (unsigned)rand() % c->n_servers; /* spread proxies over servers */
	poll_now(c);
}

void rp_sub_ack(struct rp_sub_client *c, uint64_t version)
{
	assert(c->awaiting_answer && version == c->offered_version); /* invariant 2 */
	/* invariant 3: only a foreign cluster's version may be lower */
	assert(c->foreign || !c->has_version || version > c->version);
	c->awaiting_answer = 0;
	if (version == c->offered_version && c->offered_cluster[0] &&
	    strcmp(c->offered_cluster, c->cluster_id) != 0) {
		if (c->cluster_id[0]) {
			rp_log_warn("subscription: now following cluster %s (was %s) at version "
				    "%llu",
				    c->offered_cluster, c->cluster_id, (unsigned long long)version);
			snprintf(c->prev_cluster_id, sizeof c->prev_cluster_id, "%s",
				 c->cluster_id);
			c->cluster_switches++;
		}
		snprintf(c->cluster_id, sizeof c->cluster_id, "%s", c->offered_cluster);
	}
	c->foreign = 0;
	c->fast = 0;
	c->version = version;
	c->has_version = 1;
	if (c->has_nack &&
	    (c->nack_version <= version || strcmp(c->nack_cluster, c->cluster_id) != 0)) {
		c->has_nack = 0;
		c->nack_version = 0;
		c->nack_error[0] = '\0';
	}
	next_poll(c);
}

void rp_sub_nack(struct rp_sub_client *c, uint64_t version, const char *error)
{
	assert(c->awaiting_answer && version == c->offered_version); /* invariant 2 */
	c->awaiting_answer = 0;
	c->has_nack = 1;
	c->nack_version = version;
	snprintf(c->nack_cluster, sizeof c->nack_cluster, "%s",
		 version == c->offered_version ? c->offered_cluster : c->cluster_id);
	/* the server refuses NACK text that is not UTF-8 */
	rp_utf8_sanitize(c->nack_error, sizeof c->nack_error, error && *error ? error : "rejected");
	count_useless(c);
	next_poll(c);
}

void rp_sub_close(struct rp_sub_client *c)
{
	if (c->stopped)
		return;
	c->stopped = 1;
	if (c->req) {
		rp_http_cancel(c->req);
		c->req = NULL;
	}
	uv_timer_stop(&c->retry);
	uv_close((uv_handle_t *)&c->retry, NULL);
}
