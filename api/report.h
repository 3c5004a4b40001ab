/* POST /v1/report bodies: decoding and checking a telemetry Report
 * (net/raftplane.proto) from untrusted bytes, and the fixed layout of the
 * cumulative counters the server keeps of each TrafficStats (report.c).
 * Bytes only, no server state: tests/fuzz/fuzz_report.c drives it. */
#ifndef RP_API_REPORT_H
#define RP_API_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "raftplane.pb-c.h"

#define RP_REPORT_MAX_BYTES (256 * 1024)
#define RP_REPORT_MAX_ROUTES 1024
#define RP_REPORT_MAX_CLUSTERS 1024
#define RP_REPORT_MAX_ENDPOINTS 4096
#define RP_REPORT_MAX_REASON 255
#define RP_REPORT_MAX_ADDRESS 72 /* "[" 64-character IPv6 literal "]:65535" */

/* Latency buckets (upper bounds, µs; a +Inf bucket follows): the contract
 * of net/raftplane.proto, equal to rp_lat_bounds_us of the proxy. */
#define RP_TL_LAT_BOUNDS 23
#define RP_TL_LAT_BUCKETS (RP_TL_LAT_BOUNDS + 1)
extern const uint64_t rp_tl_lat_bounds_us[RP_TL_LAT_BOUNDS];

/* One TrafficStats as a vector of counters, in this order. Every entry is
 * cumulative except RP_TV_ACTIVE (a gauge). */
enum {
	RP_TV_REQUESTS,
	RP_TV_RESP, /* 6 entries: [0] other, [1] 1xx ... [5] 5xx */
	RP_TV_UPSTREAM = RP_TV_RESP + 6,
	RP_TV_RETRIES,
	RP_TV_CONNECT,
	RP_TV_RESETS,
	RP_TV_TIMEOUTS,
	RP_TV_NO_HEALTHY,
	RP_TV_ACTIVE,
	RP_TV_LAT, /* RP_TL_LAT_BUCKETS entries, one count per bucket */
	RP_TV_LAT_SUM = RP_TV_LAT + RP_TL_LAT_BUCKETS,
	RP_TV__N
};

/** The counters of @t in the layout above (missing repeated fields: 0). */
void rp_report_vector(const Raftplane__TrafficStats *t, uint64_t v[RP_TV__N]);

/**
 * Decode and check the body of POST /v1/report (@len bytes at @buf).
 * Returns 0 with *out (free it with raftplane__report__free_unpacked), or
 * -1 with *out NULL and a sentence naming the field in @msg; *too_large is
 * set when the refusal is the size (413), else the report is malformed
 * (400). Checks: size <= RP_REPORT_MAX_BYTES; every string field, nested
 * ones included, UTF-8 without NUL; node_id a name ([A-Za-z0-9._-]{1,128});
 * instance and seq nonzero; cluster_id empty or 32 lowercase hex digits;
 * at most RP_REPORT_MAX_ROUTES routes, _CLUSTERS clusters and _ENDPOINTS
 * endpoints (counted on the wire, before protobuf-c allocates); every route
 * and cluster a distinct name with 0 or 6 responses and 0 or 24 latency
 * buckets; every endpoint a cluster name, an "IP:port" or "[IPv6]:port"
 * address, distinct per cluster, a known state and a reason of at most
 * RP_REPORT_MAX_REASON bytes.
 */
int rp_report_decode(const uint8_t *buf, size_t len, Raftplane__Report **out, int *too_large,
		     char *msg, size_t msglen);

/** 1 when @s is "IPv4:port" or "[IPv6]:port" with a port 1-65535. */
int rp_report_address_valid(const char *s);

#endif
