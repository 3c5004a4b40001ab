/* The shortest failing window of a non-linearizable register history. */
#ifndef RP_CHECKER_WINDOW_H
#define RP_CHECKER_WINDOW_H

#include <stdbool.h>
#include <stddef.h>

#include "lin_problem.h"
#include "wgl.h"

/** An op of the window's sub-history. */
struct rp_window_op {
	size_t op;     /* index into rp_ops.ops */
	bool required; /* false: may or may not have taken effect */
};

/**
 * A window of events lo..hi (positions in the history) whose sub-history
 * (see README.md) cannot be linearized from any initial register value, or
 * from the unset register when from_start. hi == SIZE_MAX means "to the
 * end". ops is owned (rp_window_free).
 */
struct rp_window {
	bool found;
	bool minimal; /* false if a sub-check ran out of budget */
	bool from_start;
	size_t lo, hi;
	struct rp_window_op *ops;
	size_t n_ops;
	size_t n_pruned; /* unobservable open ops left out of ops */
	size_t checks;   /* sub-checks run */
};

/**
 * Finds the earliest-ending inclusion-minimal failing window for the
 * register ops ops->ops[idx[0..n_idx)] of one key, whose whole history is
 * known not to be linearizable. Binary-searches the end (the first prefix
 * that fails), then the start (the last start that still fails); both are
 * monotone. Every sub-check obeys @lim; one that runs out counts as "does
 * not fail", so the result still fails but may not be minimal. On success
 * *out is filled (found set); returns RP_CHK_OK or an error with @errmsg.
 */
int rp_window_find(const struct rp_ops *ops, const size_t *idx, size_t n_idx,
		   const struct rp_value_ids *vids, const struct rp_wgl_limits *lim,
		   struct rp_window *out, char *errmsg);

void rp_window_free(struct rp_window *w);

#endif /* RP_CHECKER_WINDOW_H */
