#!/usr/bin/env bash
# The long fuzzing run recorded in docs/SECURITY.md: every target, one after
# the other, until it has executed RUNS inputs (default 10 million) or spent
# MAX_SECONDS (default 1800). Needs a nightly toolchain and cargo-fuzz.
#
#   bash fuzz/campaign.sh                 # all targets, no sanitizer
#   SANITIZER=address bash fuzz/campaign.sh range paths
#
# SANITIZER=none (the default) still has libFuzzer's coverage guidance and
# Rust's own checks (bounds, overflow: cargo-fuzz builds with debug
# assertions); AddressSanitizer adds little to safe Rust and made the bundle
# and push targets 500 times slower (zstd allocates its window per input).
# Each target starts from a copy of the committed seed corpus; the log and the
# grown corpus stay in $OUT (default /tmp/samizdat-fuzz). A crash stops the
# run with libFuzzer's report; its input is in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
MAX_SECONDS=${MAX_SECONDS:-1800}
SANITIZER=${SANITIZER:-none}
OUT=${OUT:-/tmp/samizdat-fuzz}
# The push target writes a scratch repository through tempfile: on tmpfs it
# runs about five times faster (no disk, no real fdatasync).
if [ -z "${TMPDIR:-}" ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(documents envelope bundle push paths range config)
mkdir -p "$OUT"
printf '| target | executions | seconds | exec/s | corpus | findings |\n|---|---:|---:|---:|---:|---|\n' >"$OUT/results.md"
for t in "${targets[@]}"; do
  mkdir -p "$OUT/$t"
  cp -n corpus/"$t"/* "$OUT/$t/"
  start=$(date +%s)
  status=none
  if ! nice -n 19 cargo +nightly fuzz run -s "$SANITIZER" "$t" "$OUT/$t" -- \
      -runs="$RUNS" -max_total_time="$MAX_SECONDS" -print_final_stats=1 >"$OUT/$t.log" 2>&1; then
    status="CRASH (see $OUT/$t.log)"
  fi
  secs=$(( $(date +%s) - start ))
  execs=$(grep -E 'stat::number_of_executed_units' "$OUT/$t.log" | tail -1 | awk '{print $2}')
  rate=$(grep -E 'stat::average_exec_per_sec' "$OUT/$t.log" | tail -1 | awk '{print $2}')
  printf '| `%s` | %s | %s | %s | %s | %s |\n' "$t" "${execs:-?}" "$secs" "${rate:-?}" \
    "$(ls "$OUT/$t" | wc -l)" "$status" | tee -a "$OUT/results.md"
  [ "$status" = none ] || { tail -40 "$OUT/$t.log"; exit 1; }
done
cat "$OUT/results.md"
