/* Parsing raft addresses (see peeraddr.h). */
#include "peeraddr.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

int rp_transport_parse_addr(const char *s, struct sockaddr_storage *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;
	if (!colon || !colon[1] || strlen(colon + 1) > 5)
		return -1;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof host)
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0)
		return 0;
	if (strchr(host, ':') && uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return -1;
}
