/* The data dir's identity file: which node id a data dir belongs to. */
#ifndef RP_RAFT_IDENTITY_H
#define RP_RAFT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/**
 * Check that @dir/raftplane-id names @id, creating it (fsync'd) when it is
 * missing, so that starting a data dir with another --id is refused instead
 * of corrupting a cluster. Returns 0, or -1 with a reason in @errmsg.
 */
int rp_identity_check(const char *dir, uint64_t id, char *errmsg, size_t errlen);

#endif
