#!/usr/bin/env python3
"""Mutual TLS on the raft port against real raftplane-server clusters
(certificates from tests/lib/tlscerts.py, one CA per cluster):

  cluster    3 nodes with TLS elect, replicate, survive a leader kill; a 4th
             node joins (--join) and catches up over TLS
  rogues     while a writer keeps writing to the leader: plain TCP with our
             handshake, no certificate, a self-signed one, another CA's, an
             expired one, a proxy's, a member's certificate claiming another
             member, a non-member's, a member's from the wrong source
             address, and a member's sending an absurd term: every attempt
             refused (or its message dropped), counted and logged; writes
             keep succeeding, no term moves
  outbound   a server answering on a member's address with another member's
             certificate, or with the right id from another CA: our
             connections give up before our handshake (the impostor gets no
             byte of plaintext), counted; a server started with another
             id's certificate refuses to start
  wiretap    a relay in front of a member records its raft traffic: with TLS
             neither our handshake nor any written value is visible (the same
             test without TLS sees both: the tap works)
  reload     SIGHUP with a new certificate: new connections get it,
             established ones stay; with a bad file the old one is kept and
             new connections still work
  pending    stalled TLS handshakes beyond --raft-max-pending: refused at
             once or at the deadline, memory stays small, members reconnect
  existing_* the scenarios of test_raft_port.py run on a TLS cluster, their
             probes sent inside TLS with the claimed member's certificate
"""

import http.client
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tlsraft import (RogueTlsServer, TlsCluster, client_context,  # noqa: E402
                     closed_within, tls_connect, tls_send_and_linger)
from rpharness import (SERVER_BIN, KeepAliveClient, check, log, pick_ports,  # noqa: E402
                       run, wait_until)
import raftprobe as p  # noqa: E402
import test_raft_port as rp  # noqa: E402
import tlscerts  # noqa: E402

metrics, term, put_keys, check_keys = rp.metrics, rp.term, rp.put_keys, rp.check_keys


def refused(c, n, reason):
    return rp.refused(c, n, reason)


def tls_failures(c, n, direction, reason):
    return metrics(c, n).get(
        'raftplane_raft_tls_failures_total{direction="%s",reason="%s"}' % (direction, reason), 0)


def all_tls_failures(c, n):
    return {k: v for k, v in metrics(c, n).items()
            if k.startswith("raftplane_raft_tls_failures_total") and v}


def self_signed(directory, raft_id):
    """A self-signed leaf naming spiffe://raftplane/server/ID: no CA vouches for it."""
    os.makedirs(directory, exist_ok=True)
    key = os.path.join(directory, "self-%d.key" % raft_id)
    crt = os.path.join(directory, "self-%d.pem" % raft_id)
    subprocess.run(["openssl", "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-keyout", key, "-out", crt, "-days", "30",
                    "-subj", "/CN=server-%d" % raft_id,
                    "-addext", "subjectAltName=URI:spiffe://raftplane/server/%d,IP:127.0.0.1"
                    % raft_id, "-addext", "basicConstraints=critical,CA:FALSE",
                    "-addext", "extendedKeyUsage=serverAuth,clientAuth"],
                   check=True, capture_output=True)
    return tlscerts.Cert(crt, key, crt, "self-%d" % raft_id)


class Writer:
    """Keeps writing through the leader's HTTP API (one keep-alive
    connection) until stop(); counts successes and keeps the failures."""

    def __init__(self, c, prefix="w"):
        self.lead = c.leader()
        self.prefix = prefix
        self.ok = 0
        self.failed = []
        self.halt = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        cl = KeepAliveClient(self.lead.http, timeout=10)
        i = 0
        while not self.halt.is_set():
            try:
                r = cl.request("PUT", "/v1/kv/%s%d" % (self.prefix, i), body=b"v%d" % i)
                if r.status in (200, 201):
                    self.ok += 1
                else:
                    self.failed.append((i, r.status, r.body[:200]))
            except (OSError, http.client.HTTPException) as e:
                self.failed.append((i, repr(e)))
            i += 1
            time.sleep(0.01)
        cl.close()

    def progressing(self, what):
        n = self.ok
        wait_until(lambda: self.ok >= n + 5, 10, what="writes to go on (%s)" % what)
        check(not self.failed, "writes failed (%s): %s" % (what, self.failed[:5]))

    def stop(self):
        self.halt.set()
        self.t.join(15)
        return self.ok


# ---- a cluster over TLS ---------------------------------------------------------

def cluster():
    with TlsCluster(3) as c:
        lead = c.leader()
        put_keys(c, "a", 20)
        rev = c.status(lead)["revision"]
        for n in c.nodes.values():
            c.wait_applied(n, rev)
            # the leader dials each follower, each follower dials the leader
            k = 2 if n is lead else 1
            m = metrics(c, n)
            check(m["raftplane_raft_conns_accepted_total"] >= k and
                  m["raftplane_raft_conns_relayed"] >= 2 * k,
                  "%r: connections in and out, relayed" % n, m)
        old = c.kill(lead.id)
        new = c.leader(timeout=30)
        check(new is not old, "a new leader after the kill")
        put_keys(c, "b", 10)
        c.restart(old.id)
        c.wait_applied(old, c.status(c.leader())["revision"], timeout=30)
        check_keys(c, "b", 10, node=c.leader())
        # a fourth node joins: the leader's outbound TLS to it, its TLS to the members
        j = c.add_node_by_join(timeout=60)
        put_keys(c, "c", 5)
        c.wait_applied(j, c.status(c.leader())["revision"], timeout=30)
        for prefix, k in (("a", 20), ("b", 10), ("c", 5)):
            for i in range(k):
                r = c.request(j, "GET", "/v1/kv/%s%d?consistency=stale" % (prefix, i))
                check(r.status == 200 and r.body == b"v%d" % i, "%s%d on the joined node"
                      % (prefix, i), r)
        members = c.request(c.leader(), "GET", "/v1/members").json()["members"]
        check(len(members) == 4, "4 members", members)
        for n in c.nodes.values():
            bad = {k: v for k, v in all_tls_failures(c, n).items() if 'reason="handshake"' not in k}
            check(not bad, "%r: TLS failures in an honest cluster: %s" % (n, bad))
            check(refused(c, n, "wrong_identity") == 0, "%r refused an honest peer" % n)


# ---- rogue peers ----------------------------------------------------------------

def rogues():
    with TlsCluster(3) as c:
        put_keys(c, "a", 5)
        T = c.leader()
        o1, o2 = [n.id for n in c.nodes.values() if n is not T]
        other_ca = tlscerts.Pki(os.path.join(c.dir, "other-ca"), name="another CA")

        def hs(sender):
            return p.new_handshake(sender, T.id, "127.0.0.1:1")

        def vote(sender):
            return p.request_vote(p.MAX_TERM, sender)

        def plain(data, source=None):
            return lambda: p.send_and_linger(T.raft, data, source, linger=2.0)

        def tls(cert, data, source=None):
            return lambda: tls_send_and_linger(T.raft, data, cert, source_ip=source, linger=2.0)

        # (name, attempt, counter that must grow, TLS failure reason or None, log text)
        R, D = "raftplane_raft_conns_refused_total", "raftplane_raft_msgs_dropped_total"
        cases = [
            ("plain TCP, our handshake", plain(hs(o1) + vote(o1)),
             (R, "tls"), "handshake", "tls (handshake)"),
            ("TLS without a certificate", tls(None, hs(o1) + vote(o1)),
             (R, "tls"), "no_cert", "tls (no_cert)"),
            ("self-signed certificate", tls(self_signed(os.path.join(c.dir, "self"), o1),
                                            hs(o1) + vote(o1)),
             (R, "tls"), "unknown_ca", "tls (unknown_ca)"),
            ("another CA's certificate for a member", tls(other_ca.server(o1), hs(o1) + vote(o1)),
             (R, "tls"), "unknown_ca", "tls (unknown_ca)"),
            ("an expired certificate of a member", tls(c.pki.server(o1, expired=True),
                                                       hs(o1) + vote(o1)),
             (R, "tls"), "expired", "tls (expired)"),
            ("a proxy's certificate", tls(c.pki.node("edge-1"), hs(o1) + vote(o1)),
             (R, "wrong_identity"), "wrong_identity", "certificate names node:edge-1"),
            ("member %d's certificate claiming member %d" % (o1, o2),
             tls(c.cert(o1), hs(o2) + vote(o2)),
             (R, "wrong_identity"), "wrong_identity",
             "certificate names server %d, handshake claims %d" % (o1, o2)),
            ("a valid certificate of a non-member", tls(c.pki.server(9), hs(9) + vote(9)),
             (R, "not_member"), None, "(id 9): not_member"),
            ("member %d's certificate from 127.0.0.2" % o1,
             tls(c.cert(o1), hs(o1) + vote(o1), "127.0.0.2"),
             (R, "wrong_address"), None, "(id %d): wrong_address" % o1),
            ("member %d's certificate, an absurd term" % o1, tls(c.cert(o1), hs(o1) + vote(o1)),
             (D, "term"), None, "(id %d) and closed its connection: term" % o1),
        ]
        w = Writer(c)
        w.progressing("before the attacks")
        terms0 = {n.id: term(c, n) for n in c.nodes.values()}
        changes0 = {n.id: metrics(c, n)["raftplane_leader_changes_total"] for n in c.nodes.values()}
        for name, attempt, (metric, reason), tls_reason, text in cases:
            log("rogue: %s" % name)
            m0 = metrics(c, T)
            key = '%s{reason="%s"}' % (metric, reason)
            tkey = 'raftplane_raft_tls_failures_total{direction="in",reason="%s"}' % tls_reason
            log_len = len(T.current_log())
            time.sleep(1.1)  # refusals are logged at most once a second
            check(attempt(), "%s: the connection stays open" % name)
            wait_until(lambda: metrics(c, T).get(key, 0) > m0.get(key, 0), 10,
                       what="%s counted as %s" % (name, key))
            if tls_reason:
                check(metrics(c, T)[tkey] > m0[tkey], "%s: %s not counted" % (name, tkey))
            wait_until(lambda: text in T.current_log()[log_len:], 5,
                       what="%s logged (%r)" % (name, text))
            w.progressing(name)
        w.stop()
        check(not w.failed, "writes failed during the attacks: %s" % w.failed[:5])
        terms = {n.id: term(c, n) for n in c.nodes.values()}
        changes = {n.id: metrics(c, n)["raftplane_leader_changes_total"] for n in c.nodes.values()}
        check(terms == terms0, "terms moved: %s -> %s" % (terms0, terms))
        check(changes == changes0, "leader changes %s -> %s" % (changes0, changes))
        check(c.leader() is T, "the leader changed")
        log("%d writes acknowledged during the attacks" % w.ok)


# ---- outbound: the server we dial must be the member we dial ---------------------

def outbound():
    with TlsCluster(3) as c:
        lead = c.leader()
        v, o = [n for n in c.nodes.values() if n is not lead]
        put_keys(c, "a", 5)
        c.kill(v.id)
        for what, cert, reason in (
                ("member %d's certificate" % o.id, c.cert(o.id), "wrong_identity"),
                ("another CA's certificate for %d" % v.id,
                 tlscerts.Pki(os.path.join(c.dir, "other-ca")).server(v.id), "unknown_ca")):
            log("impostor on %s with %s" % (v.raft, what))
            f0 = tls_failures(c, lead, "out", reason)
            rogue = RogueTlsServer(v.raft, cert)
            try:
                wait_until(lambda: tls_failures(c, lead, "out", reason) >= f0 + 2, 20,
                           what="the leader's connections to the impostor counted (%s)" % reason)
                put_keys(c, "b", 3)  # the cluster goes on with two nodes
            finally:
                rogue.close()
            check(not rogue.received, "the impostor received %d bytes of plaintext: %r"
                  % (len(rogue.received), bytes(rogue.received[:64])))
            check(("TLS connection to server %d at %s failed: %s" % (v.id, v.raft, reason))
                  in lead.current_log(), "the failure is logged")
        c.restart(v.id)
        c.wait_applied(v, c.status(c.leader())["revision"], timeout=30)
        check_keys(c, "b", 3, node=c.leader())
        # a server cannot even start with another id's certificate
        rp_, hp = pick_ports(2)
        oc = c.cert(o.id)
        r = subprocess.run([SERVER_BIN, "--id", "7", "--data-dir", os.path.join(c.dir, "n7"),
                            "--raft", "127.0.0.1:%d" % rp_, "--http", "127.0.0.1:%d" % hp,
                            "--bootstrap", "7=127.0.0.1:%d@127.0.0.1:%d" % (rp_, hp),
                            "--tls-cert", oc.cert, "--tls-key", oc.key,
                            "--tls-peer-ca", c.pki.ca], capture_output=True, text=True,
                           timeout=30)
        check(r.returncode != 0 and "names server:%d" % o.id in r.stderr,
              "a server with another id's certificate must not start", r.returncode, r.stderr)


# ---- a wiretap on a link --------------------------------------------------------

def wiretap():
    secret = b"wiretap-" + os.urandom(6).hex().encode()
    for tls in (False, True):
        with TlsCluster(3, tls=tls, wiretap=3) as c:
            lead = c.leader()
            if lead.id == 3:  # the tap is on the way to node 3: make it a follower
                c.request(lead, "POST", "/v1/members/1/leadership")
                wait_until(lambda: c.leader().id != 3, 20, what="leadership moved")
            lead = c.leader()
            for i in range(20):
                r = c.request(lead, "PUT", "/v1/kv/tap%d" % i, body=secret + b"%d" % i)
                check(r.status in (200, 201), "PUT tap%d" % i, r)
            c.wait_applied(c.node(3), c.status(lead)["revision"])
            r = c.request(3, "GET", "/v1/kv/tap19?consistency=stale")
            check(r.status == 200 and r.body == secret + b"19", "node 3 has the value", r)
            up, down = c.relay.captured()
            log("TLS %s: the tap saw %d bytes to node 3, %d back over %d connections"
                % ("on" if tls else "off", len(up), len(down), c.relay.conns))
            check(len(up) > 1000 and c.relay.conns >= 1, "the tap carried the traffic")
            seen = [what for what, b in (("our handshake", b"RPRT"), ("a value", secret))
                    if b in up or b in down]
            if not tls:
                check(len(seen) == 2, "plain raft must show the handshake and the values "
                      "(else the tap proves nothing): saw %s" % seen)
            else:
                check(not seen, "TLS raft shows %s on the wire" % seen)
                check(up[0] == 0x16 and down[:1] == b"\x16", "TLS handshake records first")


# ---- certificate reload ---------------------------------------------------------

def presented_cert(c, node, as_id):
    """The DER certificate @node presents on its raft port to a new connection."""
    s = tls_connect(c.node(node).raft, cert=c.cert(as_id), ca=c.pki.ca)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def der_of(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def reload():
    with TlsCluster(3) as c:
        n1 = c.node(1)
        put_keys(c, "a", 5)
        old = der_of(c.cert(1).cert)
        check(presented_cert(c, 1, 2) == old, "node 1 presents its certificate")
        w = Writer(c)
        w.progressing("before the reload")
        acc0 = metrics(c, n1)["raftplane_raft_conns_accepted_total"]
        relayed0 = metrics(c, n1)["raftplane_raft_conns_relayed"]
        # a new certificate and key for node 1, in the same files
        c.pki.server(1)
        new = der_of(c.cert(1).cert)
        check(new != old, "a new certificate was made")
        n1.proc.send_signal(1)  # SIGHUP
        wait_until(lambda: "TLS certificates reloaded" in n1.current_log(), 10,
                   what="the reload logged")
        check(presented_cert(c, 1, 2) == new, "new connections get the new certificate")
        w.progressing("after the reload")
        m = metrics(c, n1)
        # the probe above was one more accepted-then-closed connection at most
        check(m["raftplane_raft_conns_relayed"] == relayed0,
              "established raft connections dropped by the reload: %d -> %d relayed"
              % (relayed0, m["raftplane_raft_conns_relayed"]))
        check(m["raftplane_raft_conns_accepted_total"] <= acc0 + 1,
              "peers reconnected after the reload: %d -> %d accepted"
              % (acc0, m["raftplane_raft_conns_accepted_total"]))
        # a peer that connects anew verifies the new certificate
        other = 2 if c.leader().id != 2 else 3
        c.stop(other)
        c.restart(other)
        c.wait_applied(c.node(other), c.status(c.leader())["revision"], timeout=30)
        # a bad file: the reload fails, the current certificate stays
        with open(c.cert(1).cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        n1.proc.send_signal(1)
        wait_until(lambda: "TLS reload failed, keeping the current certificates"
                   in n1.current_log(), 10, what="the failed reload logged")
        check(presented_cert(c, 1, 2) == new, "the certificate changed on a failed reload")
        c.stop(other)
        c.restart(other)
        c.wait_applied(c.node(other), c.status(c.leader())["revision"], timeout=30)
        w.stop()
        check(not w.failed, "writes failed around the reloads: %s" % w.failed[:5])
        check(n1.alive(), "node 1 survived")


# ---- unauthenticated TLS state stays bounded ---------------------------------------

def client_hello():
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = client_context().wrap_bio(inc, out)
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def pending():
    limit = 32
    with TlsCluster(3) as c:
        put_keys(c, "a", 5)
        lead = c.leader()
        victim = lead
        rss0 = rp.vm_rss_kb(victim)
        socks = []
        try:
            # TLS handshakes that stop after the ClientHello, beyond the limit, from one host
            hello = client_hello()
            for _ in range(4 * limit):
                s = p.connect(victim.raft, "127.0.0.2")
                s.sendall(hello)
                socks.append(s)

            def n_closed():
                k = 0
                for s in socks:
                    s.settimeout(0.01)
                    try:
                        while True:
                            d = s.recv(65536)
                            if d == b"":
                                k += 1
                                break
                    except socket.timeout:
                        pass
                    except OSError:
                        k += 1
                return k
            wait_until(lambda: n_closed() >= 3 * limit, 3,
                       what="TLS handshakes beyond --raft-max-pending refused")
            log("pending_limit refusals: %d" % refused(c, victim, "pending_limit"))
            # a member that completes TLS and then stalls before our handshake
            st = tls_connect(victim.raft, cert=c.cert([n.id for n in c.nodes.values()
                                                       if n is not victim][0]))
            t0 = time.monotonic()
            check(closed_within(st, 6), "a stalled handshake inside TLS stays open")
            check(time.monotonic() - t0 < 5, "closed after the deadline only")
            st.close()
            rss1 = rp.vm_rss_kb(victim)
            log("VmRSS %d kB before, %d kB with the stalled TLS handshakes" % (rss0, rss1))
            check(rss1 - rss0 < 32 * 1024, "RSS grew %d kB" % (rss1 - rss0))
            # meanwhile members reconnect: a restarted follower catches up
            other = [n for n in c.nodes.values() if n is not victim][0]
            c.stop(other.id)
            put_keys(c, "b", 5)
            c.restart(other.id)
            c.wait_applied(other, c.status(lead)["revision"], timeout=30)
            wait_until(lambda: n_closed() == len(socks), 10,
                       what="every stalled handshake closed at the deadline")
            check(refused(c, victim, "handshake_timeout") >= 1, "deadline refusals counted")
        finally:
            for s in socks:
                s.close()


# ---- the scenarios of test_raft_port.py over TLS -------------------------------------

def tls_fire(addr, data, source_ip=None):
    """test_raft_port.fire inside TLS, with the certificate of the id the
    handshake claims (both of raftplane's and raft_uv_tcp's have it at 8..16)."""
    sender = struct.unpack("<Q", data[8:16])[0] if len(data) >= 16 else 1
    cert = TlsCluster.current.cert(sender if 0 < sender < 2**31 else 1)
    tls_send_and_linger(addr, data, cert, source_ip=source_ip, linger=0.2)


def existing(name):
    def fn():
        rp.Cluster = TlsCluster
        rp.fire = tls_fire
        getattr(rp, name)()
    fn.__name__ = "existing_" + name
    return fn


if __name__ == "__main__":
    run([cluster, rogues, outbound, wiretap, reload, pending] +
        [existing(n) for n in ("outsiders", "member_term", "timeout_now", "malformed",
                               "handshake_abuse", "big_snapshot")])
