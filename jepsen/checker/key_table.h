/* Interning of key strings to dense ids. */
#ifndef RP_CHECKER_KEY_TABLE_H
#define RP_CHECKER_KEY_TABLE_H

#include <stddef.h>
#include <stdint.h>

/** Longest key accepted, in bytes. */
#define RP_KEY_MAX_LEN 4096
/** Most distinct keys accepted in one history. */
#define RP_KEY_MAX_COUNT (1u << 20)

/**
 * Caller-embedded table. Owns every interned string (NUL-terminated copies)
 * and its index; ids are dense, 0..n-1, in order of first appearance.
 */
struct rp_key_table {
	char **names; /* owned array of owned strings */
	size_t n, cap;
	uint32_t *slots; /* open addressing: id + 1, 0 = empty; owned */
	size_t nslots;
};

void rp_key_table_init(struct rp_key_table *t);
/** Frees every string and the index; the table may be re-initialised. */
void rp_key_table_close(struct rp_key_table *t);

/**
 * Returns in *id the id of key @s (@len bytes, need not be NUL-terminated,
 * must not contain NUL), adding a copy if new. Returns RP_CHK_OK,
 * RP_CHK_ELIMIT or RP_CHK_ENOMEM (message in @errmsg); *id untouched on
 * error.
 */
int rp_key_table_intern(struct rp_key_table *t, const char *s, size_t len, uint32_t *id,
			char *errmsg);

/** Key string for @id (borrowed, valid until close); "?" if out of range. */
const char *rp_key_table_name(const struct rp_key_table *t, uint32_t id);

#endif /* RP_CHECKER_KEY_TABLE_H */
