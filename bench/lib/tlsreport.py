#!/usr/bin/env python3
"""The "TLS" section of RESULTS.md, from the tls_* lines bench/tls.sh appends
to $OUT/results.jsonl (and $OUT/tls-profile.txt).

    tlsreport.py OUT_DIR        prints the section (markdown) on stdout

bench/lib/report.py imports section() for RESULTS.md. Every cell is the median
over the rounds with the min-max range in parentheses; ratios and differences
are TLS (or TLS + token) against plain, from those medians. The goal of the
issue: TLS costs at most 15% throughput (ratio >= 0.85) and 1 ms p50
(difference <= +1 ms)."""
import os
import sys

MAX_TP_LOSS = 0.15
MAX_P50_MS = 1.0
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tables import cell, fmt, load_rows, ratio, rfmt, verdict  # noqa: E402

NAMES = {"plain": "plain", "tls": "TLS", "token": "TLS + token"}


def dfmt(d, unit="ms"):
    return "n/a" if d is None else f"{d:+.2f} {unit}"


def section(rows, out_dir):
    """-> (markdown lines, goals [(text, met, detail)]); ([], []) without tls rows"""
    kv = [r for r in rows if r.get("bench") == "tls_kv"]
    prop = [r for r in rows if r.get("bench") == "tls_prop"]
    storm = [r for r in rows if r.get("bench") == "tls_storm"]
    if not (kv or prop or storm):
        return [], []
    lines, goals = [], []
    w = lines.append
    variants = [v for v in ("plain", "tls", "token") if any(r["variant"] == v for r in kv + prop + storm)]
    others = [v for v in variants if v != "plain"]
    w("## TLS: what it costs")
    w("")
    w("Three 3-node clusters run side by side for the whole step (`bench/tls.sh`): *plain*; "
      "*TLS* (`--tls-cert --tls-key --tls-client-ca` on every server: HTTPS on the API and "
      "mutual TLS 1.3 between the raft peers); *TLS + token* (the same plus "
      "`--bootstrap-token-file`: every request carries `Authorization: Bearer`; "
      "`--max-writes-per-token 0` so that the per-token write limit does not cap the load). "
      "Each figure alternates the variants round by round (order rotated), same machine, same "
      "run; median (min–max) over the rounds. Goal of the issue: TLS costs at most "
      f"{int(MAX_TP_LOSS * 100)}% throughput (ratio ≥ {1 - MAX_TP_LOSS:.2f}×) and {MAX_P50_MS:g} ms "
      "p50 (difference ≤ +1 ms).")
    load = [r for r in rows if r.get("bench") == "tls_load"]
    if load:
        w("")
        w("1-min load average at the start of each part: " +
          ", ".join(f"{r['phase']} {r['load1']}" for r in load) + ".")
    w("")

    hdr = "| workload | figure | " + " | ".join(NAMES[v] for v in variants) + " | " + \
        " | ".join(f"{NAMES[v]} vs plain" for v in others) + " | goal |"
    sep = "|---|---|" + "---|" * (len(variants) + len(others) + 1)

    if kv:
        w("### Key/value through the leader (wrk, HTTPS for TLS)")
        w("")
        w(hdr)
        w(sep)
        specs = sorted({(r["op"], r["conns"]) for r in kv}, key=lambda x: (x[0] != "write", x[1]))
        for op, conns in specs:
            name = f"{'writes' if op == 'write' else 'linearizable reads'}, {conns} conn"

            def vals(v, key):
                return [r.get(key) for r in kv if r["op"] == op and r["conns"] == conns and r["variant"] == v]

            def cpu_op(v, key="server_cpu_s"):
                return [c / n * 1e6 for c, n in zip(vals(v, key), vals(v, "requests")) if n and c is not None]

            def cpu_total(v):
                return [(s_ + c) / n * 1e6 for s_, c, n in
                        zip(vals(v, "server_cpu_s"), vals(v, "client_cpu_s"), vals(v, "requests"))
                        if n and c is not None]

            tp = {v: cell(vals(v, "rps")) for v in variants}
            p50 = {v: cell(vals(v, "p50_ms")) for v in variants}
            p99 = {v: cell(vals(v, "p99_ms")) for v in variants}
            cpu = {v: cell(cpu_op(v), 0) for v in variants}
            ccpu = {v: cell(cpu_op(v, "client_cpu_s"), 0) for v in variants}
            tcpu = {v: cell(cpu_total(v), 0) for v in variants}
            tp_r = {v: ratio(tp[v][1], tp["plain"][1]) for v in others}
            p50_d = {v: None if p50[v][1] is None or p50["plain"][1] is None else p50[v][1] - p50["plain"][1]
                     for v in others}
            met_tp = {v: None if tp_r[v] is None else tp_r[v] >= 1 - MAX_TP_LOSS for v in others}
            met_p50 = {v: None if p50_d[v] is None else p50_d[v] <= MAX_P50_MS for v in others}
            unit = "writes/s" if op == "write" else "reads/s"
            w(f"| {name} | {unit} | " + " | ".join(tp[v][0] for v in variants) + " | " +
              " | ".join(rfmt(tp_r[v]) for v in others) + " | ≥ 0.85×: " +
              ", ".join(f"{NAMES[v]} {verdict(met_tp[v])}" for v in others) + " |")
            w(f"| {name} | p50 ms | " + " | ".join(p50[v][0] for v in variants) + " | " +
              " | ".join(dfmt(p50_d[v]) for v in others) + " | ≤ +1 ms: " +
              ", ".join(f"{NAMES[v]} {verdict(met_p50[v])}" for v in others) + " |")
            w(f"| {name} | p99 ms | " + " | ".join(p99[v][0] for v in variants) + " | " +
              " | ".join(dfmt(None if p99[v][1] is None or p99['plain'][1] is None else p99[v][1] - p99['plain'][1])
                         for v in others) + " | |")
            w(f"| {name} | server CPU µs/op (3 nodes) | " + " | ".join(cpu[v][0] for v in variants) + " | " +
              " | ".join(rfmt(ratio(cpu[v][1], cpu["plain"][1])) for v in others) + " | lower |")
            if ccpu["plain"][1] is not None:
                w(f"| {name} | client (wrk) CPU µs/op | " + " | ".join(ccpu[v][0] for v in variants) + " | " +
                  " | ".join(rfmt(ratio(ccpu[v][1], ccpu["plain"][1])) for v in others) + " | |")
                w(f"| {name} | servers + wrk CPU µs/op | " + " | ".join(tcpu[v][0] for v in variants) + " | " +
                  " | ".join(rfmt(ratio(tcpu[v][1], tcpu["plain"][1])) for v in others) + " | |")
            errs = {v: sum(x or 0 for x in vals(v, "errors")) for v in variants}
            if any(errs.values()):
                w(f"| {name} | errors (all rounds) | " + " | ".join(str(errs[v]) for v in variants) +
                  " |" + " |" * len(others) + " |")
            for v in others:
                met = None if met_tp[v] is None or met_p50[v] is None else met_tp[v] and met_p50[v]
                goals.append((f"{NAMES[v]}, {name}: ≤ 15% throughput, ≤ +1 ms p50", met,
                              f"throughput {rfmt(tp_r[v])}, p50 {dfmt(p50_d[v])}"))
        w("")
        reps = max(r["rep"] for r in kv)
        w(f"wrk `-t2`, `bench/lib/kv.lua` as in the key/value section (200-byte values, 64 keys), "
          f"{reps} rounds of ~{fmt(kv[0].get('duration_s'), 0)} s per variant after a warm-up of each. "
          "wrk keeps its connections: this is the steady-state cost (record encryption, the "
          "per-request token check), not the handshake. The TLS figures include wrk's own "
          "encryption on the same two cores, and the leader's raft traffic to the followers "
          "going through TLS too. Server CPU = utime+stime of the three nodes ÷ requests.")
        w("")

    if prop:
        w("### Propagation: write acknowledged → all N subscribers ACKed")
        w("")
        w(hdr)
        w(sep)
        for n in sorted({r["n"] for r in prop}):
            def pv(v, f):
                return [f(r) for r in prop if r["n"] == n and r["variant"] == v]
            res = {}
            for key, name in (("p50", "last subscriber, p50 ms"), ("p99", "last subscriber, p99 ms")):
                c = {v: cell(pv(v, lambda r: r["last_ms"][key])) for v in variants}
                d = {v: None if c[v][1] is None or c["plain"][1] is None else c[v][1] - c["plain"][1]
                     for v in others}
                g = ""
                if key == "p50":
                    met = {v: None if d[v] is None else d[v] <= MAX_P50_MS for v in others}
                    g = "≤ +1 ms: " + ", ".join(f"{NAMES[v]} {verdict(met[v])}" for v in others)
                    for v in others:
                        res[v] = (d[v], met[v])
                w(f"| N = {n} | {name} | " + " | ".join(c[v][0] for v in variants) + " | " +
                  " | ".join(dfmt(d[v]) for v in others) + f" | {g} |")
            for writer, name in ((True, "last subscriber on the leader, p50 ms"),
                                 (False, "last subscriber on a follower, p50 ms (per follower)")):
                c = {v: cell([p["last_p50"] for r in prop if r["n"] == n and r["variant"] == v
                              for p in r.get("per_server", []) if p["writer"] == writer]) for v in variants}
                w(f"| N = {n} | {name} | " + " | ".join(c[v][0] for v in variants) + " | " +
                  " | ".join(dfmt(None if c[v][1] is None or c['plain'][1] is None else c[v][1] - c['plain'][1])
                             for v in others) + " | |")
            for key, name in (("first_ms", "first subscriber, p50 ms"), ("write_ms", "the write itself, p50 ms")):
                c = {v: cell(pv(v, lambda r: r[key]["p50"])) for v in variants}
                w(f"| N = {n} | {name} | " + " | ".join(c[v][0] for v in variants) + " | " +
                  " | ".join(dfmt(None if c[v][1] is None or c['plain'][1] is None else c[v][1] - c['plain'][1])
                             for v in others) + " | |")
            c = {v: cell(pv(v, lambda r: 1000 * r["server"]["cpu_changes_s"] / max(r["changes"] + 5, 1)
                            if "server" in r else None), 2) for v in variants}
            w(f"| N = {n} | leader CPU per change, ms (the write, raft, its third of the subscribers) | " +
              " | ".join(c[v][0] for v in variants) + " | " +
              " | ".join(dfmt(None if c[v][1] is None or c['plain'][1] is None else c[v][1] - c['plain'][1])
                         for v in others) + " | |")
            c = {v: cell(pv(v, lambda r: 1000 * r["client_cpu_changes_s"] / max(r["changes"] + 5, 1)), 2)
                 for v in variants}
            w(f"| N = {n} | client CPU per change, ms | " + " | ".join(c[v][0] for v in variants) + " | " +
              " | ".join(dfmt(None if c[v][1] is None or c['plain'][1] is None else c[v][1] - c['plain'][1])
                         for v in others) + " | |")
            miss = {v: sum(pv(v, lambda r: r["missing"])) for v in variants}
            ver = {v: (sum(pv(v, lambda r: r.get("verified", 0))), sum(pv(v, lambda r: r.get("verify_failed", 0))))
                   for v in variants}
            w(f"| N = {n} | changes not seen by all in 10 s | " + " | ".join(str(miss[v]) for v in variants) +
              " |" + " |" * len(others) + " |")
            w(f"| N = {n} | server-side rollout check | " +
              " | ".join(f"{ver[v][0]} ok, {ver[v][1]} failed" for v in variants) + " |" + " |" * len(others) + " |")
            for v in others:
                d, met = res[v]
                if met is not None and miss[v]:
                    met = False
                goals.append((f"{NAMES[v]}, propagation N={n}: ≤ +1 ms p50", met, f"p50 {dfmt(d)}"))
        w("")
        w("`bench/tools/propbench` as in the propagation section (subscribers spread over the three "
          "members, 100 changes per round after 5 warm-up changes, server-side rollout check). "
          "With TLS each subscriber has its own node certificate "
          "(`spiffe://raftplane/node/pb-<i>`, EC P-256, made by propbench from the CA key) and "
          "its own connection; the server checks that the certificate names the subscribing node.")
        w("")

    if storm:
        sv = [v for v in ("plain", "tls") if any(r["variant"] == v for r in storm)]
        n = storm[0]["storm"]["n"]
        w(f"### Reconnect storm: {n:,} subscribers reconnect at once to one follower")
        w("")
        w("| figure | " + " | ".join(NAMES[v] for v in sv) + " | TLS vs plain |")
        w("|---|" + "---|" * (len(sv) + 1))

        def st(v, f):
            return [f(r) for r in storm if r["variant"] == v]

        def row(name, f, nd=None, diff=False, unit="ms"):
            c = {v: cell(st(v, f), nd) for v in sv}
            cmp_ = ""
            if "plain" in c and "tls" in c and c["plain"][1] is not None and c["tls"][1] is not None:
                d = c["tls"][1] - c["plain"][1]
                cmp_ = f"{d:+,.0f} {unit}" if diff else rfmt(ratio(c["tls"][1], c["plain"][1]))
            w(f"| {name} | " + " | ".join(c[v][0] for v in sv) + f" | {cmp_} |")
            return {v: c[v][1] for v in sv}

        t = row("time until all are attached again (each received its snapshot), ms", lambda r: r["storm"]["ms"])
        row("one subscriber's time to its snapshot, p50 ms", lambda r: r["storm"]["attach_p50_ms"])
        row("one subscriber's time to its snapshot, p99 ms", lambda r: r["storm"]["attach_p99_ms"])
        row("server CPU over the storm, ms", lambda r: 1000 * r["storm"]["server_cpu_s"], 0)
        row("server CPU during the storm, % of one core",
            lambda r: 100 * r["storm"]["server_cpu_s"] / max(r["storm"]["ms"] / 1000, 1e-9), 0)
        per = row("server CPU per reconnecting subscriber, µs",
                  lambda r: 1e6 * r["storm"]["server_cpu_s"] / r["storm"]["n"], 0, diff=True, unit="µs")
        row("client (propbench) CPU over the storm, ms", lambda r: 1000 * r["storm"]["client_cpu_s"], 0)
        row("full TLS handshakes completed in the storm", lambda r: r["storm"]["handshakes"], 0)
        row("first attach (100 at a time), ms", lambda r: r["attach_ms"], 0)
        errs = {v: sum(st(v, lambda r: r["storm"]["errors"] + r["storm"]["tls_failures"])) for v in sv}
        w("| connection or TLS errors (all rounds) | " + " | ".join(str(errs[v]) for v in sv) + " | |")
        w("")
        hs = None
        if per.get("tls") is not None and per.get("plain") is not None:
            hs = per["tls"] - per["plain"]
            w(f"**Server cost of one full TLS handshake** (TLS − plain CPU per reconnecting subscriber): "
              f"**{fmt(hs, 0)} µs** of server CPU; a storm of {n:,} costs the server "
              f"{fmt(hs * n / 1000, 0)} ms of CPU more than without TLS.")
            w("")
        goals.append((f"TLS reconnect storm, {n:,} subscribers (no numeric goal)", None,
                      f"all attached in {rfmt(ratio(t.get('tls'), t.get('plain')))} the plain time; "
                      f"{fmt(hs, 0) if hs is not None else 'n/a'} µs server CPU per handshake"))
        w(f"propbench `--storm`: {n:,} subscribers attach to one follower (in batches), then all drop "
          "their connections (like restarting proxies, they forget their version), the server gets "
          "1 s to see the closes, and all reconnect at once; attached = its snapshot received and the "
          "ACK poll sent. With TLS every connection makes a full handshake (TLS 1.3, ECDHE P-256, the "
          "server signs with its P-256 key and verifies the subscriber's own certificate; no session "
          "is resumed, by design). Server CPU = utime+stime of the follower from the first connect to "
          "the last snapshot; it includes encoding and sending the snapshots (the same in both).")
        w("")

    prof = os.path.join(out_dir, "tls-profile.txt")
    if os.path.exists(prof):
        w("### Where TLS spends (perf, bench/tls.sh)")
        w("")
        w("```")
        w(open(prof).read().rstrip())
        w("```")
        w("")
    return lines, goals


def main():
    out_dir = sys.argv[1]
    lines, goals = section(load_rows(out_dir), out_dir)
    if not lines:
        print("no TLS results in", out_dir)
        return 1
    # the profile is long: the printed summary stops before it
    for l in lines:
        if l.startswith("### Where TLS spends"):
            break
        print(l)
    print("| goal | result | measured |")
    print("|---|---|---|")
    for text, met, detail in goals:
        print(f"| {text} | {verdict(met) if met is not None else 'no verdict'} | {detail} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
