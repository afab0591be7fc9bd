"""The figures of the notebooks and of the book (matplotlib); each function returns the Figure.

One run or one condition (the notebooks): a :func:`quide.analysis.aggregate.sweep_table` frame, or one
condition's slice of a :func:`quide.analysis.aggregate.table1` frame (error bars: std over seeds, if any).
Across all conditions (the book's redrawings of the paper's figures): a table1 frame (seed means,
std as error bars) or raw records; the book's captions say which records feed each one."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import conditions
from .index import pareto_front

METRIC_LABELS = {"I": "I", "I_gated": "I'", "ACP": "ACP", "ALS": "ALS"}
# One colour per quantity in every figure: I, I', the Knees, chance.
COLORS = {"I": "C0", "I_gated": "C1", "our_knee": "k", "paper_knee": "C3", "chance": "0.4"}


def display_name(model: str, dataset: str, source: str | None = None) -> str:
    """A condition as the book names it: the model's name from :mod:`quide.analysis.conditions` and
    the data as the records label it (``source``, e.g. "CIFAR-10 (JPEG stand-in)") or as the registry
    does: "ResNet-18, CIFAR-10 (JPEG stand-in)", never the code ids."""
    model_name, _, data_name = conditions.label(model, dataset).partition(" / ")
    return f"{model_name}, {source or data_name}"


# --- one run or one condition (the notebooks) -------------------------------------------------

def _col(df, name):
    """``name_mean``/``name_std`` of a table1 frame, or the plain column of a sweep table."""
    if f"{name}_mean" in df:
        return df[f"{name}_mean"].to_numpy(float), df[f"{name}_std"].to_numpy(float)
    return df[name].to_numpy(float), np.full(len(df), np.nan)


def draw_index_vs_gated(ax, df) -> None:
    """I and I' across the bit-widths of ``df`` on ``ax`` (error bars: std over seeds, if any)."""
    x = np.arange(len(df))
    for name, label, marker in (("I", "I (raw)", "o"), ("I_gated", "I' (gated)", "s")):
        mean, std = _col(df, name)
        ax.errorbar(x, mean, yerr=np.nan_to_num(std), marker=marker, capsize=3, label=label,
                    color=COLORS[name])
    ax.set_xticks(x, [str(b) for b in df["bits"]])
    ax.set_xlabel("bit-width (bits)")
    ax.set_ylabel("index (dimensionless)")
    ax.grid(alpha=0.3)


def mark_knees(ax, df, paper_knee) -> None:
    """Our Knee (the row of ``df`` marked ``knee``) and the paper's (a bit-width, or None where the
    paper states none) as vertical lines at their bit-widths on an axis drawn by
    :func:`draw_index_vs_gated`."""
    bits = [str(b) for b in df["bits"]]
    if "knee" in df and df["knee"].astype(bool).any():
        ours = bits.index(str(df.loc[df["knee"].astype(bool), "bits"].iloc[0]))
        ax.axvline(ours, color=COLORS["our_knee"], ls="--", lw=1.2, label="our Knee")
    if paper_knee is not None and str(paper_knee) in bits:
        ax.axvline(bits.index(str(paper_knee)), color=COLORS["paper_knee"], ls=":", lw=2, label="paper's Knee")


def draw_accuracy_latency(ax, df, t_label: str = "T (ms per batch of 64)") -> None:
    """P (percent, left axis of ``ax``) and T (a twin right axis) across the bit-widths of ``df``."""
    x = np.arange(len(df))
    p_mean, p_std = _col(df, "P")
    t_mean, t_std = _col(df, "T_ms")
    ax.errorbar(x, 100 * p_mean, yerr=100 * np.nan_to_num(p_std), marker="o", capsize=3, color="C0")
    ax.set_ylabel("P (% top-1)", color="C0")
    ax2 = ax.twinx()
    ax2.errorbar(x, t_mean, yerr=np.nan_to_num(t_std), marker="s", capsize=3, color="C3")
    ax2.set_ylabel(t_label, color="C3")
    ax.set_xticks(x, [str(b) for b in df["bits"]])
    ax.set_xlabel("bit-width")
    ax.grid(alpha=0.3)


def index_vs_gated(df, title: str = ""):
    """I and I' across bit-widths (error bars: std over seeds where there are several)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    draw_index_vs_gated(ax, df)
    ax.set_ylabel("index")
    ax.set_title(title or "I vs I' across bit-widths")
    ax.legend()
    fig.tight_layout()
    return fig


def accuracy_and_latency(df, title: str = "", t_label: str = "T (ms per batch of 64)"):
    """P (percent) and T across bit-widths on twin axes."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    draw_accuracy_latency(ax, df, t_label)
    ax.set_title(title or "Accuracy and latency across bit-widths")
    fig.tight_layout()
    return fig


def search_landscape(land, picks, title: str = "", ax=None):
    """I' of every configuration, best first (``land``: columns bits, I_gated, as
    ``mixed_precision.landscape``), with the configuration each search returned marked (``picks``:
    columns search, bits, I_gated, as ``mixed_precision.summary``). Draws on ``ax`` if given."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5)) if ax is None else (ax.figure, ax)
    ax.plot(np.arange(1, len(land) + 1), land["I_gated"].to_numpy(float), color="0.5", lw=1,
            label="all configurations")
    rank = {b: i + 1 for i, b in enumerate(land["bits"])}
    for k, (method, group) in enumerate(picks.groupby("search", sort=False)):
        xs = [rank[b] for b in group["bits"]]
        ax.scatter(xs, group["I_gated"], marker="osD^v"[k % 5], s=40, zorder=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("rank among all configurations (1 = best)")
    ax.set_ylabel("I' (C = 32/mean bits)")
    ax.set_title(title or "Mixed-precision landscape")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def ga_history(results, title: str = ""):
    """Best fitness per generation of GA runs (``quide.analysis.search.SearchResult``)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for r in results:
        ax.plot(np.arange(1, len(r.history) + 1), r.history, marker=".", label=f"{r.method}, seed {r.seed}")
    ax.set_xlabel("generation")
    ax.set_ylabel("best fitness so far")
    ax.set_title(title or "GA convergence")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --- every condition (the book's figures) ----------------------------------------------------

def _conditions(table):
    return list(table.groupby(["model", "data_source"], sort=False))


def _grid(n, width=4.8, height=3.4):
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _title(g):
    """A panel's title: the display name of the condition of the rows ``g``."""
    return display_name(g["model"].iloc[0], g["dataset"].iloc[0], g["data_source"].iloc[0])


def index_vs_gated_all(table):
    """I and I' across bit-widths, one panel per condition, with our Knee (peak mean I') and the
    paper's Knee (its reported value, where it states one for the condition) marked."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, (_, g) in zip(axes, conds):
        draw_index_vs_gated(ax, g)
        spec = conditions.CONDITIONS.get((g["model"].iloc[0], g["dataset"].iloc[0]))
        mark_knees(ax, g, spec.reported.get("knee") if spec else None)
        ax.set_title(_title(g), fontsize=9)
    handles = {}
    for ax in axes:   # one legend for the figure, every entry once
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8,
               bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def accuracy_latency_all(table):
    """P (percent, left axis) and simulated T (ms, right axis) across bit-widths per condition."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, (_, g) in zip(axes, conds):
        draw_accuracy_latency(ax, g, "T (ms per batch of 64, simulated)")
        ax.set_title(_title(g), fontsize=9)
    fig.tight_layout()
    return fig


def pareto_frontier(points: pd.DataFrame, title: str = ""):
    """Compression vs accuracy of configurations (columns C_paper, P, bits_label, kind); the
    non-dominated ones in (C up, P up) joined by a line."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for kind, g in points.groupby("kind", sort=False):
        ax.scatter(g["C_paper"], 100 * g["P"], s=18 if kind != "uniform" else 50, alpha=0.6 if kind != "uniform" else 1,
                   label=kind, zorder=3 if kind == "uniform" else 2)
    mask = pareto_front(points["C_paper"].to_numpy(float), points["P"].to_numpy(float), np.ones(len(points)))
    front = points[mask].sort_values("C_paper")
    ax.step(front["C_paper"], 100 * front["P"], where="post", color="k", lw=1, label="Pareto frontier")
    for _, r in front.iterrows():
        ax.annotate(r["bits_label"], (r["C_paper"], 100 * r["P"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("C (32 / mean bits)")
    ax.set_ylabel("P (%)")
    ax.set_title(title or "Pareto frontier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_benchmark(table):
    """I, I', ACP and ALS across bit-widths, each scaled to its maximum within the condition."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, (_, g) in zip(axes, conds):
        x = np.arange(len(g))
        for k, (col, label) in enumerate(METRIC_LABELS.items()):
            v = g[f"{col}_mean"].to_numpy(float)
            ax.bar(x + (k - 1.5) * 0.2, v / v.max() if v.max() > 0 else v, width=0.2, label=label)
        ax.set_xticks(x, g["bits"].astype(str))
        ax.set_xlabel("bit-width (bits)")
        ax.set_ylabel("metric / its max (dimensionless)")
        ax.set_title(_title(g), fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def delta_ablation(knees: pd.DataFrame):
    """Knee bit-width as delta varies (``aggregate.knee_vs_delta``), one line (and colour) per
    condition; each condition's delta (the paper's; MNIST's for the conditions the paper does not
    have) is marked on its line by a vertical dotted line and a ring at the Knee it gives."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    order = [32, 16, 8, 4, 2]
    for k, ((model, dataset, source), g) in enumerate(knees.groupby(["model", "dataset", "data_source"], sort=False)):
        y = np.array([order.index(b) if b is not None and not pd.isna(b) else np.nan for b in g["knee"]], float)
        y += 0.06 * k
        color = f"C{k}"
        ax.step(g["delta"], y, where="post", color=color, label=display_name(model, dataset, source))
        spec = conditions.CONDITIONS.get((model, dataset))
        if spec is not None and spec.delta is not None:
            at = int(np.argmin(np.abs(g["delta"].to_numpy(float) - spec.delta)))
            ax.axvline(spec.delta, color=color, ls=":", lw=1)
            ax.plot(spec.delta, y[at], "o", mfc="none", mec=color, ms=9, mew=1.5)
    ax.plot([], [], "o", mfc="none", mec="0.3", ms=9, ls=":", color="0.3",
            label="the condition's delta (the paper's)")
    ax.set_yticks(range(len(order)), [str(b) for b in order])
    ax.set_xlabel("delta (tolerated accuracy drop, fraction of 1)")
    ax.set_ylabel("Knee (bits)")
    ax.set_title("Where the Knee lies as delta varies")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def ablation_drops(table: pd.DataFrame):
    """The ablation of the 4-bit gap (``quide.analysis.ablation.summary``), one panel per condition:
    each choice's seed-mean 4-bit drop d4 (bar, error bar: std over seeds), its d4 rule's bound
    (delta + d8)/2 (black tick: a bar past its tick puts the Knee at 8 bits, colour: the Knee by the
    rule) and the paper's 4-bit drop (dashed red line)."""
    conds = list(table.groupby(["model", "data_source"], sort=False))
    fig, axes = plt.subplots(1, len(conds), figsize=(6.4 * len(conds), 0.34 * table.groupby("model").size().max() + 1.6),
                             squeeze=False)
    for ax, (_, g) in zip(axes[0], conds):
        y = np.arange(len(g))[::-1]
        colors = ["C3" if k == 8 else "C0" for k in g["knee_rule"]]
        ax.barh(y, g["d4"], xerr=np.nan_to_num(g["d4_std"].to_numpy(float)), color=colors, alpha=0.8,
                capsize=2, height=0.65)
        ax.scatter(g["bound"], y, marker="|", s=260, color="k", linewidths=2, zorder=3)
        target = g["paper_d4"].iloc[0]
        if target is not None and not pd.isna(target):
            ax.axvline(target, color="C3", ls="--", lw=1.5)
        ax.set_yticks(y, g["label"], fontsize=8)
        ax.set_xlabel("4-bit drop d4 from FP32 (points)")
        ax.set_title(_title(g), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color="C0", alpha=0.8), plt.Rectangle((0, 0), 1, 1, color="C3", alpha=0.8),
               plt.Line2D([], [], marker="|", ls="", color="k", ms=14, mew=2), plt.Line2D([], [], color="C3", ls="--")]
    fig.legend(handles, ["d4: Knee at 4 bits", "d4: Knee at 8 bits", "the d4 rule's bound (delta + d8)/2",
                         "the paper's 4-bit drop (its reported P)"], loc="lower center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def llm_accuracy_vs_bits(records: pd.DataFrame, wilson):
    """MMLU accuracy P (percent) against bit-width, one line per n-shot, with each point's 95%
    interval from ``wilson(k, n)`` (:func:`quide.analysis.mmlu_stats.wilson_interval`; k = questions
    right, n = questions) and the chance level 1/K as a horizontal line."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    order = sorted({int(b) for b in records["bits"]}, reverse=True)
    for k, (shot, g) in enumerate(records.groupby("n_shot", sort=True)):
        g = g.assign(_x=[order.index(int(b)) for b in g["bits"]]).sort_values("_x")
        n = g["n_questions"].astype(int).to_numpy()
        p = g["P"].to_numpy(float)
        lo, hi = np.array([wilson(int(round(pi * ni)), int(ni)) for pi, ni in zip(p, n)]).T
        ax.errorbar(g["_x"] + 0.08 * k, 100 * p, yerr=[100 * (p - lo), 100 * (hi - p)], marker="o", capsize=3,
                    color=f"C{k}", label=f"{shot}-shot (95% Wilson interval)")
    chance = 100.0 / float(records["num_classes"].iloc[0])
    ax.axhline(chance, color=COLORS["chance"], ls="--", lw=1.2, label=f"chance ({chance:.0f}%)")
    ax.set_xticks(range(len(order)), [str(b) for b in order])
    ax.set_xlabel("bit-width (bits)")
    ax.set_ylabel("P (% of MMLU test questions right)")
    ax.set_title("Accuracy against bit-width")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def llm_answer_shares(shares: pd.DataFrame, gold: dict, letters: str = "ABCD"):
    """The share of questions answered A, B, C and D (percent, stacked bars), one bar per bit-width
    and one panel per n-shot, with the gold answers' shares as the last bar of each panel.
    ``shares``: columns n_shot, bits and one per letter (fractions); ``gold``: {letter: fraction}."""
    shots = sorted(shares["n_shot"].unique())
    fig, axes = plt.subplots(1, len(shots), figsize=(6.4, 0.45 * (shares.groupby("n_shot").size().max() + 1) + 1.4),
                             sharex=True, squeeze=False)
    for ax, shot in zip(axes[0], shots):
        g = shares[shares["n_shot"] == shot].sort_values("bits", ascending=False)
        labels = [f"{int(b)}-bit" for b in g["bits"]] + ["gold"]
        values = np.vstack([g[list(letters)].to_numpy(float), [[gold[L] for L in letters]]]) * 100
        left = np.zeros(len(labels))
        y = np.arange(len(labels))[::-1]
        for k, letter in enumerate(letters):
            ax.barh(y, values[:, k], left=left, color=f"C{k}", label=letter, height=0.7)
            left += values[:, k]
        ax.set_yticks(y, labels)
        ax.set_title(f"{shot}-shot", fontsize=9)
        ax.set_xlabel("% of questions")
        ax.set_xlim(0, 100)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, title="answer", fontsize=8, ncol=len(letters), loc="upper center", frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    return fig


def accuracy_compression_boundary(table):
    """P against C per condition with the accuracy gate Pthresh: configurations below the line get
    I' = 0 whatever their compression."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, (_, g) in zip(axes, conds):
        ax.errorbar(g["C_paper"], 100 * g["P_mean"], yerr=100 * g["P_std"].fillna(0), marker="o", capsize=3)
        for c, p, b in zip(g["C_paper"], g["P_mean"], g["bits"]):
            ax.annotate(str(b), (c, 100 * p), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(100 * g["p_thresh"].mean(), color="C3", ls="--", label="Pthresh")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("C (32 / bits)")
        ax.set_ylabel("P (% top-1)")
        ax.set_title(_title(g), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def radar(table):
    """Per condition, each bit-width's profile over P, C, speed (1/T), I and I', each axis scaled
    to its maximum within the condition."""
    axes_names = [("P_mean", "P"), ("C_paper", "C"), ("speed", "1/T"), ("I_mean", "I"), ("I_gated_mean", "I'")]
    conds = _conditions(table)
    cols = min(len(conds), 2)
    rows = int(np.ceil(len(conds) / cols))
    fig = plt.figure(figsize=(3.6 * cols, 3.4 * rows))
    angles = np.linspace(0, 2 * np.pi, len(axes_names), endpoint=False)
    for i, (_, g) in enumerate(conds):
        ax = fig.add_subplot(rows, cols, i + 1, projection="polar")
        g = g.assign(speed=1.0 / g["T_ms_mean"])
        for _, r in g.iterrows():
            v = np.array([r[c] / g[c].max() if g[c].max() > 0 else 0 for c, _ in axes_names])
            ax.plot(np.r_[angles, angles[0]], np.r_[v, v[0]], label=str(r["bits"]))
        ax.set_xticks(angles, [n for _, n in axes_names], fontsize=8)
        ax.set_yticklabels([])
        ax.set_title(_title(g), fontsize=8)
    fig.axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(-0.35, -0.25), title="bits")
    fig.tight_layout()
    return fig


def correlation_heatmap(records: pd.DataFrame):
    """Spearman rank correlation between P, C, T and the four metrics over all given records."""
    cols = {"P": "P", "C_paper": "C", "T_ms": "T", "I": "I", "I_gated": "I'", "ACP": "ACP", "ALS": "ALS"}
    corr = records[list(cols)].rename(columns=cols).corr(method="spearman")
    fig, ax = plt.subplots(figsize=(5, 4.2))
    im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(cols)), corr.columns)
    ax.set_yticks(range(len(cols)), corr.index)
    for i in range(len(cols)):
        for j in range(len(cols)):
            ax.text(j, i, f"{corr.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Spearman correlation between metrics")
    fig.tight_layout()
    return fig


def pthresh_gates(table, gates: pd.DataFrame):
    """Seed-mean P (percent) against bit-width per condition, with one horizontal line per rule at
    its gate (``quide.analysis.pthresh_study.our_table``: columns condition, rule, gate); points below a
    line get I' = 0 under that rule."""
    conds = list(gates["condition"].drop_duplicates())
    fig, axes = _grid(len(conds))
    order = [32, 16, 8, 4, 2]
    for ax, cond in zip(axes, conds):
        g = table[table["condition"] == cond]
        x = [order.index(int(b)) for b in g["bits"]]
        ax.errorbar(x, 100 * g["P_mean"], yerr=100 * g["P_std"].fillna(0), color="k", marker="o", lw=1.5,
                    capsize=3, label="P (seed mean)", zorder=3)
        for i, r in enumerate(gates[(gates["condition"] == cond) & gates["gate"].notna()].itertuples()):
            ax.axhline(100 * r.gate, color=f"C{i}", lw=1, ls="--" if r.rule.startswith("delta") else "-",
                       label=f"{r.rule} (Knee {r.knee})")
        ax.set_xticks(range(len(order)), [str(b) for b in order])
        ax.set_xlabel("bits")
        ax.set_ylabel("P (%)")
        ax.set_title(cond, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig
