/* Three-valued verdict shared by all checkers. */
#ifndef RP_CHECKER_VERDICT_H
#define RP_CHECKER_VERDICT_H

/** Outcome of a check. UNKNOWN means a budget ran out before a decision. */
enum rp_verdict {
	RP_VERDICT_VALID = 0,
	RP_VERDICT_INVALID,
	RP_VERDICT_UNKNOWN,
};

/** "VALID", "INVALID" or "UNKNOWN" (static string). */
const char *rp_verdict_name(enum rp_verdict v);

/** Combines two verdicts: INVALID wins over UNKNOWN, which wins over VALID. */
enum rp_verdict rp_verdict_merge(enum rp_verdict a, enum rp_verdict b);

/** Process exit code for a verdict: 0 valid, 1 invalid, 3 unknown. */
int rp_verdict_exit_code(enum rp_verdict v);

#endif /* RP_CHECKER_VERDICT_H */
