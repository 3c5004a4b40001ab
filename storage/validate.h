/* Validation of names and mesh objects (clusters, routes, listeners): the
 * API's schema check and apply's structural decode.
 *
 * The validation contract
 *
 * A mesh value is checked in two layers, and no check is made in both:
 *
 * 1. The API layer, before it proposes (rp_mesh_validate(), with
 *    rp_name_valid() and rp_kind_parse() for the path, and the body limit
 *    RP_MAX_BODY): parse the JSON, check the schema (fields, types,
 *    ranges, limits such as RP_MAX_ENDPOINTS, the syntax of every name a
 *    value refers to), fill in defaults and produce the canonical form.
 *    A value that fails is answered 400 and never reaches the log. Only
 *    the canonical form is proposed.
 *
 * 2. Apply, on every node, in log order (storage/store.c): only what
 *    depends on the state at apply time, plus the cheap structural checks
 *    that keep a bad log entry from harming the state machine:
 *    - state: preconditions, existence, that every referenced item exists
 *      (dangling), that a deleted item is not referenced (in use), that a
 *      listener does not clash with another (storage/distribution.c);
 *    - structure: the command type, 1 to RP_MAX_TXN_OPS ops, a known kind,
 *      a valid item name, a value of at most RP_MAX_BODY bytes, and
 *      rp_mesh_decode(): the value is a JSON object whose fields that
 *      apply reads (a route's listener and clusters; a listener's address,
 *      port and nodes) have the types apply relies on.
 *    Apply never runs the schema again: a schema rule that changes between
 *    releases therefore cannot make two nodes, or one node replaying its
 *    log, apply the same entry differently.
 *
 * Everything here is stateless (no clock, no randomness), so both halves
 * give the same answer on every node. Whatever rp_mesh_validate() accepts,
 * rp_mesh_decode() accepts (tests/unit/test_validate.c checks it). An
 * allocation failure is reported as RP_ERR_NOMEM, never as a reason to
 * reject: a rejection must be the same on every node, memory is not. */
#ifndef RP_VALIDATE_H
#define RP_VALIDATE_H

#include <jansson.h>
#include <stddef.h>

#include "raftplane/limits.h"

enum rp_kind {
	RP_KIND_KV = 0,
	RP_KIND_CLUSTERS,
	RP_KIND_ROUTES,
	RP_KIND_LISTENERS,
	RP_KIND_MEMBERS, /* only in change records, never written by users */
	RP_KIND_TOKENS,  /* only in change records (the audit history, never watches) */
	RP_KIND__COUNT
};

/** Map "kv", "clusters", ... (not NUL-terminated, @len bytes) to a kind, or -1. */
int rp_kind_parse(const char *s, size_t len);

/** Name of @kind as used in URLs and change records. */
const char *rp_kind_name(int kind);

/** 1 when @s (@len bytes) matches [A-Za-z0-9._-]{1,128}. */
int rp_name_valid(const char *s, size_t len);

#define RP_MAX_TOKEN_NAME 64

/** 1 when @s (@len bytes) is a token name: [A-Za-z0-9._-]{1,64}. */
int rp_token_name_valid(const char *s, size_t len);

/* Names of other objects a mesh object refers to. */
struct rp_refs {
	unsigned n;
	struct {
		int kind;
		char name[RP_MAX_NAME + 1];
	} ref[RP_MAX_REFS];
};

/* ---- the API layer ------------------------------------------------------ */

/**
 * Validate a mesh object of @kind (clusters, routes or listeners) given as
 * JSON text against its schema, and produce its canonical form: defaults
 * filled in, keys sorted, compact. @name is the object's name from the
 * URL; a "name" field in the body must equal it, a "version" field is
 * ignored.
 *
 * On success returns RP_OK, sets *canon to a malloc'd NUL-terminated string
 * the caller frees, *canon_len to its length, and fills @refs (may be NULL)
 * with the references of the canonical form, found exactly as apply finds
 * them. On failure returns RP_ERR_INVALID (a one-line reason in @errmsg) or
 * RP_ERR_NOMEM, and leaves *canon NULL.
 */
int rp_mesh_validate(int kind, const char *name, const char *json, size_t len, char **canon,
		     size_t *canon_len, struct rp_refs *refs, char *errmsg, size_t errlen);

/* ---- apply -------------------------------------------------------------- */

/* What apply reads from a mesh value. */
struct rp_mesh_facts {
	json_t *json;        /* the parsed value; owned, see rp_mesh_facts_release() */
	struct rp_refs refs; /* routes: the listener, then the clusters; else none */
	const char *address; /* listeners: borrowed from json */
	long long port;      /* listeners */
	json_t *nodes;       /* listeners: a non-empty array of strings, borrowed */
};

/**
 * The structural decode of a stored or logged value of @kind (@len bytes,
 * need not be NUL-terminated). Checks only what apply relies on (see the
 * contract above), not the schema.
 *
 * Returns RP_OK with @out filled (release it with rp_mesh_facts_release());
 * RP_ERR_INVALID with a one-line reason in @errmsg when the bytes are not
 * such a value (the same answer on every node); RP_ERR_NOMEM when memory
 * ran out (local to this node). On error @out holds nothing to release.
 *
 * Allocation failures are counted by a pass-through jansson allocator
 * (jansson reports some of them as syntax errors), installed with
 * json_set_alloc_funcs() around the allocator in place at the first call
 * after any change; call it from one thread at a time.
 */
int rp_mesh_decode(int kind, const void *value, size_t len, struct rp_mesh_facts *out, char *errmsg,
		   size_t errlen);

/** Release what rp_mesh_decode() filled in @f (safe on a zeroed struct). */
void rp_mesh_facts_release(struct rp_mesh_facts *f);

#endif
