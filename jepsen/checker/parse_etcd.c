/* Parser for the Jepsen etcd log format:
 *   INFO  jepsen.util - PROCESS<ws>:TYPE<ws>:F<ws>VALUE
 * VALUE is nil, an integer, [A B] or a keyword such as :timed-out. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "line_reader.h"
#include "parse.h"

#define PREFIX "jepsen.util - "

/* A token: [s, s + len). */
struct tok {
	const char *s;
	size_t len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Next whitespace-separated token starting at *p; advances *p. */
static struct tok next_tok(const char **p)
{
	struct tok t;

	while (is_space(**p)) {
		(*p)++;
	}
	t.s = *p;
	while (**p != '\0' && !is_space(**p)) {
		(*p)++;
	}
	t.len = (size_t)(*p - t.s);
	return t;
}

static bool tok_is(struct tok t, const char *word)
{
	return t.len == strlen(word) && memcmp(t.s, word, t.len) == 0;
}

static int parse_type(struct tok t, enum rp_ev_type *out)
{
	static const char *const names[] = {":invoke", ":ok", ":fail", ":info"};

	for (int i = 0; i < 4; i++) {
		if (tok_is(t, names[i])) {
			*out = (enum rp_ev_type)i;
			return 0;
		}
	}
	return -1;
}

static enum rp_fn parse_fn(struct tok t)
{
	if (tok_is(t, ":read")) {
		return RP_FN_READ;
	}
	if (tok_is(t, ":write")) {
		return RP_FN_WRITE;
	}
	if (tok_is(t, ":cas")) {
		return RP_FN_CAS;
	}
	return RP_FN_OTHER;
}

/* VALUE is the rest of the line, trimmed: nil | INT | [A B] | :keyword. */
static int parse_value(const char *s, struct rp_value *v)
{
	size_t len = strlen(s);
	const char *p;
	struct tok a, b;

	while (len > 0 && is_space(s[len - 1])) {
		len--;
	}
	*v = (struct rp_value){.kind = RP_VAL_ABSENT};
	if (len == 3 && memcmp(s, "nil", 3) == 0) {
		v->kind = RP_VAL_NIL;
		return 0;
	}
	if (len > 0 && s[0] == ':') {
		return 0;
	}
	if (len < 2 || s[0] != '[' || s[len - 1] != ']') {
		v->kind = RP_VAL_INT;
		return rp_parse_int64(s, len, &v->a);
	}
	p = s + 1;
	a = next_tok(&p);
	b = next_tok(&p);
	if (b.len > 0 && b.s[b.len - 1] == ']') {
		b.len--;
	}
	if (p != s + len || rp_parse_int64(a.s, a.len, &v->a) != 0 ||
	    rp_parse_int64(b.s, b.len, &v->b) != 0) {
		return -1;
	}
	v->kind = RP_VAL_PAIR;
	return 0;
}

/* Fills *ev from the text after the prefix; ev->line and key already set. */
static int parse_fields(const char *p, struct rp_event *ev, char *errmsg)
{
	struct tok proc = next_tok(&p);
	struct tok type = next_tok(&p);
	struct tok fn = next_tok(&p);

	while (is_space(*p)) {
		p++;
	}
	if (tok_is(proc, ":nemesis")) {
		ev->nemesis = true;
		ev->fn = RP_FN_OTHER;
	} else if (rp_parse_int64(proc.s, proc.len, &ev->process) != 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: bad process '%.*s'",
				     ev->line, (int)proc.len, proc.s);
	}
	if (parse_type(type, &ev->type) != 0) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: bad type '%.*s'", ev->line,
				     (int)type.len, type.s);
	}
	if (!ev->nemesis) {
		ev->fn = parse_fn(fn);
		if (ev->fn == RP_FN_OTHER) {
			return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: bad f '%.*s'",
					     ev->line, (int)fn.len, fn.s);
		}
	}
	if (parse_value(p, &ev->value) != 0 && !ev->nemesis) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: bad value '%s'", ev->line,
				     p);
	}
	if (ev->nemesis) {
		ev->note = strndup(fn.s, 200); /* optional: NULL is fine */
		ev->value.kind = RP_VAL_ABSENT;
	}
	return RP_CHK_OK;
}

static int parse_line(struct rp_history *h, const char *line, size_t line_no, uint32_t key,
		      char *errmsg)
{
	const char *p = strstr(line, PREFIX);
	struct rp_event ev = {.line = line_no, .time = -1, .key = key};
	int rv;

	if (p == NULL) {
		return rp_chk_errorf(errmsg, RP_CHK_EPARSE, "line %zu: no '%s' prefix", line_no,
				     PREFIX);
	}
	rv = parse_fields(p + strlen(PREFIX), &ev, errmsg);
	if (rv != RP_CHK_OK) {
		free(ev.note);
		return rv;
	}
	ev.index = (int64_t)h->n_events;
	return rp_history_append(h, &ev, errmsg);
}

int rp_parse_etcd(FILE *f, struct rp_history *h, char *errmsg)
{
	struct rp_line_reader r;
	const char *line;
	size_t len;
	uint32_t key;
	int rv;

	rv = rp_key_table_intern(&h->keys, "", 0, &key, errmsg);
	if (rv != RP_CHK_OK) {
		return rv;
	}
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
		rv = parse_line(h, line, r.line_no, key, errmsg);
		if (rv != RP_CHK_OK) {
			break;
		}
	}
	rp_line_reader_close(&r);
	return rv;
}
