#!/usr/bin/env python3
"""Client load must never take the descriptors raft needs (found by
bench/profile.sh: 10,000 parked subscribers hold 20,000 descriptors, a
socket and a close watch each; at a 20,000 limit the leader's next raft
segment failed with EMFILE and the node stopped its log for good).

Three members run with a soft descriptor limit of LIMIT; a subscriber
process parks more polls on one follower than that limit allows. Writes go
through the leader, enough to make every member create new raft segments.
Required: the follower refuses the excess connections at accept
(raftplane_connections_refused_total{reason="fds"}), parks polls without a
close watch once only the headroom is left, never reports its disk
(raftplane_disk_state 0), keeps applying every write, and answers again
once the subscribers are gone."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402

LIMIT = 1024          # soft RLIMIT_NOFILE of the servers
BUDGET = LIMIT - 256  # net/fdbudget.c: all but min(1024, limit / 4)
SUBSCRIBERS = 900     # 1,800 descriptors with their close watches
VALUE = b"v" * 200_000
WRITES = 100          # 20 MB: past two 8 MiB segments on every member
SUB_BIN = os.environ.get("RP_SUBSCRIBER_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "proxy",
    "raftplane-subscriber")


def metrics(c, node):
    r = c.try_request(node, "GET", "/metrics", timeout=3)
    if r is None or r.status != 200:
        return None
    out = {}
    for ln in r.body.decode().splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", ln)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_subscribers_past_the_limit():
    c = Cluster(3, name="fd-budget", extra_args=["--max-conns-per-ip", "0"], start=False)
    # the servers raise their soft limit to the hard one: lower both, in a
    # wrapper that execs the server (same pid)
    wrapper = os.path.join(c.dir, "rp-it-node-fdlimit")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nulimit -n %d || exit 97\nexec %s \"$@\"\n" % (
            LIMIT, os.path.realpath(c.bin)))
    os.chmod(wrapper, 0o755)
    c.bin = wrapper
    try:
        c.start()
    except BaseException:
        c.close(check_logs=False)
        raise
    with c:
        lead = c.leader()
        victim = c.followers()[0]
        m = metrics(c, victim)
        check(m and m.get("raftplane_client_fd_budget") == BUDGET,
              "budget of %r: %r" % (victim, m and m.get("raftplane_client_fd_budget")))
        check("clients may hold %d" % BUDGET in victim.current_log(),
              "the start-up warning names the budget", victim.current_log()[-1500:])
        sub_log = open(os.path.join(c.dir, "subscribers.log"), "wb")
        sub = subprocess.Popen([SUB_BIN, "--servers", victim.http, "--node-prefix", "fd",
                                "--count", str(SUBSCRIBERS), "--wait-ms", "5000", "--quiet"],
                               stdin=subprocess.DEVNULL, stdout=sub_log, stderr=sub_log)
        c.add_cleanup(lambda: sub.poll() is None and (sub.kill(), sub.wait()))
        try:
            # the victim fills its budget: its own API is refused too now
            wait_until(lambda: "descriptor budget" in victim.current_log(), 60,
                       what="%r to refuse connections over its budget" % victim)
            log("%r refuses connections over its budget of %d" % (victim, BUDGET))
            t0 = time.monotonic()
            for i in range(WRITES):
                r = c.request(lead, "PUT", "/v1/kv/fd-%d" % i, body=VALUE, timeout=20)
                check(r.status == 200, "write %d: %s" % (i, r.status), r.body[:300])
            rev = c.status(lead)["revision"]
            log("%d writes of %d bytes acknowledged in %.1fs (revision %d)" % (
                WRITES, len(VALUE), time.monotonic() - t0, rev))
            time.sleep(1)
            check(sub.poll() is None, "the subscriber process ended early")
        finally:
            if sub.poll() is None:
                sub.send_signal(signal.SIGKILL)
                sub.wait()
            sub_log.close()
        # the subscribers are gone: the victim answers again and has every write
        wait_until(lambda: metrics(c, victim) is not None, 30,
                   what="%r to answer once the subscribers left" % victim)
        m = metrics(c, victim)
        refused = m.get('raftplane_connections_refused_total{reason="fds"}', 0)
        skipped = m.get("raftplane_close_watches_skipped_total", 0)
        log("%r: %d connections refused over the budget, %d polls parked without a close "
            "watch" % (victim, refused, skipped))
        check(refused > 0, "connections over the budget refused")
        check(skipped > 0, "polls past the headroom parked without a close watch")
        check(m.get("raftplane_disk_state") == 0, "%r reports its disk: %r" % (
            victim, m.get("raftplane_disk_state")), victim.current_log()[-2000:])
        c.wait_applied(victim, rev, timeout=30)
        r = c.request(victim, "GET", "/v1/kv/fd-%d?consistency=stale" % (WRITES - 1))
        check(r.status == 200 and r.body == VALUE, "%r serves the last write" % victim)
        text = victim.current_log()
        check("too many open files" not in text.lower(), "a descriptor ran out",
              "\n".join(ln for ln in text.splitlines() if "too many open" in ln.lower())[:1500])
        wait_until(lambda: (metrics(c, victim) or {}).get("raftplane_client_fds", 1e9) < 50, 30,
                   what="%r to release the subscribers' descriptors" % victim)
        log("ok: %r kept its raft log and caught up; descriptors released" % victim)


if __name__ == "__main__":
    run([test_subscribers_past_the_limit])
