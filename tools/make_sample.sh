#!/usr/bin/env bash
# Re-creates samples/realmix-dev-fp8, the bundled DeepSeek-layout FP8 sample of
# `make run`, from ../shared/models (see samples/realmix-dev-fp8/README.md).
#   tools/make_sample.sh [BITSMITH] [SHARED_MODELS_DIR]
set -euo pipefail
BITSMITH=${1:-build/cli/bitsmith}
MODELS=${2:-../shared/models}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/samples/realmix-dev-fp8"
WORK=$(mktemp -d /tmp/bitsmith-sample.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# 1. The realmix-dev tensors with real weights (tools/realmix_repair.py says why).
mkdir -p "$WORK/realmix-dev"
python3 "$ROOT/tools/realmix_repair.py" "$MODELS" "$WORK/realmix-dev/model.safetensors"
cat > "$WORK/realmix-dev/config.json" <<'JSON'
{
  "architectures": ["DeepseekV3ForCausalLM"],
  "model_type": "deepseek_v3",
  "hidden_size": 256,
  "intermediate_size": 768,
  "num_hidden_layers": 3,
  "vocab_size": 512,
  "torch_dtype": "float32"
}
JSON
# 2. Block-scaled FP8 (128x128, DeepSeek's layout), in two shards.
"$BITSMITH" convert "$WORK/realmix-dev" "$OUT" --to e4m3fn --max-shard-size 2.5MB --force
"$BITSMITH" verify "$WORK/realmix-dev" "$OUT"
# 3. The sources' licenses travel with the weights.
install -m 644 "$MODELS/ppocr-v4/LICENSE-Apache-2.0.txt" "$MODELS/tiny-rwkv-5v2-730K/LICENSE-MIT-rwkv.cpp.txt" "$OUT/"
