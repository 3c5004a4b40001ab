/* Checking a backup (GET /v1/backup's file) before a new cluster starts
 * from it (raftplane-server --restore; restore.c). */
#ifndef RP_STORAGE_RESTORE_H
#define RP_STORAGE_RESTORE_H

#include <stddef.h>
#include <stdint.h>

/**
 * Check the @len bytes of @buf as a backup and make the database a new
 * cluster starts from: a SQLite file that passes integrity_check and that
 * rp_store_restore() accepts (format, revisions), with its members
 * removed and its cluster id cleared (the new cluster seeds its own
 * membership and proposes a new id). Items, versions, revision, change
 * history, audit and tokens are kept. On success *out (sqlite3_malloc'd:
 * sqlite3_free it) holds the database and *revision its revision; 0.
 * Otherwise -1 with a sentence in @err. Changes nothing outside memory.
 */
int rp_restore_prepare(const void *buf, size_t len, void **out, size_t *out_len, uint64_t *revision,
		       char *err, size_t errlen);

#endif
