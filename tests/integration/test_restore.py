#!/usr/bin/env python3
"""raftplane-server --restore: a backup (GET /v1/backup) starts a new 3-node
cluster (bootstrap one, two join) holding every item and version, at the
backup's revision or above, with a new cluster id, its own members only,
and the backup's tokens; damaged or foreign files, a checksum mismatch,
--restore without --bootstrap and a data dir with raft data are refused
with exit 2 and the data dir left untouched."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (SERVER_BIN, Cluster, bearer, check, log, pick_ports, run,  # noqa: E402
                       wait_until)

KINDS = ("kv", "clusters", "routes", "listeners")


def dump(c, node):
    out = {}
    for k in KINDS:
        r = c.request(node, "GET", "/v1/%s" % k)
        check(r.status == 200, "list %s" % k, r.body)
        out[k] = r.json()
    return out


def items_of(d):
    """{(kind, name): the whole item (value, version) as JSON} from the lists."""
    res = {}
    for k, body in d.items():
        for it in body.get("items", []):
            res[(k, it.get("key", it.get("name")))] = json.dumps(it, sort_keys=True)
    return res


def refused(argv, what, expect, data_dir):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    check(r.returncode == 2, "%s: exit 2" % what, r.returncode, r.stderr[-800:])
    check(expect in r.stderr, "%s: message %r" % (what, expect), r.stderr[-800:])
    check(not os.path.exists(data_dir) or not os.listdir(data_dir),
          "%s: data dir left empty" % what, os.listdir(data_dir) if os.path.exists(data_dir)
          else None)
    log("refused %s: %s" % (what, r.stderr.strip().splitlines()[-1]))


def test_restore():
    tmp = tempfile.mkdtemp(prefix="rp-restore-", dir="/tmp")
    try:
        backup = os.path.join(tmp, "backup.db")
        with Cluster(3, name="restore-src") as src:
            lead = src.leader()
            for i in range(15):
                check(src.request(lead, "PUT", "/v1/kv/k%02d" % i, body="v%d" % i).status == 200,
                      "put")
            r = src.request(lead, "POST", "/v1/txn", {"ops": [
                {"op": "put", "kind": "clusters", "name": "web",
                 "value": {"endpoints": [{"address": "10.0.0.1", "port": 80}]}},
                {"op": "put", "kind": "kv", "name": "k01", "value": "again"},
                {"op": "delete", "kind": "kv", "name": "k02"}]})
            check(r.status == 200, "txn", r.body)
            tok = src.request(lead, "POST", "/v1/tokens", {"name": "ops", "role": "admin"})
            check(tok.status == 201, "token", tok.body)
            secret = tok.json()["token"]
            src.token = secret
            before = dump(src, lead)
            old_cid = src.request(lead, "GET", "/v1/status").json()["cluster_id"]
            old_http = {n.http for n in src.nodes.values()} | {n.raft for n in src.nodes.values()}
            b = src.request(lead, "GET", "/v1/backup", timeout=30)
            check(b.status == 200, "backup", b.status)
            rev = int(b.headers["x-raftplane-revision"])
            checksum = b.headers["x-raftplane-checksum"]
            with open(backup, "wb") as f:
                f.write(b.body)

        c = Cluster(1, name="restore-new", start=False)
        c.token = secret  # tokens are kept
        tf = os.path.join(tmp, "ops.token")  # the joiners' credential
        fd = os.open(tf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (secret + "\n").encode())
        os.close(fd)
        c.extra_args += ["--bootstrap-token-file", tf]
        c.extra_args += ["--restore", backup, "--restore-checksum", checksum]
        with c:
            c.start()
            c.extra_args = c.extra_args[:-4]  # joiners take no --restore
            c.add_node_by_join()
            c.add_node_by_join()
            lead = c.leader()
            st = c.request(lead, "GET", "/v1/status").json()
            check(st["revision"] >= rev, "revision continues from the backup's", st, rev)
            check(st["cluster_id"] and st["cluster_id"] != old_cid, "a new cluster id",
                  st["cluster_id"], old_cid)
            members = c.request(lead, "GET", "/v1/members").json()["members"]
            mine = {(n.id, n.http) for n in c.nodes.values()}
            check({(m["id"], m["http"]) for m in members} == mine, "only the new members",
                  members, mine)
            for m in members:
                check(m["http"] not in old_http and m.get("raft") not in old_http,
                      "an old member's address", m)
            want = items_of(before)
            for n in c.nodes.values():
                def same(n=n):
                    return items_of(dump(c, n)) == want
                wait_until(same, 20, what="node%d to hold the backup's items" % n.id)
            check(len(want) >= 15, "items compared", want)
            w = c.request(lead, "PUT", "/v1/kv/new", body="x")
            check(w.status == 200 and w.json()["version"] > rev, "a new write above the backup",
                  w.body, rev)
            check(c.request(lead, "GET", "/v1/kv/k00", headers={"Authorization": None}).status
                  == 401, "tokens kept: anonymous refused")
            check(c.request(lead, "GET", "/v1/kv/k00", headers=bearer(secret)).status == 200,
                  "the backup's token works")
            log("restore: %d items at revision %d, new id %s" % (len(want), rev,
                                                                 st["cluster_id"]))

        # refusals: each leaves its data dir empty
        data = open(backup, "rb").read()
        foreign = os.path.join(tmp, "foreign.db")
        db = sqlite3.connect(foreign)
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
        db.close()
        broken = bytearray(data)  # pages after the first overwritten: same length
        for i in range(4096, len(broken) - 1, 97):
            broken[i] = (broken[i] * 31 + 7) & 0xFF
        lowered = os.path.join(tmp, "lowered.db")  # revision below its items' versions
        with open(lowered, "wb") as f:
            f.write(data)
        db = sqlite3.connect(lowered)
        db.execute("UPDATE meta SET value = 1 WHERE key = 'revision'")
        db.commit()
        db.close()
        bad = {
            "damaged": (bytes(broken), "damaged database"),
            "lowered": (open(lowered, "rb").read(), "not a usable raftplane backup"),
            "truncated": (data[:len(data) // 2], "truncated"),
            "random": (os.urandom(len(data)), "not a SQLite database"),
            "foreign": (open(foreign, "rb").read(), "not a raftplane backup"),
        }
        rp, hp = pick_ports(2)
        addr_r, addr_h = "127.0.0.1:%d" % rp, "127.0.0.1:%d" % hp
        base = [SERVER_BIN, "--id", "1", "--raft", addr_r, "--http", addr_h]
        boot = ["--bootstrap", "1=%s@%s" % (addr_r, addr_h)]
        for name, (blob, msg) in bad.items():
            path = os.path.join(tmp, name + ".db")
            with open(path, "wb") as f:
                f.write(blob)
            d = os.path.join(tmp, "d-" + name)
            refused(base + ["--data-dir", d, "--restore", path] + boot, name, msg, d)
        d = os.path.join(tmp, "d-sum")
        wrong = "sha256=" + hashlib.sha256(b"other").hexdigest()
        refused(base + ["--data-dir", d, "--restore", backup, "--restore-checksum", wrong] + boot,
                "checksum mismatch", "not the sha256=", d)
        refused(base + ["--data-dir", d, "--restore", backup], "no --bootstrap",
                "--restore needs --bootstrap", d)
        # a data dir with raft data: a node that ran once
        d = os.path.join(tmp, "d-used")
        p = subprocess.Popen(base + ["--data-dir", d] + boot, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: os.path.exists(d) and any(
                f.startswith("0000") or f.startswith("open-") for f in os.listdir(d)), 15,
                what="raft files")
        finally:
            p.terminate()
            p.wait(15)
        files = sorted(os.listdir(d))
        r = subprocess.run(base + ["--data-dir", d, "--restore", backup] + boot,
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 2 and "already holds raft data" in r.stderr,
              "restore into a used data dir", r.returncode, r.stderr[-600:])
        check(sorted(os.listdir(d)) == files, "used data dir unchanged", files, os.listdir(d))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run([test_restore])
