#!/usr/bin/env bash
# Search (issue 10): index build time, index size, mirror query latency under
# wrk, bytes a static query downloads, and Pagefind on the same site.
# See BENCHMARKS.md, section "Search (issue 10)".
#
#   bash bench/search.sh                   # 100,000 articles (~25 min on 2 cores)
#   bash bench/search.sh --articles 20000  # quicker
#
# Everything on 127.0.0.1; the mirror started here is stopped by the driver
# (bench/search-bench.py); the whole run is bounded by BENCH_MAX_SECONDS.
set -euo pipefail

ARTICLES=100000 OUT="" INSTALL=1 KEEP=0 WRK_SECONDS=20
while [ $# -gt 0 ]; do
    case "$1" in
    --articles) ARTICLES="${2:?}"; shift 2 ;;
    --wrk-seconds) WRK_SECONDS="${2:?}"; shift 2 ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT="$PWD"
log() { echo "[search-bench] $*" >&2; }
die() { echo "[search-bench] error: $*" >&2; exit 1; }
need_pkgs() {
    command -v wrk >/dev/null || echo wrk
    command -v npm >/dev/null || echo npm
}
# shellcheck source=bench/lib.sh
. bench/lib.sh
install_tools

CORPUS="$ROOT/../shared/corpus/make-news-site.py"
[ -f "$CORPUS" ] || die "$CORPUS not found (the repository must sit next to ../shared)"
SHA="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
OUT="${OUT:-bench/results-search-$(date +%F)-$SHA-$ARTICLES}"
SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-/tmp}/samizdat-search-bench.XXXXXX")"
cleanup() { [ "$KEEP" = 1 ] && log "kept $SCRATCH" || rm -rf "$SCRATCH"; }
trap cleanup EXIT

log "building (release)"
cargo build --release --locked -q
cp target/release/samizdat "$SCRATCH/samizdat"
log "generating $ARTICLES articles"
python3 "$CORPUS" --out "$SCRATCH/site" --articles "$ARTICLES" >&2
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout "${BENCH_MAX_SECONDS:-3600}" python3 bench/search-bench.py --bin "$SCRATCH/samizdat" --site "$SCRATCH/site" \
    --work "$SCRATCH" --out "$OUT" --wrk-seconds "$WRK_SECONDS"
{
    echo
    echo "Run: \`bash bench/search.sh --articles $ARTICLES\` at $SHA on $(date -u +%FT%TZ), $(nproc) cores,"
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg). Raw figures: \`$(basename "$OUT").json\`."
} >>"$OUT.md"
log "results in $OUT.md"
