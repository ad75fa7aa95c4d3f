#!/usr/bin/env bash
# Times the whole binary end to end on generated data, beside the polars parse floor.
# Usage: benches/run.sh [SIZES...]   (default: 1000000 10000000 measurement rows, roughly)
# Needs /usr/bin/time (Debian package `time`). Writes bench-data/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin sustain --example parse_floor
bin=target/release/sustain
floor=target/release/examples/parse_floor
sizes=("${@:-1000000 10000000}")
# The demo averages about 23 measurement rows per client.
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB; $(date -u +%Y-%m-%d)"
for rows in ${sizes[@]}; do
  clients=$(( rows / 23 ))
  dir=bench-data/$rows
  if [ ! -f "$dir/measurements.csv" ]; then
    /usr/bin/time -f "generate: %e s, %M KB" $bin demo --quiet --clients $clients --seed 1 --out "$dir"
  fi
  n=$(( $(wc -l < "$dir/measurements.csv") - 1 ))
  echo "== $n measurement rows ($clients clients)"
  $floor "$dir/measurements.csv"
  /usr/bin/time -f "analyze (measurements only): %e s wall, %M KB peak" \
    $bin analyze --quiet --measurements "$dir/measurements.csv" --out "$dir/out"
  SUSTAIN_TIMINGS=1 /usr/bin/time -f "analyze (with goals): %e s wall, %M KB peak" \
    $bin analyze --quiet "$dir" --out "$dir/out"
done
