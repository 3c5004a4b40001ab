/* io_destroy off the loop thread (see aiodefer.h).
 *
 * Invariants
 *
 * 1. Only io_destroy, only on a thread that called rp_aiodefer_this_thread(),
 *    changes course; every other syscall() reaches libc's with its six
 *    argument registers as they were (glibc's syscall() reads six too).
 * 2. Deferring is safe because raft_uv 0.15 destroys a context only once it
 *    is idle: a segment's writes are serialized and its writer is closed
 *    (uv_append.c: uvAliveSegmentFinalize) only after its last write
 *    completed or for a segment never written, and UvWriterClose() waits
 *    for threadpool writes on the context before destroying it. Nothing
 *    then uses the context again; the kernel frees it (and its ring) when
 *    the helper's io_destroy returns. libraft ignores io_destroy's result.
 * 3. At most QUEUE_MAX contexts wait; beyond that, or without a helper
 *    thread, io_destroy runs in place, as before (correct, only slow).
 * 4. The helper thread is started on first use and lives as long as the
 *    process; contexts still queued at exit are freed by the kernel with
 *    the process (exit_aio), like any the process did not destroy.
 */
#include "aiodefer.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QUEUE_MAX 256

typedef long (*syscall_fn)(long, ...);

static syscall_fn real_fn;
static _Thread_local int deferring;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static unsigned long queue[QUEUE_MAX];
static unsigned head, count;
static int running; /* a context is being destroyed by the helper */
static int helper;  /* 1: started, -1: could not be started */
static uint64_t n_deferred, n_in_place;

static syscall_fn real_syscall(void)
{
	syscall_fn f = __atomic_load_n(&real_fn, __ATOMIC_ACQUIRE);
	if (!f) {
		f = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
		if (!f) { /* no libc below us (a static link): nothing can work */
			fputs("raftplane: aiodefer: libc's syscall() not found\n", stderr);
			abort();
		}
		__atomic_store_n(&real_fn, f, __ATOMIC_RELEASE);
	}
	return f;
}

__attribute__((constructor)) static void resolve_early(void)
{
	(void)real_syscall();
}

static void *helper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (count == 0)
			pthread_cond_wait(&work_cv, &mu);
		unsigned long ctx = queue[head];
		head = (head + 1) % QUEUE_MAX;
		count--;
		running = 1;
		pthread_mutex_unlock(&mu);
		real_syscall()(SYS_io_destroy, ctx);
		pthread_mutex_lock(&mu);
		running = 0;
		if (count == 0)
			pthread_cond_broadcast(&idle_cv);
	}
	return NULL;
}

/* 1: @ctx is queued for the helper; 0: destroy it in place. */
static int defer(unsigned long ctx)
{
	int queued = 0;
	pthread_mutex_lock(&mu);
	if (helper == 0) {
		pthread_t t;
		pthread_attr_t a;
		helper = -1;
		if (pthread_attr_init(&a) == 0) {
			if (pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED) == 0 &&
			    pthread_create(&t, &a, helper_main, NULL) == 0)
				helper = 1;
			pthread_attr_destroy(&a);
		}
	}
	if (helper == 1 && count < QUEUE_MAX) {
		queue[(head + count) % QUEUE_MAX] = ctx;
		count++;
		n_deferred++;
		queued = 1;
		pthread_cond_signal(&work_cv);
	} else {
		n_in_place++;
	}
	pthread_mutex_unlock(&mu);
	return queued;
}

/* Interposes libc's syscall() (invariant 1). Like glibc's, it reads six
 * arguments whatever the call passed: the sixth comes from the caller's
 * stack (always mapped, the caller's own frame), which ASan would report as
 * an underflow when fewer were passed, hence no instrumentation here. */
__attribute__((no_sanitize_address)) long syscall(long number, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_io_destroy && deferring && defer((unsigned long)a[0]))
		return 0;
	return real_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void rp_aiodefer_this_thread(void)
{
	(void)real_syscall();
	deferring = 1;
}

void rp_aiodefer_flush(void)
{
	pthread_mutex_lock(&mu);
	while (count > 0 || running)
		pthread_cond_wait(&idle_cv, &mu);
	pthread_mutex_unlock(&mu);
}

void rp_aiodefer_counts(uint64_t *deferred, uint64_t *in_place)
{
	pthread_mutex_lock(&mu);
	*deferred = n_deferred;
	*in_place = n_in_place;
	pthread_mutex_unlock(&mu);
}
