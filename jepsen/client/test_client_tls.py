#!/usr/bin/env python3
"""rp-jepsen-client over HTTPS with tokens, against real servers on loopback
(no root needed): what jepsen/run --tls --tokens relies on.

    test_client_tls.py CLIENT_BIN SERVER_BIN

- the run's CA and token: 200; the tools (leader, wait-ready) work
- a server of another CA: refused in the handshake, "not sent" (exit 3)
- a certificate that does not name the address connected to: refused (exit 3)
- a listener that never answers the handshake: "tls handshake: timeout"
  after --timeout-ms, not later (the non-blocking handshake keeps the deadline)
- plain HTTP to a TLS port: never a 2xx
- no token: 401; a token file that is not a token: exit 2 with a message
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "lib"))
import tlscerts  # noqa: E402

CLIENT, SERVER = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what, *info):
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else ": %r" % (info,)))
    if not cond:
        failures.append(what)


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def client(*args, timeout=30):
    t0 = time.monotonic()
    r = subprocess.run([CLIENT] + list(args), capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def token():
    import base64
    return "rpt_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def main():
    d = tempfile.mkdtemp(prefix="rpj-client-tls-")
    procs = []
    try:
        pki = tlscerts.Pki(os.path.join(d, "pki"))
        rogue = tlscerts.Pki(os.path.join(d, "rogue"))
        tok = token()
        tokf = os.path.join(d, "admin.token")
        fd = os.open(tokf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (tok + "\n").encode())
        os.close(fd)

        def start(i, cert, host="127.0.0.1"):
            raft, http = "%s:%d" % (host, free_port(host)), "%s:%d" % (host, free_port(host))
            log = open(os.path.join(d, "n%d.log" % i), "w")
            p = subprocess.Popen([SERVER, "--id", str(i), "--data-dir", os.path.join(d, "n%d" % i),
                                  "--raft", raft, "--http", http,
                                  "--bootstrap", "%d=%s@%s" % (i, raft, http),
                                  "--election-timeout-ms", "300", "--heartbeat-ms", "50",
                                  "--tls-cert", cert.cert, "--tls-key", cert.key,
                                  "--tls-client-ca", cert.ca, "--bootstrap-token-file", tokf],
                                 stdout=log, stderr=subprocess.STDOUT)
            procs.append(p)
            return http

        good = start(1, pki.server(1))
        # names 10.77.0.12, served on 127.0.0.1
        wrong_ip = start(2, pki.server(2, ips=["10.77.0.12"]))
        other_ca = start(3, rogue.server(3))
        auth = ["--ca", pki.ca, "--token-file", tokf]

        rc, out, err, _ = client(*auth, "wait-ready", good, "20")
        check(rc == 0 and out.strip() == "1", "wait-ready over HTTPS with the admin token",
              rc, out, err)
        rc, out, err, _ = client(*auth, "http", "GET", good, "/v1/status")
        check(rc == 0 and out.startswith("200\n"), "GET /v1/status: 200", rc, out, err)
        rc, out, err, _ = client(*auth, "leader", good)
        check(rc == 0 and out.split()[:2] == ["1", good], "leader", rc, out, err)
        rc, out, err, _ = client(*auth, "http", "PUT", good, "/v1/kv/x", "7")
        check(rc == 0 and out.startswith("200\n"), "PUT over HTTPS", rc, out, err)

        rc, out, err, _ = client("--ca", pki.ca, "http", "GET", good, "/v1/status")
        check(rc == 0 and out.startswith("401\n"), "no token: 401", rc, out, err)

        rc, out, err, _ = client(*auth, "http", "GET", other_ca, "/readyz")
        check(rc == 3 and "tls handshake: certificate" in out, "another CA: refused, not sent",
              rc, out, err)
        rc, out, err, _ = client(*auth, "http", "GET", wrong_ip, "/readyz")
        check(rc == 3 and "IP address mismatch" in out,
              "a certificate that does not name the address: refused", rc, out, err)

        rc, out, err, _ = client("--token-file", tokf, "http", "GET", good, "/readyz")
        check(rc != 0 or not out.startswith("2"), "plain HTTP to the TLS port: no answer",
              rc, out, err)

        # a listener that accepts TCP (the kernel does) and never speaks TLS
        mute = socket.socket()
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        addr = "127.0.0.1:%d" % mute.getsockname()[1]
        rc, out, err, dt = client(*auth, "http", "GET", addr, "/readyz", "--timeout-ms", "700")
        check(rc == 3 and "tls handshake: timeout" in out and 0.6 <= dt < 2.5,
              "a mute listener: handshake timeout at the deadline (%.2fs)" % dt, rc, out, err)
        mute.close()

        bad = os.path.join(d, "bad.token")
        with open(bad, "w") as f:
            f.write("rpt_short\n")
        rc, out, err, _ = client("--ca", pki.ca, "--token-file", bad, "http", "GET", good, "/readyz")
        check(rc == 2 and "not one token string" in err, "a bad token file: exit 2", rc, out, err)
        rc, out, err, _ = client("--ca", os.path.join(d, "nosuch.pem"), "http", "GET", good, "/readyz")
        check(rc == 2 and "CA file" in err, "a missing CA file: exit 2", rc, out, err)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if failures:
            for f in sorted(os.listdir(d)):
                if f.endswith(".log"):
                    print("--- %s:\n%s" % (f, open(os.path.join(d, f)).read()[-2000:]))
        shutil.rmtree(d, ignore_errors=True)
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
