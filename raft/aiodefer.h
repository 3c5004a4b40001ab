/* Linux AIO contexts destroyed off the loop thread.
 *
 * raft_uv 0.15 gives every open segment its own kernel AIO context and
 * destroys it (io_destroy) on the loop thread when the segment is closed:
 * after every snapshot (its barrier closes the open segment) and whenever a
 * segment fills up. io_destroy waits for an RCU grace period inside the
 * kernel: 30-40 ms measured on our 2-core VM, during which the loop serves
 * nothing (the "snapshot stall" of docs/design.md). libraft calls it through
 * libc's syscall(), so this module defines syscall() (the executable's
 * definition interposes libc's for every library) and, on a thread that
 * asked for it, hands io_destroy to a helper thread and returns 0 at once.
 * Every other call goes to libc's syscall() unchanged. */
#ifndef RP_RAFT_AIODEFER_H
#define RP_RAFT_AIODEFER_H

#include <stdint.h>

/** From now on, io_destroy called on this thread (a loop thread) is run by
 *  the helper thread. Idempotent. */
void rp_aiodefer_this_thread(void);

/** Wait until every io_destroy handed over so far has returned. */
void rp_aiodefer_flush(void);

/** io_destroy calls handed to the helper so far, and those of deferring
 *  threads that ran in place (queue full, or no helper thread). */
void rp_aiodefer_counts(uint64_t *deferred, uint64_t *in_place);

#endif
