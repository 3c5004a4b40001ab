/* Grouping of operations by key. */
#ifndef RP_CHECKER_OP_GROUPS_H
#define RP_CHECKER_OP_GROUPS_H

#include <stdbool.h>
#include <stddef.h>

#include "history.h"
#include "ops.h"

/**
 * Op indices grouped by key id: key k owns idx[start[k] .. start[k+1]),
 * in invocation order. Both arrays owned (rp_op_groups_free).
 */
struct rp_op_groups {
	size_t *start; /* n_keys + 2 entries */
	size_t *idx;
	size_t n_keys;
};

/**
 * Groups the ops of @ops for which @want returns true by key. Returns
 * RP_CHK_OK or RP_CHK_ENOMEM (then *g is zeroed).
 */
int rp_op_groups_build(const struct rp_history *h, const struct rp_ops *ops,
		       bool (*want)(const struct rp_op *), struct rp_op_groups *g, char *errmsg);

void rp_op_groups_free(struct rp_op_groups *g);

/** Number of ops of key @k. */
static inline size_t rp_op_groups_count(const struct rp_op_groups *g, size_t k)
{
	return g->start[k + 1] - g->start[k];
}

#endif /* RP_CHECKER_OP_GROUPS_H */
