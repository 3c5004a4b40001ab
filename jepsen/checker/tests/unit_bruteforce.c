/* Unit test: random small histories checked against a brute-force oracle.
 *
 * The oracle is written from the definitions only: no pruning, no forced
 * reads, no entry lists. It places ops one at a time (any op none of whose
 * real-time predecessors is still unplaced); optional ops may stay out
 * (an optional op with a deadline is "skipped" by an explicit move, so it
 * stops blocking its successors); a window starts from any register value
 * unless it starts at the start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unit_util.h"

#define MAX_BOPS 12
#define N_STATES 5 /* nil, 0, 1, 2, "something else" */
#define INF SIZE_MAX

struct bop {
	enum rp_fn fn;
	int a, b; /* state indices: 0 nil, 1 + value */
	size_t call, ret;
	bool required;
};

struct oracle {
	struct bop ops[MAX_BOPS];
	int n;
	bool seen[1 << MAX_BOPS][N_STATES];
};

static int state_of(const struct rp_value *v, bool second)
{
	int64_t x = second ? v->b : v->a;

	if (v->kind == RP_VAL_NIL) {
		return 0;
	}
	return x >= 0 && x <= 2 ? (int)x + 1 : 4;
}

/* Applies the window rules of README.md to one op; false if left out. */
static bool window_op(const struct rp_op *op, bool from_start, size_t lo, size_t hi, struct bop *b)
{
	size_t end = op->outcome == RP_OUT_OK ? op->cmp_pos : INF;

	if (op->outcome == RP_OUT_FAIL || (op->fn == RP_FN_READ && op->outcome != RP_OUT_OK)) {
		return false;
	}
	if ((!from_start && end < lo) || op->inv_pos > hi) {
		return false;
	}
	b->fn = op->fn;
	b->required = op->outcome == RP_OUT_OK && (from_start || op->inv_pos >= lo) && end <= hi;
	if (!b->required && op->fn == RP_FN_READ) {
		return false;
	}
	b->call = from_start || op->inv_pos >= lo ? op->inv_pos : lo;
	b->ret = end <= hi ? end : INF;
	b->a = op->fn == RP_FN_READ ? state_of(&op->cmp_value, false)
				    : state_of(&op->inv_value, false);
	b->b = state_of(&op->inv_value, op->fn == RP_FN_CAS);
	return true;
}

static bool placeable(const struct oracle *o, unsigned mask, int x)
{
	for (int y = 0; y < o->n; y++) {
		if (!(mask >> y & 1) && o->ops[y].ret < o->ops[x].call) {
			return false;
		}
	}
	return true;
}

static bool dfs(struct oracle *o, unsigned mask, int state)
{
	bool done = true;

	for (int i = 0; i < o->n; i++) {
		done &= !o->ops[i].required || (mask >> i & 1);
	}
	if (done) {
		return true;
	}
	if (o->seen[mask][state]) {
		return false;
	}
	o->seen[mask][state] = true;
	for (int x = 0; x < o->n; x++) {
		const struct bop *b = &o->ops[x];
		int next = b->fn == RP_FN_READ ? state : b->b;
		if (mask >> x & 1) {
			continue;
		}
		if (!b->required && b->ret != INF && dfs(o, mask | 1u << x, state)) {
			return true; /* skipped: took effect before the window */
		}
		if (!placeable(o, mask, x) || (b->fn != RP_FN_WRITE && b->a != state)) {
			continue;
		}
		if (dfs(o, mask | 1u << x, next)) {
			return true;
		}
	}
	return false;
}

/* Is the (windowed) history linearizable? */
static bool oracle_ok(const struct rp_ops *ops, bool from_start, size_t lo, size_t hi)
{
	static struct oracle o;

	o.n = 0;
	for (size_t i = 0; i < ops->n; i++) {
		if (window_op(&ops->ops[i], from_start, lo, hi, &o.ops[o.n])) {
			o.n++;
		}
	}
	assert_true(o.n <= MAX_BOPS);
	for (int init = 0; init < N_STATES; init++) {
		if (from_start && init != 0) {
			break;
		}
		memset(o.seen, 0, sizeof o.seen[0] << o.n);
		if (dfs(&o, 0, init)) {
			return true;
		}
	}
	return false;
}

/* ---- random history generator: a simulated register, sometimes lying --- */

struct gen {
	uint32_t seed;
	char buf[8192];
	size_t len;
	int state;  /* -1 nil */
	bool chaos; /* outcomes and read values at random */
};

struct slot {
	int proc;
	bool pending, applied, took;
	enum rp_fn fn;
	int a, b, result;
};

static uint32_t rnd(struct gen *g, uint32_t n)
{
	g->seed = g->seed * 1664525u + 1013904223u;
	return (g->seed >> 8) % n;
}

static void emit(struct gen *g, int proc, const char *type, enum rp_fn fn, const char *value)
{
	g->len += (size_t)snprintf(g->buf + g->len, sizeof g->buf - g->len,
				   "{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\","
				   "\"key\":\"k\",\"value\":%s}\n",
				   proc, type, rp_fn_name(fn), value);
}

static void apply(struct gen *g, struct slot *s)
{
	s->applied = true;
	s->took = true;
	if (s->fn == RP_FN_READ) {
		s->result = g->state;
	} else if (s->fn == RP_FN_WRITE) {
		g->state = s->a;
	} else if (g->state == s->a) {
		g->state = s->b;
	} else {
		s->took = false;
	}
}

static void invoke(struct gen *g, struct slot *s)
{
	char v[32] = "null";

	s->fn = (enum rp_fn)rnd(g, 3);
	s->a = (int)rnd(g, 3);
	s->b = (int)rnd(g, 3);
	s->pending = true;
	s->applied = false;
	if (s->fn == RP_FN_WRITE) {
		snprintf(v, sizeof v, "%d", s->a);
	} else if (s->fn == RP_FN_CAS) {
		snprintf(v, sizeof v, "[%d,%d]", s->a, s->b);
	}
	emit(g, s->proc, "invoke", s->fn, v);
	if (rnd(g, 2) == 0) {
		apply(g, s);
	}
}

static void complete(struct gen *g, struct slot *s)
{
	char v[32] = "null";
	bool info = rnd(g, 6) == 0;
	bool ok;

	if (!s->applied && (!info || rnd(g, 2) == 0)) {
		apply(g, s);
	}
	s->pending = false;
	if (info) {
		emit(g, s->proc, "info", s->fn, "null");
		s->proc += 3; /* an info process never comes back */
		return;
	}
	ok = g->chaos ? rnd(g, 3) != 0 : s->took;
	if (s->fn == RP_FN_READ) {
		int r = g->chaos || rnd(g, 25) == 0 ? (int)rnd(g, 4) - 1 : s->result;
		if (r >= 0) {
			snprintf(v, sizeof v, "%d", r);
		}
		ok = true;
	} else if (s->fn == RP_FN_WRITE) {
		snprintf(v, sizeof v, "%d", s->a);
		ok = true;
	} else {
		snprintf(v, sizeof v, "[%d,%d]", s->a, s->b);
	}
	emit(g, s->proc, ok ? "ok" : "fail", s->fn, v);
}

static void generate(struct gen *g)
{
	struct slot slots[3] = {{.proc = 0}, {.proc = 1}, {.proc = 2}};
	int n_ops = 4 + (int)rnd(g, 7), invoked = 0;

	g->len = 0;
	g->state = -1;
	g->chaos = rnd(g, 4) == 0;
	for (;;) {
		bool any = slots[0].pending || slots[1].pending || slots[2].pending;
		struct slot *s = &slots[rnd(g, 3)];
		if (invoked == n_ops && (!any || rnd(g, 10) == 0)) {
			break;
		}
		if (s->pending) {
			complete(g, s);
		} else if (invoked < n_ops) {
			invoke(g, s);
			invoked++;
		}
	}
}

/* ---- the test ---- */

static int cmp_size(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;

	return (a > b) - (a < b);
}

static size_t window_points(const struct rp_ops *ops, size_t *pts)
{
	size_t n = 0;

	for (size_t i = 0; i < ops->n; i++) {
		if (ops->ops[i].outcome == RP_OUT_FAIL) {
			continue;
		}
		pts[n++] = ops->ops[i].inv_pos;
		if (ops->ops[i].cmp_pos != RP_POS_NONE) {
			pts[n++] = ops->ops[i].cmp_pos;
		}
	}
	qsort(pts, n, sizeof *pts, cmp_size);
	return n;
}

/* fails[i][j]: window from point i (i == 0: from the start) to point
 * j - 1 fails. Checks both monotonicities the window search relies on. */
static void window_matrix(const struct rp_ops *ops, const size_t *pts, size_t np,
			  bool fails[][2 * MAX_BOPS + 1])
{
	for (size_t i = 0; i <= np; i++) {
		for (size_t j = 1; j <= np; j++) {
			fails[i][j] = i <= j &&
				      !oracle_ok(ops, i == 0, i ? pts[i - 1] : 0, pts[j - 1]);
		}
	}
	for (size_t i = 0; i <= np; i++) {
		for (size_t j = 1; j <= np; j++) {
			if (fails[i][j] && j < np) {
				assert_true(fails[i][j + 1]); /* later end still fails */
			}
			if (fails[i][j] && i > 0) {
				assert_true(fails[i - 1][j]); /* earlier start still fails */
			}
		}
	}
}

/* The window fails; no window inside it fails; no window ends earlier. */
static void check_window(const struct ut_run *r)
{
	const struct rp_window *w = &r->reg.keys[0].window;
	static bool fails[2 * MAX_BOPS + 1][2 * MAX_BOPS + 1];
	size_t pts[2 * MAX_BOPS], np = window_points(&r->ops, pts), u = 0;
	size_t wi = 0, wj = 0;

	for (size_t i = 0; i < np; i++) { /* distinct */
		if (u == 0 || pts[u - 1] != pts[i]) {
			pts[u++] = pts[i];
		}
	}
	np = u;
	window_matrix(&r->ops, pts, np, fails);
	assert_true(w->found);
	assert_true(w->minimal);
	for (size_t i = 0; i < np; i++) {
		wi = !w->from_start && pts[i] == w->lo ? i + 1 : wi;
		wj = pts[i] == w->hi ? i + 1 : wj;
	}
	assert_true(wj > 0 && (w->from_start || wi > 0));
	assert_true(fails[wi][wj]);
	for (size_t i = 0; i <= np; i++) {
		for (size_t j = 1; j <= np; j++) {
			bool inside = i >= wi && j <= wj && (i != wi || j != wj);
			if (inside || j < wj) {
				assert_false(fails[i][j]);
			}
		}
	}
}

static void test_random_vs_bruteforce(void **state)
{
	struct gen g = {0};
	int valid = 0, invalid = 0;

	(void)state;
	for (uint32_t seed = 1; seed <= 3000; seed++) {
		struct ut_run r;
		int got;
		bool want;
		g.seed = seed;
		generate(&g);
		got = ut_register(&r, g.buf, NULL);
		if (got < 0) {
			print_error("seed %u: %s\n%s", seed, r.errmsg, g.buf);
			fail();
		}
		want = r.reg.n_keys == 0 || oracle_ok(&r.ops, true, 0, SIZE_MAX);
		if ((got == RP_VERDICT_VALID) != want) {
			print_error("seed %u: checker %s, oracle %s\n%s", seed,
				    rp_verdict_name(got), want ? "valid" : "invalid", g.buf);
			fail();
		}
		if (got == RP_VERDICT_INVALID) {
			check_window(&r);
		}
		valid += want;
		invalid += !want;
		ut_free(&r);
	}
	print_message("random histories: %d valid, %d invalid\n", valid, invalid);
	assert_true(valid > 300 && invalid > 300);
}

int run_bruteforce_tests(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_vs_bruteforce),
	};

	return cmocka_run_group_tests_name("bruteforce", tests, NULL, NULL);
}
