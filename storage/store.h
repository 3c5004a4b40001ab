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

#define RP_MAX_ACTOR 200  /* bytes of an actor, NUL included ("token:NAME", "cert:ID") */
#define RP_MAX_ADDRESS 64 /* bytes of a client address, NUL included ("IP:port") */

/* Who made a revision, from where, when: set by the proposer into the
 * command (Command.actor, address, time_ms), stored per revision. "" and 0
 * when the proposal did not say (internal proposals, older entries). */
struct rp_audit {
	char actor[RP_MAX_ACTOR];
	char address[RP_MAX_ADDRESS];
	uint64_t time_ms; /* Unix ms, the proposer's wall clock */
};

struct rp_member {
	uint64_t id;
	char raft[64];
	char http[64];
	int role;
	struct rp_audit audit; /* proposals only: who asks (never read from rows) */
};

/* API token roles; each includes the ones below it. */
enum rp_token_role {
	RP_TOKEN_NONE = 0, /* no role: only the open endpoints */
	RP_TOKEN_READ = 1,
	RP_TOKEN_WRITE = 2,
	RP_TOKEN_ADMIN = 3,
};

#define RP_TOKEN_HASH_LEN 32 /* SHA-256 of the token's secret */

/* One API token row (never its secret). */
struct rp_token {
	char name[RP_MAX_TOKEN_NAME + 1];
	int role; /* enum rp_token_role */
	unsigned char hash[RP_TOKEN_HASH_LEN];
	uint64_t created; /* Unix ms, from the proposer */
	char created_by[RP_MAX_ACTOR];
};

/* One revision of the audit history, with its changes (borrowed for the
 * duration of the callback). */
struct rp_history_record {
	uint64_t revision;
	uint64_t time_ms;
	const char *actor;   /* "" when the proposal did not say */
	const char *address; /* "" when unknown */
	const struct rp_change *changes;
	size_t n_changes;
};

/* Which revisions rp_store_history() reports. */
struct rp_history_query {
	uint64_t from_revision; /* inclusive, 0: from the oldest kept */
	uint64_t to_revision;   /* inclusive, 0: to the newest */
	int kind;               /* -1: any; else only revisions changing this kind */
	const char *name;       /* "" or NULL: any; else only revisions changing this name */
	const char *actor;      /* NULL: any; else only this actor's ("" too) */
	unsigned limit;         /* at most this many records (>= 1) */
	int oldest_first;       /* 0: newest first */
};

/* How much change history the store keeps (SET_HISTORY, replicated):
 * revisions older than both limits are compacted. */
struct rp_history_retention {
	uint64_t revisions;  /* at most this many (rp_store_retention: never 0) */
	uint64_t max_age_ms; /* 0: no age limit; else by the revisions' audit time */
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

/** Look at the store as a dry run left it (see rp_store_dry_run): it reads
 * as the revision the command would make. Read-only; returns RP_OK or an
 * error that ends the dry run. */
typedef int (*rp_store_inspect_cb)(void *arg, struct rp_store *s);

/**
 * Dry run: apply the encoded transaction @buf exactly as rp_store_apply() would (the
 * same checks, in the same transaction), call @inspect on the result,
 * then roll everything back: nothing changes, no change callback runs.
 * @res as for rp_store_apply(); res->revision is the revision the command
 * would make when it passed. Returns RP_OK also when the command was
 * rejected (res->status says why); @inspect's error, or RP_ERR_STORAGE /
 * RP_ERR_NOMEM when this node failed (nothing changed, the node can go
 * on: no command was applied). Only TXN commands. Not from the change
 * callback.
 */
int rp_store_dry_run(struct rp_store *s, const void *buf, size_t len, struct rp_apply_result *res,
		     rp_store_inspect_cb inspect, void *arg);

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
/** The retention in force (the defaults until a SET_HISTORY applied). */
void rp_store_retention(struct rp_store *s, struct rp_history_retention *out);

/**
 * Look up one item. On RP_OK *value is a malloc'd copy (caller frees) and
 * *version set; RP_ERR_NOT_FOUND when absent.
 */
int rp_store_get(struct rp_store *s, int kind, const char *name, void **value, size_t *value_len,
		 uint64_t *version);

/**
 * The item as of revision @at (store.c design note 11): like rp_store_get,
 * *version the revision that wrote it. RP_ERR_NOT_FOUND when absent at @at,
 * RP_ERR_GONE when @at < rp_store_compacted() or the value is not retained,
 * RP_ERR_INVALID when @at > rp_store_revision().
 */
int rp_store_get_at(struct rp_store *s, int kind, const char *name, uint64_t at, void **value,
		    size_t *value_len, uint64_t *version);

typedef int (*rp_item_cb)(void *arg, const struct rp_item *item);
/** Iterate items of @kind whose name starts with @prefix (may be ""), by name.
 * Stops early when @cb returns non-zero and returns that value. */
int rp_store_list(struct rp_store *s, int kind, const char *prefix, rp_item_cb cb, void *arg);

typedef int (*rp_change_iter_cb)(void *arg, const struct rp_change *change);
/** Iterate changes with revision > @after in order, only kinds in @kind_mask
 * (bit per kind); token changes are never reported here (only by
 * rp_store_history). Returns RP_ERR_GONE when @after < rp_store_compacted(). */
int rp_store_changes(struct rp_store *s, uint64_t after, unsigned kind_mask, rp_change_iter_cb cb,
		     void *arg);

typedef int (*rp_member_cb)(void *arg, const struct rp_member *m);
int rp_store_members(struct rp_store *s, rp_member_cb cb, void *arg);
/** RP_OK and *out filled, or RP_ERR_NOT_FOUND. */
int rp_store_member_get(struct rp_store *s, uint64_t id, struct rp_member *out);

typedef int (*rp_token_cb)(void *arg, const struct rp_token *t);
/** Iterate the tokens by name; stops when @cb returns non-zero. */
int rp_store_tokens(struct rp_store *s, rp_token_cb cb, void *arg);
/** RP_OK and *out filled, or RP_ERR_NOT_FOUND. */
int rp_store_token_get(struct rp_store *s, const char *name, struct rp_token *out);
/** Grows whenever the set of tokens may have changed (a token command
 *  applied, a restore): a cache of the tokens compares it. */
uint64_t rp_store_tokens_gen(struct rp_store *s);
/** 1 once any token was ever created in this cluster's state (it stays 1
 *  when every token is revoked): the API then requires tokens. */
int rp_store_tokens_enabled(struct rp_store *s);

typedef int (*rp_history_cb)(void *arg, const struct rp_history_record *r);
/** The audit history (revisions after rp_store_compacted()) matching @q,
 *  in the order @q asks; stops when @cb returns non-zero. RP_OK, or
 *  RP_ERR_STORAGE / RP_ERR_NOMEM. */
int rp_store_history(struct rp_store *s, const struct rp_history_query *q, rp_history_cb cb,
		     void *arg);

/* @kind is an enum rp_epoch_kind (storage/distribution.h). */
typedef int (*rp_epoch_cb)(void *arg, int kind, const char *name, uint64_t rev);
/** Iterate every epoch row (listener epochs, node epochs and the "*" epoch),
 *  ordered by kind and name; stops when @cb returns non-zero. */
int rp_store_epochs(struct rp_store *s, rp_epoch_cb cb, void *arg);

#endif
