#!/usr/bin/env python3
"""Abandoned long polls (issue 9 items 4 and 5): parked watch, subscribe and
rollout waits whose clients close must release everything within ~2 s (file
descriptors, subscriber slots, `connected` flags, timers, peer fan-outs);
parked watchers must not slow writes down; parked sockets get TCP
keepalive; a NACK parks like any other poll and the subscriber client
backs off instead of polling in a tight loop."""

import http.server
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from poll_client import (AbandonedPolls, fd_count, pb_bytes, pb_uint, rollout_request,  # noqa: E402
                         sub_request, subscribe_request, watch_request)
from subharness import Subscriber, listener_obj, put, stop_all  # noqa: E402
import rpharness  # noqa: E402
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402

HDR = {"Content-Type": "application/x-protobuf"}


def settle_fds(node, baseline, slack=4, timeout=2.5):
    """Wait until the node's descriptor count is back near @baseline."""
    pid = node.proc.pid
    wait_until(lambda: fd_count(pid) <= baseline + slack, timeout,
               what="%r descriptors back to %d (now %d)" % (node, baseline, fd_count(pid)))


def write_p50(c, node, n=20):
    times = []
    for i in range(n):
        t0 = time.monotonic()
        r = c.request(node, "PUT", "/v1/kv/lat-%d" % i, body="x")
        check(r.status == 200, "write", r)
        times.append(time.monotonic() - t0)
    return statistics.median(times) * 1000


def test_abandoned_watches_release_fds_and_keep_writes_fast():
    with Cluster(1) as c:
        n = c.node(1)
        # history: ~5,000 change rows a watch with after=1 re-reads each time
        for t in range(40):
            ops = [{"op": "put", "kind": "kv", "name": "h-%d-%d" % (t, i), "value": "v"}
                   for i in range(128)]
            r = c.request(n, "POST", "/v1/txn", body={"ops": ops})
            check(r.status == 200, "history txn", r)
        base_fds = fd_count(n.proc.pid)
        base_p50 = write_p50(c, n)
        polls = AbandonedPolls(n.http, 200, watch_request(n.http, after=1, kinds="members"))
        wait_until(lambda: fd_count(n.proc.pid) >= base_fds + 200, 10, what="200 watches open")
        parked_p50 = write_p50(c, n)
        log("write p50: %.1f ms without watches, %.1f ms with 200 parked (history)" % (
            base_p50, parked_p50))
        check(polls.answered() == 0, "the watches stay parked (no matching change)")
        check(parked_p50 < 3 * base_p50 + 10, "parked watchers do not slow writes",
              base_p50, parked_p50)
        t0 = time.monotonic()
        polls.close()
        settle_fds(n, base_fds)
        log("descriptors released %.0f ms after the clients closed" % (
            (time.monotonic() - t0) * 1000))
        # the server still serves watches normally
        r = c.request(n, "GET", "/v1/watch?after=1&kinds=kv&wait=1s")
        check(r.status == 200 and r.json()["changes"], "watch still works", r)


def test_parked_subscribers_cost_kv_writes_nothing():
    """500 parked proxies and a mesh of 100 listeners/routes: a kv write
    (no mesh change) must not re-evaluate every parked poll."""
    from subharness import cluster_obj, route_obj
    # one process plays 500 proxies from one address: no per-address limit
    with Cluster(1, extra_args=["--max-conns-per-ip", "0"]) as c:
        n = c.node(1)
        put(c, n, "/v1/clusters/a", cluster_obj(9001))
        for i in range(100):
            put(c, n, "/v1/listeners/l%d" % i, listener_obj(10000 + i, ["*"]))
            put(c, n, "/v1/routes/r%d" % i, route_obj("l%d" % i, "a"))
        base_p50 = write_p50(c, n, 30)
        sub = Subscriber([n], prefix="p", count=500, extra=["--quiet", "--wait-ms", "60000"])
        wait_until(lambda: sum(p["connected"] for p in local_fleet(c, n)) >= 500, 60,
                   what="500 parked subscribers")
        parked_p50 = write_p50(c, n, 30)
        log("kv write p50: %.1f ms idle, %.1f ms with 500 parked subscribers" % (
            base_p50, parked_p50))
        check(parked_p50 < 2 * base_p50 + 4, "parked subscribers do not slow kv writes",
              base_p50, parked_p50)
        sub.stop()


def local_fleet(c, node):
    return c.request(node, "GET", "/v1/proxies?scope=local").json()["proxies"]


def test_abandoned_subscriptions_free_slots_and_connected():
    with Cluster(1, extra_args=["--max-subscribers", "20"]) as c:
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        base_fds = fd_count(n.proc.pid)
        # each abandoned proxy made a valid first exchange (ACK of v)
        polls = []
        for i in range(20):
            polls.append(AbandonedPolls(n.http, 1, subscribe_request(n.http, "gone-%d" % i, v)))
        wait_until(lambda: sum(p["connected"] for p in local_fleet(c, n)) == 20, 10,
                   what="20 parked subscriptions")
        r = c.request(n, "POST", "/v1/subscribe", body=sub_request("extra", v, 5000),
                      headers=HDR)
        check(r.status == 503, "the 21st parked poll is refused (limit 20)", r)
        t0 = time.monotonic()
        for p in polls:
            p.close()
        wait_until(lambda: sum(p["connected"] for p in local_fleet(c, n)) == 0, 2.5,
                   what="closed subscriptions to show connected:false")
        settle_fds(n, base_fds)
        log("subscriptions released %.0f ms after the clients closed" % (
            (time.monotonic() - t0) * 1000))
        # every slot is free again: 20 new polls park (304 after their wait)
        t0 = time.monotonic()
        res = []
        ths = [threading.Thread(target=lambda i=i: res.append(c.request(
            n, "POST", "/v1/subscribe", body=sub_request("new-%d" % i, v, 1500), headers=HDR,
            timeout=10).status)) for i in range(20)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        check(res == [304] * 20 and time.monotonic() - t0 >= 1.4,
              "20 new polls parked until their wait ended", res)


def proxies_requests(c, node):
    """route=proxies requests answered by @node (peer fan-outs included)."""
    total = 0
    for ln in c.request(node, "GET", "/metrics").body.decode().splitlines():
        if ln.startswith('raftplane_http_requests_total{route="proxies"'):
            total += int(float(ln.split()[-1]))
    return total


def test_abandoned_rollout_waits_bounded_fanout():
    with Cluster(3) as c:
        servers = list(c.nodes.values())
        put(c, c.node(1), "/v1/listeners/all", listener_obj(10000, ["*"]))
        sub = Subscriber(servers, node_id="slow")
        wait_until(lambda: sub.latest() is not None, 10, what="first snapshot")
        sub.signal(signal.SIGSTOP)  # never ACKs what comes next: the rollout stays pending
        v = put(c, c.node(1), "/v1/listeners/all2", listener_obj(10001, ["*"]))
        n1 = c.node(1)
        base_fds = fd_count(n1.proc.pid)
        peers = [c.node(2), c.node(3)]
        polls = AbandonedPolls(n1.http, 20, rollout_request(n1.http, v))
        time.sleep(0.5)
        before = [proxies_requests(c, p) for p in peers]
        t0 = time.monotonic()
        time.sleep(2)
        after = [proxies_requests(c, p) for p in peers]
        dt = time.monotonic() - t0
        per_peer = [(a - b) / dt for a, b in zip(after, before)]
        log("20 parked rollout waits: %s fan-out requests/s per peer" % (
            ["%.1f" % x for x in per_peer]))
        check(all(x <= 10 for x in per_peer), "fan-out shared by the waiters (<= 10/s per peer)",
              per_peer)
        check(polls.answered() == 0, "the waits are still parked")
        polls.close()
        settle_fds(n1, base_fds)
        time.sleep(0.5)
        before = [proxies_requests(c, p) for p in peers]
        time.sleep(1.5)
        after = [proxies_requests(c, p) for p in peers]
        # the 2 metrics requests themselves are on another route
        check(after == before, "no fan-out once the waiters left", before, after)
        sub.signal(signal.SIGCONT)
        stop_all()


def server_sockets(port):
    """(remote port, timer kind) of the server side of connections on @port."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            lport = int(f[1].split(":")[1], 16)
            rport = int(f[2].split(":")[1], 16)
            if lport == port and f[3] == "01":  # ESTABLISHED
                out.append((rport, int(f[5].split(":")[0], 16)))
    return out


def test_parked_sockets_get_tcp_keepalive():
    """A client that vanishes without a FIN is found by keepalive probes: the
    server side of every parked connection runs the keepalive timer (kind 2
    in /proc/net/tcp)."""
    with Cluster(1) as c:
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        w = AbandonedPolls(n.http, 1, watch_request(n.http, after=v, kinds="kv"))
        s = AbandonedPolls(n.http, 1, subscribe_request(n.http, "ka", v))
        ports = set(w.local_ports() + s.local_ports())
        def timers():
            return {rp: t for rp, t in server_sockets(n.http_port) if rp in ports}
        wait_until(lambda: len(timers()) == 2 and all(t == 2 for t in timers().values()), 5,
                   what="keepalive timers on the parked sockets (%s)" % timers())
        w.close()
        s.close()


def test_nack_without_version_parks():
    with Cluster(1) as c:
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        c.wait_applied(n, v)
        t0 = time.monotonic()
        r = c.request(n, "POST", "/v1/subscribe",
                      body=sub_request("nacker", None, 1500, nack=(v, "refused")), headers=HDR)
        dt = time.monotonic() - t0
        check(r.status == 304 and dt >= 1.4, "a NACK without a version parks for its wait",
              r.status, dt)


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


def fake_control_plane(mode):
    """A server that answers every subscribe at once: mode 'snapshot' sends
    version 1 of the node each time, mode '304' answers Not Modified."""
    count = [0]
    snap = pb_bytes(1, "fake") + pb_uint(2, 1) + pb_uint(3, 1)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            count[0] += 1
            if mode == "304":
                self.send_response(304)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(snap)))
            self.end_headers()
            self.wfile.write(snap)

    srv = FakeServer(("127.0.0.1", 0), H)
    if rpharness.tls_on():  # a server certificate of the test CA, like a real server
        pki = rpharness.shared_pki()
        cert = pki.server(1)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, count


def test_subscriber_backs_off_after_nack_and_early_304():
    for mode, extra in (("snapshot", ["--nack-all"]), ("304", [])):
        srv, count = fake_control_plane(mode)
        addr = "127.0.0.1:%d" % srv.server_address[1]
        from subharness import SUB_BIN
        tls = []
        if rpharness.tls_on():
            cert = rpharness.node_cert("fake")
            tls = ["--tls-cert", cert.cert, "--tls-key", cert.key, "--tls-ca", cert.ca]
        p = subprocess.Popen([SUB_BIN, "--servers", addr, "--node-id", "fake", "--quiet",
                              "--wait-ms", "2000", "--duration", "3"] + tls + extra,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            p.wait(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        srv.shutdown()
        srv.server_close()
        log("mode %s: %d polls in 3 s" % (mode, count[0]))
        check(count[0] <= 30, "the subscriber backs off (mode %s): %d polls in 3 s" % (
            mode, count[0]))


if __name__ == "__main__":
    run([test_abandoned_watches_release_fds_and_keep_writes_fast,
         test_parked_subscribers_cost_kv_writes_nothing,
         test_abandoned_subscriptions_free_slots_and_connected,
         test_abandoned_rollout_waits_bounded_fanout,
         test_parked_sockets_get_tcp_keepalive,
         test_nack_without_version_parks,
         test_subscriber_backs_off_after_nack_and_early_304])
