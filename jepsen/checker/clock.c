/* Monotonic clock helpers. */
#include "clock.h"

#include <time.h>

int64_t rp_clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rp_clock_deadline_after_ms(int64_t budget_ms)
{
	int64_t now = rp_clock_now_ns();

	if (budget_ms <= 0) {
		return RP_NO_DEADLINE;
	}
	if (budget_ms > (RP_NO_DEADLINE - now) / 1000000) {
		return RP_NO_DEADLINE;
	}
	return now + budget_ms * 1000000;
}

int64_t rp_clock_min_deadline(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

double rp_clock_ms_since(int64_t start_ns)
{
	return (double)(rp_clock_now_ns() - start_ns) / 1e6;
}
