"""Test certificates made with the `openssl` command (OpenSSL 3.0).

    pki = Pki("/tmp/x")                        # a new CA in /tmp/x
    srv = pki.server(1)                        # spiffe://raftplane/server/1 + IP 127.0.0.1
    srv = pki.server(2, ips=["10.77.0.12"])    # ... + IP 10.77.0.12 instead
    prx = pki.node("edge-1")                   # spiffe://raftplane/node/edge-1
    old = pki.node("edge-1", expired=True)     # valid 2001-2002
    cn  = pki.leaf("cn-only", cn="edge-2")     # no URI SAN: the CN names the node
    rogue = Pki("/tmp/y").server(1)            # same names, another CA

Each leaf is a Cert with .cert, .key (PEM paths) and .ca (its CA's PEM).
Keys are EC P-256 (fast to make: a whole cluster's set takes ~0.2 s).
Expired and not-yet-valid certificates are signed with `openssl ca`, which
takes explicit start and end dates. Usable from the command line too:
    python3 tests/lib/tlscerts.py DIR server 1 node edge-1 ...
    python3 tests/lib/tlscerts.py DIR server 1 --ip 10.77.0.11 server 2 --ip 10.77.0.12
(--ip after a server: its IP SANs instead of 127.0.0.1, repeatable). Each
certificate is printed as one line "CERT KEY CA".
"""
import os
import subprocess
import sys


class Cert:
    def __init__(self, cert, key, ca, name):
        self.cert, self.key, self.ca, self.name = cert, key, ca, name

    def __repr__(self):
        return "Cert(%s)" % self.name


def _run(args, cwd=None):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr.strip()))


class Pki:
    def __init__(self, directory, trust_domain="raftplane", name="raftplane test CA"):
        self.dir = directory
        self.td = trust_domain
        os.makedirs(directory, exist_ok=True)
        self.ca = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        self._serial = 1
        if not os.path.exists(self.ca):
            _run(["req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-keyout", self.ca_key, "-out", self.ca,
                  "-days", "3650", "-subj", "/CN=" + name,
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        os.chmod(self.ca_key, 0o600)

    def server(self, raft_id, ips=("127.0.0.1",), **kw):
        """A server's certificate: server and client use, its URI and @ips
        (default 127.0.0.1) as IP SANs."""
        return self.leaf("server-%s" % raft_id, cn="server-%s" % raft_id,
                         uris=["spiffe://%s/server/%s" % (self.td, raft_id)],
                         ips=list(ips), dns=["localhost"], **kw)

    def node(self, node_id, **kw):
        """A proxy's client certificate for node id @node_id."""
        return self.leaf("node-%s" % node_id, cn=node_id,
                         uris=["spiffe://%s/node/%s" % (self.td, node_id)], **kw)

    def node_batch(self, node_ids, directory, jobs=4):
        """Node certificates for many node ids at once, for a subscriber's
        --tls-cert-dir: DIR/ID.pem and DIR/ID.key (one shared key, one
        `openssl req -x509 -CA` each, @jobs at a time; ~20 ms a certificate).
        Ids whose files exist are skipped. Returns @directory."""
        os.makedirs(directory, exist_ok=True)
        shared = os.path.join(self.dir, "batch-node.key")
        if not os.path.exists(shared):
            _run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", shared + ".tmp"])
            os.chmod(shared + ".tmp", 0o600)
            os.replace(shared + ".tmp", shared)
        with open(shared, "rb") as f:
            key_pem = f.read()
        todo = [i for i in node_ids if not os.path.exists(os.path.join(directory, i + ".pem"))]
        running = []

        def reap(p):
            out = p.communicate()[1]
            if p.returncode != 0:
                raise RuntimeError("openssl req -x509 -CA failed: %s" % out.decode().strip())

        for node_id in todo:
            base = os.path.join(directory, node_id)
            fd = os.open(base + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, key_pem)
            os.close(fd)
            uri = "spiffe://%s/node/%s" % (self.td, node_id)
            running.append(subprocess.Popen(
                ["openssl", "req", "-new", "-x509", "-key", shared, "-CA", self.ca,
                 "-CAkey", self.ca_key, "-subj", "/CN=" + node_id, "-days", "30",
                 "-addext", "subjectAltName=URI:" + uri,
                 "-addext", "basicConstraints=critical,CA:FALSE",
                 "-addext", "keyUsage=critical,digitalSignature",
                 "-addext", "extendedKeyUsage=clientAuth",
                 "-out", base + ".pem"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            if len(running) >= jobs:
                reap(running.pop(0))
        for p in running:
            reap(p)
        return directory

    def leaf(self, fname, cn="leaf", uris=(), ips=(), dns=(), expired=False,
             not_yet_valid=False, days=825):
        fname += "-expired" if expired else "-future" if not_yet_valid else ""
        base = os.path.join(self.dir, fname)
        key, csr, crt = base + ".key", base + ".csr", base + ".pem"
        _run(["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-keyout", key, "-out", csr, "-subj", "/CN=" + cn])
        os.chmod(key, 0o600)
        san = ["URI:" + u for u in uris] + ["IP:" + i for i in ips] + ["DNS:" + d for d in dns]
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n")
            f.write("keyUsage=critical,digitalSignature,keyEncipherment\n")
            f.write("extendedKeyUsage=serverAuth,clientAuth\n")
            if san:
                f.write("subjectAltName=" + ",".join(san) + "\n")
        if expired or not_yet_valid:
            start, end = ("20010101000000Z", "20020101000000Z") if expired else \
                ("20990101000000Z", "21000101000000Z")
            self._ca_sign(csr, crt, ext, start, end)
        else:
            self._serial += 1
            _run(["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-set_serial", str(self._serial + int.from_bytes(os.urandom(4), "big")),
                  "-out", crt, "-days", str(days), "-sha256", "-extfile", ext])
        return Cert(crt, key, self.ca, fname)

    def _ca_sign(self, csr, crt, ext, start, end):
        db = os.path.join(self.dir, "ca-db")
        os.makedirs(db, exist_ok=True)
        index = os.path.join(db, "index.txt")
        if not os.path.exists(index):
            open(index, "w").close()
        conf = os.path.join(db, "ca.cnf")
        with open(conf, "w") as f:
            f.write("[ca]\ndefault_ca=d\n[d]\ndir=%s\ndatabase=%s\nnew_certs_dir=%s\n"
                    "serial=%s\ndefault_md=sha256\npolicy=p\nunique_subject=no\n"
                    "copy_extensions=none\n[p]\ncommonName=supplied\n"
                    % (db, index, db, os.path.join(db, "serial")))
        serial = os.path.join(db, "serial")
        if not os.path.exists(serial):
            with open(serial, "w") as f:
                # an even number of hex digits (openssl reads it as bytes)
                f.write("%08X\n" % (0x10000000 + int.from_bytes(os.urandom(3), "big")))
        _run(["ca", "-batch", "-config", conf, "-cert", self.ca, "-keyfile", self.ca_key,
              "-in", csr, "-out", crt, "-startdate", start, "-enddate", end,
              "-extfile", ext, "-notext"])


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    pki = Pki(argv[1])
    args = argv[2:]
    while args:
        if len(args) < 2 or args[0] not in ("server", "node"):
            print("expected 'server ID [--ip IP]...' or 'node ID', got %r" % args, file=sys.stderr)
            return 2
        kind, name = args[0], args[1]
        args = args[2:]
        ips = []
        while kind == "server" and len(args) >= 2 and args[0] == "--ip":
            ips.append(args[1])
            args = args[2:]
        if kind == "server":
            c = pki.server(name, ips=ips) if ips else pki.server(name)
        else:
            c = pki.node(name)
        print(c.cert, c.key, c.ca)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
