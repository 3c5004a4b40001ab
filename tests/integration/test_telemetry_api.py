#!/usr/bin/env python3
"""Telemetry, server side (issue 12): POST /v1/report against a real 3-node
cluster, with a reporter written here (Report protobuf encoded by hand), and
the fleet views every member answers (/v1/telemetry/..., cluster health,
/metrics, rollouts). Run with a short report interval and retention."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (Cluster, check, http_request, log, node_client_context,  # noqa: E402
                       open_socket, parse_response, run, tls_on, wait_until)
from pbwire import f_bytes, f_packed, f_uint  # noqa: E402

INTERVAL_MS = 1000
RETENTION_MS = 8000
B5 = 5  # latency bucket 5: (3000 µs, 5000 µs]

# ---- protobuf, by hand (tests/lib/pbwire.py) --------------------------------------


def traffic(name, requests=0, responses=None, upstream=0, retries=0, connect=0, resets=0,
            timeouts=0, no_healthy=0, active=0, latency=None, lat_sum=0):
    return (f_bytes(1, name) + f_uint(2, requests) + f_packed(3, responses or []) +
            f_uint(4, upstream) + f_uint(5, retries) + f_uint(6, connect) + f_uint(7, resets) +
            f_uint(8, timeouts) + f_uint(9, no_healthy) + f_uint(10, active) +
            f_packed(11, latency or []) + f_uint(12, lat_sum))


def endpoint(cluster, address, state=0, reason="", since_ms=0, requests=0, errors=0):
    return (f_bytes(1, cluster) + f_bytes(2, address) + f_uint(3, state) +
            (f_bytes(4, reason) if reason else b"") + f_uint(5, since_ms) +
            f_uint(6, requests) + f_uint(7, errors))


def report(node_id, instance, seq, routes=(), clusters=(), endpoints=(), version=0):
    return (f_bytes(1, node_id) + f_uint(2, instance) + f_uint(3, seq) + f_uint(4, 1000 * seq) +
            f_uint(5, version) + b"".join(f_bytes(7, r) for r in routes) +
            b"".join(f_bytes(8, c) for c in clusters) +
            b"".join(f_bytes(9, e) for e in endpoints))


def stats(name, requests, errors, bucket=B5, active=0):
    """@requests all answered, @errors of them 5xx, every latency in @bucket."""
    lat = [0] * 24
    lat[bucket] = requests
    return traffic(name, requests=requests, responses=[0, 0, requests - errors, 0, 0, errors],
                   upstream=requests, active=active, latency=lat, lat_sum=4000 * requests)


def both(requests, errors, active=0):
    return dict(routes=[stats("r1", requests, errors, active=active)],
                clusters=[stats("c1", requests, errors, active=active)])


# ---- HTTP ----------------------------------------------------------------------


def post_report(c, node, body, as_node=None, ctx=None):
    """POST /v1/report; over TLS with the certificate of @as_node (default the
    node id the caller says the body names)."""
    addr = c.node(node).http
    if ctx is None and tls_on():
        ctx = node_client_context(as_node or "rp-harness")
    return http_request(addr, "POST", "/v1/report", body=body,
                        headers={"Content-Type": "application/x-protobuf"}, ssl_context=ctx)


def send(c, node, node_id, *args, expect=204, **kw):
    r = post_report(c, node, report(node_id, *args, **kw), as_node=node_id)
    check(r.status == expect, "report %s %r to node%d: want %d" % (node_id, args, node, expect),
          r)
    return r


def get(c, node, path, expect=200):
    r = c.request(node, "GET", path)
    check(r.status == expect, "GET %s on node%d: want %d" % (path, node, expect), r)
    return r.json() if r.body else None


def proxy_of(item, node_id):
    for p in item["proxies"]:
        if p["node_id"] == node_id:
            return p
    return None


def near(a, b, eps=1e-6):
    return a is not None and abs(a - b) <= eps


def wait_applied(c, rev):
    for n in c.nodes:
        wait_until(lambda: c.status(n)["revision"] >= rev, what="node%d at revision %d" % (n, rev))


# ---- the test ------------------------------------------------------------------------


def setup_mesh(c):
    lead = c.leader()
    r = c.request(lead, "PUT", "/v1/clusters/c1", body={"endpoints": [
        {"address": "127.0.0.1", "port": 9001}, {"address": "127.0.0.1", "port": 9002}]})
    check(r.status == 200, "PUT cluster", r)
    r = c.request(lead, "PUT", "/v1/clusters/c2", body={"endpoints": []})
    check(r.status == 200, "PUT cluster c2", r)
    r = c.request(lead, "PUT", "/v1/listeners/lsn",
                  body={"address": "127.0.0.1", "port": 10000, "nodes": ["*"]})
    check(r.status == 200, "PUT listener", r)
    r = c.request(lead, "PUT", "/v1/routes/r1",
                  body={"listener": "lsn", "match": {"prefix": "/"}, "cluster": "c1"})
    check(r.status == 200, "PUT route", r)
    wait_applied(c, c.status(lead)["revision"])


def subscribe_header(c):
    sub = f_bytes(1, "edge-a")
    r = http_request(c.node(1).http, "POST", "/v1/subscribe", body=sub,
                     headers={"Content-Type": "application/x-protobuf"})
    check(r.status == 200, "first contact", r)
    check(r.headers.get("x-raftplane-report-interval-ms") == str(INTERVAL_MS),
          "interval header on a 200", r.headers)
    v = int(r.headers["x-raftplane-version"])
    sub = f_bytes(1, "edge-a") + f_uint(2, v) + f_uint(6, 1)  # has_version, wait_ms 0
    r = http_request(c.node(1).http, "POST", "/v1/subscribe", body=sub,
                     headers={"Content-Type": "application/x-protobuf"})
    check(r.status == 304, "a poll with nothing newer", r)
    check(r.headers.get("x-raftplane-report-interval-ms") == str(INTERVAL_MS),
          "interval header on a 304", r.headers)


def failover_sums(c):
    """edge-a reports seq 1-2 to node1, then fails over to node2 (seq 3-4);
    edge-b reports to node3 only. Every member shows the exact sums."""
    pause = INTERVAL_MS / 2000 + 0.05
    send(c, 1, "edge-a", 777, 1, **both(10, 2))
    time.sleep(pause)
    send(c, 1, "edge-a", 777, 2, **both(30, 6))
    send(c, 2, "edge-a", 777, 3, **both(60, 12))  # another server: no 429
    time.sleep(pause)
    send(c, 2, "edge-a", 777, 4, **both(100, 20, active=3))
    send(c, 3, "edge-b", 4242, 1, **both(5, 0, active=2))
    for n in (1, 2, 3):
        cl = get(c, n, "/v1/telemetry/clusters/c1?window=1m")
        check(cl["requests"] == 105, "node%d: fleet requests 100 + 5, no double count" % n, cl)
        check(cl["errors"] == 20 and cl["responses"]["5xx"] == 20 and
              cl["responses"]["2xx"] == 85, "node%d: responses by class" % n, cl)
        check(near(cl["error_rate"], 20 / 105), "node%d: error rate 20/105" % n, cl)
        check(near(cl["rate"], 105 / 60, 1e-3), "node%d: rate over 60 s" % n, cl)
        check(cl["active"] == 5, "node%d: active gauges summed" % n, cl)
        lat = cl["latency_ms"]
        check(near(lat["p50"], 4.0, 1e-3) and near(lat["p90"], 4.8, 1e-3) and
              near(lat["p99"], 4.98, 1e-3),
              "node%d: percentiles interpolated inside (3, 5] ms" % n, lat)
        a, b = proxy_of(cl, "edge-a"), proxy_of(cl, "edge-b")
        check(a and a["requests"] == 100 and near(a["error_rate"], 0.2),
              "node%d: edge-a alone" % n, cl)
        check(b and b["requests"] == 5 and b["error_rate"] == 0, "node%d: edge-b" % n, cl)
        check(cl["unreachable"] == [], "node%d: every member answered" % n, cl)
        rt = get(c, n, "/v1/telemetry/routes/r1")
        check(rt["requests"] == 105 and rt["window_ms"] == 60000, "route r1 (default 1m)", rt)
    lst = get(c, 3, "/v1/telemetry/clusters")
    names = [x["name"] for x in lst["clusters"]]
    check(names == ["c1"], "cluster list: only what was reported", lst)
    return get(c, 3, "/v1/telemetry/clusters/c1")


def refusals_change_nothing(c, before):
    pause = INTERVAL_MS / 2000 + 0.05
    # the same seq again (a retry): accepted, nothing new
    r = send(c, 2, "edge-a", 777, 4, **both(100, 20, active=3))
    # seq going backwards, even with other numbers
    r = send(c, 2, "edge-a", 777, 3, expect=409, **both(500, 20))
    check(b"backwards" in r.body, "409 says why", r)
    send(c, 2, "edge-a", 777, 2, expect=409, **both(30, 6))
    # a cumulative counter below the previous sample: a liar
    time.sleep(pause)
    r = send(c, 2, "edge-a", 777, 5, expect=409, **both(90, 20))
    check(b"backwards" in r.body, "409 names the counter", r)
    # malformed
    cases = [
        (b"\xff\xff\xff", "garbage", 400, b""),
        (report("bad id!", 1, 1), "bad node id", 400, b"node_id"),
        (report("edge-z", 0, 1), "instance 0", 400, b"instance"),
        (report("edge-z", 1, 0), "seq 0", 400, b"seq"),
        (report("edge-z", 1, 1, routes=[traffic("r1", responses=[1, 2, 3])]), "3 responses",
         400, b"responses"),
        (report("edge-z", 1, 1, clusters=[traffic("c1", latency=[1] * 23)]), "23 buckets", 400,
         b"latency"),
        (report("edge-z", 1, 1, routes=[traffic(b"r\xc3")]), "route name not UTF-8", 400,
         b"UTF-8"),
        (f_bytes(1, b"edge-z\x00x") + f_uint(2, 1) + f_uint(3, 1), "NUL in node_id", 400,
         b"NUL"),
        (report("edge-z", 1, 1, routes=[traffic("r%d" % i) for i in range(1025)]),
         "1025 routes", 400, b"routes"),
        (report("edge-z", 1, 1, clusters=[traffic("c%d" % i) for i in range(1025)]),
         "1025 clusters", 400, b"clusters"),
        (report("edge-z", 1, 1, endpoints=[endpoint("c1", "10.0.%d.%d:80" % (i // 250, i % 250))
                                           for i in range(4097)]),
         "4097 endpoints", 400, b"endpoints"),
        (report("edge-z", 1, 1, endpoints=[endpoint("c1", "127.0.0.1:9001", 1, "x" * 256)]),
         "reason of 256 bytes", 400, b"reason"),
        (report("edge-z", 1, 1, endpoints=[endpoint("c1", "127.0.0.1:9001", state=7)]),
         "state 7", 400, b"state"),
        (report("edge-z", 1, 1, endpoints=[endpoint("c1", "somewhere:80")]), "address", 400,
         b"address"),
        (report("edge-z", 1, 1, routes=[traffic("r1"), traffic("r1")]), "a route twice", 400,
         b"twice"),
        (report("edge-z", 1, 1) + f_bytes(15, b"x" * (300 * 1024)), "300 KiB", 413, b"bytes"),
    ]
    for body, what, status, word in cases:
        r = post_report(c, 1, body, as_node="edge-z")
        check(r.status == status, "%s: want %d" % (what, status), r)
        check(word in r.body and r.json().get("error"), "%s: the error names it" % what, r)
    # 413 from the head alone: a huge Content-Length, no body sent
    s = open_socket(c.node(1).http, timeout=10,
                    ssl_context=node_client_context("edge-z") if tls_on() else None)
    try:
        s.sendall(b"POST /v1/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf"
                  b"\r\nContent-Length: 104857600\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except socket.timeout:
        data = b""
    finally:
        s.close()
    res = parse_response(data, partial=True)
    check(res and res[0] == 413, "huge Content-Length: 413 before the body", data[:300])
    for n in (1, 2, 3):
        after = get(c, n, "/v1/telemetry/clusters/c1")
        check(after["requests"] == before["requests"] and after["errors"] == before["errors"],
              "node%d: refused reports changed nothing" % n, after)
    check(get(c, 1, "/v1/telemetry/proxies/edge-z", expect=404) is not None, "no edge-z")
    # other reporters are unaffected
    send(c, 3, "edge-b", 4242, 2, **both(9, 1, active=2))
    check(get(c, 1, "/v1/telemetry/clusters/c1")["requests"] == 109, "edge-b's next report")


def too_often(c):
    send(c, 1, "edge-c", 5, 1, **both(1, 0))
    r = send(c, 1, "edge-c", 5, 2, expect=429, **both(2, 0))
    check(r.headers.get("retry-after") == "1", "Retry-After in whole seconds, rounded up",
          r.headers)
    time.sleep(INTERVAL_MS / 2000 + 0.05)
    send(c, 1, "edge-c", 5, 2, **both(2, 0))


def unknown_names(c):
    r = send(c, 2, "edge-d", 9, 1, routes=[stats("nope", 5, 0)],
             clusters=[stats("ghost", 5, 0), stats("c2", 4, 4)],
             endpoints=[endpoint("ghost", "127.0.0.1:1")])
    check(r.headers.get("x-raftplane-report-ignored") == "3", "3 names ignored", r.headers)
    get(c, 1, "/v1/telemetry/clusters/ghost", expect=404)
    get(c, 1, "/v1/telemetry/routes/nope", expect=404)
    names = [x["name"] for x in get(c, 1, "/v1/telemetry/routes")["routes"]]
    check("nope" not in names, "an unknown route is not listed", names)
    c2 = get(c, 3, "/v1/telemetry/clusters/c2")
    check(c2["requests"] == 4 and c2["error_rate"] == 1.0, "c2: all 5xx", c2)
    empty = get(c, 3, "/v1/telemetry/clusters/c2?window=1s")
    check(empty["window_ms"] == 1000, "window 1s", empty)


def windows(c):
    for w in ("0s", "500ms", "16m", "15m1s", "abc", "-1m", "1h"):
        r = c.request(1, "GET", "/v1/telemetry/clusters/c1?window=" + w)
        check(r.status == 400 and b"window" in r.body, "window=%s refused" % w, r)
    for w, ms in (("30s", 30000), ("1m", 60000), ("15m", 900000), ("90", 90000)):
        check(get(c, 2, "/v1/telemetry/clusters?window=" + w)["window_ms"] == ms, "window " + w)
    get(c, 1, "/v1/telemetry/clusters/bad%20name", expect=400)


def restart_instance(c):
    """edge-a restarts: a new instance from seq 1, counted from zero."""
    send(c, 1, "edge-a", 778, 1, **both(7, 7))
    cl = get(c, 2, "/v1/telemetry/clusters/c1")
    check(proxy_of(cl, "edge-a")["requests"] == 107, "old instance 100 + new 7", cl)
    px = get(c, 3, "/v1/telemetry/proxies/edge-a")
    insts = sorted((i["instance"], i["seq"]) for i in px["instances"])
    check(insts == [("777", 4), ("778", 1)], "both instances with their seq", px)
    check([x["name"] for x in px["routes"]] == ["r1"] and px["routes"][0]["requests"] == 107,
          "proxy view: route r1", px)
    get(c, 3, "/v1/telemetry/proxies/nobody", expect=404)


def health(c):
    pause = INTERVAL_MS / 2000 + 0.05
    time.sleep(pause)
    send(c, 1, "edge-a", 778, 2, endpoints=[
        endpoint("c1", "127.0.0.1:9001", 0, requests=5),
        endpoint("c1", "127.0.0.1:9002", 1, "connect: connection refused", since_ms=1500,
                 requests=3, errors=3)], **both(8, 7))
    send(c, 3, "edge-b", 4242, 3, endpoints=[
        endpoint("c1", "127.0.0.1:9001", 2, "5 consecutive 5xx", since_ms=100),
        endpoint("c1", "[::1]:9003", 0)], **both(10, 1))
    t = time.time() * 1000
    for n in (1, 2, 3):
        h = get(c, n, "/v1/clusters/c1/health")
        eps = {e["address"]: e for e in h["endpoints"]}
        check(set(eps) == {"127.0.0.1:9001", "127.0.0.1:9002", "[::1]:9003"},
              "config endpoints plus reported", h)
        e1, e2 = eps["127.0.0.1:9001"], eps["127.0.0.1:9002"]
        check((e1["healthy"], e1["unhealthy"], e1["ejected"]) == (1, 0, 1), "9001 counts", e1)
        check((e2["healthy"], e2["unhealthy"], e2["ejected"]) == (0, 1, 0), "9002 counts", e2)
        p = [x for x in e2["proxies"] if x["node_id"] == "edge-a"][0]
        check(p["state"] == "unhealthy" and p["reason"] == "connect: connection refused" and
              abs(p["since"] - (t - 1500)) < 3000, "edge-a's view of 9002", p)
        check(h["proxies"] == 2, "two proxies count", h)
    get(c, 1, "/v1/clusters/nosuch/health", expect=404)
    # a proxy silent for 3 intervals no longer counts
    time.sleep(3 * INTERVAL_MS / 1000 + 0.5)
    send(c, 1, "edge-a", 778, 3, endpoints=[endpoint("c1", "127.0.0.1:9002", 0, requests=3, errors=3)],
         **both(8, 7))
    h = get(c, 2, "/v1/clusters/c1/health")
    eps = {e["address"]: e for e in h["endpoints"]}
    check(h["proxies"] == 1 and eps["127.0.0.1:9001"]["ejected"] == 0 and
          eps["127.0.0.1:9002"]["healthy"] == 1, "only fresh reports count", h)


def metrics(c):
    text = c.request(3, "GET", "/metrics").body.decode()
    want = [
        'raftplane_fleet_requests_total{kind="cluster",name="c1"} 120',
        'raftplane_fleet_requests_total{kind="cluster",name="c2"} 4',
        'raftplane_fleet_responses_total{kind="cluster",name="c1",class="5xx"} 28',
        'raftplane_fleet_upstream_errors_total{kind="route",name="r1",error="connect"} 0',
        'raftplane_fleet_latency_seconds_bucket{kind="cluster",name="c1",le="0.005"} 120',
        'raftplane_fleet_latency_seconds_count{kind="route",name="r1"} 120',
        'raftplane_fleet_endpoint_proxies{cluster="c1",address="127.0.0.1:9002",'
        'state="healthy"} 1',
        'raftplane_telemetry_reports_total{result="accepted"}',
        "raftplane_telemetry_bytes ",
    ]
    for w in want:
        check(w in text, "metrics: " + w, [ln for ln in text.splitlines() if "fleet" in ln][:40])
    check('name="ghost"' not in text and 'name="nope"' not in text, "no unknown names")


def gc(c):
    time.sleep(RETENTION_MS / 1000 + 2)
    for n in (1, 2, 3):
        get(c, n, "/v1/telemetry/proxies/edge-a", expect=404)
        lst = get(c, n, "/v1/telemetry/clusters?window=15m")
        check(lst["clusters"] == [], "node%d: everything aged out" % n, lst)
        text = c.request(n, "GET", "/metrics").body.decode()
        check("\nraftplane_telemetry_reporters 0\n" in text, "node%d: no reporters left" % n)


def rollout(c):
    """edge-r reports, ACKs version V, then reports errors: the rollout of V
    shows the before and after of its ACK ("after" from the first report
    after the ACK on)."""
    sub = f_bytes(1, "edge-r")
    r = http_request(c.node(2).http, "POST", "/v1/subscribe", body=sub,
                     headers={"Content-Type": "application/x-protobuf"})
    check(r.status == 200, "edge-r first contact", r)
    v = int(r.headers["x-raftplane-version"])
    send(c, 2, "edge-r", 31, 1, **both(10, 0))
    time.sleep(0.3)
    sub = f_bytes(1, "edge-r") + f_uint(2, v) + f_uint(6, 1)
    r = http_request(c.node(2).http, "POST", "/v1/subscribe", body=sub,
                     headers={"Content-Type": "application/x-protobuf"})
    check(r.status == 304, "edge-r ACKs %d" % v, r)
    time.sleep(0.3)
    send(c, 2, "edge-r", 31, 2, **both(30, 10))  # built partly before the ACK
    time.sleep(INTERVAL_MS / 2000 + 0.05)
    send(c, 2, "edge-r", 31, 3, **both(50, 20))
    for n in (1, 3):
        ro = get(c, n, "/v1/rollouts/%d?window=1m" % v)
        t = ro["telemetry"]
        check(t["window_ms"] == 60000 and t["proxies"] == 1, "node%d: one ACKed proxy with "
              "telemetry" % n, ro)
        check(t["before"]["requests"] == 10 and t["before"]["error_rate"] == 0,
              "node%d: before the ACK" % n, t)
        check(t["after"]["requests"] == 20 and near(t["after"]["error_rate"], 0.5) and
              near(t["after"]["p99_ms"], 4.98, 1e-3), "node%d: after the ACK" % n, t)
    r = c.request(1, "GET", "/v1/rollouts/%d?window=20m" % v)
    check(r.status == 400 and b"window" in r.body, "rollout window validated", r)


def tls_identity(c):
    if not tls_on():
        return
    r = post_report(c, 1, report("edge-a", 1, 1), ctx=node_client_context("edge-x"))
    check(r.status == 403, "another node's certificate", r)
    r = post_report(c, 1, report("edge-a", 1, 1), ctx=c.client_ssl)
    check(r.status == 401, "no client certificate", r)


def test_telemetry():
    args = ["--report-interval-ms", str(INTERVAL_MS), "--telemetry-retention-ms",
            str(RETENTION_MS)]
    with Cluster(3, extra_args=args, name="telemetry") as c:
        setup_mesh(c)
        subscribe_header(c)
        tls_identity(c)
        before = failover_sums(c)
        refusals_change_nothing(c, before)
        too_often(c)
        unknown_names(c)
        windows(c)
        restart_instance(c)
        health(c)
        if os.environ.get("RP_TL_METRICS", "1") == "1":
            metrics(c)
        gc(c)
        rollout(c)
        log("telemetry: ok")


def test_reporters_full():
    """--max-reporters: a new node id beyond it gets 503 and changes nothing;
    the node ids already known keep reporting."""
    with Cluster(1, extra_args=["--max-reporters", "2", "--report-interval-ms", "200"],
                 name="telemetry-full") as c:
        setup_mesh(c)
        send(c, 1, "edge-1", 1, 1, **both(1, 0))
        send(c, 1, "edge-2", 1, 1, **both(2, 0))
        r = send(c, 1, "edge-3", 1, 1, expect=503, **both(4, 0))
        check(b"max-reporters" in r.body, "503 names the flag", r)
        time.sleep(0.2)
        send(c, 1, "edge-1", 1, 2, **both(8, 0))
        cl = get(c, 1, "/v1/telemetry/clusters/c1")
        check(cl["requests"] == 10 and proxy_of(cl, "edge-3") is None, "edge-3 not kept", cl)
        text = c.request(1, "GET", "/metrics").body.decode()
        check('raftplane_telemetry_reports_total{result="full"} 1' in text, "counted as full")
        check("\nraftplane_telemetry_reporters 2\n" in text, "two reporters")


def test_bad_flags():
    import subprocess
    from rpharness import SERVER_BIN
    for flag, v in (("--report-interval-ms", "99"), ("--report-interval-ms", "600001"),
                    ("--max-reporters", "0"), ("--telemetry-retention-ms", "x")):
        p = subprocess.run([SERVER_BIN, flag, v], capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and flag in p.stderr, "%s %s refused" % (flag, v), p.stderr)


if __name__ == "__main__":
    run([test_bad_flags, test_reporters_full, test_telemetry])
