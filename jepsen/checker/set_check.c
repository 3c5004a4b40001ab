/* Set checker: compares adds with the last successful final read of each
 * key. An element's adds are summarised by their best outcome: ok-before-
 * read > ok-concurrent-with-read > info > fail. */
#include "set_check.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "op_groups.h"

enum add_status {
	ADD_FAIL,
	ADD_INFO,
	ADD_OK_CONCURRENT,
	ADD_OK_BEFORE
};

struct add {
	int64_t elem;
	enum add_status status;
};

static bool is_set_op(const struct rp_op *op)
{
	return op->fn == RP_FN_ADD || op->fn == RP_FN_FINAL_READ;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return (a > b) - (a < b);
}

static int cmp_add(const void *x, const void *y)
{
	const struct add *a = x, *b = y;

	if (a->elem != b->elem) {
		return a->elem < b->elem ? -1 : 1;
	}
	return (int)a->status - (int)b->status;
}

static bool contains(const int64_t *v, size_t n, int64_t x)
{
	return bsearch(&x, v, n, sizeof *v, cmp_i64) != NULL;
}

/* The ok final-read completing last, or SIZE_MAX. */
static size_t last_final_read(const struct rp_ops *ops, const size_t *idx, size_t n)
{
	size_t best = SIZE_MAX;

	for (size_t i = 0; i < n; i++) {
		const struct rp_op *op = &ops->ops[idx[i]];
		if (op->fn == RP_FN_FINAL_READ && op->outcome == RP_OUT_OK &&
		    (best == SIZE_MAX || op->cmp_pos > ops->ops[best].cmp_pos)) {
			best = idx[i];
		}
	}
	return best;
}

/* Adds of the key, with their status relative to the final read invoked
 * at position @read_inv; counts outcomes. */
static size_t collect_adds(const struct rp_ops *ops, const size_t *idx, size_t n, size_t read_inv,
			   struct add *adds, struct rp_set_key_result *r)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct rp_op *op = &ops->ops[idx[i]];
		enum add_status st = ADD_INFO;
		if (op->fn != RP_FN_ADD) {
			continue;
		}
		r->n_adds_ok += op->outcome == RP_OUT_OK;
		r->n_adds_fail += op->outcome == RP_OUT_FAIL;
		r->n_adds_info += op->outcome == RP_OUT_INFO;
		if (op->outcome == RP_OUT_FAIL) {
			st = ADD_FAIL;
		} else if (op->outcome == RP_OUT_OK) {
			st = op->cmp_pos < read_inv ? ADD_OK_BEFORE : ADD_OK_CONCURRENT;
		}
		adds[k++] = (struct add){op->inv_value.a, st};
	}
	return k;
}

/* Classifies distinct elements by their best add status (the last of each
 * run after sorting). Element arrays in @r must hold n_adds entries. */
static void classify(const struct add *adds, size_t n, const int64_t *read, size_t nread,
		     struct rp_set_key_result *r)
{
	for (size_t i = 0; i < n; i++) {
		bool present;
		if (i + 1 < n && adds[i + 1].elem == adds[i].elem) {
			continue;
		}
		present = contains(read, nread, adds[i].elem);
		switch (adds[i].status) {
		case ADD_OK_BEFORE:
			if (!present) {
				r->lost[r->n_lost++] = adds[i].elem;
			}
			break;
		case ADD_OK_CONCURRENT: r->concurrent_absent += !present; break;
		case ADD_INFO:
			r->info_present += present;
			r->info_absent += !present;
			break;
		case ADD_FAIL:
			if (present) {
				r->failed_present[r->n_failed_present++] = adds[i].elem;
			}
			break;
		}
	}
}

/* Elements of the read no add attempted. */
static void find_unexpected(const struct add *adds, size_t n, const int64_t *read, size_t nread,
			    struct rp_set_key_result *r)
{
	size_t j = 0;

	for (size_t i = 0; i < nread; i++) {
		while (j < n && adds[j].elem < read[i]) {
			j++;
		}
		if (j == n || adds[j].elem != read[i]) {
			r->unexpected[r->n_unexpected++] = read[i];
		}
	}
}

/* Sorted distinct copy of the read's items into @out; returns the count. */
static size_t distinct_read(const struct rp_op *read, int64_t *out)
{
	size_t u = 0, n = read->cmp_value.n_items;

	if (n > 0) {
		memcpy(out, read->cmp_value.items, n * sizeof *out);
	}
	qsort(out, n, sizeof *out, cmp_i64);
	for (size_t i = 0; i < n; i++) {
		if (u == 0 || out[u - 1] != out[i]) {
			out[u++] = out[i];
		}
	}
	return u;
}

static int alloc_results(struct rp_set_key_result *r, size_t n_adds, size_t n_items)
{
	r->lost = malloc((n_adds ? n_adds : 1) * sizeof *r->lost);
	r->failed_present = malloc((n_adds ? n_adds : 1) * sizeof *r->lost);
	r->unexpected = malloc((n_items ? n_items : 1) * sizeof *r->lost);
	return r->lost && r->failed_present && r->unexpected ? RP_CHK_OK : RP_CHK_ENOMEM;
}

static int check_key(const struct rp_ops *ops, const size_t *idx, size_t n,
		     struct rp_set_key_result *r, char *errmsg)
{
	const struct rp_op *read = NULL;
	struct add *adds = malloc((n ? n : 1) * sizeof *adds);
	int64_t *items = NULL;
	size_t n_adds, nread;
	int rv = RP_CHK_ENOMEM;

	r->final_read_op = last_final_read(ops, idx, n);
	if (r->final_read_op != SIZE_MAX) {
		read = &ops->ops[r->final_read_op];
	}
	if (adds == NULL) {
		goto out;
	}
	n_adds = collect_adds(ops, idx, n, read ? read->inv_pos : SIZE_MAX, adds, r);
	if (read == NULL) {
		r->verdict = RP_VERDICT_UNKNOWN;
		r->reason = "no successful final read";
		rv = RP_CHK_OK;
		goto out;
	}
	items = malloc((read->cmp_value.n_items + 1) * sizeof *items);
	if (items == NULL || alloc_results(r, n_adds, read->cmp_value.n_items) != RP_CHK_OK) {
		goto out;
	}
	qsort(adds, n_adds, sizeof *adds, cmp_add);
	nread = distinct_read(read, items);
	r->read_size = nread;
	classify(adds, n_adds, items, nread, r);
	find_unexpected(adds, n_adds, items, nread, r);
	r->verdict = r->n_lost || r->n_unexpected || r->n_failed_present ? RP_VERDICT_INVALID
									 : RP_VERDICT_VALID;
	rv = RP_CHK_OK;
out:
	free(adds);
	free(items);
	return rv == RP_CHK_OK ? rv : rp_chk_errorf(errmsg, rv, "set check buffers");
}

int rp_set_check(const struct rp_history *h, const struct rp_ops *ops, struct rp_set_report *out,
		 char *errmsg)
{
	struct rp_op_groups g;
	int rv;

	memset(out, 0, sizeof *out);
	out->verdict = RP_VERDICT_VALID;
	out->keys = calloc(h->keys.n ? h->keys.n : 1, sizeof *out->keys);
	if (out->keys == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "set results");
	}
	rv = rp_op_groups_build(h, ops, is_set_op, &g, errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	for (uint32_t k = 0; k < h->keys.n && rv == RP_CHK_OK; k++) {
		size_t n = rp_op_groups_count(&g, k);
		struct rp_set_key_result *r = &out->keys[out->n_keys];
		if (n == 0) {
			continue;
		}
		*r = (struct rp_set_key_result){.key = k};
		out->n_keys++;
		rv = check_key(ops, g.idx + g.start[k], n, r, errmsg);
		out->verdict = rp_verdict_merge(out->verdict, r->verdict);
	}
	rp_op_groups_free(&g);
	return rv;
}

void rp_set_report_free(struct rp_set_report *r)
{
	for (size_t i = 0; i < r->n_keys; i++) {
		free(r->keys[i].lost);
		free(r->keys[i].unexpected);
		free(r->keys[i].failed_present);
	}
	free(r->keys);
	memset(r, 0, sizeof *r);
}
