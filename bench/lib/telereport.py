#!/usr/bin/env python3
"""The "Telemetry" section of RESULTS.md, from the tele_* lines bench/telemetry.sh
appends to $OUT/results.jsonl.

    telereport.py OUT_DIR        prints the section (markdown) on stdout

bench/lib/report.py imports section() for RESULTS.md. Cells are the median
over the rounds with the min-max range in parentheses; ratios are from the
medians. The goal of the issue: proxy throughput with telemetry on is at
least 0.98x the throughput with it off. The same goal is checked against
the instructions per request counted by callgrind (off / on >= 0.98), which
do not depend on the load of a shared machine."""
import os
import sys

GOAL = 0.98
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tables import cell, fmt, load_rows, med, verdict  # noqa: E402,F401

RETENTION_MS = 15 * 60 * 1000  # the default retention (docs/telemetry.md)

def rfmt(r):
    return "n/a" if r is None else f"{r:.3f}×"


def kib(x):
    return f"{x / 1024:,.1f} MiB" if x >= 10240 else f"{x:,.0f} KiB"


def section(rows, out_dir=None):
    """-> (markdown lines, goals [(text, met, detail)]); ([], []) without tele rows"""
    px = [r for r in rows if r.get("bench") == "tele_proxy"]
    cg = [r for r in rows if r.get("bench") == "tele_cg"]
    sv = [r for r in rows if r.get("bench") == "tele_server"]
    if not (px or cg or sv):
        return [], []
    lines, goals = [], []
    w = lines.append
    w("## Telemetry: what it costs")
    w("")
    w("`bench/telemetry.sh`, for each report interval a fresh 3-node cluster started with "
      "`--report-interval-ms` (1,000 ms: ten times as often as the default 10,000 ms). "
      f"Goal of the issue: proxy throughput with telemetry on ≥ {GOAL}× off.")
    load = [r for r in rows if r.get("bench") == "tele_load"]
    if load:
        w("")
        w("1-min load average at the start of each interval: " +
          ", ".join(f"{r['phase']} {r['load1']}" for r in load) + ".")
    w("")
    intervals = sorted({r["interval_ms"] for r in px + cg + sv})

    if px:
        conns = px[0].get("conns", 64)
        dur = px[0].get("duration_s")
        w(f"### Proxy throughput, telemetry on vs off (wrk -t2 -c{conns}"
          f"{f', {dur} s per run' if dur else ''})")
        w("")
        w("Two `raftplane-proxy --workers 1` side by side in front of one "
          "`raftplane-demo-backend`, *on* (reports, the default) and *off* (`--no-report`); "
          "rounds alternate which goes first. The proxy's CPU per request (utime+stime ÷ "
          "requests) is steadier than throughput on a shared machine.")
        w("")
        w("| interval | variant | requests/s | p50 ms | p99 ms | proxy CPU µs/request | "
          "errors | load avg | on ÷ off (req/s) | goal |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for iv in intervals:
            m = {}
            for v in ("on", "off"):
                rs = [r for r in px if r["interval_ms"] == iv and r["variant"] == v]
                if not rs:
                    continue
                c_rps, m[v] = cell([r["rps"] for r in rs])
                ratio_txt = goal_txt = ""
                if v == "off" and m.get("on") and m.get("off"):
                    rt = m["on"] / m["off"]
                    ratio_txt, goal_txt = rfmt(rt), verdict(rt >= GOAL)
                    goals.append((f"Telemetry: proxy requests/s on ÷ off, interval {iv} ms (wrk): "
                                  f"≥ {GOAL}×", rt >= GOAL,
                                  f"{rfmt(rt)} ({fmt(m['on'])} vs {fmt(m['off'])} req/s, medians "
                                  f"of {len(rs)} rounds; load {cell([r['load1'] for r in px if r['interval_ms'] == iv])[0]})"))
                w(f"| {iv} ms | {v} | {c_rps} | {cell([r['p50_ms'] for r in rs])[0]} | "
                  f"{cell([r['p99_ms'] for r in rs])[0]} | "
                  f"{cell([r['proxy_cpu_us_per_req'] for r in rs])[0]} | "
                  f"{sum(r['errors'] for r in rs)} | {cell([r['load1'] for r in rs])[0]} | "
                  f"{ratio_txt} | {goal_txt} |")
        w("")

    if cg:
        n = cg[0]["requests"]
        w(f"### Proxy instructions per request (callgrind, {n:,} requests)")
        w("")
        w("The same proxy under `valgrind --tool=callgrind`: counters zeroed after 1,000 "
          f"warm-up requests, then {n:,} GET requests on one keep-alive connection, counters "
          "dumped; all threads (main and worker) counted. Counts repeat to within a fraction "
          "of a percent whatever the load. Reports go by wall-clock time while callgrind slows "
          "the proxy, so the *on* run carries more reports per request than at full speed: "
          "the figure is an upper bound.")
        w("")
        w("| interval | off: instructions/request | on: instructions/request | on − off | "
          "reports in the window | off ÷ on | goal |")
        w("|---|---|---|---|---|---|---|")
        for iv in intervals:
            on = [r for r in cg if r["interval_ms"] == iv and r["variant"] == "on"]
            off = [r for r in cg if r["interval_ms"] == iv and r["variant"] == "off"]
            if not (on and off):
                continue
            a, b = med([r["ir_per_req"] for r in on]), med([r["ir_per_req"] for r in off])
            rt = b / a
            w(f"| {iv} ms | {fmt(b)} | {fmt(a)} | {a - b:+,.0f} ({100 * (a - b) / b:+.2f}%) | "
              f"{on[0]['reports']} in {on[0]['seconds']} s | {rfmt(rt)} | {verdict(rt >= GOAL)} |")
            goals.append((f"Telemetry: proxy instructions per request off ÷ on, interval {iv} ms "
                          f"(callgrind): ≥ {GOAL}×", rt >= GOAL,
                          f"{rfmt(rt)} ({fmt(a)} vs {fmt(b)} instructions per request)"))
        w("")

    if sv:
        n = sv[0]["n"]
        win = sv[0]["window_s"]
        w(f"### Server cost of {n:,} reporting proxies")
        w("")
        w(f"`raftplane-subscriber --count {n:,}` attached to one follower (the real protocol), "
          "*report* (`--report`: each also POSTs a Report every interval, 2 routes, 2 clusters, "
          "3 endpoints) vs *quiet* (the same subscribers without `--report`). Measured once "
          f"all are attached and have reported, over {win} s: the follower's CPU "
          "(utime+stime), VmRSS before the subscribers / attached / at the end, "
          "`raftplane_telemetry_bytes` (what the telemetry store holds) and the time of "
          "`GET /metrics` (median of 5) on that follower and on the leader. The store grows "
          "until each reporter has retention ÷ interval + 2 samples (15 minutes by default): "
          "the last column projects the bytes per sample measured here to that size.")
        w("")
        w("| interval | variant | server CPU over the window | CPU per 1,000 reporters | "
          "RSS before → attached → end | telemetry bytes per reporter (samples) | "
          "projected at 15 min per 1,000 reporters | /metrics member / leader | load avg |")
        w("|---|---|---|---|---|---|---|---|---|")
        for iv in intervals:
            for v in ("quiet", "report"):
                for r in [r for r in sv if r["interval_ms"] == iv and r["variant"] == v]:
                    pct = 100 * r["cpu_s"] / r["window_s"]
                    per = (r["tl_bytes"] - r["tl_bytes_before"]) / r["n"]
                    sp = r["tl_samples"] / r["n"] if r["n"] else 0
                    proj = ""
                    if v == "report" and r["tl_samples"]:
                        bps = (r["tl_bytes"] - r["tl_bytes_before"]) / r["tl_samples"]
                        steady = bps * (RETENTION_MS / iv + 2) * 1000
                        proj = f"{steady / 1048576:,.1f} MiB ({bps:,.0f} bytes per sample)"
                    w(f"| {iv} ms | {v} | {r['cpu_s']:.2f} s ({pct:.1f}% of a core) | "
                      f"{pct * 1000 / r['n']:.2f}% | {kib(r['rss_before_kib'])} → "
                      f"{kib(r['rss_attached_kib'])} → {kib(r['rss_end_kib'])} | "
                      f"{per:,.0f} ({sp:.1f}) | {proj} | {r['scrape_ms_member']:.1f} ms / "
                      f"{r['scrape_ms_other']:.1f} ms ({r['metrics_bytes']:,} bytes) | "
                      f"{r['load1']} |")
            q = [r for r in sv if r["interval_ms"] == iv and r["variant"] == "quiet"]
            p = [r for r in sv if r["interval_ms"] == iv and r["variant"] == "report"]
            if q and p:
                d = 100 * (p[0]["cpu_s"] / p[0]["window_s"] - q[0]["cpu_s"] / q[0]["window_s"])
                goals.append((f"Telemetry: server cost of 1,000 reporting proxies, interval {iv} ms "
                              "(measured, no goal)", None,
                              f"+{d * 1000 / p[0]['n']:.2f}% of a core over quiet subscribers; "
                              f"{(p[0]['tl_bytes'] - p[0]['tl_bytes_before']) / p[0]['n']:,.0f} "
                              f"telemetry bytes per reporter after {p[0]['window_s']} s; "
                              f"/metrics {p[0]['scrape_ms_member']:.1f} ms"))
        w("")
    return lines, goals


def main():
    lines, goals = section(load_rows(sys.argv[1]), sys.argv[1])
    if not lines:
        print("no telemetry results in", sys.argv[1])
        return 1
    for l in lines:
        print(l)
    print("| goal | result | measured |")
    print("|---|---|---|")
    for text, met, detail in goals:
        print(f"| {text} | {verdict(met) if met is not None else 'no verdict'} | {detail} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
