"""raftplane-proxy hitless updates: 40 route changes under load with zero
failed requests, traffic following each change; listeners opened and closed
as the snapshots say while traffic flows on another listener."""

import socket
import time

from proxyharness import (Env, Load, body_of, check, log, pick_ports, run, wait_body,
                          wait_until)


def test_route_changes_under_load():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        px = env.proxy("edge-1", workers=2)
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.cluster_of("a", [a])
        env.cluster_of("b", [b])
        env.listener("edge", port)
        px.wait_version(env.route("r", "edge", "a"))
        wait_body(lis, "A")
        load = Load(lis, threads=4).start()
        t0 = time.monotonic()
        changes = 0
        for i in range(40):
            target = "b" if i % 2 == 0 else "a"
            extra = {}
            if i % 4 == 1:
                extra = {"timeout_ms": 5000 + i}
            if i % 5 == 2:
                # also change a cluster and add/drop another route
                env.cluster_of("a", [a], connect_timeout_ms=900 + i)
                env.route("side%d" % i, "edge", "b", prefix="/side%d" % i)
            v = env.route("r", "edge", target, **extra)
            px.wait_version(v, timeout=10)
            wait_body(lis, target.upper(), timeout=5)
            changes += 1
        took = time.monotonic() - t0
        time.sleep(0.3)
        load.stop()
        fails = load.failures()
        log("%d route changes in %.1fs under load: %d requests, failures %s, bodies %s" % (
            changes, took, load.total(), fails, load.bodies))
        check(changes == 40, "40 changes applied")
        check(fails == {}, "zero failed requests during the changes", fails, load.errors)
        check(load.bodies.get("A", 0) > 100 and load.bodies.get("B", 0) > 100,
              "traffic followed the route to both backends", load.bodies)
        st = px.stats()
        check(st["updates"]["rejected"] == 0 and st["updates"]["applied"] >= 41, "updates", st["updates"])
        wait_until(lambda: px.stats()["routes"]["r"]["active_requests"] == 0, 5,
                   what="no request left active")
        # every retired generation is freed once no request pins it
        wait_until(lambda: px.stats()["generations_live"] == 1, 5,
                   what="old generations to be freed")


def test_listeners_follow_snapshots():
    with Env() as env:
        a = env.backend("A")
        px = env.proxy("edge-1", workers=2)
        p1, p2 = pick_ports(2)
        l1, l2 = "127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2
        env.cluster_of("a", [a])
        env.listener("one", p1)
        px.wait_version(env.route("r1", "one", "a"))
        wait_body(l1, "A")
        load = Load(l1, threads=2).start()
        for i in range(5):
            env.listener("two", p2)
            px.wait_version(env.route("r2", "two", "a"))
            check(body_of(l2) == (200, "A"), "second listener serves")
            env.delete("routes", "r2")
            v = env.delete("listeners", "two")
            px.wait_version(v)

            def closed():
                try:
                    socket.create_connection(("127.0.0.1", p2), timeout=1).close()
                    return False
                except OSError:
                    return True
            wait_until(closed, 5, what="listener two closed")
        load.stop()
        check(load.failures() == {}, "no failures on the first listener", load.failures(),
              load.errors)
        log("listener two opened and closed 5 times; %d requests on listener one" % load.total())


if __name__ == "__main__":
    run([test_route_changes_under_load, test_listeners_follow_snapshots])
