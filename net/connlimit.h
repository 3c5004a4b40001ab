/* Limits of one listener against abusive clients: connections per client
 * address and in total (checked at accept, before any read or TLS
 * handshake), the size and line count of a request head (enforced by
 * accept.c while the head is read), and the counters of what they refused.
 *
 * Addresses: an IPv4 address (or an IPv4-mapped IPv6 one) counts by
 * itself; an IPv6 address counts by its /64 prefix, because one host
 * commonly holds a whole /64 and can pick any source address in it.
 * Loopback is an address like any other.
 *
 * A table with per_ip set holds one entry per address with open
 * connections (freed at zero), so its memory is bounded by the connections
 * open. Built with threads, every call takes the table's mutex (the proxy's
 * workers share one table); otherwise it belongs to one loop. */
#ifndef RP_NET_CONNLIMIT_H
#define RP_NET_CONNLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/* Why a connection was refused (metric label names in rp_conn_refuse_names). */
enum rp_conn_refuse {
	RP_CONN_REFUSE_PER_IP, /* "per_ip": the address already holds per_ip connections */
	RP_CONN_REFUSE_TOTAL,  /* "total": the listener already holds total connections */
	RP_CONN_REFUSE_FDS, /* "fds": the process' client descriptor budget is spent (fdbudget.h) */
	RP_CONN_REFUSE__N,
};
extern const char *const rp_conn_refuse_names[RP_CONN_REFUSE__N];

/* Why a request head was refused (431; label names in rp_head_refuse_names). */
enum rp_head_refuse {
	RP_HEAD_REFUSE_BYTES, /* "bytes": over max_head_bytes */
	RP_HEAD_REFUSE_COUNT, /* "count": more than max_headers header lines */
	RP_HEAD_REFUSE__N,
};
extern const char *const rp_head_refuse_names[RP_HEAD_REFUSE__N];

struct rp_connlimit_config {
	unsigned per_ip;       /* connections per address; 0: unlimited */
	unsigned total;        /* connections of the listener; 0: unlimited */
	size_t max_head_bytes; /* request line and headers; 0: h2o's own limits only */
	unsigned max_headers;  /* header lines of a request (with max_head_bytes) */
	const char *what;      /* the listener in log lines: "API", "admin", ... */
	const char *per_ip_flag, *total_flag; /* named in log lines */
	/* Optional: 1 when a connection from @sa may exceed per_ip (the server:
	 * its cluster members, which forward one request per connection). It
	 * still counts, and still counts against total. Called only when the
	 * address is over the limit. */
	int (*exempt)(void *arg, const struct sockaddr *sa);
	void *exempt_arg;
};

struct rp_connlimit_stats {
	uint64_t open;                             /* connections admitted and not closed */
	uint64_t refused[RP_CONN_REFUSE__N];       /* closed at accept */
	uint64_t exempted;                         /* admitted over per_ip by exempt() */
	uint64_t heads_refused[RP_HEAD_REFUSE__N]; /* 431 */
	uint64_t guard_fallbacks;                  /* heads checked only after parsing */
};

struct rp_addr_count;

struct rp_connlimit {
	struct rp_connlimit_config cfg;
	/* private */
	int threads;
	uv_mutex_t lock;
	struct rp_addr_count **buckets; /* NULL unless cfg.per_ip */
	uint64_t seed;
	struct rp_connlimit_stats st;
	uint64_t log_ms; /* last refusal line, uv_hrtime() ms */
	unsigned log_suppressed;
};

/* What one admitted connection holds (opaque to the caller). */
struct rp_conn_slot {
	struct rp_addr_count *entry; /* NULL without per_ip */
	int held;
	int exempted;
};

/**
 * Set up @l with @cfg (copied; strings must outlive @l), shared by threads
 * when @threads. 0, or -1 when out of memory.
 */
int rp_connlimit_init(struct rp_connlimit *l, const struct rp_connlimit_config *cfg, int threads);
/** Free @l; no connection may hold a slot any more. */
void rp_connlimit_close(struct rp_connlimit *l);

/** 1 when @l limits connections at all (per_ip or total set, or a descriptor
 *  budget, fdbudget.h). */
int rp_connlimit_counts(const struct rp_connlimit *l);

/**
 * Admit a connection from @sa: 0 with @slot held (slot->exempted set when
 * exempt() let it over per_ip), or -1 with *why: refused, counted, and
 * logged at most once a second with the number of refusals since the last
 * line.
 */
int rp_connlimit_admit(struct rp_connlimit *l, const struct sockaddr *sa, struct rp_conn_slot *slot,
		       enum rp_conn_refuse *why);
/** Give back what rp_connlimit_admit() took (nothing when not held). */
void rp_connlimit_release(struct rp_connlimit *l, struct rp_conn_slot *slot);
/** Refuse, after all, a connection admitted as exempted (it could not prove
 * to be a member): counted as refused per_ip, logged, slot released. */
void rp_connlimit_refuse_exempted(struct rp_connlimit *l, const struct sockaddr *sa,
				  struct rp_conn_slot *slot);

/** Count a refused request head; @peer ("IP:port") for the log line. */
void rp_connlimit_count_head(struct rp_connlimit *l, enum rp_head_refuse why, const char *peer,
			     size_t bytes, unsigned lines);
/** Count a connection whose heads are checked only after parsing. */
void rp_connlimit_count_fallback(struct rp_connlimit *l);

/** A copy of @l's counters. */
void rp_connlimit_stats(struct rp_connlimit *l, struct rp_connlimit_stats *out);

#endif
