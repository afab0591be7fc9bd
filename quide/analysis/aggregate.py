"""From result records to the paper's tables.

- :func:`sweep_table`: one run's records as a table with the rank of each bit-width per metric.
- :func:`table1`: the paper's Table 1: mean and std over seeds per condition and bit-width, the
  Pareto Knee (argmax of mean I') marked.
- :func:`rankings`: the paper's Table 4: rank of each bit-width under I, I', ACP and ALS, computed
  on the seed means.

Accuracy stays a fraction here; formatting to percent is the caller's (see :func:`mean_std`).

Records are pooled over seeds only where they were made with the same run parameters apart from
the seed (``run_params``: delta, timed, observer, epochs, bits, the data's hash...): a condition
whose records differ in any other parameter is refused (ValueError naming the condition, the
parameters and their files), never averaged; :func:`with_params` selects one parameter set.
Records of older schema (without ``run_params``) count as one parameter set.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .index import rank, ranking
from .results import bits_label, canonical_json, differing_params, run_variant

METRICS = {"I": "I", "I_gated": "I'", "ACP": "ACP", "ALS": "ALS"}
CONDITION = ["model", "dataset", "data_source", "placement", "T_kind"]


def _records_frame(records) -> pd.DataFrame:
    df = records.copy() if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if df.empty:
        raise ValueError("no records")
    if "bits_label" not in df:
        df["bits_label"] = df["bits"].map(bits_label)
    for key in CONDITION:
        if key not in df:
            df[key] = None
    return df


def _bit_order(labels) -> list:
    """Uniform bit-widths from high to low (32, 16, 8, 4, 2), mixed labels after them."""
    def key(label):
        return (0, -int(label)) if str(label).isdigit() else (1, str(label))
    return sorted(set(labels), key=key)


def sweep_table(records) -> pd.DataFrame:
    """One run: bits, C (both), P, T, I, I', ACP, ALS and the rank (1 = best) under each metric."""
    df = _records_frame(records)
    cols = ["bits_label", "C_paper", "C_true", "P", "T_ms", "I", "I_gated", "ACP", "ALS"]
    out = df[cols].rename(columns={"bits_label": "bits"}).reset_index(drop=True)
    for metric in METRICS:
        out[f"rank_{metric}"] = rank(out[metric])
    return out


def _condition_groups(df):
    """(condition keys present in ``df``, [(key values tuple, rows), ...]); records (rows with
    ``run_params``) of one condition made with different run parameters are refused."""
    keys = [k for k in CONDITION if k in df and df[k].notna().any()]
    if not keys:
        groups = [((), df)]
    else:
        groups = [(c if isinstance(c, tuple) else (c,), g) for c, g in df.groupby(keys, dropna=False, sort=False)]
    for cond, g in groups:
        _refuse_mixed_params(g, dict(zip(keys, cond)))
    return keys, groups


def _refuse_mixed_params(g: pd.DataFrame, condition: dict) -> None:
    """ValueError where the records ``g`` of one condition were made with different run parameters
    (seed apart), naming the condition, the parameters that differ and the files of each set."""
    if "run_params" not in g:
        return
    variants = g["run_params"].map(run_variant)
    if variants.nunique(dropna=False) < 2:
        return
    first = {}   # variant -> (its run_params, the files that hold it)
    for v, params, source in zip(variants, g["run_params"],
                                 g["source_file"] if "source_file" in g else [None] * len(g)):
        entry = first.setdefault(v, (params, []))
        if source is not None and source not in entry[1]:
            entry[1].append(source)
    differ = differing_params([params for params, _ in first.values()])

    def describe(params, files):
        values = ", ".join(f"{k}={canonical_json(params[k]) if isinstance(params, dict) and k in params else 'absent'}"
                           for k in differ)
        shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
        return f"{values} ({shown})" if files else values
    where = ", ".join(f"{k}={v}" for k, v in condition.items())
    raise ValueError(f"records of one condition ({where}) were made with different run parameters "
                     f"{sorted(differ)}: {'; '.join(describe(*entry) for entry in first.values())}. They are "
                     f"not pooled over seeds: select one set (aggregate.with_params(records, "
                     f"{next(iter(differ))}=...)) or move the other run's files to another results root")


def with_params(records, **params) -> pd.DataFrame:
    """The records whose ``run_params`` give each of ``params`` its value (e.g. ``delta=0.3``):
    one parameter set of a condition, for the aggregations here. Records without run_params (older
    schema) are kept only where no parameter is asked for."""
    df = _records_frame(records)
    if not params:
        return df
    if "run_params" not in df:
        return df.iloc[:0]
    wanted = {k: canonical_json(v) for k, v in params.items()}

    def matches(rp):
        return isinstance(rp, dict) and all(k in rp and canonical_json(rp[k]) == v for k, v in wanted.items())
    return df[df["run_params"].map(matches)]


def table1(records) -> pd.DataFrame:
    """Mean and std over seeds per condition and bit-width; ``knee`` marks the argmax of mean I'."""
    df = _records_frame(records)
    keys, groups = _condition_groups(df)
    rows = []
    for cond, g in groups:
        for label in _bit_order(g["bits_label"]):
            s = g[g["bits_label"] == label]
            row = dict(zip(keys, cond))
            row.update({"bits": label, "n_seeds": s["seed"].nunique(),
                        "C_paper": s["C_paper"].mean(), "C_true": s["C_true"].mean(),
                        "p_thresh": s["p_thresh"].mean(),
                        "num_classes": int(s["num_classes"].iloc[0]) if "num_classes" in s else None})
            row["P_max"] = s["P"].max()   # the best seed ("collapses to chance" asks every seed)
            for m in ("P", "T_ms", "I", "I_gated", "ACP", "ALS"):
                row[f"{m}_mean"] = s[m].mean()
                row[f"{m}_std"] = s[m].std(ddof=1) if len(s) > 1 else np.nan
            rows.append(row)
    return mark_knee(pd.DataFrame(rows), "I_gated_mean", "knee")


def mark_knee(table: pd.DataFrame, column: str, flag: str) -> pd.DataFrame:
    """Set ``flag`` True on the row of peak ``column`` in each condition (rows where it is NaN do
    not compete); no row is marked where the peak is not above 0 (every configuration gated)."""
    table[flag] = False
    for _, g in _condition_groups(table)[1]:
        peak = int(peak_position(g[column].to_numpy(float)))
        if peak >= 0:
            table.loc[g.index[peak], flag] = True
    return table


def peak_position(values, axis: int = -1) -> np.ndarray:
    """The Knee rule on an array: position of the peak along ``axis`` (the first among equals),
    -1 where no value is above 0 (every configuration gated); NaN never peaks. Vectorized, so
    :mod:`quide.analysis.stability` applies the same rule to a thousand resampled tables at once."""
    v = np.asarray(values, dtype=float)
    filled = np.where(np.isnan(v), -np.inf, v)
    pos = np.argmax(filled, axis=axis)
    return np.where(np.max(filled, axis=axis) > 0, pos, -1)


def knees(records) -> pd.DataFrame:
    """The Pareto Knee (bit-width of peak mean I') per condition."""
    t = table1(records)
    keys = _condition_groups(t)[0]
    return t[t["knee"]][keys + ["bits", "I_gated_mean", "I_gated_std", "P_mean"]].reset_index(drop=True)


def rankings(records) -> pd.DataFrame:
    """Table 4: per condition and bit-width, the rank under each metric (on seed means), plus
    ``order_<metric>``: the bit-widths best first, as the paper writes them ([4, 8, 16, 32, 2])."""
    keys, groups = _condition_groups(table1(records))
    parts = []
    for _, g in groups:
        g = g.copy()
        for m in METRICS:
            g[f"rank_{m}"] = rank(g[f"{m}_mean"])
        parts.append(g[keys + ["bits"] + [f"rank_{m}" for m in METRICS]])
    return pd.concat(parts, ignore_index=True)


def orders(records) -> pd.DataFrame:
    """Per condition, the bit-widths ordered best first under each metric (seed means)."""
    keys, groups = _condition_groups(table1(records))
    rows = []
    for cond, g in groups:
        row = dict(zip(keys, cond))
        labels = [int(b) if str(b).isdigit() else b for b in g["bits"]]
        for m, name in METRICS.items():
            row[name] = ranking(labels, g[f"{m}_mean"])
        row["I and I' agree"] = row["I"] == row["I'"]
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std(mean, std, scale: float = 1.0, digits: int = 3) -> str:
    """'79.81 ± 0.19' style; ``scale=100`` turns fractions into percent."""
    if pd.isna(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def placement_table(records, bits=None) -> pd.DataFrame:
    """P (mean and std over seeds) per condition and bit-width under each quantizer placement,
    beside the paper's reported P where it states one, and which placement lies closer to it.
    ``bits``: the uniform bit-widths to show (default: all in the records)."""
    from .paper import reported
    df = _records_frame(records)
    df = df[df["bits"].map(np.isscalar)]
    _condition_groups(df)   # each placement's seeds are pooled: one parameter set per condition
    bits = [int(b) for b in _bit_order(df["bits_label"])] if bits is None else list(bits)
    rows = []
    for (model, dataset, source), g in df.groupby(["model", "dataset", "data_source"], sort=False):
        paper_p = reported(model, dataset).get("P", {})
        for b in bits:
            s = g[g["bits"] == b]
            if s.empty:
                continue
            row = {"model": model, "dataset": dataset, "data_source": source, "bits": b}
            means = {}
            for placement, sp in s.groupby("placement"):
                means[placement] = sp["P"].mean()
                row[f"P_{placement}_mean"] = means[placement]
                row[f"P_{placement}_std"] = sp["P"].std(ddof=1) if len(sp) > 1 else np.nan
            row["P_paper"] = paper_p.get(b, np.nan)
            row["closer_to_paper"] = (min(means, key=lambda k: abs(means[k] - row["P_paper"]))
                                      if b in paper_p and means else None)
            rows.append(row)
    return pd.DataFrame(rows)


def knee_vs_delta(table, deltas) -> pd.DataFrame:
    """The Pthresh ablation: for each condition of a :func:`table1` frame and each delta, the Knee
    (argmax of I' over bit-widths) and its I'. I' is recomputed from the seed means of P and T, with
    P_FP = mean P at 32 bits; a delta where every bit-width is gated to 0 has no Knee (None)."""
    from .index import gated_index, p_thresh
    rows = []
    for _, g in _condition_groups(table)[1]:
        g = g[g["bits"].astype(str).str.isdigit()]
        p_fp = float(g.loc[g["bits"].astype(str) == "32", "P_mean"].iloc[0])
        k = int(g["num_classes"].iloc[0])
        for delta in deltas:
            scores = gated_index(g["C_paper"].to_numpy(float), g["P_mean"].to_numpy(float),
                                 g["T_ms_mean"].to_numpy(float), p_thresh(k, p_fp, float(delta)))
            best = int(np.argmax(scores))
            rows.append({"model": g["model"].iloc[0], "dataset": g["dataset"].iloc[0],
                         "data_source": g["data_source"].iloc[0], "delta": float(delta),
                         "knee": int(g["bits"].iloc[best]) if scores[best] > 0 else None,
                         "I_gated": float(scores[best])})
    return pd.DataFrame(rows)


def knee_segments(knees: pd.DataFrame) -> dict:
    """From :func:`knee_vs_delta`: per (model, data_source), the delta ranges over which the Knee
    stays put, as "delta lo-hi: bits" strings ("none" where every bit-width is gated)."""
    out = {}
    for key, g in knees.groupby(["model", "data_source"], sort=False):
        parts, start, prev = [], None, object()
        rows = list(g.itertuples())
        for i, r in enumerate(rows):
            knee = None if pd.isna(r.knee) else int(r.knee)
            if knee != prev:
                if start is not None:
                    parts.append((start, rows[i - 1].delta, prev))
                start, prev = r.delta, knee
        parts.append((start, rows[-1].delta, prev))
        out[key] = [f"{lo:.2f}-{hi:.2f}: {'none' if b is None else b}" for lo, hi, b in parts]
    return out


def control_table(records, model: str, control: str, source: str) -> pd.DataFrame:
    """A control condition beside the one it controls (``quide.analysis.conditions``' ``control_of``): per
    bit-width the seed means of P for each, their drops from FP32 (ΔP), in points, and the
    differences control - source. ``records``: one placement. The Knee of each is Table 1's."""
    df = _records_frame(records)
    t = table1(df[(df["model"] == model) & df["dataset"].isin([source, control])])
    if set(t["dataset"]) != {source, control}:
        raise ValueError(f"control_table needs records of {model} on both {source!r} and {control!r}")
    wide = {}
    for name, g in t.groupby("dataset"):
        g = g.set_index("bits")
        fp = g.loc["32", "P_mean"] if "32" in g.index else g.loc[32, "P_mean"]
        wide[name] = pd.DataFrame({"P_pct": 100 * g["P_mean"], "P_std_pts": 100 * g["P_std"],
                                   "dP_vs_fp32_pts": 100 * (g["P_mean"] - fp), "knee": g["knee"]})
    out = wide[source].join(wide[control], lsuffix=f" {source}", rsuffix=f" {control}")
    out["P difference (pts)"] = out[f"P_pct {control}"] - out[f"P_pct {source}"]
    out["ΔP difference (pts)"] = out[f"dP_vs_fp32_pts {control}"] - out[f"dP_vs_fp32_pts {source}"]
    return out.reset_index()
