/* The relay's event loop: epoll, non-blocking sockets, one timer heap.
 *
 * A connection (struct conn) pairs the node's socket (side 0, accepted) with
 * the socket to the peer (side 1, connected by us). Half D reads from side D
 * and writes to side 1-D; D is also the link direction (RL_OUT = node ->
 * peer). Chunks are queued with a due time (relay.h for the model) and
 * written when due and when the link's token bucket allows.
 *
 * Timers: a binary min-heap of (due, conn slot, generation). Entries of a
 * closed or reused slot are recognised by the generation and skipped; a half
 * pushes a new entry only when it needs an earlier wake-up than the one it
 * already has, so the heap stays small.
 *
 * Invariants (besides relay.h's):
 *  1. A slot's epoll registrations carry its generation: events for a slot
 *     closed earlier in the same epoll batch are ignored.
 *  2. Side 1 is read and written only once its connect completed.
 *  3. A connect to the peer that does not complete within RL_CONNECT_MS
 *     resets the node's side: a partition looks to the node like a failed
 *     connect, not like a connection that accepts bytes forever.
 *  4. Closing a connection closes both sockets; an error on either side
 *     resets the other (SO_LINGER 0), so a reset propagates as a reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"

enum {
	K_LISTEN = 1,
	K_CONN = 2,
	K_CTL_LISTEN = 3,
	K_CTL = 4,
	K_SIG = 5
};
#define MAX_CTL 4

struct chunk {
	struct chunk *next;
	uint64_t due;
	size_t len, off;
	unsigned char data[];
};

struct half {
	struct chunk *head, *tail;
	size_t queued;
	uint64_t last_due;
	uint64_t timer_at; /* earliest pending heap entry, 0 = none */
	int eof, shut, blocked;
};

struct conn {
	int used;
	uint32_t gen;
	unsigned peer;
	int fd[2];
	int connected;
	uint64_t connect_by; /* the outbound connect must complete by then */
	uint32_t ev[2];
	int reg[2]; /* registered with epoll */
	int hup[2]; /* EPOLLHUP seen: level-triggered even with no interest */
	struct half h[2];
};

struct tmr {
	uint64_t due;
	uint32_t slot, gen;
};

struct ctl {
	int fd;
	size_t len;
	char buf[RL_CTL_LINE];
};

static struct rl_relay *R;
static int EP = -1;
static struct conn C[RL_MAX_CONNS];
static struct tmr *heap;
static size_t heap_n, heap_cap;
static struct ctl CTL[MAX_CTL];

uint64_t rl_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

double rl_rand01(struct rl_relay *r)
{
	/* xorshift64*: the draws follow --seed */
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return (double)((r->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static uint64_t tag(int kind, uint32_t gen, unsigned idx, int side)
{
	return ((uint64_t)kind << 56) | ((uint64_t)(gen & 0xffffff) << 32) | ((uint64_t)idx << 8) |
	       (uint64_t)side;
}

/* ---- timer heap ------------------------------------------------------------ */

static void heap_push(uint64_t due, uint32_t slot, uint32_t gen)
{
	if (heap_n == heap_cap) {
		size_t nc = heap_cap ? heap_cap * 2 : 64;
		struct tmr *nh = realloc(heap, nc * sizeof *nh);
		if (!nh) {
			fprintf(stderr, "rp-relay: out of memory for timers\n");
			exit(1);
		}
		heap = nh;
		heap_cap = nc;
	}
	size_t i = heap_n++;
	while (i > 0 && heap[(i - 1) / 2].due > due) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = (struct tmr){due, slot, gen};
}

static struct tmr heap_pop(void)
{
	struct tmr top = heap[0], last = heap[--heap_n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= heap_n)
			break;
		if (c + 1 < heap_n && heap[c + 1].due < heap[c].due)
			c++;
		if (heap[c].due >= last.due)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (heap_n)
		heap[i] = last;
	return top;
}

static void wake_at(unsigned slot, struct half *h, uint64_t due)
{
	if (h->timer_at && h->timer_at <= due && h->timer_at > rl_now_ms())
		return;
	h->timer_at = due;
	heap_push(due, slot, C[slot].gen);
}

/* ---- connections ------------------------------------------------------------ */

static void set_interest(unsigned s)
{
	struct conn *c = &C[s];
	for (int side = 0; side < 2; side++) {
		if (c->fd[side] < 0)
			continue;
		uint32_t ev = 0;
		struct half *rd = &c->h[side];
		if (!rd->eof && rd->queued < RL_QUEUE_CAP && (side == 0 || c->connected))
			ev |= EPOLLIN;
		if ((side == 1 && !c->connected) || c->h[1 - side].blocked)
			ev |= EPOLLOUT;
		/* a hung-up socket would be reported again and again while
		 * its half is full: leave epoll until there is room */
		if (!ev && c->hup[side]) {
			if (c->reg[side])
				epoll_ctl(EP, EPOLL_CTL_DEL, c->fd[side], NULL);
			c->reg[side] = 0;
			continue;
		}
		if (c->reg[side] && ev == c->ev[side])
			continue;
		struct epoll_event e = {.events = ev, .data.u64 = tag(K_CONN, c->gen, s, side)};
		epoll_ctl(EP, c->reg[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd[side], &e);
		c->reg[side] = 1;
		c->ev[side] = ev;
	}
}

static void free_half(struct half *h)
{
	while (h->head) {
		struct chunk *n = h->head->next;
		free(h->head);
		h->head = n;
	}
	h->tail = NULL;
	h->queued = 0;
}

static void close_fd(int fd, int rst)
{
	if (fd < 0)
		return;
	if (rst) {
		struct linger l = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	}
	epoll_ctl(EP, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static void conn_close(unsigned s, int rst, const char *why)
{
	struct conn *c = &C[s];
	if (!c->used)
		return;
	fprintf(stderr, "rp-relay: peer %u: connection %u closed (%s)\n", R->peers[c->peer].id, s,
		why);
	close_fd(c->fd[0], rst);
	close_fd(c->fd[1], rst);
	free_half(&c->h[0]);
	free_half(&c->h[1]);
	c->used = 0;
	c->gen++;
}

static void on_accept(unsigned p)
{
	struct rl_peer *peer = &R->peers[p];
	for (;;) {
		int fd = accept4(peer->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		unsigned s;
		for (s = 0; s < RL_MAX_CONNS && C[s].used; s++)
			;
		if (s == RL_MAX_CONNS) {
			fprintf(stderr, "rp-relay: peer %u: %d connections open, refusing one\n",
				peer->id, RL_MAX_CONNS);
			close_fd(fd, 1);
			continue;
		}
		int out = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (out < 0 || setsockopt(out, SOL_SOCKET, SO_MARK, &R->mark, sizeof R->mark) < 0) {
			fprintf(stderr, "rp-relay: outbound socket: %s\n", strerror(errno));
			if (out >= 0)
				close(out);
			close_fd(fd, 1);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		int rc = connect(out, (struct sockaddr *)&peer->dst, sizeof peer->dst);
		if (rc < 0 && errno != EINPROGRESS) {
			close(out);
			close_fd(fd, 1);
			continue;
		}
		struct conn *c = &C[s];
		uint32_t gen = c->gen;
		memset(c, 0, sizeof *c);
		c->gen = gen;
		c->used = 1;
		c->peer = p;
		c->fd[0] = fd;
		c->fd[1] = out;
		c->connected = rc == 0;
		c->connect_by = rl_now_ms() + RL_CONNECT_MS;
		if (!c->connected)
			heap_push(c->connect_by, s, c->gen);
		peer->conns++;
		set_interest(s);
	}
}

/* Refill the link's bucket; returns the bytes it allows now. */
static size_t allowance(struct rl_link *l, uint64_t now)
{
	if (!l->p.rate)
		return SIZE_MAX;
	double burst = (double)l->p.rate / 20 > 4096 ? (double)l->p.rate / 20 : 4096;
	l->tokens += (double)(now - l->refill_ms) * (double)l->p.rate / 1000.0;
	l->refill_ms = now;
	if (l->tokens > burst)
		l->tokens = burst;
	return l->tokens < 1 ? 0 : (size_t)l->tokens;
}

/* Write what is due of half D of slot S. Returns -1 when the connection
 * was closed. */
static int flush(unsigned s, int d)
{
	struct conn *c = &C[s];
	struct half *h = &c->h[d];
	struct rl_link *l = &R->peers[c->peer].dir[d];
	int fd = c->fd[1 - d];
	uint64_t now = rl_now_ms();
	if (d == RL_OUT && !c->connected)
		return 0;
	while (h->head && !h->blocked) {
		struct chunk *k = h->head;
		if (k->due == RL_HOLD)
			break;
		if (k->due > now) {
			wake_at(s, h, k->due);
			break;
		}
		size_t want = k->len - k->off, ok = allowance(l, now);
		if (ok == 0) {
			uint64_t wait = l->p.rate ? 1 + 1000 * 1024 / l->p.rate : 1;
			wake_at(s, h, now + (wait > 50 ? 50 : wait));
			break;
		}
		if (want > ok)
			want = ok;
		ssize_t w = send(fd, k->data + k->off, want, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			h->blocked = 1;
			break;
		}
		if (w < 0) {
			conn_close(s, 1, strerror(errno));
			return -1;
		}
		k->off += (size_t)w;
		h->queued -= (size_t)w;
		l->bytes += (uint64_t)w;
		if (l->p.rate)
			l->tokens -= (double)w;
		if (k->off == k->len) {
			h->head = k->next;
			if (!h->head)
				h->tail = NULL;
			free(k);
		}
	}
	if (!h->head && h->eof && !h->shut) {
		shutdown(fd, SHUT_WR);
		h->shut = 1;
		if (c->h[1 - d].shut) {
			conn_close(s, 0, "both ends closed");
			return -1;
		}
	}
	set_interest(s);
	return 0;
}

/* The due time of a new chunk on link L (relay.h: the loss model). */
static uint64_t due_of(struct rl_link *l, struct half *h, uint64_t now)
{
	struct rl_params *p = &l->p;
	if (p->loss >= 100 || h->last_due == RL_HOLD)
		return RL_HOLD;
	uint64_t due = now + p->delay_ms;
	if (p->jitter_ms)
		due += (uint64_t)(rl_rand01(R) * (p->jitter_ms + 1));
	uint64_t rto = 200;
	for (int k = 0; k < 6 && p->loss > 0 && rl_rand01(R) * 100 < p->loss; k++) {
		due += rto;
		rto *= 2;
		l->lost++;
	}
	return due < h->last_due ? h->last_due : due;
}

/* Read from side D into half D. Returns -1 when the connection was closed. */
static int fill(unsigned s, int d)
{
	struct conn *c = &C[s];
	struct half *h = &c->h[d];
	struct rl_link *l = &R->peers[c->peer].dir[d];
	while (!h->eof && h->queued < RL_QUEUE_CAP) {
		size_t room = RL_QUEUE_CAP - h->queued;
		size_t n = room < RL_CHUNK_MAX ? room : RL_CHUNK_MAX;
		struct chunk *k = malloc(sizeof *k + n);
		if (!k) {
			conn_close(s, 1, "out of memory");
			return -1;
		}
		ssize_t r = recv(c->fd[d], k->data, n, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			free(k);
			break;
		}
		if (r <= 0) {
			free(k);
			if (r < 0) {
				conn_close(s, 1, strerror(errno));
				return -1;
			}
			h->eof = 1;
			break;
		}
		uint64_t now = rl_now_ms();
		l->chunks++;
		if (l->p.reset > 0 && rl_rand01(R) * 100 < l->p.reset) {
			free(k);
			l->resets++;
			conn_close(s, 1, "reset by the link model");
			return -1;
		}
		k->next = NULL;
		k->len = (size_t)r;
		k->off = 0;
		k->due = due_of(l, h, now);
		h->last_due = k->due;
		if (h->tail)
			h->tail->next = k;
		else
			h->head = k;
		h->tail = k;
		h->queued += (size_t)r;
	}
	return flush(s, d);
}

static void on_conn(unsigned s, int side, uint32_t ev)
{
	struct conn *c = &C[s];
	if (ev & EPOLLERR) {
		/* a reset at one end resets the other (invariant 4) */
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd[side], SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			conn_close(s, 1, strerror(err));
			return;
		}
	}
	if (ev & EPOLLHUP)
		c->hup[side] = 1;
	if (side == 1 && !c->connected) {
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			conn_close(s, 1, strerror(err));
			return;
		}
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		c->connected = 1;
	}
	if (ev & EPOLLOUT) {
		c->h[1 - side].blocked = 0;
		if (flush(s, 1 - side) < 0)
			return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		if (fill(s, side) < 0)
			return;
	if (c->used)
		set_interest(s);
}

void rl_params_changed(unsigned p, int d)
{
	uint64_t now = rl_now_ms();
	for (unsigned s = 0; s < RL_MAX_CONNS; s++) {
		struct conn *c = &C[s];
		if (!c->used || c->peer != p)
			continue;
		struct half *h = &c->h[d];
		if (R->peers[p].dir[d].p.loss < 100) {
			/* held chunks flow again, after the new delay */
			for (struct chunk *k = h->head; k; k = k->next)
				if (k->due == RL_HOLD)
					k->due = now + R->peers[p].dir[d].p.delay_ms;
			if (h->last_due == RL_HOLD)
				h->last_due = h->tail ? h->tail->due : 0;
		}
		h->timer_at = 0;
		flush(s, d);
	}
}

unsigned rl_reset_peer(unsigned p)
{
	unsigned n = 0;
	for (unsigned s = 0; s < RL_MAX_CONNS; s++)
		if (C[s].used && C[s].peer == p) {
			R->peers[p].dir[RL_OUT].resets++;
			conn_close(s, 1, "reset by command");
			n++;
		}
	return n;
}

unsigned rl_open_conns(unsigned p)
{
	unsigned n = 0;
	for (unsigned s = 0; s < RL_MAX_CONNS; s++)
		n += C[s].used && C[s].peer == p;
	return n;
}

/* ---- control socket -------------------------------------------------------- */

static void ctl_close(unsigned i)
{
	close_fd(CTL[i].fd, 0);
	CTL[i].fd = -1;
}

static void on_ctl_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		unsigned i;
		for (i = 0; i < MAX_CTL && CTL[i].fd >= 0; i++)
			;
		if (i == MAX_CTL) {
			/* a stuck control client must not lock the next one out */
			i = 0;
			ctl_close(0);
		}
		CTL[i].fd = fd;
		CTL[i].len = 0;
		struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag(K_CTL, 0, i, 0)};
		epoll_ctl(EP, EPOLL_CTL_ADD, fd, &e);
	}
}

static void on_ctl(unsigned i)
{
	struct ctl *t = &CTL[i];
	ssize_t r = recv(t->fd, t->buf + t->len, sizeof t->buf - 1 - t->len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		ctl_close(i);
		return;
	}
	t->len += (size_t)r;
	t->buf[t->len] = '\0';
	char *nl = memchr(t->buf, '\n', t->len);
	static char out[16384];
	if (!nl && t->len < sizeof t->buf - 1)
		return;
	if (!nl) {
		snprintf(out, sizeof out, "err command longer than %d bytes\n", RL_CTL_LINE - 2);
	} else {
		*nl = '\0';
		fprintf(stderr, "rp-relay: control: %s\n", t->buf);
		rl_ctl_handle(R, t->buf, out, sizeof out);
	}
	/* the answer is small: a blocking send with a deadline */
	int fl = fcntl(t->fd, F_GETFL);
	fcntl(t->fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = {1, 0};
	setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	send(t->fd, out, strlen(out), MSG_NOSIGNAL);
	ctl_close(i);
}

/* ---- setup and loop ---------------------------------------------------------- */

static int listen_tcp(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)a, sizeof *a) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path) {
		fprintf(stderr, "rp-relay: control socket path too long: %s\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	mode_t old = umask(077);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		fprintf(stderr, "rp-relay: control socket %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void on_timers(void)
{
	uint64_t now = rl_now_ms();
	while (heap_n && heap[0].due <= now) {
		struct tmr t = heap_pop();
		struct conn *c = &C[t.slot];
		if (!c->used || c->gen != t.gen)
			continue;
		if (!c->connected && now >= c->connect_by) {
			/* the node sees a reset, as its own connect would time out */
			conn_close(t.slot, 1, "connect to the peer timed out");
			continue;
		}
		for (int d = 0; d < 2 && c->used && c->gen == t.gen; d++) {
			if (c->h[d].timer_at == t.due)
				c->h[d].timer_at = 0;
			flush(t.slot, d);
		}
	}
}

int rl_serve(struct rl_relay *r, const char *ctl_path)
{
	R = r;
	for (unsigned i = 0; i < MAX_CTL; i++)
		CTL[i].fd = -1;
	EP = epoll_create1(EPOLL_CLOEXEC);
	if (EP < 0)
		return 1;
	for (unsigned p = 0; p < r->n_peers; p++) {
		struct sockaddr_in a = r->listen;
		a.sin_port = htons(r->peers[p].lport);
		r->peers[p].lfd = listen_tcp(&a);
		if (r->peers[p].lfd < 0) {
			fprintf(stderr, "rp-relay: listen on port %u: %s\n", r->peers[p].lport,
				strerror(errno));
			return 1;
		}
		struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag(K_LISTEN, 0, p, 0)};
		epoll_ctl(EP, EPOLL_CTL_ADD, r->peers[p].lfd, &e);
	}
	int cfd = listen_unix(ctl_path);
	if (cfd < 0)
		return 1;
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag(K_CTL_LISTEN, 0, 0, 0)};
	epoll_ctl(EP, EPOLL_CTL_ADD, cfd, &e);
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	e = (struct epoll_event){.events = EPOLLIN, .data.u64 = tag(K_SIG, 0, 0, 0)};
	epoll_ctl(EP, EPOLL_CTL_ADD, sfd, &e);
	fprintf(stderr, "rp-relay: serving %u peers, control %s\n", r->n_peers, ctl_path);

	for (int run = 1; run;) {
		int timeout = -1;
		if (heap_n) {
			uint64_t now = rl_now_ms();
			timeout = heap[0].due <= now ? 0 : (int)(heap[0].due - now);
		}
		struct epoll_event evs[64];
		int n = epoll_wait(EP, evs, 64, timeout);
		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			uint64_t u = evs[i].data.u64;
			int kind = (int)(u >> 56), side = (int)(u & 0xff);
			unsigned idx = (unsigned)((u >> 8) & 0xffffff);
			uint32_t gen = (uint32_t)((u >> 32) & 0xffffff);
			if (kind == K_LISTEN)
				on_accept(idx);
			else if (kind == K_CONN && C[idx].used && (C[idx].gen & 0xffffff) == gen)
				on_conn(idx, side, evs[i].events);
			else if (kind == K_CTL_LISTEN)
				on_ctl_accept(cfd);
			else if (kind == K_CTL && CTL[idx].fd >= 0)
				on_ctl(idx);
			else if (kind == K_SIG)
				run = 0;
		}
		on_timers();
	}
	for (unsigned s = 0; s < RL_MAX_CONNS; s++)
		conn_close(s, 0, "relay stopping");
	for (unsigned i = 0; i < MAX_CTL; i++)
		if (CTL[i].fd >= 0)
			ctl_close(i);
	for (unsigned p = 0; p < r->n_peers; p++)
		close(r->peers[p].lfd);
	close(cfd);
	unlink(ctl_path);
	close(sfd);
	close(EP);
	free(heap);
	fprintf(stderr, "rp-relay: stopped\n");
	return 0;
}
