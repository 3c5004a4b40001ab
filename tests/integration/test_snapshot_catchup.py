#!/usr/bin/env python3
"""A follower that was down while the others wrote more than 300 entries
(snapshot threshold 64, trailing 16) catches up by installing a snapshot."""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, check_error, log, run, wait_until  # noqa: E402

N_WRITES = 320
N_KEYS = 40
THREADS = 4
CATCHUP_LIMIT = 10  # seconds a restarted follower may need to catch up
CATCHUP_WAIT = 60   # how long to wait before giving up (to report the time)


def metric(c, node, name):
    text = c.request(node, "GET", "/metrics").body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def write_many(c, node, n, tag):
    """n PUTs over N_KEYS keys from THREADS threads; returns {key: value} of
    the last acknowledged write per key (each key is written by one thread)."""
    final = {}
    errors = []
    lock = threading.Lock()

    def worker(t):
        for i in range(t, n, THREADS):
            key = "snap-%d" % (i % N_KEYS)
            # keys are split by thread: i % N_KEYS has a fixed thread when
            # N_KEYS is a multiple of THREADS
            value = "%s-%d" % (tag, i)
            r = c.try_request(node, "PUT", "/v1/kv/" + key, body=value, timeout=10)
            if r is None or r.status != 200:
                errors.append((key, r))
                continue
            with lock:
                final[key] = value
    ths = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    check(not errors, "writes failed: %s" % errors[:5])
    return final


def test_snapshot_catchup():
    assert N_KEYS % THREADS == 0
    args = ["--snapshot-threshold", "64", "--snapshot-trailing", "16"]
    with Cluster(3, extra_args=args, election_timeout_ms=300, heartbeat_ms=50,
                 name="snapshot") as c:
        lead = c.leader()
        lagger = c.followers()[0]
        other = [n for n in c.running() if n not in (lead, lagger)][0]
        # some state before the stop, including mesh objects and a delete
        for path, body in [
            ("/v1/clusters/api", {"endpoints": [{"address": "10.0.0.1", "port": 8080}]}),
            ("/v1/listeners/edge", {"address": "0.0.0.0", "port": 10000, "nodes": ["*"]}),
            ("/v1/routes/r1", {"listener": "edge", "match": {"prefix": "/api"}, "cluster": "api"}),
        ]:
            r = c.request(lead, "PUT", path, body=body)
            check(r.status == 200, "PUT " + path, r)
        c.request(lead, "PUT", "/v1/kv/doomed", body="x")
        before = write_many(c, lead, 40, "pre")
        rev_pre = c.status(lead)["revision"]
        c.wait_applied(lagger, rev_pre)

        c.stop(lagger)
        log("stopped %r at revision %d" % (lagger, rev_pre))
        t0 = time.monotonic()
        final = write_many(c, lead, N_WRITES, "post")
        final.update({k: v for k, v in before.items() if k not in final})
        r = c.request(other, "DELETE", "/v1/kv/doomed")
        check(r.status == 200, "DELETE doomed", r)
        r = c.request(other, "PUT", "/v1/clusters/api2", body={"lb_policy": "random"})
        check(r.status == 200, "PUT cluster api2", r)
        r = c.request(other, "PUT", "/v1/routes/r1",
                      body={"listener": "edge", "match": {"prefix": "/v2"}, "cluster": "api2"})
        check(r.status == 200, "PUT route r1 v2", r)
        log("%d writes while %r was down took %.2fs" % (N_WRITES, lagger, time.monotonic() - t0))
        rev = c.status(lead)["revision"]
        check(rev - rev_pre > 300, "only %d revisions while the follower was down" % (rev - rev_pre))
        taken = metric(c, lead, "raftplane_snapshots_taken_total")
        log("leader snapshots_taken_total=%s" % taken)
        check(taken and taken >= 1, "leader took no snapshot (threshold 64, %d entries)" % (rev - rev_pre))
        # every snapshot closes raft_uv's open segment; its AIO context must
        # be destroyed off the loop (raft/aiodefer.h), never in place
        deferred = metric(c, lead, "raftplane_aio_destroy_deferred_total")
        in_place = metric(c, lead, "raftplane_aio_destroy_in_place_total")
        log("leader aio_destroy deferred=%s in_place=%s" % (deferred, in_place))
        check(deferred and deferred >= 1, "no segment AIO context destroyed off the loop "
              "after %s snapshots" % taken)
        check(in_place == 0, "%s segment AIO contexts destroyed on the loop" % in_place)

        t0 = time.monotonic()
        # libraft's trace explains a slow catch-up (snapshot install refused...)
        c.restart(lagger, extra_env={"LIBRAFT_TRACE": "1"})
        c.wait_applied(lagger, rev, timeout=CATCHUP_WAIT)
        dt = time.monotonic() - t0
        log("%r caught up to revision %d in %.2fs" % (lagger, rev, dt))
        if dt > CATCHUP_LIMIT:
            trace = [ln for ln in lagger.current_log().splitlines()
                     if "snapshot" in ln.lower() or "install" in ln.lower()]
            check(False, "%r needed %.1fs to catch up (limit %ds); its snapshot trace:" % (
                lagger, dt, CATCHUP_LIMIT), *trace[:12])

        def same_state():
            mine = c.request(lagger, "GET", "/v1/kv?prefix=snap-&consistency=stale").json()
            return {it["key"]: it["value"] for it in mine["items"]} == final
        wait_until(same_state, 10, what="the stale kv list of %r to match" % lagger)
        for key, value in final.items():
            g = c.request(lagger, "GET", "/v1/kv/%s?consistency=stale" % key)
            check(g.status == 200 and g.body.decode() == value,
                  "stale read of %s on %r: want %s" % (key, lagger, value), g)
        check_error(c.request(lagger, "GET", "/v1/kv/doomed?consistency=stale"), 404, "not_found",
                    "deleted key on the caught-up node")
        g = c.request(lagger, "GET", "/v1/routes/r1?consistency=stale")
        check(g.status == 200 and g.json().get("cluster") == "api2"
              and g.json().get("match") == {"prefix": "/v2"}, "route r1 on %r" % lagger, g)
        g = c.request(lagger, "GET", "/v1/clusters/api2?consistency=stale")
        check(g.status == 200 and g.json().get("lb_policy") == "random", "cluster api2", g)
        ref = c.request(lead, "GET", "/v1/kv?consistency=stale").json()
        mine = c.request(lagger, "GET", "/v1/kv?consistency=stale").json()
        check(mine == ref, "full kv list of %r differs from the leader's" % lagger)

        restored = metric(c, lagger, "raftplane_snapshots_restored_total")
        in_log = "restored snapshot" in lagger.current_log()
        log("%r: snapshots_restored_total=%s, 'restored snapshot' in log: %s" % (
            lagger, restored, in_log))
        check((restored and restored > 0) or in_log,
              "%r caught up without installing a snapshot" % lagger)

        # it keeps applying new entries after the snapshot
        r = c.request(lagger, "PUT", "/v1/kv/after-snapshot", body="yes")
        check(r.status == 200, "write through the caught-up node", r)
        c.wait_applied(lagger, r.json()["version"])
        g = c.request(lagger, "GET", "/v1/kv/after-snapshot?consistency=stale")
        check(g.body == b"yes", "new write on the caught-up node", g)
        for n in c.running():
            check(c.request(n, "GET", "/readyz").status == 200, "readyz on %r" % n)


if __name__ == "__main__":
    run([test_snapshot_catchup])
