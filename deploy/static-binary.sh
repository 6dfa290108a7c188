#!/usr/bin/env bash
# One self-contained samizdat binary for a USB stick (`samizdat read FILE.szb`
# on a machine with nothing installed): glibc linked statically, stripped.
# Output: target/static/samizdat (about 13 MB on x86_64).
#
# `read`, `verify FILE`, `extract` and the mirror work fully. Looking up host
# names (URLs with names, not addresses) in a static glibc binary needs the
# host's NSS libraries of the same glibc version; readers of a bundle never
# need it.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" --target-dir target/static-build
mkdir -p target/static
strip -o target/static/samizdat "target/static-build/$target/release/samizdat"
file target/static/samizdat
ls -l target/static/samizdat
