/* net/httpcheck.c rp_http_check_head: the re-parse of the raw HTTP/1
 * request head that every h2o server of raftplane (proxy data plane, REST
 * API) runs on each request (Content-Length/Transfer-Encoding smuggling,
 * Host rules, obs-fold). Input: bytes as received on the socket.
 * An accepted head has at most one Host, a valid one (checked here by an
 * independent scan of the header lines). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/httpcheck.h"

/* Count "Host:" header lines in the head (up to the first empty line). */
static unsigned host_lines(const char *s, size_t len)
{
	unsigned n = 0;
	const char *end = s + len, *p;
	while (len && (*s == '\r' || *s == '\n')) /* empty lines before the request line */
		s++, len--;
	p = memchr(s, '\n', len);
	while (p && ++p < end) {
		if (*p == '\r' || *p == '\n')
			break;
		if (end - p >= 5 && strncasecmp(p, "host:", 5) == 0)
			n++;
		p = memchr(p, '\n', (size_t)(end - p));
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_http_head out = {-1};
	const char *s = (const char *)data;
	const char *why = rp_http_check_head(s, size, &out);
	if (why) {
		if (!*why || out.no_host)
			abort();
		return 0;
	}
	if (out.no_host != 0 && out.no_host != 1)
		abort();
	if (host_lines(s, size) > 1 || (out.no_host && host_lines(s, size) != 0))
		abort();
	return 0;
}
