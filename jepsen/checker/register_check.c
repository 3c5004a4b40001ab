/* Per-key driver: groups ops by key, runs the WGL search under the budgets,
 * and looks for the failing window of invalid keys. */
#include "register_check.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "lin_problem.h"
#include "op_groups.h"
#include "wgl.h"

struct rp_lin_options rp_lin_options_default(void)
{
	return (struct rp_lin_options){
		.key_budget_ms = 10000,
		.global_budget_ms = 0,
		.memo_limit_bytes = (size_t)1 << 30,
		.find_window = true,
	};
}

static int find_window(const struct rp_ops *ops, const size_t *idx, size_t n,
		       const struct rp_value_ids *vids, const struct rp_lin_options *opt,
		       int64_t global, struct rp_key_result *r, char *errmsg)
{
	struct rp_wgl_limits lim = {
		rp_clock_min_deadline(rp_clock_deadline_after_ms(opt->key_budget_ms), global),
		opt->memo_limit_bytes};
	int64_t t0 = rp_clock_now_ns();
	int rv = rp_window_find(ops, idx, n, vids, &lim, &r->window, errmsg);

	r->window_ms = rp_clock_ms_since(t0);
	return rv;
}

static int check_key(const struct rp_ops *ops, const size_t *idx, size_t n,
		     const struct rp_lin_options *opt, int64_t global, struct rp_key_result *r,
		     char *errmsg)
{
	struct rp_wgl_limits lim = {
		rp_clock_min_deadline(rp_clock_deadline_after_ms(opt->key_budget_ms), global),
		opt->memo_limit_bytes};
	int64_t t0 = rp_clock_now_ns();
	struct rp_value_ids vids;
	struct rp_lin_problem p;
	struct rp_wgl_stats st;
	int rv;

	rv = rp_value_ids_build(ops, idx, n, &vids, errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	rv = rp_lin_problem_build(ops, idx, n, &vids, RP_LIN_WHOLE, &p, errmsg);
	if (rv != RP_CHK_OK) {
		goto err_after_vids;
	}
	r->n_required = p.n_required;
	r->n_optional = p.n - p.n_required;
	r->n_pruned = p.n_pruned;
	rv = rp_wgl_check(&p, &lim, &r->verdict, &st, errmsg);
	rp_lin_problem_free(&p);
	r->configs = st.configs;
	r->reason = st.reason;
	r->check_ms = rp_clock_ms_since(t0);
	if (rv == RP_CHK_OK && r->verdict == RP_VERDICT_INVALID && opt->find_window) {
		rv = find_window(ops, idx, n, &vids, opt, global, r, errmsg);
	}
err_after_vids:
	rp_value_ids_free(&vids);
	return rv;
}

static int check_keys(const struct rp_history *h, const struct rp_ops *ops,
		      const struct rp_lin_options *opt, const struct rp_op_groups *g,
		      struct rp_register_report *out, char *errmsg)
{
	int64_t global = rp_clock_deadline_after_ms(opt->global_budget_ms);

	for (uint32_t k = 0; k < h->keys.n; k++) {
		size_t n = rp_op_groups_count(g, k);
		struct rp_key_result *r = &out->keys[out->n_keys];
		int rv;
		if (n == 0) {
			continue;
		}
		*r = (struct rp_key_result){.key = k, .n_ops = n};
		out->n_keys++;
		if (rp_clock_now_ns() >= global) {
			r->verdict = RP_VERDICT_UNKNOWN;
			r->reason = "global budget exceeded";
		} else {
			rv = check_key(ops, g->idx + g->start[k], n, opt, global, r, errmsg);
			if (rv != RP_CHK_OK) {
				rp_chk_err_prefix(errmsg, "key \"%s\"", rp_history_key(h, k));
				return rv;
			}
		}
		out->verdict = rp_verdict_merge(out->verdict, r->verdict);
	}
	return RP_CHK_OK;
}

int rp_register_check(const struct rp_history *h, const struct rp_ops *ops,
		      const struct rp_lin_options *opt, struct rp_register_report *out,
		      char *errmsg)
{
	struct rp_op_groups g = {0};
	int64_t t0 = rp_clock_now_ns();
	int rv;

	memset(out, 0, sizeof *out);
	out->verdict = RP_VERDICT_VALID;
	out->keys = calloc(h->keys.n ? h->keys.n : 1, sizeof *out->keys);
	if (out->keys == NULL) {
		rv = rp_chk_errorf(errmsg, RP_CHK_ENOMEM, "key results");
		goto out;
	}
	rv = rp_op_groups_build(h, ops, rp_is_register_op, &g, errmsg);
	if (rv != RP_CHK_OK) {
		goto out;
	}
	rv = check_keys(h, ops, opt, &g, out, errmsg);
	rp_op_groups_free(&g);
out:
	out->total_ms = rp_clock_ms_since(t0);
	return rv;
}

void rp_register_report_free(struct rp_register_report *r)
{
	for (size_t i = 0; i < r->n_keys; i++) {
		rp_window_free(&r->keys[i].window);
	}
	free(r->keys);
	memset(r, 0, sizeof *r);
}
