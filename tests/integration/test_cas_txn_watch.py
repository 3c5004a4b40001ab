#!/usr/bin/env python3
"""Compare-and-set races, all-or-nothing transactions (kv and mesh kinds),
and watches (wake-up latency, timeout, kinds filter, compacted history)."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, KeepAliveClient, check, check_error, log, run  # noqa: E402

CAS_THREADS = 8
CAS_ROUNDS = 5
HISTORY_REVS = 10000  # RP_HISTORY_REVS in include/raftplane/limits.h


def rev_of(c, node):
    return c.status(node)["revision"]


def cas_race(c):
    nodes = sorted(c.running(), key=lambda n: n.id)
    r = c.request(nodes[0], "PUT", "/v1/kv/cas", body="init")
    check(r.status == 200, "init cas", r)
    for rnd in range(CAS_ROUNDS):
        barrier = threading.Barrier(CAS_THREADS)
        results = [None] * CAS_THREADS
        seen = [None] * CAS_THREADS

        def worker(t):
            node = nodes[t % len(nodes)]
            g = c.request(node, "GET", "/v1/kv/cas")
            seen[t] = g.headers.get("etag")
            barrier.wait(timeout=20)
            results[t] = c.request(node, "PUT", "/v1/kv/cas", body="round%d-thread%d" % (rnd, t),
                                   headers={"If-Match": seen[t]})
        ths = [threading.Thread(target=worker, args=(t,)) for t in range(CAS_THREADS)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(timeout=30)
        check(len(set(seen)) == 1 and seen[0], "threads read different versions: %s" % seen)
        statuses = [r.status for r in results]
        winners = [t for t, r in enumerate(results) if r.status == 200]
        check(len(winners) == 1, "round %d: %d winners (statuses %s)" % (rnd, len(winners), statuses),
              *[r for r in results if r.status not in (200, 412)])
        for t, r in enumerate(results):
            if t not in winners:
                check_error(r, 412, "precondition_failed", "round %d loser %d" % (rnd, t))
        w = winners[0]
        g = c.request(nodes[(w + 1) % len(nodes)], "GET", "/v1/kv/cas")
        check(g.body.decode() == "round%d-thread%d" % (rnd, w) and
              g.headers.get("etag") == '"%d"' % results[w].json()["version"],
              "round %d: value/ETag is not the winner's" % rnd, g)
        log("CAS round %d: thread %d won via node%d, %d got 412" % (
            rnd + 1, w, nodes[w % len(nodes)].id, CAS_THREADS - 1))


def sync_all(c):
    """Write a marker and wait until every node applied it, so that revisions
    read afterwards do not move because of earlier work (e.g. the first
    leader recording the members)."""
    r = c.request(c.leader(), "PUT", "/v1/kv/sync", body="1")
    check(r.status == 200, "sync write", r)
    for n in c.running():
        c.wait_applied(n, r.json()["version"])


def txn_all_or_nothing(c):
    sync_all(c)
    lead = c.leader()
    fol = [n for n in c.running() if n is not lead]
    r = c.request(fol[0], "PUT", "/v1/kv/ta", body="one")
    va = r.json()["version"]
    rev0 = rev_of(c, lead)
    # 2nd op fails its precondition: the 1st must not be applied
    r = c.request(fol[1], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "kv", "name": "tb", "value": "new"},
        {"op": "put", "kind": "kv", "name": "ta", "value": "two", "if_version": va + 1000},
    ]})
    j = check_error(r, 412, "precondition_failed", "txn with failing 2nd op")
    check(j["error"].get("index") == 1, "412 should name index 1", j)
    check_error(c.request(lead, "GET", "/v1/kv/tb"), 404, "not_found", "tb after failed txn")
    check(c.request(lead, "GET", "/v1/kv/ta").body == b"one", "ta after failed txn")
    check(rev_of(c, lead) == rev0, "failed txn changed the revision")
    # if_version 0 = must not exist
    r = c.request(fol[0], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "kv", "name": "tb", "value": "new"},
        {"op": "put", "kind": "kv", "name": "tc", "value": "new"},
        {"op": "put", "kind": "kv", "name": "ta", "value": "x", "if_version": 0},
    ]})
    j = check_error(r, 412, "precondition_failed", "txn if_version 0 on existing")
    check(j["error"].get("index") == 2, "412 should name index 2", j)
    # deleting an absent key fails the txn with 404 and its index
    r = c.request(fol[0], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "kv", "name": "tb", "value": "new"},
        {"op": "delete", "kind": "kv", "name": "no-such-key"},
    ]})
    j = check_error(r, 404, "not_found", "txn deleting an absent key")
    check(j["error"].get("index") == 1, "404 should name index 1", j)
    check(c.request(lead, "GET", "/v1/kv/tb").status == 404, "tb created by a failed txn")
    check(rev_of(c, lead) == rev0, "failed txns changed the revision")

    # a successful txn: everything at one revision
    r = c.request(fol[1], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "kv", "name": "tb", "value": "B", "if_version": 0},
        {"op": "put", "kind": "kv", "name": "ta", "value": "A2", "if_version": va},
        {"op": "put", "kind": "kv", "name": "tc", "value": "C"},
        {"op": "delete", "kind": "kv", "name": "tc"},
    ]})
    check(r.status == 200, "successful txn", r)
    j = r.json()
    rev = j["revision"]
    check(rev == rev0 + 1, "a txn is one revision: %d -> %d" % (rev0, rev), j)
    res = j["results"]
    check(len(res) == 4 and [x["name"] for x in res] == ["tb", "ta", "tc", "tc"]
          and [x["op"] for x in res] == ["put", "put", "put", "delete"], "txn results", j)
    for n in c.running():
        g = c.request(n, "GET", "/v1/kv/tb")
        check(g.body == b"B" and g.headers.get("etag") == '"%d"' % rev, "tb on %r" % n, g)
        g = c.request(n, "GET", "/v1/kv/ta")
        check(g.body == b"A2" and g.headers.get("etag") == '"%d"' % rev, "ta on %r" % n, g)
        check(c.request(n, "GET", "/v1/kv/tc").status == 404, "tc on %r" % n)
    return rev


def txn_mesh(c):
    lead = c.leader()
    fol = [n for n in c.running() if n is not lead]
    ops = [
        {"op": "put", "kind": "clusters", "name": "tx-api",
         "value": {"lb_policy": "least_request",
                   "endpoints": [{"address": "10.1.0.1", "port": 8080, "weight": 3},
                                 {"address": "10.1.0.2", "port": 8080}]}},
        {"op": "put", "kind": "listeners", "name": "tx-edge",
         "value": {"address": "127.0.0.1", "port": 18080, "nodes": ["edge-1"]}},
        {"op": "put", "kind": "routes", "name": "tx-route",
         "value": {"listener": "tx-edge", "priority": 10, "match": {"prefix": "/api"},
                   "cluster": "tx-api"}},
        {"op": "put", "kind": "kv", "name": "tx-flag", "value": "on"},
    ]
    r = c.request(fol[0], "POST", "/v1/txn", body={"ops": ops})
    check(r.status == 200, "txn creating cluster+listener+route", r)
    rev = r.json()["revision"]
    g = c.request(fol[1], "GET", "/v1/clusters/tx-api")
    j = g.json()
    check(g.status == 200 and j["name"] == "tx-api" and j["version"] == rev and
          j["lb_policy"] == "least_request" and j["endpoints"][1]["weight"] == 1 and
          j.get("connect_timeout_ms") == 1000, "cluster from txn", j)
    g = c.request(fol[1], "GET", "/v1/routes/tx-route")
    j = g.json()
    check(g.status == 200 and j["listener"] == "tx-edge" and j["cluster"] == "tx-api" and
          j["version"] == rev and j.get("timeout_ms") == 15000, "route from txn", j)
    g = c.request(fol[1], "GET", "/v1/listeners/tx-edge")
    check(g.status == 200 and g.json()["port"] == 18080, "listener from txn", g)

    rev0 = rev_of(c, lead)
    r = c.request(fol[0], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "kv", "name": "tx-other", "value": "x"},
        {"op": "delete", "kind": "clusters", "name": "tx-api"},
    ]})
    j = check_error(r, 409, "in_use", "txn deleting a cluster still used by a route")
    check(j["error"].get("index") == 1, "in_use should name index 1", j)
    r = c.request(fol[0], "POST", "/v1/txn", body={"ops": [
        {"op": "delete", "kind": "listeners", "name": "tx-edge"}]})
    check_error(r, 409, "in_use", "txn deleting a listener still used by a route")
    r = c.request(fol[1], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "routes", "name": "tx-r2",
         "value": {"listener": "tx-edge", "match": {"path": "/x"}, "cluster": "nope"}}]})
    j = check_error(r, 409, "dangling_reference", "txn with a route to a missing cluster")
    check(j["error"].get("index") == 0, "dangling should name index 0", j)
    r = c.request(fol[1], "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "listeners", "name": "tx-edge2",
         "value": {"address": "127.0.0.1", "port": 18080, "nodes": ["*"]}}]})
    check_error(r, 409, "conflict", "txn with a listener clashing on address:port")
    check(rev_of(c, lead) == rev0, "failed mesh txns changed the revision")
    check(c.request(lead, "GET", "/v1/kv/tx-other").status == 404, "tx-other was applied")
    check(c.request(lead, "GET", "/v1/clusters/tx-api").status == 200, "cluster was deleted")

    # deleting the route and then what it used, in one txn, works
    r = c.request(fol[1], "POST", "/v1/txn", body={"ops": [
        {"op": "delete", "kind": "routes", "name": "tx-route"},
        {"op": "delete", "kind": "clusters", "name": "tx-api"},
        {"op": "delete", "kind": "listeners", "name": "tx-edge"},
    ]})
    check(r.status == 200, "txn deleting route, cluster, listener", r)
    for kind, name in (("routes", "tx-route"), ("clusters", "tx-api"), ("listeners", "tx-edge")):
        check_error(c.request(fol[0], "GET", "/v1/%s/%s" % (kind, name)), 404, "not_found",
                    "%s/%s after delete txn" % (kind, name))


class WatchThread(threading.Thread):
    def __init__(self, c, node, query, timeout=30):
        super().__init__(daemon=True)
        self.c, self.node, self.query, self.timeout = c, node, query, timeout
        self.res = self.err = self.t_done = None

    def run(self):
        try:
            self.res = self.c.request(self.node, "GET", "/v1/watch?" + self.query,
                                      timeout=self.timeout)
        except Exception as e:  # noqa: BLE001
            self.err = e
        self.t_done = time.monotonic()


def watches(c):
    lead = c.leader()
    fol = [n for n in c.running() if n is not lead]
    # after=<a node's revision> must really be "now" on each node
    sync_all(c)
    lat = []
    for i in range(3):
        watcher, writer = fol[i % 2], [lead, fol[(i + 1) % 2]][i % 2]
        rev = rev_of(c, watcher)
        w = WatchThread(c, watcher, "after=%d&wait=10s" % rev)
        w.start()
        time.sleep(0.3)
        check(w.is_alive(), "watch after=current returned at once: %r" % (w.res,))
        r = c.request(writer, "PUT", "/v1/kv/watched", body="v%d" % i)
        t_ack = time.monotonic()
        check(r.status == 200, "PUT watched", r)
        ver = r.json()["version"]
        w.join(timeout=12)
        check(w.res is not None, "watch failed: %r" % (w.err,))
        check(w.res.status == 200, "watch", w.res)
        dt = w.t_done - t_ack
        lat.append(dt * 1000)
        j = w.res.json()
        check({"kind": "kv", "name": "watched", "op": "put", "version": ver} in j["changes"],
              "watch changes lack the write", j)
        check(j["revision"] >= ver, "watch revision %d < %d" % (j["revision"], ver), j)
        check(dt < 1.0, "watch on %r returned %.0f ms after the write was acknowledged" % (
            watcher, dt * 1000))
        for n in c.running():  # the next round's after=<revision> must be "now"
            c.wait_applied(n, ver)
    log("watch wake-up after an acknowledged write on another node: %s ms" %
        ", ".join("%.0f" % x for x in lat))

    # a delete shows as op delete; after=older revision answers at once
    rev = rev_of(c, lead)
    r = c.request(fol[0], "DELETE", "/v1/kv/watched")
    check(r.status == 200, "DELETE watched", r)
    for n in c.running():  # every node has it before the timeout checks below
        c.wait_applied(n, r.json()["revision"])
    t0 = time.monotonic()
    r = c.request(fol[1], "GET", "/v1/watch?after=%d&wait=10s" % rev)
    check(r.status == 200 and time.monotonic() - t0 < 2, "watch with pending changes", r)
    ch = r.json()["changes"]
    check(len(ch) == 1 and ch[0]["op"] == "delete" and ch[0]["name"] == "watched" and
          ch[0]["kind"] == "kv", "delete change", r.json())

    # wait timeout: empty changes after about the wait
    rev = rev_of(c, fol[0])
    t0 = time.monotonic()
    r = c.request(fol[0], "GET", "/v1/watch?after=%d&wait=1s" % rev, timeout=10)
    dt = time.monotonic() - t0
    check(r.status == 200, "watch timeout", r)
    check(r.json()["changes"] == [] and r.json()["revision"] >= rev, "timeout answer", r.json())
    check(0.9 <= dt < 3.0, "wait=1s answered after %.2fs" % dt)
    t0 = time.monotonic()
    r = c.request(fol[0], "GET", "/v1/watch?after=%d&wait=300ms" % rev_of(c, fol[0]))
    dt = time.monotonic() - t0
    check(r.status == 200 and r.json()["changes"] == [] and 0.25 <= dt < 2.0,
          "wait=300ms answered after %.2fs" % dt, r)
    log("watch timeout: wait=1s and wait=300ms answered on time")

    # kinds filter: a kv write does not wake a routes watch, a route write does
    r = c.request(lead, "PUT", "/v1/clusters/w-c", body={"endpoints": []})
    check(r.status == 200, "PUT cluster", r)
    r = c.request(lead, "PUT", "/v1/listeners/w-l",
                  body={"address": "127.0.0.1", "port": 18181, "nodes": ["*"]})
    check(r.status == 200, "PUT listener", r)
    c.wait_applied(fol[1], r.json()["version"])
    rev = rev_of(c, fol[1])
    w = WatchThread(c, fol[1], "after=%d&wait=10s&kinds=routes" % rev)
    w.start()
    time.sleep(0.2)
    r = c.request(lead, "PUT", "/v1/kv/not-a-route", body="x")
    check(r.status == 200, "PUT kv", r)
    time.sleep(0.7)
    check(w.is_alive(), "a kv write woke a kinds=routes watch: %r" % (w.res,))
    r = c.request(fol[0], "PUT", "/v1/routes/w-r",
                  body={"listener": "w-l", "match": {"prefix": "/"}, "cluster": "w-c"})
    check(r.status == 200, "PUT route", r)
    route_ver = r.json()["version"]
    w.join(timeout=12)
    check(w.res is not None and w.res.status == 200, "kinds watch: %r %r" % (w.res, w.err))
    ch = w.res.json()["changes"]
    check(ch == [{"kind": "routes", "name": "w-r", "op": "put", "version": route_ver}],
          "kinds=routes changes", w.res.json())
    # the same history through several kinds
    r = c.request(fol[1], "GET", "/v1/watch?after=%d&wait=0s&kinds=kv,routes" % rev)
    kinds = sorted({x["kind"] for x in r.json()["changes"]})
    check(r.status == 200 and kinds == ["kv", "routes"], "kinds=kv,routes", r)
    r = c.request(fol[1], "GET", "/v1/watch?after=%d&wait=0s&kinds=clusters" % rev)
    check(r.status == 200 and r.json()["changes"] == [], "kinds=clusters", r)
    r = c.request(fol[1], "GET", "/v1/watch?after=0&wait=0s&kinds=listeners")
    names = [x["name"] for x in r.json()["changes"]]
    check(r.status == 200 and names == ["w-l"], "full history of listeners %s" % names, r)


def test_cas_race():
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="cas") as c:
        cas_race(c)


def test_txn():
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="txn") as c:
        txn_all_or_nothing(c)
        txn_mesh(c)


def test_watch():
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="watch") as c:
        watches(c)


def test_watch_compacted():
    """after older than the retained history -> 410. Needs > 10000 revisions,
    written with keep-alive connections from several threads (~10-20 s).
    Set RP_IT_QUICK=1 to skip."""
    if os.environ.get("RP_IT_QUICK") == "1":
        log("skipped (RP_IT_QUICK=1)")
        return
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="compact",
                 extra_args=["--snapshot-threshold", "4096", "--snapshot-trailing", "512"]) as c:
        lead = c.leader()
        start = rev_of(c, lead)
        need = HISTORY_REVS + 20
        threads = 8
        errors = []

        def worker(t):
            cl = KeepAliveClient(lead.http, timeout=20)
            for i in range(t, need, threads):
                try:
                    r = cl.request("PUT", "/v1/kv/h%d" % (i % 64), body="%d" % i)
                except OSError as e:
                    errors.append(e)
                    continue
                if r.status != 200:
                    errors.append(r)
            cl.close()
        t0 = time.monotonic()
        ths = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        dt = time.monotonic() - t0
        check(not errors, "writes failed: %s" % errors[:3])
        rev = rev_of(c, lead)
        log("%d writes in %.1fs (%.0f/s); revision %d" % (need, dt, need / dt, rev))
        check(rev >= start + need, "revision %d after %d writes" % (rev, need))
        for n in c.running():
            c.wait_applied(n, rev)
            r = c.request(n, "GET", "/v1/watch?after=%d&wait=1s" % start)
            j = check_error(r, 410, "compacted", "watch after a compacted revision on %r" % n)
            log("410 on %r: %s" % (n, j["error"]["message"]))
            r = c.request(n, "GET", "/v1/watch?after=%d&wait=0s" % (rev - HISTORY_REVS + 5))
            check(r.status == 200 and len(r.json()["changes"]) == HISTORY_REVS - 5,
                  "watch inside the retained history on %r" % n, r.status)


if __name__ == "__main__":
    run([test_cas_race, test_txn, test_watch, test_watch_compacted])
