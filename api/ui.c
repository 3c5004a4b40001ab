/* /ui and /ui/{file}: the dashboard's static files (ui.h).
 *
 * The files hold no data (the page reads the REST API, whose routes keep
 * their own roles), so these routes are OPEN. The file name is data, never
 * a path: it is looked up in the compiled-in table, byte for byte, and
 * anything else (subdirectories, dot segments, which the router refuses
 * anyway) is 404. */
#include <string.h>

#include "call.h"
#include "params.h"
#include "raftplane/err.h"
#include "ui.h"

const struct rp_ui_asset *rp_ui_find(const char *name, size_t len)
{
	if (len == 0) {
		name = "index.html";
		len = strlen(name);
	}
	for (const struct rp_ui_asset *a = rp_ui_assets; a->name; a++)
		if (strlen(a->name) == len && memcmp(a->name, name, len) == 0)
			return a;
	return NULL;
}

static void add_header(struct rp_call *c, const h2o_token_t *t, const char *v)
{
	h2o_add_header(&c->req->pool, &c->req->res.headers, t, NULL, v, strlen(v));
}

static void add_named(struct rp_call *c, const char *name, const char *v)
{
	h2o_add_header_by_str(&c->req->pool, &c->req->res.headers, name, strlen(name), 0, NULL, v,
			      strlen(v));
}

/* Does an If-None-Match list (or "*") hold @etag? */
static int etag_matches(const char *inm, const char *etag)
{
	size_t el = strlen(etag);
	for (const char *p = inm; *p;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == el && memcmp(p, etag, el) == 0)
			return 1;
		p = e;
	}
	return 0;
}

void rp_route_ui_redirect(struct rp_call *c)
{
	if (!rp_call_begin_response(c, 301))
		return;
	add_header(c, H2O_TOKEN_LOCATION, "/ui/");
	add_header(c, H2O_TOKEN_CONTENT_TYPE, "text/plain; charset=utf-8");
	static const char body[] = "the dashboard is at /ui/\n";
	c->req->res.content_length = sizeof body - 1;
	h2o_send_inline(c->req, body, sizeof body - 1);
}

void rp_route_ui(struct rp_call *c, const char *name, size_t len)
{
	const struct rp_ui_asset *a = rp_ui_find(name, len);
	if (!a) {
		rp_respond_error(c, RP_ERR_NOT_FOUND, "no such dashboard file", -1);
		return;
	}
	/* the page may load only its own files and talk only to this server */
	add_named(
		c, "content-security-policy",
		"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
	add_named(c, "x-content-type-options", "nosniff");
	add_named(c, "referrer-policy", "no-referrer");
	add_header(c, H2O_TOKEN_CACHE_CONTROL, "no-cache"); /* revalidate: ETag */
	const char *inm = rp_header(c->req, H2O_TOKEN_IF_NONE_MATCH);
	if (inm && etag_matches(inm, a->etag)) {
		if (!rp_call_begin_response(c, 304))
			return;
		add_header(c, H2O_TOKEN_ETAG, a->etag);
		h2o_send_inline(c->req, "", 0);
		return;
	}
	if (!rp_call_begin_response(c, 200))
		return;
	add_header(c, H2O_TOKEN_CONTENT_TYPE, a->ctype);
	add_header(c, H2O_TOKEN_ETAG, a->etag);
	c->req->res.content_length = a->len;
	h2o_send_inline(c->req, (const char *)a->data, a->len);
}
