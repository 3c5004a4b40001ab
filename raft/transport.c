/* raftplane's struct raft_uv_transport: TCP with our own handshake, peer
 * admission by configuration and source address, bounded unauthenticated
 * state; the relay (relay.c) carries the bytes afterwards.
 *
 * Invariants
 *
 * 1. libraft never sees a connection whose handshake we did not check:
 *    magic, version, flags, address length 1..255, non-zero sender id,
 *    receiver id equal to ours.
 * 2. An inbound connection is admitted only when the sender id is in the
 *    current raft configuration (r->configuration, including an uncommitted
 *    change) or was in one that is not yet superseded by a committed
 *    configuration (peers.h: otherwise a node that appended a change removing
 *    X refuses X as the leader that must discard that change), and the
 *    source IP equals the host of that member's raft address; while the
 *    configuration is empty (a node that joins) the join peers set by
 *    main.c stand in for it.
 * 3. Unauthenticated inbound connections are at most cfg.max_pending, and a
 *    quarter of that per source address; each
 *    holds at most RP_HS_FIXED + RP_HS_MAX_ADDR bytes and dies at the
 *    handshake deadline. Authenticated ones are at most
 *    RP_MAX_CONNS_PER_PEER per id (the oldest goes).
 * 4. Outbound connections bind to our own raft host so that peers see the
 *    source address they expect, and give up at the same deadline.
 * 5. A connection's memory is freed only after all its handles closed; the
 *    close callback of the transport fires after the last one.
 * 6. With TLS (cfg.tls_in/tls_out) every connection, both ways, is TLS, and
 *    the TLS handshake comes first: our handshake runs inside it, and both
 *    share the deadline and the pending limits of 3. Inbound, the peer's
 *    certificate (verified against the peer CA) must name
 *    spiffe://TD/server/N with N the sender id of our handshake, before 2.
 *    applies; outbound, the accepting server's certificate must name the id
 *    we dial, before we send our handshake. Every byte of both directions
 *    then goes through the relay (relay.c), which decrypts before it
 *    inspects. Each connection uses the context current when it started: a
 *    reload applies to new connections, established ones continue.
 *
 *   inbound:  accepted [--TLS handshake, server cert id-->] --handshake ok,
 *             admitted--> relay --EOF/error/drop--> closing
 *   outbound: connecting --connected [--TLS handshake, peer cert names the id
 *             we dial-->] --handshake written--> relay --> closing
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"
#include "raftplane/log.h"
#include "tlsconn.h"
#include "transport.h"
#include "transport_conn.h"

const char *const rp_refuse_reason_names[RP_REFUSE__N] = {"pending_limit", "handshake_timeout",
							  "bad_handshake", "not_member",
							  "wrong_address", "tls",
							  "wrong_identity"};
const char *const rp_drop_reason_names[RP_DROP__N] = {"malformed", "term", "timeout_now",
						      "not_member"};

struct rp_tp {
	uv_loop_t *loop;
	struct rp_transport_config cfg;
	struct raft_uv_transport *t;
	struct raft *raft;
	uint64_t id;
	char addr[64];
	uv_tcp_t listener;
	int listening;
	raft_uv_accept_cb accept_cb;
	struct rp_conn conns; /* sentinel of a circular list, oldest first */
	struct rp_transport_peer join[64];
	unsigned n_join;
	struct rp_peerset known; /* admitted besides the configuration (peers.h) */
	struct rp_transport_stats stats;
	int closing;
	raft_uv_transport_close_cb close_cb;
	/* rate-limited log of refusals and drops */
	uint64_t log_at, log_suppressed;
	char td[RP_TLS_MAX_TRUST_DOMAIN + 1]; /* TLS: the peers' trust domain */
	char rdbuf[16384];                    /* TLS handshakes: read, then fed at once */
};

struct raft *rp_tp_raft(struct rp_tp *tp)
{
	return tp->raft;
}

/* ---- addresses --------------------------------------------------------- */

/* The IPv4 address in @sa (also when v4-mapped IPv6), 0 and *v6 set
 * otherwise. */
static int same_host(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	unsigned char x[16], y[16];
	const struct sockaddr *s[2] = {a, (const struct sockaddr *)b};
	unsigned char *o[2] = {x, y};
	for (int i = 0; i < 2; i++) {
		memset(o[i], 0, 16);
		if (s[i]->sa_family == AF_INET) {
			o[i][10] = o[i][11] = 0xff;
			memcpy(o[i] + 12, &((const struct sockaddr_in *)s[i])->sin_addr, 4);
		} else if (s[i]->sa_family == AF_INET6) {
			memcpy(o[i], &((const struct sockaddr_in6 *)s[i])->sin6_addr, 16);
		} else {
			return 0;
		}
	}
	return memcmp(x, y, 16) == 0;
}

static void format_ip(const struct sockaddr *sa, char *out, size_t len)
{
	if (sa->sa_family == AF_INET6)
		uv_ip6_name((const struct sockaddr_in6 *)sa, out, len);
	else
		uv_ip4_name((const struct sockaddr_in *)sa, out, len);
}

/* Is (@id, @peer) allowed to talk raft to us? On yes, copy the member's
 * configured raft address into @addr (when non-NULL). */
int rp_tp_admit(struct rp_tp *tp, uint64_t id, const struct sockaddr *peer,
		enum rp_refuse_reason *why, char *addr, size_t addrlen)
{
	const struct raft_configuration *conf = &tp->raft->configuration;
	const char *cfg_addr = NULL;
	rp_peerset_update(&tp->known, tp->raft);
	for (unsigned i = 0; i < conf->n && !cfg_addr; i++)
		if (conf->servers[i].id == id)
			cfg_addr = conf->servers[i].address;
	if (!cfg_addr)
		cfg_addr = rp_peerset_find(&tp->known, id);
	for (unsigned i = 0; conf->n == 0 && i < tp->n_join && !cfg_addr; i++)
		if (tp->join[i].id == id)
			cfg_addr = tp->join[i].raft;
	if (!cfg_addr || id == tp->id) {
		*why = RP_REFUSE_NOT_MEMBER;
		return -1;
	}
	struct sockaddr_storage sa;
	if (rp_transport_parse_addr(cfg_addr, &sa) != 0 || !same_host(peer, &sa)) {
		*why = RP_REFUSE_WRONG_ADDRESS;
		return -1;
	}
	if (addr)
		snprintf(addr, addrlen, "%s", cfg_addr);
	return 0;
}

/* ---- logging and counting ---------------------------------------------- */

/* At most one line a second; the next line says how many were left out. */
__attribute__((format(printf, 2, 3))) static void log_line(struct rp_tp *tp, const char *fmt, ...)
{
	uint64_t now = uv_now(tp->loop);
	if (tp->log_at && now - tp->log_at < 1000) {
		tp->log_suppressed++;
		return;
	}
	char msg[512], more[64] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (tp->log_suppressed)
		snprintf(more, sizeof more, " (+%" PRIu64 " more not logged)", tp->log_suppressed);
	rp_log_warn("%s%s", msg, more);
	tp->log_at = now;
	tp->log_suppressed = 0;
}

static void refuse_why(struct rp_conn *c, enum rp_refuse_reason r, const char *detail)
{
	char id[32] = ""; /* none before our handshake (TLS refusals) */
	if (c->id)
		snprintf(id, sizeof id, " (id %" PRIu64 ")", c->id);
	c->tp->stats.refused[r]++;
	log_line(c->tp, "raft: refused connection from %s%s: %s%s%s%s", c->peer_ip, id,
		 rp_refuse_reason_names[r], detail ? " (" : "", detail ? detail : "",
		 detail ? ")" : "");
	rp_conn_close(c);
}

static void refuse(struct rp_conn *c, enum rp_refuse_reason r)
{
	refuse_why(c, r, NULL);
}

/* A TLS failure of connection @c: inbound a refusal, outbound a connection
 * we give up. Counted by reason; @detail (or the reason) logged. */
static void tls_fail(struct rp_conn *c, enum rp_tls_fail f, const char *detail)
{
	struct rp_tp *tp = c->tp;
	if (f == RP_TLS_FAIL_IDENTITY)
		rp_tls_count(rp_tlsconn_tls(c->tls), f);
	if (c->kind == CONN_IN) {
		tp->stats.tls_in[f]++;
		refuse_why(c, f == RP_TLS_FAIL_IDENTITY ? RP_REFUSE_WRONG_IDENTITY : RP_REFUSE_TLS,
			   detail ? detail : rp_tls_fail_names[f]);
		return;
	}
	tp->stats.tls_out[f]++;
	log_line(tp, "raft: TLS connection to server %" PRIu64 " at %s failed: %s%s%s%s", c->id,
		 c->addr, rp_tls_fail_names[f], detail ? " (" : "", detail ? detail : "",
		 detail ? ")" : "");
	rp_conn_close(c);
}

void rp_tp_count_drop(struct rp_tp *tp, struct rp_conn *c, enum rp_drop_reason r,
		      const char *detail)
{
	tp->stats.dropped[r]++;
	log_line(tp,
		 "raft: dropped a message from %s (id %" PRIu64
		 ") and closed its connection: %s (%s)",
		 c->peer_ip, c->id, rp_drop_reason_names[r], detail);
}

/* ---- connection lifecycle ---------------------------------------------- */

static void maybe_fire_close(struct rp_tp *tp)
{
	if (tp->closing && tp->close_cb && !tp->listening && tp->conns.next == &tp->conns) {
		raft_uv_transport_close_cb cb = tp->close_cb;
		tp->close_cb = NULL;
		cb(tp->t);
	}
}

static void conn_handle_gone(struct rp_conn *c)
{
	struct rp_tp *tp = c->tp;
	if (--c->open_handles > 0)
		return;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	rp_relay_release(c);
	rp_tlsconn_destroy(c->tls);
	free(c);
	maybe_fire_close(tp);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	conn_handle_gone(h->data);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct rp_conn *c = h->data;
	raft_free(h);
	conn_handle_gone(c);
}

static void finish_connect(struct rp_conn *c, uv_stream_t *stream, int status)
{
	struct raft_uv_connect *req = c->req;
	c->req = NULL;
	if (req)
		c->cb(req, stream, status);
}

void rp_conn_close(struct rp_conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->kind == CONN_IN && c->state == CONN_HANDSHAKE)
		c->tp->stats.pending--;
	if (c->state == CONN_RELAY) {
		if (c->kind == CONN_IN)
			c->tp->stats.relayed_in--;
		else
			c->tp->stats.relayed_out--;
	}
	c->state = CONN_CLOSING;
	finish_connect(c, NULL, c->tp->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
	if (c->tcp)
		uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
	if (c->pipe_inited)
		uv_close((uv_handle_t *)&c->pipe, on_conn_handle_closed);
}

static struct rp_conn *conn_new(struct rp_tp *tp, enum conn_kind kind)
{
	struct rp_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if ((c->tcp = raft_malloc(sizeof *c->tcp)) == NULL) {
		free(c);
		return NULL;
	}
	c->tp = tp;
	c->kind = kind;
	c->state = CONN_HANDSHAKE;
	uv_tcp_init(tp->loop, c->tcp);
	uv_timer_init(tp->loop, &c->timer);
	c->tcp->data = c->timer.data = c;
	c->open_handles = 2;
	c->next = &tp->conns;
	c->prev = tp->conns.prev;
	c->prev->next = c;
	tp->conns.prev = c;
	return c;
}

static void on_deadline(uv_timer_t *t)
{
	struct rp_conn *c = t->data;
	if (c->tls && !rp_tlsconn_established(c->tls)) /* a timeout is a handshake failure */
		rp_tls_count(rp_tlsconn_tls(c->tls), RP_TLS_FAIL_HANDSHAKE);
	if (c->kind == CONN_IN)
		refuse(c, RP_REFUSE_TIMEOUT);
	else
		rp_conn_close(c);
}

/* ---- inbound ------------------------------------------------------------ */

/* Keep at most RP_MAX_CONNS_PER_PEER relayed inbound connections per id. */
static void limit_per_peer(struct rp_tp *tp, uint64_t id)
{
	unsigned n = 0;
	for (struct rp_conn *c = tp->conns.next; c != &tp->conns; c = c->next)
		n += c->kind == CONN_IN && c->state == CONN_RELAY && c->id == id;
	for (struct rp_conn *c = tp->conns.next; c != &tp->conns && n >= RP_MAX_CONNS_PER_PEER;
	     c = c->next) {
		if (c->kind == CONN_IN && c->state == CONN_RELAY && c->id == id) {
			rp_conn_close(c);
			n--;
		}
	}
}

static void on_handshake_done(struct rp_conn *c)
{
	const unsigned char *h = c->hs;
	enum rp_refuse_reason why;
	char addr[64];
	uv_stream_t *stream;
	uint64_t to = 0;
	for (int i = 7; i >= 0; i--)
		to = (to << 8) | h[16 + i];
	if (to != c->tp->id) {
		refuse(c, RP_REFUSE_BAD_HANDSHAKE);
		return;
	}
	if (c->tls && c->cert_id != c->id) {
		char d[96];
		snprintf(d, sizeof d,
			 "certificate names server %" PRIu64 ", handshake claims %" PRIu64,
			 c->cert_id, c->id);
		tls_fail(c, RP_TLS_FAIL_IDENTITY, d);
		return;
	}
	if (rp_tp_admit(c->tp, c->id, (struct sockaddr *)&c->peer, &why, addr, sizeof addr) != 0) {
		refuse(c, why);
		return;
	}
	uv_read_stop((uv_stream_t *)c->tcp);
	uv_timer_stop(&c->timer);
	limit_per_peer(c->tp, c->id);
	if (rp_relay_start(c, &stream) != 0) {
		rp_conn_close(c);
		return;
	}
	c->state = CONN_RELAY;
	c->tp->stats.pending--;
	c->tp->stats.accepted++;
	c->tp->stats.relayed_in++;
	c->tp->accept_cb(c->tp->t, c->id, addr, stream);
	rp_relay_kick(c);
}

static void on_hs_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rp_conn *c = h->data;
	(void)suggested;
	/* exactly what is missing: raft bytes after it stay in the kernel */
	*buf = uv_buf_init((char *)c->hs + c->hs_have, (unsigned)(c->hs_need - c->hs_have));
}

/* @n more bytes of our handshake arrived in c->hs. */
static void hs_got(struct rp_conn *c, size_t n)
{
	c->hs_have += n;
	if (c->hs_have < c->hs_need)
		return;
	if (c->hs_need == RP_HS_FIXED) {
		const unsigned char *h = c->hs;
		unsigned alen = h[6] | (unsigned)h[7] << 8;
		for (int i = 7; i >= 0; i--)
			c->id = (c->id << 8) | h[8 + i];
		if (memcmp(h, RP_HS_MAGIC, 4) != 0 || h[4] != RP_HS_VERSION || h[5] != 0 ||
		    alen == 0 || alen > RP_HS_MAX_ADDR || c->id == 0) {
			refuse(c, RP_REFUSE_BAD_HANDSHAKE);
			return;
		}
		c->hs_need += alen;
		return;
	}
	on_handshake_done(c);
}

static void on_hs_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_conn *c = s->data;
	(void)buf;
	if (nread == 0 || c->state != CONN_HANDSHAKE)
		return;
	if (nread < 0) {
		refuse(c, RP_REFUSE_BAD_HANDSHAKE);
		return;
	}
	hs_got(c, (size_t)nread);
}

/* ---- TLS, both directions ------------------------------------------------ */

static void outbound_ready(struct rp_conn *c);

/* The peer's verified certificate must name a server: inbound the one our
 * handshake will claim (checked in on_handshake_done), outbound the one we
 * dial. */
static int check_cert(struct rp_conn *c)
{
	struct rp_peer_id id;
	char buf[400], d[480];
	rp_tlsconn_peer(c->tls, c->tp->td, &id);
	if (id.kind == RP_PEER_SERVER && (c->kind == CONN_IN || id.server == c->id)) {
		c->cert_id = id.server;
		return 0;
	}
	snprintf(d, sizeof d, "certificate names %s", rp_peer_id_str(&id, buf, sizeof buf));
	tls_fail(c, RP_TLS_FAIL_IDENTITY, d);
	return -1;
}

/* The connection ended (EOF, read error, more than the engine may hold)
 * before both handshakes completed. */
static void hs_broken(struct rp_conn *c)
{
	if (!rp_tlsconn_established(c->tls)) {
		rp_tls_count(rp_tlsconn_tls(c->tls), RP_TLS_FAIL_HANDSHAKE);
		tls_fail(c, RP_TLS_FAIL_HANDSHAKE, "connection ended during the TLS handshake");
	} else if (c->kind == CONN_IN) {
		refuse(c, RP_REFUSE_BAD_HANDSHAKE);
	} else {
		rp_conn_close(c);
	}
}

/* Advance with what the engine holds: the TLS handshake, the certificate
 * check, then (inbound) our handshake inside TLS or (outbound) sending
 * ours. */
static void tls_step(struct rp_conn *c)
{
	struct rp_tlsconn *t = c->tls;
	if (!rp_tlsconn_established(t)) {
		int r = rp_tlsconn_handshake(t);
		int flushed = rp_relay_tls_flush(c); /* our flight, or an alert */
		if (r < 0) {
			tls_fail(c, rp_tlsconn_failure(t), NULL);
			return;
		}
		if (flushed != 0) {
			rp_conn_close(c);
			return;
		}
		if (r == 0 || check_cert(c) != 0)
			return;
		if (c->kind == CONN_OUT) {
			outbound_ready(c);
			return;
		}
	}
	/* exactly what is missing: raft bytes after it stay in the engine */
	while (c->state == CONN_HANDSHAKE) {
		ssize_t n = rp_tlsconn_read(t, c->hs + c->hs_have, c->hs_need - c->hs_have);
		if (n == 0)
			break;
		if (n < 0) {
			refuse(c, RP_REFUSE_BAD_HANDSHAKE);
			return;
		}
		hs_got(c, (size_t)n);
	}
	if (c->state == CONN_HANDSHAKE && rp_relay_tls_flush(c) != 0)
		rp_conn_close(c);
}

static void on_tls_hs_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rp_conn *c = h->data;
	size_t have = rp_tlsconn_buffered(c->tls);
	size_t room = have < RP_TLS_HS_MAX_IN ? RP_TLS_HS_MAX_IN - have : 0;
	(void)suggested;
	if (room > sizeof c->tp->rdbuf)
		room = sizeof c->tp->rdbuf;
	*buf = uv_buf_init(c->tp->rdbuf, (unsigned)room); /* 0: UV_ENOBUFS, closed */
}

static void on_tls_hs_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct rp_conn *c = s->data;
	if (nread == 0 || c->state != CONN_HANDSHAKE)
		return;
	if (nread < 0 || rp_tlsconn_feed(c->tls, buf->base, (size_t)nread) != 0) {
		hs_broken(c);
		return;
	}
	tls_step(c);
}

/* ---- inbound, continued ---------------------------------------------------- */

/* A quarter of the pending slots per source address: a flood from one host
 * cannot keep peers on other hosts out. */
static unsigned per_ip_limit(const struct rp_tp *tp)
{
	return tp->cfg.max_pending >= 4 ? tp->cfg.max_pending / 4 : 1;
}

static unsigned pending_from(struct rp_tp *tp, struct rp_conn *c)
{
	unsigned n = 0;
	for (struct rp_conn *o = tp->conns.next; o != &tp->conns; o = o->next)
		n += o->kind == CONN_IN && o->state == CONN_HANDSHAKE &&
		     same_host((struct sockaddr *)&o->peer, &c->peer);
	return n;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct rp_tp *tp = server->data;
	if (status < 0 || tp->closing)
		return;
	struct rp_conn *c = conn_new(tp, CONN_IN);
	if (!c)
		return;
	tp->stats.pending++;
	int len = sizeof c->peer;
	if (uv_accept(server, (uv_stream_t *)c->tcp) != 0 ||
	    uv_tcp_getpeername(c->tcp, (struct sockaddr *)&c->peer, &len) != 0) {
		rp_conn_close(c);
		return;
	}
	format_ip((struct sockaddr *)&c->peer, c->peer_ip, sizeof c->peer_ip);
	if (tp->stats.pending > tp->cfg.max_pending || pending_from(tp, c) > per_ip_limit(tp)) {
		refuse(c, RP_REFUSE_PENDING_LIMIT);
		return;
	}
	c->hs_need = RP_HS_FIXED;
	if (tp->cfg.tls_in && (c->tls = rp_tlsconn_create(tp->cfg.tls_in, RP_TLS_SERVER)) == NULL) {
		rp_conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_deadline, tp->cfg.handshake_timeout_ms, 0);
	if (uv_read_start((uv_stream_t *)c->tcp, c->tls ? on_tls_hs_alloc : on_hs_alloc,
			  c->tls ? on_tls_hs_read : on_hs_read) != 0)
		rp_conn_close(c);
}

/* ---- outbound ----------------------------------------------------------- */

/* Give libraft the TCP stream itself; our connection object goes away. */
static void hand_over(struct rp_conn *c)
{
	uv_stream_t *stream = (uv_stream_t *)c->tcp;
	c->tcp = NULL;
	c->open_handles--;
	c->state = CONN_CLOSING;
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
	finish_connect(c, stream, 0);
}

/* Outbound, our handshake sent (or queued): libraft gets the relay's end. */
static void start_relay_out(struct rp_conn *c)
{
	uv_stream_t *stream;
	uv_timer_stop(&c->timer);
	if (rp_relay_start(c, &stream) != 0) {
		rp_conn_close(c);
		return;
	}
	c->state = CONN_RELAY;
	c->tp->stats.relayed_out++;
	finish_connect(c, stream, 0);
	rp_relay_kick(c);
}

static void on_hs_written(uv_write_t *w, int status)
{
	struct rp_conn *c = w->data;
	if (c->state != CONN_HANDSHAKE)
		return;
	if (status < 0) {
		rp_conn_close(c);
		return;
	}
	if (!c->tp->cfg.relay_outbound) {
		uv_timer_stop(&c->timer);
		hand_over(c);
		return;
	}
	start_relay_out(c);
}

/* Our handshake into c->hs; returns its length. */
static size_t build_handshake(struct rp_conn *c)
{
	struct rp_tp *tp = c->tp;
	size_t alen = strlen(tp->addr);
	unsigned char *h = c->hs;
	memcpy(h, RP_HS_MAGIC, 4);
	h[4] = RP_HS_VERSION;
	h[5] = 0;
	h[6] = (unsigned char)alen;
	h[7] = (unsigned char)(alen >> 8);
	for (int i = 0; i < 8; i++) {
		h[8 + i] = (unsigned char)(tp->id >> (8 * i));
		h[16 + i] = (unsigned char)(c->id >> (8 * i));
	}
	memcpy(h + RP_HS_FIXED, tp->addr, alen);
	return RP_HS_FIXED + alen;
}

/* TLS outbound: the server proved it is the one we dial; our handshake
 * goes inside TLS, then the relay takes both directions. */
static void outbound_ready(struct rp_conn *c)
{
	size_t len = build_handshake(c);
	uv_read_stop((uv_stream_t *)c->tcp);
	if (rp_tlsconn_write(c->tls, c->hs, len) != 0 || rp_relay_tls_flush(c) != 0) {
		rp_conn_close(c);
		return;
	}
	start_relay_out(c);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct rp_conn *c = req->data;
	struct rp_tp *tp = c->tp;
	if (c->state != CONN_HANDSHAKE)
		return;
	if (status < 0) {
		rp_conn_close(c);
		return;
	}
	if (tp->cfg.tls_out) {
		if ((c->tls = rp_tlsconn_create(tp->cfg.tls_out, RP_TLS_CLIENT)) == NULL ||
		    uv_read_start((uv_stream_t *)c->tcp, on_tls_hs_alloc, on_tls_hs_read) != 0) {
			rp_conn_close(c);
			return;
		}
		tls_step(c); /* our ClientHello */
		return;
	}
	uv_buf_t b = uv_buf_init((char *)c->hs, (unsigned)build_handshake(c));
	c->hs_write.data = c;
	if (uv_write(&c->hs_write, (uv_stream_t *)c->tcp, &b, 1, on_hs_written) != 0)
		rp_conn_close(c);
}

static int tp_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
		      const char *address, raft_uv_connect_cb cb)
{
	struct rp_tp *tp = t->impl;
	struct sockaddr_storage sa, self;
	if (tp->closing)
		return RAFT_CANCELED;
	if (rp_transport_parse_addr(address, &sa) != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "bad raft address %s", address);
		return RAFT_NOCONNECTION;
	}
	struct rp_conn *c = conn_new(tp, CONN_OUT);
	if (!c)
		return RAFT_NOMEM;
	c->id = id;
	snprintf(c->addr, sizeof c->addr, "%s", address);
	snprintf(c->peer_ip, sizeof c->peer_ip, "%s", address);
	/* the source address peers check: our own raft host (port: any) */
	if (rp_transport_parse_addr(tp->addr, &self) == 0) {
		if (self.ss_family == AF_INET)
			((struct sockaddr_in *)&self)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&self)->sin6_port = 0;
		uv_tcp_bind(c->tcp, (struct sockaddr *)&self, 0);
	}
	c->connect.data = c;
	if (uv_tcp_connect(&c->connect, c->tcp, (struct sockaddr *)&sa, on_connected) != 0) {
		rp_conn_close(c); /* c->req not set yet: no callback */
		return RAFT_NOCONNECTION;
	}
	c->req = req;
	c->cb = cb;
	uv_timer_start(&c->timer, on_deadline, tp->cfg.handshake_timeout_ms, 0);
	return 0;
}

/* ---- the raft_uv_transport interface ------------------------------------ */

static int tp_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct rp_tp *tp = t->impl;
	struct sockaddr_storage sa;
	if (strlen(address) >= sizeof tp->addr || strlen(address) > RP_HS_MAX_ADDR ||
	    rp_transport_parse_addr(address, &sa) != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "bad raft address %s", address);
		return RAFT_INVALID;
	}
	tp->id = id;
	snprintf(tp->addr, sizeof tp->addr, "%s", address);
	return 0;
}

static int tp_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct rp_tp *tp = t->impl;
	struct sockaddr_storage sa;
	int rv;
	if (!tp->raft) {
		snprintf(t->errmsg, sizeof t->errmsg, "transport has no raft instance");
		return RAFT_INVALID;
	}
	rp_transport_parse_addr(tp->addr, &sa);
	uv_tcp_init(tp->loop, &tp->listener);
	tp->listener.data = tp;
	tp->listening = 1;
	if ((rv = uv_tcp_bind(&tp->listener, (struct sockaddr *)&sa, 0)) != 0 ||
	    (rv = uv_listen((uv_stream_t *)&tp->listener, 128, on_connection)) != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s", tp->addr,
			 uv_strerror(rv));
		return RAFT_IOERR;
	}
	tp->accept_cb = cb;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct rp_tp *tp = h->data;
	tp->listening = 0;
	maybe_fire_close(tp);
}

static void tp_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct rp_tp *tp = t->impl;
	tp->closing = 1;
	tp->close_cb = cb;
	if (tp->listening)
		uv_close((uv_handle_t *)&tp->listener, on_listener_closed);
	for (struct rp_conn *c = tp->conns.next, *nx; c != &tp->conns; c = nx) {
		nx = c->next;
		rp_conn_close(c);
	}
	maybe_fire_close(tp);
}

int rp_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
		      const struct rp_transport_config *cfg)
{
	struct rp_tp *tp = calloc(1, sizeof *tp);
	if (!tp)
		return RAFT_NOMEM;
	tp->loop = loop;
	tp->cfg = *cfg;
	const char *td = cfg->trust_domain ? cfg->trust_domain : RP_TLS_DEFAULT_TRUST_DOMAIN;
	if (!cfg->tls_in != !cfg->tls_out || !rp_tls_trust_domain_valid(td)) {
		free(tp);
		return RAFT_INVALID;
	}
	snprintf(tp->td, sizeof tp->td, "%s", td);
	tp->cfg.trust_domain = NULL; /* not kept: tp->td */
	if (tp->cfg.tls_in)
		tp->cfg.relay_outbound = 1; /* every byte goes through the engine */
	if (tp->cfg.handshake_timeout_ms == 0)
		tp->cfg.handshake_timeout_ms = 3000;
	if (tp->cfg.max_pending == 0)
		tp->cfg.max_pending = 32;
	tp->t = t;
	tp->conns.next = tp->conns.prev = &tp->conns;
	memset(t, 0, sizeof *t);
	t->impl = tp;
	t->init = tp_init;
	t->listen = tp_listen;
	t->connect = tp_connect;
	t->close = tp_close;
	return 0;
}

void rp_transport_set_data_dir(struct raft_uv_transport *t, uint64_t id, const char *dir)
{
	struct rp_tp *tp = t->impl;
	rp_peerset_load(&tp->known, id, dir);
}

void rp_transport_forget_peer(struct raft_uv_transport *t, uint64_t id)
{
	struct rp_tp *tp = t->impl;
	rp_peerset_forget(&tp->known, id);
}

void rp_transport_close(struct raft_uv_transport *t)
{
	free(t->impl);
	t->impl = NULL;
}

void rp_transport_set_raft(struct raft_uv_transport *t, struct raft *r)
{
	((struct rp_tp *)t->impl)->raft = r;
}

void rp_transport_set_join_peers(struct raft_uv_transport *t, const struct rp_transport_peer *p,
				 unsigned n)
{
	struct rp_tp *tp = t->impl;
	if (n > sizeof tp->join / sizeof tp->join[0])
		n = sizeof tp->join / sizeof tp->join[0];
	memcpy(tp->join, p, n * sizeof *p);
	tp->n_join = n;
}

const struct rp_transport_stats *rp_transport_stats(struct raft_uv_transport *t)
{
	return &((struct rp_tp *)t->impl)->stats;
}
