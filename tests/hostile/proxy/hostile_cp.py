"""A hostile control-plane server next to a real raftplane-server cluster
(issue 16, "proxy side"): the proxy subscribes to --servers HOSTILE,GOOD (or
GOOD,HOSTILE), gets its configuration through the hostile server while it
still relays honestly, then the hostile server turns bad. Required: traffic
through the proxy (a request every ~50 ms) never fails, /config_dump names
the failure, a metric counts it, the proxy ends up on the good server (shown
in its GET /v1/proxies) and picks up a change made there.

The hostile server is raw sockets (nothing normalises the bytes). So that the
proxy starts on it whatever server it picks first, the good server is
stopped until the proxy serves (the cluster keeps its majority), then
restarted. Run one case: hostile_cp.py <case>.
"""

import json
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proxy"))

from proxyharness import (Env, Load, TestFailure, check, log, pick_ports,  # noqa: E402
                          run, wait_body, wait_until)
from pbwire import decode, f_bytes, f_uint  # noqa: E402  (tests/lib)

NODE = "edge-cp"
WAIT_MS = 2000  # the proxy's --wait-ms: a poll times out after WAIT_MS + 5 s
PB = "application/x-protobuf"


def snapshot(version, cluster_id, node=NODE, listen_port=1, cluster="c", endpoint_port=1,
             route_cluster=None):
    """A Snapshot: listener l (127.0.0.1:listen_port), route r -> route_cluster
    (default: cluster), cluster @cluster with one endpoint. Fields in an order
    that puts the clusters last, so that a cut near the end is always inside
    a nested message."""
    listener = f_bytes(1, "l") + f_uint(2, version) + f_bytes(3, "127.0.0.1") + \
        f_uint(4, listen_port)
    route = f_bytes(1, "r") + f_uint(2, version) + f_bytes(3, "l") + f_bytes(5, "/") + \
        f_bytes(8, route_cluster or cluster) + f_uint(10, 5000)
    ep = f_bytes(1, "127.0.0.1") + f_uint(2, endpoint_port) + f_uint(3, 1)
    clu = f_bytes(1, cluster) + f_uint(2, version) + f_bytes(3, "round_robin") + \
        f_uint(5, 1000) + f_bytes(6, ep)
    return (f_bytes(1, node) + f_uint(2, version) + f_uint(3, version) +
            f_bytes(7, cluster_id) + f_bytes(4, listener) + f_bytes(5, route) +
            f_bytes(6, clu))


def head(status=200, headers=(), length=None, reason="OK"):
    h = "HTTP/1.1 %d %s\r\n" % (status, reason)
    h += "".join("%s: %s\r\n" % kv for kv in headers)
    if length is not None:
        h += "Content-Length: %d\r\n" % length
    return (h + "\r\n").encode()


# ---- the hostile server ------------------------------------------------------------

class HostileCP:
    """Relays each request to @upstream (a real server) until fault() sets a
    behaviour: fn(sock, request_body) that answers (or not); it returns
    "close", "keep" (read the next request) or "hold" (keep the socket
    open, never read it again). mode "silent": stop reading before the next
    request."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.behaviour = None
        self.silent = False
        self.lock = threading.Lock()
        self.faulted_at = None  # monotonic time of the first bad answer
        self.fault_requests = []  # bodies of the requests that got a fault
        self.held = []
        self.errors = []  # failed checks in the connection threads
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def fault(self, fn=None, silent=False):
        with self.lock:
            self.behaviour, self.silent = fn, silent

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _read_request(self, s, buf):
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return None, b""
            buf += d
        h, rest = buf.split(b"\r\n\r\n", 1)
        n = 0
        for ln in h.split(b"\r\n")[1:]:
            k, _, v = ln.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v.strip())
        while len(rest) < n:
            d = s.recv(65536)
            if not d:
                return None, b""
            rest += d
        return h + b"\r\n\r\n" + rest[:n], rest[n:]

    def _relay(self, s, req):
        host, port = self.upstream.rsplit(":", 1)
        u = socket.create_connection((host, int(port)), timeout=WAIT_MS / 1000 + 10)
        u.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = u.recv(65536)
            check(d, "relay: upstream closed")
            buf += d
        h, rest = buf.split(b"\r\n\r\n", 1)
        n = 0
        for ln in h.split(b"\r\n")[1:]:
            k, _, v = ln.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v.strip())
        while len(rest) < n:
            d = u.recv(65536)
            check(d, "relay: upstream closed in the body")
            rest += d
        u.close()
        s.sendall(h + b"\r\n\r\n" + rest)

    def _serve(self, s):
        buf = b""
        try:
            while not self.stopped:
                with self.lock:
                    silent = self.silent
                if silent:  # accept, never read, never answer
                    self._note(b"")
                    self.held.append(s)
                    return
                req, buf = self._read_request(s, buf)
                if req is None:
                    break
                with self.lock:
                    fn = self.behaviour
                # only the subscription is attacked: a telemetry report
                # (POST /v1/report, its own connection) that got the fault
                # first would use it up before the proxy's next poll
                if fn is None or not req.startswith(b"POST /v1/subscribe "):
                    self._relay(s, req)
                    continue
                self._note(req.split(b"\r\n\r\n", 1)[1])
                what = fn(s, req.split(b"\r\n\r\n", 1)[1])
                if what == "hold":
                    self.held.append(s)
                    return
                if what == "close":
                    break
        except OSError:
            pass
        except TestFailure as e:
            self.errors.append(str(e))
        s.close()

    def _note(self, body):
        with self.lock:
            if self.faulted_at is None:
                self.faulted_at = time.monotonic()
            self.fault_requests.append(body)

    def close(self):
        self.stopped = True
        self.sock.close()
        for s in self.held:
            try:
                s.close()
            except OSError:
                pass


# ---- the scenario ------------------------------------------------------------------

def metric(p, name, label):
    r = p.get("/metrics")
    check(r.status == 200, "/metrics: %s" % r.status)
    for ln in r.body.decode().splitlines():
        if ln.startswith('%s{reason="%s"}' % (name, label)) or \
                ln.startswith('%s{result="%s"}' % (name, label)):
            return int(ln.split()[-1])
    return None


def scenario(case, fn=None, silent=False, reason=None, text=None, order="hg", extra=(),
             nack=False):
    """Start everything, turn the hostile server bad with @fn, check the
    outcome. Returns the fail-over time in seconds."""
    with Env(servers=3, name="hostile-cp-" + case) as env:
        b1, b2 = env.backend("b1"), env.backend("b2")
        lport = pick_ports(1)[0]
        env.listener("l", lport, nodes=[NODE])
        env.cluster_of("c", [b1])
        env.route("r", "l", "c")
        cl = env.cluster
        good = cl.nodes[2]
        hostile = HostileCP(cl.nodes[1].http)
        try:
            cl.stop(2)  # so the proxy starts on the hostile server
            servers = "%s,%s" % ((hostile.addr, good.http) if order == "hg"
                                 else (good.http, hostile.addr))
            p = env.proxy(NODE, extra=["--servers", servers, "--wait-ms", str(WAIT_MS)] +
                          list(extra))
            addr = "127.0.0.1:%d" % lport
            wait_body(addr, "b1")
            cp = p.config()["control_plane"]
            check(cp["server"] == hostile.addr and cp["connected"],
                  "the proxy is not on the hostile server: %r" % cp)
            held = p.config()["version"]
            cl.restart(2)
            status = json.loads(cl.request(good, "GET", "/v1/status").body)
            cid = status.get("cluster_id") or ""
            load = Load(addr, threads=1, pause=0.05).start()
            time.sleep(0.3)
            hostile.fault(fn(held, cid) if fn else None, silent=silent)

            def on_good():
                c = p.config()["control_plane"]
                return c["server"] == good.http and c["connected"]
            wait_until(lambda: hostile.faulted_at is not None, WAIT_MS / 1000 + 5,
                       what="the proxy to poll the hostile server")
            wait_until(on_good, 30, interval=0.02, what="the proxy on the good server")
            took = time.monotonic() - hostile.faulted_at
            check(not hostile.errors, "hostile server: %s" % hostile.errors)
            dump = p.config()
            log("%s: moved to the good server %.3f s after the first bad answer" % (case, took))
            check(dump["version"] == held, "version changed: %r" % dump["version"])
            if nack:
                check(dump.get("last_nack") and text in dump["last_nack"]["error"],
                      "last_nack: %r" % dump.get("last_nack"))
                check((metric(p, "raftplane_proxy_config_updates_total", "rejected") or 0) >= 1,
                      "rejected updates not counted")
                got = [decode(b) for b in hostile.fault_requests if b]
                nacks = [m for m in got if 3 in m and m[3][0] > held]
                check(nacks, "no NACK reached the hostile server: %r" % got)
                check(text.encode() in nacks[0][4][0], "NACK text: %r" % nacks[0][4])
            else:
                last = dump["control_plane"]["failures"]["last"]
                check(last and last["reason"] == reason and text in last["error"] and
                      hostile.addr in last["error"], "last failure: %r" % last)
                check(dump["control_plane"]["failures"]["by_reason"][reason] >= 1,
                      "by_reason: %r" % dump["control_plane"]["failures"])
                check((metric(p, "raftplane_proxy_control_plane_failures_total", reason) or 0)
                      >= 1, "metric for %s not counted" % reason)
            r = cl.request(good, "GET", "/v1/proxies?scope=local")
            ent = [e for e in json.loads(r.body)["proxies"] if e["node_id"] == NODE]
            check(ent and ent[0]["connected"], "not on the good server: %r" % ent)
            env.cluster_of("c", [b2])
            wait_body(addr, "b2")
            load.stop()
            check(load.total() >= 10, "too little traffic: %d" % load.total())
            check(not load.failures(), "requests failed: %r %r" % (load.failures(),
                                                                     load.errors[:5]))
            return took
        finally:
            hostile.close()


def send(data, then="close"):
    def fn(s, body):
        s.sendall(data)
        return then
    return fn


def case_garbage():
    rnd = os.urandom(300)
    scenario("garbage-body", lambda v, cid: send(head(200, [("Content-Type", PB)], len(rnd)) +
                                                 rnd, "keep"),
             reason="bad_snapshot", text="malformed snapshot")
    junk = bytes(b for b in os.urandom(600) if b not in (10, 13))[:400] + b"\r\n\r\n"
    scenario("garbage-status", lambda v, cid: send(junk), reason="bad_http",
             text="not an HTTP/1.x status line", order="gh")
    endless = bytes(b for b in os.urandom(100000) if b not in (10, 13))[:70000]
    scenario("garbage-endless-head", lambda v, cid: send(endless, "hold"), reason="bad_http",
             text="no HTTP response head within 65536 bytes")
    bad = head(200, [("Content-Type", PB), ("Transfer-Encoding", "chunked")]) + \
        b"5\r\nhello\r\nzz\r\n\r\n"
    scenario("garbage-chunked", lambda v, cid: send(bad, "hold"), reason="bad_http",
             text="malformed chunked encoding")


def case_truncated():
    def full_length(v, cid):
        snap = snapshot(v + 1000, cid, listen_port=pick_ports(1)[0])
        return send(head(200, [("Content-Type", PB), ("x-raftplane-version", v + 1000)],
                         len(snap)) + snap[:len(snap) - 5])
    scenario("truncated-close", full_length, reason="connection_lost",
             text="connection closed after")

    def short_length(v, cid):
        snap = snapshot(v + 1000, cid, listen_port=pick_ports(1)[0])[:-5]
        return send(head(200, [("Content-Type", PB)], len(snap)) + snap, "keep")
    scenario("truncated-length", short_length, reason="bad_snapshot",
             text="do not decode", order="gh")


def probe_silent():
    """A cold start (no config yet) with the good server down and the
    hostile one silent: the first polls are probes (wait 0), whose timeout
    is 5 s, not wait_ms + 5 s (with --wait-ms 20000: 25 s before the fix)."""
    with Env(servers=3, name="hostile-cp-probe") as env:
        b1 = env.backend("b1")
        lport = pick_ports(1)[0]
        env.listener("l", lport, nodes=[NODE])
        env.cluster_of("c", [b1])
        env.route("r", "l", "c")
        cl = env.cluster
        good = cl.nodes[2]
        hostile = HostileCP(cl.nodes[1].http)
        try:
            hostile.fault(None, silent=True)
            cl.stop(2)
            p = env.proxy(NODE, ready=False, extra=["--servers", "%s,%s" % (
                hostile.addr, good.http), "--wait-ms", "20000"])
            wait_until(lambda: hostile.faulted_at is not None, 10,
                       what="the proxy to try the hostile server")
            cl.restart(2)
            p.wait_ready(timeout=30)
            took = time.monotonic() - hostile.faulted_at
            log("probe-silent: ready on the good server %.3f s after the hostile server "
                "accepted" % took)
            check(took < 15, "a probe to a silent server took %.1f s" % took)
            last = p.config()["control_plane"]["failures"]["last"]
            check(last and "no answer within 5000 ms" in last["error"], "last: %r" % last)
            wait_body("127.0.0.1:%d" % lport, "b1")
            return took
        finally:
            hostile.close()


def case_silent():
    probe_silent()
    t = scenario("silent", silent=True, reason="timeout", text="no answer within 7000 ms")
    check(6.5 < t < 9.5, "fail-over took %.1f s, expected about wait_ms + 5 s" % t)
    t = scenario("stall-body", lambda v, cid: send(head(200, [("Content-Type", PB)], 1000) +
                                                   b"\x0a\x07edge", "hold"),
                 reason="timeout", text="stalled in its body", order="gh")
    check(6.5 < t < 9.5, "fail-over took %.1f s" % t)


def case_too_large():
    t = scenario("large-length",
                 lambda v, cid: send(head(200, [("Content-Type", PB)], 100000000), "hold"),
                 reason="too_large", text="Content-Length 100000000 over the limit of 67108864")
    check(t < 2, "refusing a Content-Length took %.1f s" % t)

    def chunked(v, cid):
        def fn(s, body):
            s.sendall(head(200, [("Content-Type", PB), ("Transfer-Encoding", "chunked")]))
            chunk = b"%x\r\n" % 65536 + os.urandom(65536) + b"\r\n"
            sent = 0
            try:
                while sent < 64 * 1024 * 1024:  # the proxy must cut it long before
                    s.sendall(chunk)
                    sent += 65536
            except OSError:
                pass
            log("chunked flood: %d bytes sent before the proxy closed" % sent)
            # what the proxy read is at most what was sent minus the
            # socket buffers (a few MiB on loopback): far below the flood
            check(sent < 16 * 1024 * 1024, "the proxy read %d bytes" % sent)
            return "close"
        return fn
    scenario("large-chunked", chunked, reason="too_large",
             text="chunked body over the limit of 1048576", order="gh",
             extra=["--max-snapshot-bytes", "1048576"])


def nack_then_close(make):
    def outer(v, cid):
        state = {"n": 0}

        def fn(s, body):
            state["n"] += 1
            if state["n"] > 1:
                return "close"  # the NACK arrived (recorded): leave
            snap = make(v, cid)
            s.sendall(head(200, [("Content-Type", PB)], len(snap)) + snap)
            return "keep"
        return fn
    return outer


def case_semantic():
    scenario("unknown-cluster", nack_then_close(
        lambda v, cid: snapshot(v + 1, cid, listen_port=pick_ports(1)[0],
                                route_cluster="missing")),
        nack=True, text='unknown cluster "missing"')
    scenario("port-zero", nack_then_close(
        lambda v, cid: snapshot(v + 1, cid, listen_port=pick_ports(1)[0], endpoint_port=0)),
        nack=True, text="is not an IP address and port", order="gh")

    def other_node(v, cid):
        snap = snapshot(v + 1, cid, node="someone-else")
        return send(head(200, [("Content-Type", PB)], len(snap)) + snap, "keep")
    scenario("other-node", other_node, reason="bad_snapshot", text="for another node id")


def case_stale():
    def lower(v, cid):
        snap = snapshot(max(v - 1, 1), cid, listen_port=pick_ports(1)[0])
        return send(head(200, [("Content-Type", PB)], len(snap)) + snap, "keep")
    scenario("stale", lower, reason="stale_version", text="is not above the version")


def case_subscriber():
    """raftplane-subscriber shares proxy/subscription.c: a snapshot over its
    --max-snapshot-bytes is refused at the head, named in its log, and it
    goes on to the good server and gets the next version there."""
    import subprocess
    with Env(servers=3, name="hostile-cp-subscriber") as env:
        b1, b2 = env.backend("b1"), env.backend("b2")
        env.listener("l", pick_ports(1)[0], nodes=[NODE])
        env.cluster_of("c", [b1])
        v0 = env.route("r", "l", "c")
        cl = env.cluster
        good = cl.nodes[2]
        hostile = HostileCP(cl.nodes[1].http)
        hostile.fault(send(head(200, [("Content-Type", PB)], 100000), "hold"))
        binary = os.environ.get("RP_SUBSCRIBER_BIN") or os.path.join(
            HERE, "..", "..", "..", "build", "proxy", "raftplane-subscriber")
        out = os.path.join(env.dir, "subscriber.log")
        proc = None
        try:
            cl.stop(2)
            with open(out, "wb") as f:
                proc = subprocess.Popen(
                    [binary, "--servers", "%s,%s" % (hostile.addr, good.http), "--node-id",
                     NODE, "--wait-ms", str(WAIT_MS), "--max-snapshot-bytes", "65536",
                     "--until-version", str(v0 + 1), "--timeout", "60"],
                    stdout=f, stderr=subprocess.STDOUT, env=env.proc_env)
            wait_until(lambda: hostile.faulted_at is not None, 10,
                       what="the subscriber to try the hostile server")
            cl.restart(2)
            env.cluster_of("c", [b2])
            rc = proc.wait(timeout=60)
            text = open(out, "rb").read().decode("utf-8", "replace")
            check(rc == 0, "subscriber exited %s" % rc, text[-2000:])
            check("Content-Length 100000 over the limit of 65536 bytes" in text,
                  "the subscriber did not say why it left the hostile server", text[-2000:])
            log("subscriber: reached version %d via the good server" % (v0 + 1))
        finally:
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
            hostile.close()


CASES = {"subscriber": case_subscriber, "garbage": case_garbage, "truncated": case_truncated, "silent": case_silent,
         "too_large": case_too_large, "semantic": case_semantic, "stale": case_stale}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in CASES:
        sys.exit("usage: hostile_cp.py %s" % "|".join(sorted(CASES)))
    sys.argv = sys.argv[:1]
    run([CASES[name]], title="hostile_cp_" + name)
