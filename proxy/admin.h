/* The admin HTTP server of raftplane-proxy (--admin): /ready, /config_dump,
 * /stats, /metrics. Runs on the main loop. */
#ifndef RP_PROXY_ADMIN_H
#define RP_PROXY_ADMIN_H

#include <h2o.h>
#include <uv.h>

#include "connlimit.h"
#include "proxy.h"

struct rp_admin {
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	uv_tcp_t listener;
	int started;
	unsigned conns;
	struct rp_connlimit limits; /* --admin-max-conns-per-ip */
};

/** Listen on @addr ("IP:PORT"). 0, or -1 with a reason in @err. */
int rp_admin_start(struct rp_admin *a, struct rp_proxy *p, const char *addr, char *err,
		   size_t errlen);
void rp_admin_close(struct rp_admin *a);

#endif
