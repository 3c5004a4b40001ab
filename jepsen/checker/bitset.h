/* Fixed-size bitsets over uint64_t words (inline helpers, no ownership). */
#ifndef RP_CHECKER_BITSET_H
#define RP_CHECKER_BITSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Words needed for @n bits; at least one so empty sets still hash. */
static inline size_t rp_bits_words(size_t n)
{
	return n == 0 ? 1 : (n + 63) / 64;
}

static inline void rp_bits_set(uint64_t *w, size_t i)
{
	w[i / 64] |= (uint64_t)1 << (i % 64);
}

static inline void rp_bits_clear(uint64_t *w, size_t i)
{
	w[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static inline bool rp_bits_test(const uint64_t *w, size_t i)
{
	return (w[i / 64] >> (i % 64)) & 1;
}

/** splitmix64 step: advances *state and returns a well-mixed word. */
static inline uint64_t rp_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif /* RP_CHECKER_BITSET_H */
