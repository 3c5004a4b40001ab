#!/usr/bin/env python3
"""Each layer includes only the headers of the layers below it
(docs/architecture.md). Usage: check_layers.py SOURCE_DIR

A quoted #include "x.h" in a file of folder F must name a header of F itself,
of a folder F may depend on, include/ (raftplane/...) or the generated
protobuf header (raftplane.pb-c.h, built from net/raftplane.proto). A header
name found in several folders is fine when one of them is allowed. Exit 1
listing every offence.
"""
import os
import re
import sys

# folder -> folders whose headers it may include (besides its own)
ALLOWED = {
    "net": set(),
    "storage": {"net"},
    "raft": {"net", "storage"},
    "api": {"net", "storage", "raft"},
    "server": {"net", "storage", "raft", "api"},
    "proxy": {"net"},
}
GENERATED = {"raftplane.pb-c.h": "net"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main():
    root = sys.argv[1]
    owners = {h: {f} for h, f in GENERATED.items()}  # header name -> folders holding it
    for folder in ALLOWED:
        for f in os.listdir(os.path.join(root, folder)):
            if f.endswith(".h"):
                owners.setdefault(f, set()).add(folder)
    offences = []
    for folder, allowed in ALLOWED.items():
        for f in sorted(os.listdir(os.path.join(root, folder))):
            if not f.endswith((".c", ".h")):
                continue
            text = open(os.path.join(root, folder, f), encoding="utf-8").read()
            for inc in INCLUDE.findall(text):
                if inc.startswith("raftplane/"):
                    continue  # include/raftplane: shared by all
                deps = owners.get(inc)
                if deps is None:
                    offences.append(f"{folder}/{f}: includes unknown header \"{inc}\"")
                elif not deps & (allowed | {folder}):
                    where = ", ".join(f"{d}/{inc}" for d in sorted(deps))
                    offences.append(f"{folder}/{f}: includes {where} "
                                    f"({folder}/ may use {', '.join(sorted(allowed)) or 'nothing'})")
    for o in offences:
        print(o)
    if offences:
        print(f"FAIL: {len(offences)} layering offence(s)")
        return 1
    print("ok: every include follows the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
