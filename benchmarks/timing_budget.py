"""The seconds a grid's timings hold the GPU to themselves, from its records: a lower bound that no
schedule of the other work can shorten (issue 17: the one-GPU whole reproduction).

Why: every timing runs with no other GPU work beside it (``quide.hostlock.timing_turn``), so its
seconds add to the wall time however the trainings and accuracy passes overlap. Each record says
how its T was timed, and this adds up the passes timed, per experiment and model:

- graph replay (the index's T): per timing (one graph signature in one block), T_ms x
  T_passes_per_round x T_rounds x T_captures x T_attempts;
- the paper's host protocol (T_host): per configuration or per graph (``T_host_scope``),
  T_host_ms x (latency_passes + latency_warmup), each pass bracketed by a synchronize.

Both count the timed passes only: not the captures, the warm-up replays, the copies or the Python
around them, so the time the timings really held the card is longer. From the repository root::

    python benchmarks/timing_budget.py data/reruns/one_gpu2      # a results or rerun folder
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def timed_seconds(df: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and model: timings, graph-replay seconds and host-protocol seconds timed."""
    # a block is known by its start times (T_block_starts_utc, one per attempt); one timing is one
    # graph signature in one block, shared by the configurations that run the same graph
    df = df.assign(block=df["T_block_starts_utc"].astype(str))
    keys = ["experiment", "model", "block"]
    graphs = df.drop_duplicates(keys + ["T_signature"])
    replay_ms = (graphs["T_ms"] * graphs["T_passes_per_round"] * graphs["T_rounds"] * graphs["T_captures"]
                 * graphs["T_attempts"].fillna(1))
    per_graph = df["T_host_scope"] == "graph"
    host = pd.concat([df[~per_graph], df[per_graph].drop_duplicates(keys + ["T_signature"])])
    host_ms = host["T_host_ms"] * (host["latency_passes"] + host["latency_warmup"])
    out = pd.DataFrame({
        "timings": graphs.groupby(["experiment", "model"]).size(),
        "graph replay s": replay_ms.groupby([graphs["experiment"], graphs["model"]]).sum() / 1e3,
        "host protocol s": host_ms.groupby([host["experiment"], host["model"]]).sum() / 1e3,
    })
    out["both s"] = out["graph replay s"] + out["host protocol s"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a results folder: <folder>/<experiment>/*.json")
    args = ap.parse_args(argv)
    from quide.analysis.results import load_records
    frames = [load_records(args.folder, exp) for exp in ("ptq_sweep", "mixed_precision")
              if (args.folder / exp).is_dir()]
    if not frames:
        ap.error(f"{args.folder}: no ptq_sweep or mixed_precision records")
    table = timed_seconds(pd.concat(frames, ignore_index=True))
    print(f"# {args.folder}: the passes timed, with the GPU to themselves (a lower bound of the time they held it)")
    print(table.round(1).to_string())
    total = table.sum()
    print(f"all timings: {total['graph replay s']:.0f} s graph replay + {total['host protocol s']:.0f} s host protocol "
          f"= {total['both s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
