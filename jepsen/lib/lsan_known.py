#!/usr/bin/env python3
"""Does a node log's LeakSanitizer report hold only the known libraft 0.15
leak (docs/design.md, known risk 8)? Usage: lsan_known.py NODE.log

canonical/raft 0.15 does not free a log truncation (struct uvTruncate, 48
bytes, allocated by uvTruncate inside libraft) that still waits for its
barrier when raft_close() runs. With Debian's libraft (no frame pointers)
the report shows exactly: a direct leak of 48 bytes in 1 object, frame #0
the malloc interceptor, frame #1 in libraft.so, no further frame.

Prints "known" and exits 0 when the log has LeakSanitizer reports and every
leak in them is that one; prints "other" and exits 1 otherwise (no report,
any other leak, or any other sanitizer error)."""
import re
import sys

LEAK = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)")
FRAME = re.compile(r"^\s+#(\d+) 0x[0-9a-f]+ +(.*)$")


def main():
    lines = open(sys.argv[1], errors="replace").read().splitlines()
    if not any("ERROR: LeakSanitizer" in ln for ln in lines):
        print("other")
        return 1
    if any(p in ln for ln in lines for p in ("ERROR: AddressSanitizer", "runtime error:",
                                             "Assertion")):
        print("other")
        return 1
    leaks, cur = [], None
    for ln in lines:
        m = LEAK.match(ln)
        if m:
            cur = {"kind": m.group(1), "bytes": int(m.group(2)), "objs": int(m.group(3)),
                   "frames": []}
            leaks.append(cur)
            continue
        f = FRAME.match(ln)
        if f and cur is not None:
            cur["frames"].append(f.group(2))
        elif not ln.strip():
            cur = None
    known = bool(leaks) and all(
        lk["kind"] == "Direct" and lk["bytes"] == 48 and lk["objs"] == 1 and
        len(lk["frames"]) == 2 and "malloc" in lk["frames"][0] and
        "libraft.so" in lk["frames"][1] for lk in leaks)
    print("known" if known else "other")
    return 0 if known else 1


if __name__ == "__main__":
    sys.exit(main())
