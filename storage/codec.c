/* Packing of raft log commands: a framed protobuf, padded to 8 bytes. */
#include "codec.h"

#include <assert.h>
#include <string.h>

#include "raftplane/err.h"

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int rp_command_pack(const Raftplane__Command *cmd, void *(*alloc)(size_t), void **buf, size_t *len)
{
	size_t n = raftplane__command__get_packed_size(cmd);
	if (n > UINT32_MAX - 16)
		return RP_ERR_TOO_LARGE;
	size_t total = (RP_COMMAND_HEADER + n + 7) & ~(size_t)7;
	unsigned char *p = alloc(total);
	if (!p)
		return RP_ERR_NOMEM;
	memset(p, 0, total);
	put32(p, RP_COMMAND_MAGIC);
	put32(p + 4, (uint32_t)n);
	size_t packed = raftplane__command__pack(cmd, p + RP_COMMAND_HEADER);
	assert(packed == n && total % 8 == 0); /* the frame codec.h states */
	(void)packed;
	*buf = p;
	*len = total;
	return RP_OK;
}

Raftplane__Command *rp_command_unpack(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	if (len < RP_COMMAND_HEADER || len % 8 != 0 || get32(p) != RP_COMMAND_MAGIC)
		return NULL;
	size_t n = get32(p + 4);
	if (n > len - RP_COMMAND_HEADER || len - RP_COMMAND_HEADER - n >= 8)
		return NULL;
	return raftplane__command__unpack(NULL, n, p + RP_COMMAND_HEADER);
}

void rp_op_init(Raftplane__Op *op, int is_delete, const char *kind, const char *name,
		const void *value, size_t value_len)
{
	raftplane__op__init(op);
	op->type = is_delete ? RAFTPLANE__OP__TYPE__DELETE : RAFTPLANE__OP__TYPE__PUT;
	op->kind = (char *)kind;
	op->name = (char *)name;
	op->value.data = (uint8_t *)value;
	op->value.len = value_len;
}
