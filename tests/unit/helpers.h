/* Shared helpers of the storage unit tests: apply commands to a store. */
#ifndef RP_TEST_HELPERS_H
#define RP_TEST_HELPERS_H

#include <stdint.h>

#include "raftplane.pb-c.h"
#include "store.h"

struct op_spec {
	int del;
	const char *kind, *name, *value;
	int cond;
	uint64_t if_version;
};

struct rp_store *new_store(void);
/* Pack and apply @cmd (asserting it decodes); returns the user-level status. */
int apply_cmd(struct rp_store *s, const Raftplane__Command *cmd, struct rp_apply_result *res);
/* Fill @cmd with @n (at most 8) ops built in @ops, @ptrs (the caller's). */
int build_txn(const struct op_spec *spec, size_t n, Raftplane__Command *cmd, Raftplane__Op *ops,
	      Raftplane__Op **ptrs);
/* Apply a transaction of @n ops; returns the user-level status. */
int txn(struct rp_store *s, const struct op_spec *spec, size_t n, struct rp_apply_result *res);
int put(struct rp_store *s, const char *kind, const char *name, const char *value);
int del(struct rp_store *s, const char *kind, const char *name);
int members(struct rp_store *s, int type, uint64_t id, const char *http);
/* The snapshot version of proxy @node in a mesh built from @s now. */
uint64_t version_of(struct rp_store *s, const char *node);

#endif
