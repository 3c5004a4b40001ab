"""raftplane-proxy endpoint health: active HTTP checks take an endpoint out of
rotation within the check settings and bring it back; passive outlier
ejection on consecutive 5xx and connect errors."""

import time

from proxyharness import (Env, body_of, check, count_backends, log, pick_ports, run,
                          wait_until)


def endpoint_state(px, cluster, backend):
    cfg = px.config()
    for c in cfg["clusters"]:
        if c["name"] == cluster:
            for e in c["endpoints"]:
                if e["port"] == backend.port:
                    return e
    return None


def test_active_checks():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        px = env.proxy("edge-1")
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        hc = {"path": "/healthz", "interval_ms": 100, "timeout_ms": 100,
              "unhealthy_threshold": 2, "healthy_threshold": 2}
        env.put("clusters", "c", {"endpoints": [a.endpoint(), b.endpoint()], "health_check": hc})
        env.listener("edge", port)
        px.wait_version(env.route("r", "edge", "c"))
        wait_until(lambda: a.control("count")["health_checks"] >= 2, 5, what="checks reach A")
        check(count_backends(lis, 20) == {"A": 10, "B": 10}, "both in rotation")

        t0 = time.monotonic()
        a.control("health/fail")
        wait_until(lambda: endpoint_state(px, "c", a)["healthy"] is False, 5,
                   interval=0.02, what="A marked unhealthy")
        took = time.monotonic() - t0
        # 2 failed checks 100 ms apart (+ up to one interval until the first)
        log("A out of rotation %.0f ms after its health check started failing" % (took * 1000))
        # 2 x 100 ms + a 100 ms timeout, with slack for a loaded machine
        check(took <= 1.5, "out of rotation within the check settings", took)
        counts = count_backends(lis, 40)
        check(counts == {"B": 40}, "only B serves while A fails its checks", counts)

        t0 = time.monotonic()
        a.control("health/ok")
        wait_until(lambda: endpoint_state(px, "c", a)["healthy"] is True, 5,
                   interval=0.02, what="A healthy again")
        log("A back in rotation after %.0f ms" % ((time.monotonic() - t0) * 1000))
        check(count_backends(lis, 20) == {"A": 10, "B": 10}, "A back in rotation")
        m = px.get("/metrics").body.decode()
        check('raftplane_proxy_endpoint_in_rotation{cluster="c",endpoint="%s"} 1' % a.addr in m,
              "in-rotation gauge")

        # a config change of the cluster keeps the health state
        a.control("health/fail")
        wait_until(lambda: endpoint_state(px, "c", a)["healthy"] is False, 5, what="A unhealthy")
        px.wait_version(env.put("clusters", "c", {"endpoints": [a.endpoint(), b.endpoint()],
                                                  "health_check": hc, "connect_timeout_ms": 500}))
        check(endpoint_state(px, "c", a)["healthy"] is False,
              "health state survives a new generation")
        check(count_backends(lis, 20) == {"B": 20}, "still only B")


def test_passive_ejection():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        px = env.proxy("edge-1", extra=["--outlier-consecutive", "3",
                                        "--outlier-eject-ms", "3000"])
        port = pick_ports(1)[0]
        lis = "127.0.0.1:%d" % port
        env.put("clusters", "c", {"endpoints": [a.endpoint(), b.endpoint()]})
        env.listener("edge", port)
        px.wait_version(env.route("r", "edge", "c"))
        a.control("status/500")
        counts = count_backends(lis, 60)
        log("A answering 500: %s" % counts)
        check(counts.get("HTTP 500", 0) == 3, "three 5xx in a row eject A", counts)
        check(endpoint_state(px, "c", a)["ejected"] is True, "A ejected")
        check(px.stats()["clusters"]["c"]["ejections"] == 1, "ejection counted")
        a.control("status/200")
        wait_until(lambda: endpoint_state(px, "c", a)["ejected"] is False, 10,
                   what="ejection to end")
        counts = count_backends(lis, 20)
        check(counts == {"A": 10, "B": 10}, "A back after the ejection time", counts)

        # a dead endpoint: connect errors eject it too
        a.kill()
        counts = count_backends(lis, 40)
        log("A killed: %s" % counts)
        check(counts.get("HTTP 503", 0) == 3 and counts.get("B") == 37,
              "three connect errors, then only B", counts)


if __name__ == "__main__":
    run([test_active_checks, test_passive_ejection])
