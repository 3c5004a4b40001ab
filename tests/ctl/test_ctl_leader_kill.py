#!/usr/bin/env python3
"""raftplanectl apply while the leader dies (a real 3-node cluster; the
leader is listed first in --servers).

- parked in the socket: the leader is SIGSTOPped before the CLI starts; once
  the CLI's bytes sit unread in the leader's receive queue (seen in
  /proc/net/tcp) the leader is SIGKILLed. Plain http: the whole request was
  sent and never read, so the CLI must exit 5 "outcome is unknown" without
  resending, and nothing is applied. TLS: the bytes are the ClientHello, the
  handshake never finished, so nothing was sent: the CLI must go to the next
  server and apply the transaction exactly once (or exit 5 on no_leader with
  nothing applied).
- parked in raft: both followers are SIGSTOPped, the leader takes the
  request and appends it to its log (last_index grows) but cannot commit; it
  is SIGKILLed and the followers resumed. The CLI must exit 5 "outcome is
  unknown"; the new leader may or may not commit the entry.
- already dead: the leader is SIGKILLed before the CLI starts; the refused
  connection is safe to retry: exit 0, applied exactly once.

In every case, after a new leader is elected, the history shows the
transaction at most once and all-or-nothing: all four items with the
revision's version, or none of them. Each case runs LOOPS times
(RP_CTL_KILL_LOOPS, default 5) on its own cluster, restarting the killed
node in between."""

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402

CTL = os.environ.get("RP_CTL_BIN", "raftplanectl")
WORK = tempfile.mkdtemp(prefix="rp-ctl-kill-", dir="/tmp")
atexit.register(shutil.rmtree, WORK, True)
LOOPS = int(os.environ.get("RP_CTL_KILL_LOOPS", "5"))
CLI_TIMEOUT = 30  # a CLI still running after this has hung

_seq = [0]


def manifest():
    """A new four-document transaction (cluster, listener, route, kv) with
    names unique to this call; returns (path, [(kind, name)])."""
    _seq[0] += 1
    n = _seq[0]
    text = """\
kind: cluster
name: lk{n}-c
spec:
  endpoints:
    - address: 127.0.0.1
      port: 9001
---
kind: listener
name: lk{n}-l
spec:
  address: 127.0.0.1
  port: {port}
  nodes: ["*"]
---
kind: route
name: lk{n}-r
spec:
  listener: lk{n}-l
  match: {{prefix: /}}
  cluster: lk{n}-c
---
kind: kv
name: lk{n}-k
spec: value-{n}
""".format(n=n, port=20000 + n)
    path = os.path.join(WORK, "lk%d.yaml" % n)
    with open(path, "w") as f:
        f.write(text)
    items = [("clusters", "lk%d-c" % n), ("listeners", "lk%d-l" % n),
             ("routes", "lk%d-r" % n), ("kv", "lk%d-k" % n)]
    return path, items


def ctl_argv(c, servers, *args):
    argv = [CTL, "--servers", ",".join(n.http for n in servers), "--timeout", "10s"]
    if c.pki:
        argv += ["--cacert", c.pki.ca]
    return argv + list(args)


def start_cli(c, servers, *args):
    argv = ctl_argv(c, servers, *args)
    log("$ " + " ".join(argv[1:]))
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_cli(p):
    try:
        out, err = p.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError("raftplanectl hung for %ds" % CLI_TIMEOUT)
    log("-> %d\n%s%s" % (p.returncode, out[-1500:], err[-1500:]))
    return p.returncode, out, err


def servers_leader_first(c, ld):
    return [ld] + [c.node(i) for i in sorted(c.nodes) if c.node(i) is not ld]


def unread_bytes_on(port):
    """Bytes waiting unread in the receive queues of established TCP
    connections whose local port is @port (accepted or still in the accept
    queue)."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for ln in lines:
            fields = ln.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                total += int(queues.split(":")[1], 16)
    return total


def sigkill(c, node):
    """SIGKILL without a SIGCONT first (the harness's kill() resumes a paused
    node, which would let it read the parked request)."""
    node.expect_exit = True
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait(timeout=10)
    node.paused = False


def applied_count(c, items):
    """After a new leader: how many revisions carry this transaction, checked
    all-or-nothing. Returns 0 or 1."""
    ld = c.leader(timeout=20)
    revs = {}
    for kind, name in items:
        r = c.request(ld, "GET", "/v1/history?name=%s&limit=1000" % name)
        check(r.status == 200, "history of %s" % name, r.status, r.body)
        for rec in r.json()["history"]:
            for ch in rec["changes"]:
                if ch["name"] == name and ch["kind"] == kind:
                    revs.setdefault(rec["revision"], []).append((kind, name, ch))
    check(len(revs) <= 1, "the transaction was applied more than once", revs)
    present = []
    for kind, name in items:
        r = c.request(ld, "GET", "/v1/%s/%s" % (kind, name))
        check(r.status in (200, 404), "get %s/%s" % (kind, name), r.status, r.body)
        if r.status == 200:
            present.append((kind, name, r.headers.get("etag")))
    if not revs:
        check(not present, "items present without a history record", present)
        return 0
    rev, changes = next(iter(revs.items()))
    check(len(changes) == len(items), "not all-or-nothing: revision %d has %d of %d items"
          % (rev, len(changes), len(items)), changes)
    check(all(ch["type"] == "put" and ch["version"] == rev for _, _, ch in changes),
          "versions differ from the revision", rev, changes)
    check(len(present) == len(items), "not all-or-nothing: %d of %d items present"
          % (len(present), len(items)), present)
    check(all(e == '"%d"' % rev for _, _, e in present), "item versions", rev, present)
    return 1


def quiet_last_index(c, ld):
    """The leader's last log index once nothing else is in flight: the
    members seed a new cluster proposes once ready is applied (revision >= 1),
    every entry is committed and applied, and last_index stayed the same for
    0.3 s (after an apply the leader appends a commit-push barrier on its next
    loop turn). Then only the CLI's transaction can make last_index grow."""
    prev = [None]

    def quiet():
        s = c.status(ld)
        ok = s["revision"] >= 1 and s["commit_index"] == s["last_index"] == s["applied_index"]
        cur = s["last_index"] if ok else None
        stable = cur is not None and cur == prev[0]
        prev[0] = cur
        return cur if stable else None
    return wait_until(quiet, timeout=10, interval=0.3, what="a quiet leader")


def heal(c, node):
    """Restart the killed node and wait until all three are ready again."""
    c.restart(node)
    c.wait_ready(timeout=30)


def test_leader_parked_in_socket():
    outcomes = []
    with Cluster(3) as c:
        for _ in range(LOOPS):
            ld = c.leader()
            path, items = manifest()
            c.pause(ld)
            p = start_cli(c, servers_leader_first(c, ld), "-o", "json", "apply", "-f", path)
            try:
                wait_until(lambda: unread_bytes_on(ld.http_port) > 0, timeout=10,
                           what="the CLI's bytes in the stopped leader's receive queue")
            finally:
                sigkill(c, ld)
            rc, out, err = finish_cli(p)
            n = applied_count(c, items)
            if not c.pki:
                # the whole request was sent and can never have been read
                check(rc == 5 and "outcome is unknown" in err and "NOT resent" in err,
                      "sent, no answer: exit 5 outcome unknown", rc, err)
                check(n == 0, "a request the dead leader never read was applied (resent?)")
            else:
                # only the ClientHello went out: retrying is safe and expected
                check("trying the next server" in err, "failover after the handshake", err)
                if rc == 0:
                    check(n == 1, "exit 0 but applied %d times" % n)
                    check(json.loads(out)["revision"] > 0, "revision printed", out)
                else:
                    check(rc == 5 and "no_leader" in err and n == 0,
                          "only no_leader may fail", rc, err, n)
            outcomes.append((rc, n))
            heal(c, ld)
    log("parked in socket: (exit, applied) per loop: %s" % outcomes)


def test_leader_parked_in_raft():
    outcomes = []
    with Cluster(3) as c:
        for _ in range(LOOPS):
            ld = c.leader()
            fol = [n for n in c.running() if n is not ld]
            path, items = manifest()
            before = quiet_last_index(c, ld)
            for f in fol:
                c.pause(f)
            p = start_cli(c, servers_leader_first(c, ld), "-o", "json", "apply", "-f", path)
            try:
                wait_until(lambda: c.status(ld)["last_index"] > before, timeout=10,
                           what="the transaction in the leader's log")
            finally:
                sigkill(c, ld)
                for f in fol:
                    c.resume(f)
            rc, out, err = finish_cli(p)
            n = applied_count(c, items)  # at most once, all or nothing
            check(rc == 5 and "outcome is unknown" in err and "NOT resent" in err,
                  "proposed, then the leader died: exit 5 outcome unknown", rc, err)
            outcomes.append((rc, n))
            heal(c, ld)
    log("parked in raft: (exit, applied) per loop: %s" % outcomes)


def test_leader_already_dead():
    outcomes = []
    with Cluster(3) as c:
        for _ in range(LOOPS):
            ld = c.leader()
            path, items = manifest()
            servers = servers_leader_first(c, ld)
            c.kill(ld)
            p = start_cli(c, servers, "-o", "json", "apply", "-f", path)
            rc, out, err = finish_cli(p)
            check(rc == 0, "a refused connection is retried on the next server", rc, err)
            check("trying the next server" in err, "failover reported", err)
            res = json.loads(out)
            check(len(res["results"]) == len(items), "all results", res)
            n = applied_count(c, items)
            check(n == 1, "exit 0: applied exactly once", n)
            outcomes.append((rc, n))
            heal(c, ld)
    log("already dead: (exit, applied) per loop: %s" % outcomes)


if __name__ == "__main__":
    run([test_leader_parked_in_socket, test_leader_parked_in_raft, test_leader_already_dead])
