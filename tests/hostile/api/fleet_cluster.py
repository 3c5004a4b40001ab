#!/usr/bin/env python3
"""Cluster identity (issue 9 items 11 and 17): a proxy that holds the config
of a control plane that was rebuilt from scratch (its version is above
anything the new cluster has sent) switches to the new cluster's config, and
/v1/status, /v1/proxies, /ready and /config_dump show it. A proxy started
from its cache reports control_plane_connected as soon as it reaches a
server, not after a whole long poll."""

import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "proxy"))
from proxyharness import Env, check, log, pick_ports, run, wait_body, wait_until  # noqa: E402


def cluster_id(env):
    r = env.api("GET", "/v1/status")
    cid = r.json().get("cluster_id")
    return cid if cid and re.fullmatch(r"[0-9a-f]{32}", cid) else None


def test_proxy_follows_a_rebuilt_cluster():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        cache = os.path.join(env.dir, "cache")
        px = env.proxy("edge-1", cache_dir=cache, extra=["--wait-ms", "20000"])
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.cluster_of("a", [a])
        env.listener("edge", port)
        for i in range(6):  # push cluster A's versions well above B's
            v = env.route("r", "edge", "a", timeout_ms=1000 + i)
        px.wait_version(v)
        wait_body(lis, "A")
        cid_a = wait_until(lambda: cluster_id(env), 10, what="cluster A's id in /v1/status")
        for node in env.cluster.nodes.values():
            st = env.cluster.request(node, "GET", "/v1/status").json()
            check(st.get("cluster_id") == cid_a, "every node has the same cluster id", st)
        rd = px.get("/ready").json()
        check(rd.get("cluster_id") == cid_a, "/ready shows the cluster id", rd)

        # rebuild the control plane from scratch on the same ports
        for node in list(env.cluster.nodes.values()):
            env.cluster.kill(node)
        for node in env.cluster.nodes.values():
            shutil.rmtree(node.data_dir, ignore_errors=True)
        for node in env.cluster.nodes.values():
            node.spawn()
        env.cluster.wait_ready()
        cid_b = wait_until(lambda: cluster_id(env), 10, what="cluster B's id")
        check(cid_b != cid_a, "a new cluster gets a new id", cid_a, cid_b)
        env.cluster_of("b", [b])
        env.listener("edge", port)
        vb = env.route("r", "edge", "b")
        check(vb < v, "cluster B's version is below what the proxy holds", vb, v)
        t0 = time.monotonic()
        wait_body(lis, "B", timeout=20)
        log("proxy switched to the rebuilt cluster after %.1f s" % (time.monotonic() - t0))
        wait_until(lambda: px.config().get("version") == vb, 10, what="proxy at B's version")
        cfg = px.config()
        check(cfg.get("cluster_id") == cid_b and cfg.get("previous_cluster_id") == cid_a,
              "/config_dump shows the switch", {k: cfg.get(k) for k in (
                  "cluster_id", "previous_cluster_id", "version")})
        rd = px.get("/ready").json()
        check(rd.get("cluster_id") == cid_b and rd.get("foreign_cluster") is False,
              "/ready shows the new cluster", rd)
        def entry():
            ps = env.api("GET", "/v1/proxies").json()["proxies"]
            return ([p for p in ps if p["node_id"] == "edge-1"] or [None])[0]
        wait_until(lambda: (entry() or {}).get("acked_version") == vb, 10,
                   what="/v1/proxies shows edge-1 acking B's version")
        e = entry()
        check(e.get("cluster_id") == cid_b and e.get("foreign_cluster") is False,
              "/v1/proxies shows edge-1 in cluster B", e)
        check("cluster" in px.log_text() and cid_b in px.log_text(), "the switch is logged")

        # restart from the cache (B's snapshot) while servers are up: connected at once
        px.kill()
        px.start()
        wait_until(lambda: px.get("/ready").status == 200, 15, what="ready from cache")
        t0 = time.monotonic()
        wait_until(lambda: px.get("/ready").json()["control_plane_connected"] is True, 3,
                   what="control_plane_connected after starting from the cache")
        log("connected %.0f ms after the cached start" % ((time.monotonic() - t0) * 1000))
        check(px.get("/ready").json().get("cluster_id") == cid_b, "cache kept cluster B's id")


def test_cached_start_reports_connected():
    with Env(servers=1) as env:
        a = env.backend("A")
        cache = os.path.join(env.dir, "cache")
        px = env.proxy("edge-1", cache_dir=cache, extra=["--wait-ms", "20000"])
        port = pick_ports(1)[0]
        env.cluster_of("a", [a])
        env.listener("edge", port)
        v = env.route("r", "edge", "a")
        px.wait_version(v)
        px.kill()
        px.start()
        wait_until(lambda: px.get("/ready").status == 200, 15, what="ready from cache")
        wait_until(lambda: px.get("/ready").json()["control_plane_connected"] is True, 3,
                   what="control_plane_connected after starting from the cache")
        # the server may or may not re-send the same version; either way the
        # proxy stays on it
        check(px.config()["version"] == v, "still serving the cached version", px.config())


if __name__ == "__main__":
    run([test_proxy_follows_a_rebuilt_cluster, test_cached_start_reports_connected])
