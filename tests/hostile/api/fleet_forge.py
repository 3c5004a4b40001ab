#!/usr/bin/env python3
"""A forging subscriber (issue 9 items 9 and 17): raw protobuf over HTTP.
Spoofed ACKs must not mask a NACK; rejected requests change nothing; NACK
text that is not UTF-8 is refused and never hides a proxy; a first contact
without any ACK/NACK adds no phantom proxy; NUL in a string field and empty
list elements in watch kinds are refused with 400."""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from poll_client import pb_bytes, pb_uint, sub_request  # noqa: E402
from subharness import Subscriber, listener_obj, put, stop_all  # noqa: E402
from rpharness import Cluster, check, check_error, log, run, wait_until  # noqa: E402

HDR = {"Content-Type": "application/x-protobuf"}


def post(c, node, body, timeout=10):
    return c.request(node, "POST", "/v1/subscribe", body=body, headers=HDR, timeout=timeout)


def fleet_entry(c, node, node_id, scope="fleet"):
    r = c.request(node, "GET", "/v1/proxies?scope=%s" % scope)
    check(r.status == 200, "/v1/proxies answers", r)
    found = [p for p in r.json()["proxies"] if p["node_id"] == node_id]
    return found[0] if found else None


def rollout(c, node, v):
    r = c.request(node, "GET", "/v1/rollouts/%d" % v)
    check(r.status == 200, "rollout answers", r)
    return r.json()


def nacked_fixture(c):
    """bad-1 NACKs every version; returns (subscriber, version)."""
    n = c.node(1)
    v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
    bad = Subscriber([n], node_id="bad-1", extra=["--nack-all"])
    wait_until(lambda: (fleet_entry(c, n, "bad-1") or {}).get("nack"), 10, what="bad-1's NACK")
    return bad, v


def test_spoofed_ack_does_not_mask_nack():
    with Cluster(1) as c:
        n = c.node(1)
        bad, v = nacked_fixture(c)
        j = rollout(c, n, v)
        check(j["nacked"] == 1 and j["acked"] == 0, "rollout: bad-1 nacked", j)
        # a forger claims bad-1 applied the version it refused
        # (an ACK of an older version makes the server send v again, like to a
        # proxy restarted from its cache; an ACK of v after that may clear the
        # NACK by the documented rule, so that one comes last)
        for spoof in (sub_request("bad-1", v, 100),
                      sub_request("bad-1", v, 100, nack=(v - 1, "older attempt")),
                      sub_request("bad-1", v - 1, 100)):
            r = post(c, n, spoof)
            check(r.status in (200, 304), "the forged request is well-formed", r)
            e = fleet_entry(c, n, "bad-1")
            check(e and e["nack"] and e["nack"]["version"] == v, "NACK still shown", e)
            j = rollout(c, n, v)
            check(j["nacked"] == 1 and j["acked"] == 0, "rollout still counts the NACK", j)
        # an ACK of a newer version does clear it
        v2 = put(c, n, "/v1/listeners/all2", listener_obj(10001, ["*"]))
        c.wait_applied(n, v2)
        wait_until(lambda: (fleet_entry(c, n, "bad-1")["nack"] or {}).get("version") == v2, 10,
                   what="bad-1 to NACK v2 too")
        bad.stop()
        stop_all()


def test_rejected_requests_change_nothing():
    with Cluster(1) as c:
        n = c.node(1)
        bad, v = nacked_fixture(c)
        before = fleet_entry(c, n, "bad-1")
        cases = [
            (sub_request("bad-1", v, 100, nack=(v + 100, "FORGED never sent")), None),
            (sub_request("bad-1", v + 100, 100, nack=(v, "FORGED ack never sent")), None),
            (sub_request("bad-1", v, 100, nack=(v, b"FORGED \xff\xfe not utf-8")), 400),
            (sub_request("bad-1", v, 100, nack=(v, b"FORGED \xc3")), 400),
            (sub_request("bad-1", v, 100, nack=(v, b"FORGED \x00 nul")), 400),
            (sub_request("bad-1", v, 100, nack=(v, "F" * 5000)), 400),
            (sub_request("bad-1", v, 100, cluster_id="not-hex"), 400),
            (sub_request("bad-1", v, 100) + b"\xff", 400),
        ]
        for body, status in cases:
            r = post(c, n, body, timeout=15)
            if status:
                check_error(r, status, "invalid_argument", "forged %r" % body[:40])
            else:
                check(r.status in (400, 503), "forged future version refused", r)
            e = fleet_entry(c, n, "bad-1")
            check(e is not None, "bad-1 still listed after %r" % body[:40])
            check(e["nack"] == before["nack"] and e["acked_version"] == before["acked_version"],
                  "bad-1's entry unchanged by a rejected request", before, e)
        j = rollout(c, n, v)
        check(j["proxies"] == 1 and j["nacked"] == 1, "rollout counts bad-1", j)
        bad.stop()
        stop_all()


def test_first_contact_adds_no_phantom():
    with Cluster(1) as c:
        n = c.node(1)
        v = put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        c.wait_applied(n, v)
        for i in range(20):
            r = post(c, n, sub_request("ghost-%d" % i, None))
            check(r.status == 200, "first contact answers the snapshot", r)
        r = c.request(n, "GET", "/v1/proxies")
        check(not [p for p in r.json()["proxies"] if p["node_id"].startswith("ghost")],
              "first contacts alone add no proxy", r.json())
        j = rollout(c, n, v)
        check(j["pending"] == 0 and j["proxies"] == 0, "no phantom pending proxies", j)
        # a real ACK makes it a proxy
        r = post(c, n, sub_request("ghost-0", v, 100))
        check(r.status == 304, "ack parks", r)
        check(fleet_entry(c, n, "ghost-0") is not None, "acked proxy listed")


def test_nul_and_empty_list_elements_refused():
    with Cluster(1) as c:
        n = c.node(1)
        put(c, n, "/v1/listeners/all", listener_obj(10000, ["*"]))
        for body in (sub_request(b"edge\x00evil", None), sub_request(b"edge\x00", None),
                     pb_bytes(1, "edge") + pb_uint(6, 1) + pb_uint(2, 1) + pb_bytes(8, b"\x00"),
                     sub_request(b"\xff\xfe", None)):
            check_error(post(c, n, body), 400, "invalid_argument", "string with NUL %r" % body)
        check(fleet_entry(c, n, "edge") is None, "nothing recorded for edge")
        for kinds in ("kv,", ",kv", "kv,,routes", ",", "kv%2C"):
            r = c.request(n, "GET", "/v1/watch?kinds=%s&wait=0s" % kinds)
            check_error(r, 400, "invalid_argument", "kinds=%s" % kinds)
        r = c.request(n, "GET", "/v1/watch?kinds=kv,routes&wait=0s")
        check(r.status == 200, "a proper list is fine", r)


if __name__ == "__main__":
    run([test_spoofed_ack_does_not_mask_nack, test_rejected_requests_change_nothing,
         test_first_contact_adds_no_phantom, test_nul_and_empty_list_elements_refused])
