#!/usr/bin/env python3
"""raftplane-proxy with mutual TLS towards the servers (docs/security.md,
docs/proxy.md): real servers, proxies, backends; certificates from
tests/lib/tlscerts.py.

  test_mtls_traffic        a proxy with its node certificate gets its snapshot
                           and serves traffic
  test_wrong_node_cert     a certificate for another node id: 403, the proxy
                           keeps serving its last good (cached) generation and
                           says why in /config_dump
  test_server_checks       servers whose certificate is from another CA,
                           expired, or not a server's: refused, counted, and
                           /config_dump says why
  test_sighup_rotation     servers and proxy rotate their certificates under
                           load: no failed request; a bad file keeps the old one
  test_secure_by_default   plain HTTP to non-loopback servers or a non-loopback
                           admin is refused at start unless --insecure
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import proxyharness as ph
from proxyharness import (Env, Load, check, log, pick_ports, run, wait_body, wait_until)
import rpharness
import tlscerts


def mesh(env, backend, port, node="*"):
    env.cluster_of("c", [backend])
    env.listener("l", port, nodes=[node])
    return env.route("r", "l", "c")


def tls_state(p):
    return p.config()["control_plane"]


def test_mtls_traffic():
    with Env(tls=True, name="px-tls") as env:
        a = env.backend("A")
        p = env.proxy("edge-1")
        port = pick_ports(1)[0]
        v = mesh(env, a, port)
        p.wait_version(v)
        check(wait_body("127.0.0.1:%d" % port, "A"), "traffic through the proxy")
        cp = tls_state(p)
        check(cp["connected"] and cp["tls"]["enabled"], "connected over TLS", cp)
        check(sum(cp["tls"]["handshake_failures"].values()) == 0, "no failure", cp)
        check("(TLS)" in p.log_text(), "the start line says TLS")


def test_wrong_node_cert():
    with Env(tls=True, name="px-tls-node") as env:
        a = env.backend("A")
        port = pick_ports(1)[0]
        v = mesh(env, a, port, node="edge-2")
        cache = os.path.join(env.dir, "cache")
        p = env.proxy("edge-2", cache_dir=cache)
        p.wait_version(v)
        check(p.stop() == 0, "proxy stops")
        # the same node id, the same cache, but edge-1's certificate
        cert, key, ca = env.proxy_tls_files("edge-2x", env.tls.node("edge-1"))
        lead = env.cluster.leader()
        before = sum(int(ln.rsplit(" ", 1)[1]) for ln in rpharness.http_request(
            lead.http, "GET", "/metrics").body.decode().splitlines()
            if ln.startswith('raftplane_subscribe_refused_total{reason="wrong_node"}'))
        q = env.proxy("edge-2", cache_dir=cache,
                      extra=["--tls-cert", cert, "--tls-key", key, "--tls-ca", ca])
        check(q.version() == v, "serves the cached generation", q.version())
        check(wait_body("127.0.0.1:%d" % port, "A"), "traffic from the cached generation")
        cp = wait_until(lambda: (lambda c: not c["connected"] and "403" in c["last_error"]
                                 and c)(tls_state(q)), 15, what="the 403 in config_dump")
        log("config_dump: %s" % cp["last_error"])
        check("permission_denied" in cp["last_error"] and "edge-1" in cp["last_error"],
              "config_dump says why", cp)
        check("names node:edge-1, not spiffe://raftplane/node/edge-2" in q.log_text(),
              "the start warns about the certificate", q.log_text()[-1500:])
        check("subscription:" in q.log_text() and "403" in q.log_text(),
              "the refusal is logged")
        after = 0
        for n in env.cluster.running():
            after += sum(int(ln.rsplit(" ", 1)[1]) for ln in rpharness.http_request(
                n.http, "GET", "/metrics").body.decode().splitlines()
                if ln.startswith('raftplane_subscribe_refused_total{reason="wrong_node"}'))
        check(after > before, "servers counted wrong_node", before, after)
        # it keeps retrying with backoff, and still serves
        time.sleep(1.0)
        check(q.alive() and q.version() == v, "still serving the cached version")


class FakeServer(threading.Thread):
    """A TLS server presenting @cert; completes handshakes and closes."""

    def __init__(self, cert, ca):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        self.ctx.load_verify_locations(ca)
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.requests = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                s, _ = self.sock.accept()
            except OSError:
                continue
            try:
                s.settimeout(2)
                t = self.ctx.wrap_socket(s, server_side=True)
                data = t.recv(4096)
                if data:
                    self.requests += 1
                t.close()
            except (OSError, ssl.SSLError):
                s.close()

    def close(self):
        self.done.set()
        self.join(5)
        self.sock.close()


def test_server_checks():
    pki = rpharness.shared_pki()
    rogue = tlscerts.Pki(os.path.join(pki.dir, "px-rogue"), name="proxy rogue CA")
    cases = [("another CA", rogue.server(1), "unknown_ca"),
             ("expired", pki.server(1, expired=True), "expired"),
             ("a node's", pki.node("edge-7"), "wrong_identity")]
    with Env(servers=0, name="px-tls-servers") as env:
        env.tls = pki
        for what, cert, reason in cases:
            fake = FakeServer(cert, pki.ca)
            fake.start()
            try:
                c, k, ca = env.proxy_tls_files("edge-1")
                env.servers = lambda: fake.addr
                p = ph.Proxy(env, "edge-1", extra=["--tls-cert", c, "--tls-key", k,
                                                   "--tls-ca", ca])
                env.procs.append(p)
                p.start()
                cp = wait_until(lambda: (lambda x: x["tls"]["handshake_failures"][reason] > 0
                                         and x)(tls_state(p)), 15,
                                what="the proxy to count %s" % reason)
                log("%s: %s" % (what, cp["last_error"]))
                check(not cp["connected"], "not connected", cp)
                check(reason in cp["last_error"] or "presented node:edge-7" in cp["last_error"],
                      "config_dump says why", cp)
                check(fake.requests == 0, "no request reached the refused server")
                m = p.get("/metrics").body.decode()
                check('raftplane_proxy_tls_handshake_failures_total{reason="%s"}' % reason in m,
                      "the metric is there")
                p.stop()
            finally:
                fake.close()


def rotate(files, cert):
    """Overwrite the (cert, key) copies with @cert's, key first."""
    shutil.copyfile(cert.key, files[1] + ".new")
    shutil.copyfile(cert.cert, files[0] + ".new")
    os.replace(files[1] + ".new", files[1])
    os.replace(files[0] + ".new", files[0])


def test_sighup_rotation():
    with Env(tls=True, name="px-tls-rotate") as env:
        a = env.backend("A")
        p = env.proxy("edge-1")
        port = pick_ports(1)[0]
        v = mesh(env, a, port)
        p.wait_version(v)
        check(wait_body("127.0.0.1:%d" % port, "A"), "traffic")
        load = Load("127.0.0.1:%d" % port, threads=3)
        load.start()
        time.sleep(0.5)
        # every server rotates, then the proxy; the mesh keeps changing
        for node in env.cluster.running():
            cert, key, _ = env.cluster.tls_files(node)
            rotate((cert, key), env.tls.server(node.id))
            node.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "TLS certificates reloaded" in node.current_log(), 10,
                       what="%r reloads" % node)
            env.route("r%d" % node.id, "l", "c", prefix="/r%d" % node.id)
        rotate(p.tls_files, env.tls.node("edge-1"))
        p.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: tls_state(p)["tls"]["reloads"]["ok"] == 1, 10,
                   what="the proxy reloads")
        v = env.route("after-rotation", "l", "c", prefix="/after")
        p.wait_version(v)
        # a bad file: the old certificate stays, logged and counted
        with open(p.tls_files[0], "w") as f:
            f.write("not a certificate\n")
        p.proc.send_signal(signal.SIGHUP)
        t = wait_until(lambda: (lambda x: x["reloads"]["failed"] == 1 and x)(
            tls_state(p)["tls"]), 10, what="a failed reload")
        check(t["reloads"]["last_error"], "config_dump says why", t)
        check("TLS reload failed" in p.log_text(), "logged")
        v = env.route("after-bad-file", "l", "c", prefix="/bad")
        p.wait_version(v)
        time.sleep(0.5)
        load.stop()
        log("load: %d requests, failures %s, errors %s" % (load.total(), load.failures(), load.errors[:5]))
        check(load.total() > 50, "the load ran", load.total())
        check(not load.failures(), "no failed request during rotation", load.errors[:5])


def start_fail(argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    return p.returncode, (p.stdout + p.stderr).strip()


def test_secure_by_default():
    far = "10.255.255.1:%d" % pick_ports(1)[0]
    near_admin = "127.0.0.1:%d" % pick_ports(1)[0]
    base = [ph.PROXY_BIN, "--node-id", "edge-1"]
    rc, out = start_fail(base + ["--servers", "127.0.0.1:1," + far, "--admin", near_admin])
    log("servers: %d %s" % (rc, out))
    check(rc == 2 and out.count("\n") == 0 and
          "refusing plain HTTP to the non-loopback server 10.255.255.1" in out, "refused", out)
    rc, out = start_fail(base + ["--servers", "127.0.0.1:1", "--admin", far])
    log("admin: %d %s" % (rc, out))
    check(rc == 2 and "refusing the plain-HTTP admin server on the non-loopback address" in out,
          "admin refused", out)
    rc, out = start_fail(base + ["--servers", "127.0.0.1:1", "--admin", far, "--insecure"])
    log("admin --insecure: %d %s" % (rc, out))
    check(rc != 0 and "refusing" not in out and "10.255.255.1" in out,
          "--insecure goes on to bind (and fails: not our address)", out)
    sub = os.environ["RP_SUBSCRIBER_BIN"]
    rc, out = start_fail([sub, "--servers", far, "--node-id", "x", "--duration", "1"])
    check(rc == 2 and "refusing plain HTTP" in out, "the subscriber refuses too", out)


if __name__ == "__main__":
    run([test_mtls_traffic, test_wrong_node_cert, test_server_checks, test_sighup_rotation,
         test_secure_by_default])
