/* raft/diskguard.c on a fake raft_io: which failed log writes are held and
 * retried, that raft sees them complete in the order it issued them and
 * only with success, that everything behind a held write waits, that any
 * other failure (or a retry that would land after a truncation) stops
 * writing for good, and that closing cancels what is held, newest first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "diskguard.h"

#define MAX_REQ 16

/* ---- the fake io: what raft_uv would see, what raft would see ---------------- */

struct fake {
	struct raft_io io;
	struct raft raft;
	struct rp_diskguard g;
	struct rp_node_stats stats;
	char dir[64];
	/* raft_uv's side: requests forwarded and not completed, oldest first */
	struct raft_io_append *pending[MAX_REQ];
	raft_io_append_cb pending_cb[MAX_REQ];
	unsigned npending;
	struct raft_io_snapshot_put *put;
	raft_io_snapshot_put_cb put_cb;
	char uv_log[512];   /* what raft_uv was asked to do, in order */
	char raft_log[512]; /* the callbacks raft got, in order */
	int closed;
	uint64_t now;
	/* raft's requests */
	struct raft_io_append req[MAX_REQ];
	struct raft_entry entry[MAX_REQ];
	struct raft_io_snapshot_put preq;
	struct raft_snapshot snap;
};

static struct fake *F;

static void logf_(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(buf);
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

static unsigned req_no(const struct raft_io_append *req)
{
	return (unsigned)(req - F->req);
}

static int fake_append(struct raft_io *io, struct raft_io_append *req,
		       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
	(void)io;
	(void)entries;
	(void)n;
	assert_true(F->npending < MAX_REQ);
	F->pending[F->npending] = req;
	F->pending_cb[F->npending++] = cb;
	logf_(F->uv_log, sizeof F->uv_log, "A%u ", req_no(req));
	return 0;
}

static int fake_truncate(struct raft_io *io, raft_index index)
{
	(void)io;
	logf_(F->uv_log, sizeof F->uv_log, "T%llu ", (unsigned long long)index);
	return 0;
}

static int fake_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
		    const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
	(void)io;
	(void)snapshot;
	F->put = req;
	F->put_cb = cb;
	logf_(F->uv_log, sizeof F->uv_log, "P%u ", trailing);
	return 0;
}

static int fake_set_term(struct raft_io *io, raft_term term)
{
	(void)io;
	(void)term;
	return 0;
}

static int fake_set_vote(struct raft_io *io, raft_id id)
{
	(void)io;
	(void)id;
	return 0;
}

static void fake_close(struct raft_io *io, raft_io_close_cb cb)
{
	F->closed = 1;
	logf_(F->uv_log, sizeof F->uv_log, "close ");
	if (cb)
		cb(io);
}

/* raft_uv completes its oldest pending append with @status (and @msg in
 * io->errmsg, as raft_uv sets it when a segment cannot be created) */
static void complete(int status, const char *msg)
{
	assert_true(F->npending > 0);
	struct raft_io_append *req = F->pending[0];
	raft_io_append_cb cb = F->pending_cb[0];
	memmove(F->pending, F->pending + 1, (F->npending - 1) * sizeof F->pending[0]);
	memmove(F->pending_cb, F->pending_cb + 1, (F->npending - 1) * sizeof F->pending_cb[0]);
	F->npending--;
	if (msg)
		snprintf(F->io.errmsg, sizeof F->io.errmsg, "%s", msg);
	cb(req, status);
}

#define NOSPACE_MSG "create segment open-7: not enough space to allocate 8388608 bytes"

static void raft_append_cb(struct raft_io_append *req, int status)
{
	logf_(F->raft_log, sizeof F->raft_log, "A%u:%d ", req_no(req), status);
}

static void raft_put_cb(struct raft_io_snapshot_put *req, int status)
{
	(void)req;
	logf_(F->raft_log, sizeof F->raft_log, "P:%d ", status);
}

/* raft appends request @i */
static void append(unsigned i)
{
	F->entry[i].term = 1;
	F->entry[i].type = RAFT_COMMAND;
	assert_int_equal(F->io.append(&F->io, &F->req[i], &F->entry[i], 1, raft_append_cb), 0);
}

static void tick(uint64_t ms)
{
	F->now += ms;
	rp_diskguard_tick(&F->g, F->now);
}

static int setup(void **state)
{
	F = calloc(1, sizeof *F);
	snprintf(F->dir, sizeof F->dir, "/tmp/rp-diskguard-XXXXXX");
	assert_non_null(mkdtemp(F->dir));
	F->io = (struct raft_io){.append = fake_append,
				 .truncate = fake_truncate,
				 .snapshot_put = fake_put,
				 .set_term = fake_set_term,
				 .set_vote = fake_set_vote,
				 .close = fake_close};
	F->raft.state = RAFT_FOLLOWER;
	F->io.data = &F->raft;
	F->now = 1000;
	rp_diskguard_install(&F->g, &F->raft, &F->io, F->dir, &F->stats);
	tick(0);
	*state = F;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (!F->closed)
		F->io.close(&F->io, NULL);
	rp_diskguard_close(&F->g);
	char path[128];
	snprintf(path, sizeof path, "%s/raftplane-meta", F->dir);
	unlink(path);
	rmdir(F->dir);
	free(F);
	return 0;
}

/* ---- the cases ------------------------------------------------------------------ */

static void test_pass_through(void **state)
{
	(void)state;
	append(1);
	append(2);
	complete(0, NULL);
	complete(0, NULL);
	assert_string_equal(F->uv_log, "A1 A2 ");
	assert_string_equal(F->raft_log, "A1:0 A2:0 ");
	assert_int_equal(F->g.state, RP_DISK_OK);
}

static void test_held_and_replayed_in_order(void **state)
{
	(void)state;
	append(1);
	append(2);
	complete(RAFT_NOSPACE, NOSPACE_MSG); /* both were waiting for the segment */
	complete(RAFT_NOSPACE, NULL);
	assert_int_equal(F->g.state, RP_DISK_FULL);
	assert_int_equal(F->stats.disk_state, RP_DISK_FULL);
	assert_string_equal(F->raft_log, ""); /* raft never sees the failure */
	append(3);
	assert_int_equal(F->io.truncate(&F->io, 3), 0);
	append(4);
	assert_string_equal(F->uv_log, "A1 A2 "); /* all behind the held writes */
	assert_int_equal(F->stats.disk_held, 5);
	tick(100); /* before the retry time */
	assert_string_equal(F->uv_log, "A1 A2 ");
	tick(RP_DISK_RETRY_MS);
	assert_string_equal(F->uv_log, "A1 A2 A1 "); /* one at a time */
	complete(0, NULL);
	assert_string_equal(F->uv_log, "A1 A2 A1 A2 ");
	complete(0, NULL);
	complete(0, NULL);
	assert_string_equal(F->uv_log, "A1 A2 A1 A2 A3 T3 A4 ");
	complete(0, NULL);
	assert_string_equal(F->raft_log, "A1:0 A2:0 A3:0 A4:0 ");
	assert_int_equal(F->g.state, RP_DISK_OK);
	assert_int_equal(F->stats.disk_held, 0);
	append(5); /* passes straight through again */
	assert_string_equal(F->uv_log, "A1 A2 A1 A2 A3 T3 A4 A5 ");
	complete(0, NULL);
}

static void test_retry_fails_again(void **state)
{
	(void)state;
	append(1);
	complete(RAFT_NOSPACE, NOSPACE_MSG);
	append(2);
	tick(RP_DISK_RETRY_MS);
	assert_string_equal(F->uv_log, "A1 A1 ");
	complete(RAFT_NOSPACE, NOSPACE_MSG); /* still no space: waits again */
	assert_int_equal(F->g.state, RP_DISK_FULL);
	tick(RP_DISK_RETRY_MS / 2);
	assert_string_equal(F->uv_log, "A1 A1 ");
	tick(RP_DISK_RETRY_MS);
	assert_string_equal(F->uv_log, "A1 A1 A1 ");
	complete(0, NULL);
	complete(0, NULL);
	assert_string_equal(F->raft_log, "A1:0 A2:0 ");
	assert_int_equal(F->g.state, RP_DISK_OK);
}

static void test_other_failure_stops_writing(void **state)
{
	(void)state;
	append(1);
	complete(RAFT_IOERR, "write failed: -5");
	assert_int_equal(F->g.state, RP_DISK_FAILED);
	assert_int_equal(F->stats.disk_state, RP_DISK_FAILED);
	append(2);
	tick(60000);
	assert_string_equal(F->uv_log, "A1 "); /* never again in this process */
	assert_string_equal(F->raft_log, "");
	assert_true(rp_diskguard_blocked(&F->g));
}

static void test_stale_message_is_not_a_segment_failure(void **state)
{
	(void)state;
	append(1);
	complete(RAFT_NOSPACE, NOSPACE_MSG);
	tick(RP_DISK_RETRY_MS);
	complete(0, NULL);
	assert_int_equal(F->g.state, RP_DISK_OK);
	/* a short write (RAFT_NOSPACE from the writer) sets no message */
	append(2);
	complete(RAFT_NOSPACE, NULL);
	assert_int_equal(F->g.state, RP_DISK_FAILED);
}

static void test_failure_behind_a_truncation(void **state)
{
	(void)state;
	append(1);
	assert_int_equal(F->io.truncate(&F->io, 1), 0); /* raft_uv orders it after A1 */
	complete(RAFT_NOSPACE, NOSPACE_MSG);
	/* retrying A1 now would write it after the truncation */
	assert_int_equal(F->g.state, RP_DISK_FAILED);
	tick(60000);
	assert_string_equal(F->uv_log, "A1 T1 ");
}

static void test_installed_snapshot_held(void **state)
{
	(void)state;
	F->snap.index = 10;
	assert_int_equal(F->io.snapshot_put(&F->io, 0, &F->preq, &F->snap, raft_put_cb), 0);
	F->put_cb(F->put, RAFT_IOERR);
	assert_int_equal(F->g.state, RP_DISK_FULL);
	assert_string_equal(F->raft_log, "");
	append(1);
	tick(RP_DISK_RETRY_MS);
	assert_string_equal(F->uv_log, "P0 P0 ");
	F->put_cb(F->put, 0);
	assert_string_equal(F->uv_log, "P0 P0 A1 ");
	complete(0, NULL);
	assert_string_equal(F->raft_log, "P:0 A1:0 ");
	assert_int_equal(F->g.state, RP_DISK_OK);
}

static void test_local_snapshot_failure_reported(void **state)
{
	(void)state;
	F->snap.index = 10;
	assert_int_equal(F->io.snapshot_put(&F->io, 8, &F->preq, &F->snap, raft_put_cb), 0);
	F->put_cb(F->put, RAFT_IOERR);
	assert_string_equal(F->raft_log, "P:18 "); /* raft retries at a later apply */
	assert_int_equal(F->g.state, RP_DISK_OK);
	assert_int_equal(F->stats.disk_failures, 1);
}

static void test_local_snapshot_in_flight_does_not_stop_retries(void **state)
{
	(void)state;
	F->snap.index = 10;
	assert_int_equal(F->io.snapshot_put(&F->io, 8, &F->preq, &F->snap, raft_put_cb), 0);
	append(1);
	complete(RAFT_NOSPACE, NOSPACE_MSG);
	tick(RP_DISK_RETRY_MS); /* the snapshot may wait for this append's segment */
	assert_string_equal(F->uv_log, "P8 A1 A1 ");
	complete(0, NULL);
	assert_int_equal(F->g.state, RP_DISK_OK);
	F->put_cb(F->put, 0);
	assert_string_equal(F->raft_log, "A1:0 P:0 ");
}

static void test_close_cancels_newest_first(void **state)
{
	(void)state;
	append(1);
	complete(RAFT_NOSPACE, NOSPACE_MSG);
	append(2);
	append(3);
	F->io.close(&F->io, NULL);
	assert_string_equal(F->raft_log, "A3:13 A2:13 A1:13 ");
	assert_string_equal(F->uv_log, "A1 close ");
	assert_int_equal(F->stats.disk_held, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pass_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_and_replayed_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_fails_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_failure_stops_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_message_is_not_a_segment_failure, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failure_behind_a_truncation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_installed_snapshot_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_snapshot_failure_reported, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_local_snapshot_in_flight_does_not_stop_retries,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_cancels_newest_first, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
