"""Foundation check on a GPU: full paper-recipe SimpleCNN training + PTQ sweep per data set.

Prints the training wall time and a table of C, P, T, I, I' per bit-width, and writes the sweep's
records (experiment ``gpu_check``) under ``--results``. Run from the repository root::

    QUIDE_DATA=/tmp/quide-data python benchmarks/gpu_check.py --datasets mnist cifar10 --results $OUT/results

``--placements graph inputs`` repeats the sweep under each activation-quantizer placement on the
same trained model; ``--repeat-train`` trains seed 0 twice to show whether the GPU run reproduces.
"""
from __future__ import annotations

import argparse
import time

import torch

from quide.measure import data as qd
from quide.analysis import results as qr
from quide.measure import sweep as qsweep
from quide.analysis.conditions import delta_for
from quide.measure import train as qt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--placements", nargs="+", default=["graph"])
    ap.add_argument("--repeat-train", action="store_true")
    ap.add_argument("--results", default=None, help="results root (default: QUIDE_RESULTS)")
    ap.add_argument("--checkpoints", default="/tmp/quide-checkpoints")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device} {torch.cuda.get_device_name(0) if device == 'cuda' else ''}, torch {torch.__version__}")

    for name in args.datasets:
        data = qd.load_dataset(name, download=False)
        recipe = qt.paper_recipe("simplecnn", name)
        if args.epochs:
            recipe = recipe.replace(epochs=args.epochs)
        splits = qd.device_splits(data, device, val_size=recipe.val_size, seed=args.seed)
        runs = 2 if args.repeat_train else 1
        trained = None
        for run in range(runs):
            folder = f"{args.checkpoints}/run{run}"
            t0 = time.perf_counter()
            trained = qsweep.train_or_load("simplecnn", data, splits, recipe, args.seed, checkpoint_dir=folder)
            print(f"[{data.source}] train run {run}: {recipe.epochs} epochs in {trained.meta['train_wall_s']:.1f} s "
                  f"(call {time.perf_counter() - t0:.1f} s), best epoch {trained.meta['epoch']}, "
                  f"val {trained.meta['val_accuracy']:.4f}, test {trained.meta['test_accuracy']:.4f}")
        delta = delta_for("simplecnn", name)
        for placement in args.placements:
            t0 = time.perf_counter()
            config = qsweep.SweepConfig(placement=placement)
            records, predictions = qsweep.measure_sweep(
                trained.model, data, splits, model_name="simplecnn", seed=args.seed, delta=delta, config=config,
                experiment="gpu_check", train_meta=trained.meta)
            wall = time.perf_counter() - t0
            run_id = f"simplecnn-{name}-seed{args.seed}-{placement}"
            path = qr.write_records(records, "gpu_check", run_id, root=args.results, predictions=predictions)
            print(f"[{data.source}] sweep ({placement}) in {wall:.1f} s -> {path}")
            print(f"  {'bits':>4} {'C':>6} {'P':>7} {'T_ms':>7} {'I':>7} {'I_gated':>7}")
            for r in records:
                print(f"  {r['bits']:>4} {r['C_paper']:>6.2f} {r['P']:>7.4f} {r['T_ms']:>7.4f} "
                      f"{r['I']:>7.3f} {r['I_gated']:>7.3f}")


if __name__ == "__main__":
    main()
