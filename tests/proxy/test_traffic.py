"""raftplane-proxy: traffic to real backends, matching, rewriting, errors,
admin endpoints and malformed client requests."""

import socket
import time

from proxyharness import (Env, Load, body_of, check, count_backends, get, http_request, log,
                          pick_ports, run, wait_body, wait_until)


def test_routing_and_admin():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        px = env.proxy("edge-1")
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.cluster_of("a", [a])
        env.cluster_of("b", [b])
        env.cluster_of("empty", [])
        env.listener("edge", port)
        env.route("api", "edge", "a", prefix="/api", priority=10, prefix_rewrite="/v2/")
        env.route("exact", "edge", "b", match={"path": "/api/special"}, priority=20)
        env.route("canary", "edge", "b", prefix="/api", priority=15,
                  headers=[{"name": "x-env", "exact": "canary"}])
        env.route("nothing", "edge", "empty", prefix="/empty")
        v = env.route("post", "edge", "b", prefix="/post")
        px.wait_version(v)

        st, body = body_of(lis, "/api/users?q=1")
        check((st, body) == (200, "A"), "prefix route to A", st, body)
        r = get(lis, "/api/users?q=1")
        check(r.headers.get("x-seen-path") == "/v2/users?q=1",
              "prefix_rewrite /api -> /v2/ keeps the rest and the query", r.headers)
        check(r.headers.get("x-seen-xff") == "127.0.0.1", "x-forwarded-for added", r.headers)
        check(body_of(lis, "/api/special") == (200, "B"), "exact path with higher priority wins")
        check(body_of(lis, "/api/specialx") == (200, "A"), "exact path does not match a longer path")
        check(body_of(lis, "/api/x", {"x-env": "canary"}) == (200, "B"), "header match")
        check(body_of(lis, "/api/x", {"x-env": "prod"}) == (200, "A"), "header mismatch")
        r = get(lis, "/nope")
        check(r.status == 404 and r.body == b"no route\n", "404 with a short body", r.status, r.body)
        r = get(lis, "/empty")
        check(r.status == 503 and b"no healthy upstream" in r.body, "503 for an empty cluster",
              r.status, r.body)

        # request bodies are forwarded, large responses stream through
        r = http_request(lis, "POST", "/post", body=b"x" * 300000)
        check(r.status == 200 and r.body == b"B\n", "POST with a body", r.status)
        r = get(lis, "/api/../post")  # normalised before matching
        check(r.status == 200 and r.body == b"B\n", "normalised path", r.status, r.body)
        env.route("big", "edge", "a", prefix="/_big")
        px.wait_version(env.route("big", "edge", "a", prefix="/_big"))
        r = get(lis, "/_big/5000000", timeout=30)
        check(r.status == 200 and len(r.body) == 5000000, "5 MB response streamed",
              r.status, len(r.body))

        # admin
        r = px.get("/ready")
        check(r.status == 200 and r.json()["ready"] is True, "/ready", r.body)
        cfg = px.config()
        for k in ("node_id", "version", "server", "applied_at", "listeners", "routes", "clusters"):
            check(k in cfg, "config_dump has %s" % k, cfg)
        check(cfg["node_id"] == "edge-1" and cfg["version"] >= v, "config_dump version", cfg)
        check([l["name"] for l in cfg["listeners"]] == ["edge"], "listeners", cfg["listeners"])
        check(cfg["listeners"][0]["routes"][:3] == ["exact", "canary", "api"],
              "routes in priority order", cfg["listeners"][0])
        st = px.stats()
        check(st["routes"]["api"]["requests"] >= 4 and st["routes"]["api"]["responses"]["2xx"] >= 4,
              "route stats", st["routes"]["api"])
        check(st["routes"]["nothing"]["responses"]["5xx"] == 1, "503 counted", st["routes"]["nothing"])
        check(st["downstream"]["no_route"] >= 1, "no_route counted", st["downstream"])
        check(st["clusters"]["a"]["upstream_latency"]["count"] >= 4, "latency histogram",
              st["clusters"]["a"])
        check(st["updates"]["applied"] >= 2 and st["control_plane_connected"] is True, "updates", st)
        # keep-alive: 100 more requests reuse the pooled upstream connections
        before = st["clusters"]["a"]["connections_opened"]
        counts = count_backends(lis, 100, "/api/x")
        check(counts == {"A": 100}, "100 requests", counts)
        opened = px.stats()["clusters"]["a"]["connections_opened"] - before
        log("100 requests through the proxy opened %d new upstream connections" % opened)
        check(opened <= 2, "upstream connections are reused", opened)
        m = px.get("/metrics").body.decode()
        for needle in ('raftplane_proxy_route_requests_total{route="api"}',
                       'raftplane_proxy_cluster_upstream_latency_seconds_bucket{cluster="a",le="+Inf"}',
                       'raftplane_proxy_cluster_active_connections{cluster="a"}',
                       "raftplane_proxy_snapshot_version %d" % cfg["version"],
                       'raftplane_proxy_config_updates_total{result="rejected"} 0',
                       "raftplane_proxy_control_plane_connected 1"):
            check(needle in m, "metrics has %s" % needle)
        check(get(px.admin, "/nothing").status == 404, "admin 404")


def _raw(addr, data, read=True):
    host, port = addr.split(":")
    s = socket.create_connection((host, int(port)), timeout=1.5)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
        except OSError:
            pass
        return out
    finally:
        s.close()


def test_malformed_requests():
    with Env() as env:
        a = env.backend("A")
        px = env.proxy("edge-1")
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.cluster_of("a", [a])
        env.listener("edge", port)
        px.wait_version(env.route("all", "edge", "a"))
        wait_body(lis, "A")
        load = Load(lis, threads=2).start()
        bad = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
               b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
               b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
               b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 2000 + b"\r\n",
               b"\x00\x01\x02\xff" * 100, b"GET / HTTP/9.9\r\n\r\n",
               b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
               b"GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n",
               b"GET / HTTP/1.1\r\nHost: x\r\nx-backend-status: abc\r\n\r\n"]
        for data in bad:
            try:
                _raw(lis, data, read=not data.startswith(b"POST"))
            except OSError:
                pass
        # a client that goes away in the middle of a slow upstream answer
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nx-backend-delay-ms: 200\r\n\r\n")
            s.close()
        time.sleep(0.5)
        load.stop()
        check(px.alive(), "proxy survived malformed requests", px.log_text()[-2000:])
        check(body_of(lis) == (200, "A"), "still serving")
        check(load.failures() == {}, "no failed requests from well-formed clients", load.failures(),
              load.errors)
        log("well-formed requests during the abuse: %d" % load.total())
        # the abandoned slow requests end when their upstream answers (200 ms)
        wait_until(lambda: px.stats()["routes"]["all"]["active_requests"] == 0, 10,
                   what="no request left active")


if __name__ == "__main__":
    run([test_routing_and_admin, test_malformed_requests])
