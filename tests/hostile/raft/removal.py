"""Shared steps of the membership-change scenarios of this folder
(test_config_rollback.py, test_uncommitted_removal.py)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from rpharness import wait_until  # noqa: E402


def put(c, node, key, value, timeout=5):
    """PUT /v1/kv/KEY on node; True when it answered 200."""
    r = c.try_request(node, "PUT", "/v1/kv/" + key, value.encode(), timeout=timeout)
    return r is not None and r.status == 200


def append_uncommitted_removal(c, a, x, b):
    """With leader a caught up on x and b: kill x and b (killed, so nothing
    of the change reaches them: a paused process would still find it in its
    socket buffer), then have a append "remove member x", which cannot
    commit. Returns when a's log holds it."""
    rev = c.status(a)["revision"]
    c.wait_applied(x, rev)
    c.wait_applied(b, rev)
    last = c.status(a)["last_index"]
    c.kill(x)
    c.kill(b)
    c.try_request(a, "DELETE", "/v1/members/%d" % x, timeout=1.5)
    wait_until(lambda: c.status(a)["last_index"] > last, 5,
               what="the leader to append the removal")
