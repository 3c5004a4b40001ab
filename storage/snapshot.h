/* Per-node proxy snapshots: which part of the mesh config a node gets, its
 * version, and its encoding (Raftplane__Snapshot). */
#ifndef RP_SNAPSHOT_H
#define RP_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The mesh configuration of one store revision, parsed once and indexed so
 * that each node's version and snapshot are cheap to compute. Immutable. */
struct rp_mesh;

/** Parse the store's listeners, routes, clusters and epochs. On RP_OK *out
 *  is the caller's (rp_mesh_destroy()). RP_ERR_NOMEM when memory ran out or
 *  a stored value does not parse (jansson does not tell the two apart):
 *  then nothing is built, never a mesh that lacks the item. */
int rp_mesh_build(struct rp_store *s, struct rp_mesh **out);
void rp_mesh_destroy(struct rp_mesh *m);
uint64_t rp_mesh_revision(const struct rp_mesh *m);
/** The cluster id the mesh was built with ("" before the cluster had one);
 * every snapshot encoded from @m carries it. */
const char *rp_mesh_cluster_id(const struct rp_mesh *m);

/**
 * Version of @node's snapshot: the highest revision that changed any part of
 * it — items still in it, routes and listeners that left it (epochs).
 */
uint64_t rp_mesh_node_version(const struct rp_mesh *m, const char *node);

/** Call @cb for each node id a listener names explicitly (never "*"), in
 * listener order, repeats included; stops at the first non-zero return
 * and returns it. */
int rp_mesh_each_node(const struct rp_mesh *m, int (*cb)(void *arg, const char *node), void *arg);

/**
 * Encode @node's snapshot. On RP_OK *buf is malloc'd (caller frees), *len
 * set and *version its version.
 */
int rp_mesh_node_snapshot(const struct rp_mesh *m, const char *node, void **buf, size_t *len,
			  uint64_t *version);

/* What decides a node's snapshot besides its node id: the listeners it
 * gets (one byte per listener of the mesh) and its version. Nodes with
 * equal keys get snapshots that differ only in node_id, so one encoding
 * (rp_mesh_key_snapshot) serves them all. */
struct rp_node_key {
	uint64_t version;
	uint64_t hash; /* of sel and version */
	size_t n;      /* listeners in the mesh */
	char *sel;     /* malloc'd, n bytes */
};

/** @node's key in @m (rp_node_key_release() frees it); RP_ERR_NOMEM. */
int rp_mesh_node_key(const struct rp_mesh *m, const char *node, struct rp_node_key *k);
void rp_node_key_release(struct rp_node_key *k);
int rp_node_key_equal(const struct rp_node_key *a, const struct rp_node_key *b);

/** The snapshot of every node with key @k (a key of @m) without its
 * node_id: rp_snapshot_node_prefix(node) followed by these bytes is,
 * byte for byte, rp_mesh_node_snapshot(m, node) (node_id is field 1, which
 * protobuf-c packs first). *buf is malloc'd. */
int rp_mesh_key_snapshot(const struct rp_mesh *m, const struct rp_node_key *k, void **buf,
			 size_t *len);

#define RP_SNAPSHOT_PREFIX_MAX (1 + 2 + RP_MAX_NAME)
/** The encoded node_id field of @node's snapshot into @out; its length. */
size_t rp_snapshot_node_prefix(const char *node, unsigned char out[RP_SNAPSHOT_PREFIX_MAX]);

#endif
