/* The start-up check of a data dir, before canonical/raft 0.15 opens it
 * (diskcheck.c), and raftplane-meta, the checksummed copy of raft's
 * metadata that makes a damaged metadata file detectable.
 *
 * The node starts only if every file holds what a sequence of completed
 * writes, possibly followed by one interrupted write, leaves behind; any
 * other damage refuses the start with one line naming the file, the byte
 * offset and the damage (docs/operations.md: replacing a member). */
#ifndef RP_RAFT_DISKCHECK_H
#define RP_RAFT_DISKCHECK_H

#include <stddef.h>
#include <stdint.h>

/**
 * Check the data dir @dir of node @id (a missing or empty dir is fine).
 * Read-only: libraft itself discards an interrupted last write (logged here
 * as a warning). Returns 0, or -1 with "FILE: damage at byte N ..." in
 * @errmsg.
 */
int rp_diskcheck(const char *dir, uint64_t id, char *errmsg, size_t errlen);

#define RP_DISKCHECK_KEEP UINT64_MAX

/**
 * Copy the newest of @dir's metadata1/metadata2 (version, term, vote) into
 * @dir/raftplane-meta with a checksum, with @stored, the last log index
 * this node has stored (RP_DISKCHECK_KEEP: the one recorded), in place (no
 * space needed once it exists). Called once the start-up check passed,
 * after every term or vote raft persists, and as @stored moves. The next
 * start refuses a log that ends before @stored. Returns 0; on failure -1
 * after removing the file (the next start then checks without it) and
 * logging why.
 */
int rp_diskcheck_meta_sync(const char *dir, uint64_t stored);

/** CRC-32 as canonical/raft 0.15 computes it for segments and snapshot
 * metadata (polynomial 0x04C11DB7, most significant bit first, no final
 * xor), continuing from @crc. */
uint32_t rp_raft_crc32(const void *buf, size_t len, uint32_t crc);

#endif
