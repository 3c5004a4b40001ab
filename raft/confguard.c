/* See confguard.h. This reads canonical/raft 0.15's public struct raft and
 * struct raft_log (raft.h) and mirrors, for AppendEntries only, the checks
 * of its recvAppendEntries() / replicationAppend() / deleteConflictingEntries()
 * that decide whether membershipRollback() runs (src/recv_append_entries.c,
 * src/replication.c of v0.15.0).
 *
 * Invariants
 *
 * 1. g->committed, when g->index != 0, is the configuration libraft
 *    considers committed at index g->index: it was decoded from the log
 *    entry at that index, or copied from r->configuration while
 *    configuration_uncommitted_index was 0.
 * 2. The copy is refreshed before every message reaches libraft and in the
 *    FSM snapshot callback. libraft compacts an entry only after a snapshot
 *    taken at least snapshot.trailing entries later, and it calls the FSM's
 *    snapshot callback for that snapshot after applying the entry: so the
 *    copy is taken while the entry at r->configuration_index is readable.
 * 3. We touch libraft's state only when libraft would otherwise dereference
 *    NULL: the message would truncate the log at or below
 *    configuration_uncommitted_index and the entry at configuration_index is
 *    not in the log. The change is exactly what membershipRollback() does.
 */
#include "confguard.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "raftplane/log.h"

static struct rp_confguard *guards; /* one per raft instance in the process */

static struct rp_confguard *find(struct raft_io *io)
{
	struct rp_confguard *g = guards;
	while (g && g->io != io)
		g = g->next;
	return g;
}

/* ---- libraft 0.15's log, read through raft.h ---------------------------- */

static size_t log_n(const struct raft_log *l)
{
	return l->front <= l->back ? l->back - l->front : l->size - l->front + l->back;
}

static const struct raft_entry *log_get(const struct raft_log *l, raft_index i)
{
	size_t n = log_n(l);
	if (n == 0 || i <= l->offset || i > l->offset + n)
		return NULL;
	return &l->entries[(l->front + (size_t)(i - 1 - l->offset)) % l->size];
}

/* logTermOf(): 0 when unknown, the snapshot's term at its last index. */
static raft_term log_term(const struct raft_log *l, raft_index i)
{
	if ((i <= l->offset && i != l->snapshot.last_index) || i > l->offset + log_n(l))
		return 0;
	if (i == l->snapshot.last_index)
		return l->snapshot.last_term;
	const struct raft_entry *e = log_get(l, i);
	return e ? e->term : 0;
}

/* ---- configurations ------------------------------------------------------ */

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* 0.15's encoding: u8 format 1, u64 n, n x (u64 id, address NUL, u8 role). */
static int conf_decode(const struct raft_buffer *b, struct raft_configuration *c)
{
	const unsigned char *p = b->base, *end = p + b->len;
	if (b->len < 9 || p[0] != 1)
		return -1;
	uint64_t n = get64(p + 1);
	p += 9;
	for (uint64_t i = 0; i < n; i++) {
		if (end - p < 8)
			return -1;
		raft_id id = get64(p);
		const char *addr = (const char *)(p + 8);
		const unsigned char *nul = memchr(p + 8, 0, (size_t)(end - p - 8));
		if (!nul || nul + 1 == end)
			return -1;
		if (raft_configuration_add(c, id, addr, nul[1]) != 0)
			return -1;
		p = nul + 2;
	}
	return 0;
}

static int conf_copy(const struct raft_configuration *src, struct raft_configuration *dst)
{
	for (unsigned i = 0; i < src->n; i++)
		if (raft_configuration_add(dst, src->servers[i].id, src->servers[i].address,
					   src->servers[i].role) != 0)
			return -1;
	return 0;
}

void rp_confguard_observe(struct rp_confguard *g)
{
	const struct raft *r = g->r;
	raft_index ci = r->configuration_index;
	struct raft_configuration c;
	int rv = -1;
	if (ci == 0 || ci == g->index)
		return;
	raft_configuration_init(&c);
	const struct raft_entry *e = log_get(&r->log, ci);
	if (e && e->type == RAFT_CHANGE)
		rv = conf_decode(&e->buf, &c);
	else if (!e && r->configuration_uncommitted_index == 0)
		rv = conf_copy(&r->configuration, &c);
	if (rv != 0) { /* keep the old copy: its index says it is stale */
		raft_configuration_close(&c);
		return;
	}
	raft_configuration_close(&g->committed);
	g->committed = c;
	g->index = ci;
}

/* ---- the decision ----------------------------------------------------------- */

/* The log index at which libraft would roll back its uncommitted
 * configuration while processing @a, or 0 (recvAppendEntries: stale term,
 * snapshot install busy; replicationAppend: log matching; then
 * deleteConflictingEntries: the first conflict, if above the commit index). */
static raft_index rollback_at(const struct raft *r, const struct raft_append_entries *a)
{
	const struct raft_log *l = &r->log;
	if (r->configuration_uncommitted_index == 0 || r->state == RAFT_UNAVAILABLE ||
	    a->term < r->current_term || (r->state == RAFT_LEADER && a->term == r->current_term))
		return 0;
	if (a->n_entries > 0 && r->last_stored == 0 && r->snapshot.put.data != NULL)
		return 0;
	if (a->prev_log_index != 0 && log_term(l, a->prev_log_index) != a->prev_log_term)
		return 0;
	for (unsigned j = 0; j < a->n_entries; j++) {
		raft_index i = a->prev_log_index + 1 + j;
		raft_term t = log_term(l, i);
		if (t == 0)
			return 0;
		if (t != a->entries[j].term)
			return i > r->commit_index && r->configuration_uncommitted_index >= i ? i
											      : 0;
	}
	return 0;
}

/* One warning each time the guard acts where libraft 0.15 would crash
 * (tests/hostile/raft/test_config_rollback.py greps the rollback's text). */
__attribute__((format(printf, 1, 2))) static void log_instead(const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rp_log_warn("raft: %s (libraft 0.15 would crash)", msg);
}

/* membershipRollback(), with our copy standing in for the compacted entry. */
static int rollback(struct rp_confguard *g, raft_index at)
{
	struct raft *r = g->r;
	struct raft_configuration c;
	/* configuration_index 0: nothing committed yet (a joining node) */
	if (r->configuration_index != 0 && g->index != r->configuration_index)
		return -1;
	raft_configuration_init(&c);
	if (r->configuration_index != 0 && conf_copy(&g->committed, &c) != 0) {
		raft_configuration_close(&c);
		return -1;
	}
	log_instead("rolled back the uncommitted configuration at index %llu (truncated from "
		    "%llu) to the committed one at %llu, compacted from the log",
		    (unsigned long long)r->configuration_uncommitted_index, (unsigned long long)at,
		    (unsigned long long)r->configuration_index);
	raft_configuration_close(&r->configuration);
	r->configuration = c;
	r->configuration_uncommitted_index = 0;
	g->rollbacks++;
	return 0;
}

/* What libraft's recvCb does with a message it does not process. */
static void drop_entries(struct raft_append_entries *a)
{
	void *batch = NULL;
	for (unsigned i = 0; i < a->n_entries; i++) {
		if (a->entries[i].batch != batch) {
			batch = a->entries[i].batch;
			raft_free(batch);
		}
	}
	raft_free(a->entries);
}

static void guard_recv(struct raft_io *io, struct raft_message *m)
{
	struct rp_confguard *g = find(io);
	struct raft *r = g->r;
	rp_confguard_observe(g);
	if (m->type == RAFT_IO_APPEND_ENTRIES) {
		raft_index at = rollback_at(r, &m->append_entries);
		if (at && !log_get(&r->log, r->configuration_index) && rollback(g, at) != 0) {
			g->dropped++;
			log_instead("withheld an AppendEntries from %llu truncating at %llu: the "
				    "committed configuration %llu is unknown",
				    (unsigned long long)m->server_id, (unsigned long long)at,
				    (unsigned long long)r->configuration_index);
			drop_entries(&m->append_entries);
			return;
		}
	}
	g->recv(io, m);
	rp_confguard_observe(g);
}

static int guard_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		       raft_io_recv_cb recv)
{
	struct rp_confguard *g = find(io);
	g->recv = recv;
	return g->start(io, msecs, tick, guard_recv);
}

void rp_confguard_install(struct rp_confguard *g, struct raft *r, struct raft_io *io)
{
	memset(g, 0, sizeof *g);
	g->r = r;
	g->io = io;
	raft_configuration_init(&g->committed);
	g->start = io->start;
	io->start = guard_start;
	g->next = guards;
	guards = g;
}

void rp_confguard_close(struct rp_confguard *g)
{
	for (struct rp_confguard **p = &guards; *p; p = &(*p)->next) {
		if (*p == g) {
			*p = g->next;
			break;
		}
	}
	raft_configuration_close(&g->committed);
	g->index = 0;
}
