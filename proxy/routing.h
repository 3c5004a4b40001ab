/* The routing data a generation is built from (listeners, routes, clusters,
 * endpoints, balancer tables): plain types with no behaviour, so that the
 * router and the balancers use them without knowing the generation that
 * owns them (generation.h builds and frees them). */
#ifndef RP_PROXY_ROUTING_H
#define RP_PROXY_ROUTING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct rp_health; /* health.h */
struct rp_lsock;  /* listeners.h */
struct rp_stats;  /* stats.h */

/** A cluster's load-balancing policy (balancer.c). */
enum rp_lb {
	RP_LB_ROUND_ROBIN,
	RP_LB_LEAST_REQUEST,
	RP_LB_RING_HASH,
	RP_LB_RANDOM
};

/** One upstream address of a cluster. */
struct rp_endpoint {
	char hostport[80];
	struct sockaddr_storage sa;
	socklen_t salen;
	uint32_t weight;
};

/** A point of a ring_hash ring: hash and the endpoint index it maps to. */
struct rp_ring_entry {
	uint64_t hash;
	uint32_t ep;
};

/**
 * A cluster: its endpoints, their shared health objects and the balancer
 * tables. Immutable once built except rr_next and what stats and health
 * point to (atomics shared by the workers).
 */
struct rp_cluster {
	const char *name;
	uint64_t version;
	enum rp_lb lb;
	char *hash_header; /* lower-case header name for ring_hash, else NULL */
	size_t hash_header_len;
	uint32_t connect_timeout_ms;
	struct rp_endpoint *eps;
	struct rp_health **health; /* parallel to eps */
	size_t n_eps;
	uint64_t total_weight;
	/* balancer tables (immutable) */
	uint32_t *rr_seq; /* smooth weighted round-robin order */
	size_t rr_len;
	uint64_t *cum_weight; /* prefix sums of weights, for weighted random */
	struct rp_ring_entry *ring;
	size_t ring_len;
	/* mutable, shared */
	atomic_uint_fast64_t rr_next;
	struct rp_stats *stats;
};

/** A route's exact header match (name lower-case, value as configured). */
struct rp_header_match {
	char *name; /* lower-case */
	size_t name_len;
	char *value;
	size_t value_len;
};

/** A cluster of a route with its traffic weight. */
struct rp_weighted {
	struct rp_cluster *cluster;
	uint32_t weight;
};

/** A route: what it matches, where it sends, timeout and retry policy. */
struct rp_route {
	const char *name;
	uint64_t version;
	uint32_t priority;
	int exact; /* match.path (exact) instead of match.prefix */
	char *match;
	size_t match_len;
	struct rp_header_match *headers;
	size_t n_headers;
	struct rp_weighted *clusters;
	size_t n_clusters;
	uint64_t total_weight;
	uint32_t timeout_ms;
	uint32_t retries;
	int retry_connect_failure, retry_5xx;
	char *rewrite; /* prefix_rewrite or NULL */
	size_t rewrite_len;
	struct rp_stats *stats;
};

/** A listener: its address, bound socket and its routes in evaluation order. */
struct rp_listener {
	const char *name;
	uint64_t version;
	struct sockaddr_storage sa; /* as configured; wildcard when any */
	int wildcard;
	struct rp_lsock *sock;
	struct rp_route **routes; /* this listener's routes in evaluation order */
	size_t n_routes;
};

#endif
