#!/usr/bin/env python3
"""Hostile long-poll clients for the API tests (standard library only).

An AbandonedPolls opens N long polls (watch, subscribe or rollout wait) on raw
sockets, each parked by the server, and then leaves: close() sends a FIN
(the client closed), vanish() keeps the sockets open but never reads again.
Also: a hand-rolled protobuf encoder for SubscribeRequest (fields per
net/raftplane.proto) so tests can send anything, including garbage.

Run standalone for manual experiments:
  poll_client.py HOST:PORT watch|subscribe|rollout N [seconds]
"""

import os
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "subscribe"))


import rpharness  # noqa: E402
from subharness import pb_bytes, pb_uint, pb_varint, sub_request  # noqa: E402,F401


def open_for(addr, request, timeout=10):
    """A socket to @addr for the raw @request: TLS when @addr serves TLS,
    with the node certificate a subscribe request's node id needs."""
    return rpharness.open_request_socket(addr, request, timeout)


def http_bytes(addr, method, path, body=b"", ctype="application/x-protobuf"):
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (method, path, addr,
                                                                   len(body))
    if body:
        head += "Content-Type: %s\r\n" % ctype
    return head.encode() + b"\r\n" + body


class AbandonedPolls:
    """N parked long polls on raw sockets."""

    def __init__(self, addr, n, request):
        self.socks = []
        self.early = {}  # socket -> bytes answered() read from a TLS socket
        for _ in range(n):
            s = open_for(addr, request)
            s.sendall(request)
            self.socks.append(s)

    def local_ports(self):
        return [s.getsockname()[1] for s in self.socks]

    def answered(self):
        """How many sockets already have an answer (or EOF) waiting."""
        n = 0
        for s in self.socks:
            s.setblocking(False)
            try:
                if isinstance(s, ssl.SSLSocket):
                    # no MSG_PEEK inside TLS: read (and keep) one byte; a
                    # session ticket alone is no answer (SSLWantReadError)
                    if s in self.early or s.recv(1) is not None:
                        self.early.setdefault(s, b"x")
                        n += 1
                elif s.recv(1, socket.MSG_PEEK) is not None:
                    n += 1
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except OSError:
                n += 1
            s.setblocking(True)
        return n

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def watch_request(addr, after=1, kinds="members", wait="600s"):
    return http_bytes(addr, "GET", "/v1/watch?after=%d&kinds=%s&wait=%s" % (after, kinds, wait))


def subscribe_request(addr, node_id, version, wait_ms=600000):
    return http_bytes(addr, "POST", "/v1/subscribe", sub_request(node_id, version, wait_ms))


def rollout_request(addr, revision, wait="600s"):
    return http_bytes(addr, "GET", "/v1/rollouts/%d?wait=%s" % (revision, wait))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def main():
    addr, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    secs = float(sys.argv[4]) if len(sys.argv) > 4 else 5
    req = {"watch": lambda: watch_request(addr),
           "subscribe": lambda: subscribe_request(addr, "abandoned", 1),
           "rollout": lambda: rollout_request(addr, 1)}[what]()
    polls = AbandonedPolls(addr, n, req)
    time.sleep(secs)
    polls.close()


if __name__ == "__main__":
    main()
