#!/usr/bin/env bash
# The demo: install what is missing, build, start a local 3-node cluster,
# show it with `raftplanectl status`, write on one node and read it
# linearizably on another (REST API), apply the mesh config from a YAML file
# (`raftplanectl apply -f`, scripts/demo/*.yaml) and see a bad one refused,
# kill the leader and show the cluster keeps serving; then start two demo
# backends and a raftplane-proxy (`raftplanectl proxies`), send traffic
# through the proxy, shift the route from one backend to the other
# (`raftplanectl diff` / `apply --wait`) and show the traffic follow; break a
# backend with a change made through the REST API and watch the control
# plane see it (telemetry: error rate before and after the rollout,
# endpoint health), `raftplanectl history`; then the same secured: a CA and
# certificates made with openssl, three servers with TLS and a bootstrap
# token, a write token, a proxy with mutual TLS, an impostor proxy refused,
# the audit trail. Cleans up on exit.
# Env: RP_DEMO_PORT (base port, default 17000; uses base+1 .. base+602),
# RP_DEMO_BIN (a built raftplane-server: skip the build; the proxy, backend
# and raftplanectl are taken next to it unless RP_DEMO_PROXY_BIN,
# RP_DEMO_BACKEND_BIN, RP_DEMO_CTL_BIN say otherwise), RP_DEMO_KEEP=1 (keep
# the temp dir with the logs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
if [ -z "${RP_DEMO_BIN:-}" ]; then
  RP_BUILD_TARGETS="raftplane-server raftplane-proxy raftplane-demo-backend raftplanectl" \
    bash "$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
bin=${RP_DEMO_BIN:-$root/build/server/raftplane-server}
# the proxy and the demo backend sit next to the server in the build tree
proxy_bin=${RP_DEMO_PROXY_BIN:-$(dirname "$bin")/../proxy/raftplane-proxy}
backend_bin=${RP_DEMO_BACKEND_BIN:-$(dirname "$bin")/../proxy/raftplane-demo-backend}
ctl_bin=${RP_DEMO_CTL_BIN:-$(dirname "$bin")/../ctl/raftplanectl}
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
    --http "127.0.0.1:$((base + 100 + i))" --bootstrap "$peers" --report-interval-ms 1000 \
    2>>"$dir/n$i.log" &
  pids[$i]=$!
}
api() { curl -sS --max-time 10 "$@"; echo; }
http() { echo "127.0.0.1:$((base + 100 + $1))"; }
# raftplanectl as a person types it: the command line is shown (without the
# RAFTPLANE_* environment it reads), a failure is shown and the demo goes on
export RAFTPLANE_SERVERS="$(http 1),$(http 2),$(http 3)"
ctl() {
  echo "   \$ raftplanectl $*"
  local rc=0
  "$ctl_bin" -o table "$@" 2>&1 | sed 's/^/   /' || rc=$?
  [ "$rc" = 0 ] || echo "   (exit $rc)"
}
# manifest NAME [OUT [EDGE_PORT]]: scripts/demo/NAME.yaml with the ports of
# this run filled in, written to $dir/OUT.yaml; prints that path
manifest() {
  local out="$dir/${2:-$1}.yaml"
  sed -e "s/\${BACKEND_A}/$backend_a/g" -e "s/\${BACKEND_B}/$backend_b/g" \
    -e "s/\${EDGE_PORT}/${3:-$edge}/g" "$root/scripts/demo/$1.yaml" >"$out"
  echo "$out"
}
show() { grep -v '^#' "$1" | sed 's/^/   | /'; }

echo "== starting 3 raftplane-server nodes (logs in $dir)"
for i in 1 2 3; do start "$i"; done
# raftplanectl status exits 0 once there is a leader and a majority answers
for _ in $(seq 100); do
  "$ctl_bin" status >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== dashboard: http://$(http 1)/ui/ (any member serves it: $(http 2)/ui/, $(http 3)/ui/)"
echo "== the cluster, as raftplanectl sees it (--servers from RAFTPLANE_SERVERS=$RAFTPLANE_SERVERS)"
ctl status

echo "== PUT /v1/kv/greeting on node 1"
api -X PUT --data-binary 'hello, raftplane' "$(http 1)/v1/kv/greeting"
echo "== linearizable GET on node 3"
api "$(http 3)/v1/kv/greeting"

backend_a=$((base + 201)); backend_b=$((base + 202)); edge=$((base + 300)); admin=$((base + 400))
mesh=$(manifest mesh)
echo "== mesh config from a file: a cluster, a listener and a route (scripts/demo/mesh.yaml)"
show "$mesh"
echo "== applied through node 2 (a follower forwards to the leader): one transaction, one revision"
ctl --servers "$(http 2)" apply -f "$mesh"
echo "== a bad route is refused (at its FILE:LINE) and changes nothing"
ctl --servers "$(http 2)" apply -f "$root/scripts/demo/broken-route.yaml"
ctl get routes

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
ctl status
echo "== restart node $leader with the same command line; it catches up"
start "$leader"
sleep 2
api "$(http "$leader")/v1/kv/greeting?consistency=stale"
if [ -n "${RP_DEMO_DEBUG:-}" ]; then for _ in 1 2 3 4; do sleep 1; api "$(http "$leader")/v1/status"; done; fi

echo "== data plane: two demo backends (api-v1 on :$backend_a, api-v2 on :$backend_b) and raftplane-proxy edge-1"
"$backend_bin" --listen "127.0.0.1:$backend_a" --name api-v1 2>>"$dir/backend-a.log" &
pids+=($!)
"$backend_bin" --listen "127.0.0.1:$backend_b" --name api-v2 2>>"$dir/backend-b.log" &
pids+=($!)
"$proxy_bin" --node-id edge-1 --servers "$(http 1),$(http 2),$(http 3)" --admin "127.0.0.1:$admin" \
  --cache-dir "$dir/proxy-cache" --workers 1 2>>"$dir/proxy.log" &
pids+=($!)
proxy="127.0.0.1:$edge"
through() { # n requests through the proxy: one line per answer
  for _ in $(seq "$1"); do
    printf '   GET %s/api/hello -> %s\n' "$proxy" "$(curl -s --max-time 5 "$proxy/api/hello" || echo "(no answer)")"
  done
}
for _ in $(seq 100); do
  [ "$(curl -s --max-time 1 "$proxy/api/hello" 2>/dev/null)" = "api-v1" ] && break
  sleep 0.1
done
echo "== the proxy serves the route \"api\" (/api -> cluster api -> api-v1)"
api "127.0.0.1:$admin/ready"
through 4
echo "== the proxy fleet: edge-1 is attached and has ACKed the current version"
for _ in $(seq 50); do "$ctl_bin" proxies >/dev/null 2>&1 && break; sleep 0.1; done
ctl proxies
shift=$(manifest shift-to-v2)
echo "== a second cluster and the route shifted to it (scripts/demo/shift-to-v2.yaml): first the diff"
show "$shift"
echo "   \$ raftplanectl diff -f $shift"
"$ctl_bin" diff -f "$shift" | sed 's/^/   /' || echo "   (exit $?: these are the changes)"
echo "== apply it through node 3 and wait until every proxy ACKed the new revision"
ctl --servers "$(http 3)" apply -f "$shift" --wait 5s
echo "== the traffic follows: now api-v2"
through 4
echo "== the proxy's view (GET /config_dump, abridged) and its counters"
curl -s "127.0.0.1:$admin/config_dump" | sed 's/"listeners".*//' ; echo
curl -s "127.0.0.1:$admin/metrics" | grep -E '^raftplane_proxy_(snapshot_version|control_plane_connected|route_requests_total|config_updates_total)'

# ---- telemetry: the proxies report, the control plane sees the traffic ----
echo "== telemetry: the proxy reports its traffic to its server every second (--report-interval-ms 1000)"
load() { # $1 seconds of traffic, 20 requests/s, in the background
  local end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ]; do curl -s -o /dev/null --max-time 2 "$proxy/api/hello"; sleep 0.05; done
}
load 9 & loadpid=$!
pids+=($loadpid)
sleep 3
echo "== a bad change: api-v1 now answers 500 (a broken build), and the route moves back to it (REST API, node 2)"
curl -s "127.0.0.1:$backend_a/_control/status/500" >/dev/null
out=$(curl -sS --max-time 10 -X PUT "$(http 2)/v1/routes/api" \
  -d '{"listener":"edge","priority":100,"match":{"prefix":"/api"},"cluster":"api"}')
rev2=$(echo "$out" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
curl -sS --max-time 10 "$(http 1)/v1/rollouts/$rev2?wait=5s" >/dev/null
wait "$loadpid" 2>/dev/null || true
sleep 2
echo "== GET /v1/rollouts/$rev2?window=3s: the error rate of the proxies that applied it, before and after"
curl -s "$(http 3)/v1/rollouts/$rev2?window=3s" | python3 -c 'import json,sys
t = json.load(sys.stdin)["telemetry"]
for k in ("before", "after"):
    p = t[k]; r = p["error_rate"]
    print("   %-6s %4d requests, error rate %s, p99 %s ms" % (k, p["requests"],
          "n/a" if r is None else "%.0f%%" % (100 * r), p["p99_ms"]))'
echo "== GET /v1/telemetry/routes/api?window=1m (any server answers for the whole fleet)"
curl -s "$(http 1)/v1/telemetry/routes/api?window=1m" | python3 -c 'import json,sys
r = json.load(sys.stdin)
print("   %d requests, %.1f/s, error rate %.0f%%, p50 %s ms, p99 %s ms, responses %s" % (
      r["requests"], r["rate"], 100 * (r["error_rate"] or 0), r["latency_ms"]["p50"],
      r["latency_ms"]["p99"], r["responses"]))'
echo "== api-v1 fixed; the route's error rate over the last 5 s falls back"
curl -s "127.0.0.1:$backend_a/_control/status/200" >/dev/null
load 3
sleep 2
curl -s "$(http 2)/v1/telemetry/routes/api?window=5s" | python3 -c 'import json,sys
r = json.load(sys.stdin)
print("   %d requests, error rate %.0f%%" % (r["requests"], 100 * (r["error_rate"] or 0)))'
echo "== what changed, newest first (the audit trail; no tokens here, so the actor is anonymous)"
ctl history --limit 6

# ---- the same, secured: TLS everywhere, mutual TLS for the proxy, tokens ----
sbase=$((base + 500))
shttp() { echo "127.0.0.1:$((sbase + 100 + $1))"; }
pki="$dir/pki"; mkdir -p "$pki"
echo "== security: a CA and certificates made with openssl (docs/security.md), in $pki"
newkey() { openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "/CN=$1" 2>/dev/null; }
sign() { # name san
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$2" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
    -out "$pki/$1.pem" -days 30 -sha256 -extfile "$pki/$1.ext" 2>/dev/null
}
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$pki/ca.key" \
  -out "$pki/ca.pem" -days 30 -subj "/CN=raftplane demo CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
for i in 1 2 3; do newkey "server-$i"; sign "server-$i" "URI:spiffe://raftplane/server/$i,IP:127.0.0.1"; done
newkey edge-1; sign edge-1 "URI:spiffe://raftplane/node/edge-1"
newkey edge-9; sign edge-9 "URI:spiffe://raftplane/node/edge-9"
chmod 600 "$pki"/*.key
python3 -c 'import os,base64;print("rpt_"+base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))' >"$pki/admin.token"
chmod 600 "$pki/admin.token"
speers=""
for i in 1 2 3; do speers+="${speers:+,}$i=127.0.0.1:$((sbase + i))@$(shttp "$i")"; done
echo "== 3 servers with --tls-cert/--tls-key/--tls-client-ca and --bootstrap-token-file"
for i in 1 2 3; do
  "$bin" --id "$i" --data-dir "$dir/s$i" --raft "127.0.0.1:$((sbase + i))" --http "$(shttp "$i")" \
    --bootstrap "$speers" --tls-cert "$pki/server-$i.pem" --tls-key "$pki/server-$i.key" \
    --tls-client-ca "$pki/ca.pem" --bootstrap-token-file "$pki/admin.token" 2>>"$dir/s$i.log" &
  pids+=($!)
done
admin_token=$(cat "$pki/admin.token")
sapi() { curl -sS --max-time 10 --cacert "$pki/ca.pem" "$@"; echo; }
# until_token_works TOKEN NODE...: a token is a raft entry; a node that has
# not applied it yet answers 503 (or 401): wait until each NODE accepts it
until_token_works() {
  local tok=$1 i; shift
  for i in "$@"; do
    for _ in $(seq 100); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$pki/ca.pem" \
        -H "Authorization: Bearer $tok" "https://$(shttp "$i")/v1/clusters?consistency=stale")" = 200 ] &&
        break
      sleep 0.1
    done
  done
}
for _ in $(seq 100); do
  curl -sf --cacert "$pki/ca.pem" "https://$(shttp 1)/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
until_token_works "$admin_token" 1
echo "== plain HTTP to the TLS port gets nowhere; HTTPS without a token: 401"
curl -s --max-time 3 "http://$(shttp 1)/v1/status" >/dev/null 2>&1 && echo "   (answered!)" || echo "   plain HTTP: no answer"
sapi "https://$(shttp 1)/v1/kv/greeting"
echo "== the admin creates a write token for the CI (its secret is shown once)"
out=$(curl -sS --max-time 10 --cacert "$pki/ca.pem" -H "Authorization: Bearer $admin_token" \
  -X POST "https://$(shttp 1)/v1/tokens" -d '{"name":"ci","role":"write"}')
echo "$out" | sed 's/"token":"rpt_[^"]*"/"token":"rpt_…"/'
ci_token=$(echo "$out" | sed -n 's/.*"token":"\(rpt_[^"]*\)".*/\1/p')
until_token_works "$ci_token" 1 2 3
auth=(-H "Authorization: Bearer $ci_token")
# raftplanectl against the secured cluster: https with the CA, the CI's
# token from the environment (so it is not on the command line)
sctl() { RAFTPLANE_TOKEN=$ci_token RAFTPLANE_SERVERS="$(shttp 1),$(shttp 2),$(shttp 3)" \
  ctl --cacert "$pki/ca.pem" "$@"; }
smesh=$(manifest mesh mesh-tls "$((edge + 1))")
echo "== with the write token (RAFTPLANE_TOKEN): the same mesh.yaml, listener on :$((edge + 1)), through node 2 (it forwards to the leader over TLS)"
sctl --servers "$(shttp 2)" apply -f "$smesh"
echo "== the write token cannot manage tokens: 403"
sapi "${auth[@]}" "https://$(shttp 2)/v1/tokens"
echo "== a proxy with its node certificate (mutual TLS) serves the route"
"$proxy_bin" --node-id edge-1 --servers "$(shttp 1),$(shttp 2),$(shttp 3)" --admin "127.0.0.1:$((admin + 1))" \
  --tls-cert "$pki/edge-1.pem" --tls-key "$pki/edge-1.key" --tls-ca "$pki/ca.pem" \
  --workers 1 2>>"$dir/proxy-tls.log" &
pids+=($!)
for _ in $(seq 100); do
  [ "$(curl -s --max-time 1 "127.0.0.1:$((edge + 1))/api/hello" 2>/dev/null)" = "api-v1" ] && break
  sleep 0.1
done
printf '   GET 127.0.0.1:%s/api/hello -> %s\n' "$((edge + 1))" "$(curl -s --max-time 5 "127.0.0.1:$((edge + 1))/api/hello" || echo "(no answer)")"
echo "== a proxy whose certificate names edge-9 cannot subscribe as edge-1 (403, counted)"
"$proxy_bin" --node-id edge-1 --servers "$(shttp 1)" --admin "127.0.0.1:$((admin + 2))" \
  --tls-cert "$pki/edge-9.pem" --tls-key "$pki/edge-9.key" --tls-ca "$pki/ca.pem" \
  --workers 1 2>>"$dir/proxy-impostor.log" &
pids+=($!)
sleep 1.5
curl -s "127.0.0.1:$((admin + 2))/config_dump" |
  python3 -c 'import json,sys; print("   its /config_dump says:", json.load(sys.stdin)["control_plane"]["last_error"])'
curl -s --cacert "$pki/ca.pem" -H "Authorization: Bearer $ci_token" "https://$(shttp 1)/metrics" |
  grep -E '^raftplane_subscribe_refused_total'
echo "== the audit trail: who changed what (raftplanectl history, GET /v1/history)"
sctl history --limit 4
echo "== done"
