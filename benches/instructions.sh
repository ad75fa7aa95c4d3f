#!/usr/bin/env bash
# Counts the instructions of one whole run (cachegrind, no cache simulation): unlike wall
# time, the count does not change with the machine's load, so two binaries can be compared
# to a fraction of a percent on a shared machine. Prints the total and the functions
# above 1 % of it.
# Usage: benches/instructions.sh [ROWS] [BINARY]   (default 1000000 rows, the release build)
# Needs valgrind (Debian package `valgrind`); about 30 s at 1 M rows. Writes bench-data/.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
bin=${2:-target/release/sustain}
if [ "$bin" = target/release/sustain ]; then cargo build --release --quiet --bin sustain; fi
dir=bench-data/$rows
if [ ! -f "$dir/measurements.csv" ]; then
  # The demo averages about 23 measurement rows per client.
  $bin demo --quiet --clients $((rows / 23)) --seed 1 --out "$dir"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$out/cg" \
  "$bin" analyze --quiet --today 2026-11-26 "$dir" --out "$out/reports" 2>&1 | grep 'I *refs'
cg_annotate "$out/cg" | awk '/file:function/ {on = 1; next}
  on && match($0, /\( *[0-9.]+%\)/) {p = substr($0, RSTART + 1, RLENGTH - 3); if (p + 0 >= 1) print}'
