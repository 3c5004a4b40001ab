#!/usr/bin/env python3
"""POST /v1/rollback (issue 13) on a real 3-node cluster.

A scripted history covers what makes a rollback hard: listeners that swap
ports (a naive in-place update clashes half way), routes that move between
listeners and clusters, items deleted and created again, a route that stays
while its listener changes, weighted clusters. The mesh (every cluster,
route and listener, values without versions) is recorded after every
revision; the test then rolls back to every recorded revision in turn and
back to the newest, each time checking that exactly one revision was made
and that every member serves exactly the recorded mesh. Also: a dry run
changes nothing and predicts the revision; a change that lands between
plan and apply cannot happen half (412 for a stale precondition is shown
through a concurrent writer loop); kv keys are not rolled back; bad bodies,
queries and revisions are refused with nothing changed; 410 below the kept
history is covered by unit tests of rp_store_get_at (the window is 10,000
revisions)."""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, check_error, log, run, wait_until  # noqa: E402

KINDS = ("clusters", "routes", "listeners")


def cl(port, *more):
    eps = [{"address": "127.0.0.1", "port": port}]
    eps += [{"address": "127.0.0.1", "port": p} for p in more]
    return {"endpoints": eps}


def li(port, nodes=("*",)):
    return {"address": "127.0.0.1", "port": port, "nodes": list(nodes)}


def ro(listener, prefix, cluster=None, weighted=None):
    v = {"listener": listener, "match": {"prefix": prefix}}
    if weighted:
        v["weighted_clusters"] = [{"cluster": c, "weight": w} for c, w in weighted]
    else:
        v["cluster"] = cluster
    return v


def put(kind, name, value):
    return {"op": "put", "kind": kind, "name": name, "value": value}


def delete(kind, name):
    return {"op": "delete", "kind": kind, "name": name}


STEPS = [
    [put("clusters", "rb-a", cl(9001)), put("clusters", "rb-b", cl(9002))],
    [put("listeners", "rb-l1", li(21001)), put("listeners", "rb-l2", li(21002, ["n-1"]))],
    [put("routes", "rb-r1", ro("rb-l1", "/", "rb-a")),
     put("routes", "rb-r2", ro("rb-l2", "/", "rb-b"))],
    # the two listeners swap ports, in two steps (a clash otherwise)
    [put("listeners", "rb-l1", li(21003))],
    [put("listeners", "rb-l2", li(21001, ["n-1"]))],
    [put("listeners", "rb-l1", li(21002))],
    # a route moves listener and becomes weighted; a new cluster
    [put("clusters", "rb-c", cl(9003, 9004)),
     put("routes", "rb-r1", ro("rb-l2", "/x", weighted=[("rb-a", 1), ("rb-c", 3)]))],
    # delete a route and the cluster only it used; a listener goes
    [delete("routes", "rb-r2")],
    [delete("clusters", "rb-b"), put("clusters", "rb-a", cl(9011))],
    [put("routes", "rb-r1", ro("rb-l1", "/y", "rb-c")), delete("listeners", "rb-l2")],
    # created again under the old names, with other values
    [put("clusters", "rb-b", cl(9022)), put("listeners", "rb-l2", li(21005, ["n-2"])),
     put("routes", "rb-r2", ro("rb-l2", "/z", "rb-b"))],
    [put("kv", "rb-flag", "one")],
]


def mesh(c, node):
    out = {}
    for kind in KINDS:
        r = c.request(node, "GET", "/v1/" + kind)
        check(r.status == 200, "list", kind, r.status, r.body)
        for it in json.loads(r.body)["items"]:
            it = dict(it)
            it.pop("version", None)
            out[(kind, it["name"])] = it
    return out


def revision(c, node=None):
    return c.status(node or c.leader())["revision"]


def same_everywhere(c, want, what):
    rev = revision(c)

    def caught_up():
        return all(c.status(n)["revision"] >= rev for n in c.running())
    wait_until(caught_up, 10, what="members catch up")
    for n in c.running():
        got = mesh(c, n)
        check(got == want, "%s: mesh on node %s" % (what, n), sorted(got), sorted(want))


def txn(c, ops):
    r = c.request(c.leader(), "POST", "/v1/txn", body=json.dumps({"ops": ops}))
    check(r.status == 200, "txn", ops, r.status, r.body)
    return json.loads(r.body)["revision"]


def rollback(c, rev, node=None, query=""):
    return c.request(node or c.leader(), "POST", "/v1/rollback" + query,
                     body=json.dumps({"revision": rev}))


def test_rollback_every_revision():
    with Cluster(3, name="rollback") as c:
        lead = c.leader()
        recorded = {revision(c): mesh(c, lead)}
        for ops in STEPS:
            rev = txn(c, ops)
            recorded[rev] = mesh(c, lead)
        newest = max(recorded)
        # nothing to do: the newest, and the revision before it (kv only)
        for dest in (newest, newest - 1):
            r = rollback(c, dest)
            check(r.status == 200 and json.loads(r.body).get("unchanged") is True and
                  revision(c) == newest, "no-op rollback", dest, r.body)
        followers = [n for n in c.running() if n != lead]
        for i, target in enumerate(sorted(recorded)):
            node = followers[i % len(followers)] if i % 2 else None  # forwarded half the time
            for dest in (target, newest):
                before = revision(c)
                r = rollback(c, dest, node)
                check(r.status == 200, "rollback to %d" % dest, r.status, r.body)
                j = json.loads(r.body)
                if j.get("unchanged"):
                    check(revision(c) == before and recorded[dest] == mesh(c, c.leader()),
                          "no-op rollback makes no revision", j)
                else:
                    check(j["revision"] == before + 1 == revision(c) and
                          j["rolled_back_to"] == dest, "one new revision", j, before)
                same_everywhere(c, recorded[dest], "rolled back to %d" % dest)
                # the answer's revision is where the mesh is now: recorded for later targets
                recorded.setdefault(j["revision"], recorded[dest])
            log("rollback to %d and back: ok" % target)
        kv = c.request(c.leader(), "GET", "/v1/kv/rb-flag")
        check(kv.status == 200 and kv.body == b"one",
              "kv keys are not rolled back", kv.status, kv.body)


def test_dry_run_and_refusals():
    with Cluster(3, name="rollback-dry") as c:
        r0 = revision(c)
        for ops in STEPS[:4]:
            txn(c, ops)
        now = revision(c)
        before = mesh(c, c.leader())
        r = rollback(c, r0 + 3, query="?dry_run=true")
        check(r.status == 200, "dry run", r.status, r.body)
        j = json.loads(r.body)
        check(j["dry_run"] is True and j["would_be_revision"] == now + 1 and
              j["rolled_back_to"] == r0 + 3 and revision(c) == now and
              mesh(c, c.leader()) == before, "dry run changed nothing", j)
        # rb-l1 swaps back to port 21001 (deleted and put back), rb-r1 uses it: put back too
        ops = [(x["op"], x["kind"], x["name"]) for x in j["results"]]
        check(ops == [("delete", "routes", "rb-r1"), ("delete", "listeners", "rb-l1"),
                      ("put", "listeners", "rb-l1"), ("put", "routes", "rb-r1")],
              "ops in order", ops)
        check(j["other_nodes"] == {"version": now, "new_version": now + 1},
              "proxies of * listeners move", j)
        bad = [
            ("", "{}", 400), ("", '{"revision": 0}', 400), ("", '{"revision": -1}', 400),
            ("", '{"revision": "3"}', 400), ("", '{"revision": 3, "x": 1}', 400),
            ("", '{"revision": 3, "revision": 3}', 400), ("", "[3]", 400), ("", "", 400),
            ("", '{"revision": %d}' % (now + 10), 400), ("?dry_run=1", '{"revision": 3}', 400),
            ("?force=true", '{"revision": 3}', 400),
        ]
        for q, body, status in bad:
            r = c.request(c.leader(), "POST", "/v1/rollback" + q, body=body)
            check_error(r, status, "invalid_argument", "bad rollback %r %r" % (q, body))
        r = c.request(c.leader(), "GET", "/v1/rollback")
        check(r.status == 405, "GET refused", r.status)
        check(revision(c) == now and mesh(c, c.leader()) == before, "refusals changed nothing")
        # more ops than one transaction holds: refused whole, never split
        for k in range(2):
            txn(c, [put("clusters", "rb-many-%d-%d" % (k, i), cl(9500 + i)) for i in range(65)])
        full = revision(c)
        r = rollback(c, now)
        check_error(r, 413, "too_large", "130 deletes")
        check(b"more than one transaction holds (128)" in r.body, "says why", r.body)
        check(revision(c) == full, "the refused rollback changed nothing")
        r = rollback(c, full - 1)
        check(r.status == 200 and len(json.loads(r.body)["results"]) == 65,
              "a rollback within the limit", r.status, r.body[:300])


def test_concurrent_writer():
    """A writer keeps changing a cluster while rollbacks run: each rollback
    either applies whole (the mesh equals the target's, but for the writer's
    later changes) or fails with 412 and changes nothing; never half."""
    with Cluster(3, name="rollback-race") as c:
        txn(c, STEPS[0])
        target = revision(c)
        txn(c, [put("listeners", "rb-l1", li(21001)), put("clusters", "rb-x", cl(9100))])
        stop = threading.Event()
        writes = []

        def writer():
            port = 9200
            while not stop.is_set():
                port += 1
                r = c.request(c.leader(), "PUT", "/v1/clusters/rb-a", body=json.dumps(cl(port)))
                if r.status == 200:
                    writes.append(port)
        t = threading.Thread(target=writer)
        t.start()
        outcomes = {}
        try:
            for _ in range(30):
                txn(c, [put("listeners", "rb-l1", li(21001)), put("clusters", "rb-x", cl(9100))])
                r = rollback(c, target)
                outcomes[r.status] = outcomes.get(r.status, 0) + 1
                check(r.status in (200, 412), "rollback outcome", r.status, r.body)
                m = mesh(c, c.leader())
                if r.status == 200:
                    check(("listeners", "rb-l1") not in m and ("clusters", "rb-x") not in m,
                          "applied whole", sorted(m))
                else:
                    check(("listeners", "rb-l1") in m and ("clusters", "rb-x") in m,
                          "refused whole", sorted(m))
        finally:
            stop.set()
            t.join()
        log("outcomes %s, %d concurrent writes" % (outcomes, len(writes)))
        check(outcomes.get(200, 0) > 0, "some rollbacks applied", outcomes)
        check(len(writes) > 0, "the writer wrote")


if __name__ == "__main__":
    run([test_rollback_every_revision, test_dry_run_and_refusals, test_concurrent_writer])
