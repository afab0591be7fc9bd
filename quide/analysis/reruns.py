"""Does it reproduce? Two from-scratch runs of the same experiments, set side by side.

Both runs' records are loaded with :func:`quide.analysis.results.load_records` (the committed run from
``data/results``, the second from ``data/reruns/<name>``). Configurations are paired by what
identifies them (experiment, model, data set, seed, placement, bits; for EXP-3 the exhaustive pass),
and each conclusion is recomputed per run by the code the book uses (:func:`quide.analysis.aggregate.table1`
for Knees, :func:`quide.analysis.mixed_precision_tables.optima` for EXP-3 optima).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import aggregate
from . import index as qi
from . import stability
from ..config import project_root
from .mixed_precision_tables import optima
from .results import load_records

RERUNS = "data/reruns"   # beside data/results: second runs, never read as the committed results
SWEEP_KEYS = ["model", "dataset", "seed", "placement", "bits_label"]
EXHAUSTIVE_KEYS = ["model", "dataset", "bits_label"]
SEARCH_KEYS = ["model", "dataset", "seed", "search", "search_seed"]   # one EXP-3 search run
T_AGREEMENT_PCT = 2.0    # the bar: each configuration's T within 2% between reruns
CI_WIDTH_PCT = 2.0       # the bar: each record's 95% CI of T at most 2% of T wide
SPEARMAN_BAR = 0.99      # the issue's bar: rank correlation of the 256 exhaustive I' between reruns


def load_rerun(name: str, experiment: str, root: Path | str | None = None) -> pd.DataFrame:
    """The records of rerun ``name`` (a folder under ``data/reruns``) for one experiment."""
    return load_records(Path(root or project_root() / RERUNS) / name, experiment)


def with_host_timing(records: pd.DataFrame) -> pd.DataFrame:
    """The same records with T = T_host_ms (the paper's host-timer protocol) and I, I', ALS
    recomputed from it: what the conclusions would be under the paper's timer."""
    out = records.copy()
    out["T_ms"] = out["T_host_ms"]
    out["I"] = qi.intelligence_index(out["C_paper"], out["P"], out["T_ms"])
    out["I_gated"] = qi.gated_index(out["C_paper"], out["P"], out["T_ms"], out["p_thresh"])
    out["ALS"] = qi.als(out["P"], out["T_ms"])
    return out


def _diff_pct(a, b):
    return 100 * (np.asarray(b, float) - np.asarray(a, float)) / np.asarray(a, float)


def paired(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per configuration present in both runs: P, T (the timer's and the paper's host
    protocol) and I' of each run, and the differences of b from a in percent of a."""
    cols = ["P", "T_ms", "T_host_ms", "I_gated"]
    a, b = (_with_attempts(r) for r in (a, b))
    cols_retry = cols + ["T_attempts"]
    both = a[keys + cols_retry].merge(b[keys + cols_retry], on=keys, suffixes=("_a", "_b"), validate="one_to_one")
    both["T_diff_pct"] = _diff_pct(both["T_ms_a"], both["T_ms_b"])
    both["T_host_diff_pct"] = _diff_pct(both["T_host_ms_a"], both["T_host_ms_b"])
    both["P_diff_points"] = 100 * (both["P_b"] - both["P_a"])
    return both


def _with_attempts(records: pd.DataFrame) -> pd.DataFrame:
    """Records with ``T_attempts`` filled in: records made before it existed timed one block."""
    attempts = records["T_attempts"] if "T_attempts" in records else pd.Series(1, index=records.index)
    return records.assign(T_attempts=attempts.fillna(1).astype(int))


def agreement_by_retry(pairs: pd.DataFrame) -> pd.DataFrame:
    """T agreement of :func:`paired` rows split by whether the timer kept each run's first block
    (``T_attempts`` 1 in both) or timed a block again in either run (its first block was wider
    than ``TimerConfig.max_ci_pct``): whether the disagreements sit in the blocks the timer
    already found disturbed. One row per group: configurations, how many within the bar, and the
    largest absolute difference in percent."""
    retried = (pairs["T_attempts_a"] > 1) | (pairs["T_attempts_b"] > 1)
    rows = []
    for label, group in (("first block kept in both runs", pairs[~retried]),
                         ("timed again in either run", pairs[retried])):
        d = group["T_diff_pct"].abs()
        rows.append({"blocks": label, "configurations": len(group),
                     f"within {T_AGREEMENT_PCT:g}%": int((d <= T_AGREEMENT_PCT).sum()),
                     "largest |difference| %": float(d.max()) if len(group) else np.nan})
    return pd.DataFrame(rows)


def retried_timings(a: pd.DataFrame, b: pd.DataFrame, keys: list[str], names: tuple[str, str] = ("a", "b")
                    ) -> pd.DataFrame:
    """Each timing (one graph signature of one block) that either run timed in more than one block
    (column ``run``: its run's name from ``names``):
    how many configurations share it (and one of them), every block's median
    (``T_attempt_medians_ms``) and the one kept, in percent from the other run's T of the same
    configurations. Shows whether the blocks timed again came back to where
    the other run's card has the graph, or settled elsewhere."""
    rows = []
    for run, mine, other in ((names[0], a, b), (names[1], b, a)):
        mine = _with_attempts(mine)
        again = mine[mine["T_attempts"] > 1]
        if again.empty:
            continue
        both = again[keys + ["T_signature", "T_ms", "T_attempts", "T_attempt_medians_ms"]].merge(
            other[keys + ["T_ms"]], on=keys, suffixes=("", "_other"))
        block = [k for k in keys if k != "bits_label"]
        for _, timing in both.groupby(block + ["T_signature"], sort=False, dropna=False):
            r = timing.iloc[0]
            rows.append({"run": run, **{k: r[k] for k in block}, "configurations": len(timing),
                         "e.g.": r["bits_label"], "blocks": int(r["T_attempts"]),
                         "block medians vs other run %": [round(float(v), 2) for v in
                                                          _diff_pct(r["T_ms_other"], r["T_attempt_medians_ms"])],
                         "kept vs other run %": float(_diff_pct(r["T_ms_other"], r["T_ms"]))})
    return pd.DataFrame(rows)


def agreement(pairs: pd.DataFrame) -> dict:
    """How far the reruns' T agree: under the timer and under the paper's host protocol."""
    out = {"configurations": len(pairs)}
    for name, col in (("T", "T_diff_pct"), ("T_host", "T_host_diff_pct")):
        d = pairs[col].abs()
        out[f"{name}_within_{T_AGREEMENT_PCT:g}pct"] = int((d <= T_AGREEMENT_PCT).sum())
        out[f"{name}_median_abs_diff_pct"] = float(d.median())
        out[f"{name}_max_abs_diff_pct"] = float(d.max())
    out["P_equal"] = int((pairs["P_diff_points"] == 0).sum())
    out["P_max_abs_diff_points"] = float(pairs["P_diff_points"].abs().max())
    return out


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN where either side is constant."""
    from scipy.stats import ConstantInputWarning, spearmanr   # on use: SciPy's import breaks under the API page's mocked torch
    with warnings.catch_warnings():   # a constant side: SciPy warns and returns NaN, which we report
        warnings.simplefilter("ignore", ConstantInputWarning)
        return float(spearmanr(x, y).statistic)


def knees(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Table 1's Knee per condition in each run, and whether they agree."""
    def knee(records):
        t = aggregate.table1(records)
        keys = [k for k in ("model", "dataset", "data_source", "placement") if k in t]
        return t[t["knee"]][keys + ["bits"]]
    ka, kb = knee(a), knee(b)
    keys = [k for k in ("model", "dataset", "data_source", "placement") if k in ka and k in kb]
    out = ka.merge(kb, on=keys, suffixes=("_a", "_b"), how="outer")
    out["same"] = out["bits_a"] == out["bits_b"]
    return out.rename(columns={"bits_a": "knee_a", "bits_b": "knee_b"}).reset_index(drop=True)


def exp3(a: pd.DataFrame, b: pd.DataFrame,
         config: stability.StabilityConfig = stability.StabilityConfig()) -> pd.DataFrame:
    """Per data set and fitness C: each run's exhaustive optimum, whether they agree, and the
    Spearman correlation of the 256 I' values (paper C) between the runs. ``frequency_a`` and
    ``frequency_b`` are the share of each run's resampling draws in which its own optimum stays the
    optimum (:func:`quide.analysis.stability.optimum_stability`); ``verdict`` is "equal" where the runs agree,
    "within noise" where they do not and either run's optimum is not robust in its own draws (the
    runs differ by less than one run's uncertainty), else "differs"."""
    oa, ob = optima(a), optima(b)
    out = oa[["model", "dataset", "fitness C", "bits"]].merge(
        ob[["model", "dataset", "fitness C", "bits"]], on=["model", "dataset", "fitness C"], suffixes=("_a", "_b"))
    out["same"] = out["bits_a"] == out["bits_b"]
    keys = ["model", "dataset", "fitness C"]
    for run, records in (("a", a), ("b", b)):
        st = stability.optimum_stability(records, config)
        out = out.merge(st[keys + ["frequency"]].rename(columns={"frequency": f"frequency_{run}"}), on=keys, how="left")
    robust = (out[["frequency_a", "frequency_b"]] >= stability.ROBUST).all(axis=1)
    out["verdict"] = np.where(out["same"], "equal", np.where(robust, "differs", stability.WITHIN_NOISE))
    exh_a, exh_b = a[a["search"] == "exhaustive"], b[b["search"] == "exhaustive"]
    rho = {}
    for (model, dataset), g in paired(exh_a, exh_b, EXHAUSTIVE_KEYS).groupby(["model", "dataset"]):
        rho[(model, dataset)] = (spearman(g["I_gated_a"], g["I_gated_b"]), len(g))
    out["spearman_I_gated"] = [rho.get((m, d), (np.nan, 0))[0] for m, d in zip(out["model"], out["dataset"])]
    out["n_configs"] = [rho.get((m, d), (np.nan, 0))[1] for m, d in zip(out["model"], out["dataset"])]
    return out.rename(columns={"bits_a": "optimum_a", "bits_b": "optimum_b"})


def search_picks(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """EXP-3's searches (GA, random, HAQ, greedy: not the exhaustive pass, not the FP32 reference)
    in runs a and b: one row per search run (``SEARCH_KEYS``; greedy has no search seed) with
    each run's pick (``bits_label``) and whether they are the same. A search that steers by measured
    T (HAQ's latency term, the GA's I') may pick otherwise when a timing moves."""
    def picks(records):
        searches = records[~records["search"].isin(["exhaustive", "reference"])]
        return searches.assign(search_seed=searches["search_seed"].fillna(-1))[SEARCH_KEYS + ["bits_label"]]
    out = picks(a).merge(picks(b), on=SEARCH_KEYS, suffixes=("_a", "_b"))
    out["same"] = out["bits_label_a"] == out["bits_label_b"]
    return out.rename(columns={"bits_label_a": "pick_a", "bits_label_b": "pick_b"})


def same_graph_in_two_blocks(sweep: pd.DataFrame, searches: pd.DataFrame) -> pd.DataFrame:
    """Within ONE run: EXP-3's timing block against the PTQ sweep's block of the same model (seed,
    placement), on the graphs both timed (same ``T_signature``: e.g. all layers 16-bit, all 8-bit,
    FP32). Both blocks time the same model's same graphs, usually on other GPUs at other moments,
    so their difference is a block's shift as a whole, which a rerun on other cards can show again.
    One row per (model, dataset): graphs shared, and the median and range of EXP-3's T against the
    sweep's, in percent of the sweep's."""
    keys = ["model", "dataset", "T_signature", "model_seed", "placement"]
    s = sweep.assign(model_seed=sweep["seed"])[keys + ["T_ms"]].drop_duplicates(keys)   # a sweep's seed is its model's
    e = searches[keys + ["T_ms"]].drop_duplicates(keys)
    both = e.merge(s, on=keys, suffixes=("_search", "_sweep"))
    both["diff_pct"] = _diff_pct(both["T_ms_sweep"], both["T_ms_search"])
    return both.groupby(["model", "dataset"], as_index=False).agg(
        graphs=("diff_pct", "size"), median_pct=("diff_pct", "median"),
        low_pct=("diff_pct", "min"), high_pct=("diff_pct", "max"))


def ci_width_pct(records: pd.DataFrame) -> pd.Series:
    """Each record's 95% CI of T (``T_ci_ms``), its width in percent of ``T_ms``."""
    return 100 * (records["T_ci_ms"].str[1] - records["T_ci_ms"].str[0]) / records["T_ms"]


# --- Every kept run against the committed results (the runs manifest, quide.analysis.runs) ---

def load_run(folder: str, root: Path | str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One run's records from its folder (as the manifest names it, from the repository root):
    the PTQ sweeps' paper-profile records and EXP-3's records."""
    base = Path(root or project_root()) / folder
    sweep = load_records(base, "ptq_sweep")
    return sweep[sweep["profile"] == "paper"], load_records(base, "mixed_precision")


def _exhaustive(records: pd.DataFrame) -> pd.DataFrame:
    return records[records["search"] == "exhaustive"]


def both_experiments(base: tuple[pd.DataFrame, pd.DataFrame], other: tuple[pd.DataFrame, pd.DataFrame]
                     ) -> dict[str, pd.DataFrame]:
    """Two runs ((sweep, EXP-3) each, as :func:`load_run`) paired by configuration, per experiment:
    the other run's differences are in percent of ``base``'s."""
    return {"EXP-1/2 sweeps": paired(base[0], other[0], SWEEP_KEYS),
            "EXP-3 exhaustive": paired(_exhaustive(base[1]), _exhaustive(other[1]), EXHAUSTIVE_KEYS)}


def t_differences(base: tuple[pd.DataFrame, pd.DataFrame], others: dict[str, tuple[pd.DataFrame, pd.DataFrame]]
                  ) -> pd.DataFrame:
    """Long table, one row per configuration of each other run: ``run``, ``experiment`` and
    ``T_diff_pct`` (its T against ``base``'s, in percent of base's) and ``P_diff_points``."""
    return pd.concat([p[["T_diff_pct", "P_diff_points"]].assign(run=name, experiment=experiment)
                      for name, other in others.items() for experiment, p in both_experiments(base, other).items()],
                     ignore_index=True)


def _optima_verdicts(base_mp: pd.DataFrame, base_stability: pd.DataFrame, other_mp: pd.DataFrame,
                     other_stability: pd.DataFrame) -> pd.Series:
    """As :func:`exp3`'s ``verdict``, from stabilities computed once per run."""
    keys = ["model", "dataset", "fitness C"]
    out = optima(base_mp)[keys + ["bits"]].merge(optima(other_mp)[keys + ["bits"]], on=keys, suffixes=("_a", "_b"))
    for run, st in (("a", base_stability), ("b", other_stability)):
        out = out.merge(st[keys + ["frequency"]].rename(columns={"frequency": f"frequency_{run}"}), on=keys, how="left")
    robust = (out[["frequency_a", "frequency_b"]] >= stability.ROBUST).all(axis=1)
    return pd.Series(np.where(out["bits_a"] == out["bits_b"], "equal",
                              np.where(robust, "differs", stability.WITHIN_NOISE)))


def agreement_summary(base: tuple[pd.DataFrame, pd.DataFrame], others: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
                      config: stability.StabilityConfig = stability.StabilityConfig()) -> pd.DataFrame:
    """What agrees between each run in ``others`` (name -> (sweep, EXP-3) records) and ``base``:
    one row per run with counts, as "n of N" text and as numbers (columns ending in ``_n`` and
    ``_of``): P equal to the last digit; T within ``T_AGREEMENT_PCT``, per experiment; the median and largest
    absolute difference of T (%); Table 1's Knees equal; EXP-3's exhaustive optima equal (or within noise,
    :func:`exp3`'s verdict); the EXP-3 searches' picks equal."""
    base_stability = stability.optimum_stability(base[1], config)
    rows = []
    for name, other in others.items():
        by_experiment = both_experiments(base, other)
        pairs = pd.concat(by_experiment.values(), ignore_index=True)
        d = pairs["T_diff_pct"].abs()
        within = {e: (int((p["T_diff_pct"].abs() <= T_AGREEMENT_PCT).sum()), len(p)) for e, p in by_experiment.items()}
        kn = knees(base[0], other[0])
        verdicts = _optima_verdicts(base[1], base_stability, other[1], stability.optimum_stability(other[1], config))
        picks = search_picks(base[1], other[1])
        counts = {"P": (int((pairs["P_diff_points"] == 0).sum()), len(pairs)),
                  "T_sweeps": within["EXP-1/2 sweeps"], "T_exp3": within["EXP-3 exhaustive"],
                  "knees": (int(kn["same"].sum()), len(kn)),
                  "optima": (int(verdicts.eq("equal").sum()), len(verdicts)),
                  "optima_noise": (int(verdicts.isin(["equal", stability.WITHIN_NOISE]).sum()), len(verdicts)),
                  "picks": (int(picks["same"].sum()), len(picks))}
        rows.append({"run": name, **{f"{k}_n": n for k, (n, _) in counts.items()},
                     **{f"{k}_of": of for k, (_, of) in counts.items()},
                     "T_median_abs_pct": float(d.median()), "T_max_abs_pct": float(d.max())})
    return pd.DataFrame(rows)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`agreement_summary` for reading: one row per run, counts as "n of N", T in %."""
    def of(k):
        return summary[f"{k}_n"].astype(str) + " of " + summary[f"{k}_of"].astype(str)
    return pd.DataFrame({
        "run": summary["run"],
        "P equal": of("P"),
        f"T within {T_AGREEMENT_PCT:g}%, EXP-1/2": of("T_sweeps"),
        f"T within {T_AGREEMENT_PCT:g}%, EXP-3": of("T_exp3"),
        "T, median |difference|": summary["T_median_abs_pct"].map("{:.2f}%".format),
        "T, largest |difference|": summary["T_max_abs_pct"].map("{:.1f}%".format),
        "Knees equal": of("knees"),
        "EXP-3 optima equal": of("optima") + np.where(summary["optima_noise_n"] > summary["optima_n"],
                                                      " (the rest within noise)", ""),
        "search picks equal": of("picks"),
    })


def plot_t_differences(diffs: pd.DataFrame, order: list[str], title: str = ""):
    """Each run's T against the committed results' (``t_differences``), one row per run: every
    configuration as a dot (sweeps and EXP-3 in two colours), the ``T_AGREEMENT_PCT`` band shaded."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(order) + 1.4))
    ax.axvspan(-T_AGREEMENT_PCT, T_AGREEMENT_PCT, color="0.9", zorder=0, label=f"within ±{T_AGREEMENT_PCT:g}%")
    ax.axvline(0, color="0.5", lw=0.8)
    rng = np.random.default_rng(0)   # vertical jitter only, so that dots of one row do not hide each other
    for (experiment, group), colour, offset in zip(diffs.groupby("experiment", sort=True), ("tab:blue", "tab:orange"),
                                                   (-0.15, 0.15)):
        y = group["run"].map({r: i for i, r in enumerate(order)}) + offset + rng.uniform(-0.08, 0.08, len(group))
        ax.scatter(group["T_diff_pct"], y, s=6, alpha=0.5, color=colour, label=experiment)
    ax.set_yticks(range(len(order)), order)
    ax.invert_yaxis()
    ax.set_xlabel("T of the run against the committed results' (% of theirs), per configuration")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, markerscale=2)
    fig.tight_layout()
    return fig


def answer(summary: pd.DataFrame) -> str:
    """The page's answer in Markdown, from :func:`agreement_summary`: what held in every run, and
    how far T moved."""
    def all_equal(k):
        return bool((summary[f"{k}_n"] == summary[f"{k}_of"]).all())
    held = [what for k, what in (("P", "every accuracy P, to the last digit"), ("knees", "every Knee of Table 1"),
                                 ("optima_noise", "every EXP-3 optimum (equal, or within the noise of its own run)"))
            if all_equal(k)]
    missed = [what for k, what in (("P", "P"), ("knees", "the Knees"), ("optima_noise", "the EXP-3 optima"))
              if not all_equal(k)]
    picks = f"{int(summary['picks_n'].sum())} of {int(summary['picks_of'].sum())}"
    beyond = int((summary["T_max_abs_pct"] > T_AGREEMENT_PCT).sum())
    return (f"**Yes, for what the conclusions rest on.** In each of the {len(summary)} from-scratch reruns, "
            + "; ".join(held) + " came back as in the committed results"
            + (f" (not so: {', '.join(missed)})" if missed else "") + ". "
            f"The EXP-3 searches picked the same configuration in {picks} searches: each search ranks its "
            f"candidates by the index, which weighs measured latency, so a small move of T can change a pick. "
            f"**The latency T moves**: by a median of {summary['T_median_abs_pct'].min():.2f}% to "
            f"{summary['T_median_abs_pct'].max():.2f}% per run, up to {summary['T_max_abs_pct'].max():.1f}% in single "
            f"configurations; {beyond} of {len(summary)} runs have configurations beyond the {T_AGREEMENT_PCT:g}% bar "
            f"that the reruns were held to.")


def run_detail(base: tuple[pd.DataFrame, pd.DataFrame], other: tuple[pd.DataFrame, pd.DataFrame],
               source: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One rerun against ``base`` for the run log: T agreement per experiment split by whether a
    block was timed again (:func:`agreement_by_retry`), and lines of Markdown naming the timing
    blocks beyond ``T_AGREEMENT_PCT`` and the searches that picked otherwise. ``source`` maps a
    data set to the name the book uses."""
    source = source or {}
    tables, lines = [], []
    block = ["model", "dataset", "seed", "placement"]
    for name, p in both_experiments(base, other).items():
        tables.append(agreement_by_retry(p).assign(experiment=name))
        off = p[p["T_diff_pct"].abs() > T_AGREEMENT_PCT]
        where = [k for k in block if k in off]
        for _, r in off.groupby(where)["T_diff_pct"].agg(["size", "min", "max"]).reset_index().iterrows():
            label = " ".join(source.get(r[k], r[k]) if k == "dataset" else f"seed {r[k]}" if k == "seed" else str(r[k])
                             for k in where)
            lines.append(f"{name}, {label}: {r['size']} configuration(s) beyond ±{T_AGREEMENT_PCT:g}%, "
                         f"{r['min']:+.2f}% to {r['max']:+.2f}%")
    picks = search_picks(base[1], other[1])
    for _, r in picks[~picks["same"]].iterrows():
        seed = "" if r["search_seed"] < 0 else f", search seed {r['search_seed']:.0f}"
        lines.append(f"EXP-3 {r['search']} search, {source.get(r['dataset'], r['dataset'])}, model seed {r['seed']}{seed}: "
                     f"picked {r['pick_b']} (committed results: {r['pick_a']})")
    widths = ci_width_pct(pd.concat(other))
    lines.append(f"95% CI of T at most {CI_WIDTH_PCT:g}% wide in {int((widths <= CI_WIDTH_PCT).sum())} of "
                 f"{len(widths)} records (largest {widths.max():.2f}%)")
    table = pd.concat(tables, ignore_index=True)
    return table[["experiment"] + [c for c in table if c != "experiment"]].round(2), lines


# --- Predicted against observed: each conclusion's stability against what another run showed ---

CONCLUSIONS = ("Knee", "Table 4 order", "EXP-3 optimum", "search finds the optimum")
SAME, WITHIN, DEFECT, ABSENT = ("same", "changed, as its stability allowed",
                                "changed although called robust: a defect of the uncertainty model",
                                "not in the other run")
_WHERE = ["conclusion", "model", "dataset", "placement", "detail"]


def _condition_name(model, dataset, placement=None) -> str:
    return f"{model} / {dataset}" + (f", {placement}" if placement else "")


def _search_detail(search, seed) -> str:
    return str(search) + ("" if seed is None or pd.isna(seed) else f", search seed {int(seed)}")


def _search_answer(rank) -> str:
    return "the optimum" if rank == 1 else "not the optimum"


def predictions(base: tuple[pd.DataFrame, pd.DataFrame],
                config: stability.StabilityConfig = stability.StabilityConfig()) -> pd.DataFrame:
    """Every conclusion of one run (``base``: (sweep, EXP-3) records as :func:`load_run`), its
    answer and its predicted stability (:mod:`quide.analysis.stability`): every Knee and every
    Table 4 order (I, I', ACP, ALS) of each condition and placement, EXP-3's exhaustive optimum
    under the paper's and the true C, and whether each search's pick is the optimum (paper's C).
    One row each: ``conclusion``, ``model``, ``dataset``, ``placement``, ``detail``, ``answer``
    (compared between runs), ``shown`` (the answer for reading), ``holds_in`` (the share of draws
    that give it), ``predicted`` (the verdict: holds robustly, within noise, fails robustly) and
    ``sample`` (where the draws took trained models from: ``Stability.sample``)."""
    sweep, mp = base
    rows = []

    def add(conclusion, model, dataset, placement, detail, answer, shown, share, st):
        rows.append({"conclusion": conclusion, "model": model, "dataset": dataset, "placement": placement,
                     "detail": detail, "answer": answer, "shown": shown, "holds_in": float(share),
                     "predicted": stability.verdict(True, float(share)), "sample": st.sample})
    if len(sweep):
        drawn = stability.sweep_draws(sweep, config)
        for _, r in stability.knee_stability(sweep, config, drawn).iterrows():
            add("Knee", r["model"], r["dataset"], r["placement"], "", str(r["knee"]), str(r["knee"]), r["frequency"],
                r["stability"])
        for _, r in stability.ranking_stability(sweep, config, drawn).iterrows():
            add("Table 4 order", r["model"], r["dataset"], r["placement"], r["metric"], str(r["order"]),
                str(r["order"]), r["frequency"], r["stability"])
    if len(mp):
        lands = stability.landscape_draws(mp, config)
        for _, r in stability.optimum_stability(mp, config, lands).iterrows():
            add("EXP-3 optimum", r["model"], r["dataset"], None, f"{r['fitness C']} C", str(r["optimum"]),
                str(r["optimum"]), r["frequency"], r["stability"])
        for _, r in stability.search_rank_stability(mp, config, draws=lands).iterrows():
            first = r["rank"] == 1
            add("search finds the optimum", r["model"], r["dataset"], None, _search_detail(r["search"], r["seed"]),
                _search_answer(r["rank"]), f"{_search_answer(r['rank'])} (rank {r['rank']} of {r['n_configs']})",
                r["share_rank_1"] if first else 1 - r["share_rank_1"], r["stability"])
    return pd.DataFrame(rows, columns=[*_WHERE, "answer", "shown", "holds_in", "predicted", "sample"])


def answers(run: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """The same conclusions as :func:`predictions`, read off another run's records as the book
    reads them (Table 1, ``aggregate.orders``, ``mixed_precision_tables.optima`` and ``table2``):
    one row each with ``answer`` and ``shown``."""
    from .mixed_precision_tables import table2
    sweep, mp = run
    # Table 1 reads these alone; a narrow frame makes it several times faster on a run's wide records
    sweep = sweep[[c for c in (*aggregate.CONDITION, "seed", "bits", "bits_label", "C_paper", "C_true", "p_thresh",
                               "num_classes", "P", "T_ms", "I", "I_gated", "ACP", "ALS", "run_params", "source_file")
                   if c in sweep]]
    rows = []

    def add(conclusion, model, dataset, placement, detail, answer, shown=None):
        rows.append({"conclusion": conclusion, "model": model, "dataset": dataset, "placement": placement,
                     "detail": detail, "answer": answer, "shown": answer if shown is None else shown})
    if len(sweep):
        t = aggregate.table1(sweep)
        for (model, dataset, placement), g in t.groupby(["model", "dataset", "placement"], sort=False):
            knee = g.loc[g["knee"], "bits"]
            add("Knee", model, dataset, placement, "", str(int(knee.iloc[0]) if len(knee) and str(knee.iloc[0]).isdigit()
                                                          else (knee.iloc[0] if len(knee) else None)))
        for _, r in aggregate.orders(sweep).iterrows():
            for name in aggregate.METRICS.values():
                add("Table 4 order", r["model"], r["dataset"], r["placement"], name, str(list(r[name])))
    if len(mp):
        for _, r in optima(mp).iterrows():
            add("EXP-3 optimum", r["model"], r["dataset"], None, f"{r['fitness C']} C", str(r["bits"]))
        searches = table2(mp)
        for _, r in searches[~searches["search"].isin(["reference", "uniform 4-bit"])].iterrows():
            add("search finds the optimum", r["model"], r["dataset"], None, _search_detail(r["search"], r["seed"]),
                _search_answer(r["rank"]), f"{_search_answer(r['rank'])} (rank {r['rank']} of {r['n_configs']})")
    return pd.DataFrame(rows, columns=[*_WHERE, "answer", "shown"])


def predicted_vs_observed(predicted: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Each conclusion of :func:`predictions` beside what another run showed (:func:`answers`):
    ``other`` (its answer, for reading), ``changed`` and ``outcome``: ``SAME``; ``WITHIN`` where it
    changed and was not called robust; ``DEFECT`` where it was called robust (holds in at least
    ``stability.ROBUST`` of the draws) and changed, which the uncertainty model must not allow;
    ``ABSENT`` where the other run lacks it."""
    keyed = [c.fillna("") if c.name in ("placement", "detail") else c for _, c in predicted[_WHERE].items()]
    left = predicted.assign(**{c.name: c for c in keyed})
    right = other.assign(**{c: other[c].fillna("") for c in ("placement", "detail")})
    out = left.merge(right.rename(columns={"answer": "other_answer", "shown": "other"}), on=_WHERE, how="left")
    out["changed"] = out["other_answer"].notna() & (out["other_answer"] != out["answer"])
    robust = out["predicted"] == stability.HOLDS
    out["outcome"] = np.select([out["other_answer"].isna(), ~out["changed"], robust], [ABSENT, SAME, DEFECT], WITHIN)
    return out.drop(columns="other_answer")


def calibration(predicted: pd.DataFrame, others: dict[str, tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """Per other run: conclusions compared, those called robust, those that changed, and the
    defects (called robust and changed)."""
    rows = []
    for name, run in others.items():
        t = predicted_vs_observed(predicted, answers(run))
        compared = t[t["outcome"] != ABSENT]
        rows.append({"run": name, "conclusions": len(compared),
                     "called robust": int((compared["predicted"] == stability.HOLDS).sum()),
                     "changed": int(compared["changed"].sum()),
                     "changed although called robust": int((compared["outcome"] == DEFECT).sum())})
    return pd.DataFrame(rows)


def other_gpu(manifest: list) -> list:
    """The kept reruns (``quide.analysis.runs.Run``) made on another GPU model than the committed results."""
    from . import runs
    gpu = runs.canonical(manifest).gpu
    return [r for r in runs.reruns(manifest) if r.gpu != gpu]


def _bounds(intervals) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of each 95% interval of T; NaN for a record without one."""
    pairs = [c if isinstance(c, (list, tuple, np.ndarray)) and len(c) == 2 else (np.nan, np.nan) for c in intervals]
    return np.array([c[0] for c in pairs], float), np.array([c[1] for c in pairs], float)


def _log_var(intervals, T) -> np.ndarray:
    """The variance of log T that each 95% interval states: ((hi - lo) / (2 z95 T))^2."""
    lo, hi = _bounds(intervals)
    return ((hi - lo) / (2 * stability.Z95 * np.asarray(T, float))) ** 2


def t_coverage(base: tuple[pd.DataFrame, pd.DataFrame], others: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
               spread=None) -> pd.DataFrame:
    """Per other run and experiment: configurations whose T lies within the committed record's
    95% interval, and within the 95% range another machine's T has under the machine spread
    (``spread``: :class:`quide.analysis.machine.MachineSpread`; default the committed reruns'):
    ``|log(T_b / T_a)| <= 1.96 sqrt(2 sigma_block^2 + 2 sigma_timing^2 + both intervals' variances)``."""
    from . import machine
    spread = spread or machine.committed()
    rows = []
    for name, other in others.items():
        runs_by_experiment = {"EXP-1/2 sweeps": (base[0], other[0], SWEEP_KEYS),
                              "EXP-3 exhaustive": (_exhaustive(base[1]), _exhaustive(other[1]), EXHAUSTIVE_KEYS)}
        for experiment, (a, b, keys) in runs_by_experiment.items():
            cols = keys + ["T_ms", "T_ci_ms", "experiment", "prov_device"]
            a, b = (r.reindex(columns=cols) for r in (a, b))
            both = a.merge(b, on=keys, suffixes=("_a", "_b"), validate="one_to_one")
            made = list(zip(both["experiment_a"], both["prov_device_a"]))
            sigmas = {k: spread.sigmas(*k)[:2] for k in set(made)}
            sig = np.array([sigmas[k] for k in made], float).reshape(-1, 2)
            var = _log_var(both["T_ci_ms_a"], both["T_ms_a"]) + _log_var(both["T_ci_ms_b"], both["T_ms_b"])
            half = stability.Z95 * np.sqrt(2 * (sig ** 2).sum(axis=1) + var)
            lo, hi = _bounds(both["T_ci_ms_a"])
            rows.append({"run": name, "experiment": experiment, "configurations": len(both),
                         "within the record's 95% CI": int(((both["T_ms_b"] >= lo) & (both["T_ms_b"] <= hi)).sum()),
                         "within the 95% range with the machine spread":
                             int((np.abs(np.log(both["T_ms_b"] / both["T_ms_a"])) <= half).sum())})
    return pd.DataFrame(rows)
