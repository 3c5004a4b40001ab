#!/usr/bin/env python3
"""API tokens on real servers: the role matrix of every route of api/route.c,
revocation seen by every member within 1 s, the bootstrap token file (bad
files refuse the start, a restart creates no second token), enforcement on a
member started without the flag, the writes-per-token limit, metrics, and
the cost of a token on a GET."""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import (SERVER_BIN, Cluster, KeepAliveClient, bearer, check, check_error,  # noqa: E402
                       http_request, log, make_token, median, pick_ports, run, server_tls_args,
                       wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTE_C = os.path.join(HERE, "..", "..", "api", "route.c")
ROLES = {"OPEN": 0, "READ": 1, "WRITE": 2, "ADMIN": 3, "NO_METHOD": None}
ROLE_OF = {"read": 1, "write": 2, "admin": 3}


def route_table():
    """[(segments, methods, read_role, write_role)] parsed from api/route.c:
    the one table the matrix is generated from (ITEM() expanded)."""
    src = open(ROUTE_C).read()
    entry = re.compile(r'\{\s*\{([^}]*)\},\s*([^,]+),\s*(\w+),\s*(\w+),\s*RP_ROUTE_\w+')
    macro = src[src.index("#define ITEM"):src.index("static const struct route table")]
    items = [(m.group(1), m.group(2), m.group(3), m.group(4))
             for m in entry.finditer(macro.replace("\\\n", " "))]
    body = src[src.index("static const struct route table"):]
    body = body[:body.index("};")]
    out = []

    def add(segs, meths, rr, wr):
        segs = [s.strip().strip('"') for s in segs.split(",") if s.strip() != "NULL"]
        ms = set()
        for tok in meths.replace(" ", "").split("|"):
            ms |= {"R": {"GET", "HEAD"}, "M_GET": {"GET"}, "M_HEAD": {"HEAD"}, "M_PUT": {"PUT"},
                   "M_POST": {"POST"}, "M_DELETE": {"DELETE"}}[tok]
        out.append((segs, ms, ROLES[rr], ROLES[wr]))

    for line in body.splitlines():
        m = re.match(r'\s*ITEM\("(\w+)",', line)
        if m:
            for segs, meths, rr, wr in items:
                add(segs.replace("name", '"%s"' % m.group(1)), meths, rr, wr)
            continue
        m = entry.search(line)
        if m:
            add(*m.groups())
    check(len(out) >= 22, "parsed only %d routes from route.c" % len(out), out)
    return out


PARAM = {("members", "*"): "99", ("rollouts", "*"): "1", ("tokens", "*"): "nosuch",
         ("clusters", "*"): "matrix-cluster", ("routes", "*"): "matrix-route",
         ("proxies", "*"): "matrix-node"}


def concrete(segs):
    path = []
    for i, s in enumerate(segs):
        if s == "**":
            path.append("matrix-key")
        elif s == "*":
            path.append(PARAM[(segs[i - 1], "*")])
        else:
            path.append(s)
    p = "/" + "/".join(path)
    if p == "/v1/watch":
        p += "?after=0&wait=0"
    return p


BODY = {"PUT": b"v", "POST": b"{}", "DELETE": None, "GET": None, "HEAD": None}


def matrix_cluster_tokens(c, lead):
    toks = {"admin": c.token}
    for role in ("read", "write"):
        r = c.request(lead, "POST", "/v1/tokens", {"name": "m-" + role, "role": role})
        check(r.status == 201, "create %s token" % role, r.body)
        toks[role] = r.json()["token"]
    r = c.request(lead, "POST", "/v1/tokens", {"name": "m-revoked", "role": "admin"})
    toks["revoked"] = r.json()["token"]
    r = c.request(lead, "DELETE", "/v1/tokens/m-revoked")
    check(r.status == 200 and r.json()["revoked"] is True, "revoke", r.body)
    toks["garbage"] = "rpt_" + "A" * 43  # well-formed, unknown
    return toks


def test_role_matrix_and_revocation():
    tok = make_token()
    with Cluster(3, name="tokens", bootstrap_token=tok) as c:
        lead = c.leader()
        toks = matrix_cluster_tokens(c, lead)
        variants = [("none", None), ("garbage", toks["garbage"]),
                    ("malformed", "not-a-token"), ("revoked", toks["revoked"]),
                    ("read", toks["read"]), ("write", toks["write"]), ("admin", toks["admin"])]
        table = route_table()
        n_checked = 0
        unauth_bodies = set()
        for segs, methods, rr, wr in table:
            path = concrete(segs)
            for method in sorted(methods):
                need = rr if method in ("GET", "HEAD") else wr
                for vname, secret in variants:
                    hdrs = {"Authorization": None} if secret is None else bearer(secret)
                    if vname == "malformed":
                        hdrs = {"Authorization": "Basic " + secret}
                    body = BODY[method]
                    if path == "/v1/tokens" and method == "POST":
                        body = {"name": "mx-%d" % n_checked, "role": "read"}
                    r = c.request(lead, method, path, body=body, headers=hdrs)
                    what = "%s %s with %s token (needs %s)" % (method, path, vname, need)
                    n_checked += 1
                    if need == 0 and r.status == 401 and path in ("/v1/subscribe", "/v1/report") \
                            and b"client certificate" in r.body:
                        pass  # TLS: the node endpoints need a node certificate, not a token
                    elif need == 0:
                        check(r.status not in (401, 403), what, r.status, r.body)
                    elif vname in ("none", "garbage", "malformed", "revoked"):
                        check(r.status == 401, what + ": expected 401", r.status, r.body)
                        check(r.headers.get("www-authenticate") == "Bearer",
                              what + ": WWW-Authenticate", r.headers)
                        if method != "HEAD":
                            check_error(r, 401, "unauthenticated", what)
                            unauth_bodies.add(r.body)
                    elif ROLE_OF[vname] < need:
                        check(r.status == 403, what + ": expected 403", r.status, r.body)
                        if method != "HEAD":
                            check_error(r, 403, "permission_denied", what)
                    else:
                        check(r.status not in (401, 403, 429) and r.status < 500,
                              what + ": expected to run", r.status, r.body)
        # one answer for missing, malformed, unknown and revoked tokens
        check(len(unauth_bodies) == 1, "401 bodies differ", unauth_bodies)
        # paths that match nothing, methods a path lacks: readers only
        for vname, secret, want in (("none", None, 401), ("read", toks["read"], 404)):
            h = {"Authorization": None} if secret is None else bearer(secret)
            check(c.request(lead, "GET", "/v1/nope", headers=h).status == want, "404 " + vname)
            want405 = 405 if want == 404 else 401
            check(c.request(lead, "PATCH", "/v1/kv/x", headers=h).status == want405,
                  "405 " + vname)
        log("role matrix: %d routes, %d requests checked" % (len(table), n_checked))

        # followers enforce the same, and forward with the token (re-checked)
        fol = [n for n in c.running() if n is not lead]
        for f in fol:
            check(c.request(f, "GET", "/v1/status", headers={"Authorization": None}).status
                  == 401, "follower open")
            r = c.request(f, "PUT", "/v1/kv/fwd", body="1", headers=bearer(toks["write"]))
            check(r.status == 200, "forwarded write", r.body)
            r = c.request(f, "PUT", "/v1/kv/fwd", body="1", headers=bearer(toks["read"]))
            check_error(r, 403, "permission_denied", "forwarded write, read token")

        # revocation: every member refuses within 1 s of the DELETE answer
        r = c.request(lead, "POST", "/v1/tokens", {"name": "short-lived", "role": "read"})
        victim = r.json()["token"]
        for n in c.running():
            wait_until(lambda n=n: c.request(n, "GET", "/v1/status",
                                             headers=bearer(victim)).status == 200,
                       5, what="%r to know the new token" % n)
        seen = {}
        stop = threading.Event()
        t_deleted = [None]

        def poll(node):
            cl = KeepAliveClient(node.http, timeout=5)
            while not stop.is_set():
                st = cl.request("GET", "/v1/status", headers=bearer(victim)).status
                now = time.monotonic()
                if st == 401 and t_deleted[0] is not None:
                    seen[node.id] = now - t_deleted[0]
                    return
                if st == 401:  # refused before the answer came: counts as 0
                    seen[node.id] = 0.0
                    return
                time.sleep(0.005)
            cl.close()

        threads = [threading.Thread(target=poll, args=(n,)) for n in c.running()]
        for t in threads:
            t.start()
        r = c.request(fol[0], "DELETE", "/v1/tokens/short-lived")  # through a follower
        t_deleted[0] = time.monotonic()
        check(r.status == 200, "revoke through a follower", r.body)
        for t in threads:
            t.join(3.0)
        stop.set()
        for n in c.running():
            check(n.id in seen, "%r still accepts the revoked token after 3 s" % n, seen)
            check(seen[n.id] <= 1.0, "%r refused the revoked token only after %.3fs" % (
                n, seen[n.id]))
        log("revocation refused by every member after: %s" % ", ".join(
            "node%d %.1f ms" % (i, seen[i] * 1000) for i in sorted(seen)))

        # metrics: failures by reason, tokens count
        r = c.request(lead, "GET", "/metrics")
        check(r.status == 200, "metrics", r.body)
        text = r.body.decode()
        m = re.search(r'raftplane_auth_failures_total\{reason="unauthenticated"\} (\d+)', text)
        check(m and int(m.group(1)) > 0, "unauthenticated count", text[-2000:])
        m = re.search(r'raftplane_auth_failures_total\{reason="permission_denied"\} (\d+)', text)
        check(m and int(m.group(1)) > 0, "permission_denied count")
        ntok = len(c.request(lead, "GET", "/v1/tokens").json()["tokens"])
        check(re.search(r"^raftplane_tokens %d$" % ntok, text, re.M), "raftplane_tokens %d" % ntok)

        # the list never shows secrets or hashes; a token is shown once
        r = c.request(lead, "GET", "/v1/tokens")
        for t in r.json()["tokens"]:
            check(set(t) == {"name", "role", "created", "created_by"}, "token fields", t)
        check(all(s.encode() not in r.body for s in toks.values()), "secret in the list")
        r = c.request(lead, "GET", "/v1/tokens/m-read")
        check(r.status == 200 and r.json()["role"] == "read", "show", r.body)
        check_error(c.request(lead, "GET", "/v1/tokens/nosuch"), 404, "not_found", "show absent")
        check_error(c.request(lead, "GET", "/v1/tokens/bad%20name"), 400, "invalid_argument",
                    "bad name")
        # bad bodies, duplicates, the last admin
        for body in ("", "[]", "{", {"name": "x"}, {"role": "read"}, {"name": "x", "role": "root"},
                     {"name": "x" * 65, "role": "read"}, {"name": "a b", "role": "read"},
                     {"name": "x", "role": "read", "extra": 1}, {"name": 5, "role": "read"},
                     '{"name":"x","name":"y","role":"read"}'):
            check_error(c.request(lead, "POST", "/v1/tokens", body), 400, "invalid_argument",
                        "POST %r" % (body,))
        check_error(c.request(lead, "POST", "/v1/tokens", {"name": "m-read", "role": "read"}),
                    409, "conflict", "duplicate name")
        check_error(c.request(lead, "DELETE", "/v1/tokens/bootstrap"), 409, "conflict",
                    "the last admin token")
        check_error(c.request(lead, "DELETE", "/v1/tokens/nosuch"), 404, "not_found",
                    "revoke absent")
        # secrets are never logged
        for n in c.nodes.values():
            lt = n.log_text()
            for s in list(toks.values()) + [victim]:
                check(s not in lt, "a token secret is in %r's log" % n)


def start_raw(args, timeout=15):
    """Run the server with @args; (exit code or None if it kept running, output)."""
    p = subprocess.Popen([SERVER_BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out.decode("utf-8", "replace")


def test_bootstrap_file():
    d = tempfile.mkdtemp(prefix="rp-it-tokfile-")
    try:
        rp, hp = pick_ports(2)
        base = ["--id", "1", "--data-dir", os.path.join(d, "data"), "--raft",
                "127.0.0.1:%d" % rp, "--http", "127.0.0.1:%d" % hp, "--bootstrap",
                "1=127.0.0.1:%d@127.0.0.1:%d" % (rp, hp)] + server_tls_args(
                    1, os.path.join(d, "tls"))
        path = os.path.join(d, "tok")
        cases = [("missing", None, 0o600, "No such file or directory"),
                 ("empty", "", 0o600, "is empty"),
                 ("blank line", "\n", 0o600, "is empty"),
                 ("not a token", "hunter2\n", 0o600, "not a token"),
                 ("short", make_token()[:-1] + "\n", 0o600, "not a token"),
                 ("two lines", make_token() + "\n" + make_token() + "\n", 0o600, "not a token"),
                 ("group-readable", make_token() + "\n", 0o640, "group or others"),
                 ("world-readable", make_token() + "\n", 0o604, "group or others")]
        for name, text, mode, want in cases:
            if os.path.exists(path):
                os.unlink(path)
            if text is not None:
                with open(path, "w") as f:
                    f.write(text)
                os.chmod(path, mode)
            rc, out = start_raw(base + ["--bootstrap-token-file", path])
            lines = [ln for ln in out.splitlines() if ln.strip()]
            check(rc == 2, "%s: expected exit 2, got %s" % (name, rc), out)
            check(len(lines) == 1 and "--bootstrap-token-file" in lines[0] and want in lines[0],
                  "%s: expected one line with %r" % (name, want), out)
            check(not os.path.exists(os.path.join(d, "data")), "%s: data dir created" % name)
            log("bad token file (%s): %s" % (name, lines[0]))
    finally:
        subprocess.run(["rm", "-rf", d])

    # restart with the same file: still one token; a member without the flag enforces
    tok = make_token()
    with Cluster(3, name="tokens-boot", bootstrap_token=tok) as c:
        lead = c.leader()
        r = c.request(lead, "PUT", "/v1/kv/a", body="1")
        check(r.status == 200, "write with the bootstrap token", r.body)
        for n in list(c.running()):
            c.stop(n)
        for n in c.nodes.values():
            c.restart(n, wait_http=False)
        # until a leader replays the log the marker keeps them closed: 401
        wait_until(lambda: all(c.try_request(n, "GET", "/v1/status", timeout=1) is not None and
                               c.request(n, "GET", "/readyz").status == 200 and
                               c.request(n, "GET", "/v1/status").status == 200
                               for n in c.nodes.values()), 30, what="the restarted cluster")
        lead = c.leader()
        c.request(lead, "PUT", "/v1/kv/b", body="1")
        toks = c.request(lead, "GET", "/v1/tokens").json()["tokens"]
        check([t["name"] for t in toks] == ["bootstrap"], "one token after restarts", toks)
        h = c.request(lead, "GET", "/v1/history?kind=tokens").json()["history"]
        check(len(h) == 1 and h[0]["actor"] == "system:bootstrap-token-file", "one bootstrap", h)
        # node 3 without the flag: enforces at once (marker), and from the state
        n3 = c.nodes[3]
        c.stop(n3)
        i = n3.argv.index("--bootstrap-token-file")
        n3.argv = n3.argv[:i] + n3.argv[i + 2:]
        c.restart(n3)
        r = http_request(n3.http, "GET", "/v1/status")
        check(r.status == 401, "restarted member without the flag is open", r.status, r.body)
        c.stop(n3)
        os.unlink(os.path.join(n3.data_dir, "tokens-enabled"))
        c.restart(n3)
        wait_until(lambda: http_request(n3.http, "GET", "/v1/status").status == 401, 5,
                   what="a member without flag and marker to enforce from the state")
        check(os.path.exists(os.path.join(n3.data_dir, "tokens-enabled")), "marker rewritten")
        # a node that joins needs a token: with the file's token it can
        j = c.add_node_by_join(timeout=30)
        check(c.request(j, "GET", "/v1/status").status == 200, "joined node")
        check(http_request(j.http, "GET", "/v1/status").status == 401, "joined node open")


def test_no_tokens_yet():
    """A node that must enforce tokens but holds none yet (here: the bootstrap
    token cannot be created, no quorum) answers a presented token 503
    unavailable with Retry-After, not 401: it cannot tell a valid token from
    a wrong one. No token at all is still 401."""
    d = tempfile.mkdtemp(prefix="rp-it-toknone-")
    p = None
    try:
        rp, hp, r2, h2, r3, h3 = pick_ports(6)
        tok = make_token()
        path = os.path.join(d, "tok")
        with open(path, "w") as f:
            f.write(tok + "\n")
        os.chmod(path, 0o600)
        peers = ",".join("%d=127.0.0.1:%d@127.0.0.1:%d" % x
                         for x in ((1, rp, hp), (2, r2, h2), (3, r3, h3)))
        p = subprocess.Popen([SERVER_BIN, "--id", "1", "--data-dir", os.path.join(d, "data"),
                              "--raft", "127.0.0.1:%d" % rp, "--http", "127.0.0.1:%d" % hp,
                              "--bootstrap", peers, "--bootstrap-token-file", path,
                              "--leader-wait-ms", "200"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        addr = "127.0.0.1:%d" % hp

        def up():
            try:
                return http_request(addr, "GET", "/healthz", timeout=1).status == 200
            except OSError:
                return False
        wait_until(up, 15, what="the lone node serving HTTP")
        r = http_request(addr, "GET", "/v1/status", headers=bearer(tok))
        check_error(r, 503, "unavailable", "the right token, no tokens held yet")
        check(r.headers.get("retry-after") == "1", "Retry-After: 1", r.headers)
        r = http_request(addr, "GET", "/v1/status", headers=bearer(make_token()))
        check_error(r, 503, "unavailable", "another well-formed token: cannot tell either")
        r = http_request(addr, "GET", "/v1/status")
        check_error(r, 401, "unauthenticated", "no token at all")
        r = http_request(addr, "GET", "/v1/status", headers={"Authorization": "Bearer nope"})
        check_error(r, 401, "unauthenticated", "a malformed token")
        log("no tokens held yet: 503 for a presented token, 401 without one")
    finally:
        if p is not None:
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", d])


def test_rate_limit():
    tok = make_token()
    with Cluster(1, name="tokens-rate", bootstrap_token=tok,
                 extra_args=["--max-writes-per-token", "20"]) as c:
        n = c.leader()
        r = c.request(n, "POST", "/v1/tokens", {"name": "w1", "role": "write"})
        w1 = r.json()["token"]
        r = c.request(n, "POST", "/v1/tokens", {"name": "w2", "role": "write"})
        w2 = r.json()["token"]
        time.sleep(1.1)  # the admin's creations refill
        cl = KeepAliveClient(n.http)
        statuses = []
        for i in range(60):
            r = cl.request("PUT", "/v1/kv/burst%d" % i, body="x", headers=bearer(w1))
            statuses.append(r.status)
            if r.status == 429:
                check_error(r, 429, "rate_limited", "burst")
                ra = r.headers.get("retry-after", "")
                check(re.fullmatch(r"[1-9]\d*", ra), "Retry-After %r" % ra)
        n429 = statuses.count(429)
        check(n429 >= 30 and statuses.count(200) >= 20, "burst of 60 at limit 20: %d x 429" % n429,
              statuses)
        # reads are not limited; another token has its own bucket
        check(cl.request("GET", "/v1/kv/burst0", headers=bearer(w1)).status == 200, "read")
        check(cl.request("PUT", "/v1/kv/other", body="x", headers=bearer(w2)).status == 200,
              "second token limited by the first")
        # under the limit: no 429
        time.sleep(1.1)
        t0 = time.monotonic()
        for i in range(30):
            r = cl.request("PUT", "/v1/kv/steady%d" % i, body="x", headers=bearer(w1))
            check(r.status == 200, "steady write %d at 10/s" % i, r.status, r.body)
            time.sleep(max(0, t0 + (i + 1) * 0.1 - time.monotonic()))
        text = cl.request("GET", "/metrics", headers=bearer(tok)).body.decode()
        m = re.search(r"^raftplane_rate_limited_writes_total (\d+)$", text, re.M)
        check(m and int(m.group(1)) == n429, "rate-limited metric", m and m.group(0))
        cl.close()
        log("rate limit: %d of 60 burst writes refused, 30 steady writes at 10/s accepted" % n429)

    # tokens off: per client IP, same answers
    with Cluster(1, name="tokens-rate-open", extra_args=["--max-writes-per-token", "5"]) as c:
        n = c.leader()
        cl = KeepAliveClient(n.http)
        st = [cl.request("PUT", "/v1/kv/o%d" % i, body="x").status for i in range(15)]
        check(st.count(429) >= 5, "tokens off: per-IP limit", st)
        cl.close()


def get_latencies(addr, path, headers, n=400):
    cl = KeepAliveClient(addr)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = cl.request("GET", path, headers=headers)
        out.append(time.perf_counter() - t0)
        check(r.status == 200, "GET", r.status, r.body)
    cl.close()
    return out


def test_token_cost():
    """A GET with a token is not measurably slower than one without."""
    tok = make_token()
    with Cluster(1, name="cost-open") as a, Cluster(1, name="cost-tokens",
                                                     bootstrap_token=tok) as b:
        na, nb = a.leader(), b.leader()
        a.request(na, "PUT", "/v1/kv/x", body="1")
        b.request(nb, "PUT", "/v1/kv/x", body="1")
        path = "/v1/kv/x?consistency=stale"
        # back-to-back rounds: a token's real cost (a hash and a lookup)
        # shows in every round, a neighbour's load only in some (a CI run
        # beside other tests once measured 278 us in each of 3 rounds)
        rounds = []
        for _ in range(6):
            ta = median(get_latencies(na.http, path, {}))
            tb = median(get_latencies(nb.http, path, bearer(tok)))
            rounds.append((ta, tb))
            log("GET median: without tokens %.1f us, with a token %.1f us" % (
                ta * 1e6, tb * 1e6))
            if tb <= ta * 1.25 + 100e-6:
                break
        check(any(tb <= ta * 1.25 + 100e-6 for ta, tb in rounds),
              "a token costs more than 25%% + 100 us per GET in every round",
              ["%.1f/%.1f us" % (a * 1e6, b * 1e6) for a, b in rounds])


if __name__ == "__main__":
    run([test_role_matrix_and_revocation, test_bootstrap_file, test_no_tokens_yet,
         test_rate_limit, test_token_cost])
