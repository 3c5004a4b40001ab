/* Key interning: a growable string array indexed by an open-addressing
 * hash table of ids. */
#include "key_table.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

void rp_key_table_init(struct rp_key_table *t)
{
	memset(t, 0, sizeof *t);
}

void rp_key_table_close(struct rp_key_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->names[i]);
	}
	free(t->names);
	free(t->slots);
	memset(t, 0, sizeof *t);
}

static uint64_t hash_bytes(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	}
	return h;
}

/* Slot where @s lives or where it would be inserted. */
static size_t find_slot(const struct rp_key_table *t, const char *s, size_t len)
{
	size_t mask = t->nslots - 1;
	size_t i = hash_bytes(s, len) & mask;

	while (t->slots[i] != 0) {
		const char *name = t->names[t->slots[i] - 1];
		if (strncmp(name, s, len) == 0 && name[len] == '\0') {
			return i;
		}
		i = (i + 1) & mask;
	}
	return i;
}

static int grow_index(struct rp_key_table *t)
{
	size_t nslots = t->nslots ? t->nslots * 2 : 64;
	uint32_t *old = t->slots;
	size_t old_n = t->nslots;

	t->slots = calloc(nslots, sizeof *t->slots);
	if (t->slots == NULL) {
		t->slots = old;
		return RP_CHK_ENOMEM;
	}
	t->nslots = nslots;
	for (size_t i = 0; i < old_n; i++) {
		if (old[i] != 0) {
			const char *name = t->names[old[i] - 1];
			t->slots[find_slot(t, name, strlen(name))] = old[i];
		}
	}
	free(old);
	return RP_CHK_OK;
}

static int append_name(struct rp_key_table *t, const char *s, size_t len)
{
	char *copy;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **names = realloc(t->names, cap * sizeof *names);
		if (names == NULL) {
			return RP_CHK_ENOMEM;
		}
		t->names = names;
		t->cap = cap;
	}
	copy = malloc(len + 1);
	if (copy == NULL) {
		return RP_CHK_ENOMEM;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	t->names[t->n++] = copy;
	return RP_CHK_OK;
}

int rp_key_table_intern(struct rp_key_table *t, const char *s, size_t len, uint32_t *id,
			char *errmsg)
{
	size_t slot;

	if (len > RP_KEY_MAX_LEN || memchr(s, '\0', len) != NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_ELIMIT,
				     "key longer than %d bytes or containing NUL", RP_KEY_MAX_LEN);
	}
	if ((t->n + 1) * 2 > t->nslots && grow_index(t) != RP_CHK_OK) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "key index");
	}
	slot = find_slot(t, s, len);
	if (t->slots[slot] != 0) {
		*id = t->slots[slot] - 1;
		return RP_CHK_OK;
	}
	if (t->n >= RP_KEY_MAX_COUNT) {
		return rp_chk_errorf(errmsg, RP_CHK_ELIMIT, "more than %u keys", RP_KEY_MAX_COUNT);
	}
	if (append_name(t, s, len) != RP_CHK_OK) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "key copy");
	}
	t->slots[slot] = (uint32_t)t->n;
	*id = (uint32_t)(t->n - 1);
	return RP_CHK_OK;
}

const char *rp_key_table_name(const struct rp_key_table *t, uint32_t id)
{
	return id < t->n ? t->names[id] : "?";
}
