/* Stateless validation of mesh objects: the API's schema check and
 * canonicalisation (rp_mesh_validate), and apply's structural decode
 * (rp_mesh_decode). The contract between the two is in validate.h. Nothing
 * here has state, a clock or randomness; the only global is the counter of
 * jansson allocation failures, which tells memory from bad bytes. */
#include "validate.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"

/* ---- parsing ------------------------------------------------------------ */

/* jansson drops some allocation failures and then reports a syntax error,
 * so a failed parse does not say whether the bytes or the memory were bad.
 * A pass-through allocator counts the failures (per thread). */
static _Thread_local unsigned long alloc_failures;
static json_malloc_t next_malloc;

static void *counting_malloc(size_t size)
{
	void *p = next_malloc(size);
	if (!p)
		alloc_failures++;
	return p;
}

/* Parse @len bytes; NULL with *oom = 1 when an allocation failed, NULL with
 * *oom = 0 (reason in @jerr) when the bytes are not JSON. */
static json_t *load(const void *buf, size_t len, json_error_t *jerr, int *oom)
{
	json_malloc_t m;
	json_free_t f;
	json_get_alloc_funcs(&m, &f);
	if (m != counting_malloc) {
		next_malloc = m;
		json_set_alloc_funcs(counting_malloc, f);
	}
	unsigned long before = alloc_failures;
	json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, jerr);
	*oom = alloc_failures != before;
	if (*oom) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

static const char *kind_names[RP_KIND__COUNT] = {
	[RP_KIND_KV] = "kv",           [RP_KIND_CLUSTERS] = "clusters",
	[RP_KIND_ROUTES] = "routes",   [RP_KIND_LISTENERS] = "listeners",
	[RP_KIND_MEMBERS] = "members", [RP_KIND_TOKENS] = "tokens",
};

int rp_kind_parse(const char *s, size_t len)
{
	for (int k = 0; k < RP_KIND__COUNT; k++) {
		if (strlen(kind_names[k]) == len && memcmp(s, kind_names[k], len) == 0)
			return k;
	}
	return -1;
}

const char *rp_kind_name(int kind)
{
	return kind >= 0 && kind < RP_KIND__COUNT ? kind_names[kind] : "?";
}

int rp_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > RP_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int rp_token_name_valid(const char *s, size_t len)
{
	return len <= RP_MAX_TOKEN_NAME && rp_name_valid(s, len);
}

/* ---- field helpers ------------------------------------------------------ */

struct vctx {
	char *errmsg;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct vctx *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->errmsg, v->errlen, fmt, ap);
	va_end(ap);
	return RP_ERR_INVALID;
}

/* Refuse any key of @obj not in the NULL-terminated @allowed list. */
static int only_fields(struct vctx *v, const char *what, json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val)
	{
		int ok = 0;
		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(*a, key) == 0;
		if (!ok)
			return fail(v, "%s: unknown field \"%s\"", what, key);
	}
	return RP_OK;
}

/* Read optional integer field @key of @obj into *out (default kept when
 * absent), requiring lo <= value <= hi. */
static int int_field(struct vctx *v, const char *what, json_t *obj, const char *key, long long lo,
		     long long hi, int required, long long *out)
{
	json_t *j = json_object_get(obj, key);
	if (!j) {
		if (required)
			return fail(v, "%s: missing field \"%s\"", what, key);
		return RP_OK;
	}
	if (!json_is_integer(j))
		return fail(v, "%s: \"%s\" must be an integer", what, key);
	long long x = json_integer_value(j);
	if (x < lo || x > hi)
		return fail(v, "%s: \"%s\" must be between %lld and %lld", what, key, lo, hi);
	*out = x;
	return RP_OK;
}

/* Read string field @key (required when @required) into *out, borrowed. */
static int str_field(struct vctx *v, const char *what, json_t *obj, const char *key, int required,
		     size_t maxlen, const char **out)
{
	json_t *j = json_object_get(obj, key);
	if (!j) {
		if (required)
			return fail(v, "%s: missing field \"%s\"", what, key);
		return RP_OK;
	}
	if (!json_is_string(j))
		return fail(v, "%s: \"%s\" must be a string", what, key);
	size_t len = json_string_length(j);
	if (len == 0 || len > maxlen)
		return fail(v, "%s: \"%s\" must be 1 to %zu characters", what, key, maxlen);
	if (strlen(json_string_value(j)) != len)
		return fail(v, "%s: \"%s\" must not contain NUL", what, key);
	*out = json_string_value(j);
	return RP_OK;
}

static int ip_valid(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* An absolute path: starts with '/', printable ASCII without spaces. */
static int path_valid(const char *s)
{
	if (s[0] != '/')
		return 0;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return 0;
	return 1;
}

/* An HTTP header name token, lower or upper case letters, digits, '-'. */
static int header_name_valid(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* The syntax of a name another object is referred to by. */
static int ref_name(struct vctx *v, const char *name)
{
	if (!rp_name_valid(name, strlen(name)))
		return fail(v, "reference \"%s\" is not a valid name", name);
	return RP_OK;
}

/* ---- clusters ----------------------------------------------------------- */

static int validate_endpoint(struct vctx *v, json_t *ep, size_t i)
{
	static const char *const fields[] = {"address", "port", "weight", NULL};
	char what[64];
	snprintf(what, sizeof what, "endpoints[%zu]", i);
	if (!json_is_object(ep))
		return fail(v, "%s must be an object", what);
	const char *addr = NULL;
	long long port = 0, weight = 1;
	int rv;
	if ((rv = only_fields(v, what, ep, fields)) ||
	    (rv = str_field(v, what, ep, "address", 1, 64, &addr)) ||
	    (rv = int_field(v, what, ep, "port", 1, 65535, 1, &port)) ||
	    (rv = int_field(v, what, ep, "weight", 1, 10000, 0, &weight)))
		return rv;
	if (!ip_valid(addr))
		return fail(v, "%s: address \"%s\" is not an IPv4 or IPv6 literal", what, addr);
	json_object_set_new(ep, "weight", json_integer(weight));
	return RP_OK;
}

static int validate_health_check(struct vctx *v, json_t *hc)
{
	static const char *const fields[] = {
		"path", "interval_ms", "timeout_ms", "unhealthy_threshold", "healthy_threshold",
		NULL};
	const char *what = "health_check";
	if (!json_is_object(hc))
		return fail(v, "health_check must be an object");
	const char *path = "/healthz";
	long long interval = 1000, timeout = 500, unhealthy = 3, healthy = 2;
	int rv;
	if ((rv = only_fields(v, what, hc, fields)) ||
	    (rv = str_field(v, what, hc, "path", 0, 1024, &path)) ||
	    (rv = int_field(v, what, hc, "interval_ms", 10, 3600000, 0, &interval)) ||
	    (rv = int_field(v, what, hc, "timeout_ms", 1, 3600000, 0, &timeout)) ||
	    (rv = int_field(v, what, hc, "unhealthy_threshold", 1, 100, 0, &unhealthy)) ||
	    (rv = int_field(v, what, hc, "healthy_threshold", 1, 100, 0, &healthy)))
		return rv;
	if (!path_valid(path))
		return fail(v, "health_check: path must start with '/' and be printable ASCII");
	if (timeout > interval)
		return fail(v, "health_check: timeout_ms must not exceed interval_ms");
	json_object_set_new(hc, "path", json_string(path));
	json_object_set_new(hc, "interval_ms", json_integer(interval));
	json_object_set_new(hc, "timeout_ms", json_integer(timeout));
	json_object_set_new(hc, "unhealthy_threshold", json_integer(unhealthy));
	json_object_set_new(hc, "healthy_threshold", json_integer(healthy));
	return RP_OK;
}

static int validate_cluster(struct vctx *v, json_t *o)
{
	static const char *const fields[] = {
		"lb_policy", "hash_on", "connect_timeout_ms", "endpoints", "health_check", "name",
		"version",   NULL};
	static const char *const policies[] = {"round_robin", "least_request", "ring_hash",
					       "random", NULL};
	const char *what = "cluster";
	const char *policy = "round_robin", *hash_on = NULL;
	long long connect_timeout = 1000;
	int rv;
	if ((rv = only_fields(v, what, o, fields)) ||
	    (rv = str_field(v, what, o, "lb_policy", 0, 32, &policy)) ||
	    (rv = str_field(v, what, o, "hash_on", 0, 256, &hash_on)) ||
	    (rv = int_field(v, what, o, "connect_timeout_ms", 1, 600000, 0, &connect_timeout)))
		return rv;
	int known = 0;
	for (const char *const *p = policies; *p; p++)
		known |= strcmp(*p, policy) == 0;
	if (!known)
		return fail(v,
			    "cluster: lb_policy \"%s\" is not one of round_robin, "
			    "least_request, ring_hash, random",
			    policy);
	int ring = strcmp(policy, "ring_hash") == 0;
	if (ring && !hash_on)
		return fail(v, "cluster: ring_hash needs \"hash_on\" (\"header:NAME\")");
	if (!ring && hash_on)
		return fail(v, "cluster: \"hash_on\" is only valid with lb_policy ring_hash");
	if (hash_on && (strncmp(hash_on, "header:", 7) != 0 || !header_name_valid(hash_on + 7)))
		return fail(v, "cluster: hash_on must be \"header:NAME\" with a valid header name");
	json_t *eps = json_object_get(o, "endpoints");
	if (!eps) {
		eps = json_array();
		json_object_set_new(o, "endpoints", eps);
	}
	if (!json_is_array(eps))
		return fail(v, "cluster: endpoints must be an array");
	if (json_array_size(eps) > RP_MAX_ENDPOINTS)
		return fail(v, "cluster: at most %d endpoints", RP_MAX_ENDPOINTS);
	for (size_t i = 0; i < json_array_size(eps); i++)
		if ((rv = validate_endpoint(v, json_array_get(eps, i), i)))
			return rv;
	json_t *hc = json_object_get(o, "health_check");
	if (hc && (rv = validate_health_check(v, hc)))
		return rv;
	json_object_set_new(o, "lb_policy", json_string(policy));
	json_object_set_new(o, "connect_timeout_ms", json_integer(connect_timeout));
	return RP_OK;
}

/* ---- listeners ---------------------------------------------------------- */

static int validate_listener(struct vctx *v, json_t *o)
{
	static const char *const fields[] = {"address", "port", "nodes", "name", "version", NULL};
	const char *what = "listener";
	const char *addr = NULL;
	long long port = 0;
	int rv;
	if ((rv = only_fields(v, what, o, fields)) ||
	    (rv = str_field(v, what, o, "address", 1, 64, &addr)) ||
	    (rv = int_field(v, what, o, "port", 1, 65535, 1, &port)))
		return rv;
	if (!ip_valid(addr))
		return fail(v, "listener: address \"%s\" is not an IPv4 or IPv6 literal", addr);
	json_t *nodes = json_object_get(o, "nodes");
	if (!nodes)
		return fail(v, "listener: missing field \"nodes\" (node ids or [\"*\"])");
	if (!json_is_array(nodes) || json_array_size(nodes) == 0)
		return fail(v, "listener: nodes must be a non-empty array");
	if (json_array_size(nodes) > RP_MAX_NODES)
		return fail(v, "listener: at most %d nodes", RP_MAX_NODES);
	for (size_t i = 0; i < json_array_size(nodes); i++) {
		json_t *n = json_array_get(nodes, i);
		if (!json_is_string(n))
			return fail(v, "listener: nodes[%zu] must be a string", i);
		const char *s = json_string_value(n);
		size_t len = json_string_length(n);
		if (strcmp(s, "*") == 0) {
			if (json_array_size(nodes) != 1)
				return fail(v, "listener: \"*\" must be the only entry of nodes");
			continue;
		}
		if (strlen(s) != len || !rp_name_valid(s, len))
			return fail(v, "listener: nodes[%zu] is not a valid node id", i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(nodes, j)), s) == 0)
				return fail(v, "listener: node id \"%s\" listed twice", s);
	}
	return RP_OK;
}

/* ---- routes ------------------------------------------------------------- */

static int validate_match(struct vctx *v, json_t *o, int *is_prefix)
{
	static const char *const fields[] = {"prefix", "path", NULL};
	json_t *m = json_object_get(o, "match");
	if (!m)
		return fail(v, "route: missing field \"match\"");
	if (!json_is_object(m))
		return fail(v, "route: match must be an object");
	const char *prefix = NULL, *path = NULL;
	int rv;
	if ((rv = only_fields(v, "match", m, fields)) ||
	    (rv = str_field(v, "match", m, "prefix", 0, 1024, &prefix)) ||
	    (rv = str_field(v, "match", m, "path", 0, 1024, &path)))
		return rv;
	if (!prefix == !path)
		return fail(v, "route: match needs exactly one of \"prefix\" or \"path\"");
	if (!path_valid(prefix ? prefix : path))
		return fail(v, "route: match path must start with '/' and be printable ASCII");
	*is_prefix = prefix != NULL;
	return RP_OK;
}

static int validate_headers(struct vctx *v, json_t *o)
{
	static const char *const fields[] = {"name", "exact", NULL};
	json_t *hs = json_object_get(o, "headers");
	if (!hs)
		return RP_OK;
	if (!json_is_array(hs))
		return fail(v, "route: headers must be an array");
	if (json_array_size(hs) > RP_MAX_ROUTE_HEADERS)
		return fail(v, "route: at most %d header matches", RP_MAX_ROUTE_HEADERS);
	for (size_t i = 0; i < json_array_size(hs); i++) {
		json_t *h = json_array_get(hs, i);
		const char *name = NULL, *exact = NULL;
		int rv;
		if (!json_is_object(h))
			return fail(v, "route: headers[%zu] must be an object", i);
		if ((rv = only_fields(v, "headers[]", h, fields)) ||
		    (rv = str_field(v, "headers[]", h, "name", 1, 256, &name)) ||
		    (rv = str_field(v, "headers[]", h, "exact", 1, 4096, &exact)))
			return rv;
		if (!header_name_valid(name))
			return fail(v, "route: headers[%zu].name is not a valid header name", i);
	}
	return RP_OK;
}

static int validate_targets(struct vctx *v, json_t *o)
{
	static const char *const fields[] = {"cluster", "weight", NULL};
	const char *cluster = NULL;
	int rv;
	if ((rv = str_field(v, "route", o, "cluster", 0, RP_MAX_NAME, &cluster)))
		return rv;
	json_t *wc = json_object_get(o, "weighted_clusters");
	if (!cluster == !wc)
		return fail(v, "route: needs exactly one of \"cluster\" or \"weighted_clusters\"");
	if (cluster)
		return ref_name(v, cluster);
	if (!json_is_array(wc) || json_array_size(wc) == 0 || json_array_size(wc) > RP_MAX_WEIGHTED)
		return fail(v, "route: weighted_clusters must be an array of 1 to %d entries",
			    RP_MAX_WEIGHTED);
	for (size_t i = 0; i < json_array_size(wc); i++) {
		json_t *w = json_array_get(wc, i);
		const char *c = NULL;
		long long weight = 0;
		if (!json_is_object(w))
			return fail(v, "route: weighted_clusters[%zu] must be an object", i);
		if ((rv = only_fields(v, "weighted_clusters[]", w, fields)) ||
		    (rv = str_field(v, "weighted_clusters[]", w, "cluster", 1, RP_MAX_NAME, &c)) ||
		    (rv = int_field(v, "weighted_clusters[]", w, "weight", 1, 10000, 1, &weight)) ||
		    (rv = ref_name(v, c)))
			return rv;
	}
	return RP_OK;
}

static int validate_retries(struct vctx *v, json_t *o)
{
	static const char *const fields[] = {"attempts", "on", NULL};
	json_t *r = json_object_get(o, "retries");
	long long attempts = 0;
	int rv;
	if (!r) {
		r = json_object();
		json_object_set_new(o, "retries", r);
	}
	if (!json_is_object(r))
		return fail(v, "route: retries must be an object");
	if ((rv = only_fields(v, "retries", r, fields)) ||
	    (rv = int_field(v, "retries", r, "attempts", 0, 10, 0, &attempts)))
		return rv;
	json_t *on = json_object_get(r, "on");
	if (!on) {
		on = json_array();
		json_object_set_new(r, "on", on);
	}
	if (!json_is_array(on) || json_array_size(on) > 2)
		return fail(v,
			    "retries: on must be an array of \"connect-failure\" and/or \"5xx\"");
	for (size_t i = 0; i < json_array_size(on); i++) {
		const char *s = json_string_value(json_array_get(on, i));
		if (!s || (strcmp(s, "connect-failure") != 0 && strcmp(s, "5xx") != 0))
			return fail(v, "retries: on[%zu] must be \"connect-failure\" or \"5xx\"",
				    i);
	}
	json_object_set_new(r, "attempts", json_integer(attempts));
	return RP_OK;
}

static int validate_route(struct vctx *v, json_t *o)
{
	static const char *const fields[] = {"listener",   "priority", "match",
					     "headers",    "cluster",  "weighted_clusters",
					     "timeout_ms", "retries",  "prefix_rewrite",
					     "name",       "version",  NULL};
	const char *listener = NULL, *rewrite = NULL;
	long long priority = 0, timeout = 15000;
	int is_prefix = 0, rv;
	if ((rv = only_fields(v, "route", o, fields)) ||
	    (rv = str_field(v, "route", o, "listener", 1, RP_MAX_NAME, &listener)) ||
	    (rv = ref_name(v, listener)) ||
	    (rv = int_field(v, "route", o, "priority", 0, 1000000, 0, &priority)) ||
	    (rv = int_field(v, "route", o, "timeout_ms", 1, 3600000, 0, &timeout)) ||
	    (rv = validate_match(v, o, &is_prefix)) || (rv = validate_headers(v, o)) ||
	    (rv = validate_targets(v, o)) || (rv = validate_retries(v, o)) ||
	    (rv = str_field(v, "route", o, "prefix_rewrite", 0, 1024, &rewrite)))
		return rv;
	if (rewrite && !is_prefix)
		return fail(v, "route: prefix_rewrite needs a prefix match");
	if (rewrite && !path_valid(rewrite))
		return fail(v, "route: prefix_rewrite must start with '/' and be printable ASCII");
	json_object_set_new(o, "priority", json_integer(priority));
	json_object_set_new(o, "timeout_ms", json_integer(timeout));
	return RP_OK;
}

/* ---- the references of a value (shared by both halves) ----------------- */

/* Add a reference to @refs: a string of 1 to RP_MAX_NAME bytes (the size of
 * the slot). Its syntax is the schema's business: a name that is not valid
 * can name no item, so apply finds it dangling. */
static int add_ref(struct vctx *v, struct rp_refs *refs, int kind, json_t *j, const char *what)
{
	if (!json_is_string(j))
		return fail(v, "%s must be a string", what);
	const char *name = json_string_value(j);
	size_t len = json_string_length(j);
	if (len == 0 || len > RP_MAX_NAME || strlen(name) != len)
		return fail(v, "%s must be a name of 1 to %d bytes", what, RP_MAX_NAME);
	for (unsigned i = 0; i < refs->n; i++)
		if (refs->ref[i].kind == kind && strcmp(refs->ref[i].name, name) == 0)
			return RP_OK;
	if (refs->n >= RP_MAX_REFS)
		return fail(v, "more than %d references", RP_MAX_REFS);
	refs->ref[refs->n].kind = kind;
	memcpy(refs->ref[refs->n].name, name, len + 1);
	refs->n++;
	return RP_OK;
}

/* What a route refers to: its listener (required), then its clusters. */
static int route_refs(struct vctx *v, json_t *o, struct rp_refs *refs)
{
	json_t *cluster = json_object_get(o, "cluster");
	json_t *wc = json_object_get(o, "weighted_clusters");
	int rv;
	refs->n = 0;
	if ((rv = add_ref(v, refs, RP_KIND_LISTENERS, json_object_get(o, "listener"),
			  "route: listener")))
		return rv;
	if (cluster && (rv = add_ref(v, refs, RP_KIND_CLUSTERS, cluster, "route: cluster")))
		return rv;
	if (wc && !json_is_array(wc))
		return fail(v, "route: weighted_clusters must be an array");
	for (size_t i = 0; i < json_array_size(wc); i++) {
		json_t *w = json_array_get(wc, i);
		if (!json_is_object(w))
			return fail(v, "route: weighted_clusters[%zu] must be an object", i);
		if ((rv = add_ref(v, refs, RP_KIND_CLUSTERS, json_object_get(w, "cluster"),
				  "route: weighted_clusters[].cluster")))
			return rv;
	}
	return RP_OK;
}

/* ---- the API layer: entry point ----------------------------------------- */

int rp_mesh_validate(int kind, const char *name, const char *json, size_t len, char **canon,
		     size_t *canon_len, struct rp_refs *refs, char *errmsg, size_t errlen)
{
	struct vctx v = {errmsg, errlen};
	json_error_t jerr;
	int rv, oom;
	*canon = NULL;
	if (refs)
		refs->n = 0;
	json_t *o = load(json, len, &jerr, &oom);
	if (oom)
		return RP_ERR_NOMEM;
	if (!o)
		return fail(&v, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
			    jerr.text);
	if (!json_is_object(o)) {
		rv = fail(&v, "body must be a JSON object");
		goto out;
	}
	json_t *jv = json_object_get(o, "version");
	if (jv && !json_is_integer(jv)) {
		rv = fail(&v, "\"version\" (ignored on write) must be an integer");
		goto out;
	}
	json_t *jn = json_object_get(o, "name");
	if (jn && (!json_is_string(jn) || strcmp(json_string_value(jn), name) != 0)) {
		rv = fail(&v, "\"name\" in the body must equal the name in the path");
		goto out;
	}
	switch (kind) {
	case RP_KIND_CLUSTERS: rv = validate_cluster(&v, o); break;
	case RP_KIND_LISTENERS: rv = validate_listener(&v, o); break;
	case RP_KIND_ROUTES: rv = validate_route(&v, o); break;
	default: rv = fail(&v, "kind %d has no schema", kind); break;
	}
	if (rv)
		goto out;
	json_object_del(o, "name");
	json_object_del(o, "version");
	if (refs && kind == RP_KIND_ROUTES && (rv = route_refs(&v, o, refs)))
		goto out;
	*canon = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!*canon) {
		rv = RP_ERR_NOMEM;
		goto out;
	}
	*canon_len = strlen(*canon);
out:
	json_decref(o);
	return rv;
}

/* ---- apply: the structural decode --------------------------------------- */

static int decode_listener(struct vctx *v, struct rp_mesh_facts *f)
{
	json_t *address = json_object_get(f->json, "address");
	json_t *port = json_object_get(f->json, "port");
	f->nodes = json_object_get(f->json, "nodes");
	if (!json_is_string(address))
		return fail(v, "listener: address must be a string");
	if (!json_is_integer(port))
		return fail(v, "listener: port must be an integer");
	if (!json_is_array(f->nodes) || json_array_size(f->nodes) == 0)
		return fail(v, "listener: nodes must be a non-empty array");
	for (size_t i = 0; i < json_array_size(f->nodes); i++) {
		json_t *n = json_array_get(f->nodes, i);
		if (!json_is_string(n) || strlen(json_string_value(n)) != json_string_length(n))
			return fail(v, "listener: nodes[%zu] must be a string without NUL", i);
	}
	f->address = json_string_value(address);
	f->port = json_integer_value(port);
	return RP_OK;
}

int rp_mesh_decode(int kind, const void *value, size_t len, struct rp_mesh_facts *out, char *errmsg,
		   size_t errlen)
{
	struct vctx v = {errmsg, errlen};
	json_error_t jerr;
	int rv, oom;
	out->json = NULL;
	out->refs.n = 0;
	out->address = NULL;
	out->port = 0;
	out->nodes = NULL;
	json_t *o = load(value, len, &jerr, &oom);
	if (oom) {
		snprintf(errmsg, errlen, "out of memory decoding a %s value", rp_kind_name(kind));
		return RP_ERR_NOMEM;
	}
	if (!o)
		return fail(&v, "not JSON: %s", jerr.text);
	out->json = o;
	if (!json_is_object(o))
		rv = fail(&v, "not a JSON object");
	else if (kind == RP_KIND_ROUTES)
		rv = route_refs(&v, o, &out->refs);
	else if (kind == RP_KIND_LISTENERS)
		rv = decode_listener(&v, out);
	else if (kind == RP_KIND_CLUSTERS)
		rv = RP_OK; /* apply reads nothing inside a cluster */
	else
		rv = fail(&v, "kind %d has no mesh value", kind);
	if (rv)
		rp_mesh_facts_release(out);
	return rv;
}

void rp_mesh_facts_release(struct rp_mesh_facts *f)
{
	json_decref(f->json);
	f->json = NULL;
	f->refs.n = 0;
	f->address = NULL;
	f->nodes = NULL;
}
