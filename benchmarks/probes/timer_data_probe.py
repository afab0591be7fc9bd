"""Does a graph's T depend on the values it is fed, or on the capture? Figures, not a test.

Seen in the committed records (issue 13 reruns): SimpleCNN on MNIST and on the JPEG-q75 MNIST
control run the same graph (equal ``T_signature``), yet times 6-9% apart, in both runs; and one
fake-quant timing of 150 moved 2.3% between the runs while the other graphs of its block agreed.
This probe separates the candidates on one GPU, with a seeded untrained SimpleCNN (28x28x1):

- the batch's values: the first 64 MNIST test images, the same images JPEG q75 re-encoded, blank
  images (background only) and uniform noise, all normalised with MNIST's statistics;
- the capture: each (input, variant) captured as 3 separate CUDA graphs;
- the block and the process: everything timed in one interleaved block (``time_callables``),
  twice, and the script run once per process.

Prints T per input, variant and capture, the spread over captures and the ratio to MNIST.

    QUIDE_DATA=... python benchmarks/probes/timer_data_probe.py [--out FILE] [--rounds N --passes N]
"""
import argparse
import json

import numpy as np
import torch

from quide.measure import latency as ql
from quide.measure import quant as qq
from quide.measure.data import jpeg_reencode, load_dataset
from quide.measure.models import build_model

CAPTURES = 3        # separate graphs per (input, variant)
BLOCKS = 2          # interleaved blocks timed one after the other
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081   # the usual MNIST normalisation


def batches(device):
    mnist = load_dataset("mnist").x_test[:ql.BATCH]
    rng = np.random.default_rng(0)
    raw = {"mnist": mnist, "mnist_jpeg_q75": jpeg_reencode(mnist, 75),
           "blank": np.zeros_like(mnist), "noise": rng.integers(0, 256, mnist.shape, dtype=np.uint8)}
    return {k: ((torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255 - MNIST_MEAN) / MNIST_STD).to(device)
            for k, v in raw.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--rounds", type=int, default=ql.TimerConfig.rounds, help="rounds per block")
    ap.add_argument("--passes", type=int, default=ql.TimerConfig.passes, help="passes per round")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = build_model("simplecnn", 10, (28, 28, 1)).to(device).eval()
    inputs = batches(device)
    variants = {"fp32": model, "fake-quant 8-bit": qq.quantize(model, qq.PTQConfig(bits=8, calib_size=64),
                                                                inputs["mnist"])}
    fns, keys = {}, []
    for name, x in inputs.items():
        for variant, m in variants.items():
            for capture in range(CAPTURES):
                key = (name, variant, capture)
                fns[key] = (lambda m, x: lambda: m(x))(m, x)
                keys.append(key)
    # distinct signature per key: each is captured and timed on its own
    sigs = {k: "/".join(map(str, k)) for k in keys}
    blocks = [ql.time_callables(fns, device, ql.TimerConfig(rounds=args.rounds, passes=args.passes, seed=b), signatures=sigs) for b in range(BLOCKS)]
    print("device:", ql.describe_device(device)[0])
    rows = []
    for key in keys:
        rows.append({"input": key[0], "variant": key[1], "capture": key[2],
                     "T_ms": [blocks[b][key].median_ms for b in range(BLOCKS)],
                     "ci_ms": [list(blocks[b][key].ci_ms) for b in range(BLOCKS)], "method": blocks[0][key].method})
    print(f"{'input':15} {'variant':17} {'T ms per capture (block 1 | block 2)':60} {'capture spread %':>16} "
          f"{'vs mnist %':>10}")
    for variant in variants:
        base = np.median([r["T_ms"] for r in rows if r["input"] == "mnist" and r["variant"] == variant])
        for name in inputs:
            ts = np.array([r["T_ms"] for r in rows if r["input"] == name and r["variant"] == variant])  # capture x block
            spread = 100 * (ts.max(0) - ts.min(0)) / ts.min(0)
            cells = " | ".join(" ".join(f"{t:.5f}" for t in ts[:, b]) for b in range(BLOCKS))
            print(f"{name:15} {variant:17} {cells:60} {spread.max():16.2f} {100 * (np.median(ts) / base - 1):+10.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": ql.describe_device(device)[0], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
