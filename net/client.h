/* A small HTTP/1.1 client on libuv with keep-alive connection reuse, numeric
 * addresses only. Used to forward requests to the leader, to join, to fan
 * out fleet queries and by subscribers. A loop's requests must all be made
 * from the thread that runs it. */
#ifndef RP_CLIENT_H
#define RP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tls.h"

#define RP_CLIENT_MAX_RESPONSE (256 * 1024 * 1024)
#define RP_CLIENT_MAX_HEAD 65536 /* status line and headers of an answer */

struct rp_http_req;

struct rp_http_response {
	int status;
	const char *content_type; /* "" when absent; all borrowed during the cb */
	const char *etag;
	const char *retry_after;
	const char *body;
	size_t body_len;
	const char *head; /* the status line and header lines, each ending in CRLF */
	size_t head_len;
};

/* The client's own error codes (no raftplane API meaning: a caller maps
 * them where they enter its code, e.g. api/leader.c). The failures of a
 * started request say how far it got: CONNECT means the request bytes
 * cannot have reached a server; after that the outcome is unknown. */
enum rp_http_err {
	RP_HTTP_OK = 0,
	RP_HTTP_ERR_INVALID,      /* bad address, or a target with a control byte: not started */
	RP_HTTP_ERR_NOMEM,        /* out of memory: not started */
	RP_HTTP_ERR_CONNECT,      /* connect failed or timed out: nothing was sent */
	RP_HTTP_ERR_LINK,         /* sent, then the connection failed or closed early */
	RP_HTTP_ERR_TIMEOUT,      /* sent, no complete answer within the timeout */
	RP_HTTP_ERR_BAD_RESPONSE, /* sent, the answer was malformed or over the size limit */
	RP_HTTP_ERR_TLS,          /* TLS handshake failed, the server's identity is not the one
				     required, or the server refused our certificate: nothing was
				     processed (rp_http_tls_error() says why) */
};

/** 1 when a request that failed with @err may have reached the server. */
static inline int rp_http_err_sent(int err)
{
	return err == RP_HTTP_ERR_LINK || err == RP_HTTP_ERR_TIMEOUT ||
	       err == RP_HTTP_ERR_BAD_RESPONSE;
}

/**
 * Copy the value of the first header @name (case-insensitive) of @res into
 * @out (@outlen > 0, truncated to fit, NUL-terminated; "" when absent).
 * Returns 1 when the header is present, else 0.
 */
int rp_http_header(const struct rp_http_response *res, const char *name, char *out, size_t outlen);

/** A short lowercase description of @err ("connect failed", ...). */
const char *rp_http_strerror(int err);

/*
 * @err is RP_HTTP_OK with @res filled on a complete response. Otherwise @res
 * is NULL and @err is one of RP_HTTP_ERR_CONNECT, _LINK, _TIMEOUT or
 * _BAD_RESPONSE.
 */
typedef void (*rp_http_cb)(void *arg, int err, const struct rp_http_response *res);

/**
 * Start @method @target on @hostport ("1.2.3.4:80" or "[::1]:80").
 * @headers is preformatted ("Name: value\r\n"...), may be "". @body is copied.
 * The callback runs exactly once unless rp_http_cancel() is called first.
 * Returns RP_HTTP_OK, or (callback not called) RP_HTTP_ERR_INVALID for a bad
 * address or a @target holding a control byte, space or DEL,
 * RP_HTTP_ERR_NOMEM, or RP_HTTP_ERR_CONNECT when the connect could not start.
 */
int rp_http_request(uv_loop_t *loop, const char *hostport, const char *method, const char *target,
		    const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
		    rp_http_cb cb, void *arg, struct rp_http_req **out);

/* HTTPS (docs/security.md). Every request made with a configuration is
 * TLS: the server's chain must verify against the context's CA file, and
 * its certificate must name an identity of @kind (RP_PEER_SERVER: a
 * raftplane server) in @trust_domain; when @expect gives a server id for
 * the address dialled, exactly that one. Otherwise the request fails with
 * RP_HTTP_ERR_TLS (counted in @tls by reason: net/tls.h) before a byte of
 * it is sent. Connections are reused only for requests of the same
 * context and, when an id is expected, the same verified server id. The
 * context is read at each new connection (a reload applies to new ones).
 * TLS 1.3: a server that refuses our certificate does so after our side
 * of the handshake ended; an alert before any byte of the answer is
 * RP_HTTP_ERR_TLS too (a server never processes data of a connection whose
 * handshake it failed). */
struct rp_http_tls {
	struct rp_tls *tls;       /* RP_TLS_CLIENT context, borrowed; NULL: plain HTTP */
	const char *trust_domain; /* NULL: RP_TLS_DEFAULT_TRUST_DOMAIN; must outlive requests */
	enum rp_peer_kind kind;   /* the identity required of the server */
	/* optional: the server id expected at @hostport, 0 for any of @kind */
	uint64_t (*expect)(void *arg, const char *hostport);
	void *expect_arg;
	int log; /* log each RP_HTTP_ERR_TLS reason (at most one line a second) */
};

/**
 * Make every rp_http_request() on @loop (from this thread) use @cfg
 * (copied; NULL: plain again). Requests of other loops are not affected.
 */
void rp_http_set_tls(uv_loop_t *loop, const struct rp_http_tls *cfg);

/** rp_http_request() with @tls (NULL or tls->tls NULL: plain HTTP) instead
 *  of the loop's configuration; @tls must outlive the request. */
int rp_http_request_tls(const struct rp_http_tls *tls, uv_loop_t *loop, const char *hostport,
			const char *method, const char *target, const char *headers,
			const void *body, size_t body_len, unsigned timeout_ms, rp_http_cb cb,
			void *arg, struct rp_http_req **out);

/** Why this thread's last request failed with RP_HTTP_ERR_TLS ("" before). */
const char *rp_http_tls_error(void);

/** Why this thread's last failed request failed, in words: what arrived and
 *  what was wrong ("Content-Length 9 over the limit of 8 bytes", "no answer
 *  within 35000 ms", ...); rp_http_strerror() of its code when nothing more
 *  is known. Valid in the callback of the failure and until the next one. */
const char *rp_http_last_error(void);

/** Limit the body of @r's answer to @max bytes (0 or above
 *  RP_CLIENT_MAX_RESPONSE: that), before its callback ran. A larger answer
 *  fails with RP_HTTP_ERR_BAD_RESPONSE before more than @max bytes of it are
 *  buffered (at once for a Content-Length above @max). */
void rp_http_set_max_body(struct rp_http_req *r, size_t max);

/** Abandon @r: its callback will not run; memory is released asynchronously. */
void rp_http_cancel(struct rp_http_req *r);

/** Parse "host:port" / "[v6]:port" into @sa. 0 on success. */
int rp_parse_hostport(const char *hostport, struct sockaddr_storage *sa);

/** 1 when @hostport parses and its IP is loopback (127.0.0.0/8, ::1,
 *  ::ffff:127.0.0.0/104): the only addresses served in plain text by default. */
int rp_hostport_loopback(const char *hostport);

#endif
