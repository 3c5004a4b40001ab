/* The REST API's server wiring (the top of api/): h2o on the node's libuv
 * loop, the listener and its limits (net/connlimit.h), and each request's
 * way in (head, framing and size checks, then the router). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept.h"
#include "api.h"
#include "auth.h"
#include "apitls.h"
#include "client.h"
#include "park.h"
#include "retention.h"

#include "httpcheck.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "route.h"
#include "telemetry.h"

/* ---- requests ----------------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct rp_api *api = *(struct rp_api **)(self + 1);
	struct rp_call *c = rp_call_create(api, req);
	if (!c)
		return -1;
	struct rp_http_head head;
	char msg[128];
	if (rp_conn_check_head(req, msg, sizeof msg) != 0) { /* net/accept.h: the head guard */
		req->http1_is_persistent = 0;
		rp_respond_error(c, RP_ERR_HEADER_TOO_LARGE, msg, -1);
		return 0;
	}
	const char *bad_framing = rp_http_check_request(req, &head); /* net/httpcheck.h */
	if (bad_framing) {
		req->http1_is_persistent = 0; /* never read what follows as a request */
		rp_respond_error(c, RP_ERR_INVALID, bad_framing, -1);
	} else if (req->entity.base && req->entity.len > RP_MAX_BODY) {
		rp_respond_error(c, RP_ERR_TOO_LARGE, "body over 1 MiB", -1);
	} else {
		rp_route_request(c);
	}
	return 0;
}

/* ---- server ------------------------------------------------------------- */

static const void *ip_bytes(const struct sockaddr *sa, int *len)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa->sa_family == AF_INET) {
		*len = 4;
		return &((const struct sockaddr_in *)sa)->sin_addr;
	}
	if (sa->sa_family != AF_INET6)
		return NULL;
	const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	*len = memcmp(a, mapped, 12) == 0 ? 4 : 16;
	return *len == 4 ? a + 12 : a;
}

static int same_ip(const struct sockaddr *a, const char *hostport)
{
	struct sockaddr_storage b;
	int la, lb;
	if (!hostport[0] || rp_parse_hostport(hostport, &b) != 0)
		return 0;
	const void *pa = ip_bytes(a, &la), *pb = ip_bytes((struct sockaddr *)&b, &lb);
	return pa && pb && la == lb && memcmp(pa, pb, (size_t)la) == 0;
}

/* The per-address limit spares the addresses of members (their --http or
 * --raft host): a follower forwards each request in flight on a connection
 * of its own. With TLS, net/accept.c then also wants a server certificate.
 * Asked only for an address over the limit. */
static int is_member_address(void *arg, const struct sockaddr *sa)
{
	struct rp_api *api = arg;
	struct rp_node_member *ms;
	unsigned n;
	int yes = 0;
	if (rp_node_members(api->node, &ms, &n) != RP_OK)
		return 0;
	for (unsigned i = 0; i < n && !yes; i++)
		yes = same_ip(sa, ms[i].http) || same_ip(sa, ms[i].raft);
	free(ms);
	return yes;
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct rp_api *api = listener->data;
	const struct rp_api_tls *t = api->opts.tls;
	/* TLS on: only TLS; the context is read at each accept (net/accept.h) */
	struct rp_accept_opts o = {.tls = t ? t->api : NULL,
				   .trust_domain = t ? t->trust_domain : NULL,
				   .limits = &api->conns};
	if (status == 0)
		rp_accept_http(listener, &api->accept_ctx, &o);
}

int rp_api_start(struct rp_api *api, uv_loop_t *loop, struct rp_node *node, const char *addr,
		 const struct rp_api_options *opts, char *errmsg, size_t errlen)
{
	struct sockaddr_storage sa;
	int rv;
	api->loop = loop;
	api->node = node;
	api->opts = *opts;
	if (rp_parse_hostport(addr, &sa) != 0) {
		snprintf(errmsg, errlen, "--http %s: not an IP:port", addr);
		return -1;
	}
	h2o_config_init(&api->config);
	/* h2o refuses larger bodies before buffering them: on Content-Length at
	 * once, a chunked body when it reaches this size. A Content-Length of
	 * exactly RP_MAX_BODY + 1 gets through and is refused by on_req. */
	api->config.max_request_entity_size = RP_MAX_BODY + 1;
	/* HTTP/1.1 only, as documented: no h2c upgrade, no prior-knowledge
	 * HTTP/2 (the framing checks and close watches are HTTP/1's) */
	api->config.http1.upgrade_to_http2 = 0;
	h2o_hostconf_t *host = h2o_config_register_host(&api->config,
							h2o_iovec_init(H2O_STRLIT("default")),
							65535);
	h2o_pathconf_t *paths[2] = {h2o_config_register_path(host, "/", 0), &host->fallback_path};
	for (int i = 0; i < 2; i++) { /* the fallback: targets not starting with '/' */
		h2o_handler_t *h = h2o_create_handler(paths[i],
						      sizeof *h + sizeof(struct rp_api *));
		*(struct rp_api **)(h + 1) = api;
		h->on_req = on_req;
		rp_call_add_error_filter(paths[i], api);
	}
	if (opts->tls && opts->tls->api) {
		rp_tls_set_alpn(opts->tls->api, "http/1.1"); /* HTTP/1.1 only (net/accept.h) */
		rp_tls_set_soft_verify(opts->tls->api);      /* a refused certificate gets a 401 */
	}
	h2o_context_init(&api->ctx, loop, &api->config);
	api->accept_ctx.ctx = &api->ctx;
	api->accept_ctx.hosts = api->config.hosts;
	struct rp_connlimit_config lc = {.per_ip = opts->max_conns_per_ip,
					 .total = opts->max_conns,
					 .max_head_bytes = opts->max_header_bytes,
					 .max_headers = opts->max_headers,
					 .what = "API",
					 .exempt = is_member_address,
					 .exempt_arg = api};
	if (rp_connlimit_init(&api->conns, &lc, 0) != 0 || rp_subscribe_init(api) != RP_OK ||
	    rp_auth_init(api) != RP_OK || rp_telemetry_init(api) != RP_OK ||
	    rp_retention_init(api) != RP_OK) {
		snprintf(errmsg, errlen, "out of memory");
		return -1;
	}
	if ((rv = rp_listen(loop, &api->listener, api, (struct sockaddr *)&sa, 1024, on_accept)) !=
	    0) {
		snprintf(errmsg, errlen, "listen on %s: %s", addr, uv_strerror(rv));
		return -1;
	}
	return 0;
}

void rp_api_close(struct rp_api *api)
{
	rp_subscribe_close(api);
	rp_auth_close(api);
	rp_telemetry_close(api);
	rp_retention_close(api);
	rp_park_close(api);
	uv_close((uv_handle_t *)&api->listener, NULL);
}
