"""Harness for raftplane-proxy integration tests (Python 3 standard library).

Builds on tests/integration/rpharness.py (imported read-only) for the 3-node
raftplane-server cluster, and adds real raftplane-proxy and
raftplane-demo-backend processes on 127.0.0.1 with kernel-chosen ports, all
killed by pid when the test ends (also on failure, SIGTERM or SIGINT), with
their logs scanned for sanitizer reports.

Environment (CTest sets the three binaries):
  RP_SERVER_BIN, RP_PROXY_BIN, RP_BACKEND_BIN
  RP_IT_KEEP=1 / failed   keep the temp dir with every log
  RP_IT_TLS=1             Env defaults to tls=True

TLS: Env(tls=True) starts the cluster with TLS (rpharness.Cluster(tls=...))
and gives each proxy a node certificate of the same CA (its own copies in
the env dir: Env.proxy_tls_files) with --tls-cert/--tls-key/--tls-ca,
unless its extra flags hold --tls-cert already. Admin ports stay plain.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import rpharness  # noqa: E402
from rpharness import (TestFailure, check, http_request, log, pick_ports,  # noqa: E402,F401
                       run, wait_until)

BUILD = os.path.normpath(os.path.join(HERE, "..", "..", "build"))
PROXY_BIN = os.environ.get("RP_PROXY_BIN") or os.path.join(BUILD, "proxy", "raftplane-proxy")
BACKEND_BIN = os.environ.get("RP_BACKEND_BIN") or os.path.join(
    BUILD, "proxy", "raftplane-demo-backend")
KEEP = os.environ.get("RP_IT_KEEP", "")
# ThreadSanitizer (-DRP_TSAN=ON builds): reports libh2o/libuv make that are
# not races of ours are suppressed, each with its reason, in this file
TSAN_SUPPRESSIONS = os.path.normpath(os.path.join(HERE, "..", "..", "proxy", "tsan.supp"))
# what a proxy or backend log line holds when a sanitizer found something
PATTERNS = tuple(rpharness.SANITIZER_PATTERNS) + ("WARNING: ThreadSanitizer",)

_envs = []


def _cleanup_all():
    for e in list(_envs):
        try:
            e.close(check_logs=False)
        except Exception:  # noqa: BLE001
            pass


atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    _cleanup_all()
    rpharness._cleanup_all()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


class Proc:
    """A child process with its log file; killed by pid."""

    def __init__(self, env, name, argv):
        self.env = env
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(env.dir, name + ".log")
        self.proc = None
        self.expect_exit = False

    def start(self):
        self.expect_exit = False
        with open(self.log_path, "ab") as lf:
            lf.write(("=== harness: starting %s\n" % " ".join(self.argv)).encode())
            lf.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=lf, preexec_fn=rpharness._child_setup,
                                         env=self.env.proc_env, close_fds=True)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.expect_exit = True
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status."""
        check(self.alive(), "%s is not running" % self.name)
        self.expect_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s did not stop within %ds of SIGTERM" % (self.name, timeout))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Backend(Proc):
    def __init__(self, env, name, port=None, extra=()):
        self.port = port or pick_ports(1)[0]
        self.bname = name
        super().__init__(env, "backend-" + name, [
            BACKEND_BIN, "--listen", "127.0.0.1:%d" % self.port, "--name", name] + list(extra))

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def endpoint(self, weight=1):
        return {"address": "127.0.0.1", "port": self.port, "weight": weight}

    def control(self, path):
        r = http_request(self.addr, "GET", "/_control/" + path, timeout=5)
        check(r.status == 200, "backend control %s: %s" % (path, r.status))
        return r.json()

    def wait_up(self):
        wait_until(lambda: http_request(self.addr, "GET", "/_control/count", timeout=1).status == 200,
                   10, what="backend %s up" % self.bname)
        return self


class Proxy(Proc):
    def __init__(self, env, node_id, workers=2, cache_dir=None, extra=()):
        self.node_id = node_id
        self.admin_port = pick_ports(1)[0]
        argv = [env.proxy_bin, "--node-id", node_id, "--servers", env.servers(),
                "--admin", "127.0.0.1:%d" % self.admin_port, "--workers", str(workers),
                "--wait-ms", "5000"]
        self.tls_files = None
        if env.tls and "--tls-cert" not in extra:
            self.tls_files = env.proxy_tls_files(node_id)
            argv += ["--tls-cert", self.tls_files[0], "--tls-key", self.tls_files[1],
                     "--tls-ca", self.tls_files[2]]
        if cache_dir:
            argv += ["--cache-dir", cache_dir]
        super().__init__(env, "proxy-" + node_id, argv + list(extra))

    @property
    def admin(self):
        return "127.0.0.1:%d" % self.admin_port

    def get(self, path):
        return http_request(self.admin, "GET", path, timeout=5)

    def config(self):
        r = self.get("/config_dump")
        check(r.status == 200, "config_dump: %s" % r.status, r.body)
        return r.json()

    def stats(self):
        return self.get("/stats").json()

    def version(self):
        try:
            return self.config().get("version")
        except (OSError, http.client.HTTPException, TestFailure):
            return None

    def wait_version(self, v, timeout=15):
        """Wait until the proxy serves version >= v."""
        return wait_until(lambda: (self.version() or 0) >= v and self.version(), timeout,
                          what="proxy %s to serve version %d" % (self.node_id, v))

    def wait_ready(self, timeout=15):
        wait_until(lambda: self.get("/ready").status == 200, timeout,
                   what="proxy %s ready" % self.node_id)
        return self


class Env:
    """A 3-node server cluster plus proxies and backends; close() kills all."""

    def __init__(self, servers=3, name="proxy-test", tls=None, server_args=()):
        self.dir = tempfile.mkdtemp(prefix="rp-px-", dir="/tmp")
        self.bin_dir = self.dir
        # start binaries through symlinks with their own names, so that a
        # broad pkill elsewhere on the machine cannot hit them
        self.proxy_bin = os.path.join(self.dir, "rp-px-proxy")
        os.symlink(os.path.realpath(PROXY_BIN), self.proxy_bin)
        penv = dict(os.environ)
        penv.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        penv.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        penv.setdefault("TSAN_OPTIONS", "suppressions=%s" % TSAN_SUPPRESSIONS)
        self.proc_env = penv
        self.procs = []
        self.closed = False
        self.failed = False
        _envs.append(self)
        self.cluster = (rpharness.Cluster(n=servers, name=name, tls=tls,
                                          extra_args=list(server_args))
                        if servers else None)
        # the CA (tlscerts.Pki) of the cluster when it runs TLS, else None
        self.tls = self.cluster.pki if self.cluster else None

    def proxy_tls_files(self, node_id, cert=None):
        """(cert, key, ca) for a proxy of @node_id: copies of @cert (a
        tlscerts.Cert; default: a node certificate for @node_id) in the env
        dir, which a test may overwrite to rotate them."""
        c = cert or self.tls.node(node_id)
        base = os.path.join(self.dir, "proxy-%s" % node_id)
        shutil.copyfile(c.cert, base + "-cert.pem")
        shutil.copyfile(c.key, base + "-key.pem")
        os.chmod(base + "-key.pem", 0o600)
        return base + "-cert.pem", base + "-key.pem", self.tls.ca

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.failed = True
        self.close(check_logs=et is None)
        return False

    def servers(self):
        return ",".join(n.http for n in self.cluster.nodes.values())

    # -- processes
    def backend(self, name, extra=()):
        for _ in range(5):
            b = Backend(self, name, extra=extra)
            b.start()
            try:
                b.wait_up()
                self.procs.append(b)
                return b
            except TestFailure:
                b.kill()
        raise TestFailure("backend %s did not start" % name)

    def proxy(self, node_id, workers=2, cache_dir=None, extra=(), ready=True):
        p = Proxy(self, node_id, workers, cache_dir, extra)
        self.procs.append(p)
        p.start()
        wait_until(lambda: p.get("/healthz").status == 200 or not p.alive(), 15,
                   what="proxy admin up")
        check(p.alive(), "proxy %s exited at start" % node_id, p.log_text()[-2000:])
        if ready:
            p.wait_ready()
        return p

    # -- the REST API
    def api(self, method, path, body=None, timeout=10):
        """A request to any running server, retrying on 503 and transport errors."""
        last = None
        for attempt in range(60):
            for node in list(self.cluster.running()):
                try:
                    r = self.cluster.request(node, method, path, body, timeout=timeout)
                except (OSError, http.client.HTTPException) as e:
                    last = e
                    continue
                if r.status == 503:
                    last = r
                    continue
                return r
            time.sleep(0.1)
        raise TestFailure("%s %s: no server answered (%r)" % (method, path, last))

    def put(self, kind, name, body):
        r = self.api("PUT", "/v1/%s/%s" % (kind, name), body)
        check(r.status == 200, "PUT %s/%s: %s" % (kind, name, r.status), r.body)
        return r.json()["version"]

    def delete(self, kind, name):
        r = self.api("DELETE", "/v1/%s/%s" % (kind, name))
        check(r.status == 200, "DELETE %s/%s: %s" % (kind, name, r.status), r.body)
        return r.json()["revision"]

    def listener(self, name, port, nodes=("*",)):
        return self.put("listeners", name, {"address": "127.0.0.1", "port": port,
                                            "nodes": list(nodes)})

    def cluster_of(self, name, backends, **kw):
        body = {"endpoints": [b.endpoint() if isinstance(b, Backend) else b for b in backends]}
        body.update(kw)
        return self.put("clusters", name, body)

    def route(self, name, listener, cluster=None, prefix="/", **kw):
        body = {"listener": listener, "match": {"prefix": prefix}}
        if cluster is not None:
            body["cluster"] = cluster
        body.update(kw)
        if "match" in kw:
            body["match"] = kw["match"]
        return self.put("routes", name, body)

    # -- checks and cleanup
    def sanitizer_findings(self):
        found = []
        for p in self.procs:
            for ln in p.log_text().splitlines():
                if any(s in ln for s in PATTERNS):
                    found.append("%s: %s" % (p.name, ln))
        return found

    def unexpected_exits(self):
        return [(p.name, p.proc.returncode) for p in self.procs
                if p.proc is not None and p.proc.poll() is not None and not p.expect_exit]

    def print_logs(self, lines=60):
        for p in self.procs:
            text = p.log_text().splitlines()
            print("----- tail of %s (%d lines) -----" % (p.log_path, len(text)))
            for ln in text[-lines:]:
                print("  " + ln)
        sys.stdout.flush()

    def close(self, check_logs=True):
        if self.closed:
            return
        self.closed = True
        died = self.unexpected_exits()
        for p in self.procs:
            try:
                p.kill()
            except Exception:  # noqa: BLE001
                pass
        findings = self.sanitizer_findings()
        if findings or died or self.failed:
            self.print_logs()
        if self.cluster:
            self.cluster.failed = self.cluster.failed or self.failed
            self.cluster.close(check_logs=check_logs)
        keep = KEEP == "1" or (KEEP == "failed" and (findings or died or self.failed))
        if keep:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in _envs:
            _envs.remove(self)
        if check_logs and findings:
            raise TestFailure("sanitizer reports:\n  " + "\n  ".join(findings[:40]))
        if check_logs and died:
            raise TestFailure("processes exited on their own: %s" % died)


# ---- traffic ----------------------------------------------------------------------

def get(addr, path="/", headers=None, timeout=10):
    return http_request(addr, "GET", path, headers=headers, timeout=timeout)


def body_of(addr, path="/", headers=None):
    r = get(addr, path, headers)
    return r.status, r.body.decode("utf-8", "replace").strip()


def count_backends(addr, n, path="/", headers=None):
    """Send n requests on one keep-alive connection; {backend_name: count}."""
    c = rpharness.KeepAliveClient(addr)
    counts = {}
    try:
        for _ in range(n):
            r = c.request("GET", path, headers=headers)
            key = r.body.decode().strip() if r.status == 200 else "HTTP %d" % r.status
            counts[key] = counts.get(key, 0) + 1
    finally:
        c.close()
    return counts


class Load:
    """Background keep-alive GET loops from @threads threads until stop().
    Records every outcome: results[(status or error)] = count, and the bodies
    of 200 answers."""

    def __init__(self, addr, path="/", threads=4, headers=None, pause=0.0):
        self.addr, self.path, self.headers, self.pause = addr, path, headers, pause
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.results = {}
        self.bodies = {}
        self.errors = []
        self.timeline = []  # (time, body) of 200 answers
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _record(self, key, body=None, err=None):
        with self.lock:
            self.results[key] = self.results.get(key, 0) + 1
            if body is not None:
                self.bodies[body] = self.bodies.get(body, 0) + 1
                self.timeline.append((time.monotonic(), body))
            if err is not None and len(self.errors) < 20:
                self.errors.append(err)

    def _run(self):
        c = rpharness.KeepAliveClient(self.addr, timeout=10)
        deadline = time.monotonic() + 120  # bounded even if never stopped
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                r = c.request("GET", self.path, headers=self.headers)
                b = r.body.decode("utf-8", "replace").strip()
                if r.status == 200:
                    self._record(200, b)
                else:
                    self._record(r.status, err="HTTP %d %s" % (r.status, b))
            except (OSError, http.client.HTTPException) as e:
                self._record("error", err=repr(e))
            if self.pause:
                time.sleep(self.pause)
        c.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=30)
        return self

    def total(self):
        with self.lock:
            return sum(self.results.values())

    def failures(self):
        with self.lock:
            return {k: v for k, v in self.results.items() if k != 200}


def wait_body(addr, want, path="/", headers=None, timeout=10):
    """Wait until a GET answers 200 with body @want."""
    return wait_until(lambda: body_of(addr, path, headers) == (200, want), timeout,
                      what="%s%s to answer %r" % (addr, path, want))


def json_dumps(x):
    return json.dumps(x, sort_keys=True)
