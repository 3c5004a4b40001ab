/* Operations: invocations paired with their completions. */
#ifndef RP_CHECKER_OPS_H
#define RP_CHECKER_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"

/** cmp_pos of an operation that never completed. */
#define RP_POS_NONE SIZE_MAX

enum rp_outcome {
	RP_OUT_OK,
	RP_OUT_FAIL,
	RP_OUT_INFO, /* also an invocation with no completion */
};

/**
 * One client operation. Values are shallow copies of the events' values:
 * list items are borrowed from the history and live as long as it does.
 */
struct rp_op {
	int64_t process;
	enum rp_fn fn;
	uint32_t key; /* from the invocation */
	enum rp_outcome outcome;
	struct rp_value inv_value;
	struct rp_value cmp_value; /* RP_VAL_ABSENT if never completed */
	size_t inv_pos;            /* position in history events[] */
	size_t cmp_pos;            /* position, or RP_POS_NONE */
};

/** Operations in invocation order, plus counts. ops[] owned by the struct. */
struct rp_ops {
	struct rp_op *ops;
	size_t n;
	size_t n_ok, n_fail, n_info; /* n_info includes n_incomplete */
	size_t n_incomplete;
	size_t n_nemesis; /* nemesis events skipped */
};

/**
 * Pairs each client invocation in @h with the next completion of the same
 * process and validates value shapes (write/add take an integer, cas an
 * [A B] pair, an ok read an integer or nil, an ok final-read a list).
 * On success *out owns a new array (free with rp_ops_free); on error *out is
 * zeroed and @errmsg names the offending line. Returns RP_CHK_OK,
 * RP_CHK_EHISTORY or RP_CHK_ENOMEM.
 */
int rp_ops_build(const struct rp_history *h, struct rp_ops *out, char *errmsg);

void rp_ops_free(struct rp_ops *ops);

#endif /* RP_CHECKER_OPS_H */
