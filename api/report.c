/* Decoding and checking POST /v1/report bodies: see report.h.
 *
 * The order matters for hostile input: the size first, then one walk over
 * the wire (strings of the message and of every nested message, and the
 * entry counts) before protobuf-c allocates anything, then the values. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "validate.h"
#include "wire.h"

const uint64_t rp_tl_lat_bounds_us[RP_TL_LAT_BOUNDS] = {
	250,    500,     1000,    2000,    3000,     5000,     7500,     10000,
	15000,  25000,   50000,   75000,   100000,   150000,   250000,   500000,
	750000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

/* string fields: Report node_id(1), cluster_id(6); TrafficStats name(1);
 * EndpointStats cluster(1), address(2), reason(4) */
#define REPORT_STRINGS ((1u << 1) | (1u << 6))
#define TRAFFIC_STRINGS (1u << 1)
#define ENDPOINT_STRINGS ((1u << 1) | (1u << 2) | (1u << 4))
#define MAX_STRING 1024

void rp_report_vector(const Raftplane__TrafficStats *t, uint64_t v[RP_TV__N])
{
	memset(v, 0, RP_TV__N * sizeof v[0]);
	v[RP_TV_REQUESTS] = t->requests;
	for (size_t i = 0; i < t->n_responses && i < 6; i++)
		v[RP_TV_RESP + i] = t->responses[i];
	v[RP_TV_UPSTREAM] = t->upstream_requests;
	v[RP_TV_RETRIES] = t->retries;
	v[RP_TV_CONNECT] = t->connect_errors;
	v[RP_TV_RESETS] = t->resets;
	v[RP_TV_TIMEOUTS] = t->timeouts;
	v[RP_TV_NO_HEALTHY] = t->no_healthy;
	v[RP_TV_ACTIVE] = t->active;
	for (size_t i = 0; i < t->n_latency && i < RP_TL_LAT_BUCKETS; i++)
		v[RP_TV_LAT + i] = t->latency[i];
	v[RP_TV_LAT_SUM] = t->latency_sum_us;
}

int rp_report_address_valid(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || strlen(s) > RP_REPORT_MAX_ADDRESS)
		return 0;
	const char *port = colon + 1;
	size_t hl = (size_t)(colon - s), pl = strlen(port);
	if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl || port[0] == '0' ||
	    atoi(port) > 65535)
		return 0;
	unsigned char a[16];
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		if (hl - 2 >= sizeof host)
			return 0;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		return inet_pton(AF_INET6, host, a) == 1;
	}
	if (hl >= sizeof host)
		return 0;
	memcpy(host, s, hl);
	host[hl] = '\0';
	return inet_pton(AF_INET, host, a) == 1;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* The walk before unpacking: nested strings and entry counts. The message
 * itself passed rp_pb_check_strings, so its framing is sound. */
static int check_wire(const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
	const uint8_t *p = buf, *end = buf + len;
	size_t counts[10] = {0};
	static const char *const what[10] = {[7] = "routes", [8] = "clusters", [9] = "endpoints"};
	static const size_t max[10] = {[7] = RP_REPORT_MAX_ROUTES,
				       [8] = RP_REPORT_MAX_CLUSTERS,
				       [9] = RP_REPORT_MAX_ENDPOINTS};
	char sub[160];
	while (p < end) {
		uint64_t tag, n;
		varint(&p, end, &tag);
		unsigned wt = (unsigned)(tag & 7);
		uint64_t field = tag >> 3;
		if (wt == 0) {
			varint(&p, end, &n);
		} else if (wt == 1 || wt == 5) {
			p += wt == 1 ? 8 : 4;
		} else { /* 2: checked by rp_pb_check_strings */
			varint(&p, end, &n);
			if (field >= 7 && field <= 9) {
				if (++counts[field] > max[field]) {
					snprintf(msg, msglen, "more than %zu %s", max[field],
						 what[field]);
					return -1;
				}
				if (rp_pb_check_strings(p, (size_t)n,
							field == 9 ? ENDPOINT_STRINGS
								   : TRAFFIC_STRINGS,
							MAX_STRING, sub, sizeof sub) != 0) {
					snprintf(msg, msglen, "%s[%zu]: %s", what[field],
						 counts[field] - 1, sub);
					return -1;
				}
			}
			p += n;
		}
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_traffic(Raftplane__TrafficStats **ts, size_t n, const char *what, char *msg,
			 size_t msglen)
{
	for (size_t i = 0; i < n; i++) {
		const Raftplane__TrafficStats *t = ts[i];
		if (!rp_name_valid(t->name, strlen(t->name)))
			snprintf(msg, msglen, "%s[%zu].name must match [A-Za-z0-9._-]{1,128}", what,
				 i);
		else if (t->n_responses != 0 && t->n_responses != 6)
			snprintf(msg, msglen, "%s[%zu].responses must have 0 or 6 entries", what,
				 i);
		else if (t->n_latency != 0 && t->n_latency != RP_TL_LAT_BUCKETS)
			snprintf(msg, msglen, "%s[%zu].latency must have 0 or %d entries", what, i,
				 RP_TL_LAT_BUCKETS);
		else
			continue;
		return -1;
	}
	const char **names = malloc((n ? n : 1) * sizeof *names);
	if (!names) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		names[i] = ts[i]->name;
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	int rv = 0;
	for (size_t i = 1; i < n && !rv; i++)
		if (strcmp(names[i - 1], names[i]) == 0) {
			snprintf(msg, msglen, "%s: name %s appears twice", what, names[i]);
			rv = -1;
		}
	free(names);
	return rv;
}

static int cmp_ep(const void *a, const void *b)
{
	const Raftplane__EndpointStats *x = *(Raftplane__EndpointStats *const *)a;
	const Raftplane__EndpointStats *y = *(Raftplane__EndpointStats *const *)b;
	int c = strcmp(x->cluster, y->cluster);
	return c ? c : strcmp(x->address, y->address);
}

static int check_endpoints(Raftplane__EndpointStats **es, size_t n, char *msg, size_t msglen)
{
	for (size_t i = 0; i < n; i++) {
		const Raftplane__EndpointStats *e = es[i];
		if (!rp_name_valid(e->cluster, strlen(e->cluster)))
			snprintf(msg, msglen,
				 "endpoints[%zu].cluster must match [A-Za-z0-9._-]{1,128}", i);
		else if (!rp_report_address_valid(e->address))
			snprintf(msg, msglen,
				 "endpoints[%zu].address must be IPv4:port or [IPv6]:port", i);
		else if ((unsigned)e->state > RAFTPLANE__ENDPOINT_STATS__STATE__EJECTED)
			snprintf(msg, msglen, "endpoints[%zu].state must be 0, 1 or 2", i);
		else if (strlen(e->reason) > RP_REPORT_MAX_REASON)
			snprintf(msg, msglen, "endpoints[%zu].reason over %d bytes", i,
				 RP_REPORT_MAX_REASON);
		else
			continue;
		return -1;
	}
	Raftplane__EndpointStats **sorted = malloc((n ? n : 1) * sizeof *sorted);
	if (!sorted) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	if (n) {
		memcpy(sorted, es, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, cmp_ep);
	}
	int rv = 0;
	for (size_t i = 1; i < n && !rv; i++)
		if (cmp_ep(&sorted[i - 1], &sorted[i]) == 0) {
			snprintf(msg, msglen, "endpoints: %s %s appears twice", sorted[i]->cluster,
				 sorted[i]->address);
			rv = -1;
		}
	free(sorted);
	return rv;
}

static int check_report(const Raftplane__Report *r, char *msg, size_t msglen)
{
	if (!rp_name_valid(r->node_id, strlen(r->node_id)))
		snprintf(msg, msglen, "node_id must match [A-Za-z0-9._-]{1,128}");
	else if (r->instance == 0)
		snprintf(msg, msglen, "instance must not be 0");
	else if (r->seq == 0)
		snprintf(msg, msglen, "seq must not be 0 (the first report is 1)");
	else if (r->cluster_id[0] && !rp_cluster_id_valid(r->cluster_id))
		snprintf(msg, msglen, "cluster_id must be empty or 32 lowercase hex digits");
	else
		return check_traffic(r->routes, r->n_routes, "routes", msg, msglen) ||
				       check_traffic(r->clusters, r->n_clusters, "clusters", msg,
						     msglen) ||
				       check_endpoints(r->endpoints, r->n_endpoints, msg, msglen)
			       ? -1
			       : 0;
	return -1;
}

int rp_report_decode(const uint8_t *buf, size_t len, Raftplane__Report **out, int *too_large,
		     char *msg, size_t msglen)
{
	char sub[200];
	*out = NULL;
	*too_large = 0;
	if (len > RP_REPORT_MAX_BYTES) {
		*too_large = 1;
		snprintf(msg, msglen, "Report over %d bytes", RP_REPORT_MAX_BYTES);
		return -1;
	}
	if (!buf || len == 0) {
		snprintf(msg, msglen, "body must be a Report (protobuf)");
		return -1;
	}
	if (rp_pb_check_strings(buf, len, REPORT_STRINGS, MAX_STRING, sub, sizeof sub) != 0) {
		snprintf(msg, msglen, "Report: %s", sub);
		return -1;
	}
	if (check_wire(buf, len, msg, msglen) != 0)
		return -1;
	Raftplane__Report *r = raftplane__report__unpack(NULL, len, buf);
	if (!r) {
		snprintf(msg, msglen, "malformed Report");
		return -1;
	}
	if (check_report(r, msg, msglen) != 0) {
		raftplane__report__free_unpacked(r, NULL);
		return -1;
	}
	*out = r;
	return 0;
}
