/* Mesh object validation (storage/validate.c rp_mesh_validate): the JSON
 * body of PUT /v1/{clusters,routes,listeners}/NAME, which apply re-checks.
 * Input: one byte choosing the kind, then the body. The canonical form of a
 * valid object must itself be valid and canonicalise to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"
#include "storage/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int kinds[] = {RP_KIND_CLUSTERS, RP_KIND_ROUTES, RP_KIND_LISTENERS};
	if (size < 1)
		return 0;
	int kind = kinds[data[0] % 3];
	char *canon = NULL, err[256];
	size_t canon_len = 0;
	struct rp_refs refs;
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
	free(canon);
	return 0;
}
