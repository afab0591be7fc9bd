"""How far the latency T moves from machine to machine, estimated from the committed reruns.

A record's 95% interval of T (``T_ci_ms``) covers the noise within its timing block. Reruns from
scratch on other machines of the same GPU model show that T moves further: a block's graphs shift
together by up to a few percent, and each graph a little on its own. This module measures both from
the kept runs (``data/reruns/RUNS.toml``, :mod:`quide.analysis.runs`) and gives
:mod:`quide.analysis.stability` the spread to draw from.

Model, per machine: log T of one timing = log T_true + b + e + the within-block noise, with
``b ~ N(0, sigma_block)`` shared by every timing of one block (one model's graphs timed together:
the records that share ``BLOCK_KEYS``) and ``e ~ N(0, sigma_timing)`` per timing (one graph,
``T_signature``), independent between blocks and between machines.

Estimate, per experiment and GPU model, from every pair of its runs whose T was measured as the
committed results' T (:func:`comparable`: the run timed under MPS is left out): per timing the
log-ratio d = log(T_b / T_a). A block's shift is the median d of its timings; a difference of two
runs has twice the variance of one run's deviation, so ``sigma_block = s(block shifts) / sqrt(2)``,
the shifts taken about 0 (each pair in both orders). Two timings i, j of one block have
d_i - d_j = (e_ib - e_ia) - (e_jb - e_ja) plus their intervals' noise, in which the block's shift
cancels: ``sigma_timing = sqrt(max(s(d_i - d_j)^2 - median(their intervals' variances), 0) / 4)``,
the part of the spread that the four records' own intervals do not already cover; with ``s``
the normal-consistent median absolute deviation (``scipy.stats.median_abs_deviation``,
``scale="normal"``): a robust spread, so that one disturbed block does not set it. Both are
fractions of T (log scale). A GPU model with fewer than two comparable runs has no estimate of its
own and borrows the largest one measured (:meth:`MachineSpread.sigmas` says so).
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import results
from . import runs as qruns
from ..config import project_root

# What identifies one timing block across runs: one model's graphs timed together (per placement in
# the sweeps, per search pass in EXP-3). A timing is one graph (``T_signature``) of one block.
BLOCK_KEYS = ("experiment", "model", "dataset", "seed", "placement", "search", "search_seed")
EXPERIMENTS = {"ptq_sweep": "EXP-1/2 sweeps", "mixed_precision": "EXP-3 exhaustive"}
Z95 = 1.959963984540054   # half-width of a 95% normal interval, in sd


def comparable(run: qruns.Run) -> bool:
    """Whether ``run``'s T (the index's timer) was measured as the committed results' T: its
    ``timing`` says so, or names only the paper's host-timed T as measured otherwise."""
    return run.timing == "as the committed results" or run.timing.startswith("T_host ")


def timing_codes(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per record, the code of its timing block and of its timing (0, 1, ...): records of one
    block (``BLOCK_KEYS``) with one ``T_signature`` share a timing; a record without a signature
    is a timing of its own."""
    keys = [k for k in BLOCK_KEYS if k in df]
    block = (df[keys].astype(str).groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
             if keys else np.zeros(len(df), int))
    signature = df["T_signature"] if "T_signature" in df else pd.Series([None] * len(df), index=df.index)
    has = signature.notna().to_numpy()
    timing = np.arange(len(df))
    if has.any():
        shared = pd.DataFrame({"block": block[has], "signature": signature[has].astype(str).to_numpy()})
        timing[has] = shared.groupby(["block", "signature"], sort=False, dropna=False).ngroup().to_numpy()
        timing[~has] = timing[has].max() + 1 + np.arange((~has).sum())
    return block, pd.factorize(timing)[0]


def _ci_bounds(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ci = df["T_ci_ms"] if "T_ci_ms" in df else pd.Series([None] * len(df), index=df.index)
    lo = np.array([float(c[0]) if isinstance(c, (list, tuple, np.ndarray)) and len(c) == 2 else np.nan for c in ci])
    hi = np.array([float(c[1]) if isinstance(c, (list, tuple, np.ndarray)) and len(c) == 2 else np.nan for c in ci])
    return lo, hi


def timings(records: pd.DataFrame) -> pd.DataFrame:
    """One row per timing of ``records``: its block keys, ``T_signature``, ``T_ms``, ``gpu`` (the
    device the records name) and ``ci_var``, the variance of log T that its 95% interval states
    (((hi - lo) / (2 z95 T))^2; 0 without an interval)."""
    if records.empty:
        return pd.DataFrame(columns=[*BLOCK_KEYS, "T_signature", "T_ms", "gpu", "ci_var"])
    df = records[records["T_signature"].notna()] if "T_signature" in records else records.iloc[:0]
    lo, hi = _ci_bounds(df)
    out = pd.DataFrame({k: (df[k] if k in df else None) for k in BLOCK_KEYS}, index=df.index)
    out["T_signature"] = df["T_signature"]
    out["T_ms"] = df["T_ms"].astype(float)
    out["gpu"] = df["prov_device"] if "prov_device" in df else None
    out["ci_var"] = np.nan_to_num(((hi - lo) / (2 * Z95 * out["T_ms"].to_numpy())) ** 2)
    keys = [*BLOCK_KEYS, "T_signature"]
    out[keys] = out[keys].astype(str).fillna("")   # a key a record lacks (EXP-3's search seed) matches as ""
    return out.drop_duplicates(keys).reset_index(drop=True)


TIMING_FIELDS = (*BLOCK_KEYS, "profile", "T_signature", "T_ms", "T_ci_ms")


def _timing_fields(folder: Path, experiment: str) -> pd.DataFrame:
    """The fields :func:`timings` reads from every record under ``folder/experiment``. Read
    without :func:`quide.analysis.results.load_records`' schema check of every record: several
    pages estimate the spread from all kept runs, and ``quide verify`` checks the records."""
    import json
    rows = []
    for path in results.record_files(folder / experiment):
        for rec in json.loads(results.read_json_bytes(path)):
            row = {k: rec.get(k) for k in TIMING_FIELDS}
            row["prov_device"] = (rec.get("provenance") or {}).get("device")
            rows.append(row)
    return pd.DataFrame(rows, columns=[*TIMING_FIELDS, "prov_device"])


def run_timings(folder: str, root: Path | str | None = None) -> pd.DataFrame:
    """:func:`timings` of one run's folder: its PTQ sweeps (profile paper) and EXP-3's exhaustive
    pass, the configurations the reruns are compared on."""
    base = Path(root or project_root()) / folder
    sweep = _timing_fields(base, "ptq_sweep")
    exp3 = _timing_fields(base, "mixed_precision")
    return pd.concat([timings(sweep[sweep["profile"] == "paper"]), timings(exp3[exp3["search"] == "exhaustive"])],
                     ignore_index=True)


def _robust_sd(x) -> float:
    from scipy.stats import median_abs_deviation   # on use: SciPy's import breaks under the API page's mocked torch
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    return float(median_abs_deviation(x, scale="normal")) if len(x) else np.nan


def pair_ratios(log_t: pd.DataFrame, blocks: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For every pair of runs (columns of ``log_t``, one row per timing, NaN where a run lacks it):
    per timing d = log(T_b / T_a) (columns "a | b"), and per block (``blocks``: each row's block)
    the median d, the block's shift."""
    names = list(log_t.columns)
    pairs = list(itertools.combinations(range(len(names)), 2))
    values = log_t.to_numpy(float)
    d = pd.DataFrame(np.stack([values[:, j] - values[:, i] for i, j in pairs], axis=1), index=log_t.index,
                     columns=[f"{names[i]} | {names[j]}" for i, j in pairs])
    return d, d.groupby(blocks.to_numpy(), sort=False).median()


def within_block_pairs(values: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values[i], values[j]) for every two timings i < j of one block (rows of ``values``,
    ``blocks`` each row's block): a block's shift cancels in their difference exactly."""
    first, second = [], []
    for block in pd.unique(blocks):
        rows = values[blocks == block]
        i, j = np.triu_indices(len(rows), k=1)
        first.append(rows[i])
        second.append(rows[j])
    if not first:
        return np.empty((0, *values.shape[1:])), np.empty((0, *values.shape[1:]))
    return np.concatenate(first), np.concatenate(second)


def estimate(run_timings_by_name: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (experiment, GPU model) with at least two runs: ``runs``, ``pairs``, the
    timings and blocks compared, ``sigma_block`` and ``sigma_timing`` (fractions of T, log scale;
    see the module docstring). ``run_timings_by_name``: run name -> :func:`timings`."""
    columns = ["experiment", "gpu", "runs", "pairs", "timings", "blocks", "sigma_block", "sigma_timing"]
    pieces = [t.assign(run=name) for name, t in run_timings_by_name.items() if not t.empty]
    if not pieces:
        return pd.DataFrame(columns=columns)
    every = pd.concat(pieces, ignore_index=True)
    keys = [*BLOCK_KEYS, "T_signature"]
    rows = []
    for (experiment, gpu), g in every.groupby(["experiment", "gpu"], sort=True):
        if g["run"].nunique() < 2:
            continue
        wide = g.pivot(index=keys, columns="run", values=["T_ms", "ci_var"])
        log_t, ci_var = np.log(wide["T_ms"]), wide["ci_var"]
        blocks = wide.index.droplevel("T_signature").map(str).to_numpy()
        d, shifts = pair_ratios(log_t, pd.Series(blocks, index=wide.index))
        names = list(log_t.columns)
        pair_var = np.stack([ci_var[b].to_numpy() + ci_var[a].to_numpy()
                             for a, b in itertools.combinations(names, 2)], axis=1)
        # timings i, j of one block in runs a, b: d_i - d_j = (e_ib - e_ia) - (e_jb - e_ja) + the four
        # intervals' noise, free of the block's shift; its variance is 4 sigma_timing^2 + their variances
        d_i, d_j = within_block_pairs(d.to_numpy(), blocks)
        var_i, var_j = within_block_pairs(pair_var, blocks)
        between = (d_i - d_j).ravel()
        excess = (_robust_sd(np.concatenate([between, -between])) ** 2 - float(np.nanmedian(var_i + var_j))
                  if len(between) else 0.0)
        shift = shifts.to_numpy().ravel()
        rows.append({"experiment": experiment, "gpu": gpu, "runs": len(names), "pairs": d.shape[1],
                     "timings": len(d), "blocks": len(shifts),
                     "sigma_block": _robust_sd(np.concatenate([shift, -shift])) / np.sqrt(2),
                     "sigma_timing": float(np.sqrt(max(excess, 0.0) / 4))})
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True, eq=False)
class MachineSpread:
    """The machine-to-machine spread of log T per experiment and GPU model (:func:`estimate`'s
    table), and how :mod:`quide.analysis.stability` looks it up."""
    table: pd.DataFrame

    def sigmas(self, experiment, gpu) -> tuple[float, float, str]:
        """(sigma_block, sigma_timing, where from) for records of ``experiment`` made on ``gpu``:
        that GPU model's estimate; without one, the largest of the experiment's other estimates
        (a GPU not named, or one without two comparable runs); (0, 0, "none") where the
        experiment has no estimate at all."""
        t = self.table[self.table["experiment"] == experiment]
        mine = t[t["gpu"] == gpu]
        if len(mine):
            r = mine.iloc[0]
            return float(r["sigma_block"]), float(r["sigma_timing"]), f"{r['gpu']} reruns"
        if t.empty:
            return 0.0, 0.0, "none"
        return (float(t["sigma_block"].max()), float(t["sigma_timing"].max()),
                f"the largest of {', '.join(t['gpu'])} reruns")

    @classmethod
    def none(cls) -> "MachineSpread":
        """No machine-to-machine spread: T moves within its own interval only."""
        return cls(estimate({}))


def from_runs(runs: list[qruns.Run], root: Path | str | None = None) -> MachineSpread:
    """:func:`estimate` over the comparable runs of a manifest (``runs``)."""
    return MachineSpread(estimate({r.name: run_timings(r.folder, root) for r in runs if comparable(r)}))


@functools.cache
def _committed(root: str) -> MachineSpread:
    return from_runs(qruns.load_manifest(qruns.manifest_path(root)), root)


def committed(root: Path | str | None = None) -> MachineSpread:
    """The spread estimated from the committed runs (``data/results`` and ``data/reruns``), read
    once per process."""
    return _committed(str(Path(root or project_root()).resolve()))


def experiment_label(experiment: str) -> str:
    return EXPERIMENTS.get(experiment, experiment)


def summary(spread: MachineSpread) -> str:
    """The spread in words: "on NVIDIA H200 (9 runs), a timing block moves by 0.44% and each
    graph by 0.29% more (EXP-1/2 sweeps); ..." (sd of log T, in percent)."""
    t = spread.table
    if t.empty:
        return "no GPU model has two comparable runs: T moves within its own interval only"
    parts = []
    for gpu, g in t.groupby("gpu", sort=True):
        each = "; ".join(f"{experiment_label(r['experiment'])}: a timing block by {100 * r['sigma_block']:.2f}% "
                         f"and each graph by {100 * r['sigma_timing']:.2f}% more" for _, r in g.iterrows())
        parts.append(f"on {gpu} ({int(g['runs'].max())} runs), {each}")
    return "; ".join(parts)
