"""What ResNet-18's training step would cost under other kernels or batch sizes: the owner's options
for the one-GPU whole reproduction (issue 17).

Why: in the one-H200 whole reproduction (run d) the GPU was busy (nvidia-smi utilization) for about
640 s of its 927 s, and ResNet-18's three trainings for about 375 s of that, so no scheduling meets
10 minutes under the paper's recipe as trained now; only a cheaper step can. Each option below
changes the arithmetic, so the weights, P and every ResNet-18 record would change with it.

For each option: ResNet-18 (CIFAR stem) on random images of CIFAR shape, the recipe's SGD step
(bf16 autocast, channels_last), captured by ``quide.measure.train._Stepper`` and replayed back to back for
one epoch of 45,000 images, timed with CUDA events (the median of ``--repeats`` epochs); the
seconds before the first capture (warm-up, compilation) are printed apart. Kernel times do not
depend on pixel values.

    python benchmarks/probes/resnet18_step_options.py [--repeats 3]     # on a GPU machine; about 3 minutes
"""
import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from quide.measure import models
from quide.measure import train as qt
from quide.measure.latency import describe_device
from trainer_breakdown import gpu_seconds   # run from the repository root: benchmarks/ is the script's folder

N_TRAIN, SHAPE = 45_000, (32, 32, 3)


@dataclass(frozen=True)
class Option:
    name: str
    batch_size: int = 128            # images per step (the recipe's: 128)
    cudnn_benchmark: bool = False    # True: cuDNN times its algorithms and may pick others per run
    compiled: bool = False           # torch.compile (inductor, default mode) inside the captured step


OPTIONS = (Option("recipe as trained (batch 128, deterministic cuDNN)"),
           Option("cudnn.benchmark", cudnn_benchmark=True),
           Option("torch.compile", compiled=True),
           Option("batch 256", batch_size=256),
           Option("batch 512", batch_size=512),
           Option("batch 512 + torch.compile", batch_size=512, compiled=True))


def epoch_seconds(option: Option, repeats: int, device) -> tuple[float, float]:
    """(median GPU seconds of one epoch of replayed steps, seconds until the step was captured)."""
    torch.backends.cudnn.deterministic = not option.cudnn_benchmark
    torch.backends.cudnn.benchmark = option.cudnn_benchmark
    recipe = qt.RESNET18_CIFAR
    model = models.build_model("resnet18_cifar", 10, SHAPE).to(device).to(memory_format=torch.channels_last)
    torch._dynamo.reset()   # each compiled option compiles afresh, for its own batch shape
    net = torch.compile(model) if option.compiled else model
    step = qt.recipe_stepper(model, recipe, device, net=net)
    x = torch.randn(option.batch_size, SHAPE[2], *SHAPE[:2], device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (option.batch_size,), device=device)
    net.train()
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(qt._Stepper.WARMUP_STEPS + 1):   # eager (or compiling) warm-up, then the capture
        step(x, y)
    torch.cuda.synchronize(device)
    setup_s = time.perf_counter() - start
    graph = step.graphs[tuple(x.shape)][0]
    steps = N_TRAIN // option.batch_size
    times = [gpu_seconds(lambda: [graph.replay() for _ in range(steps)], device) for _ in range(repeats)]
    return float(np.median(times)), setup_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="epochs of replayed steps per option (median)")
    ap.add_argument("--epochs", type=int, default=qt.RESNET18_CIFAR.epochs, help="epochs of a training (projection)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this benchmark replays CUDA graphs; no CUDA device here")
    device = torch.device("cuda")
    print(f"device: {describe_device(device)[0]}; torch {torch.__version__}; ResNet-18 CIFAR, {N_TRAIN} random "
          f"images per epoch, SGD step in bf16 autocast, channels_last, captured and replayed; median of "
          f"{args.repeats} epochs")
    print(f"{'option':52} {'ms/step':>8} {'s/epoch':>8} {'s per training':>14} {'x recipe':>8} {'setup s':>8}")
    base = None
    for option in OPTIONS:
        epoch_s, setup_s = epoch_seconds(option, args.repeats, device)
        base = base or epoch_s
        ms_step = 1e3 * epoch_s / (N_TRAIN // option.batch_size)
        print(f"{option.name:52} {ms_step:8.3f} {epoch_s:8.3f} {epoch_s * args.epochs:14.1f} "
              f"{base / epoch_s:8.2f} {setup_s:8.1f}", flush=True)
    print(f"s per training: s/epoch x {args.epochs} epochs, the step graphs alone (no batches, validation, launches)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
