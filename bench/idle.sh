#!/usr/bin/env bash
# Idle memory: RSS of each raftplane-server vs each etcd member of a fresh,
# idle 3-node cluster, IDLE_SETTLE_S (default 10) seconds after it became
# ready, with one small write so that both have applied something.
#
#   bash bench/idle.sh
#
# The clusters run one after the other (never both at once). RSS is VmRSS
# from /proc/PID/status; the report uses the median member and the leader.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare
SETTLE=${IDLE_SETTLE_S:-10}

rp_start
curl -sf -X PUT --data-binary hello "$RP_LEADER_HTTP/v1/kv/idle" >/dev/null
sleep "$SETTLE"
for i in 1 2 3; do
  role=$([ "$i" = "$RP_LEADER" ] && echo leader || echo follower)
  printf '{"bench":"idle","system":"raftplane","member":%s,"role":"%s","settle_s":%s,"rss_kib":%s}\n' \
    "$i" "$role" "$SETTLE" "$(rss_kib "${RP_PIDS[$i]}")" >>"$OUT/results.jsonl"
  log "raftplane node $i ($role): $(rss_kib "${RP_PIDS[$i]}") KiB"
done
rp_stop

etcd_start
curl -sf -X POST -d "{\"key\":\"$(b64 idle)\",\"value\":\"$(b64 hello)\"}" "http://$ETCD_LEADER_HTTP/v3/kv/put" >/dev/null
sleep "$SETTLE"
for i in 1 2 3; do
  role=$([ "$i" = "$ETCD_LEADER" ] && echo leader || echo follower)
  printf '{"bench":"idle","system":"etcd","member":%s,"role":"%s","settle_s":%s,"rss_kib":%s}\n' \
    "$i" "$role" "$SETTLE" "$(rss_kib "${ETCD_PIDS[$i]}")" >>"$OUT/results.jsonl"
  log "etcd member e$i ($role): $(rss_kib "${ETCD_PIDS[$i]}") KiB"
done
etcd_stop
