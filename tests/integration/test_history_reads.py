#!/usr/bin/env python3
"""Point-in-time reads (issue 13): GET /v1/{kind}/{name}?revision=N and
GET /v1/kv/{key}?revision=N on real servers. Several revisions of clusters,
listeners, routes and kv keys (with deletes and recreates) are written and
every item is then read at every revision, through the leader and the
followers, and compared with what a plain GET answered right after that
revision; bad revision parameters are 400 naming the field."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, check_error, log, run  # noqa: E402

ITEMS = [("clusters", "hr-api"), ("clusters", "hr-web"), ("listeners", "hr-edge"),
         ("routes", "hr-route"), ("kv", "hr-flag")]


def cluster_v(host, weight):
    return {"endpoints": [{"address": host, "port": 8080, "weight": weight}]}


def snapshot(c, node):
    """{(kind, name): (status, body)} of a plain GET of every item."""
    out = {}
    for kind, name in ITEMS:
        r = c.request(node, "GET", "/v1/%s/%s" % (kind, name))
        out[(kind, name)] = (r.status, r.body if r.status == 200 else None)
    return out


def test_point_in_time():
    with Cluster(3, name="hist-reads") as c:
        lead = c.leader()
        nodes = c.running()
        steps = [
            [{"op": "put", "kind": "clusters", "name": "hr-api", "value": cluster_v("10.0.0.1", 1)}],
            [{"op": "put", "kind": "listeners", "name": "hr-edge",
              "value": {"address": "127.0.0.1", "port": 18181, "nodes": ["edge-1"]}},
             {"op": "put", "kind": "kv", "name": "hr-flag", "value": "one"}],
            [{"op": "put", "kind": "routes", "name": "hr-route",
              "value": {"listener": "hr-edge", "match": {"prefix": "/a"}, "cluster": "hr-api"}}],
            [{"op": "put", "kind": "clusters", "name": "hr-api", "value": cluster_v("10.0.0.2", 5)}],
            [{"op": "put", "kind": "clusters", "name": "hr-web", "value": cluster_v("10.0.0.3", 2)},
             {"op": "put", "kind": "routes", "name": "hr-route",
              "value": {"listener": "hr-edge", "match": {"prefix": "/b"}, "cluster": "hr-web"}}],
            [{"op": "delete", "kind": "kv", "name": "hr-flag"}],
            [{"op": "delete", "kind": "routes", "name": "hr-route"}],
            [{"op": "put", "kind": "kv", "name": "hr-flag", "value": "two"},
             {"op": "put", "kind": "routes", "name": "hr-route",
              "value": {"listener": "hr-edge", "match": {"prefix": "/c"}, "cluster": "hr-api"}}],
            [{"op": "delete", "kind": "routes", "name": "hr-route"},
             {"op": "delete", "kind": "clusters", "name": "hr-web"}],
        ]
        start = c.request(lead, "GET", "/v1/status").json()
        base = None
        seen = {}
        for i, ops in enumerate(steps):
            r = c.request(nodes[i % len(nodes)], "POST", "/v1/txn", body={"ops": ops})
            check(r.status == 200, "txn step %d" % i, r)
            rev = r.json()["revision"]
            if base is None:
                base = rev - 1
                seen[base] = {k: (404, None) for k in ITEMS}  # none existed before
            seen[rev] = snapshot(c, lead)
        log("wrote revisions %d..%d" % (base + 1, max(seen)), start.get("revision"))
        for node in nodes:
            for rev, snap in sorted(seen.items()):
                for (kind, name), (status, body) in snap.items():
                    r = c.request(node, "GET", "/v1/%s/%s?revision=%d" % (kind, name, rev))
                    what = "%s/%s at %d on %r" % (kind, name, rev, node)
                    if status == 404:
                        check_error(r, 404, "not_found", what)
                        continue
                    if kind == "kv" and r.status == 410:
                        # kv values are not kept in the history (storage/store.c)
                        check_error(r, 410, "compacted", what)
                        continue
                    check(r.status == 200 and r.body == body, what, r, body)
                    if kind == "kv":
                        # ETag = the revision that wrote it, <= rev
                        v = int(r.headers.get("etag").strip('"'))
                    else:
                        v = r.json()["version"]
                    check(v <= rev and v > base, "version of " + what, v)
        # the version is the revision that wrote the value
        r = c.request(lead, "GET", "/v1/clusters/hr-api?revision=%d" % (base + 3))
        check(r.json()["version"] == base + 1, "hr-api at base+3 written at base+1", r)
        # bad revision parameters: 400 naming the field, nothing else
        cur = c.request(lead, "GET", "/v1/status").json()["revision"]
        for q in ["abc", "-1", "1.5", "", "%20", "18446744073709551616",
                  "9223372036854775808", "%d" % (cur + 1000)]:
            r = c.request(lead, "GET", "/v1/clusters/hr-api?revision=" + q)
            check_error(r, 400, "invalid_argument", "revision=%r" % q)
            check("revision" in r.json()["error"]["message"], "names the field", r)
        r = c.request(lead, "GET", "/v1/clusters/hr-api?revision=1&revision=2")
        check_error(r, 400, "invalid_argument", "revision twice")
        r = c.request(lead, "GET", "/v1/kv/hr-flag?revision=x")
        check_error(r, 400, "invalid_argument", "kv revision=x")
        # revision 0 and the current revision work
        check_error(c.request(lead, "GET", "/v1/clusters/hr-api?revision=0"), 404,
                    "not_found", "revision 0")
        r = c.request(lead, "GET", "/v1/clusters/hr-api?revision=%d" % cur)
        check(r.status == 200 and r.body == c.request(lead, "GET", "/v1/clusters/hr-api").body,
              "current revision = plain GET", r)


if __name__ == "__main__":
    run([test_point_in_time])
