#!/usr/bin/env python3
"""Merge the done() lines that bench/lib/kv.lua wrote for one measurement
(one line per wrk process; several processes when the load is spread over
the members) into one JSON object: requests/s, latency p50/p90/p99/max in ms,
error counts.

Throughput is the sum of the requests over the longest duration. Latency
percentiles are computed from the union of every process's 1002 quantile
points, each point weighted by that process's share of the requests, which is
exact to within 0.1 % of rank for the merged distribution.

usage: wrkmerge.py FILE...  (one file per wrk process; prints the merged object)"""
import json
import sys


def merge(lines):
    runs = [json.loads(l) for l in lines if l.strip()]
    if not runs:
        return {"rps": 0, "requests": 0, "errors": 0}
    total = sum(r["requests"] for r in runs)
    dur = max(r["duration_us"] for r in runs) / 1e6
    pts = []
    for r in runs:
        q = r["q"]
        w = r["requests"] / len(q)
        pts += [(v, w) for v in q]
    pts.sort()
    tw = sum(w for _, w in pts) or 1

    def pct(p):
        acc = 0.0
        for v, w in pts:
            acc += w
            if acc >= tw * p / 100.0 - 1e-9:
                return v / 1000.0
        return pts[-1][0] / 1000.0

    errs = {k: sum(r[k] for r in runs) for k in ("connect", "read", "write", "status", "timeout")}
    return {
        "procs": len(runs),
        "requests": total,
        "duration_s": round(dur, 3),
        "rps": round(total / dur, 1) if dur else 0,
        "p50_ms": round(pct(50), 3),
        "p90_ms": round(pct(90), 3),
        "p99_ms": round(pct(99), 3),
        "max_ms": round(max(r["q"][-1] for r in runs) / 1000.0, 3),
        "mean_ms": round(sum(r["mean_us"] * r["requests"] for r in runs) / max(total, 1) / 1000.0, 3),
        "errors": sum(errs.values()),
        "error_kinds": errs,
    }


if __name__ == "__main__":
    lines = []
    for p in sys.argv[1:]:
        with open(p) as f:
            lines += f.readlines()
    print(json.dumps(merge(lines)))
