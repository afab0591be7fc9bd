#!/usr/bin/env bash
# Runs the PTQ sweep notebook with papermill for each condition and seed on the GPU machine (from
# the repository root). Executed notebooks, logs and records go under OUT.
#   [JOBS=3] tools/gpu_grid.sh OUT "simplecnn:mnist simplecnn:cifar10" "0 42 123" [-p NAME VALUE ...]
# With JOBS > 1 the grid runs in two phases. First `python -m quide train` trains JOBS models at a
# time on the one GPU (a model that leaves the GPU idle between kernels shares it well; each run is
# its own process and seed, so results do not depend on JOBS). Then the notebooks run one at a time
# and load those checkpoints, so that latency is measured with the GPU to itself: T measured
# beside other work would be inflated. Prints wall times; a failed run is reported, the grid goes on.
set -uo pipefail
out=$1; conds=$2; seeds=$3; shift 3
jobs=${JOBS:-1}
mkdir -p "$out/notebooks" "$out/logs"
export QUIDE_RESULTS="$out/results"
rm -f "$out"/logs/*.failed

fail() {  # name phase seconds
  echo "$1 $2 FAILED in $3 s (log: logs/$1.$2.log)"; tail -5 "$out/logs/$1.$2.log"
  touch "$out/logs/$1.failed"
}

train_one() {  # model dataset seed -p pairs...
  local model=$1 dataset=$2 seed=$3; shift 3
  local name="$model-$dataset-seed$seed" start=$SECONDS
  if python3 -m quide train -p model "$model" -p dataset "$dataset" -p seed "$seed" "$@" \
       > "$out/logs/$name.train.log" 2>&1; then
    echo "$name train ok in $((SECONDS - start)) s: $(tail -1 "$out/logs/$name.train.log")"
  else
    fail "$name" train $((SECONDS - start))
  fi
}

sweep_one() {  # model dataset seed -p pairs...
  local model=$1 dataset=$2 seed=$3; shift 3
  local name="$model-$dataset-seed$seed" start=$SECONDS
  if python3 -m papermill -k python3 notebooks/ptq_sweep.ipynb "$out/notebooks/$name.ipynb" \
       -p model "$model" -p dataset "$dataset" -p seed "$seed" "$@" > "$out/logs/$name.notebook.log" 2>&1; then
    echo "$name notebook ok in $((SECONDS - start)) s"
  else
    fail "$name" notebook $((SECONDS - start))
  fi
}

grid_start=$SECONDS
if [ "$jobs" -gt 1 ]; then
  for cond in $conds; do
    for seed in $seeds; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
      train_one "${cond%%:*}" "${cond##*:}" "$seed" "$@" &
    done
  done
  wait
  echo "training phase: $((SECONDS - grid_start)) s wall, $jobs at once"
fi
for cond in $conds; do
  for seed in $seeds; do
    name="${cond%%:*}-${cond##*:}-seed$seed"
    [ -e "$out/logs/$name.failed" ] && continue
    sweep_one "${cond%%:*}" "${cond##*:}" "$seed" "$@"
  done
done
failed=$(find "$out/logs" -name '*.failed' | wc -l)
echo "grid: $((SECONDS - grid_start)) s wall, $failed failed"
