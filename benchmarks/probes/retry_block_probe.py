"""Is a block timed again on the same captured graphs faster than the first block, by itself?

Why: in runs c and e (`data/reruns/`) every block the timer timed again (first block wider than
``TimerConfig.max_ci_pct``) settled 3-8% faster than the other runs, whose blocks were kept at once,
had the same graphs; run c's and run e's retried MNIST EXP-3 blocks settled within 1% of each other.
If the blocks after the first are faster whatever disturbed the first one, the retry rule itself
moves T. This probe forces the retries: the timer with ``attempts=4`` and a CI bar no block can
meet, so each call times four blocks on the same captures, and prints each block's median against
the first block's, per graph.

Blocks of two sizes, on an untrained SimpleCNN (random calibration images; kernel times do not
depend on the values): EXP-3's (FP32 plus the 16 graph signatures of its 256 per-layer
configurations: each layer 16-bit or fake-quantized) and the sweep's (32, 16, 8 bits). Each block
twice, each time with fresh captures, for the MNIST and the CIFAR shape.

    python benchmarks/probes/retry_block_probe.py [--out FILE.json]     # on a GPU machine; about 2 minutes
"""
import argparse
import itertools
import json

import numpy as np
import torch

from quide.measure import latency as ql
from quide.measure import quant as qq
from quide.measure.models import build_model
from quide.measure.quant import quantizable_layers

FORCED = ql.TimerConfig(max_ci_pct=1e-9, attempts=4)   # no block is narrow enough: four blocks each
SHAPES = {"MNIST": (28, 28, 1), "CIFAR": (32, 32, 3)}


def blocks(shape, size, device):
    """{bits label: Timing} of one call of the timer on ``size``'s graphs (fresh captures)."""
    torch.manual_seed(0)
    model = build_model("simplecnn", 10, shape).to(device).eval()
    h, w, c = shape
    calib = torch.randn(256, c, h, w, device=device)
    if size == "EXP-3":
        configs = [32, *itertools.product((16, 8), repeat=len(quantizable_layers(model)))]
    else:
        configs = [32, 16, 8]
    models = {("-".join(map(str, b)) if isinstance(b, tuple) else str(b)):
              qq.quantize(model, qq.PTQConfig(bits=b, calib_size=256), calib) for b in configs}
    example = torch.randn(ql.BATCH, c, h, w, device=device)
    return ql.time_models(models, example, FORCED)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write every graph's block medians as JSON here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("the timer retries blocks on CUDA only")
    device = torch.device("cuda")
    print(f"device: {ql.describe_device(device)[0]}; four blocks per call on the same captures "
          f"({FORCED.rounds} rounds x {FORCED.passes} passes x {FORCED.captures} captures per graph)")
    print(f"{'shape':6} {'block':6} {'call':>4} {'graphs':>6}  each later block's median against the first, % "
          "(median over graphs [lowest, highest])")
    rows = []
    for (shape_name, shape), size, call in itertools.product(SHAPES.items(), ("EXP-3", "sweep"), (1, 2)):
        timings = blocks(shape, size, device)
        per_graph = {label: t.attempt_medians_ms for label, t in timings.items()}
        moved = np.array([[100 * (m / ms[0] - 1) for m in ms[1:]] for ms in per_graph.values()])
        print(f"{shape_name:6} {size:6} {call:4d} {len(per_graph):6d}  "
              + "  ".join(f"block {k + 2}: {np.median(moved[:, k]):+.2f} [{moved[:, k].min():+.2f}, {moved[:, k].max():+.2f}]"
                          for k in range(moved.shape[1])), flush=True)
        rows.append({"shape": shape_name, "block": size, "call": call, "medians_ms": per_graph})
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": ql.describe_device(device)[0], "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
