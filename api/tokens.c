/* /v1/tokens (docs/api.md): API tokens in the replicated state.
 *
 * A token's secret is made here, on the leader (a follower forwards the
 * request before it proposes anything): 32 bytes of RAND_bytes, answered
 * once in the 201 body as the token string (auth.h) and never stored,
 * proposed or logged; only its SHA-256 is proposed. The call's state,
 * secret included, is in the request pool and wiped when the request
 * goes. */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "json.h"
#include "leader.h"
#include "raftplane/err.h"
#include "tokens.h"

struct token_call {
	Raftplane__Command cmd;
	Raftplane__Token tok;
	char name[RP_MAX_TOKEN_NAME + 1];
	int role;
	unsigned char hash[RP_TOKEN_HASH_LEN];
	char token[RP_TOKEN_STRLEN + 1]; /* the secret, for the 201 answer only */
};

static void wipe(void *p)
{
	struct token_call *t = p;
	OPENSSL_cleanse(t->token, sizeof t->token);
}

static struct token_call *token_of(struct rp_call *c)
{
	if (!c->ctx)
		c->ctx = rp_call_alloc(c, sizeof(struct token_call), wipe);
	return c->ctx;
}

static json_t *token_json(const struct rp_token *t)
{
	return json_pack("{s:s,s:s,s:o,s:s}", "name", t->name, "role", rp_token_role_name(t->role),
			 "created", rp_json_u64(t->created), "created_by", t->created_by);
}

/* ---- create ----------------------------------------------------------- */

static void created(struct rp_call *c, const struct rp_apply_result *res)
{
	struct token_call *t = c->ctx;
	struct rp_token row;
	uint64_t when = rp_wall_ms();
	if (rp_store_token_get(rp_node_store(c->api->node), t->name, &row) == RP_OK)
		when = row.created;
	rp_respond_json(c, 201,
			json_pack("{s:s,s:s,s:s,s:o,s:o}", "name", t->name, "role",
				  rp_token_role_name(t->role), "token", t->token, "created",
				  rp_json_u64(when), "revision", rp_json_u64(res->revision)),
			0);
	OPENSSL_cleanse(t->token, sizeof t->token);
}

static int parse_create(struct rp_call *c, struct token_call *t, char *msg, size_t msglen)
{
	h2o_iovec_t e = c->req->entity;
	json_t *o = e.base ? json_loadb(e.base, e.len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	const char *key, *name, *role;
	json_t *val;
	int rv = RP_ERR_INVALID;
	if (!json_is_object(o)) {
		snprintf(msg, msglen, "body must be {\"name\":...,\"role\":\"read|write|admin\"}");
		goto out;
	}
	json_object_foreach(o, key, val)
	{
		if (strcmp(key, "name") != 0 && strcmp(key, "role") != 0) {
			snprintf(msg, msglen, "unknown field \"%.64s\"", key);
			goto out;
		}
	}
	name = json_string_value(json_object_get(o, "name"));
	role = json_string_value(json_object_get(o, "role"));
	if (!name || !rp_token_name_valid(name, strlen(name))) {
		snprintf(msg, msglen, "\"name\" must match [A-Za-z0-9._-]{1,64}");
		goto out;
	}
	if (!role || rp_token_role_parse(role) < 0) {
		snprintf(msg, msglen, "\"role\" must be read, write or admin");
		goto out;
	}
	snprintf(t->name, sizeof t->name, "%s", name);
	t->role = rp_token_role_parse(role);
	rv = RP_OK;
out:
	json_decref(o);
	return rv;
}

static void create(struct rp_call *c)
{
	struct token_call *t = token_of(c);
	unsigned char secret[RP_TOKEN_SECRET_LEN];
	char msg[160];
	if (parse_create(c, t, msg, sizeof msg) != RP_OK) {
		rp_respond_error(c, RP_ERR_INVALID, msg, -1);
		return;
	}
	if (RAND_bytes(secret, sizeof secret) != 1) {
		rp_respond_error(c, RP_ERR_INTERNAL, "no random bytes for a token", -1);
		return;
	}
	rp_token_format(secret, t->token);
	rp_token_hash(secret, t->hash);
	OPENSSL_cleanse(secret, sizeof secret);
	raftplane__command__init(&t->cmd);
	raftplane__token__init(&t->tok);
	t->cmd.type = RAFTPLANE__COMMAND__TYPE__TOKEN_PUT;
	t->tok.name = t->name;
	t->tok.role = (uint32_t)t->role;
	t->tok.hash.data = t->hash;
	t->tok.hash.len = sizeof t->hash;
	t->cmd.token = &t->tok;
	rp_propose_and_respond(c, &t->cmd, created);
}

/* ---- list and show ------------------------------------------------------- */

static int add_token(void *arg, const struct rp_token *t)
{
	json_array_append_new(arg, token_json(t));
	return 0;
}

static void list_reader(struct rp_call *c)
{
	struct rp_store *s = rp_node_store(c->api->node);
	json_t *arr = json_array();
	int rv = rp_store_tokens(s, add_token, arr);
	if (rv != RP_OK) {
		json_decref(arr);
		rp_respond_error(c, rv, NULL, -1);
		return;
	}
	rp_respond_json(c, 200,
			json_pack("{s:o,s:o}", "tokens", arr, "revision",
				  rp_json_u64(rp_store_revision(s))),
			0);
}

static void show_reader(struct rp_call *c)
{
	struct token_call *t = c->ctx;
	struct rp_token row;
	int rv = rp_store_token_get(rp_node_store(c->api->node), t->name, &row);
	if (rv == RP_ERR_NOT_FOUND)
		rp_respond_error(c, rv, "no such token", -1);
	else if (rv != RP_OK)
		rp_respond_error(c, rv, NULL, -1);
	else
		rp_respond_json(c, 200, token_json(&row), 0);
}

/* ---- revoke -------------------------------------------------------------- */

static void revoked(struct rp_call *c, const struct rp_apply_result *res)
{
	struct token_call *t = c->ctx;
	rp_respond_json(c, 200,
			json_pack("{s:s,s:b,s:o}", "name", t->name, "revoked", 1, "revision",
				  rp_json_u64(res->revision)),
			0);
}

static void revoke_token(struct rp_call *c)
{
	struct token_call *t = c->ctx;
	raftplane__command__init(&t->cmd);
	raftplane__token__init(&t->tok);
	t->cmd.type = RAFTPLANE__COMMAND__TYPE__TOKEN_DELETE;
	t->tok.name = t->name;
	t->cmd.token = &t->tok;
	rp_propose_and_respond(c, &t->cmd, revoked);
}

/* ---- routes -------------------------------------------------------------- */

void rp_route_tokens(struct rp_call *c, const char *method)
{
	if (strcmp(method, "POST") == 0)
		create(c);
	else
		rp_leader_read(c, list_reader);
}

void rp_route_token(struct rp_call *c, const char *method, const char *name, size_t len)
{
	struct token_call *t = token_of(c);
	if (!rp_token_name_valid(name, len)) {
		rp_respond_error(c, RP_ERR_INVALID, "token names are [A-Za-z0-9._-]{1,64}", -1);
		return;
	}
	memcpy(t->name, name, len);
	t->name[len] = '\0';
	if (strcmp(method, "DELETE") == 0)
		revoke_token(c);
	else
		rp_leader_read(c, show_reader);
}
