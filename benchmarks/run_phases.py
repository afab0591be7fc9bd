"""Where a grid's wall time went: each run's phases, from papermill's cell times in the executed notebooks.

A notebook's cells are sorted into phases by what they call: the imports, ``load_condition`` (data),
``model_for`` (training, or loading a checkpoint), ``run_sweeps`` / ``mp.run`` (quantize, evaluate,
time: the sweep or the searches) and the rest (parameters, tables, figures). "Kernel start" is
papermill's start to the first cell. Training and sweep/search are the phases that put work on the
GPU (they have CPU parts too); the last lines say, for each stretch of time in which runs ran
back to back (a device call), how much of it had at least one run, and two runs, in such a phase.
From the repository root::

    python benchmarks/run_phases.py data/reruns/one_gpu/notebooks
    python benchmarks/run_phases.py /tmp/whole/runs      # a quide reproduce --out folder's runs
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import numpy as np

# phase -> substrings of a code cell's source that put the cell in it (first match wins)
PHASES = {"imports": ("from quide import",), "data": ("load_condition(",),
          "training (or checkpoint)": ("model_for(",), "sweep / search": ("run_sweeps(", "mp.run(")}
OTHER, KERNEL = "parameters, tables, figures", "kernel start"
GPU_PHASES = ("training (or checkpoint)", "sweep / search")
GAP_S = 20.0   # no run active for longer than this: the next stretch (another device call)


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def phases_of(notebook: Path) -> list[tuple[str, float, float]]:
    """[(phase, start, end)] of one executed notebook; times in s since the epoch."""
    nb = json.loads(notebook.read_text())
    pm = nb["metadata"]["papermill"]
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and c["metadata"].get("papermill", {}).get("start_time")]
    if not cells:
        raise ValueError(f"{notebook}: no executed code cell with papermill's times")
    out = [(KERNEL, _t(pm["start_time"]), _t(cells[0]["metadata"]["papermill"]["start_time"]))]
    for cell in cells:
        src, times = "".join(cell["source"]), cell["metadata"]["papermill"]
        phase = next((p for p, signs in PHASES.items() if any(s in src for s in signs)), OTHER)
        out.append((phase, _t(times["start_time"]), _t(times["end_time"])))
    return out


def covered_s(intervals: list[tuple[float, float]], lo: float, hi: float, depth: int) -> float:
    """Seconds of [lo, hi] during which at least ``depth`` of the intervals are open."""
    edges = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals])
    total, open_, last = 0.0, 0, lo
    for t, step in edges:
        t = min(max(t, lo), hi)
        if open_ >= depth:
            total += t - last
        open_, last = open_ + step, t
    return total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="executed notebooks: <folder>/*.ipynb or <folder>/*/notebook.ipynb")
    args = ap.parse_args(argv)
    notebooks = sorted(args.folder.glob("*.ipynb")) or sorted(args.folder.glob("*/notebook.ipynb"))
    if not notebooks:
        ap.error(f"no executed notebooks under {args.folder}")
    runs = [phases_of(nb) for nb in notebooks]
    print(f"# {len(runs)} runs, papermill's cell times, from {args.folder}")
    print(f"{'phase':30} {'sum s':>8} {'median s':>9} {'max s':>7}")
    for phase in (KERNEL, *PHASES, OTHER):
        per_run = [sum(b - a for p, a, b in cells if p == phase) for cells in runs]
        print(f"{phase:30} {sum(per_run):8.1f} {np.median(per_run):9.1f} {max(per_run):7.1f}")
    spans = sorted((cells[0][1], cells[-1][2]) for cells in runs)
    stretches = [list(spans[0])]
    for a, b in spans[1:]:
        if a - stretches[-1][1] > GAP_S:
            stretches.append([a, b])
        else:
            stretches[-1][1] = max(stretches[-1][1], b)
    gpu = [(a, b) for cells in runs for p, a, b in cells if p in GPU_PHASES]
    for i, (lo, hi) in enumerate(stretches, 1):
        wall = hi - lo
        one, two = covered_s(gpu, lo, hi, 1), covered_s(gpu, lo, hi, 2)
        print(f"stretch {i}: {wall:.0f} s from the first run's start to the last run's end; at least one run in a GPU "
              f"phase {one:.0f} s ({100 * one / wall:.0f}%), two or more {two:.0f} s ({100 * two / wall:.0f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
