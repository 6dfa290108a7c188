#!/usr/bin/env bash
# What verifying in the browser costs (issue 9). See BENCHMARKS.md, section
# "Verifying in the browser (issue 9)".
#
#   bash bench/web.sh                # ~2-3 min
#   bash bench/web.sh --rounds 5 --n-a 30 --n-b 15 --pages 12 --no-nginx
#
# 1. First-visit JavaScript: gzip -9 (and brotli) sizes of what a first visit
#    downloads (web/sw.js, shell.js, verify.js, vendor/noble-ed25519.js; shell.html,
#    shell.css, i18n.json listed apart), against the 40 kB budget, and what the
#    mirror actually sends with Accept-Encoding.
# 2. In headless Chromium (bench/web-bench.mjs, playwright-core from tests/browser/):
#    ~7 KB articles never fetched before, through the worker (verified) vs the same
#    bytes with no verification, interleaved; from `samizdat mirror` and from nginx
#    serving `samizdat export --static` of the same snapshot. Page views as context.
# Everything on 127.0.0.1; every process started here is stopped by its pid at the end.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash bench/web.sh [--articles N] [--rounds N] [--n-a N] [--n-b N] [--pages N] [--no-nginx]
                         [--out FILE] [--no-install] [--keep]

  --articles N   size of the generated news site (default 2000)
  --rounds N     rounds, each with its own articles (default 3)
  --n-a N        per round: articles in directories whose trees the worker already has (default 40)
  --n-b N        per round: articles that are the first read in their directory (default 20)
  --pages N      page views per origin (default 12)
  --no-nginx     only the mirror, not the static export on nginx
  --out FILE     results file (default bench/results-web-<date>-<short sha>.md;
                 raw samples beside it, .json and .csv)
  --no-install   do not install chromium, nginx or playwright-core (fail if missing)
  --keep         keep the scratch directory

Environment: BENCH_TMPDIR (scratch parent, default /tmp), BENCH_MAX_SECONDS (whole run,
default 600).
EOF
}

ARTICLES=2000 ROUNDS=3 NA=40 NB=20 NPAGE=12 NGINX_ON=1 OUT="" INSTALL=1 KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --articles) ARTICLES="${2:?}"; shift 2 ;;
    --rounds) ROUNDS="${2:?}"; shift 2 ;;
    --n-a) NA="${2:?}"; shift 2 ;;
    --n-b) NB="${2:?}"; shift 2 ;;
    --pages) NPAGE="${2:?}"; shift 2 ;;
    --no-nginx) NGINX_ON=0; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "web.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in "$ARTICLES" "$ROUNDS" "$NA" "$NB" "$NPAGE"; do
    case "$v" in '' | *[!0-9]*) echo "web.sh: counts must be numbers" >&2; exit 2 ;; esac
done
MAX_SECONDS="${BENCH_MAX_SECONDS:-600}"

cd "$(dirname "$0")/.."
ROOT="$(git rev-parse --show-toplevel)"
cd "$ROOT"
NEWS_GEN="$ROOT/../shared/corpus/make-news-site.py"

log() { printf '[web-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools --
need_pkgs() {
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    if [ "$NGINX_ON" = 1 ]; then command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx); fi
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    command -v curl >/dev/null || missing+=(curl)
    command -v python3 >/dev/null || missing+=(python3)
    command -v gzip >/dev/null || missing+=(gzip)
    printf '%s\n' "${missing[@]}"
}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
install_tools
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    [ "$INSTALL" = 1 ] || die "playwright-core missing: npm ci --prefix tests/browser"
    log "npm ci --prefix tests/browser"
    npm ci --prefix tests/browser --silent >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
CHROMIUM="$(command -v chromium)"

# -------------------------------------------------------------- scratch --
SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-/tmp}/samizdat-web-bench.XXXXXX")"
chmod 755 "$SCRATCH" # nginx workers may run as another user
PIDS=()
WATCHDOG=""
stop_pid() {
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
    if [ "$KEEP" = 1 ]; then log "scratch kept: $SCRATCH"; else rm -rf "$SCRATCH"; fi
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
T_START="$(date -u '+%Y-%m-%d %H:%M UTC')"
UPTIME_START="$(uptime)"

# ---------------------------------------------------------------- build --
log "building samizdat (cargo build --release)"
cargo build --release --quiet 2>&1 | tail -5 >&2
mkdir -p "$SCRATCH/bin"
cp target/release/samizdat "$SCRATCH/bin/samizdat" # others may rebuild target/ meanwhile
SZ="$SCRATCH/bin/samizdat"
GIT_REV="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no -- src web Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV (+ uncommitted changes in src/ or web/)"
fi
[ -n "$OUT" ] || OUT="bench/results-web-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).md"
OUT_BASE="${OUT%.md}"

free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# ------------------------------------------------------- 1. JavaScript size --
log "first-visit sizes"
gz() { gzip -9 -n -c "$1" | wc -c; }
br() { node -e 'const z=require("zlib");const b=require("fs").readFileSync(process.argv[1]);process.stdout.write(String(z.brotliCompressSync(b,{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length))' "$1"; }
SIZES="$SCRATCH/sizes.md"
{
    echo "| file | bytes | gzip -9 | brotli 11 |"
    echo "|---|---:|---:|---:|"
    JS_RAW=0 JS_GZ=0 JS_BR=0
    for f in sw.js shell.js verify.js vendor/noble-ed25519.js; do
        r=$(wc -c <"web/$f") g=$(gz "web/$f") b=$(br "web/$f")
        JS_RAW=$((JS_RAW + r)) JS_GZ=$((JS_GZ + g)) JS_BR=$((JS_BR + b))
        echo "| web/$f | $r | $g | $b |"
    done
    echo "| **JavaScript, total** | **$JS_RAW** | **$JS_GZ** | **$JS_BR** |"
    O_RAW=0 O_GZ=0 O_BR=0
    for f in shell.html shell.css i18n.json; do
        r=$(wc -c <"web/$f") g=$(gz "web/$f") b=$(br "web/$f")
        O_RAW=$((O_RAW + r)) O_GZ=$((O_GZ + g)) O_BR=$((O_BR + b))
        echo "| web/$f | $r | $g | $b |"
    done
    echo "| shell.html + shell.css + i18n.json | $O_RAW | $O_GZ | $O_BR |"
    echo "| **everything of web/ a first visit loads** | $((JS_RAW + O_RAW)) | $((JS_GZ + O_GZ)) | $((JS_BR + O_BR)) |"
} >"$SIZES"
echo "$JS_GZ $JS_BR" >"$SCRATCH/js-total"

# --------------------------------------------------------- 2. site, servers --
[ -f "$NEWS_GEN" ] || die "news generator not found at $NEWS_GEN"
S="$SCRATCH/w"
mkdir -p "$S"
log "generating a $ARTICLES-article news site"
python3 "$NEWS_GEN" --out "$S/site" --articles "$ARTICLES" >/dev/null
"$SZ" keygen "$S/K" --name "Web bench" >/dev/null
"$SZ" bundle "$S/site" --keys "$S/K" --repo "$S/R" >/dev/null 2>&1
read -r P_SZ P_NG P_FL <<<"$(free_ports 3)"
"$SZ" mirror --publisher "$S/K/publisher.pub" --upstream "$S/R" --listen "127.0.0.1:$P_SZ" \
    --data-dir "$S/data" --poll-interval 300s >"$S/mirror.log" 2>&1 &
PIDS+=("$!")
for i in $(seq 300); do
    curl -sf "http://127.0.0.1:$P_SZ/_samizdat/status" 2>/dev/null | grep -q '"seq": *1' && break
    sleep 0.1
    [ "$i" = 300 ] && { tail -20 "$S/mirror.log" >&2; die "the mirror did not serve seq 1"; }
done
# The fingerprint, as the mirror's shell names it.
FP="$(curl -sf -H 'Sec-Fetch-Mode: navigate' -H 'Sec-Fetch-Dest: document' "http://127.0.0.1:$P_SZ/" |
    sed -n 's/.*data-fp="\([^"]*\)".*/\1/p' | head -1)"
[ -n "$FP" ] || die "no fingerprint in the mirror's shell"
log "mirror on 127.0.0.1:$P_SZ, site $FP"

# What the mirror really sends for the first visit's files (compressed or not).
WIRE="$SCRATCH/wire.md"
{
    echo "| file | Content-Encoding from the mirror (Accept-Encoding: gzip, deflate, br, zstd) | body bytes |"
    echo "|---|---|---:|"
    for u in _samizdat-sw.js _samizdat/web/shell.js _samizdat/web/verify.js _samizdat/web/vendor/noble-ed25519.js \
        _samizdat/web/shell.css _samizdat/web/i18n.json; do
        hdr="$(curl -s -o "$SCRATCH/body" -D - -H 'Accept-Encoding: gzip, deflate, br, zstd' "http://127.0.0.1:$P_SZ/$u")"
        enc="$(printf '%s' "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}')"
        echo "| /$u | ${enc:-identity} | $(wc -c <"$SCRATCH/body") |"
    done
} >"$WIRE"

ORIGINS="[{\"name\": \"samizdat mirror\", \"url\": \"http://127.0.0.1:$P_SZ/\", \"repo\": \"http://127.0.0.1:$P_SZ/_samizdat/repo/$FP/\"}"
if [ "$NGINX_ON" = 1 ]; then
    "$SZ" export --repo "$S/R" --static "$S/www" >/dev/null 2>&1
    # The floor: a trivial service worker (not samizdat's) that answers every request
    # under /bench-floor/ with 7,168 bytes from memory; what any worker-answered fetch costs.
    # Its own origin (another nginx port), so samizdat's worker never sees it.
    mkdir -p "$S/floor/bench-floor"
    cat >"$S/floor/bench-floor/sw.js" <<'EOF'
const body = new Uint8Array(7168).fill(120);
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  if (new URL(e.request.url).pathname.endsWith('/index.html')) return;
  e.respondWith(new Response(body, { headers: { 'content-type': 'text/html' } }));
});
EOF
    cat >"$S/floor/bench-floor/index.html" <<'EOF'
<!doctype html><meta charset="utf-8"><title>floor</title>
<script>navigator.serviceWorker.register('sw.js', { scope: './' });</script>
EOF
    chmod -R a+rX "$S"
    write_nginx_conf "$S/nginx" <<EOF
    open_file_cache max=10000 inactive=60s;
    server {
        listen 127.0.0.1:$P_NG;
        root $S/www;
    }
    server {
        listen 127.0.0.1:$P_FL;
        root $S/floor;
    }
EOF
    "$NGINX" -p "$S/nginx" -c "$S/nginx/nginx.conf" -e "$S/nginx/logs/error.log" >"$S/nginx/stdout" 2>&1 &
    PIDS+=("$!")
    for i in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$P_NG/_samizdat/" && break
        sleep 0.1
        [ "$i" = 100 ] && { cat "$S/nginx/logs/error.log" >&2; die "nginx did not start"; }
    done
    log "nginx on 127.0.0.1:$P_NG serving the static export"
    ORIGINS="$ORIGINS, {\"name\": \"static export on nginx\", \"url\": \"http://127.0.0.1:$P_NG/\", \"repo\": \"http://127.0.0.1:$P_NG/_samizdat/repo/\", \"entry\": \"_samizdat/\", \"rawPages\": true, \"floor\": \"http://127.0.0.1:$P_FL/bench-floor/\"}"
fi
ORIGINS="$ORIGINS]"

cat >"$SCRATCH/config.json" <<EOF
{"chromium": "$CHROMIUM", "chromiumVersion": "$("$CHROMIUM" --version 2>/dev/null | head -1 | sed "s/ built on.*//")", "site": "$S/site", "repo": "$S/R", "fp": "$FP",
 "web": "$ROOT/web", "scratch": "$SCRATCH", "origins": $ORIGINS, "rounds": $ROUNDS, "nA": $NA, "nB": $NB, "nPage": $NPAGE,
 "out": "$OUT_BASE.json", "csv": "$OUT_BASE.csv", "md": "$SCRATCH/browser.md"}
EOF

# ------------------------------------------------------------ 3. browser --
log "chromium: $("$CHROMIUM" --version 2>/dev/null | head -1)"
# In the background and waited for, so that the time limit's TERM is handled at once
# (playwright closes its Chromium on TERM).
node bench/web-bench.mjs "$SCRATCH/config.json" &
NODE_PID=$!
PIDS+=("$NODE_PID")
wait "$NODE_PID" || die "bench/web-bench.mjs failed"

# --------------------------------------------------------------- report --
UPTIME_END="$(uptime)"
read -r JS_GZ JS_BR <"$SCRATCH/js-total"
{
    echo "# Verifying in the browser: results $(date -u +%Y-%m-%d) ($GIT_REV)"
    echo
    echo "\`bash bench/web.sh\`, $T_START to $(date -u '+%H:%M UTC'). Raw samples:"
    echo "[$(basename "$OUT_BASE").json]($(basename "$OUT_BASE").json), [$(basename "$OUT_BASE").csv]($(basename "$OUT_BASE").csv)."
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| samizdat | $GIT_REV, release build |"
    echo "| Chromium | $("$CHROMIUM" --version 2>/dev/null | head -1 | sed 's/ built on.*//'), headless, playwright-core $(node -p 'require("./tests/browser/node_modules/playwright-core/package.json").version') |"
    echo "| nginx | $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') |"
    echo "| node | $(node --version) |"
    echo "| CPU | $(nproc) × $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo) |"
    echo "| kernel | $(uname -sr) |"
    echo "| uptime at start | \`$(echo $UPTIME_START)\` |"
    echo "| uptime at end | \`$(echo $UPTIME_END)\` |"
    echo "| site | \`make-news-site.py --articles $ARTICLES\`: $(find "$S/site" -type f | wc -l) files |"
    echo
    echo "## First-visit JavaScript"
    echo
    echo "Budget: 40 kB (40,000 bytes) compressed. JavaScript a first visit loads: gzip -9"
    echo "**$JS_GZ** bytes ($(awk -v a="$JS_GZ" 'BEGIN{printf "%.1f", a/1000}') kB, $(awk -v a="$JS_GZ" 'BEGIN{printf "%.0f", a/400}')% of the budget), brotli 11 **$JS_BR** bytes."
    echo
    cat "$SIZES"
    echo
    cat "$WIRE"
    echo
    cat "$SCRATCH/browser.md"
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
