/* Parser for our JSON-lines history format, one event object per line:
 *   {"index":N,"time":NANOS,"process":P,"type":"invoke|ok|fail|info",
 *    "f":"read|write|cas|add|final-read","key":"k1","value":V}
 * "process":"nemesis" marks nemesis events. "index", "time" and "key" are
 * optional; indices, when present, must strictly increase. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "line_reader.h"
#include "parse.h"

static int parse_type(const char *s, enum rp_ev_type *out)
{
	static const char *const names[] = {"invoke", "ok", "fail", "info"};

	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum rp_ev_type)i;
			return 0;
		}
	}
	return -1;
}

static enum rp_fn parse_fn(const char *s)
{
	static const struct {
		const char *name;
		enum rp_fn fn;
	} table[] = {{"read", RP_FN_READ},
		     {"write", RP_FN_WRITE},
		     {"cas", RP_FN_CAS},
		     {"add", RP_FN_ADD},
		     {"final-read", RP_FN_FINAL_READ}};

	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcmp(s, table[i].name) == 0) {
			return table[i].fn;
		}
	}
	return RP_FN_OTHER;
}

static int parse_list(const json_t *j, struct rp_value *v)
{
	size_t n = json_array_size(j);

	if (n > RP_VALUE_MAX_ITEMS) {
		return -1;
	}
	v->items = malloc((n ? n : 1) * sizeof *v->items);
	if (v->items == NULL) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *x = json_array_get(j, i);
		if (!json_is_integer(x)) {
			rp_value_free(v);
			return -1;
		}
		v->items[i] = json_integer_value(x);
	}
	v->n_items = n;
	v->kind = RP_VAL_LIST;
	return 0;
}

/* null | integer | [A,B] (cas) | [ints] (final-read). Anything else is an
 * error unless @lenient (completions the checkers ignore: info, fail). */
static int parse_value(const json_t *j, enum rp_fn fn, bool lenient, struct rp_value *v)
{
	*v = (struct rp_value){.kind = RP_VAL_ABSENT};
	if (j == NULL || json_is_null(j)) {
		v->kind = j == NULL ? RP_VAL_ABSENT : RP_VAL_NIL;
		return 0;
	}
	if (json_is_integer(j)) {
		v->kind = RP_VAL_INT;
		v->a = json_integer_value(j);
		return 0;
	}
	if (json_is_array(j) && fn == RP_FN_CAS && json_array_size(j) == 2 &&
	    json_is_integer(json_array_get(j, 0)) && json_is_integer(json_array_get(j, 1))) {
		v->kind = RP_VAL_PAIR;
		v->a = json_integer_value(json_array_get(j, 0));
		v->b = json_integer_value(json_array_get(j, 1));
		return 0;
	}
	if (json_is_array(j) && fn == RP_FN_FINAL_READ) {
		return parse_list(j, v) == 0 || lenient ? 0 : -1;
	}
	return lenient ? 0 : -1;
}

static int parse_process(const json_t *j, struct rp_event *ev)
{
	if (json_is_integer(j)) {
		ev->process = json_integer_value(j);
		return 0;
	}
	if (json_is_string(j) && strcmp(json_string_value(j), "nemesis") == 0) {
		ev->nemesis = true;
		return 0;
	}
	return -1;
}

/* Optional non-negative integer field; -1 when absent. */
static int opt_int(const json_t *obj, const char *name, int64_t *out)
{
	const json_t *j = json_object_get(obj, name);

	*out = -1;
	if (j == NULL) {
		return 0;
	}
	if (!json_is_integer(j) || json_integer_value(j) < 0) {
		return -1;
	}
	*out = json_integer_value(j);
	return 0;
}

static int parse_key(struct rp_history *h, const json_t *obj, struct rp_event *ev, char *errmsg)
{
	const json_t *j = json_object_get(obj, "key");

	ev->key = RP_KEY_ABSENT;
	if (j == NULL || ev->nemesis) {
		return RP_CHK_OK;
	}
	if (!json_is_string(j)) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: \"key\" must be a string",
				     ev->line);
	}
	return rp_key_table_intern(&h->keys, json_string_value(j), json_string_length(j), &ev->key,
				   errmsg);
}

/* "f value" description of a nemesis event; NULL on allocation failure,
 * which only loses the note. Caller owns the string. */
static char *nemesis_note(const json_t *obj)
{
	const json_t *f = json_object_get(obj, "f");
	const json_t *value = json_object_get(obj, "value");
	char *v = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	char *note = NULL;

	if (asprintf(&note, "%.80s %.100s", json_is_string(f) ? json_string_value(f) : "?",
		     v ? v : "") < 0) {
		note = NULL;
	}
	free(v);
	return note;
}

static int parse_header(const json_t *obj, struct rp_event *ev, char *errmsg)
{
	const json_t *type = json_object_get(obj, "type");
	const json_t *f = json_object_get(obj, "f");

	if (parse_process(json_object_get(obj, "process"), ev) != 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE,
				     "line %zu: \"process\" must be an integer or "
				     "\"nemesis\"",
				     ev->line);
	}
	if (!json_is_string(type) || parse_type(json_string_value(type), &ev->type) != 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE,
				     "line %zu: \"type\" must be invoke, ok, fail or "
				     "info",
				     ev->line);
	}
	ev->fn = json_is_string(f) ? parse_fn(json_string_value(f)) : RP_FN_OTHER;
	if (!ev->nemesis && ev->fn == RP_FN_OTHER) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE,
				     "line %zu: \"f\" must be read, write, cas, add or "
				     "final-read",
				     ev->line);
	}
	if (opt_int(obj, "index", &ev->index) != 0 || opt_int(obj, "time", &ev->time) != 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE,
				     "line %zu: \"index\" and \"time\" must be "
				     "non-negative integers",
				     ev->line);
	}
	return RP_CHK_OK;
}

static int parse_event(struct rp_history *h, const json_t *obj, struct rp_event *ev, char *errmsg)
{
	bool lenient;
	int rv;

	if (!json_is_object(obj)) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: not a JSON object",
				     ev->line);
	}
	rv = parse_header(obj, ev, errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	if (ev->nemesis) {
		ev->fn = RP_FN_OTHER;
		ev->note = nemesis_note(obj);
		ev->key = RP_KEY_ABSENT;
		return RP_CHK_OK;
	}
	rv = parse_key(h, obj, ev, errmsg);
	if (rv == RP_CHK_OK && ev->type == RP_EV_INVOKE && ev->key == RP_KEY_ABSENT) {
		rv = rp_key_table_intern(&h->keys, "", 0, &ev->key, errmsg);
	}
	if (rv != RP_CHK_OK) {
		return rv;
	}
	lenient = ev->type == RP_EV_FAIL || ev->type == RP_EV_INFO;
	if (parse_value(json_object_get(obj, "value"), ev->fn, lenient, &ev->value) != 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: bad \"value\" for %s %s",
				     ev->line, rp_ev_type_name(ev->type), rp_fn_name(ev->fn));
	}
	return RP_CHK_OK;
}

static int parse_line(struct rp_history *h, const char *line, size_t len, size_t line_no,
		      int64_t *last_index, char *errmsg)
{
	struct rp_event ev = {.line = line_no};
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	int rv;

	if (obj == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: %s", line_no, jerr.text);
	}
	rv = parse_event(h, obj, &ev, errmsg);
	json_decref(obj);
	if (rv != RP_CHK_OK) {
		goto err_free_event;
	}
	if (ev.index < 0) {
		ev.index = *last_index + 1;
	} else if (ev.index <= *last_index) {
		rv = rp_chk_errorf(errmsg, RP_CHK_EPARSE,
				   "line %zu: \"index\" %lld does not increase", line_no,
				   (long long)ev.index);
		goto err_free_event;
	}
	*last_index = ev.index;
	return rp_history_append(h, &ev, errmsg);

err_free_event:
	rp_value_free(&ev.value);
	free(ev.note);
	return rv;
}

int rp_parse_jsonl(FILE *f, struct rp_history *h, char *errmsg)
{
	struct rp_line_reader r;
	int64_t last_index = -1;
	const char *line;
	size_t len;
	int rv;

	rv = rp_line_reader_init(&r, f, errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
	for (;;) {
		rv = rp_line_reader_next(&r, &line, &len, errmsg);
		if (rv != RP_CHK_OK || line == NULL) {
			break;
		}
		if (strspn(line, " \t") == len) {
			continue;
		}
		rv = parse_line(h, line, len, r.line_no, &last_index, errmsg);
		if (rv != RP_CHK_OK) {
			break;
		}
	}
	rp_line_reader_close(&r);
	return rv;
}
