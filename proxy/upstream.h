/* The data plane's request handler: route, pick an endpoint, forward through
 * the worker's pool, relay the response (upstream.c). */
#ifndef RP_PROXY_UPSTREAM_H
#define RP_PROXY_UPSTREAM_H

#include <h2o.h>

/** The h2o handler of every data-plane path (the worker is found from the
 * request's h2o context). */
int rp_upstream_on_req(h2o_handler_t *self, h2o_req_t *req);

#endif
