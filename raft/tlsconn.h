/* One TLS connection driven through memory (OpenSSL memory BIOs): the
 * caller moves ciphertext between it and a socket, plaintext between it and
 * whatever reads or writes the stream. No libuv, no libraft: the raft
 * transport (transport.c, relay.c) is its only user today.
 *
 *   socket --feed--> [in BIO] --SSL--> read --> plaintext
 *   plaintext --write--> SSL --> [out BIO] --take--> socket
 *
 * Invariants
 *
 * 1. Ciphertext waiting to be decrypted is at most RP_TLSCONN_MAX_IN bytes:
 *    rp_tlsconn_room() says how much the caller may read from the socket,
 *    rp_tlsconn_feed() refuses more (the caller drops the connection).
 * 2. Ciphertext produced and not yet taken is at most RP_TLSCONN_MAX_OUT
 *    bytes: rp_tlsconn_write() refuses to encrypt beyond it. The caller
 *    takes it after every call and bounds its own socket queue.
 * 3. A failed handshake is classified and counted once in its struct
 *    rp_tls (rp_tls_handshake_failed: verification errors by net/tls.c's
 *    verify callback, the others then).
 * 4. Each connection holds a reference to the SSL_CTX that was current when
 *    it was created: a reload (rp_tls_reload) applies to new connections
 *    only. No session tickets and no resumption: every connection verifies
 *    the peer's certificate in full.
 */
#ifndef RP_TLSCONN_H
#define RP_TLSCONN_H

#include <stddef.h>
#include <sys/types.h>

#include "tls.h"

#define RP_TLSCONN_MAX_IN (128u << 10)  /* ciphertext fed, not yet decrypted */
#define RP_TLSCONN_MAX_OUT (256u << 10) /* ciphertext produced, not yet taken */

struct rp_tlsconn;

/** A connection on @tls's current context, as @role. NULL when out of memory. */
struct rp_tlsconn *rp_tlsconn_create(struct rp_tls *tls, enum rp_tls_role role);
void rp_tlsconn_destroy(struct rp_tlsconn *t);

/** How many ciphertext bytes may be fed now (0: the caller must stop reading). */
size_t rp_tlsconn_room(const struct rp_tlsconn *t);

/** Ciphertext fed and not yet decrypted (at most RP_TLSCONN_MAX_IN). */
size_t rp_tlsconn_buffered(const struct rp_tlsconn *t);

/** Hand over @n ciphertext bytes read from the socket (copied). 0, or -1
 * when they exceed rp_tlsconn_room(). */
int rp_tlsconn_feed(struct rp_tlsconn *t, const void *p, size_t n);

/**
 * Advance the handshake with what was fed: 1 complete (the peer's
 * certificate verified, if the context asks for one), 0 more input needed,
 * -1 failed (rp_tlsconn_failure() says why; counted). Take the output
 * after every call, also after a failure (it may hold an alert).
 */
int rp_tlsconn_handshake(struct rp_tlsconn *t);

/** 1 once rp_tlsconn_handshake() returned 1. */
int rp_tlsconn_established(const struct rp_tlsconn *t);

/**
 * Decrypt into @buf (after the handshake): > 0 bytes, 0 nothing more until
 * more is fed, -1 the connection is broken (a protocol error, or the peer
 * closed it with close_notify).
 */
ssize_t rp_tlsconn_read(struct rp_tlsconn *t, void *buf, size_t cap);

/** Encrypt @n bytes (after the handshake): 0, or -1 (broken, or more than
 * RP_TLSCONN_MAX_OUT would wait to be taken). */
int rp_tlsconn_write(struct rp_tlsconn *t, const void *p, size_t n);

/** Ciphertext waiting to be sent. */
size_t rp_tlsconn_pending(const struct rp_tlsconn *t);

/** Move up to @cap bytes of it into @buf; returns how many. */
size_t rp_tlsconn_take(struct rp_tlsconn *t, void *buf, size_t cap);

/** Why the handshake failed (after rp_tlsconn_handshake() returned -1). */
enum rp_tls_fail rp_tlsconn_failure(const struct rp_tlsconn *t);

/** The identity the peer's verified certificate names in trust domain @td. */
void rp_tlsconn_peer(struct rp_tlsconn *t, const char *td, struct rp_peer_id *out);

/** The context's owner, for counting what the caller refuses (rp_tls_count). */
struct rp_tls *rp_tlsconn_tls(const struct rp_tlsconn *t);

#endif
