"""raftplane-proxy retries and timeouts: retry on 5xx and on connect
failure, the retry budget, 504 on a route timeout, 502 on an upstream reset."""

import http.client
import socket
import threading
import time

from proxyharness import (Env, Load, TestFailure, body_of, check, count_backends, get, log,
                          pick_ports, run)


def setup(env, extra=("--outlier-consecutive", "0")):
    px = env.proxy("edge-1", extra=list(extra))
    port = pick_ports(1)[0]
    env.listener("edge", port)
    return px, "127.0.0.1:%d" % port


def test_retry_5xx_and_connect_failure():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        px, lis = setup(env)
        a.control("status/503")
        dead = pick_ports(1)[0]
        env.put("clusters", "flaky", {"endpoints": [a.endpoint(), b.endpoint()]})
        env.put("clusters", "holes", {"endpoints": [{"address": "127.0.0.1", "port": dead},
                                                    b.endpoint()]})
        env.route("r5", "edge", "flaky", prefix="/five",
                  retries={"attempts": 2, "on": ["5xx"]})
        env.route("noretry", "edge", "flaky", prefix="/plain")
        px.wait_version(env.route("rc", "edge", "holes", prefix="/conn",
                                  retries={"attempts": 1, "on": ["connect-failure"]}))
        counts = count_backends(lis, 40, "/five")
        check(counts == {"B": 40}, "5xx retried on the other endpoint", counts)
        counts = count_backends(lis, 40, "/conn")
        check(counts == {"B": 40}, "connect failures retried", counts)
        counts = count_backends(lis, 40, "/plain")
        check(counts == {"B": 20, "HTTP 503": 20}, "no retries without a policy", counts)
        st = px.stats()
        check(st["routes"]["r5"]["retries"] >= 20 and st["routes"]["rc"]["retries"] >= 20,
              "retries counted", st["routes"]["r5"], st["routes"]["rc"])
        check(st["routes"]["rc"]["connect_failures"] >= 20, "connect failures counted")


def test_retry_budget():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        px, lis = setup(env)
        a.control("status/503")
        b.control("status/503")
        a.control("delay/20")
        b.control("delay/20")
        env.put("clusters", "down", {"endpoints": [a.endpoint(), b.endpoint()]})
        px.wait_version(env.route("r", "edge", "down", retries={"attempts": 3, "on": ["5xx"]}))
        load = Load(lis, threads=12).start()
        time.sleep(3)
        load.stop()
        st = px.stats()["routes"]["r"]
        ratio = st["upstream_requests"] / max(1, st["requests"])
        log("whole cluster failing, 3 retries allowed: %d requests, %d upstream attempts "
            "(%.2f per request), %d retries refused by the budget" % (
                st["requests"], st["upstream_requests"], ratio, st["retry_overflow"]))
        check(st["retry_overflow"] > 0, "the budget refused retries", st)
        check(ratio < 2.0, "retries do not multiply the load (4x without a budget)", ratio)
        check(set(load.results) == {503}, "answers are the upstream's 503", load.results)


def test_timeout():
    with Env() as env:
        a = env.backend("A")
        px, lis = setup(env)
        env.cluster_of("a", [a])
        px.wait_version(env.route("r", "edge", "a", timeout_ms=300))
        t0 = time.monotonic()
        r = get(lis, "/", headers={"x-backend-delay-ms": "5000"})
        took = time.monotonic() - t0
        check(r.status == 504 and r.body == b"upstream timeout\n", "504 on timeout", r.status, r.body)
        check(0.25 <= took <= 2.5, "answered at the route timeout, not after the upstream's 5 s", took)
        check(body_of(lis) == (200, "A"), "fast requests still fine")
        check(px.stats()["routes"]["r"]["timeouts"] == 1, "timeout counted")


def reset_server(stop, answer=b""):
    """A TCP server that reads a request, sends @answer and closes (a reset
    when @answer is empty, a truncated response otherwise)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)

    def loop():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            try:
                c.settimeout(1)
                c.recv(65536)
                if answer:
                    c.sendall(answer)  # then a plain close (FIN)
                else:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            c.close()
        srv.close()
    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def test_upstream_reset():
    stop = threading.Event()
    with Env() as env:
        port = reset_server(stop)
        px, lis = setup(env)
        env.put("clusters", "rst", {"endpoints": [{"address": "127.0.0.1", "port": port}]})
        px.wait_version(env.route("r", "edge", "rst"))
        for _ in range(3):
            r = get(lis, "/")
            check(r.status == 502 and r.body == b"upstream reset\n", "502 on reset", r.status, r.body)
        check(px.stats()["routes"]["r"]["resets"] >= 3, "resets counted")
        # an upstream that dies in the middle of the body: the client's
        # response is cut (it must not look complete)
        port2 = reset_server(stop, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        env.put("clusters", "cut", {"endpoints": [{"address": "127.0.0.1", "port": port2}]})
        px.wait_version(env.route("r2", "edge", "cut", prefix="/cut", priority=10))
        try:
            r = get(lis, "/cut")
            raise TestFailure("a truncated upstream answer looked complete: %r" % (r,))
        except (OSError, http.client.HTTPException) as e:
            log("truncated upstream answer: the client sees %r" % e)
        check(body_of(lis, "/") == (502, "upstream reset"), "proxy still fine")
    stop.set()


if __name__ == "__main__":
    run([test_retry_5xx_and_connect_failure, test_retry_budget, test_timeout,
         test_upstream_reset])
