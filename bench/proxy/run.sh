#!/usr/bin/env bash
# raftplane-proxy against nginx as a reverse proxy, in one run, on one machine.
#
# One backend (nginx, 1 worker, a small static body) serves both proxies:
#   raftplane-proxy --workers 1   configured through a 1-node raftplane-server
#   nginx worker_processes 1      proxy_pass with an upstream keepalive pool
# wrk -c64 -t2 -d10s runs against each (after a 2 s warm-up), alternating
# for RP_BENCH_ROUNDS rounds (default 3); prints req/s, p99 and the ratio of
# the medians and writes bench/proxy/RESULTS.md. Installs nginx-light and wrk
# when missing.
#
#   bash bench/proxy/run.sh            # builds build-bench-proxy/ (RelWithDebInfo)
#   RP_BENCH_BUILD=/path/to/build bash bench/proxy/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/bench/proxy"
duration=${RP_BENCH_DURATION:-10}
conns=${RP_BENCH_CONNS:-64}
rounds=${RP_BENCH_ROUNDS:-3}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
bash "$root/scripts/install-deps.sh"

build=${RP_BENCH_BUILD:-$root/build-bench-proxy}
if [ -z "${RP_BENCH_BUILD:-}" ]; then
  RP_BUILD_TARGETS="raftplane-server raftplane-proxy" \
    bash "$root/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_SANITIZE=OFF
fi
server_bin="$build/server/raftplane-server"
proxy_bin="$build/proxy/raftplane-proxy"

dir=$(mktemp -d /tmp/rp-bench-proxy.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${RP_BENCH_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM

free_ports() { # N free TCP ports chosen by the kernel
  python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}
read -r p_backend p_nginx p_proxy p_admin p_raft p_http <<<"$(free_ports 6)"

# -- the backend: nginx, one worker, a small static body
mkdir -p "$dir/backend" "$dir/nginx"
cat >"$dir/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/backend/nginx.pid;
error_log $dir/backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$p_backend reuseport;
    location / { default_type text/plain; return 200 "hello from the backend\n"; }
  }
}
EOF
# -- nginx as the reverse proxy under comparison
cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$p_backend; keepalive 64; }
  server {
    listen 127.0.0.1:$p_nginx;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
"$NGINX" -c "$dir/backend/nginx.conf" -p "$dir/backend" & pids+=($!)
"$NGINX" -c "$dir/nginx/nginx.conf" -p "$dir/nginx" & pids+=($!)

# -- raftplane: one server (the control plane) and the proxy with one worker
"$server_bin" --id 1 --data-dir "$dir/server" --raft "127.0.0.1:$p_raft" --http "127.0.0.1:$p_http" \
  --bootstrap "1=127.0.0.1:$p_raft@127.0.0.1:$p_http" 2>"$dir/server.log" & pids+=($!)
"$proxy_bin" --node-id bench --servers "127.0.0.1:$p_http" --admin "127.0.0.1:$p_admin" \
  --workers 1 2>"$dir/proxy.log" & pids+=($!)
for _ in $(seq 200); do
  curl -sf "127.0.0.1:$p_http/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
api() { curl -sf --max-time 10 -X PUT "127.0.0.1:$p_http/v1/$1" -d "$2" >/dev/null; }
api clusters/backend "{\"endpoints\":[{\"address\":\"127.0.0.1\",\"port\":$p_backend}]}"
api listeners/bench "{\"address\":\"127.0.0.1\",\"port\":$p_proxy,\"nodes\":[\"bench\"]}"
api routes/all '{"listener":"bench","match":{"prefix":"/"},"cluster":"backend"}'
for _ in $(seq 200); do
  [ "$(curl -s "127.0.0.1:$p_proxy/" 2>/dev/null)" = "hello from the backend" ] && break
  sleep 0.05
done
for port in $p_backend $p_nginx $p_proxy; do
  got=$(curl -s "127.0.0.1:$port/")
  [ "$got" = "hello from the backend" ] || { echo "port $port answers \"$got\""; exit 1; }
done

run_wrk() { # port seconds -> "req/s p99_ms errors"
  local out
  out=$(wrk -c"$conns" -t2 -d"$2"s --latency "http://127.0.0.1:$1/")
  local rps p99 errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' <<<"$out")
  errs=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {for(i=4;i<=NF;i+=2) n+=$i} END {print n+0}' <<<"$out")
  echo "$rps $p99 $errs"
}

cmd="wrk -c$conns -t2 -d${duration}s --latency http://127.0.0.1:PORT/"
echo "== warm-up"
run_wrk "$p_proxy" 2 >/dev/null
run_wrk "$p_nginx" 2 >/dev/null
rows=""
rps_p=(); rps_n=()
for r in $(seq "$rounds"); do
  read -r rps p99 errs <<<"$(run_wrk "$p_proxy" "$duration")"
  echo "round $r raftplane-proxy: $rps req/s, p99 $p99 ms, errors $errs"
  rows+="| $r | raftplane-proxy | $rps | $p99 ms | $errs |"$'\n'
  rps_p+=("$rps")
  read -r rps p99 errs <<<"$(run_wrk "$p_nginx" "$duration")"
  echo "round $r nginx:           $rps req/s, p99 $p99 ms, errors $errs"
  rows+="| $r | nginx | $rps | $p99 ms | $errs |"$'\n'
  rps_n+=("$rps")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
med_p=$(median "${rps_p[@]}"); med_n=$(median "${rps_n[@]}")
ratio=$(awk "BEGIN{printf \"%.2f\", $med_p / $med_n}")
echo "== median req/s: raftplane-proxy $med_p, nginx $med_n; ratio $ratio"
load=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2; exit}')
cat >"$here/RESULTS.md" <<EOF
# raftplane-proxy vs nginx (reverse proxy), one worker each

Measured by \`bash bench/proxy/run.sh\` on $(date -u +%Y-%m-%d) ($(date -u +%H:%M) UTC),
machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM,
$(. /etc/os-release && echo "$PRETTY_NAME"), nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), libh2o 2.2.5.

Both proxies forward to the same backend (nginx, 1 worker, a 23-byte static body) with
upstream keep-alive, on 127.0.0.1; everything (wrk with 2 threads, both proxies, the
backend) shares the same $(nproc) cores. Rounds alternate between the two after a 2 s
warm-up of each; load average at the end: $load. Command for each:

    $cmd

| round | proxy | requests/s | p99 latency | errors |
|---|---|---|---|---|
$rows
Median requests/s: raftplane-proxy (--workers 1) **$med_p**, nginx (worker_processes 1)
**$med_n**; raftplane-proxy / nginx: **$ratio**.
EOF
echo "wrote $here/RESULTS.md"
