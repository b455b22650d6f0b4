#!/usr/bin/env bash
# Convert benchmark (issue 5): a synthetic DeepSeek-V3-layout FP8 checkpoint of
# >= 2 GiB (bench/convert_synth.py: 7168x2048 / 2048x7168 experts, 576x7168
# kv_a, ragged 1000x7100, one 1 GiB tensor), converted to BF16 with 1 and 2
# threads; each run is compared with `cp` of the same output bytes, timed in
# the same run (cp alone, and cp + sync since convert fsyncs each shard). Peak
# RSS from /usr/bin/time -v. Run under `nice -n 19` on a shared machine.
#
# usage: bench/convert_bench.sh [BITSMITH] [LAYERS=5] [BIG_MIB=1024]
#   BENCH_TMP=/dev/shm (default /tmp): where the checkpoint goes; on tmpfs the
#   run measures the CPU side (no disk), on /tmp the whole job.
set -euo pipefail
BITSMITH=$(readlink -f "${1:-build/cli/bitsmith}")
LAYERS=${2:-5}
BIG=${3:-1024}
HERE=$(cd "$(dirname "$0")" && pwd)

need=$(( (3 * (BIG + 231 * LAYERS) + 512) ))   # MiB: input + output + cp copy
TMPD=${BENCH_TMP:-/tmp}
avail=$(df -Pm "$TMPD" | awk 'NR==2 {print $4}')
echo "== df -h $TMPD"; df -h "$TMPD"
if [ "$avail" -lt "$need" ]; then echo "need ~${need} MiB free in $TMPD, have ${avail}" >&2; exit 1; fi

WORK=$(mktemp -d "$TMPD/bitsmith-convert-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
python3 "$HERE/convert_synth.py" "$WORK/in" "$LAYERS" "$BIG"
in_bytes=$(du -cb "$WORK"/in/*.safetensors | tail -1 | cut -f1)

secs() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$@"; }
now() { date +%s.%N; }

printf "\n%-9s %10s %10s %9s %9s %12s %12s %10s %9s %9s %10s\n" threads "convert s" "GB/s out" "cp s" "cp+sync s" "ratio cp" "ratio cp+s" "peak RSS" "conv CPU" "cp CPU" "CPU ratio"
for t in 1 2; do
  rm -rf "$WORK/out" "$WORK/cp"; sync
  t0=$(now)
  /usr/bin/time -v -o "$WORK/time.txt" "$BITSMITH" convert "$WORK/in" "$WORK/out" --to bf16 --threads "$t" -q > "$WORK/convert.txt"
  t1=$(now)
  out_bytes=$(du -cb "$WORK"/out/*.safetensors | tail -1 | cut -f1)
  rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.txt")
  sync
  # cp of the same output bytes (page cache warm, as the input was for convert).
  mkdir -p "$WORK/cp"
  c0=$(now); /usr/bin/time -f "%U %S" -o "$WORK/cptime.txt" cp "$WORK"/out/*.safetensors "$WORK/cp/"; c1=$(now); sync; c2=$(now)
  conv=$(secs "$t0" "$t1"); cps=$(secs "$c0" "$c1"); cpss=$(secs "$c0" "$c2")
  # CPU seconds (user + system) of both: on a loaded shared machine the wall
  # times mostly measure the scheduler; the CPU times measure the work.
  conv_cpu=$(awk -F: '/User time|System time/ {s += $2} END {print s}' "$WORK/time.txt")
  cp_cpu=$(awk '{print $1 + $2}' "$WORK/cptime.txt")
  python3 - "$t" "$conv" "$cps" "$cpss" "$out_bytes" "$rss_kb" "$conv_cpu" "$cp_cpu" <<'PY'
import sys
t, conv, cp, cps, out, rss, ccpu, cpcpu = sys.argv[1], *map(float, sys.argv[2:])
print(f"{t:<9} {conv:10.2f} {out / conv / 1e9:10.2f} {cp:9.2f} {cps:9.2f} {conv / cp:12.2f} {conv / cps:12.2f} {rss / 1024:8.0f} MiB"
      f" {ccpu:9.2f} {cpcpu:9.2f} {ccpu / cpcpu:10.2f}")
PY
done
echo
echo "input $in_bytes bytes FP8+scales ($(python3 -c "print(round($in_bytes/2**30,2))") GiB), output $out_bytes bytes BF16"
tail -5 "$WORK/convert.txt"
