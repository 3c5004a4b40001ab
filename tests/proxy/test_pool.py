"""raftplane-proxy upstream pool: an idle pooled connection notices a backend
that closes it or sends bytes nobody asked for (the proxy closes its side at
once, not at the idle timeout), and a request that meets the keep-alive race
(the backend closed the pooled connection as it was reused) is sent again on
a new connection instead of failing."""

import queue
import socket
import threading

from proxyharness import Env, check, get, log, pick_ports, run

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
NOTICE_S = 5  # far below the pool idle timeout set below (60 s)


def read_request(sock):
    """One request head (the proxy sends GETs without a body); b"" on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


class Scripted:
    """A raw TCP upstream on 127.0.0.1: connection number i (from 0) is
    handed to script(i, sock) in a thread of its own; what a script puts in
    self.events is read by the test."""

    def __init__(self, script):
        self.script = script
        self.events = queue.Queue()
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.n = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return  # closed
            i, self.n = self.n, self.n + 1
            threading.Thread(target=self._run, args=(i, c), daemon=True).start()

    def _run(self, i, c):
        try:
            self.script(i, c)
        except OSError as e:
            self.events.put((i, "error %r" % e))
        finally:
            c.close()

    def endpoint(self):
        return {"address": "127.0.0.1", "port": self.port}

    def event(self, what):
        try:
            return self.events.get(timeout=NOTICE_S + 5)
        except queue.Empty:
            return (None, "no event (%s)" % what)

    def close(self):
        self.srv.close()


def wait_eof(sock):
    """What the proxy does within NOTICE_S: "closed" (EOF), "sent" or "nothing"."""
    sock.settimeout(NOTICE_S)
    try:
        return "closed" if sock.recv(65536) == b"" else "sent"
    except socket.timeout:
        return "nothing"


def setup(env, up):
    # one worker: one pool; the idle timeout cannot explain a close
    px = env.proxy("edge-1", workers=1, extra=["--pool-idle-timeout-ms", "60000",
                                                "--outlier-consecutive", "0"])
    port = pick_ports(1)[0]
    env.listener("edge", port)
    env.put("clusters", "up", {"endpoints": [up.endpoint()]})
    px.wait_version(env.route("r", "edge", "up"))
    return px, "127.0.0.1:%d" % port


def idle_test(after_answer, what):
    """The backend answers once with keep-alive, waits until the client has
    the answer (the connection is idle in the pool by then), does
    @after_answer(sock) and reports whether the proxy closed its side."""
    answered = threading.Event()

    def script(i, sock):
        if not read_request(sock):
            return
        sock.sendall(OK)
        if i == 0:
            answered.wait(NOTICE_S + 5)
            after_answer(sock)
            up.events.put((i, wait_eof(sock)))
        else:
            up.events.put((i, "new connection"))

    up = Scripted(script)
    try:
        with Env() as env:
            px, lis = setup(env, up)
            r = get(lis, "/")
            check(r.status == 200 and r.body == b"ok\n", "first answer", r.status, r.body)
            answered.set()
            i, seen = up.event(what)
            log("backend %s on idle connection %s: proxy %s" % (what, i, seen))
            check((i, seen) == (0, "closed"),
                  "the idle connection is closed by the proxy when the backend %s" % what,
                  (i, seen))
            r = get(lis, "/")
            check(r.status == 200, "the next request gets a new connection", r.status, r.body)
            st = px.stats()["routes"]["r"]
            check(st["resets"] == 0 and st["upstream_requests"] == 2,
                  "nothing was sent on the closed connection", st)
    finally:
        up.close()


def test_idle_backend_close():
    idle_test(lambda s: s.shutdown(socket.SHUT_WR), "closes (FIN)")


def test_idle_unsolicited_bytes():
    idle_test(lambda s: s.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"),
              "sends unsolicited bytes")


def test_keepalive_race():
    """Connection 0 answers one request, then closes when the second one
    arrives on it (it had decided to close just then); connection 1 answers.
    The client sees two 200s; the stale attempt counts no reset."""

    def script(i, sock):
        if not read_request(sock):
            return
        sock.sendall(OK)
        if i == 0:
            got = read_request(sock)
            up.events.put((i, "second request" if got else "eof"))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close with RST
            return
        while read_request(sock):
            sock.sendall(OK)

    up = Scripted(script)
    try:
        with Env() as env:
            px, lis = setup(env, up)
            for n in range(2):
                r = get(lis, "/")
                check(r.status == 200 and r.body == b"ok\n", "answer %d" % n, r.status, r.body)
            check(up.event("race") == (0, "second request"),
                  "the second request was sent on the pooled connection first")
            st = px.stats()["routes"]["r"]
            check(st["resets"] == 0 and st["retries"] == 0 and st["upstream_requests"] == 3,
                  "the stale connection is not the endpoint's fault", st)
            check(up.n == 2, "one new connection for the retry", up.n)
    finally:
        up.close()


if __name__ == "__main__":
    run([test_idle_backend_close, test_idle_unsolicited_bytes, test_keepalive_race])
