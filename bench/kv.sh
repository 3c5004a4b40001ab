#!/usr/bin/env bash
# Key/value benchmark: replicated writes and linearizable reads, raftplane vs
# etcd 3.4 (JSON gateway), 3 nodes each on 127.0.0.1, measured with wrk.
#
#   bash bench/kv.sh            (KV_DURATION=5 KV_REPS=3 KV_WARMUP=2 by default)
#
# Writes: raftplane PUT /v1/kv/{key} (200-byte raw body) vs etcd
# POST /v3/kv/put (same 200-byte value, base64 in JSON), at 1, 16 and 64
# connections. Reads: raftplane GET /v1/kv/{key} (linearizable) vs etcd
# POST /v3/kv/range (linearizable), at 64 connections. Each connection count
# runs against the leader only ("leader") and, from 16 connections on, also
# spread over all three members ("all": one wrk per member, connections split
# evenly; followers forward to / confirm with the leader in both systems).
# Both clusters stay up for the whole script; every measurement runs both
# systems back to back, KV_REPS times, alternating which one goes first, after
# a KV_WARMUP-second warm-up of each. Results: JSON lines in $OUT/results.jsonl.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare

DUR=${KV_DURATION:-5}
REPS=${KV_REPS:-3}
WARM=${KV_WARMUP:-2}
LUA=$BENCH/lib/kv.lua

rp_start
etcd_start

# run_load SYSTEM OP CONNS ENDPOINTS SECONDS -> merged JSON on stdout
run_load() {
  local sys=$1 op=$2 conns=$3 eps=$4 secs=$5 mode targets=() pids=() i c
  local f="$WORK/wrk.$$.$RANDOM.jsonl"
  if [ "$sys" = raftplane ]; then
    mode=$([ "$op" = write ] && echo rp_put || echo rp_get)
    if [ "$eps" = leader ]; then targets=("$RP_LEADER_HTTP"); else targets=("$(rp_http 1)" "$(rp_http 2)" "$(rp_http 3)"); fi
    spids=("${RP_PIDS[@]}")
  else
    mode=$([ "$op" = write ] && echo etcd_put || echo etcd_range)
    if [ "$eps" = leader ]; then targets=("$ETCD_LEADER_HTTP"); else targets=("$(etcd_client 1)" "$(etcd_client 2)" "$(etcd_client 3)"); fi
    spids=("${ETCD_PIDS[@]}")
  fi
  local n=${#targets[@]} cpu0=0 cpu1=0 p
  for p in "${spids[@]}"; do cpu0=$((cpu0 + $(cpu_ticks "$p"))); done
  for i in $(seq 0 $((n - 1))); do
    c=$((conns / n + (i < conns % n ? 1 : 0)))
    local t=$(( n == 1 && conns > 1 ? 2 : 1 ))
    WRK_OUT=$f.$i wrk -t"$t" -c"$c" -d"${secs}s" --timeout 10s -s "$LUA" "http://${targets[$i]}" -- "$mode" 64 200 \
      >"$f.stdout.$i" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
  for p in "${spids[@]}"; do cpu1=$((cpu1 + $(cpu_ticks "$p"))); done
  "$PY" "$BENCH/lib/wrkmerge.py" "$f".[0-9] | "$PY" -c '
import json,sys
d=json.load(sys.stdin); d["server_cpu_s"]=round(int(sys.argv[1])/int(sys.argv[2]),2); print(json.dumps(d))' \
    $((cpu1 - cpu0)) "$CLK_TCK"
}

# measure OP CONNS ENDPOINTS
measure() {
  local op=$1 conns=$2 eps=$3 rep sys order r
  log "kv $op c=$conns endpoints=$eps: warm-up"
  run_load raftplane "$op" "$conns" "$eps" "$WARM" >/dev/null
  run_load etcd "$op" "$conns" "$eps" "$WARM" >/dev/null
  for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order="raftplane etcd"; else order="etcd raftplane"; fi
    for sys in $order; do
      r=$(run_load "$sys" "$op" "$conns" "$eps" "$DUR")
      log "  rep $rep $sys: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("%(rps).0f req/s p50 %(p50_ms).2f ms p99 %(p99_ms).2f ms errors %(errors)d cpu %(server_cpu_s).1f s" % d)' "$r")"
      printf '{"bench":"kv","op":"%s","system":"%s","conns":%s,"endpoints":"%s","rep":%s,%s\n' \
        "$op" "$sys" "$conns" "$eps" "$rep" "${r#\{}" >>"$OUT/results.jsonl"
    done
  done
}

for spec in ${KV_WRITE_SPECS:-1:leader 16:leader 16:all 64:leader 64:all}; do
  measure write "${spec%%:*}" "${spec##*:}"
done
for spec in ${KV_READ_SPECS:-64:leader 64:all}; do
  measure read "${spec%%:*}" "${spec##*:}"
done

# sanity: a value written by the benchmark reads back with 200 bytes on both
got_rp=$(curl -s "$(rp_http 2)/v1/kv/bench-001" | wc -c)
got_etcd=$(curl -s -X POST -d "{\"key\":\"$(b64 bench-001)\"}" "http://$(etcd_client 2)/v3/kv/range" |
  "$PY" -c 'import json,sys,base64; print(len(base64.b64decode(json.load(sys.stdin)["kvs"][0]["value"])))')
log "read-back check: raftplane $got_rp bytes, etcd $got_etcd bytes"
[ "$got_rp" = 200 ] && [ "$got_etcd" = 200 ] || die "benchmark values did not read back as 200 bytes"
rp_stop
etcd_stop
