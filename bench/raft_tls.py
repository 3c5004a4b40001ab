#!/usr/bin/env python3
"""Write throughput/latency of a 3-node cluster with raft peer TLS against
without it, one server binary (a Release build):

  python3 bench/raft_tls.py [BIN] [ROUNDS]

Each round starts a fresh cluster per variant (alternating): plain raft;
plain with --raft-relay-outbound (the relay's cost alone); mutual TLS on the
raft port (tests/hostile/raft/tlsraft.py; TLS implies the outbound relay).
wrk runs as in bench/raft_relay.py (bench/lib/kv.lua, rp_put, 64-byte
values, 16 keep-alive connections, 5 s against the leader's API: HTTPS in
the TLS variant, as --tls-cert turns TLS on for the API too); prints
requests/s, p50/p99 and the servers' CPU time per write, and the medians."""

import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "hostile", "raft"))
DEFAULT_BIN = os.path.join(HERE, "..", "build-rel", "server", "raftplane-server")
os.environ.setdefault("RP_SERVER_BIN", sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BIN)

from raft_relay import cpu_ticks, summarize  # noqa: E402
from tlsraft import TlsCluster  # noqa: E402

VARIANTS = {
    "plain": dict(tls=False),
    "relay": dict(tls=False, extra_args=["--raft-relay-outbound"]),
    "tls": dict(tls=True),
}


def one(variant):
    with TlsCluster(3, **VARIANTS[variant]) as c:
        lead = c.leader()
        out = tempfile.mktemp(prefix="rp-tls-bench-", dir="/tmp")
        env = dict(os.environ, WRK_OUT=out)
        cpu0 = sum(cpu_ticks(n.proc.pid) for n in c.nodes.values())
        # the API is HTTPS too when the harness makes TLS clusters itself
        scheme = "https" if getattr(c, "client_ssl", None) else "http"
        subprocess.run(["wrk", "-t2", "-c16", "-d5s", "-s", os.path.join(HERE, "lib", "kv.lua"),
                        "%s://%s" % (scheme, lead.http), "--", "rp_put", "64", "64"],
                       env=env, check=True, capture_output=True)
        cpu = sum(cpu_ticks(n.proc.pid) for n in c.nodes.values()) - cpu0
        with open(out) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        os.unlink(out)
        lines[0]["cpu_s"] = cpu / os.sysconf("SC_CLK_TCK")
        return lines[0]


if __name__ == "__main__":
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    res = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for v in VARIANTS:
            d = summarize(one(v))
            res[v].append(d)
            print(v, json.dumps(d), flush=True)
    for v in VARIANTS:
        print("median", v, {k: statistics.median(r[k] for r in res[v]) for k in res[v][0]})
