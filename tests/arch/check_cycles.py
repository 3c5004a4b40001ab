#!/usr/bin/env python3
"""No two files of one folder import each other in a circle.
Usage: check_cycles.py SOURCE_DIR [FOLDER...]

A module is a pair x.c/x.h of one folder. Module x depends on module y of
the same folder when x.c or x.h includes "y.h". Every strongly connected
set of more than one module (a circle, direct or through others) is an
offence; exit 1 listing each circle.
"""
import os
import re
import sys

FOLDERS = ["common", "net", "storage", "raft", "api", "server", "proxy"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)\.h"', re.M)


def graph(path):
    files = [f for f in os.listdir(path) if f.endswith((".c", ".h"))]
    mods = {os.path.splitext(f)[0] for f in files}
    deps = {m: set() for m in mods}
    for f in files:
        m = os.path.splitext(f)[0]
        text = open(os.path.join(path, f), encoding="utf-8").read()
        for inc in INCLUDE.findall(text):
            if inc in mods and inc != m:
                deps[m].add(inc)
    return deps


def circles(deps):
    """Tarjan's strongly connected components, those of two or more."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1]
    folders = sys.argv[2:] or FOLDERS
    bad = 0
    for folder in folders:
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            continue
        deps = graph(path)
        for comp in circles(deps):
            bad += 1
            edges = ", ".join(f"{a}->{b}" for a in comp for b in sorted(deps[a]) if b in comp)
            print(f"{folder}/: circle between {', '.join(comp)} ({edges})")
    if bad:
        print(f"FAIL: {bad} include circle(s)")
        return 1
    print("ok: no include circles within a folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
