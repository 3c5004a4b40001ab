#!/usr/bin/env bash
# Where does a raftplane write go? Profiles the raftplane leader under the
# 64-connection write load of bench/kv.sh (leader only), next to the etcd
# leader under the same load for the syscall counts.
#
#   bash bench/profile.sh       (PROFILE_S=8)
#
# Prints and records ($OUT/profile.txt, and one JSON line in results.jsonl):
#   - perf record (-F 999 -g) of the raftplane leader: top DSOs and symbols
#     (self time);
#   - perf stat of syscall tracepoints on both leaders (fsync/fdatasync,
#     io_submit, writes, reads, epoll_wait) per acknowledged write;
#   - raft log entries appended per write (raftplane /v1/status last_index
#     delta / revision delta) and the server CPU time per write;
#   - diagnostics (non-default settings, to locate costs, not to compare):
#     1- and 64-connection writes and 64-connection linearizable reads with
#     the default snapshot threshold (1,024) vs --snapshot-threshold 1000000
#     (vs --no-commit-push for writes), PROFILE_ROUNDS rounds interleaved; 16-connection writes with 0 vs PROFILE_SUBS (10,000) idle
#     subscribers attached to the leader, with the leader's top symbols.
# Needs perf (linux-perf); skipped with a note when it is missing or refused.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare
SECS=${PROFILE_S:-8}
ROUNDS=${PROFILE_ROUNDS:-2}
SUBS=${PROFILE_SUBS:-10000}
LUA=$BENCH/lib/kv.lua
TXT=$OUT/profile.txt

if ! command -v perf >/dev/null || ! perf stat -e task-clock -- true >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null 2>&1 || true
fi
if ! command -v perf >/dev/null || ! perf stat -e task-clock -- true >/dev/null 2>&1; then
  log "perf is not usable here: profile skipped"
  echo "perf not usable on this machine: profile skipped" >"$TXT"
  exit 0
fi

SYSCALLS=fdatasync,fsync,io_submit,io_getevents,pwrite64,pwritev,pwritev2,write,writev,sendmsg,read,readv,recvfrom,epoll_wait,futex
events=$(echo "$SYSCALLS" | tr ',' '\n' | sed 's/^/syscalls:sys_enter_/' | paste -sd,)
# drop tracepoints this kernel does not have
ok=()
for e in ${events//,/ }; do perf stat -e "$e" -- true >/dev/null 2>&1 && ok+=("$e"); done
events=$(IFS=,; echo "${ok[*]}")

status_field() { curl -s "$1/v1/status" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

# load SYSTEM ADDR MODE SECONDS -> requests completed
load() {
  local f="$WORK/prof.$1.jsonl"
  rm -f "$f"
  WRK_OUT=$f wrk -t2 -c64 -d"$4s" --timeout 10s -s "$LUA" "http://$2" -- "$3" 64 200 >/dev/null 2>&1
  "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["requests"])' "$f"
}

: >"$TXT"
set +o pipefail # "perf report | head" ends perf with SIGPIPE
rp_start
load raftplane "$RP_LEADER_HTTP" rp_put 2 >/dev/null # warm-up
idx0=$(status_field "$RP_LEADER_HTTP" last_index)
rev0=$(status_field "$RP_LEADER_HTTP" revision)
cpu0=$(cpu_ticks "$RP_LEADER_PID")
perf record -F 999 -g -p "$RP_LEADER_PID" -o "$WORK/perf.data" -- sleep "$SECS" >/dev/null 2>&1 &
prec=$!
perf stat -x, -e "$events" -p "$RP_LEADER_PID" -o "$WORK/stat.rp" -- sleep "$SECS" >/dev/null 2>&1 &
pstat=$!
n_rp=$(load raftplane "$RP_LEADER_HTTP" rp_put "$SECS")
wait "$prec" "$pstat" || true
cpu1=$(cpu_ticks "$RP_LEADER_PID")
idx1=$(status_field "$RP_LEADER_HTTP" last_index)
rev1=$(status_field "$RP_LEADER_HTTP" revision)
rp_stop

etcd_start
load etcd "$ETCD_LEADER_HTTP" etcd_put 2 >/dev/null
ecpu0=$(cpu_ticks "$ETCD_LEADER_PID")
perf stat -x, -e "$events" -p "$ETCD_LEADER_PID" -o "$WORK/stat.etcd" -- sleep "$SECS" >/dev/null 2>&1 &
pstat=$!
n_etcd=$(load etcd "$ETCD_LEADER_HTTP" etcd_put "$SECS")
wait "$pstat" || true
ecpu1=$(cpu_ticks "$ETCD_LEADER_PID")
etcd_stop

{
  echo "== raftplane leader, 64 connections PUT /v1/kv, ${SECS} s: $n_rp writes"
  echo "raft log entries per write: $(( idx1 - idx0 )) entries / $(( rev1 - rev0 )) revisions"
  echo "leader CPU: $(( cpu1 - cpu0 )) ticks ($CLK_TCK/s) = $("$PY" -c "print('%.0f' % (1e6*($cpu1-$cpu0)/$CLK_TCK/max($n_rp,1)))") us per write"
  echo "etcd leader CPU (same load, ${SECS} s, $n_etcd writes): $("$PY" -c "print('%.0f' % (1e6*($ecpu1-$ecpu0)/$CLK_TCK/max($n_etcd,1)))") us per write"
  echo
  echo "== syscalls per acknowledged write (leader): raftplane | etcd"
  "$PY" - "$WORK/stat.rp" "$n_rp" "$WORK/stat.etcd" "$n_etcd" <<'EOF'
import sys
def rd(p):
    d = {}
    for line in open(p):
        f = line.strip().split(',')
        if len(f) > 2 and f[2].startswith('syscalls:'):
            try: d[f[2].split('sys_enter_')[1]] = float(f[0])
            except ValueError: pass
    return d
rp, nrp, et, net = rd(sys.argv[1]), float(sys.argv[2]) or 1, rd(sys.argv[3]), float(sys.argv[4]) or 1
for k in sorted(set(rp) | set(et), key=lambda k: -rp.get(k, 0) / nrp):
    if rp.get(k, 0) or et.get(k, 0):
        print("  %-14s %8.2f | %8.2f" % (k, rp.get(k, 0) / nrp, et.get(k, 0) / net))
EOF
  echo
  echo "== raftplane leader: CPU by library (perf, self time)"
  perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep '%' | head -12
  echo
  echo "== raftplane leader: top symbols (self time)"
  perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep '%' | head -30
  echo
  echo "== raftplane leader: top user-space symbols (self time)"
  perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep '%' | grep -v kernel.kallsyms | head -25
} >>"$TXT"

# ---- diagnostic 1: snapshots and commit push (writes at 1 and 64
# connections, linearizable reads at 64: their read barriers are log entries)
wrk_one() { # ADDR CONNS SECONDS [MODE] -> merged JSON of one wrk process
  local f="$WORK/diag.$RANDOM.jsonl"
  WRK_OUT=$f wrk -t"$([ "$2" = 1 ] && echo 1 || echo 2)" -c"$2" -d"$3s" --timeout 10s -s "$LUA" \
    "http://$1" -- "${4:-rp_put}" 64 200 >/dev/null 2>&1
  "$PY" "$BENCH/lib/wrkmerge.py" "$f"
}
{
  echo
  echo "== diagnostic: raftplane leader, 5 s each, $ROUNDS rounds interleaved"
} >>"$TXT"
for spec in 1:write 64:write 64:read; do
  conns=${spec%%:*} op=${spec##*:}
  mode=$([ "$op" = write ] && echo rp_put || echo rp_get)
  variants="default snapshot-threshold-1000000 no-commit-push"
  [ "$op" = read ] && variants="default snapshot-threshold-1000000"
  for round in $(seq "$ROUNDS"); do
    for variant in $variants; do
      case $variant in
        default) args=() ;;
        snapshot-threshold-1000000) args=(--snapshot-threshold 1000000 --snapshot-trailing 1000) ;;
        no-commit-push) args=(--no-commit-push) ;;
      esac
      rp_start "${args[@]}"
      wrk_one "$RP_LEADER_HTTP" "$conns" 1 rp_put >/dev/null # warm-up, and the keys to read
      s0=$(curl -s "$RP_LEADER_HTTP/metrics" | awk '/^raftplane_snapshots_taken_total/ {print $2}')
      r=$(wrk_one "$RP_LEADER_HTTP" "$conns" 5 "$mode")
      s1=$(curl -s "$RP_LEADER_HTTP/metrics" | awk '/^raftplane_snapshots_taken_total/ {print $2}')
      rp_stop
      printf '{"bench":"diag_snap","op":"%s","conns":%s,"variant":"%s","round":%s,"snapshots":%s,%s\n' \
        "$op" "$conns" "$variant" "$round" $(( ${s1:-0} - ${s0:-0} )) "${r#\{}" >>"$OUT/results.jsonl"
      "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("  %-5s c=%-3s round %s %-28s %6.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  snapshots %s" % (sys.argv[6], sys.argv[4], sys.argv[2], sys.argv[3], d["rps"], d["p50_ms"], d["p99_ms"], sys.argv[5]))' \
        "$r" "$round" "$variant" "$conns" $(( ${s1:-0} - ${s0:-0} )) "$op" >>"$TXT"
    done
  done
done

# ---- diagnostic 2: do idle subscribers cost the write path?
ulimit -n "$(ulimit -Hn)"
rp_start
for obj in 'clusters/pbc {"lb_policy":"round_robin","endpoints":[{"address":"127.0.0.1","port":19999}]}' \
           'listeners/pbl {"address":"127.0.0.1","port":19998,"nodes":["*"]}' \
           'routes/pbr {"listener":"pbl","priority":100,"match":{"prefix":"/"},"cluster":"pbc"}'; do
  curl -sf -X PUT "$RP_LEADER_HTTP/v1/${obj%% *}" -d "${obj#* }" >/dev/null || die "setup PUT failed"
done
wrk_one "$RP_LEADER_HTTP" 16 2 >/dev/null
r0=$(wrk_one "$RP_LEADER_HTTP" 16 5)
"$SUB_EXE" --servers "$RP_LEADER_HTTP" --node-prefix d --count "$SUBS" --quiet >"$WORK/diag-sub.log" 2>&1 &
sub=$!
track $sub
for _ in $(seq 120); do
  c=$(curl -s --max-time 5 "$RP_LEADER_HTTP/v1/proxies?scope=local" |
    "$PY" -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["proxies"] if p.get("connected")))' 2>/dev/null || echo 0)
  [ "$c" -ge "$SUBS" ] && break
  sleep 0.5
done
perf record -F 999 -g -p "$RP_LEADER_PID" -o "$WORK/perf.subs.data" -- sleep 5 >/dev/null 2>&1 &
prec=$!
r1=$(wrk_one "$RP_LEADER_HTTP" 16 5)
wait "$prec" || true
stop_pids "$sub"
rp_stop
printf '{"bench":"diag_subs","subscribers":0,%s\n' "${r0#\{}" >>"$OUT/results.jsonl"
printf '{"bench":"diag_subs","subscribers":%s,%s\n' "$c" "${r1#\{}" >>"$OUT/results.jsonl"
{
  echo
  echo "== diagnostic: 16-connection writes to the leader with idle subscribers attached to it"
  "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("  0 subscribers:      %6.0f writes/s  p50 %6.2f ms  p99 %6.2f ms" % (d["rps"], d["p50_ms"], d["p99_ms"]))' "$r0"
  "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("  %-5s subscribers:  %6.0f writes/s  p50 %6.2f ms  p99 %6.2f ms" % (sys.argv[2], d["rps"], d["p50_ms"], d["p99_ms"]))' "$r1" "$c"
  echo "  leader's top user-space symbols with them attached (self time):"
  perf report -i "$WORK/perf.subs.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep '%' | grep -v kernel.kallsyms | head -8
} >>"$TXT"
cat "$TXT" >&2
printf '{"bench":"profile","rp_writes":%s,"rp_entries":%s,"rp_revisions":%s,"rp_cpu_s":%s,"etcd_writes":%s,"etcd_cpu_s":%s}\n' \
  "$n_rp" $((idx1 - idx0)) $((rev1 - rev0)) "$("$PY" -c "print(($cpu1-$cpu0)/$CLK_TCK)")" \
  "$n_etcd" "$("$PY" -c "print(($ecpu1-$ecpu0)/$CLK_TCK)")" >>"$OUT/results.jsonl"
