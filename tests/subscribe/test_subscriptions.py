#!/usr/bin/env python3
"""The proxy subscription protocol against real servers and real test
subscribers: scoping, wake-ups, versions across a server kill, NACKs in the
fleet view, rollouts with wait, bad requests, 500 concurrent subscribers."""

import json
import os
import signal
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from subharness import (Subscriber, check, check_monotonic, cluster_obj, listener_obj,  # noqa: E402
                        log, pb_varint, put, route_obj, rpharness, stop_all, sub_request,
                        wait_until)
from rpharness import Cluster, check_error, run  # noqa: E402


def fixture(c):
    """a, b clusters; l1 for edge-1, l2 for every node, l3 for edge-2."""
    n = c.node(1)
    put(c, n, "/v1/clusters/a", cluster_obj(9001))
    put(c, n, "/v1/clusters/b", cluster_obj(9002))
    put(c, n, "/v1/listeners/l1", listener_obj(10001, ["edge-1"]))
    put(c, n, "/v1/listeners/l2", listener_obj(10002, ["*"]))
    put(c, n, "/v1/listeners/l3", listener_obj(10003, ["edge-2"]))
    put(c, n, "/v1/routes/r1", route_obj("l1", "a", 5))
    put(c, n, "/v1/routes/r2", route_obj("l3", "b", 5))
    return put(c, n, "/v1/routes/r3", route_obj("l2", "a", 9))


def test_scoping_and_wakeups():
    with Cluster(3) as c:
        last = fixture(c)
        servers = list(c.nodes.values())
        s1 = Subscriber(servers, node_id="edge-1")
        s2 = Subscriber(servers, node_id="edge-2")
        s9 = Subscriber(servers, node_id="edge-9")
        s1.wait_version(last, "edge-1")
        s2.wait_version(7, "edge-2")
        s9.wait_version(8, "edge-9")
        e1, e2, e9 = s1.latest(), s2.latest(), s9.latest()
        check(e1["listeners"] == ["l1", "l2"] and e1["routes"] == ["r3", "r1"]
              and e1["clusters"] == ["a"], "edge-1 gets l1+l2, r3 before r1, cluster a", e1)
        check(e2["listeners"] == ["l2", "l3"] and sorted(e2["clusters"]) == ["a", "b"],
              "edge-2 gets l2+l3 and clusters a, b", e2)
        check(e9["listeners"] == ["l2"] and e9["routes"] == ["r3"], "edge-9 only gets *", e9)
        n1 = len(s1.snapshots())
        # a change for edge-2 only must not wake edge-1
        v = put(c, c.node(2), "/v1/clusters/b", cluster_obj(9102))
        s2.wait_version(v, "edge-2")
        put(c, c.node(3), "/v1/kv/unrelated", {"x": 1})
        time.sleep(0.5)
        check(len(s1.snapshots()) == n1, "edge-1 must not be woken by changes outside it",
              s1.snapshots()[n1:])
        # removing a route from edge-1 wakes it with a version = that revision
        r = c.request(c.node(3), "DELETE", "/v1/routes/r1")
        check(r.status == 200, "delete r1", r)
        rev = r.json()["revision"]
        s1.wait_version(rev, "edge-1")
        check(s1.latest()["version"] == rev and s1.latest()["routes"] == ["r3"],
              "edge-1 version is the delete's revision and r1 is gone", s1.latest())
        for s, node in ((s1, "edge-1"), (s2, "edge-2"), (s9, "edge-9")):
            check_monotonic(s, node)
        stop_all()


def attached_server(c, node_id, via):
    r = c.request(via, "GET", "/v1/proxies")
    for p in r.json()["proxies"]:
        if p["node_id"] == node_id and p["connected"]:
            return p["server"]
    return None


def test_failover_keeps_versions_monotonic():
    with Cluster(3, election_timeout_ms=400, heartbeat_ms=50) as c:
        servers = list(c.nodes.values())
        put(c, c.node(1), "/v1/clusters/a", cluster_obj(9001))
        v = put(c, c.node(1), "/v1/listeners/l", listener_obj(10001, ["edge-1"]))
        sub = Subscriber(servers, node_id="edge-1", extra=["--wait-ms", "2000"])
        sub.wait_version(v)
        for round_ in range(2):
            alive = [n for n in c.running()]
            srv = wait_until(lambda: attached_server(c, "edge-1", alive[0]), 10,
                             what="edge-1 attached")
            victim = [n for n in alive if n.http == srv][0]
            log("round %d: edge-1 attached to %r; SIGKILL it" % (round_, victim))
            c.kill(victim.id)
            other = [n for n in c.running()][0]
            last = v
            for i in range(5):
                r = c.try_request(other, "PUT", "/v1/routes/r%d" % i,
                                  body=json.dumps(route_obj("l", "a", i)), timeout=15)
                if r is not None and r.status == 200:
                    last = r.json()["version"]
            sub.wait_version(last, timeout=30)
            check_monotonic(sub)
            c.restart(victim.id)
            c.wait_ready()
            v = last
        log("versions seen: %s" % [s["version"] for s in sub.snapshots()])
        stop_all()


def test_nack_and_rollouts():
    with Cluster(3) as c:
        servers = list(c.nodes.values())
        put(c, c.node(1), "/v1/clusters/a", cluster_obj(9001))
        good = [Subscriber(servers, node_id="good-%d" % i) for i in range(3)]
        bad = Subscriber(servers, node_id="bad-1", extra=["--nack-all"])
        for s in good + [bad]:
            wait_until(lambda s=s: s.latest() is not None, 10, what="first snapshot")
        v = put(c, c.node(2), "/v1/listeners/all", listener_obj(10000, ["*"]))
        t0 = time.monotonic()
        r = c.request(c.node(3), "GET", "/v1/rollouts/%d?wait=10s" % v, timeout=15)
        dt = time.monotonic() - t0
        j = r.json()
        log("rollout %d after %.0f ms: %s" % (v, dt * 1000, j))
        check(r.status == 200 and j["acked"] == 3 and j["nacked"] == 1 and j["pending"] == 0,
              "3 acked, 1 nacked", j)
        check(j["nacks"][0]["node_id"] == "bad-1" and "refuses" in j["nacks"][0]["error"],
              "the nack names bad-1 with its error", j)
        check(dt < 5, "rollout with wait answers as soon as nothing is pending")
        fleet = c.request(c.node(1), "GET", "/v1/proxies").json()["proxies"]
        entry = [p for p in fleet if p["node_id"] == "bad-1"][0]
        check(entry["nack"] and entry["nack"]["version"] == v, "bad-1's nack in /v1/proxies",
              entry)
        check(entry["acked_version"] is None, "bad-1 never acked", entry)
        # a paused subscriber stays pending until the wait ends
        good[0].signal(signal.SIGSTOP)
        v2 = put(c, c.node(1), "/v1/listeners/all2", listener_obj(10001, ["*"]))
        t0 = time.monotonic()
        j = c.request(c.node(1), "GET", "/v1/rollouts/%d?wait=2s" % v2, timeout=10).json()
        dt = time.monotonic() - t0
        check(j["pending"] == 1 and j["pending_nodes"] == ["good-0"] and 1.8 < dt < 4,
              "paused good-0 is pending after the full wait", j, dt)
        good[0].signal(signal.SIGCONT)
        j = c.request(c.node(1), "GET", "/v1/rollouts/%d?wait=10s" % v2, timeout=15).json()
        check(j["pending"] == 0 and j["acked"] == 3, "good-0 acks after resuming", j)
        # a revision that touches no proxy is acked by all at once
        v3 = put(c, c.node(1), "/v1/clusters/unused", cluster_obj(9999))
        j = c.request(c.node(2), "GET", "/v1/rollouts/%d?wait=5s" % v3, timeout=10).json()
        check(j["acked"] == 3 and j["nacked"] == 1 and j["pending"] == 0,
              "untouched nodes count as acked (bad-1 as nacked: it refused its current version)",
              j)
        stop_all()


def test_bad_requests_do_not_disturb_others():
    with Cluster(3) as c:
        servers = list(c.nodes.values())
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        watcher = Subscriber(servers, node_id="steady")
        watcher.wait_version(v)
        hdr = {"Content-Type": "application/x-protobuf"}
        cases = [
            (b"\xff\xff\xff", 400, "invalid_argument", "garbage body"),
            (b"", 400, "invalid_argument", "empty body"),
            (sub_request("bad id!"), 400, "invalid_argument", "bad node id"),
            (sub_request("x" * 129), 400, "invalid_argument", "node id too long"),
            (sub_request("edge", version=v + 1000), 503, "unavailable",
             "ack of a version beyond the server's revision (server cannot catch up)"),
            (sub_request("edge", nack=(1, "")), 400, "invalid_argument", "nack without error"),
            (sub_request("edge", wait_ms=700000, version=0), 400, "invalid_argument",
             "wait over 10 minutes"),
            (b"\x0a\x01a" + b"\x22" + pb_varint(70000) + b"e" * 70000, 413, "too_large",
             "oversized request"),
        ]
        for body, status, code, what in cases:
            r = c.request(n, "POST", "/v1/subscribe", body=body, headers=hdr, timeout=15)
            check_error(r, status, code, what)
        r = c.request(n, "GET", "/v1/subscribe")
        check_error(r, 405, "method_not_allowed", "GET /v1/subscribe")
        # an ACK for a version the node never had, once the server is past it
        put(c, n, "/v1/kv/bump", "x")
        r = c.request(n, "POST", "/v1/subscribe", body=sub_request("edge-x", version=v + 1),
                      headers=hdr)
        check_error(r, 400, "invalid_argument", "ack of a version never sent")
        # the good subscriber was not disturbed
        v2 = put(c, n, "/v1/listeners/all2", listener_obj(10001, ["*"]))
        watcher.wait_version(v2)
        # a valid exchange by hand: first contact gets the snapshot at once
        c.wait_applied(n, v2)
        r = c.request(n, "POST", "/v1/subscribe", body=sub_request("manual"), headers=hdr)
        check(r.status == 200 and r.headers.get("x-raftplane-version") == str(v2),
              "first contact answers the current snapshot", r.status, r.headers)
        t0 = time.monotonic()
        r = c.request(n, "POST", "/v1/subscribe",
                      body=sub_request("manual", version=v2, wait_ms=300), headers=hdr)
        check(r.status == 304 and time.monotonic() - t0 >= 0.25, "304 after the wait", r)
        for srv in c.running():
            check(srv.alive(), "%r still alive" % srv)
        stop_all()


def test_poll_parked_while_behind():
    """A poll whose ACK is ahead of this server parks until the server gets
    there (the only polls a kv write has to look at: api/subscribe.c counts
    them). The kv writes that bring the server to that revision answer it at
    once (400: that version was never sent to the node), not at its
    deadline (503); an up-to-date poll parked beside it is not woken."""
    with Cluster(3) as c:
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        c.wait_applied(n, v)
        hdr = {"Content-Type": "application/x-protobuf"}
        got = {}

        def poll(name, body):
            r = c.request(n, "POST", "/v1/subscribe", body=body, headers=hdr, timeout=20)
            got[name] = (time.monotonic(), r)
        steady = threading.Thread(target=poll, args=(
            "steady", sub_request("steady", version=v, wait_ms=4000)))
        ahead = threading.Thread(target=poll, args=(
            "ahead", sub_request("edge-a", version=v + 3, wait_ms=8000)))
        t0 = time.monotonic()
        steady.start()
        ahead.start()
        time.sleep(0.5)
        check(not got, "both polls parked", got)
        for i in range(3):
            put(c, n, "/v1/kv/behind-%d" % i, "x")
        t_written = time.monotonic()
        ahead.join(15)
        at, r = got["ahead"]
        check_error(r, 400, "invalid_argument", "ack of a version never sent, once reached")
        check(at - t_written < 2, "answered %.1fs after the server got there" % (at - t_written))
        steady.join(15)
        at, r = got["steady"]
        check(r.status == 304 and at - t0 >= 3.8, "the up-to-date poll waited for its "
              "deadline (%s after %.1fs)" % (r.status, at - t0))
        log("behind poll answered %.2fs after the catch-up; steady poll untouched" % (
            got["ahead"][0] - t_written))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def counter(c, node, name):
    r = c.request(node, "GET", "/metrics")
    for ln in r.body.decode().splitlines():
        if ln.startswith(name + " "):
            return int(float(ln.split()[1]))
    raise AssertionError("no %s in /metrics" % name)


def test_500_subscribers_and_propagation():
    # one process plays 500 proxies from one address: no per-address limit
    with Cluster(3, extra_args=["--max-conns-per-ip", "0"]) as c:
        servers = list(c.nodes.values())
        n = c.node(1)
        put(c, n, "/v1/clusters/a", cluster_obj(9001))
        v0 = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        before = {s.id: rss_kib(s.proc.pid) for s in servers}
        many = Subscriber(servers, prefix="fleet", count=500, extra=["--quiet"])
        wait_until(lambda: c.request(n, "GET", "/v1/rollouts/%d" % v0).json()["acked"] == 500,
                   30, what="500 subscribers on version %d" % v0)
        enc0 = {s.id: counter(c, s, "raftplane_proxy_snapshot_encodings_total") for s in servers}
        sent0 = {s.id: counter(c, s, "raftplane_proxy_snapshots_sent_total") for s in servers}
        v1 = put(c, c.node(2), "/v1/routes/r", route_obj("all", "a"))
        t0 = time.monotonic()
        j = c.request(c.node(3), "GET", "/v1/rollouts/%d?wait=20s" % v1, timeout=30).json()
        dt = time.monotonic() - t0
        check(j["acked"] == 500 and j["pending"] == 0, "all 500 subscribers acked", j)
        # one encoding per server for the 500 node ids under "*" (shared
        # encodings, docs/design.md); every one of them got its own snapshot
        enc = {s.id: counter(c, s, "raftplane_proxy_snapshot_encodings_total") - enc0[s.id]
               for s in servers}
        sent = sum(counter(c, s, "raftplane_proxy_snapshots_sent_total") - sent0[s.id]
                   for s in servers)
        log("revision %d: encodings per server %s, snapshots sent %d" % (v1, enc, sent))
        check(all(e <= 1 for e in enc.values()) and sent >= 500, "one shared encoding",
              enc, sent)
        after = {s.id: rss_kib(s.proc.pid) for s in servers}
        log("500 subscribers acked revision %d within %.0f ms (rollout poll granularity 50 ms)"
            % (v1, dt * 1000))
        log("server RSS KiB before/after 500 subscribers: %s / %s" % (before, after))
        many.stop()
        # propagation: 100 subscribers, 30 changes; time from the write's ack
        # until every subscriber received it (each ACKs right after)
        hundred = Subscriber(servers, prefix="p", count=100)
        wait_until(lambda: len({x["node"] for x in hundred.snapshots()}) == 100, 20,
                   what="100 subscribers connected")
        lat = []
        for i in range(30):
            r = c.request(c.node(1 + i % 3), "PUT", "/v1/clusters/a",
                          body=json.dumps(cluster_obj(9100 + i)))
            t_ack = time.time() * 1000
            rev = r.json()["version"]

            def all_have():
                seen = {}
                for x in hundred.snapshots():
                    if x["version"] >= rev and x["node"] not in seen:
                        seen[x["node"]] = x["t"]
                return seen if len(seen) == 100 else None
            seen = wait_until(all_have, 10, what="100 subscribers at %d" % rev)
            lat.append(max(seen.values()) - t_ack)
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        log("propagation to 100 subscribers over 30 changes: p50 %.1f ms, p99 %.1f ms, "
            "max %.1f ms" % (p50, p99, lat[-1]))
        print("propagation_100_p50_ms=%.1f propagation_100_p99_ms=%.1f" % (p50, p99))
        stop_all()


def test_subscriber_limit_bounds_memory():
    """A fleet larger than --max-subscribers reconnecting at once: the server
    parks at most that many polls and turns the rest away with 503."""
    with Cluster(3, extra_args=["--max-subscribers", "50"]) as c:
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        c.wait_applied(n, v)
        sub = Subscriber([n], prefix="crowd", count=120, extra=["--quiet", "--wait-ms", "5000"])
        time.sleep(3)
        local = c.request(n, "GET", "/v1/proxies?scope=local").json()["proxies"]
        parked = sum(1 for p in local if p["connected"])
        log("%d subscribers known, %d polls parked (limit 50)" % (len(local), parked))
        check(parked <= 50, "at most 50 polls parked", parked)
        check(len(local) == 120, "every subscriber got its first snapshot", len(local))
        check(all(p["acked_version"] == v for p in local), "and acked it")
        check(n.alive(), "server alive")
        sub.stop()


if __name__ == "__main__":
    run([test_scoping_and_wakeups, test_failover_keeps_versions_monotonic,
         test_nack_and_rollouts, test_bad_requests_do_not_disturb_others, test_poll_parked_while_behind,
         test_500_subscribers_and_propagation, test_subscriber_limit_bounds_memory])
