#!/usr/bin/env bash
# The demo: install what is missing, build, start a local 3-node cluster,
# write on one node, read it linearizably on another, change a route, kill
# the leader and show the cluster keeps serving. Cleans up on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
if [ -z "${RP_DEMO_BIN:-}" ]; then
  RP_BUILD_TARGETS="raftplane-server" \
    bash "$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
bin=${RP_DEMO_BIN:-$root/build/server/raftplane-server}
dir=$(mktemp -d /tmp/raftplane-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${RP_DEMO_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

base=${RP_DEMO_PORT:-17000}
peers=""
for i in 1 2 3; do
  peers+="${peers:+,}$i=127.0.0.1:$((base + i))@127.0.0.1:$((base + 100 + i))"
done
start() {
  local i=$1
  "$bin" --id "$i" --data-dir "$dir/n$i" --raft "127.0.0.1:$((base + i))" \
    --http "127.0.0.1:$((base + 100 + i))" --bootstrap "$peers" 2>>"$dir/n$i.log" &
  pids[$i]=$!
}
api() { curl -sS --max-time 10 "$@"; echo; }
http() { echo "127.0.0.1:$((base + 100 + $1))"; }

echo "== starting 3 raftplane-server nodes (logs in $dir)"
for i in 1 2 3; do start "$i"; done
for _ in $(seq 100); do
  curl -sf "$(http 1)/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== status of node 1"
api "$(http 1)/v1/status"

echo "== PUT /v1/kv/greeting on node 1"
api -X PUT --data-binary 'hello, raftplane' "$(http 1)/v1/kv/greeting"
echo "== linearizable GET on node 3"
api "$(http 3)/v1/kv/greeting"

echo "== mesh config: a cluster, a listener and a route (on node 2)"
api -X PUT "$(http 2)/v1/clusters/api" \
  -d '{"lb_policy":"round_robin","endpoints":[{"address":"127.0.0.1","port":9001}]}'
api -X PUT "$(http 2)/v1/listeners/edge" -d '{"address":"127.0.0.1","port":10000,"nodes":["*"]}'
api -X PUT "$(http 2)/v1/routes/api" \
  -d '{"listener":"edge","priority":100,"match":{"prefix":"/api"},"cluster":"api"}'
echo "== a bad route is refused and changes nothing"
api -X PUT "$(http 2)/v1/routes/broken" \
  -d '{"listener":"edge","match":{"prefix":"/x"},"cluster":"missing"}'

leader=$(curl -s "$(http 1)/v1/status" | sed -n 's/.*"leader":{"id":\([0-9]*\).*/\1/p')
other=$(( leader % 3 + 1 ))
echo "== SIGKILL the leader (node $leader); write through node $other"
kill -9 "${pids[$leader]}"
wait "${pids[$leader]}" 2>/dev/null || true
t0=$(date +%s%N)
# 503 means "no leader yet" or "outcome unknown": a client retries (PUT is idempotent here)
for _ in $(seq 100); do
  code=$(curl -s -o "$dir/out" -w '%{http_code}' --max-time 10 -X PUT \
    --data-binary 'still here' "$(http "$other")/v1/kv/greeting" || true)
  [ "$code" = 200 ] && break
  sleep 0.05
done
t1=$(date +%s%N)
cat "$dir/out"; echo
echo "   write acknowledged $(( (t1 - t0) / 1000000 )) ms after the kill"
api "$(http "$other")/v1/status"
echo "== restart node $leader with the same command line; it catches up"
start "$leader"
sleep 2
api "$(http "$leader")/v1/kv/greeting?consistency=stale"
if [ -n "${RP_DEMO_DEBUG:-}" ]; then for _ in 1 2 3 4; do sleep 1; api "$(http "$leader")/v1/status"; done; fi
echo "== done"
