#!/usr/bin/env python3
"""Damaged files at start-up (issue 16).

Each case takes a data dir saved after acknowledged writes (node stopped or
killed), damages one file, starts the node with its usual command line and
checks the outcome: either it refuses to start (exit status 2, one line
naming the file and the damage, the files left as they were) or it starts
and serves every acknowledged write (recovering only from an interrupted
last write, which it logs). The cluster cases check that a refusing member
leaves the others serving and that it can be replaced (remove, wipe,
re-join), and that crashes alone never make a node refuse.

Functions: test_segments (open and closed segments), test_state (metadata,
raftplane-meta, snapshots, identity, raft-peers), test_replace_member,
test_crash_loop.
"""

import hashlib
import os
import random
import shutil
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rpharness import Cluster, check, log, run, wait_until  # noqa: E402

SECTOR = 512

# ---- the raft_uv segment format (canonical/raft 0.15) ----------------------------


def _crc_table():
    t = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else (c << 1)
            c &= 0xFFFFFFFF
        t.append(c)
    return t


_T = _crc_table()


def crc32(buf, c=0):
    """raft 0.15's CRC-32 (polynomial 0x04C11DB7, MSB first, no final xor)."""
    for b in buf:
        c = ((c << 8) & 0xFFFFFFFF) ^ _T[((c >> 24) ^ b) & 255]
    return c


class Batch:
    def __init__(self, off, n, hlen, dlen, entries):
        self.off, self.n, self.hlen, self.dlen, self.entries = off, n, hlen, dlen, entries

    @property
    def data_off(self):
        return self.off + 8 + self.hlen

    @property
    def end(self):
        return self.data_off + self.dlen


def batches(data):
    """The batches of a segment file, in order, and where they end."""
    off, out = 8, []
    while off + 16 <= len(data):
        _c1, _c2, n = struct.unpack_from("<IIQ", data, off)
        if n == 0 or n > 100000 or off + 8 + 8 + 16 * n > len(data):
            break
        ents = [struct.unpack_from("<QB3xI", data, off + 16 + 16 * i) for i in range(n)]
        b = Batch(off, n, 8 + 16 * n, sum(e[2] for e in ents), ents)
        out.append(b)
        off = b.end
    return out, off


def torn_batch(data, term, cut_align=SECTOR, value_len=3000, extra=0):
    """@data with one more batch appended after its last one, written only up
    to a sector boundary (plus @extra bytes): what a crash during that append
    leaves in a preallocated segment. The entry was never acknowledged."""
    _, end = batches(data)
    payload = bytes((i * 7) % 251 + 1 for i in range(value_len))
    payload += bytes((-len(payload)) % 8)
    hdr = struct.pack("<Q", 1) + struct.pack("<QB3xI", term, 1, len(payload))
    batch = struct.pack("<II", crc32(hdr), crc32(payload)) + hdr + payload
    cut = (end // cut_align + 1) * cut_align + extra
    assert end < cut < end + len(batch)
    d = bytearray(data)
    d[end:cut] = batch[:cut - end]
    return bytes(d), end


# ---- damage --------------------------------------------------------------------------


def rd(path):
    with open(path, "rb") as f:
        return f.read()


def wr(path, data):
    with open(path, "wb") as f:
        f.write(data)


def flip(path, off, bit=2):
    d = bytearray(rd(path))
    d[off] ^= 1 << bit
    wr(path, bytes(d))


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def zero(path, off, end=None):
    d = bytearray(rd(path))
    end = len(d) if end is None else end
    d[off:end] = bytes(end - off)
    wr(path, bytes(d))


def dir_digest(path):
    out = {}
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        if os.path.isfile(p):
            out[name] = hashlib.sha256(rd(p)).hexdigest()
    return out


# ---- fixtures: data dirs saved after acknowledged writes -----------------------------


class Fixture:
    """A cluster of n nodes that took acknowledged writes, then stopped
    (mode "stop") or was killed ("kill") after the last stored index was
    recorded; every node's data dir is saved. case() restores one, damages
    it and starts that node."""

    def __init__(self, name, n=1, writes=20, big=(), args=(), mode="stop"):
        self.c = Cluster(n, extra_args=list(args), name=name, election_timeout_ms=500,
                         heartbeat_ms=50)
        self.acked = {}
        lead = self.c.leader()
        for i in range(writes):
            key, value = "k%d" % i, "value-%d" % i
            if i in big:
                value = value + "-" + "x" * 2500
            r = self.c.request(lead, "PUT", "/v1/kv/" + key, body=value)
            check(r.status == 200, "write %s" % key, r)
            self.acked[key] = value.encode()
        self.c.wait_ready()
        if mode == "kill":
            time.sleep(1.6)  # raftplane-meta records the last stored index each second
            for node in self.c.nodes.values():
                self.c.kill(node)
        else:
            for node in self.c.nodes.values():
                self.c.stop(node)
        self.saved = {}
        for node in self.c.nodes.values():
            self.saved[node.id] = node.data_dir + ".saved"
            shutil.copytree(node.data_dir, self.saved[node.id])
        self.n_refused = self.n_started = 0

    def path(self, node_id, name):
        return os.path.join(self.c.nodes[node_id].data_dir, name)

    def files(self, node_id, pred=lambda f: True):
        return sorted(f for f in os.listdir(self.saved[node_id]) if pred(f))

    def restore(self, node_id):
        d = self.c.nodes[node_id].data_dir
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(self.saved[node_id], d)

    def case(self, what, damage, expect, words=(), node_id=1, after=None):
        """Restore node_id's dir, damage(dir) it, start it alone (all nodes
        for a multi-node fixture when it should start) and check @expect:
        "refuse" (every string of @words in the one error line) or "start"
        (every acknowledged write served; @words in the log)."""
        for i in self.c.nodes:
            self.restore(i)
        damage(self.c.nodes[node_id].data_dir)
        node = self.c.nodes[node_id]
        before = dir_digest(node.data_dir)
        outcome, rc = self.c.restart_outcome(node)
        text = node.current_log()
        if expect in ("refuse", "refuse-other"):
            check(outcome == "exited", "%s: expected a refusal, the node started" % what,
                  text[-1500:])
            mark = "is damaged:" if expect == "refuse" else "raftplane-server: "
            lines = [ln for ln in text.splitlines() if mark in ln]
            check(rc == 2 and len(lines) == 1,
                  "%s: expected exit 2 with one %r line, got %s, %d lines" % (
                      what, mark, rc, len(lines)), text[-1500:])
            for w in words:
                check(w in lines[0], "%s: %r not in the message" % (what, w), lines[0])
            check(dir_digest(node.data_dir) == before, "%s: the refusal changed files" % what)
            log("  refuse  %-44s %s" % (what, lines[0].split(mark, 1)[1][:150]))
            self.n_refused += 1
            return lines[0]
        check(outcome == "serving", "%s: expected the node to start, it exited with %s" % (
            what, rc), text[-1500:])
        others = [n for n in self.c.nodes.values() if n.id != node_id]
        for other in others:
            self.c.restart(other)
        self.c.wait_ready(timeout=30)
        self.c.wait_applied(node, self.c.status(self.c.leader())["revision"])
        for key, value in self.acked.items():
            r = self.c.request(node, "GET", "/v1/kv/%s?consistency=stale" % key)
            check(r.status == 200 and r.body == value,
                  "%s: acknowledged %s not served after the start" % (what, key), r)
        for w in words:
            check(w in node.current_log(), "%s: %r not logged" % (what, w), text[-1500:])
        if after:
            after(node)
        warn = [ln for ln in node.current_log().splitlines() if "WARN" in ln and "data dir" in ln]
        log("  start   %-44s %s" % (what, warn[0].split(": ", 1)[1][:150] if warn else "ok"))
        for n in self.c.nodes.values():
            self.c.stop(n)
        self.n_started += 1

    def close(self):
        self.c.close()


# ---- segments ---------------------------------------------------------------------------


def segment_cases(fx_open, fx_closed):
    k = fx_open
    open1 = "open-1"
    data = rd(os.path.join(k.saved[1], open1))
    bs, end = batches(data)
    cmds = [b for b in bs if b.entries[0][1] == 1]
    mid, last = cmds[len(cmds) // 2], bs[-1]
    term = bs[-1].entries[0][0]
    check(len(bs) > 20 and end < SECTOR * 16, "open-1 holds %d batches up to %d" % (len(bs), end))

    def at(name, fn):
        return lambda d: fn(os.path.join(d, name))

    k.case("open: no damage", lambda d: None, "start")

    def torn(d, **kw):
        newd, e = torn_batch(rd(os.path.join(d, open1)), term, **kw)
        wr(os.path.join(d, open1), newd)
        torn.at = e

    def restart_again(node):
        # raft cut the interrupted write off and closed the segment: a second
        # start finds nothing to discard
        k.c.stop(node)
        outcome, _ = k.c.restart_outcome(node)
        check(outcome == "serving" and "discarding" not in node.current_log(),
              "second start after the torn write", node.current_log()[-800:])
        r = k.c.request(node, "PUT", "/v1/kv/after-torn", body="ok")
        check(r.status == 200, "write after the recovery", r)

    k.case("open: interrupted last write (sector)", torn, "start",
           ["discarding an interrupted last write", "never acknowledged"], after=restart_again)
    k.case("open: interrupted write, 2 sectors", lambda d: torn(d, cut_align=SECTOR * 2),
           "start", ["discarding an interrupted last write"])
    big = [b for b in bs if b.dlen > 2 * SECTOR][0]
    hole = (big.data_off // SECTOR + 1) * SECTOR
    check(big is not bs[-1] and hole + SECTOR < big.end, "a big entry before the last one")
    k.case("open: a zeroed sector inside a complete entry",
           at(open1, lambda p: zero(p, hole, hole + SECTOR)), "refuse",
           [open1, "at byte %d" % big.off, "not an interrupted write"])
    k.case("open: an interrupted write, sectors out of order", lambda d: (
        torn(d, cut_align=SECTOR * 4), zero(os.path.join(d, open1), torn.at // SECTOR * SECTOR
                                            + SECTOR, torn.at // SECTOR * SECTOR + 2 * SECTOR)),
        "start", ["discarding an interrupted last write"])
    k.case("open: an interrupted write, then data again", lambda d: (
        torn(d), flip(os.path.join(d, open1), torn.at + 8 * SECTOR)), "refuse",
        [open1, "not an interrupted write (data after the batch)"])
    k.case("open: flipped bit in a middle entry", at(open1, lambda p: flip(p, mid.data_off + 5)),
           "refuse", [open1, "flipped bit in entry data at byte %d" % (mid.data_off + 5)])
    k.case("open: flipped bit in the last entry", at(open1, lambda p: flip(p, last.data_off + 3)),
           "refuse", [open1, "flipped bit in entry data at byte %d" % (last.data_off + 3)])
    k.case("open: flipped bit in a batch header (term)",
           at(open1, lambda p: flip(p, mid.off + 16)), "refuse",
           [open1, "header checksum mismatch", "batch header at byte %d" % (mid.off + 16)])
    k.case("open: flipped bit in the entry count",
           at(open1, lambda p: flip(p, mid.off + 8, bit=3)), "refuse",
           [open1, "entry count at byte %d" % (mid.off + 8)])
    k.case("open: flipped bit in a stored checksum", at(open1, lambda p: flip(p, mid.off + 5)),
           "refuse", [open1, "stored data checksum at byte %d" % (mid.off + 4)])
    k.case("open: flipped bit in the format", at(open1, lambda p: flip(p, 0, bit=1)), "refuse",
           [open1, "bad format version at byte 0"])
    k.case("open: truncated inside a header", at(open1, lambda p: truncate(p, mid.off + 12)),
           "refuse", [open1, "truncated to %d bytes" % (mid.off + 12)])
    k.case("open: truncated inside an entry", at(open1, lambda p: truncate(p, mid.data_off + 4)),
           "refuse", [open1, "truncated to %d bytes" % (mid.data_off + 4)])
    k.case("open: truncated at a batch boundary", at(open1, lambda p: truncate(p, mid.off)),
           "refuse", ["were lost"])
    k.case("open: last batch zeroed (it was stored)", at(open1, lambda p: zero(p, last.off)),
           "refuse", ["were lost"])
    k.case("open: zero-length", at(open1, lambda p: truncate(p, 0)), "refuse",
           [open1, "empty (0 bytes)"])
    k.case("open: garbage", at(open1, lambda p: wr(p, random.Random(1).randbytes(1 << 20))),
           "refuse", [open1, "bad format version"])
    k.case("open: a stray byte after the last entry",
           at(open1, lambda p: flip(p, end + 3 * SECTOR + 7)), "refuse",
           [open1, "with data up to byte %d" % (end + 3 * SECTOR + 8)])

    c = fx_closed
    seg = c.files(1, lambda f: f[0].isdigit() and not f.endswith("0001-0000000000000001"))[-1]
    cdata = rd(os.path.join(c.saved[1], seg))
    cb, cend = batches(cdata)
    check(cend == len(cdata) and len(cb) > 20, "closed segment %s parses" % seg)
    ccmds = [b for b in cb if b.dlen > 16]  # commands, not 8-byte barriers
    cm, cl = ccmds[len(ccmds) // 2], cb[-1]
    c.case("closed: no damage", lambda d: None, "start")
    c.case("closed: flipped bit in an entry", at(seg, lambda p: flip(p, cm.data_off + 6)),
           "refuse", [seg, "flipped bit in entry data at byte %d" % (cm.data_off + 6)])
    c.case("closed: flipped bit in the last entry", at(seg, lambda p: flip(p, cl.data_off)),
           "refuse", [seg, "flipped bit in entry data at byte %d" % cl.data_off])
    c.case("closed: flipped bit in a header checksum", at(seg, lambda p: flip(p, cm.off + 1)),
           "refuse", [seg, "stored header checksum at byte %d" % cm.off])
    c.case("closed: flipped bit in a header (length)",
           at(seg, lambda p: flip(p, cm.off + 8 + 8 + 12, bit=4)), "refuse",
           [seg, "header checksum mismatch"])
    c.case("closed: truncated inside a header", at(seg, lambda p: truncate(p, cm.off + 20)),
           "refuse", [seg, "the file ends inside the batch header"])
    c.case("closed: truncated inside an entry", at(seg, lambda p: truncate(p, cm.data_off + 8)),
           "refuse", [seg, "the file ends inside the batch data"])
    c.case("closed: truncated at its last batch", at(seg, lambda p: truncate(p, cl.off)),
           "refuse", [seg, "its name says"])
    c.case("closed: zero-length", at(seg, lambda p: truncate(p, 0)), "refuse",
           [seg, "closed segment is empty"])
    c.case("closed: missing", at(seg, os.unlink), "refuse", ["were lost"])
    c.case("closed: garbage", at(seg, lambda p: wr(p, random.Random(2).randbytes(4096))),
           "refuse", [seg, "bad format version"])
    c.case("closed: set aside by libraft's auto-recovery",
           lambda d: os.rename(os.path.join(d, seg), os.path.join(d, "corrupt-1-" + seg)),
           "refuse", ["corrupt-1-" + seg, "auto-recovery"])
    c.case("an unknown file in the data dir",
           lambda d: wr(os.path.join(d, "notes.txt"), b"operator notes\n"), "start")


def test_segments():
    fx_open = Fixture("open", writes=30, big=(25,), mode="kill")
    fx_closed = Fixture("closed", writes=30)
    try:
        segment_cases(fx_open, fx_closed)
        log("segments: %d refused, %d started" % (
            fx_open.n_refused + fx_closed.n_refused, fx_open.n_started + fx_closed.n_started))
    finally:
        fx_open.close()
        fx_closed.close()


# ---- metadata, raftplane-meta, snapshots, identity, raft-peers -------------------------


def meta_file(path):
    fmt, version, term, vote = struct.unpack("<QQQQ", rd(path))
    return {"format": fmt, "version": version, "term": term, "vote": vote}


def write_sidecar(path, version, term, vote, stored):
    body = b"RPMETA1\0" + struct.pack("<QQQQ", version, term, vote, stored)
    wr(path, body + struct.pack("<I", crc32(body)) + bytes(4))


def state_cases(fx_one, fx_three, fx_snap):
    one, three, s = fx_one, fx_three, fx_snap

    def at(name, fn):
        return lambda d: fn(os.path.join(d, name))

    # metadata: a 3-node member holds both files
    nid = 1
    m1 = meta_file(os.path.join(three.saved[nid], "metadata1"))
    m2 = meta_file(os.path.join(three.saved[nid], "metadata2"))
    newer = "metadata1" if m1["version"] > m2["version"] else "metadata2"
    older = "metadata2" if newer == "metadata1" else "metadata1"
    mo = m2 if newer == "metadata1" else m1
    log("node%d: metadata1 %s, metadata2 %s" % (nid, m1, m2))
    check(max(m1["version"], m2["version"]) >= 3, "the member voted or moved terms")
    three.case("metadata: no damage", lambda d: None, "start", node_id=nid)
    three.case("metadata1 zero-length", at("metadata1", lambda p: truncate(p, 0)), "refuse",
               ["metadata1: 0 bytes instead of 32"], node_id=nid)
    three.case("metadata2 truncated", at("metadata2", lambda p: truncate(p, 20)), "refuse",
               ["metadata2: 20 bytes instead of 32"], node_id=nid)
    three.case("newest metadata: flipped bit in the term", at(newer, lambda p: flip(p, 16, 0)),
               "refuse", [newer, "damaged"], node_id=nid)
    three.case("newest metadata: flipped bit in the vote", at(newer, lambda p: flip(p, 24, 1)),
               "refuse", [newer, "damaged"], node_id=nid)
    three.case("newest metadata: flipped bit in the version", at(newer, lambda p: flip(p, 8, 0)),
               "refuse", [newer, "damaged"], node_id=nid)
    three.case("older metadata: version raised past the newest",
               at(older, lambda p: flip(p, 14, 0)), "refuse", ["damaged"], node_id=nid)
    three.case("metadata2 missing", at("metadata2", os.unlink), "refuse",
               ["metadata2 is missing"], node_id=nid)
    three.case("metadata1 missing", at("metadata1", os.unlink), "refuse",
               ["metadata1 is missing"], node_id=nid)
    three.case("both metadata files missing",
               lambda d: [os.unlink(os.path.join(d, f)) for f in ("metadata1", "metadata2")],
               "refuse", ["metadata1 and metadata2 are missing"], node_id=nid)
    three.case("metadata1 garbage", at("metadata1", lambda p: wr(p, os.urandom(32))), "refuse",
               ["metadata1"], node_id=nid)
    three.case("raftplane-meta garbage", at("raftplane-meta", lambda p: wr(p, os.urandom(48))),
               "refuse", ["raftplane-meta: damaged"], node_id=nid)
    three.case("raftplane-meta missing (weaker checks)", at("raftplane-meta", os.unlink),
               "start", node_id=nid,
               after=lambda node: check(os.path.exists(os.path.join(node.data_dir,
                                                                    "raftplane-meta")),
                                        "raftplane-meta written again"))
    # raft wrote its newest metadata file, the node died before raftplane-meta
    # followed: raftplane-meta still holds the older file's content
    three.case("crash between a metadata write and raftplane-meta",
               at("raftplane-meta", lambda p: write_sidecar(p, mo["version"], mo["term"],
                                                            mo["vote"], 1)),
               "start", node_id=nid)
    three.case("raft-peers garbage (a hint only)",
               at("raft-peers", lambda p: wr(p, b"\x00\xffgarbage\n7 not-an-address\n")),
               "start", ["skipped"], node_id=nid)
    # a single node holds only metadata1 at version 1; metadata2 caught at its
    # creation is what a crash leaves
    one.case("metadata2 caught at creation (0 bytes)",
             lambda d: wr(os.path.join(d, "metadata2"), b""), "start",
             ["interrupted creation"])
    one.case("raftplane-id missing", at("raftplane-id", os.unlink), "refuse",
             ["raftplane-id is missing"])
    one.case("raftplane-id empty", at("raftplane-id", lambda p: wr(p, b"")), "refuse",
             ["raftplane-id: damaged"])
    one.case("raftplane-id garbage", at("raftplane-id", lambda p: wr(p, b"\x01\x02zz")),
             "refuse", ["raftplane-id: damaged"])
    one.case("raftplane-id of another node", at("raftplane-id", lambda p: wr(p, b"7\n")),
             "refuse-other", ["belongs to node 7, not 1"])

    # snapshots
    snaps = s.files(1, lambda f: f.startswith("snapshot-") and not f.endswith(".meta"))
    check(len(snaps) == 2, "two snapshots kept: %s" % snaps)
    new = snaps[-1]
    size = os.path.getsize(os.path.join(s.saved[1], new))
    s.case("snapshot: no damage", lambda d: None, "start")
    s.case("snapshot: flipped bit in the data", at(new, lambda p: flip(p, size // 2)), "refuse",
           [new, "LZ4 frame"])
    s.case("snapshot: flipped bit in the content checksum", at(new, lambda p: flip(p, size - 2)),
           "refuse", [new, "content checksum mismatch"])
    s.case("snapshot: flipped bit in the magic", at(new, lambda p: flip(p, 1)), "refuse",
           [new, "magic"])
    s.case("snapshot: truncated data", at(new, lambda p: truncate(p, size // 2)), "refuse",
           [new, "truncated"])
    s.case("snapshot: zero-length data", at(new, lambda p: truncate(p, 0)), "refuse",
           [new, "empty (0 bytes"])
    s.case("snapshot: garbage data", at(new, lambda p: wr(p, os.urandom(size))), "refuse",
           [new])
    # without its data file the newest snapshot is an interrupted write: raft
    # falls back to the older one, which the log may or may not still reach
    first = min(int(f.split("-")[0]) for f in s.files(1, lambda f: f[0].isdigit()))
    older_index = int(snaps[0].split("-")[2])
    if first <= older_index + 1:
        s.case("snapshot: data missing, log reaches the older one", at(new, os.unlink), "start",
               ["interrupted snapshot write"])
    else:
        s.case("snapshot: data missing, log compacted", at(new, os.unlink), "refuse",
               ["are missing"])
    s.case("snapshot: .meta missing", at(new + ".meta", os.unlink), "refuse",
           [new + ".meta is missing"])
    s.case("snapshot: flipped bit in .meta", at(new + ".meta", lambda p: flip(p, 40)), "refuse",
           [new + ".meta: checksum mismatch"])
    s.case("snapshot: zero-length .meta", at(new + ".meta", lambda p: truncate(p, 0)), "refuse",
           [new + ".meta: 0 bytes"])
    s.case("snapshot: garbage .meta", at(new + ".meta", lambda p: wr(p, os.urandom(72))),
           "refuse", [new + ".meta"])
    s.case("snapshot: every snapshot missing",
           lambda d: [os.unlink(os.path.join(d, f)) for f in snaps], "refuse", ["are missing"])
    # raft writes the .meta first: a crash before the data leaves an orphan
    _, t, i, ts = new.split("-")
    orphan = "snapshot-%s-%d-%s.meta" % (t, int(i) + 5, ts)
    s.case("snapshot: interrupted snapshot write (.meta only)",
           lambda d: shutil.copy(os.path.join(d, new + ".meta"), os.path.join(d, orphan)),
           "start", ["interrupted snapshot write"])


def test_state():
    fx_one = Fixture("one", writes=10)
    fx_three = Fixture("three", n=3, writes=10)
    fx_snap = Fixture("snap", writes=90, args=["--snapshot-threshold", "32",
                                                "--snapshot-trailing", "8"])
    try:
        state_cases(fx_one, fx_three, fx_snap)
        log("state: %d refused, %d started" % (
            sum(f.n_refused for f in (fx_one, fx_three, fx_snap)),
            sum(f.n_started for f in (fx_one, fx_three, fx_snap))))
    finally:
        for f in (fx_one, fx_three, fx_snap):
            f.close()


# ---- replacing a member whose data is damaged ---------------------------------------------


def read_all(c, node, acked):
    for key, value in acked.items():
        r = c.request(node, "GET", "/v1/kv/%s?consistency=stale" % key)
        check(r.status == 200 and r.body == value, "%r does not serve %s" % (node, key), r)


def test_replace_member():
    """docs/operations.md, replacing a member: a follower's log is damaged;
    it refuses to start, the others keep serving; remove it, wipe its data
    dir, start it again with --join: it serves every acknowledged write,
    those from before the damage and those after."""
    with Cluster(3, election_timeout_ms=500, heartbeat_ms=50, name="replace") as c:
        acked = {}

        def write(tag, n):
            for i in range(n):
                key, value = "%s-%d" % (tag, i), ("%s value %d" % (tag, i)).encode()
                r = c.request(c.leader(), "PUT", "/v1/kv/" + key, body=value)
                check(r.status == 200, "write %s" % key, r)
                acked[key] = value
        write("before", 40)
        victim = c.followers()[0]
        c.wait_applied(victim, c.status(c.leader())["revision"])
        c.stop(victim)
        segs = sorted(f for f in os.listdir(victim.data_dir)
                      if f[0].isdigit() and not f.startswith("0000000000000001-"))
        data = rd(os.path.join(victim.data_dir, segs[-1]))
        bs, _ = batches(data)
        target = bs[len(bs) // 2]
        flip(os.path.join(victim.data_dir, segs[-1]), target.data_off + 2)
        outcome, rc = c.restart_outcome(victim)
        check(outcome == "exited" and rc == 2, "damaged member refused (%s %s)" % (outcome, rc),
              victim.current_log()[-800:])
        log("refused: %s" % [ln for ln in victim.current_log().splitlines()
                             if "is damaged" in ln][0][:200])
        write("during", 20)  # a majority is left: the cluster keeps serving
        r = c.request(c.leader(), "DELETE", "/v1/members/%d" % victim.id)
        check(r.status in (200, 204), "remove the damaged member", r)
        victim.removed = True
        shutil.rmtree(victim.data_dir)
        c.rejoin(victim)
        write("after", 20)
        rev = c.status(c.leader())["revision"]
        c.wait_applied(victim, rev, timeout=30)
        read_all(c, victim, acked)
        c.wait_ready()
        for n in c.running():
            read_all(c, n, acked)
        log("re-joined node%d serves all %d acknowledged writes" % (victim.id, len(acked)))


# ---- crashes alone never make a node refuse -------------------------------------------------


def test_crash_loop():
    """SIGKILL members of a 3-node cluster under write load, again and
    again: every restart must pass the start-up check (no false refusal),
    and no acknowledged write may go missing."""
    rounds = int(os.environ.get("RP_CRASH_ROUNDS", "10"))
    args = ["--snapshot-threshold", "48", "--snapshot-trailing", "12"]
    with Cluster(3, extra_args=args, election_timeout_ms=400, heartbeat_ms=50,
                 name="crash") as c:
        acked, lock, stop = {}, threading.Lock(), threading.Event()

        def writer(t):
            i = 0
            while not stop.is_set():
                key, value = "w%d-%d" % (t, i % 25), b"v%d-%d" % (t, i)
                for node in c.running():
                    r = c.try_request(node, "PUT", "/v1/kv/" + key, body=value, timeout=3)
                    if r is not None and r.status == 200:
                        with lock:
                            acked[key] = value
                        break
                i += 1
        ths = [threading.Thread(target=writer, args=(t,), daemon=True) for t in range(3)]
        for th in ths:
            th.start()
        rng = random.Random(16)
        for rnd in range(rounds):
            time.sleep(rng.uniform(0.2, 0.8))
            victim = c.nodes[rng.randint(1, 3)]
            c.kill(victim)
            time.sleep(rng.uniform(0.0, 0.5))
            outcome, rc = c.restart_outcome(victim)
            check(outcome == "serving", "round %d: %r refused after a crash (%s)" % (
                rnd, victim, rc), victim.current_log()[-1500:])
            c.wait_ready(timeout=30)
        stop.set()
        for th in ths:
            th.join()
        c.wait_ready(timeout=30)
        lead = c.leader()
        r = c.request(lead, "PUT", "/v1/kv/final", body="x")
        check(r.status == 200, "final write", r)
        rev = c.status(lead)["revision"]
        for n in c.running():
            c.wait_applied(n, rev)
            with lock:
                snapshot = dict(acked)
            for key, value in snapshot.items():
                g = c.request(n, "GET", "/v1/kv/%s?consistency=stale" % key)
                # a later write to the key may have been applied without its
                # acknowledgement reaching us: same writer, higher counter
                check(g.status == 200 and g.body.startswith(value.split(b"-")[0] + b"-") and
                      int(g.body.split(b"-")[1]) >= int(value.split(b"-")[1]),
                      "%r lost the acknowledged %s=%s" % (n, key, value), g)
        log("%d crash rounds, %d keys acknowledged, no refusal" % (rounds, len(acked)))


if __name__ == "__main__":
    run([test_segments, test_state, test_replace_member, test_crash_loop])
