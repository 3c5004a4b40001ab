#!/usr/bin/env python3
"""Clients that leave while their request is on its way to the leader: a
write waiting for its proposal, a linearizable read waiting for its read
barrier, a request forwarded from a follower, a write waiting for a leader
that is not there (and forwarded to a dead one). Each such call is parked on
one queue (api/call.h invariant 5) or holds a ref for a callback it cannot
take back (api/leader.c invariant 3); when the client is gone, the late
result must find the call answered and its state untouched. The servers run
with ASan and asserts: a use after free or a broken invariant ends the node
and fails the test (the harness reads the logs)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from poll_client import AbandonedPolls, fd_count, http_bytes  # noqa: E402
from rpharness import Cluster, check, check_error, log, run, wait_until  # noqa: E402

N = 25  # abandoned requests per kind and node


def leader_requests(addr):
    kv = "application/octet-stream"
    txn = b'{"ops":[{"op":"put","kind":"kv","name":"gone-txn","value":"v"}]}'
    return [http_bytes(addr, "PUT", "/v1/kv/gone", b"v", ctype=kv),
            http_bytes(addr, "GET", "/v1/kv/gone"),
            http_bytes(addr, "POST", "/v1/txn", txn, ctype="application/json"),
            http_bytes(addr, "DELETE", "/v1/members/99")]


def abandon(node, requests):
    for req in requests:
        AbandonedPolls(node.http, N, req).close()


def test_clients_vanish_on_the_way_to_the_leader():
    with Cluster(3, extra_args=["--leader-wait-ms", "1500"]) as c:
        lead = c.leader()
        follower = c.followers()[0]
        r = c.request(lead, "PUT", "/v1/kv/gone", body="v0")
        check(r.status == 200, "first write", r)
        base_fds = {n.id: fd_count(n.proc.pid) for n in (lead, follower)}
        # proposals and read barriers on the leader, forwards from a follower
        for node in (lead, follower):
            abandon(node, leader_requests(node.http))
        for node in (lead, follower):
            for q in ("", "?consistency=stale"):
                wait_until(lambda: c.request(node, "GET", "/v1/kv/gone" + q).body == b"v", 10,
                           what="%r to answer with the abandoned writes' value" % node)
            # 15 s: the leader's count also holds the follower's forwarding
            # connections, which its client pools idle (net/client.c) until
            # h2o's 10 s keep-alive timeout closes them; under load the
            # forwards of the abandoned requests open dozens at once
            wait_until(lambda: fd_count(node.proc.pid) <= base_fds[node.id] + 4, 15,
                       what="%r to release the abandoned requests" % node)
        # no leader: the survivor forwards to the dead leader, then waits
        others = [n for n in c.running() if n is not follower]
        for n in others:
            c.stop(n.id)
        survivor_fds = fd_count(follower.proc.pid)
        abandon(follower, leader_requests(follower.http))
        r = c.request(follower, "PUT", "/v1/kv/late", body="x", timeout=10)
        check_error(r, 503, "no_leader", "a write without a leader")
        wait_until(lambda: fd_count(follower.proc.pid) <= survivor_fds + 4, 10,
                   what="the survivor to release the abandoned requests")
        r = c.request(follower, "GET", "/v1/kv/gone?consistency=stale")
        check(r.status == 200 and r.body == b"v", "the survivor still answers", r)
        log("abandoned %d requests per kind and node; every node stayed up" % N)


if __name__ == "__main__":
    run([test_clients_vanish_on_the_way_to_the_leader])
