"""The benchmarks the book shows, each result read from its results file in ``benchmarks/results``.

:data:`BENCHMARKS` says, per benchmark, which script made which file and which line of it holds the
result; :func:`table` reads them, so that no number of the page "Performance" is typed by hand.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import project_root

RESULTS = "benchmarks/results"


@dataclass(frozen=True)
class Benchmark:
    script: str     # under benchmarks/, or the command that wrote the file
    measures: str   # what it measures, in words
    file: str       # its results file, under benchmarks/results/
    pattern: str    # a regular expression (searched line by line) whose named groups fill ``result``
    result: str     # the result, a format string over the pattern's named groups
    gpu: str = ""   # where the file does not name its GPU


BENCHMARKS = (
    Benchmark("quide reproduce", "Every GPU experiment from scratch on one GPU, training included",
              "reproduce_h200.txt", r"^whole reproduction: (?P<s>\d+) s on", "{s} s wall time"),
    Benchmark("run_phases.py", "Where that time went: the seconds the GPU was busy (nvidia-smi)",
              "reproduce_h200_phases.txt", r"^GPU busy, all calls: (?P<busy>\d+) \+- (?P<se>\d+) s",
              "GPU busy {busy} ± {se} s", gpu="NVIDIA H200 (its run)"),
    Benchmark("timing_budget.py", "The seconds the latency timings held the GPU alone, which no schedule shortens",
              "timing_budget_run_l.txt",
              r"^all timings: (?P<replay>\d+) s graph replay \+ (?P<host>\d+) s host protocol = (?P<all>\d+) s",
              "{all} s ({replay} s graph replay, {host} s host protocol)", gpu="NVIDIA H200 (its records)"),
    Benchmark("train_vs_dataloader.py", "quide's trainer against a conventional DataLoader loop, SimpleCNN, 50 epochs",
              "train_vs_dataloader_simplecnn_50ep_h200.txt",
              r"^quide trainer\s*:\s*(?P<q>[\d.]+) s/epoch(?s:.*)^conventional loop\s*:\s*(?P<c>[\d.]+) s/epoch"
              r"(?s:.*)^speed-up of quide's trainer: (?P<x>[\d.]+x)",
              "{q} s against {c} s per epoch ({x} faster)"),
    Benchmark("train_speed.py", "ResNet-18 training, CUDA-graph steps against eager PyTorch, same weights",
              "train_speed_resnet18_h100.txt",
              r"^graphs vs eager: speed-up (?P<x>[\d.]+x); max \|weight difference\| (?P<w>\S+);",
              "{x} faster, largest weight difference {w}"),
    Benchmark("resnet18_peak_share.py", "Share of the GPU's dense bf16 peak that one ResNet-18 training step reaches",
              "resnet18_peak_share_h200.txt",
              r"^1 model\s+[\d.]+\s+(?P<ips>\d+)\s+(?P<tf>[\d.]+)\s+(?P<share>[\d.]+%)",
              "{share} of peak ({tf} TFLOP/s, {ips} images/s)"),
    Benchmark("step_kernels.py", "GPU time of SimpleCNN's captured training step",
              "step_kernels_h200.txt",
              r"^captured step, 50 replays profiled: GPU busy (?P<busy>[\d.]+ us) per step, span (?P<span>[\d.]+ us)",
              "{busy} busy of {span} per step"),
    Benchmark("deployed_latency.py", "Simulated (fake-quant) against deployed latency, ResNet-18, 16 bits, batch 64",
              "deployed_latency_resnet18_h200.txt",
              r"^resnet18_cifar\s+cifar10\s+16\s+(?P<sim>[\d.]+)\s+(?P<dep>[\d.]+)",
              "simulated {sim} ms, deployed {dep} ms"),
    Benchmark("ga_memo.py", "EXP-3's genetic search with and without its memo of measured configurations",
              "ga_memo_mnist_5gen_h200.txt",
              r"^memo\s*:\s*(?P<m>\d+) measurements,\s*(?P<ms>[\d.]+) s wall(?s:.*)"
              r"^no memo\s*:\s*(?P<n>\d+) measurements,\s*(?P<ns>[\d.]+) s wall",
              "{m} measurements in {ms} s with the memo, {n} in {ns} s without"),
)


def result(benchmark: Benchmark, root: Path | str | None = None) -> str:
    """The benchmark's result, read from its file; ``ValueError`` naming the file where the line is missing."""
    path = Path(root or project_root()) / RESULTS / benchmark.file
    match = re.search(benchmark.pattern, path.read_text(), re.M)
    if match is None:
        raise ValueError(f"{path}: no line matching {benchmark.pattern!r}; expected the output of {benchmark.script}")
    return benchmark.result.format(**match.groupdict())


def gpu(benchmark: Benchmark, root: Path | str | None = None) -> str:
    """The GPU the file names (e.g. "NVIDIA H200"), else the benchmark's own ``gpu``."""
    found = re.search(r"NVIDIA [A-Z]\d+", (Path(root or project_root()) / RESULTS / benchmark.file).read_text())
    return found.group(0) if found else benchmark.gpu or "not stated"


def table(benchmarks=BENCHMARKS, root: Path | str | None = None) -> pd.DataFrame:
    """One row per benchmark: script, what it measures, its result and GPU (both read from its file), the file."""
    return pd.DataFrame([{"script": b.script, "measures": b.measures, "result": result(b, root), "GPU": gpu(b, root),
                          "results file": b.file} for b in benchmarks])


def plot_wall_times(times: pd.DataFrame, limit_s: float = 600):
    """:func:`quide.analysis.runs.wall_times` as horizontal bars, fastest at the top: four-GPU and
    one-GPU runs in two colours, the run whose T was measured under MPS hatched, ``limit_s`` marked."""
    import matplotlib.pyplot as plt
    times = times.sort_values("wall time (s)")
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(times) + 1.3))
    colours = {hw: c for hw, c in zip(sorted(times["GPUs"].unique(), reverse=True), ("tab:blue", "tab:green", "tab:grey"))}
    for y, (_, r) in enumerate(times.iterrows()):
        ax.barh(y, r["wall time (s)"], color=colours[r["GPUs"]], hatch="//" if "MPS" in r["timing"] else None,
                edgecolor="white", label=r["GPUs"])
        parts = "" if r["calls"] in (1, "unknown") else f" (in {r['calls']} parts)"
        ax.text(r["wall time (s)"] + 8, y, f"{r['wall time (s)']:.0f} s{parts}", va="center", fontsize=8)
    ax.axvline(limit_s, color="0.4", ls="--", lw=1, label=f"{limit_s / 60:g} minutes")
    ax.set_yticks(range(len(times)), times["run"])
    ax.invert_yaxis()
    ax.set_xlim(0, times["wall time (s)"].max() * 1.22)
    ax.set_xlabel("wall time of the whole reproduction (s)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig
