/* Wing-Gong-Lowe linearizability search over one register problem. */
#ifndef RP_CHECKER_WGL_H
#define RP_CHECKER_WGL_H

#include <stddef.h>
#include <stdint.h>

#include "lin_problem.h"
#include "verdict.h"

/** Bounds on one search. */
struct rp_wgl_limits {
	int64_t deadline_ns;     /* monotonic; RP_NO_DEADLINE for none */
	size_t memo_limit_bytes; /* 0 = unlimited */
};

/** What a search did. reason is static, set when the verdict is UNKNOWN. */
struct rp_wgl_stats {
	uint64_t steps;
	size_t configs;
	size_t memo_bytes;
	const char *reason;
};

/**
 * Decides whether @p has a linearization: every required op placed between
 * its call and ret, optional ops placed after their call or left out, each
 * op legal in the register state it meets. Writes the verdict to *verdict
 * (UNKNOWN when a limit was hit) and fills *stats. Returns RP_CHK_OK, or
 * RP_CHK_ENOMEM / RP_CHK_ELIMIT with @errmsg set.
 */
int rp_wgl_check(const struct rp_lin_problem *p, const struct rp_wgl_limits *lim,
		 enum rp_verdict *verdict, struct rp_wgl_stats *stats, char *errmsg);

#endif /* RP_CHECKER_WGL_H */
