/* Subscription client: POST /v1/subscribe in a loop.
 *
 * States: polling (a request in flight) -> answer 200: handed to the app
 * (awaiting_answer) -> app ACKs/NACKs -> polling; 304 -> polling; error ->
 * backoff timer (next server) -> polling. Exactly one of req, retry timer or
 * awaiting_answer is active at a time unless stopped. */
#include "subscription.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "raftplane/err.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static void poll_now(struct rp_sub_client *c);

int rp_sub_init(struct rp_sub_client *c, uv_loop_t *loop, const char *node_id,
		const char *servers, unsigned wait_ms, rp_sub_snapshot_cb cb)
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
			snprintf(c->last_error, sizeof c->last_error, "server \"%s\" is not IP:PORT",
				 c->servers[c->n_servers]);
			return -1;
		}
		c->n_servers++;
		p += len + (comma ? 1 : 0);
	}
	if (c->n_servers == 0) {
		snprintf(c->last_error, sizeof c->last_error, "no servers");
		return -1;
	}
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

/* Back off with jitter and move to the next server. */
static void fail_over(struct rp_sub_client *c, const char *why)
{
	snprintf(c->last_error, sizeof c->last_error, "%s: %s", c->servers[c->cur], why);
	c->connected = 0;
	c->errors++;
	c->failures++;
	c->cur = (c->cur + 1) % c->n_servers;
	unsigned shift = c->failures < 6 ? c->failures : 6;
	unsigned base = BACKOFF_MIN_MS << shift;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	/* a full round over the servers first goes quickly, then backs off */
	if (c->failures <= c->n_servers)
		base = BACKOFF_MIN_MS / 2;
	unsigned delay = base / 2 + (unsigned)(rand() % (int)(base / 2 + 1));
	if (!c->stopped)
		uv_timer_start(&c->retry, on_retry, delay, 0);
}

static void on_answer(void *arg, int err, const struct rp_http_response *res)
{
	struct rp_sub_client *c = arg;
	c->req = NULL;
	if (c->stopped)
		return;
	if (err) {
		fail_over(c, err == RP_ERR_NO_LEADER ? "connection failed" : "connection lost");
		return;
	}
	if (res->status == 304) {
		c->connected = 1;
		c->failures = 0;
		poll_now(c);
		return;
	}
	if (res->status != 200) {
		char why[128];
		snprintf(why, sizeof why, "HTTP %d: %.*s", res->status,
			 (int)(res->body_len < 80 ? res->body_len : 80), res->body);
		fail_over(c, why);
		return;
	}
	Raftplane__Snapshot *snap =
	    raftplane__snapshot__unpack(NULL, res->body_len, (const uint8_t *)res->body);
	if (!snap || strcmp(snap->node_id, c->node_id) != 0) {
		if (snap)
			raftplane__snapshot__free_unpacked(snap, NULL);
		fail_over(c, "malformed snapshot");
		return;
	}
	c->connected = 1;
	c->failures = 0;
	if (c->has_version && snap->version <= c->version) {
		/* never go backwards, whatever a server says */
		raftplane__snapshot__free_unpacked(snap, NULL);
		poll_now(c);
		return;
	}
	c->snapshots++;
	c->awaiting_answer = 1;
	c->on_snapshot(c, snap, res->body, res->body_len);
	raftplane__snapshot__free_unpacked(snap, NULL);
}

static void poll_now(struct rp_sub_client *c)
{
	Raftplane__SubscribeRequest r;
	unsigned char buf[1024];
	if (c->stopped || c->req || c->awaiting_answer)
		return;
	raftplane__subscribe_request__init(&r);
	r.node_id = c->node_id;
	r.version = c->version;
	r.has_version = c->has_version;
	r.has_nack = c->has_nack;
	r.nack_version = c->has_nack ? c->nack_version : 0;
	r.nack_error = c->has_nack ? c->nack_error : "";
	r.wait_ms = c->wait_ms;
	size_t len = raftplane__subscribe_request__pack(&r, buf);
	c->polls++;
	if (rp_http_request(c->loop, c->servers[c->cur], "POST", "/v1/subscribe",
			    "Content-Type: application/x-protobuf\r\n", buf, len, c->wait_ms + 5000,
			    on_answer, c, &c->req) != 0) {
		c->req = NULL;
		fail_over(c, "cannot connect");
	}
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
	c->awaiting_answer = 0;
	c->version = version;
	c->has_version = 1;
	if (c->has_nack && c->nack_version <= version) {
		c->has_nack = 0;
		c->nack_version = 0;
		c->nack_error[0] = '\0';
	}
	poll_now(c);
}

void rp_sub_nack(struct rp_sub_client *c, uint64_t version, const char *error)
{
	c->awaiting_answer = 0;
	c->has_nack = 1;
	c->nack_version = version;
	snprintf(c->nack_error, sizeof c->nack_error, "%s", error && *error ? error : "rejected");
	poll_now(c);
}

void rp_sub_stop(struct rp_sub_client *c)
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
