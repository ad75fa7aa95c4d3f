#!/usr/bin/env bash
# Times the whole binary end to end on generated data, beside the polars parse floor.
# Usage: benches/run.sh [SIZES...]   (default: 1000000 10000000 measurement rows, roughly)
# Environment: RUNS (default 3; each timing is the fastest of RUNS runs, and RUNS rounds
#                of floor-then-run give the ratio round by round),
#              PARQUET=1 to time the same data as Parquet too,
#              PARTS=N to time the same data as N Parquet part files per table (clients
#                hashed to parts) and check its tables equal the CSV run's,
#              COMPARE=1 to time pandas and polars-python versions (benches/compare.py).
# Needs /usr/bin/time (Debian package `time`). Writes bench-data/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin sustain --example parse_floor
bin=target/release/sustain
floor=target/release/examples/parse_floor
runs=${RUNS:-3}
sizes=("${@:-1000000 10000000}")
today=2026-11-26 # fixed, so that every run rejects the same future-dated rows
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB; $(date -u +%Y-%m-%d); $(git rev-parse --short HEAD)"

# best_of LABEL CMD...: the fastest wall time of $runs runs, with that run's peak memory.
best_of() {
  local label=$1
  shift
  local best=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o /tmp/sustain-bench-time "$@" >/dev/null
    read -r wall kb </tmp/sustain-bench-time
    if [ -z "$best" ] || awk "BEGIN {exit !($wall < ${best%% *})}"; then best="$wall $kb"; fi
  done
  read -r wall kb <<<"$best"
  printf "%-44s %7.2f s  %6d MiB peak  (best of %d)\n" "$label" "$wall" $((kb / 1024)) "$runs"
}

# floor_best LABEL ARGS...: the parse floor's fastest total of $runs runs (taken like
# sustain's times, so that their ratio compares like with like).
floor_best() {
  local label=$1
  shift
  local best
  best=$(for _ in $(seq "$runs"); do $floor "$@" | tail -1 | awk '{print $1}'; done | sort -g | head -1)
  printf "%s %.3f s  (best of %d)\n" "$label" "$best" "$runs"
}

# ratio_rounds DIR: the all-text floor and the whole CSV run timed back to back, $runs
# times: each round's ratio and their median. This machine's speed drifts between minutes
# by more than the target's margin, so two best-of-N times taken minutes apart can
# mislead; a round's two timings share the same minute.
ratio_rounds() {
  local ratios=() f w
  for _ in $(seq "$runs"); do
    f=$($floor --text "$1/measurements.csv" "$1/goals.csv" | tail -1 | awk '{print $1}')
    /usr/bin/time -f "%e" -o /tmp/sustain-bench-time $bin analyze --quiet --today $today "$1" --out "$1/out" >/dev/null
    w=$(cat /tmp/sustain-bench-time)
    ratios+=("$(awk "BEGIN {printf \"%.2f\", $w / $f}")")
  done
  printf "whole run / all-text floor, round by round: %s (median %s)\n" "${ratios[*]}" \
    "$(printf "%s\n" "${ratios[@]}" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')"
}

# same_tables CSV_OUT OTHER_OUT: the same results whatever the input's form — every table
# but rejected.csv (which names files and lines).
same_tables() {
  for f in "$1"/*.csv; do
    name=$(basename "$f")
    [ "$name" = rejected.csv ] && continue
    cmp -s "$f" "$2/$name" || echo "DIFFERENT from CSV: $name"
  done
}

for rows in ${sizes[@]}; do
  # The demo (a live export: courses running past its extract date are cut) averages
  # about 21 measurement rows per client.
  clients=$((rows / 21))
  dir=bench-data/$rows
  if [ ! -f "$dir/measurements.csv" ]; then
    /usr/bin/time -f "generate CSV: %e s, %M KB" $bin demo --quiet --clients $clients --seed 1 --out "$dir"
  fi
  n=$(($(wc -l <"$dir/measurements.csv") - 1))
  echo "== $n measurement rows, $(($(wc -l <"$dir/goals.csv") - 1)) goal rows ($clients clients)"
  floor_best "parse floor, inferred types:" "$dir/measurements.csv" "$dir/goals.csv"
  floor_best "parse floor, all text:      " --text "$dir/measurements.csv" "$dir/goals.csv"
  best_of "analyze CSV, measurements only" \
    $bin analyze --quiet --today $today --measurements "$dir/measurements.csv" --out "$dir/out"
  best_of "analyze CSV, with goals (everything)" $bin analyze --quiet --today $today "$dir" --out "$dir/out"
  ratio_rounds "$dir"
  SUSTAIN_TIMINGS=1 $bin analyze --quiet --today $today "$dir" --out "$dir/out" 2>&1 | grep '^timing' || true
  if [ "${PARQUET:-0}" = 1 ]; then
    pdir=bench-data/$rows-parquet
    if [ ! -f "$pdir/measurements.parquet" ]; then
      /usr/bin/time -f "generate Parquet: %e s, %M KB" \
        $bin demo --quiet --clients $clients --seed 1 --format parquet --out "$pdir"
    fi
    floor_best "parse floor, Parquet:       " "$pdir/measurements.parquet" "$pdir/goals.parquet"
    best_of "analyze Parquet, with goals (everything)" $bin analyze --quiet --today $today "$pdir" --out "$pdir/out"
    # The stages beside the CSV run's: reading (which the form changes) against the
    # analyses and tables (which it does not).
    SUSTAIN_TIMINGS=1 $bin analyze --quiet --today $today "$pdir" --out "$pdir/out" 2>&1 | grep '^timing' | sed 's/^timing:/timing (Parquet):/' || true
    same_tables "$dir/out" "$pdir/out"
  fi
  if [ -n "${PARTS:-}" ]; then
    sdir=bench-data/$rows-parts$PARTS
    if [ ! -d "$sdir/measurements" ]; then
      /usr/bin/time -f "generate $PARTS Parquet parts: %e s, %M KB" \
        $bin demo --quiet --clients $clients --seed 1 --format parquet --parts "$PARTS" --out "$sdir"
    fi
    best_of "analyze Parquet in $PARTS parts, everything" $bin analyze --quiet --today $today "$sdir" --out "$sdir/out"
    same_tables "$dir/out" "$sdir/out"
  fi
  if [ "${COMPARE:-0}" = 1 ]; then
    python3 benches/compare.py "$dir" --sustain $bin --today $today || echo "compare.py: results differ"
  fi
done
