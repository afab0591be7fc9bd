#!/usr/bin/env bash
# Runs the PTQ sweep notebook with papermill for each condition and seed, one after another, on
# the GPU machine (from the repository root). Executed notebooks, logs and records go under OUT.
#   tools/gpu_grid.sh OUT "simplecnn:mnist simplecnn:cifar10" "0 42 123" [papermill args...]
# Prints the wall time of each run and of the grid; a failed run is reported and the grid goes on.
set -uo pipefail
out=$1; conds=$2; seeds=$3; shift 3
mkdir -p "$out/notebooks" "$out/logs"
export QUIDE_RESULTS="$out/results"
grid_start=$SECONDS
failed=0
for cond in $conds; do
  model=${cond%%:*}; dataset=${cond##*:}
  for seed in $seeds; do
    name="$model-$dataset-seed$seed"
    run_start=$SECONDS
    if python3 -m papermill -k python3 notebooks/ptq_sweep.ipynb "$out/notebooks/$name.ipynb" \
         -p model "$model" -p dataset "$dataset" -p seed "$seed" "$@" > "$out/logs/$name.log" 2>&1; then
      echo "$name ok in $((SECONDS - run_start)) s"
    else
      echo "$name FAILED in $((SECONDS - run_start)) s (log: logs/$name.log)"; tail -5 "$out/logs/$name.log"
      failed=$((failed + 1))
    fi
  done
done
echo "grid: $((SECONDS - grid_start)) s wall, $failed failed"
