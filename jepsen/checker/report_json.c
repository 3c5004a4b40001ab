/* JSON reports (jansson). Every builder returns a new reference or NULL if
 * out of memory; json_*_set_new steal their arguments, so a NULL child
 * makes the parent call fail and nothing leaks. */
#include "report.h"

static json_t *verdict_json(enum rp_verdict v)
{
	return v == RP_VERDICT_VALID     ? json_true()
	       : v == RP_VERDICT_INVALID ? json_false()
					 : json_string("unknown");
}

static json_t *pos_json(const struct rp_history *h, size_t pos)
{
	return pos < h->n_events ? json_integer(h->events[pos].index) : json_null();
}

static json_t *op_value_json(const struct rp_op *op)
{
	const struct rp_value *v = op->fn == RP_FN_READ ? &op->cmp_value : &op->inv_value;

	switch (v->kind) {
	case RP_VAL_INT: return json_integer(v->a);
	case RP_VAL_PAIR: return json_pack("[I,I]", (json_int_t)v->a, (json_int_t)v->b);
	default: return json_null();
	}
}

static json_t *window_op_json(const struct rp_history *h, const struct rp_op *op, bool required)
{
	return json_pack("{s:I,s:s,s:o,s:s,s:o,s:o,s:b}", "process", (json_int_t)op->process, "f",
			 rp_fn_name(op->fn), "value", op_value_json(op), "type",
			 op->outcome == RP_OUT_OK     ? "ok"
			 : op->outcome == RP_OUT_FAIL ? "fail"
						      : "info",
			 "invoke", pos_json(h, op->inv_pos), "complete", pos_json(h, op->cmp_pos),
			 "open", !required);
}

static json_t *window_json(const struct rp_history *h, const struct rp_ops *ops,
			   const struct rp_key_result *k)
{
	const struct rp_window *w = &k->window;
	json_t *list = json_array();

	for (size_t i = 0; list != NULL && i < w->n_ops; i++) {
		if (json_array_append_new(list, window_op_json(h, &ops->ops[w->ops[i].op],
							       w->ops[i].required)) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	return json_pack("{s:o,s:o,s:b,s:b,s:f,s:o}", "from",
			 w->from_start ? json_null() : pos_json(h, w->lo), "to", pos_json(h, w->hi),
			 "from_start", w->from_start, "minimal", w->minimal, "time_ms",
			 k->window_ms, "ops", list);
}

static json_t *key_json(const struct rp_history *h, const struct rp_ops *ops,
			const struct rp_key_result *k)
{
	json_t *obj = json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:f}", "valid", verdict_json(k->verdict),
				"ops", (json_int_t)k->n_ops, "placed", (json_int_t)k->n_required,
				"open", (json_int_t)k->n_optional, "pruned",
				(json_int_t)k->n_pruned, "configs", (json_int_t)k->configs,
				"time_ms", k->check_ms);

	if (obj != NULL && k->reason != NULL &&
	    json_object_set_new(obj, "reason", json_string(k->reason)) != 0) {
		goto err;
	}
	if (obj != NULL && k->window.found &&
	    json_object_set_new(obj, "window", window_json(h, ops, k)) != 0) {
		goto err;
	}
	return obj;
err:
	json_decref(obj);
	return NULL;
}

/* The common envelope; steals @keys. */
static json_t *summary(enum rp_verdict v, const char *model, json_t *keys, const struct rp_ops *ops)
{
	return json_pack("{s:o,s:s,s:o,s:{s:I,s:I,s:I}}", "valid", verdict_json(v), "model", model,
			 "keys", keys, "ops", "ok", (json_int_t)ops->n_ok, "fail",
			 (json_int_t)ops->n_fail, "info", (json_int_t)ops->n_info);
}

json_t *rp_report_register_json(const struct rp_history *h, const struct rp_ops *ops,
				const struct rp_register_report *r)
{
	json_t *keys = json_object();

	for (size_t i = 0; keys != NULL && i < r->n_keys; i++) {
		const struct rp_key_result *k = &r->keys[i];
		if (json_object_set_new(keys, rp_history_key(h, k->key), key_json(h, ops, k)) !=
		    0) {
			json_decref(keys);
			keys = NULL;
		}
	}
	return summary(r->verdict, "register", keys, ops);
}

static json_t *elems_json(const int64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++) {
		if (json_array_append_new(a, json_integer(v[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

static json_t *set_key_json(const struct rp_set_key_result *k)
{
	json_t *obj = json_pack("{s:o,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:I,s:I,s:I}", "valid",
				verdict_json(k->verdict), "adds_ok", (json_int_t)k->n_adds_ok,
				"adds_fail", (json_int_t)k->n_adds_fail, "adds_info",
				(json_int_t)k->n_adds_info, "read_size", (json_int_t)k->read_size,
				"lost", elems_json(k->lost, k->n_lost), "unexpected",
				elems_json(k->unexpected, k->n_unexpected), "failed_present",
				elems_json(k->failed_present, k->n_failed_present), "info_present",
				(json_int_t)k->info_present, "info_absent",
				(json_int_t)k->info_absent, "concurrent_absent",
				(json_int_t)k->concurrent_absent);

	if (obj != NULL && k->reason != NULL &&
	    json_object_set_new(obj, "reason", json_string(k->reason)) != 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

json_t *rp_report_set_json(const struct rp_history *h, const struct rp_ops *ops,
			   const struct rp_set_report *r)
{
	json_t *keys = json_object();

	for (size_t i = 0; keys != NULL && i < r->n_keys; i++) {
		const struct rp_set_key_result *k = &r->keys[i];
		if (json_object_set_new(keys, rp_history_key(h, k->key), set_key_json(k)) != 0) {
			json_decref(keys);
			keys = NULL;
		}
	}
	return summary(r->verdict, "set", keys, ops);
}
