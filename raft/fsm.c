/* FSM glue between canonical/raft 0.15 and the store.
 *
 * Invariants
 *
 * 1. Every RAFT_COMMAND entry goes through fsm_apply() -> rp_store_apply(),
 *    in log order, on the loop thread. SQLite failing there is fatal: the
 *    node aborts rather than diverge from its peers. So does an entry or a
 *    snapshot of a newer release (RP_ERR_NEWER_FORMAT: this member must be
 *    upgraded, docs/upgrades.md). Only an entry malformed for every release
 *    is rejected, the same way on every node (its result carries the error).
 * 2. The result handed to raft (and so to the proposer's callback) is
 *    f->last_result, valid until the next entry is applied.
 * 3. Snapshot buffers are the store's (sqlite3_malloc'd): fsm version 2,
 *    raft does not own them and snapshot_finalize frees them. A restored
 *    buffer becomes raft's to free only once the store took a copy.
 * 4. The raft log in memory (and its segments on disk) is bounded by bytes,
 *    not only by entries (snapbytes.h): every apply and every snapshot is
 *    counted there.
 * 5. No snapshot while log writes are held (diskguard.h: it could not be
 *    written either) nor beyond the entries stored locally: a snapshot past
 *    the end of the stored log makes raft 0.15 refuse the next start ("last
 *    entry on disk ... behind last snapshot") if the node dies before its
 *    log catches up. RAFT_BUSY: raft tries again at a later apply.
 */
#include "fsm.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <uv.h>

#include "raftplane/err.h"
#include "raftplane/log.h"

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct rp_fsm *f = fsm->data;
	uint64_t t0 = uv_hrtime();
	rp_snapbytes_applied(&f->snapbytes, f->raft, buf->len);
	int rv = rp_store_apply(f->store, buf->base, buf->len, &f->last_result);
	if (rv == RP_ERR_NEWER_FORMAT) {
		rp_log_fatal("applying the log entry after revision %" PRIu64 ": %s; stopping",
			     rp_store_revision(f->store), f->last_result.message);
		abort();
	}
	if (rv == RP_ERR_STORAGE || rv == RP_ERR_NOMEM) {
		rp_log_fatal("applying the log entry after revision %" PRIu64
			     " failed (%s: %s); stopping rather than diverging",
			     rp_store_revision(f->store), rp_err_message(rv),
			     f->last_result.message);
		abort();
	}
	if (rv != RP_OK) /* undecodable: the same on every node, reject it */
		f->last_result.status = rv;
	if (rv == RP_ERR_CORRUPT)
		rp_log_error("CORRUPT log entry after revision %" PRIu64 ": %s",
			     rp_store_revision(f->store), f->last_result.message);
	rp_histogram_observe(&f->stats->apply, (double)(uv_hrtime() - t0) / 1e9);
	*result = &f->last_result;
	if (f->push)
		rp_push_applied(f->push);
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct rp_fsm *f = fsm->data;
	void *data;
	size_t len;
	if (f->stats->disk_state != 0 || raft_last_applied(f->raft) > f->raft->last_stored)
		return RAFT_BUSY;
	if (rp_store_serialize(f->store, &data, &len) != RP_OK)
		return RAFT_NOMEM;
	*bufs = raft_malloc(sizeof **bufs);
	if (!*bufs) {
		sqlite3_free(data);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = data;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	f->stats->snapshots_taken++;
	if (f->guard)
		rp_confguard_observe(f->guard); /* before libraft compacts the log */
	rp_snapbytes_taken(&f->snapbytes, f->raft, len);
	return 0;
}

/* fsm version 2: raft does not own the buffers, we free them here. */
static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	(void)fsm;
	if (*bufs) {
		for (unsigned i = 0; i < *n_bufs; i++)
			sqlite3_free((*bufs)[i].base);
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* Takes ownership of buf->base on success (canonical/raft contract). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct rp_fsm *f = fsm->data;
	int rv = rp_store_restore(f->store, buf->base, buf->len);
	if (rv == RP_ERR_NEWER_FORMAT) { /* logged by the store, with the reason */
		rp_log_fatal("restore snapshot: %s: stopping rather than diverging",
			     rp_err_message(rv));
		abort();
	}
	if (rv != RP_OK) {
		rp_log_error("restore snapshot: %s", rp_err_message(rv));
		return RAFT_CORRUPT;
	}
	raft_free(buf->base);
	rp_snapbytes_restored(&f->snapbytes, buf->len);
	f->stats->snapshots_restored++;
	rp_log_info("restored snapshot at revision %" PRIu64, rp_store_revision(f->store));
	return 0;
}

void rp_fsm_init(struct rp_fsm *f, struct raft *raft, struct rp_store *store,
		 struct rp_node_stats *stats, struct rp_confguard *guard, struct rp_push *push,
		 const struct rp_node_config *cfg)
{
	*f = (struct rp_fsm){
		.raft = raft, .store = store, .stats = stats, .guard = guard, .push = push};
	f->fsm = (struct raft_fsm){.version = 2,
				   .data = f,
				   .apply = fsm_apply,
				   .snapshot = fsm_snapshot,
				   .restore = fsm_restore,
				   .snapshot_finalize = fsm_snapshot_finalize};
	rp_snapbytes_init(&f->snapbytes, cfg->snapshot_threshold, cfg->snapshot_trailing,
			  cfg->snapshot_bytes, cfg->snapshot_trailing_bytes);
}
