/* /v1/kv and /v1/{clusters,routes,listeners}: single items and lists.
 *
 * A call's state (struct item_call, c->ctx) is in the request pool; what it
 * owns outside the pool (the canonical JSON, the one-op command) is freed
 * when the request goes (item_dispose). A proposal borrows the command
 * only while the request lives (leader.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "items.h"
#include "json.h"
#include "leader.h"
#include "params.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"

struct item_call {
	int kind;
	char name[RP_MAX_NAME + 1]; /* the item, or the list's prefix */
	int cond;
	uint64_t if_version;
	int at_set;  /* ?revision=N given */
	uint64_t at; /* N */
	char *canon; /* malloc'd canonical JSON of a mesh put */
	size_t canon_len;
	Raftplane__Command *cmd; /* heap-built one-op command */
};

static void item_dispose(void *p)
{
	struct item_call *it = p;
	free(it->canon);
	if (it->cmd)
		raftplane__command__free_unpacked(it->cmd, NULL);
}

static struct item_call *item_of(struct rp_call *c)
{
	if (!c->ctx)
		c->ctx = rp_call_alloc(c, sizeof(struct item_call), item_dispose);
	return c->ctx;
}

/* ---- request parsing ---------------------------------------------------- */

/* The members of a comma-separated list header (RFC 9110 5.6.1: every field
 * line joined, empty elements and optional whitespace ignored). Up to @max
 * members are stored in @el as pool strings; returns the count (may be
 * larger than @max), -1 when a member is not a token or quoted string. */
static int split_list(h2o_req_t *req, const char *v, const char **el, int max)
{
	int n = 0;
	while (*v) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (!*v)
			break;
		const char *start = v;
		int quoted = 0;
		while (*v && (quoted || *v != ',')) {
			if (*v == '"')
				quoted = !quoted;
			v++;
		}
		if (quoted)
			return -1;
		const char *end = v;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (n < max)
			el[n] = h2o_strdup(&req->pool, start, (size_t)(end - start)).base;
		n++;
	}
	return n;
}

/* An If-Match member: "*" or a strong tag "N" (quotes optional) with N the
 * decimal version; 1 for "*", 0 for a tag, -1 otherwise. */
static int parse_tag(const char *t, uint64_t *version)
{
	size_t len = strlen(t);
	if (strcmp(t, "*") == 0)
		return 1;
	if (len >= 2 && t[0] == '"' && t[len - 1] == '"') {
		t++;
		len -= 2;
	}
	if (rp_parse_u64(t, len, version) != 0 || *version > INT64_MAX)
		return -1;
	return 0;
}

/* Preconditions from If-Match / If-None-Match into it->cond / it->if_version.
 * Each header is a list (all its field lines, RFC 9110 13.1.1-2); a list
 * that names more than one member is refused (400): a single-item write
 * checks one version, and we do not guess which one was meant. */
static int parse_preconditions(struct rp_call *c)
{
	struct item_call *it = c->ctx;
	const char *im = rp_header_list(c->req, H2O_TOKEN_IF_MATCH);
	const char *inm = rp_header_list(c->req, H2O_TOKEN_IF_NONE_MATCH);
	const char *el[2];
	int n;
	it->cond = RAFTPLANE__OP__COND__IF_ANY;
	if (im && inm) {
		rp_respond_error(c, RP_ERR_INVALID, "use If-Match or If-None-Match, not both", -1);
		return -1;
	}
	if (inm) {
		if (split_list(c->req, inm, el, 2) != 1 || strcmp(el[0], "*") != 0) {
			rp_respond_error(c, RP_ERR_INVALID, "If-None-Match supports only *", -1);
			return -1;
		}
		it->cond = RAFTPLANE__OP__COND__IF_ABSENT;
	}
	if (im) {
		int kind = (n = split_list(c->req, im, el, 2)) == 1
				   ? parse_tag(el[0], &it->if_version)
				   : -1;
		if (kind < 0) {
			rp_respond_error(
				c, RP_ERR_INVALID,
				n > 1 ? "If-Match must name one version: \"<version>\" or *"
				      : "If-Match must be \"<version>\" or *",
				-1);
			return -1;
		}
		it->cond = kind == 1 ? RAFTPLANE__OP__COND__IF_EXISTS
				     : RAFTPLANE__OP__COND__IF_VERSION;
	}
	return 0;
}

/* consistency=stale|linearizable; returns 1 for stale, 0 linearizable, -1 bad. */
static int parse_consistency(struct rp_call *c)
{
	char v[32];
	int has = rp_query_param(c->req, "consistency", v, sizeof v);
	if (has == 0 || (has == 1 && strcmp(v, "linearizable") == 0))
		return 0;
	if (has == 1 && strcmp(v, "stale") == 0)
		return 1;
	rp_respond_error(c, RP_ERR_INVALID, "consistency must be linearizable or stale", -1);
	return -1;
}

static void run_read(struct rp_call *c, void (*reader)(struct rp_call *c))
{
	int stale = parse_consistency(c);
	if (stale == 1)
		reader(c);
	else if (stale == 0)
		rp_leader_read(c, reader);
}

static int take_name(struct rp_call *c, const char *name, size_t len)
{
	struct item_call *it = c->ctx;
	if (!rp_name_valid(name, len)) {
		rp_respond_error(c, RP_ERR_INVALID, "names are [A-Za-z0-9._-]{1,128}", -1);
		return -1;
	}
	memcpy(it->name, name, len);
	it->name[len] = '\0';
	return 0;
}

/* ---- writes ------------------------------------------------------------- */

static void put_ok(struct rp_call *c, const struct rp_apply_result *res)
{
	struct item_call *it = c->ctx;
	const char *field = it->kind == RP_KIND_KV ? "key" : "name";
	rp_respond_json(c, 200,
			json_pack("{s:s,s:I}", field, it->name, "version",
				  (json_int_t)res->revision),
			res->revision);
}

static void delete_ok(struct rp_call *c, const struct rp_apply_result *res)
{
	struct item_call *it = c->ctx;
	const char *field = it->kind == RP_KIND_KV ? "key" : "name";
	rp_respond_json(c, 200,
			json_pack("{s:s,s:b,s:I}", field, it->name, "deleted", 1, "revision",
				  (json_int_t)res->revision),
			0);
}

/* Build a one-op transaction on the heap (it may outlive this stack frame). */
static int single_op(struct rp_call *c, int is_delete, const void *value, size_t len)
{
	struct item_call *it = c->ctx;
	Raftplane__Command *cmd = calloc(1, sizeof *cmd);
	Raftplane__Op **ops = calloc(1, sizeof *ops);
	Raftplane__Op *op = calloc(1, sizeof *op);
	char *kind = strdup(rp_kind_name(it->kind)), *name = strdup(it->name);
	void *copy = malloc(len ? len : 1);
	if (!cmd || !ops || !op || !kind || !name || !copy) {
		free(cmd), free(ops), free(op), free(kind), free(name), free(copy);
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		return -1;
	}
	memcpy(copy, value, len);
	raftplane__command__init(cmd);
	rp_op_init(op, is_delete, kind, name, copy, len);
	op->cond = it->cond;
	op->if_version = it->if_version;
	ops[0] = op;
	cmd->ops = ops;
	cmd->n_ops = 1;
	it->cmd = cmd; /* freed with free_unpacked's allocator: plain free */
	return 0;
}

static void do_put(struct rp_call *c, const void *value, size_t len)
{
	struct item_call *it = c->ctx;
	if (parse_preconditions(c) == 0 && single_op(c, 0, value, len) == 0)
		rp_propose_and_respond(c, it->cmd, put_ok);
}

static void do_delete(struct rp_call *c)
{
	struct item_call *it = c->ctx;
	if (parse_preconditions(c) == 0 && single_op(c, 1, "", 0) == 0)
		rp_propose_and_respond(c, it->cmd, delete_ok);
}

/* ---- reads -------------------------------------------------------------- */

static json_t *mesh_object(const struct rp_item *it)
{
	json_t *o = json_loadb(it->value, it->value_len, 0, NULL);
	if (!o)
		o = json_object();
	json_object_set_new(o, "name", json_string(it->name));
	json_object_set_new(o, "version", rp_json_u64((uint64_t)it->version));
	return o;
}

static void read_item(struct rp_call *c)
{
	struct item_call *ic = c->ctx;
	void *value;
	size_t len;
	uint64_t version;
	struct rp_store *s = rp_node_store(c->api->node);
	char msg[160];
	int rv;
	if (ic->at_set && ic->at > rp_store_revision(s)) {
		snprintf(msg, sizeof msg, "revision %llu is above the current revision %llu",
			 (unsigned long long)ic->at, (unsigned long long)rp_store_revision(s));
		rp_respond_error(c, RP_ERR_INVALID, msg, -1);
		return;
	}
	if (ic->at_set)
		rv = rp_store_get_at(s, ic->kind, ic->name, ic->at, &value, &len, &version);
	else
		rv = rp_store_get(s, ic->kind, ic->name, &value, &len, &version);
	if (rv == RP_ERR_GONE) {
		snprintf(msg, sizeof msg, "revision %llu is compacted; history starts after %llu",
			 (unsigned long long)ic->at, (unsigned long long)rp_store_compacted(s));
		rp_respond_error(c, RP_ERR_GONE, msg, -1);
		return;
	}
	if (rv != RP_OK) {
		rp_respond_error(c, rv,
				 rv == RP_ERR_NOT_FOUND
					 ? (ic->at_set ? "no such item at that revision"
						       : "no such item")
					 : NULL,
				 -1);
		return;
	}
	if (ic->kind == RP_KIND_KV) {
		rp_respond_raw(c, 200, "application/octet-stream", value, len, version);
	} else {
		struct rp_item it = {ic->kind, ic->name, value, len, version};
		rp_respond_json(c, 200, mesh_object(&it), version);
	}
	free(value);
}

static char *base64(const unsigned char *p, size_t n)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = tbl[v >> 18 & 63];
		*o++ = tbl[v >> 12 & 63];
		*o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tbl[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int add_list_item(void *arg, const struct rp_item *it)
{
	json_t *items = arg;
	if (json_array_size(items) >= RP_MAX_LIST_ITEMS)
		return 1;
	if (it->kind != RP_KIND_KV) {
		json_array_append_new(items, mesh_object(it));
		return 0;
	}
	json_t *o = json_pack("{s:s,s:I}", "key", it->name, "version", (json_int_t)it->version);
	json_t *s = json_stringn(it->value_len ? it->value : "", it->value_len);
	if (s) {
		json_object_set_new(o, "value", s);
	} else { /* not UTF-8 text */
		char *b = base64(it->value, it->value_len);
		json_object_set_new(o, "value_base64", json_string(b ? b : ""));
		free(b);
	}
	json_array_append_new(items, o);
	return 0;
}

static void read_list(struct rp_call *c)
{
	struct item_call *it = c->ctx;
	struct rp_store *s = rp_node_store(c->api->node);
	json_t *items = json_array();
	rp_store_list(s, it->kind, it->name, add_list_item, items);
	rp_respond_json(c, 200,
			json_pack("{s:o,s:I}", "items", items, "revision",
				  (json_int_t)rp_store_revision(s)),
			0);
}

/* ---- routes ------------------------------------------------------------- */

static void route_item(struct rp_call *c, int kind, const char *method, const char *name,
		       size_t len)
{
	struct item_call *it = item_of(c);
	it->kind = kind;
	if (take_name(c, name, len) != 0)
		return;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
		char rev[32];
		int has = rp_query_param(c->req, "revision", rev, sizeof rev);
		if (has < 0 || (has == 1 && (rp_parse_u64(rev, strlen(rev), &it->at) != 0 ||
					     it->at > INT64_MAX))) {
			rp_respond_error(c, RP_ERR_INVALID, "revision must be a revision number",
					 -1);
			return;
		}
		it->at_set = has == 1;
		run_read(c, read_item);
	} else if (strcmp(method, "DELETE") == 0) {
		do_delete(c);
	} else if (strcmp(method, "PUT") != 0) {
		rp_respond_error(c, RP_ERR_METHOD, "use GET, PUT or DELETE", -1);
	} else if (kind == RP_KIND_KV) {
		do_put(c, c->req->entity.base ? c->req->entity.base : "", c->req->entity.len);
	} else {
		char msg[256];
		int rv = rp_mesh_validate(kind, it->name,
					  c->req->entity.base ? c->req->entity.base : "",
					  c->req->entity.len, &it->canon, &it->canon_len, NULL, msg,
					  sizeof msg);
		if (rv != RP_OK)
			rp_respond_error(c, rv, msg, -1);
		else
			do_put(c, it->canon, it->canon_len);
	}
}

void rp_route_kv(struct rp_call *c, const char *method, const char *name, size_t len)
{
	route_item(c, RP_KIND_KV, method, name, len);
}

void rp_route_mesh(struct rp_call *c, int kind, const char *method, const char *name, size_t len)
{
	route_item(c, kind, method, name, len);
}

void rp_route_kv_list(struct rp_call *c)
{
	struct item_call *it = item_of(c);
	int has = rp_query_param(c->req, "prefix", it->name, sizeof it->name);
	it->kind = RP_KIND_KV;
	if (has == 0)
		it->name[0] = '\0';
	if (has < 0 || (has == 1 && it->name[0] && !rp_name_valid(it->name, strlen(it->name)))) {
		rp_respond_error(c, RP_ERR_INVALID, "prefix must match [A-Za-z0-9._-]{0,128}", -1);
		return;
	}
	run_read(c, read_list);
}

void rp_route_mesh_list(struct rp_call *c, int kind)
{
	struct item_call *it = item_of(c);
	int has = rp_query_param(c->req, "prefix", it->name, sizeof it->name);
	it->kind = kind;
	if (has < 0 || (has == 1 && it->name[0] && !rp_name_valid(it->name, strlen(it->name)))) {
		rp_respond_error(c, RP_ERR_INVALID, "prefix must match [A-Za-z0-9._-]{0,128}", -1);
		return;
	}
	if (has == 0)
		it->name[0] = '\0';
	run_read(c, read_list);
}
