/* raftplane-server --restore's check of a backup file (storage/restore.c
 * rp_restore_prepare: the header and size check, SQLite's own reading,
 * integrity_check, the schema, rp_store_restore's invariants) on any bytes:
 * it must refuse them with a sentence or accept them, never crash or leak.
 * An accepted database must pass rp_restore_prepare again unchanged in its
 * revision (the cleared members and cluster id are idempotent). */
#include <assert.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "storage/restore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void *out = NULL, *again = NULL;
	size_t len = 0, len2 = 0;
	uint64_t rev = 0, rev2 = 0;
	char err[512];
	if (rp_restore_prepare(data, size, &out, &len, &rev, err, sizeof err) != 0) {
		assert(out == NULL && err[0]);
		return 0;
	}
	assert(out && len);
	int rv = rp_restore_prepare(out, len, &again, &len2, &rev2, err, sizeof err);
	assert(rv == 0 && rev2 == rev);
	sqlite3_free(again);
	sqlite3_free(out);
	return 0;
}
