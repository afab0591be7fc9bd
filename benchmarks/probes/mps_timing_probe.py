"""Does MPS move T? The same graphs timed by quide's timer with and without NVIDIA's Multi-Process
Service on one card, arms alternating (issue 17: run f's higher T).

Run f (``data/reruns/one_gpu_mps``) timed its graphs as MPS clients and its graph-replay T came out
above every other run's in nearly every configuration (median +2.7% to +7.4% per run and
experiment); runs d and e, without MPS, agreed with each other. MPS was the one condition that set
run f apart, but those runs were on different machines. This probe times the same models in one
call on one card: each arm is a fresh process running ``timer_probe.py`` (SimpleCNN at MNIST and
CIFAR shapes and ResNet-18, 32/16/8/4/2 bits, seeded weights, so every arm times the same graphs;
two blocks of quide's timer and two passes of the paper's host protocol), with the MPS daemon
started for the arms marked ``on`` and quit before the next (``quide.mps.mps``). A
process joins MPS when it creates its CUDA context, so each arm is its own process.

The table gives each variant's T per arm (mean of the arm's two blocks), on against off as the
median of the ``on`` arms over the median of the ``off`` arms (%), and the spread between arms of
one kind (max - min over their median, %), the noise the difference is read against. ::

    python benchmarks/probes/mps_timing_probe.py --out /tmp/mps-timing > benchmarks/results/mps_timing_probe_h200.txt
    python benchmarks/probes/mps_timing_probe.py --from benchmarks/results/mps_timing_probe_h200   # the table again
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from quide.mps import mps

ARMS = ("off", "on", "off", "on")   # alternating, so that a drift of the card over the call shows as spread


def arm_files(folder: Path) -> list[tuple[str, Path]]:
    """(arm, JSON file) in the order the arms ran: ``arm<i>_<off|on>.json``."""
    files = sorted(folder.glob("arm*_*.json"), key=lambda p: int(p.stem[3:].split("_")[0]))
    if not files:
        raise SystemExit(f"no arm<i>_<off|on>.json in {folder}")
    arms = [(p.stem.split("_")[1], p) for p in files]
    if {a for a, _ in arms} != {"off", "on"}:
        raise SystemExit(f"{folder} needs arms both off and on; has {[a for a, _ in arms]}")
    return arms


def spread_pct(values: list[float]) -> float:
    return 100 * (max(values) - min(values)) / statistics.median(values)


def table(folder: Path) -> str:
    arms = arm_files(folder)
    runs = [(arm, json.loads(path.read_text())) for arm, path in arms]
    devices = {run["device"] for _, run in runs}
    lines = [f"device: {', '.join(sorted(devices))}; arms in the order run: {' '.join(a for a, _ in runs)}",
             "T per arm: mean of its two blocks (graph replay) or two passes (host protocol), ms;"
             " on vs off: median of the on arms / median of the off arms - 1;"
             " spread: (max - min) / median over the arms of one kind"]
    summary = {"graph": [], "host": []}
    for timer, first, second in (("graph", "T_ms", "T_ms_block2"), ("host", "T_host_ms", "T_host_ms_2")):
        lines.append("")
        lines.append(f"{timer} {'timer (quide)' if timer == 'graph' else 'protocol (paper)'}")
        lines.append(f"{'model':15} {'shape':8} {'bits':>4} " + " ".join(f"{a + str(i):>8}" for i, (a, _) in enumerate(runs))
                     + f" {'on vs off %':>11} {'off spread %':>12} {'on spread %':>11}")
        for index, row in enumerate(runs[0][1]["rows"]):
            per_arm = []
            for _, run in runs:
                r = run["rows"][index]
                if (r["model"], r["shape"], r["bits"]) != (row["model"], row["shape"], row["bits"]):
                    raise SystemExit(f"{folder}: the arms timed different variants")
                per_arm.append((r[first] + r[second]) / 2)
            off = [t for (a, _), t in zip(runs, per_arm) if a == "off"]
            on = [t for (a, _), t in zip(runs, per_arm) if a == "on"]
            diff = 100 * (statistics.median(on) / statistics.median(off) - 1)
            summary[timer].append((diff, spread_pct(off), spread_pct(on)))
            lines.append(f"{row['model']:15} {row['shape']:8} {row['bits']:>4} " + " ".join(f"{t:8.4f}" for t in per_arm)
                         + f" {diff:+11.2f} {spread_pct(off):12.2f} {spread_pct(on):11.2f}")
    lines.append("")
    for timer, rows in summary.items():
        diffs = [d for d, _, _ in rows]
        noise = max(max(o, n) for _, o, n in rows)
        lines.append(f"{timer}: on vs off median {statistics.median(diffs):+.2f}% (range {min(diffs):+.2f} to "
                     f"{max(diffs):+.2f}) over {len(rows)} variants; widest spread between arms of one kind {noise:.2f}%")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="run the arms on this machine's GPU, their JSON here")
    where.add_argument("--from", dest="source", type=Path, help="print the table from arms run before")
    args = ap.parse_args(argv)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = Path(__file__).resolve().parent / "timer_probe.py"
        for i, arm in enumerate(ARMS):
            with mps(arm == "on"):
                subprocess.run([sys.executable, str(probe), "--out", str(args.out / f"arm{i}_{arm}.json")],
                               check=True, stdout=subprocess.DEVNULL)
    print(table(args.out or args.source))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
