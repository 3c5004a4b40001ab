#!/usr/bin/env bash
# Scale benchmark: memory and CPU of ONE server holding N subscribers
# (raftplane) next to one etcd member holding N /v3/watch streams (anchor).
#
#   bash bench/scale.sh         (SCALE_NS="1000 10000" SCALE_IDLE_S=10 SCALE_CHANGES=10)
#
# For each N and system a fresh 3-node cluster is started; bench/tools/propbench
# attaches N subscribers (raftplane: node ids pb-0..pb-N-1, all matching a
# listener with nodes ["*"]) or N watchers (etcd: one key) to one FOLLOWER
# only, while writes go to the leader. propbench samples the follower's VmRSS
# and utime+stime (/proc/PID/status, /proc/PID/stat): before connecting, 1 s
# after the last subscriber attached, over an idle window of SCALE_IDLE_S
# seconds, and over SCALE_CHANGES changes that every subscriber receives (and,
# for raftplane, ACKs). Per-subscriber memory = (RSS attached - RSS before) / N.
# As a cross-check, the same raftplane measurement is repeated (fresh
# cluster) with the project's own client: raftplane-subscriber --count N
# --quiet --servers FOLLOWER: attached once the follower has N established
# connections and its CPU time stopped moving; /v1/proxies?scope=local then
# confirms how many were connected (asked after the RSS sample).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare

NS=${SCALE_NS:-1000 10000}
IDLE=${SCALE_IDLE_S:-10}
CHANGES=${SCALE_CHANGES:-10}
ulimit -n "$(ulimit -Hn)"

rp_setup() {
  local obj
  for obj in 'clusters/pbc {"lb_policy":"round_robin","endpoints":[{"address":"127.0.0.1","port":19999}]}' \
             'listeners/pbl {"address":"127.0.0.1","port":19998,"nodes":["*"]}' \
             'routes/pbr {"listener":"pbl","priority":100,"match":{"prefix":"/"},"cluster":"pbc"}'; do
    curl -sf -X PUT "$RP_LEADER_HTTP/v1/${obj%% *}" -d "${obj#* }" >/dev/null || die "setup PUT failed"
  done
  sleep 1
}

connected_on() { # HTTPADDR -> number of subscribers with a parked poll there
  curl -s --max-time 5 "$1/v1/proxies?scope=local" |
    "$PY" -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["proxies"] if p.get("connected")))' 2>/dev/null || echo 0
}

# The same with raftplane-subscriber (the project's client library).
rp_subscriber_scale() {
  local n=$1 f pid rss0 cpu0 t0 t1 rss1 cpu1 c sub f_http
  rp_start
  f=$(( RP_LEADER % 3 + 1 ))
  f_http=$(rp_http "$f")
  rp_setup
  pid=${RP_PIDS[$f]}
  rss0=$(rss_kib "$pid"); cpu0=$(cpu_ticks "$pid"); t0=$(date +%s%N)
  "$SUB_EXE" --servers "$(rp_http "$f")" --node-prefix rs --count "$n" --quiet >"$WORK/sub.log" 2>&1 &
  sub=$!
  track $sub
  # attached = N established connections and the server's CPU at rest
  # (asking /v1/proxies before sampling would itself grow the RSS by the
  # size of its N-entry JSON answer, so that is only checked afterwards)
  local port=${f_http##*:} est=0 prev=-1 now_t
  for _ in $(seq 240); do
    est=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
    now_t=$(cpu_ticks "$pid")
    [ "$est" -ge "$n" ] && [ $((now_t - prev)) -le 1 ] && break
    prev=$now_t
    sleep 0.5
  done
  t1=$(date +%s%N)
  sleep 1
  rss1=$(rss_kib "$pid"); cpu1=$(cpu_ticks "$pid")
  c=$(connected_on "$f_http")
  printf '{"bench":"scale_sub","system":"raftplane","client":"raftplane-subscriber","n":%s,"connected":%s,"attach_ms":%s,"rss_before_kib":%s,"rss_attached_kib":%s,"cpu_attach_s":%s}\n' \
    "$n" "$c" $(( (t1 - t0) / 1000000 )) "$rss0" "$rss1" "$("$PY" -c "print(($cpu1-$cpu0)/$CLK_TCK)")" >>"$OUT/results.jsonl"
  log "  raftplane-subscriber x$n: $c connected, RSS $rss0 -> $rss1 KiB ($("$PY" -c "print('%.1f' % (($rss1-$rss0)/$n))") KiB/subscriber)"
  stop_pids "$sub"
  rp_stop
}

for n in $NS; do
  log "scale N=$n: raftplane"
  rp_start
  f=$(( RP_LEADER % 3 + 1 ))
  rp_setup
  r=$("$PROP_BIN" --system rp --servers "$(rp_http "$f")" --writer "$RP_LEADER_HTTP" --n "$n" \
    --changes "$CHANGES" --warmup 2 --gap-ms 100 --idle-s "$IDLE" --server-pid "${RP_PIDS[$f]}" --label follower)
  printf '{"bench":"scale",%s\n' "${r#\{}" >>"$OUT/results.jsonl"
  log "  $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); s=d["server"]; n=d["n"]; print("RSS %d -> %d KiB (%.1f KiB/subscriber; %.1f after changes), CPU attach %.2f s, idle %.2f s/%.0f s, changes %.2f s; propagation p50 %.0f ms" % (s["rss_before_kib"], s["rss_attached_kib"], (s["rss_attached_kib"]-s["rss_before_kib"])/n, (s["rss_after_kib"]-s["rss_before_kib"])/n, s["cpu_attach_s"], s["cpu_idle_s"], s["idle_s"], s["cpu_changes_s"], d["last_ms"]["p50"]))' "$r")"
  rp_stop
  rp_subscriber_scale "$n"

  log "scale N=$n: etcd (anchor)"
  etcd_start
  f=$(( ETCD_LEADER % 3 + 1 ))
  sleep 1
  r=$("$PROP_BIN" --system etcd --servers "$(etcd_client "$f")" --writer "$ETCD_LEADER_HTTP" --n "$n" \
    --changes "$CHANGES" --warmup 2 --gap-ms 100 --idle-s "$IDLE" --server-pid "${ETCD_PIDS[$f]}" --label follower)
  printf '{"bench":"scale",%s\n' "${r#\{}" >>"$OUT/results.jsonl"
  log "  $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); s=d["server"]; n=d["n"]; print("RSS %d -> %d KiB (%.1f KiB/watcher; %.1f after changes), CPU attach %.2f s, idle %.2f s/%.0f s, changes %.2f s; propagation p50 %.0f ms" % (s["rss_before_kib"], s["rss_attached_kib"], (s["rss_attached_kib"]-s["rss_before_kib"])/n, (s["rss_after_kib"]-s["rss_before_kib"])/n, s["cpu_attach_s"], s["cpu_idle_s"], s["idle_s"], s["cpu_changes_s"], d["last_ms"]["p50"]))' "$r")"
  etcd_stop
done
