/* POST /v1/txn: several puts and deletes applied all or nothing.
 *
 * POST /v1/txn?dry_run=true: the same transaction applied by the same code
 * (rp_store_dry_run) on the ready leader after a read barrier, and rolled
 * back. The answer says what each op would do and which proxies would get
 * a new snapshot version: every node id a listener names, before or
 * after, and every proxy attached to any member (the fleet view, fleet.h),
 * plus "other_nodes" for ids known to neither, which only "*" listeners
 * reach. Nothing is proposed, so nothing can be committed.
 *
 * A call's state (struct txn_call, c->ctx) is in the request pool; the
 * command it builds is freed when the request goes (txn_dispose). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "fleet.h"
#include "leader.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "snapshot.h"
#include "txn.h"

struct txn_call {
	Raftplane__Command *cmd; /* heap-built, NULL until parsing starts */
	struct rp_txn_opts opts;
};

static void txn_dispose(void *p)
{
	struct txn_call *t = p;
	if (t->cmd)
		raftplane__command__free_unpacked(t->cmd, NULL);
}

/* Every op's result: a put's version is @revision, a delete's 0. */
static json_t *op_results(const Raftplane__Command *cmd, uint64_t revision)
{
	json_t *results = json_array();
	for (size_t i = 0; i < cmd->n_ops; i++) {
		const Raftplane__Op *op = cmd->ops[i];
		int del = op->type == RAFTPLANE__OP__TYPE__DELETE;
		json_array_append_new(results,
				      json_pack("{s:s,s:s,s:s,s:I}", "op", del ? "delete" : "put",
						"kind", op->kind, "name", op->name, "version",
						(json_int_t)(del ? 0 : revision)));
	}
	return results;
}

static void txn_ok(struct rp_call *c, const struct rp_apply_result *res)
{
	struct txn_call *t = c->ctx;
	json_t *results = op_results(t->cmd, res->revision);
	json_t *answer = json_pack("{s:I,s:o}", "revision", (json_int_t)res->revision, "results",
				   results);
	if (t->opts.rollback_to)
		json_object_set_new(answer, "rolled_back_to",
				    json_integer((json_int_t)t->opts.rollback_to));
	rp_respond_json(c, 200, answer, 0);
}

/* The value of a put, as bytes: a string for kv, a canonical object else. */
static int op_value(json_t *jop, int kind, const char *name, Raftplane__Op *op, char *msg,
		    size_t msglen)
{
	json_t *v = json_object_get(jop, "value");
	if (!v) {
		snprintf(msg, msglen, "put needs \"value\"");
		return RP_ERR_INVALID;
	}
	if (kind == RP_KIND_KV) {
		if (!json_is_string(v)) {
			snprintf(msg, msglen, "kv value must be a string");
			return RP_ERR_INVALID;
		}
		size_t len = json_string_length(v);
		if (len > RP_MAX_BODY) {
			snprintf(msg, msglen, "value over 1 MiB");
			return RP_ERR_TOO_LARGE;
		}
		op->value.data = malloc(len ? len : 1);
		if (!op->value.data)
			return RP_ERR_NOMEM;
		memcpy(op->value.data, json_string_value(v), len);
		op->value.len = len;
		return RP_OK;
	}
	if (!json_is_object(v)) {
		snprintf(msg, msglen, "%s value must be an object", rp_kind_name(kind));
		return RP_ERR_INVALID;
	}
	char *text = json_dumps(v, JSON_COMPACT), *canon = NULL;
	size_t canon_len = 0;
	if (!text)
		return RP_ERR_NOMEM;
	int rv = rp_mesh_validate(kind, name, text, strlen(text), &canon, &canon_len, NULL, msg,
				  msglen);
	free(text);
	op->value.data = (uint8_t *)canon;
	op->value.len = canon_len;
	return rv;
}

static int parse_op(json_t *jop, Raftplane__Op *op, char *msg, size_t msglen)
{
	static const char *const fields[] = {"op", "kind", "name", "value", "if_version", NULL};
	const char *key;
	json_t *val;
	if (!json_is_object(jop)) {
		snprintf(msg, msglen, "must be an object");
		return RP_ERR_INVALID;
	}
	json_object_foreach(jop, key, val)
	{
		int ok = 0;
		for (const char *const *f = fields; *f; f++)
			ok |= strcmp(*f, key) == 0;
		if (!ok) {
			snprintf(msg, msglen, "unknown field \"%s\"", key);
			return RP_ERR_INVALID;
		}
	}
	const char *o = json_string_value(json_object_get(jop, "op"));
	const char *k = json_string_value(json_object_get(jop, "kind"));
	const char *n = json_string_value(json_object_get(jop, "name"));
	json_t *iv = json_object_get(jop, "if_version");
	int kind = k ? rp_kind_parse(k, strlen(k)) : -1;
	if (!o || (strcmp(o, "put") != 0 && strcmp(o, "delete") != 0)) {
		snprintf(msg, msglen, "\"op\" must be \"put\" or \"delete\"");
		return RP_ERR_INVALID;
	}
	if (kind < 0 || kind >= RP_KIND_MEMBERS) {
		snprintf(msg, msglen, "\"kind\" must be kv, clusters, routes or listeners");
		return RP_ERR_INVALID;
	}
	if (!n || !rp_name_valid(n, strlen(n))) {
		snprintf(msg, msglen, "\"name\" must match [A-Za-z0-9._-]{1,128}");
		return RP_ERR_INVALID;
	}
	if (iv && (!json_is_integer(iv) || json_integer_value(iv) < 0)) {
		snprintf(msg, msglen, "\"if_version\" must be an integer >= 0 (0: must not exist)");
		return RP_ERR_INVALID;
	}
	int is_delete = strcmp(o, "delete") == 0;
	if (is_delete && json_object_get(jop, "value")) {
		snprintf(msg, msglen, "delete takes no \"value\"");
		return RP_ERR_INVALID;
	}
	rp_op_init(op, is_delete, strdup(rp_kind_name(kind)), strdup(n), NULL, 0);
	if (!op->kind || !op->name)
		return RP_ERR_NOMEM;
	if (iv) {
		op->if_version = (uint64_t)json_integer_value(iv);
		op->cond = op->if_version ? RAFTPLANE__OP__COND__IF_VERSION
					  : RAFTPLANE__OP__COND__IF_ABSENT;
	}
	return is_delete ? RP_OK : op_value(jop, kind, n, op, msg, msglen);
}

static int parse_txn(struct txn_call *t, json_t *body, int *bad_index, char *msg, size_t msglen)
{
	json_t *ops = json_object_get(body, "ops");
	if (json_object_size(body) != 1 || !json_is_array(ops)) {
		snprintf(msg, msglen, "body must be {\"ops\":[...]}");
		return RP_ERR_INVALID;
	}
	size_t n = json_array_size(ops);
	if (n == 0 || n > RP_MAX_TXN_OPS) {
		snprintf(msg, msglen, "a transaction holds 1 to %d ops", RP_MAX_TXN_OPS);
		return RP_ERR_INVALID;
	}
	t->cmd = calloc(1, sizeof *t->cmd);
	if (!t->cmd)
		return RP_ERR_NOMEM;
	raftplane__command__init(t->cmd);
	t->cmd->ops = calloc(n, sizeof *t->cmd->ops);
	if (!t->cmd->ops)
		return RP_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		t->cmd->ops[i] = calloc(1, sizeof **t->cmd->ops);
		if (!t->cmd->ops[i])
			return RP_ERR_NOMEM;
		raftplane__op__init(t->cmd->ops[i]);
		t->cmd->n_ops = i + 1;
		char opmsg[200];
		int rv = parse_op(json_array_get(ops, i), t->cmd->ops[i], opmsg, sizeof opmsg);
		if (rv != RP_OK) {
			*bad_index = (int)i;
			snprintf(msg, msglen, "ops[%zu]: %s", i, opmsg);
			return rv;
		}
	}
	return RP_OK;
}

/* ---- dry run ------------------------------------------------------------ */

/* The node ids a dry run reports, each with its version before ("v") and
 * after ("new") the change, and whether a member has it attached. */
struct dry_nodes {
	json_t *by_id; /* id -> {"v":N,"new":N,"attached":bool} */
	const struct rp_mesh *mesh;
	int after; /* filling "new" (else "v") */
};

static int dry_add_node(void *arg, const char *id)
{
	struct dry_nodes *d = arg;
	if (!json_object_get(d->by_id, id))
		json_object_set_new(d->by_id, id,
				    json_pack("{s:I,s:b}", "v", (json_int_t)0, "attached", 0));
	return 0;
}

/* Fill d->after ? "new" : "v" of every node id (and of "" for the others). */
static void dry_versions(struct dry_nodes *d)
{
	const char *id;
	json_t *e;
	json_object_foreach(d->by_id, id, e)
		json_object_set_new(e, d->after ? "new" : "v",
				    json_integer((json_int_t)rp_mesh_node_version(d->mesh, id)));
}

static int dry_inspect(void *arg, struct rp_store *s)
{
	struct dry_nodes *d = arg;
	struct rp_mesh *after = NULL;
	int rv = rp_mesh_build(s, &after);
	if (rv != RP_OK)
		return rv;
	d->mesh = after;
	d->after = 1;
	rp_mesh_each_node(after, dry_add_node, d); /* ids new to a listener start at 0 */
	dry_versions(d);
	rp_mesh_destroy(after);
	d->mesh = NULL;
	return RP_OK;
}

/* What op @op would do to the item as stored now. */
static json_t *dry_change(struct rp_store *s, const Raftplane__Op *op)
{
	int kind = rp_kind_parse(op->kind, strlen(op->kind));
	void *value = NULL;
	size_t len = 0;
	uint64_t version = 0;
	int found = rp_store_get(s, kind, op->name, &value, &len, &version) == RP_OK;
	const char *what;
	if (op->type == RAFTPLANE__OP__TYPE__DELETE)
		what = "delete";
	else if (!found)
		what = "create";
	else if (len == op->value.len && (len == 0 || memcmp(value, op->value.data, len) == 0))
		what = "unchanged"; /* stored again all the same: a new version */
	else
		what = "update";
	free(value);
	return json_pack("{s:s,s:s,s:s,s:s,s:I}", "op",
			 op->type == RAFTPLANE__OP__TYPE__DELETE ? "delete" : "put", "kind",
			 op->kind, "name", op->name, "change", what, "current_version",
			 (json_int_t)version);
}

static void dry_answer(struct rp_call *c, const struct rp_apply_result *res, json_t *changes,
		       json_t *by_id, json_t *unreachable)
{
	struct txn_call *t = c->ctx;
	json_t *results = op_results(t->cmd, res->revision), *proxies = json_array(),
	       *others = json_null();
	json_int_t unchanged = 0;
	const char *id;
	json_t *e;
	json_object_foreach(by_id, id, e)
	{
		json_t *v = json_object_get(e, "v"), *nv = json_object_get(e, "new");
		if (json_equal(v, nv)) {
			unchanged += id[0] != '\0';
			continue;
		}
		if (!id[0]) {
			others = json_pack("{s:O,s:O}", "version", v, "new_version", nv);
			continue;
		}
		json_array_append_new(proxies,
				      json_pack("{s:s,s:O,s:O,s:O}", "node_id", id, "version", v,
						"new_version", nv, "attached",
						json_object_get(e, "attached")));
	}
	json_t *answer = json_pack("{s:b,s:I,s:I,s:o,s:O,s:o,s:o,s:I,s:O}", "dry_run", 1,
				   "revision", (json_int_t)(res->revision - 1), "would_be_revision",
				   (json_int_t)res->revision, "results", results, "changes",
				   changes, "proxies", proxies, "other_nodes", others,
				   "unchanged_proxies", unchanged, "unreachable",
				   unreachable ? unreachable : json_null());
	if (t->opts.rollback_to)
		json_object_set_new(answer, "rolled_back_to",
				    json_integer((json_int_t)t->opts.rollback_to));
	rp_respond_json(c, 200, answer, 0);
}

/* On the leader, with the fleet: run the dry run and answer. */
static void dry_with_fleet(struct rp_call *c, json_t *fleet, json_t *unreachable)
{
	struct txn_call *t = c->ctx;
	struct rp_store *s = rp_node_store(c->api->node);
	struct dry_nodes d = {.by_id = json_object()};
	struct rp_mesh *before = NULL;
	struct rp_apply_result res;
	json_t *changes = json_array();
	void *buf = NULL;
	size_t len = 0;
	int rv = rp_mesh_build(s, &before);
	if (rv == RP_OK)
		rv = rp_command_pack(t->cmd, malloc, &buf, &len);
	if (rv != RP_OK) {
		rp_respond_error(c, rv, "dry run: building the current mesh", -1);
		goto out;
	}
	const char *id;
	json_t *e;
	json_object_foreach(fleet, id, e) if (id[0])
		json_object_set_new(d.by_id, id, json_pack("{s:b}", "attached", 1));
	rp_mesh_each_node(before, dry_add_node, &d);
	dry_add_node(&d, ""); /* ids no listener names: only "*" listeners reach them */
	d.mesh = before;
	dry_versions(&d);
	for (size_t i = 0; i < t->cmd->n_ops; i++)
		json_array_append_new(changes, dry_change(s, t->cmd->ops[i]));
	rv = rp_store_dry_run(s, buf, len, &res, dry_inspect, &d);
	if (rv != RP_OK)
		rp_respond_error(c, rv, res.message, -1);
	else if (res.status != RP_OK)
		rp_respond_error(c, res.status, res.message, res.op_index);
	else
		dry_answer(c, &res, json_incref(changes), d.by_id, unreachable);
out:
	free(buf);
	rp_mesh_destroy(before);
	json_decref(changes);
	json_decref(d.by_id);
}

/* The ready leader, after a read barrier: get the fleet, then dry-run. */
static void dry_on_leader(struct rp_call *c)
{
	rp_fleet_view(c, dry_with_fleet);
}

int rp_txn_dry_run_param(struct rp_call *c, int *dry_run)
{
	*dry_run = 0;
	if (c->req->query_at == SIZE_MAX)
		return 0;
	/* only dry_run, and exactly: an unknown parameter is refused, never
	 * ignored (a dry run misspelt must not commit) */
	h2o_iovec_t q = h2o_iovec_init(c->req->path.base + c->req->query_at,
				       c->req->path.len - c->req->query_at);
	if (h2o_memis(q.base, q.len, H2O_STRLIT("?dry_run=true")))
		*dry_run = 1;
	else if (!h2o_memis(q.base, q.len, H2O_STRLIT("?dry_run=false")))
		return -1;
	return 0;
}

void rp_txn_submit(struct rp_call *c, Raftplane__Command *cmd, const struct rp_txn_opts *o)
{
	struct txn_call *t = c->ctx;
	if (!t) { /* a command built elsewhere (rollback.c) */
		t = rp_call_alloc(c, sizeof *t, txn_dispose);
		t->cmd = cmd;
		c->ctx = t;
	}
	assert(t->cmd == cmd);
	t->opts = *o;
	if (o->dry_run)
		rp_leader_read(c, dry_on_leader);
	else
		rp_propose_and_respond(c, t->cmd, txn_ok);
}

void rp_route_txn(struct rp_call *c)
{
	json_error_t jerr;
	char msg[256] = "";
	int bad = -1, dry_run;
	h2o_iovec_t e = c->req->entity;
	if (rp_txn_dry_run_param(c, &dry_run) != 0) {
		rp_respond_error(c, RP_ERR_INVALID,
				 "/v1/txn takes one query parameter: dry_run=true or dry_run=false",
				 -1);
		return;
	}
	json_t *body = e.base ? json_loadb(e.base, e.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!body || !json_is_object(body)) {
		rp_respond_error(c, RP_ERR_INVALID, "body must be a JSON object {\"ops\":[...]}",
				 -1);
		json_decref(body);
		return;
	}
	struct txn_call *t = rp_call_alloc(c, sizeof *t, txn_dispose);
	c->ctx = t;
	int rv = parse_txn(t, body, &bad, msg, sizeof msg);
	json_decref(body);
	if (rv != RP_OK) {
		rp_respond_error(c, rv, msg, bad);
		return;
	}
	struct rp_txn_opts o = {.dry_run = dry_run};
	rp_txn_submit(c, t->cmd, &o);
}
