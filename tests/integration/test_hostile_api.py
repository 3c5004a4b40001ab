#!/usr/bin/env python3
"""Hostile clients against the admin API (issue 9, items 7, 8, 12-15, 17).

Each test drives real raftplane-server processes with raw sockets and checks
that hostile input gets the documented JSON error shape, changes nothing and
costs bounded memory. Run one test: test_hostile_api.py test_body_flood.
"""

import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (SERVER_BIN, Cluster, TestFailure, check, log, open_socket,  # noqa: E402
                       parse_response, pick_ports, run)

MiB = 1024 * 1024


# ---- helpers -------------------------------------------------------------------

def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise TestFailure("no %s in /proc/%d/status" % (field, pid))


def temp_files(pid, exclude):
    """Files the process holds open under /tmp (h2o spills big bodies there and
    unlinks them at once, so look at its descriptors)."""
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            t = os.readlink(os.path.join(d, fd))
        except OSError:
            continue
        if t.startswith("/tmp/") and not t.startswith(exclude):
            out.append(t)
    return out


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%s %r>" % (self.status, self.body[:200])


def raw(addr, data, timeout=10.0, head_only=False):
    """Send raw bytes, read until the peer closes or one answer is complete."""
    s = open_socket(addr, timeout=timeout)  # TLS when the node serves TLS
    buf = b""
    try:
        s.sendall(data)
        while True:
            r = None if head_only else parse_response(buf)
            if r:
                return Resp(*r)
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            buf += d
    finally:
        s.close()
    r = parse_response(buf, head_only)
    return Resp(*r) if r else None


def req(addr, method, path, body=b"", headers=()):
    """A request with exactly the given header lines (a list of pairs, so a
    header may repeat)."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: x", "Connection: close"]
    names = [k.lower() for k, _ in headers]
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    lines += ["%s: %s" % kv for kv in headers]
    return raw(addr, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body,
               head_only=method == "HEAD")


def check_json_error(r, status, code, what):
    check(r is not None, "%s: no answer" % what)
    check(r.status == status, "%s: expected %d, got %d" % (what, status, r.status), r.body)
    check(r.headers.get("content-type", "").startswith("application/json"),
          "%s: content-type %r" % (what, r.headers.get("content-type")), r.body)
    check(b"\0" not in r.body, "%s: NUL byte in the body" % what, r.body)
    try:
        j = r.json()
    except ValueError:
        raise TestFailure("%s: body is not JSON: %r" % (what, r.body[:300]))
    e = j.get("error") if isinstance(j, dict) else None
    check(isinstance(e, dict) and e.get("code") == code and isinstance(e.get("message"), str)
          and e["message"], "%s: not the error shape with code %s" % (what, code), j)
    return e


def revision(c, node):
    return c.status(node)["revision"]


# ---- item 7: bodies over the limit are refused before they are buffered --------

def flood_one(addr, size, chunked, results, i):
    """Send a huge body while reading; stop sending once the answer is in."""
    s = open_socket(addr, timeout=60)  # TLS when the node serves TLS
    s.setblocking(False)
    # non-blocking TLS: "would block" is SSLWantRead/WriteError, and a
    # decrypted record may wait inside the SSL object (pending())
    again = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
    te = "Transfer-Encoding: chunked" if chunked else "Content-Length: %d" % size
    out = ("PUT /v1/kv/flood%d HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (i, te)).encode()
    piece = b"z" * 65536
    frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece
    sent, buf, pending = 0, b"", out
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if not pending and sent < size:
                pending = frame
                sent += len(piece)
            elif not pending and chunked and sent >= size and sent < size + 1:
                pending, sent = b"0\r\n\r\n", size + 1
            has_pending = isinstance(s, ssl.SSLSocket) and s.pending() > 0
            r, w, _ = select.select([s], [s] if pending else [], [], 0 if has_pending else 5)
            if r or has_pending:
                try:
                    d = s.recv(65536)
                except again:
                    d = None
                except OSError:
                    break
                if d == b"":
                    break
                if d:
                    buf += d
                    if parse_response(buf):
                        break
            if w and pending:
                try:
                    n = s.send(pending)
                    pending = pending[n:]
                except again:
                    pass
                except OSError:
                    pending = b""
                    sent = size + 1  # the server stopped reading: just read the answer
                    s.setblocking(True)
                    s.settimeout(10)
                    try:
                        while not parse_response(buf):
                            d = s.recv(65536)
                            if not d:
                                break
                            buf += d
                    except OSError:
                        pass
                    break
    finally:
        s.close()
    r = parse_response(buf)
    results[i] = Resp(*r) if r else None


def test_body_flood():
    """8 connections with a 60 MiB Content-Length body and 8 with a chunked one
    at once: each gets a JSON 413, the server's memory stays small, it spills
    nothing to /tmp and keeps serving; bodies of exactly 1 MiB still work."""
    with Cluster(n=1, name="flood") as c:
        node = c.node(1)
        pid = node.proc.pid
        a = node.http
        for chunked in (False, True):
            what = "chunked" if chunked else "content-length"
            te = [("Transfer-Encoding", "chunked")] if chunked else []
            body = b"v" * MiB
            data = (b"%x\r\n" % len(body)) + body + b"\r\n0\r\n\r\n" if chunked else body
            r = req(a, "PUT", "/v1/kv/exact-%s" % what, data, te)
            check(r is not None and r.status == 200, "%s: 1 MiB body refused" % what, r)
            over = b"v" * (MiB + 1)
            data = (b"%x\r\n" % len(over)) + over + b"\r\n0\r\n\r\n" if chunked else over
            check_json_error(req(a, "PUT", "/v1/kv/over-%s" % what, data, te), 413, "too_large",
                             "%s: 1 MiB + 1" % what)
        base_hwm = proc_status(pid, "VmHWM")
        base_rss = proc_status(pid, "VmRSS")
        results = [None] * 16
        seen_tmp = []
        threads = [threading.Thread(target=flood_one, args=(a, 60 * MiB, i >= 8, results, i))
                   for i in range(16)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            seen_tmp += temp_files(pid, c.dir + "/")
            time.sleep(0.05)
        for t in threads:
            t.join()
        hwm = proc_status(pid, "VmHWM")
        log("flood: VmHWM %.1f -> %.1f MiB (VmRSS before %.1f MiB), temp files seen: %d" % (
            base_hwm / MiB, hwm / MiB, base_rss / MiB, len(set(seen_tmp))))
        for i, r in enumerate(results):
            check_json_error(r, 413, "too_large", "flood connection %d (%s)" % (
                i, "chunked" if i >= 8 else "content-length"))
        check(not seen_tmp, "the server spilled bodies to temp files", sorted(set(seen_tmp))[:8])
        check(hwm - base_hwm < 64 * MiB, "peak RSS grew by %.1f MiB during the flood" % (
            (hwm - base_hwm) / MiB))
        r = c.request(node, "PUT", "/v1/kv/after", b"still-here")
        check(r.status == 200, "server does not serve after the flood", r)
        r = c.request(node, "GET", "/v1/kv/after")
        check(r.status == 200 and r.body == b"still-here", "read after the flood", r)
        for i in range(16):
            r = c.request(node, "GET", "/v1/kv/flood%d" % i)
            check(r.status == 404, "flood key %d was written" % i, r)


# ---- item 8: memory and disk follow the data, not the number of writes ----------

def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def test_rewrite_big_key():
    """Rewriting one 1 MiB key 400 times keeps every node's RSS and data dir
    within the documented bound; a restarted node has the data."""
    # Measure our memory, not ASan's quarantine of freed blocks (256 MB by
    # default), which would hold every freed 1 MiB buffer.
    asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    os.environ["ASAN_OPTIONS"] = asan + ":quarantine_size_mb=16:malloc_context_size=5"
    try:
        c = Cluster(n=3, name="rewrite")
    finally:
        os.environ["ASAN_OPTIONS"] = asan
    with c:
        lead = c.leader()
        writes = int(os.environ.get("RP_REWRITES", "400"))
        t0 = time.monotonic()
        peak_disk = {n.id: 0 for n in c.running()}
        for i in range(writes):
            value = (b"%08d" % i) * (MiB // 8)
            r = c.request(lead, "PUT", "/v1/kv/big", value, timeout=30)
            check(r.status == 200, "write %d failed" % i, r)
            if i % 10 == 0:
                for n in c.running():
                    peak_disk[n.id] = max(peak_disk[n.id], dir_size(n.data_dir))
        log("%d writes of 1 MiB in %.1fs" % (writes, time.monotonic() - t0))
        last = c.status(lead)["revision"]
        for n in c.running():
            c.wait_applied(n, last)
        limit_rss, limit_disk = 150 * MiB, 100 * MiB
        worst = []
        for n in c.running():
            rss = proc_status(n.proc.pid, "VmHWM")
            disk = max(peak_disk[n.id], dir_size(n.data_dir))
            worst.append((n.id, rss, disk))
            log("node%d: peak RSS %.1f MiB, peak data dir %.1f MiB" % (
                n.id, rss / MiB, disk / MiB))
        for nid, rss, disk in worst:
            check(rss < limit_rss, "node%d: peak RSS %.1f MiB over %d" % (
                nid, rss / MiB, limit_rss // MiB))
            check(disk < limit_disk, "node%d: data dir %.1f MiB over %d" % (
                nid, disk / MiB, limit_disk // MiB))
        expect = (b"%08d" % (writes - 1)) * (MiB // 8)
        f = c.followers()[0]
        c.stop(f.id)
        c.restart(f.id)
        c.wait_applied(f, last, timeout=60)
        r = c.request(f, "GET", "/v1/kv/big?consistency=stale")
        check(r.status == 200 and r.body == expect, "restarted node lost the value",
              r.status, len(r.body))


# ---- item 12: encoded '/' and '..' in a path parameter are data --------------------

def test_encoded_paths():
    with Cluster(n=3, name="paths") as c:
        nodes = sorted(c.running(), key=lambda n: n.id)
        a = c.leader().http
        before = revision(c, c.leader())
        members = len(c.request(nodes[0], "GET", "/v1/members").json()["members"])
        cluster = json.dumps({"lb_policy": "round_robin",
                              "endpoints": [{"address": "10.0.0.1", "port": 80}]})
        cases = [
            ("PUT", "/v1/kv/..%2Fclusters%2Fpwned", cluster, 400, "invalid_argument"),
            ("PUT", "/v1/kv/..%2fclusters%2fpwned", cluster, 400, "invalid_argument"),
            ("PUT", "/v1/kv/%2E%2E%2Fclusters%2Fpwned", cluster, 400, "invalid_argument"),
            ("PUT", "/v1/kv/x%2F..%2F..%2Fclusters%2Fpwned", cluster, 400, "invalid_argument"),
            ("DELETE", "/v1/kv/..%2Fmembers%2F3", "", 400, "invalid_argument"),
            ("DELETE", "/v1/clusters/..%2Fmembers%2F3", "", 400, "invalid_argument"),
            ("POST", "/v1/members/2%2Fleadership", "", 405, "method_not_allowed"),
            ("DELETE", "/v1/members/2%2Fleadership", "", 400, "invalid_argument"),
            ("DELETE", "/v1/members/..%2F3", "", 400, "invalid_argument"),
            ("GET", "/v1/rollouts/..%2F..%2Fstatus", "", 400, "invalid_argument"),
            ("PUT", "/v1/kv/../clusters/pwned", cluster, 400, "invalid_argument"),
            ("PUT", "/v1/kv/./x", "v", 400, "invalid_argument"),
            ("DELETE", "/v1/kv/../members/3", "", 400, "invalid_argument"),
            ("PUT", "/v1/kv%2Fpwned", "v", 404, "no_such_endpoint"),
            ("PUT", "/v1%2Fkv/pwned", "v", 404, "no_such_endpoint"),
            ("PUT", "/v1//kv/pwned", "v", 404, "no_such_endpoint"),
            ("PUT", "/v1/kv/a%00b", "v", 400, "invalid_argument"),
            ("PUT", "/v1/kv/a%zzb", "v", 400, "invalid_argument"),
            ("GET", "/v1/status/..", "", 400, "invalid_argument"),
        ]
        for i, (m, path, body, status, code) in enumerate(cases):
            r = req(nodes[i % 3].http, m, path, body)
            check_json_error(r, status, code, "%s %s" % (m, path))
        for kind in ("clusters", "kv"):
            r = c.request(nodes[0], "GET", "/v1/%s/pwned" % kind)
            check(r.status == 404, "%s/pwned was created" % kind, r)
        check(len(c.request(nodes[0], "GET", "/v1/members").json()["members"]) == members,
              "a member was removed")
        check(revision(c, c.leader()) == before, "state changed (revision %d -> %d)" % (
            before, revision(c, c.leader())))
        # Percent-encoded name characters are still names; absolute-form works.
        r = req(a, "PUT", "/v1/kv/%41bc", "v1")
        check(r.status == 200 and r.json()["key"] == "Abc", "encoded letter in a key", r)
        r = req(a, "GET", "http://%s/v1/kv/Abc" % a)
        check(r.status == 200 and r.body == b"v1", "absolute-form target", r)
        r = req(a, "GET", "http://%s/v1/kv/..%%2Fstatus" % a)
        check_json_error(r, 400, "invalid_argument", "absolute-form with an encoded slash")


# ---- item 13: repeated If-Match field lines are one list ---------------------------

def test_if_match_list():
    with Cluster(n=3, name="ifmatch") as c:
        lead = c.leader()
        nodes = sorted(c.running(), key=lambda n: n.id)
        v = c.request(lead, "PUT", "/v1/kv/k", "one").json()["version"]
        bad = [
            [("If-Match", '"%d"' % v), ("If-Match", '"%d"' % (v + 100))],
            [("If-Match", '"%d"' % (v + 100)), ("If-Match", '"%d"' % v)],
            [("If-Match", '"%d", "%d"' % (v, v + 100))],
            [("If-Match", "*"), ("If-Match", '"%d"' % v)],
            [("If-Match", '"%d"' % v), ("If-None-Match", "*")],
            [("If-None-Match", "*"), ("If-None-Match", '"1"')],
            [("If-Match", 'W/"%d"' % v)],
            [("If-Match", '"%d' % v)],
            [("If-Match", '"+%d"' % v)],
            [("If-Match", '" %d"' % v)],
            [("If-Match", "0x%x" % v)],
            [("If-Match", "")],
            [("If-Match", ",")],
        ]
        rev = revision(c, lead)
        for i, hs in enumerate(bad):
            for m, body in (("PUT", "two"), ("DELETE", "")):
                r = req(nodes[i % 3].http, m, "/v1/kv/k", body, hs)
                check_json_error(r, 400, "invalid_argument", "%s with %r" % (m, hs))
        check(revision(c, lead) == rev, "a refused conditional write changed state")
        r = c.request(lead, "GET", "/v1/kv/k")
        check(r.body == b"one", "value changed", r)
        # Empty list elements are allowed (RFC 9110 5.6.1); one tag still works,
        # also through a follower (the whole list is forwarded).
        f = c.followers()[0]
        r = req(f.http, "PUT", "/v1/kv/k", "two", [("If-Match", ', "%d" ,' % v)])
        check(r is not None and r.status == 200, "a single tag with empty elements", r)
        v2 = r.json()["version"]
        r = req(f.http, "PUT", "/v1/kv/k", "three", [("If-Match", '"%d"' % v)])
        check_json_error(r, 412, "precondition_failed", "stale tag via a follower")
        r = req(f.http, "PUT", "/v1/kv/k", "three", [("If-Match", '"%d"' % v2)])
        check(r is not None and r.status == 200, "current tag via a follower", r)
        # A precondition too long to forward is refused, never dropped.
        rev = revision(c, lead)
        r = req(f.http, "PUT", "/v1/kv/k", "four", [("If-Match", "," * 1500 + '"%d"' % v)])
        check(r is not None and r.status in (400, 412), "a long stale If-Match was dropped", r)
        check(revision(c, lead) == rev, "a long stale If-Match changed state")
        r = req(f.http, "PUT", "/v1/kv/k", "four", [("Content-Type", "a" * 925),
                                                    ("If-Match", '"%d"' % v)])
        check(r is not None and r.status in (400, 412),
              "a stale If-Match behind a long Content-Type was dropped", r)
        check(revision(c, lead) == rev, "a stale If-Match behind a long Content-Type applied")


# ---- item 13: message framing (RFC 9112) ---------------------------------------

def raw_all(addr, data, timeout=5.0):
    """Send raw bytes; return every byte the server sent until it closed."""
    s = open_socket(addr, timeout=timeout)  # TLS when the node serves TLS
    buf = b""
    try:
        s.sendall(data)
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                break
            if not d:
                break
            buf += d
    finally:
        s.close()
    return buf


STATUS_LINE = re.compile(rb"(?:^|\n)HTTP/1\.[01] [0-9]{3} ")


def test_framing():
    """Two Content-Lengths, Transfer-Encoding with Content-Length, two Hosts or
    none: 400 and the connection closed, so nothing after the head can be read
    as a second (smuggled) request."""
    with Cluster(n=1, name="framing") as c:
        node = c.node(1)
        a = node.http
        rev = revision(c, node)
        smuggled = (b"PUT /v1/kv/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nX")
        cases = [
            ("two content-lengths", b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             b"Content-Length: %d\r\n\r\nhello" % (5 + len(smuggled)) + smuggled),
            ("two content-lengths, long first", b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: %d\r\nContent-Length: 5\r\n\r\nhello" % (5 + len(smuggled))
             + smuggled),
            ("te and cl", b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled),
            ("cl and te", b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             b"Content-Length: 4\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled),
            ("two hosts", b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n"
             b"Content-Length: 5\r\n\r\nhello" + smuggled),
            ("no host", b"PUT /v1/kv/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + smuggled),
            ("bad host", b"PUT /v1/kv/a HTTP/1.1\r\nHost: a/b@c\r\nContent-Length: 5\r\n\r\nhello"
             + smuggled),
            ("folded header", b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Content-Length: 99"
             b"\r\nContent-Length: 5\r\n\r\nhello" + smuggled),
        ]
        for what, data in cases:
            out = raw_all(a, data)
            r = parse_response(out)
            check_json_error(Resp(*r) if r else None, 400, "invalid_argument", what)
            check(len(STATUS_LINE.findall(out)) == 1, "%s: more than one answer" % what, out)
        for key in ("a", "smuggled"):
            r = c.request(node, "GET", "/v1/kv/" + key)
            check(r.status == 404, "%s was written" % key, r)
        check(revision(c, node) == rev, "state changed")
        # HTTP/1.1 only: an h2c upgrade is ignored, HTTP/2 prior knowledge refused.
        out = raw_all(a, b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
                      b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"
                      b"\r\n\r\n")
        r = parse_response(out)
        check(r is not None and r[0] == 200 and out.startswith(b"HTTP/1.1 200"),
              "h2c upgrade: not a plain HTTP/1.1 answer", out[:300])
        out = raw_all(a, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 400"), "HTTP/2 prior knowledge accepted", out[:300])
        # Well-formed requests still work, HTTP/1.0 needs no Host, keep-alive
        # keeps working after a good request.
        out = raw_all(a, b"GET /v1/status HTTP/1.0\r\n\r\n")
        check(parse_response(out) and parse_response(out)[0] == 200, "HTTP/1.0 without Host", out)
        out = raw_all(a, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        check(len(STATUS_LINE.findall(out)) == 2 and out.count(b"HTTP/1.1 200") == 2,
              "two pipelined requests", out)


# ---- item 14: every error body is the JSON shape, also with hostile text ---------

def test_error_bodies():
    with Cluster(n=1, name="errors") as c:
        a = c.node(1).http
        member = {"id": 7, "raft": "127.0.0.1:1", "http": "127.0.0.1:2"}
        cases = []
        for pad in range(0, 8):
            key = "x" * (180 + pad) + "\u00e9\u20ac\U0001F600" * 20
            m = dict(member)
            m[key] = 1
            cases.append(("POST", "/v1/members", json.dumps(m, ensure_ascii=False)))
            op = {"op": "put", "kind": "kv", "name": "a", "value": "b", key: 1}
            cases.append(("POST", "/v1/txn", json.dumps({"ops": [op]}, ensure_ascii=False)))
            cl = {"lb_policy": "round_robin", "endpoints": [{"address": "10.0.0.1", "port": 80}],
                  key: 1}
            cases.append(("PUT", "/v1/clusters/c", json.dumps(cl, ensure_ascii=False)))
        for m, path, body in cases:
            r = req(a, m, path, body.encode("utf-8"))
            e = check_json_error(r, 400, "invalid_argument", "%s %s (%d bytes)" % (
                m, path, len(body)))
            check(len(e["message"].encode()) < 512, "message not bounded", e)
        # h2o's own errors are JSON too: broken chunked encoding, bad length.
        r = req(a, "PUT", "/v1/kv/k", b"zz\r\nabc\r\n0\r\n\r\n", [("Transfer-Encoding", "chunked")])
        check_json_error(r, 400, "invalid_argument", "broken chunked encoding")
        r = req(a, "PUT", "/v1/kv/k", b"", [("Transfer-Encoding", "gzip")])
        check_json_error(r, 400, "invalid_argument", "unknown transfer-encoding")
        r = req(a, "PUT", "/v1/kv/k", b"", [("Content-Length", "x1")])
        check_json_error(r, 400, "invalid_argument", "broken content-length")
        r = req(a, "PUT", "/v1/kv/k", b"", [("Content-Length", "2"), ("Expect", "nonsense")])
        check(r is not None and r.status == 417 and r.json()["error"]["code"], "unknown Expect", r)
        r = req(a, "OPTIONS", "*")
        check_json_error(r, 404, "no_such_endpoint", "OPTIONS *")
        check(c.status(c.node(1))["revision"] == 1, "state changed")


# ---- item 15: methods match exactly; 405 lists the allowed ones ------------------

ENDPOINTS = [
    ("/v1/status", "GET, HEAD"),
    ("/v1/members", "GET, HEAD, POST"),
    ("/v1/members/1", "DELETE"),
    ("/v1/members/1/leadership", "POST"),
    ("/v1/kv", "GET, HEAD"),
    ("/v1/kv/k", "GET, HEAD, PUT, DELETE"),
    ("/v1/clusters", "GET, HEAD"),
    ("/v1/routes/r", "GET, HEAD, PUT, DELETE"),
    ("/v1/listeners", "GET, HEAD"),
    ("/v1/txn", "POST"),
    ("/v1/watch?wait=0s", "GET, HEAD"),
    ("/v1/subscribe", "POST"),
    ("/v1/proxies", "GET, HEAD"),
    ("/v1/rollouts/1", "GET, HEAD"),
    ("/healthz", "GET, HEAD"),
    ("/readyz", "GET, HEAD"),
    ("/metrics", "GET, HEAD"),
]


def test_methods():
    with Cluster(n=1, name="methods") as c:
        a = c.node(1).http
        rev = revision(c, c.node(1))
        for path, allow in ENDPOINTS:
            allowed = allow.split(", ")
            wrong = [m[:k] for m in allowed for k in range(1, len(m))] + [
                m.lower() for m in allowed] + [m + "X" for m in allowed] + [
                "PATCH", "OPTIONS", "TRACE", "CONNECT"]
            wrong += [m for m in ("GET", "PUT", "POST", "DELETE") if m not in allowed]
            for m in wrong:
                if m in allowed or not m:
                    continue
                r = req(a, m, path)
                check_json_error(r, 405, "method_not_allowed", "%s %s" % (m, path))
                check(r.headers.get("allow") == allow, "%s %s: Allow %r, expected %r" % (
                    m, path, r.headers.get("allow"), allow))
            if "HEAD" in allowed:
                r = req(a, "HEAD", path)
                check(r is not None and r.status != 405, "HEAD %s refused" % path, r)
                check(r.body == b"", "HEAD %s has a body" % path, r)
        check(revision(c, c.node(1)) == rev, "a refused method changed state")
        r = req(a, "GET", "/v1/nothing")
        check_json_error(r, 404, "no_such_endpoint", "unknown path")


# ---- item 17: numbers are plain decimal; u64 values are never negative ------------

def check_flags():
    """Numeric flags take digits only: strtoul alone accepts ' 5' and '+5'."""
    tmp = tempfile.mkdtemp(prefix="rp-it-flags-", dir="/tmp")
    try:
        rp, hp = ["127.0.0.1:%d" % p for p in pick_ports(2)]
        base = ["--id", "1", "--data-dir", os.path.join(tmp, "d"), "--raft", rp, "--http", hp,
                "--bootstrap", "1=%s@%s" % (rp, hp)]
        for flag, v in (("--election-timeout-ms", "+1000"), ("--election-timeout-ms", " 1000"),
                        ("--snapshot-bytes", "0x100000"), ("--snapshot-bytes", "-1"),
                        ("--heartbeat-ms", "\t100"), ("--snapshot-trailing-bytes", "1e6")):
            p = subprocess.run([SERVER_BIN] + base + [flag, v], capture_output=True, timeout=20)
            check(p.returncode == 2, "%s %r: exit %d" % (flag, v, p.returncode), p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_numbers():
    with Cluster(n=1, name="numbers") as c:
        a = c.node(1).http
        bad_waits = ["0x10ms", "0x10", "1e3", "1e3ms", "inf", "nan", "infinity", "-1s", "+1s",
                     " 1s", "1s ", "1 s", "1.s", ".5s", "1..5s", "1,5s", "10h", "1S", "",
                     "99999999999", "0x0", "1.5.5s", "1_000ms"]
        for w in bad_waits:
            q = w.replace(" ", "%20").replace("+", "%2B")
            for path in ("/v1/watch?wait=%s" % q, "/v1/rollouts/1?wait=%s" % q):
                t0 = time.monotonic()
                r = req(a, "GET", path)
                check_json_error(r, 400, "invalid_argument", "GET %s" % path)
                check(time.monotonic() - t0 < 5, "GET %s waited" % path)
        for w in ("0", "0s", "0ms", "0.05s", "50ms", "0.001m"):
            t0 = time.monotonic()
            r = req(a, "GET", "/v1/watch?wait=%s" % w)
            check(r is not None and r.status == 200, "wait=%s refused" % w, r)
            check(time.monotonic() - t0 < 5, "wait=%s waited too long" % w)
        for q in ("after=0x1", "after=%2B1", "after=-1", "after=1e2", "after=", "after=%201",
                  "after=1&after=2", "wait=1s&wait=0s", "after=99999999999999999999"):
            check_json_error(req(a, "GET", "/v1/watch?" + q), 400, "invalid_argument", q)
        for rev in ("0x1", "+1", "-1", "1e2", "%201", "0", "99999999999999999999"):
            check_json_error(req(a, "GET", "/v1/rollouts/" + rev), 400, "invalid_argument",
                             "rollout " + rev)
        for mid in ("0x1", "+1", "-1", "%201", "0", "9223372036854775808"):
            check_json_error(req(a, "DELETE", "/v1/members/" + mid), 400, "invalid_argument",
                             "member " + mid)
        for addr in ("127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:0x50", "127.0.0.1:-1"):
            m = json.dumps({"id": 9, "raft": addr, "http": "127.0.0.1:80"})
            check_json_error(req(a, "POST", "/v1/members", m), 400, "invalid_argument",
                             "member address %r" % addr)
        check_flags()
        j = c.status(c.node(1))
        for k in ("term", "commit_index", "applied_index", "last_index", "revision", "id"):
            check(isinstance(j[k], (int, float)) and j[k] >= 0, "status %s is %r" % (k, j[k]))


if __name__ == "__main__":
    run([test_body_flood, test_encoded_paths, test_if_match_list, test_framing, test_error_bodies,
         test_methods, test_numbers, test_rewrite_big_key])
