#!/usr/bin/env bash
# The physical floor of a 1-connection write on this machine (issue 15):
# bench/tools/fsyncprobe.c measures, in the directory the benchmark's data
# dirs live in ($WORK, under /tmp), a 4 KiB append + fdatasync alone, two of
# them in parallel (leader and follower share this disk), and a loopback
# round trip. The bound is the parallel pair plus one round trip;
# bench/lib/report.py prints the 1-connection write latency of kv.sh (same
# run) as a multiple of it.
#
#   bash bench/fsync.sh      (FSYNC_ROUNDS=500, FSYNC_REPS=3)
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare
ROUNDS=${FSYNC_ROUNDS:-500}
REPS=${FSYNC_REPS:-3}
mkdir -p "$WORK/fsync"
for rep in $(seq "$REPS"); do
  line=$("$FSYNC_BIN" "$WORK/fsync" "$ROUNDS")
  echo "${line%\}},\"rep\":$rep}" >>"$OUT/results.jsonl"
  log "fsync rep $rep: $line"
done
