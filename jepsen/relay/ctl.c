/* The relay's control commands (one line each, from the suite's scripts
 * through a unix socket; still validated like any input, invariant 4):
 *
 *   ping
 *   set PEER|* out|in|both KEY=VALUE...   delay=MS jitter=MS loss=PCT
 *                                         reset=PCT rate=BYTES_PER_S
 *   clear                                 every link back to a plain relay
 *   reset PEER|*                          reset the open connections now
 *   stats
 *
 * A KEY not given keeps its value. Answers start with "ok" or "err".
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define MAX_WORDS 16

static int split(char *line, char **w)
{
	int n = 0;
	for (char *t = strtok(line, " "); t; t = strtok(NULL, " ")) {
		if (n == MAX_WORDS)
			return -1;
		w[n++] = t;
	}
	return n;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_pct(const char *s, double *out)
{
	if ((*s < '0' || *s > '9') && *s != '.')
		return -1;
	char *end;
	double v = strtod(s, &end);
	if (*end || !isfinite(v) || v < 0 || v > 100)
		return -1;
	*out = v;
	return 0;
}

/* Peer index for WORD, RL_MAX_PEERS for "*", -1 when unknown. */
static int peer_of(struct rl_relay *r, const char *word)
{
	if (!strcmp(word, "*"))
		return RL_MAX_PEERS;
	uint64_t id;
	if (parse_u64(word, 1u << 31, &id))
		return -1;
	for (unsigned i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == id)
			return (int)i;
	return -1;
}

enum {
	K_DELAY = 1,
	K_JITTER = 2,
	K_LOSS = 4,
	K_RESET = 8,
	K_RATE = 16
};

/* Parses KEY=VALUE words into P and the mask of keys given; on error
 * writes the reason into ERR and returns -1. */
static int parse_params(char **w, int n, struct rl_params *p, unsigned *mask, char *err, size_t en)
{
	*mask = 0;
	for (int i = 0; i < n; i++) {
		char *eq = strchr(w[i], '=');
		if (!eq) {
			snprintf(err, en, "'%s' is not KEY=VALUE", w[i]);
			return -1;
		}
		*eq = '\0';
		const char *k = w[i], *v = eq + 1;
		uint64_t u = 0;
		int bad = 0;
		if (!strcmp(k, "delay")) {
			bad = parse_u64(v, 60000, &u);
			p->delay_ms = (uint32_t)u;
			*mask |= K_DELAY;
		} else if (!strcmp(k, "jitter")) {
			bad = parse_u64(v, 60000, &u);
			p->jitter_ms = (uint32_t)u;
			*mask |= K_JITTER;
		} else if (!strcmp(k, "loss")) {
			bad = parse_pct(v, &p->loss);
			*mask |= K_LOSS;
		} else if (!strcmp(k, "reset")) {
			bad = parse_pct(v, &p->reset);
			*mask |= K_RESET;
		} else if (!strcmp(k, "rate")) {
			bad = parse_u64(v, 1000000000, &u) || (u != 0 && u < 1000);
			p->rate = u;
			*mask |= K_RATE;
		} else {
			snprintf(err, en, "unknown key '%s' (delay jitter loss reset rate)", k);
			return -1;
		}
		if (bad) {
			snprintf(err, en,
				 "bad value '%s' for %s (delay, jitter: 0-60000 ms; loss, reset: "
				 "0-100 %%; rate: 0 or 1000-1000000000 B/s)",
				 v, k);
			return -1;
		}
	}
	return 0;
}

static void apply(struct rl_params *to, const struct rl_params *v, unsigned mask)
{
	if (mask & K_DELAY)
		to->delay_ms = v->delay_ms;
	if (mask & K_JITTER)
		to->jitter_ms = v->jitter_ms;
	if (mask & K_LOSS)
		to->loss = v->loss;
	if (mask & K_RESET)
		to->reset = v->reset;
	if (mask & K_RATE)
		to->rate = v->rate;
}

static void cmd_set(struct rl_relay *r, char **w, int n, char *out, size_t on)
{
	if (n < 4) {
		snprintf(out, on, "err usage: set PEER|* out|in|both KEY=VALUE...\n");
		return;
	}
	int p = peer_of(r, w[1]);
	if (p < 0) {
		snprintf(out, on, "err unknown peer '%s'\n", w[1]);
		return;
	}
	int d0, d1;
	if (!strcmp(w[2], "out"))
		d0 = d1 = RL_OUT;
	else if (!strcmp(w[2], "in"))
		d0 = d1 = RL_IN;
	else if (!strcmp(w[2], "both"))
		d0 = RL_OUT, d1 = RL_IN;
	else {
		snprintf(out, on, "err direction must be out, in or both, not '%s'\n", w[2]);
		return;
	}
	struct rl_params v = {0};
	unsigned mask;
	char err[200];
	if (parse_params(w + 3, n - 3, &v, &mask, err, sizeof err)) {
		snprintf(out, on, "err %s\n", err);
		return;
	}
	unsigned lo = p == RL_MAX_PEERS ? 0 : (unsigned)p;
	unsigned hi = p == RL_MAX_PEERS ? r->n_peers : (unsigned)p + 1;
	for (unsigned i = lo; i < hi; i++)
		for (int d = d0; d <= d1; d++) {
			struct rl_link *l = &r->peers[i].dir[d];
			apply(&l->p, &v, mask);
			l->tokens = 0;
			l->refill_ms = rl_now_ms();
			rl_params_changed(i, d);
		}
	snprintf(out, on, "ok\n");
}

static void cmd_stats(struct rl_relay *r, char *out, size_t on)
{
	size_t u = (size_t)snprintf(out, on, "ok %u peers\n", r->n_peers);
	for (unsigned i = 0; i < r->n_peers && u < on; i++) {
		struct rl_peer *p = &r->peers[i];
		u += (size_t)snprintf(out + u, on - u, "peer %u conns %llu open %u", p->id,
				      (unsigned long long)p->conns, rl_open_conns(i));
		for (int d = 0; d < 2 && u < on; d++) {
			struct rl_link *l = &p->dir[d];
			u += (size_t)snprintf(
				out + u, on - u,
				" %s delay=%u jitter=%u loss=%g reset=%g rate=%llu bytes=%llu "
				"chunks=%llu lost=%llu resets=%llu",
				d == RL_OUT ? "out" : "in", l->p.delay_ms, l->p.jitter_ms,
				l->p.loss, l->p.reset, (unsigned long long)l->p.rate,
				(unsigned long long)l->bytes, (unsigned long long)l->chunks,
				(unsigned long long)l->lost, (unsigned long long)l->resets);
		}
		if (u < on)
			u += (size_t)snprintf(out + u, on - u, "\n");
	}
}

void rl_ctl_handle(struct rl_relay *r, char *line, char *out, size_t n)
{
	for (const char *c = line; *c; c++)
		if (*c < 0x20 || *c > 0x7e) {
			snprintf(out, n, "err command has a byte that is not printable ASCII\n");
			return;
		}
	char *w[MAX_WORDS];
	int nw = split(line, w);
	if (nw < 0) {
		snprintf(out, n, "err too many words (max %d)\n", MAX_WORDS);
		return;
	}
	if (nw == 0) {
		snprintf(out, n, "err empty command\n");
		return;
	}
	if (!strcmp(w[0], "ping") && nw == 1) {
		snprintf(out, n, "ok relay with %u peers\n", r->n_peers);
	} else if (!strcmp(w[0], "set")) {
		cmd_set(r, w, nw, out, n);
	} else if (!strcmp(w[0], "clear") && nw == 1) {
		for (unsigned i = 0; i < r->n_peers; i++)
			for (int d = 0; d < 2; d++) {
				memset(&r->peers[i].dir[d].p, 0, sizeof r->peers[i].dir[d].p);
				rl_params_changed(i, d);
			}
		snprintf(out, n, "ok\n");
	} else if (!strcmp(w[0], "reset") && nw == 2) {
		int p = peer_of(r, w[1]);
		if (p < 0) {
			snprintf(out, n, "err unknown peer '%s'\n", w[1]);
			return;
		}
		unsigned c = 0;
		for (unsigned i = 0; i < r->n_peers; i++)
			if (p == RL_MAX_PEERS || (unsigned)p == i)
				c += rl_reset_peer(i);
		snprintf(out, n, "ok reset %u connections\n", c);
	} else if (!strcmp(w[0], "stats") && nw == 1) {
		cmd_stats(r, out, n);
	} else {
		snprintf(out, n,
			 "err unknown command or wrong arguments: '%s' (ping, set, clear, reset, "
			 "stats)\n",
			 w[0]);
	}
}
