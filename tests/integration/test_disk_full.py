#!/usr/bin/env python3
"""Disk full (issue 16): members whose data dir sits on a small tmpfs that
fills up during writes.

- test_follower_full: one follower's disk fills. The cluster keeps
  acknowledging writes; the full follower says so (/readyz 503 with
  "disk": "full" and a reason, raftplane_disk_state 1, one log line) and
  acknowledges nothing it did not store; once space returns it writes what
  it held and catches up without a restart.
- test_leader_full: the leader's disk fills: it stops serving writes,
  transfers leadership away, and the new leader goes on; the old one
  recovers without a restart once space returns.
- test_majority_full: two of three members fill up: no write is
  acknowledged while they are full; once space returns the cluster goes on.
Every test ends by reading every acknowledged write back from every member.

The tmpfs mounts need root. Without it the tests are skipped (exit 77),
unless CI is set in the environment: then a missing mount fails.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (Cluster, check, disk_free, log, mount_tmpfs, run, umount,  # noqa: E402
                       wait_until)

TMPFS_MB = 64           # raft_uv keeps an open segment and two spares of 8 MiB each
# snapshots often enough that the log (and so the tmpfs) stays small
ARGS = ["--snapshot-bytes", "8388608", "--snapshot-trailing-bytes", "2097152"]
VALUE_BYTES = 200_000   # ~40 writes fill a segment
LEFT_FREE = 1 << 20     # after the filler: too little for another segment
SKIP = 77


def value_of(key):
    seed = hashlib.sha256(key.encode()).hexdigest().encode()
    return (seed * (VALUE_BYTES // len(seed) + 1))[:VALUE_BYTES]


def metric(c, node, name):
    r = c.try_request(node, "GET", "/metrics", timeout=3)
    m = r and re.search(r"^%s (\S+)$" % re.escape(name), r.body.decode(), re.M)
    return float(m.group(1)) if m else None


def readyz(c, node):
    r = c.try_request(node, "GET", "/readyz", timeout=3)
    return (r.status, r.json()) if r is not None else (None, None)


def on_tmpfs(c, node, size_mb=TMPFS_MB):
    """Move node's data dir onto a fresh tmpfs (node stopped meanwhile) and
    restart it with the same command line."""
    c.stop(node)
    keep = node.data_dir + ".before-tmpfs"
    shutil.move(node.data_dir, keep)
    err = mount_tmpfs(node.data_dir, size_mb)
    if err is not None:
        msg = "cannot mount a tmpfs on %s: %s" % (node.data_dir, err)
        if os.environ.get("CI"):
            raise AssertionError(msg + " (CI is set: this must work there)")
        log("SKIP: " + msg)
        c.close(check_logs=False)
        sys.exit(SKIP)
    c.add_cleanup(lambda: umount(node.data_dir))
    for name in os.listdir(keep):
        shutil.copy2(os.path.join(keep, name), node.data_dir)
    shutil.rmtree(keep)
    c.restart(node)


class Filler:
    """Takes all but LEFT_FREE bytes of a node's tmpfs."""

    def __init__(self, node):
        self.node = node
        self.path = os.path.join(node.data_dir, "zz-filler")  # a name raft ignores

    def fill(self):
        free = disk_free(self.node.data_dir)
        with open(self.path, "wb") as f:
            f.write(b"\xa5" * max(0, free - LEFT_FREE))
        log("%r: filled its tmpfs, %d bytes left" % (self.node, disk_free(self.node.data_dir)))

    def free(self):
        os.unlink(self.path)
        log("%r: space is back (%d bytes free)" % (self.node, disk_free(self.node.data_dir)))


class Writer:
    """Writes VALUE_BYTES values to fresh keys through any member, one at a
    time; records the keys whose write was acknowledged (200)."""

    def __init__(self, c, tag):
        self.c, self.tag = c, tag
        self.acked, self.unacked, self.i = [], [], 0
        self.lock = threading.Lock()

    def write_one(self, timeout=4.0, via=None):
        key = "%s-%d" % (self.tag, self.i)
        self.i += 1
        for node in [via] if via else [self.c.leader_or_none()] + self.c.running():
            if node is None:
                continue
            r = self.c.try_request(node, "PUT", "/v1/kv/" + key, body=value_of(key),
                                   timeout=timeout)
            if r is not None and r.status == 200:
                with self.lock:
                    self.acked.append(key)
                return True
            if r is not None and r.status == 503 and "outcome_unknown" in r.body.decode():
                break  # may be applied: never retried under the same key
        with self.lock:
            self.unacked.append(key)
        return False


def leader_or_none(c):
    for n in c.running():
        s = c.try_request(n, "GET", "/v1/status", timeout=1)
        if s is not None and s.status == 200 and s.json().get("leader_ready"):
            return n
    return None


Cluster.leader_or_none = leader_or_none


def check_all(c, keys):
    """Every member serves every key in @keys with its value."""
    c.wait_ready(timeout=60)
    rev = c.status(c.leader())["revision"]
    for n in c.running():
        c.wait_applied(n, rev, timeout=60)
        for key in keys:
            r = c.request(n, "GET", "/v1/kv/%s?consistency=stale" % key, timeout=10)
            check(r.status == 200 and r.body == value_of(key),
                  "%r does not serve the acknowledged %s (%s)" % (n, key, r.status))
    log("every member serves all %d acknowledged writes" % len(keys))


def wait_full(c, node, w, limit=400):
    """Write until @node reports its disk full; returns the number of writes."""
    for n in range(limit):
        w.write_one()
        if metric(c, node, "raftplane_disk_state") == 1:
            return n + 1
    raise AssertionError("%r never reported a full disk after %d writes" % (node, limit))


def check_reports_full(c, node):
    status, body = readyz(c, node)
    check(status == 503 and body.get("disk") == "full" and "no space" in body.get("reason", ""),
          "%r: /readyz should say the disk is full" % node, body)
    check(metric(c, node, "raftplane_disk_write_failures_total") >= 1, "failure counted")
    lines = [ln for ln in node.current_log().splitlines() if "ERROR" in ln and "disk full:" in ln]
    check(len(lines) == 1, "%r: one 'disk full' log line, got %d" % (node, len(lines)),
          node.current_log()[-1500:])
    log("%r reports: %s" % (node, body["reason"][:160]))


def wait_recovered(c, node, timeout=30):
    """@node writes what it held and is ready again, in the same process."""
    t0 = time.monotonic()
    wait_until(lambda: metric(c, node, "raftplane_disk_state") == 0 and
               metric(c, node, "raftplane_disk_held_writes") == 0, timeout,
               what="%r to write what it held" % node)
    wait_until(lambda: readyz(c, node)[0] == 200, timeout, what="%r ready again" % node)
    check(node.alive(), "%r recovered without a restart" % node)
    check("persist again" in node.current_log() or "disk full" not in node.current_log(),
          "recovery logged")
    log("%r recovered in %.1fs without a restart" % (node, time.monotonic() - t0))


def test_follower_full():
    with Cluster(3, election_timeout_ms=500, heartbeat_ms=50, name="follower-full", extra_args=ARGS) as c:
        victim = c.followers()[0]
        on_tmpfs(c, victim)
        c.wait_ready()
        fill = Filler(victim)
        fill.fill()
        w = Writer(c, "f")
        n = wait_full(c, victim, w)
        log("%r full after %d writes" % (victim, n))
        check_reports_full(c, victim)
        stored = c.status(victim)["commit_index"]
        before = len(w.acked)
        for _ in range(30):  # the other two are a majority: writes go on
            check(w.write_one(), "a write failed while only one follower is full", w.unacked)
        check(len(w.acked) == before + 30, "writes acknowledged during the outage")
        time.sleep(1)
        st = c.status(victim)
        check(st["commit_index"] <= stored + 2 and metric(c, victim, "raftplane_disk_held_writes")
              > 0, "the full follower applies nothing it could not store", st)
        fill.free()
        wait_recovered(c, victim)
        check_all(c, w.acked)
        # again, and this time stop it while it holds writes: SIGTERM exits
        # cleanly (held writes end canceled, unacknowledged) and the same
        # command line starts it again
        fill.fill()
        n = wait_full(c, victim, w)
        for _ in range(5):
            w.write_one()
        t0 = time.monotonic()
        c.stop(victim)
        log("%r full again after %d writes, stopped in %.1fs" % (victim, n, time.monotonic() - t0))
        c.restart(victim)
        for _ in range(5):
            w.write_one()
        fill.free()
        wait_recovered(c, victim)
        check_all(c, w.acked)


def test_restart_no_space():
    """A follower stopped and started again with 0 bytes free (what the
    jepsen disk nemesis with kills found: raft_uv's start-up probe needs a
    block, the node exited 2 and stayed down). It waits for space, says so
    in one log line, and starts by itself once space returns; the others
    acknowledge writes meanwhile and it serves all of them afterwards."""
    with Cluster(3, election_timeout_ms=500, heartbeat_ms=50, name="restart-full",
                 extra_args=ARGS) as c:
        victim = c.followers()[0]
        on_tmpfs(c, victim)
        c.wait_ready()
        w = Writer(c, "z")
        for _ in range(5):
            check(w.write_one(), "a write failed before the fill", w.unacked)
        c.stop(victim)
        fill = Filler(victim)
        fd = os.open(fill.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:  # every last byte
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\xa5" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        check(disk_free(victim.data_dir) == 0, "not full: %d" % disk_free(victim.data_dir))
        c.restart(victim, wait_http=False)
        wait_until(lambda: "waiting for space" in victim.current_log(), 20,
                   what="%r to say it waits for space" % victim)
        for _ in range(10):
            check(w.write_one(), "a write failed while a follower waits for space", w.unacked)
        time.sleep(1)
        check(victim.alive(), "%r exited on a full disk" % victim, victim.current_log()[-1500:])
        line = [ln for ln in victim.current_log().splitlines() if "waiting for space" in ln]
        check(len(line) == 1 and "ERROR" in line[0] and "0 bytes free" in line[0],
              "one clear log line", line)
        log("%r: %s" % (victim, line[0][-160:]))
        t0 = time.monotonic()
        fill.free()
        c.wait_ready(timeout=60, nodes=[victim])
        log("%r serving %.1fs after space returned, same process" % (
            victim, time.monotonic() - t0))
        check("bytes free in" in victim.current_log(), "start after the wait logged")
        check_all(c, w.acked)


def test_leader_full():
    with Cluster(3, election_timeout_ms=500, heartbeat_ms=50, name="leader-full", extra_args=ARGS) as c:
        victim = c.followers()[0]
        on_tmpfs(c, victim)
        c.wait_ready()
        r = c.request(c.leader(), "POST", "/v1/members/%d/leadership" % victim.id)
        check(r.status == 200, "transfer leadership to the node on tmpfs", r)
        wait_until(lambda: c.leader() is victim, 15, what="%r to lead" % victim)
        fill = Filler(victim)
        fill.fill()
        w = Writer(c, "l")
        n = wait_full(c, victim, w)
        t_full = time.monotonic()
        wait_until(lambda: c.leader() is not victim, 15, what="the full leader to step down")
        log("%r full after %d writes; stepped down in %.1fs, node%d leads" % (
            victim, n, time.monotonic() - t_full, c.leader().id))
        check("transferring leadership" in victim.current_log(), "step-down logged")
        check_reports_full(c, victim)
        for _ in range(20):
            check(w.write_one(), "a write failed after the new leader took over", w.unacked)
        fill.free()
        wait_recovered(c, victim)
        check_all(c, w.acked)


def test_majority_full():
    with Cluster(3, election_timeout_ms=500, heartbeat_ms=50, name="majority-full", extra_args=ARGS) as c:
        victims = c.followers()
        for v in victims:
            on_tmpfs(c, v)
        c.wait_ready()
        fills = [Filler(v) for v in victims]
        for f in fills:
            f.fill()
        w = Writer(c, "m")
        for _ in range(400):
            w.write_one(timeout=3)
            if all(metric(c, v, "raftplane_disk_state") == 1 for v in victims):
                break
        else:
            raise AssertionError("the followers never both reported a full disk")
        log("both followers full after %d writes (%d acknowledged)" % (w.i, len(w.acked)))
        # nothing can be stored on a majority now. The two full members have
        # the longest logs (in memory) and keep winning elections and handing
        # leadership to each other: no ready leader, no progress, no ack.
        healthy = [n for n in c.running() if n not in victims][0]
        before = len(w.acked)
        revs = {n.id: c.status(n)["revision"] for n in c.running()}
        for _ in range(4):
            w.write_one(timeout=5, via=healthy)
        check(len(w.acked) == before, "a write was acknowledged while a majority was full",
              w.acked[before:])
        check({n.id: c.status(n)["revision"] for n in c.running()} == revs,
              "a write was applied while a majority was full")
        log("no write acknowledged or applied while two of three members were full")
        for f in fills:
            f.free()
        for v in victims:
            wait_recovered(c, v, timeout=60)
        for _ in range(10):
            check(w.write_one(), "a write failed once space returned", w.unacked)
        check_all(c, w.acked)


class FailingDisk:
    """A node's data dir on ext4 on a loop device whose backing file is
    sparse on a small tmpfs ("outer"). Filling the outer tmpfs makes every
    new block the inner file system writes fail with EIO, while the inner
    one still reports free space: a disk that fails, not one that is full."""

    OUTER_MB = 48
    IMAGE_MB = 256

    def __init__(self, c, node):
        self.c, self.node = c, node
        self.outer = node.data_dir + ".outer"
        self.image = os.path.join(self.outer, "disk.img")
        self.filler = os.path.join(self.outer, "filler")
        self.loop = None

    def _sh(self, *argv):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return r.returncode, r.stdout.decode(errors="replace").strip()

    def setup(self):
        c, node = self.c, self.node
        c.stop(node)
        keep = node.data_dir + ".before-loop"
        shutil.move(node.data_dir, keep)
        err = mount_tmpfs(self.outer, self.OUTER_MB)
        if err is None:
            c.add_cleanup(lambda: umount(self.outer))
            with open(self.image, "wb") as f:
                f.truncate(self.IMAGE_MB << 20)
            rc, out = self._sh("mkfs.ext4", "-q", "-F", self.image)
            err = None if rc == 0 else "mkfs.ext4: " + out
        if err is None:
            rc, out = self._sh("losetup", "-f", "--show", self.image)
            err = None if rc == 0 else "losetup: " + out
            self.loop = out if rc == 0 else None
        if err is None:
            c.add_cleanup(self.detach)
            os.makedirs(node.data_dir)
            rc, out = self._sh("mount", self.loop, node.data_dir)
            err = None if rc == 0 else "mount: " + out
        if err is not None:
            msg = "cannot set up a loop device for %s: %s" % (node.data_dir, err)
            if os.environ.get("CI"):
                raise AssertionError(msg + " (CI is set: this must work there)")
            log("SKIP: " + msg)
            c.close(check_logs=False)
            sys.exit(SKIP)
        c.add_cleanup(lambda: umount(node.data_dir))
        for name in os.listdir(keep):
            shutil.copy2(os.path.join(keep, name), node.data_dir)
        shutil.rmtree(keep)
        os.sync()  # what the node had stored is on the device before it fails
        c.restart(node)

    def detach(self):
        umount(self.node.data_dir)
        if self.loop:
            self._sh("losetup", "-d", self.loop)
            self.loop = None

    def break_it(self):
        free = disk_free(self.outer)
        with open(self.filler, "wb") as f:
            f.write(b"\x5a" * free)
        log("%r: its disk now fails every new write (outer tmpfs full)" % self.node)

    def repair(self):
        """The operator's repair: space under the device again, the file
        system checked and mounted afresh."""
        os.unlink(self.filler)
        umount(self.node.data_dir)
        rc, out = self._sh("e2fsck", "-f", "-y", self.image)
        log("e2fsck after the failure: exit %d (%s)" % (rc, out.splitlines()[-1] if out else ""))
        rc, out = self._sh("mount", self.loop, self.node.data_dir)
        check(rc == 0, "remount after repair: " + out)


def test_follower_io_error():
    """A follower's disk fails with EIO (not ENOSPC): the node stops writing
    for good and says so (/readyz "disk": "failed", raftplane_disk_state 2,
    one log line), acknowledges nothing more, the other two go on; after the
    repair the same command line starts it and it catches up."""
    with Cluster(3, election_timeout_ms=500, heartbeat_ms=50, name="follower-eio",
                 extra_args=ARGS) as c:
        victim = c.followers()[0]
        disk = FailingDisk(c, victim)
        disk.setup()
        c.wait_ready()
        w = Writer(c, "e")
        for _ in range(10):
            check(w.write_one(), "a write failed before the disk broke", w.unacked)
        disk.break_it()
        for n in range(400):
            w.write_one()
            if metric(c, victim, "raftplane_disk_state") == 2:
                break
        else:
            raise AssertionError("%r never reported a failed disk" % victim)
        log("%r reports a failed disk after %d writes" % (victim, n + 1))
        status, body = readyz(c, victim)
        check(status == 503 and body.get("disk") == "failed", "/readyz says failed", body)
        lines = [ln for ln in victim.current_log().splitlines() if "disk failed:" in ln]
        check(len(lines) == 1, "one 'disk failed' log line, got %d" % len(lines),
              victim.current_log()[-1500:])
        log("%r: %s" % (victim, lines[0][:220]))
        applied = c.status(victim)["commit_index"]
        before = len(w.acked)
        for _ in range(30):
            check(w.write_one(), "a write failed while only one follower's disk failed",
                  w.unacked)
        check(len(w.acked) == before + 30, "writes acknowledged while the disk is failed")
        time.sleep(1)
        check(victim.alive(), "%r stays up to report the failure" % victim)
        check(c.status(victim)["commit_index"] <= applied + 2,
              "the failed follower stores nothing more", c.status(victim))
        check(metric(c, victim, "raftplane_disk_state") == 2, "the failure is for good")
        # repair and restart with the same command line
        c.kill(victim.id)
        disk.repair()
        outcome, rc = c.restart_outcome(victim.id, timeout=30)
        if outcome == "exited":
            # the failure damaged what it had written: it refuses to start and
            # names the file; the operator replaces the member (docs/operations.md)
            text = victim.current_log()
            log("%r refuses to start after the repair (exit %s): %s"
                % (victim, rc, text.strip().splitlines()[-1][:300]))
            last = text.strip().splitlines()[-1]
            check(rc != 0 and "refusing to start" in last and victim.data_dir in last,
                  "a refusal names the damaged file", text[-1500:])
            r = c.request(c.leader(), "DELETE", "/v1/members/%d" % victim.id)
            check(r.status == 200, "remove the member", r.body)
            for name in os.listdir(victim.data_dir):
                p = os.path.join(victim.data_dir, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
            c.rejoin(victim.id)
        else:
            log("%r starts again after the repair" % victim)
        for _ in range(10):
            check(w.write_one(), "a write failed after the repair", w.unacked)
        check_all(c, w.acked)


if __name__ == "__main__":
    run([test_follower_full, test_restart_no_space, test_leader_full, test_majority_full, test_follower_io_error])
