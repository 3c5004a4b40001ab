/* The replicated state machine: a SQLite database changed only by commands.
 *
 * Invariants (asserted by storage/store.c where it writes them)
 * 1. rp_store_apply() is deterministic: the same database and command give
 *    the same result, rows and revision on every node.
 * 2. The revision never decreases. It grows by exactly one per command that
 *    succeeds (SET_CLUSTER_ID, which is identity, makes none); a rejected
 *    command changes nothing.
 * 3. Every item version, change row and epoch (storage/distribution.h) is a
 *    revision no higher than rp_store_revision(); rp_store_compacted() is
 *    not above it either. A restored database that breaks this is refused.
 * 4. An item's version is the revision that last wrote it; the changes of
 *    one revision are recorded in the order they were applied. */
#ifndef RP_STORE_H
#define RP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "raftplane/limits.h"
#include "validate.h"

struct rp_store;

/* What applying one command did. Filled by rp_store_apply(). */
struct rp_apply_result {
	int status;        /* RP_OK or the user error that rejected the command */
	int op_index;      /* failing op for status != RP_OK, else -1 */
	uint64_t revision; /* store revision after the command */
	/* When the command was rejected or apply failed: what was applied and
	 * why it failed, e.g. "apply put routes/x: listener edge missing",
	 * "apply delete clusters/c: still referenced by routes/x". "" else. */
	char message[RP_MAX_ERROR_MESSAGE];
};

/* One row of the change history. */
struct rp_change {
	uint64_t revision;
	int kind;
	const char *name; /* borrowed for the duration of the callback */
	int deleted;      /* 1 for delete, 0 for put */
	uint64_t version; /* == revision */
};

/* One stored item; the value is borrowed for the duration of a callback. */
struct rp_item {
	int kind;
	const char *name;
	const void *value;
	size_t value_len;
	uint64_t version;
};

struct rp_member {
	uint64_t id;
	char raft[64];
	char http[64];
	int role;
};

/** Called after each committed change; the store is readable from inside. */
typedef void (*rp_store_change_cb)(void *arg, const struct rp_change *change);

/**
 * Create an empty in-memory store. Returns RP_OK or RP_ERR_STORAGE with a
 * reason in @errmsg. The caller destroys it with rp_store_destroy().
 */
int rp_store_create(struct rp_store **out, char *errmsg, size_t errlen);
void rp_store_destroy(struct rp_store *s);

/** Register the change callback (one; NULL to clear). */
void rp_store_on_change(struct rp_store *s, rp_store_change_cb cb, void *arg);

/**
 * Apply an encoded Command (protobuf) in one SQLite transaction. User-level
 * failures (precondition, dangling reference, ...) roll the transaction back
 * and are reported in @res (status, op_index, message) with RP_OK returned;
 * they are logged at debug level. Returns RP_ERR_CORRUPT for an undecodable
 * command (the same on every node), and RP_ERR_STORAGE (SQLite failed, or a
 * stored value no longer decodes) or RP_ERR_NOMEM when this node failed:
 * then @res->message says what, it is logged as an error, the transaction
 * is rolled back, and the node must stop, since its peers did not fail.
 * Must not be called from the change callback.
 */
int rp_store_apply(struct rp_store *s, const void *buf, size_t len, struct rp_apply_result *res);

/**
 * Serialize the whole database. On RP_OK *buf is a sqlite3_malloc'd copy the
 * caller frees with sqlite3_free().
 */
int rp_store_serialize(struct rp_store *s, void **buf, size_t *len);

/** Replace the database with a serialized one (copied; @buf stays the caller's). */
int rp_store_restore(struct rp_store *s, const void *buf, size_t len);

uint64_t rp_store_revision(struct rp_store *s);
/** The cluster id: 32 lowercase hex digits, or "" before SET_CLUSTER_ID. */
const char *rp_store_cluster_id(struct rp_store *s);
/** Oldest revision a watch can start after (history before it is dropped). */
uint64_t rp_store_compacted(struct rp_store *s);

/**
 * Look up one item. On RP_OK *value is a malloc'd copy (caller frees) and
 * *version set; RP_ERR_NOT_FOUND when absent.
 */
int rp_store_get(struct rp_store *s, int kind, const char *name, void **value, size_t *value_len,
		 uint64_t *version);

typedef int (*rp_item_cb)(void *arg, const struct rp_item *item);
/** Iterate items of @kind whose name starts with @prefix (may be ""), by name.
 * Stops early when @cb returns non-zero and returns that value. */
int rp_store_list(struct rp_store *s, int kind, const char *prefix, rp_item_cb cb, void *arg);

typedef int (*rp_change_iter_cb)(void *arg, const struct rp_change *change);
/** Iterate changes with revision > @after in order, only kinds in @kind_mask
 * (bit per kind). Returns RP_ERR_GONE when @after < rp_store_compacted(). */
int rp_store_changes(struct rp_store *s, uint64_t after, unsigned kind_mask, rp_change_iter_cb cb,
		     void *arg);

typedef int (*rp_member_cb)(void *arg, const struct rp_member *m);
int rp_store_members(struct rp_store *s, rp_member_cb cb, void *arg);
/** RP_OK and *out filled, or RP_ERR_NOT_FOUND. */
int rp_store_member_get(struct rp_store *s, uint64_t id, struct rp_member *out);

/* @kind is an enum rp_epoch_kind (storage/distribution.h). */
typedef int (*rp_epoch_cb)(void *arg, int kind, const char *name, uint64_t rev);
/** Iterate every epoch row (listener epochs, node epochs and the "*" epoch),
 *  ordered by kind and name; stops when @cb returns non-zero. */
int rp_store_epochs(struct rp_store *s, rp_epoch_cb cb, void *arg);

#endif
