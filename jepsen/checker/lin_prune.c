/* Pruning of optional register ops whose effect nothing can observe.
 *
 * An optional op producing value v, where no op in the problem tests the
 * register for v (a read of v or a cas from v), can only be followed in a
 * linearization by a write or by nothing: dropping it keeps every
 * linearization valid, and "never took effect" is allowed for it. Removing
 * an optional cas [a b] lowers the number of tests for a, which may make
 * producers of a unobservable in turn: a worklist runs to a fixpoint. */
#include <stdlib.h>

#include "error.h"
#include "lin_problem.h"

/* Scratch arrays, all owned by prune(). */
struct prune {
	size_t *tests;     /* per value: remaining ops testing for it */
	size_t *start;     /* per value + 1: CSR offsets into producers */
	size_t *producers; /* optional op indices grouped by produced value */
	uint32_t *work;    /* values whose producers are unobservable */
	bool *removed;     /* per op */
};

static bool tests_value(const struct rp_lop *l)
{
	return l->kind == RP_LOP_READ || l->kind == RP_LOP_CAS;
}

static bool is_optional_producer(const struct rp_lop *l)
{
	return !l->required && l->kind != RP_LOP_READ;
}

static void index_producers(const struct rp_lin_problem *p, struct prune *s)
{
	size_t nv = p->n_values;

	for (size_t i = 0; i < p->n; i++) {
		const struct rp_lop *l = &p->ops[i];
		if (tests_value(l)) {
			s->tests[l->a]++;
		}
		if (is_optional_producer(l)) {
			s->start[l->b + 1]++;
		}
	}
	for (size_t v = 0; v < nv; v++) {
		s->start[v + 1] += s->start[v];
	}
	for (size_t i = 0; i < p->n; i++) {
		if (is_optional_producer(&p->ops[i])) {
			/* start[b] is used as a fill cursor, then restored below */
			s->producers[s->start[p->ops[i].b]++] = i;
		}
	}
	for (size_t v = nv; v > 0; v--) {
		s->start[v] = s->start[v - 1];
	}
	s->start[0] = 0;
}

static void run_worklist(const struct rp_lin_problem *p, struct prune *s)
{
	size_t top = 0;

	for (uint32_t v = 0; v < p->n_values; v++) {
		if (s->tests[v] == 0 && s->start[v] != s->start[v + 1]) {
			s->work[top++] = v;
		}
	}
	while (top > 0) {
		uint32_t v = s->work[--top];
		for (size_t k = s->start[v]; k < s->start[v + 1]; k++) {
			const struct rp_lop *l = &p->ops[s->producers[k]];
			if (s->removed[s->producers[k]]) {
				continue;
			}
			s->removed[s->producers[k]] = true;
			if (l->kind == RP_LOP_CAS && --s->tests[l->a] == 0 &&
			    s->start[l->a] != s->start[l->a + 1]) {
				s->work[top++] = l->a;
			}
		}
	}
}

static void compact(struct rp_lin_problem *p, const bool *removed)
{
	size_t kept = 0;

	for (size_t i = 0; i < p->n; i++) {
		if (!removed[i]) {
			p->ops[kept++] = p->ops[i];
		}
	}
	p->n_pruned += p->n - kept;
	p->n = kept;
}

int rp_lin_prune(struct rp_lin_problem *p, char *errmsg)
{
	struct prune s;
	int rv = RP_CHK_OK;

	s.tests = calloc(p->n_values, sizeof *s.tests);
	s.start = calloc(p->n_values + 1, sizeof *s.start);
	s.producers = malloc((p->n ? p->n : 1) * sizeof *s.producers);
	s.work = malloc((p->n_values ? p->n_values : 1) * sizeof *s.work);
	s.removed = calloc(p->n ? p->n : 1, sizeof *s.removed);
	if (!s.tests || !s.start || !s.producers || !s.work || !s.removed) {
		rv = rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "pruning");
		goto out;
	}
	index_producers(p, &s);
	run_worklist(p, &s);
	compact(p, s.removed);
out:
	free(s.tests);
	free(s.start);
	free(s.producers);
	free(s.work);
	free(s.removed);
	return rv;
}
