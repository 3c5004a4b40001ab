#!/usr/bin/env python3
"""Limits against abusive API clients (raw sockets against a real server):
connections per client address and in total (closed at accept, before any
read or TLS handshake), request heads over --max-header-bytes or
--max-headers (431 header_too_large, JSON, the connection closed; a head is
cut while it is read, not after h2o buffered 417 KB of it), and parked
subscription polls per node id (429 rate_limited with Retry-After).

The server listens on 127.0.0.9 so that 127.0.0.1 (where the clients come
from) is not the address of a member: members' addresses may exceed the
per-address limit (a follower forwards one request per connection).
127.0.0.2 and 127.0.0.3 are other loopback sources. Runs in plain text, or
with TLS when RP_IT_TLS=1 (the connections are then TLS too)."""

import os
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from poll_client import fd_count  # noqa: E402  (it puts the harness folders on the path)
import rpharness  # noqa: E402
from rpharness import (Cluster, Response, check, log, parse_response, run,  # noqa: E402
                       ssl_for, tls_client_context, wait_until)
from subharness import listener_obj, put, sub_request  # noqa: E402

HOST = "127.0.0.9"
PB = "application/x-protobuf"


class HostNode(rpharness.Node):
    """A node whose raft and HTTP addresses are on HOST."""

    @property
    def raft(self):
        return "%s:%d" % (HOST, self.raft_port)

    @property
    def http(self):
        return "%s:%d" % (HOST, self.http_port)


def cluster_on_host(args):
    """A 1-node cluster on HOST whose own start-up connections (the
    harness's, from 127.0.0.1) are all closed."""
    orig = rpharness.Node
    rpharness.Node = HostNode
    try:
        c = Cluster(1, extra_args=args)
    finally:
        rpharness.Node = orig
    try:
        wait_until(lambda: try_metric(c.node(1), "raftplane_connections_open") in (0, 1), 5,
                   what="the harness's connections closed")
    except BaseException:
        c.close(check_logs=False)
        raise
    return c


# ---- raw clients ----------------------------------------------------------------

class Conn:
    """A raw connection to @addr from source address @src: TLS when the
    harness talks TLS to @addr, or with @ctx (None: plain TCP whatever the
    server speaks). Reads responses framed by Content-Length."""

    def __init__(self, addr, src=None, ctx="auto", timeout=5.0):
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=timeout,
                                     source_address=(src, 0) if src else None)
        ctx = ssl_for(addr) if ctx == "auto" else ctx
        if ctx is not None:
            try:
                s = ctx.wrap_socket(s)
            except BaseException:
                s.close()
                raise
        self.sock = s
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def response(self, timeout=5.0):
        """The next response, or None when the server closed first."""
        self.sock.settimeout(timeout)
        while True:
            r = parse_response(self.buf)
            if r is not None:
                status, headers, body = r
                head_len = self.buf.index(b"\r\n\r\n") + 4
                self.buf = self.buf[head_len + len(body):]
                return Response(status, headers, body)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def ask(self, req=None):
        self.send(req or status_request())
        return self.response()

    def closed(self, within=2.0):
        """True when the server closes (EOF or reset) within @within s with
        nothing more to read."""
        if self.buf:
            return False
        self.sock.settimeout(within)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def quiet(self, within=0.5):
        """True when nothing arrives within @within s (a parked poll)."""
        self.sock.settimeout(within)
        try:
            self.buf += self.sock.recv(1)
            return False
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(5.0)

    def push(self, total, chunk=16384):
        """Send up to @total bytes without blocking; the bytes sent."""
        sent = 0
        self.sock.setblocking(False)
        try:
            while sent < total:
                sent += self.sock.send(b"b" * min(chunk, total - sent))
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError, OSError):
            pass
        finally:
            self.sock.settimeout(5.0)
        return sent

    def close(self):
        self.sock.close()


def refused_at_accept(addr, src):
    """True when a plain TCP connection from @src is closed at once, before
    we send anything (the reset may even beat connect() back)."""
    try:
        s = Conn(addr, src, ctx=None)
    except ConnectionResetError:
        return True
    try:
        return s.closed()
    finally:
        s.close()


def status_request(extra=b""):
    return b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


def metrics(node, src="127.0.0.3"):
    s = Conn(node.http, src)
    try:
        r = s.ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    finally:
        s.close()
    check(r is not None and r.status == 200, "GET /metrics", r)
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric(node, name, src="127.0.0.3"):
    return metrics(node, src).get(name, 0)


def try_metric(node, name, src="127.0.0.3"):
    """The metric, or -1 when the scrape itself is refused."""
    try:
        return metric(node, name, src)
    except (OSError, rpharness.TestFailure):
        return -1


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- connections -------------------------------------------------------------------

PER_IP = 'raftplane_connections_refused_total{reason="per_ip"}'
TOTAL = 'raftplane_connections_refused_total{reason="total"}'


def test_connections_per_address():
    n_max = 8
    with cluster_on_host(["--max-conns-per-ip", str(n_max)]) as c:
        n = c.node(1)
        held = [Conn(n.http, "127.0.0.1") for _ in range(n_max)]
        for s in held:
            r = s.ask()
            check(r is not None and r.status == 200, "connection within the limit served", r)
        before = metric(n, PER_IP)
        # the next one from 127.0.0.1: closed at accept, before any read or
        # TLS handshake (a plain TCP socket sees the reset at once)
        t0 = time.monotonic()
        check(refused_at_accept(n.http, "127.0.0.1"),
              "connection %d from 127.0.0.1 is closed at once" % (n_max + 1))
        log("over the limit: closed after %.0f ms" % ((time.monotonic() - t0) * 1000))
        check(metric(n, PER_IP) == before + 1, "refusal counted (reason per_ip)")
        check("refused: %d connections open from that address (--max-conns-per-ip %d)" % (
            n_max, n_max) in n.log_text(), "refusal logged")
        # another address is not affected
        other = Conn(n.http, "127.0.0.2")
        r = other.ask()
        check(r is not None and r.status == 200, "127.0.0.2 still gets in", r)
        other.close()
        # the held connections still work; closing one frees its slot
        r = held[0].ask()
        check(r is not None and r.status == 200, "held connections unaffected", r)
        held.pop().close()

        def one_more():
            s = Conn(n.http, "127.0.0.1")
            try:
                r = s.ask()
                return r is not None and r.status == 200
            finally:
                s.close()
        wait_until(one_more, 5, what="a freed slot admits a new connection from 127.0.0.1")
        for s in held:
            s.close()
        wait_until(lambda: metric(n, "raftplane_connections_open") <= 1, 5,
                   what="open connections back to the scrape's own")


def test_member_address_may_exceed():
    """The node's own address (a member's) goes over the per-address limit:
    followers forward on one connection per request. With TLS only a
    server certificate proves a member."""
    n_max = 4
    with cluster_on_host(["--max-conns-per-ip", str(n_max)]) as c:
        n = c.node(1)
        socks = []
        if c.pki:
            server_ctx = tls_client_context(c.pki.ca, c.pki.server(1))
            for _ in range(n_max + 3):
                socks.append(Conn(n.http, HOST, ctx=server_ctx))
            before = metric(n, PER_IP)
            anon = Conn(n.http, HOST)  # the harness's context: no certificate
            check(anon.ask() is None, "over the limit without a server certificate: closed")
            anon.close()
            check(metric(n, PER_IP) == before + 1, "refusal after the handshake counted")
        else:
            for _ in range(n_max + 3):
                socks.append(Conn(n.http, HOST))
        for s in socks:
            r = s.ask()
            check(r is not None and r.status == 200, "a member's address over the limit", r)
        check(metric(n, "raftplane_connections_member_exempt_total") >= 3, "exemptions counted")
        for s in socks:
            s.close()


def test_total_connections():
    with cluster_on_host(["--max-conns-per-ip", "0", "--max-subscribers", "2",
                          "--max-conns", "6"]) as c:
        n = c.node(1)
        held = []
        for i in range(6):
            s = Conn(n.http, "127.0.0.%d" % (1 + i % 2))
            r = s.ask()
            check(r is not None and r.status == 200, "connection %d served" % (i + 1), r)
            held.append(s)
        check(refused_at_accept(n.http, "127.0.0.2"), "connection 7 refused (--max-conns 6)")
        held.pop().close()  # room for the scrape
        wait_until(lambda: try_metric(n, TOTAL) >= 1, 5, what="refusal counted (reason total)")
        for s in held:
            s.close()
    # --max-conns must leave room for the parked polls
    for args, msg in ((["--max-conns", "100", "--max-subscribers", "100"],
                       "must be 0 or above --max-subscribers"),
                      (["--max-conns-per-ip", "x"], "--max-conns-per-ip must be an integer"),
                      (["--max-header-bytes", "100"], "--max-header-bytes must be an integer"),
                      (["--max-headers", "101"], "--max-headers must be an integer"),
                      (["--max-subscriptions-per-node", "-1"],
                       "--max-subscriptions-per-node must be an integer")):
        import subprocess
        p = subprocess.run([rpharness.SERVER_BIN, "--id", "1", "--data-dir", "/nonexistent",
                            "--raft", "127.0.0.1:1", "--http", "127.0.0.1:2"] + args,
                           capture_output=True, text=True, timeout=10)
        check(p.returncode == 2 and msg in p.stderr and p.stderr.count("\n") == 1,
              "bad flag %s: one line, exit 2" % args, p.returncode, p.stderr)


# ---- request heads -----------------------------------------------------------------

HEAD_BYTES = 'raftplane_request_heads_refused_total{reason="bytes"}'
HEAD_COUNT = 'raftplane_request_heads_refused_total{reason="count"}'


def head_of(size):
    """A GET /v1/status head of exactly @size bytes."""
    base = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n"
    h = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (size - len(base)) + \
        b"\r\n\r\n"
    assert len(h) == size
    return h


def head_with(headers):
    """A head with @headers header lines (Host among them)."""
    return b"GET /v1/status HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(headers - 1)) + b"\r\n"


def check_431(r, what):
    check(r is not None and r.status == 431, what + ": 431", r)
    check(r.json()["error"]["code"] == "header_too_large", what + ": JSON error code", r)


def test_request_head_limits():
    with cluster_on_host([]) as c:  # the defaults: 16384 bytes, 64 headers
        n = c.node(1)
        # just under and at each limit: served; just over: 431 and closed
        for size in (16383, 16384):
            s = Conn(n.http)
            r = s.ask(head_of(size))
            check(r is not None and r.status == 200, "a head of %d bytes is served" % size, r)
            s.close()
        b0 = metric(n, HEAD_BYTES)
        s = Conn(n.http)
        check_431(s.ask(head_of(16385)), "a head of 16385 bytes")
        check(s.closed(), "the connection is closed after the 431")
        s.close()
        check(metric(n, HEAD_BYTES) == b0 + 1, "counted (reason bytes)")
        s = Conn(n.http)
        r = s.ask(head_with(64))
        check(r is not None and r.status == 200, "64 header lines are served", r)
        s.close()
        k0 = metric(n, HEAD_COUNT)
        s = Conn(n.http)
        check_431(s.ask(head_with(65)), "65 header lines")
        check(s.closed(), "the connection is closed after the 431 (count)")
        s.close()
        check(metric(n, HEAD_COUNT) == k0 + 1, "counted (reason count)")
        # many short lines: the count is reached long before the bytes
        s = Conn(n.http)
        s.send(b"GET /v1/status HTTP/1.1\r\n")
        for _ in range(10):
            s.send(b"".join(b"X: %d\r\n" % i for i in range(20)))
            time.sleep(0.01)
        check_431(s.response(), "header lines sent in pieces")
        s.close()
        # keep-alive: the next head is cut while it is read, after a plain
        # request, a request with a body and one with Expect: 100-continue
        # (an unterminated head: only the read side can answer it)
        endless = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"e" * 40000
        s = Conn(n.http)
        r = s.ask()
        check(r is not None and r.status == 200, "first request", r)
        r = s.ask(b"PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        check(r is not None and r.status == 200, "a request with a body", r)
        s.send(b"PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = s.response()
        check(r is not None and r.status == 100, "100 Continue", r)
        r = s.ask(b"abc")
        check(r is not None and r.status == 200, "the body after 100 Continue", r)
        check_431(s.ask(endless), "an endless head on a keep-alive connection")
        check(s.closed(), "closed after the 431 (keep-alive)")
        s.close()
        # pipelined: an endless head behind a good request
        s = Conn(n.http)
        s.send(status_request() + endless)
        r1 = s.response()
        check(r1 is not None and r1.status == 200, "the pipelined first request", r1)
        check_431(s.response(), "the pipelined endless head")
        s.close()
        check("request head from" in n.log_text(), "refusal logged")
        check(metric(n, "raftplane_request_head_guard_fallbacks_total") == 0,
              "the read-side guard was in place on every connection")


def test_slow_drip_head_cut_at_the_limit():
    """A head that grows slowly is cut as it passes 16 KiB, whatever h2o
    would buffer (417 KB): the 431 arrives right after the byte that
    crosses the limit."""
    with cluster_on_host(["--max-header-bytes", "16384"]) as c:
        n = c.node(1)
        s = Conn(n.http)
        s.send(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Drip: ")
        sent = len(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Drip: ")
        answer_at = None
        chunk = b"a" * 512
        while sent < 200000:
            try:
                s.send(chunk)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                break
            sent += len(chunk)
            if not s.quiet(0.02):  # something came back (or the server closed)
                answer_at = sent
                break
        check(answer_at is not None, "an answer before 200,000 bytes", sent)
        log("slow drip: answered after %d bytes sent" % answer_at)
        check(16384 <= answer_at <= 16384 + 8 * len(chunk),
              "cut when the head passes the limit", answer_at)
        check_431(s.response(), "the slow head")
        s.close()


def test_head_flood_memory_bounded():
    """64 connections each push 300 KB of head that never ends: every one
    gets a 431 and the server's memory grows by about 64 x 16 KiB, not by
    64 x 417 KB (h2o's own cap)."""
    with cluster_on_host([]) as c:
        n = c.node(1)
        pid = n.proc.pid
        base_fds = fd_count(pid)
        socks = []
        for i in range(64):
            s = Conn(n.http, "127.0.0.%d" % (1 + i % 2))
            s.send(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            socks.append(s)
        time.sleep(0.5)
        rss0 = rss_kib(pid)  # with the connections (TLS: ~240 KiB each under ASan)
        pushed = [s.push(300000) for s in socks]  # as much as the kernel takes
        log("head flood: pushed %d..%d bytes per connection" % (min(pushed), max(pushed)))
        check(min(pushed) > 16384, "each connection sent more than the limit", pushed)
        answered = 0
        for s in socks:
            r = s.response(timeout=10)
            if r is not None and r.status == 431:
                answered += 1
        rss1 = rss_kib(pid)
        log("head flood: %d of 64 answered 431; RSS %d -> %d KiB (+%d)" % (
            answered, rss0, rss1, rss1 - rss0))
        check(answered == 64, "every flooding connection gets its 431", answered)
        check(rss1 - rss0 < 8 * 1024, "memory grew by less than 8 MiB", rss0, rss1)
        for s in socks:
            s.close()
        wait_until(lambda: fd_count(pid) <= base_fds + 4, 10, what="descriptors released")


# ---- parked polls per node id ---------------------------------------------------------

def sub_ctx(c, node_id):
    return tls_client_context(c.pki.ca, c.pki.node(node_id)) if c.pki else None


def park(c, node, node_id, version):
    s = Conn(node.http, ctx=sub_ctx(c, node_id))
    body = sub_request(node_id, version, 60000)
    s.send(("POST /v1/subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
               "Content-Length: %d\r\n\r\n" % (PB, len(body))).encode() + body)
    return s


PER_NODE = 'raftplane_subscribe_refused_total{reason="per_node"}'


def test_parked_polls_per_node():
    with cluster_on_host([]) as c:  # default: 4 per node id
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        polls = []
        for _ in range(4):
            polls.append(park(c, n, "edge", v))
        time.sleep(0.3)
        check(all(s.quiet() for s in polls), "4 parked polls for one node id")
        before = metric(n, PER_NODE)
        extra = park(c, n, "edge", v)
        r = extra.response()
        check(r is not None and r.status == 429 and r.json()["error"]["code"] == "rate_limited",
              "the 5th poll for node edge: 429 rate_limited", r)
        check(r.headers.get("retry-after") == "1", "with Retry-After", r.headers)
        extra.close()
        check(metric(n, PER_NODE) == before + 1, "counted (reason per_node)")
        other = park(c, n, "edge-2", v)
        check(other.quiet(1.0), "another node id is not affected")
        polls.pop().close()
        time.sleep(0.3)  # the close watch releases the slot at once

        def parks_again():
            s = park(c, n, "edge", v)
            if s.quiet(0.5):
                polls.append(s)
                return True
            s.close()
            return False
        wait_until(parks_again, 5, what="a closed poll frees its slot")
        for s in polls + [other]:
            s.close()


if __name__ == "__main__":
    run([test_connections_per_address, test_member_address_may_exceed, test_total_connections,
         test_request_head_limits, test_slow_drip_head_cut_at_the_limit,
         test_head_flood_memory_bounded, test_parked_polls_per_node])
