/* raftplane's raft_uv_transport: our handshake, peer admission and a relay
 * that inspects every inbound raft message before libraft sees it. */
#ifndef RP_TRANSPORT_H
#define RP_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

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
	RP_REFUSE_PENDING_LIMIT, /* too many unauthenticated connections */
	RP_REFUSE_TIMEOUT,       /* handshake not complete in time */
	RP_REFUSE_BAD_HANDSHAKE, /* wrong magic/version/flags/length/id */
	RP_REFUSE_NOT_MEMBER,    /* id not in the configuration (nor a join peer) */
	RP_REFUSE_WRONG_ADDRESS, /* source IP is not the member's raft host */
	RP_REFUSE__N
};

enum rp_drop_reason {
	RP_DROP_MALFORMED,   /* unknown type, bad lengths, over a bound */
	RP_DROP_TERM,        /* absurd term */
	RP_DROP_TIMEOUT_NOW, /* TimeoutNow not from our leader in our term */
	RP_DROP_NOT_MEMBER,  /* sender left the configuration */
	RP_DROP__N
};

extern const char *const rp_refuse_reason_names[RP_REFUSE__N];
extern const char *const rp_drop_reason_names[RP_DROP__N];

struct rp_transport_stats {
	uint64_t accepted;                   /* inbound handshakes accepted */
	uint64_t refused[RP_REFUSE__N];      /* inbound connections refused */
	uint64_t dropped[RP_DROP__N];        /* inbound messages dropped (conn closed) */
	uint64_t pending;                    /* gauge: unauthenticated inbound now */
	uint64_t relayed_in, relayed_out;    /* connections relayed now (gauges) */
};

struct rp_transport_config {
	unsigned handshake_timeout_ms; /* connect + handshake deadline, both ways */
	unsigned max_pending;          /* unauthenticated inbound connections at once */
	int relay_outbound;            /* copy outbound bytes too (the mutual TLS path);
					* else libraft writes to the TCP socket itself */
};

/* A peer a joining node accepts before it has a configuration of its own. */
struct rp_transport_peer {
	uint64_t id;
	char raft[64];
};

/**
 * Fill @t with our implementation. The raft id and address come later from
 * raft_uv_init() through t->init. Returns 0 or RAFT_NOMEM.
 */
int rp_transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
		      const struct rp_transport_config *cfg);

/** Free what rp_transport_init() allocated; only after t->close's callback
 * fired (or when listen was never called). */
void rp_transport_close(struct raft_uv_transport *t);

/** The raft instance whose configuration, term and leader decide admission
 * and drops. Must be set before raft_start(). Not owned. */
void rp_transport_set_raft(struct raft_uv_transport *t, struct raft *r);

/** Load and keep, in @dir/raft-peers, the peers admitted besides the
 * current configuration (see peers.h). Call before raft_start(). */
void rp_transport_set_data_dir(struct raft_uv_transport *t, uint64_t id, const char *dir);

/** Stop admitting @id unless the configuration names it: its removal
 * committed (the node applied the deletion of its member row). */
void rp_transport_forget_peer(struct raft_uv_transport *t, uint64_t id);

/** Replace the join peers (copied). Used only while the configuration is
 * empty, i.e. until a node that joins has received one. */
void rp_transport_set_join_peers(struct raft_uv_transport *t, const struct rp_transport_peer *p,
				 unsigned n);

const struct rp_transport_stats *rp_transport_stats(struct raft_uv_transport *t);

/** Parse "IPv4:PORT" or "[IPv6]:PORT". Returns 0 or -1. */
int rp_transport_parse_addr(const char *s, struct sockaddr_storage *sa);

#endif
