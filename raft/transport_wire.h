/* The raft transport's formats and limits: the handshake layout, the bounds
 * on inbound raft messages, and why a connection is refused or a message
 * dropped. */
#ifndef RP_RAFT_TRANSPORT_WIRE_H
#define RP_RAFT_TRANSPORT_WIRE_H

#include <stdint.h>

/* Handshake (sent by the connecting side, before any raft byte):
 *   [4] "RPRT"  [1] version (1)  [1] flags (0)  [2] address length, LE, 1..255
 *   [8] sender raft id, LE  [8] receiver raft id, LE  [n] sender address
 * Anything else closes the connection. See docs/design.md. */
#define RP_HS_MAGIC "RPRT"
#define RP_HS_VERSION 1
#define RP_HS_FIXED 24
#define RP_HS_MAX_ADDR 255

/* Bounds on inbound raft messages (canonical/raft 0.15 uv encoding). */
#define RP_TERM_MAX_JUMP (UINT64_C(1) << 32) /* above our current term */
#define RP_TERM_CEILING (UINT64_C(1) << 62)  /* absolute */
#define RP_MAX_ENTRIES (UINT64_C(1) << 25)   /* per AppendEntries */
#define RP_MAX_PAYLOAD (UINT64_C(2) << 30)   /* entries or snapshot data, bytes */
#define RP_MAX_CONF 16384                    /* encoded configuration, bytes */
#define RP_MAX_CONNS_PER_PEER 4              /* authenticated inbound per id */

enum rp_refuse_reason {
	RP_REFUSE_PENDING_LIMIT,  /* too many unauthenticated connections */
	RP_REFUSE_TIMEOUT,        /* handshake not complete in time */
	RP_REFUSE_BAD_HANDSHAKE,  /* wrong magic/version/flags/length/id */
	RP_REFUSE_NOT_MEMBER,     /* id not in the configuration (nor a join peer) */
	RP_REFUSE_WRONG_ADDRESS,  /* source IP is not the member's raft host */
	RP_REFUSE_TLS,            /* TLS handshake failed (certificate, protocol) */
	RP_REFUSE_WRONG_IDENTITY, /* the certificate does not name the sender id */
	RP_REFUSE__N
};

enum rp_drop_reason {
	RP_DROP_MALFORMED,   /* unknown type, bad lengths, over a bound */
	RP_DROP_TERM,        /* absurd term */
	RP_DROP_TIMEOUT_NOW, /* TimeoutNow not from our leader in our term */
	RP_DROP_NOT_MEMBER,  /* sender left the configuration */
	RP_DROP__N
};

#endif
