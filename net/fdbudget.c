/* The client descriptor budget: see fdbudget.h. */
#include "fdbudget.h"

#include <stdatomic.h>

static atomic_size_t limit;
static atomic_size_t used;
static atomic_uint_fast64_t watches_skipped;

void rp_fd_budget_set(size_t units)
{
	atomic_store(&limit, units);
}

size_t rp_fd_budget_limit(void)
{
	return atomic_load(&limit);
}

static int take_below(size_t max)
{
	size_t n = atomic_load_explicit(&used, memory_order_relaxed);
	do {
		if (max && n >= max)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&used, &n, n + 1, memory_order_relaxed,
							memory_order_relaxed));
	return 1;
}

int rp_fd_budget_take(void)
{
	return take_below(atomic_load(&limit));
}

int rp_fd_budget_take_watch(void)
{
	size_t max = atomic_load(&limit);
	if (max) {
		size_t headroom = max / 4 < 1024 ? max / 4 : 1024;
		max = max > headroom ? max - headroom : 1;
	}
	return take_below(max);
}

void rp_fd_budget_give(void)
{
	atomic_fetch_sub_explicit(&used, 1, memory_order_relaxed);
}

size_t rp_fd_budget_used(void)
{
	return atomic_load_explicit(&used, memory_order_relaxed);
}

uint64_t rp_fd_budget_watches_skipped(void)
{
	return atomic_load_explicit(&watches_skipped, memory_order_relaxed);
}

void rp_fd_budget_count_watch_skipped(void)
{
	atomic_fetch_add_explicit(&watches_skipped, 1, memory_order_relaxed);
}

size_t rp_fd_budget_for(uint64_t rlimit)
{
	uint64_t reserve = rlimit / 4 < 1024 ? rlimit / 4 : 1024;
	return (size_t)(rlimit - reserve);
}
