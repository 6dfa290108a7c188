#!/usr/bin/env python3
"""The search benchmark (issue 10), driven by bench/search.sh.

  search-bench.py --bin SAMIZDAT --site DIR --work DIR --out RESULTS_PREFIX [--wrk-seconds 20]

Measures on one generated site, in one run: bundle time without and with the
index, and the index alone (built into a repository that already holds every
object, less a bundle that changes nothing); index size against the pages' visible text; mirror query latency under
wrk (16 connections); what a static (browser) reader downloads per query; and
Pagefind on the same site when it runs. Raw results go to RESULTS_PREFIX.json
and a table to RESULTS_PREFIX.md.
"""
import argparse
import html
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def timed(cmd):
    t = time.monotonic()
    run(cmd)
    return time.monotonic() - t


def files_under(d):
    for root, _, names in os.walk(d):
        for n in names:
            yield os.path.join(root, n)


def text_bytes(site):
    """UTF-8 bytes of the visible text of every page (tags, scripts, styles out)."""
    total = 0
    for f in files_under(site):
        if not f.endswith(".html"):
            continue
        s = open(f, encoding="utf-8", errors="replace").read()
        s = re.sub(r"(?is)<(script|style|template)\b.*?</\1>", " ", s)
        s = re.sub(r"(?s)<!--.*?-->", " ", s)
        s = html.unescape(re.sub(r"<[^>]*>", " ", s))
        total += len(" ".join(s.split()).encode())
    return total


def store_files(repo):
    out = {}
    for top in ("objects", "trees"):
        for f in files_under(os.path.join(repo, top)):
            out[os.path.relpath(f, repo)] = os.path.getsize(f)
    return out


def queries(site, n, rng):
    """Reader-like queries from the site's own titles: Chinese phrases, English words, mixed."""
    titles = []
    for f in files_under(site):
        if re.search(r"article-\d+\.html$", f):
            m = re.search(r"<title>(.*?)</title>", open(f, encoding="utf-8").read())
            if m:
                titles.append(html.unescape(m.group(1)))
    rng.shuffle(titles)
    zh = [t for t in titles if re.search(r"[\u4e00-\u9fff]", t)]
    en = [t for t in titles if not re.search(r"[\u4e00-\u9fff]", t)]
    tags = ["人权", "维权", "新闻自由", "网络审查", "法治", "Hong Kong", "Xu Zhiyong", "Tibet"]
    out = []
    for t in zh[: n // 2]:
        i = rng.randrange(0, max(1, len(t) - 4))
        out.append(t[i:i + rng.choice([2, 3, 4, 6])])
    for t in en[: n // 4]:
        w = t.split()
        i = rng.randrange(0, max(1, len(w) - 2))
        out.append(" ".join(w[i:i + 2]))
    while len(out) < n:
        z = rng.choice(zh)
        out.append(rng.choice(tags) + " " + z[:3])
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def mirror_latency(bin_, keys, repo, work, qs, seconds):
    port = free_port()
    data = os.path.join(work, "mirror-data")
    shutil.rmtree(data, ignore_errors=True)
    m = subprocess.Popen([bin_, "mirror", "--publisher", os.path.join(keys, "publisher.pub"), "--upstream", repo,
                          "--data-dir", data, "--listen", "127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 600
        while True:
            try:
                st = json.load(urllib.request.urlopen(base + "/_samizdat/status", timeout=5))
                if (st["sites"][0].get("serving") or {}).get("seq"):
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the mirror did not sync within 600 s")
            time.sleep(0.5)
        paths = ["/_samizdat/search?format=json&q=" + urllib.parse.quote(q) for q in qs]
        # One pass first: every query answers, and its result count is kept.
        totals = [json.load(urllib.request.urlopen(base + p, timeout=30))["total"] for p in paths]
        lua = os.path.join(work, "queries.lua")
        with open(lua, "w") as f:
            f.write("local paths = {%s}\nlocal i = 0\nrequest = function()\n  i = i %% #paths + 1\n"
                    "  return wrk.format('GET', paths[i])\nend\n" % ",".join(json.dumps(p) for p in paths))
        out = run(["wrk", "-t2", "-c16", "-d%ds" % seconds, "--latency", "-s", lua, base]).stdout
        rss = int(open("/proc/%d/status" % m.pid).read().split("VmRSS:")[1].split()[0])
    finally:
        m.terminate()
        m.wait(timeout=30)

    def pct(label):
        mm = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % label, out, re.M)
        v = float(mm.group(1))
        return v / 1000 if mm.group(2) == "us" else v * 1000 if mm.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"p50_ms": pct("50"), "p90_ms": pct("90"), "p99_ms": pct("99"), "rps": rps, "wrk": out,
            "rss_kib": rss, "totals": totals}


def static_bytes(bin_, keys, repo, qs):
    per = []
    for q in qs:
        v = json.loads(run([bin_, "search", repo, q, "--trust", os.path.join(keys, "publisher.pub"), "--json",
                            "--limit", "20"]).stdout)
        fold = sum(size for path, size in v["index_files"] if path.endswith("/search/fold"))
        per.append({"q": q, "index": v["index_bytes_read"], "trees": v["tree_bytes_read"], "files": v["index_files_read"],
                    "fold": fold, "total": v["total"]})
    return per


def pagefind(site, work):
    d = os.path.join(work, "pagefind-site")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(site, d)
    npm = os.path.join(work, "pagefind-npm")
    os.makedirs(npm, exist_ok=True)
    kills = oom_kills()
    try:
        run(["npm", "install", "--silent", "--prefix", npm, "pagefind@1"])
        exe = os.path.join(npm, "node_modules", ".bin", "pagefind")
        t = timed([exe, "--site", d])
        size = sum(os.path.getsize(f) for f in files_under(os.path.join(d, "pagefind")))
        version = run([exe, "--version"]).stdout.strip()
        return {"seconds": t, "bytes": size, "version": version}
    except Exception as e:  # recorded, not fatal: the peer is context
        # Pagefind reports some failures on stdout, so keep the tail of both streams.
        tail = " | ".join(x.strip()[-600:] for x in (getattr(e, "stdout", ""), getattr(e, "stderr", "")) if x and x.strip())
        new = oom_kills()[len(kills):]
        if new:  # the kernel's word, which Pagefind's own output does not give
            return {"error": "killed by the kernel out of memory: " + new[-1], "output": tail}
        return {"error": "%s: %s" % (type(e).__name__, tail or e)}


def oom_kills():
    """The kernel's out-of-memory kill lines so far (empty when dmesg is not readable)."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [l.split("] ", 1)[-1] for l in out.splitlines() if "Out of memory: Killed process" in l]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--wrk-seconds", type=int, default=20)
    ap.add_argument("--queries", type=int, default=50)
    a = ap.parse_args()
    rng = random.Random(2026)
    keys = os.path.join(a.work, "keys")
    shutil.rmtree(keys, ignore_errors=True)
    run([a.bin, "keygen", keys, "--name", "Search Bench"])
    res = {"site": a.site}
    pages = sum(1 for f in files_under(a.site) if f.endswith(".html"))
    res["pages"] = pages
    res["site_bytes"] = sum(os.path.getsize(f) for f in files_under(a.site))
    res["text_bytes"] = text_bytes(a.site)
    print("site: %d pages, %d bytes, %d bytes of text" % (pages, res["site_bytes"], res["text_bytes"]), flush=True)
    plain, indexed = os.path.join(a.work, "repo-plain"), os.path.join(a.work, "repo-indexed")
    for r in (plain, indexed):
        shutil.rmtree(r, ignore_errors=True)
    run(["sync"])
    res["bundle_plain_s"] = timed([a.bin, "bundle", a.site, "--keys", keys, "--repo", plain, "--no-search"])
    run(["sync"])
    res["bundle_indexed_s"] = timed([a.bin, "bundle", a.site, "--keys", keys, "--repo", indexed])
    p, i = store_files(plain), store_files(indexed)
    only = {k: v for k, v in i.items() if k not in p}
    res["index_bytes"] = sum(only.values())
    res["index_files"] = len(only)
    # The index alone: bundle again into the plain repository, whose objects
    # are all there (its newest snapshot has no index, so the index is built
    # whole), less what a bundle that changes nothing costs. The difference of
    # the two fresh bundles above is dominated by the disk's write noise.
    alone, noop = [], []
    for _ in range(2):
        alone.append(timed([a.bin, "bundle", a.site, "--keys", keys, "--repo", plain]))
        noop.append(timed([a.bin, "bundle", a.site, "--keys", keys, "--repo", plain, "--no-search"]))
    res["index_alone_s"] = alone
    res["bundle_noop_s"] = noop
    res["index_build_s"] = statistics.median(alone) - statistics.median(noop)
    res["index_build_diff_s"] = res["bundle_indexed_s"] - res["bundle_plain_s"]
    print("bundle %.1f s without the index, %.1f s with; index %d bytes in %d files"
          % (res["bundle_plain_s"], res["bundle_indexed_s"], res["index_bytes"], res["index_files"]), flush=True)
    # Re-bundle after one changed article: time and new bytes.
    art = sorted(f for f in files_under(a.site) if re.search(r"article-\d+\.html$", f))[0]
    orig = open(art, "rb").read()
    with open(art, "ab") as f:
        f.write(b"<p>An added paragraph about zebras.</p>")
    before = store_files(indexed)
    try:
        res["rebundle_one_s"] = timed([a.bin, "bundle", a.site, "--keys", keys, "--repo", indexed])
    finally:
        with open(art, "wb") as f:
            f.write(orig)
    after = store_files(indexed)
    res["rebundle_one_new_bytes"] = sum(v for k, v in after.items() if k not in before)
    qs = queries(a.site, a.queries, rng)
    res["queries"] = qs
    st = static_bytes(a.bin, keys, indexed, qs)
    res["static"] = st
    res["mirror"] = mirror_latency(a.bin, keys, indexed, a.work, qs, a.wrk_seconds)
    print("mirror p50 %.1f ms p99 %.1f ms" % (res["mirror"]["p50_ms"], res["mirror"]["p99_ms"]), flush=True)
    res["pagefind"] = pagefind(a.site, a.work)
    print("pagefind: %s" % res["pagefind"], flush=True)
    json.dump(res, open(a.out + ".json", "w"), indent=1, ensure_ascii=False)

    sb = [s["index"] + s["trees"] for s in st]
    first = [s["index"] + s["trees"] for s in st]
    later = [s["index"] + s["trees"] - s["fold"] for s in st]
    pf = res["pagefind"]
    lines = [
        "| figure | target | measured |",
        "|---|---|---|",
        "| index build time / bundle time without the index | ≤ 0.5× | %.2f× (index alone %.1f s of %.1f s; fresh bundle with the index %.1f s, difference %.2f×) |"
        % (res["index_build_s"] / res["bundle_plain_s"], res["index_build_s"], res["bundle_plain_s"], res["bundle_indexed_s"],
           res["index_build_diff_s"] / res["bundle_plain_s"]),
        "| index size / visible text | ≤ 15 %% | %.1f %% (%d of %d bytes) |"
        % (100 * res["index_bytes"] / res["text_bytes"], res["index_bytes"], res["text_bytes"]),
        "| mirror query latency under wrk -c16, p99 | ≤ 50 ms | %.1f ms (p50 %.1f, p90 %.1f; %.0f req/s; mirror RSS %d MiB) |"
        % (res["mirror"]["p99_ms"], res["mirror"]["p50_ms"], res["mirror"]["p90_ms"], res["mirror"]["rps"],
           res["mirror"]["rss_kib"] // 1024),
        "| bytes a static query downloads (index files + their tree nodes, top 20 results) | ≤ 300 KB | first query of a visit: median %.0f KB, max %.0f KB; later queries (folding table kept): median %.0f KB, max %.0f KB |"
        % (statistics.median(first) / 1000, max(first) / 1000, statistics.median(later) / 1000, max(later) / 1000),
        "| re-bundle after 1 changed article | ∝ k | %.1f s, %d new bytes (index and page) |"
        % (res["rebundle_one_s"], res["rebundle_one_new_bytes"]),
    ]
    if "error" in pf:
        lines.append("| Pagefind on the same site | (peer) | did not finish: %s |"
                     % " ".join(pf["error"].split())[:240].replace("|", "/"))
    else:
        lines.append("| Pagefind %s on the same site | (peer) | index %.1f s (%.2f× samizdat's index build), %d bytes (%.1f %% of text; samizdat/Pagefind size %.2f×) |"
                     % (pf["version"], pf["seconds"], pf["seconds"] / max(res["index_build_s"], 0.001), pf["bytes"],
                        100 * pf["bytes"] / res["text_bytes"], res["index_bytes"] / pf["bytes"]))
    md = "\n".join(lines) + "\n"
    open(a.out + ".md", "w").write(md)
    print(md)


if __name__ == "__main__":
    sys.exit(main())
