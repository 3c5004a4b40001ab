/* raftplane-demo-backend: a tiny HTTP/1.1 upstream for the demo, the tests
 * and the benchmark. Answers every request with 200 and "NAME\n"; its
 * behaviour can be changed per request (headers) or for all requests
 * (control paths), so that tests can make it fail, slow or unhealthy.
 *
 *   request headers   x-backend-status: N     answer N instead of 200
 *                     x-backend-delay-ms: N   answer after N ms
 *   paths             /healthz                200 "ok" (503 while failing health)
 *                     /_big/N                 N bytes of body
 *                     /_control/status/N      answer N to every ordinary request (200: back)
 *                     /_control/delay/N       delay every ordinary request by N ms
 *                     /_control/health/fail   /healthz answers 503 ...
 *                     /_control/health/ok     ... and 200 again
 *                     /_control/count         {"requests":N,"health_checks":M}
 *   response headers  x-backend: NAME, x-seen-path: the request target,
 *                     x-seen-host, x-seen-xff (x-forwarded-for as received)
 */
#include <h2o.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "raftplane/log.h"

static const char usage[] =
	"usage: raftplane-demo-backend --listen IP:PORT --name NAME [--status N] [--delay-ms N]\n";

static struct {
	char name[128];
	int status;
	unsigned delay_ms;
	int health_fail;
	unsigned long requests, health_checks;
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	uv_tcp_t listener;
	uv_signal_t sigterm, sigint;
	char *big;
	size_t big_len;
} g;

struct delayed {
	uv_timer_t timer;
	h2o_req_t *req; /* NULL once h2o disposed the request */
	int status;
};

static void header(h2o_req_t *req, const char *name, const char *value, size_t len)
{
	h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, value,
			      len);
}

static void send_body(h2o_req_t *req, int status, const char *body, size_t len)
{
	req->res.status = status;
	req->res.reason = status < 400 ? "OK" : "Error";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
		       H2O_STRLIT("text/plain"));
	header(req, "x-backend", g.name, strlen(g.name));
	req->res.content_length = len;
	h2o_send_inline(req, body, len);
}

static void answer(h2o_req_t *req, int status)
{
	char body[160];
	int n = snprintf(body, sizeof body, "%s\n", g.name);
	header(req, "x-seen-path", req->path.base, req->path.len);
	header(req, "x-seen-host", req->authority.base, req->authority.len);
	ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, -1);
	if (at >= 0)
		header(req, "x-seen-xff", req->headers.entries[at].value.base,
		       req->headers.entries[at].value.len);
	send_body(req, status, body, (size_t)n);
}

static void on_delay_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_delay(uv_timer_t *t)
{
	struct delayed *d = t->data;
	if (d->req)
		answer(d->req, d->status);
	uv_close((uv_handle_t *)&d->timer, on_delay_closed);
}

static void on_dispose(void *p)
{
	struct delayed *d = *(struct delayed **)p;
	d->req = NULL;
}

static long header_num(h2o_req_t *req, const char *name, long dflt)
{
	ssize_t at = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
	if (at < 0)
		return dflt;
	h2o_iovec_t v = req->headers.entries[at].value;
	char buf[24];
	size_t n = v.len < sizeof buf - 1 ? v.len : sizeof buf - 1;
	memcpy(buf, v.base, n);
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static int path_is(h2o_req_t *req, const char *s)
{
	size_t n = strlen(s);
	return req->path_normalized.len == n && memcmp(req->path_normalized.base, s, n) == 0;
}

static int path_prefix(h2o_req_t *req, const char *s, long *num)
{
	size_t n = strlen(s);
	if (req->path_normalized.len <= n || memcmp(req->path_normalized.base, s, n) != 0)
		return 0;
	char buf[24];
	size_t k = req->path_normalized.len - n < sizeof buf - 1 ? req->path_normalized.len - n
								 : sizeof buf - 1;
	memcpy(buf, req->path_normalized.base + n, k);
	buf[k] = '\0';
	*num = strtol(buf, NULL, 10);
	return 1;
}

static int control(h2o_req_t *req)
{
	long v;
	char body[128];
	if (path_prefix(req, "/_control/status/", &v))
		g.status = v >= 100 && v < 600 ? (int)v : 200;
	else if (path_prefix(req, "/_control/delay/", &v))
		g.delay_ms = v > 0 ? (unsigned)v : 0;
	else if (path_is(req, "/_control/health/fail"))
		g.health_fail = 1;
	else if (path_is(req, "/_control/health/ok"))
		g.health_fail = 0;
	else if (!path_is(req, "/_control/count"))
		return 0;
	int n = snprintf(body, sizeof body, "{\"requests\":%lu,\"health_checks\":%lu}\n",
			 g.requests, g.health_checks);
	send_body(req, 200, body, (size_t)n);
	return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	(void)self;
	long v;
	if (path_is(req, "/healthz")) {
		g.health_checks++;
		send_body(req, g.health_fail ? 503 : 200, g.health_fail ? "failing\n" : "ok\n",
			  g.health_fail ? 8 : 3);
		return 0;
	}
	if (path_prefix(req, "/_control/", &v) || path_is(req, "/_control/count")) {
		if (control(req))
			return 0;
	}
	g.requests++;
	if (path_prefix(req, "/_big/", &v)) {
		size_t n = v > 0 ? (size_t)v : 0;
		if (n > g.big_len) {
			char *p = realloc(g.big, n);
			if (!p) {
				send_body(req, 500, "oom\n", 4);
				return 0;
			}
			memset(p, 'x', n);
			g.big = p;
			g.big_len = n;
		}
		send_body(req, 200, g.big, n);
		return 0;
	}
	int status = (int)header_num(req, "x-backend-status", g.status);
	if (status < 100 || status > 599)
		status = 200;
	long delay = header_num(req, "x-backend-delay-ms", g.delay_ms);
	if (delay <= 0) {
		answer(req, status);
		return 0;
	}
	struct delayed *d = calloc(1, sizeof *d);
	if (!d) {
		send_body(req, 500, "oom\n", 4);
		return 0;
	}
	d->req = req;
	d->status = status;
	struct delayed **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, on_dispose);
	*slot = d;
	uv_timer_init(g.ctx.loop, &d->timer);
	d->timer.data = d;
	uv_timer_start(&d->timer, on_delay, (uint64_t)delay, 0);
	return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
	if (status != 0)
		return;
	uv_tcp_t *conn = h2o_mem_alloc(sizeof *conn);
	uv_tcp_init(listener->loop, conn);
	if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
		uv_close((uv_handle_t *)conn, (uv_close_cb)free);
		return;
	}
	uv_tcp_nodelay(conn, 1);
	h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
	h2o_accept(&g.accept_ctx, sock);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_stop(s->loop);
}

static int parse_listen(const char *s, struct sockaddr_storage *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	int bracket = s[0] == '[';
	size_t hl = (size_t)(colon - s) - (bracket ? 2 : 0);
	memcpy(host, s + bracket, hl);
	host[hl] = '\0';
	int port = atoi(colon + 1);
	if (port < 1 || port > 65535)
		return -1;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return -1;
}

int main(int argc, char **argv)
{
	const char *listen_at = NULL;
	g.status = 200;
	snprintf(g.name, sizeof g.name, "backend");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "raftplane-demo-backend: %s needs a value\n", a);
			return 2;
		}
		if (!strcmp(a, "--listen"))
			listen_at = v;
		else if (!strcmp(a, "--name"))
			snprintf(g.name, sizeof g.name, "%s", v);
		else if (!strcmp(a, "--status"))
			g.status = atoi(v);
		else if (!strcmp(a, "--delay-ms"))
			g.delay_ms = (unsigned)atoi(v);
		else {
			fprintf(stderr, "raftplane-demo-backend: unknown flag \"%s\"\n", a);
			return 2;
		}
		i++;
	}
	struct sockaddr_storage sa;
	if (!listen_at || parse_listen(listen_at, &sa) != 0) {
		fprintf(stderr, "raftplane-demo-backend: --listen IP:PORT is required\n");
		return 2;
	}
	rp_log_init("raftplane-demo-backend");
	rp_log_set_node(g.name);
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	h2o_config_init(&g.config);
	g.config.server_name = h2o_iovec_init(H2O_STRLIT("raftplane-demo-backend"));
	h2o_hostconf_t *host =
		h2o_config_register_host(&g.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
	h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
	h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
	h->on_req = on_req;
	h2o_context_init(&g.ctx, loop, &g.config);
	g.accept_ctx.ctx = &g.ctx;
	g.accept_ctx.hosts = g.config.hosts;
	uv_tcp_init(loop, &g.listener);
	int rv;
	if ((rv = uv_tcp_bind(&g.listener, (struct sockaddr *)&sa, 0)) != 0 ||
	    (rv = uv_listen((uv_stream_t *)&g.listener, 1024, on_accept)) != 0) {
		rp_log_error("listen on %s: %s", listen_at, uv_strerror(rv));
		return 1;
	}
	uv_signal_init(loop, &g.sigterm);
	uv_signal_init(loop, &g.sigint);
	uv_signal_start(&g.sigterm, on_signal, SIGTERM);
	uv_signal_start(&g.sigint, on_signal, SIGINT);
	rp_log_info("listening on %s", listen_at);
	uv_run(loop, UV_RUN_DEFAULT);
	free(g.big);
	return 0;
}
