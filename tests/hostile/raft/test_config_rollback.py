#!/usr/bin/env python3
"""A node must survive the rollback of an uncommitted configuration change
whose committed predecessor is no longer in its in-memory log.

canonical/raft 0.15's membershipRollback() (src/membership.c) re-reads the
last committed configuration with logGet(configuration_index) and decodes it
without checking for NULL: once a snapshot compacted that entry away, the
rollback dereferences NULL (SEGV at 0x10, found by the jepsen member
nemesis; upstream canonical/raft#250, fixed in later versions by #354).

The scenario: small snapshots compact the bootstrap configuration entry; the
leader A appends "remove member X" while the two others are down, then is
paused (not killed: a restart would reload the change as if committed, and
no rollback would happen); the others come back and elect a leader whose log
has other entries at the removal's index; A resumes, steps down and receives
the AppendEntries that truncate its removal: that truncation must not crash
it, and A must then follow the new leader with all three members intact."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402
from removal import append_uncommitted_removal, put  # noqa: E402

ARGS = dict(election_timeout_ms=400, heartbeat_ms=50,
            extra_args=["--snapshot-threshold", "8", "--snapshot-trailing", "2"])


def new_leader(c, ids):
    for n in ids:
        s = c.status(n)
        if s.get("leader_ready") and s.get("state") in (None, "leader") and \
                (s.get("leader") or {}).get("id") == n:
            return n
    return None


def scenario(c):
    a = c.leader().id
    x, b = [n.id for n in c.running() if n.id != a]
    # enough entries that every node's snapshots compact the configuration entry
    for i in range(40):
        check(put(c, a, "k%d" % (i % 5), str(i)), "write %d before the faults" % i)
    # appended on A, cannot commit: A's configuration is now uncommitted
    append_uncommitted_removal(c, a, x, b)
    c.pause(a)
    c.restart(x)
    c.restart(b)
    lead = wait_until(lambda: new_leader(c, (x, b)), 30, interval=0.2,
                      what="nodes %d and %d to elect a leader" % (x, b))
    for i in range(3):
        check(put(c, lead, "after%d" % i, str(i)), "write through the new leader")
    rev = c.status(lead)["revision"]
    c.resume(a)
    # A must truncate its removal (the rollback), follow and catch up, alive
    wait_until(lambda: not c.node(a).alive() or (
        c.status(a)["revision"] >= rev and
        (c.status(a).get("leader") or {}).get("id") == lead), 20, interval=0.2,
        what="node %d to follow leader %d and catch up" % (a, lead))
    check(c.node(a).alive(), "node %d survived the rollback of its removal" % a,
          c.node(a).current_log()[-3000:])
    check("rolled back the uncommitted configuration" in c.node(a).current_log(),
          "node %d went through the rollback this test is about" % a,
          c.node(a).current_log()[-1500:])
    r = c.request(a, "GET", "/v1/kv/after2?consistency=stale")
    check(r.status == 200 and r.body == b"2", "node %d serves the new write" % a, r.body)
    members = sorted(m["id"] for m in c.request(lead, "GET", "/v1/members").json()["members"])
    check(members == sorted([a, b, x]), "the discarded removal left the members as they were",
          members)
    # A's raft configuration is the committed one again: it votes and can lead
    c.kill(lead)
    other = b if lead == x else x
    wait_until(lambda: new_leader(c, (a, other)), 30, interval=0.2,
               what="nodes %d and %d to elect a leader without %d" % (a, other, lead))
    log("node %d survived the rollback and the pair elected a leader" % a)


def test_rollback_after_compaction():
    with Cluster(3, **ARGS) as c:
        scenario(c)


if __name__ == "__main__":
    run([test_rollback_after_compaction])
