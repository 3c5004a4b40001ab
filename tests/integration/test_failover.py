#!/usr/bin/env python3
"""Leader failover under write load: SIGKILL the leader three times, measure
the time until a write is acknowledged again, check that no acknowledged write
is lost, and that a restarted node catches up."""

import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, error_code, log, median, run, wait_until  # noqa: E402

WRITERS = 4
KEYS_PER_WRITER = 16
ROUNDS = 3


class Writer(threading.Thread):
    """Writes keys w<t>-k<j> with increasing sequence numbers, round-robin
    over the nodes, and records the outcome of every attempt."""

    def __init__(self, cluster, t, stop, acks):
        super().__init__(daemon=True)
        self.c, self.t, self.stop_ev, self.acks = cluster, t, stop, acks
        self.nodes = sorted(cluster.nodes.values(), key=lambda n: n.id)
        # key -> list of (seq, outcome) in attempt order; outcome is
        # "ok", "failed" (definitely not applied) or "unknown"
        self.history = {}
        self.counts = {"ok": 0, "failed": 0, "unknown": 0}
        self.errors = []  # unexpected answers

    def run(self):
        seq, i = 0, 0
        while not self.stop_ev.is_set():
            node = self.nodes[(self.t + i) % len(self.nodes)]
            i += 1
            key = "w%d-k%d" % (self.t, seq % KEYS_PER_WRITER)
            seq += 1
            value = "%d" % seq
            t_start = time.monotonic()
            try:
                r = self.c.request(node, "PUT", "/v1/kv/" + key, body=value, timeout=6)
                if r.status == 200:
                    outcome = "ok"
                elif r.status == 503 and error_code(r) == "no_leader":
                    outcome = "failed"
                    if "retry-after" not in r.headers:
                        self.errors.append((key, value, "503 no_leader without Retry-After"))
                elif r.status == 503 and error_code(r) == "outcome_unknown":
                    outcome = "unknown"
                else:
                    outcome = "unknown"
                    self.errors.append((key, value, r.status, r.body[:200]))
            except ConnectionRefusedError:
                outcome = "failed"  # nothing reached a server
            except (OSError, http.client.HTTPException):
                outcome = "unknown"  # reset or timeout after sending
            t_end = time.monotonic()
            self.history.setdefault(key, []).append((seq, outcome))
            self.counts[outcome] += 1
            if outcome == "ok":
                self.acks.append((t_end, t_start, node.id))
            else:
                time.sleep(0.005)


def probe_until_acked(c, nodes, since, timeout=30):
    """Start a PUT every 50 ms (each on its own thread and connection) to
    @nodes in turn; return the time the first one acknowledged."""
    first = []
    lock = threading.Lock()

    def probe(node, i):
        r = c.try_request(node, "PUT", "/v1/kv/probe-%d" % i, body="p", timeout=10)
        if r is not None and r.status == 200:
            with lock:
                first.append(time.monotonic())
    i = 0
    deadline = since + timeout
    while not first and time.monotonic() < deadline:
        threading.Thread(target=probe, args=(nodes[i % len(nodes)], i), daemon=True).start()
        i += 1
        time.sleep(0.05)
    check(first, "no write was acknowledged within %ds" % timeout)
    return min(first)


def check_no_lost_writes(c, writers):
    lead = c.leader()
    r = c.request(lead, "GET", "/v1/kv?prefix=w")
    check(r.status == 200, "list", r)
    stored = {it["key"]: int(it["value"]) for it in r.json()["items"]}
    checked = 0
    for w in writers:
        for key, hist in w.history.items():
            acked = [s for s, o in hist if o == "ok"]
            if not acked:
                continue
            last_ok = acked[-1]
            maybe = {s for s, o in hist if o == "unknown" and s > last_ok}
            failed = {s for s, o in hist if o == "failed"}
            got = stored.get(key)
            check(got is not None, "acknowledged write lost: %s (last acked seq %d) is gone"
                  % (key, last_ok))
            check(got not in failed, "%s holds %d, from a write that was reported as not applied"
                  % (key, got))
            check(got == last_ok or got in maybe,
                  "acknowledged write lost: %s holds %s, last acknowledged %d, later unknown %s"
                  % (key, got, last_ok, sorted(maybe)))
            checked += 1
    # a linearizable GET on each node agrees with the list
    for n in c.running():
        for key in list(stored)[:8]:
            g = c.request(n, "GET", "/v1/kv/" + key)
            check(g.status == 200 and int(g.body) == stored[key], "GET %s on %r" % (key, n), g)
    return checked


def test_failover():
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="failover") as c:
        stop = threading.Event()
        acks = []
        writers = [Writer(c, t, stop, acks) for t in range(WRITERS)]
        for w in writers:
            w.start()
        failovers = []
        try:
            for rnd in range(ROUNDS):
                c.wait_ready(timeout=30)
                n0 = len(acks)
                wait_until(lambda: len(acks) >= n0 + 50, 20, what="writes to flow")
                lead = c.leader()
                t_kill = time.monotonic()
                c.kill(lead)

                # The first acknowledgement of a request sent after the kill:
                # an answer the old leader wrote just before dying and that a
                # follower relays afterwards must not count.
                def acked_again():
                    for t_end, t_start, nid in list(acks[n0:]):
                        if t_start > t_kill:
                            return t_end
                    return None
                t_ack = wait_until(acked_again, 30, interval=0.005,
                                   what="a write acknowledged after killing the leader")
                ms = (t_ack - t_kill) * 1000
                new_lead = c.leader()
                failovers.append(ms)
                log("round %d: killed leader node%d, new leader node%d, failover_ms=%.0f" % (
                    rnd + 1, lead.id, new_lead.id, ms))
                print("failover_ms=%.0f" % ms, flush=True)
                time.sleep(0.3)
                c.restart(lead)
            # a leader frozen by SIGSTOP is replaced; when it wakes up it
            # must step down and not serve stale data
            c.wait_ready(timeout=30)
            n0 = len(acks)
            wait_until(lambda: len(acks) >= n0 + 50, 20, what="writes to flow")
            lead = c.leader()
            others = [n for n in c.running() if n is not lead]
            t_pause = time.monotonic()
            c.pause(lead)
            # Writers that sent to the frozen leader (directly or forwarded by a
            # follower) wait for their timeouts, so probe with fresh requests
            # to the other nodes every 50 ms instead.
            t_ack = probe_until_acked(c, others, t_pause)
            new_lead = c.leader()
            log("paused leader node%d, new leader node%d, pause_failover_ms=%.0f" % (
                lead.id, new_lead.id, (t_ack - t_pause) * 1000))
            print("pause_failover_ms=%.0f" % ((t_ack - t_pause) * 1000), flush=True)
            r = c.request(new_lead, "PUT", "/v1/kv/paused-write", body="new")
            check(r.status == 200, "write while the old leader is paused", r)
            c.resume(lead)
            wait_until(lambda: c.status(lead)["state"] == "follower" and
                       (c.status(lead)["leader"] or {}).get("id") == new_lead.id, 10,
                       what="the resumed old leader node%d to step down" % lead.id)
            g = c.request(lead, "GET", "/v1/kv/paused-write")
            check(g.status == 200 and g.body == b"new",
                  "linearizable read on the resumed old leader misses a newer write", g)
            c.wait_ready(timeout=30)
            n0 = len(acks)
            wait_until(lambda: len(acks) >= n0 + 50, 20, what="writes to flow after the rounds")
        finally:
            stop.set()
            for w in writers:
                w.join(timeout=15)
        totals = {k: sum(w.counts[k] for w in writers) for k in ("ok", "failed", "unknown")}
        log("writes: %s" % totals)
        errs = [e for w in writers for e in w.errors]
        check(not errs, "unexpected answers to PUT during failover: %s" % errs[:5])
        print("failover_ms_all=%s" % ",".join("%.0f" % x for x in failovers))
        print("failover_ms_median=%.0f" % median(failovers), flush=True)
        check(max(failovers) < 10000, "failover took %.0f ms" % max(failovers))

        checked = check_no_lost_writes(c, writers)
        log("no acknowledged write lost (%d keys checked)" % checked)

        # every node, including the restarted ones, catches up to the latest revision
        lead = c.leader()
        r = c.request(lead, "PUT", "/v1/kv/final-marker", body="done")
        check(r.status == 200, "final write", r)
        final_rev = c.status(lead)["revision"]
        t0 = time.monotonic()
        for n in c.running():
            c.wait_applied(n, final_rev, timeout=20)
            g = c.request(n, "GET", "/v1/kv/final-marker?consistency=stale")
            check(g.status == 200 and g.body == b"done", "stale read on %r" % n, g)
        log("all nodes at revision %d (%.2fs)" % (final_rev, time.monotonic() - t0))
        ref = c.request(lead, "GET", "/v1/kv?prefix=w&consistency=stale").json()["items"]
        for n in c.running():
            items = c.request(n, "GET", "/v1/kv?prefix=w&consistency=stale").json()["items"]
            check(items == ref, "stale list on %r differs from the leader's" % n)


if __name__ == "__main__":
    run([test_failover])
