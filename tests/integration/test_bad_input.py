#!/usr/bin/env python3
"""Bad input of every kind gets the JSON error shape with the right status and
changes nothing; the server survives it; bad command lines exit non-zero with
a one-line reason."""

import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (SANITIZER_PATTERNS, SERVER_BIN, Cluster, TestFailure, check,  # noqa: E402
                       check_error, log, pick_ports, raw_request, run, server_tls_args)

MiB = 1024 * 1024
LONG = "a" * 129
OK128 = "b" * 128

CLUSTER = {"lb_policy": "round_robin", "endpoints": [{"address": "10.0.0.1", "port": 80}]}
LISTENER = {"address": "127.0.0.1", "port": 10000, "nodes": ["edge-1"]}
ROUTE = {"listener": "lsn", "match": {"prefix": "/api"}, "cluster": "cl"}


def with_(base, **kw):
    d = dict(base)
    d.update(kw)
    return d


def without(base, key):
    d = dict(base)
    del d[key]
    return d


class Checker:
    """Sends each bad request to a different node and checks that the global
    revision and a watch from before stay unchanged."""

    def __init__(self, c):
        self.c = c
        self.nodes = sorted(c.running(), key=lambda n: n.id)
        self.i = 0
        self.count = 0
        self.lead = c.leader()
        self.rev = c.status(self.lead)["revision"]
        self.failures = []

    def _send(self, raw, status, code, method, path, body, headers, what):
        node = self.nodes[self.i % len(self.nodes)]
        self.i += 1
        what = "%s (via %r)" % (what or "%s %s" % (method, path[:80]), node)
        self.count += 1
        try:
            if raw:
                r = raw_request(node.http, method, path, body)
                check(r is not None, "%s: no answer" % what)
            else:
                r = self.c.request(node, method, path, body=body, headers=headers, timeout=15)
            return check_error(r, status, code, what)
        except (TestFailure, OSError) as e:
            # keep going: report every wrong answer at the end
            self.failures.append("%s: %s" % (what, e) if isinstance(e, OSError) else str(e))
            return {"error": {}}

    def soft(self, cond, msg):
        if not cond:
            self.failures.append(msg)

    def expect(self, status, code, method, path, body=None, headers=None, what=None):
        return self._send(False, status, code, method, path, body, headers, what)

    def expect_raw(self, status, code, method, path, body, what):
        """For huge bodies: the server may answer before reading them all."""
        return self._send(True, status, code, method, path, body, None, what)

    def unchanged(self, what=""):
        for n in self.nodes:
            s = self.c.status(n)
            if s["revision"] != self.rev:
                self.failures.append("%s: revision on %r moved %d -> %d" % (
                    what, n, self.rev, s["revision"]))
                self.rev = s["revision"]
                return
        r = self.c.request(self.lead, "GET", "/v1/watch?after=%d&wait=0s" % self.rev)
        if r.status != 200 or r.json()["changes"] != []:
            self.failures.append("%s: watch shows changes: %r" % (what, r))


def kv_cases(k):
    bad_names = [LONG, "a%20b", "a$b", "a:b", "%C3%A9t%C3%A9", "a%2Fb", "a/b", "", "a*"]
    for name in bad_names:
        k.expect(400, "invalid_argument", "PUT", "/v1/kv/" + name, body="x",
                 what="PUT kv with bad name %r" % name[:20])
        k.expect(400, "invalid_argument", "GET", "/v1/kv/" + name, what="GET kv bad name %r" % name[:20])
        k.expect(400, "invalid_argument", "DELETE", "/v1/kv/" + name)
    for method, path, body, what in [
        ("PUT", "/v1/kv/big", b"x" * (MiB + 1), "PUT kv 1 MiB + 1"),
        ("PUT", "/v1/kv/big", b"x" * (2 * MiB), "PUT kv 2 MiB"),
        ("PUT", "/v1/clusters/big", b"{" + b" " * (MiB + 10) + b"}", "PUT cluster over 1 MiB"),
        ("POST", "/v1/txn", b" " * (MiB + 1), "txn over 1 MiB"),
        ("PUT", "/v1/kv/big", b"x" * (5 * MiB), "PUT kv 5 MiB"),
        ("PUT", "/v1/kv/big", b"x" * (16 * MiB), "PUT kv 16 MiB"),
    ]:
        k.expect_raw(413, "too_large", method, path, body, what)
    # Over 64 MiB h2o refuses the body itself before our handler runs: still a
    # 413 and nothing changed, but its body is h2o's plain text (docs/api.md §12).
    r = raw_request(k.lead.http, "PUT", "/v1/kv/big", b"x" * (65 * MiB))
    if r is None or r.status != 413:
        k.failures.append("PUT kv 65 MiB: expected HTTP 413, got %s" % (r and r.status))
    k.unchanged("PUT kv 65 MiB")
    for im in ["abc", '"abc"', '"-1"', '""', '"1", "2"', 'W/"1"', '"1', "1.5", '"99999999999999999999999"']:
        k.expect(400, "invalid_argument", "PUT", "/v1/kv/pre", body="x", headers={"If-Match": im},
                 what="If-Match %r" % im)
    k.expect(400, "invalid_argument", "DELETE", "/v1/kv/pre", headers={"If-Match": "nope"})
    k.expect(400, "invalid_argument", "PUT", "/v1/kv/pre", body="x", headers={"If-None-Match": '"3"'},
             what="If-None-Match with a version")
    k.expect(400, "invalid_argument", "PUT", "/v1/kv/pre", body="x",
             headers={"If-None-Match": "*", "If-Match": '"1"'}, what="If-Match and If-None-Match")
    # preconditions that fail: 412 (the key 'exists' is created before the checks)
    k.expect(412, "precondition_failed", "PUT", "/v1/kv/exists", body="y",
             headers={"If-None-Match": "*"})
    k.expect(412, "precondition_failed", "PUT", "/v1/kv/exists", body="y",
             headers={"If-Match": '"999999"'})
    k.expect(412, "precondition_failed", "DELETE", "/v1/kv/exists", headers={"If-Match": '"999999"'})
    k.expect(412, "precondition_failed", "PUT", "/v1/kv/absent", body="y", headers={"If-Match": "*"})
    k.expect(404, "not_found", "DELETE", "/v1/kv/absent")
    k.expect(404, "not_found", "GET", "/v1/kv/absent")
    k.expect(404, "not_found", "GET", "/v1/kv/absent?consistency=stale")
    for q in ["consistency=foo", "consistency=", "consistency=STALE", "consistency=%ZZ"]:
        k.expect(400, "invalid_argument", "GET", "/v1/kv/exists?" + q)
        k.expect(400, "invalid_argument", "GET", "/v1/kv?" + q)
        k.expect(400, "invalid_argument", "GET", "/v1/clusters?" + q)
    for q in ["prefix=a%20b", "prefix=" + LONG, "prefix=a/b", "prefix=%00"]:
        k.expect(400, "invalid_argument", "GET", "/v1/kv?" + q, what="list with %s" % q[:30])


def method_and_path_cases(k):
    for method, path in [
        ("POST", "/v1/kv/x"), ("PATCH", "/v1/kv/x"), ("POST", "/v1/kv"), ("DELETE", "/v1/kv"),
        ("PUT", "/v1/kv"), ("POST", "/v1/clusters/x"), ("DELETE", "/v1/routes"),
        ("PUT", "/v1/listeners"), ("GET", "/v1/txn"), ("PUT", "/v1/txn"), ("DELETE", "/v1/txn"),
        ("POST", "/v1/watch"), ("PUT", "/v1/status"), ("POST", "/v1/status"),
        ("DELETE", "/v1/members"), ("PUT", "/v1/members/1"), ("DELETE", "/v1/members/1/leadership"),
    ]:
        k.expect(405, "method_not_allowed", method, path)
    for method, path in [
        ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/"), ("GET", "/v1/nope"), ("GET", "/v2/kv/x"),
        ("GET", "/v1/kvx/a"), ("PUT", "/v1/kvx/a"), ("GET", "/v1/members/1/foo"),
        ("POST", "/v1/txn/extra"), ("GET", "/v1/status/x"), ("GET", "/v1/watch/x"),
        ("GET", "/healthz/x"), ("GET", "/metricsx"), ("PUT", "/v1/member/1"),
        ("GET", "/v1/Kv/x"),
    ]:
        k.expect(404, "no_such_endpoint", method, path)


def mesh_cases(k):
    bad_clusters = [
        (b"{", "invalid JSON"), (b"", "empty body"), (b"[]", "array"), (b"42", "number"),
        (b"null", "null"), (b'"str"', "string"), (b'{"lb_policy":"random","lb_policy":"random"}',
                                                  "duplicate key"),
        ({"bogus": 1}, "unknown field"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": 80, "zone": "a"}]),
         "unknown endpoint field"),
        (with_(CLUSTER, lb_policy="fastest"), "unknown lb_policy"),
        (with_(CLUSTER, lb_policy="ROUND_ROBIN"), "lb_policy case"),
        (with_(CLUSTER, lb_policy=5), "lb_policy type"),
        (with_(CLUSTER, lb_policy=""), "empty lb_policy"),
        (with_(CLUSTER, lb_policy="ring_hash"), "ring_hash without hash_on"),
        (with_(CLUSTER, hash_on="header:x-user"), "hash_on without ring_hash"),
        (with_(CLUSTER, lb_policy="ring_hash", hash_on="cookie:x"), "bad hash_on"),
        (with_(CLUSTER, connect_timeout_ms="1000"), "connect_timeout_ms string"),
        (with_(CLUSTER, connect_timeout_ms=-5), "negative connect_timeout_ms"),
        (with_(CLUSTER, connect_timeout_ms=0), "zero connect_timeout_ms"),
        (with_(CLUSTER, connect_timeout_ms=1.5), "fractional connect_timeout_ms"),
        (with_(CLUSTER, connect_timeout_ms=True), "boolean connect_timeout_ms"),
        (with_(CLUSTER, endpoints="10.0.0.1:80"), "endpoints string"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": 0}]), "endpoint port 0"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": 65536}]), "endpoint port 65536"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": -80}]), "endpoint port negative"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": "80"}]), "endpoint port string"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1"}]), "endpoint without port"),
        (with_(CLUSTER, endpoints=[{"address": "example.com", "port": 80}]), "endpoint hostname"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": 80, "weight": -1}]),
         "negative weight"),
        (with_(CLUSTER, endpoints=[{"address": "10.0.0.1", "port": 80, "weight": 0}]), "zero weight"),
        (with_(CLUSTER, endpoints=["10.0.0.1:80"]), "endpoint not an object"),
        (with_(CLUSTER, health_check={"interval_ms": -10}), "negative interval_ms"),
        (with_(CLUSTER, health_check={"path": "healthz"}), "relative health path"),
        (with_(CLUSTER, health_check={"interval_ms": 100, "timeout_ms": 500}), "timeout > interval"),
        (with_(CLUSTER, health_check={"unhealthy_threshold": 0}), "threshold 0"),
        (with_(CLUSTER, health_check={"retries": 1}), "unknown health_check field"),
        (with_(CLUSTER, health_check=[]), "health_check array"),
        (with_(CLUSTER, name="other"), "name differs from path"),
        (with_(CLUSTER, name=7), "name not a string"),
        ({"connect_timeout_ms": 10 ** 30}, "huge number"),
    ]
    for body, what in bad_clusters:
        k.expect(400, "invalid_argument", "PUT", "/v1/clusters/cl2", body=body, what="cluster: " + what)
    for name in [LONG, "a%20b", "a$b", "caf%C3%A9"]:
        k.expect(400, "invalid_argument", "PUT", "/v1/clusters/" + name, body=CLUSTER,
                 what="cluster bad name %r" % name[:20])
        k.expect(400, "invalid_argument", "PUT", "/v1/routes/" + name, body=ROUTE)
        k.expect(400, "invalid_argument", "DELETE", "/v1/listeners/" + name)

    bad_listeners = [
        (with_(LISTENER, port=0), "port 0"), (with_(LISTENER, port=65536), "port 65536"),
        (with_(LISTENER, port=-1), "port -1"), (with_(LISTENER, port="10000"), "port string"),
        (with_(LISTENER, port=100.5), "port fractional"), (without(LISTENER, "port"), "no port"),
        (with_(LISTENER, address="localhost"), "address hostname"),
        (with_(LISTENER, address="300.1.1.1"), "address out of range"),
        (without(LISTENER, "address"), "no address"), (without(LISTENER, "nodes"), "no nodes"),
        (with_(LISTENER, nodes=[]), "empty nodes"), (with_(LISTENER, nodes="edge-1"), "nodes string"),
        (with_(LISTENER, nodes=["*", "edge-1"]), "* with others"),
        (with_(LISTENER, nodes=["edge-1", "edge-1"]), "duplicate node"),
        (with_(LISTENER, nodes=["bad node"]), "bad node id"), (with_(LISTENER, nodes=[1]), "node int"),
        (with_(LISTENER, tls=True), "unknown field"),
    ]
    for body, what in bad_listeners:
        k.expect(400, "invalid_argument", "PUT", "/v1/listeners/l2", body=body, what="listener: " + what)

    bad_routes = [
        (without(ROUTE, "match"), "no match"), (with_(ROUTE, match={}), "empty match"),
        (with_(ROUTE, match={"prefix": "/a", "path": "/b"}), "prefix and path"),
        (with_(ROUTE, match={"prefix": "api"}), "relative prefix"),
        (with_(ROUTE, match={"regex": ".*"}), "unknown match field"),
        (with_(ROUTE, match="/api"), "match string"),
        (without(ROUTE, "cluster"), "no cluster"),
        (with_(ROUTE, weighted_clusters=[{"cluster": "cl", "weight": 1}]), "cluster and weighted"),
        (with_(without(ROUTE, "cluster"), weighted_clusters=[]), "empty weighted_clusters"),
        (with_(without(ROUTE, "cluster"), weighted_clusters=[{"cluster": "cl", "weight": 0}]),
         "weight 0"),
        (with_(without(ROUTE, "cluster"), weighted_clusters=[{"cluster": "cl", "weight": -5}]),
         "negative weight"),
        (with_(ROUTE, priority=-1), "negative priority"), (with_(ROUTE, priority="1"), "priority string"),
        (with_(ROUTE, timeout_ms=-1), "negative timeout"), (with_(ROUTE, timeout_ms=0), "timeout 0"),
        (with_(ROUTE, retries={"attempts": -1}), "negative attempts"),
        (with_(ROUTE, retries={"attempts": 2, "on": ["gateway-error"]}), "bad retry_on"),
        (with_(ROUTE, retries={"attempts": 2, "on": "5xx"}), "retry on string"),
        (with_(ROUTE, headers=[{"name": "x env", "exact": "a"}]), "bad header name"),
        (with_(ROUTE, headers=[{"name": "x-env"}]), "header without exact"),
        (with_(ROUTE, headers={"x-env": "a"}), "headers object"),
        (with_(ROUTE, match={"path": "/x"}, prefix_rewrite="/"), "rewrite with path match"),
        (with_(ROUTE, listener=""), "empty listener"), (with_(ROUTE, listener="bad name"), "bad listener"),
        (with_(ROUTE, cluster="bad name"), "bad cluster name"), (with_(ROUTE, hosts=["a"]), "unknown field"),
    ]
    for body, what in bad_routes:
        k.expect(400, "invalid_argument", "PUT", "/v1/routes/r2", body=body, what="route: " + what)

    # references and clashes
    k.expect(409, "dangling_reference", "PUT", "/v1/routes/r2", body=with_(ROUTE, cluster="missing"),
             what="route to a missing cluster")
    k.expect(409, "dangling_reference", "PUT", "/v1/routes/r2", body=with_(ROUTE, listener="missing"),
             what="route on a missing listener")
    k.expect(409, "dangling_reference", "PUT", "/v1/routes/r2",
             body=with_(without(ROUTE, "cluster"), weighted_clusters=[
                 {"cluster": "cl", "weight": 9}, {"cluster": "missing", "weight": 1}]),
             what="weighted route to a missing cluster")
    k.expect(409, "in_use", "DELETE", "/v1/clusters/cl", what="delete a cluster used by a route")
    k.expect(409, "in_use", "DELETE", "/v1/listeners/lsn", what="delete a listener used by a route")
    k.expect(409, "conflict", "PUT", "/v1/listeners/lsn2", body=with_(LISTENER, nodes=["edge-1", "x"]),
             what="listener clash on address:port for edge-1")
    k.expect(409, "conflict", "PUT", "/v1/listeners/lsn2", body=with_(LISTENER, nodes=["*"]),
             what="listener clash with *")
    k.expect(409, "conflict", "PUT", "/v1/listeners/lsn2", body=with_(LISTENER, address="0.0.0.0"),
             what="listener clash with a wildcard address")
    k.expect(412, "precondition_failed", "PUT", "/v1/clusters/cl", body=CLUSTER,
             headers={"If-None-Match": "*"})
    k.expect(404, "not_found", "DELETE", "/v1/routes/absent")
    k.expect(404, "not_found", "GET", "/v1/clusters/absent")


def txn_cases(k):
    op = {"op": "put", "kind": "kv", "name": "t", "value": "v"}
    cases = [
        (b"{", "invalid JSON", None), (b"", "empty body", None), (b"[]", "array", None),
        ({}, "no ops", None), ({"ops": "x"}, "ops string", None), ({"ops": []}, "empty ops", None),
        ({"ops": [op] * 129}, "129 ops", None), ({"ops": [op], "extra": 1}, "unknown top field", None),
        ({"ops": [op, with_(op, op="upsert")]}, "unknown op", 1),
        ({"ops": [with_(op, kind="members")]}, "kind members", 0),
        ({"ops": [with_(op, kind="bogus")]}, "kind bogus", 0),
        ({"ops": [without(op, "kind")]}, "no kind", 0),
        ({"ops": [with_(op, name=LONG)]}, "long name", 0),
        ({"ops": [with_(op, name="a b")]}, "bad name", 0),
        ({"ops": [without(op, "name")]}, "no name", 0),
        ({"ops": [op, with_(op, if_version=-1)]}, "negative if_version", 1),
        ({"ops": [with_(op, if_version="3")]}, "if_version string", 0),
        ({"ops": [with_(op, value=123)]}, "kv value number", 0),
        ({"ops": [without(op, "value")]}, "put without value", 0),
        ({"ops": [{"op": "delete", "kind": "kv", "name": "t", "value": "v"}]}, "delete with value", 0),
        ({"ops": [with_(op, extra=1)]}, "unknown op field", 0),
        ({"ops": ["put"]}, "op not an object", 0),
        ({"ops": [{"op": "put", "kind": "clusters", "name": "c9", "value": "x"}]}, "mesh value string", 0),
        ({"ops": [op, {"op": "put", "kind": "clusters", "name": "c9",
                       "value": with_(CLUSTER, lb_policy="nope")}]}, "mesh value invalid", 1),
        ({"ops": [{"op": "put", "kind": "listeners", "name": "l9", "value": with_(LISTENER, port=0)}]},
         "listener port 0", 0),
    ]
    for body, what, index in cases:
        j = k.expect(400, "invalid_argument", "POST", "/v1/txn", body=body, what="txn: " + what)
        if index is not None and j["error"] and j["error"].get("index") != index:
            k.failures.append("txn %s: index should be %d: %s" % (what, index, j))
    j = k.expect(412, "precondition_failed", "POST", "/v1/txn", body={"ops": [
        op, {"op": "put", "kind": "kv", "name": "exists", "value": "z", "if_version": 0}]})
    k.soft(j["error"].get("index") == 1, "txn 412 index should be the failing op: %s" % j)
    j = k.expect(409, "in_use", "POST", "/v1/txn", body={"ops": [
        op, {"op": "delete", "kind": "clusters", "name": "cl"}]})
    k.soft(j["error"].get("index") == 1, "txn in_use index should be the failing op: %s" % j)
    j = k.expect(409, "dangling_reference", "POST", "/v1/txn", body={"ops": [
        {"op": "put", "kind": "routes", "name": "r9", "value": with_(ROUTE, cluster="nope")}]})
    k.soft(j["error"].get("index") == 0, "txn dangling index should be the failing op: %s" % j)
    j = k.expect(404, "not_found", "POST", "/v1/txn", body={"ops": [
        op, {"op": "delete", "kind": "routes", "name": "nope"}]})
    k.soft(j["error"].get("index") == 1, "txn not_found index should be the failing op: %s" % j)


def watch_member_cases(k, rev):
    for q in ["after=-1", "after=abc", "after=", "after=1.5", "after=99999999999999999999999",
              "wait=abc", "wait=-1s", "wait=11m", "wait=5h", "wait=1x", "wait=",
              "kinds=bogus", "kinds=", "kinds=kv,,routes", "kinds=kv,bogus", "kinds=KV",
              "after=%d&wait=1s&kinds=nope" % rev, "after=%ZZ"]:
        k.expect(400, "invalid_argument", "GET", "/v1/watch?" + q, what="watch ?%s" % q)
    k.expect(404, "not_found", "DELETE", "/v1/members/99")
    k.expect(404, "not_found", "DELETE", "/v1/members/9223372036854775807")
    k.expect(404, "not_found", "POST", "/v1/members/99/leadership")
    for mid in ["abc", "0", "-1", "1.0", "99999999999999999999999", "18446744073709551616"]:
        k.expect(400, "invalid_argument", "DELETE", "/v1/members/" + mid, what="DELETE member %s" % mid)
    k.expect(400, "invalid_argument", "POST", "/v1/members", body=b"{bad")
    k.expect(400, "invalid_argument", "POST", "/v1/members", body={"id": 9})


def bad_command_lines():
    tmp = tempfile.mkdtemp(prefix="rp-it-flags-", dir="/tmp")
    try:
        rp, hp, rp2, hp2 = ["127.0.0.1:%d" % p for p in pick_ports(4)]
        d = os.path.join(tmp, "d")
        # with RP_IT_TLS=1 every command line also has TLS flags: the same
        # one-line refusals
        base = ["--id", "1", "--data-dir", d, "--raft", rp, "--http", hp] + server_tls_args(
            1, os.path.join(tmp, "tls"))
        boot = "1=%s@%s" % (rp, hp)
        cases = [
            (["--bogus"], "unknown flag"),
            (base + ["--frobnicate", "1", "--bootstrap", boot], "unknown flag with a value"),
            (["--data-dir", d, "--raft", rp, "--http", hp, "--bootstrap", boot], "missing --id"),
            (["--id", "0"] + base[2:] + ["--bootstrap", boot], "--id 0"),
            (["--id", "abc"] + base[2:] + ["--bootstrap", boot], "--id abc"),
            (["--id", "-1"] + base[2:] + ["--bootstrap", boot], "--id -1"),
            (["--id", "1", "--raft", rp, "--http", hp, "--bootstrap", boot], "missing --data-dir"),
            (["--id", "1", "--data-dir", d, "--http", hp, "--bootstrap", boot], "missing --raft"),
            (["--id", "1", "--data-dir", d, "--raft", "127.0.0.1", "--http", hp, "--bootstrap", boot],
             "--raft without port"),
            (["--id", "1", "--data-dir", d, "--raft", "localhost:7000", "--http", hp,
              "--bootstrap", boot], "--raft with a hostname"),
            (["--id", "1", "--data-dir", d, "--raft", "127.0.0.1:99999", "--http", hp,
              "--bootstrap", boot], "--raft port out of range"),
            (["--id", "1", "--data-dir", d, "--raft", rp, "--http", "nonsense", "--bootstrap", boot],
             "bad --http"),
            (base + ["--bootstrap", boot, "--join", hp2], "--bootstrap and --join"),
            (base + ["--bootstrap", "2=%s@%s" % (rp2, hp2)], "--bootstrap without this node's id"),
            (base + ["--bootstrap", "1=%s" % rp], "--bootstrap entry without @http"),
            (base + ["--bootstrap", ""], "--bootstrap empty"),
            (base + ["--bootstrap", "%s,1=%s@%s" % (boot, rp2, hp2)], "--bootstrap duplicate id"),
            (base + ["--join", "nonsense"], "bad --join"),
            (base + ["--join", hp2, "--join-role", "boss"], "bad --join-role"),
            (base + ["--bootstrap", boot, "--snapshot-threshold", "16", "--snapshot-trailing", "16"],
             "trailing >= threshold"),
            (base + ["--bootstrap", boot, "--election-timeout-ms", "100", "--heartbeat-ms", "60"],
             "heartbeat > election/2"),
            (base + ["--bootstrap", boot, "--election-timeout-ms", "abc"], "election timeout abc"),
            (base + ["--bootstrap", boot, "--leader-wait-ms", "-5"], "negative leader wait"),
            (base + ["--bootstrap", boot, "--id"], "flag without value"),
        ]
        for args, what in cases:
            shutil_rm(d)
            t0 = time.monotonic()
            try:
                p = subprocess.run([SERVER_BIN] + args, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            except subprocess.TimeoutExpired:
                raise AssertionError("%s: the server kept running (should exit non-zero)" % what)
            err = p.stderr.decode("utf-8", "replace")
            lines = [ln for ln in err.splitlines() if ln.strip()]
            check(p.returncode != 0, "%s: exit status 0" % what, err)
            check(not any(pat in err for pat in SANITIZER_PATTERNS),
                  "%s: sanitizer report on a bad command line" % what, err)
            check(len(lines) == 1, "%s: expected a one-line reason on stderr, got %d lines"
                  % (what, len(lines)), err)
            check(lines[0].startswith("raftplane-server"), "%s: reason %r" % (what, lines[0]))
            log("flags %-36s -> exit %d in %.2fs: %s" % (what, p.returncode, time.monotonic() - t0,
                                                         lines[0][:110]))
        p = subprocess.run([SERVER_BIN, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        check(p.returncode == 0 and b"--bootstrap" in p.stdout, "--help", p.stdout, p.stderr)
    finally:
        shutil_rm(tmp)


def test_port_in_use():
    """A node whose raft or http port is taken exits non-zero and its last
    stderr line says which address could not be used."""
    tmp = tempfile.mkdtemp(prefix="rp-it-ports-", dir="/tmp")
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        bp = busy.getsockname()[1]
        fp, fp2 = pick_ports(2)
        for what, raft, http_ in [("http port in use", fp, bp), ("raft port in use", bp, fp2)]:
            d = os.path.join(tmp, what.replace(" ", "-"))
            ra, ha = "127.0.0.1:%d" % raft, "127.0.0.1:%d" % http_
            p = subprocess.run([SERVER_BIN, "--id", "1", "--data-dir", d, "--raft", ra, "--http", ha,
                                "--bootstrap", "1=%s@%s" % (ra, ha)] +
                               server_tls_args(1, os.path.join(tmp, "tls")), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15)
            err = p.stderr.decode("utf-8", "replace").strip()
            last = err.splitlines()[-1] if err else ""
            log("%s: exit %d, %r" % (what, p.returncode, last))
            check(p.returncode != 0, "%s: exit status 0" % what, err)
            check(last.startswith("raftplane-server") and
                  ("127.0.0.1:%d" % bp in last or "in use" in last.lower()),
                  "%s: the reason does not say which address is taken: %r" % (what, last))
    finally:
        busy.close()
        shutil_rm(tmp)


def shutil_rm(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def test_bad_http_input():
    with Cluster(3, election_timeout_ms=300, heartbeat_ms=50, name="badinput") as c:
        lead = c.leader()
        for path, body in [("/v1/clusters/cl", CLUSTER), ("/v1/listeners/lsn", LISTENER),
                           ("/v1/routes/rt", ROUTE)]:
            r = c.request(lead, "PUT", path, body=body)
            check(r.status == 200, "setup PUT " + path, r)
        r = c.request(lead, "PUT", "/v1/kv/exists", body="e")
        check(r.status == 200, "setup", r)
        for n in c.running():
            c.wait_applied(n, r.json()["version"])
        k = Checker(c)
        pids = {n.id: n.proc.pid for n in c.running()}
        t0 = time.monotonic()
        for fn in (kv_cases, method_and_path_cases, mesh_cases, txn_cases):
            fn(k)
            k.unchanged(fn.__name__)
        watch_member_cases(k, k.rev)
        k.unchanged("watch and member cases")
        # members unchanged too
        for n in c.running():
            r = c.request(n, "GET", "/v1/members")
            check(sorted(m["id"] for m in r.json()["members"]) == [1, 2, 3], "members on %r" % n, r)
        log("%d bad requests sent in %.1fs, %d wrong answers; revision %d" % (
            k.count, time.monotonic() - t0, len(k.failures), k.rev))
        for f in k.failures:
            log("WRONG: " + f.replace("\n", " "))
        for n in c.nodes.values():
            check(n.alive() and n.proc.pid == pids[n.id], "%r died during the bad input" % n)
            check(c.request(n, "GET", "/healthz").status == 200, "healthz on %r" % n)

        # the limits themselves are accepted
        r = c.request(lead, "PUT", "/v1/kv/" + OK128, body="x")
        check(r.status == 200, "128-char key", r)
        big = os.urandom(MiB)
        r = c.request(c.followers()[0], "PUT", "/v1/kv/exactly-1MiB", body=big,
                      headers={"Content-Type": "application/octet-stream"})
        check(r.status == 200, "a value of exactly 1 MiB", r)
        g = c.request(c.followers()[1], "GET", "/v1/kv/exactly-1MiB")
        check(g.status == 200 and g.body == big, "1 MiB value read back (%d bytes)" % len(g.body))
        r = c.request(lead, "PUT", "/v1/clusters/" + OK128, body=CLUSTER)
        check(r.status == 200, "128-char cluster name", r)
        for port in (1, 65535):
            r = c.request(lead, "PUT", "/v1/listeners/p%d" % port,
                          body=with_(LISTENER, port=port, nodes=["edge-9"]))
            check(r.status == 200, "listener port %d" % port, r)
        for n in c.nodes.values():
            check(n.alive(), "%r died" % n)
        check(not k.failures, "%d bad-input cases got a wrong answer (listed above)" % len(k.failures))


def test_bad_command_lines():
    bad_command_lines()


if __name__ == "__main__":
    run([test_bad_http_input, test_bad_command_lines, test_port_in_use])
