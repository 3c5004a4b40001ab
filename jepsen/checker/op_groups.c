/* Counting sort of op indices by key. */
#include "op_groups.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

int rp_op_groups_build(const struct rp_history *h, const struct rp_ops *ops,
		       bool (*want)(const struct rp_op *), struct rp_op_groups *g, char *errmsg)
{
	size_t nk = h->keys.n;

	g->n_keys = nk;
	g->start = calloc(nk + 2, sizeof *g->start);
	g->idx = malloc((ops->n ? ops->n : 1) * sizeof *g->idx);
	if (g->start == NULL || g->idx == NULL) {
		rp_op_groups_free(g);
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "grouping ops by key");
	}
	/* count into start[k + 2], prefix-sum so start[k + 1] is k's begin,
     * then fill with start[k + 1] as cursor: it ends as k's end, which is
     * k + 1's begin, leaving start[k] = begin of k. */
	for (size_t i = 0; i < ops->n; i++) {
		if (want(&ops->ops[i])) {
			g->start[ops->ops[i].key + 2]++;
		}
	}
	for (size_t k = 0; k < nk; k++) {
		g->start[k + 2] += g->start[k + 1];
	}
	for (size_t i = 0; i < ops->n; i++) {
		if (want(&ops->ops[i])) {
			g->idx[g->start[ops->ops[i].key + 1]++] = i;
		}
	}
	return RP_CHK_OK;
}

void rp_op_groups_free(struct rp_op_groups *g)
{
	free(g->start);
	free(g->idx);
	memset(g, 0, sizeof *g);
}
