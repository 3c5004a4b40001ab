"""Harness for raftplane-server integration tests (Python 3 standard library only).

A Cluster starts N real raftplane-server processes on kernel-chosen ports, with
data dirs and per-node logs under a fresh /tmp/rp-it-XXXX directory, and always
cleans up: every process it started is killed by pid and the directory removed
(context manager, atexit, and SIGTERM/SIGINT handlers).

Environment:
  RP_SERVER_BIN   server binary (default: ../../build/server/raftplane-server)
  RP_IT_KEEP=1    keep the temp dir (data dirs and logs) after the test
  RP_IT_KEEP=failed  keep it only when the test failed
  RP_IT_VERBOSE=1 print every HTTP request the harness makes
  RP_IT_TLS=1     clusters default to tls=True (TLS on every API and raft port)

TLS: Cluster(tls=True) gives each node a server certificate of one test CA
shared by the process (tests/lib/tlscerts.py; tls=Pki(...) for another CA)
and the flags --tls-cert/--tls-key/--tls-client-ca (the raft port then
speaks mutual TLS too). Each node's address is registered, so
http_request(), raw_request(), open_socket() and KeepAliveClient speak TLS
to it by themselves (verifying the server against the CA, no client
certificate unless given: ssl_context=tls_client_context(ca, cert)).
A POST /v1/subscribe (http_request, raw_request, open_request_socket)
presents the node certificate of the node id its body names, like a real
proxy (node_client_context(); HARNESS_NODE's when the id is not a valid
one, so that the request is refused for what it is). node_cert_dir() makes
a --tls-cert-dir for raftplane-subscriber --node-prefix/--count. A server a
test starts by hand gets its flags from Cluster.tls_args(node_or_id,
http=) or server_tls_args(raft_id, dir, http=) ([] without TLS).
With RP_IT_TLS=1 (the <name>_tls CTest variants) every Cluster that does
not say tls=False is a TLS cluster; tls_on() tells a test.
"""

import atexit
import base64
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.normpath(os.path.join(HERE, "..", "..", "build", "server",
                                            "raftplane-server"))
SERVER_BIN = os.environ.get("RP_SERVER_BIN") or DEFAULT_BIN
VERBOSE = os.environ.get("RP_IT_VERBOSE") == "1"
KEEP = os.environ.get("RP_IT_KEEP", "")  # "1": always keep the temp dir, "failed": on failure

sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import tlscerts  # noqa: E402

TLS_DEFAULT = os.environ.get("RP_IT_TLS") == "1"

# Lines that mean a node hit a memory error, undefined behaviour or a failed
# assertion (raft's assert() prints "Assertion `...' failed").
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "runtime error:", "Assertion",
                      "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer")


class TestFailure(AssertionError):
    pass


def check(cond, msg, *details):
    """Assert with a message; details are appended (e.g. response bodies)."""
    if not cond:
        extra = "".join("\n    " + _short(d) for d in details)
        raise TestFailure(msg + extra)


def _short(x, limit=600):
    if isinstance(x, (bytes, bytearray)):
        x = x.decode("utf-8", "replace")
    s = str(x)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


def log(*args):
    print("[%s]" % time.strftime("%H:%M:%S"), *args, flush=True)


def wait_until(cond, timeout=10.0, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value; return it or raise."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except (OSError, http.client.HTTPException, ValueError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s%s" % (
                timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(interval)


# ---- processes: registry and emergency cleanup --------------------------------

_clusters = []
_registry_lock = threading.Lock()

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # pragma: no cover
    _prctl = None
PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)


def _child_setup():
    # Runs in the forked child: die with the test process even if it is
    # SIGKILLed and cannot clean up. Nothing here allocates or takes locks.
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)


def _cleanup_all(failed=False):
    with _registry_lock:
        cl = list(_clusters)
    for c in cl:
        if failed:
            c.failed = True
        try:
            c.close(check_logs=False)
        except Exception:  # noqa: BLE001 - best effort at exit
            traceback.print_exc()


def _on_signal(signum, frame):
    log("got signal %d: cleaning up" % signum)
    _cleanup_all()
    os._exit(128 + signum)


atexit.register(_cleanup_all)
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def pick_ports(n):
    """n distinct free TCP ports chosen by the kernel (bind to 0, then close).

    All sockets stay open until every port is chosen, so the n ports differ.
    Another process may still grab one before the server binds it: callers
    retry with new ports when a node fails with 'address already in use'."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _ports_free(*ports):
    """True when every port can be bound on 127.0.0.1 right now."""
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            return False
        finally:
            s.close()
    return True


# ---- TLS ------------------------------------------------------------------------

_addr_ssl = {}  # "127.0.0.1:port" -> ssl.SSLContext of a node serving TLS there
_addr_pki = {}  # "127.0.0.1:port" -> tlscerts.Pki of that node's CA
_shared_pki = None
_shared_pki_dir = None


def shared_pki():
    """The test CA of this process (made on first use, removed at exit)."""
    global _shared_pki, _shared_pki_dir
    if _shared_pki is None:
        _shared_pki_dir = tempfile.mkdtemp(prefix="rp-pki-", dir="/tmp")
        _shared_pki = tlscerts.Pki(_shared_pki_dir)
        atexit.register(shutil.rmtree, _shared_pki_dir, True)
    return _shared_pki


def server_tls_args(raft_id, directory, http=None, pki=None):
    """TLS flags for a raftplane-server started by hand outside a Cluster
    (its certificate names @raft_id; files copied into @directory), [] when
    TLS is off (RP_IT_TLS unset and no @pki). @http: its --http address,
    which the harness then speaks TLS to."""
    if pki is None:
        if not TLS_DEFAULT:
            return []
        pki = shared_pki()
    c = pki.server(raft_id)
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, "server%s-cert.pem" % raft_id)
    key = os.path.join(directory, "server%s-key.pem" % raft_id)
    shutil.copyfile(c.cert, cert)
    shutil.copyfile(c.key, key)
    os.chmod(key, 0o600)
    if http:
        register_tls(http, tls_client_context(pki.ca), pki)
    return ["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pki.ca]


def tls_client_context(ca, cert=None):
    """A client context verifying servers against @ca (no host name check:
    servers are named by their spiffe URI), presenting @cert (a
    tlscerts.Cert) when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
    if cert is not None:
        ctx.load_cert_chain(cert.cert, cert.key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def register_tls(addr, ctx, pki=None):
    """Requests of this harness to @addr use @ctx (None: plain again); @pki
    (a tlscerts.Pki, default the shared one) is the CA of the node
    certificates that subscribe requests to @addr present."""
    if ctx is None:
        _addr_ssl.pop(addr, None)
        _addr_pki.pop(addr, None)
    else:
        _addr_ssl[addr] = ctx
        _addr_pki[addr] = pki or shared_pki()


def ssl_for(addr):
    return _addr_ssl.get(addr)


def pki_for(addr):
    """The tlscerts.Pki of the TLS server at @addr, or None when it is plain."""
    return _addr_pki.get(addr) if addr in _addr_ssl else None


def tls_on():
    """True when clusters start with TLS by default (RP_IT_TLS=1)."""
    return TLS_DEFAULT


_node_certs = {}  # (pki dir, node id) -> tlscerts.Cert
_node_ctx = {}    # (pki dir, node id) -> ssl.SSLContext
_batch_dirs = {}  # pki dir -> directory of node_batch() certificates


def node_cert(node_id, pki=None):
    """A node certificate (spiffe://raftplane/node/@node_id) of @pki (default
    the shared CA), made once per process."""
    pki = pki or shared_pki()
    key = (pki.dir, node_id)
    if key not in _node_certs:
        _node_certs[key] = pki.node(node_id)
    return _node_certs[key]


def node_client_context(node_id, pki=None):
    """A client context presenting @node_id's node certificate: what a proxy
    of that node id uses to subscribe over TLS."""
    pki = pki or shared_pki()
    key = (pki.dir, node_id)
    if key not in _node_ctx:
        _node_ctx[key] = tls_client_context(pki.ca, node_cert(node_id, pki))
    return _node_ctx[key]


def node_cert_dir(node_ids, pki=None):
    """A directory holding ID.pem and ID.key for each of @node_ids (for
    raftplane-subscriber --tls-cert-dir), made once per CA and node id."""
    pki = pki or shared_pki()
    d = _batch_dirs.get(pki.dir)
    if d is None:
        d = _batch_dirs[pki.dir] = os.path.join(pki.dir, "batch-nodes")
    t0 = time.monotonic()
    pki.node_batch(list(node_ids), d)
    dt = time.monotonic() - t0
    if dt > 1:
        log("made %d node certificates in %.1fs" % (len(node_ids), dt))
    return d


# Certificate a subscribe request presents when its node id is not a valid
# one (no certificate can name it): the request is refused for what it is,
# not for the missing certificate.
HARNESS_NODE = "rp-harness"


def subscribe_node_id(body):
    """The node_id (field 1) of a SubscribeRequest body when it is a valid
    node id ([A-Za-z0-9._-]{1,128}), else None."""
    if not isinstance(body, (bytes, bytearray)):
        return None
    i, n = 0, len(body)
    while i < n:
        tag, i = _varint(body, i)
        if tag is None:
            return None
        wt, field = tag & 7, tag >> 3
        if wt == 0:
            _, i = _varint(body, i)
        elif wt == 2:
            ln, i = _varint(body, i)
            if ln is None or i + ln > n:
                return None
            if field == 1:
                v = bytes(body[i:i + ln])
                ok = 0 < len(v) <= 128 and all(
                    chr(b).isalnum() and b < 128 or b in b"._-" for b in v)
                return v.decode() if ok else None
            i += ln
        else:
            return None
        if i is None:
            return None
    return None


def _varint(b, i):
    v, shift = 0, 0
    while i < len(b) and shift < 64:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        if not x & 0x80:
            return v, i
        shift += 7
    return None, None


def subscribe_context(addr, body):
    """The context a subscribe request with @body to the TLS server @addr
    uses by default: the node certificate of the node id it names (a
    harness certificate when it names no valid one); None when @addr is
    plain."""
    pki = pki_for(addr)
    if pki is None:
        return None
    return node_client_context(subscribe_node_id(body) or HARNESS_NODE, pki)


def _connection(addr, timeout, ssl_context=None):
    host, port = addr.rsplit(":", 1)
    ctx = ssl_context or _addr_ssl.get(addr)
    if ctx is not None:
        return http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ctx)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def open_socket(addr, timeout=10.0, ssl_context=None):
    """A connected socket to @addr: TLS when @addr serves TLS (or @ssl_context)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    ctx = ssl_context or _addr_ssl.get(addr)
    if ctx is not None:
        try:
            s = ctx.wrap_socket(s)
        except BaseException:
            s.close()
            raise
    return s


def open_request_socket(addr, request, timeout=10.0):
    """open_socket() for the raw HTTP bytes @request: a subscribe request
    (POST /v1/subscribe) to a TLS server presents the node certificate of
    the node id its body names (subscribe_context())."""
    ctx = None
    head, _, body = bytes(request).partition(b"\r\n\r\n")
    if head.startswith(b"POST /v1/subscribe"):
        ctx = subscribe_context(addr, body)
    return open_socket(addr, timeout=timeout, ssl_context=ctx)


# ---- HTTP -----------------------------------------------------------------------

class Response:
    """status, headers (lower-case keys), body (bytes); .json() parses it."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __iter__(self):  # allows: status, headers, body = request(...)
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<%s %s>" % (self.status, _short(self.body, 300))


def http_request(addr, method, path, body=None, headers=None, timeout=10.0, ssl_context=None):
    """One HTTP/1.1 request on a fresh connection (TLS to a registered TLS
    address, or with @ssl_context). Raises OSError (ssl.SSLError included) or
    http.client.HTTPException on transport failures."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    hdrs = dict(headers or {})
    if body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    if ssl_context is None and method == "POST" and path.startswith("/v1/subscribe"):
        ssl_context = subscribe_context(addr, body)  # a proxy's node certificate
    conn = _connection(addr, timeout, ssl_context)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        res = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()
    if VERBOSE:
        log("%s %s %s -> %s %s" % (addr, method, path, res.status, _short(data, 200)))
    return res


def raw_request(addr, method, path, body=b"", headers=None, timeout=10.0, ssl_context=None):
    """Send a request over a socket of its own (TLS to a registered TLS
    address), ignoring errors while sending (a server may answer and close
    before reading a huge body), then parse the answer. Returns a Response,
    or None when nothing came back."""
    hdrs = {"Host": addr, "Content-Length": str(len(body)), "Connection": "close"}
    hdrs.update(headers or {})
    if ssl_context is None and method == "POST" and path.startswith("/v1/subscribe"):
        ssl_context = subscribe_context(addr, body)
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join(
        "%s: %s\r\n" % kv for kv in hdrs.items()))
    s = open_socket(addr, timeout, ssl_context)
    data = b""
    try:
        try:
            s.sendall(head.encode() + body)
        except OSError:
            pass
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except OSError:
            pass
    finally:
        s.close()
    r = parse_response(data, partial=True)
    return Response(*r) if r else None


def parse_response(data, head_only=False, partial=False):
    """(status, headers, body) of the HTTP/1.1 answer at the start of data,
    or None while its head (or, unless partial, its Content-Length body) is
    incomplete. Header names are lowercased; the first of repeated headers
    wins. head_only: the body is everything after the head (for answers read
    until the peer closed)."""
    if b"\r\n\r\n" not in data:
        return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    h = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        h.setdefault(k.strip().lower(), v.strip())
    if head_only:
        return status, h, rest
    n = int(h.get("content-length", len(rest)))
    if len(rest) < n and not partial:
        return None
    return status, h, rest[:n]


class KeepAliveClient:
    """One persistent HTTP/1.1 connection to one address (not thread-safe:
    use one per thread). Reconnects after errors."""

    def __init__(self, addr, timeout=10.0, ssl_context=None):
        self.addr = addr
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        if self.conn is None:
            self.conn = _connection(self.addr, self.timeout, self.ssl_context)
        try:
            self.conn.request(method, path, body=body, headers=dict(headers or {}))
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if r.will_close:
            self.close()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def error_code(res):
    """The error code of a JSON error body, or None."""
    try:
        return res.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def check_error(res, status, code, what=""):
    """Check status and the {"error":{"code","message"}} shape."""
    check(res.status == status, "%s: expected HTTP %d, got %s" % (what, status, res.status),
          res.body)
    try:
        j = res.json()
    except ValueError:
        raise TestFailure("%s: error body is not JSON: %r" % (what, res.body[:300]))
    check(isinstance(j, dict) and isinstance(j.get("error"), dict),
          "%s: error body lacks an 'error' object" % what, j)
    e = j["error"]
    check(e.get("code") == code, "%s: expected code %s, got %s" % (what, code, e.get("code")), j)
    check(isinstance(e.get("message"), str) and e["message"],
          "%s: error lacks a message" % what, j)
    check(res.headers.get("content-type", "").startswith("application/json"),
          "%s: error content-type is %r" % (what, res.headers.get("content-type")))
    return j


def make_token():
    """A fresh API token string: rpt_ + base64url (no padding) of 32 random bytes."""
    return "rpt_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def bearer(token):
    """The Authorization header of @token (a dict for headers=)."""
    return {"Authorization": "Bearer " + token}


# ---- nodes and clusters -----------------------------------------------------------

class Node:
    def __init__(self, cluster, node_id, raft_port, http_port):
        self.cluster = cluster
        self.id = node_id
        self.raft_port = raft_port
        self.http_port = http_port
        self.data_dir = os.path.join(cluster.dir, "node%d" % node_id)
        self.log_path = os.path.join(cluster.dir, "node%d.log" % node_id)
        self.proc = None
        self.argv = None
        self.paused = False
        self.removed = False  # left the cluster (DELETE /v1/members)
        self.expect_exit = False  # the harness killed or stopped it

    @property
    def raft(self):
        return "127.0.0.1:%d" % self.raft_port

    @property
    def http(self):
        return "127.0.0.1:%d" % self.http_port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, extra_env=None):
        self.expect_exit = False
        env = dict(self.cluster.env)
        env.update(extra_env or {})
        with open(self.log_path, "ab") as lf:
            lf.write(("=== harness: starting %s\n" % " ".join(self.argv)).encode())
            lf.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=lf, preexec_fn=_child_setup,
                                         env=env, close_fds=True)
        self.paused = False

    def wait_exit(self, timeout):
        """The exit status once the process exited within @timeout, else None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def current_log(self):
        """The log of the current incarnation (since the last start)."""
        t = self.log_text()
        i = t.rfind("=== harness: starting")
        return t[i:] if i >= 0 else t

    def __repr__(self):
        return "node%d(%s)" % (self.id, self.http)


class Cluster:
    """N raftplane-server processes. Nodes are indexed by id (1-based)."""

    def __init__(self, n=3, extra_args=(), election_timeout_ms=None, heartbeat_ms=None,
                 name="cluster", start=True, ready_timeout=30.0, wait_ready=True,
                 bootstrap_token=None, tls=None):
        self.n = n
        # tls: True (the shared test CA), a tlscerts.Pki (that CA), False/None:
        # plain (None: RP_IT_TLS decides)
        if tls is None:
            tls = TLS_DEFAULT
        self.pki = (shared_pki() if tls is True else tls) or None
        self.client_ssl = tls_client_context(self.pki.ca) if self.pki else None
        self.name = name
        self.extra_args = list(extra_args)
        # bootstrap_token: start every node with --bootstrap-token-file holding
        # it (mode 0600), and send it on the harness's own requests
        self.token = bootstrap_token
        if election_timeout_ms:
            self.extra_args += ["--election-timeout-ms", str(election_timeout_ms)]
        if heartbeat_ms:
            self.extra_args += ["--heartbeat-ms", str(heartbeat_ms)]
        self.dir = tempfile.mkdtemp(prefix="rp-it-", dir="/tmp")
        # Start nodes through a symlink with another name: a broad
        # `pkill raftplane-server` / `killall raftplane-server` run by someone
        # else on this machine then cannot hit the processes of this test.
        self.bin = os.path.join(self.dir, "rp-it-node")
        os.symlink(os.path.realpath(SERVER_BIN), self.bin)
        if bootstrap_token:
            self.token_file = os.path.join(self.dir, "bootstrap.token")
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (bootstrap_token + "\n").encode())
            os.close(fd)
            self.extra_args += ["--bootstrap-token-file", self.token_file]
        self.nodes = {}
        self.closed = False
        self.failed = False
        self.cleanups = []  # add_cleanup(): run after the nodes are killed
        env = dict(os.environ)
        # sanitizer reports go to stderr (the node log); keep running to log all
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.env = env
        with _registry_lock:
            _clusters.append(self)
        check(os.access(SERVER_BIN, os.X_OK), "server binary %s is not executable" % SERVER_BIN)
        if start:
            try:
                self.start(ready_timeout=ready_timeout, wait_ready=wait_ready)
            except BaseException:
                self.failed = True
                self.close(check_logs=False)
                raise

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            self.failed = True
        self.close(check_logs=et is None)
        return False

    # -- starting
    def bootstrap_arg(self):
        return ",".join("%d=%s@%s" % (n.id, n.raft, n.http)
                        for n in sorted(self._bootstrap_nodes, key=lambda x: x.id))

    def tls_files(self, node):
        """(cert, key, ca) of @node: its own copies in the cluster dir (a test
        may rotate them), made once per node id."""
        cert = os.path.join(self.dir, "node%d-cert.pem" % node.id)
        key = os.path.join(self.dir, "node%d-key.pem" % node.id)
        if not os.path.exists(cert):
            c = self.pki.server(node.id)
            shutil.copyfile(c.cert, cert)
            shutil.copyfile(c.key, key)
            os.chmod(key, 0o600)
        return cert, key, self.pki.ca

    def _register(self, node):
        if self.pki:
            register_tls(node.http, self.client_ssl, self.pki)

    def tls_args(self, node, http=None):
        """The TLS flags of @node (a Node, or a raft id for a server started
        by hand: its certificate names that id) for a command line of
        its own, [] without TLS. @http: that process's --http address, which
        the harness then speaks TLS to."""
        if not self.pki:
            return []
        if not isinstance(node, Node):
            node = Node(self, node, 0, 0)
        cert, key, ca = self.tls_files(node)
        if http:
            register_tls(http, self.client_ssl, self.pki)
        return ["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca]

    def _argv(self, node, mode):
        argv = [self.bin, "--id", str(node.id), "--data-dir", node.data_dir,
                "--raft", node.raft, "--http", node.http]
        if self.pki:
            argv += self.tls_args(node)
            self._register(node)
        if mode[0] == "bootstrap":
            argv += ["--bootstrap", self.bootstrap_arg()]
        else:
            argv += ["--join", mode[1]]
        return argv + self.extra_args

    def start(self, ready_timeout=30.0, wait_ready=True):
        """Bootstrap the cluster; retry on port clashes with fresh ports.
        With wait_ready=False, return as soon as every node serves HTTP."""
        for attempt in range(5):
            ports = pick_ports(2 * self.n)
            self.nodes = {}
            for i in range(1, self.n + 1):
                self.nodes[i] = Node(self, i, ports[2 * i - 2], ports[2 * i - 1])
            self._bootstrap_nodes = list(self.nodes.values())
            for node in self.nodes.values():
                node.argv = self._argv(node, ("bootstrap",))
                node.spawn()
            if self._startup_ok(self.nodes.values()):
                break
            log("port clash on start (attempt %d): retrying with new ports" % (attempt + 1))
            for node in self.nodes.values():
                self._hard_kill(node)
            for node in self.nodes.values():
                shutil.rmtree(node.data_dir, ignore_errors=True)
                os.rename(node.log_path, node.log_path + ".clash%d" % attempt)
        else:
            raise TestFailure("could not start the cluster (ports kept clashing)")
        if not wait_ready:
            log("%s: %d nodes serving HTTP (dir %s)" % (self.name, self.n, self.dir))
            return
        t0 = time.monotonic()
        self.wait_ready(timeout=ready_timeout)
        log("%s: %d nodes up, leader node%d after %.2fs (dir %s)" % (
            self.name, self.n, self.leader().id, time.monotonic() - t0, self.dir))

    def _startup_ok(self, nodes):
        """True unless a node exited at start because its port was taken (or
        another server answers on it). Waits until each node answers
        /v1/status with its own id (or exits)."""
        deadline = time.monotonic() + 15
        pending = list(nodes)
        while pending and time.monotonic() < deadline:
            for node in list(pending):
                if node.proc.poll() is not None:
                    text = node.current_log()
                    if "address already in use" in text.lower() or not _ports_free(
                            node.raft_port, node.http_port):
                        log("%r: exited at start, port taken: %s" % (
                            node, text.strip().splitlines()[-1:]))
                        return False
                    raise TestFailure("%r exited at start with %s:\n%s" % (
                        node, node.proc.returncode, text[-2000:]))
                try:
                    r = http_request(node.http, "GET", "/v1/status", timeout=1,
                                     headers=self._auth())
                    if r.status == 200 and r.json().get("id") != node.id:
                        log("%r: another server answers on port %d" % (node, node.http_port))
                        return False
                    if r.status == 200:
                        pending.remove(node)
                except (OSError, http.client.HTTPException, ValueError, AttributeError):
                    pass
            time.sleep(0.05)
        check(not pending, "nodes %r never served /v1/status" % pending)
        return True

    def add_node_by_join(self, via=None, role=None, wait=True, timeout=30.0):
        """Start a new node with --join (via: a node, default the leader).
        Returns the Node once it is in the raft configuration of the leader."""
        via = via or self.leader()
        new_id = max(self.nodes) + 1
        for attempt in range(5):
            rp, hp = pick_ports(2)
            node = Node(self, new_id, rp, hp)
            node.argv = self._argv(node, ("join", via.http))
            if role:
                node.argv += ["--join-role", role]
            self.nodes[new_id] = node
            node.spawn()
            if self._startup_ok([node]):
                break
            self._hard_kill(node)
            shutil.rmtree(node.data_dir, ignore_errors=True)
            os.rename(node.log_path, node.log_path + ".clash%d" % attempt)
        else:
            raise TestFailure("could not start the joining node")
        if wait:
            def joined():
                r = self.request(self.leader(), "GET", "/v1/members")
                return r.status == 200 and any(m["id"] == new_id for m in r.json()["members"])
            wait_until(joined, timeout, what="node%d to join" % new_id)
        return node

    # -- process control
    def node(self, i):
        return i if isinstance(i, Node) else self.nodes[i]

    def _hard_kill(self, node):
        if node.proc is None or node.proc.poll() is not None:
            return
        node.expect_exit = True
        try:
            if node.paused:
                os.kill(node.proc.pid, signal.SIGCONT)
            os.kill(node.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def kill(self, i):
        """SIGKILL the node by pid."""
        node = self.node(i)
        check(node.alive(), "kill: %r is not running" % node)
        self._hard_kill(node)
        return node

    def stop(self, i, timeout=15.0):
        """SIGTERM and wait; fails if the node does not exit cleanly in time."""
        node = self.node(i)
        check(node.alive(), "stop: %r is not running" % node)
        if node.paused:
            self.resume(node)
        node.expect_exit = True
        node.proc.send_signal(signal.SIGTERM)
        try:
            rc = node.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._hard_kill(node)
            raise TestFailure("%r did not stop within %.0fs of SIGTERM" % (node, timeout))
        check(rc == 0, "%r exited with %s after SIGTERM" % (node, rc), node.current_log()[-1500:])
        return rc

    def restart(self, i, wait_http=True, extra_env=None):
        """Start the node again with exactly the same command line (extra_env:
        more environment, e.g. {"LIBRAFT_TRACE": "1"})."""
        node = self.node(i)
        check(not node.alive(), "restart: %r is still running" % node)
        for attempt in range(20):
            node.spawn(extra_env)
            if not wait_http:
                return node
            if self._startup_ok([node]):
                return node
            # our fixed port is briefly held by someone else: try again soon
            log("%r: port busy on restart, retrying" % node)
            self._hard_kill(node)
            time.sleep(0.5)
        raise TestFailure("%r could not restart: port stays busy" % node)

    def restart_outcome(self, i, timeout=20.0, extra_env=None):
        """Restart node i with the same command line and wait until it either
        exits (returns ("exited", status)) or answers /v1/status with its id
        (returns ("serving", None)). An exit is expected here: it does not
        fail the cluster's close()."""
        node = self.node(i)
        check(not node.alive(), "restart_outcome: %r is still running" % node)
        deadline = time.monotonic() + timeout
        for _ in range(20):
            node.spawn(extra_env)
            while time.monotonic() < deadline:
                rc = node.proc.poll()
                if rc is not None:
                    node.expect_exit = True
                    text = node.current_log()
                    if "address already in use" in text.lower():
                        break  # our fixed port is briefly taken: try again
                    return "exited", rc
                try:
                    r = http_request(node.http, "GET", "/v1/status", timeout=1)
                    if r.status == 200 and r.json().get("id") == node.id:
                        return "serving", None
                except (OSError, http.client.HTTPException, ValueError):
                    pass
                time.sleep(0.05)
            else:
                raise TestFailure("%r neither exited nor served within %.0fs" % (node, timeout))
            time.sleep(0.5)
        raise TestFailure("%r could not restart: port stays busy" % node)

    def rejoin(self, i, via=None, wait=True, timeout=30.0):
        """Start node i (stopped, data dir wiped or not) with --join via a
        running member (default the leader) instead of its old mode, on the
        same addresses and id. Returns the node once the leader lists it."""
        node = self.node(i)
        check(not node.alive(), "rejoin: %r is still running" % node)
        via = via or self.leader()
        node.argv = self._argv(node, ("join", via.http))
        node.removed = False
        node.spawn()
        check(self._startup_ok([node]), "%r did not start for the re-join" % node)
        if wait:
            def joined():
                r = self.request(self.leader(), "GET", "/v1/members")
                return r.status == 200 and any(m["id"] == node.id for m in r.json()["members"])
            wait_until(joined, timeout, what="%r to re-join" % node)
        return node

    def add_cleanup(self, fn):
        """Run fn() when the cluster closes (also on failure), after every
        node was killed and before the temp dir is removed; last added runs
        first."""
        self.cleanups.append(fn)

    def pause(self, i):
        node = self.node(i)
        os.kill(node.proc.pid, signal.SIGSTOP)
        node.paused = True

    def resume(self, i):
        node = self.node(i)
        os.kill(node.proc.pid, signal.SIGCONT)
        node.paused = False

    def running(self):
        return [n for n in self.nodes.values() if n.alive() and not n.paused and not n.removed]

    # -- HTTP
    def _auth(self, headers=None):
        """@headers plus the bootstrap token's Authorization (unless they have
        one; an Authorization of None sends none)."""
        h = dict(headers or {})
        if self.token and not any(k.lower() == "authorization" for k in h):
            h.update(bearer(self.token))
        return {k: v for k, v in h.items() if v is not None}

    def request(self, node, method, path, body=None, headers=None, timeout=10.0):
        """HTTP request to a node (id or Node). Returns a Response, which also
        unpacks as (status, headers, body). With a bootstrap token, it is sent
        unless @headers has an Authorization (None: send none)."""
        return http_request(self.node(node).http, method, path, body, self._auth(headers),
                            timeout)

    def try_request(self, node, method, path, body=None, headers=None, timeout=10.0):
        """Like request() but returns None on transport errors."""
        try:
            return self.request(node, method, path, body, headers, timeout)
        except (OSError, http.client.HTTPException):
            return None

    def status(self, node, timeout=2.0):
        r = self.request(node, "GET", "/v1/status", timeout=timeout)
        check(r.status == 200, "status of %r: %s" % (self.node(node), r.status), r.body)
        return r.json()

    def leader(self, timeout=10.0):
        """The running node that is the ready leader (waits for one)."""
        def find():
            for n in self.running():
                try:
                    s = self.status(n, timeout=1.0)
                except (OSError, http.client.HTTPException):
                    continue
                if s.get("leader_ready"):
                    return n
            return None
        return wait_until(find, timeout, what="a ready leader")

    def followers(self):
        lead = self.leader()
        return [n for n in self.running() if n is not lead]

    def wait_ready(self, timeout=30.0, nodes=None):
        """Wait for a ready leader that every running node (or @nodes) knows,
        and for /readyz 200 on each of them."""
        nodes = nodes or self.running()

        def ready():
            lead = None
            for n in self.running():
                s = self.status(n, timeout=1.0)
                if s.get("leader_ready"):
                    lead = s["id"]
            if lead is None:
                return False
            for n in nodes:
                s = self.status(n, timeout=1.0)
                if not s.get("leader") or s["leader"]["id"] != lead:
                    return False
                if self.request(n, "GET", "/readyz", timeout=1.0).status != 200:
                    return False
            return True
        wait_until(ready, timeout, what="a ready leader known to %r" % nodes)

    def wait_applied(self, node, revision, timeout=20.0):
        """Wait until node's local revision reaches @revision."""
        return wait_until(lambda: self.status(node)["revision"] >= revision, timeout,
                          what="%r to reach revision %d" % (self.node(node), revision))

    # -- logs and cleanup
    def sanitizer_findings(self):
        found = []
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if ".log" not in name:
                continue
            with open(os.path.join(self.dir, name), "rb") as f:
                for ln in f.read().decode("utf-8", "replace").splitlines():
                    if any(p in ln for p in SANITIZER_PATTERNS):
                        found.append("%s: %s" % (name, ln))
        return found

    def print_log_tails(self, lines=40):
        for node in sorted(self.nodes.values(), key=lambda n: n.id):
            text = node.log_text().splitlines()
            print("----- tail of %s (%d lines) -----" % (node.log_path, len(text)))
            for ln in text[-lines:]:
                print("  " + ln)
        sys.stdout.flush()

    def unexpected_exits(self):
        """Nodes that exited although the harness did not stop or kill them."""
        return [(n, n.proc.returncode) for n in self.nodes.values()
                if n.proc is not None and n.proc.poll() is not None and not n.expect_exit]

    def close(self, check_logs=True):
        """Kill every process by pid, check logs for sanitizer reports, remove
        the temp dir. Raises TestFailure when a sanitizer report was found or
        a node died on its own."""
        if self.closed:
            return
        self.closed = True
        for node in self.nodes.values():
            if self.pki:
                register_tls(node.http, None)
        died = self.unexpected_exits()
        for n, rc in died:
            print("!!! %r exited on its own with status %s%s" % (
                n, rc, " (killed by signal %d from outside the harness)" % -rc if rc < 0 else ""),
                flush=True)
        if died:
            self.failed = True
        for node in self.nodes.values():
            self._hard_kill(node)
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 - every cleanup runs
                traceback.print_exc()
        findings = self.sanitizer_findings()
        if findings or self.failed:
            self.print_log_tails(lines=80 if findings else 40)
        keep = KEEP == "1" or (KEEP == "failed" and (findings or died or self.failed))
        if keep:
            log("%s: kept %s" % (self.name, self.dir))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        with _registry_lock:
            if self in _clusters:
                _clusters.remove(self)
        if check_logs and findings:
            raise TestFailure("sanitizer/assertion reports in node logs:\n  " +
                              "\n  ".join(findings[:40]))
        if check_logs and died:
            raise TestFailure("nodes exited on their own: %s" % died)


# ---- tmpfs mounts (disk-full tests; need root) ---------------------------------------

def mount_tmpfs(path, size_mb):
    """Mount a tmpfs of size_mb MiB on path (created if missing). Returns
    None, or the reason it could not be mounted."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size_mb, "tmpfs",
                        path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        return (r.stdout.decode(errors="replace").strip() or "mount exited with %d"
                % r.returncode)
    return None


def umount(path):
    """Unmount path (lazily if busy); quiet when nothing is mounted there."""
    if not os.path.ismount(path):
        return
    r = subprocess.run(["umount", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", path], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def disk_free(path):
    """Bytes free on the file system holding path."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# ---- test runner --------------------------------------------------------------------

def run(tests, title=None):
    """Run test functions in order; each gets no argument. Prints PASS/FAIL and
    timings, exits 0 only when all passed."""
    title = title or os.path.basename(sys.argv[0])
    only = sys.argv[1:]
    results = []
    t_all = time.monotonic()
    log("%s: server binary %s" % (title, SERVER_BIN))
    for fn in tests:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        log("=== RUN  %s" % fn.__name__)
        try:
            fn()
            ok = True
        except Exception:  # noqa: BLE001 - report any failure
            ok = False
            traceback.print_exc()
            sys.stdout.flush()
            _cleanup_all(failed=True)  # prints the log tails of clusters still open
        dt = time.monotonic() - t0
        results.append((fn.__name__, ok, dt))
        log("=== %s %s (%.1fs)" % ("PASS" if ok else "FAIL", fn.__name__, dt))
    total = time.monotonic() - t_all
    print("\nsummary for %s:" % title)
    for name, ok, dt in results:
        print("  %-40s %s %6.1fs" % (name, "PASS" if ok else "FAIL", dt))
    print("  total %.1fs" % total)
    failed = [r for r in results if not r[1]]
    sys.stdout.flush()
    sys.exit(1 if failed or not results else 0)


def median(xs):
    return statistics.median(xs)
