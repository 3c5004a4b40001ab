#!/usr/bin/env python3
"""raftplanectl (issue 13) against a real cluster: status/members output
(json parsed, table against a golden file), get/put/delete, apply/diff with
FILE:LINE errors and all-or-nothing, yaml output, read failover to the next
server, a write whose connection breaks after sending (outcome unknown, exit
5, applied at most once), usage errors (exit 2)."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402

CTL = os.environ.get("RP_CTL_BIN", "raftplanectl")
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
WORK = tempfile.mkdtemp(prefix="rp-ctl-", dir="/tmp")


def ctl(c, *args, servers=None, stdin=None, timeout=60):
    argv = [CTL, "--servers", servers or ",".join(c.node(i).http for i in sorted(c.nodes))]
    if c.pki:
        argv += ["--cacert", c.pki.ca]
    argv += list(args)
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
    log("$ %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout[-1500:], p.stderr[-1500:]))
    return p


def revision(c):
    return c.status(c.leader())["revision"]


def write(name, text):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def normalise_status_table(text):
    out = []
    for ln in text.splitlines():
        ln = re.sub(r"127\.0\.0\.1:\d+", "ADDR", ln)
        ln = re.sub(r"\b(leader|follower)\b", "STATE", ln)
        ln = re.sub(r"\b(true|false)\b", "BOOL", ln)
        ln = re.sub(r"\d+", "N", ln)
        out.append(" ".join(ln.split()))
    return "\n".join(out).strip() + "\n"


def yaml_check(text):
    """A structural check of our YAML subset: every line is 'key: value',
    'key:' (a block follows, deeper), '- value' or '-' (a block follows); the
    indentation is in steps of 2."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    check(lines, "empty yaml")
    for i, ln in enumerate(lines):
        ind = len(ln) - len(ln.lstrip(" "))
        check(ind % 2 == 0, "odd indentation", ln)
        body = ln.strip()
        check(re.fullmatch(r'(- ?.*|"?[A-Za-z0-9_.-]+"?:( .+)?)', body), "not yaml-ish", ln)
        if body.endswith(":") or body == "-":
            nxt = lines[i + 1]
            check(len(nxt) - len(nxt.lstrip(" ")) > ind, "block not deeper", ln, nxt)
        if body.startswith('"') or ": \"" in body:
            val = body.split(": ", 1)[1] if ": " in body else body
            if val.startswith('"'):
                json.loads(val)  # quoted scalars are JSON strings


def test_status_members_output():
    with Cluster(3) as c:
        c.leader()
        p = ctl(c, "-o", "json", "status")
        check(p.returncode == 0, "status failed", p.stderr)
        st = json.loads(p.stdout)
        check(len(st["members"]) == 3, "3 members", st)
        check(st["leader"] == c.leader().id, "leader", st)
        check(st["healthy"] is True and st["reachable"] == 3, "healthy", st)
        check(sum(1 for m in st["members"] if m["state"] == "leader") == 1, "one leader", st)
        check(st["revision"] == revision(c), "revision", st)
        p = ctl(c, "-o", "table", "status")
        check(p.returncode == 0, "status table")
        got = normalise_status_table(p.stdout)
        with open(os.path.join(GOLDEN, "status.txt")) as f:
            want = f.read()
        check(got == want, "status table differs from golden", got, want)
        p = ctl(c, "-o", "json", "members", "list")
        m = json.loads(p.stdout)
        check(sorted(x["id"] for x in m["members"]) == [1, 2, 3], "members", m)
        p = ctl(c, "-o", "table", "members", "list")
        got = normalise_status_table(p.stdout)
        with open(os.path.join(GOLDEN, "members.txt")) as f:
            check(got == f.read(), "members table differs from golden", got)
        p = ctl(c, "-o", "yaml", "status")
        check(p.returncode == 0, "yaml status")
        yaml_check(p.stdout)
        check(re.search(r"^members:\n  -\n    applied_index: \d+\n(    \w+: .+\n)+  -\n", p.stdout, re.M),
              "yaml layout", p.stdout)


def test_get_put_delete_and_usage():
    with Cluster(1) as c:
        c.leader()
        r0 = revision(c)
        p = ctl(c, "put", "kv", "greeting", "hello")
        check(p.returncode == 0, "put kv", p.stderr)
        p = ctl(c, "-o", "table", "get", "kv", "greeting")
        check(p.stdout == "hello", "raw kv value", p.stdout)
        p = ctl(c, "-o", "json", "get", "kv", "greeting")
        check(json.loads(p.stdout)["value"] == "hello", "kv json", p.stdout)
        p = ctl(c, "put", "cluster", "c1", '{"endpoints":[{"address":"127.0.0.1","port":9}]}')
        check(p.returncode == 0, "put cluster", p.stderr)
        p = ctl(c, "-o", "json", "get", "clusters", "c1")
        check(json.loads(p.stdout)["endpoints"][0]["port"] == 9, "cluster", p.stdout)
        p = ctl(c, "-o", "json", "get", "cluster")
        check([i["name"] for i in json.loads(p.stdout)["items"]] == ["c1"], "list", p.stdout)
        check(revision(c) == r0 + 2, "two writes")
        p = ctl(c, "get", "kv", "nokey")
        check(p.returncode == 4 and "not_found" in p.stderr, "404 -> 4", p.stderr)
        p = ctl(c, "delete", "kv", "nokey")
        check(p.returncode == 4, "delete 404 -> 4")
        p = ctl(c, "put", "kv", "greeting", "x", "--if-version", "1")
        check(p.returncode == 3, "412 -> 3", p.stderr)
        p = ctl(c, "put", "cluster", "c1", "{bad json")
        check(p.returncode == 2, "bad json -> 2")
        p = ctl(c, "delete", "kv", "greeting")
        check(p.returncode == 0, "delete")
        check(revision(c) == r0 + 3, "three writes")
        for args in (["bogus"], ["get"], ["get", "nokind"], ["get", "kv", "a/b"],
                     ["-o", "xml", "status"], ["--timeout", "soon", "status"],
                     ["members", "remove", "zero"], ["apply"], ["apply", "-f", "x", "--prune"],
                     ["rollout", "abc"], ["--cert", "/nonexistent", "status"],
                     ["--servers", "", "status"], ["put", "kv"], ["history", "kv", "a", "b"]):
            p = ctl(c, *args)
            check(p.returncode == 2, "usage error must exit 2: %r" % args, p.stderr)
            check(p.stderr.strip(), "message for %r" % args)
        for cmd in ("status", "members", "get", "put", "delete", "apply", "diff", "proxies",
                    "rollout", "watch", "history", "rollback", "backup", "restore"):
            p = ctl(c, cmd, "--help")
            check(p.returncode == 0 and "usage" in p.stdout, "%s --help" % cmd, p.stdout)
        check(revision(c) == r0 + 3, "usage errors changed nothing")


MANIFEST = """\
kind: cluster
name: app-c1
spec:
  endpoints:
    - address: 127.0.0.1
      port: 9001
---
kind: listener
name: app-edge
spec:
  address: 127.0.0.1
  port: 10000
  nodes: ["*"]
"""

ROUTES = """\
- kind: route
  name: app-r1
  spec:
    listener: app-edge
    match: {prefix: /}
    cluster: app-c1
"""


def test_apply_diff_and_errors():
    with Cluster(1) as c:
        c.leader()
        d = os.path.join(WORK, "manifests")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "a.yaml"), "w") as f:
            f.write(MANIFEST)
        with open(os.path.join(d, "b.yaml"), "w") as f:
            f.write(ROUTES)
        p = ctl(c, "diff", "-f", d)
        check(p.returncode == 1 and "+++ clusters/app-c1" in p.stdout, "diff before apply",
              p.stdout)
        r0 = revision(c)
        p = ctl(c, "-o", "json", "apply", "-f", d)
        check(p.returncode == 0, "apply", p.stderr)
        res = json.loads(p.stdout)
        check(res["revision"] == r0 + 1 == revision(c), "one revision for three docs", res)
        check(len(res["results"]) == 3, "three results", res)
        p = ctl(c, "diff", "-f", d)
        check(p.returncode == 0 and p.stdout == "", "no diff after apply", p.stdout)
        with open(os.path.join(d, "a.yaml"), "w") as f:
            f.write(MANIFEST.replace("9001", "9002"))
        p = ctl(c, "diff", "-f", d)
        check(p.returncode == 1, "diff exit 1 after edit", p.stdout)
        old_ln = re.search(r'^-\s+"port": 9001,?$', p.stdout, re.M)
        new_ln = re.search(r'^\+\s+"port": 9002,?$', p.stdout, re.M)
        check(old_ln and new_ln, "the change shown", p.stdout)
        check(old_ln.start() < new_ln.start(), "-old before +new, as diff(1)", p.stdout)
        check("app-r1" not in p.stdout, "unchanged item not shown", p.stdout)
        # one bad document among good ones: nothing sent
        r1 = revision(c)
        bad = write("bad.yaml", MANIFEST + "---\nkind: gateway\nname: x\nspec: {}\n")
        p = ctl(c, "apply", "-f", bad)
        check(p.returncode == 2 and bad + ":15:" in p.stderr, "FILE:LINE of unknown kind",
              p.stderr)
        bad = write("bad2.yaml", MANIFEST + "---\nkind: cluster\nname: x\n")
        p = ctl(c, "apply", "-f", bad)
        check(p.returncode == 2 and bad + ":15:" in p.stderr and "spec" in p.stderr,
              "missing spec", p.stderr)
        bad = write("bad3.yaml", MANIFEST + "---\nkind: cluster\n  name: [x\n")
        p = ctl(c, "apply", "-f", bad)
        check(p.returncode == 2 and re.search(re.escape(bad) + r":1[56]:", p.stderr),
              "syntax error line", p.stderr)
        # server-side error mapped to its document: a dangling reference
        bad = write("bad4.yaml", MANIFEST + "---\nkind: route\nname: app-r2\nspec:\n"
                    "  listener: app-edge\n  match: {path: /x}\n  cluster: missing\n")
        p = ctl(c, "apply", "-f", bad)
        check(p.returncode == 3 and bad + ":15: routes/app-r2" in p.stderr, "op error line",
              p.stderr)
        check(revision(c) == r1, "bad applies changed nothing")
        # dry run: the same checks as apply, nothing committed
        edited = write("edited.yaml", MANIFEST.replace("9001", "9003"))
        p = ctl(c, "-o", "table", "apply", "--dry-run", "-f", edited)
        check(p.returncode == 0 and "dry run: nothing changed; would be revision %d (now %d)"
              % (r1 + 1, r1) in p.stdout, "dry run table", p.stdout, p.stderr)
        check(re.search(r"^  put clusters/app-c1: update$", p.stdout, re.M) and
              re.search(r"^  put listeners/app-edge: unchanged$", p.stdout, re.M) and
              re.search(r"^  any other node id: version %d -> %d$" % (r0 + 1, r1 + 1),
                        p.stdout, re.M), "dry run changes", p.stdout)
        p = ctl(c, "-o", "json", "apply", "--dry-run", "-f", edited)
        res = json.loads(p.stdout)
        check(res["dry_run"] is True and res["revision"] == r1 and
              res["would_be_revision"] == r1 + 1 and res["proxies"] == [] and
              res["other_nodes"] == {"version": r0 + 1, "new_version": r1 + 1},
              "dry run json", res)
        check(revision(c) == r1, "dry run committed nothing")
        p = ctl(c, "-o", "json", "get", "cluster", "app-c1")
        check(json.loads(p.stdout)["endpoints"][0]["port"] == 9001, "value untouched", p.stdout)
        bad = os.path.join(WORK, "bad4.yaml")
        p = ctl(c, "apply", "--dry-run", "-f", bad)
        check(p.returncode == 3 and bad + ":15: routes/app-r2" in p.stderr,
              "dry run names the failing document", p.stderr)
        # the raw API: a listener naming a node; unknown query parameters refused
        body = {"ops": [{"op": "put", "kind": "listeners", "name": "app-edge", "value": {
            "address": "127.0.0.1", "port": 10000, "nodes": ["n-7", "n-8"]}},
            {"op": "delete", "kind": "routes", "name": "app-r1"}]}
        r = c.request(c.leader(), "POST", "/v1/txn?dry_run=true", body=json.dumps(body))
        res = json.loads(r.body)
        check(r.status == 200 and sorted(x["node_id"] for x in res["proxies"]) ==
              ["n-7", "n-8"] and all(x["new_version"] == r1 + 1 and x["version"] == 0 and
                                     x["attached"] is False for x in res["proxies"]) and
              res["other_nodes"]["new_version"] == r1 + 1,
              "nodes named by a listener", r.status, res)
        check([x["change"] for x in res["changes"]] == ["update", "delete"], "changes", res)
        for q in ("?dry_run=yes", "?dryrun=true", "?dry_run=true&x=1", "?x=1"):
            r = c.request(c.leader(), "POST", "/v1/txn" + q, body=json.dumps(body))
            check(r.status == 400 and b"dry_run=true or dry_run=false" in r.body,
                  "query refused", q, r.status, r.body)
        r = c.request(c.leader(), "POST", "/v1/txn?dry_run=true", body=json.dumps(
            {"ops": [{"op": "delete", "kind": "kv", "name": "absent"}]}))
        check(r.status == 404, "dry run of a failing delete", r.status, r.body)
        check(revision(c) == r1, "dry runs and refusals changed nothing")
        # prune: needs the prefix; deletes what the files no longer name
        p = ctl(c, "put", "cluster", "app-old", '{"endpoints":[]}')
        p = ctl(c, "put", "cluster", "other", '{"endpoints":[]}')
        p = ctl(c, "-o", "json", "apply", "-f", d, "--prune", "--prune-prefix", "app-")
        check(p.returncode == 0, "apply --prune", p.stderr)
        ops = [(x["op"], x["name"]) for x in json.loads(p.stdout)["results"]]
        check(("delete", "app-old") in ops and ("delete", "other") not in ops, "prune", ops)
        p = ctl(c, "-o", "json", "get", "cluster", "app-c1")
        check(json.loads(p.stdout)["endpoints"][0]["port"] == 9002, "edit applied")
        p = ctl(c, "diff", "-f", d)
        check(p.returncode == 0, "clean after apply")
        # stdin, JSON documents
        p = ctl(c, "-o", "json", "apply", "-f", "-",
                stdin='{"kind":"kv","name":"k1","spec":"v1"}')
        check(p.returncode == 0, "apply json from stdin", p.stderr)
        p = ctl(c, "-o", "yaml", "get", "cluster", "app-c1")
        yaml_check(p.stdout)
        p = ctl(c, "-o", "json", "history", "clusters", "app-c1")
        check(p.returncode == 0 and json.loads(p.stdout)["history"], "history", p.stdout)
        # revision 1, the members seed, carries no time: "-", not 1970
        p = ctl(c, "-o", "table", "history")
        seed = [ln for ln in p.stdout.splitlines() if ln.split()[:1] == ["1"]]
        check(p.returncode == 0 and len(seed) == 1 and seed[0].split()[1:3] == ["-", "system"],
              "seed revision in the table", p.stdout)
        check("1970-" not in p.stdout, "no epoch times", p.stdout)
        # backup: streamed to FILE.tmp, the checksum header verified, renamed
        bk = os.path.join(WORK, "backup.db")
        p = ctl(c, "backup", bk)
        check(p.returncode == 0 and os.path.exists(bk) and not os.path.exists(bk + ".tmp"),
              "backup", p.stderr)
        with open(bk, "rb") as f:
            check(f.read(16) == b"SQLite format 3\x00", "the backup is a SQLite file")
        # rollback to before the first apply: the mesh empties in one revision,
        # kv stays; a second rollback to the same revision changes nothing
        r2 = revision(c)
        p = ctl(c, "-o", "table", "rollback", str(r0), "--dry-run")
        check(p.returncode == 0 and "would make revision %d (now %d)" % (r2 + 1, r2) in p.stdout
              and revision(c) == r2, "rollback --dry-run", p.stdout, p.stderr)
        p = ctl(c, "-o", "table", "rollback", str(r0))
        check(p.returncode == 0 and "rolled back to revision %d as revision %d" % (r0, r2 + 1)
              in p.stdout and re.search(r"^  delete routes/app-r1$", p.stdout, re.M),
              "rollback", p.stdout, p.stderr)
        p = ctl(c, "-o", "json", "get", "cluster")
        check(json.loads(p.stdout)["items"] == [], "no clusters at r0", p.stdout)
        p = ctl(c, "-o", "json", "get", "kv", "k1")
        check(p.returncode == 0, "kv not rolled back", p.stderr)
        p = ctl(c, "-o", "table", "rollback", str(r0))
        check(p.returncode == 0 and "nothing to roll back" in p.stdout and
              revision(c) == r2 + 1, "second rollback is a no-op", p.stdout)
        p = ctl(c, "rollback", str(r2 + 5))
        check(p.returncode == 1, "rollback to the future refused (400: exit 1)",
              p.returncode, p.stderr)
        check("ahead of the current revision" in p.stderr, "future message", p.stderr)


def test_failover_reads():
    with Cluster(3) as c:
        ld = c.leader()
        victim = [i for i in sorted(c.nodes) if c.node(i) is not ld][0]
        servers = ",".join([c.node(victim).http] + [c.node(i).http for i in sorted(c.nodes)
                                                     if i != victim])
        c.kill(victim)
        p = ctl(c, "-o", "json", "get", "cluster", servers=servers)
        check(p.returncode == 0 and "trying the next server" in p.stderr, "read failover",
              p.stderr)
        p = ctl(c, "put", "kv", "after-kill", "1", servers=servers)
        check(p.returncode == 0, "write after a refused connect goes to the next", p.stderr)
        p = ctl(c, "get", "kv", "x", servers="127.0.0.1:1")
        check(p.returncode == 5, "nothing answers -> 5")


class BreakingRelay:
    """Accepts one connection, reads a whole request (headers and
    Content-Length body), forwards it to @target, then closes the client
    side without an answer: a request that certainly arrived, with no
    answer."""

    def __init__(self, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.forwarded = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                cl, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(cl,), daemon=True).start()

    def one(self, cl):
        host, port = self.target.rsplit(":", 1)
        up = socket.create_connection((host, int(port)))
        buf = b""
        cl.settimeout(10)
        while b"\r\n\r\n" not in buf:
            b = cl.recv(65536)
            if not b:
                return
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        need = int(m.group(1)) if m else 0
        while len(rest) < need:
            rest += cl.recv(65536)
        up.sendall(head + b"\r\n\r\n" + rest)
        self.forwarded += 1
        up.recv(65536)  # the server's answer, dropped
        up.close()
        cl.close()

    def close(self):
        self.sock.close()


def test_outcome_unknown_not_resent():
    with Cluster(1, tls=False) as c:
        ld = c.leader()
        relay = BreakingRelay(ld.http)
        try:
            r0 = revision(c)
            p = ctl(c, "put", "kv", "once", "v", servers=relay.addr + "," + ld.http)
            check(p.returncode == 5 and "outcome is unknown" in p.stderr, "exit 5", p.stderr)
            check(relay.forwarded == 1, "sent once", relay.forwarded)
            wait_until(lambda: revision(c) == r0 + 1, what="the write applied")
            check(revision(c) == r0 + 1, "applied exactly once (not resent)")
            r1 = revision(c)
            p = ctl(c, "apply", "-f", "-", servers=relay.addr + "," + ld.http,
                    stdin="kind: kv\nname: t\nspec: x\n")
            check(p.returncode == 5, "apply outcome unknown -> 5", p.stderr)
            wait_until(lambda: revision(c) == r1 + 1, what="the txn applied")
            check(revision(c) == r1 + 1, "txn applied exactly once")
            # a read through the relay is retried on the next server
            p = ctl(c, "-o", "json", "get", "kv", "once", servers=relay.addr + "," + ld.http)
            check(p.returncode == 0 and json.loads(p.stdout)["value"] == "v", "read retried",
                  p.stderr)
        finally:
            relay.close()


if __name__ == "__main__":
    run([test_status_members_output, test_get_put_delete_and_usage, test_apply_diff_and_errors,
         test_failover_reads, test_outcome_unknown_not_resent])
