/* The relay between a peer's TCP connection and libraft, and the inspection
 * of every inbound raft message on the way. The caller sets CONN_RELAY
 * once rp_relay_start() succeeded.
 *
 * After our handshake, libraft gets one end of a socketpair (a uv_pipe_t
 * allocated with raft_malloc, which libraft closes and frees) and we copy
 * bytes between the other end and the TCP socket. On inbound connections
 * (peer -> us; libraft only reads them) each message is parsed as it
 * streams through, in canonical/raft 0.15's uv encoding:
 *
 *   preamble  u64 type, u64 header length (little endian)
 *   header    starts with u64 term for every type
 *   payload   AppendEntries: the entries (sum of the lengths in the header);
 *             InstallSnapshot: the snapshot data (length at the header's end)
 *
 * Invariants
 *
 * 1. No byte of a message reaches libraft before its preamble and fixed
 *    header were checked: known type, header length exactly what 0.15 sends
 *    for the type (libraft itself reads fixed offsets without checking),
 *    term within bounds (transport.h), TimeoutNow only from our leader in
 *    our term, RequestVote only for the sender itself, sender still admitted.
 * 2. A message that fails a check is never completed: the connection is
 *    closed before its last byte is forwarded, so libraft never decodes it
 *    (libraft discards a partial message when its stream ends).
 * 3. Payload bytes are streamed, never buffered by us; what we hold per
 *    connection is bounded (RP_HOLD_MAX + unacknowledged writes, with reads
 *    paused above RP_RELAY_HIGH queued bytes).
 * 4. Relayed outbound connections (us -> peer; libraft only writes) are
 *    copied without parsing; anything the peer sends back closes them
 *    (with TLS: any application data; its TLS records without data are
 *    processed).
 *
 * By default outbound connections are handed to libraft unrelayed (copying
 * them bought nothing but CPU: there is nothing to check on what we send);
 * rp_transport_config.relay_outbound copies them too, and TLS implies it.
 *
 * With TLS (c->tls, tlsconn.h) the TCP socket carries TLS records in both
 * directions and libraft's socketpair the plaintext:
 *
 *   inbound:  TCP --on_tls_read: feed, decrypt--> inspect --> pipe (libraft)
 *   outbound: pipe (libraft) --on_src_read: encrypt--> TCP
 *             TCP --on_tls_read: decrypt--> must be empty (else closed)
 *
 * 5. The inspection sees exactly the plaintext, in order: decrypted bytes
 *    go through the same inspect() as plain ones, chunk by chunk.
 * 6. What the engine holds is bounded: a read from TCP is at most its room
 *    (RP_TLSCONN_MAX_IN) and is decrypted completely before the next one;
 *    its output is taken after every call. The TCP queue is capped:
 *    RP_TLS_CTRL_MAX where only our TLS records go (inbound: alerts, key
 *    updates), RP_TLS_DATA_MAX where raft data goes (outbound); a peer that
 *    makes us exceed it, i.e. never reads, is dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tlsconn.h"
#include "transport_conn.h"

struct wreq {
	uv_write_t w;
	struct rp_conn *c;
	struct chunk *ch; /* referenced slice, or NULL */
	void *owned;      /* malloc'd copy, or NULL */
};

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void chunk_unref(struct chunk *ch)
{
	if (ch && --ch->refs == 0)
		free(ch);
}

static uv_stream_t *src_of(struct rp_conn *c)
{
	return c->kind == CONN_IN ? (uv_stream_t *)c->tcp : (uv_stream_t *)&c->pipe;
}

static uv_stream_t *dst_of(struct rp_conn *c)
{
	return c->kind == CONN_IN ? (uv_stream_t *)&c->pipe : (uv_stream_t *)c->tcp;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_src_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_tls_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The read callback of the data source: TLS records on an inbound TLS
 * connection's TCP, else the bytes themselves. */
static uv_read_cb src_read_cb(struct rp_conn *c)
{
	return c->tls && c->kind == CONN_IN ? on_tls_read : on_src_read;
}

static void on_written(uv_write_t *w, int status)
{
	struct wreq *r = w->data;
	struct rp_conn *c = r->c;
	chunk_unref(r->ch);
	free(r->owned);
	free(r);
	if (status < 0) {
		rp_conn_close(c);
		return;
	}
	if (c->reading_paused && c->state == CONN_RELAY &&
	    dst_of(c)->write_queue_size < RP_RELAY_HIGH / 2) {
		c->reading_paused = 0;
		if (uv_read_start(src_of(c), on_alloc, src_read_cb(c)) != 0)
			rp_conn_close(c);
	}
}

/* Queue @len bytes at @base on @dst. Exactly one of @ch (a reference is
 * taken) and @owned (ownership passes) backs them. */
static int send_to(struct rp_conn *c, uv_stream_t *dst, char *base, size_t len, struct chunk *ch,
		   void *owned)
{
	uv_buf_t b = uv_buf_init(base, (unsigned)len);
	if (dst->write_queue_size == 0) {
		/* the common case: the kernel takes it all now, nothing to keep */
		int n = uv_try_write(dst, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			free(owned);
			return -1;
		}
		if (n > 0 && (size_t)n == len) {
			free(owned);
			return 0;
		}
		if (n > 0)
			b = uv_buf_init(base + n, (unsigned)(len - (size_t)n));
	}
	struct wreq *r = malloc(sizeof *r);
	if (!r) {
		free(owned);
		return -1;
	}
	*r = (struct wreq){.c = c, .ch = ch, .owned = owned};
	r->w.data = r;
	if (ch)
		ch->refs++;
	if (uv_write(&r->w, dst, &b, 1, on_written) != 0) {
		chunk_unref(ch);
		free(owned);
		free(r);
		return -1;
	}
	if (dst == dst_of(c) && dst->write_queue_size > RP_RELAY_HIGH && !c->reading_paused) {
		c->reading_paused = 1;
		uv_read_stop(src_of(c));
	}
	return 0;
}

/* Queue @len bytes for the other side (see send_to). */
static int forward(struct rp_conn *c, char *base, size_t len, struct chunk *ch, void *owned)
{
	return send_to(c, dst_of(c), base, len, ch, owned);
}

int rp_relay_tls_flush(struct rp_conn *c)
{
	size_t n = rp_tlsconn_pending(c->tls);
	if (n == 0)
		return 0;
	char *p = malloc(n);
	if (!p)
		return -1;
	n = rp_tlsconn_take(c->tls, p, n);
	if (send_to(c, (uv_stream_t *)c->tcp, p, n, NULL, p) != 0)
		return -1;
	size_t cap = c->kind == CONN_IN ? RP_TLS_CTRL_MAX : RP_TLS_DATA_MAX;
	return c->tcp->write_queue_size > cap ? -1 : 0;
}

/* ---- inbound message checks ------------------------------------------- */

static void msg_reset(struct msg_parser *m)
{
	m->phase = MSG_HOLD;
	m->stage = 0;
	m->have = 0;
	m->need = 16;
}

/* Header length 0.15 sends for fixed-size types; 0 when variable. */
static int fixed_hlen_ok(uint64_t type, uint64_t hlen)
{
	switch (type) {
	case RAFT_IO_REQUEST_VOTE: return hlen == 32 || hlen == 40;
	case RAFT_IO_REQUEST_VOTE_RESULT: return hlen == 16 || hlen == 24;
	case RAFT_IO_APPEND_ENTRIES_RESULT:
	case RAFT_IO_TIMEOUT_NOW: return hlen == 24;
	case RAFT_IO_APPEND_ENTRIES: return hlen >= 40 && hlen - 40 <= 16 * RP_MAX_ENTRIES + 8;
	case RAFT_IO_INSTALL_SNAPSHOT: return hlen >= 48 + 9 && hlen <= 56 + RP_MAX_CONF;
	default: return 0;
	}
}

/* An encoded raft_configuration: u8 format 1, u64 n, then n times
 * (u64 id, NUL-terminated address, u8 role). libraft 0.15 decodes it
 * without bounds checks. */
static int conf_ok(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	if (len < 9 || p[0] != 1)
		return 0;
	uint64_t n = get64(p + 1);
	p += 9;
	if (n == 0 || n > 1024)
		return 0;
	for (uint64_t i = 0; i < n; i++) {
		if (end - p < 8 || get64(p) == 0)
			return 0;
		p += 8;
		const unsigned char *nul = memchr(p, 0, (size_t)(end - p));
		if (!nul || nul == p || nul - p > RP_HS_MAX_ADDR)
			return 0;
		p = nul + 1;
		if (p == end || *p > RAFT_SPARE)
			return 0;
		p++;
	}
	return 1;
}

/* Checks every type shares: term bounds, sender, per-type rules. */
static int check_common(struct rp_conn *c, const unsigned char *h)
{
	struct raft *r = rp_tp_raft(c->tp);
	uint64_t term = get64(h), cur = r->current_term;
	enum rp_refuse_reason why;
	char detail[96];
	if (rp_tp_admit(c->tp, c->id, (struct sockaddr *)&c->peer, &why, NULL, 0) != 0) {
		rp_tp_count_drop(c->tp, c, RP_DROP_NOT_MEMBER, "sender is no longer a member");
		return -1;
	}
	if (term > RP_TERM_CEILING || (term > cur && term - cur > RP_TERM_MAX_JUMP)) {
		snprintf(detail, sizeof detail, "term %llu, ours %llu", (unsigned long long)term,
			 (unsigned long long)cur);
		rp_tp_count_drop(c->tp, c, RP_DROP_TERM, detail);
		return -1;
	}
	if (c->mp.type == RAFT_IO_TIMEOUT_NOW) {
		raft_id leader = 0;
		const char *addr = NULL;
		raft_leader(r, &leader, &addr);
		if (leader != c->id || term != cur) {
			snprintf(detail, sizeof detail, "leader %llu, term %llu (ours %llu)",
				 (unsigned long long)leader, (unsigned long long)term,
				 (unsigned long long)cur);
			rp_tp_count_drop(c->tp, c, RP_DROP_TIMEOUT_NOW, detail);
			return -1;
		}
	}
	if (c->mp.type == RAFT_IO_REQUEST_VOTE && get64(h + 8) != c->id) {
		rp_tp_count_drop(c->tp, c, RP_DROP_MALFORMED, "vote requested for another id");
		return -1;
	}
	return 0;
}

/* Queue checked bytes of the current chunk; contiguous ones go out in one
 * write when the chunk is done (flush_pending). */
static int flush_pending(struct rp_conn *c, struct chunk *ch)
{
	struct msg_parser *m = &c->mp;
	int rv = 0;
	if (m->pend_len)
		rv = forward(c, m->pend, m->pend_len, ch, NULL);
	m->pend = NULL;
	m->pend_len = 0;
	return rv;
}

static int pass(struct rp_conn *c, struct chunk *ch, char *p, size_t len)
{
	struct msg_parser *m = &c->mp;
	if (m->pend && m->pend + m->pend_len == p) {
		m->pend_len += len;
		return 0;
	}
	if (flush_pending(c, ch) != 0)
		return -1;
	m->pend = p;
	m->pend_len = len;
	return 0;
}

/* Release what is held and continue with @skip streamed bytes. */
static int release_hold(struct rp_conn *c, uint64_t skip)
{
	struct msg_parser *m = &c->mp;
	if (m->hold_in_chunk) {
		if (pass(c, c->spare, c->spare->data + m->hold_start, m->have) != 0)
			return -1;
	} else {
		void *copy = malloc(m->have);
		if (!copy || flush_pending(c, c->spare) != 0) {
			free(copy);
			return -1;
		}
		memcpy(copy, m->hold, m->have);
		if (forward(c, copy, m->have, NULL, copy) != 0)
			return -1;
	}
	m->skip = skip;
	m->phase = MSG_SKIP;
	if (skip == 0)
		msg_reset(m);
	return 0;
}

static int on_fixed_header(struct rp_conn *c)
{
	struct msg_parser *m = &c->mp;
	const unsigned char *h = m->hold + 16;
	if (check_common(c, h) != 0)
		return -1;
	if (m->type == RAFT_IO_APPEND_ENTRIES) {
		uint64_t n = get64(h + 32);
		if (n > RP_MAX_ENTRIES || m->hlen < 40 + 16 * n || m->hlen > 48 + 16 * n)
			goto malformed;
		m->slack = m->hlen - 40 - 16 * n;
		m->desc_left = n;
		m->desc_have = 0;
		m->payload = 0;
		if (release_hold(c, m->slack) != 0)
			return -1;
		if (n > 0)
			m->phase = MSG_DESC;
		return 0;
	}
	if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
		uint64_t len = get64(h + 32);
		if (len < 9 || len > RP_MAX_CONF || m->hlen < 48 + len || m->hlen > 56 + len)
			goto malformed;
		m->stage = 2;
		m->need = 16 + 40 + len + 8;
		return 0;
	}
	return release_hold(c, 0);
malformed:
	rp_tp_count_drop(c->tp, c, RP_DROP_MALFORMED, "bad header length");
	return -1;
}

static int on_held(struct rp_conn *c)
{
	struct msg_parser *m = &c->mp;
	if (m->stage == 0) {
		m->type = get64(m->hold);
		m->hlen = get64(m->hold + 8);
		if (!fixed_hlen_ok(m->type, m->hlen)) {
			rp_tp_count_drop(c->tp, c, RP_DROP_MALFORMED, "bad type or header length");
			return -1;
		}
		m->stage = 1;
		m->need = 16 +
			  (m->type == RAFT_IO_APPEND_ENTRIES || m->type == RAFT_IO_INSTALL_SNAPSHOT
				   ? 40
				   : m->hlen);
		return 0;
	}
	if (m->stage == 1)
		return on_fixed_header(c);
	/* stage 2: InstallSnapshot's configuration and data length */
	uint64_t len = get64(m->hold + 16 + 32);
	uint64_t data = get64(m->hold + 16 + 40 + len);
	if (!conf_ok(m->hold + 16 + 40, len) || data > RP_MAX_PAYLOAD) {
		rp_tp_count_drop(c->tp, c, RP_DROP_MALFORMED, "bad snapshot header");
		return -1;
	}
	return release_hold(c, (m->hlen - 48 - len) + data);
}

/* One AppendEntries entry descriptor: u64 term, u8 type, 3 unused, u32 length. */
static int on_desc(struct rp_conn *c)
{
	struct msg_parser *m = &c->mp;
	unsigned type = m->desc[8];
	uint64_t len = (uint64_t)m->desc[12] | (uint64_t)m->desc[13] << 8 |
		       (uint64_t)m->desc[14] << 16 | (uint64_t)m->desc[15] << 24;
	/* entries are 8-byte padded by every legit sender (our commands,
	 * barriers, configurations); libraft's batch decoder assumes it */
	if (type < RAFT_COMMAND || type > RAFT_CHANGE || len % 8 != 0 ||
	    get64(m->desc) > get64(m->hold + 16) || (m->payload += len) > RP_MAX_PAYLOAD) {
		rp_tp_count_drop(c->tp, c, RP_DROP_MALFORMED, "bad entry descriptor");
		return -1;
	}
	m->desc_have = 0;
	if (--m->desc_left == 0) {
		m->phase = MSG_SKIP;
		m->skip = m->slack + m->payload;
		if (m->skip == 0)
			msg_reset(m);
	}
	return 0;
}

/* Feed @len inbound bytes at @base (inside @ch, which is c->spare).
 * -1: close the connection (nothing of the failing message was queued). */
static int inspect(struct rp_conn *c, struct chunk *ch, char *base, size_t len)
{
	struct msg_parser *m = &c->mp;
	size_t pos = 0;
	m->hold_in_chunk = 0; /* a hold carried over from the last chunk is only in hold */
	while (pos < len) {
		size_t k, start = pos;
		switch (m->phase) {
		case MSG_HOLD:
			if (m->have == 0) {
				m->hold_in_chunk = 1;
				m->hold_start = pos;
			}
			k = m->need - m->have < len - pos ? m->need - m->have : len - pos;
			memcpy(m->hold + m->have, base + pos, k);
			m->have += k;
			pos += k;
			if (m->have == m->need && on_held(c) != 0)
				return -1;
			break;
		case MSG_DESC:
			while (pos < len && m->phase == MSG_DESC) {
				m->desc[m->desc_have++] = (unsigned char)base[pos++];
				if (m->desc_have == 16 && on_desc(c) != 0)
					return -1;
			}
			if (pass(c, ch, base + start, pos - start) != 0)
				return -1;
			break;
		case MSG_SKIP:
			k = m->skip < len - pos ? (size_t)m->skip : len - pos;
			if (pass(c, ch, base + pos, k) != 0)
				return -1;
			pos += k;
			if ((m->skip -= k) == 0)
				msg_reset(m);
			break;
		}
	}
	return flush_pending(c, ch);
}

/* ---- reading ----------------------------------------------------------- */

/* A read buffer nobody else holds (NULL when out of memory). */
static struct chunk *own_spare(struct rp_conn *c)
{
	if (c->spare && c->spare->refs > 1) {
		chunk_unref(c->spare);
		c->spare = NULL;
	}
	if (!c->spare && (c->spare = malloc(sizeof *c->spare)) != NULL)
		c->spare->refs = 1;
	return c->spare;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rp_conn *c = h->data;
	(void)suggested;
	size_t len = RP_CHUNK;
	/* TLS records: no more than the engine may hold */
	if (c->tls && (uv_stream_t *)h == (uv_stream_t *)c->tcp && rp_tlsconn_room(c->tls) < len)
		len = rp_tlsconn_room(c->tls);
	*buf = own_spare(c) && len ? uv_buf_init(c->spare->data, (unsigned)len)
				   : uv_buf_init(NULL, 0);
}

static void on_src_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_conn *c = s->data;
	(void)buf;
	if (nread == 0 || c->state != CONN_RELAY)
		return;
	if (nread < 0) {
		rp_conn_close(c);
		return;
	}
	int rv;
	if (c->kind == CONN_IN)
		rv = inspect(c, c->spare, c->spare->data, (size_t)nread);
	else if (c->tls) /* libraft's plaintext, into records */
		rv = rp_tlsconn_write(c->tls, c->spare->data, (size_t)nread) != 0
			     ? -1
			     : rp_relay_tls_flush(c);
	else
		rv = forward(c, c->spare->data, (size_t)nread, c->spare, NULL);
	c->mp.pend = NULL;
	c->mp.pend_len = 0;
	if (rv != 0)
		rp_conn_close(c);
}

/* Decrypt everything the engine holds. Inbound, the plaintext is inspected
 * and relayed like the bytes of a plain connection; outbound, the peer must
 * send nothing (its TLS records without data, e.g. a key update, are fine).
 * -1: close the connection. */
static int tls_pump(struct rp_conn *c)
{
	for (;;) {
		struct chunk *ch = own_spare(c);
		if (!ch)
			return -1;
		ssize_t n = rp_tlsconn_read(c->tls, ch->data, RP_CHUNK);
		if (n == 0)
			break;
		if (n < 0 || c->kind == CONN_OUT)
			return -1;
		int rv = inspect(c, ch, ch->data, (size_t)n);
		c->mp.pend = NULL;
		c->mp.pend_len = 0;
		if (rv != 0)
			return -1;
		if (c->state != CONN_RELAY)
			return 0;
	}
	return rp_relay_tls_flush(c);
}

/* TCP of a TLS connection: records in, feed the engine, pump. */
static void on_tls_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_conn *c = s->data;
	if (nread == 0 || c->state != CONN_RELAY)
		return;
	if (nread < 0 || rp_tlsconn_feed(c->tls, buf->base, (size_t)nread) != 0 || tls_pump(c) != 0)
		rp_conn_close(c);
}

void rp_relay_kick(struct rp_conn *c)
{
	if (c->tls && c->state == CONN_RELAY && tls_pump(c) != 0)
		rp_conn_close(c);
}

static void on_sink_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char sink[64];
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(sink, sizeof sink);
}

/* The side that must stay silent: libraft on inbound connections, the peer
 * on outbound ones. Anything but "nothing" ends the connection. */
static void on_sink_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	if (nread != 0)
		rp_conn_close(s->data);
}

static void on_libraft_pipe_closed(uv_handle_t *h)
{
	raft_free(h);
}

int rp_relay_start(struct rp_conn *c, uv_stream_t **libraft_end)
{
	int sv[2];
	uv_loop_t *loop = c->tcp->loop;
	uv_pipe_t *theirs = raft_malloc(sizeof *theirs);
	if (!theirs)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		goto err_after_alloc;
	if (c->kind == CONN_IN && (c->mp.hold = malloc(RP_HOLD_MAX)) == NULL)
		goto err_after_pair;
	msg_reset(&c->mp);
	uv_pipe_init(loop, &c->pipe, 0);
	c->pipe.data = c;
	c->pipe_inited = 1;
	c->open_handles++;
	if (uv_pipe_open(&c->pipe, sv[0]) != 0) {
		close(sv[0]);
		close(sv[1]);
		raft_free(theirs);
		return -1; /* our pipe handle is closed with the connection */
	}
	uv_pipe_init(loop, theirs, 0);
	if (uv_pipe_open(theirs, sv[1]) != 0) {
		close(sv[1]);
		uv_close((uv_handle_t *)theirs, on_libraft_pipe_closed);
		return -1;
	}
	/* the silent side: libraft inbound; the peer outbound, whose TLS
	 * records are read all the same (tls_pump refuses data in them) */
	uv_stream_t *silent = c->kind == CONN_IN ? (uv_stream_t *)&c->pipe : (uv_stream_t *)c->tcp;
	int silent_rv = c->tls && c->kind == CONN_OUT
				? uv_read_start(silent, on_alloc, on_tls_read)
				: uv_read_start(silent, on_sink_alloc, on_sink_read);
	if (uv_read_start(src_of(c), on_alloc, src_read_cb(c)) != 0 || silent_rv != 0) {
		uv_close((uv_handle_t *)theirs, on_libraft_pipe_closed);
		return -1;
	}
	*libraft_end = (uv_stream_t *)theirs;
	return 0;

err_after_pair:
	close(sv[0]);
	close(sv[1]);
err_after_alloc:
	raft_free(theirs);
	return -1;
}

void rp_relay_release(struct rp_conn *c)
{
	free(c->mp.hold);
	c->mp.hold = NULL;
	chunk_unref(c->spare);
	c->spare = NULL;
}
