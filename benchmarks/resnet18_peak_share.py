"""ResNet-18 (CIFAR stem) training on one GPU: achieved TFLOP/s and share of the GPU's dense bf16 peak,
for the recipe's step alone and for the trainings a GPU runs together.

The arithmetic per image is counted, not assumed: ``torch.utils.flop_counter`` over one forward and
backward of a batch of 128 (the optimizer's elementwise work is not counted). The step is the
trainer's own (``quide.measure.train.recipe_stepper``: SGD, bf16 autocast, channels_last, deterministic cuDNN,
captured as a CUDA graph). Options:

- ``1 model``: one training's step graph replayed back to back (what the trainer does per epoch);
- ``3 models, 3 streams``: the paper's three seeds, each its own step graph (its own weights and
  batch of 128), replayed side by side on three CUDA streams, as three trainings of one GPU run;
- ``5 models, 5 streams``: five seeds side by side (what a seeds grid of five ResNet-18 trainings runs);
- ``compiled``: the same with ``torch.compile`` inside the captured step (fuses BatchNorm + ReLU).

Each option also trains its models for ``--check-steps`` steps twice from the same seed on the same
batches and prints the sha256 of the weights of both runs: the same seed must end in the same weights.

    python benchmarks/resnet18_peak_share.py [--steps 200] [--repeats 3]   # on a CUDA machine
"""
import argparse
import hashlib
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from quide.measure import models
from quide.measure import train as qt
from quide.measure.latency import describe_device

SHAPE, BATCH = (32, 32, 3), 128
SEEDS = (0, 42, 123, 7, 99)   # the paper's three, then two more (a seeds grid trains five ResNet-18s)
# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from NVIDIA's data sheets (SXM parts).
DENSE_BF16_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4}


@dataclass(frozen=True)
class Option:
    name: str
    n_models: int
    compiled: bool = False


OPTIONS = (Option("1 model", 1), Option("3 models, 3 streams", 3), Option("5 models, 5 streams", 5),
           Option("1 model, compiled", 1, compiled=True), Option("3 models, 3 streams, compiled", 3, compiled=True),
           Option("5 models, 5 streams, compiled", 5, compiled=True))


def peak_tflops(device_name: str) -> float | None:
    return next((v for k, v in DENSE_BF16_PEAK_TFLOPS.items() if k in device_name), None)


def flop_per_image(device) -> float:
    """Forward + backward FLOP of one image, counted on a batch of BATCH in the recipe's dtype."""
    model = models.build_model("resnet18_cifar", 10, SHAPE).to(device).to(memory_format=torch.channels_last)
    x = torch.randn(BATCH, SHAPE[2], *SHAPE[:2], device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
    return counter.get_total_flops() / BATCH


def build_steps(option: Option, device):
    """One (model, stepper) per training; each warmed up and captured on fixed batches."""
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    out = []
    for seed in SEEDS[:option.n_models]:
        torch.manual_seed(seed)
        model = models.build_model("resnet18_cifar", 10, SHAPE).to(device).to(memory_format=torch.channels_last)
        net = torch.compile(model) if option.compiled else model
        net.train()
        out.append((model, qt.recipe_stepper(model, qt.RESNET18_CIFAR, device, net=net)))
    return out


def batches(n: int, seed: int, device):
    gen = torch.Generator(device=device).manual_seed(seed)
    return [(torch.randn(BATCH, SHAPE[2], *SHAPE[:2], device=device, generator=gen)
             .contiguous(memory_format=torch.channels_last),
             torch.randint(0, 10, (BATCH,), device=device, generator=gen)) for _ in range(n)]


def weights_sha256(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def train_hashes(option: Option, steps: int, device) -> list[str]:
    """Weights' sha256 per model after ``steps`` steps on fixed batches (eager warm-up, capture, replays)."""
    torch._dynamo.reset()
    trained = build_steps(option, device)
    data = batches(steps, 1, device)
    for x, y in data:
        for _, step in trained:
            step(x, y)
    torch.cuda.synchronize(device)
    return [weights_sha256(m) for m, _ in trained]


def replay_seconds(option: Option, steps: int, repeats: int, device) -> tuple[float, float]:
    """(median seconds for ``steps`` steps of every model side by side, seconds to warm up and capture)."""
    torch._dynamo.reset()
    start = time.perf_counter()
    trained = build_steps(option, device)
    x, y = batches(1, 0, device)[0]
    for _ in range(qt._Stepper.WARMUP_STEPS + 1):
        for _, step in trained:
            step(x, y)
    torch.cuda.synchronize(device)
    setup_s = time.perf_counter() - start
    graphs = [step.graphs[tuple(x.shape)][0] for _, step in trained]
    streams = [torch.cuda.Stream(device) for _ in graphs]
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize(device)
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for s in streams:
            s.wait_stream(torch.cuda.current_stream())
        for _ in range(steps):
            for g, s in zip(graphs, streams):
                with torch.cuda.stream(s):
                    g.replay()
        for s in streams:
            torch.cuda.current_stream().wait_stream(s)
        end.record()
        torch.cuda.synchronize(device)
        times.append(begin.elapsed_time(end) / 1e3)
    return float(np.median(times)), setup_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="replayed steps per model per timing")
    ap.add_argument("--repeats", type=int, default=3, help="timings per option (median)")
    ap.add_argument("--check-steps", type=int, default=12, help="steps of the same-weights check")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this benchmark replays CUDA graphs; no CUDA device here")
    device = torch.device("cuda")
    name = describe_device(device)[0]
    peak = peak_tflops(name)
    flop = flop_per_image(device)
    print(f"device: {name}; torch {torch.__version__}; dense bf16 peak {peak} TFLOP/s; "
          f"ResNet-18 CIFAR step, batch {BATCH} per model: {flop / 1e9:.3f} GFLOP per image (forward + backward)")
    print(f"{'option':34} {'ms/round':>9} {'images/s':>10} {'TFLOP/s':>8} {'of peak':>8} {'setup s':>8}  same weights twice")
    for option in OPTIONS:
        seconds, setup_s = replay_seconds(option, args.steps, args.repeats, device)
        images_s = option.n_models * BATCH * args.steps / seconds
        tflops = images_s * flop / 1e12
        share = f"{100 * tflops / peak:7.1f}%" if peak else "     n/a"
        first, second = train_hashes(option, args.check_steps, device), train_hashes(option, args.check_steps, device)
        same = "yes" if first == second else "NO"
        print(f"{option.name:34} {1e3 * seconds / args.steps:9.3f} {images_s:10.0f} {tflops:8.1f} {share} "
              f"{setup_s:8.1f}  {same} ({', '.join(h[:12] for h in first)} / {', '.join(h[:12] for h in second)})",
              flush=True)
    print("ms/round: one step of every model of the option; TFLOP/s: images/s x counted FLOP per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
