/* The admin API's routing table: method set + path pattern -> handler.
 *
 * Rules (docs/api.md 1.1):
 * 1. Routing looks at the RAW request target (req->path up to '?'), split
 *    at '/'. Literal segments match byte for byte; a parameter segment
 *    ("*") matches any one segment; "**", last, matches the rest (one or
 *    more segments, so that `/v1/kv/a/b` is the invalid key `a/b`, 400, as
 *    documented, not an unknown path). Only after a route matched is its
 *    parameter percent-decoded, and the decoded bytes are data (a key, a
 *    name, an id), never a path: `/v1/kv/..%2Fclusters%2Fx` is the key
 *    `../clusters/x` (invalid, 400), not the cluster `x`.
 * 2. A raw `.` or `..` segment is refused with 400 (h2o would have
 *    resolved it; we do not guess what the client meant).
 * 3. Methods match exactly (case-sensitive, RFC 9110 9.1); HEAD is allowed
 *    wherever GET is. A path that matches with another method gets 405 and
 *    an `Allow` header listing every method of that path; no path, 404.
 * 4. Handlers run only for an allowed method. For HEAD, req->method is set
 *    to GET before the handler runs (h2o drops the body of a HEAD answer by
 *    looking at req->input.method), so handlers only ever see GET.
 * 5. Each route names the token role its reads (GET, HEAD) and its other
 *    methods need (docs/security.md has the matrix; tests/integration/
 *    test_tokens.py reads this table). Once tokens are enforced
 *    (auth.h), a request runs only after rp_auth_check passed: 401 / 403
 *    otherwise. OPEN routes need no token. A path that matches no route,
 *    or a method the path does not allow, needs READ before it learns so
 *    (404 / 405). A non-GET request on a route that needs WRITE or more
 *    is a write: it is counted against the writes-per-token limit (429)
 *    after authentication, before its handler. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "backup.h"
#include "cluster.h"
#include "fleet.h"
#include "history.h"
#include "items.h"
#include "metrics.h"
#include "params.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "route.h"
#include "subscribe.h"
#include "telemetry.h"
#include "telemetry_query.h"
#include "tokens.h"
#include "txn.h"
#include "ui.h"
#include "rollback.h"
#include "watch.h"

#define MAX_SEGS 6

enum {
	M_GET = 1 << 0,
	M_HEAD = 1 << 1,
	M_PUT = 1 << 2,
	M_POST = 1 << 3,
	M_DELETE = 1 << 4,
};

static const struct {
	unsigned bit;
	const char *name;
} methods[] = {
	{M_GET, "GET"}, {M_HEAD, "HEAD"}, {M_PUT, "PUT"}, {M_POST, "POST"}, {M_DELETE, "DELETE"},
};

/* What a handler gets: the canonical method and the decoded parameter. */
struct route_args {
	const char *method;
	const char *param; /* NUL-terminated, decoded; "" when the route has none */
	size_t param_len;
	int kind;
};

/* Token roles of the table (rule 5); "-" where the route has no such
 * method. */
#define OPEN RP_TOKEN_NONE
#define READ RP_TOKEN_READ
#define WRITE RP_TOKEN_WRITE
#define ADMIN RP_TOKEN_ADMIN
#define NO_METHOD RP_TOKEN_ADMIN /* never used: the route has no such method */

struct route {
	const char *segs[MAX_SEGS]; /* NULL-terminated; "*" or "**" is the parameter */
	unsigned methods;
	int read_role;  /* what GET and HEAD need */
	int write_role; /* what the other methods need */
	int id;         /* enum rp_route, for the request counters */
	int kind;       /* RP_KIND_* for the item routes, else -1 */
	void (*fn)(struct rp_call *c, const struct route_args *a);
};

/* ---- adapters to the handlers' signatures -------------------------------- */

static void h_status(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_status(c);
}
static void h_members(struct rp_call *c, const struct route_args *a)
{
	rp_route_members(c, a->method);
}
static void h_member(struct rp_call *c, const struct route_args *a)
{
	rp_route_member(c, a->method, a->param, a->param_len, 0);
}
static void h_leadership(struct rp_call *c, const struct route_args *a)
{
	rp_route_member(c, a->method, a->param, a->param_len, 1);
}
static void h_kv_list(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_kv_list(c);
}
static void h_kv(struct rp_call *c, const struct route_args *a)
{
	rp_route_kv(c, a->method, a->param, a->param_len);
}
static void h_mesh_list(struct rp_call *c, const struct route_args *a)
{
	rp_route_mesh_list(c, a->kind);
}
static void h_mesh(struct rp_call *c, const struct route_args *a)
{
	rp_route_mesh(c, a->kind, a->method, a->param, a->param_len);
}
static void h_txn(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_txn(c);
}
static void h_rollback(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_rollback(c);
}
static void h_watch(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_watch(c);
}
static void h_subscribe(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_subscribe(c);
}
static void h_proxies(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_proxies(c);
}
static void h_rollout(struct rp_call *c, const struct route_args *a)
{
	rp_route_rollout(c, a->param, a->param_len);
}
static void h_healthz(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_healthz(c);
}
static void h_readyz(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_readyz(c);
}
static void h_metrics(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_metrics(c);
}
static void h_tokens(struct rp_call *c, const struct route_args *a)
{
	rp_route_tokens(c, a->method);
}
static void h_token(struct rp_call *c, const struct route_args *a)
{
	rp_route_token(c, a->method, a->param, a->param_len);
}
static void h_report(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_report(c);
}
static void h_tl_points(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_telemetry_points(c);
}
static void h_tl_clusters(struct rp_call *c, const struct route_args *a)
{
	rp_route_telemetry(c, RP_TQ_CLUSTERS, a->param, a->param_len);
}
static void h_tl_routes(struct rp_call *c, const struct route_args *a)
{
	rp_route_telemetry(c, RP_TQ_ROUTES, a->param, a->param_len);
}
static void h_tl_proxy(struct rp_call *c, const struct route_args *a)
{
	rp_route_telemetry(c, RP_TQ_PROXY, a->param, a->param_len);
}
static void h_health(struct rp_call *c, const struct route_args *a)
{
	rp_route_telemetry(c, RP_TQ_HEALTH, a->param, a->param_len);
}
static void h_history(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_history(c);
}

static void h_ui_redirect(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_ui_redirect(c);
}
static void h_ui(struct rp_call *c, const struct route_args *a)
{
	rp_route_ui(c, a->param, a->param_len);
}

static void h_backup(struct rp_call *c, const struct route_args *a)
{
	(void)a;
	rp_route_backup(c);
}

#define R M_GET | M_HEAD
#define ITEM(name, k)                                                                          \
	{{"v1", name, NULL}, R, READ, NO_METHOD, RP_ROUTE_MESH_LIST, k, h_mesh_list},          \
	{                                                                                      \
		{"v1", name, "**", NULL}, R | M_PUT | M_DELETE, READ, WRITE, RP_ROUTE_MESH, k, \
			h_mesh                                                                 \
	}

/* clang-format off */
static const struct route table[] = {
	/* path                                    methods              GET/HEAD   others */
	{{"v1", "status", NULL},                   R,                   READ,      NO_METHOD, RP_ROUTE_STATUS, -1, h_status},
	{{"v1", "members", NULL},                  R | M_POST,          READ,      ADMIN,     RP_ROUTE_MEMBERS, -1, h_members},
	{{"v1", "members", "*", NULL},             M_DELETE,            NO_METHOD, ADMIN,     RP_ROUTE_MEMBER, -1, h_member},
	{{"v1", "members", "*", "leadership", NULL}, M_POST,            NO_METHOD, ADMIN,     RP_ROUTE_LEADERSHIP, -1, h_leadership},
	{{"v1", "kv", NULL},                       R,                   READ,      NO_METHOD, RP_ROUTE_KV_LIST, RP_KIND_KV, h_kv_list},
	{{"v1", "kv", "**", NULL},                 R | M_PUT | M_DELETE, READ,     WRITE,     RP_ROUTE_KV, RP_KIND_KV, h_kv},
	{{"v1", "clusters", "*", "health", NULL},  R,                   READ,      NO_METHOD, RP_ROUTE_HEALTH, -1, h_health},
	ITEM("clusters", RP_KIND_CLUSTERS),
	ITEM("routes", RP_KIND_ROUTES),
	ITEM("listeners", RP_KIND_LISTENERS),
	{{"v1", "txn", NULL},                      M_POST,              NO_METHOD, WRITE,     RP_ROUTE_TXN, -1, h_txn},
	{{"v1", "rollback", NULL},                 M_POST,              NO_METHOD, ADMIN,     RP_ROUTE_ROLLBACK, -1, h_rollback},
	{{"v1", "watch", NULL},                    R,                   READ,      NO_METHOD, RP_ROUTE_WATCH, -1, h_watch},
	/* proxies: authenticated by their certificate (subscribe.c), not by tokens */
	{{"v1", "subscribe", NULL},                M_POST,              NO_METHOD, OPEN,      RP_ROUTE_SUBSCRIBE, -1, h_subscribe},
	{{"v1", "report", NULL},                   M_POST,              NO_METHOD, OPEN,      RP_ROUTE_REPORT, -1, h_report},
	/* telemetry reads; points: the members' local query (a read, POSTed) */
	{{"v1", "telemetry", "points", NULL},      M_POST,              NO_METHOD, READ,      RP_ROUTE_TELEMETRY, -1, h_tl_points},
	{{"v1", "telemetry", "clusters", NULL},    R,                   READ,      NO_METHOD, RP_ROUTE_TELEMETRY, -1, h_tl_clusters},
	{{"v1", "telemetry", "clusters", "*", NULL}, R,                 READ,      NO_METHOD, RP_ROUTE_TELEMETRY, -1, h_tl_clusters},
	{{"v1", "telemetry", "routes", NULL},      R,                   READ,      NO_METHOD, RP_ROUTE_TELEMETRY, -1, h_tl_routes},
	{{"v1", "telemetry", "routes", "*", NULL}, R,                   READ,      NO_METHOD, RP_ROUTE_TELEMETRY, -1, h_tl_routes},
	{{"v1", "telemetry", "proxies", "*", NULL}, R,                  READ,      NO_METHOD, RP_ROUTE_TELEMETRY, -1, h_tl_proxy},
	{{"v1", "proxies", NULL},                  R,                   READ,      NO_METHOD, RP_ROUTE_PROXIES, -1, h_proxies},
	{{"v1", "rollouts", "*", NULL},            R,                   READ,      NO_METHOD, RP_ROUTE_ROLLOUTS, -1, h_rollout},
	{{"v1", "tokens", NULL},                   R | M_POST,          ADMIN,     ADMIN,     RP_ROUTE_TOKENS, -1, h_tokens},
	{{"v1", "tokens", "*", NULL},              R | M_DELETE,        ADMIN,     ADMIN,     RP_ROUTE_TOKEN, -1, h_token},
	{{"v1", "history", NULL},                  R,                   READ,      NO_METHOD, RP_ROUTE_HISTORY, -1, h_history},
	{{"v1", "backup", NULL},                   R,                   ADMIN,     NO_METHOD, RP_ROUTE_BACKUP, -1, h_backup},
	{{"healthz", NULL},                        R,                   OPEN,      NO_METHOD, RP_ROUTE_HEALTHZ, -1, h_healthz},
	{{"readyz", NULL},                         R,                   OPEN,      NO_METHOD, RP_ROUTE_READYZ, -1, h_readyz},
	{{"metrics", NULL},                        R,                   READ,      NO_METHOD, RP_ROUTE_METRICS, -1, h_metrics},
	/* the dashboard's static files (ui.c): no data, so no token */
	{{"ui", NULL},                             R,                   OPEN,      NO_METHOD, RP_ROUTE_UI, -1, h_ui_redirect},
	{{"ui", "**", NULL},                       R,                   OPEN,      NO_METHOD, RP_ROUTE_UI, -1, h_ui},
};
/* clang-format on */

#undef ITEM
#undef R

/* ---- matching ---------------------------------------------------------- */

struct seg {
	const char *p;
	size_t len;
};

static unsigned method_bit(h2o_iovec_t m)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (m.len == strlen(methods[i].name) && memcmp(m.base, methods[i].name, m.len) == 0)
			return methods[i].bit;
	return 0;
}

/* Split the raw path (after the leading '/') into segments; -1 when there
 * are too many, -2 on a dot segment. */
static int split(const char *p, size_t len, struct seg *segs)
{
	int n = 0;
	size_t i = 0;
	for (;;) {
		size_t j = i;
		while (j < len && p[j] != '/')
			j++;
		if (n == MAX_SEGS)
			return -1;
		segs[n] = (struct seg){p + i, j - i};
		if ((j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
			return -2;
		n++;
		if (j == len)
			return n;
		i = j + 1;
	}
}

/* 1 when @r matches; the raw parameter (if any) goes to *param. */
static int matches(const struct route *r, const struct seg *segs, int n, struct seg *param)
{
	int i = 0;
	*param = (struct seg){NULL, 0};
	for (; i < n && r->segs[i]; i++) {
		if (strcmp(r->segs[i], "**") == 0) {
			const char *end = segs[n - 1].p + segs[n - 1].len;
			*param = (struct seg){segs[i].p, (size_t)(end - segs[i].p)};
			return 1;
		}
		if (strcmp(r->segs[i], "*") == 0)
			*param = segs[i];
		else if (strlen(r->segs[i]) != segs[i].len ||
			 memcmp(r->segs[i], segs[i].p, segs[i].len) != 0)
			return 0;
	}
	return i == n && !r->segs[i];
}

static void respond_405(struct rp_call *c, unsigned allowed)
{
	char allow[64] = "", msg[96];
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (allowed & methods[i].bit)
			snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
				 allow[0] ? ", " : "", methods[i].name);
	h2o_iovec_t v = h2o_strdup(&c->req->pool, allow, SIZE_MAX);
	h2o_add_header(&c->req->pool, &c->req->res.headers, H2O_TOKEN_ALLOW, NULL, v.base, v.len);
	snprintf(msg, sizeof msg, "allowed methods: %s", allow);
	rp_respond_error(c, RP_ERR_METHOD, msg, -1);
}

/* The path part of the raw request target: origin-form as is; absolute-form
 * (RFC 9112 3.2.2: http://authority/path) without scheme and authority. */
static h2o_iovec_t raw_path(h2o_req_t *req)
{
	size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
	const char *p = req->path.base;
	if (len >= 7 && h2o_lcstris(p, 7, H2O_STRLIT("http://"))) {
		const char *slash = memchr(p + 7, '/', len - 7);
		if (!slash)
			return h2o_iovec_init(H2O_STRLIT("/"));
		len -= (size_t)(slash - p);
		p = slash;
	}
	return h2o_iovec_init(p, len);
}

void rp_route_request(struct rp_call *c)
{
	h2o_req_t *req = c->req;
	h2o_iovec_t path = raw_path(req);
	struct seg segs[MAX_SEGS];
	int n = path.len && path.base[0] == '/' ? split(path.base + 1, path.len - 1, segs) : -1;
	if (n == -2) {
		rp_respond_error(c, RP_ERR_INVALID, "the path must not contain . or .. segments",
				 -1);
		return;
	}
	unsigned bit = method_bit(req->method), allowed = 0;
	for (size_t i = 0; n > 0 && i < sizeof table / sizeof table[0]; i++) {
		const struct route *r = &table[i];
		struct seg param;
		if (!matches(r, segs, n, &param))
			continue;
		c->route = r->id;
		allowed |= r->methods;
		if (!(r->methods & bit))
			continue;
		int is_read = bit == M_GET || bit == M_HEAD;
		int need = is_read ? r->read_role : r->write_role;
		if (rp_auth_check(c, need) != 0) /* rule 5 */
			return;
		char buf[3 * RP_MAX_NAME + 1] = "";
		struct route_args a = {bit == M_HEAD ? "GET" : methods[__builtin_ctz(bit)].name,
				       buf, 0, r->kind};
		if (param.p &&
		    rp_path_decode(param.p, param.len, buf, sizeof buf, &a.param_len) != 0) {
			rp_respond_error(c, RP_ERR_INVALID,
					 "a path parameter is too long or badly percent-encoded",
					 -1);
			return;
		}
		if (!is_read && need >= WRITE && rp_auth_limit_write(c) != 0)
			return;
		if (bit == M_HEAD)
			req->method = h2o_iovec_init(H2O_STRLIT("GET"));
		r->fn(c, &a);
		return;
	}
	if (rp_auth_check(c, READ) != 0) /* rule 5: what exists is for readers */
		return;
	if (allowed)
		respond_405(c, allowed);
	else
		rp_respond_error(c, RP_ERR_NO_ROUTE, "no such endpoint", -1);
}
