# Shared helpers of the benchmark scripts (sourced, not run).
#
# Every script that sources this gets:
#   - $BENCH (bench/), $ROOT (repository), $OUT (results directory),
#     $BUILD (Release build dir), $WORK (temp dir under /tmp, removed on exit)
#   - bench_prepare: installs etcd-server, wrk, nginx-light and the build
#     dependencies with apt-get when missing, builds raftplane in Release and
#     the benchmark's own C client
#   - rp_start / rp_stop: a 3-node raftplane cluster on 127.0.0.1
#   - etcd_start / etcd_stop: a 3-member etcd 3.4 cluster on 127.0.0.1
#   - every process started here is recorded by pid and killed on exit.
#
# Ports: BENCH_PORT (default: the first free of 24500, 24600, ...) is the base; raftplane uses base+1..3
# (raft) and base+11..13 (HTTP), etcd base+21..23 (client) and base+31..33
# (peer). Results are JSON lines appended to $OUT/results.jsonl. Temp dirs
# are /tmp/rpbench.*.

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
OUT=${BENCH_OUT:-$BENCH/out}
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/rpbench.XXXXXX)
BENCH_PIDS=()

# Debian's python3 directly: a pyenv shim costs ~0.8 s per call
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

RP_BIN=$BUILD/server/raftplane-server
SUB_BIN=$BUILD/proxy/raftplane-subscriber
PROP_BIN=$BUILD/bench/propbench
FSYNC_BIN=$BUILD/bench/fsyncprobe
# Servers, etcd and subscribers run through symlinks whose names contain
# neither "raftplane" nor "etcd": a broad `pkill etcd` or `killall
# raftplane-server` run by someone else on this shared machine then cannot hit
# them (and ours only ever kill by pid).
mkdir -p "$WORK/bin"
ln -s "$RP_BIN" "$WORK/bin/rpb-node"
ln -s /usr/bin/etcd "$WORK/bin/rpb-kv"
ln -s "$SUB_BIN" "$WORK/bin/rpb-subs"
# the benchmark clients play thousands of proxies from one address: servers
# run with --max-conns-per-ip 0
RP_EXE=$WORK/bin/rpb-node
ETCD_EXE=$WORK/bin/rpb-kv
SUB_EXE=$WORK/bin/rpb-subs

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${BENCH_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# Remember a started pid so that it is killed on exit.
track() { BENCH_PIDS+=("$1"); }

# Kill the given pids (TERM, then KILL after 3 s) and wait for them.
stop_pids() {
  local p i
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 30); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

# Append one result: result KEY VALUE [UNIT] [extra JSON object fields]
result() {
  local key=$1 val=$2 unit=${3:-} extra=${4:-}
  printf '{"key":"%s","value":%s,"unit":"%s"%s}\n' "$key" "$val" "$unit" \
    "${extra:+,$extra}" >>"$OUT/results.jsonl"
}

# ---- installing and building ------------------------------------------------

bench_install() {
  local pkgs=(etcd-server wrk nginx-light curl python3 procps gcc libprotobuf-c-dev)
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Debian's packages may start their own daemons where an init system runs;
  # the benchmark never uses them (own ports, own data dirs).
  bash "$ROOT/scripts/install-deps.sh" >/dev/null
}

bench_build() {
  if [ -z "${BENCH_NO_BUILD:-}" ] || [ ! -x "$RP_BIN" ]; then
    log "building Release into $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRP_WITH_JEPSEN=OFF >/dev/null
    make -C "$BUILD" -j"$(nproc)" raftplane-server raftplane-subscriber >/dev/null
  fi
  mkdir -p "$BUILD/bench"
  if [ ! -x "$PROP_BIN" ] || [ "$BENCH/tools/propbench.c" -nt "$PROP_BIN" ]; then
    gcc -O2 -g -Wall -Wextra -o "$PROP_BIN" "$BENCH/tools/propbench.c" \
      "$BUILD/net/raftplane.pb-c.c" -I"$BUILD/net" -lprotobuf-c -lssl -lcrypto -lm
  fi
  if [ ! -x "$FSYNC_BIN" ] || [ "$BENCH/tools/fsyncprobe.c" -nt "$FSYNC_BIN" ]; then
    gcc -O2 -g -Wall -Wextra -Werror -o "$FSYNC_BIN" "$BENCH/tools/fsyncprobe.c" -lpthread
  fi
}

bench_prepare() {
  [ -n "${BENCH_PREPARED:-}" ] && return 0
  bench_install
  bench_build
  export BENCH_PREPARED=1
}

# ---- small HTTP helpers -------------------------------------------------------

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
need_ports_free() {
  local p
  for p in "$@"; do port_free "$p" || die "port $p is in use (set BENCH_PORT)"; done
}
b64() { printf '%s' "$1" | base64 -w0; }

# RSS in KiB and CPU ticks (utime+stime) of a pid
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# Ports: BENCH_PORT, or the first base from 24500 in steps of 100 whose 40
# ports are all free (other suites on this machine use their own ports).
pick_port_base() {
  local b p ok
  for b in ${BENCH_PORT:-} 24500 24600 24700 24800 24900 25100 25300 25500; do
    ok=1
    for p in $(seq $((b + 1)) $((b + 40))); do port_free "$p" || { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$b"; return 0; }
  done
  return 1
}
PORT_BASE=$(pick_port_base) || die "no free port range found"

# ---- raftplane cluster ---------------------------------------------------------

RP_PIDS=()
rp_raft() { echo "127.0.0.1:$((PORT_BASE + $1))"; }
rp_http() { echo "127.0.0.1:$((PORT_BASE + 10 + $1))"; }

rp_start() {
  local attempt
  for attempt in 1 2; do
    rp_start_once "$@" && return 0
    log "raftplane cluster did not become ready (attempt $attempt); logs:"
    tail -n 5 "$WORK"/rp/n*.log >&2 || true
    rp_stop
  done
  die "raftplane cluster did not become ready"
}

rp_start_once() {
  local i peers=""
  for i in 1 2 3; do peers+="${peers:+,}$i=$(rp_raft $i)@$(rp_http $i)"; done
  need_ports_free $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)) \
    $((PORT_BASE + 11)) $((PORT_BASE + 12)) $((PORT_BASE + 13))
  rm -rf "$WORK/rp"
  mkdir -p "$WORK/rp"
  RP_PIDS=()
  for i in 1 2 3; do
    "$RP_EXE" --id "$i" --data-dir "$WORK/rp/n$i" --raft "$(rp_raft $i)" \
      --http "$(rp_http $i)" --bootstrap "$peers" --max-conns-per-ip 0 "$@" 2>>"$WORK/rp/n$i.log" &
    RP_PIDS[$i]=$!
    track $!
  done
  local t
  for t in $(seq 200); do
    RP_LEADER=$(rp_find_leader || true)
    if [ -n "$RP_LEADER" ] && curl -sf --max-time 1 "$(rp_http 1)/readyz" >/dev/null &&
      curl -sf --max-time 1 "$(rp_http 2)/readyz" >/dev/null &&
      curl -sf --max-time 1 "$(rp_http 3)/readyz" >/dev/null; then
      RP_LEADER_HTTP=$(rp_http "$RP_LEADER")
      RP_LEADER_PID=${RP_PIDS[$RP_LEADER]}
      log "raftplane up: leader is node $RP_LEADER ($RP_LEADER_HTTP)"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Prints the id (1..3) of the ready raftplane leader, from /v1/status.
rp_find_leader() {
  local i
  for i in 1 2 3; do
    curl -sf --max-time 1 "$(rp_http $i)/v1/status" |
      "$PY" -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s["state"]=="leader" and s.get("leader_ready") else 1)' \
      2>/dev/null && { echo "$i"; return 0; }
  done
  return 1
}

rp_stop() {
  [ ${#RP_PIDS[@]} -gt 0 ] && stop_pids "${RP_PIDS[@]}"
  RP_PIDS=()
  rm -rf "$WORK/rp"
}

rp_all_http() { echo "$(rp_http 1),$(rp_http 2),$(rp_http 3)"; }

# ---- etcd cluster ---------------------------------------------------------------

ETCD_PIDS=()
etcd_client() { echo "127.0.0.1:$((PORT_BASE + 20 + $1))"; }
etcd_peer() { echo "127.0.0.1:$((PORT_BASE + 30 + $1))"; }

etcd_start() {
  local i cluster=""
  for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://$(etcd_peer $i)"; done
  need_ports_free $((PORT_BASE + 21)) $((PORT_BASE + 22)) $((PORT_BASE + 23)) \
    $((PORT_BASE + 31)) $((PORT_BASE + 32)) $((PORT_BASE + 33))
  rm -rf "$WORK/etcd"
  mkdir -p "$WORK/etcd"
  ETCD_PIDS=()
  for i in 1 2 3; do
    "$ETCD_EXE" --name "e$i" --data-dir "$WORK/etcd/e$i" \
      --listen-client-urls "http://$(etcd_client $i)" \
      --advertise-client-urls "http://$(etcd_client $i)" \
      --listen-peer-urls "http://$(etcd_peer $i)" \
      --initial-advertise-peer-urls "http://$(etcd_peer $i)" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "raftplane-bench-$$" "$@" 2>>"$WORK/etcd/e$i.log" &
    ETCD_PIDS[$i]=$!
    track $!
  done
  local t
  for t in $(seq 200); do
    ETCD_LEADER=$(etcd_find_leader || true)
    if [ -n "$ETCD_LEADER" ]; then
      ETCD_LEADER_HTTP=$(etcd_client "$ETCD_LEADER")
      ETCD_LEADER_PID=${ETCD_PIDS[$ETCD_LEADER]}
      log "etcd up: leader is member e$ETCD_LEADER ($ETCD_LEADER_HTTP)"
      return 0
    fi
    sleep 0.1
  done
  tail -n 5 "$WORK"/etcd/e*.log >&2
  die "etcd cluster did not become ready"
}

# Prints the index (1..3) of the etcd leader, from /v3/maintenance/status.
etcd_find_leader() {
  local i
  for i in 1 2 3; do
    curl -sf --max-time 1 -X POST -d '{}' "http://$(etcd_client $i)/v3/maintenance/status" |
      "$PY" -c 'import json,sys; s=json.load(sys.stdin); l=s.get("leader"); m=s["header"]["member_id"]; sys.exit(0 if l and l==m else 1)' \
      2>/dev/null && { echo "$i"; return 0; }
  done
  return 1
}

etcd_stop() {
  [ ${#ETCD_PIDS[@]} -gt 0 ] && stop_pids "${ETCD_PIDS[@]}"
  ETCD_PIDS=()
  rm -rf "$WORK/etcd"
}

etcd_all_http() { echo "$(etcd_client 1),$(etcd_client 2),$(etcd_client 3)"; }

# ---- machine description ------------------------------------------------------------

machine_json() {
  local model cores mem
  model=$(lscpu | sed -n 's/^Model name: *//p' | head -1 || true)
  cores=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
  printf '{"model":"%s","cores":%s,"mem":"%s","kernel":"%s"}' "$model" "$cores" "$mem" "$(uname -r)"
}
