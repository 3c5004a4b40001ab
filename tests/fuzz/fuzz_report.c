/* The server's decoding of a telemetry report (api/report.c
 * rp_report_decode: size limit, string checks of the message and of every
 * nested one on the wire, entry counts, protobuf-c, then the rules of
 * report.h), the body every proxy POSTs to /v1/report. An accepted report
 * satisfies every rule; a refusal says why and returns nothing. */
#include <stdlib.h>
#include <string.h>

#include "api/report.h"
#include "storage/validate.h"
#include "net/wire.h"

static int text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	return n <= max && rp_utf8_prefix(s, n) == n;
}

static int name_ok(const char *s)
{
	return rp_name_valid(s, strlen(s)) && text_ok(s, 128);
}

static void check_traffic(Raftplane__TrafficStats **v, size_t n, size_t max)
{
	if (n > max)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (!name_ok(v[i]->name) || (v[i]->n_responses != 0 && v[i]->n_responses != 6) ||
		    (v[i]->n_latency != 0 && v[i]->n_latency != RP_TL_LAT_BUCKETS))
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(v[i]->name, v[j]->name) == 0)
				abort();
		uint64_t vec[RP_TV__N];
		rp_report_vector(v[i], vec);
		if (vec[RP_TV_REQUESTS] != v[i]->requests || vec[RP_TV_ACTIVE] != v[i]->active)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Raftplane__Report *r = (void *)1;
	char msg[200];
	int too_large = -1;
	msg[0] = '\0';
	if (rp_report_decode(data, size, &r, &too_large, msg, sizeof msg) != 0) {
		if (r || !msg[0] || too_large != (size > RP_REPORT_MAX_BYTES))
			abort();
		return 0;
	}
	if (!r || too_large || size > RP_REPORT_MAX_BYTES || !name_ok(r->node_id) ||
	    r->instance == 0 || r->seq == 0 || !text_ok(r->cluster_id, 32) ||
	    (r->cluster_id[0] && !rp_cluster_id_valid(r->cluster_id)))
		abort();
	check_traffic(r->routes, r->n_routes, RP_REPORT_MAX_ROUTES);
	check_traffic(r->clusters, r->n_clusters, RP_REPORT_MAX_CLUSTERS);
	if (r->n_endpoints > RP_REPORT_MAX_ENDPOINTS)
		abort();
	for (size_t i = 0; i < r->n_endpoints; i++) {
		const Raftplane__EndpointStats *e = r->endpoints[i];
		if (!name_ok(e->cluster) || !rp_report_address_valid(e->address) ||
		    !text_ok(e->address, RP_REPORT_MAX_ADDRESS) ||
		    !text_ok(e->reason, RP_REPORT_MAX_REASON) || (unsigned)e->state > 2)
			abort();
	}
	raftplane__report__free_unpacked(r, NULL);
	return 0;
}
