#!/usr/bin/env python3
"""Bootstrap, replication, linearizable and stale reads, KV preconditions,
listing, health/metrics endpoints, and a full-cluster restart."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, check_error, log, run, wait_until  # noqa: E402


def kv_put(c, node, key, value, headers=None):
    return c.request(node, "PUT", "/v1/kv/" + key, body=value, headers=headers)


def kv_get(c, node, key, stale=False):
    return c.request(node, "GET", "/v1/kv/" + key + ("?consistency=stale" if stale else ""))


def revision(c, node):
    return c.status(node)["revision"]


def etag_version(res):
    et = res.headers.get("etag")
    check(et is not None and re.fullmatch(r'"\d+"', et), "bad ETag %r" % et, res.body)
    return int(et.strip('"'))


def metric_samples(text):
    """{'name{labels}': float} from Prometheus text."""
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        name, _, val = ln.rpartition(" ")
        out[name] = float(val)
    return out


def check_status_shape(s, node):
    for f in ("id", "state", "leader", "term", "commit_index", "applied_index", "revision",
              "leader_ready"):
        check(f in s, "/v1/status of %r lacks %r" % (node, f), s)
    check(s["id"] == node.id, "status id %s != %s" % (s["id"], node.id), s)
    check(s["state"] in ("leader", "follower", "candidate"), "bad state", s)
    check(s["leader"] is None or set(s["leader"]) >= {"id", "raft", "http"}, "bad leader", s)


def test_cluster_basic():
    with Cluster(3, name="basic") as c:
        lead = c.leader()
        fol = [n for n in c.running() if n is not lead]
        for n in c.running():
            s = c.status(n)
            check_status_shape(s, n)
            check(s["leader"]["id"] == lead.id, "%r sees leader %s, not %s" % (n, s["leader"], lead.id))
            check(s["leader"]["http"] == lead.http and s["leader"]["raft"] == lead.raft,
                  "leader addresses wrong on %r" % n, s)
            check(s["leader_ready"] == (n is lead), "leader_ready wrong on %r" % n, s)
        m = c.request(fol[0], "GET", "/v1/members")
        check(m.status == 200, "members", m)
        got = sorted((x["id"], x["raft"], x["http"], x["role"]) for x in m.json()["members"])
        want = sorted((n.id, n.raft, n.http, "voter") for n in c.nodes.values())
        check(got == want, "members %s != %s" % (got, want))

        # -- write on a follower, read everywhere
        t0 = time.monotonic()
        r = kv_put(c, fol[0], "greeting", "hello")
        log("PUT via follower took %.1f ms" % ((time.monotonic() - t0) * 1000))
        check(r.status in (200, 201), "PUT on follower", r)
        j = r.json()
        check(j.get("key") == "greeting" and isinstance(j.get("version"), int), "PUT body", j)
        v1 = j["version"]
        check(etag_version(r) == v1, "PUT ETag != version")
        for n in c.running():
            g = kv_get(c, n, "greeting")
            check(g.status == 200 and g.body == b"hello", "linearizable GET on %r" % n, g)
            check(etag_version(g) == v1, "GET ETag on %r" % n)
        for n in c.running():
            wait_until(lambda: kv_get(c, n, "greeting", stale=True).body == b"hello", 5,
                       what="stale read of greeting on %r" % n)
        g = c.request(fol[1], "GET", "/v1/kv/greeting?consistency=linearizable")
        check(g.status == 200 and g.body == b"hello", "consistency=linearizable", g)

        # read-your-write through another follower, many times
        for i in range(20):
            r = kv_put(c, fol[i % 2], "ryw", "v%d" % i)
            check(r.status == 200, "PUT ryw", r)
            g = kv_get(c, fol[(i + 1) % 2], "ryw")
            check(g.body == b"v%d" % i, "linearizable read missed a just-acknowledged write", g)

        # raw bytes and empty values round-trip
        raw = bytes(range(256))
        r = c.request(fol[1], "PUT", "/v1/kv/bin", body=raw,
                      headers={"Content-Type": "application/octet-stream"})
        check(r.status == 200, "PUT binary", r)
        g = kv_get(c, fol[0], "bin")
        check(g.body == raw, "binary value changed in transit", g)
        r = c.request(fol[1], "PUT", "/v1/kv/empty", body=b"")
        check(r.status == 200, "PUT empty", r)
        g = kv_get(c, lead, "empty")
        check(g.status == 200 and g.body == b"", "empty value", g)

        # -- preconditions
        cur = etag_version(kv_get(c, lead, "greeting"))
        rev0 = revision(c, lead)
        for node, hdrs, what in [
            (fol[0], {"If-Match": '"%d"' % (cur + 1000)}, "If-Match wrong version"),
            (fol[1], {"If-Match": '"%d"' % (cur - 1)}, "If-Match older version"),
            (lead, {"If-None-Match": "*"}, "If-None-Match * on existing"),
        ]:
            r = kv_put(c, node, "greeting", "changed", headers=hdrs)
            check_error(r, 412, "precondition_failed", what)
            g = kv_get(c, lead, "greeting")
            check(g.body == b"hello" and etag_version(g) == cur, "%s changed the value" % what, g)
        r = c.request(fol[0], "DELETE", "/v1/kv/greeting", headers={"If-Match": '"%d"' % (cur + 7)})
        check_error(r, 412, "precondition_failed", "DELETE with wrong If-Match")
        r = kv_put(c, fol[0], "absent-key", "x", headers={"If-Match": "*"})
        check_error(r, 412, "precondition_failed", "If-Match * on absent key")
        check(kv_get(c, lead, "absent-key").status == 404, "If-Match * created the key")
        check(revision(c, lead) == rev0, "a failed precondition changed the revision %d -> %d"
              % (rev0, revision(c, lead)))

        r = kv_put(c, fol[1], "greeting", "hello2", headers={"If-Match": '"%d"' % cur})
        check(r.status == 200, "If-Match with current version", r)
        v2 = r.json()["version"]
        check(v2 > cur, "version did not grow %d -> %d" % (cur, v2))
        r = kv_put(c, fol[1], "greeting", "hello3", headers={"If-Match": '"%d"' % cur})
        check_error(r, 412, "precondition_failed", "If-Match with a stale version")
        r = kv_put(c, lead, "greeting", "hello3", headers={"If-Match": "*"})
        check(r.status == 200, "If-Match * on existing key", r)
        v3 = r.json()["version"]
        r = kv_put(c, fol[0], "fresh", "new", headers={"If-None-Match": "*"})
        check(r.status in (200, 201), "If-None-Match * on absent key", r)
        g = kv_get(c, fol[1], "fresh")
        check(g.body == b"new", "If-None-Match create", g)
        g = kv_get(c, fol[1], "greeting")
        check(g.body == b"hello3" and etag_version(g) == v3, "after CAS", g)

        # -- delete
        r = c.request(fol[1], "DELETE", "/v1/kv/fresh", headers={"If-Match": '"%d"' % etag_version(g)})
        check_error(r, 412, "precondition_failed", "DELETE fresh with greeting's version")
        r = c.request(fol[1], "DELETE", "/v1/kv/fresh")
        check(r.status == 200, "DELETE", r)
        j = r.json()
        check(j.get("key") == "fresh" and j.get("deleted") is True and isinstance(j.get("revision"), int),
              "DELETE body", j)
        for n in c.running():
            check_error(kv_get(c, n, "fresh"), 404, "not_found", "GET deleted key on %r" % n)
        check_error(c.request(fol[0], "DELETE", "/v1/kv/fresh"), 404, "not_found", "DELETE absent")
        check_error(kv_get(c, fol[0], "never-written"), 404, "not_found", "GET absent")

        # -- list with prefix
        for k in ("app.b", "app.a", "apx", "app", "zzz"):
            check(kv_put(c, fol[0], k, "val-" + k).status == 200, "PUT " + k)
        r = c.request(fol[1], "GET", "/v1/kv?prefix=app.")
        check(r.status == 200, "list prefix", r)
        j = r.json()
        names = [it["key"] for it in j["items"]]
        check(names == ["app.a", "app.b"], "prefix list %s" % names, j)
        for it in j["items"]:
            check(it["value"] == "val-" + it["key"] and isinstance(it["version"], int), "item", it)
        check(isinstance(j["revision"], int) and j["revision"] >= max(i["version"] for i in j["items"]),
              "list revision", j)
        r = c.request(lead, "GET", "/v1/kv?prefix=app")
        names = [it["key"] for it in r.json()["items"]]
        check(names == ["app", "app.a", "app.b"], "prefix 'app' list %s" % names)
        r = c.request(fol[0], "GET", "/v1/kv?prefix=nothing-here")
        check(r.status == 200 and r.json()["items"] == [], "empty prefix list", r)
        r = c.request(fol[0], "GET", "/v1/kv")
        allkeys = [it["key"] for it in r.json()["items"]]
        check(allkeys == sorted(allkeys) and {"app", "apx", "zzz", "greeting", "bin"} <= set(allkeys),
              "full list %s" % allkeys)
        r = c.request(fol[0], "GET", "/v1/kv?prefix=app.&consistency=stale")
        check(r.status == 200, "stale list", r)

        # -- health, readiness, metrics
        for n in c.running():
            r = c.request(n, "GET", "/healthz")
            check(r.status == 200, "healthz %r" % n, r)
            r = c.request(n, "GET", "/readyz")
            check(r.status == 200, "readyz %r" % n, r)
        m1 = c.request(fol[0], "GET", "/metrics")
        check(m1.status == 200 and m1.headers.get("content-type", "").startswith("text/plain"),
              "metrics", m1)
        text = m1.body.decode()
        for name in ("raftplane_raft_term", "raftplane_raft_commit_index",
                     "raftplane_raft_applied_index", "raftplane_apply_seconds_bucket",
                     "raftplane_apply_seconds_sum", "raftplane_apply_seconds_count",
                     "raftplane_http_requests_total"):
            check(re.search(r"^%s[ {]" % name, text, re.M), "/metrics lacks %s" % name)
        check("# TYPE raftplane_apply_seconds histogram" in text, "apply_seconds is not a histogram")
        s1 = metric_samples(text)
        key_ok = 'raftplane_http_requests_total{route="kv",status="200"}'
        key_404 = 'raftplane_http_requests_total{route="kv",status="404"}'
        before_ok, before_404 = s1.get(key_ok, 0), s1.get(key_404, 0)
        check(s1.get("raftplane_raft_term", 0) >= 1, "term metric", s1.get("raftplane_raft_term"))
        st = c.status(fol[0])
        check(s1["raftplane_raft_applied_index"] <= st["applied_index"], "applied_index metric")
        for i in range(5):
            kv_get(c, fol[0], "greeting")
        for i in range(3):
            kv_get(c, fol[0], "no-such-key")
        s2 = metric_samples(c.request(fol[0], "GET", "/metrics").body.decode())
        log("kv request counter on %r: 200: %d -> %d, 404: %d -> %d" % (
            fol[0], before_ok, s2.get(key_ok, 0), before_404, s2.get(key_404, 0)))
        check(s2.get(key_ok, 0) >= before_ok + 5, "kv 200 counter did not grow by 5")
        check(s2.get(key_404, 0) >= before_404 + 3, "kv 404 counter did not grow by 3")
        check(s2["raftplane_apply_seconds_count"] >= 1, "apply histogram empty")
        check(s2["raftplane_raft_commit_index"] >= s1["raftplane_raft_commit_index"], "commit index fell")

        # -- restart every node with the same command line
        snapshot = {}
        r = c.request(lead, "GET", "/v1/kv")
        for it in r.json()["items"]:
            snapshot[it["key"]] = it["version"]
        rev_before = revision(c, lead)
        for n in list(c.nodes.values()):
            c.stop(n)
        t0 = time.monotonic()
        for n in list(c.nodes.values()):
            c.restart(n)
        c.wait_ready(timeout=30)
        log("restart of all 3 nodes: ready again after %.2fs" % (time.monotonic() - t0))
        for n in c.running():
            check("bootstrapped" not in n.current_log(),
                  "%r bootstrapped again on restart" % n, n.current_log()[-800:])
        lead2 = c.leader()
        for n in c.running():
            wait_until(lambda: revision(c, n) >= rev_before, 15, what="%r to replay its log" % n)
            g = kv_get(c, n, "greeting")
            check(g.status == 200 and g.body == b"hello3" and etag_version(g) == v3,
                  "greeting after restart on %r" % n, g)
            check(kv_get(c, n, "bin").body == raw, "binary value after restart")
        r = c.request(lead2, "GET", "/v1/kv")
        after = {it["key"]: it["version"] for it in r.json()["items"]}
        check(after == snapshot, "kv contents changed across the restart", snapshot, after)
        r = kv_put(c, [n for n in c.running() if n is not lead2][0], "after-restart", "ok")
        check(r.status == 200 and r.json()["version"] > rev_before,
              "write after restart should get a newer version than %d" % rev_before, r)


if __name__ == "__main__":
    run([test_cluster_basic])
