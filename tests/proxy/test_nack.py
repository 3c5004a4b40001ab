"""raftplane-proxy NACK: a snapshot whose listener port cannot be bound is
refused, the refusal is reported to the servers (GET /v1/proxies "nack",
GET /v1/rollouts), and the proxy keeps serving the previous generation."""

import socket

from proxyharness import (Env, Load, body_of, check, log, pick_ports, run, wait_until)


def proxy_entry(env, node_id):
    r = env.api("GET", "/v1/proxies")
    check(r.status == 200, "GET /v1/proxies", r.body)
    for p in r.json()["proxies"]:
        if p["node_id"] == node_id:
            return p
    return None


def test_nack_unbindable_port():
    with Env() as env:
        a = env.backend("A")
        px = env.proxy("edge-1")
        good, busy = pick_ports(2)
        lis = "127.0.0.1:%d" % good
        env.cluster_of("a", [a])
        env.listener("edge", good)
        v_ok = env.route("r", "edge", "a")
        px.wait_version(v_ok)
        # someone else holds the port (without SO_REUSEPORT)
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", busy))
        blocker.listen(1)
        try:
            load = Load(lis, threads=2).start()
            v_bad = env.listener("taken", busy)

            def nacked():
                e = proxy_entry(env, "edge-1")
                return e if e and e.get("nack") and e["nack"]["version"] == v_bad else None
            entry = wait_until(nacked, 15, what="the NACK to reach the servers")
            err = entry["nack"]["error"]
            log("servers show: %s" % entry["nack"])
            check(str(busy) in err and "in use" in err.lower(), "NACK names the port and why", err)
            check(entry["acked_version"] == v_ok, "acked version stays the old one", entry)
            r = env.api("GET", "/v1/rollouts/%d?wait=5s" % v_bad)
            check(r.status == 200 and r.json()["nacked"] == 1, "rollout counts the NACK", r.body)
            check(px.version() == v_ok, "proxy keeps the old generation", px.version())
            check(body_of(lis) == (200, "A"), "old generation still serves")
            st = px.stats()
            check(st["updates"]["rejected"] == 1, "rejected update counted", st["updates"])
            m = px.get("/metrics").body.decode()
            check('raftplane_proxy_config_updates_total{result="rejected"} 1' in m, "metric")
            load.stop()
            check(load.failures() == {}, "no failures while refusing", load.failures())
        finally:
            blocker.close()
        # the port is free again: the next version applies, including that listener
        v_next = env.route("r2", "taken", "a")
        px.wait_version(v_next)
        check(body_of("127.0.0.1:%d" % busy) == (200, "A"), "listener bound once the port is free")
        wait_until(lambda: (proxy_entry(env, "edge-1") or {}).get("acked_version") == v_next, 10,
                   what="ACK of the next version")
        check(proxy_entry(env, "edge-1")["nack"] is None, "NACK superseded by the ACK")


if __name__ == "__main__":
    run([test_nack_unbindable_port])
