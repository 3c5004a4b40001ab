/* Which proxies a mesh change reaches: listener clashes and epochs (the
 * invariants are in distribution.h). No SQL here: the store's rp_dist_io
 * reads and writes the rows. */
#include "distribution.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"

/* ---- listener clashes --------------------------------------------------- */

static int addr_wild(const char *a)
{
	return strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0;
}

int rp_listener_clash(const struct rp_mesh_facts *a, const struct rp_mesh_facts *b)
{
	if (a->port != b->port)
		return 0;
	if (strcmp(a->address, b->address) != 0 && !addr_wild(a->address) && !addr_wild(b->address))
		return 0;
	for (size_t i = 0; i < json_array_size(a->nodes); i++) {
		const char *x = json_string_value(json_array_get(a->nodes, i));
		for (size_t j = 0; j < json_array_size(b->nodes); j++) {
			const char *y = json_string_value(json_array_get(b->nodes, j));
			if (strcmp(x, "*") == 0 || strcmp(y, "*") == 0 || strcmp(x, y) == 0)
				return 1;
		}
	}
	return 0;
}

/* A stored listener that does not decode: see invariant 3. */
static int stored_undecodable(int rv, const char *name, const char *reason, char *why,
			      size_t whylen)
{
	if (rv == RP_ERR_NOMEM) {
		snprintf(why, whylen, "%s", reason);
		return rv;
	}
	snprintf(why, whylen, "stored listeners/%s does not decode: %s", name, reason);
	return RP_ERR_STORAGE;
}

struct clash_check {
	const struct rp_mesh_facts *mine;
	char *why;
	size_t whylen;
};

static int on_other_listener(void *arg, const char *name, const void *value, size_t len)
{
	struct clash_check *c = arg;
	struct rp_mesh_facts other;
	char reason[200];
	int rv = rp_mesh_decode(RP_KIND_LISTENERS, value, len, &other, reason, sizeof reason);
	if (rv)
		return stored_undecodable(rv, name, reason, c->why, c->whylen);
	if (rp_listener_clash(c->mine, &other)) {
		snprintf(c->why, c->whylen,
			 "clashes with listeners/%s on port %lld for a common node", name,
			 c->mine->port);
		rv = RP_ERR_CONFLICT;
	}
	rp_mesh_facts_release(&other);
	return rv;
}

int rp_dist_check_listener(const struct rp_dist_io *io, const char *name,
			   const struct rp_mesh_facts *l, char *why, size_t whylen)
{
	struct clash_check c = {l, why, whylen};
	assert(l->address && l->nodes); /* decoded as a listener */
	why[0] = '\0';
	return io->listeners_each(io->arg, name, on_other_listener, &c);
}

/* ---- epochs ------------------------------------------------------------- */

static int nodes_contain(json_t *nodes, const char *node)
{
	for (size_t i = 0; i < json_array_size(nodes); i++)
		if (strcmp(json_string_value(json_array_get(nodes, i)), node) == 0)
			return 1;
	return 0;
}

/* Move the epoch of every node stored listener @name named that @now (the
 * new "nodes", NULL when the listener is deleted) no longer reaches. */
static int bump_nodes_left(const struct rp_dist_io *io, const char *name, json_t *now, uint64_t rev,
			   char *why, size_t whylen)
{
	struct rp_mesh_facts was;
	char reason[200];
	void *old;
	size_t old_len;
	int rv = io->listener_get(io->arg, name, &old, &old_len);
	if (rv == RP_ERR_NOT_FOUND)
		return RP_OK; /* a new listener: nobody had it */
	if (rv)
		return rv;
	rv = rp_mesh_decode(RP_KIND_LISTENERS, old, old_len, &was, reason, sizeof reason);
	free(old);
	if (rv)
		return stored_undecodable(rv, name, reason, why, whylen);
	int star_now = nodes_contain(now, "*");
	for (size_t i = 0; rv == RP_OK && i < json_array_size(was.nodes); i++) {
		const char *node = json_string_value(json_array_get(was.nodes, i));
		if (strcmp(node, "*") == 0) {
			if (!star_now)
				rv = io->epoch_set(io->arg, RP_EPOCH_STAR, "*", rev);
		} else if (!star_now && !nodes_contain(now, node)) {
			rv = io->epoch_set(io->arg, RP_EPOCH_NODE, node, rev);
		}
	}
	rp_mesh_facts_release(&was);
	return rv;
}

/* A route moves the epoch of the listener it is on before the change, and
 * of the listener it names after it. */
static int record_route(const struct rp_dist_io *io, const char *name,
			const struct rp_mesh_facts *value, uint64_t rev)
{
	char was[RP_MAX_NAME + 1];
	int rv = io->route_listener(io->arg, name, was);
	if (rv == RP_OK && was[0])
		rv = io->epoch_set(io->arg, RP_EPOCH_LISTENER, was, rev);
	for (unsigned i = 0; rv == RP_OK && value && i < value->refs.n; i++)
		if (value->refs.ref[i].kind == RP_KIND_LISTENERS)
			rv = io->epoch_set(io->arg, RP_EPOCH_LISTENER, value->refs.ref[i].name,
					   rev);
	return rv;
}

int rp_dist_record(const struct rp_dist_io *io, int kind, const char *name,
		   const struct rp_mesh_facts *value, uint64_t rev, char *why, size_t whylen)
{
	int rv = RP_OK;
	why[0] = '\0';
	if (kind == RP_KIND_ROUTES) {
		rv = record_route(io, name, value, rev);
	} else if (kind == RP_KIND_LISTENERS) {
		rv = io->epoch_set(io->arg, RP_EPOCH_LISTENER, name, rev);
		if (rv == RP_OK)
			rv = bump_nodes_left(io, name, value ? value->nodes : NULL, rev, why,
					     whylen);
	}
	return rv;
}
