/* Packing of raft log commands (protobuf-c Raftplane__Command). */
#ifndef RP_CODEC_H
#define RP_CODEC_H

#include <stddef.h>

#include "raftplane.pb-c.h"

/*
 * The log format version (RP_FORMAT_LOG, include/raftplane/version.h) is
 * the 4th byte of the magic: "RPC1" is format 1. An entry of another format
 * ("RPC" and another byte), or of format 1 holding a command type, op type,
 * op condition or field this release does not know, was written by a newer
 * release: rp_command_decode() says so (RP_ERR_NEWER_FORMAT) and the node
 * stops rather than apply it differently from its peers (raft/fsm.c).
 *
 * Framing of a log entry. canonical/raft 0.15's raft_uv requires every entry
 * to be a multiple of 8 bytes long (it asserts this only in debug builds;
 * release builds silently corrupt the offsets of the entries that follow
 * when the log is read back). So an entry is:
 *
 *   u32 magic "RPC1" (little endian) | u32 protobuf length | protobuf | 0-7 zero bytes
 */
#define RP_COMMAND_MAGIC 0x31435052u /* "RPC1" */
#define RP_COMMAND_HEADER 8
#define RP_COMMAND_MAGIC_PREFIX "RPC" /* of every log format */

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

/**
 * Decode a framed command for apply. RP_OK: *out is set (free as above).
 * RP_ERR_NEWER_FORMAT: written by a newer release (codec.h's first comment);
 * RP_ERR_CORRUPT: malformed for every release (no "RPC" magic, a bad length,
 * a protobuf that does not parse). Both: *out is NULL and @why (at least
 * 128 bytes) names the format, type or field.
 */
int rp_command_decode(const void *buf, size_t len, Raftplane__Command **out, char *why,
		      size_t whylen);

/** Initialise @op as a put or delete of kind/name (strings borrowed). */
void rp_op_init(Raftplane__Op *op, int is_delete, const char *kind, const char *name,
		const void *value, size_t value_len);

#endif
