/* Unit tests: raft log command packing round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "raftplane/err.h"

static void test_txn_round_trip(void **state)
{
	(void)state;
	Raftplane__Command cmd;
	Raftplane__Op a, b, *ops[2] = {&a, &b};
	raftplane__command__init(&cmd);
	rp_op_init(&a, 0, "kv", "k1", "\x00\x01value", 7);
	a.cond = RAFTPLANE__OP__COND__IF_VERSION;
	a.if_version = 42;
	rp_op_init(&b, 1, "routes", "r", NULL, 0);
	cmd.ops = ops;
	cmd.n_ops = 2;
	void *buf;
	size_t len;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	Raftplane__Command *out = rp_command_unpack(buf, len);
	assert_non_null(out);
	assert_int_equal(out->type, RAFTPLANE__COMMAND__TYPE__TXN);
	assert_int_equal(out->n_ops, 2);
	assert_string_equal(out->ops[0]->kind, "kv");
	assert_string_equal(out->ops[0]->name, "k1");
	assert_int_equal(out->ops[0]->value.len, 7);
	assert_memory_equal(out->ops[0]->value.data, "\x00\x01value", 7);
	assert_int_equal(out->ops[0]->cond, RAFTPLANE__OP__COND__IF_VERSION);
	assert_int_equal(out->ops[0]->if_version, 42);
	assert_int_equal(out->ops[1]->type, RAFTPLANE__OP__TYPE__DELETE);
	raftplane__command__free_unpacked(out, NULL);
	free(buf);
}

static void test_members_round_trip(void **state)
{
	(void)state;
	Raftplane__Command cmd;
	Raftplane__Member m, *mp = &m;
	raftplane__command__init(&cmd);
	raftplane__member__init(&m);
	cmd.type = RAFTPLANE__COMMAND__TYPE__MEMBER_SEED;
	m.id = 7;
	m.raft = "127.0.0.1:7007";
	m.http = "[::1]:8007";
	m.role = 1;
	cmd.members = &mp;
	cmd.n_members = 1;
	void *buf;
	size_t len;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	Raftplane__Command *out = rp_command_unpack(buf, len);
	assert_non_null(out);
	assert_int_equal(out->type, RAFTPLANE__COMMAND__TYPE__MEMBER_SEED);
	assert_int_equal(out->members[0]->id, 7);
	assert_string_equal(out->members[0]->http, "[::1]:8007");
	raftplane__command__free_unpacked(out, NULL);
	free(buf);
}

/* raft_uv needs entries padded to 8 bytes: every packed size must be. */
static void test_padded_to_8(void **state)
{
	(void)state;
	char value[64];
	memset(value, 'x', sizeof value);
	for (size_t n = 0; n < sizeof value; n++) {
		Raftplane__Command cmd;
		Raftplane__Op op, *ops = &op;
		raftplane__command__init(&cmd);
		rp_op_init(&op, 0, "kv", "k", value, n);
		cmd.ops = &ops;
		cmd.n_ops = 1;
		void *buf;
		size_t len;
		assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
		assert_int_equal(len % 8, 0);
		Raftplane__Command *out = rp_command_unpack(buf, len);
		assert_non_null(out);
		assert_int_equal(out->ops[0]->value.len, n);
		raftplane__command__free_unpacked(out, NULL);
		free(buf);
	}
}

static void test_garbage_refused(void **state)
{
	(void)state;
	static const unsigned char junk[16] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	static const unsigned char badlen[16] = {'R', 'P', 'C', '1', 200, 0, 0, 0};
	static const unsigned char badpb[16] = {'R', 'P',  'C',  '1',  7,    0,    0,
						0,   0x12, 0xff, 0xff, 0xff, 0xff, 0x0f};
	assert_null(rp_command_unpack(junk, sizeof junk));
	assert_null(rp_command_unpack(badlen, sizeof badlen));
	assert_null(rp_command_unpack(badpb, sizeof badpb));
	assert_null(rp_command_unpack(badpb, 12)); /* not a multiple of 8 */
	assert_null(rp_command_unpack(badpb, 0));
}

/* Pack @cmd and decode it for apply; returns the decode's status. */
static int decode_packed(const Raftplane__Command *cmd, char *why, size_t whylen)
{
	void *buf;
	size_t len;
	Raftplane__Command *out;
	assert_int_equal(rp_command_pack(cmd, malloc, &buf, &len), RP_OK);
	int rv = rp_command_decode(buf, len, &out, why, whylen);
	if (rv == RP_OK)
		raftplane__command__free_unpacked(out, NULL);
	else
		assert_null(out);
	free(buf);
	return rv;
}

#define UPGRADE_IT "this member runs an older release than the entry's writer: upgrade it"

/* What a newer release may write is named and refused as newer, never
 * taken for garbage (which every node rejects alike) nor half understood. */
static void test_newer_format_refused(void **state)
{
	(void)state;
	char why[256];
	Raftplane__Command cmd;
	Raftplane__Op a, *ops[1] = {&a};
	raftplane__command__init(&cmd);
	rp_op_init(&a, 0, "kv", "k", "v", 1);
	cmd.ops = ops;
	cmd.n_ops = 1;
	assert_int_equal(decode_packed(&cmd, why, sizeof why), RP_OK);

	/* another log format: the magic's 4th byte */
	void *buf;
	size_t len;
	Raftplane__Command *out;
	assert_int_equal(rp_command_pack(&cmd, malloc, &buf, &len), RP_OK);
	((unsigned char *)buf)[3] = '2';
	assert_int_equal(rp_command_decode(buf, len, &out, why, sizeof why), RP_ERR_NEWER_FORMAT);
	assert_null(out);
	assert_non_null(strstr(why, "format \"RPC2\""));
	assert_non_null(strstr(why, UPGRADE_IT));
	((unsigned char *)buf)[3] = 0x07;
	assert_int_equal(rp_command_decode(buf, len, &out, why, sizeof why), RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(why, "\"RPC\\x07\""));
	((unsigned char *)buf)[0] = 'X'; /* not ours at all: garbage */
	assert_int_equal(rp_command_decode(buf, len, &out, why, sizeof why), RP_ERR_CORRUPT);
	assert_non_null(strstr(why, "undecodable"));
	free(buf);

	/* format 1, but a command type, op type or condition unknown here */
	cmd.type = (Raftplane__Command__Type)99;
	assert_int_equal(decode_packed(&cmd, why, sizeof why), RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(why, "command type 99"));
	assert_non_null(strstr(why, UPGRADE_IT));
	cmd.type = RAFTPLANE__COMMAND__TYPE__TXN;
	a.type = (Raftplane__Op__Type)2;
	assert_int_equal(decode_packed(&cmd, why, sizeof why), RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(why, "op type 2"));
	a.type = RAFTPLANE__OP__TYPE__PUT;
	a.cond = (Raftplane__Op__Cond)4;
	assert_int_equal(decode_packed(&cmd, why, sizeof why), RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(why, "op condition 4"));
	a.cond = RAFTPLANE__OP__COND__IF_ANY;
	assert_int_equal(decode_packed(&cmd, why, sizeof why), RP_OK);
}

/* A field this release does not know (a newer release's) is refused: its
 * meaning could change what apply does. */
static void test_unknown_field_refused(void **state)
{
	(void)state;
	char why[256];
	Raftplane__Command cmd, *out;
	raftplane__command__init(&cmd);
	cmd.type = RAFTPLANE__COMMAND__TYPE__SET_CLUSTER_ID;
	cmd.cluster_id = "0123456789abcdef0123456789abcdef";
	unsigned char frame[96] = {'R', 'P', 'C', '1'};
	size_t n = raftplane__command__pack(&cmd, frame + 8);
	/* field 100, varint 1: key (100 << 3 | 0) = 800 = 0xa0 0x06 */
	frame[8 + n] = 0xa0;
	frame[9 + n] = 0x06;
	frame[10 + n] = 0x01;
	n += 3;
	frame[4] = (unsigned char)n;
	size_t total = (8 + n + 7) & ~(size_t)7;
	out = rp_command_unpack(frame, total); /* protobuf-wise fine */
	assert_non_null(out);
	assert_int_equal(out->base.n_unknown_fields, 1);
	raftplane__command__free_unpacked(out, NULL);
	assert_int_equal(rp_command_decode(frame, total, &out, why, sizeof why),
			 RP_ERR_NEWER_FORMAT);
	assert_non_null(strstr(why, "command field 100"));
	assert_non_null(strstr(why, UPGRADE_IT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txn_round_trip),
		cmocka_unit_test(test_members_round_trip),
		cmocka_unit_test(test_padded_to_8),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_newer_format_refused),
		cmocka_unit_test(test_unknown_field_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
