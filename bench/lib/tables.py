"""What every RESULTS.md section writer shares (bench/lib/report.py,
telereport.py, tlsreport.py): reading $OUT/results.jsonl and formatting
cells, ratios and verdicts. A cell is the median of its repetitions with the
min-max range in parentheses."""
import json
import os
import statistics

med = statistics.median


def load_rows(out_dir):
    """The JSON lines of OUT_DIR/results.jsonl ([] without the file); lines
    that do not parse (a step killed mid-write) are skipped."""
    rows = []
    p = os.path.join(out_dir, "results.jsonl")
    if os.path.exists(p):
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return rows


def fmt(x, nd=None):
    if x is None:
        return "n/a"
    if nd is None:
        nd = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:,.{nd}f}"


def cell(vals, nd=None):
    """(median (min-max) text, median) of a list of numbers"""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a", None
    m = med(vals)
    if len(vals) == 1:
        return fmt(m, nd), m
    return f"{fmt(m, nd)} ({fmt(min(vals), nd)}–{fmt(max(vals), nd)})", m


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def rfmt(r):
    """2 decimals, 3 near 1.0 so that a verdict against 1.0 is visible"""
    if r is None:
        return "n/a"
    if 0.995 <= r <= 1.005 and r != 1.0:
        return f"{r:.3f}×"
    return f"{r:.2f}×"


def verdict(met):
    return {True: "**met**", False: "**missed**", None: "—"}[met]
