/* Wing-Gong-Lowe search with memoisation (Lowe, "Testing for
 * linearizability", 2017), specialised to a register.
 *
 * Invariants:
 *  1. The entry list holds, in time order, a call entry for every op not
 *     yet linearized and a return entry for every such op with a bounded
 *     ret. Ops whose call precedes the first return entry are the
 *     candidates; the moves from a configuration are: linearize a
 *     candidate, or, if the first return entry belongs to an optional op,
 *     skip that op (it never takes effect in this window).
 *  2. The stack holds the ops linearized (or skipped), each with the state
 *     before it; bits and hash describe exactly the ops on the stack.
 *  3. Every configuration (bits, state) pushed into the memo has been or is
 *     being explored; reaching it again cannot succeed where it failed.
 *  4. "Forced" frames are required reads lifted because they are
 *     candidates and match the state: placing such a read now is never
 *     worse than later (it changes nothing and only drops constraints),
 *     so they are not choices and backtracking pops them without trying
 *     alternatives.
 *  5. Open-ended optional ops have no return entry and never force a
 *     backtrack; the search succeeds once every required op is placed.
 *  6. A skip is the last move tried at its configuration (the scan reaches
 *     the return entry after every candidate before it), so undoing a skip
 *     continues backtracking.
 */
#include "wgl.h"

#include <stdlib.h>
#include <string.h>

#include "bitset.h"
#include "clock.h"
#include "error.h"
#include "memo.h"

#define CHECK_EVERY 1024u /* steps between deadline/memory checks */

enum frame_kind {
	FRAME_CHOICE,
	FRAME_FORCED,
	FRAME_SKIP
};

struct frame {
	int32_t op;
	uint32_t prev_state;
	enum frame_kind kind;
};

/* All arrays owned by the search. Node 0 is the head, node tail the end. */
struct search {
	const struct rp_lin_problem *p;
	int32_t tail;
	int32_t *next, *prev, *node_op;
	uint8_t *node_ret;
	int32_t *call_node, *ret_node; /* per op; ret_node -1 if open-ended */
	uint64_t *bits, *zob;
	struct frame *stack;
	size_t depth, done;
	uint64_t hash;
	uint32_t state;
	struct rp_memo memo;
};

struct entry {
	size_t time;
	int32_t op;
	uint8_t is_ret;
};

static int cmp_entry(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;

	if (a->time != b->time) {
		return a->time < b->time ? -1 : 1;
	}
	if (a->is_ret != b->is_ret) {
		return a->is_ret - b->is_ret;
	}
	return (a->op > b->op) - (a->op < b->op);
}

static void search_free(struct search *s)
{
	free(s->next);
	free(s->prev);
	free(s->node_op);
	free(s->node_ret);
	free(s->call_node);
	free(s->ret_node);
	free(s->bits);
	free(s->zob);
	free(s->stack);
	rp_memo_close(&s->memo);
}

static int alloc_arrays(struct search *s, size_t n, size_t nodes)
{
	s->next = malloc(nodes * sizeof *s->next);
	s->prev = malloc(nodes * sizeof *s->prev);
	s->node_op = malloc(nodes * sizeof *s->node_op);
	s->node_ret = calloc(nodes, sizeof *s->node_ret);
	s->call_node = malloc((n + 1) * sizeof *s->call_node);
	s->ret_node = malloc((n + 1) * sizeof *s->ret_node);
	s->bits = calloc(rp_bits_words(n), sizeof *s->bits);
	s->zob = malloc((n + 1) * sizeof *s->zob);
	s->stack = malloc((n + 1) * sizeof *s->stack);
	if (!s->next || !s->prev || !s->node_op || !s->node_ret || !s->call_node || !s->ret_node ||
	    !s->bits || !s->zob || !s->stack) {
		return RP_CHK_ENOMEM;
	}
	return rp_memo_init(&s->memo, rp_bits_words(n));
}

/* Lays the entries out as a doubly linked list in time order. */
static void link_entries(struct search *s, const struct entry *e, size_t m)
{
	s->tail = (int32_t)m + 1;
	s->node_op[0] = s->node_op[s->tail] = -1;
	for (int32_t i = 0; i <= s->tail; i++) {
		s->next[i] = i + 1;
		s->prev[i] = i - 1;
	}
	for (size_t k = 0; k < m; k++) {
		int32_t node = (int32_t)k + 1;
		s->node_op[node] = e[k].op;
		s->node_ret[node] = e[k].is_ret;
		if (e[k].is_ret) {
			s->ret_node[e[k].op] = node;
		} else {
			s->call_node[e[k].op] = node;
		}
	}
}

static int search_init(struct search *s, const struct rp_lin_problem *p)
{
	size_t n = p->n, m = n;
	struct entry *e;
	uint64_t seed = 0x5eed;

	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < n; i++) {
		m += p->ops[i].ret != RP_TIME_OPEN;
	}
	s->p = p;
	if (m + 2 > INT32_MAX || alloc_arrays(s, n, m + 2) != RP_CHK_OK) {
		return RP_CHK_ENOMEM;
	}
	e = malloc((m ? m : 1) * sizeof *e);
	if (e == NULL) {
		return RP_CHK_ENOMEM;
	}
	for (size_t i = 0, k = 0; i < n; i++) {
		s->ret_node[i] = -1;
		s->zob[i] = rp_splitmix64(&seed);
		e[k++] = (struct entry){p->ops[i].call, (int32_t)i, 0};
		if (p->ops[i].ret != RP_TIME_OPEN) {
			e[k++] = (struct entry){p->ops[i].ret, (int32_t)i, 1};
		}
	}
	qsort(e, m, sizeof *e, cmp_entry);
	link_entries(s, e, m);
	free(e);
	s->state = p->init_state;
	return RP_CHK_OK;
}

/* ---- list surgery (dancing links: undo in reverse order) ---- */

static void unlink_node(struct search *s, int32_t n)
{
	s->next[s->prev[n]] = s->next[n];
	s->prev[s->next[n]] = s->prev[n];
}

static void relink_node(struct search *s, int32_t n)
{
	s->next[s->prev[n]] = n;
	s->prev[s->next[n]] = n;
}

/* Linearizes (or skips) @op leading to @ns: push, mark, lift its entries. */
static void apply(struct search *s, int32_t op, uint32_t ns, enum frame_kind kind)
{
	s->stack[s->depth++] = (struct frame){op, s->state, kind};
	s->state = ns;
	rp_bits_set(s->bits, (size_t)op);
	s->hash ^= s->zob[op];
	s->done += s->p->ops[op].required;
	unlink_node(s, s->call_node[op]);
	if (s->ret_node[op] >= 0) {
		unlink_node(s, s->ret_node[op]);
	}
}

/* Undoes the top frame; returns its op. */
static int32_t undo(struct search *s)
{
	struct frame f = s->stack[--s->depth];

	if (s->ret_node[f.op] >= 0) {
		relink_node(s, s->ret_node[f.op]);
	}
	relink_node(s, s->call_node[f.op]);
	s->state = f.prev_state;
	rp_bits_clear(s->bits, (size_t)f.op);
	s->hash ^= s->zob[f.op];
	s->done -= s->p->ops[f.op].required;
	return f.op;
}

/* The register model: may @l run in @state, and what state follows. */
static bool step(uint32_t state, const struct rp_lop *l, uint32_t *ns)
{
	switch (l->kind) {
	case RP_LOP_READ: *ns = l->a; return state == RP_VID_ANY || state == l->a;
	case RP_LOP_WRITE: *ns = l->b; return true;
	case RP_LOP_CAS: *ns = l->b; return state == RP_VID_ANY || state == l->a;
	}
	return false;
}

/* Invariant 4: lift every candidate read that matches the current state. */
static void lift_forced_reads(struct search *s)
{
	int32_t n = s->next[0];

	if (s->state == RP_VID_ANY) {
		return;
	}
	while (n != s->tail && !s->node_ret[n]) {
		const struct rp_lop *l = &s->p->ops[s->node_op[n]];
		if (l->kind == RP_LOP_READ && l->required && l->a == s->state) {
			int32_t before = s->prev[n];
			apply(s, s->node_op[n], s->state, FRAME_FORCED);
			n = s->next[before];
		} else {
			n = s->next[n];
		}
	}
}

static uint64_t config_hash(const struct search *s)
{
	uint64_t x = s->state + 0x51ed27ULL;

	return s->hash ^ rp_splitmix64(&x);
}

static bool over_limits(const struct search *s, const struct rp_wgl_limits *lim,
			const char **reason)
{
	if (lim->deadline_ns != RP_NO_DEADLINE && rp_clock_now_ns() >= lim->deadline_ns) {
		*reason = "time budget exceeded";
		return true;
	}
	if (lim->memo_limit_bytes != 0 && rp_memo_bytes(&s->memo) > lim->memo_limit_bytes) {
		*reason = "memory limit exceeded";
		return true;
	}
	return false;
}

/* At a return entry (or the end): undo the last choice and the reads it
 * forced (and skips, invariant 6). Returns the node to resume from, or -1
 * when no choice is left. */
static int32_t backtrack(struct search *s)
{
	for (;;) {
		enum frame_kind kind;
		int32_t op;
		while (s->depth > 0 && s->stack[s->depth - 1].kind == FRAME_FORCED) {
			undo(s);
		}
		if (s->depth == 0) {
			return -1;
		}
		kind = s->stack[s->depth - 1].kind;
		op = undo(s);
		if (kind == FRAME_CHOICE) {
			return s->next[s->call_node[op]];
		}
	}
}

/* Makes the move "@op to state @ns" (a linearization or a skip). *advanced
 * is true if that led to a configuration not seen before (now current);
 * otherwise the search is back where it was. */
static int try_move(struct search *s, int32_t op, uint32_t ns, enum frame_kind kind, bool *advanced)
{
	size_t mark = s->depth;
	bool inserted;

	*advanced = false;
	apply(s, op, ns, kind);
	lift_forced_reads(s);
	if (s->done == s->p->n_required) {
		*advanced = true;
		return RP_CHK_OK;
	}
	if (rp_memo_insert(&s->memo, s->bits, s->state, config_hash(s), &inserted) != RP_CHK_OK) {
		return RP_CHK_ENOMEM;
	}
	if (inserted) {
		*advanced = true;
		return RP_CHK_OK;
	}
	while (s->depth > mark) {
		undo(s);
	}
	return RP_CHK_OK;
}

/* The scan is at a return entry (or the end) at @*node: skip its op if it
 * is optional, else backtrack. *node becomes the next node, or -1 when the
 * search space is exhausted. */
static int at_return(struct search *s, int32_t *node)
{
	int32_t op = *node == s->tail ? -1 : s->node_op[*node];
	bool advanced = false;
	int rv = RP_CHK_OK;

	if (op >= 0 && !s->p->ops[op].required) {
		rv = try_move(s, op, s->state, FRAME_SKIP, &advanced);
	}
	*node = advanced ? s->next[0] : rv == RP_CHK_OK ? backtrack(s) : -1;
	return rv;
}

/* The scan is at the call entry @*node: try to linearize its op. */
static int at_call(struct search *s, int32_t *node)
{
	int32_t op = s->node_op[*node];
	bool advanced = false;
	uint32_t ns;
	int rv = RP_CHK_OK;

	if (step(s->state, &s->p->ops[op], &ns)) {
		rv = try_move(s, op, ns, FRAME_CHOICE, &advanced);
	}
	*node = advanced ? s->next[0] : s->next[*node];
	return rv;
}

static int run(struct search *s, const struct rp_wgl_limits *lim, enum rp_verdict *verdict,
	       struct rp_wgl_stats *st)
{
	int32_t node;
	int rv;

	lift_forced_reads(s);
	for (node = s->next[0];;) {
		if (s->done == s->p->n_required) {
			*verdict = RP_VERDICT_VALID;
			return RP_CHK_OK;
		}
		if (++st->steps % CHECK_EVERY == 0 && over_limits(s, lim, &st->reason)) {
			*verdict = RP_VERDICT_UNKNOWN;
			return RP_CHK_OK;
		}
		rv = node == s->tail || s->node_ret[node] ? at_return(s, &node) : at_call(s, &node);
		if (rv != RP_CHK_OK) { /* only the memo allocates here */
			st->reason = "out of memory";
			*verdict = RP_VERDICT_UNKNOWN;
			return RP_CHK_OK;
		}
		if (node < 0) {
			*verdict = RP_VERDICT_INVALID;
			return RP_CHK_OK;
		}
	}
}

int rp_wgl_check(const struct rp_lin_problem *p, const struct rp_wgl_limits *lim,
		 enum rp_verdict *verdict, struct rp_wgl_stats *stats, char *errmsg)
{
	struct search s;
	int rv;

	memset(stats, 0, sizeof *stats);
	*verdict = RP_VERDICT_UNKNOWN;
	if (p->n >= (size_t)INT32_MAX / 2) {
		return rp_chk_errorf(errmsg, RP_CHK_ELIMIT, "%zu ops on one key", p->n);
	}
	rv = search_init(&s, p);
	if (rv == RP_CHK_OK) {
		rv = run(&s, lim, verdict, stats);
	}
	stats->configs = s.memo.count;
	stats->memo_bytes = rp_memo_bytes(&s.memo);
	search_free(&s);
	if (rv != RP_CHK_OK) {
		return rp_chk_errorf(errmsg, rv, "linearizability search");
	}
	return RP_CHK_OK;
}
