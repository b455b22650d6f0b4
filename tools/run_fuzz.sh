#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, one after the other:
#   tools/run_fuzz.sh [BUILD_DIR [SECONDS [TARGET...]]]
# Each target starts from its seeds (fuzz/corpus/<name>, executed first: this is
# also the sanitizer replay of the committed corpus) and its dictionary
# fuzz/<name>.dict; new inputs go to BUILD_DIR/corpus/<name>, crashes to
# BUILD_DIR/artifacts/<name>-crash-*. UBSan findings abort (halt_on_error), so
# they count as crashes. Prints each target's final stats (executions, cov:
# edges, corpus size) and exits non-zero when any target found something.
# Environment:
#   FUZZ_SEED=N   libFuzzer -seed (default: libFuzzer picks one from the clock);
#   FUZZ_RUNS=N   stop each target after N executions (-runs; SECONDS stays a cap);
#   FUZZ_FRESH=1  start each target from its committed seeds only: BUILD_DIR/corpus/<name>
#                 (what earlier runs found) is emptied first;
#   FUZZ_FLAGS=".."  more libFuzzer flags, after (so overriding) the defaults below.
# With FUZZ_SEED, FUZZ_RUNS and FUZZ_FRESH=1 a run is one fixed sequence of inputs: a run
# cut short by SECONDS executes a prefix of it, so `make fuzz-ci` with a longer
# FUZZ_CI_SECONDS checks everything CI can execute.
set -uo pipefail
BUILD_DIR=${1:-build-fuzz}
SECONDS_PER=${2:-60}
shift $(( $# > 2 ? 2 : $# ))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export GGML_NO_BACKTRACE=1
failed=()
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for exe in "$BUILD_DIR"/fuzz/fuzz_*; do
    [ -x "$exe" ] && targets+=("$(basename "$exe" | sed 's/^fuzz_//')")
  done
fi
mkdir -p "$BUILD_DIR/artifacts"
for name in "${targets[@]}"; do
  exe="$BUILD_DIR/fuzz/fuzz_$name"
  work="$BUILD_DIR/corpus/$name"
  [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$work"
  mkdir -p "$work" "$ROOT/fuzz/corpus/$name"
  fixed=()
  [ -n "${FUZZ_SEED:-}" ] && fixed+=(-seed="$FUZZ_SEED")
  [ -n "${FUZZ_RUNS:-}" ] && fixed+=(-runs="$FUZZ_RUNS")
  dict=(); [ -f "$ROOT/fuzz/$name.dict" ] && dict=(-dict="$ROOT/fuzz/$name.dict")
  # ggml_diff's cost is set by bytes 1-2 (blocks x rows), not by the input length,
  # and inputs shorter than a block never reach the dequantizers with real blocks:
  # no slow growth of the length limit (libFuzzer's default kept it at 32 bytes).
  target_flags=()
  [ "$name" = ggml_diff ] && target_flags=(-len_control=0 -max_len=4096)
  echo "== fuzz $name for ${SECONDS_PER}s ${fixed[*]} ($(ls "$ROOT/fuzz/corpus/$name" | wc -l) seeds)"
  log="$BUILD_DIR/artifacts/$name.log"
  # Every log line is prefixed with the seconds since the start ("[+12s] #4096 NEW cov: ..."),
  # so the log shows when coverage last grew (the plateau).
  t0=$(date +%s)
  "$exe" "$work" "$ROOT/fuzz/corpus/$name" -max_total_time="$SECONDS_PER" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=25 -max_len=65536 -close_fd_mask=1 \
    -artifact_prefix="$BUILD_DIR/artifacts/$name-" "${dict[@]}" "${target_flags[@]}" "${fixed[@]}" ${FUZZ_FLAGS:-} 2>&1 |
    while IFS= read -r line; do printf -v now '%(%s)T' -1; printf '[+%ds] %s\n' $((now - t0)) "$line"; done >"$log"
  rc=${PIPESTATUS[0]}
  grep -E "^\[\+[0-9]+s\] #[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb" "$log" |
    tail -n 4
  # The last line whose cov: (edges) grew: how long the target has been on its plateau.
  awk '{ for (i = 1; i < NF; ++i) if ($i == "cov:" && $(i + 1) + 0 > cov) { cov = $(i + 1) + 0; at = $1 } }
       END { if (cov) print "   edges: " cov ", last new edge at " at }' "$log"
  echo "   corpus: $(ls "$work" | wc -l) new inputs in $work"
  if [ $rc -ne 0 ]; then
    echo "!! fuzz $name FAILED (exit $rc): see $log"
    grep -E "ERROR|SUMMARY|property violated|runtime error|Test unit written" "$log" | head -n 8
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz targets with findings: ${failed[*]}"
  exit 1
fi
