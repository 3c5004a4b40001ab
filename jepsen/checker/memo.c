/* Open-addressing (linear probing) hash set of configurations; bitsets live
 * in one growable arena so an entry is 24 bytes plus its words. */
#include "memo.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

struct rp_memo_slot {
	uint64_t hash;
	uint32_t state;
	uint32_t used;
	size_t entry; /* index of the bitset in the arena */
};

int rp_memo_init(struct rp_memo *m, size_t words)
{
	memset(m, 0, sizeof *m);
	m->words = words;
	m->cap = 1024;
	m->slots = calloc(m->cap, sizeof *m->slots);
	return m->slots ? RP_CHK_OK : RP_CHK_ENOMEM;
}

void rp_memo_close(struct rp_memo *m)
{
	free(m->slots);
	free(m->arena);
	memset(m, 0, sizeof *m);
}

static int grow_table(struct rp_memo *m)
{
	size_t cap = m->cap * 2, mask = cap - 1;
	struct rp_memo_slot *slots = calloc(cap, sizeof *slots);

	if (slots == NULL) {
		return RP_CHK_ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;
		if (!m->slots[i].used) {
			continue;
		}
		j = m->slots[i].hash & mask;
		while (slots[j].used) {
			j = (j + 1) & mask;
		}
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return RP_CHK_OK;
}

static int grow_arena(struct rp_memo *m)
{
	size_t cap = m->arena_cap ? m->arena_cap * 2 : 4096 * m->words;
	uint64_t *arena = realloc(m->arena, cap * sizeof *arena);

	if (arena == NULL) {
		return RP_CHK_ENOMEM;
	}
	m->arena = arena;
	m->arena_cap = cap;
	return RP_CHK_OK;
}

int rp_memo_insert(struct rp_memo *m, const uint64_t *bits, uint32_t state, uint64_t hash,
		   bool *inserted)
{
	size_t mask = m->cap - 1, i = hash & mask;
	size_t nbytes = m->words * sizeof *bits;

	*inserted = false;
	for (; m->slots[i].used; i = (i + 1) & mask) {
		const struct rp_memo_slot *s = &m->slots[i];
		if (s->hash == hash && s->state == state &&
		    memcmp(m->arena + s->entry * m->words, bits, nbytes) == 0) {
			return RP_CHK_OK;
		}
	}
	if ((m->count + 1) * m->words > m->arena_cap && grow_arena(m) != RP_CHK_OK) {
		return RP_CHK_ENOMEM;
	}
	memcpy(m->arena + m->count * m->words, bits, nbytes);
	m->slots[i] = (struct rp_memo_slot){hash, state, 1, m->count};
	m->count++;
	*inserted = true;
	if (m->count * 2 > m->cap && grow_table(m) != RP_CHK_OK) {
		/* Still consistent: the table is just fuller than we like. Report
         * it so the caller stops before probing degenerates. */
		return RP_CHK_ENOMEM;
	}
	return RP_CHK_OK;
}

size_t rp_memo_bytes(const struct rp_memo *m)
{
	return m->cap * sizeof *m->slots + m->arena_cap * sizeof *m->arena;
}
