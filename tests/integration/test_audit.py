#!/usr/bin/env python3
"""The audit trail on real servers: writes by two tokens through the leader
and a follower appear in /v1/history with the right actor, client address,
time and changes; token and membership changes are recorded (never a
secret); the filters and both orders work, bad filters are 400; a forwarded
client address is believed only from a member; tokens off records
"anonymous"."""

import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (Cluster, bearer, check, check_error, log, make_token, run,  # noqa: E402
                       ssl_for)


def request_from(addr, method, path, body=None, headers=None, source="127.0.0.1"):
    """One request from @source; (Response-like tuple, our 'IP:port')."""
    host, port = addr.rsplit(":", 1)
    ctx = ssl_for(addr)  # TLS when the node serves TLS
    if ctx is not None:
        conn = http.client.HTTPSConnection(host, int(port), timeout=10,
                                           source_address=(source, 0), context=ctx)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=10,
                                          source_address=(source, 0))
    try:
        conn.connect()
        local = "%s:%d" % conn.sock.getsockname()[:2]
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        data = r.read()
        return r.status, data, local
    finally:
        conn.close()


def wall_ms():
    return int(time.time() * 1000)


def history(c, node, query=""):
    r = c.request(node, "GET", "/v1/history" + query)
    check(r.status == 200, "GET /v1/history%s" % query, r.status, r.body)
    return r.json()


def test_audit_trail():
    tok = make_token()
    with Cluster(3, name="audit", bootstrap_token=tok) as c:
        lead = c.leader()
        fol = [n for n in c.running() if n is not lead]
        secrets = {}
        for name in ("alice", "bob"):
            r = c.request(lead, "POST", "/v1/tokens", {"name": name, "role": "write"})
            check(r.status == 201, "create %s" % name, r.body)
            secrets[name] = r.json()["token"]
        # writes: alice through the leader, bob through a follower (forwarded)
        expect = {}
        for who, node, key in (("alice", lead, "a1"), ("bob", fol[0], "b1"),
                               ("alice", fol[1], "a2"), ("bob", lead, "b2")):
            t0 = wall_ms()
            st, body, local = request_from(node.http, "PUT", "/v1/kv/" + key, body="v",
                                           headers=bearer(secrets[who]))
            t1 = wall_ms()
            check(st == 200, "PUT %s by %s" % (key, who), st, body)
            rev = json.loads(body)["version"]
            expect[rev] = (who, key, local, t0, t1)
        # a mesh write and a transaction by bob
        st, body, local = request_from(fol[0].http, "POST", "/v1/txn", headers=bearer(
            secrets["bob"]), body={"ops": [{"op": "put", "kind": "kv", "name": "t1", "value": "x"},
                                           {"op": "put", "kind": "kv", "name": "t2", "value": "y"}]})
        check(st == 200, "txn", st, body)
        txn_rev = json.loads(body)["revision"]

        h = history(c, fol[1])
        recs = {x["revision"]: x for x in h["history"]}
        check([x["revision"] for x in h["history"]] == sorted(recs, reverse=True),
              "newest first by default", h)
        for rev, (who, key, local, t0, t1) in expect.items():
            x = recs.get(rev)
            check(x is not None, "revision %d missing from the history" % rev, h)
            check(x["actor"] == "token:" + who, "actor of rev %d" % rev, x)
            check(x["address"] == local, "address of rev %d: %s, not the client's %s" % (
                rev, x["address"], local), x)
            check(t0 - 1000 <= x["time"] <= t1 + 1000, "time of rev %d: %d not in [%d, %d]" % (
                rev, x["time"], t0, t1), x)
            check(x["changes"] == [{"kind": "kv", "name": key, "type": "put", "version": rev}],
                  "changes of rev %d" % rev, x)
        tx = recs[txn_rev]
        check(tx["actor"] == "token:bob" and [ch["name"] for ch in tx["changes"]] == ["t1", "t2"],
              "txn record", tx)
        # token changes: recorded, by whom, never a secret or a hash
        tk = history(c, lead, "?kind=tokens&order=asc")["history"]
        check([(x["changes"][0]["name"], x["actor"]) for x in tk] == [
            ("bootstrap", "system:bootstrap-token-file"), ("alice", "token:bootstrap"),
            ("bob", "token:bootstrap")], "token history", tk)
        raw = c.request(lead, "GET", "/v1/history?limit=1000").body
        for s in list(secrets.values()) + [tok]:
            check(s.encode() not in raw and s[4:].encode() not in raw, "a secret in the history")

        # filters
        def revs(q, node=lead):
            return [x["revision"] for x in history(c, node, q)["history"]]
        alice = sorted(r for r, e in expect.items() if e[0] == "alice")
        check(revs("?actor=token:alice&kind=kv") == alice[::-1], "actor filter",
              revs("?actor=token:alice&kind=kv"))
        check(revs("?kind=kv&name=b1") == [r for r, e in expect.items() if e[1] == "b1"],
              "kind+name filter")
        lo, hi = min(expect), max(expect)
        check(revs("?from_revision=%d&to_revision=%d&order=asc" % (lo, hi)) ==
              list(range(lo, hi + 1)), "revision range, oldest first")
        check(revs("?limit=2") == sorted(recs, reverse=True)[:2], "limit")
        check(revs("?actor=nobody") == [], "unknown actor")
        sys_revs = revs("?actor=system")
        check(sys_revs and all(recs.get(r, {}).get("actor", "system") == "system"
                               for r in sys_revs), "system actor", sys_revs)
        # bad filters: 400, nothing read
        for q in ("limit=0", "limit=1001", "limit=x", "limit=-1", "kind=nope", "kind=",
                  "from_revision=-1", "from_revision=1x", "to_revision=99999999999999999999",
                  "from_revision=5&to_revision=4", "order=sideways", "name=bad%2Fname",
                  "name=" + "n" * 129, "actor=has%20space", "actor=" + "a" * 300,
                  "limit=1&limit=2"):
            check_error(c.request(lead, "GET", "/v1/history?" + q), 400, "invalid_argument",
                        "history?" + q)

        # a client that claims another address: believed only from a member
        st, body, local = request_from(lead.http, "PUT", "/v1/kv/spoof", body="v", headers=dict(
            bearer(secrets["alice"]), **{"x-raftplane-client": "203.0.113.9:4444",
                                         "x-raftplane-forwarded": "1"}), source="127.0.0.2")
        check(st == 200, "write from 127.0.0.2", st, body)
        x = history(c, lead, "?kind=kv&name=spoof")["history"][0]
        check(x["address"] == local and local.startswith("127.0.0.2:"),
              "a non-member's x-raftplane-client was believed", x, local)

        # membership changes are recorded
        victim = c.nodes[3] if c.nodes[3] is not lead else c.nodes[2]
        st, body, local = request_from(lead.http, "DELETE", "/v1/members/%d" % victim.id,
                                       headers=bearer(tok))
        check(st == 200, "remove a member", st, body)
        victim.removed = True
        c.stop(victim)
        m = history(c, lead, "?kind=members&name=%d" % victim.id)["history"]
        check(m and m[0]["changes"][0]["type"] == "delete" and m[0]["actor"] == "token:bootstrap"
              and m[0]["address"] == local, "member removal record", m)
        log("audit: %d records checked, filters and bad filters ok" % len(expect))


def test_anonymous():
    with Cluster(1, name="audit-open") as c:
        n = c.leader()
        st, body, local = request_from(n.http, "PUT", "/v1/kv/x", body="1")
        check(st == 200, "put", st, body)
        x = history(c, n, "?kind=kv")["history"][0]
        check(x["actor"] == "anonymous" and x["address"] == local, "anonymous record", x)
        # tokens off: /v1/tokens works too, and creating one closes the cluster
        r = c.request(n, "POST", "/v1/tokens", {"name": "first", "role": "admin"})
        check(r.status == 201, "create the first token on an open cluster", r.body)
        t = r.json()["token"]
        check(c.request(n, "GET", "/v1/status").status == 401, "still open after a token")
        check(c.request(n, "GET", "/v1/status", headers=bearer(t)).status == 200, "token works")
        check_error(c.request(n, "GET", "/v1/kv/x"), 401, "unauthenticated", "closed")


if __name__ == "__main__":
    run([test_audit_trail, test_anonymous])
