/* Raft snapshots by bytes as well as entries (the log follows the data). */
#ifndef RP_SNAPBYTES_H
#define RP_SNAPBYTES_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

/* Caller-embedded, set up by rp_snapbytes_init(); loop thread only. */
struct rp_snapbytes {
	unsigned threshold;      /* raft's snapshot threshold, entries */
	unsigned trailing;       /* at most this many entries kept after one */
	uint64_t bytes;          /* snapshot by bytes from here; 0: entries only */
	uint64_t trailing_bytes; /* keep at most this many bytes; 0: entries only */
	uint64_t log_bytes;      /* command bytes applied since the last snapshot */
	uint64_t snapshot_len;   /* size of the last snapshot taken or restored */
	int armed;               /* raft's threshold lowered to snapshot at once */
};

/** Zero @s and keep the limits (the node's --snapshot-* flags). */
void rp_snapbytes_init(struct rp_snapbytes *s, unsigned threshold, unsigned trailing,
		       uint64_t bytes, uint64_t trailing_bytes);

/** An entry of @len bytes is being applied (from the FSM's apply). */
void rp_snapbytes_applied(struct rp_snapbytes *s, struct raft *r, size_t len);

/** Raft is taking a snapshot of @len bytes now (from the FSM's snapshot,
 * before raft stores it and compacts its log with the trailing count). */
void rp_snapbytes_taken(struct rp_snapbytes *s, struct raft *r, size_t len);

/** A snapshot of @len bytes was restored (installed or loaded at start). */
void rp_snapbytes_restored(struct rp_snapbytes *s, size_t len);

#endif
