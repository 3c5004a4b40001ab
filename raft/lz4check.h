/* Verification of an LZ4 frame (the format of canonical/raft 0.15's
 * compressed snapshot files), written from the LZ4 frame and block format
 * specifications: the frame is decoded in full, without keeping the
 * output, and every checksum it carries is verified. libraft's own reader
 * loops forever on a truncated frame and reports other damage without
 * naming the file, so diskcheck.c verifies the file first. */
#ifndef RP_RAFT_LZ4CHECK_H
#define RP_RAFT_LZ4CHECK_H

#include <stddef.h>
#include <stdint.h>

#define RP_LZ4_MAGIC 0x184D2204u

/** XXH32 of @len bytes with @seed (the LZ4 frame's checksum). */
uint32_t rp_xxh32(const void *buf, size_t len, uint32_t seed);

/**
 * Check that @buf holds exactly one complete, well-formed LZ4 frame whose
 * header, block and content checksums (those the frame declares) match and
 * whose content has the declared size. Returns 0, or -1 with the damage and
 * its byte offset in @errmsg. @content_len (may be NULL) receives the size
 * of the decoded content.
 */
int rp_lz4_frame_check(const uint8_t *buf, size_t len, uint64_t *content_len, char *errmsg,
		       size_t errlen);

#endif
