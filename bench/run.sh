#!/usr/bin/env bash
# samizdat benchmark suite.  See BENCHMARKS.md for what it measures and why.
#
#   bash bench/run.sh                  # both datasets, 3 runs each, ~10 min
#   bash bench/run.sh --only rustdocs  # or: --only news
#   bash bench/run.sh --quick          # small sites (rust `std` docs, 2,000-article news site)
#   bash bench/run.sh --profile        # also strace -c / perf profile of one bundle
#   bash bench/run.sh --settle 400     # wait first (after deleting big trees; see BENCHMARKS.md)
#
# Every timed command runs against peer tools in the same run (the machine is
# shared and noisy), each at least --runs times (median reported), into a fresh
# empty output, with the page cache warmed by reading the site once first.
# Nothing outside a scratch directory is written, except the results file.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash bench/run.sh [--only rustdocs|news|all] [--quick] [--runs N] [--profile]
                         [--settle SECONDS] [--out FILE] [--no-install] [--keep]

  --only D       run one dataset (default: all)
  --quick        small sites: rust `std` docs subtree and a 2,000-article news site
  --runs N       timed runs per command, median reported (default 3, minimum 3)
  --profile      also profile one samizdat bundle (strace -c, perf if available)
  --settle S     sleep S seconds before measuring: on ext4 without a journal, inodes
                 freed in the last 60-360 s make file creation slow (default 0)
  --out FILE     results file (default bench/results-<date>[-quick][-<dataset>].md)
  --no-install   do not apt-get install the peer tools (fail if missing)
  --keep         keep the scratch directory (printed at the end)

Environment: BENCH_TMPDIR (scratch parent, default /tmp; must be on the disk you
want to measure), BENCH_CMD_TIMEOUT (seconds per command, default 900),
BENCH_MAX_SECONDS (whole run, default 5400).
EOF
}

ARGS="$*"
ONLY=all QUICK=0 RUNS=3 PROFILE=0 OUT="" INSTALL=1 KEEP=0 SETTLE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --only) ONLY="${2:?--only needs rustdocs|news|all}"; shift 2 ;;
    --only=*) ONLY="${1#*=}"; shift ;;
    --quick) QUICK=1; shift ;;
    --runs) RUNS="${2:?}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --profile) PROFILE=1; shift ;;
    --settle) SETTLE="${2:?}"; shift 2 ;;
    --settle=*) SETTLE="${1#*=}"; shift ;;
    --out) OUT="${2:?}"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    --no-install) INSTALL=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$ONLY" in rustdocs | news | all) ;; *) echo "run.sh: --only must be rustdocs, news or all" >&2; exit 2 ;; esac
case "$RUNS" in '' | *[!0-9]*) echo "run.sh: --runs must be a number" >&2; exit 2 ;; esac
case "$SETTLE" in '' | *[!0-9]*) echo "run.sh: --settle must be a number of seconds" >&2; exit 2 ;; esac
[ "$RUNS" -ge 3 ] || RUNS=3

CMD_TIMEOUT="${BENCH_CMD_TIMEOUT:-900}"
MAX_SECONDS="${BENCH_MAX_SECONDS:-5400}"

cd "$(dirname "$0")/.."
ROOT="$(git rev-parse --show-toplevel)"
cd "$ROOT"
NEWS_GEN="$ROOT/../shared/corpus/make-news-site.py"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools --
need_pkgs() {
    local missing=()
    command -v ostree >/dev/null || missing+=(ostree)
    command -v zstd >/dev/null || missing+=(zstd)
    command -v openssl >/dev/null || missing+=(openssl)
    [ -x /usr/bin/time ] || missing+=(time)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v python3 >/dev/null || missing+=(python3)
    command -v timeout >/dev/null || missing+=(coreutils)
    command -v tar >/dev/null || missing+=(tar)
    command -v xargs >/dev/null || missing+=(findutils)
    if [ "$PROFILE" = 1 ]; then
        command -v strace >/dev/null || missing+=(strace)
    fi
    printf '%s\n' "${missing[@]}"
}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
install_tools
if [ "$PROFILE" = 1 ]; then install_perf; fi

# -------------------------------------------------------------- scratch --
SCRATCH="$(mktemp -d "${BENCH_TMPDIR:-/tmp}/samizdat-bench.XXXXXX")"
SHM=""
WATCHDOG=""
cleanup() {
    local rc=$?
    [ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null || true
    [ -n "$SHM" ] && rm -rf "$SHM"
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
# Whole-run bound: every command also has its own timeout.
MAIN_PID=$$
(
    sleep "$MAX_SECONDS"
    kill -TERM "$MAIN_PID" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

# ---------------------------------------------------------------- build --
log "building samizdat (cargo build --release)"
cargo build --release --quiet 2>&1 | tail -5 >&2
mkdir -p "$SCRATCH/bin"
# A private copy: others may rebuild target/release while we measure.
cp target/release/samizdat "$SCRATCH/bin/samizdat"
SZ="$SCRATCH/bin/samizdat"
GIT_REV="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    GIT_REV="$GIT_REV (+ uncommitted changes in src/)"
fi

# -------------------------------------------------------------- helpers --
RES="$SCRATCH/res"
mkdir -p "$RES"

# The arithmetic lives in bench/stats.py (raw results stay in $RES, one file per
# measurement, and are written as CSV/JSON beside the report).
STATS=(python3 "$ROOT/bench/stats.py")
mkdir -p "$RES/json"

# timed KEY cmd...: runs cmd once under hyperfine (its JSON kept in
# $RES/json/KEY.N.json; stdout/stderr to a log) with GNU time inside for the
# peak RSS, and appends "wall_s max_rss_kib user_s sys_s" to $RES/KEY. Fails
# the run if the command fails.
timed() {
    local key="$1"
    shift
    local n=1
    while [ -e "$RES/json/$key.$n.json" ]; do n=$((n + 1)); done
    local cmd
    cmd="$(printf '%q ' /usr/bin/time -f '%M' -a -o "$SCRATCH/rss.out" timeout "$CMD_TIMEOUT" "$@")"
    if ! hyperfine --runs 1 --style none -N --output "$SCRATCH/cmd.log" \
        --export-json "$RES/json/$key.$n.json" -n "$key" -- "$cmd" >/dev/null 2>"$SCRATCH/hyperfine.err"; then
        log "command failed ($key): $*"
        tail -20 "$SCRATCH/cmd.log" "$SCRATCH/hyperfine.err" >&2
        exit 1
    fi
    "${STATS[@]}" hyperfine "$RES/json/$key.$n.json" "$SCRATCH/rss.out" >>"$RES/$key"
}

med() { "${STATS[@]}" med "$RES" "$1"; }                                 # median wall s of KEY
rss() { "${STATS[@]}" div "$("${STATS[@]}" max "$RES" "$1" 2)" 1024 "%.0f"; } # max peak RSS, MiB
runs_of() { "${STATS[@]}" runs "$RES" "$1"; }                             # every run's wall s
cpu_of() { "${STATS[@]}" cpu "$RES" "$1"; }                               # median user+sys s
ratio() { "${STATS[@]}" ratio "$1" "$2"; }                                # a / b, 2 decimals
mib() { "${STATS[@]}" div "$1" 1048576; }
du_b() { du -sb "$1" | cut -f1; }
warm() { # read every file once (GNU tar skips reading when writing to /dev/null)
    find "$1" -type f -print0 | xargs -0 -r cat >/dev/null
}

# ------------------------------------------------------------- dataset --
# The publish steps of one round; they use bench_dataset's locals name, site, D, W.
step_bundle() { timed "$name.bundle" "$SZ" bundle "$site" --keys "$D/K" --repo "$W/R"; }
step_ostree_archive() {
    ostree init --mode=archive --repo="$W/Oa"
    timed "$name.ostree_archive" ostree commit --repo="$W/Oa" --branch=b --tree=dir="$site"
}
step_ostree_bare() {
    ostree init --mode=bare-user --repo="$W/Ob"
    timed "$name.ostree_bare" ostree commit --repo="$W/Ob" --branch=b --tree=dir="$site"
}
step_tarzstd() {
    timed "$name.tarzstd" sh -c 'tar -C "$1" -cf - . | zstd -T2 -3 -q -o "$2"' sh "$site" "$W/out.tar.zst"
}
step_openssl() {
    # The hashing floor: SHA-256 of every file, two processes in parallel.
    timed "$name.openssl" sh -c 'xargs -0 -P2 -n 500 openssl dgst -sha256 <"$1" >/dev/null' sh "$D/files0"
}
step_cpa() {
    # The file-creation floor: one new file per site file on the same disk.
    timed "$name.cpa" cp -a "$site" "$W/cp"
}

# bench_dataset NAME SITE
bench_dataset() {
    local name="$1" site="$2"
    local D="$SCRATCH/$name"
    mkdir -p "$D"
    log "[$name] site: $site"
    warm "$site"
    find "$site" -type f -print0 >"$D/files0"
    local nfiles ndirs sum_bytes du_bytes
    nfiles="$(tr -cd '\0' <"$D/files0" | wc -c)"
    ndirs="$(find "$site" -type d | wc -l)"
    sum_bytes="$("${STATS[@]}" total "$site")"
    du_bytes="$(du_b "$site")"
    printf '%s\n' "$nfiles" >"$D/nfiles"
    # Each round keeps a samizdat repo, two ostree repos and a copy (about
    # 3.5x the site); nothing is deleted until the end (see BENCHMARKS.md).
    local avail need
    avail="$(df -B1 --output=avail "$SCRATCH" | tail -1 | tr -d ' ')"
    need=$((du_bytes * (RUNS * 4 + 3)))
    [ "$avail" -gt "$need" ] || die "[$name] needs about $((need >> 20)) MiB free in $SCRATCH, has $((avail >> 20))"

    "$SZ" keygen "$D/K" >/dev/null

    local r
    for r in $(seq 1 "$RUNS"); do
        log "[$name] round $r/$RUNS"
        local W="$D/r$r"
        mkdir -p "$W"
        # 1. publish the site. The order rotates each round so that no tool
        # always runs first (or right after the most file creation).
        local steps=(step_bundle step_ostree_archive step_ostree_bare step_tarzstd step_openssl step_cpa)
        local k
        for k in "${!steps[@]}"; do
            "${steps[$(((k + r - 1) % ${#steps[@]}))]}"
        done
        # 2. verify
        timed "$name.verify" "$SZ" verify "$W/R" --trust "$D/K/publisher.pub"
        timed "$name.fsck" ostree fsck --repo="$W/Oa"
        # 4. export
        timed "$name.export" "$SZ" export --repo "$W/R" --out "$W/B.szb"
    done
    local W1="$D/r1"
    {
        echo "site_du=$du_bytes"
        echo "site_sum=$sum_bytes"
        echo "files=$nfiles"
        echo "dirs=$ndirs"
        echo "repo=$(du_b "$W1/R")"
        echo "repo_objects=$(find "$W1/R/objects" -type f | wc -l)"
        echo "szb=$(stat -c %s "$W1/B.szb")"
        echo "tarzst=$(stat -c %s "$W1/out.tar.zst")"
        echo "ostree_archive=$(du_b "$W1/Oa")"
        echo "ostree_bare=$(du_b "$W1/Ob")"
    } >"$D/sizes"

    # Work split: the same bundle when every object is already stored and the
    # stat cache is gone (scan + read + hash + exists checks, no object writes).
    log "[$name] hash-only bundles (objects present, no stat cache)"
    for r in $(seq 1 "$RUNS"); do
        rm -rf "$W1/R/local"/statcache* 2>/dev/null || true
        timed "$name.bundle_nowrite" "$SZ" bundle "$site" --keys "$D/K" --repo "$W1/R"
    done

    # Same commands with the output on tmpfs, to separate file-system cost.
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        avail="$(df -B1 --output=avail /dev/shm | tail -1 | tr -d ' ')"
        need=$((du_bytes * 3))
        if [ "$avail" -gt "$need" ]; then
            log "[$name] tmpfs comparison"
            SHM="$(mktemp -d /dev/shm/samizdat-bench.XXXXXX)"
            for r in $(seq 1 "$RUNS"); do
                timed "$name.bundle_tmpfs" "$SZ" bundle "$site" --keys "$D/K" --repo "$SHM/R"
                rm -rf "$SHM/R"
                timed "$name.cpa_tmpfs" cp -a "$site" "$SHM/cp"
                rm -rf "$SHM/cp"
                timed "$name.tarzstd_tmpfs" sh -c 'tar -C "$1" -cf - . | zstd -T2 -3 -q -o "$2"' sh "$site" "$SHM/out.tar.zst"
                rm -f "$SHM/out.tar.zst"
                ostree init --mode=archive --repo="$SHM/Oa"
                timed "$name.ostree_archive_tmpfs" ostree commit --repo="$SHM/Oa" --branch=b --tree=dir="$site"
                rm -rf "$SHM/Oa"
            done
            rm -rf "$SHM"
            SHM=""
        fi
    fi

    # 3. re-bundle: a scratch copy (the original is never modified).
    log "[$name] re-bundle tests on a scratch copy"
    local E="$D/edit"
    mkdir -p "$E"
    cp -a "$site" "$E/site"
    # The stat cache leaves out entries changed in the last 2 s ("racy");
    # wait so that the copy's fresh ctimes are cached.
    sleep 3
    "$SZ" bundle "$E/site" --keys "$D/K" --repo "$E/R" >/dev/null
    for r in $(seq 1 "$RUNS"); do
        timed "$name.rebundle0" "$SZ" bundle "$E/site" --keys "$D/K" --repo "$E/R"
    done
    # Ten files spread evenly over the sorted list of HTML pages.
    (cd "$E/site" && find . -type f -name '*.html' | LC_ALL=C sort) >"$E/html"
    local nhtml
    nhtml="$(wc -l <"$E/html")"
    awk -v n="$nhtml" 'BEGIN{ for (i = 0; i < 10; i++) print int(i * n / 10) + 1 }' >"$E/idx"
    awk 'NR==FNR { want[$1]=1; next } (FNR in want)' "$E/idx" "$E/html" >"$E/edits"
    for r in $(seq 1 "$RUNS"); do
        while IFS= read -r f; do
            printf '\n<!-- bench edit %s -->\n' "$r" >>"$E/site/$f"
        done <"$E/edits"
        timed "$name.rebundle10" "$SZ" bundle "$E/site" --keys "$D/K" --repo "$E/R"
    done
    # Scan floor: one stat of every file, as a re-bundle with no change must do.
    for r in $(seq 1 "$RUNS"); do
        timed "$name.statfloor" find "$E/site" -printf '%s %T@ %C@ %i\n'
    done

    if [ "$PROFILE" = 1 ]; then
        profile_bundle "$name" "$site"
    fi
}

# Profile one fresh bundle: syscall counts and (if perf works) where CPU goes.
profile_bundle() {
    local name="$1" site="$2"
    local P="$SCRATCH/$name/prof"
    mkdir -p "$P"
    log "[$name] profiling one bundle"
    strace -f -c -o "$P/strace.txt" "$SZ" bundle "$site" --keys "$SCRATCH/$name/K" --repo "$P/R1" >/dev/null 2>&1 || true
    strace -f -T -e trace=syncfs,fsync,fdatasync -o "$P/sync.txt" \
        "$SZ" bundle "$site" --keys "$SCRATCH/$name/K" --repo "$P/R2" >/dev/null 2>&1 || true
    if command -v perf >/dev/null && perf record -q -g -o "$P/perf.data" \
        "$SZ" bundle "$site" --keys "$SCRATCH/$name/K" --repo "$P/R3" >/dev/null 2>"$P/perf.err"; then
        perf report -i "$P/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' >"$P/perf.txt" || true
        # The re-bundle with no change, on the scratch copy used above.
        if perf record -q -g -o "$P/perf-rb.data" "$SZ" bundle "$SCRATCH/$name/edit/site" \
            --keys "$SCRATCH/$name/K" --repo "$SCRATCH/$name/edit/R" >/dev/null 2>>"$P/perf.err"; then
            perf report -i "$P/perf-rb.data" --children --sort sym --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]' | grep -vE '\] (0x[0-9a-f]+|0+)$' >"$P/perf-rebundle.txt" || true
        fi
    fi
}

# --------------------------------------------------------------- report --
report_dataset() {
    local name="$1" title="$2"
    local D="$SCRATCH/$name"
    # shellcheck disable=SC1090
    . "$D/sizes"
    local b oa ob tz os cp v fk ex nw bt ct tt r0 r10 sf
    b="$(med "$name.bundle")"
    oa="$(med "$name.ostree_archive")"
    ob="$(med "$name.ostree_bare")"
    tz="$(med "$name.tarzstd")"
    os="$(med "$name.openssl")"
    cp="$(med "$name.cpa")"
    v="$(med "$name.verify")"
    fk="$(med "$name.fsck")"
    ex="$(med "$name.export")"
    nw="$(med "$name.bundle_nowrite")"
    bt="$(med "$name.bundle_tmpfs")"
    ct="$(med "$name.cpa_tmpfs")"
    tt="$(med "$name.tarzstd_tmpfs")"
    r0="$(med "$name.rebundle0")"
    r10="$(med "$name.rebundle10")"
    sf="$(med "$name.statfloor")"

    row() { # label key note
        local m
        m="$(med "$2")"
        [ -n "$m" ] || return 0
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$m" "$(runs_of "$2")" "$(cpu_of "$2")" "$(rss "$2")" "$(ratio "$m" "$b")" "$3"
    }
    echo "### $title"
    echo
    echo "$files files in $dirs directories; $(mib "$site_sum") MiB of file content (du -sb: $(mib "$site_du") MiB)."
    echo
    echo "| command | median s | runs s | CPU s (user+sys) | peak RSS MiB | ÷ samizdat bundle | note |"
    echo "|---|---:|---|---:|---:|---:|---|"
    row "samizdat bundle (fresh repo)" "$name.bundle" "writes $repo_objects objects"
    row "ostree commit, archive repo" "$name.ostree_archive" "bundle is $(ratio "$oa" "$b")× faster"
    row "ostree commit, bare-user repo" "$name.ostree_bare" "uncompressed objects, like samizdat"
    row "tar \| zstd -T2 -3" "$name.tarzstd" "bundle is $(ratio "$b" "$tz")× slower"
    row "openssl dgst -sha256, 2 procs" "$name.openssl" "hashing floor"
    row "cp -a site (same disk)" "$name.cpa" "file-creation floor"
    row "samizdat bundle, objects present, no stat cache" "$name.bundle_nowrite" "scan+read+hash only"
    row "samizdat bundle → tmpfs repo" "$name.bundle_tmpfs" "no disk file system"
    row "cp -a site → tmpfs" "$name.cpa_tmpfs" ""
    row "tar \| zstd → tmpfs" "$name.tarzstd_tmpfs" ""
    row "ostree commit, archive repo → tmpfs" "$name.ostree_archive_tmpfs" ""
    row "samizdat verify" "$name.verify" "$(ratio "$v" "$os")× openssl floor"
    row "ostree fsck (archive repo)" "$name.fsck" ""
    row "samizdat export (zstd -3, long window)" "$name.export" ""
    row "re-bundle, no change" "$name.rebundle0" ""
    row "re-bundle after editing 10 files" "$name.rebundle10" ""
    row "find -printf stat of every file" "$name.statfloor" "scan floor for a re-bundle"
    echo
    echo "| size | bytes | MiB | ÷ site content |"
    echo "|---|---:|---:|---:|"
    printf '| site, sum of file sizes | %s | %s | 1.00 |\n' "$site_sum" "$(mib "$site_sum")"
    printf '| site, du -sb | %s | %s | %s |\n' "$site_du" "$(mib "$site_du")" "$(ratio "$site_du" "$site_sum")"
    printf '| samizdat repo (du -sb) | %s | %s | %s |\n' "$repo" "$(mib "$repo")" "$(ratio "$repo" "$site_sum")"
    printf '| samizdat export .szb | %s | %s | %s |\n' "$szb" "$(mib "$szb")" "$(ratio "$szb" "$site_sum")"
    printf '| tar \| zstd -3 | %s | %s | %s |\n' "$tarzst" "$(mib "$tarzst")" "$(ratio "$tarzst" "$site_sum")"
    printf '| ostree archive repo | %s | %s | %s |\n' "$ostree_archive" "$(mib "$ostree_archive")" "$(ratio "$ostree_archive" "$site_sum")"
    printf '| ostree bare-user repo | %s | %s | %s |\n' "$ostree_bare" "$(mib "$ostree_bare")" "$(ratio "$ostree_bare" "$site_sum")"
    echo
    echo "Targets (the issue's targets are for the Rust docs; shown here for every dataset):"
    echo
    echo "| target | required | measured | result |"
    echo "|---|---|---|---|"
    target_row "bundle vs ostree commit (archive)" "≥ 10× faster" "$(ratio "$oa" "$b")" ge 10 "× faster"
    target_row "bundle vs ostree commit (archive), issue 12" "≥ 5× faster" "$(ratio "$oa" "$b")" ge 5 "× faster"
    target_row "bundle vs cp -a (file-creation floor)" "≤ 1.1× its time" "$(ratio "$b" "$cp")" le 1.1 "×"
    target_row "bundle vs tar \| zstd -T2" "≤ 1.3× its time" "$(ratio "$b" "$tz")" le 1.3 "×"
    target_row "verify vs 2-process openssl floor" "≤ 1.5× its time" "$(ratio "$v" "$os")" le 1.5 "×"
    target_row "re-bundle after 10 edits" "< 0.3 s" "$r10" lt 0.3 " s"
    local oat
    oat="$(med "$name.ostree_archive_tmpfs")"
    if [ -n "$bt" ] && [ -n "$tt" ] && [ -n "$oat" ]; then
        echo
        echo "The same two bundle targets with every output on tmpfs (diagnostic: no disk file system):"
        echo
        echo "| target | required | measured | result |"
        echo "|---|---|---|---|"
        target_row "bundle vs ostree commit (archive), tmpfs" "≥ 10× faster" "$(ratio "$oat" "$bt")" ge 10 "× faster"
        target_row "bundle vs tar \| zstd -T2, tmpfs" "≤ 1.3× its time" "$(ratio "$bt" "$tt")" le 1.3 "×"
    fi
    echo
    if [ -s "$D/prof/strace.txt" ]; then
        echo "Profile of one fresh bundle (strace -f -c; times are inflated by strace):"
        echo
        echo '```'
        head -22 "$D/prof/strace.txt"
        echo '```'
        echo
        if [ -s "$D/prof/sync.txt" ]; then
            echo "Durability calls (strace -T):"
            echo
            echo '```'
            grep -E 'sync' "$D/prof/sync.txt" | sed 's/^[0-9]* *//' | head -20
            echo '```'
            echo
        fi
        if [ -s "$D/prof/perf.txt" ]; then
            echo "perf, share of samples including callees (selected):"
            echo
            echo '```'
            grep -E ' (__x64_sys_(openat|write|renameat2?|statx|read|fchmod|syncfs|fsync|close|newfstatat|lseek|getcwd|mkdir)|ext4_create|__ext4_new_inode|find_inode_bit|recently_deleted|lock_two_directories|copy_folio_from_iter_atomic|copy_page_to_iter|sha2::sha256::.*compress.*|samizdat::publish::scan|samizdat::publish::bundle|samizdat::publish::store_file|samizdat::repo::Repo::(has|put|install)|tempfile::.*persist|samizdat::meta::Tree::encode|mime_guess::impl_::get_mime_types)$' "$D/prof/perf.txt" | head -40
            echo '```'
            echo
        fi
        if [ -s "$D/prof/perf-rebundle.txt" ]; then
            echo "perf of a re-bundle with no change (top entries, including callees):"
            echo
            echo '```'
            head -40 "$D/prof/perf-rebundle.txt"
            echo '```'
            echo
        fi
    fi
}

# target_row label required value op limit unit
target_row() {
    local label="$1" req="$2" val="$3" op="$4" lim="$5" unit="$6"
    if [ "$val" = "n/a" ] || [ -z "$val" ]; then
        printf '| %s | %s | n/a | not measured |\n' "$label" "$req"
        return
    fi
    local verdict
    verdict="$("${STATS[@]}" verdict "$val" "$op" "$lim")"
    printf '| %s | %s | %s%s | %s |\n' "$label" "$req" "$val" "$unit" "$verdict"
}

environment() {
    local fs dev opts journal
    dev="$(df --output=source "$SCRATCH" | tail -1)"
    fs="$(awk -v d="$dev" '$1==d {print $3; exit}' /proc/mounts)"
    opts="$(awk -v d="$dev" '$1==d {print $4; exit}' /proc/mounts)"
    journal="n/a"
    if [ "$fs" = ext4 ]; then
        if [ -d "/proc/fs/jbd2/$(basename "$dev")-8" ]; then journal="yes"; else journal="no (no /proc/fs/jbd2 entry)"; fi
    fi
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
    echo "| samizdat | $GIT_REV, release build |"
    echo "| nproc | $(nproc) |"
    echo "| CPU | $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo) ($(grep -q sha_ni /proc/cpuinfo && echo 'SHA-NI' || echo 'no SHA-NI')) |"
    echo "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |"
    echo "| kernel | $(uname -sr) |"
    echo "| scratch disk | $SCRATCH: $fs on $dev ($opts); ext4 journal: $journal |"
    echo "| load average at start / end | $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo "| rustc | $(rustc --version) |"
    echo "| ostree | $(ostree --version | awk -F"'" '/Version/ {print $2; exit}') |"
    echo "| zstd | $(zstd --version | head -1) |"
    echo "| openssl | $(openssl version) |"
    echo "| tar | $(tar --version | head -1) |"
    echo "| python3 | $(python3 --version 2>&1) |"
    echo "| runs per command | $RUNS (median reported) |"
}

# ----------------------------------------------------------------- main --
if [ "$SETTLE" -gt 0 ]; then
    log "settling for $SETTLE s"
    sync
    sleep "$SETTLE"
fi
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
DATASETS=()
if [ "$ONLY" = all ] || [ "$ONLY" = rustdocs ]; then DATASETS+=(rustdocs); fi
if [ "$ONLY" = all ] || [ "$ONLY" = news ]; then DATASETS+=(news); fi

for ds in "${DATASETS[@]}"; do
    case "$ds" in
    rustdocs)
        RUSTDOCS="$(rustc --print sysroot)/share/doc/rust/html"
        [ -d "$RUSTDOCS" ] || die "no Rust docs at $RUSTDOCS (rustup component add rust-docs)"
        if [ "$QUICK" = 1 ]; then RUSTDOCS="$RUSTDOCS/std"; fi
        # Read directly (never modified); the re-bundle test works on a copy.
        bench_dataset rustdocs "$RUSTDOCS"
        ;;
    news)
        [ -f "$NEWS_GEN" ] || die "news generator not found at $NEWS_GEN"
        articles=20000
        [ "$QUICK" = 1 ] && articles=2000
        log "[news] generating $articles articles"
        timeout "$CMD_TIMEOUT" python3 "$NEWS_GEN" --out "$SCRATCH/news-site" --articles "$articles" >/dev/null
        NEWS_ARTICLES=$articles
        bench_dataset news "$SCRATCH/news-site"
        ;;
    esac
done

suffix=""
[ "$QUICK" = 1 ] && suffix="$suffix-quick"
[ "$ONLY" = all ] || suffix="$suffix-$ONLY"
[ -n "$OUT" ] || OUT="bench/results-$(date -u +%Y-%m-%d)$suffix.md"

{
    echo "# samizdat benchmark results"
    echo
    echo "Produced by \`bash bench/run.sh${ARGS:+ $ARGS}\`. Times are wall-clock seconds,"
    echo "median of $RUNS runs, page cache warm, fresh empty output each run. See BENCHMARKS.md."
    echo
    environment
    echo
    for ds in "${DATASETS[@]}"; do
        case "$ds" in
        rustdocs) report_dataset rustdocs "Rust docs ($( [ "$QUICK" = 1 ] && echo 'std/ subtree of ')\`rustc --print sysroot\`/share/doc/rust/html)" ;;
        news) report_dataset news "Generated news site ($NEWS_ARTICLES articles, make-news-site.py)" ;;
        esac
    done
} >"$SCRATCH/report.md"

cp "$SCRATCH/report.md" "$OUT"
# The raw runs beside the report: every measurement line, and hyperfine's JSON.
"${STATS[@]}" csv "$RES" "${OUT%.md}.csv"
"${STATS[@]}" json "$RES" "${OUT%.md}.json"
cat "$SCRATCH/report.md"
log "wrote $OUT and its raw runs: ${OUT%.md}.csv, ${OUT%.md}.json"
