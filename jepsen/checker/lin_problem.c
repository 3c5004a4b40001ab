/* Building per-key register search problems from operations. */
#include "lin_problem.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

bool rp_is_register_op(const struct rp_op *op)
{
	return op->fn == RP_FN_READ || op->fn == RP_FN_WRITE || op->fn == RP_FN_CAS;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return (a > b) - (a < b);
}

static size_t collect_values(const struct rp_op *op, int64_t *out)
{
	size_t n = 0;

	if (op->fn == RP_FN_READ && op->cmp_value.kind == RP_VAL_INT) {
		out[n++] = op->cmp_value.a;
	} else if (op->fn == RP_FN_WRITE && op->inv_value.kind == RP_VAL_INT) {
		out[n++] = op->inv_value.a;
	} else if (op->fn == RP_FN_CAS && op->inv_value.kind == RP_VAL_PAIR) {
		out[n++] = op->inv_value.a;
		out[n++] = op->inv_value.b;
	}
	return n;
}

int rp_value_ids_build(const struct rp_ops *ops, const size_t *idx, size_t n_idx,
		       struct rp_value_ids *out, char *errmsg)
{
	size_t n = 0, u = 0;

	memset(out, 0, sizeof *out);
	if (n_idx > (UINT32_MAX - RP_VID_FIRST) / 2) {
		return rp_chk_errorf(errmsg, RP_CHK_ELIMIT, "too many ops on a key");
	}
	out->vals = malloc((2 * n_idx + 1) * sizeof *out->vals);
	if (out->vals == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "value ids");
	}
	for (size_t i = 0; i < n_idx; i++) {
		n += collect_values(&ops->ops[idx[i]], out->vals + n);
	}
	qsort(out->vals, n, sizeof *out->vals, cmp_i64);
	for (size_t i = 0; i < n; i++) {
		if (u == 0 || out->vals[u - 1] != out->vals[i]) {
			out->vals[u++] = out->vals[i];
		}
	}
	out->n = u;
	return RP_CHK_OK;
}

void rp_value_ids_free(struct rp_value_ids *v)
{
	free(v->vals);
	memset(v, 0, sizeof *v);
}

/* Id of @x, which rp_value_ids_build saw. */
static uint32_t vid_of(const struct rp_value_ids *v, int64_t x)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->vals[mid] < x) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return RP_VID_FIRST + (uint32_t)lo;
}

/* Sets kind/a/b of @l from @op. Returns false if the op has no effect and
 * can be dropped (an optional cas from a value to itself). */
static bool set_semantics(const struct rp_op *op, const struct rp_value_ids *vids, struct rp_lop *l)
{
	switch (op->fn) {
	case RP_FN_READ:
		l->kind = RP_LOP_READ;
		l->a = op->cmp_value.kind == RP_VAL_INT ? vid_of(vids, op->cmp_value.a)
							: RP_VID_NIL;
		return true;
	case RP_FN_WRITE:
		l->kind = RP_LOP_WRITE;
		l->b = vid_of(vids, op->inv_value.a);
		return true;
	default:
		l->kind = RP_LOP_CAS;
		l->a = vid_of(vids, op->inv_value.a);
		l->b = vid_of(vids, op->inv_value.b);
		if (l->a == l->b) { /* a cas to itself is a conditional read */
			l->kind = RP_LOP_READ;
			return l->required;
		}
		return true;
	}
}

/* Fills @l for @op within @win; false if the op is not part of it. */
static bool make_lop(const struct rp_op *op, const struct rp_value_ids *vids,
		     struct rp_lin_window win, struct rp_lop *l)
{
	size_t end = op->outcome == RP_OUT_OK ? op->cmp_pos : RP_TIME_OPEN;

	if (op->outcome == RP_OUT_FAIL || (op->fn == RP_FN_READ && op->outcome != RP_OUT_OK)) {
		return false;
	}
	if ((!win.from_start && end < win.lo) || op->inv_pos > win.hi) {
		return false;
	}
	l->required = op->outcome == RP_OUT_OK && (win.from_start || op->inv_pos >= win.lo) &&
		      end <= win.hi;
	if (!l->required && op->fn == RP_FN_READ) {
		return false;
	}
	l->call = op->inv_pos;
	if (!win.from_start && l->call < win.lo) {
		l->call = win.lo;
	}
	l->ret = end <= win.hi ? end : RP_TIME_OPEN;
	return set_semantics(op, vids, l);
}

int rp_lin_problem_build(const struct rp_ops *ops, const size_t *idx, size_t n_idx,
			 const struct rp_value_ids *vids, struct rp_lin_window win,
			 struct rp_lin_problem *out, char *errmsg)
{
	memset(out, 0, sizeof *out);
	out->ops = malloc((n_idx ? n_idx : 1) * sizeof *out->ops);
	if (out->ops == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "search ops");
	}
	for (size_t i = 0; i < n_idx; i++) {
		struct rp_lop *l = &out->ops[out->n];
		if (!rp_is_register_op(&ops->ops[idx[i]]) ||
		    !make_lop(&ops->ops[idx[i]], vids, win, l)) {
			continue;
		}
		l->src = idx[i];
		out->n++;
	}
	out->init_state = win.from_start ? RP_VID_NIL : RP_VID_ANY;
	out->n_values = RP_VID_FIRST + vids->n;
	if (rp_lin_prune(out, errmsg) != RP_CHK_OK) {
		rp_lin_problem_free(out);
		return RP_CHK_ENOMEM;
	}
	for (size_t i = 0; i < out->n; i++) {
		out->n_required += out->ops[i].required;
	}
	return RP_CHK_OK;
}

void rp_lin_problem_free(struct rp_lin_problem *p)
{
	free(p->ops);
	memset(p, 0, sizeof *p);
}
