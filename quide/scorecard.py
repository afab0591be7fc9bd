"""The reproduction scorecard: each number and claim the paper states (``quide.paper``) beside ours
from the committed records, with the difference and a verdict.

Verdicts: ``reproduced`` (within the tolerance below), ``differs`` (outside it; the note says how
and names the likely cause), ``not run here`` (the data, weights or model cannot be had here: the
paper's value stands alone, "reported, not reproduced here").

Tolerances (stated once, used everywhere):
- accuracy P: abs(ours - paper) <= max(2 x std over our seeds, 0.5 points);
- an index (I, I'), latency T: within 10% of the paper's value (T also depends on the GPU);
- orders, Knees, configurations: equal.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import aggregate, conditions
from .paper import CLAIMS, reported

P_TOL_POINTS = 0.5       # percentage points, the floor of the accuracy tolerance
REL_TOL = 0.10           # relative tolerance for I, I' and T
COLLAPSE_POINTS = 10.0   # "collapse": mean P within this many points of chance (1/K)

QUANTITY = {"P_FP": "P, FP32", "P_FP_std": "std of P, FP32", "p_thresh": "Pthresh", "P": "P", "P_std": "std of P",
            "I": "I", "I_gated": "I'", "I_gated_std": "std of I'", "knee": "Pareto Knee",
            "mps_best": "mixed-precision search best", "T_ms": "T (ms)"}


def _pct(x):
    return f"{100 * x:.2f}%"


def _row(cond, quantity, paper, ours="—", difference="—", verdict="not run here", note="", data="—"):
    return {"condition": conditions.label(*cond), "our data": data, "quantity": quantity,
            "paper": paper, "ours": ours, "difference": difference, "verdict": verdict, "note": note}


def _why(data_source: str) -> str:
    return ("JPEG stand-in data; other GPU and software" if "stand-in" in data_source
            else "other GPU and software")


def _accuracy_row(cond, quantity, paper, mean, std, source):
    tol = max(2 * (0 if np.isnan(std) else std), P_TOL_POINTS / 100)
    diff = mean - paper
    ok = abs(diff) <= tol
    return _row(cond, quantity, _pct(paper), aggregate.mean_std(mean, std, 100, 2) + "%",
                f"{100 * diff:+.2f} pts", "reproduced" if ok else "differs",
                "" if ok else f"outside ±{100 * tol:.2f} pts: {_why(source)}")


def _relative_row(cond, quantity, paper, mean, std, source, digits=3):
    ok = abs(mean - paper) <= REL_TOL * abs(paper) if paper else abs(mean) < 1e-12
    rel = f"{100 * (mean - paper) / paper:+.0f}%" if paper else f"{mean - paper:+.3f}"
    return _row(cond, quantity, f"{paper:.{digits}f}", aggregate.mean_std(mean, std, 1, digits), rel,
                "reproduced" if ok else "differs", "" if ok else f"outside ±{100 * REL_TOL:.0f}%: {_why(source)}")


def _exact_row(cond, quantity, paper, ours, source):
    ok = paper == ours
    return _row(cond, quantity, str(paper), str(ours), "same" if ok else "different",
                "reproduced" if ok else "differs", "" if ok else _why(source))


def condition_rows(cond, table: pd.DataFrame, orders: pd.Series | None) -> list[dict]:
    """Rows for one (model, dataset) we ran; ``table`` is its :func:`aggregate.table1` slice."""
    rep = reported(*cond)
    by = table.set_index("bits")
    src = table["data_source"].iloc[0]
    rows = []
    if "P_FP" in rep:
        rows.append(_accuracy_row(cond, "P, FP32", rep["P_FP"], by.loc[32, "P_mean"], by.loc[32, "P_std"], src))
    for bits, p in sorted(rep.get("P", {}).items(), reverse=True):
        if bits in by.index:
            rows.append(_accuracy_row(cond, f"P, {bits}-bit", p, by.loc[bits, "P_mean"], by.loc[bits, "P_std"], src))
    for key, name in (("I", "I"), ("I_gated", "I'")):
        for bits, v in sorted(rep.get(key, {}).items(), reverse=True):
            if bits in by.index:
                rows.append(_relative_row(cond, f"{name}, {bits}-bit", v, by.loc[bits, f"{key}_mean"],
                                          by.loc[bits, f"{key}_std"], src))
    for bits, t in sorted(rep.get("T_ms", {}).items(), reverse=True):
        if bits in by.index:
            rows.append(_relative_row(cond, f"T (ms), {bits}-bit", t, by.loc[bits, "T_ms_mean"],
                                      by.loc[bits, "T_ms_std"], src, digits=2))
    if "T_range_ms" in rep:
        lo, hi = rep["T_range_ms"]
        ours_lo, ours_hi = table["T_ms_mean"].min(), table["T_ms_mean"].max()
        ok = abs(ours_lo - lo) <= REL_TOL * lo and abs(ours_hi - hi) <= REL_TOL * hi
        rows.append(_row(cond, "T range over bit-widths (ms)", f"{lo:.2f} to {hi:.2f}", f"{ours_lo:.2f} to {ours_hi:.2f}",
                         "—", "reproduced" if ok else "differs",
                         "" if ok else _why(src)))
    if "knee" in rep:
        knee = int(table.loc[table["knee"], "bits"].iloc[0])
        rows.append(_exact_row(cond, "Pareto Knee (argmax mean I')", rep["knee"], knee, src))
    if orders is not None:
        for key, name in (("order_I", "I"), ("order_I_gated", "I'")):
            if key in rep:
                rows.append(_exact_row(cond, f"ranking under {name} (Table 4)", rep[key], list(orders[name]), src))
    return [{**r, "our data": src} for r in rows]


def claim_rows(table1: pd.DataFrame, orders: pd.DataFrame) -> list[dict]:
    """The paper's qualitative claims, checked per condition we ran."""
    rows = []
    lossless = CLAIMS["fp16_lossless_delta_P_below"]
    std_cap = CLAIMS["std_P_below_0.8pp_at_8bit_and_up"]
    for (model, dataset), t in table1.groupby(["model", "dataset"], sort=False):
        cond, by = (model, dataset), t.set_index("bits")
        data = t["data_source"].iloc[0]
        if 16 in by.index and 32 in by.index:
            d = abs(by.loc[16, "P_mean"] - by.loc[32, "P_mean"])
            rows.append({**_row(cond, "16-bit is lossless (|ΔP| < 0.01 pts)", "yes", f"|ΔP| = {100 * d:.3f} pts",
                                "—", "reproduced" if d < lossless else "differs",
                                "" if d < lossless else "mean over seeds differs by more than 0.01 pts"), "our data": data})
        high = t[t["bits"] >= 8]
        worst = float(high["P_std"].max())
        if not np.isnan(worst):
            rows.append({**_row(cond, "std of P < 0.80 pts at ≥ 8 bits", "yes", f"max std {100 * worst:.2f} pts", "—",
                                "reproduced" if worst < std_cap else "differs"), "our data": data})
        if 2 in by.index:
            chance = 1.0 / float(t["num_classes"].iloc[0])
            gap = 100 * (by.loc[2, "P_mean"] - chance)
            ok = gap <= COLLAPSE_POINTS
            rows.append({**_row(cond, "2-bit collapses (P near chance)", "yes",
                                f"P = {100 * by.loc[2, 'P_mean']:.2f}% (chance {100 * chance:.0f}%)", f"{gap:+.2f} pts",
                                "reproduced" if ok else "differs",
                                "" if ok else f"more than {COLLAPSE_POINTS:.0f} pts above chance"), "our data": data})
        o = orders[(orders["model"] == model) & (orders["dataset"] == dataset)]
        if len(o):
            o = o.iloc[0]
            collapsed = set(t.loc[t["I_gated_mean"] <= 0, "bits"].astype(int))
            keep = lambda order: [b for b in order if b not in collapsed]  # noqa: E731
            raw, gated = list(o["I"]), list(o["I'"])
            ok = keep(raw) == keep(gated)
            ours = ("orders equal" if raw == gated else
                    f"I {raw} vs I' {gated}" + (f"; equal without {sorted(collapsed)}" if ok else ""))
            rows.append({**_row(cond, "I and I' disagree only near collapse", "yes", ours, "—",
                                "reproduced" if ok else "differs"), "our data": data})
    return rows


def not_run_rows() -> list[dict]:
    rows = []
    for spec in (s for s in conditions.CONDITIONS.values() if s.not_here):
        cond, why = spec.key, spec.not_here
        for key, value in spec.reported.items():
            if key == "mps_best":
                text = f"{'-'.join(map(str, value['bits']))}: P {value['P']}, I' {value['I_gated']} (HAQ objective {value['haq_objective']})"
            elif isinstance(value, dict):
                text = ", ".join(f"{b}-bit: {v}" for b, v in value.items())
            else:
                text = str(value)
            rows.append(_row(cond, QUANTITY.get(key, key), text, note=f"reported, not reproduced here: {why}"))
    return rows


def ga_rows(mps: pd.DataFrame | None) -> list[dict]:
    """The paper's GA result (CIFAR-10, seed 0) against our GA on the stand-in, seed 0."""
    cond = ("simplecnn", "cifar10")
    ga = reported(*cond)["ga_best"]
    label = "-".join(map(str, ga["bits"]))
    if mps is None or mps.empty:
        return [_row(cond, "GA best configuration", label, note="EXP-3 records missing")]
    ours = mps[(mps["dataset"] == "cifar10") & (mps["search"] == "ga") & (mps["search_seed"] == 0)]
    if ours.empty:
        return [_row(cond, "GA best configuration", label, note="no GA record for seed 0")]
    r = ours.iloc[0]
    rank = r["rank_of_n"]
    src = r["data_source"]
    return [{**row, "our data": src} for row in [
        {**_exact_row(cond, "GA best configuration (seed 0)", label, r["bits_label"], src),
         "note": f"ours ranks {rank[0]} of {rank[1]} by exhaustive search" + ("" if r["bits_label"] == label else f"; {_why(src)}")},
        _accuracy_row(cond, "GA best: P", ga["P"], r["P"], np.nan, src),
        _relative_row(cond, "GA best: C (32/mean bits)", ga["C"], r["C_paper"], np.nan, src, digits=2),
        _relative_row(cond, "GA best: I'", ga["I_gated"], r["I_gated"], np.nan, src),
    ]]


def scorecard(sweep: pd.DataFrame, mps: pd.DataFrame | None = None) -> pd.DataFrame:
    """``sweep``: ptq_sweep records (profile paper); ``mps``: mixed_precision records or None.
    Graph placement (the paper's graph-mode framework) is the one compared."""
    records = sweep[sweep["placement"] == "graph"]
    t1 = aggregate.table1(records)
    t1["bits"] = t1["bits"].astype(int)   # the sweep's bit-widths are uniform
    orders = aggregate.orders(records)
    rows = []
    for (model, dataset), t in t1.groupby(["model", "dataset"], sort=False):
        if reported(model, dataset):
            o = orders[(orders["model"] == model) & (orders["dataset"] == dataset)]
            rows += condition_rows((model, dataset), t, o.iloc[0] if len(o) else None)
    rows += ga_rows(mps)
    rows += claim_rows(t1, orders)
    rows += not_run_rows()
    return pd.DataFrame(rows)


def verdict_counts(card: pd.DataFrame) -> pd.Series:
    return card["verdict"].value_counts().reindex(["reproduced", "differs", "not run here"], fill_value=0)
