"""Deployed vs simulated latency of the paper's CNNs, by the index's timer, with the paper's protocol beside.

For SimpleCNN (MNIST, Fashion-MNIST, CIFAR-10 shapes) and ResNet-18 CIFAR, at 32/16/8/4/2 bits, in
one run on one device: T_simulated (``quide.measure.latency.time_models`` on the fake-quantized models, all
bit-widths of one model in one interleaved block of CUDA-graph replays), T_deployed
(``quide.measure.deploy``: the fastest real kernel path by the same timer, or None with the reason) and
T_protocol (the paper's host-timer protocol on the simulated model). Models are freshly built
(seed 0) and calibrated on random images, timed on a random batch of 64 (T depends a little on the
batch's values: see the protocol page). Writes ``data/latency/deployed_<gpu>.json`` (``--out`` to
change), which the book joins to the sweeps' P and C. From the repository root::

    python benchmarks/deployed_latency.py            # on a GPU machine
    python benchmarks/deployed_latency.py --rounds 6 --passes 2 --timed 20 --warmup 2 --out /tmp/x.json   # CPU try
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

from quide.measure import deploy, models
from quide.measure.latency import TIMED, WARMUP, TimerConfig, describe_device, measure_latency, time_models
from quide.measure.quant import PTQConfig, quantize
from quide.analysis.results import atomic_write_text
from quide.measure.provenance import provenance

CONDITIONS = [  # (model, dataset, (H, W, C), classes)
    ("simplecnn", "mnist", (28, 28, 1), 10),
    ("simplecnn", "fashion_mnist", (28, 28, 1), 10),
    ("simplecnn", "cifar10", (32, 32, 3), 10),
    ("resnet18_cifar", "cifar10", (32, 32, 3), 10),
]
BITS = (32, 16, 8, 4, 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=WARMUP, help="the paper's protocol: warm-up passes")
    ap.add_argument("--timed", type=int, default=TIMED, help="the paper's protocol: timed passes")
    ap.add_argument("--rounds", type=int, default=TimerConfig.rounds, help="the index's timer: rounds")
    ap.add_argument("--passes", type=int, default=TimerConfig.passes, help="the index's timer: passes per round")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    timer = TimerConfig(rounds=args.rounds, passes=args.passes)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu, driver = describe_device(device)
    start_all = time.perf_counter()
    rows = []
    print(f"{gpu} | timer {timer} | paper's protocol: warmup {args.warmup}, timed {args.timed} | batch 64")
    print(f"{'model':15} {'dataset':14} {'bits':>4} {'T_sim ms':>9} {'T_dep ms':>9} {'T_protocol':>10}  path")
    for name, dataset, shape, classes in CONDITIONS:
        torch.manual_seed(0)
        model = models.build_model(name, classes, shape).to(device).eval()
        h, w, c = shape
        example = torch.randn(64, c, h, w, device=device)
        calib = torch.randn(512, c, h, w, device=device)
        sims = {bits: quantize(model, PTQConfig(bits=bits), None if bits >= 16 else calib) for bits in BITS}
        simulated = time_models(sims, example, timer)
        for bits in BITS:
            t_protocol = measure_latency(sims[bits], example, args.warmup, args.timed).median_ms
            row = {"model": name, "dataset": dataset, "image_shape": list(shape), "bits": bits,
                   "T_simulated_ms": simulated[bits].median_ms, "T_simulated_ci_ms": list(simulated[bits].ci_ms),
                   "T_simulated_method": simulated[bits].method, "T_protocol_ms": t_protocol,
                   "T_protocol_kind": "simulated (fake-quant), the paper's host-timer protocol"}
            row.update(deploy.deployed_batch_latency(model, bits, example, timer))
            rows.append(row)
            dep = f"{row['T_deployed_ms']:9.4f} {t_protocol:10.3f}  {row['T_deployed_kind']}" \
                if row["T_deployed_ms"] is not None else f"{'-':>9} {t_protocol:10.3f}  {row['T_deployed_reason'][:60]}"
            print(f"{name:15} {dataset:14} {bits:>4} {row['T_simulated_ms']:9.4f} {dep}", flush=True)
        del sims
    wall = time.perf_counter() - start_all
    print(f"wall {wall:.0f} s")
    slug = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")[:40]
    out = args.out or Path("data/latency") / f"deployed_{slug}.json"
    doc = {"device": gpu, "timer": vars(timer) if hasattr(timer, "__dict__") else str(timer),
           "warmup": args.warmup, "timed": args.timed, "batch": 64, "rows": rows,
           "provenance": provenance(device=gpu, driver=driver, wall_s=wall)}
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
