"""How steady is each timer? The new T (CUDA-graph replays, interleaved rounds) against the paper's
host protocol, on untrained but seeded models, each timed in two separate blocks.

For SimpleCNN (MNIST and CIFAR shapes) and ResNet-18 (CIFAR stem) at 32/16/8/4/2 bits (fake-quant
calibrated on random images), batch 64: T_ms and its 95% CI width from ``quide.measure.latency.time_models``,
twice; the paper's protocol (``measure_latency``, 100 + 1,000 passes) twice. Prints per variant
both figures, the CI width in % of T, and how far block 2 is from block 1 (%). Figures, not a test.

    python benchmarks/probes/timer_probe.py [--out FILE]      # on a GPU machine (CPU works, slowly)
"""
import argparse
import json
import time

import torch

from quide.measure import latency as ql
from quide.measure import quant as qq
from quide.measure.models import build_model


def variants(model_name, classes, shape, device):
    torch.manual_seed(0)
    model = build_model(model_name, classes, shape).to(device).eval()
    h, w, c = shape
    calib = torch.randn(256, c, h, w, device=device)
    return {b: qq.quantize(model, qq.PTQConfig(bits=b, calib_size=256), calib) for b in (32, 16, 8, 4, 2)}, \
        torch.randn(ql.BATCH, c, h, w, device=device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print("device:", ql.describe_device(device)[0])
    rows = []
    for name, classes, shape in (("simplecnn", 10, (28, 28, 1)), ("simplecnn", 10, (32, 32, 3)),
                                 ("resnet18_cifar", 10, (32, 32, 3))):
        models, example = variants(name, classes, shape, device)
        start = time.perf_counter()
        blocks = [ql.time_models(models, example) for _ in range(2)]
        new_s = time.perf_counter() - start
        start = time.perf_counter()
        host = [{b: ql.measure_latency(m, example).median_ms for b, m in models.items()} for _ in range(2)]
        host_s = time.perf_counter() - start
        for b in models:
            t1, t2 = blocks[0][b], blocks[1][b]
            rows.append({"model": name, "shape": "x".join(map(str, shape)), "bits": b, "method": t1.method,
                         "reason": t1.reason, "T_ms": t1.median_ms, "T_ms_block2": t2.median_ms,
                         "ci_width_pct": 100 * (t1.ci_ms[1] - t1.ci_ms[0]) / t1.median_ms,
                         "block_diff_pct": 100 * abs(t2.median_ms - t1.median_ms) / t1.median_ms,
                         "shared_by": t1.shared_by, "T_host_ms": host[0][b], "T_host_ms_2": host[1][b],
                         "host_diff_pct": 100 * abs(host[1][b] - host[0][b]) / host[0][b],
                         "timer_s_two_blocks": new_s, "host_s_two_passes": host_s})
    print(f"{'model':15} {'shape':8} {'bits':>4} {'method':10} {'T ms':>8} {'CI %':>6} {'rerun %':>7} "
          f"{'shared':>6} {'host ms':>8} {'host rerun %':>12}")
    for r in rows:
        print(f"{r['model']:15} {r['shape']:8} {r['bits']:>4} {r['method']:10} {r['T_ms']:8.4f} "
              f"{r['ci_width_pct']:6.2f} {r['block_diff_pct']:7.2f} {r['shared_by']:>6} "
              f"{r['T_host_ms']:8.4f} {r['host_diff_pct']:12.2f}")
    for name in dict.fromkeys(r["model"] + " " + r["shape"] for r in rows):
        r = next(x for x in rows if x["model"] + " " + x["shape"] == name)
        print(f"{name}: new timer {r['timer_s_two_blocks']:.1f} s for two blocks, "
              f"paper protocol {r['host_s_two_passes']:.1f} s for two passes")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": ql.describe_device(device)[0], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
