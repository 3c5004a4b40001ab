/* Offline term repair: load a stopped node's raft state through raft_uv
 * itself (so the format is libraft's, not a copy of it) and, when asked,
 * persist a lower current term through io->set_term.
 *
 * Why it is safe when run with the same T on every node of a stopped
 * cluster, T greater than every term in every node's log: a term only
 * matters through the entries and votes it produced. Entries carry their
 * term in the log, so no log holds a term >= T and no leader of an old term
 * >= T left an entry anywhere; a term in which only votes happened leaves
 * nothing a new leader of that term could conflict with. The vote is
 * cleared, so no node is bound by an old promise. */
#include "reset_term.h"

#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <string.h>

#include "diskcheck.h"
#include "transport.h"

struct session {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	int closed;
};

static void on_io_closed(struct raft_io *io)
{
	struct session *s = io->data;
	s->closed = 1;
}

static void free_loaded(struct raft_snapshot *snap, struct raft_entry *entries, size_t n)
{
	void *batch = NULL;
	for (size_t i = 0; i < n; i++) {
		if (entries[i].batch != batch) {
			batch = entries[i].batch;
			raft_free(batch);
		}
	}
	raft_free(entries);
	if (snap) {
		raft_configuration_close(&snap->configuration);
		for (unsigned i = 0; i < snap->n_bufs; i++)
			raft_free(snap->bufs[i].base);
		raft_free(snap->bufs);
		raft_free(snap);
	}
}

static int load(struct session *s, struct rp_term_info *info, char *errmsg, size_t errlen)
{
	raft_term term;
	raft_id voted;
	struct raft_snapshot *snap = NULL;
	raft_index start;
	struct raft_entry *entries = NULL;
	size_t n = 0;
	int rv = s->io.load(&s->io, &term, &voted, &snap, &start, &entries, &n);
	if (rv != 0) {
		snprintf(errmsg, errlen, "load: %s", s->io.errmsg);
		return -1;
	}
	memset(info, 0, sizeof *info);
	info->term = term;
	info->voted_for = voted;
	info->n_entries = n;
	if (snap) {
		info->max_log_term = snap->term;
		info->snapshot_index = snap->index;
	}
	for (size_t i = 0; i < n; i++)
		if (entries[i].term > info->max_log_term)
			info->max_log_term = entries[i].term;
	info->last_index = n ? start + n - 1 : (snap ? snap->index : 0);
	free_loaded(snap, entries, n);
	return 0;
}

int rp_term_repair(const char *dir, uint64_t new_term, struct rp_term_info *info, char *errmsg,
		   size_t errlen)
{
	struct session s;
	struct rp_transport_config tcfg = {0};
	int rv = -1;
	memset(&s, 0, sizeof s);
	if (uv_loop_init(&s.loop) != 0) {
		snprintf(errmsg, errlen, "uv_loop_init failed");
		return -1;
	}
	if (rp_transport_init(&s.transport, &s.loop, &tcfg) != 0) {
		snprintf(errmsg, errlen, "out of memory");
		goto err_after_loop;
	}
	if (raft_uv_init(&s.io, &s.loop, dir, &s.transport) != 0) {
		snprintf(errmsg, errlen, "open %s: %s", dir, s.io.errmsg);
		goto err_after_transport;
	}
	s.io.data = &s;
	raft_uv_set_auto_recovery(&s.io, false); /* never move segments aside here */
	/* never listens nor connects: the transport only records these */
	if (s.io.init(&s.io, 1, "127.0.0.1:1") != 0) {
		snprintf(errmsg, errlen, "open %s: %s", dir, s.io.errmsg);
		goto err_after_io;
	}
	if (load(&s, info, errmsg, errlen) != 0)
		goto err_after_init;
	rv = 0;
	if (new_term != 0) {
		if (new_term <= info->max_log_term || new_term >= RP_TERM_CEILING) {
			snprintf(errmsg, errlen,
				 "term %llu must be above every term in the log (%llu) and below "
				 "2^62",
				 (unsigned long long)new_term,
				 (unsigned long long)info->max_log_term);
			rv = -1;
		} else if (s.io.set_term(&s.io, new_term) != 0) {
			snprintf(errmsg, errlen, "write term: %s", s.io.errmsg);
			rv = -1;
		} else {
			rp_diskcheck_meta_sync(dir, RP_DISKCHECK_KEEP); /* follows the new term */
		}
	}
err_after_init:
	s.io.close(&s.io, on_io_closed);
	while (!s.closed)
		uv_run(&s.loop, UV_RUN_ONCE);
err_after_io:
	raft_uv_close(&s.io);
err_after_transport:
	rp_transport_close(&s.transport);
err_after_loop:
	uv_run(&s.loop, UV_RUN_NOWAIT);
	uv_loop_close(&s.loop);
	return rv;
}
