/* raft/aiodefer.c: io_destroy of a deferring thread goes to the helper
 * thread, every other syscall() is libc's. Real kernel AIO contexts. */
#include <errno.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "aiodefer.h"

static aio_context_t new_ctx(void)
{
	aio_context_t ctx = 0;
	assert_int_equal(syscall(SYS_io_setup, 1, &ctx), 0);
	assert_true(ctx != 0);
	return ctx;
}

/* A context that was destroyed is unknown to the kernel: io_destroy, run
 * in place on this (non-deferring) thread, says EINVAL. */
static int destroyed(aio_context_t ctx)
{
	errno = 0;
	return syscall(SYS_io_destroy, ctx) == -1 && errno == EINVAL;
}

static void *on_plain_thread(void *arg)
{
	aio_context_t *ctx = arg;
	uint64_t d0, p0, d1, p1;
	rp_aiodefer_counts(&d0, &p0);
	*ctx = new_ctx();
	long rv = syscall(SYS_io_destroy, *ctx); /* in place: gone on return */
	rp_aiodefer_counts(&d1, &p1);
	return (void *)(intptr_t)(rv == 0 && destroyed(*ctx) && d1 == d0 && p1 == p0);
}

static void *deferring_thread(void *arg)
{
	aio_context_t *ctxs = arg;
	uint64_t d0, p0, d1, p1;
	rp_aiodefer_this_thread();
	rp_aiodefer_counts(&d0, &p0);
	int ok = 1;
	for (int i = 0; i < 8; i++) {
		ctxs[i] = new_ctx();
		ok &= syscall(SYS_io_destroy, ctxs[i]) == 0;
	}
	rp_aiodefer_counts(&d1, &p1);
	ok &= d1 - d0 == 8 && p1 == p0;
	/* a bogus context is handed over too, and answered 0 (libraft ignores
	 * the result; the helper's call fails harmlessly) */
	ok &= syscall(SYS_io_destroy, (aio_context_t)0x10) == 0;
	/* other calls are libc's, with their arguments and errno */
	ok &= syscall(SYS_getpid) == getpid();
	errno = 0;
	ok &= syscall(SYS_io_submit, (aio_context_t)0x10, 1L, NULL) == -1 && errno == EINVAL;
	return (void *)(intptr_t)ok;
}

static void test_not_deferring_runs_in_place(void **state)
{
	(void)state;
	pthread_t t;
	aio_context_t ctx;
	void *ok;
	assert_int_equal(pthread_create(&t, NULL, on_plain_thread, &ctx), 0);
	assert_int_equal(pthread_join(t, &ok), 0);
	assert_true(ok != NULL);
}

static void test_deferring_thread_hands_over(void **state)
{
	(void)state;
	pthread_t t;
	aio_context_t ctxs[8];
	void *ok;
	assert_int_equal(pthread_create(&t, NULL, deferring_thread, ctxs), 0);
	assert_int_equal(pthread_join(t, &ok), 0);
	assert_true(ok != NULL);
	rp_aiodefer_flush();
	for (int i = 0; i < 8; i++) /* the helper destroyed every one */
		assert_true(destroyed(ctxs[i]));
	/* this (main) thread never asked: its io_destroy still runs in place */
	aio_context_t ctx = new_ctx();
	assert_int_equal(syscall(SYS_io_destroy, ctx), 0);
	assert_true(destroyed(ctx));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_deferring_runs_in_place),
		cmocka_unit_test(test_deferring_thread_hands_over),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
