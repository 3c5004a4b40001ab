"""raftplane-proxy node ids: two proxies with different node ids get
different listeners (and both get the "*" ones: on one host the second
proxy cannot bind a "*" listener's port the first one owns, and NACKs);
moving a listener from one node to the other moves the socket."""

import socket

from proxyharness import (Env, body_of, check, log, pick_ports, run, wait_body, wait_until)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def test_two_node_ids():
    with Env() as env:
        a, b = env.backend("A"), env.backend("B")
        p1 = env.proxy("edge-1")
        p2 = env.proxy("edge-2")
        port1, port2, port_all = pick_ports(3)
        env.cluster_of("a", [a])
        env.cluster_of("b", [b])
        env.listener("l1", port1, nodes=["edge-1"])
        env.listener("l2", port2, nodes=["edge-2"])
        env.listener("shared", port_all, nodes=["*"])
        env.route("r1", "l1", "a")
        env.route("r2", "l2", "b")
        v = env.route("rs", "shared", "a")
        # a port belongs to one proxy process: both proxies get the "*"
        # listener, whichever binds it first owns it, the other NACKs
        def settled():
            got = [p.version() or 0 for p in (p1, p2)]
            nacked = [p.stats()["updates"]["rejected"] for p in (p1, p2)]
            return all(g >= v or n for g, n in zip(got, nacked)) and (got, nacked)
        got, nacked = wait_until(settled, 15, what="both proxies to apply or refuse the shared port")
        owners = [p for p, g in zip((p1, p2), got) if g >= v]
        check(len(owners) == 1, "exactly one proxy owns the shared port", got, nacked)
        owner, other = owners[0], (p2 if owners[0] is p1 else p1)
        log("%s owns the shared port, %s refused it" % (owner.node_id, other.node_id))
        check(str(port_all) in other.log_text() and "in use" in other.log_text(),
              "the other proxy names the port it cannot own", other.log_text()[-600:])
        names = sorted(l["name"] for l in owner.config()["listeners"])
        want = ["l1", "shared"] if owner is p1 else ["l2", "shared"]
        check(names == want, "owner listeners", names)
        check(body_of("127.0.0.1:%d" % port_all) == (200, "A"), "the owner serves shared")
        # without the shared listener both apply their own
        rv = env.delete("routes", "rs")
        v = env.delete("listeners", "shared")
        p1.wait_version(v)
        p2.wait_version(v)
        c1, c2 = p1.config(), p2.config()
        n1 = sorted(l["name"] for l in c1["listeners"])
        n2 = sorted(l["name"] for l in c2["listeners"])
        log("edge-1 listeners %s, edge-2 listeners %s (revision %d)" % (n1, n2, rv))
        check(n1 == ["l1"] and n2 == ["l2"], "listeners by node id", n1, n2)
        check(sorted(c["name"] for c in c1["clusters"]) == ["a"], "edge-1 only gets cluster a",
              c1["clusters"])
        check(sorted(r["name"] for r in c2["routes"]) == ["r2"], "edge-2 routes", c2["routes"])
        wait_body("127.0.0.1:%d" % port1, "A")
        wait_body("127.0.0.1:%d" % port2, "B")

        # move l1 to edge-2: edge-1 closes it, edge-2 opens it
        v = env.listener("l1", port1, nodes=["edge-2"])
        p1.wait_version(v)
        p2.wait_version(v)
        check(sorted(l["name"] for l in p1.config()["listeners"]) == [], "edge-1 lost l1")
        check(sorted(l["name"] for l in p2.config()["listeners"]) == ["l1", "l2"],
              "edge-2 has l1")
        check(body_of("127.0.0.1:%d" % port1) == (200, "A"), "l1 served by edge-2")
        # stop edge-2: nothing else listens on l1's port
        p2.kill()
        wait_until(lambda: refused(port1), 5, what="l1 gone with edge-2")
        check(p1.alive(), "edge-1 still running")


if __name__ == "__main__":
    run([test_two_node_ids])
