#!/usr/bin/env bash
# Measures the README's accuracy table: float, PoT W8/A8/Attn4 with each observer, the float-scale
# counterpart, and PoT W4/A8/Attn4, on vit4mnist (MNIST t10k: calibrate on the last 100, evaluate the
# other 9,900) and vit-cifar10 (the 1,000 CIFAR JPEGs: calibrate on the last 100, evaluate 900).
# Usage: scripts/accuracy-table.sh [shared data dir] [output dir]. Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
out="${2:-accuracy-results}"
mkdir -p "$out"
run() { # name model dataset args...
  local name=$1 model=$2 dataset=$3
  shift 3
  if [ -f "$out/$name.json" ]; then return; fi # resumable: a finished measurement is kept
  node bin/p2vit.js test-quant "$data/models/$model" "$data/$dataset" --json "$@" > "$out/$name.json.tmp"
  mv "$out/$name.json.tmp" "$out/$name.json"
  echo "$name: $(cat "$out/$name.json")"
}
models=("vit4mnist mnist" "vit-cifar10 cifar10/test")
each_model() { # name-suffix args...
  local suffix=$1
  shift
  for m in "${models[@]}"; do
    set -- $m "$@"
    local model=$1 dataset=$2
    shift 2
    run "$model-$suffix" "$model" "$dataset" "$@"
  done
}
each_model pot-minmax --quant --quant-method minmax
each_model float-minmax --quant --quant-method minmax --scale float
each_model pot-w4 --quant --quant-method minmax --w-bits 4
for method in ema percentile omse; do
  each_model "pot-$method" --quant --quant-method "$method"
done
