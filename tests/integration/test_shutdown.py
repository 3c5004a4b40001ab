#!/usr/bin/env python3
"""SIGTERM with work in flight: every node must exit 0 with a clean stderr.

Each test puts one kind of work in flight on real raftplane-server processes
(parked watches, subscriptions and rollout waits, proposals that cannot
commit, forwards to a stopped leader, read barriers, membership changes,
joins, snapshots, half-sent requests, idle keep-alive connections), then
sends SIGTERM and checks that the process exits with status 0 and that its
stderr has no LeakSanitizer, AddressSanitizer, UBSan ("runtime error:") or
failed assertion line. Leaks are only reported when the process exits
normally, which is what SIGTERM leads to (server/main.c: on_signal).

"In flight" is established without sleeps, from the kernel's view of the
server's sockets (/proc/net/tcp): a request is consumed once the server
socket's receive queue is empty, parked once the server armed TCP keepalive
on it (api/park.c does so for every parked request), and a forward or a
raft message waits at a stopped process while its socket holds unread bytes.
Two tests (test_write_queue, test_read_queue) arrange which events share
one libuv loop turn with the signal: a process stopped with SIGSTOP finds
everything that arrived meanwhile in one batch of events, and libuv runs
its signal watcher after the other events of a batch.

test_read_stream and test_sequential_stop repeat a racy moment
RP_SHUTDOWN_ROUNDS times (default 5).

Run one test: test_shutdown.py test_parked_watches.
"""

import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "subscribe"))
from rpharness import (Cluster, KeepAliveClient, TestFailure, check, http_request, log,  # noqa: E402
                       open_request_socket, parse_response, pick_ports, run, wait_until)
from subharness import sub_request  # noqa: E402

# What a node's stderr must not contain after SIGTERM.
BAD_LINES = ("LeakSanitizer", "AddressSanitizer", "runtime error:", "Assertion")
EXIT_TIMEOUT = 60.0  # the leak check at exit is slow on a loaded machine
ROUNDS = int(os.environ.get("RP_SHUTDOWN_ROUNDS", "5"))  # SIGTERMs of racy scenarios


# ---- the check: SIGTERM, exit 0, clean stderr -----------------------------------

def report_of(text):
    """The sanitizer/assertion lines of @text with the stack that follows
    each (so a CTest log keeps the whole trace)."""
    lines = text.splitlines()
    out, keep = [], 0
    for ln in lines:
        if any(p in ln for p in BAD_LINES):
            keep = 60
        if keep:
            out.append(ln)
            keep -= 1
    return "\n".join(out[:400])


def sigterm(c, nodes, what, send=True):
    """SIGTERM every node of @nodes at once (they must be running, not
    stopped), wait for each to exit and check status 0 and a clean stderr.
    Raises one TestFailure naming every bad node, with its report. With
    send=False the caller has sent the signal already."""
    nodes = [c.node(n) for n in nodes]
    for n in nodes if send else ():
        check(n.alive() and not n.paused, "%s: %r is not running" % (what, n))
        n.expect_exit = True
        n.proc.send_signal(signal.SIGTERM)
    bad = []
    for n in nodes:
        n.expect_exit = True
        try:
            rc = n.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            c._hard_kill(n)
            bad.append("%r did not exit within %.0fs of SIGTERM" % (n, EXIT_TIMEOUT))
            continue
        text = n.current_log()
        rep = report_of(text)
        if rc != 0 or rep:
            bad.append("%r exited with %s after SIGTERM%s" % (
                n, rc, (":\n" + rep) if rep else (":\n" + text[-1500:])))
    if bad:
        raise TestFailure("%s:\n" % what + "\n".join(bad))
    log("%s: %s exited 0, stderr clean" % (what, ", ".join(repr(n) for n in nodes)))


def sigterm_rest(c, what):
    """Resume stopped nodes and SIGTERM every node still running."""
    for n in c.nodes.values():
        if n.alive() and n.paused:
            c.resume(n)
    rest = [n for n in c.nodes.values() if n.alive()]
    if rest:
        sigterm(c, rest, what)


# ---- the server's sockets, as the kernel sees them ------------------------------

def tcp_table():
    """Rows of /proc/net/tcp{,6}: (local port, remote port, state, rx queue,
    timer kind). State 1 is ESTABLISHED; timer 2 is the keepalive timer."""
    rows = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    x = line.split()
                    lport = int(x[1].rsplit(":", 1)[1], 16)
                    rport = int(x[2].rsplit(":", 1)[1], 16)
                    rx = int(x[4].split(":")[1], 16)
                    rows.append((lport, rport, int(x[3], 16), rx, int(x[5].split(":")[0], 16)))
        except OSError:
            pass
    return rows


def server_side(port, socks):
    """{client port: row} of the server ends (local @port) of @socks."""
    want = {s.getsockname()[1] for s in socks}
    return {r[1]: r for r in tcp_table() if r[0] == port and r[1] in want and r[2] == 1}


def wait_consumed(node, socks, what, timeout=30.0):
    """Wait until the server read everything sent on each of @socks."""
    def ok():
        rows = server_side(node.http_port, socks)
        return len(rows) == len(socks) and all(r[3] == 0 for r in rows.values())
    wait_until(ok, timeout, what="%r to read %d %s" % (node, len(socks), what))


def wait_parked(node, socks, what, timeout=30.0):
    """Wait until each request on @socks is parked (keepalive armed)."""
    def ok():
        rows = server_side(node.http_port, socks)
        return len(rows) == len(socks) and all(r[3] == 0 and r[4] == 2 for r in rows.values())
    wait_until(ok, timeout, what="%d %s parked on %r" % (len(socks), what, node))


def unread_at(port):
    """Established sockets with local @port holding unread bytes (requests
    that arrived at a stopped process)."""
    return [r for r in tcp_table() if r[0] == port and r[2] == 1 and r[3] > 0]


# ---- requests that stay open --------------------------------------------------------

_open = []


def request_bytes(node, method, path, body=b"", headers=None):
    if isinstance(body, str):
        body = body.encode()
    h = {"Host": node.http, "Content-Length": str(len(body))}
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join("%s: %s\r\n" % kv
                                                             for kv in h.items()))
    return head.encode() + body


def send_open(node, data):
    """Connect to @node, send @data, leave the socket open (closed at exit)."""
    s = open_request_socket(node.http, data, timeout=10)  # TLS when the node serves TLS
    s.sendall(data)
    _open.append(s)
    return s


def open_requests(node, n, method, path, body=b"", headers=None):
    return [send_open(node, request_bytes(node, method, path, body, headers)) for _ in range(n)]


def close_open():
    while _open:
        try:
            _open.pop().close()
        except OSError:
            pass


def metric(node, name):
    r = http_request(node.http, "GET", "/metrics", timeout=5)
    for ln in r.body.decode().splitlines():
        if ln.startswith(name + " "):
            return int(float(ln.split()[1]))
    raise TestFailure("no metric %s on %r" % (name, node))


def put(c, node, key, value):
    r = c.request(node, "PUT", "/v1/kv/" + key, body=value)
    check(r.status == 200, "PUT %s on %r" % (key, node), r)
    return r.json()["version"]


def subscribe_once(node, node_id):
    """A first subscription request (answered at once): the version."""
    r = http_request(node.http, "POST", "/v1/subscribe", body=sub_request(node_id),
                     headers={"Content-Type": "application/x-protobuf"})
    check(r.status == 200, "first subscribe of %s on %r" % (node_id, node), r)
    return int(r.headers["x-raftplane-version"])


def park_subscriptions(node, n, prefix):
    socks = []
    for i in range(n):
        nid = "%s-%d-%d" % (prefix, node.id, i)
        v = subscribe_once(node, nid)
        socks.append(send_open(node, request_bytes(
            node, "POST", "/v1/subscribe", sub_request(nid, version=v, wait_ms=600000),
            {"Content-Type": "application/x-protobuf"})))
    return socks


class Writer(threading.Thread):
    """PUTs on one keep-alive connection until stopped or the node goes."""

    def __init__(self, node, key, size=64):
        super().__init__(daemon=True)
        self.node, self.key, self.value = node, key, b"v" * size
        self.stop = threading.Event()
        self.ok = 0

    def run(self):
        cl = KeepAliveClient(self.node.http, timeout=30)
        i = 0
        while not self.stop.is_set():
            try:
                r = cl.request("PUT", "/v1/kv/%s-%d" % (self.key, i % 50), body=self.value)
                if r.status == 200:
                    self.ok += 1
            except OSError:
                return
            except Exception:  # noqa: BLE001 - the node is going away
                return
            i += 1


# ---- scenarios ------------------------------------------------------------------------

def test_parked_watches():
    """Watches parked on every node (some with kinds, some far in the past
    of the history), SIGTERM to all nodes at once."""
    with Cluster(3, name="watches") as c:
        rev = put(c, c.leader(), "w", "1")
        for n in c.nodes.values():
            c.wait_applied(n, rev)
            socks = open_requests(n, 10, "GET", "/v1/watch?wait=10m")
            socks += open_requests(n, 5, "GET", "/v1/watch?wait=10m&kinds=routes,members")
            socks += open_requests(n, 5, "GET", "/v1/watch?after=%d&wait=10m&kinds=clusters" %
                                   rev)
            wait_parked(n, socks, "watches")
        sigterm(c, c.nodes.values(), "parked watches")
    close_open()


def test_parked_subscriptions():
    """Proxy subscriptions parked on every node, SIGTERM to all at once; then
    on a second cluster, a follower with parked polls and a write forwarded
    to its stopped leader."""
    with Cluster(3, name="subscriptions") as c:
        for n in c.nodes.values():
            wait_parked(n, park_subscriptions(n, 10, "edge"), "subscriptions")
        sigterm(c, c.nodes.values(), "parked subscriptions")
    close_open()
    with Cluster(3, name="subscriptions-change") as c:
        lead = c.leader()
        f = [n for n in c.running() if n is not lead][0]
        wait_parked(f, park_subscriptions(f, 20, "edge"), "subscriptions")
        c.pause(lead)  # writes below stay proposed; the follower's polls stay parked
        w = send_open(f, request_bytes(f, "PUT", "/v1/clusters/c1",
                                       json.dumps({"endpoints": [{"address": "127.0.0.1",
                                                                  "port": 9}]})))
        wait_consumed(f, [w], "write")
        sigterm(c, [f], "parked subscriptions, forward in flight")
        sigterm_rest(c, "the others")
    close_open()


def test_parked_rollouts():
    """Rollout waits parked (their proxy never ACKs the revision), with the
    fan-out to the other members in flight because one member is stopped."""
    with Cluster(3, name="rollouts") as c:
        lead = c.leader()
        others = [n for n in c.running() if n is not lead]
        wait_parked(lead, park_subscriptions(lead, 2, "edge"), "subscriptions")
        rev = c.status(lead)["revision"]
        c.pause(others[1])  # its fan-out requests hang until their timeout
        socks = []
        for n in (lead, others[0]):
            s = open_requests(n, 10, "GET", "/v1/rollouts/%d?wait=10m" % (rev + 1000))
            wait_parked(n, s, "rollout waits")
            socks += s
        sigterm(c, [lead, others[0]], "parked rollout waits")
        sigterm_rest(c, "the stopped member")
    close_open()


def test_write_in_flight():
    """Proposals the leader cannot commit (followers stopped), then SIGTERM
    to the leader; and writes streaming on 8 connections when every node
    gets SIGTERM."""
    with Cluster(3, name="write-stuck") as c:
        lead = c.leader()
        for n in c.running():
            if n is not lead:
                c.pause(n)
        last = c.status(lead)["last_index"]
        socks = []
        for i in range(8):
            socks.append(send_open(lead, request_bytes(lead, "PUT", "/v1/kv/k%d" % i, "v")))
        socks.append(send_open(lead, request_bytes(
            lead, "POST", "/v1/txn", json.dumps({"ops": [{"op": "put", "kind": "kv", "name": "t",
                                                          "value": "x"}]}))))
        socks.append(send_open(lead, request_bytes(lead, "PUT", "/v1/clusters/c1", json.dumps(
            {"endpoints": [{"address": "127.0.0.1", "port": 9}]}))))
        wait_consumed(lead, socks, "writes")
        wait_until(lambda: c.status(lead)["last_index"] >= last + 10, 10,
                   what="the leader to append the writes")
        sigterm(c, [lead], "leader with uncommitted proposals")
        sigterm_rest(c, "the followers")
    close_open()
    with Cluster(3, name="write-stream") as c:
        lead = c.leader()
        ws = [Writer(lead, "s%d" % i) for i in range(6)]
        ws += [Writer(n, "f%d" % n.id) for n in c.running() if n is not lead]
        for w in ws:
            w.start()
        wait_until(lambda: sum(w.ok for w in ws) >= 50, 60, what="writes to flow")
        sigterm(c, c.nodes.values(), "every node with writes streaming")
        for w in ws:
            w.stop.set()
            w.join(timeout=30)


def test_write_queue():
    """Many proposals appended in the loop turn that handles SIGTERM, so
    that several of the leader's disk writes are still queued in raft_uv
    when raft_close() cancels them. canonical/raft 0.15's appendLeaderCb
    truncates the log from each canceled write's first index; the second
    truncation starts past the end of the log (fixed upstream in 0.17.1,
    commit 8b9c95c): an assertion in a debug libraft, a double free or a
    NULL read in Debian's.

    The turn is arranged without sleeps: a single node (it needs no peer
    to stay leader) is stopped, a PUT is sent on each of 60 idle keep-alive
    connections, then SIGTERM, then SIGCONT. The signal handler runs
    first and fills libuv's signal pipe, so the next batch of events holds
    every request and the signal; libuv runs the signal watcher after the
    others, i.e. after the 60 raft_apply() calls."""
    with Cluster(1, name="write-queue") as c:
        node = c.nodes[1]
        conns = keepalive_conns(node, 60)
        c.pause(node)
        for i, s in enumerate(conns):
            s.sendall(request_bytes(node, "PUT", "/v1/kv/q%d" % i, "v" * 100))
        node.expect_exit = True
        node.proc.send_signal(signal.SIGTERM)
        c.resume(node)
        sigterm(c, [node], "single node with 60 writes arriving with SIGTERM", send=False)
    close_open()


def test_same_turn():
    """Every kind of request handled in the loop turn that handles SIGTERM,
    on the leader and on a follower: each starts its async work (proposal,
    barrier, forward, park, fan-out, membership change) and the node closes
    right after. Arranged as in test_write_queue: the node is stopped, one
    request arrives on each idle keep-alive connection, SIGTERM, SIGCONT."""
    for role in ("leader", "follower"):
        with Cluster(3, name="same-turn-" + role) as c:
            lead = c.leader()
            others = [n for n in c.running() if n is not lead]
            node = lead if role == "leader" else others[0]
            peer = others[-1]
            v = subscribe_once(node, "edge-1")
            rev = c.status(node)["revision"]
            cl = json.dumps({"endpoints": [{"address": "127.0.0.1", "port": 9}]})
            txn = json.dumps({"ops": [{"op": "put", "kind": "kv", "name": "t", "value": "x"}]})
            rp, hp = pick_ports(2)
            member = json.dumps({"id": 9, "raft": "127.0.0.1:%d" % rp,
                                 "http": "127.0.0.1:%d" % hp, "role": "voter"})
            pb = {"Content-Type": "application/x-protobuf"}
            reqs = [("PUT", "/v1/kv/a", "1", None), ("DELETE", "/v1/kv/b", "", None),
                    ("PUT", "/v1/clusters/c1", cl, None), ("POST", "/v1/txn", txn, None),
                    ("GET", "/v1/kv/a", "", None), ("GET", "/v1/kv?prefix=", "", None),
                    ("GET", "/v1/routes", "", None), ("GET", "/v1/kv/a?consistency=stale", "", None),
                    ("GET", "/v1/watch?wait=10m", "", None),
                    ("GET", "/v1/watch?after=0&wait=10m", "", None),
                    ("POST", "/v1/subscribe", sub_request("edge-2"), pb),
                    ("POST", "/v1/subscribe", sub_request("edge-1", version=v, wait_ms=600000), pb),
                    ("GET", "/v1/rollouts/%d?wait=10m" % (rev + 1000), "", None),
                    ("GET", "/v1/proxies", "", None), ("POST", "/v1/members", member, None),
                    ("POST", "/v1/members/%d/leadership" % peer.id, "", None),
                    ("GET", "/v1/status", "", None), ("GET", "/v1/members", "", None),
                    ("GET", "/metrics", "", None), ("GET", "/readyz", "", None)]
            conns = keepalive_conns(node, len(reqs))
            c.pause(node)
            for s, (m, path, body, hdrs) in zip(conns, reqs):
                s.sendall(request_bytes(node, m, path, body, hdrs))
            node.expect_exit = True
            node.proc.send_signal(signal.SIGTERM)
            c.resume(node)
            sigterm(c, [node], "%s handling every kind of request with SIGTERM" % role,
                    send=False)
            sigterm_rest(c, "the others")
        close_open()


def test_forward_in_flight():
    """A follower forwards writes and a read to a stopped leader; SIGTERM
    to the follower while those forwards wait for an answer."""
    with Cluster(3, name="forward", election_timeout_ms=3000,
                 extra_args=["--forward-timeout-ms", "600000",
                             "--leader-wait-ms", "600000"]) as c:
        lead = c.leader()
        f1, f2 = [n for n in c.running() if n is not lead]
        c.pause(f2)  # no majority: f1 cannot elect another leader
        c.pause(lead)
        socks = [send_open(f1, request_bytes(f1, "PUT", "/v1/kv/fw%d" % i, "v"))
                 for i in range(5)]
        socks.append(send_open(f1, request_bytes(f1, "GET", "/v1/kv/fw0")))
        socks.append(send_open(f1, request_bytes(f1, "POST", "/v1/members", json.dumps(
            {"id": 9, "raft": "127.0.0.1:1", "http": "127.0.0.1:2", "role": "spare"}))))
        wait_consumed(f1, socks, "requests")
        wait_until(lambda: len(unread_at(lead.http_port)) >= len(socks), 30,
                   what="the forwards to reach the stopped leader")
        sigterm(c, [f1], "follower with forwards in flight")
        sigterm_rest(c, "the leader and the other follower")
    close_open()


def test_read_barrier():
    """Linearizable reads waiting for a barrier that cannot commit (the
    followers are stopped), then SIGTERM to the leader."""
    with Cluster(3, name="barrier") as c:
        lead = c.leader()
        put(c, lead, "r", "1")
        for n in c.running():
            if n is not lead:
                c.pause(n)
        b0 = metric(lead, "raftplane_read_barriers_total")
        socks = []
        for i in range(6):
            socks.append(send_open(lead, request_bytes(lead, "GET", "/v1/kv/r")))
            wait_consumed(lead, socks, "reads")
        socks += open_requests(lead, 3, "GET", "/v1/kv?prefix=")
        socks += open_requests(lead, 3, "GET", "/v1/routes")
        wait_consumed(lead, socks, "reads")
        wait_until(lambda: metric(lead, "raftplane_read_barriers_total") > b0, 10,
                   what="a read barrier to start")
        sigterm(c, [lead], "leader with reads waiting for a barrier")
        sigterm_rest(c, "the followers")
    close_open()


class Reader(Writer):
    """Linearizable GETs on one keep-alive connection."""

    def run(self):
        cl = KeepAliveClient(self.node.http, timeout=30)
        while not self.stop.is_set():
            try:
                r = cl.request("GET", "/v1/kv/" + self.key)
                if r.status == 200:
                    self.ok += 1
            except Exception:  # noqa: BLE001 - the node is going away
                return


def keepalive_conns(node, n):
    """@n connections to @node, each idle after one answered request."""
    socks = []
    for _ in range(n):
        s = send_open(node, request_bytes(node, "GET", "/v1/status"))
        data = b""
        while parse_response(data) is None:
            d = s.recv(65536)
            check(d, "%r closed a keep-alive connection" % node)
            data += d
        socks.append(s)
    return socks


def test_read_queue():
    """Reads queued behind a read barrier that completes in the same loop
    turn as SIGTERM: raft/node.c releases such reads from a zero-delay timer
    (read_kick) that rp_node_close() stops, so before the fix their waiters
    leaked (LeakSanitizer: rp_node_read_barrier).

    How the turn is arranged, without sleeps: the followers are stopped so
    that barrier B1 of a first read stays in flight; the leader is stopped;
    200 linearizable reads (queued behind B1 once read) and 6 slow stale
    lists arrive at its sockets; the followers resume and their answers to
    B1 reach the leader's raft socket (seen in /proc/net/tcp). The leader
    resumes and reads everything in one batch of events, slow lists first,
    the raft bytes last (the relay hands them to libraft through a
    socketpair, read in the next batch). SIGTERM is sent as soon as the
    first slow list is answered, i.e. during that batch; libuv runs the
    signal watcher after the other events of the next batch, in which
    libraft completes B1 and the timer is started."""
    with Cluster(3, name="read-queue", election_timeout_ms=8000, ready_timeout=90) as c:
        lead = c.leader()
        f1, f2 = [n for n in c.running() if n is not lead]
        for t in range(16):  # 2048 keys: a stale list of them takes a while
            ops = [{"op": "put", "kind": "kv", "name": "k%04d" % (t * 128 + i),
                    "value": "v" * 100} for i in range(128)]
            r = c.request(lead, "POST", "/v1/txn", body=json.dumps({"ops": ops}))
            check(r.status == 200, "txn", r)
        slow = keepalive_conns(lead, 6)
        light = keepalive_conns(lead, 200)
        c.pause(f1)
        c.pause(f2)
        b0 = metric(lead, "raftplane_read_barriers_total")
        first = send_open(lead, request_bytes(lead, "GET", "/v1/kv/k0000"))
        wait_consumed(lead, [first], "read")
        wait_until(lambda: metric(lead, "raftplane_read_barriers_total") > b0, 10,
                   what="barrier B1 to start")
        c.pause(lead)
        for s in slow:
            s.sendall(request_bytes(lead, "GET", "/v1/kv?prefix=&consistency=stale"))
        for s in light:
            s.sendall(request_bytes(lead, "GET", "/v1/kv/k0001"))
        c.resume(f1)
        c.resume(f2)
        wait_until(lambda: unread_at(lead.raft_port), 10,
                   what="the followers' answers to B1 at the stopped leader")
        lead.expect_exit = True
        c.resume(lead)
        ready, _, _ = select.select(slow, [], [], 30)
        lead.proc.send_signal(signal.SIGTERM)
        check(ready, "the leader answered nothing within 30 s of SIGCONT")
        sigterm(c, [lead], "leader releasing queued reads", send=False)
        sigterm_rest(c, "the followers")
    close_open()


def test_read_stream():
    """Linearizable reads streaming on many connections when the leader gets
    SIGTERM (the moment differs each round)."""
    with Cluster(3, name="read-stream") as c:
        for rnd in range(ROUNDS):
            lead = c.leader()
            put(c, lead, "r", "1")
            rs = [Reader(lead, "r") for _ in range(12)]
            for r in rs:
                r.start()
            wait_until(lambda: sum(r.ok for r in rs) >= 200, 60, what="reads to flow")
            try:
                sigterm(c, [lead], "leader serving reads (round %d)" % rnd)
            finally:
                for r in rs:
                    r.stop.set()
                    r.join(timeout=30)
            c.restart(lead)
            c.wait_ready()


def blackhole():
    """A listening socket whose accept queue is full: connects to it hang in
    SYN_SENT (like a partitioned peer). Returns (socket, port)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    _open.append(lsock)
    for _ in range(2):  # fill the queue (backlog 0 holds one, plus one)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        _open.append(s)
    return port


def syn_sent_to(port):
    """Connects to @port that hang in SYN_SENT (state 2)."""
    return [r for r in tcp_table() if r[1] == port and r[2] == 2]


def test_member_add():
    """POST /v1/members for a voter that never starts: SIGTERM to the leader
    while raft waits for it to catch up (and the member's row is written);
    then the same with the new member's raft address a black hole, so the
    leader's connect to it hangs."""
    for hole in (False, True):
        with Cluster(3, name="member-add") as c:
            lead = c.leader()
            rp, hp = pick_ports(2)
            if hole:
                rp = blackhole()
            s = send_open(lead, request_bytes(lead, "POST", "/v1/members", json.dumps(
                {"id": 9, "raft": "127.0.0.1:%d" % rp, "http": "127.0.0.1:%d" % hp})))
            wait_consumed(lead, [s], "member add")

            def listed():
                r = c.request(lead, "GET", "/v1/members")
                return any(m["id"] == 9 for m in r.json()["members"])
            wait_until(listed, 30, what="node 9 in the configuration")
            if hole:
                wait_until(lambda: syn_sent_to(rp), 30, what="a connect to the black hole")
            sigterm(c, [lead], "leader adding a member that never starts%s" % (
                " (connect hanging)" if hole else ""))
            sigterm_rest(c, "the followers")
        close_open()


def test_leadership_transfer():
    """A leadership transfer to a stopped follower, pending when the leader
    gets SIGTERM."""
    with Cluster(3, name="transfer", election_timeout_ms=3000) as c:
        lead = c.leader()
        target = [n for n in c.running() if n is not lead][0]
        c.pause(target)
        s = send_open(lead, request_bytes(lead, "POST", "/v1/members/%d/leadership" % target.id))
        wait_consumed(lead, [s], "transfer")
        sigterm(c, [lead], "leader with a transfer pending")
        sigterm_rest(c, "the followers")
    close_open()


def test_join_in_flight():
    """A node started with --join gets SIGTERM while its join request waits:
    once through a stopped member (GET /v1/members unanswered), once through
    a follower that forwards the POST /v1/members to a stopped leader."""
    with Cluster(3, name="join", election_timeout_ms=3000) as c:
        lead = c.leader()
        f1, f2 = [n for n in c.running() if n is not lead]
        c.pause(f2)
        before = len(unread_at(f2.http_port))
        j = c.add_node_by_join(via=f2, wait=False)
        wait_until(lambda: len(unread_at(f2.http_port)) > before, 30,
                   what="the join request to reach the stopped member")
        sigterm(c, [j], "joining node, GET /v1/members unanswered")
        c.resume(f2)
        c.pause(lead)  # f1 and f2 forward the join to it
        before = len(unread_at(lead.http_port))
        j2 = c.add_node_by_join(via=f1, wait=False)
        wait_until(lambda: len(unread_at(lead.http_port)) > before, 30,
                   what="the forwarded join to reach the stopped leader")
        sigterm(c, [j2, f1], "joining node and the follower forwarding its join")
        sigterm_rest(c, "the others")


def test_removed_member():
    """A member removed from the configuration keeps running with requests
    parked and in flight, then gets SIGTERM; so does the leader that
    removed it."""
    with Cluster(3, name="removed") as c:
        j = c.add_node_by_join()
        lead = c.leader()
        c.wait_applied(j, c.status(lead)["revision"])
        socks = open_requests(j, 5, "GET", "/v1/watch?wait=10m")
        wait_parked(j, socks, "watches")
        r = c.request(lead, "DELETE", "/v1/members/%d" % j.id)
        check(r.status == 200, "remove node %d" % j.id, r)
        j.removed = True
        socks = [send_open(j, request_bytes(j, "PUT", "/v1/kv/gone%d" % i, "v"))
                 for i in range(3)]
        socks.append(send_open(j, request_bytes(j, "GET", "/v1/kv/gone0")))
        wait_consumed(j, socks, "requests")
        sigterm(c, [j, lead], "removed member and the leader")
        sigterm_rest(c, "the others")
    close_open()


def test_snapshot():
    """Snapshots every few entries: SIGTERM while they are taken under
    writes, and while a snapshot is being installed on a follower that
    restarts (the follower stopped, then the leader)."""
    args = ["--snapshot-threshold", "4", "--snapshot-trailing", "2"]
    with Cluster(3, name="snapshot-take", extra_args=args) as c:
        lead = c.leader()
        ws = [Writer(lead, "s%d" % i, size=32 << 10) for i in range(4)]
        for w in ws:
            w.start()
        wait_until(lambda: metric(lead, "raftplane_snapshots_taken_total") >= 3, 60,
                   what="snapshots to be taken")
        sigterm(c, c.nodes.values(), "every node while snapshots are taken")
        for w in ws:
            w.stop.set()
            w.join(timeout=30)
    with Cluster(3, name="snapshot-install", extra_args=args) as c:
        lead = c.leader()
        f = [n for n in c.running() if n is not lead][0]
        sigterm(c, [f], "follower before the install")
        big = "x" * (512 << 10)
        for i in range(24):  # ~12 MB of state: the install takes a while
            put(c, lead, "big%d" % i, big)
        for rnd in range(3):
            c.restart(f)  # waits until it serves HTTP: the install starts now
            sigterm(c, [f], "follower installing a snapshot (round %d)" % rnd)
        c.restart(f)
        sigterm(c, [lead], "leader sending a snapshot")
        sigterm_rest(c, "the others")


def test_requests_after_raft_closed():
    """Requests served after libraft finished closing, before the node is
    freed. libraft 0.15's ioCloseCb frees r->configuration.servers without
    resetting the array, and the node serves HTTP until the close callback
    of its tick timer, which on_raft_closed() closes: GET /v1/members then
    read the freed array (AddressSanitizer: heap-use-after-free in
    api/cluster.c: list_members; /v1/proxies fan-outs in api/fleet.c and
    the --join code in server/main.c read it too).

    A deep pipeline makes a request ready in every loop turn: h2o starts
    the next pipelined request of a connection from the write callback of
    the previous answer, which libuv runs in the next turn's pending phase.
    raft_close() completes from a close callback (the closing phase), so
    the turn after it serves one more request per connection. With the fix
    those answers are 503 unavailable ("this node is shutting down": a
    closing node lists no members), which shows the window was reached."""
    with Cluster(3, name="after-close") as c:
        reached = 0
        for rnd in range(3):
            node = c.nodes[1 + rnd]
            conns = keepalive_conns(node, 4)
            out = {s: request_bytes(node, "GET", "/v1/members") * 3000 for s in conns}
            tail = {s: b"" for s in conns}
            empty, got = [0], [0]

            def pump(timeout):
                # TLS: records already decrypted wait in the SSL object
                ready = [s for s in conns if isinstance(s, ssl.SSLSocket) and s.pending()]
                r, w, _ = select.select(conns, [s for s in conns if out[s]], [],
                                        0 if ready else timeout)
                for s in w:
                    try:
                        out[s] = out[s][s.send(out[s]):]
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                    except OSError:
                        out[s] = b""
                for s in set(r) | set(ready):
                    try:
                        d = s.recv(1 << 16)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        d = b""
                    except OSError:
                        d = b""
                    got[0] += len(d)
                    empty[0] += b'"code":"unavailable"' in tail[s] + d
                    tail[s] = d[-16:]
            for s in conns:
                s.setblocking(False)
            while got[0] < 100000:  # answers flow on every connection
                pump(10)
            node.expect_exit = True
            node.proc.send_signal(signal.SIGTERM)
            while node.proc.poll() is None:
                pump(0.05)
            pump(0)
            sigterm(c, [node], "node serving pipelined GET /v1/members (round %d)" % rnd,
                    send=False)
            log("round %d: %d answers were 503 unavailable (served after raft closed)" %
                (rnd, empty[0]))
            reached += empty[0] > 0
            close_open()
            c.restart(node)
            c.wait_ready()
        check(reached, "no request was served between raft's close and the node's end")


def test_sequential_stop():
    """The end of a jepsen run: the nodes get SIGTERM one after the other,
    so each later one is in an election, reconnecting to peers that are
    gone, when its turn comes; and a node stops while the others were
    SIGKILLed. Repeated: the moment within an election differs each time."""
    with Cluster(3, name="sequential") as c:
        for rnd in range(ROUNDS):
            order = sorted(c.nodes.values(), key=lambda n: (n.id + rnd) % 3)
            if rnd % 2:
                c.kill(order[0])
                order = order[1:]
            for n in order:
                sigterm(c, [n], "sequential stop round %d" % rnd)
            for n in c.nodes.values():
                c.restart(n)
            c.wait_ready()


def test_half_requests():
    """Clients that sent half a request (line, headers, or part of a body)
    and many idle keep-alive connections, on every node, then SIGTERM."""
    with Cluster(3, name="half") as c:
        for n in c.nodes.values():
            socks = [send_open(n, b"GET /v1/sta"),
                     send_open(n, b"PUT /v1/kv/h HTTP/1.1\r\nHost: x\r\nContent-Le"),
                     send_open(n, b"PUT /v1/kv/h HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 1000\r\n\r\nabc"),
                     send_open(n, b"PUT /v1/kv/h HTTP/1.1\r\nHost: x\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n10\r\nabc"),
                     send_open(n, b"POST /v1/subscribe HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 50\r\n\r\n\x0a\x03")]
            idle = []
            for _ in range(100):
                s = send_open(n, request_bytes(n, "GET", "/v1/status"))
                data = b""
                while parse_response(data) is None:
                    d = s.recv(65536)
                    check(d, "%r closed a keep-alive connection" % n)
                    data += d
                idle.append(s)
            wait_consumed(n, socks + idle, "half requests and idle connections")
        sigterm(c, c.nodes.values(), "half requests and idle connections")
    close_open()


if __name__ == "__main__":
    run([test_parked_watches, test_parked_subscriptions, test_parked_rollouts,
         test_write_in_flight, test_write_queue, test_same_turn, test_forward_in_flight,
         test_read_barrier, test_read_queue,
         test_read_stream, test_member_add, test_leadership_transfer, test_join_in_flight,
         test_removed_member, test_snapshot, test_requests_after_raft_closed,
         test_sequential_stop, test_half_requests])
