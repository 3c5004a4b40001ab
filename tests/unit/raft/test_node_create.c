/* rp_node_create's error paths and a close without start (raft/node.c
 * invariant 2): every handle the node initialised is closed, its memory is
 * freed in the close callbacks, and the loop ends with no live handle, so
 * uv_loop_close() returns 0 (and ASan sees no use after free or leak).
 * The failures come after the node's timers are initialised: a data dir
 * that cannot be created, one that belongs to another node, a raft address
 * raft_init refuses, and a --bootstrap list without this node. No socket
 * is opened (raft is never started). */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "node.h"

struct env {
	char root[64];
	char dir[128];
	uv_loop_t loop;
	struct rp_node_config cfg;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	snprintf(e->root, sizeof e->root, "/tmp/rp-node-create-XXXXXX");
	assert_non_null(mkdtemp(e->root));
	snprintf(e->dir, sizeof e->dir, "%s/data", e->root);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->cfg = (struct rp_node_config){.id = 1,
					 .data_dir = e->dir,
					 .raft_addr = "127.0.0.1:1",
					 .http_addr = "127.0.0.1:2",
					 .snapshot_threshold = 1024,
					 .snapshot_trailing = 128,
					 .election_timeout_ms = 1000,
					 .heartbeat_ms = 100,
					 .install_snapshot_timeout_ms = 5000,
					 .commit_push = 1};
	*state = e;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct env *e = *state;
	nftw(e->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

/* Run the loop dry; the node must have left nothing behind. */
static void assert_loop_empty(struct env *e)
{
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void create_fails(struct env *e, const char *reason)
{
	struct rp_node *n = NULL;
	char err[512] = "";
	assert_int_not_equal(rp_node_create(&e->loop, &e->cfg, &n, err, sizeof err), 0);
	assert_null(n);
	assert_non_null(strstr(err, reason));
	assert_loop_empty(e);
}

static void test_data_dir_cannot_be_created(void **state)
{
	struct env *e = *state;
	char file[160];
	snprintf(file, sizeof file, "%s/file", e->root);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(e->dir, sizeof e->dir, "%s/file/data", e->root); /* ENOTDIR, even as root */
	create_fails(e, "mkdir");
}

static void test_data_dir_of_another_node(void **state)
{
	struct env *e = *state;
	char path[200];
	assert_int_equal(mkdir(e->dir, 0755), 0);
	snprintf(path, sizeof path, "%s/raftplane-id", e->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("2\n", f);
	fclose(f);
	create_fails(e, "belongs to node 2");
}

static void test_raft_address_refused(void **state)
{
	struct env *e = *state;
	e->cfg.raft_addr = "not-an-address";
	create_fails(e, "bad raft address");
}

static void test_bootstrap_without_this_node(void **state)
{
	struct env *e = *state;
	e->cfg.n_bootstrap = 1;
	e->cfg.bootstrap[0] =
		(struct rp_peer){.id = 5, .raft = "127.0.0.1:5", .http = "127.0.0.1:6"};
	create_fails(e, "does not list this node");
}

static void on_closed(void *arg)
{
	(*(int *)arg)++;
}

static void test_close_without_start(void **state)
{
	struct env *e = *state;
	struct rp_node *n = NULL;
	char err[512] = "";
	int closed = 0;
	e->cfg.n_bootstrap = 1;
	e->cfg.bootstrap[0] =
		(struct rp_peer){.id = 1, .raft = "127.0.0.1:1", .http = "127.0.0.1:2"};
	assert_int_equal(rp_node_create(&e->loop, &e->cfg, &n, err, sizeof err), 0);
	assert_non_null(n);
	rp_node_close(n, on_closed, &closed);
	assert_loop_empty(e);
	assert_int_equal(closed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_data_dir_cannot_be_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_dir_of_another_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raft_address_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootstrap_without_this_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_without_start, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
