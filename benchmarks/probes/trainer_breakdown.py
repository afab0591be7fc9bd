"""Where an epoch of quide's trainer goes: the captured training step alone, the batch pipeline
alone, and the validation pass, beside the trainer's own s/epoch.

Why: issue 17 asks for the SimpleCNN trainer at 8x the conventional loop (at most 0.25 s/epoch on an
H200) with the weights bit-identical to eager steps. If the captured step alone, replayed back to
back with nothing else, already takes most of that, no change around it (batches, launches, syncs)
can reach the goal; only other arithmetic (other kernels, dtypes or batch sizes) could, and that
changes the weights. Random images of the data set's shape stand in for the data: kernel times do not
depend on pixel values.

For each model, on the paper's recipe (CIFAR shape, 45,000 training and 5,000 validation images):
``quide.measure.train.train`` for ``--epochs`` epochs (s/epoch of the last), then the same step captured by
``quide.measure.train._Stepper`` and replayed once per batch of an epoch, timed with CUDA events; one
epoch of ``DeviceData.batches`` (gather, augment, normalise) alone; one validation pass.

    python benchmarks/probes/trainer_breakdown.py [--epochs 3]      # on a GPU machine; about a minute
"""
import argparse
import time

import numpy as np
import torch

from quide.measure import data as qd
from quide.measure import models
from quide.measure import train as qt
from quide.measure.latency import describe_device

N_TRAIN, N_VAL, SHAPE = 45_000, 5_000, (32, 32, 3)


def random_splits(device, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N_TRAIN + N_VAL, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, 10, N_TRAIN + N_VAL)
    mean, std = qd.channel_stats(x[:N_TRAIN])
    make = lambda a, b: qd.DeviceData(a, b, mean, std, device)  # noqa: E731
    return qd.Splits(make(x[:N_TRAIN], y[:N_TRAIN]), make(x[N_TRAIN:], y[N_TRAIN:]), make(x[N_TRAIN:], y[N_TRAIN:]))


def gpu_seconds(fn, device):
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / 1e3


def breakdown(name, recipe, epochs, device):
    splits = random_splits(device)
    recipe = recipe.replace(epochs=epochs)
    res = qt.train(models.build_model(name, 10, SHAPE), splits, recipe, seed=0)
    epoch_s = res.wall_s / epochs

    model = models.build_model(name, 10, SHAPE).to(device)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    step = qt.recipe_stepper(model, recipe, device)
    x, y = next(iter(splits.train.batches(recipe.batch_size, shuffle=True, augment=recipe.augment)))
    if recipe.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()
    for _ in range(qt._Stepper.WARMUP_STEPS + 1):   # eager warm-up, then the capture
        step(x, y)
    graph = step.graphs[tuple(x.shape)][0]
    steps = N_TRAIN // recipe.batch_size
    graph_s = gpu_seconds(lambda: [graph.replay() for _ in range(steps)], device)

    def pipeline():
        for xb, _ in splits.train.batches(recipe.batch_size, shuffle=True, augment=recipe.augment):
            if recipe.channels_last:
                xb.contiguous(memory_format=torch.channels_last)
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    pipeline()
    torch.cuda.synchronize(device)
    pipeline_s = time.perf_counter() - start
    start = time.perf_counter()
    qt.evaluate(model, splits.val)
    val_s = time.perf_counter() - start
    return {"model": name, "epoch_s": epoch_s, "graph_s": graph_s, "pipeline_s": pipeline_s, "val_s": val_s,
            "steps": steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the trainer timed (s/epoch: their mean)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this breakdown replays CUDA graphs; no CUDA device here")
    device = torch.device("cuda")
    rows = [breakdown("simplecnn", qt.SIMPLECNN_AUGMENTED, args.epochs, device),
            breakdown("resnet18_cifar", qt.RESNET18_CIFAR, args.epochs, device)]
    print(f"device: {describe_device(device)[0]}; random images of CIFAR shape, {N_TRAIN} train / {N_VAL} val")
    print(f"{'model':15} {'trainer s/epoch':>15} {'step graph alone s':>18} {'batches alone s':>15} "
          f"{'validation s':>12} {'steps':>6}")
    for r in rows:
        print(f"{r['model']:15} {r['epoch_s']:15.3f} {r['graph_s']:18.3f} {r['pipeline_s']:15.3f} "
              f"{r['val_s']:12.3f} {r['steps']:6d}")
    for r in rows:
        print(f"{r['model']}: the captured step alone is {100 * r['graph_s'] / r['epoch_s']:.0f}% of the trainer's epoch "
              f"({1e3 * r['graph_s'] / r['steps']:.3f} ms per step, replayed back to back)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
