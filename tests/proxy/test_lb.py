"""raftplane-proxy load balancing: the distribution of each policy, ring-hash
stickiness and how few keys move when an endpoint is added, weighted
clusters."""

import threading

from proxyharness import (Env, check, count_backends, get, log, pick_ports, rpharness, run,
                          wait_until)


def setup(env, n=3):
    backends = [env.backend(name) for name in "ABCD"[:n]]
    px = env.proxy("edge-1")
    port = pick_ports(1)[0]
    env.listener("edge", port)
    return backends, px, "127.0.0.1:%d" % port


def test_round_robin_weighted():
    with Env() as env:
        (a, b, c), px, lis = setup(env)
        env.put("clusters", "rr", {"lb_policy": "round_robin",
                                   "endpoints": [a.endpoint(1), b.endpoint(2), c.endpoint(3)]})
        px.wait_version(env.route("r", "edge", "rr"))
        counts = count_backends(lis, 600)
        log("round_robin 1:2:3 over 600 requests: %s" % counts)
        check(counts == {"A": 100, "B": 200, "C": 300}, "exact weighted round robin", counts)
        # smooth: the heaviest endpoint never takes 3 in a row... over 6 requests each appears
        seq = [get(lis).body.decode().strip() for _ in range(12)]
        for i in range(0, 12, 6):
            window = seq[i:i + 6]
            check(sorted(window) == ["A", "B", "B", "C", "C", "C"],
                  "each window of 6 holds the weights", seq)


def test_random():
    with Env() as env:
        (a, b, c), px, lis = setup(env)
        env.put("clusters", "rnd", {"lb_policy": "random",
                                    "endpoints": [a.endpoint(1), b.endpoint(1), c.endpoint(2)]})
        px.wait_version(env.route("r", "edge", "rnd"))
        counts = count_backends(lis, 800)
        log("random 1:1:2 over 800 requests: %s" % counts)
        check(set(counts) == {"A", "B", "C"}, "all endpoints used", counts)
        check(120 <= counts["A"] <= 280 and 120 <= counts["B"] <= 280 and
              300 <= counts["C"] <= 500, "weighted random within bounds", counts)


def test_least_request():
    with Env() as env:
        (a, b), px, lis = setup(env, 2)
        # A is slow: with several requests in flight, least_request sends most to B
        a.control("delay/40")
        env.put("clusters", "lr", {"lb_policy": "least_request",
                                   "endpoints": [a.endpoint(), b.endpoint()]})
        px.wait_version(env.route("r", "edge", "lr"))
        counts = {}
        lock = threading.Lock()

        def worker():
            c = rpharness.KeepAliveClient(lis)
            for _ in range(60):
                r = c.request("GET", "/")
                with lock:
                    k = r.body.decode().strip()
                    counts[k] = counts.get(k, 0) + 1
            c.close()
        ts = [threading.Thread(target=worker) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        log("least_request, A slow (40 ms), 8 clients: %s" % counts)
        check(sum(counts.values()) == 480, "all answered", counts)
        check(counts.get("B", 0) > 3 * counts.get("A", 0), "the fast endpoint takes most", counts)
        check(counts.get("A", 0) > 0, "the slow endpoint still gets some", counts)
        wait_until(lambda: px.stats()["clusters"]["lr"]["active_requests"] == 0, 10,
                   what="no request left active")


def test_ring_hash():
    with Env() as env:
        (a, b, c, d), px, lis = setup(env, 4)
        body = {"lb_policy": "ring_hash", "hash_on": "header:x-user-id",
                "endpoints": [a.endpoint(), b.endpoint(), c.endpoint()]}
        env.put("clusters", "ring", body)
        px.wait_version(env.route("r", "edge", "ring"))
        keys = ["user-%d" % i for i in range(300)]

        def assignment():
            cl = rpharness.KeepAliveClient(lis)
            out = {}
            for k in keys:
                r = cl.request("GET", "/", headers={"x-user-id": k})
                check(r.status == 200, "ring answer", r.status)
                out[k] = r.body.decode().strip()
            cl.close()
            return out
        first = assignment()
        again = assignment()
        check(first == again, "the same key always reaches the same endpoint")
        share = {n: list(first.values()).count(n) for n in "ABC"}
        log("ring_hash, 300 keys over 3 endpoints: %s" % share)
        check(all(50 <= v <= 150 for v in share.values()), "keys spread over the ring", share)
        # adding an endpoint moves about 1/4 of the keys, all of them to the new one
        body["endpoints"].append(d.endpoint())
        px.wait_version(env.put("clusters", "ring", body))
        after = assignment()
        moved = [k for k in keys if after[k] != first[k]]
        log("ring_hash, after adding D: %d of %d keys moved" % (len(moved), len(keys)))
        check(all(after[k] == "D" for k in moved), "keys only move to the new endpoint")
        check(0.10 * len(keys) <= len(moved) <= 0.40 * len(keys), "about 1/4 of the keys moved",
              len(moved))
        # without the header: balanced at random, still answered
        counts = count_backends(lis, 200)
        check(len(counts) >= 3 and sum(counts.values()) == 200, "no header: random", counts)


def test_weighted_clusters():
    with Env() as env:
        (a, b), px, lis = setup(env, 2)
        env.cluster_of("a", [a])
        env.cluster_of("b", [b])
        px.wait_version(env.route("r", "edge", weighted_clusters=[
            {"cluster": "a", "weight": 80}, {"cluster": "b", "weight": 20}]))
        counts = count_backends(lis, 500)
        log("weighted_clusters 80/20 over 500 requests: %s" % counts)
        check(330 <= counts.get("A", 0) <= 470, "about 80%% to a", counts)


if __name__ == "__main__":
    run([test_round_robin_weighted, test_random, test_least_request, test_ring_hash,
         test_weighted_clusters])
