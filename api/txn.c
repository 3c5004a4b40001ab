/* POST /v1/txn: several puts and deletes applied all or nothing.
 *
 * A call's state (struct txn_call, c->ctx) is in the request pool; the
 * command it builds is freed when the request goes (txn_dispose). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "leader.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "txn.h"

struct txn_call {
	Raftplane__Command *cmd; /* heap-built, NULL until parsing starts */
};

static void txn_dispose(void *p)
{
	struct txn_call *t = p;
	if (t->cmd)
		raftplane__command__free_unpacked(t->cmd, NULL);
}

static void txn_ok(struct rp_call *c, const struct rp_apply_result *res)
{
	struct txn_call *t = c->ctx;
	json_t *results = json_array();
	for (size_t i = 0; i < t->cmd->n_ops; i++) {
		const Raftplane__Op *op = t->cmd->ops[i];
		int del = op->type == RAFTPLANE__OP__TYPE__DELETE;
		json_array_append_new(results,
				      json_pack("{s:s,s:s,s:s,s:I}", "op", del ? "delete" : "put",
						"kind", op->kind, "name", op->name, "version",
						(json_int_t)(del ? 0 : res->revision)));
	}
	rp_respond_json(c, 200,
			json_pack("{s:I,s:o}", "revision", (json_int_t)res->revision, "results",
				  results),
			0);
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

void rp_route_txn(struct rp_call *c)
{
	json_error_t jerr;
	char msg[256] = "";
	int bad = -1;
	h2o_iovec_t e = c->req->entity;
	if (c->req->query_at != SIZE_MAX) {
		/* refused, never ignored: a client asking for a dry run must not
		 * get a commit instead */
		rp_respond_error(c, RP_ERR_INVALID,
				 "/v1/txn takes no query parameters (dry_run is not supported "
				 "by this release)",
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
	rp_propose_and_respond(c, t->cmd, txn_ok);
}
