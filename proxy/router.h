/* Route matching: which route of a listener serves a request, which of its
 * clusters takes it, and the path sent upstream. */
#ifndef RP_PROXY_ROUTER_H
#define RP_PROXY_ROUTER_H

#include <h2o.h>

#include "routing.h"

/**
 * The first route of @l (highest priority first, then by name) whose path
 * match and every header match hold for @req, or NULL. @path is the
 * normalised path of the request (rp_http_parse_target: no query, no dot
 * segments, only escapes of reserved bytes), so the path that matched is
 * the path forwarded. A header match on "host" compares @host, the host
 * forwarded (case-insensitive), since h2o keeps Host out of req->headers.
 */
const struct rp_route *rp_route_match(const struct rp_listener *l, h2o_req_t *req, h2o_iovec_t path,
				      h2o_iovec_t host);

/** A cluster of @r drawn by weight. */
struct rp_cluster *rp_route_cluster(const struct rp_route *r, uint64_t *rng);

/**
 * The request target to send upstream: the normalised @path, with the
 * matched prefix replaced by prefix_rewrite when the route has one (one
 * slash is dropped where the rewrite ends in '/' and the rest starts with
 * '/'), then @query (escaped by rp_http_parse_target). Every byte is legal
 * in a request target: the rewrite is checked when the generation is built
 * (rp_route_valid_rewrite). Allocated in @req's pool.
 */
h2o_iovec_t rp_route_target(const struct rp_route *r, h2o_req_t *req, h2o_iovec_t path,
			    h2o_iovec_t query);

/**
 * A configured path (@s starts with '/') in the form request paths are
 * matched in: normalised by rp_http_parse_target, with '?' and malformed
 * '%' escaped (a route for "/a?b" matches the request path "/a%3Fb").
 * Heap-allocated (caller frees), length in @len; NULL when out of memory.
 */
char *rp_route_normalize(const char *s, size_t *len);

#endif
