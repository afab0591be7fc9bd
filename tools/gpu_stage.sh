#!/usr/bin/env bash
# Stage what a GPU run needs (../shared/gpu/stage.sh: wheels and data sets into .gpu/) and print the
# `carry` lists of the device calls that bring it over. One call carries at most 64 MiB together
# with the tracked tree, so the staged parts are split greedily into calls that fit; every call
# carries .gpu/setup.sh, and its command starts with `bash .gpu/setup.sh` (which skips what is not there).
#   tools/gpu_stage.sh [DATASET...]     DATASET: mnist fashion_mnist cifar10 mmlu (default: mnist cifar10)
# Run the printed calls one after another on the same warm machine, then the experiment's call.
set -euo pipefail
root="$(git rev-parse --show-toplevel)"
cd "$root"
stage="${SHARED_GPU:-$(dirname "$root")/shared/gpu}/stage.sh"
[ -x "$stage" ] || stage=/work/shared/gpu/stage.sh
"$stage" "$@" >/dev/null

limit=$((64 * 1024 * 1024))
tree=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
room=$((limit - tree - 1024 * 1024))   # a MiB of margin for the command and the file list
echo "tracked tree: $((tree / 1048576)) MiB; room per call: $((room / 1048576)) MiB" >&2

# the parts: the wheelhouse, then each data file or folder
parts=(.gpu/wheelhouse)
for p in .gpu/data/*; do parts+=("$p"); done
setup=$(stat -c %s .gpu/setup.sh)
call=(); size=$setup
flush() { [ ${#call[@]} -gt 0 ] && printf '["%s", ".gpu/setup.sh"]\n' "$(IFS='|'; echo "${call[*]}" | sed 's/|/", "/g')"; call=(); size=$setup; }
for p in "${parts[@]}"; do
  s=$(du -sb "$p" | cut -f1)
  if [ "$s" -gt "$room" ]; then echo "gpu_stage.sh: $p ($((s / 1048576)) MiB) does not fit one call" >&2; exit 1; fi
  if [ $((size + s)) -gt "$room" ]; then flush; fi
  call+=("$p"); size=$((size + s))
done
flush
