/* Raft snapshots by bytes as well as entries.
 *
 * canonical/raft snapshots every snapshot_threshold entries and keeps
 * snapshot_trailing entries after it, whatever their size: 1024 entries of
 * 1 MiB are 1 GiB of log in memory and on disk. So we also count the bytes
 * of applied commands; once they reach max(snapshot_bytes, the last
 * snapshot's size) we lower raft's threshold to 1, which makes raft
 * snapshot right after the entries it is applying now (the second term
 * keeps snapshot cost proportional to the writes when the data is large).
 * When the snapshot is taken (fsm_snapshot) the threshold goes back and the
 * trailing count is set so that the kept entries hold at most
 * snapshot_trailing_bytes (at least one entry). Memory and disk of the log
 * are then about max(snapshot_bytes, data) + snapshot_trailing_bytes + one
 * batch, whatever the number of writes. */
#include "snapbytes.h"

void rp_snapbytes_init(struct rp_snapbytes *s, unsigned threshold, unsigned trailing,
		       uint64_t bytes, uint64_t trailing_bytes)
{
	*s = (struct rp_snapbytes){.threshold = threshold,
				   .trailing = trailing,
				   .bytes = bytes,
				   .trailing_bytes = trailing_bytes};
}

void rp_snapbytes_applied(struct rp_snapbytes *s, struct raft *r, size_t len)
{
	uint64_t limit = s->bytes;
	s->log_bytes += len;
	if (!limit || s->armed)
		return;
	if (s->snapshot_len > limit)
		limit = s->snapshot_len;
	if (s->log_bytes >= limit) {
		s->armed = 1;
		raft_set_snapshot_threshold(r, 1);
	}
}

/* How many entries up to last_applied fit in snapshot_trailing_bytes.
 * Reads raft's in-memory log (struct raft_log, public in raft.h 0.15). */
static unsigned trailing_for_bytes(const struct rp_snapbytes *s, struct raft *r)
{
	const struct raft_log *l = &r->log;
	size_t count = l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
	raft_index last = raft_last_applied(r);
	uint64_t sum = 0;
	unsigned keep = 0;
	if (!s->trailing_bytes)
		return s->trailing;
	for (raft_index i = last; i > l->offset && keep < s->trailing; i--) {
		size_t pos = (size_t)(i - l->offset - 1);
		if (pos >= count)
			continue;
		size_t len = l->entries[(l->front + pos) % l->size].buf.len;
		if (keep > 0 && sum + len > s->trailing_bytes)
			break;
		sum += len;
		keep++;
	}
	return keep ? keep : 1;
}

/* Reset the byte count, restore the entry threshold, size the trailing
 * entries by bytes (raft reads it after this returns). */
void rp_snapbytes_taken(struct rp_snapbytes *s, struct raft *r, size_t len)
{
	s->log_bytes = 0;
	s->snapshot_len = len;
	if (s->armed) {
		s->armed = 0;
		raft_set_snapshot_threshold(r, s->threshold);
	}
	raft_set_snapshot_trailing(r, trailing_for_bytes(s, r));
}

void rp_snapbytes_restored(struct rp_snapbytes *s, size_t len)
{
	s->log_bytes = 0;
	s->snapshot_len = len;
}
