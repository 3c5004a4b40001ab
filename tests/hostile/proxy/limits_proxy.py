#!/usr/bin/env python3
"""Connections per client address on raftplane-proxy: the admin server
(--admin-max-conns-per-ip, default 16) and the traffic listeners
(--max-conns-per-ip, default unlimited). A connection over the limit is
closed at accept; other addresses are not affected; closing one frees a
slot; refusals are counted in the admin /metrics. Run one case:
limits_proxy.py admin|traffic."""

import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proxy"))

from proxyharness import Env, check, log, pick_ports, run, wait_until  # noqa: E402


def conn(addr, src):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5, source_address=(src, 0))


def get_on(s, path="/healthz", host="x"):
    """One GET on the open connection @s: the status, or None when closed."""
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    data = b""
    s.settimeout(5)
    while b"\r\n\r\n" not in data:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            return None
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.decode("latin-1").lower().split("\r\n")[1:]:
        if line.startswith("content-length:"):
            n = int(line.split(":", 1)[1])
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return int(head.split(b" ")[1])


def refused_at_accept(addr, src):
    """The connection is closed at once, before we send anything."""
    try:
        s = conn(addr, src)
    except ConnectionResetError:
        return True
    s.settimeout(2)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        s.close()


def refused_count(p, listener, src="127.0.0.3"):
    s = conn(p.admin, src)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    key = ('raftplane_proxy_connections_refused_total{listener="%s",reason="per_ip"}'
           % listener)
    for line in data.decode().splitlines():
        if line.startswith(key + " "):
            return int(line.split()[-1])
    raise AssertionError("no %s in the admin metrics" % key)


def check_limit(addr, n_max, proxy, listener, path, host="x"):
    held = [conn(addr, "127.0.0.1") for _ in range(n_max)]
    for s in held:
        check(get_on(s, path, host) == 200, "%s connection within the limit served" % listener)
    before = refused_count(proxy, listener)
    t0 = time.monotonic()
    check(refused_at_accept(addr, "127.0.0.1"),
          "%s connection %d from 127.0.0.1 closed at once" % (listener, n_max + 1))
    log("%s: refused after %.0f ms" % (listener, (time.monotonic() - t0) * 1000))
    check(refused_count(proxy, listener) == before + 1, "%s refusal counted" % listener)
    other = conn(addr, "127.0.0.2")
    check(get_on(other, path, host) == 200, "%s: 127.0.0.2 still gets in" % listener)
    other.close()
    held.pop().close()

    def again():
        try:
            s = conn(addr, "127.0.0.1")
        except ConnectionResetError:
            return False
        try:
            return get_on(s, path, host) == 200
        finally:
            s.close()
    wait_until(again, 5, what="%s: a closed connection frees its slot" % listener)
    for s in held:
        s.close()


def test_admin():
    with Env(servers=1, name="limits-admin") as env:
        p = env.proxy("edge-1")  # default --admin-max-conns-per-ip 16
        wait_until(lambda: refused_count(p, "admin") == 0, 5, what="admin metrics")
        check_limit(p.admin, 16, p, "admin", "/healthz")
        check("admin connection from 127.0.0.1 refused: 16 connections open from that "
              "address (--admin-max-conns-per-ip 16)" in p.log_text(), "refusal logged")


def test_traffic():
    with Env(servers=1, name="limits-traffic") as env:
        b = env.backend("b1")
        port = pick_ports(1)[0]
        env.cluster_of("c1", [b])
        env.listener("l1", port)
        v = env.route("r1", "l1", "c1")
        p = env.proxy("edge-1", workers=2, extra=["--max-conns-per-ip", "5"])
        p.wait_version(v)
        addr = "127.0.0.1:%d" % port
        wait_until(lambda: get_on(conn(addr, "127.0.0.2"), "/") == 200, 10, what="route served")
        check_limit(addr, 5, p, "traffic", "/")


if __name__ == "__main__":
    cases = {"admin": test_admin, "traffic": test_traffic}
    picked = [cases[a] for a in sys.argv[1:]] or list(cases.values())
    sys.argv[1:] = []
    run(picked)
