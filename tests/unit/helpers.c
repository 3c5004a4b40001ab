/* Shared helpers of the storage unit tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "helpers.h"
#include "raftplane/err.h"
#include "snapshot.h"

struct rp_store *new_store(void)
{
	struct rp_store *s;
	char err[128];
	assert_int_equal(rp_store_create(&s, err, sizeof err), RP_OK);
	return s;
}

int apply_cmd(struct rp_store *s, const Raftplane__Command *cmd, struct rp_apply_result *res)
{
	void *buf;
	size_t len;
	assert_int_equal(rp_command_pack(cmd, malloc, &buf, &len), RP_OK);
	assert_int_equal(rp_store_apply(s, buf, len, res), RP_OK);
	free(buf);
	return res->status;
}

int build_txn(const struct op_spec *spec, size_t n, Raftplane__Command *cmd, Raftplane__Op *ops,
	      Raftplane__Op **ptrs)
{
	assert_true(n <= 8);
	raftplane__command__init(cmd);
	for (size_t i = 0; i < n; i++) {
		rp_op_init(&ops[i], spec[i].del, spec[i].kind, spec[i].name, spec[i].value,
			   spec[i].value ? strlen(spec[i].value) : 0);
		ops[i].cond = spec[i].cond;
		ops[i].if_version = spec[i].if_version;
		ptrs[i] = &ops[i];
	}
	cmd->ops = ptrs;
	cmd->n_ops = n;
	return 0;
}

int txn(struct rp_store *s, const struct op_spec *spec, size_t n, struct rp_apply_result *res)
{
	Raftplane__Command cmd;
	Raftplane__Op ops[8], *ptrs[8];
	build_txn(spec, n, &cmd, ops, ptrs);
	return apply_cmd(s, &cmd, res);
}

int put(struct rp_store *s, const char *kind, const char *name, const char *value)
{
	struct rp_apply_result res;
	struct op_spec o = {0, kind, name, value, 0, 0};
	return txn(s, &o, 1, &res);
}

int del(struct rp_store *s, const char *kind, const char *name)
{
	struct rp_apply_result res;
	struct op_spec o = {1, kind, name, NULL, 0, 0};
	return txn(s, &o, 1, &res);
}

int members(struct rp_store *s, int type, uint64_t id, const char *http)
{
	Raftplane__Command cmd;
	Raftplane__Member m, *mp = &m;
	struct rp_apply_result res;
	raftplane__command__init(&cmd);
	raftplane__member__init(&m);
	cmd.type = type;
	m.id = id;
	m.raft = "127.0.0.1:7000";
	m.http = (char *)http;
	m.role = 1;
	cmd.members = &mp;
	cmd.n_members = 1;
	return apply_cmd(s, &cmd, &res);
}

uint64_t version_of(struct rp_store *s, const char *node)
{
	struct rp_mesh *m;
	assert_int_equal(rp_mesh_build(s, &m), RP_OK);
	uint64_t v = rp_mesh_node_version(m, node);
	rp_mesh_destroy(m);
	return v;
}
