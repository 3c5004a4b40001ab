/* POST /v1/rollback {"revision": N}: every mesh item back to its state at
 * revision N, as one new revision.
 *
 * The plan is made on the ready leader after a read barrier: every mesh
 * item with a change after N is compared as it is now and as it was at N
 * (rp_store_get_at); each one that differs becomes an op of one
 * transaction (txn.c) whose every op carries a precondition on the
 * version seen now, so a change that lands between the plan and the apply
 * makes the whole rollback fail with 412, never half apply.
 *
 * Op order, so that every op passes apply's reference and clash checks
 * (the state at N passed them):
 *   1. delete the routes that differ from N, and the routes that stay but
 *      use a listener that differs (they are put back in step 6);
 *   2. delete the listeners that differ from N (no route uses them now);
 *   3. delete the clusters absent at N (only routes deleted in 1 used them);
 *   4. put the clusters that differ, as at N;
 *   5. put the listeners of N that step 2 deleted or that were absent;
 *   6. put the routes of N that differ, and the routes of step 1 that stay.
 * Listeners are deleted and put back rather than updated in place: two
 * listeners that swapped ports would clash half way otherwise.
 *
 * kv keys, members and tokens are not rolled back. A rollback needing more
 * ops than a transaction holds (RP_MAX_TXN_OPS) is refused (413), never
 * split. With ?dry_run=true the plan goes through txn.c's dry run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "leader.h"
#include "raftplane/err.h"
#include "raftplane/limits.h"
#include "rollback.h"
#include "txn.h"

#define MESH_MASK (1u << RP_KIND_CLUSTERS | 1u << RP_KIND_ROUTES | 1u << RP_KIND_LISTENERS)

/* The call's own state until the transaction is built (c->ctx is then the
 * txn's): in the request pool. */
struct rollback_call {
	uint64_t revision;
	int dry_run;
};

/* One mesh item that changed after N. */
struct rb_item {
	int kind;
	char name[RP_MAX_NAME + 1];
	uint64_t now_v, at_v; /* 0: absent */
	void *at_value;       /* malloc'd value at N, NULL when absent */
	size_t at_len;
	int reput; /* a route that stays, deleted and put back (step 1 and 6) */
};

struct rb_plan {
	struct rp_store *s;
	uint64_t at;
	struct rb_item *items;
	size_t n, cap;
	int rv;
	char why[200];
};

static struct rb_item *plan_find(struct rb_plan *p, int kind, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->items[i].kind == kind && strcmp(p->items[i].name, name) == 0)
			return &p->items[i];
	return NULL;
}

static struct rb_item *plan_add(struct rb_plan *p, int kind, const char *name)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct rb_item *v = realloc(p->items, cap * sizeof *v);
		if (!v)
			return NULL;
		p->items = v;
		p->cap = cap;
	}
	struct rb_item *it = &p->items[p->n++];
	memset(it, 0, sizeof *it);
	it->kind = kind;
	snprintf(it->name, sizeof it->name, "%s", name);
	return it;
}

/* Each mesh item changed after N, once. */
static int collect_change(void *arg, const struct rp_change *ch)
{
	struct rb_plan *p = arg;
	if (plan_find(p, ch->kind, ch->name))
		return 0;
	if (!plan_add(p, ch->kind, ch->name)) {
		p->rv = RP_ERR_NOMEM;
		return 1;
	}
	return 0;
}

/* Now and at N, for every collected item. */
static int look_up(struct rb_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct rb_item *it = &p->items[i];
		void *v = NULL;
		size_t len;
		int rv = rp_store_get(p->s, it->kind, it->name, &v, &len, &it->now_v);
		free(v);
		if (rv == RP_ERR_NOT_FOUND)
			it->now_v = 0;
		else if (rv != RP_OK)
			return rv;
		rv = rp_store_get_at(p->s, it->kind, it->name, p->at, &it->at_value, &it->at_len,
				     &it->at_v);
		if (rv == RP_ERR_NOT_FOUND) {
			it->at_v = 0;
			it->at_value = NULL;
		} else if (rv == RP_ERR_GONE) {
			snprintf(p->why, sizeof p->why,
				 "the value of %s/%s at revision %llu is no longer kept",
				 rp_kind_name(it->kind), it->name, (unsigned long long)p->at);
			return rv;
		} else if (rv != RP_OK) {
			return rv;
		}
	}
	return RP_OK;
}

static int differs(const struct rb_item *it)
{
	return it && it->now_v != it->at_v;
}

/* Routes that stay as they are but use a listener that differs: put back
 * (step 1 and 6), since the listener is deleted and put back. */
static int mark_route(void *arg, const struct rp_item *r)
{
	struct rb_plan *p = arg;
	if (differs(plan_find(p, RP_KIND_ROUTES, r->name)))
		return 0;
	json_t *j = json_loadb(r->value, r->value_len, 0, NULL);
	const char *l = json_string_value(json_object_get(j, "listener"));
	int uses = l && differs(plan_find(p, RP_KIND_LISTENERS, l));
	json_decref(j);
	if (!uses)
		return 0;
	struct rb_item *it = plan_find(p, RP_KIND_ROUTES, r->name);
	if (!it && !(it = plan_add(p, RP_KIND_ROUTES, r->name))) {
		p->rv = RP_ERR_NOMEM;
		return 1;
	}
	it->now_v = it->at_v = r->version;
	free(it->at_value);
	it->at_value = malloc(r->value_len ? r->value_len : 1);
	if (!it->at_value) {
		p->rv = RP_ERR_NOMEM;
		return 1;
	}
	memcpy(it->at_value, r->value, r->value_len);
	it->at_len = r->value_len;
	it->reput = 1;
	return 0;
}

/* Append one op (cmd->ops has room: at most two per item); the command
 * owns what it points to. */
static int add_op(Raftplane__Command *cmd, const struct rb_item *it, int is_delete)
{
	Raftplane__Op *op = calloc(1, sizeof *op);
	if (!op)
		return RP_ERR_NOMEM;
	cmd->ops[cmd->n_ops++] = op;
	void *value = NULL;
	if (!is_delete && !(value = malloc(it->at_len ? it->at_len : 1)))
		return RP_ERR_NOMEM;
	if (value)
		memcpy(value, it->at_value, it->at_len);
	rp_op_init(op, is_delete, strdup(rp_kind_name(it->kind)), strdup(it->name), value,
		   is_delete ? 0 : it->at_len);
	if (!op->kind || !op->name)
		return RP_ERR_NOMEM;
	/* a delete (or an update in place) holds the version seen now; a put
	 * after this transaction's own delete, or of an absent item, needs it
	 * absent */
	uint64_t v = is_delete || (it->kind == RP_KIND_CLUSTERS) ? it->now_v : 0;
	op->cond = v ? RAFTPLANE__OP__COND__IF_VERSION : RAFTPLANE__OP__COND__IF_ABSENT;
	op->if_version = v;
	return RP_OK;
}

/* Steps 1 to 6 of the header. */
static int build_ops(struct rb_plan *p, Raftplane__Command *cmd)
{
	int rv = RP_OK;
	for (int step = 1; step <= 6 && rv == RP_OK; step++) {
		for (size_t i = 0; i < p->n && rv == RP_OK; i++) {
			const struct rb_item *it = &p->items[i];
			int moves = differs(it) || it->reput;
			int del = 0, put = 0;
			if (!moves)
				continue;
			switch (step) {
			case 1: del = it->kind == RP_KIND_ROUTES && it->now_v; break;
			case 2: del = it->kind == RP_KIND_LISTENERS && it->now_v; break;
			case 3: del = it->kind == RP_KIND_CLUSTERS && it->now_v && !it->at_v; break;
			case 4: put = it->kind == RP_KIND_CLUSTERS && it->at_v; break;
			case 5: put = it->kind == RP_KIND_LISTENERS && it->at_v; break;
			case 6: put = it->kind == RP_KIND_ROUTES && it->at_v; break;
			}
			if (del || put)
				rv = add_op(cmd, it, del);
		}
	}
	return rv;
}

static void plan_free(struct rb_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].at_value);
	free(p->items);
}

/* On the ready leader after a read barrier: plan, then submit. */
static void rollback_plan(struct rp_call *c)
{
	struct rollback_call *rb = c->ctx;
	struct rb_plan p = {.s = rp_node_store(c->api->node), .at = rb->revision};
	uint64_t now = rp_store_revision(p.s), compacted = rp_store_compacted(p.s);
	Raftplane__Command *cmd = NULL;
	char msg[300];
	int rv;
	if (p.at > now) {
		snprintf(msg, sizeof msg, "revision %llu is ahead of the current revision %llu",
			 (unsigned long long)p.at, (unsigned long long)now);
		rp_respond_error(c, RP_ERR_INVALID, msg, -1);
		return;
	}
	if (p.at < compacted) {
		snprintf(msg, sizeof msg,
			 "revision %llu is older than the kept history (it starts after %llu)",
			 (unsigned long long)p.at, (unsigned long long)compacted);
		rp_respond_error(c, RP_ERR_GONE, msg, -1);
		return;
	}
	rv = rp_store_changes(p.s, p.at, MESH_MASK, collect_change, &p);
	if (rv == RP_OK && p.rv == RP_OK)
		rv = look_up(&p);
	if (rv == RP_OK && p.rv == RP_OK)
		rv = rp_store_list(p.s, RP_KIND_ROUTES, "", mark_route, &p) ? p.rv : RP_OK;
	if (rv == RP_OK)
		rv = p.rv;
	if (rv != RP_OK) {
		rp_respond_error(c, rv, p.why[0] ? p.why : NULL, -1);
		goto out;
	}
	/* the whole plan first, checked against the limit after: the order and
	 * the count come from build_ops alone */
	if (!(cmd = calloc(1, sizeof *cmd))) {
		rp_respond_error(c, RP_ERR_NOMEM, NULL, -1);
		goto out;
	}
	raftplane__command__init(cmd);
	if (!(cmd->ops = calloc(2 * p.n + 1, sizeof *cmd->ops)) ||
	    (rv = build_ops(&p, cmd)) != RP_OK) {
		rp_respond_error(c, cmd->ops ? rv : RP_ERR_NOMEM, NULL, -1);
		goto drop;
	}
	if (cmd->n_ops == 0) {
		rp_respond_json(c, 200,
				json_pack("{s:I,s:I,s:[],s:b}", "revision", (json_int_t)now,
					  "rolled_back_to", (json_int_t)p.at, "results",
					  "unchanged", 1),
				0);
		goto drop;
	}
	if (cmd->n_ops > RP_MAX_TXN_OPS) {
		snprintf(msg, sizeof msg,
			 "rolling back to revision %llu takes %zu ops, more than one transaction "
			 "holds (%d); roll back to a later revision first",
			 (unsigned long long)p.at, cmd->n_ops, RP_MAX_TXN_OPS);
		rp_respond_error(c, RP_ERR_TOO_LARGE, msg, -1);
		goto drop;
	}
	struct rp_txn_opts o = {.dry_run = rb->dry_run, .rollback_to = p.at};
	c->ctx = NULL; /* the txn's from here */
	rp_txn_submit(c, cmd, &o);
	goto out;
drop:
	raftplane__command__free_unpacked(cmd, NULL);
out:
	plan_free(&p);
}

void rp_route_rollback(struct rp_call *c)
{
	h2o_iovec_t e = c->req->entity;
	json_error_t jerr;
	int dry_run;
	if (rp_txn_dry_run_param(c, &dry_run) != 0) {
		rp_respond_error(c, RP_ERR_INVALID,
				 "/v1/rollback takes one query parameter: dry_run=true or "
				 "dry_run=false",
				 -1);
		return;
	}
	json_t *body = e.base ? json_loadb(e.base, e.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	json_t *rev = json_object_get(body, "revision");
	if (!json_is_object(body) || json_object_size(body) != 1 || !json_is_integer(rev) ||
	    json_integer_value(rev) < 1) {
		rp_respond_error(c, RP_ERR_INVALID,
				 "body must be {\"revision\": N} with N a revision >= 1", -1);
		json_decref(body);
		return;
	}
	struct rollback_call *rb = rp_call_alloc(c, sizeof *rb, NULL);
	rb->revision = (uint64_t)json_integer_value(rev);
	rb->dry_run = dry_run;
	c->ctx = rb;
	json_decref(body);
	rp_leader_read(c, rollback_plan);
}
