#!/usr/bin/env python3
"""The web dashboard (/ui/, issue 14) in a real browser: Debian's headless
chromium driven by playwright-core (tests/ui/browser.js, installed by
scripts/install-deps.sh with `npm ci`), against real raftplane-server
clusters, real raftplane-proxy processes and real backends on 127.0.0.1
(tests/proxy/proxyharness.py, tests/integration/rpharness.py).

- serving: /ui redirects, files with ETag / 304, CSP and nosniff, 404 for
  other names, no token needed for the files while the API needs one;
- the page loads on every member and shows three members and the same
  leader; a member hung by SIGSTOP is marked within 2 s and unmarked once
  resumed; SIGKILL the leader: the page shows the new leader within 3 s of
  the election and marks the dead member within 2 s of the kill;
- with tokens on, a login prompt; a read token sees no rollback button;
  the Proxies view lists both proxies ACKed; a route change through the
  API: the Rollouts bar reaches "all ACKed" for that revision and the
  Traffic chart of the new cluster shows requests; a listener on a port
  someone holds: the NACK text on the proxy's row; the history's diff of
  the route change; an admin token's rollback button (with confirmation)
  restores the old route and the traffic follows;
- the screenshots of each view go to ./ui-screenshots (CTest runs this in
  the build dir: build/tests/ui/ui-screenshots), or $RP_UI_ARTIFACTS.

Skipped (exit 77) only when chromium is not installed. Every process it
starts (servers, proxies, backends, node and the browser) is killed by pid
when it ends, also on failure."""

import atexit
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from proxyharness import Env, Load, check, log, pick_ports, run, wait_body, wait_until  # noqa: E402
from rpharness import TestFailure, bearer, http_request  # noqa: E402

CHROMIUM = os.environ.get("RP_CHROMIUM", "/usr/bin/chromium")
NODE = os.environ.get("RP_NODE", "node")
DRIVER = os.path.join(HERE, "browser.js")
ARTIFACTS = os.environ.get("RP_UI_ARTIFACTS") or os.path.join(os.getcwd(), "ui-screenshots")
SKIP = 77  # CTest SKIP_RETURN_CODE (tests/ui/CMakeLists.txt)

_browsers = []


def _cleanup():
    for b in list(_browsers):
        b.close()


atexit.register(_cleanup)


class Browser:
    """browser.js in a process group of its own (node and chromium), killed
    by its pid's group when closed."""

    def __init__(self):
        self.log_path = os.path.join(ARTIFACTS, "browser.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([NODE, DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=HERE, start_new_session=True,
                                     env=dict(os.environ, RP_CHROMIUM=CHROMIUM))
        _browsers.append(self)
        self.answers = queue.Queue()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()
        first = self._answer(0, 60)
        log("browser: chromium %s" % first)

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.answers.put(json.loads(line))
            except ValueError:
                self.answers.put({"id": -1, "ok": False, "error": "bad line %r" % line})
        self.answers.put(None)

    def _answer(self, want_id, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("browser: no answer to command %d in %.0fs" % (want_id, timeout))
            try:
                a = self.answers.get(timeout=left)
            except queue.Empty:
                continue
            if a is None:
                raise TestFailure("browser driver exited (see %s)" % self.log_path)
            if a.get("id") != want_id:
                continue
            if not a["ok"]:
                raise TestFailure("browser: %s" % a["error"])
            return a["value"]

    def call(self, op, timeout=30, **kw):
        cid = self.next_id
        self.next_id += 1
        kw.update(id=cid, op=op)
        self.proc.stdin.write((json.dumps(kw) + "\n").encode())
        self.proc.stdin.flush()
        return self._answer(cid, timeout + 15)

    # -- conveniences
    def open(self, page, url, width=1280, height=800):
        return self.call("open", page=page, url=url, width=width, height=height)

    def eval(self, page, expr):
        return self.call("eval", page=page, expr=expr)

    def wait(self, page, expr, timeout=10, what=None):
        try:
            return self.call("wait", timeout=timeout, page=page, expr=expr,
                             ms=int(timeout * 1000))
        except TestFailure as e:
            shot = self.shot(page, "failed-" + page)
            raise TestFailure("%s: %s (page text: %s; screenshot %s)" % (
                what or expr, e, self.text(page)[:1500], shot))

    def text(self, page):
        try:
            return self.eval(page, "document.body.innerText")
        except TestFailure:
            return "?"

    def shot(self, page, name):
        path = os.path.join(ARTIFACTS, name + ".png")
        try:
            self.call("screenshot", page=page, path=path)
        except TestFailure as e:
            log("screenshot %s: %s" % (name, e))
        return path

    def errors(self, page):
        return self.call("errors", page=page)

    def close(self):
        if self in _browsers:
            _browsers.remove(self)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)  # the group we started: node + chromium
            except ProcessLookupError:
                break
            time.sleep(0.3)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


def show(b, page, view):
    b.eval(page, "location.hash = '#%s'" % view)
    b.wait(page, "document.body.dataset.view === '%s'" % view, 5, what="view " + view)


def no_page_errors(b, page, allow=()):
    """No script error and no CSP violation; @allow: statuses the page met on
    purpose (the browser logs a 401 before the login prompt, a 403 for the
    role probe)."""
    errs = [e for e in b.errors(page)
            if not any("the server responded with a status of %d" % st in e for st in allow)]
    check(errs == [], "no script errors and no CSP violations on %s" % page, errs)


# ---- serving ----------------------------------------------------------------

def test_serving():
    with Env(servers=1, name="ui-serve", tls=False) as env:
        addr = env.cluster.running()[0].http
        r = http_request(addr, "GET", "/ui")
        check(r.status == 301 and r.headers.get("location") == "/ui/", "/ui redirects", r.status,
              r.headers)
        r = http_request(addr, "GET", "/ui/")
        check(r.status == 200 and r.headers["content-type"].startswith("text/html"), "index", r)
        check(b'<script src="app.js"' in r.body, "index.html links app.js", r.body[:300])
        csp = r.headers.get("content-security-policy", "")
        check("default-src 'self'" in csp, "CSP", r.headers)
        check(r.headers.get("x-content-type-options") == "nosniff", "nosniff", r.headers)
        etag = r.headers.get("etag")
        check(etag and etag.startswith('"'), "ETag", r.headers)
        r2 = http_request(addr, "GET", "/ui/index.html")
        check(r2.body == r.body and r2.headers.get("etag") == etag, "index.html is /ui/")
        r = http_request(addr, "GET", "/ui/", headers={"If-None-Match": etag})
        check(r.status == 304 and r.body == b"", "304 on a matching If-None-Match", r.status)
        r = http_request(addr, "GET", "/ui/", headers={"If-None-Match": '"nope", ' + etag})
        check(r.status == 304, "304 when the list holds it", r.status)
        r = http_request(addr, "GET", "/ui/", headers={"If-None-Match": '"nope"'})
        check(r.status == 200, "200 on another ETag", r.status)
        for name, ctype in (("app.js", "text/javascript"), ("chart.js", "text/javascript"),
                            ("style.css", "text/css")):
            r = http_request(addr, "GET", "/ui/" + name)
            check(r.status == 200 and r.headers["content-type"].startswith(ctype), name, r)
        r = http_request(addr, "HEAD", "/ui/app.js")
        check(r.status == 200 and r.body == b"", "HEAD", r.status, r.body[:100])
        for bad in ("/ui/nope.js", "/ui/a/app.js", "/ui/%2e%2e/app.js", "/ui/app.js%00"):
            r = http_request(addr, "GET", bad)
            check(r.status in (400, 404), "%s refused" % bad, r.status, r.body)
        check(http_request(addr, "GET", "/ui/..").status == 400, "dot segment")
        r = http_request(addr, "POST", "/ui/", body=b"{}")
        check(r.status == 405, "POST /ui/", r.status)
        # the cluster view's endpoint: bad scopes are refused
        r = http_request(addr, "GET", "/v1/status?scope=everything")
        check(r.status == 400, "bad scope", r.status, r.body)
        r = http_request(addr, "GET", "/v1/status?scope=cluster")
        check(r.status == 200, "scope=cluster", r.body)
        d = r.json()
        check(len(d["members"]) == 1 and d["members"][0]["reachable"] is True and
              d["members"][0]["status"]["state"] == "leader" and d["unreachable"] == [],
              "one member, the leader", d)


# ---- cluster -----------------------------------------------------------------

def members_expr(n):
    return ("(() => { const rows = document.querySelectorAll('#members tbody tr');"
            " const up = document.querySelectorAll('#members tbody tr[data-reachable=yes]');"
            " const l = document.querySelector('#leader').dataset.leaderId;"
            " return rows.length === %d && up.length === %d && l ? l : null; })()" % (n, n))


def test_cluster_view():
    with Env(servers=3, name="ui-cluster", tls=False) as env, Browser() as b:
        c = env.cluster
        lead = c.leader()
        nodes = sorted(c.running(), key=lambda n: n.id)
        for n in nodes:
            page = "m%d" % n.id
            b.open(page, "http://%s/ui/#cluster" % n.http)
            got = b.wait(page, members_expr(3), 15, what="member %d shows 3 members" % n.id)
            check(got == str(lead.id), "member %d's page names leader %d" % (n.id, lead.id), got)
            no_page_errors(b, page)
        b.shot("m%d" % nodes[0].id, "cluster")
        # a narrow window: the page fits, tables scroll on their own
        survivor = next(n for n in nodes if n is not lead)
        sp = "m%d" % survivor.id
        b.call("viewport", page=sp, width=420, height=800)
        fits = b.eval(sp, "document.documentElement.scrollWidth <= window.innerWidth + 1")
        check(fits, "the page fits a 420 px window", b.eval(sp, "document.documentElement.scrollWidth"))
        b.shot(sp, "cluster-narrow")
        b.call("viewport", page=sp, width=1280, height=800)

        # a member that hangs (SIGSTOP: connections accepted by the kernel,
        # never answered) is marked within 2 s too, and comes back
        hung = next(n for n in nodes if n is not lead and n is not survivor)
        row = "document.querySelector('#members tr[data-member-id=\"%d\"]')" % hung.id
        c.pause(hung.id)
        t_stop = time.monotonic()
        try:
            b.wait(sp, row + ".dataset.reachable === 'no'", 10, what="hung member marked")
            t_hung = time.monotonic() - t_stop
        finally:
            c.resume(hung.id)
        log("hung member marked %.2fs after SIGSTOP" % t_hung)
        check(t_hung <= 2.0, "hung member marked within 2 s (%.2fs)" % t_hung)
        b.wait(sp, row + ".dataset.reachable === 'yes'", 10, what="the member back")

        # SIGKILL the leader; watch the survivors for the election
        old_term = c.status(survivor)["term"]
        elected = {}
        stop = threading.Event()

        def watch():
            while not stop.is_set() and "at" not in elected:
                for n in nodes:
                    if n is lead:
                        continue
                    try:
                        s = http_request(n.http, "GET", "/v1/status", timeout=1).json()
                    except (OSError, ValueError):
                        continue
                    if s["state"] == "leader" and s["term"] > old_term:
                        elected.update(at=time.monotonic(), id=s["id"])
                        break
                time.sleep(0.02)
        b.call("close", page="m%d" % lead.id)
        t = threading.Thread(target=watch, daemon=True)
        t_kill = time.monotonic()
        c.kill(lead.id)
        t.start()
        try:
            b.wait(sp, "document.querySelector('#members tr[data-member-id=\"%d\"]')"
                   ".dataset.reachable === 'no'" % lead.id, 10, what="dead member marked")
            t_marked = time.monotonic() - t_kill
            got = b.wait(sp, "(() => { const l = document.querySelector('#leader').dataset.leaderId;"
                         " return l && l !== '%d' ? l : null; })()" % lead.id, 20,
                         what="a new leader on the page")
            t_page = time.monotonic()
            wait_until(lambda: "at" in elected, 10, what="the election seen by the test")
        finally:
            stop.set()
        log("dead member marked %.2fs after the kill; election %.2fs after it; "
            "page shows leader %s %.2fs after the election"
            % (t_marked, elected["at"] - t_kill, got, t_page - elected["at"]))
        check(got == str(elected["id"]), "the page shows the elected leader", got, elected)
        check(t_marked <= 2.0, "dead member marked within 2 s (%.2fs)" % t_marked)
        check(t_page - elected["at"] <= 3.0,
              "new leader shown within 3 s of the election (%.2fs)" % (t_page - elected["at"]))
        row = b.eval(sp, "document.querySelector('#members tr[data-member-id=\"%d\"]').innerText"
                     % lead.id)
        check("NOT ANSWERING" in row, "the dead member's row says so in words", row)
        b.shot(sp, "cluster-leader-killed")
        no_page_errors(b, sp)


# ---- proxies, rollouts, traffic, config ---------------------------------------

def expr_row(table, attr, value, cond):
    return ("(() => { const r = document.querySelector('%s tr[%s=\"%s\"]');"
            " return r && (%s) ? r.innerText : null; })()" % (table, attr, value, cond))


def rollout_done(rev):
    return ("(() => { const t = document.querySelector('#rollout-text');"
            " return t.dataset.revision === '%d' && t.textContent.includes('all ACKed')"
            " ? t.textContent : null; })()" % rev)


def chart_last(kind, name, above=0):
    return ("(() => { const c = document.querySelector('.card[data-kind=%s][data-name=\"%s\"]"
            " .metric-rate'); return c && Number(c.dataset.last) > %f ? Number(c.dataset.last)"
            " : null; })()" % (kind, name, above))


def login(b, page, secret):
    b.wait(page, "document.querySelector('#login').open", 10, what="the login prompt")
    b.call("fill", page=page, selector="#login-token", value=secret)
    b.call("click", page=page, selector="#login-submit")
    b.wait(page, "!document.querySelector('#login').open", 10, what="the prompt closes")


def test_mesh_views():
    args = ["--report-interval-ms", "1000"]
    with Env(servers=3, name="ui-mesh", tls=False, server_args=args) as env, Browser() as b:
        c = env.cluster
        a, bk = env.backend("A"), env.backend("B")
        px1, px2 = env.proxy("edge-1"), env.proxy("edge-2")
        lport, lport2, busy = pick_ports(3)
        lis = "127.0.0.1:%d" % lport
        env.cluster_of("a", [a])
        env.cluster_of("b", [bk])
        # a listener each (both on this host): edge-1 serves route r, the
        # one the test changes; edge-2 serves r2, which no change concerns
        env.listener("edge", lport, nodes=("edge-1",))
        env.listener("edge2", lport2, nodes=("edge-2",))
        px2.wait_version(env.route("r2", "edge2", "a"))
        v_a = env.route("r", "edge", "a")
        px1.wait_version(v_a)
        wait_body(lis, "A")
        wait_body("127.0.0.1:%d" % lport2, "A")
        # tokens on: an admin and a reader
        toks = {}
        for role in ("admin", "read"):
            r = env.api("POST", "/v1/tokens", {"name": "ui-" + role, "role": role})
            check(r.status == 201, "token " + role, r.body)
            toks[role] = r.json()["token"]
            c.token = toks["admin"]  # the harness's own requests, from now on
        fol = c.followers()[0]
        for n in c.running():  # every member knows both tokens (replicated)
            for secret in toks.values():
                wait_until(lambda n=n, t=secret: http_request(
                    n.http, "GET", "/v1/status", headers=bearer(t)).status == 200, 10,
                    what="%r to know the new tokens" % n)
        r = http_request(fol.http, "GET", "/ui/app.js")
        check(r.status == 200, "the files need no token", r.status)
        r = http_request(fol.http, "GET", "/v1/status?scope=cluster")
        check(r.status == 401, "the data needs one", r.status)
        r = http_request(fol.http, "GET", "/v1/status?scope=cluster", headers=bearer(toks["read"]))
        check(r.status == 200 and all(m["reachable"] for m in r.json()["members"]),
              "scope=cluster forwards the token to the members", r.body)

        load = Load(lis, threads=2, pause=0.02).start()
        try:
            run_mesh_views(env, b, fol, toks, lis, busy, v_a)
        finally:
            load.stop()


def run_mesh_views(env, b, fol, toks, lis, busy, v_a):
    P = "ui"
    b.open(P, "http://%s/ui/#proxies" % fol.http)
    login(b, P, toks["read"])
    b.wait(P, "document.querySelector('#role').textContent.includes('read or write')", 10,
           what="the role shown")
    for node in ("edge-1", "edge-2"):
        row = b.wait(P, expr_row("#proxies", "data-node-id", node, "r.dataset.status === 'ACK'"),
                     15, what="%s listed as ACKed" % node)
        check(str(v_a) in row and fol.http in row or "127.0.0.1" in row, "row names version "
              "and server", row)
    b.wait(P, expr_row("#proxies", "data-node-id", "edge-1", "Number(r.querySelector('.rate')"
                       ".textContent) > 0"), 20, what="edge-1's request rate")
    b.call("fill", page=P, selector="#proxy-filter", value="edge-2")
    b.wait(P, "document.querySelectorAll('#proxies tbody tr').length === 1", 5, what="filter")
    b.call("fill", page=P, selector="#proxy-filter", value="")
    b.call("click", page=P, selector="#proxies th[data-key=node_id] button")  # descending
    first = b.wait(P, "(() => { const r = document.querySelectorAll('#proxies tbody tr');"
                   " return r.length === 2 && r[0].dataset.nodeId === 'edge-2'"
                   " ? r[0].dataset.nodeId : null; })()", 5, what="sorted by node id, descending")
    check(first == "edge-2", "sort", first)
    b.shot(P, "proxies")

    # a route change: the rollout bar, then the traffic on the new cluster
    show(b, P, "rollouts")
    b.wait(P, rollout_done(v_a), 10, what="the last change's rollout")
    v_b = env.route("r", "edge", "b")
    t0 = time.monotonic()
    text = b.wait(P, rollout_done(v_b), 20, what="revision %d all ACKed" % v_b)
    log("rollout of %d shown as %r %.2fs after the PUT" % (v_b, text, time.monotonic() - t0))
    check("2 of 2" in text, "both proxies counted", text)
    wait_body(lis, "B")
    change = b.eval(P, "document.querySelector('#rollout-change').textContent")
    check("route r" in change and str(v_b) in change, "names the change", change)
    b.shot(P, "rollouts")
    show(b, P, "traffic")
    rate = b.wait(P, chart_last("clusters", "b"), 30, what="requests on cluster b's chart")
    log("cluster b: %.1f requests/s on the chart" % rate)
    # and then the whole load (the first sample's window may hold a moment of it)
    rate = b.wait(P, chart_last("clusters", "b", 10), 30, what="the load on cluster b's chart")
    b.wait(P, "document.querySelector('#traffic-health table[data-cluster=b]')", 10,
           what="endpoint health of b")
    health = b.eval(P, "document.querySelector('#traffic-health table[data-cluster=b]').innerText")
    check("1 healthy" in health or "2 healthy" in health, "b's endpoint healthy", health)
    b.shot(P, "traffic")
    # the rollout's before/after: the traffic of the proxies that ACKed it
    show(b, P, "rollouts")
    tele = b.wait(P, "(() => { const t = document.querySelector('#rollout-text');"
                  " const a = document.querySelector('#rollout-telemetry .after');"
                  " const f = document.querySelector('#rollout-telemetry .before');"
                  " return t.dataset.revision === '%d' && a && f &&"
                  " /of [1-9][0-9]* requests/.test(a.textContent) &&"
                  " /of [1-9][0-9]* requests/.test(f.textContent)"
                  " ? [f.textContent, a.textContent] : null; })()" % v_b, 25,
                  what="the before/after traffic of revision %d" % v_b)
    log("rollout %d: before: %s; after: %s" % (v_b, tele[0], tele[1]))
    check(all("error rate 0.0 %" in x for x in tele), "no errors before or after", tele)
    b.shot(P, "rollouts-telemetry")

    # a change that NACKs: the port is held by someone else
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", busy))
    blocker.listen(1)
    try:
        v_bad = env.listener("taken", busy, nodes=("edge-1",))
        show(b, P, "proxies")
        row = b.wait(P, expr_row("#proxies", "data-node-id", "edge-1",
                                 "r.dataset.status === 'NACK'"), 20, what="edge-1's NACK")
        err = b.eval(P, "document.querySelector('#proxies tr[data-node-id=\"edge-1\"]"
                     " .nack-error').textContent")
        api_err = [p for p in env.api("GET", "/v1/proxies").json()["proxies"]
                   if p["node_id"] == "edge-1"][0]["nack"]["error"]
        check(err == api_err and str(busy) in err, "the row shows the NACK text", err, api_err)
        check("NACK of version %d" % v_bad in row, "and the version", row)
        b.shot(P, "proxies-nack")
        show(b, P, "rollouts")
        b.wait(P, "document.querySelector('#rollout-text').dataset.revision === '%d' &&"
               " document.querySelector('#rollout-text').dataset.pending === '0'" % v_bad, 20,
               what="the NACKed rollout")
        nacks = b.eval(P, "document.querySelector('#rollout-nacks').innerText")
        check("edge-1" in nacks and str(busy) in nacks, "rollout lists the NACKs", nacks)
        b.shot(P, "rollouts-nack")

        # config and history: a reader sees no rollback button
        show(b, P, "config")
        b.wait(P, "document.querySelector('#history tr[data-revision=\"%d\"]')" % v_bad, 10,
               what="the history")
        check(b.eval(P, "document.querySelectorAll('.rollback-btn:not([hidden])').length") == 0,
              "no rollback button for a read token")
        routes = b.eval(P, "document.querySelector('#cfg-routes').innerText")
        check("r (version %d)" % v_b in routes and "→ b" in routes, "routes listed", routes)
        b.call("click", page=P, selector="#history tr[data-revision=\"%d\"] .diff-btn" % v_b)
        diff = b.wait(P, "(() => { const d = document.querySelector('#diff pre.diff');"
                      " return d ? d.textContent : null; })()", 10, what="the diff")
        check('-   "cluster": "a",\n+   "cluster": "b"' in diff, "diff of the route", diff)
        b.shot(P, "config-history")

        # an admin rolls back to the first route
        b.call("click", page=P, selector="#logout")
        login(b, P, toks["admin"])
        b.wait(P, "document.body.dataset.admin === 'yes'", 10, what="admin role")
        show(b, P, "config")
        sel = "#history tr[data-revision=\"%d\"] .rollback-btn" % v_a
        b.wait(P, "(() => { const x = document.querySelector('%s'); return x && !x.hidden; })()"
               % sel.replace("\\", "\\"), 10, what="the rollback button")
        b.call("click", page=P, selector=sel)
        b.wait(P, "document.querySelector('#confirm').open", 5, what="the confirmation")
        check(str(v_a) in b.eval(P, "document.querySelector('#confirm-text').textContent"),
              "the confirmation names the revision")
        b.shot(P, "config-rollback-confirm")
        b.call("click", page=P, selector="#confirm-ok")
        rev = b.wait(P, "document.querySelector('#rollback-result').dataset.revision", 15,
                     what="the rollback's answer")
        result = b.eval(P, "document.querySelector('#rollback-result').textContent")
        check("Rolled back to revision %d" % v_a in result, "result shown", result)
        route = env.api("GET", "/v1/routes/r").json()
        check(route["cluster"] == "a", "the old route is back", route)
        check(env.api("GET", "/v1/listeners/taken").status == 404, "the NACKed listener gone")
        wait_body(lis, "A", timeout=15)
        show(b, P, "rollouts")
        b.wait(P, rollout_done(int(rev)), 20, what="the rollback's rollout all ACKed")
        # a sample whose 10 s window starts after the rollback: all on a, and
        # b not at all (b has no card when this page, reloaded by the log
        # out, never saw b's reports in a window)
        t_back = b.eval(P, "Date.now()")
        show(b, P, "traffic")
        diag = ("[...document.querySelectorAll('.card[data-kind=clusters] .metric-rate')]"
                ".map((e) => e.closest('.card').dataset.name + ' last=' + e.dataset.last +"
                " ' at=' + e.dataset.at).join('; ') + ' now=' + Date.now()")
        log("traffic charts before the wait (t_back %d): %s" % (t_back, b.eval(P, diag)))
        rates = b.wait(P, "(() => { const q = (n) => document.querySelector("
                       "'.card[data-kind=clusters][data-name=\"' + n + '\"] .metric-rate');"
                       " const a = q('a'), b = q('b');"
                       " return a && Number(a.dataset.at) > %d && Number(a.dataset.last) > %f"
                       " && (!b || b.dataset.last === '0')"
                       " ? [a.dataset.last, b ? b.dataset.last : 'not listed'] : null; })()"
                       % (t_back + 11000, 10), 45, what="traffic back on cluster a")
        tb = env.api("GET", "/v1/telemetry/clusters/b?window=10s").json()
        log("after the rollback: cluster a %s requests/s on the chart (b %s; the API says b %s)"
            % (rates[0], rates[1], tb.get("rate")))
        b.shot(P, "traffic-after-rollback")
    finally:
        blocker.close()
    # a narrow window: every view fits (tables and code scroll on their own)
    b.call("viewport", page=P, width=420, height=800)
    for view in ("proxies", "rollouts", "traffic", "config"):
        show(b, P, view)
        time.sleep(0.5)
        width = b.eval(P, "document.documentElement.scrollWidth")
        check(width <= 421, "%s fits a 420 px window (%d px)" % (view, width))
        b.shot(P, "narrow-" + view)
    no_page_errors(b, P, allow=(401, 403))


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    for f in os.listdir(ARTIFACTS):  # this run's screenshots only
        if f.endswith(".png") or f == "browser.log":
            os.unlink(os.path.join(ARTIFACTS, f))
    if not os.access(CHROMIUM, os.X_OK):
        print("SKIP: %s is not installed: scripts/install-deps.sh installs Debian's chromium"
              % CHROMIUM)
        sys.exit(SKIP)
    pw = os.path.join(HERE, "node_modules", "playwright-core", "package.json")
    check(os.path.exists(pw), "playwright-core is not installed in tests/ui: run "
          "scripts/install-deps.sh (it runs npm ci there)")
    run([test_serving, test_cluster_view, test_mesh_views])


if __name__ == "__main__":
    main()
