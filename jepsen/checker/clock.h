/* Monotonic clock and deadlines for search budgets. */
#ifndef RP_CHECKER_CLOCK_H
#define RP_CHECKER_CLOCK_H

#include <stdint.h>

/** Deadline value meaning "no deadline". */
#define RP_NO_DEADLINE INT64_MAX

/** Nanoseconds on the monotonic clock. */
int64_t rp_clock_now_ns(void);

/**
 * Absolute deadline @budget_ms from now; RP_NO_DEADLINE if @budget_ms <= 0.
 * Saturates instead of overflowing.
 */
int64_t rp_clock_deadline_after_ms(int64_t budget_ms);

/** The earlier of two deadlines. */
int64_t rp_clock_min_deadline(int64_t a, int64_t b);

/** Milliseconds elapsed since @start_ns. */
double rp_clock_ms_since(int64_t start_ns);

#endif /* RP_CHECKER_CLOCK_H */
