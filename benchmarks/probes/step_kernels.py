"""What one captured SimpleCNN training step spends its GPU time on, and what the first epoch pays once.

Why: issue 17 asks for the SimpleCNN trainer at 8x the conventional loop with weights bit-identical
to eager steps. ``trainer_breakdown.py`` showed the captured step, replayed back to back, is most of
an epoch. This script looks inside it: each kernel of the step (from ``torch.profiler``, over
``--steps`` replays of the captured graph), the GPU's busy time against the step's span (the rest is
the gaps between kernels), the step replayed alone with PyTorch's max-pool backward (what
``quide.measure.models.max_pool_2x2`` replaced: same bits) and under other arithmetic (channels-last, bf16,
cuDNN's benchmark mode): those change the trained weights, so they are printed for the owner's
choice, not used. Then the trainer itself, twice in this process for ``--epochs`` epochs: the first
run's first epoch pays the process's one-off CUDA library start-up (cuDNN and cuBLAS handles, lazy
kernel loading), the second's only what the trainer itself pays once (warm-up steps, capture); a
third run with PyTorch's max-pool backward.
Random images of CIFAR shape stand in for the data: kernel times do not depend on pixel values.

    python benchmarks/probes/step_kernels.py [--steps 50] [--epochs 3]     # on a GPU machine; about a minute
"""
import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from quide.measure import models
from quide.measure import train as qt
from quide.measure.latency import describe_device
from trainer_breakdown import N_TRAIN, SHAPE, gpu_seconds, random_splits

RECIPE = qt.SIMPLECNN_AUGMENTED   # the CIFAR recipe: the one train_vs_dataloader.py compares


QUIDE_POOLING = models.max_pool_2x2


def pytorch_pooling(on: bool):
    """SimpleCNN with F.max_pool2d's own backward (on) or quide's (off)."""
    models.max_pool_2x2 = (lambda x: F.max_pool2d(x, 2)) if on else QUIDE_POOLING


def captured_step(recipe, device, benchmark_mode=False):
    """A SimpleCNN, its optimizer and its training step captured as a CUDA graph, as quide.measure.train does."""
    qt.seed_everything(0, deterministic=not benchmark_mode)
    model = models.build_model("simplecnn", 10, SHAPE).to(device).train()
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    step = qt.recipe_stepper(model, recipe, device)
    x = torch.randn(recipe.batch_size, SHAPE[2], *SHAPE[:2], device=device)
    if recipe.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (recipe.batch_size,), device=device)
    for _ in range(qt._Stepper.WARMUP_STEPS + 1):   # eager warm-up, then the capture
        step(x, y)
    return step.graphs[tuple(x.shape)][0]


def kernel_table(graph, steps):
    """Per kernel (and memcpy/memset) of the step: calls per step and GPU microseconds per step;
    plus the busy time and the span (first kernel start to last kernel end) per step."""
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            graph.replay()
        torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e]
    if not gpu:
        return [], 0.0, 0.0
    per_name = collections.defaultdict(lambda: [0, 0.0])
    for e in gpu:
        per_name[e["name"]][0] += 1
        per_name[e["name"]][1] += e["dur"]
    rows = sorted(((n, c / steps, d / steps) for n, (c, d) in per_name.items()), key=lambda r: -r[2])
    busy = sum(e["dur"] for e in gpu) / steps
    span = (max(e["ts"] + e["dur"] for e in gpu) - min(e["ts"] for e in gpu)) / steps
    return rows, busy, span


def step_ms(graph, device, steps):
    graph.replay()
    return 1e3 * gpu_seconds(lambda: [graph.replay() for _ in range(steps)], device) / steps


def epoch_seconds(splits, recipe, device):
    """quide.measure.train.train's seconds per epoch (the first: its wall less the later ones)."""
    stamps = []
    res = qt.train(models.build_model("simplecnn", 10, SHAPE), splits, recipe, seed=0,
                   log=lambda _: stamps.append(time.perf_counter()))
    later = [b - a for a, b in zip(stamps, stamps[1:])]
    return [res.wall_s - sum(later)] + later


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="graph replays profiled")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each of the two trainer runs")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this script replays CUDA graphs; no CUDA device here")
    device = torch.device("cuda")
    steps_per_epoch = -(-N_TRAIN // RECIPE.batch_size)
    print(f"device: {describe_device(device)[0]}, torch {torch.__version__}; SimpleCNN, CIFAR-shaped random "
          f"images, batch {RECIPE.batch_size}, {steps_per_epoch} steps per epoch")

    splits = random_splits(device)
    runs = [epoch_seconds(splits, RECIPE.replace(epochs=args.epochs), device) for _ in range(2)]
    pytorch_pooling(True)
    runs.append(epoch_seconds(splits, RECIPE.replace(epochs=args.epochs), device))
    pytorch_pooling(False)
    for label, epochs in zip(("first run in this process", "second run, same process",
                              "third run, PyTorch's max-pool backward"), runs):
        print(f"trainer, {label}: epochs " + ", ".join(f"{s:.3f}" for s in epochs) + " s")
    print(f"process one-off start-up paid by the first run's first epoch: {runs[0][0] - runs[1][0]:.3f} s; "
          f"the trainer's own first-epoch extra (second run): {runs[1][0] - min(runs[1][1:] or runs[1]):.3f} s")

    graph = captured_step(RECIPE, device)
    rows, busy, span = kernel_table(graph, args.steps)
    print(f"\ncaptured step, {args.steps} replays profiled: GPU busy {busy:.1f} us per step, span {span:.1f} us "
          f"per step ({100 * busy / span if span else 0:.0f}% busy)")
    print(f"{'us/step':>8} {'calls':>6}  kernel")
    for name, calls, us in rows:
        print(f"{us:8.1f} {calls:6.2f}  {name[:110]}")

    print(f"\nthe step replayed {steps_per_epoch} times back to back, ms per step (median of 3 epochs' worth):")
    variants = [("as trained (fp32, NCHW, deterministic cuDNN)", RECIPE, False, False),
                ("PyTorch's max-pool backward (same bits)", RECIPE, False, True),
                ("channels-last", RECIPE.replace(channels_last=True), False, False),
                ("bf16 autocast", RECIPE.replace(bf16=True), False, False),
                ("bf16 + channels-last", RECIPE.replace(bf16=True, channels_last=True), False, False),
                ("cuDNN benchmark mode (not deterministic)", RECIPE, True, False)]
    for label, recipe, bench, pytorch_pool in variants:
        pytorch_pooling(pytorch_pool)
        g = captured_step(recipe, device, benchmark_mode=bench)
        pytorch_pooling(False)
        ms = sorted(step_ms(g, device, steps_per_epoch) for _ in range(3))[1]
        print(f"  {ms:6.3f} ms = {ms * steps_per_epoch / 1e3:.3f} s/epoch  {label}")
    qt.seed_everything(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
