#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, with its corpus
# (fuzz/corpus/<name>, new inputs go to build-fuzz/corpus/<name>) and dictionary.
set -euo pipefail
BUILD_DIR=${1:-build-fuzz}
SECONDS_PER=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for exe in "$BUILD_DIR"/fuzz/fuzz_*; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe"); name=${name#fuzz_}
  work="$BUILD_DIR/corpus/$name"; mkdir -p "$work"
  dict=(); [ -f "$ROOT/fuzz/$name.dict" ] && dict=(-dict="$ROOT/fuzz/$name.dict")
  echo "== fuzz $name for ${SECONDS_PER}s"
  "$exe" "$work" "$ROOT/fuzz/corpus/$name" -max_total_time="$SECONDS_PER" -print_final_stats=1 \
    -rss_limit_mb=2048 "${dict[@]}" 2>&1 | tail -n 12
done
