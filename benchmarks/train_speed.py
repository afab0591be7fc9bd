"""Training speed of a paper recipe: CUDA-graph steps vs eager steps, same seed and data.

Prints wall time and images/s of each variant and whether the graph and eager runs agree (they run
the same kernels, so they should match to the bit). Exits 1 if they disagree in test accuracy by
more than 0.2 points, so a GPU script can fall back to eager steps. From the repository root::

    QUIDE_DATA=/tmp/quide-data python benchmarks/train_speed.py --dataset cifar10 --epochs 5
    QUIDE_DATA=/tmp/quide-data python benchmarks/train_speed.py --model resnet18_cifar --epochs 3 \\
        --variants graphs,eager,autotuned

Variants: ``graphs`` (CUDA-graph steps, deterministic cuDNN: the recipe as the grid runs it),
``eager`` (the same without graphs), ``autotuned`` (graphs with cuDNN autotuning and
non-deterministic kernels: faster where the convolutions dominate, but a seed no longer fixes the
weights, so the grid does not use it). Several copies of this script started at once (one per
seed) measure concurrent training on one GPU; ``--variants graphs`` keeps each copy short.
"""
from __future__ import annotations

import argparse
import sys

import torch

from quide.measure import data as qd
from quide.measure import models
from quide.measure import train as qt

VARIANTS = {"graphs": {"cuda_graphs": True},
            "eager": {"cuda_graphs": False},
            "autotuned": {"cuda_graphs": True, "deterministic": False}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="simplecnn", choices=["simplecnn", "resnet18_cifar"])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default="graphs,eager", help=f"comma-separated, of {list(VARIANTS)}")
    args = ap.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        ap.error(f"unknown variants {sorted(unknown)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = qd.load_dataset(args.dataset, download=False)
    base = qt.paper_recipe(args.model, args.dataset).replace(epochs=args.epochs)
    splits = qd.device_splits(data, device, val_size=base.val_size, seed=args.seed)
    h, w, c = data.x_train.shape[1:]
    print(f"{args.model}, {data.source}, {len(splits.train)} training images, {args.epochs} epochs, "
          f"seed {args.seed}, {torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'}")
    out = {}
    for name in variants:
        qt.seed_everything(args.seed)
        model = models.build_model(args.model, data.num_classes, (h, w, c))
        res = qt.train(model, splits, base.replace(**VARIANTS[name]), args.seed)
        acc = qt.evaluate(res.model, splits.test)
        ips = len(splits.train) * args.epochs / res.wall_s
        out[name] = (res, acc)
        print(f"{name:9}: {res.wall_s:7.2f} s, {ips:9.0f} images/s, "
              f"{res.wall_s / args.epochs:.3f} s/epoch, test accuracy {acc:.4f}", flush=True)
    if not {"graphs", "eager"} <= out.keys():
        return 0
    (g, acc_g), (e, acc_e) = out["graphs"], out["eager"]
    diff = max((a.float() - b.float()).abs().max().item()
               for a, b in zip(g.model.state_dict().values(), e.model.state_dict().values()))
    print(f"graphs vs eager: speed-up {e.wall_s / g.wall_s:.2f}x; max |weight difference| {diff:.3g}; "
          f"accuracy difference {abs(acc_g - acc_e) * 100:.2f} points")
    return 0 if abs(acc_g - acc_e) <= 0.002 else 1


if __name__ == "__main__":
    sys.exit(main())
