/* Packing of raft log commands (protobuf-c Raftplane__Command). */
#ifndef RP_CODEC_H
#define RP_CODEC_H

#include <stddef.h>

#include "raftplane.pb-c.h"

/*
 * Framing of a log entry. canonical/raft 0.15's raft_uv requires every entry
 * to be a multiple of 8 bytes long (it asserts this only in debug builds;
 * release builds silently corrupt the offsets of the entries that follow
 * when the log is read back). So an entry is:
 *
 *   u32 magic "RPC1" (little endian) | u32 protobuf length | protobuf | 0-7 zero bytes
 */
#define RP_COMMAND_MAGIC 0x31435052u /* "RPC1" */
#define RP_COMMAND_HEADER 8

/**
 * Pack @cmd into a new framed buffer obtained from @alloc (malloc-compatible,
 * e.g. raft_malloc so that raft_apply() can take ownership). *len is a
 * multiple of 8. On RP_OK *buf and *len are set and the caller owns *buf; on
 * error nothing is allocated.
 */
int rp_command_pack(const Raftplane__Command *cmd, void *(*alloc)(size_t), void **buf, size_t *len);

/**
 * Decode a framed command. Returns NULL when the frame or the protobuf is
 * malformed; otherwise free with raftplane__command__free_unpacked(x, NULL).
 */
Raftplane__Command *rp_command_unpack(const void *buf, size_t len);

/** Initialise @op as a put or delete of kind/name (strings borrowed). */
void rp_op_init(Raftplane__Op *op, int is_delete, const char *kind, const char *name,
		const void *value, size_t value_len);

#endif
