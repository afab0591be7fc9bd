#!/usr/bin/env bash
# EXP-3 on the GPU machine (from the repository root): trains (or finds) the seed-0 SimpleCNN
# checkpoints of the PTQ sweep side by side, then runs notebooks/mixed_precision.ipynb for each data
# set one at a time (every search, search seeds 0/42/123), so latency has the GPU to itself.
#   tools/gpu_mixed_precision.sh OUT "cifar10 mnist" [SECONDS_LIMIT]
set -uo pipefail
out=$1; datasets=$2; limit=${3:-0}
mkdir -p "$out/notebooks" "$out/logs"
export QUIDE_RESULTS="$out/results"
start=$SECONDS
for d in $datasets; do
  python3 -m quide train -p model simplecnn -p dataset "$d" -p seed 0 > "$out/logs/train-$d.log" 2>&1 &
done
wait
echo "checkpoints: $((SECONDS - start)) s"; tail -qn1 "$out"/logs/train-*.log
for d in $datasets; do
  run_start=$SECONDS
  left=$(( limit > 0 ? limit - SECONDS : 86400 ))
  timeout "$left" python3 -m papermill -k python3 notebooks/mixed_precision.ipynb \
    "$out/notebooks/simplecnn-$d-mixed_precision.ipynb" -p dataset "$d" -y "seed: [0, 42, 123]" \
    > "$out/logs/mixed_precision-$d.log" 2>&1
  echo "$d: rc $? in $((SECONDS - run_start)) s"
done
echo "total: $((SECONDS - start)) s"
