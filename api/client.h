/* A small HTTP/1.1 client on libuv with keep-alive connection reuse, numeric
 * addresses only. Used to forward requests to the leader, to join, to fan
 * out fleet queries and by subscribers. A loop's requests must all be made
 * from the thread that runs it. */
#ifndef RP_CLIENT_H
#define RP_CLIENT_H

#include <stddef.h>
#include <uv.h>

#include "raftplane/err.h"

#define RP_CLIENT_MAX_RESPONSE (256 * 1024 * 1024)

struct rp_http_req;

struct rp_http_response {
	int status;
	const char *content_type; /* "" when absent; all borrowed during the cb */
	const char *etag;
	const char *retry_after;
	const char *body;
	size_t body_len;
};

/* The two failures of a request, by how far it got (aliases of the
 * raftplane error codes the API hands on: a forward to the leader that was
 * never sent is "no leader", one that was sent has an unknown outcome). */
#define RP_HTTP_ERR_NOT_SENT RP_ERR_NO_LEADER    /* bad address, connect refused */
#define RP_HTTP_ERR_SENT RP_ERR_UNKNOWN_OUTCOME  /* sent, then failed, timed out, malformed */

/*
 * @err is 0 with @res filled on a complete response. Otherwise @res is NULL
 * and @err says how far the request got:
 *   RP_HTTP_ERR_NOT_SENT   nothing was sent (bad address, connect refused)
 *   RP_HTTP_ERR_SENT       sent, then the link failed, timed out or the
 *                          answer was malformed
 */
typedef void (*rp_http_cb)(void *arg, int err, const struct rp_http_response *res);

/**
 * Start @method @target on @hostport ("1.2.3.4:80" or "[::1]:80").
 * @headers is preformatted ("Name: value\r\n"...), may be "". @body is copied.
 * The callback runs exactly once unless rp_http_cancel() is called first.
 * Returns 0, or RP_ERR_INVALID for a bad address or a @target holding a
 * control byte, space or DEL (callback not called).
 */
int rp_http_request(uv_loop_t *loop, const char *hostport, const char *method, const char *target,
		    const char *headers, const void *body, size_t body_len, unsigned timeout_ms,
		    rp_http_cb cb, void *arg, struct rp_http_req **out);

/** Abandon @r: its callback will not run; memory is released asynchronously. */
void rp_http_cancel(struct rp_http_req *r);

/** Parse "host:port" / "[v6]:port" into @sa. 0 on success. */
int rp_parse_hostport(const char *hostport, struct sockaddr_storage *sa);

#endif
