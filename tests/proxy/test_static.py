"""raftplane-proxy static stability: serving through a full control-plane
outage, restarting from the --cache-dir snapshot while every server is down,
and catching up when the servers return."""

import os
import time

from proxyharness import (Env, Load, body_of, check, log, pick_ports, run, wait_body,
                          wait_until)


def test_outage_and_restart_from_cache():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        cache = os.path.join(env.dir, "cache")
        px = env.proxy("edge-1", cache_dir=cache)
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.cluster_of("a", [a])
        env.cluster_of("b", [b])
        env.listener("edge", port)
        v = env.route("r", "edge", "a")
        px.wait_version(v)
        wait_body(lis, "A")
        check(os.path.exists(os.path.join(cache, "snapshot-edge-1.bin")), "cache written")

        # every server down: the proxy keeps serving the last generation
        load = Load(lis, threads=2).start()
        for n in list(env.cluster.nodes.values()):
            env.cluster.kill(n)
        wait_until(lambda: px.get("/ready").json()["control_plane_connected"] is False, 15,
                   what="proxy to notice the outage")
        time.sleep(2)
        load.stop()
        check(load.failures() == {}, "no failures during the outage", load.failures(), load.errors)
        r = px.get("/ready")
        check(r.status == 200 and r.json()["ready"], "still ready", r.body)
        m = px.get("/metrics").body.decode()
        check("raftplane_proxy_control_plane_connected 0" in m, "metrics show the outage")
        log("served %d requests with every server down" % load.total())

        # restart the proxy while the servers are still down: it starts from the cache
        px.kill()
        t0 = time.monotonic()
        px.start()
        wait_until(lambda: px.get("/ready").status == 200, 15, what="ready from cache")
        wait_body(lis, "A")
        log("restarted proxy served from the cache %.0f ms after start" % (
            (time.monotonic() - t0) * 1000))
        cfg = px.config()
        check(cfg["source"] == "cache" and cfg["version"] == v, "config from the cache", cfg)
        check(px.get("/ready").json()["control_plane_connected"] is False, "still disconnected")

        # servers back: the proxy reconnects and follows new changes
        for n in list(env.cluster.nodes.values()):
            env.cluster.restart(n)
        env.cluster.wait_ready()
        v2 = env.route("r", "edge", "b")
        px.wait_version(v2, timeout=30)
        wait_body(lis, "B")
        cfg = px.config()
        check(cfg["source"] == "server", "from a server again", cfg)
        wait_until(lambda: px.get("/ready").json()["control_plane_connected"], 10,
                   what="connected again")


def test_corrupt_cache_is_ignored():
    with Env() as env:
        a = env.backend("A")
        cache = os.path.join(env.dir, "cache")
        os.makedirs(cache)
        with open(os.path.join(cache, "snapshot-edge-1.bin"), "wb") as f:
            f.write(b"RPSNAP01" + b"\xff" * 40)
        px = env.proxy("edge-1", cache_dir=cache)
        port = pick_ports(1)[0]
        env.cluster_of("a", [a])
        env.listener("edge", port)
        px.wait_version(env.route("r", "edge", "a"))
        check(body_of("127.0.0.1:%d" % port) == (200, "A"), "serving from the server")
        check("cache: ignored" in px.log_text(), "corrupt cache reported")
        # a clean stop: exit 0 (under ASan this also means no leak of ours)
        rc = px.stop()
        check(rc == 0, "SIGTERM exits 0", rc, px.log_text()[-3000:])


if __name__ == "__main__":
    run([test_outage_and_restart_from_cache, test_corrupt_cache_is_ignored])
