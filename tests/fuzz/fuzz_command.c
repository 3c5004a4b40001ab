/* Raft log command frames (storage/codec.c rp_command_unpack): what every
 * node decodes from an entry another node appended. A frame that decodes
 * must pack again (unknown fields aside: protobuf-c keeps them verbatim,
 * including a field number 0 it would refuse to read back) into a frame of
 * a multiple of 8 bytes that decodes to the same ops and members. The
 * decode for apply (rp_command_decode) agrees: RP_OK only for a frame that
 * unpacks, RP_ERR_NEWER_FORMAT (telling the member to upgrade) for one that
 * unpacks but holds what this release does not know or carries another
 * "RPC" magic, RP_ERR_CORRUPT for the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"
#include "storage/codec.h"

static size_t hide_unknown(ProtobufCMessage *m, size_t n)
{
	size_t was = m->n_unknown_fields;
	m->n_unknown_fields = n;
	return was;
}

static void same(const Raftplane__Command *a, const Raftplane__Command *b)
{
	if (!b || a->type != b->type || a->n_ops != b->n_ops || a->n_members != b->n_members ||
	    strcmp(a->cluster_id, b->cluster_id) != 0)
		abort();
	for (size_t i = 0; i < a->n_ops; i++) {
		const Raftplane__Op *x = a->ops[i], *y = b->ops[i];
		if (x->type != y->type || x->cond != y->cond || x->if_version != y->if_version ||
		    strcmp(x->kind, y->kind) != 0 || strcmp(x->name, y->name) != 0 ||
		    x->value.len != y->value.len ||
		    (x->value.len && memcmp(x->value.data, y->value.data, x->value.len) != 0))
			abort();
	}
	for (size_t i = 0; i < a->n_members; i++)
		if (a->members[i]->id != b->members[i]->id ||
		    strcmp(a->members[i]->raft, b->members[i]->raft) != 0)
			abort();
}

static void check_decode(const uint8_t *data, size_t size, int unpacks)
{
	char why[256];
	Raftplane__Command *d;
	int rv = rp_command_decode(data, size, &d, why, sizeof why);
	int other_magic = size >= 4 && memcmp(data, RP_COMMAND_MAGIC_PREFIX, 3) == 0 &&
			  data[3] != '1';
	if (rv == RP_OK) {
		if (!unpacks || !d)
			abort();
		raftplane__command__free_unpacked(d, NULL);
		return;
	}
	if (d || !memchr(why, '\0', sizeof why))
		abort();
	if (rv == RP_ERR_NEWER_FORMAT) {
		if ((!unpacks && !other_magic) || !strstr(why, "upgrade it"))
			abort();
	} else if (rv != RP_ERR_CORRUPT || unpacks || other_magic) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Raftplane__Command *cmd = rp_command_unpack(data, size);
	check_decode(data, size, cmd != NULL);
	if (!cmd)
		return 0;
	size_t u = hide_unknown(&cmd->base, 0);
	size_t uo[cmd->n_ops + 1], um[cmd->n_members + 1];
	for (size_t i = 0; i < cmd->n_ops; i++)
		uo[i] = hide_unknown(&cmd->ops[i]->base, 0);
	for (size_t i = 0; i < cmd->n_members; i++)
		um[i] = hide_unknown(&cmd->members[i]->base, 0);
	void *buf;
	size_t len;
	if (rp_command_pack(cmd, malloc, &buf, &len) == 0) {
		if (len % 8 != 0)
			abort();
		Raftplane__Command *again = rp_command_unpack(buf, len);
		same(cmd, again);
		raftplane__command__free_unpacked(again, NULL);
		free(buf);
	}
	hide_unknown(&cmd->base, u);
	for (size_t i = 0; i < cmd->n_ops; i++)
		hide_unknown(&cmd->ops[i]->base, uo[i]);
	for (size_t i = 0; i < cmd->n_members; i++)
		hide_unknown(&cmd->members[i]->base, um[i]);
	raftplane__command__free_unpacked(cmd, NULL);
	return 0;
}
