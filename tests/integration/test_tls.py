#!/usr/bin/env python3
"""TLS and mutual TLS on the admin API and the server's own HTTP client
(docs/security.md): real raftplane-server processes, certificates made with
the openssl CLI (tests/lib/tlscerts.py), clients from Python's ssl module.

  test_api_over_tls       writes through a follower (forwarded over TLS),
                          reads, a watch; plain HTTP to the TLS port fails
  test_client_certs       every refused client certificate: the status or a
                          failed handshake, and the counter that moved
  test_refused_forward    a node whose client certificate the leader refuses:
                          its forwards are answered 401 (nothing applied), counted
  test_sighup_rotation    certificates rotated on every node under load:
                          zero failed requests; a bad file keeps the old one
  test_secure_by_default  plain text on a non-loopback address is refused
                          before binding, unless --insecure
  test_reset_released     clients that reset their TLS connection (closed
                          with the answer unread, idle in keep-alive or
                          parked) cost the server no descriptor afterwards
"""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "subscribe"))

import rpharness as h  # noqa: E402
from rpharness import TestFailure, check, http_request, log, wait_until  # noqa: E402
from subharness import sub_request  # noqa: E402
import tlscerts  # noqa: E402

PB = {"Content-Type": "application/x-protobuf"}


def metric(node, name, labels=None):
    """The value of metric @name with exactly @labels on @node (0 when absent)."""
    text = http_request(node.http, "GET", "/metrics").body.decode()
    for ln in text.splitlines():
        if ln.startswith("#"):
            continue
        key, _, v = ln.rpartition(" ")
        base, _, rest = key.partition("{")
        if base != name:
            continue
        got = dict(p.split("=", 1) for p in rest.rstrip("}").split(",")) if rest else {}
        if {k: x.strip('"') for k, x in got.items()} == (labels or {}):
            return int(float(v))
    return 0


def api_fail(node, reason):
    return metric(node, "raftplane_tls_handshake_failures_total",
                  {"context": "api", "reason": reason})


def ctx_with(ca, cert=None):
    return h.tls_client_context(ca, cert)


def tls_refused(addr, ctx, method="GET", path="/v1/status", body=None, headers=None):
    """True when the request over @ctx fails in TLS (handshake, or the
    server's alert right after it with TLS 1.3)."""
    try:
        r = http_request(addr, method, path, body=body, headers=headers, ssl_context=ctx,
                         timeout=5)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError) as e:
        log("refused as expected: %r" % e)
        return True
    log("unexpected answer: %r" % r)
    return False


def subscribe(node, node_id, ctx):
    return http_request(node.http, "POST", "/v1/subscribe", body=sub_request(node_id),
                        headers=PB, ssl_context=ctx)


# ---- tests ---------------------------------------------------------------------------

def test_api_over_tls():
    with h.Cluster(n=3, tls=True, name="tls") as c:
        f = c.followers()[0]
        for i in range(20):
            r = c.request(f, "PUT", "/v1/kv/k%d" % i, body="v%d" % i)
            check(r.status == 200, "PUT via a follower over TLS", r)
        check(metric(f, "raftplane_forwarded_total") >= 20,
              "the follower forwarded the writes to the leader")
        for n in c.running():
            r = c.request(n, "GET", "/v1/kv/k7")
            check(r.status == 200 and r.body == b"v7", "read on %r" % n, r)
        # a watch from the start sees every write
        r = c.request(f, "GET", "/v1/watch?after=0&wait=1s")
        check(r.status == 200 and b"k19" in r.body, "watch over TLS", r)
        # fleet fan-out goes over TLS to the other members
        r = c.request(f, "GET", "/v1/proxies?scope=fleet")
        check(r.status == 200 and r.json()["unreachable"] == [], "fleet fan-out", r)
        # keep-alive: many requests on one TLS connection
        kc = h.KeepAliveClient(f.http)
        for i in range(50):
            check(kc.request("GET", "/v1/status").status == 200, "keep-alive request %d" % i)
        kc.close()
        # ALPN: we speak HTTP/1.1 whatever the client offers first
        ctx = ctx_with(c.pki.ca)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", f.http_port), timeout=5))
        check(s.selected_alpn_protocol() == "http/1.1", "ALPN http/1.1",
              s.selected_alpn_protocol())
        s.close()
        # plain HTTP to the TLS port: the handshake fails, counted
        before = api_fail(f, "handshake")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", f.http_port, timeout=5)
            conn.request("GET", "/v1/status")
            r = conn.getresponse()
            raise TestFailure("plain HTTP got an answer from the TLS port: %s" % r.status)
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            log("plain HTTP refused: %r" % e)
        wait_until(lambda: api_fail(f, "handshake") == before + 1, 5,
                   what="the handshake failure counted")
        check(c.request(f, "GET", "/v1/status").status == 200, "TLS still served")


def test_client_certs():
    rogue = tlscerts.Pki(os.path.join(h.shared_pki().dir, "rogue"), name="rogue CA")
    with h.Cluster(n=3, tls=True, name="tls-certs") as c:
        pki = c.pki
        n = c.leader()
        ca = pki.ca
        # operators need no client certificate (tokens are the API's matter)
        check(http_request(n.http, "GET", "/v1/status", ssl_context=ctx_with(ca)).status
              == 200, "status without a client certificate")
        cases = [("another CA", rogue.node("edge-1"), "unknown_ca"),
                 ("expired", pki.node("edge-1", expired=True), "expired"),
                 ("not yet valid", pki.node("edge-1", not_yet_valid=True), "not_yet_valid")]
        for what, cert, reason in cases:
            before = api_fail(n, reason)
            # the handshake completes, the connection is answered 401 and closed:
            # nothing of the request is processed, even a plain status read
            for method, path, body in (("POST", "/v1/subscribe", sub_request("edge-1")),
                                       ("GET", "/v1/status", None)):
                r = http_request(n.http, method, path, body=body, headers=PB,
                                 ssl_context=ctx_with(ca, cert))
                h.check_error(r, 401, "unauthenticated", "a certificate %s" % what)
                check(reason in r.json()["error"]["message"], "the reason is given", r)
            wait_until(lambda: api_fail(n, reason) == before + 2, 5,
                       what="%s counted as %s" % (what, reason))
        # a server certificate that the client does not trust: the handshake fails
        check(tls_refused(n.http, ctx_with(rogue.ca)), "a client of another CA refuses us")

        def refused(reason):
            return metric(n, "raftplane_subscribe_refused_total", {"reason": reason})

        # no certificate: 401
        b = refused("no_cert")
        r = subscribe(n, "edge-1", ctx_with(ca))
        h.check_error(r, 401, "unauthenticated", "subscribe without a certificate")
        check(refused("no_cert") == b + 1, "no_cert counted")
        # another node's certificate, a server certificate, one naming nothing: 403
        b = refused("wrong_node")
        for what, cert in [("node edge-2", pki.node("edge-2")),
                           ("a server", pki.server(2)),
                           ("no identity", pki.leaf("junk", cn="bad name!"))]:
            r = subscribe(n, "edge-1", ctx_with(ca, cert))
            h.check_error(r, 403, "permission_denied", "subscribe as edge-1 with %s" % what)
            check("edge-1" in r.json()["error"]["message"], "the message names the node", r)
        check(refused("wrong_node") == b + 3, "wrong_node counted 3 times",
              refused("wrong_node") - b)
        # the node's own certificate (URI SAN), and the CN fallback
        r = subscribe(n, "edge-1", ctx_with(ca, pki.node("edge-1")))
        check(r.status == 200, "subscribe with edge-1's certificate", r)
        r = subscribe(n, "edge-9", ctx_with(ca, pki.leaf("cn-edge-9", cn="edge-9")))
        check(r.status == 200, "subscribe with a CN-only certificate", r)
        # the refusals were logged
        check("subscribe refused (no_cert)" in n.log_text(), "a log line for the refusal")
        check("TLS handshake from" in n.log_text(), "a log line for a failed handshake")


def test_refused_forward():
    """Node 3 presents a server certificate of another CA, which the servers
    trust as raft peers (--tls-peer-ca: the raft port is mutual TLS too, so
    node 3 is a member that knows the leader) but not as API clients
    (--tls-client-ca): the leader refuses node 3's forwards, counted on both
    sides."""
    rogue = tlscerts.Pki(os.path.join(h.shared_pki().dir, "rogue2"), name="rogue CA 2")
    peers = os.path.join(rogue.dir, "peer-bundle.pem")
    with open(peers, "w") as out:
        for ca in (h.shared_pki().ca, rogue.ca):
            with open(ca) as f:
                out.write(f.read())
    c = h.Cluster(n=3, tls=True, name="tls-fwd", start=False,
                  extra_args=["--tls-peer-ca", peers])
    with c:
        orig = c.tls_files

        def files(node):
            cert, key, ca = orig(node)
            if node.id == 3 and not os.path.exists(cert + ".rogue"):
                r = rogue.server(3)
                shutil.copyfile(r.cert, cert)
                shutil.copyfile(r.key, key)
                open(cert + ".rogue", "w").close()
            return cert, key, ca
        c.tls_files = files
        # our clients of node 3 must trust its CA
        c._register = lambda node: h.register_tls(
            node.http, ctx_with(rogue.ca) if node.id == 3 else c.client_ssl)
        c.start()
        lead = c.leader()
        if lead.id == 3:
            r = c.request(3, "POST", "/v1/members/1/leadership")
            check(r.status == 200, "move leadership away from node 3", r)
            lead = wait_until(lambda: c.leader() if c.leader().id != 3 else None, 20,
                              what="a leader other than node 3")
        before_leader = api_fail(lead, "unknown_ca")
        r = c.request(3, "PUT", "/v1/kv/x", body="1")
        # the leader answers 401 to the forward, relayed: a clear error, nothing applied
        h.check_error(r, 401, "unauthenticated", "a forward with a refused client certificate")
        check("unknown_ca" in r.json()["error"]["message"], "the reason is given", r)
        check(api_fail(lead, "unknown_ca") > before_leader,
              "the leader counted node 3's certificate as unknown_ca")
        check(c.request(lead, "GET", "/v1/kv/x").status == 404, "nothing was applied")


class Load(threading.Thread):
    """Requests on fresh connections and on one keep-alive connection until
    stopped; every failure is recorded."""

    def __init__(self, c, node, writes=False):
        super().__init__(daemon=True)
        self.c, self.node, self.writes = c, node, writes
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.serials = set()

    def run(self):
        kc = h.KeepAliveClient(self.node.http, timeout=10)
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if self.writes:
                    r = kc.request("PUT", "/v1/kv/load%d" % (i % 50), body="v%d" % i)
                else:
                    r = kc.request("GET", "/v1/status")
                s = h.open_socket(self.node.http, timeout=10)
                der = s.getpeercert(binary_form=True)
                s.close()
                self.serials.add(der)
                r2 = self.c.request(self.node, "GET", "/v1/kv/load1")
                if r.status != 200 or r2.status not in (200, 404):
                    self.failures.append((r.status, r2.status, r2.body[:200]))
                else:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(e))
                kc.close()


def test_sighup_rotation():
    with h.Cluster(n=3, tls=True, name="tls-rotate") as c:
        f = c.followers()[0]
        loads = [Load(c, f, writes=True), Load(c, c.leader())]
        for ld in loads:
            ld.start()
        time.sleep(1.0)
        for node in c.running():
            cert, key, _ = c.tls_files(node)
            fresh = c.pki.server(node.id)  # a new key and serial
            shutil.copyfile(fresh.cert, cert + ".new")
            shutil.copyfile(fresh.key, key + ".new")
            os.replace(key + ".new", key)
            os.replace(cert + ".new", cert)
            node.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "TLS certificates reloaded" in node.current_log(), 10,
                       what="%r to reload" % node)
            check(metric(node, "raftplane_tls_reloads_total",
                         {"context": "api", "result": "ok"}) == 1, "reload counted")
        time.sleep(1.5)
        # a bad file: the old certificate stays, counted and logged
        n = c.node(1)
        cert, key, _ = c.tls_files(n)
        good = open(cert, "rb").read()
        with open(cert, "w") as fh:
            fh.write("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
        n.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "TLS reload failed" in n.current_log(), 10, what="a failed reload")
        check(metric(n, "raftplane_tls_reloads_total",
                     {"context": "api", "result": "failed"}) == 1, "failed reload counted")
        s = h.open_socket(n.http)
        check(s.getpeercert(binary_form=True) is not None, "new connections still work")
        s.close()
        check(c.request(n, "GET", "/v1/status").status == 200, "served after a bad reload")
        with open(cert, "wb") as fh:
            fh.write(good)
        time.sleep(1.0)
        for ld in loads:
            ld.stop.set()
        for ld in loads:
            ld.join(30)
        for ld in loads:
            log("%r: %d ok, %d certificates seen, failures %s" % (
                ld.node, ld.ok, len(ld.serials), ld.failures[:5]))
            check(not ld.failures, "no request failed during rotation", ld.failures[:5])
            check(ld.ok > 20, "the load ran", ld.ok)
            check(len(ld.serials) >= 2, "new connections got the new certificate",
                  len(ld.serials))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_reset_released():
    """h2o 2.2.5 leaked the socket of a TLS connection that the client reset
    (closed with bytes unread): the close_notify write failed at once and
    h2o waited for its callback forever (net/accept.c)."""
    with h.Cluster(n=1, tls=True, name="tls-reset") as c:
        n = c.node(1)
        base = fd_count(n.proc.pid)
        ask = b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
        park = b"GET /v1/watch?after=1&kinds=members&wait=60s HTTP/1.1\r\nHost: x\r\n\r\n"
        for data, what in ((ask, "answered, idle in keep-alive"), (park, "parked watch")):
            socks = []
            for _ in range(30):
                s = h.open_socket(n.http, timeout=10)
                s.sendall(data)
                socks.append(s)
            # (base may still hold a start-up descriptor that closes meanwhile)
            wait_until(lambda: fd_count(n.proc.pid) >= base + 27, 10, what="30 connections")
            time.sleep(0.3)  # answered (or parked), nothing read
            for s in socks:
                # SO_LINGER 0: a reset even if nothing was left unread
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                s.close()
            wait_until(lambda: fd_count(n.proc.pid) <= base + 2, 10,
                       what="%s: descriptors back to %d (now %d)" % (
                           what, base, fd_count(n.proc.pid)))
            log("%s: 30 reset connections released" % what)
        check(c.request(n, "GET", "/v1/status").status == 200, "still serving")


def run_server(args, timeout=10):
    d = os.path.join(h.shared_pki().dir, "data-%d" % os.getpid())
    argv = [h.SERVER_BIN, "--id", "1", "--data-dir", d] + args
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    shutil.rmtree(d, ignore_errors=True)
    return p.returncode, (p.stdout + p.stderr).strip()


def test_secure_by_default():
    port = h.pick_ports(2)
    far = "10.255.255.1:%d" % port[0]
    near = "127.0.0.1:%d" % port[1]
    for args in (["--http", far, "--raft", near], ["--http", near, "--raft", far]):
        rc, out = run_server(args + ["--bootstrap", "1=%s@%s" % (args[3], args[1])])
        log("without TLS: rc %d: %s" % (rc, out))
        check(rc != 0 and "refusing plain HTTP and raft on the non-loopback address "
              "10.255.255.1" in out, "refused before binding", out)
        check(len(out.splitlines()) == 1, "one line", out)
        rc, out = run_server(args + ["--bootstrap", "1=%s@%s" % (args[3], args[1]),
                                     "--insecure"])
        log("--insecure: rc %d: %s" % (rc, out))
        check(rc != 0 and "refusing" not in out and "10.255.255.1" in out,
              "--insecure goes on to bind (and fails: the address is not ours)", out)


if __name__ == "__main__":
    h.run([test_api_over_tls, test_client_certs, test_refused_forward, test_sighup_rotation,
           test_secure_by_default, test_reset_released])
