#!/usr/bin/env python3
"""A node that appended a configuration change the cluster then discarded
must still admit the leader that discards it.

The leader appends "remove member X" while the other two nodes are down
(killed, so that nothing of the change reaches them: a paused process would
still find it in its socket buffer), is killed itself, the other two restart
and elect X (the removed one) as leader, and the old leader restarts with
its log ending in that uncommitted change: its latest configuration no
longer names X. Admitting
raft peers only from the latest configuration refused X forever (the node
stayed a candidate, found by the jepsen member nemesis); peers seen in any
configuration stay admitted until a configuration without them commits
(raft/peers.h), also across a restart.

A committed removal still shuts the removed node out (second test)."""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402
from removal import append_uncommitted_removal, put  # noqa: E402

ARGS = dict(election_timeout_ms=400, heartbeat_ms=50)


def test_leader_admitted_after_discarded_removal():
    with Cluster(3, **ARGS) as c:
        lead = c.leader()
        a = lead.id
        x, b = [n.id for n in c.running() if n.id != a]
        check(put(c, a, "before", "1"), "write before the faults")
        # the removal is appended on the leader but cannot commit
        append_uncommitted_removal(c, a, x, b)
        c.kill(a)
        c.restart(x)
        c.restart(b)
        # the two survivors elect a leader; make it the "removed" node X
        def leader_is_x():
            for n in (x, b):
                s = c.status(n)
                if s.get("leader_ready") and s["id"] == x:
                    return True
                if s.get("leader_ready") and s["id"] == b:
                    c.try_request(b, "POST", "/v1/members/%d/leadership" % x, timeout=3)
            return False
        wait_until(leader_is_x, 30, interval=0.3, what="node %d to lead" % x)
        check(put(c, x, "after", "2"), "write through the new leader")
        rev = c.status(x)["revision"]
        c.restart(a)
        t0 = time.monotonic()
        # the old leader must accept X, drop its uncommitted change and catch up
        wait_until(lambda: c.status(a)["revision"] >= rev and
                   (c.status(a).get("leader") or {}).get("id") == x, 20, interval=0.2,
                   what="node %d to follow leader %d and catch up" % (a, x))
        log("node %d caught up %.2fs after its restart" % (a, time.monotonic() - t0))
        r = c.request(a, "GET", "/v1/kv/after?consistency=stale")
        check(r.status == 200 and r.body == b"2", "the old leader serves the new write", r.body)
        members = sorted(m["id"] for m in c.request(x, "GET", "/v1/members").json()["members"])
        check(members == sorted([a, b, x]), "the discarded removal left the members as they were",
              members)
        check("not_member" not in c.node(a).current_log(),
              "node %d refused its leader" % a, c.node(a).current_log()[-800:])


def test_committed_removal_shuts_the_member_out():
    with Cluster(3, **ARGS) as c:
        lead = c.leader()
        x = [n.id for n in c.running() if n.id != lead.id][0]
        r = c.request(lead, "DELETE", "/v1/members/%d" % x, timeout=10)
        check(r.status == 200, "remove member %d" % x, r.body)
        check(put(c, lead, "k", "v"), "the two remaining members serve writes")
        # X does not know it was removed and keeps knocking: refused
        wait_until(lambda: "(id %d): not_member" % x in c.node(lead.id).current_log(), 15,
                   what="the leader to refuse the removed member %d" % x)
        rev = c.status(lead)["revision"]
        check(c.status(x)["revision"] < rev, "the removed member gets no new entries")


if __name__ == "__main__":
    run([test_leader_admitted_after_discarded_removal, test_committed_removal_shuts_the_member_out])
