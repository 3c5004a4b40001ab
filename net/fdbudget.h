/* The descriptors a process lets its clients hold.
 *
 * A server with N parked subscriptions holds 2N descriptors for them (the
 * socket and its close watch, closewatch.h), and every other connection one.
 * When those reach RLIMIT_NOFILE, the next descriptor anything needs fails
 * with EMFILE, raft_uv's segment files included: client load would then stop
 * the node's log. So the process sets a budget below the limit, keeping a
 * reserve for its own files, peers and outbound requests; client connections
 * (at accept, connlimit.h) and close watches each take one unit. Past the
 * budget a connection is refused ("fds"); close watches stop earlier, leaving
 * a headroom for other connections, and a poll is then parked without one
 * (it notices a vanished client at its deadline instead).
 *
 * Process-wide and thread-safe (the proxy's workers accept at once). */
#ifndef RP_NET_FDBUDGET_H
#define RP_NET_FDBUDGET_H

#include <stddef.h>
#include <stdint.h>

/** Set the budget (0: none, the default). */
void rp_fd_budget_set(size_t units);
/** The budget, 0 when none. */
size_t rp_fd_budget_limit(void);
/** Take one unit for a connection: 1, or 0 when the budget is spent. */
int rp_fd_budget_take(void);
/** Take one unit for a close watch: 1, or 0 when less than a headroom of
 *  min(1024, budget / 4) units is left, which stays for connections (admin
 *  requests, forwarding from members) when subscribers fill the rest. */
int rp_fd_budget_take_watch(void);
/** Give back a unit rp_fd_budget_take() took. */
void rp_fd_budget_give(void);
/** Units held now. */
size_t rp_fd_budget_used(void);
/** Close watches not made because the budget was spent. */
uint64_t rp_fd_budget_watches_skipped(void);
void rp_fd_budget_count_watch_skipped(void);

/**
 * The budget for a process whose descriptor limit is @rlimit: all but a
 * reserve of min(1024, rlimit / 4) descriptors.
 */
size_t rp_fd_budget_for(uint64_t rlimit);

#endif
