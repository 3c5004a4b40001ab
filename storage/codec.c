/* Packing of raft log commands: a framed protobuf, padded to 8 bytes. */
#include "codec.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "raftplane/err.h"
#include "raftplane/version.h"

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

/* The types this release knows, one case each: a value added to the
 * schema must be added here, with its apply in storage/store.c. */
static int known_command_type(Raftplane__Command__Type t)
{
	switch (t) {
	case RAFTPLANE__COMMAND__TYPE__TXN:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_PUT:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_DELETE:
	case RAFTPLANE__COMMAND__TYPE__MEMBER_SEED:
	case RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID:
	case RAFTPLANE__COMMAND__TYPE__TOKEN_PUT:
	case RAFTPLANE__COMMAND__TYPE__TOKEN_DELETE:
	case RAFTPLANE__COMMAND__TYPE__TOKEN_BOOTSTRAP:
	case RAFTPLANE__COMMAND__TYPE__SET_HISTORY: return 1;
	default: return 0;
	}
}

/* An unknown field is a newer release's: its meaning could change apply. */
static int unknown_field(const ProtobufCMessage *m, const char *what, char *why, size_t whylen)
{
	if (!m || m->n_unknown_fields == 0)
		return 0;
	snprintf(why, whylen, "%s field %u", what, (unsigned)m->unknown_fields[0].tag);
	return 1;
}

/* RP_OK or RP_ERR_NEWER_FORMAT naming what this release does not know. */
static int check_known(const Raftplane__Command *c, char *why, size_t whylen)
{
	char what[160];
	if (!known_command_type(c->type)) {
		snprintf(what, sizeof what, "command type %d", (int)c->type);
		goto newer;
	}
	if (unknown_field(&c->base, "command", what, sizeof what) ||
	    unknown_field(c->token ? &c->token->base : NULL, "token", what, sizeof what))
		goto newer;
	for (size_t i = 0; i < c->n_members; i++)
		if (unknown_field(&c->members[i]->base, "member", what, sizeof what))
			goto newer;
	for (size_t i = 0; i < c->n_ops; i++) {
		const Raftplane__Op *op = c->ops[i];
		if (op->type != RAFTPLANE__OP__TYPE__PUT &&
		    op->type != RAFTPLANE__OP__TYPE__DELETE) {
			snprintf(what, sizeof what, "op type %d", (int)op->type);
			goto newer;
		}
		if (op->cond < RAFTPLANE__OP__COND__IF_ANY ||
		    op->cond > RAFTPLANE__OP__COND__IF_EXISTS) {
			snprintf(what, sizeof what, "op condition %d", (int)op->cond);
			goto newer;
		}
		if (unknown_field(&op->base, "op", what, sizeof what))
			goto newer;
	}
	return RP_OK;
newer:
	snprintf(why, whylen,
		 "log entry (format %d) holds %s, unknown to this release: this member runs an "
		 "older release than the entry's writer: upgrade it",
		 RP_FORMAT_LOG, what);
	return RP_ERR_NEWER_FORMAT;
}

int rp_command_decode(const void *buf, size_t len, Raftplane__Command **out, char *why,
		      size_t whylen)
{
	const unsigned char *p = buf;
	*out = NULL;
	if (len >= 4 && memcmp(p, RP_COMMAND_MAGIC_PREFIX, 3) == 0 &&
	    get32(p) != RP_COMMAND_MAGIC) {
		char f[8];
		if (p[3] >= 0x21 && p[3] < 0x7f)
			snprintf(f, sizeof f, "%c", p[3]);
		else
			snprintf(f, sizeof f, "\\x%02x", p[3]);
		snprintf(why, whylen,
			 "log entry of format \"RPC%s\", this release reads format %d (\"RPC1\"): "
			 "this member runs an older release than the entry's writer: upgrade it",
			 f, RP_FORMAT_LOG);
		return RP_ERR_NEWER_FORMAT;
	}
	Raftplane__Command *c = rp_command_unpack(buf, len);
	if (!c) {
		snprintf(why, whylen, "undecodable log entry (%zu bytes)", len);
		return RP_ERR_CORRUPT;
	}
	int rv = check_known(c, why, whylen);
	if (rv != RP_OK) {
		raftplane__command__free_unpacked(c, NULL);
		return rv;
	}
	*out = c;
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
