#!/usr/bin/env python3
"""Membership: join a 4th node with --join, remove a node, transfer
leadership, and bad membership requests."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (Cluster, SERVER_BIN, check, check_error, log, pick_ports,  # noqa: E402
                       run, wait_until)


def members(c, node):
    r = c.request(node, "GET", "/v1/members")
    check(r.status == 200, "GET /v1/members on %r" % c.node(node), r)
    return sorted((m["id"], m["raft"], m["http"], m["role"]) for m in r.json()["members"])


def expected(nodes):
    return sorted((n.id, n.raft, n.http, "voter") for n in nodes)


def wait_members(c, nodes, timeout=15):
    want = expected(nodes)
    for n in nodes:
        wait_until(lambda: members(c, n) == want, timeout,
                   what="%r to list members %s (has %s)" % (n, [w[0] for w in want],
                                                           [m[0] for m in members(c, n)]))


def bad_member_requests(c):
    lead = c.leader()
    fol = [n for n in c.running() if n is not lead]
    before = members(c, lead)
    rev0 = c.status(lead)["revision"]
    free_raft, free_http = ["127.0.0.1:%d" % p for p in pick_ports(2)]
    n1, n2 = c.nodes[1], c.nodes[2]

    check_error(c.request(fol[0], "DELETE", "/v1/members/99"), 404, "not_found", "remove unknown id")
    check_error(c.request(fol[1], "POST", "/v1/members/99/leadership"), 404, "not_found",
                "transfer to unknown id")
    check_error(c.request(fol[0], "DELETE", "/v1/members/%d" % lead.id), 409, "conflict",
                "remove the leader itself")
    check_error(c.request(lead, "DELETE", "/v1/members/%d" % lead.id), 409, "conflict",
                "remove the leader itself, sent to the leader")
    check_error(c.request(fol[0], "DELETE", "/v1/members/abc"), 400, "invalid_argument",
                "remove non-numeric id")
    check_error(c.request(fol[0], "DELETE", "/v1/members/0"), 400, "invalid_argument",
                "remove id 0")
    for body, what in [
        ({"id": n1.id, "raft": free_raft, "http": free_http, "role": "voter"}, "duplicate id"),
        ({"id": 50, "raft": n2.raft, "http": free_http, "role": "voter"}, "raft address in use"),
        ({"id": 51, "raft": free_raft, "http": n2.http, "role": "voter"}, "http address in use"),
        ({"id": 52, "raft": free_raft, "http": lead.http, "role": "voter"},
         "http address of the leader"),
        ({"id": 53, "raft": lead.raft, "http": free_http}, "raft address of the leader"),
    ]:
        for node in (fol[0], lead):
            check_error(c.request(node, "POST", "/v1/members", body=body), 409, "conflict",
                        "join with %s via %r" % (what, node))
    for body, what in [
        (b"{not json", "invalid JSON"),
        (b"", "empty body"),
        (b"[]", "array body"),
        ({"id": "7", "raft": free_raft, "http": free_http}, "string id"),
        ({"id": 0, "raft": free_raft, "http": free_http}, "id 0"),
        ({"id": -3, "raft": free_raft, "http": free_http}, "negative id"),
        ({"id": 7.5, "raft": free_raft, "http": free_http}, "fractional id"),
        ({"raft": free_raft, "http": free_http}, "missing id"),
        ({"id": 7, "http": free_http}, "missing raft"),
        ({"id": 7, "raft": free_raft}, "missing http"),
        ({"id": 7, "raft": "localhost", "http": free_http}, "raft without port"),
        ({"id": 7, "raft": free_raft, "http": "127.0.0.1:0"}, "http port 0"),
        ({"id": 7, "raft": free_raft, "http": "127.0.0.1:65536"}, "http port 65536"),
        ({"id": 7, "raft": "host.example:80", "http": free_http}, "raft not an IP"),
        ({"id": 7, "raft": free_raft, "http": free_http, "role": "boss"}, "bad role"),
        ({"id": 7, "raft": free_raft, "http": free_http, "role": 1}, "role not a string"),
        ({"id": 7, "raft": free_raft, "http": free_http, "extra": 1}, "unknown field"),
    ]:
        check_error(c.request(fol[1], "POST", "/v1/members", body=body), 400, "invalid_argument",
                    "POST /v1/members with %s" % what)
    check_error(c.request(fol[1], "PUT", "/v1/members"), 405, "method_not_allowed", "PUT /v1/members")
    check_error(c.request(fol[1], "GET", "/v1/members/%d/leadership" % lead.id), 405,
                "method_not_allowed", "GET leadership")
    check_error(c.request(fol[1], "POST", "/v1/members/%d" % fol[0].id), 405,
                "method_not_allowed", "POST /v1/members/{id}")
    check(members(c, lead) == before, "bad member requests changed membership")
    check(c.status(lead)["revision"] == rev0, "bad member requests changed the revision")
    check(c.leader() is lead, "bad member requests moved the leadership")

    # a process started with --join and an id that is already a member is
    # refused and exits non-zero with a reason
    rp, hp = pick_ports(2)
    logp = os.path.join(c.dir, "dup-join.log")
    with open(logp, "wb") as lf:
        p = subprocess.Popen([SERVER_BIN, "--id", str(n1.id), "--data-dir",
                              os.path.join(c.dir, "dup-join"), "--raft", "127.0.0.1:%d" % rp,
                              "--http", "127.0.0.1:%d" % hp, "--join", fol[0].http] +
                             c.tls_args(n1.id, http="127.0.0.1:%d" % hp),
                             stdout=lf, stderr=lf, stdin=subprocess.DEVNULL, env=c.env)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise
    text = open(logp, errors="replace").read()
    log("--join with a duplicate id: exit %s, %r" % (rc, text.strip().splitlines()[-1:]))
    check(rc != 0, "--join with a duplicate id exited 0", text)
    check("409" in text or "refused" in text or "conflict" in text,
          "--join with a duplicate id: no reason logged", text)
    check(members(c, lead) == before, "the refused join changed membership")


def test_join_during_election():
    """POST /v1/members sent while the cluster is still electing its first
    leader, with the http address of a bootstrap member: must be 409 conflict
    and change nothing (the bootstrap members' addresses are in use even
    before the first leader has recorded them). The timing decides whether a
    request lands before the first leader records the members, so this runs
    on 3 fresh clusters."""
    for attempt in range(3):
        join_during_election(attempt)


def join_during_election(attempt):
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="early-join-%d" % (attempt + 1),
                 wait_ready=False) as c:
        results = {}
        ports = pick_ports(3)

        def post(i, node):
            body = {"id": 60 + i, "raft": "127.0.0.1:%d" % ports[i], "http": c.nodes[2].http,
                    "role": "voter"}
            t0 = time.monotonic()
            results[node.id] = (c.try_request(node, "POST", "/v1/members", body=body, timeout=20),
                                time.monotonic() - t0)
        ths = [threading.Thread(target=post, args=(i, n))
               for i, n in enumerate(sorted(c.nodes.values(), key=lambda n: n.id))]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        c.wait_ready(timeout=30)
        for nid, (r, dt) in sorted(results.items()):
            log("early join with node2's http address via node%d: %s in %.2fs" % (
                nid, r.status if r else None, dt))
        want = expected(c.nodes.values())
        got = members(c, c.leader())
        check(got == want, "a join with an http address already in use changed membership",
              "members: %s" % got)
        for nid, (r, dt) in sorted(results.items()):
            check(r is not None, "no answer via node%d" % nid)
            check_error(r, 409, "conflict", "early join with node2's http address via node%d" % nid)


def test_membership():
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="membership") as c:
        wait_members(c, list(c.nodes.values()))
        # the first leader records the members' addresses (revision 1); the
        # race before that is test_join_during_election's business
        for n in c.running():
            c.wait_applied(n, 1)
        bad_member_requests(c)

        # -- join a 4th node via a follower
        via = c.followers()[0]
        t0 = time.monotonic()
        n4 = c.add_node_by_join(via=via)
        c.wait_ready(timeout=20)
        log("node4 joined via %r in %.2fs" % (via, time.monotonic() - t0))
        all4 = list(c.nodes.values())
        wait_members(c, all4)
        s4 = c.status(n4)
        check(s4["leader"] and s4["leader"]["id"] == c.leader().id, "node4 does not know the leader", s4)
        r = c.request(c.nodes[1], "PUT", "/v1/kv/joined", body="hello-4")
        check(r.status == 200, "write after join", r)
        g = c.request(n4, "GET", "/v1/kv/joined")
        check(g.status == 200 and g.body == b"hello-4", "linearizable read on node4", g)
        r = c.request(n4, "PUT", "/v1/kv/from4", body="x")
        check(r.status == 200, "write through node4", r)
        for n in all4:
            g = c.request(n, "GET", "/v1/kv/from4")
            check(g.status == 200 and g.body == b"x", "read of a node4 write on %r" % n, g)
        # joining the same node again is refused (it is already a member)
        check_error(c.request(via, "POST", "/v1/members",
                              body={"id": n4.id, "raft": n4.raft, "http": n4.http, "role": "voter"}),
                    409, "conflict", "second join of node4")

        # -- remove a follower (not node4), through node4
        lead = c.leader()
        victim = [n for n in c.running() if n is not lead and n is not n4][0]
        r = c.request(n4, "DELETE", "/v1/members/%d" % victim.id)
        check(r.status == 200, "DELETE /v1/members/%d" % victim.id, r)
        victim.removed = True
        c.stop(victim)
        rest = [n for n in all4 if n is not victim]
        wait_members(c, rest)
        check_error(c.request(n4, "DELETE", "/v1/members/%d" % victim.id), 404, "not_found",
                    "removing a removed member")
        for i, n in enumerate(rest):
            r = c.request(n, "PUT", "/v1/kv/after-remove-%d" % i, body="ok")
            check(r.status == 200, "write via %r after removal" % n, r)
        for n in rest:
            g = c.request(n, "GET", "/v1/kv/after-remove-0")
            check(g.body == b"ok", "read after removal on %r" % n, g)
        log("removed node%d; members now %s" % (victim.id, [n.id for n in rest]))

        # -- transfer leadership to a chosen follower (node4 if it is not leader)
        lead = c.leader()
        target = n4 if n4 is not lead else [n for n in rest if n is not lead][0]
        sender = [n for n in rest if n is not target][0]
        t0 = time.monotonic()
        r = c.request(sender, "POST", "/v1/members/%d/leadership" % target.id, timeout=15)
        ms = (time.monotonic() - t0) * 1000
        check(r.status == 200, "transfer leadership to node%d via %r" % (target.id, sender), r)
        log("leadership transfer node%d -> node%d answered in %.0f ms: %s" % (
            lead.id, target.id, ms, r.body.strip()))
        st = c.status(target)
        check(st["state"] == "leader", "node%d is not leader right after the 200" % target.id, st)
        for n in rest:
            wait_until(lambda: (c.status(n).get("leader") or {}).get("id") == target.id, 10,
                       what="%r to see node%d as leader" % (n, target.id))
        wait_until(lambda: c.status(target)["leader_ready"], 10, what="the new leader to be ready")
        r = c.request(lead, "PUT", "/v1/kv/after-transfer", body="ok")
        check(r.status == 200, "write after transfer", r)
        # transfer back to the old leader, sent to the current leader itself
        r = c.request(target, "POST", "/v1/members/%d/leadership" % lead.id, timeout=15)
        check(r.status == 200, "transfer back to node%d" % lead.id, r)
        wait_until(lambda: c.leader() is lead, 10, what="node%d to lead again" % lead.id)
        for n in rest:
            g = c.request(n, "GET", "/v1/kv/after-transfer")
            check(g.body == b"ok", "read after transfer on %r" % n, g)


if __name__ == "__main__":
    run([test_join_during_election, test_membership])
