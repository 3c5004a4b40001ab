/* The physical floor of one acknowledged write on this machine (issue 15,
 * "physical limit"): a raft write is durable once the leader and one
 * follower have each appended and flushed the entry (in parallel), plus a
 * loopback round trip to carry the entry and the answer. This probe
 * measures those pieces in the directory the benchmark's data dirs live in:
 *
 *   fsyncprobe DIR [ROUNDS]
 *
 * - "one": append 4 KiB to a preallocated file (pwrite at the next offset)
 *   then fdatasync(), ROUNDS times: one node's durable append;
 * - "two": the same in two threads at once on two files, each round waits
 *   for both (a barrier): leader and follower on the same disk;
 * - "rtt": a 64-byte ping-pong over a TCP connection on 127.0.0.1.
 * Prints one JSON line: p50/p99 in microseconds of each, and the bound
 * (two + rtt) as p50 and p99. Plain C and pthreads, no dependencies. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define MAX_ROUNDS 100000

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "fsyncprobe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

struct appender {
	int fd;
	off_t off;
	char buf[BLOCK];
};

static void appender_open(struct appender *a, const char *dir, const char *name, int rounds)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	a->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (a->fd < 0)
		die(path);
	unlink(path); /* gone when we exit, whatever happens */
	if (posix_fallocate(a->fd, 0, (off_t)rounds * BLOCK + BLOCK) != 0)
		die("posix_fallocate");
	if (fsync(a->fd) != 0)
		die("fsync");
	memset(a->buf, 0xa5, sizeof a->buf);
	a->off = 0;
}

static void append_sync(struct appender *a)
{
	if (pwrite(a->fd, a->buf, BLOCK, a->off) != BLOCK)
		die("pwrite");
	if (fdatasync(a->fd) != 0)
		die("fdatasync");
	a->off += BLOCK;
}

/* "two": a second thread appends in lock step with the first */
struct peer {
	struct appender a;
	pthread_barrier_t *start, *done;
	int rounds;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	for (int i = 0; i < p->rounds; i++) {
		pthread_barrier_wait(p->start);
		append_sync(&p->a);
		pthread_barrier_wait(p->done);
	}
	return NULL;
}

static void *echo_main(void *arg)
{
	int fd = *(int *)arg;
	char b[64];
	for (;;) {
		ssize_t n = recv(fd, b, sizeof b, MSG_WAITALL);
		if (n <= 0 || send(fd, b, (size_t)n, 0) != n)
			break;
	}
	return NULL;
}

static void rtt(int rounds, double *out)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) != 0)
		die("listen on 127.0.0.1");
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("connect");
	int s = accept(ls, NULL, NULL);
	if (s < 0)
		die("accept");
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	pthread_t t;
	pthread_create(&t, NULL, echo_main, &s);
	char b[64] = {0};
	for (int i = 0; i < rounds; i++) {
		double t0 = now_us();
		if (send(c, b, sizeof b, 0) != (ssize_t)sizeof b ||
		    recv(c, b, sizeof b, MSG_WAITALL) != (ssize_t)sizeof b)
			die("ping");
		out[i] = now_us() - t0;
	}
	close(c);
	pthread_join(t, NULL);
	close(s);
	close(ls);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: fsyncprobe DIR [ROUNDS (default 500)]\n");
		return 2;
	}
	const char *dir = argv[1];
	int rounds = 500;
	if (argc == 3) {
		char *end;
		long r = strtol(argv[2], &end, 10);
		if (*end || r < 10 || r > MAX_ROUNDS) {
			fprintf(stderr, "fsyncprobe: ROUNDS must be 10-%d\n", MAX_ROUNDS);
			return 2;
		}
		rounds = (int)r;
	}
	double *one = calloc((size_t)rounds, sizeof *one);
	double *two = calloc((size_t)rounds, sizeof *two);
	double *net = calloc((size_t)rounds, sizeof *net);
	double *bound = calloc((size_t)rounds, sizeof *bound);
	if (!one || !two || !net || !bound)
		die("calloc");

	struct appender a;
	appender_open(&a, dir, ".fsyncprobe-a", rounds * 2);
	for (int i = 0; i < rounds; i++) {
		double t0 = now_us();
		append_sync(&a);
		one[i] = now_us() - t0;
	}

	pthread_barrier_t start, done;
	pthread_barrier_init(&start, NULL, 2);
	pthread_barrier_init(&done, NULL, 2);
	struct peer p = {.start = &start, .done = &done, .rounds = rounds};
	appender_open(&p.a, dir, ".fsyncprobe-b", rounds);
	pthread_t t;
	pthread_create(&t, NULL, peer_main, &p);
	for (int i = 0; i < rounds; i++) {
		pthread_barrier_wait(&start);
		double t0 = now_us();
		append_sync(&a);
		pthread_barrier_wait(&done);
		two[i] = now_us() - t0;
	}
	pthread_join(t, NULL);

	rtt(rounds, net);
	for (int i = 0; i < rounds; i++)
		bound[i] = two[i] + net[i]; /* pairs by round: a sample of the sum */

	printf("{\"bench\":\"fsync\",\"rounds\":%d,"
	       "\"one_p50_us\":%.1f,\"one_p99_us\":%.1f,"
	       "\"two_p50_us\":%.1f,\"two_p99_us\":%.1f,"
	       "\"rtt_p50_us\":%.1f,\"rtt_p99_us\":%.1f,"
	       "\"bound_p50_us\":%.1f,\"bound_p99_us\":%.1f}\n",
	       rounds, pct(one, rounds, 0.5), pct(one, rounds, 0.99), pct(two, rounds, 0.5),
	       pct(two, rounds, 0.99), pct(net, rounds, 0.5), pct(net, rounds, 0.99),
	       pct(bound, rounds, 0.5), pct(bound, rounds, 0.99));
	return 0;
}
