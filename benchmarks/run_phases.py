"""Where a grid's wall time went: each run's phases, from papermill's cell times in the executed notebooks.

A notebook's cells are sorted into phases by what they call: the imports, ``load_condition`` (data),
``model_for`` (training, or loading a checkpoint), ``run_sweeps`` / ``mp.run`` (quantize, evaluate,
time: the sweep or the searches) and the rest (parameters, tables, figures). "Kernel start" is
papermill's start to the first cell. Training and sweep/search are the phases that put work on the
GPU (they have CPU parts too); the last lines say, for each stretch of time in which runs ran
back to back (a device call), how much of it had at least one run, and two runs, in such a phase.

With ``--smi``, the ``nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv`` samples taken
during the calls give the seconds the GPU was busy: utilization (the share of the last sample period,
at most 1 s, in which a kernel ran) times the interval to the next sample, summed, with a standard
error from the samples' spread. Without MPS the GPU runs one process's kernels at a time, so a
schedule can fill the gaps between kernels but not overlap them: the same kernels need at least
their busy seconds of wall time, less only what sharing the card added to them. Under MPS (run f,
and run g's training phase) kernels of several processes run at once, so busy means only that some
kernel ran, and the busy seconds are no longer a lower bound of the wall time. Notebooks that load
a checkpoint trained before them (``--train-first``) have no training in their phases; only the
samples cover it. The busy seconds are also
summed over the samples during which a run of each group (experiment, model and phase) was active;
groups overlap, so those lines do not add up. Timestamps are read as UTC, as papermill writes them.
From the repository root::

    python benchmarks/run_phases.py data/reruns/one_gpu/notebooks --smi data/reruns/one_gpu/logs/smi-call*.csv
    python benchmarks/run_phases.py /tmp/whole/runs      # a quide reproduce --out folder's runs
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from quide.analysis.results import read_json_bytes

# phase -> substrings of a code cell's source that put the cell in it (first match wins)
PHASES = {"imports": ("from quide import",), "data": ("load_condition(",),
          "training (or checkpoint)": ("model_for(",), "sweep / search": ("run_sweeps(", "mp.run(")}
OTHER, KERNEL = "parameters, tables, figures", "kernel start"
GPU_PHASES = ("training (or checkpoint)", "sweep / search")
GAP_S = 20.0   # no run active for longer than this: the next stretch (another device call)


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def group_of(nb: dict) -> str:
    """The run's experiment and model, from papermill's record of the input and its parameters."""
    pm = nb["metadata"]["papermill"]
    return f"{Path(pm['input_path']).stem} {pm['parameters'].get('model', '?')}"


def smi_samples(path: Path) -> list[tuple[float, float]]:
    """[(time in s since the epoch, utilization as a fraction)] of one nvidia-smi CSV."""
    rows = list(csv.reader(path.open()))[1:]
    return [(datetime.strptime(r[0].strip(), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp(),
             float(r[1].strip().rstrip("%").strip()) / 100) for r in rows if len(r) >= 2]


def busy_s(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(seconds sampled, seconds busy, standard error of the busy seconds) of one call's samples."""
    t = np.array([s[0] for s in samples])
    u = np.array([s[1] for s in samples[:-1]])
    dt = np.diff(t)
    span = float(dt.sum())
    return span, float((u * dt).sum()), float(span * u.std(ddof=1) / np.sqrt(len(u)))


def phases_of(nb: dict, notebook: Path) -> list[tuple[str, float, float]]:
    """[(phase, start, end)] of one executed notebook (``nb``, read from ``notebook``); times in s
    since the epoch."""
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


def notebooks_in(folder: Path) -> list[Path]:
    """The executed notebooks of ``folder``: its *.ipynb and *.ipynb.gz (the reruns under data/reruns
    keep theirs gzipped, gzip -9n), else its */notebook.ipynb (a ``quide reproduce --out`` folder's
    runs). A run kept both plain and gzipped (``gunzip -k``) counts once, read from the plain file,
    when both hold the same notebook; ValueError naming both when they differ."""
    plain = sorted(folder.glob("*.ipynb"))
    packed = []
    for path in sorted(folder.glob("*.ipynb.gz")):
        twin = path.with_suffix("")   # x.ipynb.gz -> x.ipynb
        if twin not in plain:
            packed.append(path)
        elif json.loads(read_json_bytes(path)) != json.loads(read_json_bytes(twin)):
            raise ValueError(f"{twin} and {path.name} beside it are different notebooks of one run; "
                             "keep the run's own and move the other away")
        else:
            print(f"run_phases.py: {path.name} holds the same notebook as {twin.name}; counted once, "
                  f"from {twin.name}", file=sys.stderr)
    return plain + packed or sorted(folder.glob("*/notebook.ipynb"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path,
                    help="executed notebooks: <folder>/*.ipynb(.gz) or <folder>/*/notebook.ipynb")
    ap.add_argument("--smi", type=Path, nargs="+", default=[], metavar="CSV",
                    help="nvidia-smi samples (timestamp, utilization.gpu) taken during the runs, one file per call")
    args = ap.parse_args(argv)
    try:
        notebooks = notebooks_in(args.folder)
    except (OSError, ValueError) as err:   # twins that differ, or one that cannot be read
        print(f"run_phases.py: {err}", file=sys.stderr)
        return 1
    if not notebooks:
        ap.error(f"no executed notebooks under {args.folder}")
    runs, groups = [], []
    for path in notebooks:
        try:
            nb = json.loads(read_json_bytes(path))
            runs.append(phases_of(nb, path))
            groups.append(group_of(nb))
        except (OSError, ValueError, KeyError, TypeError) as err:   # unreadable, damaged, not papermill's
            print(f"run_phases.py: {path}: not an executed notebook that can be read ({type(err).__name__}: {err})",
                  file=sys.stderr)
            return 1
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
    if args.smi:
        print_busy(args.smi, runs, groups)
    return 0


def print_busy(files: list[Path], runs: list, groups: list[str]) -> None:
    calls = [smi_samples(f) for f in files]
    total, variance = 0.0, 0.0
    for f, samples in zip(files, calls):
        span, busy, se = busy_s(samples)
        total, variance = total + busy, variance + se ** 2
        print(f"{f.name}: GPU busy {busy:.0f} +- {se:.0f} s of {span:.0f} s sampled ({len(samples)} samples)")
    print(f"GPU busy, all calls: {total:.0f} +- {np.sqrt(variance):.0f} s (nvidia-smi utilization x interval; +- one standard error)")
    by_group: dict[str, float] = {}
    for samples in calls:
        for (t, u), (t_next, _) in zip(samples, samples[1:]):
            active = {f"{g}, {p}" for cells, g in zip(runs, groups) for p, a, b in cells
                      if p in GPU_PHASES and a <= t < b}
            for key in active:
                by_group[key] = by_group.get(key, 0.0) + u * (t_next - t)
    for key, busy in sorted(by_group.items(), key=lambda kv: -kv[1]):
        print(f"  GPU busy while a run of {key} was active: {busy:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
