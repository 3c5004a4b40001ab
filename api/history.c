/* GET /v1/history (docs/api.md): who changed what, from where and when.
 *
 * Records come from storage (rp_store_history: one per revision kept in
 * the change history, with its audit row). The query is validated in full
 * before anything is read: a bad value is 400. Read on the ready leader
 * after a barrier, like a linearizable GET. */
#include <stdio.h>
#include <string.h>

#include "history.h"
#include "json.h"
#include "leader.h"
#include "params.h"
#include "raftplane/err.h"

struct history_call {
	struct rp_history_query q;
	char actor[RP_MAX_ACTOR];
	char name[RP_MAX_NAME + 1];
};

/* A u64 parameter: 0 absent, 1 set, -1 bad (message in @msg). */
static int u64_param(h2o_req_t *req, const char *key, uint64_t *out, char *msg, size_t msglen)
{
	char v[32];
	int has = rp_query_param(req, key, v, sizeof v);
	if (has == 0)
		return 0;
	if (has < 0 || rp_parse_u64(v, strlen(v), out) != 0 || *out > INT64_MAX) {
		snprintf(msg, msglen, "%s must be a revision (decimal digits)", key);
		return -1;
	}
	return 1;
}

static int actor_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= RP_MAX_ACTOR)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

int rp_history_query_parse(h2o_req_t *req, struct rp_history_query *q, char *actor, size_t actorlen,
			   char *name, size_t namelen, char *msg, size_t msglen)
{
	char v[RP_MAX_ACTOR];
	uint64_t n;
	int has;
	memset(q, 0, sizeof *q);
	q->kind = -1;
	q->limit = RP_HISTORY_DEFAULT_LIMIT;
	actor[0] = name[0] = '\0';
	q->actor = NULL; /* any */
	q->name = name;  /* "" any */
	if ((has = rp_query_param(req, "kind", v, sizeof v)) != 0) {
		q->kind = has > 0 ? rp_kind_parse(v, strlen(v)) : -1;
		if (q->kind < 0) {
			snprintf(msg, msglen,
				 "kind must be kv, clusters, routes, listeners, members or tokens");
			return -1;
		}
	}
	if ((has = rp_query_param(req, "name", name, namelen)) != 0) {
		if (has < 0 || !rp_name_valid(name, strlen(name))) {
			snprintf(msg, msglen, "name must match [A-Za-z0-9._-]{1,128}");
			return -1;
		}
	}
	if ((has = rp_query_param(req, "actor", actor, actorlen)) != 0) {
		if (has < 0 || !actor_valid(actor)) {
			snprintf(msg, msglen,
				 "actor must be 1 to %d printable ASCII characters "
				 "(token:NAME, cert:ID, anonymous, system)",
				 RP_MAX_ACTOR - 1);
			return -1;
		}
		/* internal proposals record no actor: "system" asks for those */
		q->actor = strcmp(actor, "system") == 0 ? "" : actor;
	}
	if (u64_param(req, "from_revision", &q->from_revision, msg, msglen) < 0 ||
	    u64_param(req, "to_revision", &q->to_revision, msg, msglen) < 0)
		return -1;
	if (q->to_revision && q->from_revision > q->to_revision) {
		snprintf(msg, msglen, "from_revision must not be above to_revision");
		return -1;
	}
	if ((has = u64_param(req, "limit", &n, msg, msglen)) < 0)
		return -1;
	if (has > 0) {
		if (n < 1 || n > RP_HISTORY_MAX_LIMIT) {
			snprintf(msg, msglen, "limit must be 1 to %d", RP_HISTORY_MAX_LIMIT);
			return -1;
		}
		q->limit = (unsigned)n;
	}
	if ((has = rp_query_param(req, "order", v, sizeof v)) != 0) {
		if (has > 0 && strcmp(v, "asc") == 0)
			q->oldest_first = 1;
		else if (has < 0 || strcmp(v, "desc") != 0) {
			snprintf(msg, msglen, "order must be desc (newest first) or asc");
			return -1;
		}
	}
	return 0;
}

struct collect {
	json_t *arr;
	size_t changes;
	int truncated;
};

static int add_record(void *arg, const struct rp_history_record *r)
{
	struct collect *col = arg;
	if (col->changes + r->n_changes > RP_HISTORY_MAX_CHANGES && json_array_size(col->arr)) {
		col->truncated = 1;
		return 1;
	}
	json_t *chs = json_array();
	for (size_t i = 0; i < r->n_changes; i++) {
		const struct rp_change *ch = &r->changes[i];
		json_array_append_new(chs, json_pack("{s:s,s:s,s:s,s:o}", "kind",
						     rp_kind_name(ch->kind), "name", ch->name,
						     "type", ch->deleted ? "delete" : "put",
						     "version", rp_json_u64(ch->version)));
	}
	col->changes += r->n_changes;
	json_array_append_new(col->arr,
			      json_pack("{s:o,s:o,s:s,s:s,s:o}", "revision",
					rp_json_u64(r->revision), "time", rp_json_u64(r->time_ms),
					"actor", r->actor[0] ? r->actor : "system", "address",
					r->address, "changes", chs));
	return 0;
}

static void history_reader(struct rp_call *c)
{
	struct history_call *h = c->ctx;
	struct rp_store *s = rp_node_store(c->api->node);
	struct collect col = {json_array(), 0, 0};
	int rv = rp_store_history(s, &h->q, add_record, &col);
	if (rv != RP_OK && rv != 1) {
		json_decref(col.arr);
		rp_respond_error(c, rv, NULL, -1);
		return;
	}
	rp_respond_json(c, 200,
			json_pack("{s:o,s:o,s:s,s:b,s:o}", "revision",
				  rp_json_u64(rp_store_revision(s)), "compacted",
				  rp_json_u64(rp_store_compacted(s)), "order",
				  h->q.oldest_first ? "asc" : "desc", "truncated", col.truncated,
				  "history", col.arr),
			0);
}

void rp_route_history(struct rp_call *c)
{
	struct history_call *h = rp_call_alloc(c, sizeof *h, NULL);
	char msg[200];
	c->ctx = h;
	if (rp_history_query_parse(c->req, &h->q, h->actor, sizeof h->actor, h->name,
				   sizeof h->name, msg, sizeof msg) != 0) {
		rp_respond_error(c, RP_ERR_INVALID, msg, -1);
		return;
	}
	rp_leader_read(c, history_reader);
}
