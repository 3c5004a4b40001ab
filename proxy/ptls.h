/* TLS of raftplane-proxy and raftplane-subscriber towards the servers: the
 * flags, the secure-by-default rule, the client context, SIGHUP reload.
 *
 * With --tls-cert/--tls-key/--tls-ca every subscription request is HTTPS:
 * our node certificate (spiffe://TD/node/NODE-ID) as the client
 * certificate, the server's chain verified against --tls-ca and its
 * certificate required to name a raftplane server of the trust domain.
 * Without them every --servers address must be loopback, and so must the
 * proxy's --admin (which is always plain HTTP), unless --insecure. The
 * proxy's traffic listeners serve what the mesh configuration says (plain
 * HTTP/1.1); TLS towards clients and backends is not ours here. */
#ifndef RP_PROXY_TLS_H
#define RP_PROXY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "client.h"
#include "sighup.h"
#include "tls.h"

struct rp_proxy_tls {
	const char *cert, *key, *ca, *trust_domain;
	int insecure;
	struct rp_tls *tls;      /* RP_TLS_CLIENT, NULL: plain */
	struct rp_http_tls http; /* what the subscription client uses */
	char last_reload_error[320];
	struct rp_sighup sighup; /* SIGHUP: reload */
};

/* The --help lines of these flags. */
extern const char rp_proxy_tls_usage[];

/**
 * If argv[*i] is one of our flags, consume it (and its value, advancing *i)
 * and return 1; 0 when it is not ours; -1 with a reason in @err.
 */
int rp_proxy_tls_flag(struct rp_proxy_tls *t, int argc, char **argv, int *i, char *err,
		      size_t errlen);

/**
 * The flags together and the addresses: @servers (comma-separated) and
 * @admin (NULL for the subscriber) must be loopback without TLS (@admin
 * always: it is plain HTTP), unless --insecure. 0 or -1 with one line in @err.
 */
int rp_proxy_tls_check(struct rp_proxy_tls *t, const char *servers, const char *admin, char *err,
		       size_t errlen);

/**
 * Make the context (no-op without TLS); warn (not fail) when our certificate
 * does not name @node_id (NULL: skip; the servers will refuse it with 403).
 * 0, or -1 with the reason in @err.
 */
int rp_proxy_tls_load(struct rp_proxy_tls *t, const char *node_id, char *err, size_t errlen);

/** The configuration for rp_http_request_tls(), or NULL without TLS. */
const struct rp_http_tls *rp_proxy_tls_http(const struct rp_proxy_tls *t);

/** Re-read the files now: 0, or -1 (logged, last_reload_error set, old context kept). */
int rp_proxy_tls_reload(struct rp_proxy_tls *t);

/** Reload on SIGHUP (when TLS is on). */
void rp_proxy_tls_watch(struct rp_proxy_tls *t, uv_loop_t *loop);

/** Stop watching and free the context (connections keep theirs). */
void rp_proxy_tls_close(struct rp_proxy_tls *t);

#endif
