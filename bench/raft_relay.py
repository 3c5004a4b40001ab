#!/usr/bin/env python3
"""Write throughput/latency of a 3-node cluster, to compare two server
binaries (e.g. before/after the raft transport relay, issue 9).

  python3 bench/raft_relay.py BIN_A BIN_B [ROUNDS]

Each round starts a fresh cluster per binary (alternating A, B) and runs
wrk (bench/lib/kv.lua, rp_put, 64-byte values) against the leader for 5 s
with 16 connections; prints requests/s, p50/p99 and the servers' CPU time
per write per run, and the medians."""

import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def one(binary):
    os.environ["RP_SERVER_BIN"] = binary
    import importlib
    import rpharness
    importlib.reload(rpharness)
    with rpharness.Cluster(3) as c:
        lead = c.leader()
        out = tempfile.mktemp(prefix="rp-relay-bench-", dir="/tmp")
        env = dict(os.environ, WRK_OUT=out)
        cpu0 = sum(cpu_ticks(n.proc.pid) for n in c.nodes.values())
        subprocess.run(["wrk", "-t2", "-c16", "-d5s", "-s", os.path.join(HERE, "lib", "kv.lua"),
                        "http://%s" % lead.http, "--", "rp_put", "64", "64"],
                       env=env, check=True, capture_output=True)
        cpu = sum(cpu_ticks(n.proc.pid) for n in c.nodes.values()) - cpu0
        with open(out) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        os.unlink(out)
        lines[0]["cpu_s"] = cpu / os.sysconf("SC_CLK_TCK")
        return lines


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def summarize(d):
    q = d["q"]  # 0.1% steps
    return {"req_per_s": round(d["requests"] / (d["duration_us"] / 1e6)),
            "errors": d["status"] + d["timeout"] + d["read"] + d["write"] + d["connect"],
            "p50_us": q[499], "p99_us": q[989],
            # server CPU (all 3 nodes) per acknowledged write: robust to a busy machine
            "cpu_us_per_write": round(d["cpu_s"] * 1e6 / max(1, d["requests"]))}


if __name__ == "__main__":
    a, b = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    res = {a: [], b: []}
    for _ in range(rounds):
        for binary in (a, b):
            d = summarize(one(binary)[0])
            res[binary].append(d)
            print(binary, json.dumps(d), flush=True)
    for binary in (a, b):
        print("median", binary, {k: statistics.median(r[k] for r in res[binary])
                                 for k in res[binary][0]})
