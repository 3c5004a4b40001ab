#!/usr/bin/env python3
"""Wall-clock jumps on one member (issue 16): the member runs under
libfaketime (Debian's faketime package) with its CLOCK_REALTIME stepped
forwards and backwards while writes, CAS increments and reads go on. The
monotonic clock is left alone, as an NTP step or an operator's `date -s`
leaves it.

Checked, first with the jumping member a follower, then as the leader, then
restarted while its clock is hours behind:
- no election is caused by a jump (the term stays put), so nothing in
  consensus (election timeouts, heartbeats, leadership checks) reads the
  wall clock;
- every acknowledged write is on every member at the end, the counter
  incremented by CAS equals the acknowledged increments (plus at most the
  indeterminate ones), and linearizable reads through the jumping member
  never go backwards nor miss an increment acknowledged before they began;
- the jump did take effect: the audit time of revisions the jumping leader
  proposed is its faked wall time (docs/operations.md lists every use of
  the wall clock).
"""

import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, error_code, log, run, wait_until  # noqa: E402

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
JUMPS = [("+2h", 2 * 3600), ("-3h", -3 * 3600), ("+1d", 86400), ("-10m", -600), ("+0", 0)]
HOLD_S = 2.5  # each offset is held this long (libfaketime re-reads the file every second)


class FakeClock:
    """The offset file libfaketime reads (FAKETIME_TIMESTAMP_FILE)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "faketime.rc")
        self.set("+0", 0)

    def set(self, spec, seconds):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(spec + "\n")
        os.rename(tmp, self.path)
        self.offset_s = seconds

    def env(self):
        asan = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        return {
            "LD_PRELOAD": FAKETIME_LIB,
            "FAKETIME_TIMESTAMP_FILE": self.path,
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # libfaketime is preloaded ahead of the sanitizer runtime
            "ASAN_OPTIONS": asan + ":verify_asan_link_order=0",
        }


class Load:
    """CAS increments of one counter (round robin over the members), puts of
    unique keys, and linearizable reads of the counter through one member."""

    def __init__(self, cluster, reader_node):
        self.c = cluster
        self.nodes = sorted(cluster.nodes.values(), key=lambda n: n.id)
        self.reader_node = reader_node
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked_incr = 0      # increments acknowledged
        self.unknown_incr = 0    # increments whose outcome is unknown
        self.acked_keys = []
        self.reads = 0
        self.errors = []
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self.incr, self.puts, self.read)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def incr(self):
        i = 0
        while not self.stop.is_set():
            node = self.nodes[i % len(self.nodes)]
            i += 1
            r = self.c.try_request(node, "GET", "/v1/kv/ctr", timeout=5)
            if r is None or r.status not in (200, 404):
                time.sleep(0.05)
                continue
            cur = int(r.body) if r.status == 200 else 0
            hdr = ({"If-Match": r.headers["etag"]} if r.status == 200
                   else {"If-None-Match": "*"})
            try:
                w = self.c.request(node, "PUT", "/v1/kv/ctr", body=str(cur + 1), headers=hdr,
                                   timeout=6)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.unknown_incr += 1
                continue
            with self.lock:
                if w.status == 200:
                    self.acked_incr += 1
                elif w.status == 503 and error_code(w) == "outcome_unknown":
                    self.unknown_incr += 1
                elif w.status not in (412, 503):
                    self.errors.append(("incr", w.status, w.body[:200]))

    def puts(self):
        n = 0
        while not self.stop.is_set():
            node = self.nodes[n % len(self.nodes)]
            key = "u-%d" % n
            n += 1
            r = self.c.try_request(node, "PUT", "/v1/kv/" + key, body=key, timeout=6)
            if r is not None and r.status == 200:
                with self.lock:
                    self.acked_keys.append(key)
            elif r is not None and r.status != 503:
                with self.lock:
                    self.errors.append(("put", r.status, r.body[:200]))
            time.sleep(0.01)

    def read(self):
        last = 0
        while not self.stop.is_set():
            with self.lock:
                floor = self.acked_incr  # acknowledged before this read began
            r = self.c.try_request(self.reader_node, "GET", "/v1/kv/ctr", timeout=5)
            if r is None or r.status != 200:
                time.sleep(0.02)
                continue
            v = int(r.body)
            with self.lock:
                self.reads += 1
                if v < last:
                    self.errors.append(("read went backwards", last, v))
                if v < floor:
                    self.errors.append(("read missed acknowledged increments", floor, v))
            last = max(last, v)
            time.sleep(0.005)


def term_of(c, node):
    return c.status(node)["term"]


def sub_ack(node_id):
    """A SubscribeRequest ACKing version 0 (a node nothing names), wait 0:
    enough to make a fleet entry (docs/protocol.md, fleet state)."""
    def field(num, wire, payload):
        return bytes([num << 3 | wire]) + payload
    nid = node_id.encode()
    return field(1, 2, bytes([len(nid)]) + nid) + field(2, 0, b"\x00") + field(6, 0, b"\x01")


def fleet_entry(c, node, node_id):
    r = c.request(node, "GET", "/v1/proxies?scope=local")
    check(r.status == 200, "proxies on %r: %s" % (node, r.status))
    return [p for p in r.json()["proxies"] if p["node_id"] == node_id]


def register_proxy(c, node, node_id):
    r = c.request(node, "POST", "/v1/subscribe", body=sub_ack(node_id),
                  headers={"Content-Type": "application/x-protobuf"})
    check(r.status in (200, 304), "subscribe %s on %r: %s" % (node_id, node, r.status), r.body)
    check(fleet_entry(c, node, node_id), "no fleet entry for %s on %r" % (node_id, node))


def jump_through(c, clock, load, who, check_terms=True):
    """Step @clock through JUMPS while @load runs; the term must not move."""
    lead = c.leader()
    term0 = term_of(c, lead)
    times = {}
    for spec, secs in JUMPS:
        clock.set(spec, secs)
        log("%s: wall clock %s" % (who, spec))
        time.sleep(HOLD_S)
        # the fleet entry ages on the monotonic clock: no step drops it
        check(fleet_entry(c, clock.node, "edge-clock"),
              "%s %s: the fleet entry of edge-clock was dropped" % (who, spec))
        with load.lock:
            acked = load.acked_incr
        # a write now is stamped with the proposer's (faked?) clock
        r = c.request(lead, "PUT", "/v1/kv/stamp-%s-%s" % (who, spec.replace("+", "p").replace("-", "m")),
                      body="x", timeout=6)
        check(r.status == 200, "%s %s: write %s" % (who, spec, r.status), r.body)
        times[spec] = (int(r.headers["etag"].strip('"')), time.time(), secs)
        check(acked > 0, "%s %s: no increment acknowledged so far" % (who, spec))
    term1 = term_of(c, c.leader())
    if check_terms:
        check(term1 == term0 and c.leader() is lead,
              "%s: clock jumps caused an election (term %d -> %d)" % (who, term0, term1))
    return times


def audit_times(c, node, times, faked):
    """The history time of each stamped revision: the proposer's wall clock,
    faked (offset applied) or not."""
    for spec, (rev, real, secs) in times.items():
        r = c.request(node, "GET", "/v1/history?from_revision=%d&to_revision=%d" % (rev, rev))
        check(r.status == 200, "history %d: %s" % (rev, r.status), r.body)
        rec = r.json()["history"][0]
        want = real + (secs if faked else 0)
        got = rec["time"] / 1000.0
        check(abs(got - want) < 5, "revision %d (clock %s): audit time %.0f, expected %.0f"
              % (rev, spec, got, want))


def final_checks(c, load):
    load.finish()
    check(not load.errors, "unexpected answers or anomalies", load.errors[:10])
    check(load.reads > 20, "too few reads through the jumping member: %d" % load.reads)
    c.wait_ready(timeout=30)
    lead = c.leader()
    r = c.request(lead, "GET", "/v1/kv/ctr")
    check(r.status == 200, "ctr: %s" % r.status)
    v = int(r.body)
    check(load.acked_incr <= v <= load.acked_incr + load.unknown_incr,
          "counter %d, acknowledged increments %d (+%d unknown)"
          % (v, load.acked_incr, load.unknown_incr))
    rev = c.status(lead)["revision"]
    for n in c.running():
        c.wait_applied(n, rev)
        r = c.request(n, "GET", "/v1/kv?prefix=u-&consistency=stale")
        check(r.status == 200, "list on %r: %s" % (n, r.status))
        have = {i["key"] for i in r.json()["items"]}
        lost = [k for k in load.acked_keys if k not in have]
        check(not lost, "%r lost acknowledged writes" % n, lost[:10])
    log("ok: %d increments acknowledged (%d unknown), %d puts, %d reads"
        % (load.acked_incr, load.unknown_incr, len(load.acked_keys), load.reads))


def test_clock_jumps():
    # plain text: with TLS, the restart three hours behind cannot rejoin
    # (test_clock_behind_certificates)
    with Cluster(3, name="clockjump", tls=False) as c:
        c.leader()
        victim = c.followers()[0]
        clock = FakeClock(c.dir)
        c.stop(victim.id)
        c.restart(victim.id, extra_env=clock.env())
        c.wait_ready(timeout=30)
        clock.node = victim
        register_proxy(c, victim, "edge-clock")
        load = Load(c, victim)
        load.start()
        # the jumping member as a follower
        times = jump_through(c, clock, load, "follower")
        audit_times(c, victim, times, faked=False)
        # ... as the leader
        r = c.request(c.leader(), "POST", "/v1/members/%d/leadership" % victim.id, timeout=15)
        check(r.status == 200, "transfer to %r: %s" % (victim, r.status), r.body)
        wait_until(lambda: c.leader() is victim, 10, what="%r to lead" % victim)
        times = jump_through(c, clock, load, "leader")
        audit_times(c, victim, times, faked=True)
        # ... restarted while its clock is three hours behind
        clock.set("-3h", -3 * 3600)
        time.sleep(1.2)
        c.stop(victim.id)
        wait_until(lambda: c.leader() is not None, 15, what="a new leader")
        c.restart(victim.id, extra_env=clock.env())
        c.wait_ready(timeout=30)
        time.sleep(HOLD_S)
        clock.set("+0", 0)
        final_checks(c, load)


def metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all('%s="%s"' % kv in line for kv in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_clock_behind_certificates():
    """With TLS the wall clock does matter in one place: certificate validity.
    A member restarted with its clock three hours behind sees every peer's
    certificate as not yet valid: it cannot rejoin (the other two keep
    serving), it counts not_yet_valid refusals, and once its clock is right
    it catches up without a restart."""
    with Cluster(3, name="clockcert", tls=True) as c:
        c.leader()
        victim = c.followers()[0]
        clock = FakeClock(c.dir)
        clock.set("-3h", -3 * 3600)
        c.stop(victim.id)
        c.restart(victim.id, extra_env=clock.env())
        lead = c.leader()
        for i in range(20):
            r = c.request(lead, "PUT", "/v1/kv/behind-%d" % i, body="x", timeout=6)
            check(r.status == 200, "write while a member is behind: %s" % r.status, r.body)
        rev = c.status(lead)["revision"]

        def refusals():
            r = c.try_request(victim, "GET", "/metrics", timeout=2)
            if r is None or r.status != 200:
                return 0
            t = r.body.decode()
            return (metric_sum(t, "raftplane_raft_tls_failures_total", reason="not_yet_valid") +
                    metric_sum(t, "raftplane_tls_handshake_failures_total",
                               reason="not_yet_valid"))
        wait_until(lambda: refusals() > 0, 20,
                   what="%r to count not_yet_valid refusals" % victim)
        st = c.try_request(victim, "GET", "/v1/status", timeout=2)
        behind = st is None or st.status != 200 or st.json().get("revision", 0) < rev
        check(behind, "%r caught up although it cannot verify its peers" % victim)
        clock.set("+0", 0)
        c.wait_applied(victim, rev, timeout=30)
        log("ok: behind by 3h: not_yet_valid refusals, no catch-up; clock fixed: caught up")


if __name__ == "__main__":
    run([test_clock_jumps, test_clock_behind_certificates], title="clock jumps")
