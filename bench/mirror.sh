#!/usr/bin/env bash
# samizdat mirror-daemon benchmarks.  See BENCHMARKS.md, section "Mirror daemon".
#
#   bash bench/mirror.sh                 # everything, 3 runs each (~15 min)
#   bash bench/mirror.sh --quick         # small datasets, 3 s load runs (~4 min)
#   bash bench/mirror.sh --only serve    # or: full, incr (several: --only serve,incr)
#   bash bench/mirror.sh --profile       # also perf profiles of the daemon
#
# Measured side by side in one run, everything on 127.0.0.1:
#   serve  samizdat mirror vs nginx (wrk --latency): a ~7 KB article (identity and
#          gzip), a 1 MiB and a 4 MiB incompressible image; requests/s, p99,
#          server CPU per request, RSS sampled during the load and VmHWM after.
#   full   first full sync of the Rust docs tree: mirror B from mirror A over
#          loopback vs an rsync daemon (rsync -a); time, bytes on the wire, and
#          the tar | zstd size of the tree.
#   incr   a 20,000-article news site, day 1 -> day 2: mirror B from A vs
#          rsync -az --delete from a day-1 copy.
# Nothing outside a scratch directory is written, except the results file.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash bench/mirror.sh [--quick] [--only serve,full,incr] [--runs N] [--duration S]
                            [--connections C] [--profile] [--out FILE] [--no-install] [--keep]
                            [--settle SECONDS]

  --quick          small datasets (rust `std/` docs, 2,000-article news site) and 3 s load runs
  --only LIST      comma-separated parts: serve, full, incr (default: all three)
  --runs N         runs per measurement, median reported (default 3, minimum 3)
  --duration S     seconds per wrk run (default 10; 3 with --quick)
  --connections C  wrk connections (default 32; wrk always uses one thread)
  --profile        perf profiles of the daemon while serving, and of a full sync
  --out FILE       results file (default bench/results-mirror-<date>[-quick].md)
  --no-install     do not apt-get install the tools (fail if missing)
  --keep           keep the scratch directory
  --settle S       sleep S seconds first (ext4 without a journal: see BENCHMARKS.md)

Environment: BENCH_TMPDIR (scratch parent, default /tmp), BENCH_CMD_TIMEOUT (seconds
per command, default 900), BENCH_MAX_SECONDS (whole run, default 3600).
EOF
}

ARGS="$*"
QUICK=0 ONLY="serve,full,incr" RUNS=3 DURATION="" CONNS=32 PROFILE=0 OUT="" INSTALL=1 KEEP=0 SETTLE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1; shift ;;
    --only) ONLY="${2:?--only needs a list}"; shift 2 ;;
    --only=*) ONLY="${1#*=}"; shift ;;
    --runs) RUNS="${2:?}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --duration) DURATION="${2:?}"; shift 2 ;;
    --duration=*) DURATION="${1#*=}"; shift ;;
    --connections) CONNS="${2:?}"; shift 2 ;;
    --connections=*) CONNS="${1#*=}"; shift ;;
    --profile) PROFILE=1; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    --settle) SETTLE="${2:?}"; shift 2 ;;
    --settle=*) SETTLE="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "mirror.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for p in ${ONLY//,/ }; do
    case "$p" in serve | full | incr) ;; *) echo "mirror.sh: --only takes serve, full, incr" >&2; exit 2 ;; esac
done
case "$RUNS" in '' | *[!0-9]*) echo "mirror.sh: --runs must be a number" >&2; exit 2 ;; esac
case "$CONNS" in '' | *[!0-9]*) echo "mirror.sh: --connections must be a number" >&2; exit 2 ;; esac
case "$SETTLE" in '' | *[!0-9]*) echo "mirror.sh: --settle must be a number" >&2; exit 2 ;; esac
[ "$RUNS" -ge 3 ] || RUNS=3
if [ -z "$DURATION" ]; then
    DURATION=10
    [ "$QUICK" = 1 ] && DURATION=3
fi
case "$DURATION" in '' | *[!0-9]*) echo "mirror.sh: --duration must be whole seconds" >&2; exit 2 ;; esac
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

CMD_TIMEOUT="${BENCH_CMD_TIMEOUT:-900}"
MAX_SECONDS="${BENCH_MAX_SECONDS:-3600}"

cd "$(dirname "$0")/.."
ROOT="$(git rev-parse --show-toplevel)"
cd "$ROOT"
NEWS_GEN="$ROOT/../shared/corpus/make-news-site.py"

log() { printf '[mirror-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools --
need_pkgs() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v zstd >/dev/null || missing+=(zstd)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    command -v gzip >/dev/null || missing+=(gzip)
    command -v timeout >/dev/null || missing+=(coreutils)
    [ -x /usr/bin/time ] || missing+=(time)
    printf '%s\n' "${missing[@]}"
}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
install_tools
if [ "$PROFILE" = 1 ]; then install_perf; fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# -------------------------------------------------------------- scratch --
SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-/tmp}/samizdat-mirror-bench.XXXXXX")"
# nginx workers may run as another user: let them read the served tree.
chmod 755 "$SCRATCH"
PIDS=() # every background process this script started, stopped one by one at the end
WATCHDOG=""
stop_pid() { # stop_pid PID: TERM, wait up to 15 s, then KILL
    local p="$1" i
    kill -TERM "$p" 2>/dev/null || return 0
    for i in $(seq 150); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
cleanup() {
    local rc=$? p
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null || true
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    if [ "$KEEP" = 1 ]; then
        log "scratch kept: $SCRATCH"
    else
        rm -rf "$SCRATCH"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'log "time limit or signal: stopping"; exit 143' TERM
MAIN_PID=$$
(
    sleep "$MAX_SECONDS"
    kill -TERM "$MAIN_PID" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

if [ "$SETTLE" -gt 0 ]; then
    log "settling for $SETTLE s"
    sync
    sleep "$SETTLE"
fi
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- build --
log "building samizdat (cargo build --release)"
cargo build --release --quiet 2>&1 | tail -5 >&2
mkdir -p "$SCRATCH/bin"
cp target/release/samizdat "$SCRATCH/bin/samizdat" # others may rebuild target/ meanwhile
SZ="$SCRATCH/bin/samizdat"
GIT_REV="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV (+ uncommitted changes in src/)"
fi

# ------------------------------------------------------- python helpers --
# A byte-counting TCP relay: PROXY LISTEN_PORT TARGET_PORT OUT. Counts payload
# bytes in each direction over all connections; writes "down up" (down = from
# the server to the client) to OUT when stopped with SIGTERM.
cat >"$SCRATCH/bin/proxy.py" <<'EOF'
import asyncio, signal, sys
listen_port, target_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tot = {"down": 0, "up": 0}
async def pipe(r, w, key):
    try:
        while True:
            d = await r.read(262144)
            if not d:
                break
            tot[key] += len(d)
            w.write(d)
            await w.drain()
        if w.can_write_eof():
            w.write_eof()
    except (ConnectionError, OSError):
        pass
async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw, "up"), pipe(sr, cw, "down"))
    for w in (cw, sw):
        try:
            w.close()
        except Exception:
            pass
async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    srv = await asyncio.start_server(handle, "127.0.0.1", listen_port, limit=1 << 20)
    await stop.wait()
    srv.close()
    with open(out, "w") as f:
        f.write("%d %d\n" % (tot["down"], tot["up"]))
asyncio.run(main())
EOF

# Starts a mirror (or only polls one that runs), waits until its status shows
# a served sequence number, samples RSS, then stops it (SIGTERM) and reports:
#   sync.py --status URL --seq N [--outcome TEXT] [--watch PID]... --timeout S --out F [-- CMD...]
# OUT gets: elapsed_s child_vmhwm_kb watch_peak_rss_kb <tab> last_sync_outcome
cat >"$SCRATCH/bin/sync.py" <<'EOF'
import json, os, signal, subprocess, sys, time, urllib.request
a = sys.argv[1:]
cmd = a[a.index("--") + 1:] if "--" in a else []
a = a[:a.index("--")] if "--" in a else a
opt = {"--watch": []}
i = 0
while i < len(a):
    if a[i] == "--watch":
        opt["--watch"].append(a[i + 1])
    else:
        opt[a[i]] = a[i + 1]
    i += 2
url, seq, timeout = opt["--status"], int(opt["--seq"]), float(opt["--timeout"])
want_outcome = opt.get("--outcome")
log = open(opt.get("--log", os.devnull), "ab")
def kb(pid, key):
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
t0 = time.monotonic()
child = subprocess.Popen(cmd, stdout=log, stderr=log) if cmd else None
peak = 0
outcome = ""
ok = False
while time.monotonic() - t0 < timeout:
    peak = max(peak, sum(kb(p, "VmRSS") for p in opt["--watch"]))
    if child is not None and child.poll() is not None:
        break
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            s = json.load(r)["sites"][0]
        served = (s.get("serving") or {}).get("seq") or 0
        outcome = s.get("last_sync_outcome") or ""
        if served >= seq and (want_outcome is None or want_outcome in outcome):
            ok = True
            break
    except Exception:
        pass
    time.sleep(0.02)
elapsed = time.monotonic() - t0
hwm = kb(child.pid, "VmHWM") if child is not None else 0
if child is not None:
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
with open(opt["--out"], "w") as f:
    f.write("%.4f %d %d\t%s\n" % (elapsed, hwm, peak, outcome))
sys.exit(0 if ok else 1)
EOF

# Gives day-2 files whose content did not change the day-1 file's mtime (what
# a careful deploy does; rsync's quick check then skips them), and counts the
# changes: mtimes.py DAY1 DAY2 -> "unchanged changed added deleted changed+added-bytes"
cat >"$SCRATCH/bin/mtimes.py" <<'EOF'
import filecmp, os, sys
d1, d2 = sys.argv[1], sys.argv[2]
def files(root):
    out = set()
    for dp, _, fs in os.walk(root):
        for f in fs:
            out.add(os.path.relpath(os.path.join(dp, f), root))
    return out
f1, f2 = files(d1), files(d2)
same = changed = new_bytes = 0
for p in f2 & f1:
    a, b = os.path.join(d1, p), os.path.join(d2, p)
    if filecmp.cmp(a, b, shallow=False):
        st = os.stat(a)
        os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
        same += 1
    else:
        changed += 1
        new_bytes += os.path.getsize(b)
for p in f2 - f1:
    new_bytes += os.path.getsize(os.path.join(d2, p))
print(same, changed, len(f2 - f1), len(f1 - f2), new_bytes)
EOF

free_ports() { # free_ports N: N distinct free loopback ports
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# -------------------------------------------------------------- helpers --
RES="$SCRATCH/res"
mkdir -p "$RES"
# The arithmetic lives in bench/stats.py; raw results stay in $RES (one file
# per measurement, one line per run) and go beside the report as CSV/JSON.
STATS=(python3 "$ROOT/bench/stats.py")
mkdir -p "$RES/json"
now_s() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { "${STATS[@]}" elapsed "$1" "$2"; }
# hyper KEY OUTPUT cmd...: one run of cmd under hyperfine (stdout and stderr to
# OUTPUT, JSON kept in $RES/json/KEY.N.json); prints the wall seconds.
hyper() {
    local key="$1" output="$2"
    shift 2
    local n=1
    while [ -e "$RES/json/$key.$n.json" ]; do n=$((n + 1)); done
    local cmd
    cmd="$(printf '%q ' timeout "$CMD_TIMEOUT" "$@")"
    if ! hyperfine --runs 1 --style none -N --output "$output" --export-json "$RES/json/$key.$n.json" \
        -n "$key" -- "$cmd" >/dev/null 2>"$SCRATCH/hyperfine.err"; then
        tail -20 "$output" "$SCRATCH/hyperfine.err" >&2
        die "command failed ($key): $*"
    fi
    "${STATS[@]}" wall "$RES/json/$key.$n.json"
}
med() { "${STATS[@]}" med "$RES" "$1" "${2:-1}"; }  # median of column C (default 1) of $RES/KEY
mincol() { "${STATS[@]}" min "$RES" "$1" "$2"; }
maxcol() { "${STATS[@]}" max "$RES" "$1" "$2"; }
sumcol() { "${STATS[@]}" sum "$RES" "$1" "$2"; }
runs_of() { "${STATS[@]}" runs "$RES" "$1" "${2:-1}" "${3:-%.2f}"; } # runs_of KEY COL FMT
ratio() { "${STATS[@]}" ratio "$1" "$2"; }
mib() { "${STATS[@]}" div "$1" 1048576; }
mibk() { [ -n "$1" ] && "${STATS[@]}" div "$1" 1024; }
warm() { find "$1" -type f -print0 | xargs -0 -r cat >/dev/null; }
cpu_ticks() { # utime+stime (clock ticks) summed over PIDs
    local t=0 p
    for p in "$@"; do
        if [ -r "/proc/$p/stat" ]; then
            t=$((t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
        fi
    done
    echo "$t"
}
rss_kb() { # rss_kb KEY PIDS...: sum of that /proc status field
    local key="$1" s=0 p k v
    shift
    for p in "$@"; do
        [ -r "/proc/$p/status" ] || continue
        while read -r k v _; do
            if [ "$k" = "$key:" ]; then s=$((s + v)); break; fi
        done <"/proc/$p/status"
    done
    echo "$s"
}
TICK="$(getconf CLK_TCK)"

# wait_serving NAME PORT SEQ TIMEOUT: poll a running mirror's status
wait_serving() {
    python3 "$SCRATCH/bin/sync.py" --status "http://127.0.0.1:$2/_samizdat/status" --seq "$3" \
        --timeout "$4" --out "$SCRATCH/wait.out" || {
        tail -20 "$SCRATCH/$1.log" >&2 || true
        die "$1 did not serve seq $3 within $4 s"
    }
}
# start_mirror NAME PUB UPSTREAM PORT DATADIR: a background daemon, pid in MIRROR_PID
start_mirror() {
    "$SZ" mirror --publisher "$2" --upstream "$3" --listen "127.0.0.1:$4" --data-dir "$5" \
        --poll-interval 1s >"$SCRATCH/$1.log" 2>&1 &
    MIRROR_PID=$!
    PIDS+=("$MIRROR_PID")
}

# ================================================================ serve ==
serve_bench() {
    local S="$SCRATCH/serve"
    mkdir -p "$S"
    [ -f "$NEWS_GEN" ] || die "news generator not found at $NEWS_GEN"
    log "[serve] generating a 200-article news site"
    python3 "$NEWS_GEN" --out "$S/site" --articles 200 >/dev/null
    # The article closest to 7 KB, and two incompressible images: 1 MiB (the
    # largest object the daemon caches in memory) and 4 MiB (streamed from disk).
    ARTICLE="$(cd "$S/site" && find . -name 'article-*.html' -printf '%s %P\n' |
        awk '{d=$1-7168; if (d<0) d=-d; print d, $1, $2}' | sort -n | head -1 | cut -d' ' -f3)"
    ARTICLE_SIZE="$(stat -c %s "$S/site/$ARTICLE")"
    head -c 1M /dev/urandom >"$S/site/images/bench-1m.jpg"
    head -c 4M /dev/urandom >"$S/site/images/bench-4m.jpg"
    "$SZ" keygen "$S/K" >/dev/null
    "$SZ" bundle "$S/site" --keys "$S/K" --repo "$S/R" >/dev/null 2>&1
    # The files nginx serves: a verified checkout of the same snapshot.
    "$SZ" extract "$S/R" --trust "$S/K/publisher.pub" --out "$S/www" >/dev/null 2>&1
    gzip -9 -k -n "$S/www/$ARTICLE" # for gzip_static: the precompressed twin
    chmod -R a+rX "$S"

    local ports
    read -r P_SZ P_NG P_NGZ <<<"$(free_ports 3)"
    start_mirror serve-mirror "$S/K/publisher.pub" "$S/R" "$P_SZ" "$S/data"
    SERVE_PID=$MIRROR_PID
    wait_serving serve-mirror "$P_SZ" 1 120

    # Temporary nginx for the benchmark: one master, one worker per core (like
    # the daemon's tokio runtime), no logging, sendfile and an open-file cache.
    write_nginx_conf "$S/nginx" <<EOF
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_min_uses 1;
    open_file_cache_errors on;
    # The same security headers the mirror sends, so responses are alike.
    add_header Cache-Control "public, max-age=60";
    add_header Content-Security-Policy "default-src 'self' data: 'unsafe-inline'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'; object-src 'none'";
    add_header X-Content-Type-Options nosniff;
    add_header Referrer-Policy no-referrer;
    # Identity, and gzip from a precompressed .gz twin (like the mirror's compressed cache).
    server {
        listen 127.0.0.1:$P_NG;
        root $S/www;
        gzip_static on;
        gzip_vary on;
    }
    # gzip compressed per request (level 6).
    server {
        listen 127.0.0.1:$P_NGZ;
        root $S/www;
        gzip on;
        gzip_comp_level 6;
        gzip_vary on;
        gzip_types text/html;
    }
EOF
    "$NGINX" -p "$S/nginx" -c "$S/nginx/nginx.conf" -e "$S/nginx/logs/error.log" >"$S/nginx/stdout" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    local i
    for i in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$P_NG/$ARTICLE" && curl -sf -o /dev/null "http://127.0.0.1:$P_NGZ/$ARTICLE" && break
        sleep 0.1
    done
    nginx_pids() { echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"; }
    log "[serve] nginx pids: $(nginx_pids); samizdat pid $SERVE_PID; article /$ARTICLE ($ARTICLE_SIZE bytes)"

    # Same bytes from both servers, decoded gzip equal to the original.
    local u f
    for u in "$ARTICLE" images/bench-1m.jpg images/bench-4m.jpg; do
        for f in "$P_SZ" "$P_NG" "$P_NGZ"; do
            curl -sf "http://127.0.0.1:$f/$u" | cmp -s - "$S/site/$u" || die "[serve] port $f: /$u differs from the site file"
        done
    done
    for f in "$P_SZ" "$P_NG" "$P_NGZ"; do
        local ce
        ce="$(curl -sf -D - -o "$S/gz.$f" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$f/$ARTICLE" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding"{print $2}')"
        [ "$ce" = gzip ] || die "[serve] port $f: no gzip for /$ARTICLE (got '$ce')"
        gzip -dc "$S/gz.$f" | cmp -s - "$S/site/$ARTICLE" || die "[serve] port $f: gzip body does not decode to the article"
        GZ_SIZE[$f]="$(stat -c %s "$S/gz.$f")"
    done
    curl -sf -D "$S/headers.sz" -o /dev/null "http://127.0.0.1:$P_SZ/$ARTICLE"
    curl -sf -D "$S/headers.ng" -o /dev/null "http://127.0.0.1:$P_NG/$ARTICLE"

    # cases: name|url|accept-encoding|servers
    local cases=(
        "article|/$ARTICLE||sz ng"
        "article-gzip|/$ARTICLE|gzip|sz ng ngz"
        "image-1m|/images/bench-1m.jpg||sz ng"
        "image-4m|/images/bench-4m.jpg||sz ng"
        "article-br-zstd|/$ARTICLE|gzip, deflate, br, zstd|sz"
    )
    CASES=("${cases[@]}")
    local c name url ae servers r k srvs
    for c in "${cases[@]}"; do
        IFS='|' read -r name url ae servers <<<"$c"
        read -r -a srvs <<<"$servers"
        # Warm-up: fills the daemon's body cache and nginx's open-file cache.
        for k in "${srvs[@]}"; do
            wrk_run "$k" "$url" "$ae" 1 >/dev/null
        done
        for r in $(seq 1 "$RUNS"); do
            log "[serve] $name round $r/$RUNS"
            for k in $(seq 0 $((${#srvs[@]} - 1))); do
                local s="${srvs[$(((k + r - 1) % ${#srvs[@]}))]}"
                wrk_run "$s" "$url" "$ae" "$DURATION" >>"$RES/serve.$name.$s"
            done
        done
    done
    SZ_END_RSS="$(rss_kb VmRSS "$SERVE_PID")"
    # shellcheck disable=SC2046
    NG_END_RSS="$(rss_kb VmRSS $(nginx_pids))"
    SZ_THREADS="$(awk '/^Threads:/{print $2}' "/proc/$SERVE_PID/status")"

    if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
        local pc
        for pc in "article|/$ARTICLE" "image-4m|/images/bench-4m.jpg" "image-1m|/images/bench-1m.jpg"; do
            IFS='|' read -r name url <<<"$pc"
            log "[serve] perf of the daemon: $name"
            perf record -q -g -o "$S/perf-$name.data" -p "$SERVE_PID" -- sleep "$DURATION" >/dev/null 2>&1 &
            local perfpid=$!
            wrk_run sz "$url" "" "$DURATION" >/dev/null
            wait "$perfpid" || true
            perf report -i "$S/perf-$name.data" --no-children --sort sym --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]' | head -30 >"$RES/perf.serve.$name" || true
            perf report -i "$S/perf-$name.data" --children --sort sym --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]' | head -40 >"$RES/perf.serve.$name.children" || true
        done
    fi
    stop_pid "$NGINX_PID"
    stop_pid "$SERVE_PID"
}
declare -A GZ_SIZE

# wrk_run SERVER URL ACCEPT-ENCODING SECONDS ->
#   "rps p50_ms p99_ms cpu_s sampled_rss_peak_kb errors MiB_per_s vmhwm_during_run_kb"
wrk_run() {
    local s="$1" url="$2" ae="$3" d="$4" port pids
    case "$s" in
    sz) port=$P_SZ; pids="$SERVE_PID" ;;
    ng) port=$P_NG; pids="$(nginx_pids)" ;;
    ngz) port=$P_NGZ; pids="$(nginx_pids)" ;;
    esac
    local hdr=()
    [ -n "$ae" ] && hdr=(-H "Accept-Encoding: $ae")
    # shellcheck disable=SC2086
    local c0 c1 p
    # Reset each process's peak RSS to its current RSS (clear_refs 5, Linux
    # >= 4.0), so VmHWM after the run is the exact peak during it.
    for p in $pids; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done
    c0="$(cpu_ticks $pids)"
    # RSS sampled every 0.1 s during the load (sum over the server's processes).
    (
        m=0
        while [ ! -e "$SCRATCH/stop-sampler" ]; do
            # shellcheck disable=SC2086
            v="$(rss_kb VmRSS $pids)"
            [ "$v" -gt "$m" ] && m=$v
            echo "$m" >"$SCRATCH/sampler.out"
            sleep 0.1
        done
    ) &
    local sp=$!
    timeout $((d + 30)) wrk -t1 -c"$CONNS" -d"${d}s" --latency "${hdr[@]}" "http://127.0.0.1:$port$url" >"$SCRATCH/wrk.out" 2>&1 || true
    touch "$SCRATCH/stop-sampler"
    wait "$sp" 2>/dev/null || true
    rm -f "$SCRATCH/stop-sampler"
    # shellcheck disable=SC2086
    c1="$(cpu_ticks $pids)"
    local hwm
    # shellcheck disable=SC2086
    hwm="$(rss_kb VmHWM $pids)"
    "${STATS[@]}" wrk "$SCRATCH/wrk.out" "$((c1 - c0))" "$TICK" "$(cat "$SCRATCH/sampler.out" 2>/dev/null || echo 0)" "$hwm"
}

# ================================================================= full ==
full_bench() {
    local F="$SCRATCH/full"
    mkdir -p "$F"
    DOCS="$(rustc --print sysroot)/share/doc/rust/html"
    [ -d "$DOCS" ] || die "no Rust docs at $DOCS (rustup component add rust-docs)"
    [ "$QUICK" = 1 ] && DOCS="$DOCS/std"
    log "[full] dataset $DOCS (read in place, never modified)"
    warm "$DOCS"
    FULL_FILES="$(find "$DOCS" -type f | wc -l)"
    FULL_BYTES="$("${STATS[@]}" total "$DOCS")"
    local du need avail
    du="$(du -sb "$DOCS" | cut -f1)"
    avail="$(df -B1 --output=avail "$SCRATCH" | tail -1 | tr -d ' ')"
    need=$((du * (2 * RUNS + 6)))
    [ "$avail" -gt "$need" ] || die "[full] needs about $((need >> 20)) MiB free in $SCRATCH, has $((avail >> 20))"

    local t0 t1
    TARZST_S="$(hyper full.tarzstd "$F/tarzstd.log" sh -c 'tar -C "$1" -cf - . | zstd -T2 -3 -q -c >"$2"' sh "$DOCS" "$F/docs.tar.zst")"
    TARZST="$(stat -c %s "$F/docs.tar.zst")"
    rm -f "$F/docs.tar.zst"

    "$SZ" keygen "$F/K" >/dev/null
    FULL_BUNDLE_S="$(hyper full.bundle "$F/bundle.log" "$SZ" bundle "$DOCS" --keys "$F/K" --repo "$F/R")"

    read -r PA PX PR PRX <<<"$(free_ports 4)"
    # Mirror A syncs from the publisher's repository on local disk.
    t0="$(now_s)"
    start_mirror full-A "$F/K/publisher.pub" "$F/R" "$PA" "$F/A"
    local apid=$MIRROR_PID
    FULL_APID=$apid
    wait_serving full-A "$PA" 1 "$CMD_TIMEOUT"
    t1="$(now_s)"
    FULL_A_S="$(elapsed "$t0" "$t1")"
    # What A's bundle endpoint costs alone (A generating + curl discarding).
    local fp
    fp="$(curl -sf "http://127.0.0.1:$PA/_samizdat/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sites"][0]["fingerprint"])')"
    t0="$(now_s)"
    FULL_BUNDLE_BYTES="$(curl -sf "http://127.0.0.1:$PA/_samizdat/repo/$fp/bundle" | wc -c)"
    t1="$(now_s)"
    FULL_GET_S="$(elapsed "$t0" "$t1")"

    cat >"$F/rsyncd.conf" <<EOF
use chroot = no
max connections = 8
[docs]
    path = $DOCS
    read only = yes
EOF
    start_rsyncd "$F" "$PR"

    local r k
    for r in $(seq 1 "$RUNS"); do
        log "[full] round $r/$RUNS"
        local steps=(full_step_sz full_step_rsync)
        for k in 0 1; do "${steps[$(((k + r - 1) % 2))]}" "$r" "$PA" "$PR"; done
    done
    # One more run of each through the byte-counting relay (bytes on the wire).
    log "[full] runs through the byte-counting relay"
    relay_start "$PX" "$PA"
    full_step_sz proxy "$PX" "" watch-none
    relay_stop "$RES/full.sz.bytes"
    relay_start "$PRX" "$PR"
    full_step_rsync proxy "" "$PRX"
    relay_stop "$RES/full.rsync.bytes"
    log "[full] rsync -az (compressed), one run"
    local t
    t0="$(hyper full.rsyncz "$F/rsync-z.stats" rsync -az --stats "rsync://127.0.0.1:$PR/docs/" "$F/rsz/")"
    echo "$t0 $(rsync_bytes "$F/rsync-z.stats")" >"$RES/full.rsyncz"
    FULL_A_HWM="$(rss_kb VmHWM "$apid")"
    # Correctness: B's files are the docs (spot check of the rsync copy too).
    diff -rq "$DOCS" "$F/rsync.1" >/dev/null || die "[full] rsync copy differs from the docs"

    if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
        log "[full] perf (system-wide) of one more full sync"
        perf record -q -a -g -o "$F/perf.data" -- sleep 3600 >/dev/null 2>&1 &
        local perfpid=$!
        sleep 1
        full_step_sz perf "$PA" ""
        kill -INT "$perfpid" 2>/dev/null || true
        wait "$perfpid" 2>/dev/null || true
        # Both mirrors' threads are named samizdat / tokio-rt-worker; A's work shows as
        # ZSTD_compress*/ldm, B's as ZSTD_decompress*, SHA-256 and file creation.
        local comms="samizdat,tokio-rt-worker,tokio-runtime-w"
        perf report -i "$F/perf.data" --sort comm --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -8 >"$RES/perf.full.comm" || true
        perf report -i "$F/perf.data" --no-children --comms "$comms" --percentage relative --sort sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -40 >"$RES/perf.full" || true
        perf report -i "$F/perf.data" --children --comms "$comms" --percentage relative --sort sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | grep -E 'samizdat::|ZSTD_(compress|decompress)[A-Za-z_]*$|sha2::|ext4_create|__ext4_new_inode|recently_deleted|__x64_sys_(openat|write|renameat2?|mkdir|statx|fsync|syncfs|read|unlink)$' |
            head -50 >"$RES/perf.full.children" || true
        rm -f "$F/perf.data"
    fi
    stop_pid "$RSYNCD_PID"
    stop_pid "$apid"
    rest_bench "$F"
}

# A fresh mirror C of the docs: its RSS at rest after the sync, then its peak
# RSS while wrk asks for every HTML page of the docs in turn (so the body
# cache fills and turns over), then at rest again.
rest_bench() {
    local F="$1" pc pid
    pc="$(free_ports 1)"
    log "[full] mirror C: RSS at rest and while serving every page"
    start_mirror full-C "$F/K/publisher.pub" "$F/R" "$pc" "$F/C"
    pid=$MIRROR_PID
    wait_serving full-C "$pc" 1 "$CMD_TIMEOUT"
    # At rest: two poll intervals (1 s) after the sync that loaded the site.
    sleep 3
    FULL_REST_RSS="$(rss_kb VmRSS "$pid")"
    (cd "$DOCS" && find . -name '*.html' -printf '/%P\n' | LC_ALL=C sort) >"$F/pages"
    FULL_PAGES="$(wc -l <"$F/pages")"
    cat >"$F/pages.lua" <<EOF
local paths, n, i = {}, 0, 0
for line in io.lines("$F/pages") do n = n + 1; paths[n] = line end
request = function()
    i = i % n + 1
    return wrk.format("GET", paths[i])
end
EOF
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    timeout 60 wrk -t1 -c16 -d10s -s "$F/pages.lua" "http://127.0.0.1:$pc/" >"$F/pages.wrk" 2>&1 || true
    FULL_SERVE_HWM="$(rss_kb VmHWM "$pid")"
    FULL_SERVE_RPS="$(awk '/^Requests\/sec:/ {print $2}' "$F/pages.wrk")"
    FULL_SERVE_ERR="$(awk '/Non-2xx/ {e+=$NF} END {print e+0}' "$F/pages.wrk")"
    sleep 3
    FULL_REST2_RSS="$(rss_kb VmRSS "$pid")"
    stop_pid "$pid"
}
full_step_sz() { # RUN PORT_A - [watch-none]
    local r="$1" port="$2" watch=(--watch "$FULL_APID")
    [ "${4:-}" = watch-none ] && watch=()
    local PB
    PB="$(free_ports 1)"
    python3 "$SCRATCH/bin/sync.py" --status "http://127.0.0.1:$PB/_samizdat/status" --seq 1 \
        --timeout "$CMD_TIMEOUT" --out "$SCRATCH/sync.out" --log "$SCRATCH/full-B.$r.log" "${watch[@]}" -- \
        "$SZ" mirror --publisher "$SCRATCH/full/K/publisher.pub" --upstream "http://127.0.0.1:$port/" \
        --listen "127.0.0.1:$PB" --data-dir "$SCRATCH/full/B.$r" --poll-interval 1s ||
        { tail -20 "$SCRATCH/full-B.$r.log" >&2; die "[full] mirror B did not reach seq 1"; }
    case "$r" in [0-9]*) cut -f1 "$SCRATCH/sync.out" >>"$RES/full.sz" ;; *) cut -f1 "$SCRATCH/sync.out" >"$RES/full.sz.$r" ;; esac
    cut -f2 "$SCRATCH/sync.out" >"$RES/full.sz.outcome"
}
full_step_rsync() { # RUN - PORT
    local r="$1" port="$3" t
    t="$(hyper "full.rsync.$r" "$SCRATCH/full/rsync.$r.stats" rsync -a --stats "rsync://127.0.0.1:$port/docs/" "$SCRATCH/full/rsync.$r/")"
    local line
    line="$t $(rsync_bytes "$SCRATCH/full/rsync.$r.stats")"
    case "$r" in [0-9]*) echo "$line" >>"$RES/full.rsync" ;; *) echo "$line" >"$RES/full.rsync.$r" ;; esac
}
rsync_bytes() { # "received sent" from rsync --stats
    awk -F': ' '/^Total bytes received/ {gsub(/,/,"",$2); r=$2} /^Total bytes sent/ {gsub(/,/,"",$2); s=$2} END{print r+0, s+0}' "$1"
}
# start_rsyncd DIR PORT: an rsync daemon for DIR/rsyncd.conf on 127.0.0.1:PORT,
# its pid in RSYNCD_PID; returns once it answers (at most 5 s).
start_rsyncd() {
    rsync --daemon --no-detach --config="$1/rsyncd.conf" --address=127.0.0.1 --port="$2" \
        --log-file="$1/rsyncd.log" &
    RSYNCD_PID=$!
    PIDS+=("$RSYNCD_PID")
    local i
    for i in $(seq 50); do rsync "rsync://127.0.0.1:$2/" >/dev/null 2>&1 && break; sleep 0.1; done
}
relay_start() {
    python3 "$SCRATCH/bin/proxy.py" "$1" "$2" "$SCRATCH/relay.out" &
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    local i
    for i in $(seq 50); do
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && break
        sleep 0.1
    done
}
relay_stop() { # relay_stop OUTFILE: "down up"
    rm -f "$SCRATCH/relay.out"
    kill -TERM "$RELAY_PID" 2>/dev/null || true
    wait "$RELAY_PID" 2>/dev/null || true
    cp "$SCRATCH/relay.out" "$1"
}

# ================================================================= incr ==
incr_bench() {
    local I="$SCRATCH/incr"
    mkdir -p "$I"
    [ -f "$NEWS_GEN" ] || die "news generator not found at $NEWS_GEN"
    INCR_ARTICLES=20000
    [ "$QUICK" = 1 ] && INCR_ARTICLES=2000
    log "[incr] generating day 1 and day 2 of a $INCR_ARTICLES-article news site"
    python3 "$NEWS_GEN" --out "$I/day1" --articles "$INCR_ARTICLES" >/dev/null
    python3 "$NEWS_GEN" --out "$I/day2" --articles "$INCR_ARTICLES" --day 2 >/dev/null
    # day2-keep: day 2 where unchanged files keep their day-1 mtime (rsync's best case).
    cp -a "$I/day2" "$I/day2-keep"
    read -r INCR_SAME INCR_CHANGED INCR_ADDED INCR_DELETED INCR_CHANGED_BYTES <<<"$(python3 "$SCRATCH/bin/mtimes.py" "$I/day1" "$I/day2-keep")"
    INCR_FILES1="$(find "$I/day1" -type f | wc -l)"
    INCR_FILES2="$(find "$I/day2" -type f | wc -l)"
    INCR_BYTES2="$("${STATS[@]}" total "$I/day2")"
    warm "$I/day1"
    warm "$I/day2"

    "$SZ" keygen "$I/K" >/dev/null
    "$SZ" bundle "$I/day1" --keys "$I/K" --repo "$I/R" >/dev/null 2>&1
    read -r PA PX PR PRX <<<"$(free_ports 4)"
    start_mirror incr-A "$I/K/publisher.pub" "$I/R" "$PA" "$I/A"
    local apid=$MIRROR_PID
    wait_serving incr-A "$PA" 1 "$CMD_TIMEOUT"
    # Mirror B at day 1 (synced from A), stopped; each run starts from a copy.
    local PB
    PB="$(free_ports 1)"
    python3 "$SCRATCH/bin/sync.py" --status "http://127.0.0.1:$PB/_samizdat/status" --seq 1 \
        --timeout "$CMD_TIMEOUT" --out "$SCRATCH/sync.out" --log "$SCRATCH/incr-B0.log" -- \
        "$SZ" mirror --publisher "$I/K/publisher.pub" --upstream "http://127.0.0.1:$PA/" \
        --listen "127.0.0.1:$PB" --data-dir "$I/B0" --poll-interval 1s || die "[incr] mirror B did not reach seq 1"
    # The publisher bundles day 2 into A's upstream repository; A picks it up.
    local t0 t1
    INCR_BUNDLE_S="$(hyper incr.bundle "$I/bundle.log" "$SZ" bundle "$I/day2" --keys "$I/K" --repo "$I/R")"
    wait_serving incr-A "$PA" 2 "$CMD_TIMEOUT"
    local fp
    fp="$(curl -sf "http://127.0.0.1:$PA/_samizdat/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sites"][0]["fingerprint"])')"
    # The delta as an older client gets it (version 1: changed files whole) and as
    # B asks for it (version 2: patches against the day-1 versions).
    INCR_DELTA_BYTES="$(curl -sf "http://127.0.0.1:$PA/_samizdat/repo/$fp/bundle?since=1" | wc -c)"
    INCR_DELTA_V2_BYTES="$(curl -sf "http://127.0.0.1:$PA/_samizdat/repo/$fp/bundle?since=1&version=2" | wc -c)"
    # The same update without the search index (bundle --no-search): the part
    # rsync also carries, since rsync copies only the site.
    local PN
    PN="$(free_ports 1)"
    "$SZ" bundle "$I/day1" --keys "$I/K" --repo "$I/Rn" --no-search >/dev/null 2>&1
    start_mirror incr-N "$I/K/publisher.pub" "$I/Rn" "$PN" "$I/N"
    local npid=$MIRROR_PID
    wait_serving incr-N "$PN" 1 "$CMD_TIMEOUT"
    "$SZ" bundle "$I/day2" --keys "$I/K" --repo "$I/Rn" --no-search >/dev/null 2>&1
    wait_serving incr-N "$PN" 2 "$CMD_TIMEOUT"
    INCR_NOIDX_V1_BYTES="$(curl -sf "http://127.0.0.1:$PN/_samizdat/repo/$fp/bundle?since=1" | wc -c)"
    INCR_NOIDX_V2_BYTES="$(curl -sf "http://127.0.0.1:$PN/_samizdat/repo/$fp/bundle?since=1&version=2" | wc -c)"
    stop_pid "$npid"

    cat >"$I/rsyncd.conf" <<EOF
use chroot = no
max connections = 8
[day2]
    path = $I/day2
    read only = yes
[day2keep]
    path = $I/day2-keep
    read only = yes
EOF
    start_rsyncd "$I" "$PR"
    # Every run starts from a fresh copy of the day-1 state (made before timing).
    local r k
    for r in $(seq 1 "$RUNS"); do
        cp -a "$I/B0" "$I/B.$r"
        cp -a "$I/day1" "$I/rs.$r"
        cp -a "$I/day1" "$I/rsk.$r"
    done
    for r in $(seq 1 "$RUNS"); do
        log "[incr] round $r/$RUNS"
        local steps=(incr_step_sz incr_step_rsync incr_step_rsync_keep)
        for k in 0 1 2; do "${steps[$(((k + r - 1) % 3))]}" "$r" "$PA" "$PR"; done
    done
    log "[incr] runs through the byte-counting relay"
    cp -a "$I/B0" "$I/B.proxy"
    cp -a "$I/day1" "$I/rs.proxy"
    cp -a "$I/day1" "$I/rsk.proxy"
    relay_start "$PX" "$PA"
    incr_step_sz proxy "$PX" ""
    relay_stop "$RES/incr.sz.bytes"
    relay_start "$PRX" "$PR"
    incr_step_rsync proxy "" "$PRX"
    relay_stop "$RES/incr.rsync.bytes"
    relay_start "$PRX" "$PR"
    incr_step_rsync_keep proxy "" "$PRX"
    relay_stop "$RES/incr.rsynckeep.bytes"
    # The fixed cost in the mirror's number: restart a B that is already at
    # seq 2 and wait for its first (no-op) sync round.
    PB="$(free_ports 1)"
    python3 "$SCRATCH/bin/sync.py" --status "http://127.0.0.1:$PB/_samizdat/status" --seq 2 --outcome "up to date" \
        --timeout "$CMD_TIMEOUT" --out "$SCRATCH/sync.out" --log "$SCRATCH/incr-noop.log" -- \
        "$SZ" mirror --publisher "$I/K/publisher.pub" --upstream "http://127.0.0.1:$PA/" \
        --listen "127.0.0.1:$PB" --data-dir "$I/B.1" --poll-interval 1s || die "[incr] no-op restart failed"
    cut -f1 "$SCRATCH/sync.out" >"$RES/incr.sz.noop"
    INCR_A_HWM="$(rss_kb VmHWM "$apid")"
    diff -rq "$I/day2" "$I/rs.1" >/dev/null || die "[incr] rsync copy differs from day 2"
    diff -rq "$I/day2" "$I/rsk.1" >/dev/null || die "[incr] rsync copy (mtime-kept source) differs from day 2"
    stop_pid "$RSYNCD_PID"
    stop_pid "$apid"
}
incr_step_sz() { # RUN PORT_A
    local r="$1" port="$2" PB
    PB="$(free_ports 1)"
    python3 "$SCRATCH/bin/sync.py" --status "http://127.0.0.1:$PB/_samizdat/status" --seq 2 \
        --timeout "$CMD_TIMEOUT" --out "$SCRATCH/sync.out" --log "$SCRATCH/incr-B.$r.log" -- \
        "$SZ" mirror --publisher "$SCRATCH/incr/K/publisher.pub" --upstream "http://127.0.0.1:$port/" \
        --listen "127.0.0.1:$PB" --data-dir "$SCRATCH/incr/B.$r" --poll-interval 1s ||
        { tail -20 "$SCRATCH/incr-B.$r.log" >&2; die "[incr] mirror B did not reach seq 2"; }
    case "$r" in [0-9]*) cut -f1 "$SCRATCH/sync.out" >>"$RES/incr.sz" ;; *) cut -f1 "$SCRATCH/sync.out" >"$RES/incr.sz.$r" ;; esac
    cut -f2 "$SCRATCH/sync.out" >"$RES/incr.sz.outcome"
}
incr_rsync() { # RUN PORT MODULE DEST KEY
    local r="$1" port="$2" mod="$3" dest="$4" key="$5" t
    t="$(hyper "$key.$r" "$dest.stats" rsync -az --delete --stats "rsync://127.0.0.1:$port/$mod/" "$dest/")"
    local line
    line="$t $(rsync_bytes "$dest.stats")"
    case "$r" in [0-9]*) echo "$line" >>"$RES/$key" ;; *) echo "$line" >"$RES/$key.$r" ;; esac
}
incr_step_rsync() { incr_rsync "$1" "$3" day2 "$SCRATCH/incr/rs.$1" incr.rsync; }
incr_step_rsync_keep() { incr_rsync "$1" "$3" day2keep "$SCRATCH/incr/rsk.$1" incr.rsynckeep; }

# =============================================================== report ==
verdict() { "${STATS[@]}" verdict "$1" "$2" "$3"; } # verdict VALUE OP LIMIT -> met / missed text

environment() {
    local dev fs opts
    dev="$(df --output=source "$SCRATCH" | tail -1)"
    fs="$(awk -v d="$dev" '$1==d {print $3; exit}' /proc/mounts)"
    opts="$(awk -v d="$dev" '$1==d {print $4; exit}' /proc/mounts)"
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| samizdat | $GIT_REV, release build |"
    echo "| nproc | $(nproc) |"
    echo "| CPU | $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo) |"
    echo "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
    echo "| kernel | $(uname -sr) |"
    echo "| scratch disk | $SCRATCH: $fs on $dev ($opts) |"
    echo "| load average at start / end | $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo "| nginx | $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') |"
    echo "| wrk | $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}') |"
    echo "| rsync | $(rsync --version | head -1) |"
    echo "| zstd | $(zstd --version | head -1 | tr -d '*' | sed 's/^ *//; s/ *$//') |"
    echo "| python3 | $(python3 --version 2>&1) |"
    echo "| load generator | wrk -t1 -c$CONNS -d${DURATION}s --latency, $RUNS runs per server and case, median |"
}

serve_report() {
    echo "## Serving: samizdat mirror vs nginx"
    echo
    echo "Site: a 200-article generated news site plus two incompressible images, bundled,"
    echo "served by \`samizdat mirror\` (synced from the local repository) and by nginx"
    echo "from a verified checkout of the same snapshot (\`samizdat extract\`), same URL paths."
    echo "nginx: \`master_process on; worker_processes auto\` (2 workers, one per core, as the"
    echo "daemon's tokio runtime has), \`access_log off; sendfile on; tcp_nopush on;"
    echo "open_file_cache max=10000\`, \`keepalive_requests 1000000\`, the same security headers"
    echo "as the mirror; gzip either from a precompressed \`.gz\` (\`gzip_static\`, \`gzip -9\`) or per"
    echo "request (\`gzip on; gzip_comp_level 6\`). Article: \`/$ARTICLE\`, $ARTICLE_SIZE bytes"
    echo "(gzip: samizdat ${GZ_SIZE[$P_SZ]} B, nginx gzip_static ${GZ_SIZE[$P_NG]} B, nginx level 6 ${GZ_SIZE[$P_NGZ]} B)."
    echo "Response header bytes: samizdat $(wc -c <"$SCRATCH/serve/headers.sz"), nginx $(wc -c <"$SCRATCH/serve/headers.ng")."
    echo
    echo "| case | server | req/s (median) | runs | ÷ nginx | best run ÷ nginx's best | p50 ms | p99 ms | p99 ÷ nginx | lowest p99 ms | server CPU µs/req | MiB/s | peak RSS during load MiB | errors |"
    echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local c name url ae servers s label
    for c in "${CASES[@]}"; do
        IFS='|' read -r name url ae servers <<<"$c"
        local ngr ngp
        ngr="$(med "serve.$name.ng" 1)"
        ngp="$(med "serve.$name.ng" 3)"
        for s in $servers; do
            local k="serve.$name.$s" rps p50 p99 cpu cpr
            rps="$(med "$k" 1)"
            p50="$(med "$k" 2)"
            p99="$(med "$k" 3)"
            cpr="$("${STATS[@]}" perreq "$RES" "$k" "$DURATION")"
            case "$s" in sz) label="**samizdat**" ;; ng) label="nginx" ;; ngz) label="nginx, gzip per request" ;; esac
            printf '| %s%s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %.0f | %s | %s |\n' "$name" "${ae:+ (Accept-Encoding: $ae)}" "$label" "$rps" \
                "$(runs_of "$k" 1 '%.0f')" "$(ratio "$rps" "$ngr")" "$(ratio "$(maxcol "$k" 1)" "$(maxcol "serve.$name.ng" 1)")" \
                "$p50" "$p99" "$(ratio "$p99" "$ngp")" "$(mincol "$k" 3)" "$cpr" \
                "$(med "$k" 7)" "$(mibk "$(maxcol "$k" 8)")" "$(sumcol "$k" 6)"
        done
    done
    echo
    echo "Peak RSS during load: VmHWM after each run, reset before it with \`echo 5 > /proc/PID/clear_refs\`"
    echo "(for nginx, the sum over master and workers); the largest of the runs. The cases run in"
    echo "the order of the table, so a case's peak starts from what the earlier ones left resident."
    echo "RSS after all the load: samizdat $(mibk "$SZ_END_RSS") MiB ($SZ_THREADS threads), nginx $(mibk "$NG_END_RSS") MiB."
    echo "\"best run\" is the highest req/s of the runs, \"lowest p99\" the lowest p99: on this shared"
    echo "machine a run's tail is mostly other tenants' scheduling noise, so these show each server"
    echo "when the machine was quietest."
    echo "Server CPU per request: utime + stime of the server's processes over the run ÷ requests"
    echo "(wrk itself runs on the other core, so req/s of the large files is partly wrk's limit)."
    echo
    local f
    for f in "$RES"/perf.serve.*; do
        [ -s "$f" ] || continue
        case "$f" in *.children) continue ;; esac
        echo "perf of the daemon, ${f##*perf.serve.} (self time, top entries):"
        echo
        echo '```'
        head -25 "$f"
        echo '```'
        echo
        if [ -s "$f.children" ]; then
            echo "Including callees:"
            echo
            echo '```'
            head -30 "$f.children"
            echo '```'
            echo
        fi
    done
}

full_report() {
    local sz rs szb rsb szup rsup rsz
    sz="$(med full.sz 1)"
    rs="$(med full.rsync 1)"
    read -r szb szup <"$RES/full.sz.bytes"
    read -r rsb rsup <"$RES/full.rsync.bytes"
    echo "## First full sync: \`$(echo "$DOCS" | sed "s|$(rustc --print sysroot)|\$(rustc --print sysroot)|")\`"
    echo
    echo "$FULL_FILES files, $FULL_BYTES bytes ($(mib "$FULL_BYTES") MiB). Publisher bundle: ${FULL_BUNDLE_S} s;"
    echo "mirror A's own first sync from that repository on local disk: ${FULL_A_S} s."
    echo "Mirror B starts with an empty data directory and \`--upstream http://127.0.0.1:PORT_A/\`;"
    echo "its time is from process start until \`/_samizdat/status\` shows it serving seq 1 (polled"
    echo "every 20 ms). rsync: \`rsync -a --stats rsync://127.0.0.1:PORT/docs/ DEST/\` into an empty"
    echo "directory, from an \`rsync --daemon\` serving the docs in place. Bytes on the wire: one"
    echo "more run of each through a byte-counting TCP relay (TCP payload both ways, HTTP and"
    echo "rsync protocol overhead included); rsync's own \`--stats\` agree with it."
    echo
    echo "| | median s | runs s | ÷ rsync | bytes received (relay) | bytes sent (relay) | MiB received | ÷ tar\\|zstd | peak RSS MiB |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
    printf '| **samizdat mirror B ← mirror A** | %s | %s | %s | %s | %s | %s | %s | B %s, A %s |\n' "$sz" "$(runs_of full.sz 1)" "$(ratio "$sz" "$rs")" \
        "$szb" "$szup" "$(mib "$szb")" "$(ratio "$szb" "$TARZST")" "$(mibk "$(maxcol full.sz 2)")" "$(mibk "$(maxcol full.sz 3)")"
    printf '| rsync -a (daemon) | %s | %s | 1.00 | %s | %s | %s | %s | |\n' "$rs" "$(runs_of full.rsync 1)" \
        "$rsb" "$rsup" "$(mib "$rsb")" "$(ratio "$rsb" "$TARZST")"
    read -r rsz rszb rszs <"$RES/full.rsyncz"
    printf '| rsync -az (1 run) | %.3f | | %s | %s (--stats) | %s | %s | %s | |\n' "$rsz" "$(ratio "$rsz" "$rs")" "$rszb" "$rszs" "$(mib "$rszb")" "$(ratio "$rszb" "$TARZST")"
    printf '| tar \\| zstd -T2 -3 (size reference) | %s | | | %s | | %s | 1.00 | |\n' "$TARZST_S" "$TARZST" "$(mib "$TARZST")"
    echo
    echo "Details: relay runs took samizdat $(cut -d' ' -f1 "$RES/full.sz.proxy") s and rsync $(cut -d' ' -f1 "$RES/full.rsync.proxy") s"
    echo "(not used for times). rsync --stats, median run: received $(med full.rsync 2), sent $(med full.rsync 3)."
    echo "A's bundle endpoint alone (\`curl .../bundle | wc -c\`): $FULL_BUNDLE_BYTES bytes in $FULL_GET_S s."
    echo "Mirror A's VmHWM after serving every bundle: $(mibk "$FULL_A_HWM") MiB."
    echo
    echo "Mirror C (a fresh mirror of the docs, synced from the repository on disk): VmRSS at rest"
    echo "$(mibk "$FULL_REST_RSS") MiB; peak (VmHWM, reset first) while wrk -c16 asked for each of the"
    echo "$FULL_PAGES HTML pages in turn for 10 s: $(mibk "$FULL_SERVE_HWM") MiB ($FULL_SERVE_RPS req/s, $FULL_SERVE_ERR non-2xx);"
    echo "at rest after the load: $(mibk "$FULL_REST2_RSS") MiB."
    echo "B's outcome: \`$(cat "$RES/full.sz.outcome")\`."
    echo
    if [ -s "$RES/perf.full.comm" ]; then
        echo "perf, system-wide during one more full sync: CPU samples by command (other"
        echo "sessions' work on this machine shows up here too):"
        echo
        echo '```'
        cat "$RES/perf.full.comm"
        echo '```'
        echo
    fi
    if [ -s "$RES/perf.full" ]; then
        echo "The two mirrors' threads only (self time, % of their samples):"
        echo
        echo '```'
        head -35 "$RES/perf.full"
        echo '```'
        echo
        if [ -s "$RES/perf.full.children" ]; then
            echo "Including callees (selected symbols, % of the mirrors' samples):"
            echo
            echo '```'
            head -40 "$RES/perf.full.children"
            echo '```'
            echo
        fi
    fi
}

incr_report() {
    local sz rs rk szb szup rsb rsup rkb rkup
    sz="$(med incr.sz 1)"
    rs="$(med incr.rsync 1)"
    rk="$(med incr.rsynckeep 1)"
    read -r szb szup <"$RES/incr.sz.bytes"
    read -r rsb rsup <"$RES/incr.rsync.bytes"
    read -r rkb rkup <"$RES/incr.rsynckeep.bytes"
    echo "## Incremental sync: news site, day 1 → day 2"
    echo
    echo "\`make-news-site.py --articles $INCR_ARTICLES\` (day 1: $INCR_FILES1 files) and \`--day 2\`"
    echo "(day 2: $INCR_FILES2 files, $(mib "$INCR_BYTES2") MiB): $INCR_CHANGED changed, $INCR_ADDED added,"
    echo "$INCR_DELETED deleted, $INCR_SAME unchanged; the changed and added files hold $INCR_CHANGED_BYTES bytes ($(mib "$INCR_CHANGED_BYTES") MiB)."
    echo "Mirror B is at seq 1 (synced from A) and stopped; the publisher bundles day 2 into A's"
    echo "upstream repository (${INCR_BUNDLE_S} s) and A syncs it. Each run then starts B on a fresh"
    echo "copy of its day-1 data directory and times until it serves seq 2 (B fetches"
    echo "\`bundle?since=1\`). rsync: \`rsync -az --delete --stats\` from the daemon into a fresh"
    echo "\`cp -a\` of day 1, either from day 2 as generated (every file has a new mtime, so"
    echo "rsync delta-checks every file) or from day 2 where unchanged files keep their day-1"
    echo "mtime (rsync's best case: its quick check skips them)."
    echo
    echo "| | median s | runs s | ÷ rsync -az (kept mtimes) | bytes received (relay) | bytes sent (relay) | received ÷ rsync -az (kept mtimes) |"
    echo "|---|---:|---|---:|---:|---:|---:|"
    printf '| **samizdat mirror B ← mirror A** | %s | %s | %s | %s | %s | %s |\n' "$sz" "$(runs_of incr.sz 1)" "$(ratio "$sz" "$rk")" "$szb" "$szup" "$(ratio "$szb" "$rkb")"
    printf '| rsync -az --delete, unchanged files keep mtime | %s | %s | 1.00 | %s | %s | 1.00 |\n' "$rk" "$(runs_of incr.rsynckeep 1)" "$rkb" "$rkup"
    printf '| rsync -az --delete, day 2 as generated | %s | %s | %s | %s | %s | %s |\n' "$rs" "$(runs_of incr.rsync 1)" "$(ratio "$rs" "$rk")" "$rsb" "$rsup" "$(ratio "$rsb" "$rkb")"
    echo
    echo
    echo "The delta bundle alone (\`curl .../bundle?since=1[&version=2] | wc -c\`), and the same update"
    echo "published with \`bundle --no-search\` (no signed search index: the part rsync carries too):"
    echo
    echo "| delta bundle | with the search index | ÷ rsync -az (kept mtimes) | without (--no-search) | ÷ rsync -az (kept mtimes) |"
    echo "|---|---:|---:|---:|---:|"
    printf '| version 1, changed files whole (older clients) | %s | %s | %s | %s |\n' "$INCR_DELTA_BYTES" "$(ratio "$INCR_DELTA_BYTES" "$rkb")" "$INCR_NOIDX_V1_BYTES" "$(ratio "$INCR_NOIDX_V1_BYTES" "$rkb")"
    printf '| **version 2, patches** (what B fetches) | %s | %s | %s | %s |\n' "$INCR_DELTA_V2_BYTES" "$(ratio "$INCR_DELTA_V2_BYTES" "$rkb")" "$INCR_NOIDX_V2_BYTES" "$(ratio "$INCR_NOIDX_V2_BYTES" "$rkb")"
    echo
    echo "Restarting a B that is already at seq 2 until its first (no-op) round: $(cut -d' ' -f1 "$RES/incr.sz.noop") s"
    echo "(the fixed part of B's time: start, load the served index, one round of metadata)."
    echo "rsync --stats, median run: as generated received $(med incr.rsync 2) / sent $(med incr.rsync 3);"
    echo "kept mtimes received $(med incr.rsynckeep 2) / sent $(med incr.rsynckeep 3)."
    echo "B's peak RSS (VmHWM) in the runs: $(mibk "$(maxcol incr.sz 2)") MiB; mirror A's VmHWM: $(mibk "$INCR_A_HWM") MiB."
    echo "B's outcome: \`$(cat "$RES/incr.sz.outcome")\`."
    echo
}

targets_report() {
    echo "## Targets"
    echo
    echo "| target | required | measured | result |"
    echo "|---|---|---|---|"
    if want serve; then
        local name v p
        for name in article article-gzip image-1m image-4m; do
            [ -s "$RES/serve.$name.sz" ] || continue
            v="$(ratio "$(med "serve.$name.sz" 1)" "$(med "serve.$name.ng" 1)")"
            p="$(ratio "$(med "serve.$name.sz" 3)" "$(med "serve.$name.ng" 3)")"
            printf '| req/s vs nginx, %s | ≥ 1.0× | %s× | %s |\n' "$name" "$v" "$(verdict "$v" ge 1.0)"
            printf '| p99 vs nginx, %s | ≤ 1.0× | %s× | %s |\n' "$name" "$p" "$(verdict "$p" le 1.0)"
        done
        local peak=0 f m per=""
        for f in "$RES"/serve.*.sz; do
            m="$(maxcol "${f#"$RES"/}" 8)"
            [ "$m" -gt "$peak" ] && peak=$m
            f="${f#"$RES"/serve.}"
            per="$per${per:+, }${f%.sz} $(mibk "$m")"
        done
        printf '| peak RSS while serving (VmHWM per run) | < 32 MiB | %s MiB (%s) | %s |\n' "$(mibk "$peak")" "$per" "$(verdict "$(mibk "$peak")" lt 32)"
    fi
    if want full; then
        local sz rs szb
        sz="$(med full.sz 1)"
        rs="$(med full.rsync 1)"
        read -r szb _ <"$RES/full.sz.bytes"
        printf '| full sync time vs rsync -a | ≤ 1.0× | %s× (%s s vs %s s) | %s |\n' "$(ratio "$sz" "$rs")" "$sz" "$rs" "$(verdict "$(ratio "$sz" "$rs")" le 1.0)"
        printf '| full sync bytes vs tar \\| zstd -3 | ≤ 1.2× | %s× (%s MiB vs %s MiB) | %s |\n' "$(ratio "$szb" "$TARZST")" "$(mib "$szb")" "$(mib "$TARZST")" "$(verdict "$(ratio "$szb" "$TARZST")" le 1.2)"
        printf '| RSS of a mirror of the docs at rest | < 32 MiB | %s MiB (after the load: %s MiB) | %s |\n' "$(mibk "$FULL_REST_RSS")" "$(mibk "$FULL_REST2_RSS")" "$(verdict "$(mibk "$FULL_REST_RSS")" lt 32)"
        printf '| peak RSS of that mirror serving every page | < 32 MiB | %s MiB | %s |\n' "$(mibk "$FULL_SERVE_HWM")" "$(verdict "$(mibk "$FULL_SERVE_HWM")" lt 32)"
        printf '| peak RSS of mirror A while serving the full bundle | (< 32 MiB, if it applies) | %s MiB | %s |\n' "$(mibk "$FULL_A_HWM")" "$(verdict "$(mibk "$FULL_A_HWM")" lt 32)"
    fi
    if want incr; then
        local szb rkb rsb
        read -r szb _ <"$RES/incr.sz.bytes"
        read -r rkb _ <"$RES/incr.rsynckeep.bytes"
        read -r rsb _ <"$RES/incr.rsync.bytes"
        printf '| incremental bytes vs rsync -az (kept mtimes) | ≤ 1.0× | %s× (%s vs %s) | %s |\n' "$(ratio "$szb" "$rkb")" "$szb" "$rkb" "$(verdict "$(ratio "$szb" "$rkb")" le 1.0)"
        printf '| incremental bytes vs rsync -az (as generated) | ≤ 1.0× | %s× (%s vs %s) | %s |\n' "$(ratio "$szb" "$rsb")" "$szb" "$rsb" "$(verdict "$(ratio "$szb" "$rsb")" le 1.0)"
        printf '| incremental bytes vs rsync -az (kept mtimes), site without the search index | ≤ 1.0× | %s× (%s vs %s) | %s |\n' "$(ratio "$INCR_NOIDX_V2_BYTES" "$rkb")" "$INCR_NOIDX_V2_BYTES" "$rkb" "$(verdict "$(ratio "$INCR_NOIDX_V2_BYTES" "$rkb")" le 1.0)"
    fi
    echo
}

# ================================================================= main ==
want serve && serve_bench
want full && full_bench
want incr && incr_bench

suffix=""
[ "$QUICK" = 1 ] && suffix="-quick"
[ -n "$OUT" ] || OUT="bench/results-mirror-$(date -u +%Y-%m-%d)$suffix.md"
{
    echo "# samizdat mirror-daemon benchmark results"
    echo
    echo "Produced by \`bash bench/mirror.sh${ARGS:+ $ARGS}\`. Everything on 127.0.0.1; medians"
    echo "of $RUNS runs. See BENCHMARKS.md, section \"Mirror daemon\"."
    echo
    environment
    echo
    targets_report
    want serve && serve_report
    want full && full_report
    want incr && incr_report
} >"$SCRATCH/report.md"
cp "$SCRATCH/report.md" "$OUT"
# The raw runs beside the report: every measurement line, and hyperfine's JSON.
"${STATS[@]}" csv "$RES" "${OUT%.md}.csv"
"${STATS[@]}" json "$RES" "${OUT%.md}.json"
cat "$SCRATCH/report.md"
log "wrote $OUT and its raw runs: ${OUT%.md}.csv, ${OUT%.md}.json"
