#!/usr/bin/env bash
# The main job of `make run`: the bundled DeepSeek-layout FP8 sample
# (samples/realmix-dev-fp8) converted to BF16 exactly as DeepSeek's
# fp8_cast_bf16 does, then verified with the scalar reference codecs.
#   tools/run_sample.sh [BITSMITH]
set -euo pipefail
BITSMITH=${1:-build/cli/bitsmith}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SAMPLE="$ROOT/samples/realmix-dev-fp8"
OUT=${SAMPLE_OUT:-$(dirname "$(dirname "$BITSMITH")")/sample-out}

echo "== bitsmith info $SAMPLE"
info=$("$BITSMITH" info "$SAMPLE")
printf '%s\n' "$info" | sed '/^what the tensors would weigh/,$d'   # the summary (the size table is long)
echo
echo "== bitsmith convert $SAMPLE $OUT --to bf16 --force"
"$BITSMITH" convert "$SAMPLE" "$OUT" --to bf16 --force
echo
echo "== bitsmith verify $SAMPLE $OUT"
"$BITSMITH" verify "$SAMPLE" "$OUT"
echo
echo "== the converted checkpoint"
info=$("$BITSMITH" info "$OUT")
printf '%s\n' "$info" | sed '/^metadata/,$d'
