"""Raft peer TLS for tests: a Cluster whose nodes run with --tls-cert/--tls-key/
--tls-peer-ca (certificates from tests/lib/tlscerts.py, one CA per cluster),
TLS rogue peers, and small TCP helpers (a recording relay, a rogue TLS
server). Standard library only.

    with TlsCluster(3) as c:           # node N has spiffe://raftplane/server/N
        c.pki                          # the cluster CA (tlscerts.Pki)
        s = tls_connect(c.node(1).raft, cert=c.cert(2))   # member 2's certificate
        RogueTlsServer(addr, c.cert(3))                   # a server posing as 3

Until rpharness makes TLS clusters itself (HARNESS_TLS below) the admin API
stays plain HTTP on 127.0.0.1 (allowed on loopback) and only the raft port
is TLS; afterwards the API is TLS too and the harness's requests follow.
"""

import inspect
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
sys.path.insert(0, HERE)
from rpharness import Cluster, check, http_request, log, wait_until  # noqa: E402,F401
import tlscerts  # noqa: E402
import raftprobe as p  # noqa: E402


# Once rpharness.Cluster makes TLS clusters itself (Cluster(tls=Pki), TLS on
# the API too, node files from tls_files()), TlsCluster hands it its CA and
# certificates; until then it adds the raft TLS flags itself.
HARNESS_TLS = "tls" in inspect.signature(Cluster.__init__).parameters


class TlsCluster(Cluster):
    """A Cluster with mutual TLS on the raft port. certs[id] is the
    certificate node id starts with (made on demand by the cluster's CA,
    self.pki).
    tls=False: the same cluster in plain text (self.pki is None).
    TlsCluster.current is the last one made."""

    current = None

    def __init__(self, n=3, tls=True, wiretap=None, **kw):
        start = kw.pop("start", True)
        ready_timeout = kw.pop("ready_timeout", 30.0)
        wait_ready = kw.pop("wait_ready", True)
        self.pki_dir = tempfile.mkdtemp(prefix="rp-raft-pki-", dir="/tmp")
        pki = tlscerts.Pki(self.pki_dir) if tls else None
        if HARNESS_TLS:
            kw["tls"] = pki or False
        super().__init__(n, start=False, **kw)
        self.tls = bool(tls)
        self.pki = pki
        self.certs = {}
        # wiretap=ID: the configuration names a Relay (self.relay) in front of
        # node ID's raft port, so that every byte sent to it is recorded
        self.wiretap_id = wiretap
        self.relay = None
        TlsCluster.current = self
        if start:
            try:
                self.start(ready_timeout=ready_timeout, wait_ready=wait_ready)
            except BaseException:
                self.failed = True
                self.close(check_logs=False)
                raise

    def cert(self, node_id):
        if node_id not in self.certs:
            self.certs[node_id] = self.pki.server(node_id)
        return self.certs[node_id]

    def tls_files(self, node):
        """(cert, key, ca) node starts with (rpharness calls it when it makes
        TLS clusters itself)."""
        c = self.cert(node.id)
        return c.cert, c.key, self.pki.ca

    def _argv(self, node, mode):
        argv = super()._argv(node, mode)
        if self.tls and not HARNESS_TLS:
            cert, key, ca = self.tls_files(node)
            argv += ["--tls-cert", cert, "--tls-key", key, "--tls-peer-ca", ca]
        return argv

    def bootstrap_arg(self):
        parts = []
        for n in sorted(self._bootstrap_nodes, key=lambda x: x.id):
            raft = n.raft
            if n.id == self.wiretap_id:
                if self.relay is None or self.relay.target != n.raft:
                    if self.relay is not None:
                        self.relay.close()
                    self.relay = Relay(n.raft)
                raft = self.relay.addr
            parts.append("%d=%s@%s" % (n.id, raft, n.http))
        return ",".join(parts)

    def close(self, check_logs=True):
        if self.relay is not None:
            self.relay.close()
        try:
            super().close(check_logs)
        finally:
            shutil.rmtree(self.pki_dir, ignore_errors=True)


def client_context(cert=None, ca=None):
    """A TLS client context: our certificate (a tlscerts.Cert) if given;
    the server verified against @ca if given, else not at all (a rogue does
    not care who answers)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    return ctx


def tls_connect(addr, cert=None, ca=None, source_ip=None, timeout=5.0):
    """A TLS connection to @addr (TLS handshake done). Raises ssl.SSLError or
    OSError when the server refuses it during the handshake."""
    raw = p.connect(addr, source_ip, timeout)
    try:
        return client_context(cert, ca).wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def closed_within(s, linger):
    """True when the peer closed @s (EOF, reset or a TLS alert) within
    @linger seconds, False when it is still open."""
    s.settimeout(linger)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except (OSError, ssl.SSLError):
        return True


def tls_send_and_linger(addr, data, cert=None, ca=None, source_ip=None, linger=1.0):
    """Connect with TLS, send @data inside it, report whether the server
    closed the connection within @linger s. A refusal during the TLS
    handshake counts as closed."""
    try:
        s = tls_connect(addr, cert, ca, source_ip)
    except (OSError, ssl.SSLError) as e:
        log("TLS to %s refused in the handshake: %s" % (addr, e))
        return True
    try:
        try:
            s.sendall(data)
        except (OSError, ssl.SSLError):
            return True
        return closed_within(s, linger)
    finally:
        s.close()


class Relay:
    """A TCP relay on 127.0.0.1 (port picked by the kernel) to @target that
    records every byte it carries, per direction: a wiretap on a link."""

    def __init__(self, target):
        self.target = target
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.addr = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.upstream = bytearray()    # client -> target
        self.downstream = bytearray()  # target -> client
        self.conns = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            host, port = self.target.rsplit(":", 1)
            try:
                b = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                a.close()
                continue
            b.settimeout(None)
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._pump, args=(a, b, self.upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a, self.downstream),
                             daemon=True).start()

    def _pump(self, src, dst, record):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                with self.lock:
                    if len(record) < (64 << 20):
                        record += d
                dst.sendall(d)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def captured(self):
        with self.lock:
            return bytes(self.upstream), bytes(self.downstream)

    def close(self):
        self.stopped = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.lsock.close()


class RogueTlsServer:
    """A TLS server on @addr presenting @cert (requiring no client
    certificate) that records what each accepted connection sends: a server
    impersonated with another certificate."""

    def __init__(self, addr, cert):
        host, port = addr.rsplit(":", 1)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, int(port)))
        self.lsock.listen(64)
        self.lock = threading.Lock()
        self.accepted = 0        # TLS handshakes completed
        self.failed = 0          # TLS handshakes the client aborted
        self.received = bytearray()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(a,), daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(5)
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            with self.lock:
                self.failed += 1
            raw.close()
            return
        with self.lock:
            self.accepted += 1
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                with self.lock:
                    self.received += d
        except (OSError, ssl.SSLError):
            pass
        finally:
            s.close()

    def close(self):
        self.stopped = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.lsock.close()
