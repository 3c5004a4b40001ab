/* A raft peer's identity and address: the (id, raft address) pair and the
 * parsing of "IPv4:PORT" / "[IPv6]:PORT". */
#ifndef RP_RAFT_PEERADDR_H
#define RP_RAFT_PEERADDR_H

#include <stdint.h>
#include <sys/socket.h>

/* A peer a node admits besides its current configuration (join peers,
 * peers.h). */
struct rp_transport_peer {
	uint64_t id;
	char raft[64];
};

/** Parse "IPv4:PORT" or "[IPv6]:PORT" into @sa. Returns 0 or -1 (then @sa
 *  is unspecified). */
int rp_transport_parse_addr(const char *s, struct sockaddr_storage *sa);

#endif
