/* raftplane's raft_uv_transport: our handshake, peer admission and a relay
 * that inspects every inbound raft message before libraft sees it. */
#ifndef RP_TRANSPORT_H
#define RP_TRANSPORT_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "peeraddr.h"
#include "tls.h"
#include "transport_wire.h"

/* libraft's types, only by pointer: api/ and server/ use this header
 * without <raft.h>. */
struct raft;
struct raft_uv_transport;

/** Metric label of each reason, e.g. "not_member". */
extern const char *const rp_refuse_reason_names[RP_REFUSE__N];
extern const char *const rp_drop_reason_names[RP_DROP__N];

struct rp_transport_stats {
	uint64_t accepted;                /* inbound handshakes accepted */
	uint64_t refused[RP_REFUSE__N];   /* inbound connections refused */
	uint64_t dropped[RP_DROP__N];     /* inbound messages dropped (conn closed) */
	uint64_t pending;                 /* gauge: unauthenticated inbound now */
	uint64_t relayed_in, relayed_out; /* connections relayed now (gauges) */
	/* TLS failures by reason (rp_tls_fail_names): inbound ones are refusals
	 * (reason tls or wrong_identity), outbound ones our connections to a
	 * peer whose certificate failed or named another server */
	uint64_t tls_in[RP_TLS_FAIL__N], tls_out[RP_TLS_FAIL__N];
};

struct rp_transport_config {
	unsigned handshake_timeout_ms; /* connect + handshake deadline, both ways */
	unsigned max_pending;          /* unauthenticated inbound connections at once */
	int relay_outbound;            /* copy outbound bytes too (implied by TLS);
					* else libraft writes to the TCP socket itself */
	/* Mutual TLS on every raft connection, both set or both NULL (plain):
	 * tls_in (server role, peer certificate required) for inbound
	 * connections, tls_out (client role, our certificate) for outbound
	 * ones. Borrowed: they must outlive the transport; a reload
	 * (rp_tls_reload) applies to connections made after it. */
	struct rp_tls *tls_in, *tls_out;
	const char *trust_domain; /* of the peers' identities (copied); NULL: "raftplane" */
};

/**
 * Fill @t with our implementation. The raft id and address come later from
 * raft_uv_init() through t->init. Returns 0, RAFT_NOMEM, or RAFT_INVALID
 * (only one of the TLS contexts, or a bad trust domain).
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

#endif
