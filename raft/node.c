/* The node's lifecycle: create (data dir, identity, store, transport,
 * raft_uv, raft, bootstrap), start, the periodic tick, and close.
 *
 * The node is canonical/raft 0.15 glue split by concern; each part works
 * on a struct raft * it is given, so canonical/raft's test fixture can
 * drive it (tests/unit/raft):
 *
 *   node.c        lifecycle (this file)      identity.c  the raftplane-id file
 *   node_ops.c    the calls of node.h        fsm.c       apply, snapshot, restore
 *   readiness.c   leadership, readiness      readq.c     batched read barriers
 *   propose.c     proposals                  push.c      commit push
 *   membership.c  add/remove/transfer        stats.c     /metrics histograms
 *   snapbytes.c   snapshots by bytes         confguard.c 0.15 rollback guard
 *   diskcheck.c   data dir check at start    diskguard.c raftplane-meta, disk faults
 *   aiodefer.c    raft_uv's io_destroy off the loop thread
 *
 * Invariants
 *
 * 1. Pre-vote is on, so a partitioned node rejoining does not depose a
 *    healthy leader by inflating terms.
 * 2. Every uv handle the node owns (the tick, the read queue's and commit
 *    push's timers, raft_uv's and the transport's) is closed before the
 *    node's memory is freed, and the memory is freed only from the last
 *    close callback (open_handles reaches 0). rp_node_create's error paths
 *    take the same road as rp_node_close.
 * 3. raft is closed (raft_close) before raft_uv and the transport are
 *    freed, and those before the node.
 * 4. The periodic work (readiness, seeding the members table, refreshing the
 *    configuration guard) runs from the tick, never inside raft callbacks.
 * 5. From rp_node_close() on, nothing is proposed, no read waits, and no
 *    call of node.h reads struct raft; raft_close() waits until every log
 *    entry is stored (docs/design.md, known risk 7), and after it the
 *    configuration is empty, never dangling.
 * 6. The loop thread hands raft_uv's io_destroy calls to aiodefer.c's
 *    helper from rp_node_start() on: each took 30-40 ms of the loop at every
 *    snapshot (docs/design.md, known risk 12).
 *
 *   created --start--> running --close--> closing --last handle--> freed
 *      \--------------------close/create error----^
 */
#include "node.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "aiodefer.h"
#include "diskcheck.h"
#include "identity.h"
#include "node_priv.h"
#include "raftplane/err.h"
#include "raftplane/log.h"
#include "transport.h"

#define TICK_MS 10

/* ---- the tick -------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
	struct rp_node *n = t->data;
	rp_confguard_observe(&n->guard);
	rp_diskguard_tick(&n->disk, uv_now(n->loop));
	rp_aiodefer_counts(&n->stats.aio_destroy_deferred, &n->stats.aio_destroy_in_place);
	rp_readiness_tick(&n->ready);
	if (rp_readiness_ready(&n->ready))
		rp_membership_seed(&n->members);
}

static void on_store_change(void *arg, const struct rp_change *c)
{
	struct rp_node *n = arg;
	if (c->kind == RP_KIND_MEMBERS && c->deleted) {
		char *end;
		unsigned long long id = strtoull(c->name, &end, 10);
		if (*end == '\0' && id != 0) /* its name is the id, written by us */
			rp_transport_forget_peer(&n->transport, id); /* the removal committed */
	}
	if (n->change_cb)
		n->change_cb(n->change_arg, c);
}

/* ---- closing (invariants 2 and 3) -------------------------------------------- */

static void handle_gone(void *arg)
{
	struct rp_node *n = arg;
	assert(n->open_handles > 0);
	if (--n->open_handles > 0)
		return;
	if (n->store)
		rp_store_destroy(n->store);
	if (n->close_cb)
		n->close_cb(n->close_arg);
	free(n);
}

static void on_tick_closed(uv_handle_t *h)
{
	handle_gone(h->data);
}

/* raft (if it was initialised) is closed: free raft_uv and the transport,
 * close our own handles. */
static void release(struct rp_node *n)
{
	if (n->have_io)
		raft_uv_close(&n->io);
	if (n->have_transport)
		rp_transport_close(&n->transport);
	if (n->have_guard)
		rp_confguard_close(&n->guard);
	if (n->have_disk)
		rp_diskguard_close(&n->disk);
	n->open_handles = 2 + n->tick_inited;
	rp_readq_close(&n->readq, handle_gone, n);
	rp_push_close(&n->push, handle_gone, n);
	if (n->tick_inited)
		uv_close((uv_handle_t *)&n->tick, on_tick_closed);
}

static void on_raft_closed(struct raft *r)
{
	/* libraft 0.15 freed the configuration's servers (ioCloseCb) without
	 * resetting the array: make it empty, not dangling */
	raft_configuration_init(&r->configuration);
	release(r->data);
}

/* canonical/raft 0.15 (known risk 7 of docs/design.md; fixed upstream in
 * 0.17.1): raft_close() cancels the queued disk writes of entries appended
 * as leader, and appendLeaderCb truncates the log from each canceled
 * write's first index; from the second one on the truncation starts past
 * the end of the log (double free, SEGV). So raft is closed only once every
 * entry is stored: nothing new is proposed once n->closing is set, and
 * queued writes finish within milliseconds. Not only while leader: a node
 * that just stepped down still has its leader writes queued. After
 * CLOSE_DRAIN_MS the node closes anyway (a disk that stopped answering). */
#define CLOSE_DRAIN_MS 2000
#define CLOSE_QUIET_TICKS 10 /* ticks of 1 ms in a row with every entry stored */

static int writes_queued(struct rp_node *n)
{
	return n->raft.last_stored < raft_last_index(&n->raft);
}

static void on_close_drain(uv_timer_t *t)
{
	struct rp_node *n = t->data;
	n->close_quiet = writes_queued(n) ? 0 : n->close_quiet + 1;
	if (n->close_quiet < CLOSE_QUIET_TICKS && uv_now(n->loop) < n->close_deadline)
		return;
	uv_timer_stop(&n->tick);
	raft_close(&n->raft, on_raft_closed); /* closes raft_uv's handles first */
}

static void teardown(struct rp_node *n)
{
	assert(!n->closing);
	n->closing = 1;
	rp_readiness_close(&n->ready);
	if (n->tick_inited)
		uv_timer_stop(&n->tick);
	if (!n->have_raft) {
		release(n);
	} else if (n->tick_inited && writes_queued(n)) {
		n->close_quiet = 0;
		n->close_deadline = uv_now(n->loop) + CLOSE_DRAIN_MS;
		uv_timer_start(&n->tick, on_close_drain, 1, 1);
	} else {
		raft_close(&n->raft, on_raft_closed); /* closes raft_uv's handles first */
	}
}

void rp_node_close(struct rp_node *n, void (*cb)(void *arg), void *arg)
{
	n->close_cb = cb;
	n->close_arg = arg;
	teardown(n);
}

/* ---- create and start -------------------------------------------------------- */

struct restore_put {
	struct raft_io_snapshot_put req;
	int done, status;
};

static void on_restore_put(struct raft_io_snapshot_put *req, int status)
{
	struct restore_put *p = req->data;
	p->done = 1;
	p->status = status;
}

/* --restore: the backup becomes the snapshot at the bootstrap entry (index
 * 1, term 1), with trailing 0 so that the log keeps no entry it covers:
 * raft_start restores it, and a member added later gets it as an
 * InstallSnapshot since the leader has no entry for it. */
static int put_restore_snapshot(struct rp_node *n, const struct raft_configuration *conf,
				char *errmsg, size_t errlen)
{
	struct raft_buffer buf = {(void *)n->cfg.restore_image, n->cfg.restore_len};
	struct raft_snapshot snap = {.index = 1,
				     .term = 1,
				     .configuration = *conf,
				     .configuration_index = 1,
				     .bufs = &buf,
				     .n_bufs = 1};
	struct restore_put p = {.done = 0};
	p.req.data = &p;
	int rv = n->io.snapshot_put(&n->io, 0, &p.req, &snap, on_restore_put);
	while (rv == 0 && !p.done)
		uv_run(n->loop, UV_RUN_ONCE);
	if (rv == 0)
		rv = p.status;
	if (rv != 0) {
		snprintf(errmsg, errlen, "--restore: writing the first snapshot: %s",
			 raft_strerror(rv));
		return -1;
	}
	rp_log_info("--restore: the backup (%zu bytes) is the snapshot at index 1",
		    n->cfg.restore_len);
	return 0;
}

static int do_bootstrap(struct rp_node *n, char *errmsg, size_t errlen)
{
	struct raft_configuration conf;
	int rv = 0, self = 0;
	raft_configuration_init(&conf);
	for (unsigned i = 0; i < n->cfg.n_bootstrap && rv == 0; i++) {
		rv = raft_configuration_add(&conf, n->cfg.bootstrap[i].id, n->cfg.bootstrap[i].raft,
					    RAFT_VOTER);
		self |= n->cfg.bootstrap[i].id == n->cfg.id;
	}
	if (rv == 0 && !self) {
		snprintf(errmsg, errlen, "--bootstrap does not list this node's id %" PRIu64,
			 n->cfg.id);
		rv = -1;
	} else if (rv != 0) {
		snprintf(errmsg, errlen, "--bootstrap: %s", raft_strerror(rv));
	} else {
		rv = raft_bootstrap(&n->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP && n->cfg.restore_image) {
			snprintf(errmsg, errlen,
				 "--restore: the data dir %s already holds raft data: restore "
				 "into an empty data dir",
				 n->data_dir);
		} else if (rv == 0 && n->cfg.restore_image) {
			rv = put_restore_snapshot(n, &conf, errmsg, errlen);
			if (rv == 0)
				rp_log_info("bootstrapped with %u voters from a backup",
					    n->cfg.n_bootstrap);
		} else if (rv == RAFT_CANTBOOTSTRAP) {
			rv = 0; /* the data dir already has state: resume it */
		} else if (rv != 0) {
			snprintf(errmsg, errlen, "bootstrap: %s", raft_errmsg(&n->raft));
		} else {
			rp_log_info("bootstrapped with %u voters", n->cfg.n_bootstrap);
		}
	}
	raft_configuration_close(&conf);
	return rv;
}

/* The parts that need no resource: all of them point into @n. */
static void wire_parts(struct rp_node *n)
{
	struct raft *r = &n->raft;
	rp_readiness_init(&n->ready, r, &n->stats);
	rp_proposer_init(&n->proposer, r, &n->ready, &n->stats);
	/* before raft_start: replaying the log at start runs the FSM */
	rp_readq_init(&n->readq, n->loop, r, &n->ready, &n->stats);
	rp_push_init(&n->push, n->loop, r, &n->ready, n->cfg.commit_push);
	rp_fsm_init(&n->fsm, r, NULL, &n->stats, &n->guard, &n->push, &n->cfg);
	rp_membership_init(&n->members, r, &n->proposer, &n->ready, NULL, n->cfg.id, n->http_addr,
			   n->cfg.bootstrap, n->cfg.n_bootstrap);
}

static int open_store(struct rp_node *n, char *errmsg, size_t errlen)
{
	if (mkdir(n->data_dir, 0755) != 0 && errno != EEXIST) {
		snprintf(errmsg, errlen, "mkdir %s: %s", n->data_dir, strerror(errno));
		return -1;
	}
	char damage[400];
	if (rp_diskcheck(n->data_dir, n->cfg.id, damage, sizeof damage) != 0) {
		snprintf(errmsg, errlen,
			 "data dir %s is damaged: %s; refusing to start: replace this member "
			 "(docs/operations.md, \"Replacing a member\")",
			 n->data_dir, damage);
		return -1;
	}
	if (rp_identity_check(n->data_dir, n->cfg.id, errmsg, errlen) != 0)
		return -1;
	if (rp_store_create(&n->store, errmsg, errlen) != RP_OK)
		return -1;
	rp_store_on_change(n->store, on_store_change, n);
	n->fsm.store = n->store;
	n->members.store = n->store;
	return 0;
}

/* raft_uv_init() probes the data dir by writing a file of one block
 * (4 KiB): with less free than that it fails and the node would exit, a
 * node restarted on a full disk (the jepsen disk nemesis with kills) then
 * stays down until someone starts it again. Wait instead: nothing runs on
 * the loop yet and the signal handlers are not installed, so SIGTERM still
 * ends the process at once. With space for the probe but not for a
 * segment the node starts and holds writes (diskguard.c). */
#define START_FREE_BYTES (64 * 1024)

static uint64_t free_bytes(const char *dir)
{
	struct statvfs v;
	if (statvfs(dir, &v) != 0)
		return UINT64_MAX; /* not ours to judge: raft_uv_init() says */
	return (uint64_t)(geteuid() == 0 ? v.f_bfree : v.f_bavail) * v.f_frsize;
}

static void wait_for_space(const char *dir)
{
	uint64_t left = free_bytes(dir);
	if (left >= START_FREE_BYTES)
		return;
	rp_log_error("disk full: data dir %s has %" PRIu64 " bytes free, %d needed to start; "
		     "waiting for space (checked every second)",
		     dir, left, START_FREE_BYTES);
	struct timespec t0, now, second = {.tv_sec = 1};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((left = free_bytes(dir)) < START_FREE_BYTES)
		nanosleep(&second, NULL);
	clock_gettime(CLOCK_MONOTONIC, &now);
	rp_log_info("disk: %" PRIu64 " bytes free in %s after %ld s: starting", left, dir,
		    (long)(now.tv_sec - t0.tv_sec));
}

static int open_raft(struct rp_node *n, char *errmsg, size_t errlen)
{
	const struct rp_node_config *cfg = &n->cfg;
	struct rp_transport_config tcfg = {.handshake_timeout_ms = cfg->raft_handshake_timeout_ms,
					   .max_pending = cfg->raft_max_pending,
					   .relay_outbound = cfg->raft_relay_outbound,
					   .tls_in = cfg->raft_tls_in,
					   .tls_out = cfg->raft_tls_out,
					   .trust_domain = cfg->raft_trust_domain};
	int rv;
	if ((rv = rp_transport_init(&n->transport, n->loop, &tcfg)) != 0) {
		snprintf(errmsg, errlen, "raft transport: %s", raft_strerror(rv));
		return -1;
	}
	n->have_transport = 1;
	wait_for_space(n->data_dir);
	if ((rv = raft_uv_init(&n->io, n->loop, n->data_dir, &n->transport)) != 0) {
		snprintf(errmsg, errlen, "raft io: %s", n->io.errmsg);
		return -1;
	}
	n->have_io = 1;
	/* on by default: moves a segment that fails its checksum aside and
	 * starts without its entries, acknowledged ones too (diskcheck.c) */
	raft_uv_set_auto_recovery(&n->io, false);
	if ((rv = raft_init(&n->raft, &n->io, &n->fsm.fsm, cfg->id, n->raft_addr)) != 0) {
		snprintf(errmsg, errlen, "raft init: %s", raft_errmsg(&n->raft));
		return -1;
	}
	n->have_raft = 1;
	n->raft.data = n;
	rp_confguard_install(&n->guard, &n->raft, &n->io);
	n->have_guard = 1;
	rp_diskguard_install(&n->disk, &n->raft, &n->io, n->data_dir, &n->stats);
	n->have_disk = 1;
	rp_transport_set_raft(&n->transport, &n->raft);
	rp_transport_set_data_dir(&n->transport, cfg->id, n->data_dir);
	raft_set_pre_vote(&n->raft, true);
	raft_set_election_timeout(&n->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms);
	/* 0.15's default is 30 s: a snapshot sent while the follower was down
	 * is only retried after it, stalling the follower's catch-up */
	raft_set_install_snapshot_timeout(&n->raft, cfg->install_snapshot_timeout_ms);
	raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
	if (cfg->n_bootstrap > 0 && do_bootstrap(n, errmsg, errlen) != 0)
		return -1;
	rp_diskcheck_meta_sync(n->data_dir, RP_DISKCHECK_KEEP); /* passed the check */
	return 0;
}

int rp_node_create(uv_loop_t *loop, const struct rp_node_config *cfg, struct rp_node **out,
		   char *errmsg, size_t errlen)
{
	struct rp_node *n = calloc(1, sizeof *n);
	if (!n) {
		snprintf(errmsg, errlen, "out of memory");
		return -1;
	}
	n->loop = loop;
	n->cfg = *cfg;
	snprintf(n->data_dir, sizeof n->data_dir, "%s", cfg->data_dir);
	snprintf(n->raft_addr, sizeof n->raft_addr, "%s", cfg->raft_addr);
	snprintf(n->http_addr, sizeof n->http_addr, "%s", cfg->http_addr);
	n->cfg.data_dir = n->data_dir;
	n->cfg.raft_addr = n->raft_addr;
	n->cfg.http_addr = n->http_addr;
	if (n->cfg.n_bootstrap > RP_MAX_PEERS)
		n->cfg.n_bootstrap = RP_MAX_PEERS;
	wire_parts(n);
	if (open_store(n, errmsg, errlen) != 0 || open_raft(n, errmsg, errlen) != 0) {
		teardown(n); /* freed once the loop ran the close callbacks */
		return -1;
	}
	*out = n;
	return 0;
}

int rp_node_start(struct rp_node *n, char *errmsg, size_t errlen)
{
	rp_aiodefer_this_thread(); /* raft_uv's segment closes (aiodefer.h) */
	int rv = raft_start(&n->raft);
	if (rv != 0) {
		snprintf(errmsg, errlen, "raft start: %s (%s; io: %s)", raft_strerror(rv),
			 raft_errmsg(&n->raft), n->io.errmsg);
		return -1;
	}
	rp_diskguard_started(&n->disk);
	uv_timer_init(n->loop, &n->tick);
	n->tick.data = n;
	n->tick_inited = 1;
	uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
	rp_log_info("started raft on %s (revision %" PRIu64 ")", n->raft_addr,
		    rp_store_revision(n->store));
	return 0;
}
