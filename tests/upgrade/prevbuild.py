"""Build the previous release (tests/upgrade/previous-release) from the
repository's own git history, once per commit, into a cache under the build
directory (Python 3 standard library only).

    python3 prevbuild.py SOURCE_DIR CACHE_DIR   # prints the bin dir

The cache is CACHE_DIR/<hash>/bin with raftplane-server, raftplane-proxy and
raftplane-demo-backend (a Release build, no sanitizers, -j2), complete only
once CACHE_DIR/<hash>/done exists; a second run reuses it. Concurrent runs
serialise on CACHE_DIR/<hash>.lock. When git or the commit is missing (a
shallow clone), build() raises Unavailable with the reason.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ("raftplane-server", "raftplane-proxy", "raftplane-demo-backend")
BINS = {"raftplane-server": "server", "raftplane-proxy": "proxy",
        "raftplane-demo-backend": "proxy"}


class Unavailable(Exception):
    """The previous release cannot be built here (no git, shallow clone)."""


def previous_release():
    """The 40-hex commit of tests/upgrade/previous-release."""
    with open(os.path.join(HERE, "previous-release")) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1 or len(lines[0]) != 40 or any(c not in "0123456789abcdef"
                                                     for c in lines[0]):
        raise ValueError("tests/upgrade/previous-release: want one 40-hex commit line, got %r"
                         % lines)
    return lines[0]


def _git(source, *args):
    return subprocess.run(["git", "-C", source] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def check_available(source, commit):
    if shutil.which("git") is None:
        raise Unavailable("git is not installed: cannot build the previous release %s" % commit)
    r = _git(source, "rev-parse", "--is-shallow-repository")
    if r.returncode != 0:
        raise Unavailable("%s is not a git checkout (%s): cannot build the previous release %s"
                          % (source, r.stderr.strip(), commit))
    if _git(source, "cat-file", "-e", commit + "^{commit}").returncode != 0:
        shallow = r.stdout.strip() == "true"
        raise Unavailable("commit %s (tests/upgrade/previous-release) is not in %s%s" % (
            commit, source, " (a shallow clone: fetch with --unshallow)" if shallow else ""))


def build(source, cache, log=print):
    """The bin dir of the previous release, built unless cached."""
    commit = previous_release()
    check_available(source, commit)
    top = os.path.join(cache, commit)
    bindir = os.path.join(top, "bin")
    os.makedirs(cache, exist_ok=True)
    with open(top + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(top, "done")):
            log("previous release %s: cached in %s" % (commit[:12], bindir))
            return bindir
        t0 = time.monotonic()
        shutil.rmtree(top, ignore_errors=True)
        src, bld = os.path.join(top, "src"), os.path.join(top, "build")
        os.makedirs(src)
        log("previous release %s: building into %s (once)" % (commit[:12], top))
        archive = subprocess.Popen(["git", "-C", source, "archive", commit],
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
        archive.stdout.close()
        if archive.wait() != 0:
            raise RuntimeError("git archive %s failed" % commit)
        out = open(os.path.join(top, "build.log"), "w")
        try:
            subprocess.run(["cmake", "-S", src, "-B", bld, "-DCMAKE_BUILD_TYPE=Release",
                            "-DRP_SANITIZE=OFF", "-DRP_WERROR=OFF", "-DRP_WITH_JEPSEN=OFF"],
                           stdout=out, stderr=subprocess.STDOUT, check=True)
            for t in TARGETS:
                subprocess.run(["cmake", "--build", bld, "-j2", "--target", t], stdout=out,
                               stderr=subprocess.STDOUT, check=True)
        except subprocess.CalledProcessError as e:
            raise RuntimeError("building the previous release failed (%s): see %s" % (
                e, os.path.join(top, "build.log")))
        finally:
            out.close()
        os.makedirs(bindir)
        for t, folder in BINS.items():
            shutil.copy2(os.path.join(bld, folder, t), os.path.join(bindir, t))
        shutil.rmtree(bld, ignore_errors=True)  # the binaries are all we keep
        shutil.rmtree(src, ignore_errors=True)
        with open(os.path.join(top, "done"), "w") as f:
            f.write("built in %.0f s\n" % (time.monotonic() - t0))
        log("previous release %s: built in %.0f s" % (commit[:12], time.monotonic() - t0))
        return bindir


if __name__ == "__main__":
    print(build(sys.argv[1], sys.argv[2], log=lambda *a: print(*a, file=sys.stderr)))
