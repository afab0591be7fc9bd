"""How well `quide reproduce` packed a grid onto its GPUs: each run's seconds, their sum, and the wall.

Reads a reproduce output folder (``--out`` of ``quide reproduce``). Each run's seconds are papermill's
own ``duration`` in the run's executed ``runs/<key>/notebook.ipynb``, including time spent waiting
for the host's timing lock. The wall is the runner's. Prints one line per run, longest first, then the
sum, the sum per GPU, the longest run, and the wall's ratio to the larger of those two (the bound no
scheduler can beat). From the repository root::

    python benchmarks/grid_wall.py /tmp/run --gpus 4 --wall-s 480 --gpu "NVIDIA H200"
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def run_seconds(out: Path) -> list[tuple[float, str]]:
    """(seconds, "experiment(parameters)") of every finished run under ``out/runs``."""
    rows = []
    for folder in sorted((out / "runs").iterdir()):
        meta = json.loads((folder / "run.yml").read_text())
        pm = json.loads((folder / "notebook.ipynb").read_text())["metadata"]["papermill"]
        params = ", ".join(f"{k}={v}" for k, v in meta["parameters"].items())
        rows.append((float(pm["duration"]), f"{meta['experiment']}({params})"))
    return sorted(rows, reverse=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the --out folder of quide reproduce")
    ap.add_argument("--gpus", type=int, required=True, help="GPUs (workers) the grid ran on")
    ap.add_argument("--wall-s", type=float, required=True, help="the runner's wall time, s")
    ap.add_argument("--gpu", required=True, help="the GPU's name, for the report")
    args = ap.parse_args(argv)
    if args.gpus < 1 or args.wall_s <= 0:
        ap.error("--gpus must be >= 1 and --wall-s > 0")
    rows = run_seconds(args.out)
    if not rows:
        ap.error(f"no finished runs under {args.out / 'runs'}")
    for seconds, name in rows:
        print(f"{seconds:8.1f} s  {name}")
    total = sum(s for s, _ in rows)
    bound = max(total / args.gpus, rows[0][0])
    print(f"{len(rows)} runs; sum {total:.0f} s; sum / {args.gpus} GPUs {total / args.gpus:.0f} s; longest {rows[0][0]:.0f} s")
    print(f"wall {args.wall_s:.0f} s on {args.gpus} x {args.gpu}: {args.wall_s / bound:.2f}x the bound "
          f"max(sum / GPUs, longest) = {bound:.0f} s")


if __name__ == "__main__":
    main()
