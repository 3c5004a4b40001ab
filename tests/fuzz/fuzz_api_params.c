/* The REST API's parsers of what a URL carries (api/params.c): query
 * parameters (rp_query_param, percent- and '+'-decoding, a repeated
 * parameter refused), numbers (rp_parse_u64) and durations (rp_parse_wait),
 * and the path decoder (rp_path_decode). Input: a request path with its
 * query, as h2o hands it over. */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/params.h"

/* The grammar rp_parse_wait accepts: DIGITS{1,9}[.DIGITS{1,6}][ms|s|m]. */
static int wait_grammar(const char *s)
{
	size_t i = 0, d = 0;
	while (isdigit((unsigned char)s[i]))
		i++;
	if (i == 0 || i > 9)
		return 0;
	if (s[i] == '.') {
		while (isdigit((unsigned char)s[i + 1 + d]))
			d++;
		if (d == 0 || d > 6)
			return 0;
		i += 1 + d;
	}
	return !s[i] || !strcmp(s + i, "ms") || !strcmp(s + i, "s") || !strcmp(s + i, "m");
}

static void check_u64(const char *v)
{
	uint64_t n;
	size_t len = strlen(v);
	if (rp_parse_u64(v, len, &n) != 0)
		return;
	char again[32];
	snprintf(again, sizeof again, "%" PRIu64, n);
	const char *s = v;
	while (s[0] == '0' && s[1])
		s++; /* leading zeros are accepted */
	if (strcmp(again, s) != 0)
		abort();
}

static void check_param(h2o_req_t *req, const char *name, size_t outlen)
{
	char out[512];
	int rv = rp_query_param(req, name, out, outlen);
	if (rv < -1 || rv > 1)
		abort();
	if (rv != 1)
		return;
	if (strlen(out) >= outlen)
		abort();
	uint64_t ms;
	if (rp_parse_wait(out, 600000, &ms) == 0 && (ms > 600000 || !wait_grammar(out)))
		abort();
	check_u64(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	h2o_req_t req;
	memset(&req, 0, sizeof req);
	req.path = h2o_iovec_init(data, size);
	const char *q = memchr(data, '?', size);
	req.query_at = q ? (size_t)(q - (const char *)data) : SIZE_MAX;
	static const char *names[] = {"wait", "index", "prefix", "limit", "recurse", ""};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		check_param(&req, names[i], i % 2 ? sizeof(char[512]) : 8);
	size_t plen = q ? (size_t)(q - (const char *)data) : size;
	char out[300];
	size_t outlen;
	if (rp_path_decode((const char *)data, plen, out, sizeof out, &outlen) == 0 &&
	    (outlen > plen || strlen(out) != outlen))
		abort();
	return 0;
}
