#!/usr/bin/env bash
# What telemetry costs (issue 12, docs/telemetry.md), against raftplane itself:
#
#   bash bench/telemetry.sh   (TELE_INTERVALS="1000 10000" TELE_ROUNDS=5 TELE_DURATION=10
#                              TELE_WARMUP=2 TELE_CONNS=64 TELE_CG=1 TELE_CG_REQUESTS=20000
#                              TELE_N=1000 TELE_WINDOW_S=60 TELE_PARTS="proxy cg server")
#
# For each report interval I in TELE_INTERVALS a fresh 3-node cluster runs
# with --report-interval-ms I (1000: reports ten times as often as the
# default 10000, so their cost is easier to see), then:
#
# 1. proxy: two raftplane-proxy --workers 1 side by side, "on" (reports,
#    the default) and "off" (--no-report), each with its own listener and
#    route to one raftplane-demo-backend. wrk -t2 -cTELE_CONNS, TELE_DURATION
#    s per run, after a warm-up of each; TELE_ROUNDS rounds, order
#    alternating (on off, off on, ...). Per run: req/s, p50, p99, errors,
#    the proxy's CPU per request, the 1-min load average. Goal of the
#    issue: throughput on / off >= 0.98.
# 2. cg (TELE_CG=1): the same cost counted deterministically: each variant
#    runs under valgrind --tool=callgrind; after a warm-up of 1,000 requests
#    the counters are zeroed (callgrind_control -z), TELE_CG_REQUESTS GET
#    requests are sent on one keep-alive connection (bench/lib/httpload.py),
#    and the counters dumped (callgrind_control -d): instructions per
#    request, on vs off. Reports go by wall-clock time while callgrind
#    slows the proxy ~50x, so the "on" figure carries ~50x more reports per
#    request than at full speed: an upper bound of the cost.
# 3. server: TELE_N subscribers (raftplane-subscriber --count N, the real
#    protocol) attach to one follower, "report" (--report: each POSTs a
#    Report every interval, 2 routes, 2 clusters, 3 endpoints, to the
#    server it is subscribed to) vs "quiet" (the same subscribers without
#    --report), each on a fresh cluster. Once all are attached (and, with
#    --report, all reported), over TELE_WINDOW_S s: the follower's CPU (utime+stime from
#    /proc/PID/stat), its VmRSS before attach / attached / at the end, and
#    from its /metrics raftplane_telemetry_bytes, _samples, _reporters;
#    then the time of GET /metrics on that follower and on the leader (the
#    fleet aggregates fan out to every member), 5 scrapes each.
#
# Results: JSON lines ("bench":"tele_proxy" / "tele_cg" / "tele_server") in
# $OUT/results.jsonl; bench/lib/telereport.py prints the table at the end
# and makes it the "Telemetry" section of RESULTS.md.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare
ulimit -n "$(ulimit -Hn)"

INTERVALS=${TELE_INTERVALS:-1000 10000}
ROUNDS=${TELE_ROUNDS:-5}
DUR=${TELE_DURATION:-10}
WARM=${TELE_WARMUP:-2}
CONNS=${TELE_CONNS:-64}
CG=${TELE_CG:-1}
CG_N=${TELE_CG_REQUESTS:-20000}
SUBS_N=${TELE_N:-1000}
WINDOW=${TELE_WINDOW_S:-60}
PARTS=" ${TELE_PARTS:-proxy cg server} "
part() { [[ $PARTS == *" $1 "* ]]; }

PROXY_BIN=$BUILD/proxy/raftplane-proxy
BACKEND_BIN=$BUILD/proxy/raftplane-demo-backend
if [ -z "${BENCH_NO_BUILD:-}" ] || [ ! -x "$PROXY_BIN" ] || [ ! -x "$BACKEND_BIN" ]; then
  make -C "$BUILD" -j"$(nproc)" raftplane-proxy raftplane-demo-backend >/dev/null
fi
# started through symlinks, like the servers (lib/common.sh): no broad pkill hits them
ln -s "$PROXY_BIN" "$WORK/bin/rpb-edge"
ln -s "$BACKEND_BIN" "$WORK/bin/rpb-upstream"
PROXY_EXE=$WORK/bin/rpb-edge
BACKEND_EXE=$WORK/bin/rpb-upstream
if [ "$CG" = 1 ] && part cg && ! command -v valgrind >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null 2>&1 || true
fi

# ports (offsets from PORT_BASE; the cluster has 1-3 and 11-13): backend 21,
# listeners on 22 / off 24 / cg 26, admins 23 / 25 / 27, the subscribers'
# listener 28
P_BACKEND=$((PORT_BASE + 21))
declare -A P_LISTEN=([on]=$((PORT_BASE + 22)) [off]=$((PORT_BASE + 24)) [cg]=$((PORT_BASE + 26)))
declare -A P_ADMIN=([on]=$((PORT_BASE + 23)) [off]=$((PORT_BASE + 25)) [cg]=$((PORT_BASE + 27)))
P_SIM=$((PORT_BASE + 28))
need_ports_free "$P_BACKEND" "${P_LISTEN[@]}" "${P_ADMIN[@]}" "$P_SIM"

load1() { cut -d' ' -f1 /proc/loadavg; }
api_put() { # PATH JSON
  curl -sf --max-time 10 -X PUT "$RP_LEADER_HTTP/v1/$1" -d "$2" >/dev/null || die "PUT /v1/$1 failed"
}
metric() { # URL NAME -> value (sum over label sets), 0 when absent
  curl -s --max-time 30 "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%.0f\n", s}'
}
wait_200() { # PORT SECONDS
  local t
  for t in $(seq $(($2 * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "127.0.0.1:$1/" 2>/dev/null)" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}

"$BACKEND_EXE" --listen "127.0.0.1:$P_BACKEND" --name tele-backend 2>"$WORK/backend.log" &
BACKEND_PID=$!
track $BACKEND_PID

# the mesh of the two measured proxies and the callgrind one
mesh_proxies() {
  local v
  api_put clusters/tb-backend "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":$P_BACKEND}]}"
  for v in on off cg; do
    api_put "listeners/tb-$v" "{\"address\":\"127.0.0.1\",\"port\":${P_LISTEN[$v]},\"nodes\":[\"tb-$v\"]}"
    api_put "routes/tb-$v" "{\"listener\":\"tb-$v\",\"match\":{\"prefix\":\"/\"},\"cluster\":\"tb-backend\"}"
  done
}

proxy_args() { # VARIANT
  echo "--node-id tb-$1 --servers $(rp_all_http) --admin 127.0.0.1:${P_ADMIN[$1]} --workers 1"
  [ "$1" = off ] && echo "--no-report"
  return 0
}

# ---- 1. proxy throughput, telemetry on vs off ---------------------------------------
run_wrk() { # VARIANT INTERVAL ROUND SECONDS [record]
  local v=$1 iv=$2 round=$3 secs=$4 rec=${5:-} out c0 c1 l
  l=$(load1)
  c0=$(cpu_ticks "${PROXY_PID[$v]}")
  out=$(wrk -t2 -c"$CONNS" -d"${secs}s" --timeout 10s --latency "http://127.0.0.1:${P_LISTEN[$v]}/" 2>&1) ||
    die "wrk against the $v proxy failed: $out"
  c1=$(cpu_ticks "${PROXY_PID[$v]}")
  [ -n "$rec" ] || return 0
  "$PY" - "$v" "$iv" "$round" "$((c1 - c0))" "$CLK_TCK" "$l" "$secs" <<PYEOF >>"$OUT/results.jsonl"
import json, re, sys
out = """$out"""
v, iv, rnd, ticks, hz, load, secs = sys.argv[1:]
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s)$", s)
    return float(m[1]) * {"us": 1e-3, "ms": 1, "s": 1e3}[m[2]]
lat = {}
for l in out.splitlines():
    f = l.split()
    if len(f) == 2 and f[0] in ("50%", "99%"):
        lat[f[0]] = ms(f[1])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
req = int(re.search(r"(\d+) requests in", out)[1])
errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs += int(m[1]) if m else 0
cpu = int(ticks) / int(hz)
print(json.dumps({"bench": "tele_proxy", "interval_ms": int(iv), "variant": v, "round": int(rnd),
                  "rps": rps, "requests": req, "p50_ms": lat.get("50%"), "p99_ms": lat.get("99%"),
                  "errors": errs, "proxy_cpu_s": round(cpu, 2),
                  "proxy_cpu_us_per_req": round(1e6 * cpu / max(req, 1), 2),
                  "duration_s": int(secs), "conns": $CONNS, "load1": float(load)}))
PYEOF
  tail -1 "$OUT/results.jsonl" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("  interval %(interval_ms)d ms round %(round)d %(variant)-3s: %(rps).0f req/s p50 %(p50_ms).2f ms p99 %(p99_ms).2f ms errors %(errors)d, proxy CPU %(proxy_cpu_us_per_req).1f us/request, load %(load1).2f" % d)' >&2
}

proxy_part() { # INTERVAL
  local iv=$1 v r
  declare -gA PROXY_PID=()
  for v in on off; do
    # shellcheck disable=SC2046
    "$PROXY_EXE" $(proxy_args $v) 2>"$WORK/proxy-$v.log" &
    PROXY_PID[$v]=$!
    track $!
  done
  for v in on off; do
    wait_200 "${P_LISTEN[$v]}" 30 || die "the $v proxy does not serve: $(tail -3 "$WORK/proxy-$v.log")"
  done
  # the "on" proxy reports: wait for its first accepted report
  for _ in $(seq $((iv / 100 + 100))); do
    [ "$(metric "http://127.0.0.1:${P_ADMIN[on]}" raftplane_proxy_report_last_seq)" -ge 1 ] && break
    sleep 0.1
  done
  log "telemetry proxy interval $iv ms: on reports (last seq $(metric "http://127.0.0.1:${P_ADMIN[on]}" raftplane_proxy_report_last_seq)), off does not ($(metric "http://127.0.0.1:${P_ADMIN[off]}" raftplane_proxy_report_last_seq))"
  for v in on off; do run_wrk "$v" "$iv" 0 "$WARM"; done
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run_wrk on "$iv" "$r" "$DUR" rec; run_wrk off "$iv" "$r" "$DUR" rec
    else run_wrk off "$iv" "$r" "$DUR" rec; run_wrk on "$iv" "$r" "$DUR" rec; fi
  done
  printf '{"bench":"tele_proxy_reports","interval_ms":%s,"on_accepted":%s,"off_sent":%s}\n' "$iv" \
    "$(metric "http://127.0.0.1:${P_ADMIN[on]}" 'raftplane_proxy_reports_total{result="accepted"}')" \
    "$(metric "http://127.0.0.1:${P_ADMIN[off]}" raftplane_proxy_reports_total)" >>"$OUT/results.jsonl"
  stop_pids "${PROXY_PID[on]}" "${PROXY_PID[off]}"
}

# ---- 2. instructions per request under callgrind ---------------------------------------
cg_one() { # VARIANT(on|off) INTERVAL
  local v=$1 iv=$2 pid args dir seq0 seq1 ir
  dir=$WORK/cg-$v-$iv
  mkdir -p "$dir"
  args=$(proxy_args cg)
  [ "$v" = off ] && args+=" --no-report"
  # shellcheck disable=SC2086
  valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.%p" "$PROXY_EXE" $args \
    2>"$dir/proxy.log" &
  pid=$!
  track $pid
  wait_200 "${P_LISTEN[cg]}" 120 || die "the proxy under callgrind does not serve: $(tail -3 "$dir/proxy.log")"
  if [ "$v" = on ]; then
    for _ in $(seq $((iv / 100 + 300))); do
      [ "$(metric "http://127.0.0.1:${P_ADMIN[cg]}" raftplane_proxy_report_last_seq)" -ge 1 ] && break
      sleep 0.1
    done
  fi
  "$PY" "$BENCH/lib/httpload.py" "127.0.0.1:${P_LISTEN[cg]}" 1000 >/dev/null || die "callgrind warm-up failed"
  seq0=$(metric "http://127.0.0.1:${P_ADMIN[cg]}" raftplane_proxy_report_last_seq)
  callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control -z $pid failed"
  local t0 t1
  t0=$(date +%s.%N)
  "$PY" "$BENCH/lib/httpload.py" "127.0.0.1:${P_LISTEN[cg]}" "$CG_N" >/dev/null || die "callgrind load failed"
  t1=$(date +%s.%N)
  callgrind_control -d "$pid" >/dev/null 2>&1 || die "callgrind_control -d $pid failed"
  seq1=$(metric "http://127.0.0.1:${P_ADMIN[cg]}" raftplane_proxy_report_last_seq)
  stop_pids "$pid"
  # the dump made by -d: the file with the largest "part" number (the final
  # dump at exit is the admin scrape and shutdown only)
  ir=$(grep -h '^summary:' "$dir"/callgrind.out.*.1 2>/dev/null | awk '{print $2}' | head -1)
  [ -n "$ir" ] || die "no callgrind dump in $dir: $(ls "$dir")"
  printf '{"bench":"tele_cg","interval_ms":%s,"variant":"%s","requests":%s,"ir":%s,"ir_per_req":%s,"reports":%s,"seconds":%s}\n' \
    "$iv" "$v" "$CG_N" "$ir" "$("$PY" -c "print(round($ir / $CG_N, 1))")" "$((seq1 - seq0))" \
    "$("$PY" -c "print(round($t1 - $t0, 1))")" >>"$OUT/results.jsonl"
  log "  callgrind interval $iv ms $v: $ir instructions for $CG_N requests = $("$PY" -c "print(round($ir / $CG_N, 1))") per request ($((seq1 - seq0)) reports in $("$PY" -c "print(round($t1 - $t0, 1))") s)"
}

# ---- 3. the server's cost per reporting proxy -------------------------------------------
mesh_sim() { # what raftplane-subscriber --report reports: r0 -> c0 (e0, e1), r1 -> c1 (e2)
  api_put clusters/c0 '{"endpoints":[{"address":"10.0.0.1","port":8080},{"address":"10.0.0.2","port":8080}]}'
  api_put clusters/c1 '{"endpoints":[{"address":"10.0.0.3","port":8080}]}'
  api_put listeners/sim "{\"address\":\"127.0.0.1\",\"port\":$P_SIM,\"nodes\":[\"*\"]}"
  api_put routes/r0 '{"listener":"sim","match":{"prefix":"/a"},"cluster":"c0"}'
  api_put routes/r1 '{"listener":"sim","match":{"prefix":"/b"},"cluster":"c1"}'
}

scrape_ms() { # URL -> median of 5 GET /metrics, ms
  local i out=()
  for i in 1 2 3 4 5; do out+=("$(curl -s -o /dev/null --max-time 30 -w '%{time_total}' "$1/metrics")"); done
  printf '%s\n' "${out[@]}" | sort -g | awk '{v[NR]=$1} END {printf "%.1f\n", 1000 * v[3]}'
}

server_one() { # VARIANT(report|quiet) INTERVAL
  local v=$1 iv=$2 f fpid furl port flags=(--quiet) spid t est rep=0 rss0 rssa rss1 c0 c1 b0 l
  f=$((RP_LEADER % 3 + 1))
  fpid=${RP_PIDS[$f]}
  furl="http://$(rp_http "$f")"
  port=${furl##*:}
  [ "$v" = report ] && flags+=(--report)
  rss0=$(rss_kib "$fpid")
  b0=$(metric "$furl" raftplane_telemetry_bytes)
  "$SUB_EXE" --servers "$(rp_http "$f")" --node-prefix "sim-$v-$iv-" --count "$SUBS_N" \
    "${flags[@]}" >"$WORK/subs-$v-$iv.log" 2>&1 &
  spid=$!
  track $spid
  t=$(date +%s)
  # attached: N established connections; with --report, N reporters kept
  while :; do
    est=$(ss -Htn state established "( sport = :$port )" 2>/dev/null | wc -l)
    [ "$v" = report ] && rep=$(metric "$furl" raftplane_telemetry_reporters)
    if [ "$est" -ge "$SUBS_N" ] && { [ "$v" = quiet ] || [ "$rep" -ge "$SUBS_N" ]; }; then break; fi
    [ $(($(date +%s) - t)) -gt $((iv / 1000 * 3 + 60)) ] &&
      die "$v: only $est connections / $rep reporters after $(($(date +%s) - t)) s: $(tail -3 "$WORK/subs-$v-$iv.log")"
    sleep 0.5
  done
  sleep 2
  rssa=$(rss_kib "$fpid")
  l=$(load1)
  c0=$(cpu_ticks "$fpid")
  sleep "$WINDOW"
  c1=$(cpu_ticks "$fpid")
  rss1=$(rss_kib "$fpid")
  local mtext
  mtext=$(curl -s --max-time 30 "$furl/metrics")
  local tb ts tr acc sl sr mb
  tb=$(awk '$1 == "raftplane_telemetry_bytes" {print $2}' <<<"$mtext")
  ts=$(awk '$1 == "raftplane_telemetry_samples" {print $2}' <<<"$mtext")
  tr=$(awk '$1 == "raftplane_telemetry_reporters" {print $2}' <<<"$mtext")
  acc=$(awk '$1 == "raftplane_telemetry_reports_total{result=\"accepted\"}" {print $2}' <<<"$mtext")
  mb=${#mtext}
  sl=$(scrape_ms "$furl")
  sr=$(scrape_ms "http://$RP_LEADER_HTTP")
  kill -0 "$spid" 2>/dev/null || die "the subscribers exited: $(tail -3 "$WORK/subs-$v-$iv.log")"
  stop_pids "$spid"
  printf '{"bench":"tele_server","interval_ms":%s,"variant":"%s","n":%s,"window_s":%s,"cpu_s":%s,"rss_before_kib":%s,"rss_attached_kib":%s,"rss_end_kib":%s,"tl_bytes_before":%s,"tl_bytes":%s,"tl_samples":%s,"tl_reporters":%s,"reports_accepted":%s,"metrics_bytes":%s,"scrape_ms_member":%s,"scrape_ms_other":%s,"attach_s":%s,"load1":%s}\n' \
    "$iv" "$v" "$SUBS_N" "$WINDOW" "$("$PY" -c "print(round(($c1 - $c0) / $CLK_TCK, 2))")" \
    "$rss0" "$rssa" "$rss1" "${b0:-0}" "${tb:-0}" "${ts:-0}" "${tr:-0}" "${acc:-0}" "$mb" "$sl" "$sr" \
    "$(($(date +%s) - t - WINDOW))" "$l" >>"$OUT/results.jsonl"
  tail -1 "$OUT/results.jsonl" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("  interval %(interval_ms)d ms %(variant)-6s N=%(n)d: follower CPU %(cpu_s).2f s over %(window_s)d s, RSS %(rss_before_kib)d -> %(rss_attached_kib)d -> %(rss_end_kib)d KiB, telemetry %(tl_bytes)d bytes in %(tl_samples)d samples of %(tl_reporters)d reporters, /metrics %(metrics_bytes)d bytes in %(scrape_ms_member).1f ms (leader %(scrape_ms_other).1f ms), load %(load1).2f" % d)' >&2
}

server_part() { # INTERVAL
  local v
  # a fresh cluster for each variant: the store keeps reports for 15 minutes
  # and the allocator keeps freed memory, either would blur the second run
  for v in quiet report; do
    rp_stop
    rp_start --report-interval-ms "$1"
    mesh_sim
    server_one "$v" "$1"
  done
}

for iv in $INTERVALS; do
  printf '{"bench":"tele_load","phase":"interval %s","load1":%s}\n' "$iv" "$(load1)" >>"$OUT/results.jsonl"
  log "telemetry: cluster with --report-interval-ms $iv"
  rp_start --report-interval-ms "$iv"
  mesh_proxies
  part proxy && proxy_part "$iv"
  if [ "$CG" = 1 ] && part cg; then
    if command -v valgrind >/dev/null && command -v callgrind_control >/dev/null; then
      cg_one off "$iv"
      cg_one on "$iv"
    else
      log "valgrind not available: no instruction counts"
    fi
  fi
  part server && server_part "$iv"
  rp_stop
done

stop_pids "$BACKEND_PID"
"$PY" "$BENCH/lib/telereport.py" "$OUT" >&2 || true
