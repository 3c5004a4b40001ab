#!/usr/bin/env python3
"""Raw-socket raft peer for hostile tests: speaks canonical/raft 0.15's uv
wire encoding (preamble: u64 type, u64 header length; header; payload, all
little endian) behind either handshake:

- "old": raft_uv_tcp's (u64 protocol 1, u64 id, u64 address buffer length,
  NUL-padded address), what raftplane accepted before it had its own
  transport;
- "new": raftplane's own (docs/design.md "Raft transport"): 4 bytes "RPRT",
  u8 version 1, u8 flags 0, u16 address length (1..255), u64 sender id,
  u64 receiver id, address.

Standard library only; used as a module by the tests and as a CLI for
poking a node by hand: raftprobe.py HOST:PORT vote --term N --id ID."""

import argparse
import socket
import struct
import sys

APPEND_ENTRIES, APPEND_ENTRIES_RESULT, REQUEST_VOTE, REQUEST_VOTE_RESULT, \
    INSTALL_SNAPSHOT, TIMEOUT_NOW = range(1, 7)
MAX_TERM = 2**64 - 1


def old_handshake(node_id, address):
    a = address.encode() + b"\0"
    a += b"\0" * (-len(a) % 8)
    return struct.pack("<QQQ", 1, node_id, len(a)) + a


def new_handshake(node_id, to_id, address, version=1, declared_len=None):
    a = address.encode()
    n = len(a) if declared_len is None else declared_len
    return b"RPRT" + struct.pack("<BBHQQ", version, 0, n & 0xFFFF, node_id, to_id) + a


def handshake(kind, node_id, to_id, address):
    if kind == "old":
        return old_handshake(node_id, address)
    return new_handshake(node_id, to_id, address)


def frame(mtype, header, payload=b""):
    return struct.pack("<QQ", mtype, len(header)) + header + payload


def request_vote(term, candidate, last_index=0, last_term=0, disrupt=True, pre_vote=False):
    flags = (1 if disrupt else 0) | (2 if pre_vote else 0)
    return frame(REQUEST_VOTE, struct.pack("<QQQQQ", term, candidate, last_index, last_term, flags))


def timeout_now(term, last_index, last_term):
    return frame(TIMEOUT_NOW, struct.pack("<QQQ", term, last_index, last_term))


def append_entries_heartbeat(term, prev_index=0, prev_term=0, commit=0):
    # term, prev index, prev term, commit, n_entries=0, 8 bytes of slack
    return frame(APPEND_ENTRIES, struct.pack("<QQQQQQ", term, prev_index, prev_term, commit, 0, 0))


def connect(addr, source_ip=None, timeout=5.0):
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source_ip:
        s.bind((source_ip, 0))
    s.connect((host, int(port)))
    return s


def send_and_linger(addr, data, source_ip=None, linger=0.3):
    """Connect, send @data, wait up to @linger s for the peer to close.
    Returns True when the peer closed (EOF/reset) within that time."""
    s = connect(addr, source_ip)
    try:
        try:
            s.sendall(data)
        except OSError:
            return True
        s.settimeout(linger)
        try:
            return s.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:
            return True
    finally:
        s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("addr")
    p.add_argument("what", choices=["vote", "timeout-now"])
    p.add_argument("--id", type=int, default=99)
    p.add_argument("--to", type=int, default=1, help="receiver's raft id")
    p.add_argument("--term", type=int, default=MAX_TERM)
    p.add_argument("--handshake", choices=["old", "new"], default="new")
    p.add_argument("--source", default=None)
    a = p.parse_args()
    msg = request_vote(a.term, a.id) if a.what == "vote" else timeout_now(a.term, 0, 0)
    closed = send_and_linger(a.addr, handshake(a.handshake, a.id, a.to, "127.0.0.1:1") + msg,
                             a.source, 1.0)
    print("peer closed the connection" if closed else "connection left open")


if __name__ == "__main__":
    sys.exit(main())
