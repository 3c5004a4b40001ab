/* Packing of raft log commands (protobuf-c Raftplane__Command). */
#ifndef RP_CODEC_H
#define RP_CODEC_H

#include <stddef.h>

#include "raftplane.pb-c.h"

/**
 * Pack @cmd into a new buffer obtained from @alloc (malloc-compatible, e.g.
 * raft_malloc so that raft_apply() can take ownership). On RP_OK *buf and
 * *len are set and the caller owns *buf; on error nothing is allocated.
 */
int rp_command_pack(const Raftplane__Command *cmd, void *(*alloc)(size_t), void **buf,
		    size_t *len);

/** Initialise @op as a put or delete of kind/name (strings borrowed). */
void rp_op_init(Raftplane__Op *op, int is_delete, const char *kind, const char *name,
		const void *value, size_t value_len);

#endif
