#!/usr/bin/env bash
# Runs the PTQ sweep notebook with papermill for each condition and seed on the GPU machine (from
# the repository root). Executed notebooks, logs and records go under OUT.
#   [JOBS=3] tools/gpu_grid.sh OUT "simplecnn:mnist simplecnn:cifar10" "0 42 123" [papermill args...]
# JOBS (default 1) runs that many notebooks at once on the one GPU: a small model leaves the GPU
# idle between kernels, which another process can fill. Each run is its own process with its own
# seed, so concurrency does not change any result. Prints the wall time of each run and of the
# grid; a failed run is reported and the grid goes on.
set -uo pipefail
out=$1; conds=$2; seeds=$3; shift 3
jobs=${JOBS:-1}
mkdir -p "$out/notebooks" "$out/logs"
export QUIDE_RESULTS="$out/results"

run_one() {  # model dataset seed papermill-args...
  local model=$1 dataset=$2 seed=$3; shift 3
  local name="$model-$dataset-seed$seed" start=$SECONDS
  if python3 -m papermill -k python3 notebooks/ptq_sweep.ipynb "$out/notebooks/$name.ipynb" \
       -p model "$model" -p dataset "$dataset" -p seed "$seed" "$@" > "$out/logs/$name.log" 2>&1; then
    echo "$name ok in $((SECONDS - start)) s"
  else
    echo "$name FAILED in $((SECONDS - start)) s (log: logs/$name.log)"; tail -5 "$out/logs/$name.log"
    touch "$out/logs/$name.failed"
  fi
}

grid_start=$SECONDS
rm -f "$out"/logs/*.failed
for cond in $conds; do
  for seed in $seeds; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_one "${cond%%:*}" "${cond##*:}" "$seed" "$@" &
  done
done
wait
failed=$(find "$out/logs" -name '*.failed' | wc -l)
echo "grid: $((SECONDS - grid_start)) s wall, $failed failed, $jobs at once"
