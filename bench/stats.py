#!/usr/bin/env python3
"""The bench scripts' arithmetic, in one place (no shell arithmetic on measurements).

Raw results live in a directory RES: one file per measurement KEY, one line per
run, whitespace-separated columns (what each script documents, e.g. run.sh:
"wall_s max_rss_kib user_s sys_s"); hyperfine's own JSON for each timed command
run in RES/json/KEY.N.json. Every figure in a report is derived from those by
this script, and `csv`/`json` write them beside the markdown so that anyone can
re-derive the figures.

    stats.py med RES KEY [COL]           median of column COL (1-based, default 1)
    stats.py min|max RES KEY COL         smallest / largest value of a column
    stats.py sum RES KEY COL             sum of a column over the runs
    stats.py runs RES KEY [COL] [FMT]    every run's value, space-separated (FMT default %.2f)
    stats.py cpu RES KEY                 median of columns 3 + 4 (user + sys)
    stats.py ratio A B                   A / B with 2 decimals ("n/a" if either is missing or B is 0)
    stats.py div A B [FMT]               A / B with FMT (default %.1f)
    stats.py verdict VALUE OP LIMIT      "**met**" or how far it missed; OP is ge, le or lt
    stats.py hyperfine JSON RSS_FILE     one "wall_s max_rss_kib user_s sys_s" line from a
                                         hyperfine --runs 1 JSON and the last line of RSS_FILE
    stats.py wall JSON                   the wall seconds of a hyperfine --runs 1 JSON
    stats.py elapsed T0 T1               T1 - T0 (seconds, 4 decimals)
    stats.py perreq RES KEY SECONDS      median over runs of col 4 / (col 1 * SECONDS) * 1e6
                                         (CPU seconds and req/s -> CPU microseconds per request)
    stats.py wrk FILE CPU_TICKS TICK RSS_KB HWM_KB
                                         one "rps p50_ms p99_ms cpu_s rss_kb errors MiB/s hwm_kb"
                                         line from `wrk --latency` output
    stats.py total DIR                   sum of the sizes of the files under DIR (bytes)
    stats.py csv RES OUT.csv             every raw line of every KEY as CSV (key, run, c1, c2, ...)
    stats.py json RES OUT.json           every hyperfine JSON under RES/json, as one array

A missing KEY or an empty value prints "" (or "n/a" for ratios): reports show
"not measured" instead of failing.
"""

import csv
import glob
import json
import os
import statistics
import sys


def column(res, key, col):
    path = os.path.join(res, key)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    out = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= col:
                try:
                    out.append(float(fields[col - 1]))
                except ValueError:
                    pass
    return out or None


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def wrk_line(path, cpu_s, rss, hwm):
    def ms(v):
        for suffix, scale in (("us", 1e-3), ("ms", 1.0), ("m", 60000.0), ("s", 1000.0)):
            if v.endswith(suffix):
                return float(v[: -len(suffix)]) * scale
        return float(v)

    def mib(v):
        for suffix, scale in (("GB", 1024.0), ("MB", 1.0), ("KB", 1 / 1024), ("B", 1 / 1048576)):
            if v.endswith(suffix):
                return float(v[: -len(suffix)]) * scale
        return float(v)

    rps, p50, p99, err, rate = "0", 0.0, 0.0, 0, 0.0
    with open(path, errors="replace") as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "50%":
                p50 = ms(w[1])
            elif w[0] == "99%":
                p99 = ms(w[1])
            elif w[0] == "Requests/sec:":
                rps = w[1]
            elif w[0] == "Transfer/sec:":
                rate = mib(w[1])
            elif "Non-2xx" in line:
                err += int(w[-1])
            elif "Socket errors" in line:
                err += sum(int(x.strip(",")) for x in (w[3], w[5], w[7], w[9]))
    return "%s %.3f %.3f %.2f %s %d %.1f %s" % (rps, p50, p99, cpu_s, rss, err, rate, hwm)


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    op, a = argv[0], argv[1:]
    if op in ("med", "min", "max", "sum", "runs"):
        res, key = a[0], a[1]
        col = int(a[2]) if len(a) > 2 else 1
        v = column(res, key, col)
        if v is None:
            print("")
            return 0
        if op == "med":
            print("%.3f" % statistics.median(v))
        elif op == "min":
            print("%.3f" % min(v))
        elif op == "max":
            print("%d" % max(v))
        elif op == "sum":
            print("%d" % sum(v))
        else:
            f = a[3] if len(a) > 3 else "%.2f"
            print(" ".join(f % x for x in v))
    elif op == "cpu":
        u, s = column(a[0], a[1], 3), column(a[0], a[1], 4)
        print("" if u is None or s is None else "%.2f" % statistics.median(x + y for x, y in zip(u, s)))
    elif op == "ratio":
        x, y = num(a[0] if a else None), num(a[1] if len(a) > 1 else None)
        print("n/a" if x is None or not y else "%.2f" % (x / y))
    elif op == "div":
        x, y = num(a[0]), num(a[1])
        print("" if x is None or not y else (a[2] if len(a) > 2 else "%.1f") % (x / y))
    elif op == "verdict":
        v, cmp, limit = num(a[0] if a else None), a[1], num(a[2])
        if v is None or not v:
            print("not measured")
        elif (cmp == "ge" and v >= limit) or (cmp == "le" and v <= limit) or (cmp == "lt" and v < limit):
            print("**met**")
        elif cmp == "ge":
            print("**missed** (%.0f%% short: %.2f of %g)" % ((1 - v / limit) * 100, v, limit))
        else:
            print("**missed** by %.2f× (%.3f vs %g)" % (v / limit, v, limit))
    elif op == "wall":
        with open(a[0]) as f:
            print("%.4f" % json.load(f)["results"][0]["times"][0])
    elif op == "elapsed":
        print("%.4f" % (float(a[1]) - float(a[0])))
    elif op == "perreq":
        c1, c4, d = column(a[0], a[1], 1), column(a[0], a[1], 4), float(a[2])
        if c1 is None or c4 is None:
            print("")
        else:
            v = [c / (r * d) * 1e6 for r, c in zip(c1, c4) if r > 0]
            print("%.1f" % statistics.median(v) if v else "")
    elif op == "wrk":
        print(wrk_line(a[0], float(a[1]) / float(a[2]), a[3], a[4]))
    elif op == "total":
        t = 0
        for dp, _, fs in os.walk(a[0]):
            for name in fs:
                p = os.path.join(dp, name)
                if os.path.isfile(p) and not os.path.islink(p):
                    t += os.path.getsize(p)
        print(t)
    elif op == "hyperfine":
        with open(a[0]) as f:
            r = json.load(f)["results"][0]
        rss = 0
        if os.path.exists(a[1]):
            with open(a[1]) as f:
                lines = [line for line in f.read().split("\n") if line.strip().isdigit()]
            rss = int(lines[-1]) if lines else 0
        print("%.4f %d %.2f %.2f" % (r["times"][0], rss, r["user"], r["system"]))
    elif op == "csv":
        res, out = a
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["key", "run", "values..."])
            for path in sorted(glob.glob(os.path.join(res, "*"))):
                if not os.path.isfile(path):
                    continue
                key = os.path.basename(path)
                with open(path, errors="replace") as g:
                    for n, line in enumerate(g, 1):
                        if line.strip():
                            w.writerow([key, n] + line.rstrip("\n").replace("\t", " ").split(" "))
    elif op == "json":
        res, out = a
        runs = []
        for path in sorted(glob.glob(os.path.join(res, "json", "*.json"))):
            with open(path) as f:
                runs.append({"file": os.path.basename(path), "hyperfine": json.load(f)})
        with open(out, "w") as f:
            json.dump(runs, f, indent=1)
    else:
        print("unknown operation %r\n%s" % (op, __doc__), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
