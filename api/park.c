/* Parked requests (watch, subscribe, rollout waits) notice their client
 * leaving.
 *
 * A client that closes its connection is seen at once through a close
 * watch (net/closewatch.h). A client that vanishes without a FIN (host
 * gone, cable pulled, NAT state dropped) is found by TCP keepalive, turned on
 * here for every parked socket: first probe after KEEPIDLE_S seconds of
 * silence, then every KEEPINTVL_S, dead after KEEPCNT unanswered probes, so
 * at most KEEPIDLE_S + KEEPINTVL_S * KEEPCNT = 35 s. The kernel then
 * reports an error on the socket, which the close watch sees like a close.
 * TCP_USER_TIMEOUT bounds an answer written to a dead peer the same way.
 * A live idle peer costs one probe per KEEPIDLE_S. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "closewatch.h"
#include "park.h"

#define KEEPIDLE_S 20
#define KEEPINTVL_S 5
#define KEEPCNT 3

static void on_client_gone(struct rp_closewatch *w, void *data)
{
	struct rp_call *c = data;
	(void)w;
	/* rp_call_begin_response() releases everything parked (queues, slots,
	 * timers, this watch); the write then fails and h2o disposes the
	 * request. */
	rp_respond_raw(c, 499, "text/plain", "", 0, 0);
}

static void keepalive(h2o_req_t *req)
{
	if (!req->conn->callbacks->get_socket)
		return;
	h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
	int fd = sock ? h2o_socket_get_fd(sock) : -1;
	if (fd < 0)
		return;
	int on = 1, idle = KEEPIDLE_S, intvl = KEEPINTVL_S, cnt = KEEPCNT;
	unsigned user_ms = (KEEPIDLE_S + KEEPINTVL_S * KEEPCNT) * 1000;
	/* best effort: a socket that refuses keeps the old behaviour */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof user_ms);
}

static void start_watch(struct rp_call *c)
{
	keepalive(c->req);
	c->cw = rp_closewatch_create(c->api->loop, c->req, on_client_gone, c);
}

/* Start the watches whose delay is over; the list is in due order. */
static void on_cw_timer(uv_timer_t *t)
{
	struct rp_api *api = t->data;
	uint64_t now = uv_now(api->loop);
	while (api->cw_head && api->cw_head->cw_due <= now) {
		struct rp_call *c = api->cw_head;
		rp_call_watch_dequeue(c);
		start_watch(c); /* a gone client answers 499 from here, later */
	}
	if (api->cw_head)
		uv_timer_start(&api->cw_timer, on_cw_timer, api->cw_head->cw_due - now, 0);
}

void rp_call_watch_close(struct rp_call *c)
{
	struct rp_api *api = c->api;
	if (c->cw || c->cw_pending || !c->req || c->responded)
		return;
	if (!api->cw_timer_init) {
		uv_timer_init(api->loop, &api->cw_timer);
		api->cw_timer.data = api;
		api->cw_timer_init = 1;
	}
	c->cw_due = uv_now(api->loop) + PARK_WATCH_DELAY_MS;
	c->cw_pending = 1;
	c->cw_prev = api->cw_tail;
	c->cw_next = NULL;
	if (api->cw_tail)
		api->cw_tail->cw_next = c;
	else
		api->cw_head = c;
	api->cw_tail = c;
	if (api->cw_head == c)
		uv_timer_start(&api->cw_timer, on_cw_timer, PARK_WATCH_DELAY_MS, 0);
}

void rp_park_close(struct rp_api *api)
{
	if (api->cw_timer_init) {
		uv_timer_stop(&api->cw_timer);
		uv_close((uv_handle_t *)&api->cw_timer, NULL);
		api->cw_timer_init = 0;
	}
}
