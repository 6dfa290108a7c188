#!/usr/bin/env bash
# Flood run: how the mirror daemon's defences hold up against cheap
# denial-of-service attacks while legitimate readers keep fetching.
#
#   bash bench/flood.sh            # ~5 minutes, everything on 127.0.0.1
#
# Starts one mirror ([limits] max_connections = 256, header_timeout = "5s",
# idle_timeout = "10s") on a 200-article news site plus a 1 MiB file, measures
# a wrk baseline (wrk -t1 -c16 -d<WRK_S>s --latency on an article), then runs
# each attack for ~ATTACK_S seconds with wrk (same settings) starting 2 s in:
#   slowloris (slowhttptest -H), slow read (slowhttptest -X), 2000 idle TCP
#   connections (re-opened when closed), 100 KB request headers, junk pushes
#   (64 KiB random POSTs to /_samizdat/push/<fp>), overlapping Range requests.
# The daemon's VmRSS is sampled every second; after each attack a plain GET
# must succeed within 5 s ("still serving").  Writes bench/results-flood-<date>.md.
#
# Environment: FLOOD_ATTACK_S (default 25), FLOOD_WRK_S (default 10 for the
# baseline, 20 under attack), FLOOD_PORT (default 18480), FLOOD_MAX_SECONDS
# (whole run, default 600), BENCH_TMPDIR (scratch parent, default /tmp).
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$ROOT"
ATTACK_S="${FLOOD_ATTACK_S:-25}"
WRK_S="${FLOOD_WRK_S:-20}"
PORT="${FLOOD_PORT:-18480}"
MAX_SECONDS="${FLOOD_MAX_SECONDS:-600}"
DATE="$(date +%F)"
OUT="$ROOT/bench/results-flood-$DATE.md"

log() { printf '[flood %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Whole-run watchdog: the script stops by itself.
( sleep "$MAX_SECONDS"; echo "[flood] time limit ($MAX_SECONDS s) reached" >&2; kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!

SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-/tmp}/flood.XXXXXX")"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    kill "$WATCHDOG" 2>/dev/null || true
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools --
need_pkgs() {
    command -v wrk >/dev/null || echo wrk
    command -v slowhttptest >/dev/null || echo slowhttptest
    command -v curl >/dev/null || echo curl
}
INSTALL=1
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
install_tools
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "ulimit -n = $(ulimit -n)"

if [ ! -x target/release/samizdat ] || [ -n "$(find src Cargo.toml Cargo.lock -newer target/release/samizdat 2>/dev/null | head -1)" ]; then
    log "building samizdat (cargo build --release)"
    cargo build --release >&2
fi
mkdir -p "$SCRATCH/bin"
cp target/release/samizdat "$SCRATCH/bin/samizdat" # others may rebuild target/ meanwhile
SZ="$SCRATCH/bin/samizdat"

# ---------------------------------------------------------------- site ---
NEWS_GEN="$ROOT/../shared/corpus/make-news-site.py"
[ -f "$NEWS_GEN" ] || NEWS_GEN=/work/shared/corpus/make-news-site.py
[ -f "$NEWS_GEN" ] || die "news generator not found"
log "generating a 200-article site + 1 MiB file"
python3 "$NEWS_GEN" --out "$SCRATCH/site" --articles 200 >/dev/null
head -c 1048576 /dev/urandom >"$SCRATCH/site/big.bin"
ARTICLE="$(cd "$SCRATCH/site" && find . -name 'article-*.html' -printf '%P\n' | sort | sed -n 1p)"
[ -n "$ARTICLE" ] || die "no article in the generated site"
"$SZ" keygen "$SCRATCH/K" >/dev/null
"$SZ" bundle "$SCRATCH/site" --keys "$SCRATCH/K" --repo "$SCRATCH/R" >/dev/null 2>&1
FP="$("$SZ" fingerprint "$SCRATCH/K/publisher.pub" | tr -d '[:space:]')"

cat >"$SCRATCH/mirror.toml" <<EOF
listen = "127.0.0.1:$PORT"
data_dir = "$SCRATCH/data"
poll_interval = "30s"

[limits]
max_connections = 256
header_timeout = "5s"
idle_timeout = "10s"

[[site]]
publisher = "$SCRATCH/K/publisher.pub"
upstreams = ["$SCRATCH/R"]
hosts = ["localhost"]
accept_push = true
EOF
"$SZ" mirror --config "$SCRATCH/mirror.toml" >"$SCRATCH/mirror.log" 2>&1 &
MPID=$!
PIDS+=("$MPID")
BASE="http://127.0.0.1:$PORT"
log "mirror pid $MPID on $BASE, waiting for seq 1"
ok=0
for _ in $(seq 120); do
    kill -0 "$MPID" 2>/dev/null || { tail -20 "$SCRATCH/mirror.log" >&2; die "mirror exited"; }
    if curl -sf -m 2 "$BASE/_samizdat/status" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["sites"][0]; sys.exit(0 if ((s.get("serving") or {}).get("seq") or 0) >= 1 else 1)' 2>/dev/null; then
        ok=1; break
    fi
    sleep 0.5
done
[ "$ok" = 1 ] || { tail -20 "$SCRATCH/mirror.log" >&2; die "mirror did not serve seq 1"; }
curl -sf -m 5 -o /dev/null "$BASE/$ARTICLE" || die "article /$ARTICLE not served"
curl -sf -m 5 -o /dev/null "$BASE/big.bin" || die "/big.bin not served"
log "serving; article /$ARTICLE, fingerprint $FP"

# ---------------------------------------------------------------- helpers -
rss_sampler() { # rss_sampler FILE: max VmRSS (kB) of the daemon, every second
    local max=0 v
    while kill -0 "$MPID" 2>/dev/null; do
        v="$(awk '/^VmRSS:/{print $2}' "/proc/$MPID/status" 2>/dev/null || echo 0)"
        [ -n "$v" ] && [ "$v" -gt "$max" ] && { max=$v; echo "$max" >"$1"; }
        sleep 1
    done
}
run_wrk() { # run_wrk SECONDS OUTFILE
    timeout $(($1 + 20)) wrk -t1 -c16 -d"$1"s --timeout 5s --latency "$BASE/$ARTICLE" >"$2" 2>&1 || true
}
wrk_summary() { # wrk_summary FILE -> "reqs|p99|errors"
    python3 - "$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s*([\d.]+)", t)
p99 = re.search(r"^\s*99%\s+(\S+)", t, re.M)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
non2 = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
tot = re.search(r"(\d+) requests in", t)
se = sum(int(x) for x in sock.groups()) if sock else 0
n2 = int(non2.group(1)) if non2 else 0
print("%s|%s|%d sock / %d non-2xx (of %s)" % (
    "%.0f" % float(rps.group(1)) if rps else ("0 (none completed)" if not tot or tot.group(1) == "0" else "n/a"),
    p99.group(1) if p99 else "n/a", se, n2, tot.group(1) if tot else "0"))
PY
}
still_serving() {
    kill -0 "$MPID" 2>/dev/null || { echo "no (daemon died)"; return; }
    local i
    for i in 1 2 3; do
        curl -sf -m 5 -o /dev/null "$BASE/$ARTICLE" && { echo yes; return; }
        sleep 1
    done
    echo no
}

ROWS=()
NOTES=()
# measure NAME ATTACK-COMMAND...: run the attack in the background, wrk from 2 s in
measure() {
    local name="$1"; shift
    local tag; tag="$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')"
    local rssf="$SCRATCH/rss.$tag" wrkf="$SCRATCH/wrk.$tag" attf="$SCRATCH/attack.$tag"
    echo 0 >"$rssf"
    rss_sampler "$rssf" &
    local rpid=$!
    local apid=""
    if [ "$#" -gt 0 ]; then
        log "attack: $name"
        timeout --kill-after=5 $((ATTACK_S + 15)) "$@" >"$attf" 2>&1 &
        apid=$!
        sleep 2
        run_wrk "$WRK_S" "$wrkf"
        wait "$apid" 2>/dev/null || true
    else
        log "baseline"
        run_wrk "${FLOOD_WRK_S:-10}" "$wrkf"
    fi
    local alive; alive="$(still_serving)"
    kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true
    local rss; rss="$(awk '{printf "%.0f", $1/1024}' "$rssf")"
    local s; s="$(wrk_summary "$wrkf")"
    ROWS+=("| $name | ${s//|/ | } | $rss | $alive |")
    log "  -> ${ROWS[-1]}"
    if [ -s "$attf" ]; then
        NOTES+=("- $name: $(grep -v '^\s*$' "$attf" | tail -3 | tr '\n' ' ' | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-400)")
    fi
    sleep 3 # let the daemon drain before the next attack
}

# ---------------------------------------------------------------- attacks -
cat >"$SCRATCH/bin/idle.py" <<'PY'
# Hold N idle TCP connections for S seconds, re-opening any the server closes.
import socket, sys, time, errno
host, port, n, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def conn():
    s = socket.socket(); s.setblocking(False)
    s.connect_ex((host, port)); return s
socks = [conn() for _ in range(n)]
opened, closed, end = n, 0, time.time() + dur
while time.time() < end:
    for i, s in enumerate(socks):
        try:
            if s.recv(4096, socket.MSG_DONTWAIT) != b"": continue
        except (BlockingIOError, InterruptedError): continue
        except OSError as e:
            if e.errno in (errno.ENOTCONN, errno.EAGAIN): continue
        s.close(); closed += 1; socks[i] = conn(); opened += 1
    time.sleep(0.5)
print("idle: opened %d, closed by server %d" % (opened, closed))
PY
cat >"$SCRATCH/bin/bighdr.py" <<'PY'
# Requests with a 100 KB header, from T threads, for S seconds.
import socket, sys, time, threading, collections
host, port, dur, threads = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), 8
req = (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
stats, lock, end = collections.Counter(), threading.Lock(), time.time() + dur
def work():
    while time.time() < end:
        k = "err"
        try:
            s = socket.create_connection((host, port), timeout=5)
            try: s.sendall(req)
            except OSError: pass
            d = s.recv(64)
            k = d.split(b" ")[1].decode() if d.startswith(b"HTTP/") else ("closed" if not d else "junk")
        except Exception as e: k = type(e).__name__
        finally:
            try: s.close()
            except Exception: pass
        with lock: stats[k] += 1
ts = [threading.Thread(target=work) for _ in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
print("bighdr:", dict(stats))
PY
cat >"$SCRATCH/bin/push.py" <<'PY'
# POST 64 KiB of random bytes to the push endpoint from T threads for S seconds.
import http.client, os, sys, time, threading, collections
host, port, fp, dur, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), 4
stats, lock, end = collections.Counter(), threading.Lock(), time.time() + dur
def work():
    c = None
    while time.time() < end:
        try:
            if c is None: c = http.client.HTTPConnection(host, port, timeout=10)
            c.request("POST", "/_samizdat/push/" + fp, body=os.urandom(65536),
                      headers={"Content-Type": "application/octet-stream"})
            r = c.getresponse(); r.read(); k = r.status
            if r.getheader("connection", "").lower() == "close": c.close(); c = None
        except Exception as e:
            k = type(e).__name__; c = None
        with lock: stats[k] += 1
ts = [threading.Thread(target=work) for _ in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
n4 = sum(v for k, v in stats.items() if isinstance(k, int) and 400 <= k < 500)
print("push: %d requests, %d 4xx; %s" % (sum(stats.values()), n4, dict(stats)))
PY
# ~2.5 KB Range header with 200 overlapping ranges of the 1 MiB file.
RANGE="bytes=$(python3 -c 'print(",".join(["0-1048575","0-100","50-150","0-1000"][i % 4] for i in range(200)))')"
cat >"$SCRATCH/bin/range.lua" <<EOF
wrk.headers["Range"] = "$RANGE"
local codes = {}
response = function(status, headers, body) codes[status] = (codes[status] or 0) + 1 end
done = function(summary, latency, requests)
  for k, v in pairs(codes) do io.write("status " .. k .. ": " .. v .. "\n") end
end
EOF
log "range probe: $(curl -s -m 10 -o /dev/null -w '%{http_code} %{size_download} bytes' -H "Range: $RANGE" "$BASE/big.bin")"

measure "baseline (no attack)"
measure "slowloris (slowhttptest -H -c 1000 -r 200)" \
    slowhttptest -H -c 1000 -i 10 -r 200 -l "$ATTACK_S" -t GET -u "$BASE/$ARTICLE" -p 3
measure "slow read (slowhttptest -X -c 500, 1 MiB file)" \
    slowhttptest -X -c 500 -r 200 -w 512 -y 1024 -n 5 -z 32 -k 3 -l "$ATTACK_S" -u "$BASE/big.bin" -p 3
measure "2000 idle TCP connections" \
    python3 "$SCRATCH/bin/idle.py" 127.0.0.1 "$PORT" 2000 "$ATTACK_S"
measure "100 KB request headers (8 threads)" \
    python3 "$SCRATCH/bin/bighdr.py" 127.0.0.1 "$PORT" "$ATTACK_S"
measure "junk pushes (64 KiB random, 4 threads)" \
    python3 "$SCRATCH/bin/push.py" 127.0.0.1 "$PORT" "$FP" "$ATTACK_S"
measure "overlapping Range, 200 ranges (wrk -c64)" \
    wrk -t1 -c64 -d"$ATTACK_S"s --timeout 5s -s "$SCRATCH/bin/range.lua" "$BASE/big.bin"

# ---------------------------------------------------------------- report --
{
    echo "# Flood run, $DATE ($(git rev-parse --short HEAD))"
    echo
    echo "\`bash bench/flood.sh\` on $(nproc) CPUs; mirror with max_connections = 256, header_timeout = 5s,"
    echo "idle_timeout = 10s, no rate limit; legit load = \`wrk -t1 -c16 -d${WRK_S}s --latency\` on a"
    echo "$(stat -c %s "$SCRATCH/site/$ARTICLE")-byte article (baseline: ${FLOOD_WRK_S:-10} s), started 2 s into each ~${ATTACK_S} s attack."
    echo
    echo "| attack | legit req/s | legit p99 | legit errors (wrk socket / non-2xx) | daemon peak RSS MiB | still serving after |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Attacker-side output:"
    echo
    printf '%s\n' "${NOTES[@]}"
} >"$OUT"
cat "$OUT"
log "wrote $OUT"
