"""Does a GPU's speed drift while it is timed? Many timing blocks of one model, back to back and after
idle gaps, beside the SM clock and power that ``nvidia-smi`` sampled meanwhile.

Why: in the reruns of issue 13 every block that the timer timed again (its first block wider than
``TimerConfig.max_ci_pct``) settled 2-5% faster than the other run's card had the same graphs,
while in the sweeps the blocks kept at once agreed across machines within 1.2%. This probe times one untrained
SimpleCNN (MNIST shape; FP32, 16-bit and fake-quant graphs, as ``benchmarks/probes/timer_probe.py`` builds
them) in single blocks (``attempts=1``) in four phases and prints each block's medians, its widest
CI and the mean SM clock and power over the block, so a drift shows whether it follows the clock.

    python benchmarks/probes/timer_state_probe.py [--out FILE.json]     # on a GPU machine; about 2 minutes
"""
import argparse
import csv
import json
import os
import subprocess
import tempfile
import time
from datetime import datetime

import torch

from quide.measure import latency as ql
from timer_probe import variants   # run from the repository root: benchmarks/ is the script's folder

# (phase, idle seconds before each block, blocks)
PHASES = (("back to back", 0.0, 15), ("after 3 s idle", 3.0, 8), ("sustained", 0.0, 40), ("after 10 s idle", 10.0, 4))
SAMPLE_MS = 100   # nvidia-smi sampling period


def smi_samples(path):
    """(unix time, SM clock MHz, power W) per line that nvidia-smi wrote."""
    out = []
    with open(path) as f:
        for row in csv.reader(f):
            try:
                stamp = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
                out.append((stamp, float(row[1]), float(row[2])))
            except (ValueError, IndexError):
                continue
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write every block as JSON here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this probe reads a GPU's clock; no CUDA device here")
    device = torch.device("cuda")
    models, example = variants("simplecnn", 10, (28, 28, 1), device)
    config = ql.TimerConfig(attempts=1)
    log = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    smi = subprocess.Popen(["nvidia-smi", f"--id={torch.cuda.current_device()}",
                            "--query-gpu=timestamp,clocks.sm,power.draw", "--format=csv,noheader,nounits",
                            f"-lms={SAMPLE_MS}"], stdout=log)
    blocks = []
    try:
        ql.time_models(models, example, config)   # capture and warm once, untimed here
        for phase, idle_s, n in PHASES:
            for _ in range(n):
                time.sleep(idle_s)
                start = time.time()
                timings = ql.time_models(models, example, config)
                blocks.append({"phase": phase, "start": start, "end": time.time(),
                               "T_ms": {b: timings[b].median_ms for b in (32, 16, 8)},
                               "ci_pct": max(100 * (t.ci_ms[1] - t.ci_ms[0]) / t.median_ms for t in timings.values())})
    finally:
        smi.terminate()
        smi.wait()
        log.close()
    samples = smi_samples(log.name)
    os.unlink(log.name)
    first = blocks[0]["T_ms"]
    print(f"device: {ql.describe_device(device)[0]}; {len(blocks)} blocks, {len(samples)} nvidia-smi samples")
    print(f"{'phase':16} {'block':>5} {'t s':>6} {'T32 ms':>8} {'T16 ms':>8} {'Tfq ms':>8} "
          f"{'vs block 1 %':>22} {'CI %':>5} {'SM MHz':>7} {'W':>6}")
    t0 = blocks[0]["start"]
    for i, b in enumerate(blocks, 1):
        inside = [s for s in samples if b["start"] <= s[0] <= b["end"]]
        b["sm_mhz"] = sum(s[1] for s in inside) / len(inside) if inside else None
        b["power_w"] = sum(s[2] for s in inside) / len(inside) if inside else None
        rel = " ".join(f"{100 * (b['T_ms'][k] / first[k] - 1):+6.2f}" for k in (32, 16, 8))
        print(f"{b['phase']:16} {i:5d} {b['start'] - t0:6.1f} {b['T_ms'][32]:8.5f} {b['T_ms'][16]:8.5f} "
              f"{b['T_ms'][8]:8.5f} {rel:>22} {b['ci_pct']:5.2f} "
              f"{b['sm_mhz'] if b['sm_mhz'] is None else round(b['sm_mhz']):>7} "
              f"{b['power_w'] if b['power_w'] is None else round(b['power_w'], 1):>6}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": ql.describe_device(device)[0], "blocks": blocks, "smi_samples": samples}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
