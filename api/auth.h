/* API tokens: the token string, who a request is (authentication), what
 * its role allows (authorization), the writes-per-token limit, the first
 * admin token from --bootstrap-token-file, and their counters (auth.c).
 *
 * A token string is "rpt_" followed by the unpadded base64url encoding
 * (RFC 4648 section 5) of its 32-byte secret: 47 characters. The
 * replicated state holds only SHA-256(secret) (storage/store.h).
 *
 * Invariants
 * 1. Enforcement is on when this server was started with
 *    --bootstrap-token-file, or the replicated state has had tokens
 *    (rp_store_tokens_enabled), or this node's data dir holds the marker
 *    file written when it first saw that: a cluster with tokens is never
 *    open on a member, a restart included. It is never switched off.
 * 2. The token index (hash -> name, role) is rebuilt from the store
 *    whenever rp_store_tokens_gen() moved: a revocation applied on this
 *    node refuses the token from the next request on.
 * 3. A refused request is answered 401 (one message for a missing,
 *    malformed or unknown token, with WWW-Authenticate: Bearer) or 403;
 *    nothing of it runs. */
#ifndef RP_API_AUTH_H
#define RP_API_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

#define RP_TOKEN_PREFIX "rpt_"
#define RP_TOKEN_SECRET_LEN 32
#define RP_TOKEN_STRLEN 47 /* "rpt_" + 43 base64url characters */

/** Decode token string @s (@len bytes) into its secret: 0, or -1 when it
 * is not exactly a token string (prefix, length, alphabet, canonical last
 * character). Pure. */
int rp_token_parse(const char *s, size_t len, unsigned char secret[RP_TOKEN_SECRET_LEN]);
/** The token string of @secret (NUL-terminated). */
void rp_token_format(const unsigned char secret[RP_TOKEN_SECRET_LEN],
		     char out[RP_TOKEN_STRLEN + 1]);
/** SHA-256 of @secret. */
void rp_token_hash(const unsigned char secret[RP_TOKEN_SECRET_LEN],
		   unsigned char hash[RP_TOKEN_HASH_LEN]);
/** Read a token file (--bootstrap-token-file): a regular file, not
 * accessible to group or others, holding one token string (a final
 * newline allowed). 0 with @token (the string) and @hash set, or -1 with
 * one line in @err saying what is wrong. */
int rp_token_file_load(const char *path, char token[RP_TOKEN_STRLEN + 1],
		       unsigned char hash[RP_TOKEN_HASH_LEN], char *err, size_t errlen);

/** "read", "write", "admin" ("none" for RP_TOKEN_NONE). */
const char *rp_token_role_name(int role);
/** The role named @s, or -1. */
int rp_token_role_parse(const char *s);

/** Set up api->auth from api->opts (after they are set). RP_OK or
 * RP_ERR_NOMEM. */
int rp_auth_init(struct rp_api *api);
/** Stop the bootstrap timer. api->auth stays valid (requests still
 * arriving during shutdown, late proposal callbacks): it lives as long as
 * the process. */
void rp_auth_close(struct rp_api *api);

/** Whether tokens are required on this node now (invariant 1). */
int rp_auth_enforced(struct rp_api *api);

/** Authenticate @c and check that its role reaches @need (enum
 * rp_token_role; RP_TOKEN_NONE: an open endpoint). Sets c->actor. 0 when
 * the request may run; -1 when it was answered 401 or 403. */
int rp_auth_check(struct rp_call *c, int need);

/** Count one write of @c against its token's bucket (the client's IP when
 * tokens are off and the limit was given explicitly); a write forwarded by
 * a member was counted where it arrived. 0, or -1 when it was answered 429 with Retry-After. */
int rp_auth_limit_write(struct rp_call *c);

struct rp_auth_stats {
	uint64_t unauthenticated;   /* 401 answers */
	uint64_t permission_denied; /* 403 answers */
	uint64_t rate_limited;      /* 429 answers */
};
const struct rp_auth_stats *rp_auth_stats(struct rp_api *api);
/** Tokens in the replicated state (as this node applied it). */
size_t rp_auth_token_count(struct rp_api *api);

#endif
