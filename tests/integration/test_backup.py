#!/usr/bin/env python3
"""GET /v1/backup on real servers: the body is a SQLite database the sqlite3
CLI opens, holding exactly the items the API serves, with revision, cluster
id and checksum headers that match; the same answer through a follower
(forwarded); admin only when tokens are on; no query parameters."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, bearer, check, check_error, log, make_token, run  # noqa: E402

SQLITE = shutil.which("sqlite3")


def sql(path, query):
    r = subprocess.run([SQLITE, "-readonly", path, query], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, "sqlite3 %s %r" % (path, query), r.stderr)
    return r.stdout


def fetch_backup(c, node, tmp, name, headers=None):
    r = c.request(node, "GET", "/v1/backup", headers=headers, timeout=30)
    check(r.status == 200, "GET /v1/backup from %s" % node, r.status, r.body[:300])
    check(r.headers.get("content-type") == "application/vnd.sqlite3", "content type", r.headers)
    digest = hashlib.sha256(r.body).hexdigest()
    check(r.headers.get("x-raftplane-checksum") == "sha256=" + digest,
          "checksum header matches the body", r.headers.get("x-raftplane-checksum"), digest)
    check(r.body[:16] == b"SQLite format 3\x00", "body is a SQLite file", r.body[:16])
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(r.body)
    return r, path


def test_backup():
    check(SQLITE is not None, "the sqlite3 CLI is needed")
    tmp = tempfile.mkdtemp(prefix="rp-backup-", dir="/tmp")
    tok = make_token()
    try:
        with Cluster(3, name="backup", bootstrap_token=tok) as c:
            lead = c.leader()
            fol = [n for n in c.running() if n is not lead]
            want = {}
            for i in range(20):
                r = c.request(lead, "PUT", "/v1/kv/k%02d" % i, body="value %d" % i)
                check(r.status == 200, "put", r.body)
                want["k%02d" % i] = ("value %d" % i, r.json()["version"])
            r = c.request(fol[0], "POST", "/v1/txn", {"ops": [
                {"op": "put", "kind": "clusters", "name": "web",
                 "value": {"endpoints": [{"address": "10.0.0.1", "port": 80}]}},
                {"op": "delete", "kind": "kv", "name": "k03"}]})
            check(r.status == 200, "txn", r.body)
            del want["k03"]
            rev = r.json()["revision"]
            status = c.request(lead, "GET", "/v1/status").json()
            cid = status.get("cluster_id")

            r, path = fetch_backup(c, lead, tmp, "lead.db")
            check(int(r.headers["x-raftplane-revision"]) == rev, "revision header",
                  r.headers, rev)
            check(cid and r.headers.get("x-raftplane-cluster-id") == cid, "cluster id header",
                  r.headers, cid)
            tables = sql(path, ".tables").split()
            for t in ("items", "meta", "members", "tokens", "changes"):
                check(t in tables, "table %s in the backup" % t, tables)
            check(sql(path, "PRAGMA integrity_check;").strip() == "ok", "integrity_check")
            rows = sql(path, "SELECT name, value, version FROM items WHERE kind = "
                             "(SELECT kind FROM items WHERE name = 'k00') ORDER BY name;")
            got = {}
            for line in rows.splitlines():
                name, value, version = line.split("|")
                got[name] = (value, int(version))
            check(got == want, "kv items in the backup equal what was written", got, want)
            meta = dict(line.split("|") for line in sql(
                path, "SELECT key, value FROM meta;").splitlines())
            check(int(meta["revision"]) == rev, "meta revision", meta)
            check(sql(path, "SELECT count(*) FROM members;").strip() == "3", "3 members")

            # through a follower: forwarded, same headers, same state
            r2, path2 = fetch_backup(c, fol[1], tmp, "fol.db")
            check(r2.headers.get("x-raftplane-revision") == str(rev) and
                  r2.headers.get("x-raftplane-cluster-id") == cid,
                  "headers relayed by the follower", r2.headers)
            check(sql(path2, "SELECT kind, name, version FROM items ORDER BY 1, 2;") ==
                  sql(path, "SELECT kind, name, version FROM items ORDER BY 1, 2;"),
                  "same items through the follower")

            # HEAD: headers only
            h = c.request(lead, "HEAD", "/v1/backup")
            check(h.status == 200 and h.body == b"" and
                  h.headers.get("x-raftplane-checksum") == r.headers["x-raftplane-checksum"],
                  "HEAD", h.status, h.headers)
            # roles: admin only
            for role in ("read", "write"):
                t = c.request(lead, "POST", "/v1/tokens", {"name": role + "er", "role": role})
                check(t.status == 201, "create %s token" % role, t.body)
                check_error(c.request(lead, "GET", "/v1/backup",
                                      headers=bearer(t.json()["token"])),
                            403, "permission_denied", "%s token on /v1/backup" % role)
            check_error(c.request(lead, "GET", "/v1/backup", headers={"Authorization": None}),
                        401, "unauthenticated", "no token")
            check_error(c.request(lead, "GET", "/v1/backup?x=1"), 400, "invalid_argument",
                        "query parameter")
            check_error(c.request(lead, "POST", "/v1/backup", body={}), 405,
                        "method_not_allowed", "POST")
            log("backup: %d bytes at revision %d, checksum and tables ok" % (len(r.body), rev))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run([test_backup])
