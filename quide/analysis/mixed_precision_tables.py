"""EXP-3's tables from committed records (the book): the paper's Table 2 and the exhaustive optima.
:mod:`quide.measure.mixed_precision` runs the searches that write these records."""
from __future__ import annotations

import pandas as pd

from . import search as qsearch


def table2(records: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 2 from ``results.load_records(experiment="mixed_precision")``: per data set,
    one row per search and seed (configuration returned, P, both C, T, I' under both compressions,
    rank among all configurations under I', evaluations), plus the FP32 reference and uniform 4-bit
    (from the exhaustive pass) for comparison."""
    true = qsearch.gated_fitness("true")
    rows = []
    for (model, dataset), g in records.groupby(["model", "dataset"], sort=True):
        exh = g[g["search"] == "exhaustive"]
        scores = {tuple(b): v for b, v in zip(exh["bits"], exh["I_gated"])}
        picks = g[~g["search"].isin(["exhaustive"])]
        uniform4 = exh[exh["bits_label"] == "-".join(["4"] * len(exh["bits"].iloc[0]))] if len(exh) else exh
        for _, r in pd.concat([picks, uniform4.assign(search="uniform 4-bit")]).iterrows():
            bits = r["bits"]
            rows.append({
                "model": model, "dataset": dataset, "data_source": r["data_source"], "search": r["search"],
                "seed": None if pd.isna(r.get("search_seed")) else int(r["search_seed"]),
                "bits": r["bits_label"], "P": r["P"], "C_paper": r["C_paper"], "C_true": r["C_true"],
                "T_ms": r["T_ms"], "I_gated": r["I_gated"], "I_gated_trueC": true(r),
                "rank": qsearch.rank_among(bits, scores) if scores and not isinstance(bits, (int, float)) else None,
                "n_configs": len(scores) or None,
                "evaluations": None if pd.isna(r.get("evaluations")) else int(r["evaluations"]),
            })
    order = {"reference": 0, "exhaustive": 1, "ga": 2, "random": 3, "haq": 4, "greedy": 5, "uniform 4-bit": 6}
    out = pd.DataFrame(rows)
    out["_o"] = out["search"].map(order)
    return out.sort_values(["model", "dataset", "_o", "seed"], kind="stable").drop(columns="_o").reset_index(drop=True)


def optima(records: pd.DataFrame) -> pd.DataFrame:
    """Per data set, the exhaustive optimum under I' with the paper's C and with the true C."""
    true = qsearch.gated_fitness("true")
    rows = []
    for (model, dataset), g in records[records["search"] == "exhaustive"].groupby(["model", "dataset"]):
        g = g.assign(I_gated_trueC=[true(r) for _, r in g.iterrows()])
        for compression, col in (("paper", "I_gated"), ("true", "I_gated_trueC")):
            best = g.loc[g[col].idxmax()]
            rows.append({"model": model, "dataset": dataset, "fitness C": compression, "bits": best["bits_label"],
                         "P": best["P"], "C_paper": best["C_paper"], "C_true": best["C_true"],
                         "T_ms": best["T_ms"], "I'": best[col]})
    return pd.DataFrame(rows)
