#!/usr/bin/env python3
"""Server memory per reporting proxy (issue 12): one real raftplane-server,
a mesh of R routes and C clusters of E endpoints, N simulated reporters
speaking the real protocol (POST /v1/report, Report protobuf), each sending
reports until its ring is at its steady size (retention / interval + 1
samples). Prints raftplane_telemetry_bytes and its growth per reporter.

    RP_SERVER_BIN=build/server/raftplane-server python3 bench/telemetry_mem.py \
        [--reporters 200] [--routes 10] [--clusters 10] [--endpoints 2] [--samples 92]

The store keeps samples at least one interval apart and drops them after
the retention; --samples S (default 91: the defaults' 15 min / 10 s + 1)
reaches the steady state of the defaults in S rounds.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from rpharness import Cluster, KeepAliveClient, check  # noqa: E402
from test_telemetry_api import endpoint, report, stats  # noqa: E402


def metric(text, name):
    for ln in text.splitlines():
        if ln.startswith(name + " "):
            return int(float(ln.split()[1]))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reporters", type=int, default=200)
    ap.add_argument("--routes", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--endpoints", type=int, default=2, help="per cluster")
    ap.add_argument("--samples", type=int, default=91)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--round-ms", type=int, default=300,
                    help="expected time of one round of reports (sizes the retention)")
    a = ap.parse_args()
    # a round of reports takes time too: retention that keeps --samples of them
    retention = a.samples * (a.interval_ms + a.round_ms)
    args = ["--report-interval-ms", str(a.interval_ms), "--telemetry-retention-ms",
            str(max(retention, 1000))]
    with Cluster(1, extra_args=args, name="telemetry-mem", tls=False) as c:
        lead = c.leader()
        for i in range(a.clusters):
            eps = [{"address": "10.0.%d.%d" % (i, j), "port": 80} for j in range(a.endpoints)]
            check(c.request(lead, "PUT", "/v1/clusters/cluster-%02d" % i,
                            body={"endpoints": eps}).status == 200, "cluster")
        check(c.request(lead, "PUT", "/v1/listeners/lsn", body={
            "address": "127.0.0.1", "port": 10000, "nodes": ["*"]}).status == 200, "listener")
        for i in range(a.routes):
            check(c.request(lead, "PUT", "/v1/routes/route-%02d" % i, body={
                "listener": "lsn", "match": {"prefix": "/r%d" % i},
                "cluster": "cluster-%02d" % (i % a.clusters)}).status == 200, "route")
        cl = KeepAliveClient(c.node(lead).http)
        base = metric(cl.request("GET", "/metrics").body.decode(), "raftplane_telemetry_bytes")
        hdr = {"Content-Type": "application/x-protobuf"}
        t0 = time.monotonic()
        sent = 0
        body_bytes = 0
        for seq in range(1, a.samples + 1):
            round_start = time.monotonic()
            for n in range(a.reporters):
                k = seq * 7
                body = report("edge-%05d" % n, n + 1, seq,
                              routes=[stats("route-%02d" % i, k + i, i % 3)
                                      for i in range(a.routes)],
                              clusters=[stats("cluster-%02d" % i, k + i, i % 3)
                                        for i in range(a.clusters)],
                              endpoints=[endpoint("cluster-%02d" % i, "10.0.%d.%d:80" % (i, j),
                                                  requests=k, errors=i % 3)
                                         for i in range(a.clusters) for j in range(a.endpoints)])
                body_bytes = len(body)
                r = cl.request("POST", "/v1/report", body=body, headers=hdr)
                check(r.status == 204, "report", r)
                sent += 1
            time.sleep(a.interval_ms / 1000)  # every node id: at least one interval apart
        dt = time.monotonic() - t0
        text = cl.request("GET", "/metrics").body.decode()
        total = metric(text, "raftplane_telemetry_bytes")
        samples = metric(text, "raftplane_telemetry_samples")
        rss = None
        with open("/proc/%d/status" % c.node(lead).proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    rss = int(ln.split()[1])
        per = (total - base) / a.reporters
        print("reporters %d, %d routes + %d clusters + %d endpoints per report (%d bytes of "
              "protobuf)" % (a.reporters, a.routes, a.clusters, a.clusters * a.endpoints,
                             body_bytes))
        print("reports sent %d in %.1fs (%.0f/s, one client, ASan build)" % (sent, dt, sent / dt))
        print("samples kept %d (%.1f per reporter)" % (samples, samples / a.reporters))
        print("raftplane_telemetry_bytes: %d before, %d after: %.0f bytes per reporter "
              "(%.0f per sample)" % (base, total, per, (total - base) / max(samples, 1)))
        print("server VmRSS %s kB (ASan build: includes its shadow memory)" % rss)
        # what a member sends for one fleet query (the peers' local answer)
        now = int(time.time() * 1000)
        for what, q in (("/metrics (newest, all, endpoints)", {"at": [now], "endpoints": True}),
                        ("one cluster, 1m window", {"at": [now, now - 60000],
                                                    "kinds": ["clusters"], "name": "cluster-00"}),
                        ("cluster health", {"at": [now], "kinds": [], "endpoints": True,
                                            "cluster": "cluster-00"})):
            t1 = time.monotonic()
            r = cl.request("POST", "/v1/telemetry/points", body=q,
                           headers={"Content-Type": "application/json"})
            check(r.status == 200, "points", r)
            print("local answer for %s: %d bytes (%.0f per reporter), %.0f ms" % (
                what, len(r.body), len(r.body) / a.reporters, 1000 * (time.monotonic() - t1)))
        t1 = time.monotonic()
        r = cl.request("GET", "/metrics")
        print("GET /metrics: %d bytes in %.0f ms" % (len(r.body), 1000 * (time.monotonic() - t1)))


if __name__ == "__main__":
    main()
