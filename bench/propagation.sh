#!/usr/bin/env bash
# Propagation benchmark: time from a write's acknowledgement until the last of
# N subscribers has it, raftplane (N subscribers speaking the real protocol,
# each *ACKing* the snapshot) vs etcd (N /v3/watch streams, each *notified*).
#
#   bash bench/propagation.sh   (PROP_NS="10 100 1000" PROP_CHANGES=100 PROP_ROUNDS=3)
#
# One client program, bench/tools/propbench.c, measures both the same way:
# t0 = the write's HTTP response parsed by the writer (a keep-alive connection
# to the leader); per change, latency = the last subscriber's "seen" time - t0
# (raftplane: the ACK written back to the server; etcd: the event parsed);
# p50/p99 over PROP_CHANGES changes (after 5 warm-up changes), one change at a
# time with a 20-40 ms pause between changes. Subscribers and watchers are
# spread round-robin over the three members of their cluster. raftplane runs
# with --verify: after each change /v1/rollouts/REV must report every
# subscriber acked (server side). Each N runs PROP_ROUNDS rounds alternating
# which system goes first; the report takes the median round.
#
# raftplane setup: cluster pbc, listener pbl with nodes ["*"], route pbr -> pbc;
# each change is PUT /v1/clusters/pbc with a new endpoint port, so every
# subscriber's snapshot changes. etcd: each change is a put of the same JSON
# under the key /mesh/clusters/pbc that every watcher watches.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare

NS=${PROP_NS:-10 100 1000}
CHANGES=${PROP_CHANGES:-100}
ROUNDS=${PROP_ROUNDS:-3}

rp_start
etcd_start
put() { curl -sf -X PUT "$RP_LEADER_HTTP/v1/$1" -d "$2" >/dev/null || die "PUT /v1/$1 failed"; }
put clusters/pbc '{"lb_policy":"round_robin","endpoints":[{"address":"127.0.0.1","port":19999}]}'
put listeners/pbl '{"address":"127.0.0.1","port":19998,"nodes":["*"]}'
put routes/pbr '{"listener":"pbl","priority":100,"match":{"prefix":"/"},"cluster":"pbc"}'

one() { # SYSTEM N ROUND
  local sys=$1 n=$2 round=$3 r
  if [ "$sys" = raftplane ]; then
    r=$("$PROP_BIN" --system rp --servers "$(rp_all_http)" --writer "$RP_LEADER_HTTP" --n "$n" \
      --changes "$CHANGES" --verify --server-pid "$RP_LEADER_PID" --label "round $round")
  else
    r=$("$PROP_BIN" --system etcd --servers "$(etcd_all_http)" --writer "$ETCD_LEADER_HTTP" --n "$n" \
      --changes "$CHANGES" --server-pid "$ETCD_LEADER_PID" --label "round $round")
  fi
  log "  round $round $sys N=$n: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("last p50 %.2f ms p99 %.2f ms (first p50 %.2f ms), missing %d, errors %d, client cpu %.0f%%" % (d["last_ms"]["p50"], d["last_ms"]["p99"], d["first_ms"]["p50"], d["missing"], d["errors"], d["client_cpu_pct"]))' "$r")"
  printf '{"bench":"propagation","round":%s,%s\n' "$round" "${r#\{}" >>"$OUT/results.jsonl"
}

for n in $NS; do
  log "propagation N=$n"
  for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then one raftplane "$n" "$round"; one etcd "$n" "$round"
    else one etcd "$n" "$round"; one raftplane "$n" "$round"; fi
  done
done
rp_stop
etcd_stop
