/* Mesh object validation, both layers of storage/validate.h's contract: the
 * API's schema check and canonical form (rp_mesh_validate: the JSON body of
 * PUT /v1/{clusters,routes,listeners}/NAME) and apply's structural decode
 * (rp_mesh_decode: a value read from the raft log or the database).
 * Input: one byte choosing the kind, then the body. Properties: the
 * canonical form of a valid object is itself valid and canonicalises to
 * itself; whatever the API accepts, apply's decode accepts, with the same
 * references; the decode of any bytes either succeeds or fails with a
 * reason and nothing to release. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"
#include "storage/validate.h"

static int same_refs(const struct rp_refs *a, const struct rp_refs *b)
{
	if (a->n != b->n)
		return 0;
	for (unsigned i = 0; i < a->n; i++)
		if (a->ref[i].kind != b->ref[i].kind || strcmp(a->ref[i].name, b->ref[i].name) != 0)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int kinds[] = {RP_KIND_CLUSTERS, RP_KIND_ROUTES, RP_KIND_LISTENERS};
	if (size < 1)
		return 0;
	int kind = kinds[data[0] % 3];
	char *canon = NULL, err[256];
	size_t canon_len = 0;
	struct rp_refs refs;
	struct rp_mesh_facts facts;

	/* apply's decode of arbitrary bytes */
	memset(&facts, 0, sizeof facts);
	int drv = rp_mesh_decode(kind, data + 1, size - 1, &facts, err, sizeof err);
	if (drv != RP_OK && (facts.json || !memchr(err, '\0', sizeof err)))
		abort();
	rp_mesh_facts_release(&facts);

	int rv = rp_mesh_validate(kind, "x", (const char *)data + 1, size - 1, &canon, &canon_len,
				  &refs, err, sizeof err);
	if (rv != RP_OK) {
		if (canon || !memchr(err, '\0', sizeof err))
			abort();
		return 0;
	}
	if (!canon || strlen(canon) != canon_len || refs.n > RP_MAX_REFS)
		abort();
	char *again = NULL;
	size_t again_len = 0;
	if (rp_mesh_validate(kind, "x", canon, canon_len, &again, &again_len, NULL, err,
			     sizeof err) != RP_OK ||
	    again_len != canon_len || memcmp(again, canon, canon_len) != 0)
		abort();
	free(again);

	/* what the API proposes, apply accepts with the same references */
	memset(&facts, 0, sizeof facts);
	if (rp_mesh_decode(kind, canon, canon_len, &facts, err, sizeof err) != RP_OK ||
	    !same_refs(&facts.refs, &refs))
		abort();
	rp_mesh_facts_release(&facts);
	free(canon);
	return 0;
}
