#!/usr/bin/env python3
"""Reconnect storm (issue 15): N proxies attached to server B (a follower)
fail over at once to server A (the leader) when B is SIGKILLed. Prints the
time until A holds all of them and a 1-connection kv writer's latency on A
before and during the storm (the ratio of the p99s is the figure).

    python3 bench/storm.py [N]      (RP_BUILD=build-rel by default; N=11000)

The subscribers (one raftplane-subscriber process) list B nine times and A
once, so about nine in ten start on B; each tries the servers in turn after a
failure. Needs `ulimit -Hn` of at least 2 N + 2,000 (it raises the soft
limit itself)."""
import os, sys, time, json, threading, subprocess, resource, http.client
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("RP_BUILD", "build-rel"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ["RP_SERVER_BIN"] = os.path.join(BUILD, "server", "raftplane-server")
import rpharness
from rpharness import Cluster, wait_until
N = int(sys.argv[1]) if len(sys.argv) > 1 else 11000
SUB = os.path.join(BUILD, "proxy", "raftplane-subscriber")
h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (h, h))
def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * q))]
with Cluster(3, name="storm", extra_args=["--max-conns-per-ip", "0", "--max-subscribers", "30000", "--max-conns", "34000"]) as c:
    lead = c.leader()
    a = lead; b = [n for n in c.running() if n.id != a.id][0]
    c.request(a, "PUT", "/v1/listeners/l", body=json.dumps({"address": "127.0.0.1", "port": 19000, "nodes": ["*"]}))
    sub = subprocess.Popen([SUB, "--servers", ",".join([b.http] * 9 + [a.http]), "--node-prefix", "s", "--count", str(N), "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=rpharness._child_setup)
    def local(n):
        try:
            return sum(p["connected"] for p in c.request(n, "GET", "/v1/proxies?scope=local", timeout=10).json()["proxies"])
        except Exception:
            return -1
    wait_until(lambda: local(b) + local(a) >= N, 120, interval=2, what="all attached")
    nb = local(b); print("on b", nb, "on a", local(a))
    lat = {"before": [], "storm": []}
    phase = ["before"]; stop = threading.Event()
    host, port = a.http.split(":")
    def writer():
        conn = http.client.HTTPConnection(host, int(port), timeout=10); i = 0
        while not stop.is_set():
            t = time.monotonic(); conn.request("PUT", "/v1/kv/storm", body=str(i)); r = conn.getresponse(); r.read()
            lat[phase[0]].append((time.monotonic() - t) * 1000); i += 1
    t = threading.Thread(target=writer); t.start()
    time.sleep(5)
    phase[0] = "storm"; t0 = time.monotonic()
    c.kill(b.id)
    wait_until(lambda: local(a) >= N, 60, interval=0.1, what="all on a")
    attach = time.monotonic() - t0
    time.sleep(0.5); stop.set(); t.join(); sub.kill()
    print("storm/before write p99 ratio: %.1fx" % (pct(lat["storm"], .99) / pct(lat["before"], .99)))
    for k, v in lat.items():
        print("%s: %d writes p50 %.2f ms p99 %.2f ms max %.1f" % (k, len(v), pct(v, .5), pct(v, .99), max(v)))
    print("N=%d attached to the surviving server %.2f s after the kill" % (N, attach))
