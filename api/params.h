/* Reading a REST request: query parameters, path segments, headers,
 * numbers and durations. Pure functions of the request's bytes (no call
 * state), so the fuzzers and the hostile tests drive them directly. */
#ifndef RP_API_PARAMS_H
#define RP_API_PARAMS_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

/** Value of query parameter @name, decoded into @out; 1 if present, 0 if
 * absent, -1 when malformed, too long or given more than once. */
int rp_query_param(h2o_req_t *req, const char *name, char *out, size_t outlen);
/** Parse @len decimal digits into *out; -1 on anything else or overflow. */
int rp_parse_u64(const char *s, size_t len, uint64_t *out);
/** Parse DIGITS[.DIGITS] + "ms", "s", "m" or nothing (seconds) into *ms;
 * -1 on anything else (sign, space, hex, exponent, inf, nan) or > max. */
int rp_parse_wait(const char *s, uint64_t max_ms, uint64_t *ms);
/** Header value as a NUL-terminated pool string, NULL when absent. */
const char *rp_header(h2o_req_t *req, const h2o_token_t *token);
/** Every field line of list header @token joined with ", " (RFC 9110
 * 5.3), as a pool string; NULL when absent. */
const char *rp_header_list(h2o_req_t *req, const h2o_token_t *token);
/** Percent-decode a path segment ('+' is literal) into @out; -1 on a bad
 * escape, an encoded NUL or when it does not fit. */
int rp_path_decode(const char *v, size_t len, char *out, size_t outcap, size_t *outlen);

#endif
