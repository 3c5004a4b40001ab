/* Human-readable reports. */
#include <inttypes.h>
#include <stdint.h>

#include "report.h"

void rp_format_op_value(const struct rp_op *op, char *buf, size_t size)
{
	bool reads = op->fn == RP_FN_READ || op->fn == RP_FN_FINAL_READ;
	const struct rp_value *v = reads ? &op->cmp_value : &op->inv_value;

	switch (v->kind) {
	case RP_VAL_NIL: snprintf(buf, size, "nil"); break;
	case RP_VAL_INT: snprintf(buf, size, "%" PRId64, v->a); break;
	case RP_VAL_PAIR: snprintf(buf, size, "[%" PRId64 " %" PRId64 "]", v->a, v->b); break;
	case RP_VAL_LIST: snprintf(buf, size, "(%zu elements)", v->n_items); break;
	default: snprintf(buf, size, "?"); break;
	}
}

static const char *outcome_name(enum rp_outcome o)
{
	return o == RP_OUT_OK ? "ok" : o == RP_OUT_FAIL ? "fail" : "info";
}

static long long event_index(const struct rp_history *h, size_t pos)
{
	return pos < h->n_events ? (long long)h->events[pos].index : -1;
}

static void print_window_op(FILE *out, const struct rp_history *h, const struct rp_op *op,
			    bool required, size_t hi)
{
	char val[64], end[32] = "open";

	rp_format_op_value(op, val, sizeof val);
	if (op->cmp_pos != RP_POS_NONE) {
		snprintf(end, sizeof end, "%lld", event_index(h, op->cmp_pos));
	}
	fprintf(out, "    [%6lld .. %-6s] process %-6lld %-5s %-14s %-4s%s%s\n",
		event_index(h, op->inv_pos), end, (long long)op->process, rp_fn_name(op->fn), val,
		outcome_name(op->outcome),
		required                   ? ""
		: op->outcome == RP_OUT_OK ? "  (crosses the window edge: "
					     "may or may not count)"
					   : "  (may or may not have taken "
					     "effect)",
		op->cmp_pos == hi ? "  <-- window ends here" : "");
}

static void print_nemesis(FILE *out, const struct rp_history *h, size_t lo, size_t hi)
{
	for (size_t pos = lo; pos <= hi && pos < h->n_events; pos++) {
		const struct rp_event *ev = &h->events[pos];
		if (ev->nemesis) {
			fprintf(out, "    [%6lld]           nemesis %s %s\n", (long long)ev->index,
				rp_ev_type_name(ev->type), ev->note ? ev->note : "");
		}
	}
}

static void print_window(FILE *out, const struct rp_history *h, const struct rp_ops *ops,
			 const struct rp_window *w)
{
	char lo[32] = "start", hi[32] = "end";

	if (!w->from_start) {
		snprintf(lo, sizeof lo, "%lld", event_index(h, w->lo));
	}
	if (w->hi != SIZE_MAX) {
		snprintf(hi, sizeof hi, "%lld", event_index(h, w->hi));
	}
	fprintf(out,
		"  shortest failing window: events %s..%s, %zu ops%s; register "
		"at window start: %s\n",
		lo, hi, w->n_ops, w->minimal ? "" : " (not proven minimal: budget ran out)",
		w->from_start ? "unset" : "any value");
	for (size_t i = 0; i < w->n_ops; i++) {
		print_window_op(out, h, &ops->ops[w->ops[i].op], w->ops[i].required, w->hi);
	}
	print_nemesis(out, h, w->from_start ? 0 : w->lo, w->hi);
	if (w->n_pruned > 0) {
		fprintf(out,
			"    (+%zu open writes/cas left out: no op in the window "
			"could observe their effect)\n",
			w->n_pruned);
	}
}

void rp_report_register_text(FILE *out, const struct rp_history *h, const struct rp_ops *ops,
			     const struct rp_register_report *r)
{
	for (size_t i = 0; i < r->n_keys; i++) {
		const struct rp_key_result *k = &r->keys[i];
		fprintf(out,
			"key \"%s\": %s  (%zu ops: %zu placed, %zu open, %zu open "
			"pruned; %zu configs; %.2f ms)%s%s\n",
			rp_history_key(h, k->key), rp_verdict_name(k->verdict), k->n_ops,
			k->n_required, k->n_optional, k->n_pruned, k->configs, k->check_ms,
			k->reason ? " -- " : "", k->reason ? k->reason : "");
		if (k->window.found) {
			print_window(out, h, ops, &k->window);
		}
	}
}

static void print_elems(FILE *out, const char *what, const int64_t *v, size_t n)
{
	if (n == 0) {
		return;
	}
	fprintf(out, "  %s (%zu):", what, n);
	for (size_t i = 0; i < n && i < 50; i++) {
		fprintf(out, " %" PRId64, v[i]);
	}
	fprintf(out, "%s\n", n > 50 ? " ..." : "");
}

void rp_report_set_text(FILE *out, const struct rp_history *h, const struct rp_set_report *r)
{
	for (size_t i = 0; i < r->n_keys; i++) {
		const struct rp_set_key_result *k = &r->keys[i];
		fprintf(out,
			"set \"%s\": %s  (adds: %zu ok, %zu fail, %zu info; final "
			"read: %zu elements; info adds present %zu, absent %zu; ok "
			"adds concurrent with the read and absent %zu)%s%s\n",
			rp_history_key(h, k->key), rp_verdict_name(k->verdict), k->n_adds_ok,
			k->n_adds_fail, k->n_adds_info, k->read_size, k->info_present,
			k->info_absent, k->concurrent_absent, k->reason ? " -- " : "",
			k->reason ? k->reason : "");
		print_elems(out, "lost acknowledged adds", k->lost, k->n_lost);
		print_elems(out, "unexpected elements", k->unexpected, k->n_unexpected);
		print_elems(out, "failed adds present", k->failed_present, k->n_failed_present);
	}
}

void rp_report_overall_text(FILE *out, enum rp_verdict v, const struct rp_ops *ops)
{
	fprintf(out,
		"overall: %s  (ops: %zu ok, %zu fail, %zu info of which %zu "
		"never completed)\n",
		rp_verdict_name(v), ops->n_ok, ops->n_fail, ops->n_info, ops->n_incomplete);
}
