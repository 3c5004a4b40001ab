#!/usr/bin/env python3
"""Regenerate the seed corpora of tests/fuzz/corpus/ from a real server:
mesh objects PUT through the API (bodies and their canonical forms), the
raw HTTP answers the server sends (for the client's response parser), the
Snapshot a subscription returns (snapshot and cache seeds), SubscribeRequest
encodings, the command frames found in the raft log, and the raft-peers
file. Hand-written seeds for the small parsers are written too.

  RP_SERVER_BIN=build/server/raftplane-server python3 tests/fuzz/make_seeds.py

Seeds are named by content (sha1), so a rerun only adds files."""

import glob
import hashlib
import os
import socket
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import rpharness  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "subscribe"))
from subharness import sub_request as subscribe_request  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")


def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def raw_exchange(addr, request):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(request)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return data


MESH = [
    ("listeners", "edge", '{"address":"127.0.0.1","port":10000,"nodes":["*"]}'),
    ("listeners", "v6", '{"address":"::1","port":10001,"nodes":["edge-1","edge-2"]}'),
    ("clusters", "api", '{"endpoints":[{"address":"127.0.0.1","port":9001},'
     '{"address":"127.0.0.1","port":9002,"weight":3}],"lb_policy":"least_request"}'),
    ("clusters", "ring", '{"lb_policy":"ring_hash","hash_on":"header:x-user-id",'
     '"connect_timeout_ms":1000,"endpoints":[{"address":"::1","port":9003,"weight":1}],'
     '"health_check":{"path":"/healthz","interval_ms":1000,"timeout_ms":500,'
     '"unhealthy_threshold":3,"healthy_threshold":2}}'),
    ("clusters", "empty", '{"lb_policy":"random"}'),
    ("routes", "main", '{"listener":"edge","priority":100,"match":{"prefix":"/api"},'
     '"headers":[{"name":"x-env","exact":"canary"}],'
     '"weighted_clusters":[{"cluster":"api","weight":90},{"cluster":"ring","weight":10}],'
     '"timeout_ms":15000,"retries":{"attempts":2,"on":["connect-failure","5xx"]},'
     '"prefix_rewrite":"/"}'),
    ("routes", "exact", '{"listener":"v6","match":{"path":"/x"},"cluster":"empty"}'),
]
KIND_BYTE = {"clusters": 0, "routes": 1, "listeners": 2}


def from_server():
    with rpharness.Cluster(n=1, name="fuzz-seeds") as cl:
        node = cl.node(1)
        for kind, name, body in MESH:
            r = cl.request(node, "PUT", "/v1/%s/%s" % (kind, name), body.encode())
            rpharness.check(r.status == 200, "PUT %s/%s" % (kind, name), r.body)
            seed("mesh", bytes([KIND_BYTE[kind]]) + body.encode())
            canon = cl.request(node, "GET", "/v1/%s/%s" % (kind, name)).body
            seed("mesh", bytes([KIND_BYTE[kind]]) + canon)
        cl.request(node, "PUT", "/v1/kv/a", b"hello")
        # raw answers: JSON, errors, HEAD, 304, protobuf, metrics
        reqs = [b"GET /v1/kv/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /v1/kv/missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /v1/routes/main HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /v1/nothing HTTP/1.0\r\n\r\n"]
        for node_id in ("edge-1", "other"):
            body = subscribe_request(node_id)
            reqs.append(b"POST /v1/subscribe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        b"Content-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n"
                        % len(body) + body)
        for i, req in enumerate(reqs):
            ans = raw_exchange(node.http, req)
            seed("http_response", bytes([i * 7 % 64]) + ans)
            head, _, body = ans.partition(b"\r\n\r\n")
            if b"/v1/subscribe" in req and head.startswith(b"HTTP/1.1 200"):
                seed("snapshot", body)
                payload = body
                seed("cache", b"\x01" + b"RPSNAP01" + struct.pack("<QI", len(payload),
                     zlib.crc32(payload)) + payload)
        # command frames from the raft log segments ("RPC1" | u32 length | pb)
        frames = 0
        for path in glob.glob(os.path.join(node.data_dir, "**", "*"), recursive=True):
            if not os.path.isfile(path):
                continue
            data = open(path, "rb").read()
            if os.path.basename(path) == "raft-peers":
                seed("peers", data)
            i = data.find(b"RPC1")
            while i >= 0 and frames < 40:
                n = struct.unpack_from("<I", data, i + 4)[0] if i + 8 <= len(data) else 0
                total = (8 + n + 7) & ~7
                if n and i + total <= len(data):
                    seed("command", data[i:i + total])
                    frames += 1
                i = data.find(b"RPC1", i + 4)


def relay_seeds():
    """Raft messages in canonical/raft 0.15's uv encoding, as a peer sends them
    after the handshake (tests/hostile/raft/raftprobe.py builds the same)."""
    q = lambda *v: struct.pack("<%dQ" % len(v), *v)

    def frame(t, header, payload=b""):
        return q(t, len(header)) + header + payload
    heartbeat = frame(1, q(5, 10, 4, 9, 0, 0))
    entries = frame(1, q(5, 10, 4, 9, 2) + q(5) + struct.pack("<B3xI", 1, 16) + q(5) +
                    struct.pack("<B3xI", 2, 8), b"RPC1" + b"\0" * 12 + b"\0" * 8)
    vote = frame(3, q(6, 2, 10, 4, 1))
    vote_result = frame(4, q(5, 1, 0))
    ae_result = frame(2, q(5, 0, 11))
    timeout_now = frame(6, q(5, 10, 4))
    conf = b"\x01" + q(2) + q(1) + b"127.0.0.1:9001\0\x01" + q(2) + b"[::1]:9002\0\x00"
    snap = frame(5, q(5, 10, 4, 8, len(conf)) + conf + q(5), b"12345")
    for flags, step, msgs in ((0, 255, [heartbeat]), (0, 0, [entries, heartbeat]),
                              (16, 1, [timeout_now]), (0, 3, [vote, vote_result, ae_result]),
                              (8, 255, [snap, entries]), (7, 255, [heartbeat]),
                              (0, 255, [frame(9, q(5, 1))])):
        seed("relay", bytes([step, flags]) + b"".join(msgs))


def handwritten():
    relay_seeds()
    cid = "0123456789abcdef0123456789abcdef"
    for r in (subscribe_request("edge-1"), subscribe_request("edge-1", 3, wait_ms=30000),
              subscribe_request("e", 7, nack=(8, "listener edge: bind: in use"), wait_ms=5,
                                cluster_id=cid),
              subscribe_request("n", nack=(0, "x")), b"\x0a\x01a\x28\x80\x80\x01"):
        seed("subscribe_request", r)
        seed("pb_strings", b"\x40" + r)
        seed("pb_strings", b"\xff" + r)
    seed("pb_strings", b"\x02\x09\x01\x02\x03\x04\x05\x06\x07\x08\x15\x01\x02\x03\x04")
    for t in ("/", "/a/b/../c/./d?x=1&y=%zz", "/%41%2f%2F%7e?q", "http://h:80/p?q",
              "https://[::1]:8443", "HTTP://example.com?x", "/a b\x7f\xc3\xa9#f",
              "/../../etc/passwd", "/a/%2e%2E/b", "*", "h:80", "/x?%00\r\n"):
        seed("http_target", t)
    for q in ("/v1/kv/a?wait=10s&index=12", "/v1/watch?wait=1.5m&prefix=a%20b+c",
              "/v1/kv/x?wait=250ms&wait=1", "/v1/routes?limit=18446744073709551615",
              "/v1/kv/%41%42?index=00012&recurse", "/v1/kv/a?wait=0.000001s&index=",
              "/v1/kv/%zz?=&&", "/v1/kv/a?wait=999999999&index=18446744073709551616"):
        seed("api_params", q)
    for s in ("plain ascii", "caf\xc3\xa9".encode("latin-1").decode("latin-1"),
              b"\xe2\x82\xac \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80",
              b"\x1b[31mred\x07\x7f", b"\xff\xfe\xc3"):
        seed("utf8", s)
    for h in ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /x HTTP/1.0\r\n\r\n",
              "POST /v1/kv/a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 3\r\n"
              "Content-Length: 3\r\n\r\nabc",
              "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
              "Content-Length: 5\r\n\r\n0\r\n\r\n",
              "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
              "GET / HTTP/1.1\r\nHost: [::1]:80\r\nX: a\r\n folded\r\n\r\n",
              "GET http://h/p HTTP/1.1\r\nHost: bad host\r\n\r\n",
              "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"):
        seed("http_head", h)
    seed("peers", "2 127.0.0.1:9002\n3 [::1]:9003\n")
    seed("peers", "2 127.0.0.1:9002\n2 127.0.0.1:9004\n0 1.2.3.4:5\nx\n4 host:1\n5 1.2.3.4:5")
    for s in (b"\x00", b"\x05" + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
              b"\x03HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: "
              b"chunked\r\nETag: \"7\"\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
              b"\x3fHTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n\r\nbody until close",
              b"\x01HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
              b"Connection: close\r\n\r\nabcEXTRA"):
        seed("http_response", s)


if __name__ == "__main__":
    handwritten()
    if "--no-server" not in sys.argv:
        from_server()
