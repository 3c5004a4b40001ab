/* Packing of raft log commands. */
#include "codec.h"

#include "raftplane/err.h"

int rp_command_pack(const Raftplane__Command *cmd, void *(*alloc)(size_t), void **buf,
		    size_t *len)
{
	size_t n = raftplane__command__get_packed_size(cmd);
	void *p = alloc(n ? n : 1);
	if (!p)
		return RP_ERR_NOMEM;
	if (raftplane__command__pack(cmd, p) != n)
		return RP_ERR_INTERNAL; /* cannot happen: sizes come from the same walk */
	*buf = p;
	*len = n;
	return RP_OK;
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
