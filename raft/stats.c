/* Latency histograms for /metrics (see stats.h). */
#include "stats.h"

const double rp_latency_bounds[RP_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
						  0.005,  0.01,    0.025,  0.05,  0.1,
						  0.25,   0.5,     1.0,    2.5};

void rp_histogram_observe(struct rp_histogram *h, double seconds)
{
	int i = 0;
	while (i < RP_LAT_BUCKETS && seconds > rp_latency_bounds[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}
