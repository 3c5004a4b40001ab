/* Shortest failing window: binary search over event positions with the WGL
 * search as the oracle. Windows only grow harder to linearize as they
 * widen (a linearization of a window restricts to one of any sub-window),
 * which makes both searches sound. */
#include "window.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

struct finder {
	const struct rp_ops *ops;
	const size_t *idx;
	size_t n_idx;
	const struct rp_value_ids *vids;
	const struct rp_wgl_limits *lim;
	struct rp_window *out;
	char *errmsg;
};

/* Does the sub-history of @win fail? UNKNOWN counts as no. */
static int window_fails(struct finder *f, struct rp_lin_window win, bool *fails)
{
	struct rp_lin_problem p;
	struct rp_wgl_stats st;
	enum rp_verdict v;
	int rv;

	rv = rp_lin_problem_build(f->ops, f->idx, f->n_idx, f->vids, win, &p, f->errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	rv = rp_wgl_check(&p, f->lim, &v, &st, f->errmsg);
	rp_lin_problem_free(&p);
	f->out->checks++;
	if (v == RP_VERDICT_UNKNOWN) {
		f->out->minimal = false;
	}
	*fails = v == RP_VERDICT_INVALID;
	return rv;
}

static int cmp_size(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;

	return (a > b) - (a < b);
}

/* Sorted distinct event positions where a window edge can matter. */
static size_t collect_points(const struct finder *f, size_t *pts)
{
	size_t n = 0, u = 0;

	for (size_t i = 0; i < f->n_idx; i++) {
		const struct rp_op *op = &f->ops->ops[f->idx[i]];
		if (!rp_is_register_op(op) || op->outcome == RP_OUT_FAIL) {
			continue;
		}
		pts[n++] = op->inv_pos;
		if (op->cmp_pos != RP_POS_NONE) {
			pts[n++] = op->cmp_pos;
		}
	}
	qsort(pts, n, sizeof *pts, cmp_size);
	for (size_t i = 0; i < n; i++) {
		if (u == 0 || pts[u - 1] != pts[i]) {
			pts[u++] = pts[i];
		}
	}
	return u;
}

/* Smallest i with prefix ..pts[i] failing; np if none decided. */
static int search_end(struct finder *f, const size_t *pts, size_t np, size_t *end)
{
	size_t lo = 0, hi = np; /* prefixes before lo pass; hi fails */
	bool fails;
	int rv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		rv = window_fails(f, (struct rp_lin_window){true, 0, pts[mid]}, &fails);
		if (rv != RP_CHK_OK) {
			return rv;
		}
		if (fails) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	*end = hi;
	return RP_CHK_OK;
}

/* Largest j with window pts[j]..hi failing; SIZE_MAX for "from start". */
static int search_start(struct finder *f, const size_t *pts, size_t count, size_t hi, size_t *start)
{
	/* starts before lo fail (as does "from start"); top and later pass */
	size_t lo = 0, top = count;
	bool fails;
	int rv;

	while (lo < top) {
		size_t mid = lo + (top - lo) / 2;
		rv = window_fails(f, (struct rp_lin_window){false, pts[mid], hi}, &fails);
		if (rv != RP_CHK_OK) {
			return rv;
		}
		if (fails) {
			lo = mid + 1;
		} else {
			top = mid;
		}
	}
	*start = lo == 0 ? SIZE_MAX : lo - 1;
	return RP_CHK_OK;
}

/* Records the ops of the final window. */
static int record_ops(struct finder *f, struct rp_lin_window win)
{
	struct rp_lin_problem p;
	struct rp_window *w = f->out;
	int rv;

	rv = rp_lin_problem_build(f->ops, f->idx, f->n_idx, f->vids, win, &p, f->errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	w->ops = malloc((p.n ? p.n : 1) * sizeof *w->ops);
	if (w->ops == NULL) {
		rp_lin_problem_free(&p);
		return rp_chk_errorf(f->errmsg, RP_CHK_ENOMEM, "window ops");
	}
	for (size_t i = 0; i < p.n; i++) {
		w->ops[i] = (struct rp_window_op){p.ops[i].src, p.ops[i].required};
	}
	w->n_ops = p.n;
	w->n_pruned = p.n_pruned;
	rp_lin_problem_free(&p);
	return RP_CHK_OK;
}

int rp_window_find(const struct rp_ops *ops, const size_t *idx, size_t n_idx,
		   const struct rp_value_ids *vids, const struct rp_wgl_limits *lim,
		   struct rp_window *out, char *errmsg)
{
	struct finder f = {ops, idx, n_idx, vids, lim, out, errmsg};
	size_t *pts, np, end, start;
	int rv;

	memset(out, 0, sizeof *out);
	out->minimal = true;
	pts = malloc((2 * n_idx + 1) * sizeof *pts);
	if (pts == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "window points");
	}
	np = collect_points(&f, pts);
	rv = search_end(&f, pts, np, &end);
	if (rv != RP_CHK_OK) {
		goto out;
	}
	out->hi = end == np ? SIZE_MAX : pts[end];
	rv = search_start(&f, pts, end == np ? np : end + 1, out->hi, &start);
	if (rv != RP_CHK_OK) {
		goto out;
	}
	out->from_start = start == SIZE_MAX;
	out->lo = out->from_start ? 0 : pts[start];
	rv = record_ops(&f, (struct rp_lin_window){out->from_start, out->lo, out->hi});
	out->found = rv == RP_CHK_OK;
out:
	free(pts);
	return rv;
}

void rp_window_free(struct rp_window *w)
{
	free(w->ops);
	memset(w, 0, sizeof *w);
}
