/* Latency histograms and counters the node keeps for /metrics. */
#ifndef RP_RAFT_STATS_H
#define RP_RAFT_STATS_H

#include <stdint.h>

#define RP_LAT_BUCKETS 14

/** Upper bounds of the latency buckets, in seconds, ascending. */
extern const double rp_latency_bounds[RP_LAT_BUCKETS];

struct rp_histogram {
	uint64_t buckets[RP_LAT_BUCKETS + 1]; /* last one is +Inf */
	uint64_t count;
	double sum;
};

/** Count one observation of @seconds in @h (not cumulative per bucket:
 *  the exporter sums). */
void rp_histogram_observe(struct rp_histogram *h, double seconds);

/* Written by the concern modules (each takes a pointer to it), read by
 * api/metrics.c through rp_node_stats(). */
struct rp_node_stats {
	struct rp_histogram apply;   /* FSM apply of one entry (fsm.c) */
	struct rp_histogram propose; /* leader: propose until applied (propose.c) */
	uint64_t barriers;           /* read barriers issued (readq.c) */
	uint64_t reads_batched;      /* linearizable reads served behind them (readq.c) */
	uint64_t snapshots_taken;    /* fsm.c */
	uint64_t snapshots_restored; /* fsm.c */
	uint64_t leader_changes;     /* readiness.c */
	uint64_t disk_failures;      /* local raft writes that failed (diskguard.c) */
	uint64_t disk_held;          /* raft log operations held now (diskguard.c) */
	uint64_t disk_state;         /* enum rp_disk_state (diskguard.h) */
	uint64_t stale_results; /* AppendEntries results dropped: not a follower (diskguard.c) */
	/* raft_uv's AIO contexts destroyed by the helper thread / in place on a
	 * loop thread, in this process (aiodefer.h; copied by node.c's tick) */
	uint64_t aio_destroy_deferred;
	uint64_t aio_destroy_in_place;
};

#endif
