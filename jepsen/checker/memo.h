/* Hash set of search configurations (linearized-op bitset, register state). */
#ifndef RP_CHECKER_MEMO_H
#define RP_CHECKER_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Caller-embedded set. Owns its slot table and an arena holding a copy of
 * every inserted bitset (words uint64_t each).
 */
struct rp_memo {
	struct rp_memo_slot *slots; /* owned; cap entries, power of two */
	size_t cap, count;
	uint64_t *arena; /* owned; count * words used */
	size_t arena_cap;
	size_t words;
};

/** Sets up an empty set for bitsets of @words words. RP_CHK_OK / ENOMEM. */
int rp_memo_init(struct rp_memo *m, size_t words);
void rp_memo_close(struct rp_memo *m);

/**
 * Adds (@bits, @state) unless present; @hash must be a hash of the pair
 * (equal pairs, equal hashes). Copies @bits. Sets *inserted. Returns
 * RP_CHK_OK or RP_CHK_ENOMEM; after ENOMEM the set may only be closed.
 */
int rp_memo_insert(struct rp_memo *m, const uint64_t *bits, uint32_t state, uint64_t hash,
		   bool *inserted);

/** Bytes of memory the set holds. */
size_t rp_memo_bytes(const struct rp_memo *m);

#endif /* RP_CHECKER_MEMO_H */
