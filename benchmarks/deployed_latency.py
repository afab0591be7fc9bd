"""Deployed vs simulated latency of the paper's CNNs, and CUDA events vs host timers.

For SimpleCNN (MNIST, Fashion-MNIST, CIFAR-10 shapes) and ResNet-18 CIFAR, at 32/16/8/4/2 bits, in
one run on one device: T_protocol (the paper's protocol on the simulated, fake-quantized model,
host timers, batch 64) and T_deployed (``quide.deploy``: the fastest real kernel path, or None with
the reason). At 32 bits and for the 8-bit simulated model it also times the protocol with CUDA
events and prints the ratio to the host timers. Models are freshly built (seed 0) and calibrated on
random images: latency does not depend on weight values. Writes ``data/latency/deployed_<gpu>.json``
(``--out`` to change), which the book joins to the sweeps' P and C. From the repository root::

    python benchmarks/deployed_latency.py            # on a GPU machine
    python benchmarks/deployed_latency.py --timed 50 --warmup 5 --out /tmp/x.json   # a quick CPU try
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

from quide import deploy, models
from quide.latency import TIMED, WARMUP, describe_device, measure_latency
from quide.quant import PTQConfig, quantize
from quide.results import atomic_write_text, provenance

CONDITIONS = [  # (model, dataset, (H, W, C), classes)
    ("simplecnn", "mnist", (28, 28, 1), 10),
    ("simplecnn", "fashion_mnist", (28, 28, 1), 10),
    ("simplecnn", "cifar10", (32, 32, 3), 10),
    ("resnet18_cifar", "cifar10", (32, 32, 3), 10),
]
BITS = (32, 16, 8, 4, 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=WARMUP)
    ap.add_argument("--timed", type=int, default=TIMED)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu, driver = describe_device(device)
    start_all = time.perf_counter()
    rows = []
    print(f"{gpu} | warmup {args.warmup}, timed {args.timed}, batch 64")
    print(f"{'model':15} {'dataset':14} {'bits':>4} {'T_protocol':>10} {'T_deployed':>10}  path")
    for name, dataset, shape, classes in CONDITIONS:
        torch.manual_seed(0)
        model = models.build_model(name, classes, shape).to(device).eval()
        h, w, c = shape
        example = torch.randn(64, c, h, w, device=device)
        calib = torch.randn(512, c, h, w, device=device)
        for bits in BITS:
            sim = quantize(model, PTQConfig(bits=bits), None if bits >= 16 else calib)
            t_sim = measure_latency(sim, example, args.warmup, args.timed).median_ms
            row = {"model": name, "dataset": dataset, "image_shape": list(shape), "bits": bits,
                   "T_protocol_ms": t_sim, "T_protocol_kind": "simulated (fake-quant), host timers"}
            if device.type == "cuda" and bits in (32, 8):
                t_ev = measure_latency(sim, example, args.warmup, args.timed, timer="cuda_events").median_ms
                row.update(T_protocol_events_ms=t_ev, events_over_host=t_ev / t_sim)
            row.update(deploy.deployed_batch_latency(model, bits, example, args.warmup, args.timed))
            rows.append(row)
            dep = f"{row['T_deployed_ms']:10.3f}  {row['T_deployed_kind']}" if row["T_deployed_ms"] is not None \
                else f"{'-':>10}  {row['T_deployed_reason'][:60]}"
            ev = f"  (events/host {row['events_over_host']:.3f})" if "events_over_host" in row else ""
            print(f"{name:15} {dataset:14} {bits:>4} {t_sim:10.3f} {dep}{ev}", flush=True)
            del sim
    wall = time.perf_counter() - start_all
    ratios = [r["events_over_host"] for r in rows if "events_over_host" in r]
    if ratios:
        print(f"CUDA events / host timers: {min(ratios):.3f} to {max(ratios):.3f} (target within 5%)")
    print(f"wall {wall:.0f} s")
    slug = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")[:40]
    out = args.out or Path("data/latency") / f"deployed_{slug}.json"
    doc = {"device": gpu, "warmup": args.warmup, "timed": args.timed, "batch": 64, "rows": rows,
           "provenance": provenance(device=gpu, driver=driver, wall_s=wall)}
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
