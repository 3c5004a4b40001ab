/* Offline inspection and repair of a stopped node's persisted raft term
 * (docs/operations.md, "A cluster stuck at an absurd term"). */
#ifndef RP_RESET_TERM_H
#define RP_RESET_TERM_H

#include <stddef.h>
#include <stdint.h>

struct rp_term_info {
	uint64_t term; /* current term in metadata1/metadata2 */
	uint64_t voted_for;
	uint64_t max_log_term; /* highest term of any entry or the snapshot */
	uint64_t last_index;
	uint64_t n_entries;
	uint64_t snapshot_index;
};

/**
 * Load the raft state in @dir (the node must be stopped) into @info. With
 * @new_term != 0, then persist @new_term as the current term with no vote;
 * refused unless max_log_term < @new_term < 2^62. Returns 0, or -1 with a
 * reason in @errmsg (nothing written then).
 */
int rp_term_repair(const char *dir, uint64_t new_term, struct rp_term_info *info, char *errmsg,
		   size_t errlen);

#endif
