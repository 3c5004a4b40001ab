/* The raft relay's inbound message checker (raft/relay.c inspect: preamble,
 * fixed headers, InstallSnapshot configuration, AppendEntries descriptors,
 * streaming of payloads), on the bytes an authenticated peer sends after
 * its handshake. relay.c is included with libuv's write/read calls
 * redirected to the test doubles below (they record instead of writing to
 * a socket), so its code runs unchanged on a buffer:
 * the input arrives in slices (size from its first byte); the second byte
 * picks the admission answer, whether our leader is the sender, and whether
 * the "kernel" takes writes at once or queues them (uv_write path).
 * What is forwarded to libraft is always a prefix of what arrived, in
 * order; a connection the relay keeps open holds back at most one
 * message's preamble and header. */
#include <raft.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int fz_try_write(uv_stream_t *s, const uv_buf_t *b, unsigned n);
static int fz_write(uv_write_t *w, uv_stream_t *s, const uv_buf_t *b, unsigned n, uv_write_cb cb);
static int fz_read_start(uv_stream_t *s, uv_alloc_cb a, uv_read_cb r);
static int fz_read_stop(uv_stream_t *s);
#define uv_try_write fz_try_write
#define uv_write fz_write
#define uv_read_start fz_read_start
#define uv_read_stop fz_read_stop
#include "raft/relay.c"
#undef uv_try_write
#undef uv_write
#undef uv_read_start
#undef uv_read_stop

static struct {
	unsigned char *out; /* forwarded to "libraft" */
	size_t out_len;
	int kernel_queues; /* try_write returns EAGAIN: every write is queued */
	int deny;
	int closed, drops;
	struct raft raft;
	uv_write_t *pending[1024];
	uv_write_cb pending_cb[1024];
	size_t n_pending;
} F;

static void append(const uv_buf_t *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		memcpy(F.out + F.out_len, b[i].base, b[i].len);
		F.out_len += b[i].len;
	}
}

static int fz_try_write(uv_stream_t *s, const uv_buf_t *b, unsigned n)
{
	(void)s;
	if (F.kernel_queues)
		return UV_EAGAIN;
	append(b, n);
	size_t len = 0;
	for (unsigned i = 0; i < n; i++)
		len += b[i].len;
	return (int)len;
}

static int fz_write(uv_write_t *w, uv_stream_t *s, const uv_buf_t *b, unsigned n, uv_write_cb cb)
{
	if (F.n_pending == sizeof F.pending / sizeof *F.pending)
		return UV_ENOBUFS;
	append(b, n); /* libuv writes in queue order */
	for (unsigned i = 0; i < n; i++)
		s->write_queue_size += b[i].len;
	w->handle = s;
	w->send_handle = NULL;
	w->nbufs = b[0].len; /* remembered for the completion */
	F.pending[F.n_pending] = w;
	F.pending_cb[F.n_pending++] = cb;
	return 0;
}

static int fz_read_start(uv_stream_t *s, uv_alloc_cb a, uv_read_cb r)
{
	(void)s, (void)a, (void)r;
	return 0;
}

static int fz_read_stop(uv_stream_t *s)
{
	(void)s;
	return 0;
}

static void complete_writes(void)
{
	for (size_t i = 0; i < F.n_pending; i++) {
		uv_write_t *w = F.pending[i];
		w->handle->write_queue_size -= w->nbufs;
		F.pending_cb[i](w, 0);
	}
	F.n_pending = 0;
}

/* ---- test doubles for transport.c (admission answer chosen by the input) */
int rp_tp_admit(struct rp_tp *tp, uint64_t id, const struct sockaddr *peer,
		enum rp_refuse_reason *why, char *addr, size_t addrlen)
{
	(void)tp, (void)id, (void)peer, (void)addr, (void)addrlen;
	*why = RP_REFUSE_BAD_HANDSHAKE;
	return F.deny ? -1 : 0;
}

void rp_tp_count_drop(struct rp_tp *tp, struct rp_conn *c, enum rp_drop_reason r,
		      const char *detail)
{
	(void)tp, (void)c, (void)r;
	if (!detail || !*detail)
		abort();
	F.drops++;
}

struct raft *rp_tp_raft(struct rp_tp *tp)
{
	(void)tp;
	return &F.raft;
}

void rp_conn_close(struct rp_conn *c)
{
	c->state = CONN_CLOSING;
	F.closed = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t step = ((size_t)data[0] << 6) + 1;
	memset(&F, 0, offsetof(__typeof__(F), raft));
	F.deny = (data[1] & 7) == 7;
	F.kernel_queues = data[1] & 8;
	memset(&F.raft, 0, sizeof F.raft);
	F.raft.current_term = 5;
	F.raft.state = RAFT_FOLLOWER;
	F.raft.follower_state.current_leader.id = data[1] & 16 ? 2 : 3;
	data += 2, size -= 2;
	F.out = malloc(size ? size : 1);

	static struct rp_conn c;
	static uv_tcp_t tcp;
	memset(&c, 0, sizeof c);
	memset(&tcp, 0, sizeof tcp);
	c.kind = CONN_IN;
	c.state = CONN_RELAY;
	c.id = 2;
	c.tcp = &tcp;
	tcp.data = &c;
	c.pipe.data = &c;
	c.mp.hold = malloc(RP_HOLD_MAX);
	msg_reset(&c.mp);
	for (size_t pos = 0; pos < size && c.state == CONN_RELAY;) {
		uv_buf_t b;
		on_alloc((uv_handle_t *)&tcp, RP_CHUNK, &b);
		size_t k = size - pos < step ? size - pos : step;
		if (k > b.len)
			k = b.len;
		memcpy(b.base, data + pos, k);
		pos += k;
		on_src_read((uv_stream_t *)&tcp, (ssize_t)k, &b);
		complete_writes();
	}
	if (F.out_len > size || memcmp(F.out, data, F.out_len) != 0)
		abort(); /* forwarded bytes are a prefix of the input, in order */
	if (F.closed != (F.drops > 0))
		abort(); /* a refused message is counted, and only then closed */
	if (!F.closed && size - F.out_len > (size_t)RP_HOLD_MAX)
		abort();
	if (getenv("RP_FUZZ_VERBOSE")) /* to check what the seeds reach */
		fprintf(stderr, "relay: %zu of %zu bytes forwarded, %s\n", F.out_len, size,
			F.closed ? "closed" : "open");
	rp_relay_release(&c);
	free(F.out);
	return 0;
}
