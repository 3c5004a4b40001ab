#!/usr/bin/env bash
# What TLS costs: the same workloads on three 3-node raftplane clusters that
# run side by side for the whole script, measured in alternating rounds:
#
#   plain  no TLS (loopback)
#   tls    --tls-cert/--tls-key/--tls-client-ca on every server: HTTPS on the
#          API and mutual TLS between the raft peers (docs/security.md)
#   token  as tls, plus --bootstrap-token-file: every request carries
#          "Authorization: Bearer rpt_..." (--max-writes-per-token 0, so the
#          per-token write limit does not cap the benchmark)
#
#   bash bench/tls.sh     (TLS_REPS=5 TLS_DURATION=5 TLS_WARMUP=2 TLS_PROP_NS="10 100"
#                          TLS_PROP_CHANGES=100 TLS_PROP_ROUNDS=3 TLS_STORM_N=1000
#                          TLS_STORM_ROUNDS=3 TLS_PERF=1)
#
# 1. Key/value (wrk + bench/lib/kv.lua, as bench/kv.sh, leader only): writes
#    (200-byte values) at 16 and 64 connections, linearizable reads at 64.
#    wrk speaks HTTPS to the TLS clusters (Debian's wrk is linked with
#    OpenSSL) and sends the token (WRK_TOKEN) to the token cluster. Each
#    workload: a warm-up of each variant, then TLS_REPS rounds of the three
#    variants back to back, the order rotated every round.
# 2. Propagation (bench/tools/propbench, as bench/propagation.sh): write ack
#    -> all N subscribers ACKed, N = 10 and 100 spread over the three
#    members. With TLS every subscriber has its own node certificate
#    (spiffe://raftplane/node/pb-<i>, made by propbench with the OpenSSL API
#    from the CA's key) and its own full handshake; the writer and the
#    rollout checker use HTTPS (with the token on the token cluster).
# 3. Reconnect storm (propbench --storm): TLS_STORM_N subscribers attached to
#    one follower all drop their connections, then reconnect at once (like
#    proxies restarting: no version held): time until every one received its
#    snapshot again, the follower's CPU over the storm, and the CPU per
#    connection; TLS - plain per connection = the server's cost of one full
#    handshake (ECDHE P-256, ECDSA signature, verifying the client's chain).
# 4. perf (TLS_PERF=1, when perf works): perf record -g of the TLS leader
#    under 64-connection writes and reads, and of the TLS follower during a
#    storm, after the measured rounds: $OUT/tls-profile.txt.
#
# Results: JSON lines ("bench":"tls_kv" / "tls_prop" / "tls_storm") in
# $OUT/results.jsonl; the table (bench/lib/tlsreport.py) is printed at the end
# and becomes the "TLS" section of RESULTS.md.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
bench_prepare
ulimit -n "$(ulimit -Hn)"

REPS=${TLS_REPS:-5}
DUR=${TLS_DURATION:-5}
WARM=${TLS_WARMUP:-2}
WRITE_CONNS=${TLS_WRITE_CONNS:-16 64}
READ_CONNS=${TLS_READ_CONNS:-64}
PROP_NS=${TLS_PROP_NS:-10 100}
PROP_CHANGES=${TLS_PROP_CHANGES:-100}
PROP_ROUNDS=${TLS_PROP_ROUNDS:-3}
STORM_N=${TLS_STORM_N:-1000}
STORM_ROUNDS=${TLS_STORM_ROUNDS:-3}
PERF=${TLS_PERF:-1}
PERF_S=${TLS_PERF_S:-8}
PARTS=" ${TLS_PARTS:-kv propagation storm perf} "
part() { [[ $PARTS == *" $1 "* ]]; }
VARIANTS=(plain tls token)
LUA=$BENCH/lib/kv.lua

# ---- certificates and the token ----------------------------------------------
# CA and server certificates as the tests make them (tests/lib/tlscerts.py,
# EC P-256, spiffe://raftplane/server/ID + IP 127.0.0.1); the proxies' node
# certificates are made by propbench from ca.key.
PKI=$WORK/pki
"$PY" - "$ROOT/tests/lib" "$PKI" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from tlscerts import Pki
p = Pki(sys.argv[2])
for i in (1, 2, 3):
    p.server(i)
EOF
TOKEN="rpt_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
(umask 077 && printf '%s\n' "$TOKEN" >"$PKI/admin.token")

# ---- three clusters ------------------------------------------------------------
# ports (offsets from PORT_BASE): plain raft 1-3 http 11-13; tls raft 21-23
# http 31-33; token raft 5-7 http 15-17
declare -A ROFF=([plain]=0 [tls]=20 [token]=4) HOFF=([plain]=10 [tls]=30 [token]=14)
declare -A CL_PIDS LEADER LEADER_PID LEADER_HTTP
cl_raft() { echo "127.0.0.1:$((PORT_BASE + ${ROFF[$1]} + $2))"; }
cl_http() { echo "127.0.0.1:$((PORT_BASE + ${HOFF[$1]} + $2))"; }
cl_url() { if [ "$1" = plain ]; then echo "http://$2"; else echo "https://$2"; fi; }
cl_all() { echo "$(cl_http "$1" 1),$(cl_http "$1" 2),$(cl_http "$1" 3)"; }
cl_pid() { local a; read -ra a <<<"${CL_PIDS[$1]}"; echo "${a[$(($2 - 1))]}"; }
cl_curl() { # VARIANT CURL-ARGS...
  local v=$1 a=(-s --max-time 5)
  shift
  [ "$v" != plain ] && a+=(--cacert "$PKI/ca.pem")
  [ "$v" = token ] && a+=(-H "Authorization: Bearer $TOKEN")
  curl "${a[@]}" "$@"
}
node_args() { # VARIANT ID
  echo "--max-conns-per-ip 0" # propbench plays 1,000 proxies from one address
  [ "$1" = plain ] && return 0
  echo "--tls-cert $PKI/server-$2.pem --tls-key $PKI/server-$2.key --tls-client-ca $PKI/ca.pem"
  [ "$1" = token ] && echo "--bootstrap-token-file $PKI/admin.token --max-writes-per-token 0"
  return 0
}

cl_start() { # VARIANT
  local v=$1 i peers="" pids=()
  for i in 1 2 3; do peers+="${peers:+,}$i=$(cl_raft "$v" $i)@$(cl_http "$v" $i)"; done
  mkdir -p "$WORK/$v"
  for i in 1 2 3; do
    # shellcheck disable=SC2046
    "$RP_EXE" --id "$i" --data-dir "$WORK/$v/n$i" --raft "$(cl_raft "$v" $i)" \
      --http "$(cl_http "$v" $i)" --bootstrap "$peers" $(node_args "$v" $i) 2>>"$WORK/$v/n$i.log" &
    pids+=($!)
    track $!
  done
  CL_PIDS[$v]="${pids[*]}"
  for _ in $(seq 300); do
    for i in 1 2 3; do
      if cl_curl "$v" "$(cl_url "$v" "$(cl_http "$v" $i)")/v1/status" 2>/dev/null |
        "$PY" -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["state"]=="leader" and s.get("leader_ready") else 1)' 2>/dev/null &&
        cl_curl "$v" -f "$(cl_url "$v" "$(cl_http "$v" 1)")/readyz" >/dev/null &&
        cl_curl "$v" -f "$(cl_url "$v" "$(cl_http "$v" 2)")/readyz" >/dev/null &&
        cl_curl "$v" -f "$(cl_url "$v" "$(cl_http "$v" 3)")/readyz" >/dev/null; then
        LEADER[$v]=$i
        LEADER_PID[$v]=$(cl_pid "$v" $i)
        LEADER_HTTP[$v]=$(cl_http "$v" $i)
        log "cluster $v up: leader is node $i (${LEADER_HTTP[$v]})"
        return 0
      fi
    done
    sleep 0.1
  done
  tail -n 5 "$WORK/$v"/n*.log >&2 || true
  die "cluster $v did not become ready"
}

# the mesh objects propagation and the storm change / subscribe to
cl_setup() {
  local v=$1 obj
  for obj in 'clusters/pbc {"lb_policy":"round_robin","endpoints":[{"address":"127.0.0.1","port":19999}]}' \
             'listeners/pbl {"address":"127.0.0.1","port":19998,"nodes":["*"]}' \
             'routes/pbr {"listener":"pbl","priority":100,"match":{"prefix":"/"},"cluster":"pbc"}'; do
    cl_curl "$v" -f -X PUT "$(cl_url "$v" "${LEADER_HTTP[$v]}")/v1/${obj%% *}" -d "${obj#* }" >/dev/null ||
      die "setup PUT /v1/${obj%% *} on $v failed"
  done
}

need_ports_free $((PORT_BASE + 1)) $((PORT_BASE + 3)) $((PORT_BASE + 5)) $((PORT_BASE + 7)) \
  $((PORT_BASE + 11)) $((PORT_BASE + 13)) $((PORT_BASE + 15)) $((PORT_BASE + 17)) \
  $((PORT_BASE + 21)) $((PORT_BASE + 23)) $((PORT_BASE + 31)) $((PORT_BASE + 33))
for v in "${VARIANTS[@]}"; do cl_start "$v"; done
for v in "${VARIANTS[@]}"; do cl_setup "$v"; done
# the token cluster really refuses a request without the token
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.pem" "https://${LEADER_HTTP[token]}/v1/status")
[ "$code" = 401 ] || die "the token cluster answered $code (not 401) without a token"
log "token cluster: 401 without the token, as it must"

load_mark() { printf '{"bench":"tls_load","phase":"%s","load1":%s}\n' "$1" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/results.jsonl"; }

# rotate the variants: round R starts with variant (R-1) mod 3
order() { local r=$1 k n=${#VARIANTS[@]} out=(); for k in $(seq 0 $((n - 1))); do out+=("${VARIANTS[$(((r - 1 + k) % n))]}"); done; echo "${out[*]}"; }

# ---- 1. key/value ---------------------------------------------------------------
# run_load VARIANT OP CONNS SECONDS -> merged JSON on stdout
run_load() {
  local v=$1 op=$2 conns=$3 secs=$4 mode f p cpu0=0 cpu1=0 tok=""
  mode=$([ "$op" = write ] && echo rp_put || echo rp_get)
  f="$WORK/wrk.$v.$RANDOM"
  [ "$v" = token ] && tok=$TOKEN
  for p in ${CL_PIDS[$v]}; do cpu0=$((cpu0 + $(cpu_ticks "$p"))); done
  # the subshell's `times` gives wrk's CPU (its only child): client_cpu_s
  (WRK_OUT=$f.0 WRK_TOKEN=$tok wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s -s "$LUA" \
    "$(cl_url "$v" "${LEADER_HTTP[$v]}")" -- "$mode" 64 200 >"$f.stdout" 2>&1 || true
   times >"$f.times")
  for p in ${CL_PIDS[$v]}; do cpu1=$((cpu1 + $(cpu_ticks "$p"))); done
  [ -s "$f.0" ] || die "wrk against $v gave no result: $(tail -3 "$f.stdout")"
  "$PY" "$BENCH/lib/wrkmerge.py" "$f.0" | "$PY" -c '
import json,re,sys
d=json.load(sys.stdin); d["server_cpu_s"]=round(int(sys.argv[1])/int(sys.argv[2]),2)
t=open(sys.argv[3]).read().splitlines()[-1]
d["client_cpu_s"]=round(sum(int(m)*60+float(x) for m,x in re.findall(r"(\d+)m([\d.]+)s",t)),2)
print(json.dumps(d))' \
    $((cpu1 - cpu0)) "$CLK_TCK" "$f.times"
}

kv_measure() { # OP CONNS
  local op=$1 conns=$2 rep v r
  log "tls kv $op c=$conns: warm-up"
  for v in "${VARIANTS[@]}"; do run_load "$v" "$op" "$conns" "$WARM" >/dev/null; done
  for rep in $(seq "$REPS"); do
    for v in $(order "$rep"); do
      r=$(run_load "$v" "$op" "$conns" "$DUR")
      log "  rep $rep $v: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("%(rps).0f req/s p50 %(p50_ms).2f ms p99 %(p99_ms).2f ms errors %(errors)d cpu servers %(server_cpu_s).1f s wrk %(client_cpu_s).1f s" % d)' "$r")"
      printf '{"bench":"tls_kv","op":"%s","variant":"%s","conns":%s,"rep":%s,%s\n' \
        "$op" "$v" "$conns" "$rep" "${r#\{}" >>"$OUT/results.jsonl"
    done
  done
}

if part kv; then
  load_mark kv
  for c in $WRITE_CONNS; do kv_measure write "$c"; done
  for c in $READ_CONNS; do kv_measure read "$c"; done
  for v in "${VARIANTS[@]}"; do
    got=$(cl_curl "$v" "$(cl_url "$v" "$(cl_http "$v" 2)")/v1/kv/bench-001" | wc -c)
    [ "$got" = 200 ] || die "$v: bench-001 read back as $got bytes, not 200"
  done
  log "read-back check: 200 bytes on every cluster"
fi

# ---- 2. propagation ----------------------------------------------------------------
tls_flags() { # VARIANT -> propbench flags
  [ "$1" = plain ] && return 0
  echo "--tls-ca $PKI/ca.pem --tls-ca-key $PKI/ca.key"
  [ "$1" = token ] && echo "--token $TOKEN"
  return 0
}

prop_one() { # VARIANT N ROUND
  local v=$1 n=$2 round=$3 r
  # shellcheck disable=SC2046
  r=$("$PROP_BIN" --system rp --servers "$(cl_all "$v")" --writer "${LEADER_HTTP[$v]}" --n "$n" \
    --changes "$PROP_CHANGES" --verify --server-pid "${LEADER_PID[$v]}" --label "$v round $round" \
    $(tls_flags "$v"))
  log "  round $round $v N=$n: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print("last p50 %.2f ms p99 %.2f ms (first p50 %.2f ms), write p50 %.2f ms, missing %d, errors %d, verified %d, handshakes %d" % (d["last_ms"]["p50"], d["last_ms"]["p99"], d["first_ms"]["p50"], d["write_ms"]["p50"], d["missing"], d["errors"], d.get("verified", 0), d["handshakes"]))' "$r")"
  printf '{"bench":"tls_prop","variant":"%s","round":%s,%s\n' "$v" "$round" "${r#\{}" >>"$OUT/results.jsonl"
}

if part propagation; then
  load_mark propagation
  for n in $PROP_NS; do
    log "tls propagation N=$n"
    for round in $(seq "$PROP_ROUNDS"); do
      for v in $(order "$round"); do prop_one "$v" "$n" "$round"; done
    done
  done
fi

# ---- 3. reconnect storm ---------------------------------------------------------------
storm_one() { # VARIANT ROUND [perf.data]
  local v=$1 round=$2 pdata=${3:-} f fpid r prec=""
  f=$((LEADER[$v] % 3 + 1))
  fpid=$(cl_pid "$v" "$f")
  if [ -n "$pdata" ]; then
    "${PERF_REC[@]}" -p "$fpid" -o "$pdata" >/dev/null 2>&1 &
    prec=$!
    sleep 0.5
  fi
  # shellcheck disable=SC2046
  r=$("$PROP_BIN" --system rp --servers "$(cl_http "$v" "$f")" --writer "${LEADER_HTTP[$v]}" \
    --n "$STORM_N" --changes 0 --warmup 0 --storm --server-pid "$fpid" --label "$v storm $round" \
    $(tls_flags "$v"))
  if [ -n "$prec" ]; then
    kill -INT "$prec" 2>/dev/null || true
    wait "$prec" 2>/dev/null || true
    return 0
  fi
  log "  storm round $round $v: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); s=d["storm"]; print("%d reconnected and attached in %.0f ms (p50 %.0f ms, p99 %.0f ms), server CPU %.3f s (%.0f us per connection), client CPU %.3f s, handshakes %d, errors %d; first attach (batched) %d ms" % (s["n"], s["ms"], s["attach_p50_ms"], s["attach_p99_ms"], s["server_cpu_s"], 1e6*s["server_cpu_s"]/s["n"], s["client_cpu_s"], s["handshakes"], s["errors"], d["attach_ms"]))' "$r")"
  printf '{"bench":"tls_storm","variant":"%s","round":%s,%s\n' "$v" "$round" "${r#\{}" >>"$OUT/results.jsonl"
}

if part storm; then
  load_mark storm
  log "tls reconnect storm: $STORM_N subscribers on one follower"
  for round in $(seq "$STORM_ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then storm_one plain "$round"; storm_one tls "$round"
    else storm_one tls "$round"; storm_one plain "$round"; fi
  done
fi

# ---- 4. perf profiles (after the measurements: they do not disturb them) ---------------
# perf record --call-graph dwarf (Debian's OpenSSL has no frame pointers),
# bucketed by purpose with bench/lib/perfbuckets.py
TXT=$OUT/tls-profile.txt
perf_ok() { command -v perf >/dev/null && perf stat -e task-clock -- true >/dev/null 2>&1; }
part perf || PERF=0
if [ "$PERF" = 1 ] && ! perf_ok; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null 2>&1 || true
fi
# shellcheck disable=SC2054
PERF_REC=(perf record -F 499 --call-graph dwarf,16384)
prof_summary() { # TITLE perf.data
  local d=$2
  echo "== $1"
  perf script -i "$d" -F ip,sym,dso 2>/dev/null | "$PY" "$BENCH/lib/perfbuckets.py" "CPU by purpose (outermost matching frame)"
  echo "-- CPU by library (self time)"
  perf report -i "$d" --stdio --no-children --sort dso -g none 2>/dev/null | grep '%' | head -8
  echo "-- top symbols (self time)"
  perf report -i "$d" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep '%' | head -12
  echo
}
if [ "$PERF" = 1 ] && perf_ok; then
  set +o pipefail # "perf report | head" ends perf with SIGPIPE
  : >"$TXT"
  events=""
  for e in write writev sendmsg sendto read readv recvfrom epoll_wait; do
    perf stat -e "syscalls:sys_enter_$e" -- true >/dev/null 2>&1 && events+="${events:+,}syscalls:sys_enter_$e"
  done
  for spec in "write rp_put" "read rp_get"; do
    op=${spec% *}
    mode=${spec#* }
    for v in plain tls; do
      cpu0=$(cpu_ticks "${LEADER_PID[$v]}")
      "${PERF_REC[@]}" -p "${LEADER_PID[$v]}" -o "$WORK/perf.$v.$op" -- sleep "$PERF_S" >/dev/null 2>&1 &
      prec=$!
      pstat=""
      if [ -n "$events" ]; then
        perf stat -x, -e "$events" -p "${LEADER_PID[$v]}" -o "$WORK/stat.$v.$op" -- sleep "$PERF_S" >/dev/null 2>&1 &
        pstat=$!
      fi
      WRK_OUT=$WORK/perf.wrk.$v.$op WRK_TOKEN="" wrk -t2 -c64 -d"${PERF_S}s" --timeout 10s -s "$LUA" \
        "$(cl_url "$v" "${LEADER_HTTP[$v]}")" -- "$mode" 64 200 >/dev/null 2>&1 || true
      wait "$prec" $pstat || true
      cpu1=$(cpu_ticks "${LEADER_PID[$v]}")
      n=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["requests"])' "$WORK/perf.wrk.$v.$op")
      echo "$v leader, 64-connection ${op}s for ${PERF_S} s under perf: $n requests, leader CPU $("$PY" -c "print('%.0f' % (1e6*($cpu1-$cpu0)/$CLK_TCK/max($n,1)))") us per request" >>"$TXT"
      if [ -n "$pstat" ] && [ -f "$WORK/stat.$v.$op" ]; then
        "$PY" - "$WORK/stat.$v.$op" "$n" >>"$TXT" <<'PYEOF'
import sys
n = max(float(sys.argv[2]), 1)
out = []
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and "sys_enter_" in f[2]:
        try:
            out.append("%s %.2f" % (f[2].split("sys_enter_")[1], float(f[0]) / n))
        except ValueError:
            pass
print("    syscalls per request: " + ", ".join(out))
PYEOF
      fi
    done
    echo >>"$TXT"
    prof_summary "tls leader, 64-connection ${op}s" "$WORK/perf.tls.$op" >>"$TXT"
    prof_summary "plain leader, 64-connection ${op}s (for comparison)" "$WORK/perf.plain.$op" >>"$TXT"
  done
  # fan-out: the leader serves a third of 100 subscribers per change
  n=${TLS_PERF_PROP_N:-100}
  fol=$((LEADER[tls] % 3 + 1))
  "${PERF_REC[@]}" -p "${LEADER_PID[tls]}" -o "$WORK/perf.prop" >/dev/null 2>&1 &
  prec=$!
  "${PERF_REC[@]}" -p "$(cl_pid tls "$fol")" -o "$WORK/perf.propf" >/dev/null 2>&1 &
  precf=$!
  cpuf0=$(cpu_ticks "$(cl_pid tls "$fol")")
  sleep 0.5
  # shellcheck disable=SC2046
  r=$("$PROP_BIN" --system rp --servers "$(cl_all tls)" --writer "${LEADER_HTTP[tls]}" --n "$n" \
    --changes "$PROP_CHANGES" --server-pid "${LEADER_PID[tls]}" --label "tls perf" $(tls_flags tls))
  kill -INT "$prec" "$precf" 2>/dev/null || true
  wait "$prec" "$precf" 2>/dev/null || true
  cpuf1=$(cpu_ticks "$(cl_pid tls "$fol")")
  echo "tls cluster, propagation to $n subscribers under perf: $("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); f=[p for p in d["per_server"] if not p["writer"]]; print("last p50 %.2f ms (leader own %.2f ms, followers %s ms), leader CPU %.2f ms per change" % (d["last_ms"]["p50"], [p for p in d["per_server"] if p["writer"]][0]["last_p50"], "/".join("%.2f" % p["last_p50"] for p in f), 1000*d["server"]["cpu_changes_s"]/(d["changes"]+5)))' "$r"); follower $fol CPU over the whole run $("$PY" -c "print('%.2f' % (($cpuf1-$cpuf0)/$CLK_TCK))") s" >>"$TXT"
  prof_summary "tls leader: attach of $n subscribers over 3 servers, then $PROP_CHANGES changes fanned out" "$WORK/perf.prop" >>"$TXT"
  prof_summary "tls follower $fol: the same run" "$WORK/perf.propf" >>"$TXT"
  storm_one tls perf "$WORK/perf.storm"
  prof_summary "tls follower: attach of $STORM_N subscribers (100 at a time), then the reconnect storm" "$WORK/perf.storm" >>"$TXT"
  set -o pipefail
  log "perf profiles in $TXT"
else
  echo "perf not usable on this machine (or TLS_PERF=0): no TLS profile" >"$TXT"
fi

for v in "${VARIANTS[@]}"; do stop_pids ${CL_PIDS[$v]}; done
"$PY" "$BENCH/lib/tlsreport.py" "$OUT" >&2 || true
