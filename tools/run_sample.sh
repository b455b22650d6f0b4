#!/usr/bin/env bash
# The main job of `make run`, on the bundled sample (samples/).
set -euo pipefail
BITSMITH=${1:-build/cli/bitsmith}
echo "== bitsmith formats"
"$BITSMITH" formats
