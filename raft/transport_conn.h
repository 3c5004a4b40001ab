/* Private to the transport: one raft TCP connection and its relay. */
#ifndef RP_TRANSPORT_CONN_H
#define RP_TRANSPORT_CONN_H

#include <netinet/in.h>
#include <raft.h>
#include <raft/uv.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "transport_wire.h"

#define RP_CHUNK 65536                      /* relay read size */
#define RP_RELAY_HIGH (4u << 20)            /* stop reading when the other side queues more */
#define RP_HOLD_MAX (16 + 48 + RP_MAX_CONF) /* preamble + InstallSnapshot header */
/* TLS: what may wait in the kernel's direction that carries only TLS
 * records of our own (alerts, key updates: inbound connections), and in the
 * direction that carries raft data (outbound: reads pause above
 * RP_RELAY_HIGH, so this is only reached by a peer that never reads). Above
 * it the connection is dropped. */
#define RP_TLS_CTRL_MAX (64u << 10)
/* TLS ciphertext an unauthenticated connection may have fed and not yet
 * consumed: its handshake flights (certificate chains included) fit, and
 * the raft bytes that follow our handshake are only read once it is done. */
#define RP_TLS_HS_MAX_IN (32u << 10)
#define RP_TLS_DATA_MAX (RP_RELAY_HIGH + 4 * RP_CHUNK)

struct rp_tp;
struct rp_tlsconn;

enum conn_kind {
	CONN_IN,
	CONN_OUT
};
enum conn_state {
	CONN_HANDSHAKE,
	CONN_RELAY,
	CONN_CLOSING
};

/* Inbound message parser phases (canonical/raft 0.15 uv encoding: u64 type,
 * u64 header length, header, payload). Bytes are held only while the parser
 * needs them to decide; everything else is streamed through after being
 * looked at. */
enum msg_phase {
	MSG_HOLD,
	MSG_DESC,
	MSG_SKIP
};

struct msg_parser {
	enum msg_phase phase;
	int stage;           /* MSG_HOLD: 0 preamble, 1 fixed header, 2 rest of InstallSnapshot */
	unsigned char *hold; /* RP_HOLD_MAX bytes, malloc'd on authentication */
	size_t have, need;   /* in hold */
	uint64_t type, hlen;
	uint64_t desc_left; /* AppendEntries entry descriptors still to see */
	unsigned char desc[16];
	size_t desc_have;
	uint64_t payload;  /* sum of entry lengths seen so far */
	uint64_t skip;     /* bytes to stream without looking */
	uint64_t slack;    /* header bytes after the descriptors */
	int hold_in_chunk; /* what is held is also in the current read chunk... */
	size_t hold_start; /* ...from this offset */
	char *pend;        /* checked bytes of the current chunk not yet forwarded */
	size_t pend_len;
};

struct chunk {
	unsigned refs;
	char data[RP_CHUNK];
};

struct rp_conn {
	struct rp_tp *tp;
	enum conn_kind kind;
	enum conn_state state;
	uv_tcp_t *tcp;  /* raft_malloc'd: libraft owns it when handed over unrelayed */
	uv_pipe_t pipe; /* our end of the socketpair; libraft has the other */
	uv_timer_t timer;
	int open_handles; /* freed when it drops to 0 */
	int pipe_inited, reading_paused;
	uint64_t id;      /* the peer's raft id */
	char peer_ip[64]; /* inbound: source IP, for logs */
	struct sockaddr_storage peer;
	unsigned char hs[RP_HS_FIXED + RP_HS_MAX_ADDR];
	size_t hs_have, hs_need;
	struct msg_parser mp;
	struct chunk *spare; /* read buffer, reused when nobody else holds it */
	/* TLS (NULL without): the peer's TCP bytes are its records */
	struct rp_tlsconn *tls;
	uint64_t cert_id; /* inbound: the server id the peer's certificate names */
	/* outbound */
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	uv_connect_t connect;
	uv_write_t hs_write;
	char addr[64];
	struct rp_conn *prev, *next;
};

/* transport.c */
int rp_tp_admit(struct rp_tp *tp, uint64_t id, const struct sockaddr *peer,
		enum rp_refuse_reason *why, char *addr, size_t addrlen);
void rp_tp_count_drop(struct rp_tp *tp, struct rp_conn *c, enum rp_drop_reason r,
		      const char *detail);
struct raft *rp_tp_raft(struct rp_tp *tp);
void rp_conn_close(struct rp_conn *c);

/* relay.c: both directions once the handshake is done. */
int rp_relay_start(struct rp_conn *c, uv_stream_t **libraft_end);
/* After rp_relay_start() and the hand-over to libraft: relay what the TLS
 * engine already holds (it came with the handshake's last read). */
void rp_relay_kick(struct rp_conn *c);
void rp_relay_release(struct rp_conn *c);
/* Send the TLS engine's output on the TCP socket; -1 (close the
 * connection) on error or when the socket's queue is over its cap. */
int rp_relay_tls_flush(struct rp_conn *c);

#endif
