"""Hostile counterparts for raftplane-proxy (issue 9): a smuggling client, a
lying backend, a routing loop, a body flood, a second proxy on the same port,
a backend answering health checks chunked, and HTTP conformance probes.

Every backend here is a raw-socket server in this process that records the
bytes the proxy sent it; every client is a raw socket, so nothing normalises
what goes on the wire. Run one case: hostile_proxy.py <case>.
"""

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proxy"))

from proxyharness import (Env, check, get, log, pick_ports, run,  # noqa: E402
                          wait_until)


# ---- a raw backend -----------------------------------------------------------------

class Req:
    def __init__(self, head, body):
        self.head = head
        lines = head.split(b"\r\n")
        self.line = lines[0]
        parts = self.line.split(b" ")
        self.method = parts[0].decode("latin-1")
        self.target = parts[1].decode("latin-1") if len(parts) > 1 else ""
        self.headers = []
        for ln in lines[1:]:
            if b":" in ln:
                k, v = ln.split(b":", 1)
                self.headers.append((k.decode("latin-1").lower(), v.strip().decode("latin-1")))
            elif ln:
                self.headers.append(("", ln.decode("latin-1")))
        self.body = body

    def header(self, name):
        vals = [v for k, v in self.headers if k == name]
        return ", ".join(vals) if vals else None


def response(status=200, body=b"", headers=(), reason="OK"):
    if isinstance(body, str):
        body = body.encode()
    h = "".join("%s: %s\r\n" % kv for kv in headers)
    return ("HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n\r\n" % (status, reason, h, len(body))
            ).encode() + body


class RawBackend:
    """Accepts connections, reads requests (Content-Length bodies), records
    them and answers handler(req): bytes, or None to never answer (the
    connection is then held until the peer closes it; closes are recorded)."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []
        self.hung_closed = []  # monotonic time a held connection was closed by the peer
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def endpoint(self):
        return {"address": "127.0.0.1", "port": self.port, "weight": 1}

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        c.settimeout(120)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                n = int(m.group(1)) if m else 0
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                req = Req(head, buf[:n])
                buf = buf[n:]
                with self.lock:
                    self.requests.append(req)
                out = self.handler(req)
                if out is None:
                    while c.recv(65536):
                        pass
                    with self.lock:
                        self.hung_closed.append(time.monotonic())
                    return
                c.sendall(out)
        except OSError:
            return
        finally:
            c.close()

    def seen(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.stopped = True
        self.sock.close()


def echo_handler(req):
    """200 with the target as received as body."""
    return response(200, req.target)


# ---- a raw client -------------------------------------------------------------------

class Conn:
    """One client connection; reads responses strictly (RFC 9112 framing)."""

    def __init__(self, addr, timeout=10):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def read_response(self, head_request=False):
        """(status, [(name, value)], body); raises EOFError/socket.timeout."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        check(m is not None, "a status line", lines[0])
        status = int(m.group(1))
        hdrs = [(k.strip().lower(), v.strip()) for k, v in
                (ln.split(":", 1) for ln in lines[1:] if ":" in ln)]
        names = [k for k, _ in hdrs]
        te = [v for k, v in hdrs if k == "transfer-encoding"]
        cl = [v for k, v in hdrs if k == "content-length"]
        check(not (te and cl), "never both Transfer-Encoding and Content-Length", hdrs)
        check(len(cl) <= 1, "at most one Content-Length", hdrs)
        body = b""
        if head_request or status in (204, 304) or 100 <= status < 200:
            pass
        elif te:
            check(te == ["chunked"], "only chunked", te)
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._fill()
                body += self.buf[:size]
                check(self.buf[size:size + 2] == b"\r\n", "chunk ends with CRLF")
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        elif cl:
            n = int(cl[0])
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
        del names
        return status, hdrs, body

    def closed_by_peer(self, timeout=5):
        """True when the server closes the connection (EOF or reset)."""
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b"" and not self.buf
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def req(method, target, host="h.test", headers=(), body=b"", version="1.1"):
    h = ""
    if host is not None:
        h += "Host: %s\r\n" % host
    h += "".join("%s: %s\r\n" % kv for kv in headers)
    if body:
        h += "Content-Length: %d\r\n" % len(body)
    return ("%s %s HTTP/%s\r\n%s\r\n" % (method, target, version, h)).encode("latin-1") + body


def exchange(addr, data, head_request=False):
    c = Conn(addr)
    try:
        c.send(data)
        return c.read_response(head_request)
    finally:
        c.close()


def setup(env, backend, node="edge-1", route_kw=None, extra_routes=(), proxy_extra=()):
    """A proxy with one listener whose default route goes to @backend."""
    px = env.proxy(node, extra=proxy_extra)
    port = pick_ports(1)[0]
    env.put("clusters", "c", {"endpoints": [backend.endpoint()]})
    env.listener("edge", port)
    v = env.route("r", "edge", "c", **(route_kw or {}))
    for name, kw in extra_routes:
        v = env.route(name, "edge", **kw)
    px.wait_version(v)
    lis = "127.0.0.1:%d" % port
    wait_until(lambda: exchange(lis, req("GET", "/ok"))[0] == 200, 10, what="route up")
    return px, lis


# ---- item 1: smuggling and injection through the path -----------------------------------

def test_smuggling():
    b2 = RawBackend(lambda r: response(200, "admin " + r.target))
    b = RawBackend(lambda r: (None if r.target.startswith("/hang") else response(200, r.target)))
    with Env() as env:
        env.put("clusters", "adm", {"endpoints": [b2.endpoint()]})
        px, lis = setup(env, b, extra_routes=[
            ("adm", {"cluster": "adm", "prefix": "/admin/", "priority": 10}),
            ("rw", {"cluster": "c", "prefix": "/rw/", "priority": 10, "prefix_rewrite": "/v2/"}),
            ("vh", {"cluster": "adm", "prefix": "/", "priority": 20,
                    "headers": [{"name": "host", "exact": "vhost.test"}]})])
        before = len(b.seen())
        # CRLF injection: the escape is forwarded as an escape
        st, _, body = exchange(lis, req("GET", "/e/x%0d%0aX-Injected:%20yes"))
        check(st == 200, "injection path answered", st, body)
        last = b.seen()[-1]
        check(all(k != "x-injected" for k, _ in last.headers), "no injected header", last.head)
        check(last.target == "/e/x%0D%0AX-Injected:%20yes", "path forwarded encoded", last.target)
        # other escapes that must stay escapes; unreserved ones decoded; dot segments
        cases = [("/e/a%20b%3Fc%00d%2fe", "/e/a%20b%3Fc%00d%2Fe"),
                 ("/e/%7e%61%2D/./x/../y", "/e/~a-/y"),
                 ("/e/%2e%2e/%2E/z", "/z"),
                 ("/e/q?x=%0d%0a&y=1", "/e/q?x=%0d%0a&y=1"),
                 ('/e/"<>\\^`{|}', "/e/%22%3C%3E%5C%5E%60%7B%7C%7D"),
                 ("/e/\xc3\xa9", "/e/%C3%A9")]
        for raw, want in cases:
            st, _, body = exchange(lis, req("GET", raw))
            check(st == 200 and body.decode("latin-1") == want, "forwarded %r as %r" % (raw, want),
                  st, body)
        # routes match the path that is forwarded
        st, _, body = exchange(lis, req("GET", "/x/%2e%2e/admin/p"))
        check((st, body) == (200, b"admin /admin/p"), "dot segments resolved before matching", body)
        st, _, body = exchange(lis, req("GET", "/x/..%2fadmin/p"))
        check((st, body) == (200, b"/x/..%2Fadmin/p"), "%2F is not a separator", body)
        st, _, body = exchange(lis, req("GET", "/rw/a%0d%0aInjected:%201"))
        check((st, body) == (200, b"/v2/a%0D%0AInjected:%201"), "prefix_rewrite keeps escapes", body)
        # a route on the Host header (h2o keeps Host out of its header list)
        st, _, body = exchange(lis, req("GET", "/v", host="VHost.test"))
        check((st, body) == (200, b"admin /v"), "route on host", st, body)
        st, _, body = exchange(lis, b"GET http://vhost.test/w HTTP/1.1\r\nHost: x\r\n\r\n")
        check((st, body) == (200, b"admin /w"), "route on an absolute-form authority", st, body)
        # malformed escapes and targets we cannot forward: 400
        for bad in ["/e/%zz", "/e/%4", "*", "example.com:443", "ftp://h/x"]:
            st, _, body = exchange(lis, req("GET", bad))
            check(st == 400, "400 for target %r" % bad, st, body)
        # a smuggled second request on a pooled upstream connection
        smuggle = ("/s%20HTTP/1.1%0d%0aHost:%20h%0d%0aContent-Length:%200%0d%0a%0d%0a"
                   "GET%20/hang%20HTTP/1.1%0d%0aHost:%20h%0d%0a%0d%0a")
        n0 = len(b.seen())
        st, _, body = exchange(lis, req("GET", smuggle))
        check(st == 200, "smuggling path answered as one request", st, body)
        for i in range(5):
            st, _, body = exchange(lis, req("GET", "/own/%d" % i))
            check((st, body) == (200, ("/own/%d" % i).encode()), "each client its own answer",
                  st, body)
        seen = b.seen()[n0:]
        check(len(seen) == 6, "the backend saw exactly the 6 requests sent",
              [s.line for s in seen])
        check(not any(s.target.startswith("/hang") for s in seen), "no smuggled request", seen)
        log("backend saw %d requests, all from clients" % (len(b.seen()) - before))
    b.close()
    b2.close()


# ---- item 2 (and 13): a backend that lies about framing ------------------------------------

DESYNC = {
    "/te-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n",
    "/cl-te": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n",
    "/cl-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello..",
    "/cl-same": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "/cl-nan": b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
    "/cl-neg": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
    "/status-999": b"HTTP/1.1 999 Odd\r\nContent-Length: 5\r\n\r\nhello",
    "/status-000": b"HTTP/1.1 000 Odd\r\nContent-Length: 5\r\n\r\nhello",
    "/status-099": b"HTTP/1.1 099 Odd\r\nContent-Length: 5\r\n\r\nhello",
    "/te-gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "/te-last": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello",
    "/te-twice": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
                 b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "/fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 5\r\n\r\nhello",
    "/hop": b"HTTP/1.1 200 OK\r\nConnection: x-hop, keep-alive\r\nX-Hop: 1\r\n"
            b"Proxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTrailer: x-t\r\n"
            b"X-Kept: yes\r\nContent-Length: 5\r\n\r\nhello",
    "/long": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n"
             b"Content-Length: 6\r\n\r\nsmuggl",
    "/early": b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "/hdr-cr": b"HTTP/1.1 200 OK\r\nX-A: a\rInjected: 1\r\nContent-Length: 5\r\n\r\nhello",
    "/hdr-nul": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 5\r\n\r\nhello",
    "/hdr-name": b"HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 5\r\n\r\nhello",
    "/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
}
WANT = {"/te-cl": (200, b"hello"), "/cl-te": (200, b"hello"), "/cl-cl": (502, None),
        "/cl-same": (200, b"hello"), "/cl-nan": (502, None), "/cl-neg": (502, None),
        "/status-999": (502, None), "/status-000": (502, None), "/status-099": (502, None),
        "/te-gzip": (502, None), "/te-last": (502, None), "/te-twice": (502, None),
        "/fold": (502, None), "/hop": (200, b"hello"), "/long": (200, b"hello"),
        "/early": (200, b"hello"), "/hdr-cr": (502, None), "/hdr-nul": (502, None),
        "/hdr-name": (502, None)}


def desync_handler(r):
    if r.method == "HEAD":  # a body where none may be: the proxy must drop it
        return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    return DESYNC.get(r.target.split("?")[0], response(404, "no"))


def test_desync():
    b = RawBackend(desync_handler)
    with Env() as env:
        px, lis = setup(env, b)
        for path, (want_status, want_body) in sorted(WANT.items()):
            c = Conn(lis)
            try:
                c.send(req("GET", path))
                st, hdrs, body = c.read_response()
                check(st == want_status, "%s: status %d" % (path, want_status), st, hdrs, body)
                if want_body is not None:
                    check(body == want_body, "%s: body" % path, body)
                if path == "/hop":
                    names = [k for k, _ in hdrs]
                    for h in ("x-hop", "proxy-connection", "keep-alive", "trailer"):
                        check(h not in names, "%s: hop-by-hop %s dropped" % (path, h), hdrs)
                    check("x-kept" in names, "end-to-end header kept", hdrs)
                # the client connection is still in step: the next answer is its own
                c.send(req("GET", "/ok"))
                st, _, body = c.read_response()
                check((st, body) == (200, b"ok"), "%s: next response in step" % path, st, body)
            finally:
                c.close()
        # HEAD with a body from the backend
        c = Conn(lis)
        c.send(req("HEAD", "/head"))
        st, _, body = c.read_response(head_request=True)
        check(st == 200, "HEAD answered", st)
        c.send(req("GET", "/ok"))
        st, _, body = c.read_response()
        check((st, body) == (200, b"ok"), "after HEAD: in step", st, body)
        c.close()
        # after all that, pooled upstream connections still answer the right request
        for i in range(10):
            st, _, body = exchange(lis, req("GET", "/ok?%d" % i))
            check((st, body) == (200, b"ok"), "pool in step", st, body)
    b.close()


# ---- item 13: request framing, Host, hop-by-hop, absolute-form -----------------------------

def test_conformance():
    b = RawBackend(lambda r: response(200, r.target, [("X-Host", r.header("host") or "-")]))
    with Env() as env:
        px, lis = setup(env, b)
        refused = [
            ("two Content-Length", b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
             b"Content-Length: 2\r\n\r\nab"),
            ("same Content-Length twice", b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
             b"Content-Length: 2\r\n\r\nab"),
            ("TE and CL", b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 3\r\n\r\n0\r\n\r\n"),
            ("CL and TE", b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("two Host", b"GET /c HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            ("no Host", b"GET /c HTTP/1.1\r\n\r\n"),
            ("bad Host", b"GET /c HTTP/1.1\r\nHost: a/b@c\r\n\r\n"),
            ("empty Host", b"GET /c HTTP/1.1\r\nHost: \r\n\r\n"),
            ("obs-fold", b"GET /c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n"),
            ("TE in HTTP/1.0", b"POST /c HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ]
        n0 = len(b.seen())
        for what, data in refused:
            c = Conn(lis)
            c.send(data + req("GET", "/after"))
            st, _, body = c.read_response()
            check(st == 400, "%s: 400" % what, st, body)
            check(c.closed_by_peer(), "%s: connection closed after the 400" % what)
            c.close()
        check(len(b.seen()) == n0, "nothing refused reached the backend",
              [r.line for r in b.seen()[n0:]])
        # HTTP/1.0 without Host: forwarded with the listener's address
        st, hdrs, body = exchange(lis, b"GET /old HTTP/1.0\r\n\r\n")
        check(st == 200 and ("x-host", lis) in hdrs, "HTTP/1.0 without Host", st, hdrs)
        # hop-by-hop request headers, including those named in Connection
        st, _, _ = exchange(lis, req("GET", "/hop", headers=[
            ("Connection", "x-foo, keep-alive"), ("X-Foo", "1"), ("TE", "trailers"),
            ("Trailer", "x"), ("Proxy-Connection", "keep-alive"), ("Keep-Alive", "5"),
            ("Upgrade", "websocket"), ("X-Kept", "1")]))
        check(st == 200, "hop request answered", st)
        names = [k for k, _ in b.seen()[-1].headers]
        for h in ("x-foo", "te", "trailer", "proxy-connection", "keep-alive", "upgrade",
                  "connection"):
            check(h not in names, "hop-by-hop %s not forwarded" % h, names)
        check("x-kept" in names and "via" in names, "end-to-end headers kept, via added", names)
        # absolute-form: its authority is the host, its path is routed
        st, hdrs, body = exchange(lis, b"GET http://abs.test:81/abs/p?q=1 HTTP/1.1\r\n"
                                       b"Host: other\r\n\r\n")
        check((st, body) == (200, b"/abs/p?q=1") and ("x-host", "abs.test:81") in hdrs,
              "absolute-form", st, hdrs, body)
        # two X-Forwarded-For headers are combined, not cut to the last
        exchange(lis, req("GET", "/xff", headers=[("X-Forwarded-For", "1.1.1.1"),
                                                  ("X-Forwarded-For", "2.2.2.2")]))
        xff = b.seen()[-1].header("x-forwarded-for")
        check(xff == "1.1.1.1, 2.2.2.2, 127.0.0.1", "x-forwarded-for", xff)
        # no HTTP/2 behind the documented HTTP/1.1: no h2c upgrade, no prior knowledge
        st, hdrs, body = exchange(lis, req("GET", "/up", headers=[
            ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]))
        check(st == 200 and body == b"/up", "h2c upgrade ignored", st, hdrs)
        names = [k for k, _ in b.seen()[-1].headers]
        check("upgrade" not in names and "http2-settings" not in names, "not forwarded", names)
        c = Conn(lis)
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        st, _, _ = c.read_response()
        check(st == 400, "HTTP/2 prior knowledge refused", st)
        c.close()
        st = px.stats()["downstream"]
        check(st["bad_requests"] >= len(refused), "bad requests counted", st)
    b.close()
    # item 17: --help prints single percent signs
    out = subprocess.run([os.environ.get("RP_PROXY_BIN", "raftplane-proxy"), "--help"],
                         stdout=subprocess.PIPE, timeout=10).stdout.decode()
    check("%%" not in out and "N% of a cluster" in out, "--help without %%", out)


# ---- item 6: loops and abandoned requests ------------------------------------------------

def test_loop():
    hang = RawBackend(lambda r: None)
    with Env() as env:
        px = env.proxy("edge-1")
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.put("clusters", "self", {"endpoints": [{"address": "127.0.0.1", "port": port}]})
        env.put("clusters", "hang", {"endpoints": [hang.endpoint()]})
        env.listener("edge", port)
        env.route("loop", "edge", "self", prefix="/")
        v = env.route("slow", "edge", "hang", prefix="/hang", timeout_ms=60000, priority=5)
        px.wait_version(v)
        t0 = time.monotonic()
        st, _, body = exchange(lis, req("GET", "/loop"))
        took = time.monotonic() - t0
        check(st == 508, "a request around the loop gets 508", st, body)
        check(took < 5, "and at once", took)

        def total():
            return px.stats()["downstream"]["requests"]
        n1 = total()
        time.sleep(1.0)
        n2 = total()
        check(n2 - n1 <= 2, "the loop does not sustain itself", n1, n2)
        log("loop answered 508 in %.0f ms; %d requests on the listener in total" % (
            took * 1000, n2))
        check(px.stats()["downstream"]["loops"] >= 1, "loop counted")
        # too many proxies in Via
        via = ", ".join("1.1 p%d" % i for i in range(20))
        st, _, _ = exchange(lis, req("GET", "/loop", headers=[("Via", via)]))
        check(st == 508, "hop limit", st)
        # a client that leaves: the upstream exchange is cancelled soon after
        for i in range(3):
            c = Conn(lis)
            c.send(req("GET", "/hang/%d" % i))
            wait_until(lambda: any(r.target == "/hang/%d" % i for r in hang.seen()), 10,
                       what="request reaches the backend")
            c.close()
        t_left = time.monotonic()
        wait_until(lambda: len(hang.hung_closed) == 3, 8,
                   what="the proxy to drop the upstream requests of clients that left")
        log("upstream cancelled %.0f ms after the clients left" % (
            (max(hang.hung_closed) - t_left) * 1000))
        check(px.stats()["downstream"]["client_gone"] >= 3, "client_gone counted")
    hang.close()


# ---- item 7: request bodies --------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def flood_one(lis, chunked, size, out, idx):
    """Send a @size body; stop as soon as the proxy answers. out[idx] = status."""
    c = Conn(lis, timeout=30)
    try:
        if chunked:
            c.send(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            c.send(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size)
        piece = b"x" * 65536
        sent = 0
        try:
            while sent < size:
                r, _, _ = select.select([c.s], [], [], 0)
                if r:
                    break
                c.send(b"10000\r\n" + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            if chunked and sent >= size:
                c.send(b"0\r\n\r\n")
        except OSError:
            pass
        st, _, _ = c.read_response()
        out[idx] = st
    except (OSError, EOFError) as e:
        out[idx] = repr(e)
    finally:
        c.close()


def test_body_flood():
    b = RawBackend(lambda r: response(200, str(len(r.body))))
    with Env() as env:
        px, lis = setup(env, b)
        pid = px.proc.pid
        # at the limit: accepted (1 MiB Content-Length)
        st, _, body = exchange(lis, req("POST", "/up", body=b"y" * (1024 * 1024)))
        check((st, body) == (200, b"1048576"), "1 MiB body accepted", st, body)
        base = rss_kb(pid)
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.02)
        threading.Thread(target=sample, daemon=True).start()
        size = 24 * 1024 * 1024
        out = [None] * 8
        ts = [threading.Thread(target=flood_one, args=(lis, i % 2 == 1, size, out, i))
              for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        done.set()
        grew = (peak[0] - base) / 1024.0
        log("8 oversized bodies: answers %s, proxy RSS %d MB -> peak %d MB (+%.1f MB)" % (
            out, base // 1024, peak[0] // 1024, grew))
        check(out == [413] * 8, "every oversized body refused with 413", out)
        check(grew < 48, "RSS stays small", grew)
        big = [r for r in b.seen() if len(r.body) > 1024 * 1024]
        check(not big, "nothing oversized reached the backend", len(big))
    b.close()


# ---- item 10: one port, one proxy ------------------------------------------------------

def test_shared_port():
    a = RawBackend(lambda r: response(200, "A"))
    bb = RawBackend(lambda r: response(200, "B"))
    with Env() as env:
        pa = env.proxy("pa")
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.put("clusters", "ca", {"endpoints": [a.endpoint()]})
        env.put("clusters", "cb", {"endpoints": [bb.endpoint()]})
        env.listener("la", port, nodes=["pa"])
        va = env.route("ra", "la", "ca")
        pa.wait_version(va)
        env.listener("lb", port, nodes=["pb"])
        vb = env.route("rb", "lb", "cb")
        pb = env.proxy("pb", ready=False)

        def nack():
            r = env.api("GET", "/v1/proxies")
            for p in r.json()["proxies"]:
                if p["node_id"] == "pb" and p.get("nack"):
                    return p["nack"]
            return None
        n = wait_until(nack, 20, what="the second proxy to NACK")
        log("pb NACK: %s" % n)
        check(str(port) in n["error"] and "in use" in n["error"].lower(),
              "NACK names the port and why", n)
        check(n["version"] <= vb, "NACK of the conflicting version", n, vb)
        counts = {}
        for _ in range(40):
            st, _, body = exchange(lis, req("GET", "/"))
            counts[body] = counts.get(body, 0) + 1
        check(counts == {b"A": 40}, "all traffic on the port goes to the first proxy", counts)
        check(pb.alive(), "second proxy still running")
    a.close()
    bb.close()


# ---- item 16: health checks answered chunked on keep-alive --------------------------------

def chunked_health(r):
    if r.target == "/healthz":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    return response(200, "B")


def test_health_chunked():
    b = RawBackend(chunked_health)
    with Env() as env:
        px = env.proxy("edge-1")
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        # generous timings: a loaded machine must not fail a check; the old
        # client never completes a chunked answer on keep-alive at all
        hc = {"path": "/healthz", "interval_ms": 400, "timeout_ms": 400,
              "unhealthy_threshold": 3, "healthy_threshold": 1}
        env.put("clusters", "c", {"endpoints": [b.endpoint()], "health_check": hc})
        env.listener("edge", port)
        px.wait_version(env.route("r", "edge", "c"))
        wait_until(lambda: sum(r.target == "/healthz" for r in b.seen()) >= 6, 15,
                   what="6 health checks")
        cfg = px.config()
        ep = cfg["clusters"][0]["endpoints"][0]
        check(ep["healthy"] is True, "endpoint healthy with chunked health answers", ep)
        for _ in range(10):
            st, _, body = exchange(lis, req("GET", "/"))
            check((st, body) == (200, b"B"), "traffic flows", st, body)
    b.close()


CASES = {"smuggling": test_smuggling, "desync": test_desync, "conformance": test_conformance,
         "loop": test_loop, "body_flood": test_body_flood, "shared_port": test_shared_port,
         "health_chunked": test_health_chunked}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in CASES:
        sys.exit("usage: hostile_proxy.py %s" % "|".join(sorted(CASES)))
    sys.argv = sys.argv[:1]
    run([CASES[name]], title="hostile_proxy_" + name)
