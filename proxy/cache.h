/* The snapshot cache in --cache-dir: the last applied snapshot of a node,
 * written atomically so that a proxy restarted while every server is down
 * starts from it. File: DIR/snapshot-<node-id>.bin = magic "RPSNAP01",
 * payload length (u64 LE), CRC-32 of the payload (u32 LE), payload (the
 * Snapshot protobuf exactly as a server sent it). */
#ifndef RP_PROXY_CACHE_H
#define RP_PROXY_CACHE_H

#include <stddef.h>

/**
 * Write @len bytes of @data as the cached snapshot of @node_id: temp file,
 * fsync, rename over the old file, fsync the directory. A crash leaves
 * either the old or the new file, never a mix. 0, or -1 with @err set.
 */
int rp_cache_write(const char *dir, const char *node_id, const void *data, size_t len, char *err,
		   size_t errlen);

/**
 * Read the cached snapshot of @node_id. Returns 1 with *data (malloc'd; the
 * caller frees it) and *len, 0 when there is none, -1 when it is unreadable
 * or corrupt (reason in @err).
 */
int rp_cache_load(const char *dir, const char *node_id, void **data, size_t *len, char *err,
		  size_t errlen);

/** CRC-32 (IEEE) of @len bytes. */
unsigned rp_crc32(const void *data, size_t len);

#endif
