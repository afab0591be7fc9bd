"""Training speed of the SimpleCNN recipe: CUDA-graph steps vs eager steps, same seed and data.

Prints wall time and images/s of each, and whether the two trained models agree (they run the
same kernels, so they should match to the bit). Exits 1 if they disagree in test accuracy by more
than 0.2 points, so a GPU script can fall back to eager steps. From the repository root::

    QUIDE_DATA=/tmp/quide-data python benchmarks/train_speed.py --dataset cifar10 --epochs 5
"""
from __future__ import annotations

import argparse
import sys

import torch

from quide import data as qd
from quide import models
from quide import train as qt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = qd.load_dataset(args.dataset, download=False)
    base = qt.paper_recipe("simplecnn", args.dataset).replace(epochs=args.epochs)
    splits = qd.device_splits(data, device, val_size=base.val_size, seed=args.seed)
    h, w, c = data.x_train.shape[1:]
    print(f"{data.source}, {len(splits.train)} training images, {args.epochs} epochs, "
          f"{torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'}")
    out = {}
    for graphs in (True, False):
        qt.seed_everything(args.seed)
        model = models.build_model("simplecnn", data.num_classes, (h, w, c))
        res = qt.train(model, splits, base.replace(cuda_graphs=graphs), args.seed)
        acc = qt.evaluate(res.model, splits.test)
        ips = len(splits.train) * args.epochs / res.wall_s
        out[graphs] = (res, acc)
        print(f"cuda_graphs={graphs!s:5}: {res.wall_s:6.2f} s, {ips:9.0f} images/s, "
              f"{res.wall_s / args.epochs:.3f} s/epoch, test accuracy {acc:.4f}")
    (g, acc_g), (e, acc_e) = out[True], out[False]
    diff = max((a - b).abs().max().item() for a, b in zip(g.model.state_dict().values(),
                                                         e.model.state_dict().values()))
    print(f"speed-up {e.wall_s / g.wall_s:.2f}x; max |weight difference| {diff:.3g}; "
          f"accuracy difference {abs(acc_g - acc_e) * 100:.2f} points")
    return 0 if abs(acc_g - acc_e) <= 0.002 else 1


if __name__ == "__main__":
    sys.exit(main())
