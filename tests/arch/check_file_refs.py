#!/usr/bin/env python3
"""Every file path that a comment or a doc names exists.
Usage: check_file_refs.py SOURCE_DIR

Looks in the sources (.c .h .proto .py .sh .cmake CMakeLists.txt) and the
Markdown docs for words of the form FOLDER/NAME.EXT, where FOLDER is one of
the repository's top-level folders, and checks that SOURCE_DIR/FOLDER/NAME.EXT
exists (also when written as a longer path such as tests/unit/x.c), from
the repository's root or from the folder of the file naming it. <a/b.h>
(a system header) is not a reference. Paths
inside build directories, globs and placeholders (*, <, {, NAME, X) are
skipped. Exit 1 listing each stale reference as file:line.
"""
import os
import re
import sys

EXTS = (".c", ".h", ".proto", ".py", ".sh", ".cmake", ".txt", ".md", ".js", ".json", ".yaml")
SKIP_DIRS = {".git", "Testing", "node_modules", "corpus", "data"}


def main():
    root = os.path.abspath(sys.argv[1])
    tops = sorted(d for d in os.listdir(root)
                  if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
                  and not d.startswith("build") and d not in SKIP_DIRS)
    ref = re.compile(r"(?<![\w./<-])((?:%s)/[\w./-]*\w\.(?:c|h|proto|py|sh|md|cmake|js|json))(?![\w*])"
                     % "|".join(map(re.escape, tops)))
    bad = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith("build")
                   and not d.startswith(".")]
        for f in files:
            if not (f.endswith(EXTS) or f == "CMakeLists.txt"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)
            try:
                lines = open(path, encoding="utf-8").read().splitlines()
            except (UnicodeDecodeError, OSError):
                continue
            for no, line in enumerate(lines, 1):
                for m in ref.finditer(line):
                    p = m.group(1)
                    if any(c in p for c in "*<{") or re.search(r"/(NAME|X|x)\.", p):
                        continue
                    if not (os.path.exists(os.path.join(root, p))
                            or os.path.exists(os.path.join(dirpath, p))):
                        bad.append(f"{rel}:{no}: names {p}, which does not exist")
    for b in bad:
        print(b)
    if bad:
        print(f"FAIL: {len(bad)} reference(s) to missing files")
        return 1
    print("ok: every file a comment or doc names exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
