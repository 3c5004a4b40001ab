#!/usr/bin/env python3
"""The web dashboard (/ui/, issue 14) in a real browser: Debian's headless
chromium driven by playwright-core (tests/ui/browser.js, installed by
scripts/install-deps.sh with `npm ci`), against real raftplane-server
clusters, real raftplane-proxy processes and real backends on 127.0.0.1
(tests/proxy/proxyharness.py, tests/integration/rpharness.py).

- serving: /ui redirects, files with ETag / 304, CSP and nosniff, 404 for
  other names, no token needed for the files while the API needs one;
- the page loads on every member and shows three members and the same
  leader; SIGKILL the leader: the page shows the new leader within 3 s of
  the election and marks the dead member within 2 s of the kill;
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
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from proxyharness import Env, check, log, run, wait_until  # noqa: E402
from rpharness import TestFailure, http_request  # noqa: E402

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


def no_page_errors(b, page):
    errs = b.errors(page)
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
    run([test_serving, test_cluster_view])


if __name__ == "__main__":
    main()
