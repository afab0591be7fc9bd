"""Does a change to the trainer keep the trained weights? Train conditions twice, compare bytes.

Why: ``quide.measure.models.max_pool_2x2`` replaced ``F.max_pool2d``'s backward in SimpleCNN for speed
(issue 17). Its tests show the same bits on the CPU; this checks the GPU, on the real recipe and
data: each condition is trained by ``quide.measure.sweep.model_for`` (the sweep's own path, a temporary
checkpoint folder) with quide's pooling and again with PyTorch's, and the script prints both
runs' kept epoch, validation and test accuracy and the sha256 of the weights, beside the committed
record of that condition (``data/results/ptq_sweep``), whose epoch and accuracies a new training
must also reproduce. Exit status 1 if any pair of weights differs or a record disagrees.

    QUIDE_DATA=/tmp/quide-data python benchmarks/probes/same_weights.py cifar10:0 mnist:0   # on a GPU machine
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from quide.measure.sweep import SweepParams, load_condition, model_for
from quide.measure.train import state_sha256
from step_kernels import pytorch_pooling   # run from the repository root: benchmarks/ is the script's folder

RECORDS = Path(__file__).resolve().parents[2] / "data" / "results" / "ptq_sweep"


def committed_training(dataset: str, seed: int) -> dict | None:
    """The ``train`` block of the committed graph-placement SimpleCNN record of (dataset, seed)."""
    for path in sorted(RECORDS.glob(f"simplecnn-{dataset}-seed{seed}-graph-paper-*.json")):
        return json.loads(path.read_text())[0]["train"]
    return None


def trained(params: SweepParams, with_pytorch_pooling: bool) -> dict:
    pytorch_pooling(with_pytorch_pooling)
    try:
        with tempfile.TemporaryDirectory() as checkpoints:
            result = model_for(load_condition(params), checkpoint_dir=checkpoints)
    finally:
        pytorch_pooling(False)
    meta = result.meta
    return {"epoch": meta["epoch"], "val_accuracy": meta["val_accuracy"], "test_accuracy": meta["test_accuracy"],
            "sha256": state_sha256(result.model.state_dict()), "train_wall_s": meta["train_wall_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("conditions", nargs="+", help="DATASET:SEED of SimpleCNN conditions, e.g. cifar10:0")
    ap.add_argument("--profile", default="paper", choices=["paper", "smoke"],
                    help="smoke: a slice of the data, to try the script on a CPU (no record matches it)")
    args = ap.parse_args()
    failures = 0
    for spec in args.conditions:
        dataset, _, seed = spec.partition(":")
        params = SweepParams(model="simplecnn", dataset=dataset, seed=int(seed or 0), profile=args.profile)
        runs = {"quide pooling": trained(params, False), "PyTorch pooling": trained(params, True)}
        record = committed_training(params.dataset, params.seed) if args.profile == "paper" else None
        for label, run in runs.items():
            print(f"simplecnn {dataset} seed {params.seed}, {label:15}: epoch {run['epoch']}, val "
                  f"{run['val_accuracy']:.4f}, test {run['test_accuracy']:.4f}, weights sha256 "
                  f"{run['sha256'][:16]}, trained in {run['train_wall_s']:.1f} s")
        same = runs["quide pooling"]["sha256"] == runs["PyTorch pooling"]["sha256"]
        matches = record is not None and all(record[k] == runs["quide pooling"][k]
                                             for k in ("epoch", "val_accuracy", "test_accuracy"))
        print(f"  weights identical: {'yes' if same else 'NO'}; committed record: "
              + ("none" if record is None else f"epoch {record['epoch']}, val {record['val_accuracy']:.4f}, test "
                 f"{record['test_accuracy']:.4f} ({'reproduced' if matches else 'NOT reproduced'})"))
        failures += (not same) + (not matches)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
