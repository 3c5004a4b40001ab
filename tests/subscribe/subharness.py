"""Helpers for subscription tests: raftplane-subscriber processes whose JSON
lines (one per snapshot received) are collected by a reader thread.

TLS: when the servers serve TLS (a rpharness.Cluster with tls, or
RP_IT_TLS=1), each Subscriber presents node certificates of the servers' CA:
--tls-cert/--tls-key for --node-id, --tls-cert-dir (one certificate per
subscriber) for --node-prefix/--count."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import rpharness  # noqa: E402
from rpharness import check, log, wait_until  # noqa: E402,F401
# the names the subscription tests use (tests/lib/pbwire.py)
from pbwire import f_bytes as pb_bytes, f_uint_always as pb_uint, varint as pb_varint  # noqa: E402,F401,E501

SUB_BIN = os.environ.get("RP_SUBSCRIBER_BIN") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "proxy", "raftplane-subscriber"))

_subs = []


def tls_args(servers, node_id=None, prefix=None, count=1, extra=()):
    """The TLS flags of a subscriber of @servers (Nodes) when they serve TLS
    (rpharness.Cluster(tls=...), RP_IT_TLS=1): the node certificate of
    @node_id, or one per subscriber of --node-prefix (--tls-cert-dir); []
    when the servers are plain or @extra has TLS flags of its own."""
    pki = rpharness.pki_for(servers[0].http) if servers else None
    if pki is None or any(a.startswith("--tls-") for a in extra):
        return []
    if node_id:
        cert = rpharness.node_cert(node_id, pki)
        return ["--tls-cert", cert.cert, "--tls-key", cert.key, "--tls-ca", pki.ca]
    ids = ["%s-%d" % (prefix[:100], i) for i in range(count)]
    return ["--tls-cert-dir", rpharness.node_cert_dir(ids, pki), "--tls-ca", pki.ca]


class Subscriber:
    """One raftplane-subscriber process (one or many subscribers inside)."""

    def __init__(self, servers, node_id=None, prefix=None, count=1, extra=()):
        argv = [SUB_BIN, "--servers", ",".join(s.http for s in servers)]
        argv += ["--node-id", node_id] if node_id else ["--node-prefix", prefix, "--count",
                                                         str(count)]
        argv += tls_args(servers, node_id, prefix, count, extra)
        argv += list(extra)
        self.lines = []
        self.lock = threading.Lock()
        # dies with the test even if the test is SIGKILLed (PR_SET_PDEATHSIG)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=rpharness._child_setup)
        _subs.append(self)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"raw": raw.decode("utf-8", "replace").rstrip()}
            with self.lock:
                self.lines.append(obj)

    def snapshots(self, node=None):
        with self.lock:
            return [x for x in self.lines if "version" in x and (node is None or
                                                                  x["node"] == node)]

    def latest(self, node=None):
        s = self.snapshots(node)
        return s[-1] if s else None

    def wait_version(self, version, node=None, timeout=15.0):
        return wait_until(lambda: (self.latest(node) or {}).get("version", -1) >= version,
                          timeout, what="subscriber %s to reach version %d" % (node, version))

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode


def stop_all():
    for s in _subs:
        try:
            s.signal(signal.SIGCONT)
            s.stop()
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


def put(c, node, path, obj):
    r = c.request(node, "PUT", path, body=json.dumps(obj))
    check(r.status == 200, "PUT %s" % path, r)
    return r.json()["version"]


def cluster_obj(port):
    return {"endpoints": [{"address": "127.0.0.1", "port": port}]}


def listener_obj(port, nodes):
    return {"address": "127.0.0.1", "port": port, "nodes": nodes}


def route_obj(listener, cluster, prio=0, prefix="/"):
    return {"listener": listener, "priority": prio, "match": {"prefix": prefix},
            "cluster": cluster}


def sub_request(node_id, version=None, wait_ms=0, nack=None, cluster_id=None):
    """SubscribeRequest bytes, hand-encoded (fields per net/raftplane.proto)
    so tests can send anything: node_id and nack text may be bytes."""
    msg = pb_bytes(1, node_id)
    if version is not None:
        msg += pb_uint(2, version) + pb_uint(6, 1)
    if nack is not None:
        msg += pb_uint(3, nack[0]) + pb_bytes(4, nack[1]) + pb_uint(7, 1)
    if wait_ms:
        msg += pb_uint(5, wait_ms)
    if cluster_id:
        msg += pb_bytes(8, cluster_id)
    return msg


def check_monotonic(sub, node=None):
    versions = [s["version"] for s in sub.snapshots(node)]
    check(all(a < b for a, b in zip(versions, versions[1:])),
          "versions of %s must strictly increase: %s" % (node, versions))
    return versions


def _on_signal(signum, frame):
    stop_all()
    rpharness._on_signal(signum, frame)


import atexit  # noqa: E402

atexit.register(stop_all)
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
