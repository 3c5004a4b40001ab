#!/usr/bin/env python3
"""raftplanectl with real proxies (issue 13's scenario): apply -> diff (0) ->
edit -> diff (1, the change shown) -> apply --dry-run (nothing committed, the
proxy named with the version it would get) -> apply --wait (every proxy
ACKs, at that version) -> traffic through the proxy reaches the new cluster;
proxies lists the proxy as synced -> rollback --wait to the first revision
-> the proxy serves the old route again."""

import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from proxyharness import Env, body_of, check, log, pick_ports, run, wait_body  # noqa: E402

CTL = os.environ.get("RP_CTL_BIN", "raftplanectl")


def ctl(env, *args):
    argv = [CTL, "--servers", env.servers()]
    if env.tls:
        argv += ["--cacert", env.tls.ca]
    argv += list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    log("$ %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout[-1500:], p.stderr[-1500:]))
    return p


MANIFEST = """\
kind: cluster
name: app
spec:
  endpoints:
    - address: 127.0.0.1
      port: {port}
---
kind: listener
name: edge
spec:
  address: 127.0.0.1
  port: {lport}
  nodes: ["*"]
---
kind: route
name: all
spec:
  listener: edge
  match:
    prefix: /
  cluster: app
"""


def test_apply_wait_traffic():
    with Env(servers=1) as env:
        a, b = env.backend("A"), env.backend("B")
        px = env.proxy("edge-1")
        lport = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % lport
        d = tempfile.mkdtemp(prefix="rp-ctlpx-", dir="/tmp")
        f = os.path.join(d, "mesh.yaml")
        with open(f, "w") as fh:
            fh.write(MANIFEST.format(port=a.addr.rsplit(":", 1)[1], lport=lport))
        p = ctl(env, "-o", "table", "apply", "-f", f, "--wait", "20s")
        check(p.returncode == 0 and "1/1 ACK" in p.stdout, "apply --wait", p.stdout, p.stderr)
        rev_a = int(re.search(r"applied as revision (\d+)", p.stdout).group(1))
        wait_body(lis, "A")
        p = ctl(env, "diff", "-f", f)
        check(p.returncode == 0, "no diff", p.stdout)
        with open(f, "w") as fh:
            fh.write(MANIFEST.format(port=b.addr.rsplit(":", 1)[1], lport=lport))
        p = ctl(env, "diff", "-f", f)
        check(p.returncode == 1 and re.search(r"^\+\s+\"port\": %s" % b.addr.rsplit(":", 1)[1],
                                              p.stdout, re.M), "diff shows the edit", p.stdout)
        p = ctl(env, "-o", "json", "apply", "--dry-run", "-f", f)
        check(p.returncode == 0, "apply --dry-run", p.stderr)
        dry = json.loads(p.stdout)
        check(dry["dry_run"] is True and [x["node_id"] for x in dry["proxies"]] == ["edge-1"] and
              dry["proxies"][0]["attached"] is True, "the attached proxy is named", dry)
        check(body_of(lis, "/x") == (200, "A"), "the dry run changed no traffic")
        p = ctl(env, "-o", "json", "apply", "-f", f, "--wait", "20s")
        check(p.returncode == 0, "apply --wait 2", p.stderr)
        applied = json.loads(p.stdout[:p.stdout.index("\n}") + 2])
        check(applied["revision"] == dry["would_be_revision"] ==
              dry["proxies"][0]["new_version"], "the dry run predicted the revision",
              applied, dry)
        # the rollout JSON follows the txn JSON
        check('"acked": 1' in p.stdout and '"pending": 0' in p.stdout, "all ACKed", p.stdout)
        # ACKed means applied: the very next request goes to B
        check(body_of(lis, "/x") == (200, "B"), "traffic reaches the new cluster")
        p = ctl(env, "-o", "json", "proxies")
        check(p.returncode == 0, "proxies", p.stderr)
        prx = json.loads(p.stdout)["proxies"]
        check([x["node_id"] for x in prx] == ["edge-1"] and prx[0]["state"] == "SYNCED",
              "proxy synced", prx)
        p = ctl(env, "-o", "table", "proxies")
        check(re.search(r"^edge-1\s+127\.0\.0\.1:\d+\s+\d+\s+\d+\s+\d+\s+SYNCED", p.stdout, re.M),
              "proxies table", p.stdout)
        # back to the first apply's revision: one new revision, ACKed, traffic to A
        p = ctl(env, "-o", "table", "rollback", str(rev_a), "--wait", "20s")
        check(p.returncode == 0 and "rolled back to revision %d" % rev_a in p.stdout and
              "1/1 ACK" in p.stdout, "rollback --wait", p.stdout, p.stderr)
        check(body_of(lis, "/x") == (200, "A"), "traffic follows the rollback")
        p = ctl(env, "diff", "-f", f)
        check(p.returncode == 1, "the file (B) now differs from the cluster (A)", p.stdout)
        del px


if __name__ == "__main__":
    run([test_apply_wait_traffic])
