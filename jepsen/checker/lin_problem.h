/* Per-key register search problem: ops with dense value ids and call/return
 * times, optionally restricted to a window of the history. */
#ifndef RP_CHECKER_LIN_PROBLEM_H
#define RP_CHECKER_LIN_PROBLEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"

/* Register value ids. NIL is the unset register; ANY is only ever a state:
 * "some value we have not observed yet" (window starts). */
#define RP_VID_NIL 0u
#define RP_VID_ANY 1u
#define RP_VID_FIRST 2u

/** ret of an op that may be linearized at any point after its call. */
#define RP_TIME_OPEN SIZE_MAX

enum rp_lop_kind {
	RP_LOP_READ,
	RP_LOP_WRITE,
	RP_LOP_CAS
};

/**
 * One search op. READ: state must be a. WRITE: state becomes b. CAS: state
 * must be a and becomes b. A required op must be linearized between call and
 * ret. An optional op may be linearized once between call and ret, or never
 * ("skipped"): info ops and ops crossing the window end have
 * ret == RP_TIME_OPEN; ops crossing the window start keep their real ret
 * (skipping one means it took effect before the window, which the unknown
 * initial state absorbs).
 */
struct rp_lop {
	enum rp_lop_kind kind;
	uint32_t a, b;
	size_t call, ret; /* history event positions */
	bool required;
	size_t src; /* index into rp_ops.ops */
};

/** Sorted distinct integer values of one key's register ops; vals owned. */
struct rp_value_ids {
	int64_t *vals;
	size_t n;
};

/**
 * A window of the history by event position: events lo..hi inclusive.
 * from_start means "from the beginning, register unset" and ignores lo.
 */
struct rp_lin_window {
	bool from_start;
	size_t lo, hi;
};

/** The whole history. */
#define RP_LIN_WHOLE ((struct rp_lin_window){true, 0, SIZE_MAX})

/** A search problem; ops owned, sorted by call. */
struct rp_lin_problem {
	struct rp_lop *ops;
	size_t n;
	size_t n_required;
	size_t n_pruned; /* optional ops removed as unobservable */
	uint32_t init_state;
	size_t n_values; /* ids in use are < n_values */
};

/** True if @op is a register op (read, write or cas). */
bool rp_is_register_op(const struct rp_op *op);

/**
 * Builds value ids for the register ops ops->ops[idx[0..n_idx)]. On success
 * *out owns a new array (rp_value_ids_free). Returns RP_CHK_OK or
 * RP_CHK_ENOMEM / RP_CHK_ELIMIT.
 */
int rp_value_ids_build(const struct rp_ops *ops, const size_t *idx, size_t n_idx,
		       struct rp_value_ids *out, char *errmsg);
void rp_value_ids_free(struct rp_value_ids *v);

/**
 * Builds the problem for the register ops ops->ops[idx[0..n_idx)] (one key,
 * invocation order) restricted to @win: ops entirely outside are left out;
 * failed ops and reads that are not ok are dropped; ok ops wholly inside
 * are required; writes and cas that are info or cross a window edge are
 * optional (open-ended unless they complete inside the window), called no
 * earlier than lo; reads crossing an edge are dropped. The initial state is
 * NIL from the start, ANY otherwise. Unobservable optional ops are pruned
 * (rp_lin_prune). On success *out owns its array (rp_lin_problem_free); on
 * error it is zeroed.
 */
int rp_lin_problem_build(const struct rp_ops *ops, const size_t *idx, size_t n_idx,
			 const struct rp_value_ids *vids, struct rp_lin_window win,
			 struct rp_lin_problem *out, char *errmsg);
void rp_lin_problem_free(struct rp_lin_problem *p);

/**
 * Removes optional ops whose effect no op could observe: an optional write
 * or cas producing value v where no remaining read or cas tests for v. Such
 * an op linearized anywhere can only be followed by a write or by nothing,
 * so dropping it preserves linearizability. Iterates to a fixpoint (removing
 * a cas may orphan producers of its expected value). Returns RP_CHK_OK or
 * RP_CHK_ENOMEM.
 */
int rp_lin_prune(struct rp_lin_problem *p, char *errmsg);

#endif /* RP_CHECKER_LIN_PROBLEM_H */
