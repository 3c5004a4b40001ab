/* HTTP request checks h2o 2.2.5 does not make, shared by every h2o server of
 * raftplane (the proxy's data plane, the REST API), and the safe request
 * target the proxy forwards.
 *
 * What h2o 2.2.5 does with an HTTP/1 request head (lib/http1.c, verified
 * against the running binaries): Content-Length, Transfer-Encoding, Host,
 * Expect and Upgrade never reach req->headers. Of several Content-Length
 * headers the first is used; Transfer-Encoding overrides Content-Length; of
 * several Host headers the last wins; a missing Host becomes the host
 * configuration's name ("default"); obs-fold continuation lines become
 * headers with an empty name; absolute-form targets are kept as the path.
 * Header values never hold CR, LF or NUL (picohttpparser refuses them).
 * So the checks below re-read the raw head, which h2o keeps at the start of
 * the connection's input buffer until the response is done. */
#ifndef RP_NET_HTTPCHECK_H
#define RP_NET_HTTPCHECK_H

#include <h2o.h>

/* What the check learnt about the request. */
struct rp_http_head {
	int no_host; /* HTTP/1.0 without Host (allowed; the caller picks a host) */
};

/**
 * Check the framing and Host of @req as received (RFC 9112 6.1, 6.3, 3.2):
 * more than one Content-Length, more than one Transfer-Encoding, both
 * Transfer-Encoding and Content-Length, Transfer-Encoding in HTTP/1.0, no
 * Host in HTTP/1.1, more than one Host, a Host that is not a valid
 * uri-host[:port], an obs-fold line. HTTP/2 requests are h2o's (only the
 * authority is checked).
 * Returns NULL when the request may be served, else a short reason for a
 * 400; the caller must then also close the connection (set
 * req->http1_is_persistent = 0 before answering), since the rest of the
 * input cannot be trusted to start a request.
 */
const char *rp_http_check_request(h2o_req_t *req, struct rp_http_head *out);

/**
 * The HTTP/1 part of rp_http_check_request(): the same checks on the raw
 * request head in @buf (@len bytes, as received; what follows the head is
 * ignored). "request head not available" when no complete head parses.
 */
const char *rp_http_check_head(const char *buf, size_t len, struct rp_http_head *out);

/** The value of the hex digit @c, or -1. */
int rp_http_hexval(int c);

/** 1 when @s (@len bytes) is a valid Host value: uri-host [":" port]. */
int rp_http_valid_authority(const char *s, size_t len);

/** 1 when @s is a token (RFC 9110 5.6.2): a valid header name. */
int rp_http_is_token(const char *s, size_t len);

/* A request target split and made safe to forward. */
struct rp_http_target {
	h2o_iovec_t authority; /* absolute-form only, else {NULL, 0} */
	h2o_iovec_t path;      /* normalised, starts with '/' */
	h2o_iovec_t query;     /* "" or "?..." with unsafe bytes escaped */
};

/**
 * Parse @raw (origin-form "/p?q" or absolute-form "http://host/p?q") and
 * normalise its path in one pass, in @pool: %-escapes of unreserved
 * characters are decoded, all other escapes kept with uppercase hex (%2F
 * stays %2F), dot-segments removed (RFC 3986 5.2.4), and every byte not
 * allowed in a request target (controls, space, DEL, non-ASCII, and
 * "#<>[\]^`{|}) is %-escaped, so the result never carries a byte that could
 * end the request line or start a header. Returns NULL, or a reason for a
 * 400: a malformed %-escape in the path, an authority-form or asterisk-form
 * target, an absolute-form target with another scheme or a bad authority.
 */
const char *rp_http_parse_target(h2o_mem_pool_t *pool, h2o_iovec_t raw, struct rp_http_target *out);

/** 1 when the comma-separated list @list (@len bytes) holds the token @tok
 * (case-insensitive), as in Connection: close, x-hop. */
int rp_http_has_token(const char *list, size_t len, const char *tok, size_t toklen);

#endif
