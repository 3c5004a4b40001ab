/* raftplane-server's TLS settings: the flags, the secure-by-default rule,
 * the three contexts made from them, and their reload on SIGHUP.
 *
 *   api    server side of the admin API and /v1/subscribe: our certificate;
 *          client certificates are asked for and, when given, must verify
 *          against --tls-client-ca (operators may come with a token only)
 *   peer   server side of the raft port: our certificate; the peer must
 *          present one that verifies against --tls-peer-ca
 *   client our side of connections to other servers (raft outbound, leader
 *          forwarding, join, fleet fan-out): our certificate as the client
 *          certificate; the server must verify against --tls-peer-ca
 *
 * With no --tls-cert every context is NULL and everything is plain; that is
 * refused on a non-loopback address unless --insecure is given. */
#ifndef RP_SERVER_SECURITY_H
#define RP_SERVER_SECURITY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sighup.h"
#include "tls.h"

struct rp_server_tls {
	const char *cert, *key, *client_ca, *peer_ca; /* peer_ca defaults to client_ca */
	const char *trust_domain;                     /* default RP_TLS_DEFAULT_TRUST_DOMAIN */
	int insecure;                                 /* --insecure */
	uint64_t self_id; /* our raft id: our certificate must name spiffe://TD/server/ID */
	struct rp_tls *api, *peer, *client; /* all NULL when TLS is off */
	struct rp_sighup sighup;            /* SIGHUP: reload */
};

/* The --help lines of these flags. */
extern const char rp_server_tls_usage[];

/**
 * If argv[*i] is one of our flags, consume it (and its value, advancing *i)
 * and return 1; 0 when it is not ours; -1 with a reason in @err on a
 * missing value.
 */
int rp_server_tls_flag(struct rp_server_tls *s, int argc, char **argv, int *i, char *err,
		       size_t errlen);

/**
 * Check the flags together and against the addresses this server will use
 * (@addrs, @n of them, "IP:PORT": --raft, --http, --join, the bootstrap
 * peers): TLS needs cert, key and a CA; without TLS every address must be
 * loopback unless --insecure. Returns 0 or -1 with one clear line in @err.
 */
int rp_server_tls_check(struct rp_server_tls *s, const char *const *addrs, size_t n, char *err,
			size_t errlen);

/** Make the contexts (no-op without TLS). 0, or -1 with the reason in @err. */
int rp_server_tls_load(struct rp_server_tls *s, char *err, size_t errlen);

/** Re-read every file on SIGHUP (started when TLS is on); a bad file keeps the old contexts. */
void rp_server_tls_watch(struct rp_server_tls *s, uv_loop_t *loop);

/** Re-read now: 0, or -1 (logged; every context kept as it was). */
int rp_server_tls_reload(struct rp_server_tls *s);

/** Stop the signal watch and free the contexts (connections keep theirs). */
void rp_server_tls_close(struct rp_server_tls *s);

#endif
