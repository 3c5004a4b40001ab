/* Pairing of invocations and completions, with value-shape validation.
 *
 * Invariants:
 *  1. A process has at most one pending invocation; a second invoke while
 *     one is pending, or a completion with none pending, is an error.
 *  2. A completion must carry the same f (and key, if it names one) as the
 *     invocation it completes.
 *  3. Invocations still pending at the end become RP_OUT_INFO.
 */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* process -> index of its pending op + 1 (0 = none pending). Slots keep
 * their process once used, so there is never a deletion. */
struct proc_map {
	int64_t *procs;
	size_t *pending;
	bool *used;
	size_t cap, n;
};

static size_t proc_slot(const struct proc_map *m, int64_t p)
{
	uint64_t x = (uint64_t)p * 0x9e3779b97f4a7c15ULL;
	size_t i = (size_t)(x ^ (x >> 29)) & (m->cap - 1);

	while (m->used[i] && m->procs[i] != p) {
		i = (i + 1) & (m->cap - 1);
	}
	return i;
}

static int proc_map_grow(struct proc_map *m)
{
	struct proc_map big = {.cap = m->cap ? m->cap * 2 : 64};

	big.procs = calloc(big.cap, sizeof *big.procs);
	big.pending = calloc(big.cap, sizeof *big.pending);
	big.used = calloc(big.cap, sizeof *big.used);
	if (big.procs == NULL || big.pending == NULL || big.used == NULL) {
		free(big.procs);
		free(big.pending);
		free(big.used);
		return RP_CHK_ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (m->used[i]) {
			size_t j = proc_slot(&big, m->procs[i]);
			big.used[j] = true;
			big.procs[j] = m->procs[i];
			big.pending[j] = m->pending[i];
			big.n++;
		}
	}
	free(m->procs);
	free(m->pending);
	free(m->used);
	*m = big;
	return RP_CHK_OK;
}

/* Slot for @p, creating it if needed; NULL on allocation failure. */
static size_t *proc_pending(struct proc_map *m, int64_t p)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && proc_map_grow(m) != RP_CHK_OK) {
		return NULL;
	}
	i = proc_slot(m, p);
	if (!m->used[i]) {
		m->used[i] = true;
		m->procs[i] = p;
		m->pending[i] = 0;
		m->n++;
	}
	return &m->pending[i];
}

static void proc_map_free(struct proc_map *m)
{
	free(m->procs);
	free(m->pending);
	free(m->used);
}

static int check_invoke_value(const struct rp_event *ev, char *errmsg)
{
	if ((ev->fn == RP_FN_WRITE || ev->fn == RP_FN_ADD) && ev->value.kind != RP_VAL_INT) {
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY, "line %zu: %s needs an integer value",
				     ev->line, rp_fn_name(ev->fn));
	}
	if (ev->fn == RP_FN_CAS && ev->value.kind != RP_VAL_PAIR) {
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY, "line %zu: cas needs an [A B] value",
				     ev->line);
	}
	return RP_CHK_OK;
}

static int check_ok_value(const struct rp_event *ev, char *errmsg)
{
	if (ev->type != RP_EV_OK) {
		return RP_CHK_OK;
	}
	if (ev->fn == RP_FN_READ && ev->value.kind != RP_VAL_INT && ev->value.kind != RP_VAL_NIL) {
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY,
				     "line %zu: ok read needs an integer or nil", ev->line);
	}
	if (ev->fn == RP_FN_FINAL_READ && ev->value.kind != RP_VAL_LIST) {
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY,
				     "line %zu: ok final-read needs a list", ev->line);
	}
	return RP_CHK_OK;
}

static int push_op(struct rp_ops *out, size_t *cap, const struct rp_event *ev, size_t pos)
{
	if (out->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct rp_op *ops = realloc(out->ops, ncap * sizeof *ops);
		if (ops == NULL) {
			return RP_CHK_ENOMEM;
		}
		out->ops = ops;
		*cap = ncap;
	}
	out->ops[out->n++] = (struct rp_op){
		.process = ev->process,
		.fn = ev->fn,
		.key = ev->key,
		.outcome = RP_OUT_INFO,
		.inv_value = ev->value,
		.cmp_value = {.kind = RP_VAL_ABSENT},
		.inv_pos = pos,
		.cmp_pos = RP_POS_NONE,
	};
	return RP_CHK_OK;
}

static int on_invoke(const struct rp_history *h, struct rp_ops *out, size_t *cap, size_t *pending,
		     size_t pos, char *errmsg)
{
	const struct rp_event *ev = &h->events[pos];
	int rv;

	if (*pending != 0) {
		const struct rp_op *prev = &out->ops[*pending - 1];
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY,
				     "line %zu: process %lld invokes %s while its %s "
				     "from line %zu is still pending",
				     ev->line, (long long)ev->process, rp_fn_name(ev->fn),
				     rp_fn_name(prev->fn), h->events[prev->inv_pos].line);
	}
	rv = check_invoke_value(ev, errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	if (push_op(out, cap, ev, pos) != RP_CHK_OK) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "operation array");
	}
	*pending = out->n;
	return RP_CHK_OK;
}

static int on_complete(const struct rp_history *h, struct rp_ops *out, size_t *pending, size_t pos,
		       char *errmsg)
{
	const struct rp_event *ev = &h->events[pos];
	struct rp_op *op;

	if (*pending == 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY,
				     "line %zu: process %lld completes %s with no "
				     "pending invocation",
				     ev->line, (long long)ev->process, rp_fn_name(ev->fn));
	}
	op = &out->ops[*pending - 1];
	if (op->fn != ev->fn || (ev->key != RP_KEY_ABSENT && ev->key != op->key)) {
		return rp_chk_errorf(errmsg, RP_CHK_EHISTORY,
				     "line %zu: completion (%s) does not match the "
				     "invocation on line %zu (%s)",
				     ev->line, rp_fn_name(ev->fn), h->events[op->inv_pos].line,
				     rp_fn_name(op->fn));
	}
	op->cmp_value = ev->value;
	op->cmp_pos = pos;
	op->outcome = ev->type == RP_EV_OK     ? RP_OUT_OK
		      : ev->type == RP_EV_FAIL ? RP_OUT_FAIL
					       : RP_OUT_INFO;
	*pending = 0;
	return check_ok_value(ev, errmsg);
}

static void count_outcomes(struct rp_ops *out)
{
	for (size_t i = 0; i < out->n; i++) {
		const struct rp_op *op = &out->ops[i];
		out->n_ok += op->outcome == RP_OUT_OK;
		out->n_fail += op->outcome == RP_OUT_FAIL;
		out->n_info += op->outcome == RP_OUT_INFO;
		out->n_incomplete += op->cmp_pos == RP_POS_NONE;
	}
}

int rp_ops_build(const struct rp_history *h, struct rp_ops *out, char *errmsg)
{
	struct proc_map map = {0};
	size_t cap = 0;
	int rv = RP_CHK_OK;

	memset(out, 0, sizeof *out);
	for (size_t pos = 0; pos < h->n_events; pos++) {
		const struct rp_event *ev = &h->events[pos];
		size_t *pending;
		if (ev->nemesis || ev->fn == RP_FN_OTHER) {
			out->n_nemesis++;
			continue;
		}
		pending = proc_pending(&map, ev->process);
		if (pending == NULL) {
			rv = rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "process map");
			goto err_after_map;
		}
		rv = ev->type == RP_EV_INVOKE ? on_invoke(h, out, &cap, pending, pos, errmsg)
					      : on_complete(h, out, pending, pos, errmsg);
		if (rv != RP_CHK_OK) {
			goto err_after_map;
		}
	}
	proc_map_free(&map);
	count_outcomes(out);
	return RP_CHK_OK;

err_after_map:
	proc_map_free(&map);
	rp_ops_free(out);
	return rv;
}

void rp_ops_free(struct rp_ops *ops)
{
	free(ops->ops);
	memset(ops, 0, sizeof *ops);
}
