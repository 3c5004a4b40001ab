#!/usr/bin/env bash
# The whole benchmark set in one command, writing bench/RESULTS.md:
#
#   bash bench/run.sh
#
# Installs what is missing (apt-get: etcd-server, wrk, nginx-light, build
# dependencies), builds raftplane in Release into build-bench/ and the
# benchmark client, then runs, each next to its anchor:
#   idle.sh         idle RSS of a server vs an etcd member
#   kv.sh           replicated writes (1/16/64 conns) and linearizable reads vs etcd
#   propagation.sh  write ack -> N subscribers ACKed vs N etcd watchers notified
#   scale.sh        memory/CPU of one server with 1,000 and 10,000 subscribers
#   tls.sh          what TLS costs: the same workloads with TLS on/off (and a
#                   token), a reconnect storm of 1,000 TLS subscribers, perf
#   profile.sh      perf profile and syscall counts of the leader under writes
#   telemetry.sh    what telemetry costs: proxy throughput and instructions per
#                   request with reports on/off; server CPU and memory per 1,000
#                   reporting proxies
#   proxy/run.sh    proxy vs nginx (another engineer's; run when present)
# Raw results: bench/out/ (results.jsonl, logs). Takes ~12-15 minutes.
# BENCH_STEPS="kv scale" runs a subset: RESULTS.md then shows those sections
# new and keeps the other sections of the previous RESULTS.md, marked as
# carried over (report.py --keep-previous).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
T0=$(date +%s)
STEPS=${BENCH_STEPS:-idle fsync kv propagation scale tls telemetry profile proxy}
# the proxy benchmark belongs to bench/proxy/; BENCH_PROXY_SH only for testing this runner
PROXY_SH=${BENCH_PROXY_SH:-$BENCH/proxy/run.sh}

rm -rf "$OUT"
mkdir -p "$OUT"
bench_prepare
export BENCH_PREPARED=1 BENCH_OUT="$OUT" BENCH_BUILD="$BUILD"

LOADS=()
FAILED=()
for step in $STEPS; do
  LOADS+=("$step $(cut -d' ' -f1 /proc/loadavg)")
  case $step in
    proxy)
      if [ -f "$PROXY_SH" ]; then
        log "== proxy/run.sh (bench/proxy/, not ours): output in $OUT/proxy.log"
        mkdir -p "$OUT/proxy"
        touch "$OUT/proxy.start"
        # hand it our Release build when raftplane-proxy builds there
        # (RP_BENCH_BUILD is bench/proxy/run.sh's knob); else it builds its own
        proxy_env=()
        if make -C "$BUILD" -j"$(nproc)" raftplane-proxy >"$OUT/proxy-build.log" 2>&1; then
          proxy_env=(RP_BENCH_BUILD="$BUILD")
        fi
        set +e
        env "${proxy_env[@]}" BENCH_OUT="$OUT/proxy" bash "$PROXY_SH" >"$OUT/proxy.log" 2>&1
        PROXY_RC=$?
        set -e
        log "   proxy/run.sh exited $PROXY_RC"
      fi ;;
    *)
      log "== $step.sh"
      if ! bash "$BENCH/$step.sh" 2>&1 | tee -a "$OUT/run.log" >&2; then
        log "   $step.sh FAILED (see $OUT/run.log); going on with the next step"
        FAILED+=("$step")
      fi ;;
  esac
done

# bench/proxy/run.sh prints "round N raftplane-proxy: R req/s, p99 P ms, errors E"
# (and the same for nginx); those become proxy rows with ratios
if [ -f "$OUT/proxy.log" ]; then
  "$PY" - "$OUT/proxy.log" >>"$OUT/results.jsonl" <<'PYEOF'
import json, re, sys
pat = re.compile(r"^round (\d+) ([\w.-]+):\s+([\d.]+) req/s, p99 ([\d.]+) ms, errors (\d+)")
for line in open(sys.argv[1], errors="replace"):
    m = pat.match(line.strip())
    if m:
        print(json.dumps({"bench": "proxy", "round": int(m[1]), "system": m[2], "rps": float(m[3]),
                          "p99_ms": float(m[4]), "errors": int(m[5])}))
PYEOF
fi
# results that bench/proxy/run.sh chose to leave as JSON lines
if [ -f "$OUT/proxy/results.jsonl" ]; then
  "$PY" -c '
import json,sys
for l in open(sys.argv[1]):
    try: d=json.loads(l)
    except Exception: continue
    d.setdefault("bench","proxy"); print(json.dumps(d))' "$OUT/proxy/results.jsonl" >>"$OUT/results.jsonl"
fi

# meta.json for the report
proxy_status="not present (bench/proxy/run.sh does not exist)"
case " $STEPS " in *" proxy "*) ;; *) proxy_status="not run (BENCH_STEPS)";; esac
[ -n "${PROXY_RC:-}" ] && proxy_status="ran, exit status $PROXY_RC"
proxy_md=""
for f in "$OUT/proxy/RESULTS.md" "$BENCH/proxy/RESULTS.md"; do
  if [ -f "$f" ] && [ -f "$OUT/proxy.start" ] && [ "$f" -nt "$OUT/proxy.start" ]; then proxy_md=$f; break; fi
done
commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
elapsed=$(( $(date +%s) - T0 ))
"$PY" - "$OUT/meta.json" <<PYEOF
import json, sys
meta = {
  "machine": json.loads('''$(machine_json)'''),
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "commit": "$commit",
  "build": "$BUILD",
  "etcd": "$(/usr/bin/etcd --version | head -1)",
  "wrk": "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)",
  "nginx": "$(nginx -v 2>&1 | head -1)",
  "elapsed": "%d min %d s" % divmod($elapsed, 60),
  "loadavg": [s for s in """$(printf '%s\n' "${LOADS[@]}")""".splitlines() if s],
  "proxy_status": """$proxy_status""",
  "failed_steps": "${FAILED[*]:-}".split(),
  "steps": "${BENCH_STEPS:-}",
}
pm = """$proxy_md"""
if pm:
    meta["proxy_md"] = open(pm).read()
import os
log = "$OUT/proxy.log"
if os.path.exists(log):
    meta["proxy_tail"] = "\n".join(open(log, errors="replace").read().splitlines()[-40:])
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PYEOF
"$PY" "$BENCH/lib/report.py" "$OUT" "$BENCH/RESULTS.md" ${BENCH_STEPS:+--keep-previous} >/dev/null
log "wrote $BENCH/RESULTS.md in $((elapsed / 60)) min $((elapsed % 60)) s"
