/* Which proxies a mesh change reaches: listener clashes, and the epochs
 * that move a proxy's snapshot version when something leaves its snapshot.
 *
 * Invariants
 * 1. A node's snapshot version (storage/snapshot.c) is the highest
 *    revision that changed any part of it. Versions of the items still in
 *    it cover puts; epochs cover what left it: a route deleted from or
 *    moved off a listener moves that listener's epoch, a listener deleted
 *    or no longer naming a node moves that node's epoch (the "*" epoch when
 *    it named "*"). So a node's version never decreases.
 * 2. Epochs are written only by rp_dist_record(), inside apply, with the
 *    revision being applied: an epoch never decreases and is never above
 *    the store's revision.
 * 3. Everything here is a function of the stored state and the command.
 *    A stored value that does not decode is never skipped or guessed
 *    around: it decoded when it was written, on every node, so the failure
 *    is this node's own (memory, damage) and the apply fails with
 *    RP_ERR_NOMEM or RP_ERR_STORAGE, which stop the node.
 * 4. Two listeners clash when some proxy would have to bind both: the same
 *    port, the same address or either a wildcard, and a common node ("*"
 *    has every node in common). */
#ifndef RP_DISTRIBUTION_H
#define RP_DISTRIBUTION_H

#include <stddef.h>
#include <stdint.h>

#include "validate.h"

/* Kinds of epoch rows (store.c keeps them in table epochs). */
enum rp_epoch_kind {
	RP_EPOCH_LISTENER = 0,
	RP_EPOCH_NODE = 1,
	RP_EPOCH_STAR = 2
};

/* A stored value, borrowed for the duration of the call. */
typedef int (*rp_dist_value_cb)(void *arg, const char *name, const void *value, size_t len);

/*
 * What the distribution reads and writes, inside the apply transaction.
 * Implemented by storage/store.c, which owns the SQL. Every function returns
 * RP_OK or RP_ERR_STORAGE (the SQLite reason is logged by the store and
 * kept for the apply's message).
 */
struct rp_dist_io {
	void *arg;
	/** Copy the name of the listener that stored route @route refers to
	 *  into @out ("" when the route does not exist). */
	int (*route_listener)(void *arg, const char *route, char out[RP_MAX_NAME + 1]);
	/** The stored value of listener @name: on RP_OK *value is a malloc'd
	 *  copy the caller frees; RP_ERR_NOT_FOUND when absent; RP_ERR_NOMEM. */
	int (*listener_get)(void *arg, const char *name, void **value, size_t *len);
	/** Call @cb for every stored listener but @except, in name order; stop
	 *  at the first non-zero return and return it. @cb must not call @io. */
	int (*listeners_each)(void *arg, const char *except, rp_dist_value_cb cb, void *cb_arg);
	/** Set the epoch (@kind, @name) to @rev, the revision being applied. */
	int (*epoch_set)(void *arg, int kind, const char *name, uint64_t rev);
};

/** 1 when some proxy would have to bind both listeners @a and @b (decoded
 *  with rp_mesh_decode()), else 0. */
int rp_listener_clash(const struct rp_mesh_facts *a, const struct rp_mesh_facts *b);

/**
 * Check that listener @name with value @l clashes with no other stored
 * listener. Returns RP_OK; RP_ERR_CONFLICT with the reason in @why
 * ("clashes with listeners/a on port 10000 for a common node"); or
 * RP_ERR_NOMEM / RP_ERR_STORAGE (the node must stop) with what failed in
 * @why.
 */
int rp_dist_check_listener(const struct rp_dist_io *io, const char *name,
			   const struct rp_mesh_facts *l, char *why, size_t whylen);

/**
 * Record in the epochs what a put (@value, as decoded) or a delete (@value
 * NULL) of item @kind/@name at revision @rev takes away from proxies. Call
 * it before the item's row and references change: it reads the state
 * before the change. Items other than routes and listeners move no epoch.
 * Returns RP_OK, or RP_ERR_NOMEM / RP_ERR_STORAGE (the node must stop) with
 * what failed in @why.
 */
int rp_dist_record(const struct rp_dist_io *io, int kind, const char *name,
		   const struct rp_mesh_facts *value, uint64_t rev, char *why, size_t whylen);

#endif
