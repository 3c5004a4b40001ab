/* rp_restore_prepare (restore.h): a backup file, checked, as the first
 * state of a new cluster.
 *
 * The bytes come from disk and are hostile: SQLite reads them only after
 * the header is checked, then integrity_check runs before any query of
 * ours, then rp_store_restore() checks what it checks of a snapshot (the
 * format, the revisions of design note 6) on the database as it will
 * start. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "raftplane/err.h"
#include "restore.h"
#include "store.h"

static const char header[16] = "SQLite format 3";

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "not a raftplane backup: %s", sqlite3_errmsg(db));
	return -1;
}

static int integrity(sqlite3 *db, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int ok = 0;
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "damaged database: %s", sqlite3_errmsg(db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		ok = r && strcmp(r, "ok") == 0;
		if (!ok)
			snprintf(err, errlen, "damaged database: integrity_check: %s",
				 r ? r : "no answer");
	} else {
		snprintf(err, errlen, "damaged database: integrity_check: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	for (char *p = err; !ok && *p; p++) /* SQLite's report spans lines: one line */
		if (*p == '\n')
			*p = ' ';
	return ok ? 0 : -1;
}

/* The tables every raftplane database has (store.c's schema). */
static int has_schema(sqlite3 *db, char *err, size_t errlen)
{
	static const char *const tables[] = {"items", "refs",   "changes", "members",
					     "meta",  "epochs", "audit"};
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "not a raftplane backup: %s", sqlite3_errmsg(db));
		return -1;
	}
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
		int found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
		if (!found) {
			sqlite3_finalize(st);
			snprintf(err, errlen, "not a raftplane backup: no table \"%s\"", tables[i]);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int rp_restore_prepare(const void *buf, size_t len, void **out, size_t *out_len, uint64_t *revision,
		       char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	struct rp_store *s = NULL;
	unsigned char *copy = NULL, *image = NULL;
	sqlite3_int64 size = 0;
	int rv = -1;
	*out = NULL;
	if (len < 512 || memcmp(buf, header, sizeof header) != 0) {
		snprintf(err, errlen, "not a SQLite database (%zu bytes, no SQLite header)", len);
		return -1;
	}
	/* page size * page count of the header: a truncated file is short */
	const unsigned char *h = buf;
	unsigned page = (unsigned)h[16] << 8 | h[17];
	uint64_t pages = (uint64_t)h[28] << 24 | (uint64_t)h[29] << 16 | (uint64_t)h[30] << 8 |
			 h[31];
	if (page == 1)
		page = 65536;
	if (page < 512 || (page & (page - 1)) || pages == 0 || pages * page != len) {
		snprintf(err, errlen,
			 "truncated or damaged database: the header says %llu pages of %u bytes, "
			 "the file has %zu bytes",
			 (unsigned long long)pages, page, len);
		return -1;
	}
	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    !(copy = sqlite3_malloc64(len))) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	memcpy(copy, buf, len);
	if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
				SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "damaged database: %s", sqlite3_errmsg(db));
		goto done;
	}
	if (integrity(db, err, errlen) || has_schema(db, err, errlen) ||
	    exec(db,
		 "PRAGMA journal_mode=MEMORY; BEGIN; DELETE FROM members;"
		 " UPDATE meta SET value = 0 WHERE key IN"
		 " ('cluster_id_set', 'cluster_id_hi', 'cluster_id_lo'); COMMIT;",
		 err, errlen))
		goto done;
	image = sqlite3_serialize(db, "main", &size, 0);
	if (!image) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	char serr[256];
	if (rp_store_create(&s, serr, sizeof serr) != RP_OK) {
		snprintf(err, errlen, "%s", serr);
		goto done;
	}
	int srv = rp_store_restore(s, image, (size_t)size);
	if (srv != RP_OK) {
		snprintf(err, errlen,
			 "not a usable raftplane backup: %s (details in the log above)",
			 rp_err_message(srv));
		goto done;
	}
	*revision = rp_store_revision(s);
	*out = image;
	*out_len = (size_t)size;
	image = NULL;
	rv = 0;
done:
	sqlite3_free(image);
	if (s)
		rp_store_destroy(s);
	sqlite3_close(db);
	return rv;
}
