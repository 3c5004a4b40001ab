#!/usr/bin/env python3
"""The data plane is built from the network layer alone (docs/architecture.md).

For each binary given: no NEEDED entry (readelf -d) names libraft or
libsqlite3, and no symbol (nm, defined or undefined) belongs to consensus,
storage or the REST API: rp_node_*, rp_store_*, rp_mesh_*, rp_api_*,
rp_transport_*, raft_*, sqlite3_*. Exit 1 listing every offence.
"""
import argparse
import re
import subprocess
import sys

FORBIDDEN_LIBS = re.compile(r"^lib(raft|sqlite3)\.so")
FORBIDDEN_SYMS = re.compile(r"^(rp_node_|rp_store_|rp_mesh_|rp_api_|rp_transport_|raft_|sqlite3_)")


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout


def needed(readelf, binary):
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run([readelf, "-d", binary]))
    if not libs:
        raise SystemExit(f"{binary}: readelf found no NEEDED entry (not a dynamic ELF?)")
    return libs


def symbols(nm, binary):
    names = []
    for line in run([nm, binary]).splitlines():
        fields = line.split()
        if fields:
            names.append(fields[-1].split("@")[0])
    if not names:
        raise SystemExit(f"{binary}: nm found no symbols (stripped?)")
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--readelf", default="readelf")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    offences = []
    for b in a.binaries:
        for lib in needed(a.readelf, b):
            if FORBIDDEN_LIBS.match(lib):
                offences.append(f"{b}: links {lib}")
        bad = sorted({s for s in symbols(a.nm, b) if FORBIDDEN_SYMS.match(s)})
        for s in bad:
            offences.append(f"{b}: carries symbol {s}")
    for o in offences:
        print(o)
    if offences:
        print(f"FAIL: {len(offences)} layering offence(s)")
        return 1
    print(f"ok: {len(a.binaries)} binaries link neither raft nor SQLite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
