/* TLS contexts made from PEM files, reloadable in place, and the raftplane
 * identity a peer certificate carries. Shared by the server's API listener,
 * the HTTP client (net/client.c), the raft transport and the proxy.
 *
 * Identities (docs/security.md):
 *   spiffe://<trust-domain>/node/<node-id>   a proxy (node id as in
 *                                            SubscribeRequest.node_id)
 *   spiffe://<trust-domain>/server/<raft-id> a raftplane server
 * A certificate without a URI SAN of our trust domain falls back to its
 * subject CN, taken as a proxy node id. A URI SAN of our trust domain that
 * is malformed, or two that disagree, make the certificate name no
 * identity (RP_PEER_OTHER): an explicit identity is never reinterpreted.
 *
 * Invariants
 * 1. rp_tls_ctx() always returns a complete context (certificate, key that
 *    matches it, CA store): rp_tls_reload() builds a new context aside and
 *    swaps it in only when every file loaded; otherwise the old one stays.
 * 2. Connections keep the context they started with (OpenSSL counts the
 *    references), so a reload never drops or changes an established
 *    connection.
 * 3. A handshake that completes with a peer certificate means the chain
 *    verified against the CA file (the verify callback fails the handshake
 *    on any error and counts the reason).
 *
 * Threads: one struct rp_tls belongs to one thread (its loop); the counters
 * are atomic so that another thread may read them. */
#ifndef RP_TLS_H
#define RP_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#define RP_TLS_DEFAULT_TRUST_DOMAIN "raftplane"
#define RP_TLS_MAX_TRUST_DOMAIN 255
#define RP_TLS_MAX_NODE_ID 128

enum rp_tls_role {
	RP_TLS_SERVER, /* accepts connections */
	RP_TLS_CLIENT, /* connects */
};

enum rp_tls_verify {
	RP_TLS_VERIFY_NONE,     /* server only: ask for no client certificate */
	RP_TLS_VERIFY_OPTIONAL, /* server only: ask; a certificate given must verify */
	RP_TLS_VERIFY_REQUIRE,  /* the peer must present a certificate that verifies */
};

/* Why a handshake or an identity check failed: the metric label names. */
enum rp_tls_fail {
	RP_TLS_FAIL_NO_CERT,       /* "no_cert": a certificate was required, none given */
	RP_TLS_FAIL_UNKNOWN_CA,    /* "unknown_ca": the chain does not lead to our CA */
	RP_TLS_FAIL_EXPIRED,       /* "expired" */
	RP_TLS_FAIL_NOT_YET_VALID, /* "not_yet_valid" */
	RP_TLS_FAIL_INVALID,       /* "invalid": any other verification error */
	RP_TLS_FAIL_IDENTITY,      /* "wrong_identity": verified, but not who it must be */
	RP_TLS_FAIL_HANDSHAKE,     /* "handshake": protocol error, plain text, timeout */
	RP_TLS_FAIL__N,
};
extern const char *const rp_tls_fail_names[RP_TLS_FAIL__N];

struct rp_tls_files {
	const char *cert; /* PEM chain, leaf first; NULL for a client without one */
	const char *key;  /* PEM private key of cert; NULL iff cert is NULL */
	const char *ca;   /* PEM CA bundle to verify peers; NULL: verify nothing (server only) */
};

struct rp_tls_stats {
	uint64_t failures[RP_TLS_FAIL__N];
	uint64_t reloads_ok;
	uint64_t reloads_failed;
};

struct rp_tls;

/**
 * Build a context from @files. A server needs cert and key; a client needs
 * ca (servers are always verified). @verify is the server's request for
 * client certificates (a client always uses RP_TLS_VERIFY_REQUIRE of the
 * server); anything but NONE needs ca. TLS 1.2 is the minimum.
 * Returns NULL with a one-line reason in @err (naming the file) on failure.
 * The file names are copied.
 */
struct rp_tls *rp_tls_create(enum rp_tls_role role, const struct rp_tls_files *files,
			     enum rp_tls_verify verify, char *err, size_t errlen);

/** The current context (borrowed; stays valid while a connection holds it). */
SSL_CTX *rp_tls_ctx(const struct rp_tls *t);

/**
 * Re-read the files into a new context and swap it in. Returns 0, or -1 with
 * the reason in @err and the old context still in use.
 */
int rp_tls_reload(struct rp_tls *t, char *err, size_t errlen);

/** Count a reload that the caller refused before calling rp_tls_reload()
 *  (e.g. a check of the new files failed). */
void rp_tls_reload_refused(struct rp_tls *t);

void rp_tls_destroy(struct rp_tls *t);

/** Count a failure that the caller detected (no certificate, wrong identity, handshake). */
void rp_tls_count(struct rp_tls *t, enum rp_tls_fail f);

/** A consistent-enough copy of the counters (each read atomically). */
void rp_tls_get_stats(const struct rp_tls *t, struct rp_tls_stats *out);

/**
 * After a failed handshake on @ssl (NULL when the caller could not reach it):
 * count the failure unless the verify callback already did, and return its
 * reason. Call it at once, before anything clears OpenSSL's error queue.
 */
enum rp_tls_fail rp_tls_handshake_failed(struct rp_tls *t, SSL *ssl);

/**
 * Server contexts: select the ALPN protocol @proto ("http/1.1") when the
 * client offers it, and negotiate none otherwise (the connection then speaks
 * what the listener speaks). Applies to the current context and to every
 * reload. @proto must outlive @t.
 */
void rp_tls_set_alpn(struct rp_tls *t, const char *proto);

/**
 * Server contexts: a client certificate that fails verification does not
 * fail the handshake; the failure is counted as usual, the connection names
 * no identity (rp_tls_peer_identity() gives NONE) and rp_tls_verify_error()
 * tells the caller, which must refuse the connection at its own layer (the
 * API answers 401 and closes: a client learns why, where a TLS 1.3 client
 * whose certificate is refused in the handshake only sees the connection
 * close after it sent its request). Applies to every reload.
 */
void rp_tls_set_soft_verify(struct rp_tls *t);

/** 1 with the reason in *@why when the verify callback saw an error on @ssl. */
int rp_tls_verify_error(SSL *ssl, enum rp_tls_fail *why);

/** The failure an X509_V_ERR_* verification error counts as. */
enum rp_tls_fail rp_tls_classify(long x509_err);

/**
 * After a failed handshake on @ssl: the reason (a verification error the
 * callback saw, a missing certificate, or a plain handshake failure).
 */
enum rp_tls_fail rp_tls_failure_of(SSL *ssl);

enum rp_peer_kind {
	RP_PEER_NONE,   /* no certificate */
	RP_PEER_NODE,   /* a proxy: node */
	RP_PEER_SERVER, /* a raftplane server: server */
	RP_PEER_OTHER,  /* a verified certificate naming no identity of ours */
};

struct rp_peer_id {
	enum rp_peer_kind kind;
	char node[RP_TLS_MAX_NODE_ID + 1]; /* RP_PEER_NODE */
	uint64_t server;                   /* RP_PEER_SERVER: raft id, 1..2^31 */
	char name[320];                    /* printable, for logs and the audit trail:
					      the URI, "CN=<cn>", or "" */
};

/** 1 when @td is a valid trust domain: [a-z0-9.-]{1,255}, not starting with '.' or '-'. */
int rp_tls_trust_domain_valid(const char *td);

/**
 * The identity @cert names in trust domain @td (rules at the top). @cert may
 * be NULL (RP_PEER_NONE). Never fails: a certificate it cannot read is OTHER.
 */
void rp_tls_cert_identity(X509 *cert, const char *td, struct rp_peer_id *out);

/**
 * The identity of the peer of a completed handshake on @ssl: NONE when it
 * sent no certificate or its verification did not succeed.
 */
void rp_tls_peer_identity(SSL *ssl, const char *td, struct rp_peer_id *out);

/** "node:<id>", "server:<id>", "other:<name>" or "none", for logs and errors. */
const char *rp_peer_id_str(const struct rp_peer_id *id, char *buf, size_t len);

#endif
