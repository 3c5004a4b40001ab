/* The state machine's apply of decoded commands (storage/store.c
 * rp_store_apply on a fresh in-memory store): what a follower does with the
 * entries a leader (or a forged peer) replicated. Input: commands, each as
 * u16 little-endian length + Command protobuf; the target frames them as the
 * log does. Properties: apply only ever returns RP_OK, RP_ERR_CORRUPT or
 * RP_ERR_NEWER_FORMAT (a type or field unknown to this release: the node
 * stops on purpose; a storage error would stop the node too: no input may
 * cause one); a refused
 * command changes nothing (same revision, same serialized database); the
 * revision never goes backwards; the final database restores into another
 * store with the same revision. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raftplane/err.h"
#include "storage/codec.h"
#include "storage/store.h"

static int same_db(struct rp_store *s, const void *buf, size_t len)
{
	void *now;
	size_t n;
	if (rp_store_serialize(s, &now, &n) != RP_OK)
		abort();
	int same = n == len && memcmp(now, buf, n) == 0;
	sqlite3_free(now);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* one store, reset to the empty database each time (creating one per
	 * input costs most of the time) */
	static struct rp_store *s, *t;
	static void *empty;
	static size_t empty_len;
	char err[256];
	if (!s) {
		if (rp_store_create(&s, err, sizeof err) != RP_OK ||
		    rp_store_create(&t, err, sizeof err) != RP_OK ||
		    rp_store_serialize(s, &empty, &empty_len) != RP_OK)
			abort();
	} else if (rp_store_restore(s, empty, empty_len) != RP_OK) {
		abort();
	}
	unsigned char *frame = malloc(RP_COMMAND_HEADER + 65536 + 8);
	size_t pos = 0;
	for (int k = 0; k < 16 && pos + 2 <= size; k++) {
		size_t n = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		pos += 2;
		if (n > size - pos)
			n = size - pos;
		size_t total = (RP_COMMAND_HEADER + n + 7) & ~(size_t)7;
		memset(frame, 0, total);
		const uint32_t magic = RP_COMMAND_MAGIC, len32 = (uint32_t)n;
		for (int i = 0; i < 4; i++) {
			frame[i] = (unsigned char)(magic >> (8 * i));
			frame[4 + i] = (unsigned char)(len32 >> (8 * i));
		}
		memcpy(frame + RP_COMMAND_HEADER, data + pos, n);
		pos += n;
		void *before;
		size_t before_len;
		if (rp_store_serialize(s, &before, &before_len) != RP_OK)
			abort();
		uint64_t rev = rp_store_revision(s);
		struct rp_apply_result res;
		memset(&res, 0, sizeof res);
		int rv = rp_store_apply(s, frame, total, &res);
		if (rv != RP_OK && rv != RP_ERR_CORRUPT && rv != RP_ERR_NEWER_FORMAT)
			abort(); /* RP_ERR_STORAGE: one entry would stop every node */
		if (rv != RP_OK || res.status != RP_OK) {
			if (rp_store_revision(s) != rev || !same_db(s, before, before_len))
				abort(); /* a refused command changed the state */
			if (rv == RP_OK && !res.message[0])
				abort();
		} else if (rp_store_revision(s) < rev || res.revision != rp_store_revision(s)) {
			abort();
		}
		sqlite3_free(before);
	}
	free(frame);
	void *db;
	size_t db_len;
	if (rp_store_serialize(s, &db, &db_len) != RP_OK ||
	    rp_store_restore(t, db, db_len) != RP_OK ||
	    rp_store_revision(t) != rp_store_revision(s))
		abort();
	sqlite3_free(db);
	return 0;
}
