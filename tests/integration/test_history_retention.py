#!/usr/bin/env python3
"""History retention flags (issue 13): --history-revisions and
--history-max-age on real servers.

- By count: a 3-node cluster started with --history-revisions 100 compacts
  at the same revision on every member (status "history", watch 410 below
  it, GET /v1/history starting above it, a point-in-time read below it 410).
- By age: with --history-max-age 2, revisions older than 2 s (by the
  proposer's clock, recorded in each entry) go at the next write.
- The upgrade gate: a leader with the flags does not propose the change
  while a member does not answer GET /healthz (SIGSTOP), and does once it
  answers again; a member without the flags never proposes (the value it
  finds stays)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, check_error, log, run, wait_until  # noqa: E402


def history(c, node):
    return c.status(node)["history"]


def put_kv(c, key, n):
    lead = c.leader()
    for i in range(n):
        r = c.request(lead, "PUT", "/v1/kv/%s" % key, body="v%d" % i)
        check(r.status == 200, "put", r.status, r.body)
    return c.status(lead)["revision"]


def all_members(c, pred, what, timeout=15):
    wait_until(lambda: all(pred(history(c, n), c.status(n)) for n in c.running()), timeout,
               what=what)


def test_by_count():
    with Cluster(3, name="hist-count", extra_args=["--history-revisions", "100"]) as c:
        all_members(c, lambda h, s: h["revisions"] == 100 and h["max_age_ms"] == 0,
                    "retention 100 on every member")
        r = c.request(c.leader(), "PUT", "/v1/clusters/hc",
                      body=json.dumps({"endpoints": [{"address": "127.0.0.1", "port": 9001}]}))
        check(r.status == 200, "cluster put", r.body)
        first = json.loads(r.body)["version"]
        rev = put_kv(c, "hc", 150)
        all_members(c, lambda h, s: s["revision"] == rev and h["compacted"] == rev - 100,
                    "compacted at rev-100 everywhere")
        lead = c.leader()
        r = c.request(lead, "GET", "/v1/watch?after=%d&wait=0s" % (rev - 150))
        check_error(r, 410, "compacted", "watch below the kept history")
        r = c.request(lead, "GET", "/v1/watch?after=%d&wait=0s" % (rev - 100))
        check(r.status == 200, "watch at the edge", r.status, r.body)
        r = c.request(lead, "GET", "/v1/history?order=asc&limit=1")
        check(r.status == 200 and json.loads(r.body)["history"][0]["revision"] == rev - 99,
              "history starts above compacted", r.body)
        r = c.request(lead, "GET", "/v1/clusters/hc?revision=%d" % first)
        check_error(r, 410, "compacted", "point-in-time read below the kept history")


def test_by_age():
    with Cluster(3, name="hist-age", extra_args=["--history-max-age", "2"]) as c:
        all_members(c, lambda h, s: h["max_age_ms"] == 2000 and h["revisions"] == 10000,
                    "max age 2 s on every member")
        rev = put_kv(c, "ha", 5)
        check(history(c, c.leader())["compacted"] < rev - 1, "nothing old yet")
        time.sleep(2.5)
        rev = put_kv(c, "ha", 1)
        all_members(c, lambda h, s: s["revision"] == rev and h["compacted"] == rev - 1,
                    "older than 2 s compacted everywhere")


def test_gate_waits_for_every_member():
    with Cluster(3, name="hist-gate") as c:
        lead = c.leader()
        check(history(c, lead) == {"revisions": 10000, "max_age_ms": 0, "compacted": 0},
              "defaults", history(c, lead))
        fol = [n for n in c.running() if n.id != lead.id]
        a, b = fol
        r = c.request(lead, "GET", "/healthz")
        check(r.status == 200 and "history_retention" in json.loads(r.body)["features"],
              "healthz lists the feature", r.body)
        # a gets the flags; b stops answering; a becomes leader
        c.stop(a.id)
        a.argv += ["--history-revisions", "300", "--history-max-age", "3600"]
        c.restart(a.id)
        wait_until(lambda: c.status(a)["revision"] >= c.status(lead)["revision"], 10,
                   what="a caught up")
        c.pause(b.id)
        r = c.request(lead, "POST", "/v1/members/%d/leadership" % a.id)
        check(r.status == 200, "transfer to a", r.status, r.body)
        wait_until(lambda: c.status(a).get("leader_ready"), 10, what="a leads")
        time.sleep(5)  # two ticks and more: held back by b
        check(history(c, a)["revisions"] == 10000, "held back while b is silent",
              history(c, a))
        check("did not answer GET /healthz" in a.current_log(), "the log says why")
        c.resume(b.id)
        all_members(c, lambda h, s: h["revisions"] == 300 and h["max_age_ms"] == 3600000,
                    "applied on every member once b answers")
        # the old leader has no flags: leading again, it changes nothing back
        r = c.request(a, "POST", "/v1/members/%d/leadership" % lead.id)
        check(r.status == 200, "transfer back", r.status, r.body)
        wait_until(lambda: c.status(lead).get("leader_ready"), 10, what="lead leads")
        time.sleep(3)
        check(history(c, lead)["revisions"] == 300, "a member without flags keeps the value")


def test_bad_flags():
    """Out of range or malformed flags: exit 2 with a message, nothing started."""
    import subprocess
    from rpharness import SERVER_BIN
    for args in (["--history-revisions", "99"], ["--history-revisions", "1000001"],
                 ["--history-revisions", "x"], ["--history-max-age", "-1"],
                 ["--history-max-age", "315360001"]):
        p = subprocess.run([SERVER_BIN, "--id", "1", "--data-dir", "/tmp/rp-hist-bad-none",
                            "--raft", "127.0.0.1:1", "--http", "127.0.0.1:1"] + args,
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 2 and args[0] in p.stderr, "refused", args, p.returncode,
              p.stderr[-300:])
        check(not os.path.exists("/tmp/rp-hist-bad-none"), "no data dir made", args)


if __name__ == "__main__":
    run([test_by_count, test_by_age, test_gate_waits_for_every_member, test_bad_flags])
