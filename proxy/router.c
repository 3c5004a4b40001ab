/* Route matching and path rewriting. */
#include "router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "httpcheck.h"

static int headers_match(const struct rp_route *r, h2o_req_t *req, h2o_iovec_t host)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		const struct rp_header_match *m = &r->headers[i];
		ssize_t at = -1;
		int found = 0;
		if (m->name_len == 4 && memcmp(m->name, "host", 4) == 0) {
			/* h2o keeps Host out of req->headers: match the host we forward */
			if (host.len != m->value_len ||
			    !h2o_lcstris(host.base, host.len, m->value, m->value_len))
				return 0;
			continue;
		}
		while (!found && (at = h2o_find_header_by_str(&req->headers, m->name, m->name_len,
							      at)) >= 0) {
			h2o_iovec_t v = req->headers.entries[at].value;
			found = v.len == m->value_len && memcmp(v.base, m->value, v.len) == 0;
		}
		if (!found)
			return 0;
	}
	return 1;
}

static int path_matches(const struct rp_route *r, h2o_iovec_t path)
{
	if (r->exact)
		return path.len == r->match_len && memcmp(path.base, r->match, path.len) == 0;
	return path.len >= r->match_len && memcmp(path.base, r->match, r->match_len) == 0;
}

const struct rp_route *rp_route_match(const struct rp_listener *l, h2o_req_t *req, h2o_iovec_t path,
				      h2o_iovec_t host)
{
	for (size_t i = 0; i < l->n_routes; i++) {
		const struct rp_route *r = l->routes[i];
		if (path_matches(r, path) && headers_match(r, req, host))
			return r;
	}
	return NULL;
}

struct rp_cluster *rp_route_cluster(const struct rp_route *r, uint64_t *rng)
{
	if (r->n_clusters == 1)
		return r->clusters[0].cluster;
	uint64_t x = rp_rand(rng) % r->total_weight;
	for (size_t i = 0; i < r->n_clusters; i++) {
		if (x < r->clusters[i].weight)
			return r->clusters[i].cluster;
		x -= r->clusters[i].weight;
	}
	return r->clusters[r->n_clusters - 1].cluster;
}

h2o_iovec_t rp_route_target(const struct rp_route *r, h2o_req_t *req, h2o_iovec_t path,
			    h2o_iovec_t query)
{
	const char *rest = path.base;
	size_t rest_len = path.len;
	const char *head = "";
	size_t head_len = 0;
	if (r->rewrite) {
		rest = path.base + r->match_len;
		rest_len = path.len - r->match_len;
		head = r->rewrite;
		head_len = r->rewrite_len;
		if (head_len && head[head_len - 1] == '/' && rest_len && rest[0] == '/') {
			rest++;
			rest_len--;
		}
	}
	size_t len = head_len + rest_len + query.len;
	char *buf = h2o_mem_alloc_pool(&req->pool, len + 2);
	memcpy(buf, head, head_len);
	memcpy(buf + head_len, rest, rest_len);
	size_t n = head_len + rest_len;
	if (n == 0)
		buf[n++] = '/';
	memcpy(buf + n, query.base, query.len);
	n += query.len;
	buf[n] = '\0';
	return h2o_iovec_init(buf, n);
}

char *rp_route_normalize(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *tmp = malloc(3 * n + 1), *out = NULL;
	if (!tmp)
		return NULL;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) { /* the whole string is a path */
		int bad_pct = s[i] == '%' && !(isxdigit((unsigned char)s[i + 1]) &&
					       isxdigit((unsigned char)s[i + 2]));
		if (s[i] == '?' || bad_pct) {
			m += (size_t)sprintf(tmp + m, "%%%02X", (unsigned char)s[i]);
			continue;
		}
		tmp[m++] = s[i];
	}
	h2o_mem_pool_t pool;
	h2o_mem_init_pool(&pool);
	struct rp_http_target t;
	if (!rp_http_parse_target(&pool, h2o_iovec_init(tmp, m), &t) &&
	    (out = malloc(t.path.len + 1))) {
		memcpy(out, t.path.base, t.path.len);
		out[t.path.len] = '\0';
		*len = t.path.len;
	}
	h2o_mem_clear_pool(&pool);
	free(tmp);
	return out;
}
