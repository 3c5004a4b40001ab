"""raftplane-proxy telemetry, the proxy side: a real proxy subscribed to a
fake control-plane server written here (it serves /v1/subscribe with a
Snapshot encoded by hand, announces a report interval in
x-raftplane-report-interval-ms and records every POST /v1/report), a real
demo backend behind the route.

Checks: the reports decode, with this node's id, one constant nonzero
instance, seq strictly increasing, counters that match exactly the requests
sent through the proxy (route, cluster, endpoint), an endpoint failing its
active checks shown UNHEALTHY with a reason, the interval followed (200 ms),
429 + Retry-After honoured, 400/409/garbage/no answer changing nothing but
the counters (traffic and subscription unaffected, reports resume), no
header: no reports at all, --no-report: none either; raftplane-subscriber
--report speaks the same protocol.

proxy_report_client_tls (RP_IT_TLS=1): the fake server serves HTTPS with a
server certificate of the test CA and requires a client certificate; every
report must come with the proxy's node certificate."""

import http.server
import json
import os
import ssl
import subprocess
import threading
import time

from proxyharness import (Env, check, get, log, pick_ports, rpharness, run,  # noqa: F401
                          wait_until)
from pbwire import decode, f_bytes, f_str, f_uint, read_varint  # noqa: E402

NODE = "edge-tele"
CLUSTER_ID = "0123456789abcdef0123456789abcdef"
HEADER = "x-raftplane-report-interval-ms"

# ---- protobuf, by hand (tests/lib/pbwire.py) --------------------------------------


def snapshot(version, listen_port, backend_port, hc=None, node=NODE):
    listener = f_str(1, "l") + f_uint(2, version) + f_str(3, "127.0.0.1") + f_uint(
        4, listen_port)
    route = f_str(1, "r") + f_uint(2, version) + f_str(3, "l") + f_str(5, "/") + \
        f_str(8, "c")
    ep = f_str(1, "127.0.0.1") + f_uint(2, backend_port) + f_uint(3, 1)
    cluster = f_str(1, "c") + f_uint(2, version) + f_str(3, "round_robin") + f_bytes(6, ep)
    if hc:
        cluster += f_bytes(7, f_str(1, "/healthz") + f_uint(2, hc) + f_uint(3, hc) +
                         f_uint(4, 1) + f_uint(5, 1))
    return (f_str(1, node) + f_uint(2, version) + f_uint(3, version) + f_bytes(4, listener) +
            f_bytes(5, route) + f_bytes(6, cluster) + f_str(7, CLUSTER_ID))


def one(f, no, default=0):
    v = f.get(no, [default])[-1]
    return v.decode() if isinstance(v, bytes) and isinstance(default, str) else v


def u64s(f, no):
    out = []
    for v in f.get(no, []):
        if isinstance(v, int):
            out.append(v)
        else:  # packed
            i = 0
            while i < len(v):
                n, i = read_varint(v, i)
                out.append(n)
    return out


TRAFFIC = {2: "requests", 4: "upstream_requests", 5: "retries", 6: "connect_errors",
           7: "resets", 8: "timeouts", 9: "no_healthy", 10: "active", 12: "latency_sum_us"}


def traffic(b):
    f = decode(b)
    t = {k: one(f, no) for no, k in TRAFFIC.items()}
    t["name"] = one(f, 1, "")
    t["responses"] = u64s(f, 3)
    t["latency"] = u64s(f, 11)
    return t


def endpoint(b):
    f = decode(b)
    return {"cluster": one(f, 1, ""), "address": one(f, 2, ""), "state": one(f, 3),
            "reason": one(f, 4, ""), "since_ms": one(f, 5), "requests": one(f, 6),
            "errors": one(f, 7)}


def report(b):
    f = decode(b)
    return {"node_id": one(f, 1, ""), "instance": one(f, 2), "seq": one(f, 3),
            "uptime_ms": one(f, 4), "version": one(f, 5), "cluster_id": one(f, 6, ""),
            "routes": {t["name"]: t for t in map(traffic, f.get(7, []))},
            "clusters": {t["name"]: t for t in map(traffic, f.get(8, []))},
            "endpoints": [endpoint(e) for e in f.get(9, [])]}


# ---- the fake control plane -------------------------------------------------------

class FakeServer:
    """/v1/subscribe and /v1/report on 127.0.0.1, answers chosen by the test.
    report_mode: ok (204), 429, 400, 409, garbage (not HTTP), hang (no answer)."""

    def __init__(self, snap, version):
        self.snap, self.version = snap, version
        self.pki = rpharness.shared_pki() if rpharness.tls_on() else None
        self.peers = set()  # URIs of the client certificates reports came with
        self.interval = "200"  # header value, None: no header
        self.report_mode = "ok"
        self.lock = threading.Lock()
        self.reports = []  # (monotonic time, decoded report, answer mode)
        self.subscribes = 0
        self.bad = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if status != 204:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                if fake.pki is not None and self.path == "/v1/report":
                    cert = self.connection.getpeercert() or {}
                    uris = [v for k, v in cert.get("subjectAltName", ()) if k == "URI"]
                    with fake.lock:
                        fake.peers.update(uris or ["(none)"])
                n = int(self.headers.get("Content-Length", "0"))
                if n > 256 * 1024:
                    fake.bad.append("report of %d bytes" % n)
                body = self.rfile.read(n)
                if self.path == "/v1/subscribe":
                    fake.on_subscribe(self, body)
                elif self.path == "/v1/report":
                    fake.on_report(self, body)
                else:
                    self.answer(404)

        ctx = None
        if self.pki is not None:
            c = self.pki.server(1)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(c.cert, c.key)
            ctx.load_verify_locations(self.pki.ca)
            ctx.verify_mode = ssl.CERT_REQUIRED

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a proxy killed during a long poll: a broken pipe here

            def finish_request(self, request, client_address):
                if ctx is not None:  # the handshake in the connection's thread
                    try:
                        request = ctx.wrap_socket(request, server_side=True)
                    except (OSError, ssl.SSLError) as e:
                        fake.bad.append("TLS handshake: %r" % e)
                        return
                super().finish_request(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.addr = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def interval_headers(self):
        return [(HEADER, self.interval)] if self.interval is not None else []

    def on_subscribe(self, h, body):
        f = decode(body)
        with self.lock:
            self.subscribes += 1
        if one(f, 6) and one(f, 2) >= self.version:
            # long poll: hold, then 304 (not at once: the proxy would pace itself)
            wait = min(one(f, 5), 600) / 1000.0
            time.sleep(wait)
            h.answer(304, headers=self.interval_headers())
            return
        snap = self.snap(one(f, 1, "")) if callable(self.snap) else self.snap
        h.answer(200, snap, [("Content-Type", "application/x-protobuf")] +
                 self.interval_headers())

    def on_report(self, h, body):
        mode = self.report_mode
        ctype = h.headers.get("Content-Type", "")
        try:
            r = report(body)
        except Exception as e:  # noqa: BLE001
            self.bad.append("undecodable report: %r" % e)
            r = None
        if ctype != "application/x-protobuf":
            self.bad.append("report with Content-Type %r" % ctype)
        with self.lock:
            self.reports.append((time.monotonic(), r, mode))
        if mode == "ok":
            h.answer(204)
        elif mode == "429":
            h.answer(429, b"slow down\n", [("Retry-After", "2")])
        elif mode in ("400", "409"):
            h.answer(int(mode), b'{"error":"no"}')
        elif mode == "garbage":
            h.wfile.write(b"\x00\x01 not http at all\r\n\r\n")
            h.close_connection = True
        elif mode == "hang":
            time.sleep(3)
            h.close_connection = True

    def snapshot_reports(self):
        with self.lock:
            return list(self.reports)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Setup:
    """A backend, a fake server and a proxy subscribed to it."""

    def __init__(self, env, hc=None, extra=()):
        self.backend = env.backend("A")
        self.port = pick_ports(1)[0]
        self.lis = "127.0.0.1:%d" % self.port
        self.fake = FakeServer(snapshot(7, self.port, self.backend.port, hc), 7)
        env.servers = lambda: self.fake.addr
        env.tls = self.fake.pki  # the proxy presents a node certificate of that CA
        self.px = env.proxy(NODE, extra=("--outlier-consecutive", "0") + tuple(extra))
        self.px.wait_version(7)

    def close(self):
        self.fake.close()

    def wait_reports(self, n, timeout=10, what="reports"):
        start = len(self.fake.snapshot_reports())
        return wait_until(lambda: len(self.fake.snapshot_reports()) >= start + n, timeout,
                          what=what)

    def last(self):
        return self.fake.snapshot_reports()[-1][1]

    def metric(self, name):
        text = self.px.get("/metrics").body.decode()
        for ln in text.splitlines():
            if ln.startswith(name + " "):
                return float(ln.split()[-1])
        raise rpharness.TestFailure("metric %s missing" % name)

    def traffic_ok(self):
        r = get(self.lis, "/")
        check(r.status == 200, "traffic through the proxy: %s" % r.status)


def check_sequence(reports):
    rs = [r for _, r, _ in reports]
    check(all(r is not None for r in rs), "every report decodes")
    inst = {r["instance"] for r in rs}
    check(len(inst) == 1 and 0 not in inst, "one nonzero instance", inst)
    seqs = [r["seq"] for r in rs]
    check(seqs[0] >= 1 and all(b > a for a, b in zip(seqs, seqs[1:])),
          "seq strictly increasing", seqs)
    check(all(r["node_id"] == NODE for r in rs), "node id in every report")


# ---- tests ------------------------------------------------------------------------

def test_counters_and_health():
    with Env(servers=0, tls=False) as env:
        s = Setup(env, hc=100)
        try:
            s.wait_reports(3)
            # the interval is followed: 200 ms apart (loosely: a loaded machine)
            s.wait_reports(6)
            ts = [t for t, _, _ in s.fake.snapshot_reports()[-6:]]
            gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
            log("gaps between reports: %s" % ["%.3f" % g for g in gaps])
            med = gaps[len(gaps) // 2]
            check(0.12 <= med <= 0.45, "reports about every 200 ms", gaps)
            check(s.metric("raftplane_proxy_report_interval_ms") == 200, "interval metric")

            c = rpharness.KeepAliveClient(s.lis)
            got = {}
            for i in range(50):
                hdr = {"x-backend-status": "500"} if i % 5 == 0 else {}
                r = c.request("GET", "/x", headers=hdr)
                got[r.status] = got.get(r.status, 0) + 1
            c.close()
            check(got == {200: 40, 500: 10}, "what the client saw", got)

            def counted():
                r = s.last()
                return r and r["routes"].get("r", {}).get("requests") == 50 and r
            r = wait_until(counted, 5, what="a report with the 50 requests")
            check(r["version"] == 7 and r["cluster_id"] == CLUSTER_ID, "version, cluster id",
                  r["version"], r["cluster_id"])
            check(r["uptime_ms"] > 0, "uptime")
            for kind, name in (("routes", "r"), ("clusters", "c")):
                t = r[kind][name]
                check(t["responses"] == [0, 0, 40, 0, 0, 10], "%s responses" % kind, t)
                check(t["upstream_requests"] == 50 and t["retries"] == 0 and
                      t["connect_errors"] == 0 and t["resets"] == 0 and t["timeouts"] == 0 and
                      t["no_healthy"] == 0 and t["active"] == 0, "%s counters" % kind, t)
                check(len(t["latency"]) == 24 and sum(t["latency"]) == 50,
                      "%s latency histogram" % kind, t["latency"])
                check(t["latency_sum_us"] > 0, "latency sum")
            eps = [e for e in r["endpoints"] if e["cluster"] == "c"]
            check(len(eps) == 1, "one endpoint", r["endpoints"])
            e = eps[0]
            check(e["address"] == s.backend.addr and e["state"] == 0 and e["reason"] == "" and
                  e["requests"] == 50 and e["errors"] == 10, "endpoint counters", e)

            # an endpoint failing its active checks
            s.backend.control("health/fail")

            def unhealthy():
                e = s.last()["endpoints"][0]
                return e["state"] == 1 and e
            e = wait_until(unhealthy, 5, what="endpoint reported UNHEALTHY")
            log("unhealthy endpoint: %s" % e)
            check("503" in e["reason"], "the reason names the check's failure", e)
            time.sleep(0.6)
            e2 = s.last()["endpoints"][0]
            check(e2["state"] == 1 and e2["since_ms"] >= 400, "since grows", e2)
            s.backend.control("health/ok")
            wait_until(lambda: s.last()["endpoints"][0]["state"] == 0, 5,
                       what="endpoint HEALTHY again")
            check_sequence(s.fake.snapshot_reports())
            check(not s.fake.bad, "protocol", s.fake.bad)
            if s.fake.pki is not None:
                log("reports came with client certificates %s" % sorted(s.fake.peers))
                check(s.fake.peers == {"spiffe://raftplane/node/%s" % NODE},
                      "every report came with the proxy's node certificate", s.fake.peers)
            st = s.px.stats()["telemetry"]
            log("telemetry in /stats: %s" % st)
            check(st["enabled"] and st["interval_ms"] == 200 and st["last_result"] ==
                  "accepted" and int(st["instance"]) == r["instance"] and
                  st["server"] == s.fake.addr, "/stats telemetry", st)
            check(s.metric('raftplane_proxy_reports_total{result="accepted"}') >= 10,
                  "accepted reports counted")
            # a clean stop with a reporter running (LeakSanitizer runs at exit)
            s.fake.report_mode = "hang"
            s.wait_reports(1)
            check(s.px.stop() == 0, "proxy exits 0 with a report in flight")
        finally:
            s.close()


def test_bad_answers():
    with Env(servers=0, tls=False) as env:
        s = Setup(env)
        try:
            s.wait_reports(2)
            # 429 with Retry-After 2: nothing to that server for 2 s
            s.fake.report_mode = "429"
            s.wait_reports(1)
            s.fake.report_mode = "ok"
            t429 = [t for t, _, m in s.fake.snapshot_reports() if m == "429"][0]
            s.wait_reports(1, what="a report after the 429")
            after = [t for t, _, m in s.fake.snapshot_reports() if t > t429]
            gap = after[0] - t429
            log("first report %.2f s after the 429" % gap)
            check(gap >= 1.95, "Retry-After honoured", gap)
            check(gap < 3.0, "reports resume after Retry-After", gap)
            check(s.metric('raftplane_proxy_reports_total{result="throttled"}') >= 1, "throttled")

            for mode, result in (("400", "refused"), ("409", "refused"), ("garbage", "failed"),
                                 ("hang", "failed")):
                before = s.metric('raftplane_proxy_reports_total{result="%s"}' % result)
                s.fake.report_mode = mode
                s.wait_reports(2 if mode != "hang" else 1, what="reports answered %s" % mode)
                s.traffic_ok()
                s.fake.report_mode = "ok"
                s.wait_reports(2, what="reports after %s" % mode)
                wait_until(lambda: s.metric(
                    'raftplane_proxy_reports_total{result="%s"}' % result) > before, 5,
                    what="%s counted as %s" % (mode, result))
                st = s.px.stats()
                check(st["control_plane_connected"], "still subscribed after %s" % mode)
                s.traffic_ok()
            check_sequence(s.fake.snapshot_reports())
            subs = s.fake.subscribes
            check(subs >= 2, "subscription kept polling", subs)
            errs = s.px.stats()["telemetry"]
            log("telemetry after bad answers: %s" % errs)
            # each distinct failure logged once, not per report
            lines = [ln for ln in s.px.log_text().splitlines() if "telemetry: report to" in ln]
            check(1 <= len(lines) <= 8, "failures logged once each", lines)
            check(not s.fake.bad, "protocol", s.fake.bad)
        finally:
            s.close()


def test_no_header_no_reports():
    with Env(servers=0, tls=False) as env:
        s = Setup(env)
        try:
            s.wait_reports(2)
            s.fake.interval = None  # an older server: no header
            time.sleep(1.5)  # the next answers to the polls carry none
            n = len(s.fake.snapshot_reports())
            time.sleep(1.5)
            check(len(s.fake.snapshot_reports()) == n, "no reports without the header")
            check(s.metric("raftplane_proxy_report_interval_ms") == 0, "interval 0")
            s.traffic_ok()
            s.fake.interval = "200ms"  # not a number: as absent
            time.sleep(1.5)
            n = len(s.fake.snapshot_reports())
            time.sleep(1.0)
            check(len(s.fake.snapshot_reports()) == n, "no reports with a malformed header")
            s.fake.interval = "1"  # below the minimum: 100 ms
            wait_until(lambda: s.metric("raftplane_proxy_report_interval_ms") == 100, 5,
                       what="interval clamped to 100 ms")
            s.fake.interval = "300"
            s.wait_reports(3, what="reports again with the header")
            check_sequence(s.fake.snapshot_reports())
        finally:
            s.close()
    with Env(servers=0, tls=False) as env:
        s = Setup(env, extra=("--no-report",))
        try:
            time.sleep(1.5)
            check(len(s.fake.snapshot_reports()) == 0, "--no-report: none")
            check(s.metric("raftplane_proxy_report_interval_ms") == 0, "interval 0")
            check(s.px.stats()["telemetry"]["enabled"] is False, "/stats says disabled")
        finally:
            s.close()


def test_simulated_reporters():
    """raftplane-subscriber --report: every simulated subscriber reports like a
    proxy (same encoder), with plausible cumulative counters."""
    sub_bin = os.environ.get("RP_SUBSCRIBER_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "proxy",
        "raftplane-subscriber")
    fake = FakeServer(lambda node: snapshot(3, 1, 1, node=node), 3)
    nodes = ["sim-0", "sim-1", "sim-2"]
    tls = []
    if fake.pki is not None:
        tls = ["--tls-cert-dir", rpharness.node_cert_dir(nodes, fake.pki), "--tls-ca",
               fake.pki.ca]
    try:
        out = subprocess.run([sub_bin, "--servers", fake.addr, "--node-prefix", "sim",
                              "--count", "3", "--report", "--duration", "2", "--quiet",
                              "--wait-ms", "1000"] + tls,
                             capture_output=True, timeout=30, check=False)
        check(out.returncode == 0, "subscriber exit", out.returncode, out.stderr[-2000:])
        summary = json.loads(out.stdout.decode().strip().splitlines()[-1])["summary"]
        log("summary: %s" % summary)
        reports = fake.snapshot_reports()
        by_node = {}
        for t, r, m in reports:
            check(r is not None, "decodes")
            by_node.setdefault(r["node_id"], []).append((t, r, m))
        check(sorted(by_node) == nodes, "every subscriber reports", sorted(by_node))
        if fake.pki is not None:
            check(fake.peers == {"spiffe://raftplane/node/%s" % n for n in nodes},
                  "each with its own node certificate", fake.peers)
        # (a report in flight at exit reached the server but was not answered)
        check(len(reports) - 3 <= summary["reports"]["accepted"] <= len(reports),
              "summary counts them", summary, len(reports))
        for node, rs in by_node.items():
            check(len(rs) >= 5, "%s: about every 200 ms for 2 s" % node, len(rs))
            for (_, a, _), (_, b, _) in zip(rs, rs[1:]):
                check(b["seq"] == a["seq"] + 1 and b["instance"] == a["instance"],
                      "one instance, seq 1, 2, 3 ...")
                for name in ("r0", "r1"):
                    x, y = a["routes"][name], b["routes"][name]
                    check(y["requests"] > x["requests"] and
                          sum(y["responses"]) == y["requests"] and
                          sum(y["latency"]) == y["requests"], "growing, consistent", x, y)
            last = rs[-1][1]
            check(len(last["routes"]) == 2 and len(last["clusters"]) == 2 and
                  len(last["endpoints"]) == 3 and last["version"] == 3, "shape", last)
        check(not fake.bad, "protocol", fake.bad)
    finally:
        fake.close()


if __name__ == "__main__":
    run([test_counters_and_health, test_bad_answers, test_no_header_no_reports,
         test_simulated_reporters])
