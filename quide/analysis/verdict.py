"""The verdict on the paper's headline claims, computed from the records: for each claim, one
cell per condition it speaks of (holds / fails / partly / untestable here, with one line of why),
the claim's verdict over its cells, and, where it fails, what would have had to be true for the
paper's result to appear.

Cell rules: a claim about a Knee, a ranking or an optimum takes its verdict from
:mod:`quide.analysis.stability` (holds robustly: holds; fails robustly: fails; within noise:
partly) and states the share of draws; every other cell is the scorecard's rule for that quantity.
A condition the paper ran and we cannot is "untestable here", with the reason. A claim holds where
every cell we could test holds, fails where every one fails, and is partly true otherwise; the
Knee's claim is that it *moves*, so it fails where our Knee is the same on every condition run.

The d4 rule (:func:`d4_rule`): fake quantization runs one graph at 8, 4 and 2 bits, so T(8) = T(4)
and between 4 and 8 bits I' is decided by accuracy alone: with d_b the drop from FP32 in points and
g = P_FP - Pthresh (delta, where the delta gate binds), 4 beats 8 under I' exactly when
d4 < (g + d8) / 2, since C(4) = 2 C(8).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import aggregate, conditions
from . import stability as qst
from .index import ranking
from .knee_rule import D4Rule, d4_rule, d4_rule_of_table, overturn_claim, paper_d4_rule  # noqa: F401 (part of this API)
from .paper import CLAIMS as STATED, reported
from .scorecard import COLLAPSE_POINTS, QUANTITY, log2_denominator_ratio, scorecard, scorecard_row

HOLDS, FAILS, PARTLY, UNTESTABLE = "holds", "fails", "partly", "untestable here"
VERDICTS = (HOLDS, PARTLY, FAILS, UNTESTABLE)
# Okabe-Ito colours (safe for the common colour-vision deficiencies), with a symbol each so that
# no verdict is told by colour alone.
COLOURS = {HOLDS: "#0072B2", PARTLY: "#E69F00", FAILS: "#D55E00", UNTESTABLE: "#BBBBBB"}
SYMBOLS = {HOLDS: "✓", PARTLY: "~", FAILS: "✗", UNTESTABLE: "?"}
FROM_STABILITY = {qst.HOLDS: HOLDS, qst.WITHIN_NOISE: PARTLY, qst.FAILS: FAILS}

# The grid's columns: the paper's conditions, in its order, with a short name each.
GRID = {("simplecnn", "mnist"): "MNIST", ("simplecnn", "cifar10"): "CIFAR-10",
        ("simplecnn", "cifar100"): "CIFAR-100", ("resnet18_cifar", "cifar10"): "ResNet-18 CIFAR-10",
        ("resnet18_imagenet", "imagenet"): "ResNet-18 ImageNet", ("llama3_8b_instruct", "mmlu"): "Llama-3-8B MMLU"}
CNNS = tuple(c for c in GRID if c[0] != "llama3_8b_instruct")
# The claims' short names (the figure's rows), by key.
SHORT = {"knee": "Knee moves 4 → 8 bits", "orders": "I' overturns I at 4 vs 8", "drop_4bit": "large 4-bit drop",
         "latency": "latency is secondary", "ga": "GA beats uniform", "acp_als": "ACP ~ I, ALS high precision",
         "gate": "I' gates collapse to 0", "collapse": "2-bit at chance", "fp16": "16-bit lossless",
         "variance": "std < 0.8 pts at ≥ 8 bits", "llm": "LLM: I' peaks at 4 bits"}


# --- claims ------------------------------------------------------------------------------------

@dataclass
class Cell:
    verdict: str
    why: str


@dataclass
class Claim:
    """One headline claim: its words, where the paper makes it, the scorecard group with its
    evidence, a cell per condition it speaks of, its verdict and why, and (failing) what would
    have had to be true."""
    key: str
    claim: str
    where: str
    evidence: str
    cells: dict = field(default_factory=dict)
    verdict: str = UNTESTABLE
    why: str = ""
    needed: str = ""


@dataclass
class _Inputs:
    """What the claims read: per condition run (and reported by the paper), its Table 1 slice and records."""
    tables: dict
    records: dict
    mps: pd.DataFrame | None
    llm: pd.DataFrame | None
    config: qst.StabilityConfig
    knees: pd.DataFrame


def _inputs(sweep, mps, llm, config) -> _Inputs:
    claimed = [not (conditions.CONDITIONS.get((m, d)) and conditions.CONDITIONS[(m, d)].control_of)
               for m, d in zip(sweep["model"], sweep["dataset"])]
    records = sweep[(sweep["placement"] == "graph") & np.array(claimed, bool)]
    t1 = aggregate.table1(records)
    t1["bits"] = t1["bits"].astype(int)
    tables, recs = {}, {}
    for (m, d), t in t1.groupby(["model", "dataset"], sort=False):
        if (m, d) in GRID:
            tables[(m, d)] = t
            recs[(m, d)] = records[(records["model"] == m) & (records["dataset"] == d)]
    knees = qst.knee_stability(records, config) if len(records) else pd.DataFrame()
    return _Inputs(tables, recs, mps, llm, config, knees)


def _untestable(cond) -> Cell:
    return Cell(UNTESTABLE, conditions.CONDITIONS[cond].not_here or "no records of ours for this condition")


def _stable_cell(st: qst.ClaimStability, text: str) -> Cell:
    return Cell(FROM_STABILITY[st.verdict], f"{text} ({st.text()})")


def _orders_of(t: pd.DataFrame, column: str) -> list:
    return ranking([int(b) for b in t["bits"]], t[column].to_numpy(float))


def _viable(t: pd.DataFrame) -> set:
    return {int(b) for b, v in zip(t["bits"], t["I_gated_mean"]) if v > 0}


def _knee(inp: _Inputs) -> Claim:
    c = Claim("knee", "The Pareto Knee moves from 4 to 8 bits as the task gets harder", "Abstract; Sec. 5, Claim 4",
              "knee")
    ours, needed = {}, []
    for cond in GRID:
        paper_knee = reported(*cond).get("knee")
        if cond not in inp.tables:
            c.cells[cond] = _untestable(cond)
            continue
        t = inp.tables[cond]
        st = inp.knees[(inp.knees["model"] == cond[0]) & (inp.knees["dataset"] == cond[1])]["stability"].iloc[0]
        ours[cond] = st.observed
        verdict = FROM_STABILITY[qst.verdict(st.observed == paper_knee, st.share(paper_knee))]
        rule = d4_rule_of_table(t)
        c.cells[cond] = Cell(verdict, f"paper {paper_knee}, ours {st.observed} ({st.text()}); {rule.text()}")
        if verdict != HOLDS and paper_knee == 8:
            needed.append(f"a 4-bit drop above {rule.bound:.1f} pts on {GRID[cond]} (ours {rule.d4:.2f})")
        elif verdict != HOLDS and paper_knee == 4:
            needed.append(f"a 4-bit drop below {rule.bound:.1f} pts on {GRID[cond]} (ours {rule.d4:.2f})")
    paper_knees = {cond: reported(*cond)["knee"] for cond in ours}
    if not ours:
        c.verdict, c.why = UNTESTABLE, "no condition of the paper's was run"
    elif len(set(ours.values())) == 1 and len(set(paper_knees.values())) > 1:
        c.verdict = FAILS
        c.why = (f"our Knee is {next(iter(ours.values()))} bits on every condition run "
                 f"({', '.join(GRID[k] for k in ours)}); the paper's: "
                 f"{', '.join(f'{GRID[k]} {v}' for k, v in paper_knees.items())}. Accuracy alone decides it (d4 rule)")
    else:
        c.verdict = _combine(c.cells)
        c.why = "; ".join(f"{GRID[k]}: paper {paper_knees[k]}, ours {v}" for k, v in ours.items())
    c.needed = "; ".join(needed)
    return c


def _combine(cells: dict) -> str:
    tested = [cell.verdict for cell in cells.values() if cell.verdict != UNTESTABLE]
    if not tested:
        return UNTESTABLE
    if all(v == HOLDS for v in tested):
        return HOLDS
    if all(v == FAILS for v in tested):
        return FAILS
    return PARTLY


def _per_condition(c: Claim, inp: _Inputs, conds, check) -> Claim:
    """Fill ``c``'s cells with ``check(cond, table, records) -> Cell`` on each condition we ran."""
    for cond in conds:
        c.cells[cond] = check(cond, inp.tables[cond], inp.records[cond]) if cond in inp.tables else _untestable(cond)
    c.verdict = _combine(c.cells)
    tested = {k: v for k, v in c.cells.items() if v.verdict != UNTESTABLE}
    held = [GRID[k] for k, v in tested.items() if v.verdict == HOLDS]
    c.why = "; ".join(([f"holds on {', '.join(held)}"] if held else [])
                      + [f"{v.verdict} on {GRID[k]}: {v.why}" for k, v in tested.items() if v.verdict != HOLDS]) \
        or "no condition of the paper's was run"
    if c.verdict == HOLDS:   # one example is enough where all hold
        first = next(iter(tested.values()))
        c.why += f" (e.g. {first.why})"
    return c


def _orders(inp: _Inputs) -> Claim:
    c = Claim("orders", "I and I' agree except at the collapse boundary, where I' overturns I's 4 bits for 8",
              "Sec. 5, Claim 3; Table 4", "orders")
    needed = []

    def check(cond, t, recs):
        rep = reported(*cond)
        raw, gated = _orders_of(t, "I_mean"), _orders_of(t, "I_gated_mean")
        if "order_I" in rep and rep["order_I"] == rep["order_I_gated"]:
            st = qst.claim_stability(recs, lambda d: _orders_of(d, "I_mean") == _orders_of(d, "I_gated_mean"),
                                     inp.config)
            cell = _stable_cell(st, f"the paper: identical, {rep['order_I']}; ours I {raw}, I' {gated}")
            if cell.verdict != HOLDS:
                by = t.set_index("bits")
                need = 16 * by.loc[2, "P_mean"] * np.log2(by.loc[32, "T_ms_mean"] + 1) / by.loc[32, "P_mean"]
                needed.append(f"on {GRID[cond]}, raw I ranking 2 bits last: T(2) above {2 ** need - 1:.2f} ms "
                              f"at our P(2) (ours {by.loc[2, 'T_ms_mean']:.2f})")
            return cell
        _, words, claim = overturn_claim(rep)
        st = qst.claim_stability(recs, claim, inp.config)
        cell = _stable_cell(st, f"the paper: {words.removeprefix('yes: ')}; ours {raw[0]} under I, {gated[0]} under I'"
                                + ("" if raw[0] != gated[0] else f", disagreeing only at {raw[-1]} vs {gated[-1]}"))
        if cell.verdict != HOLDS:
            rule = d4_rule_of_table(t)
            needed.append(f"a 4-bit drop above {rule.bound:.1f} pts on {GRID[cond]} (ours {rule.d4:.2f})")
        return cell
    _per_condition(c, inp, [k for k in GRID if "order_I" in reported(*k) or overturn_claim(reported(*k))], check)
    c.needed = "; ".join(needed)
    return c


def _collapse(inp: _Inputs) -> Claim:
    c = Claim("collapse", "2-bit PTQ collapses accuracy to chance in every condition", "Sec. 5, Claim 1", "collapse")

    def check(cond, t, recs):
        by = t.set_index("bits")
        chance = 1 / float(t["num_classes"].iloc[0])
        worst = 100 * (by.loc[2, "P_max"] - chance)
        ok = worst <= COLLAPSE_POINTS
        return Cell(HOLDS if ok else FAILS, f"P(2) {100 * by.loc[2, 'P_mean']:.1f}%, highest seed {worst:+.1f} pts "
                                            f"from chance (rule: every seed within {COLLAPSE_POINTS:.0f})")
    _per_condition(c, inp, list(GRID), check)
    if c.verdict != HOLDS:
        c.needed = f"every seed's 2-bit accuracy within {COLLAPSE_POINTS:.0f} pts of chance"
    return c


def _gate(inp: _Inputs) -> Claim:
    c = Claim("gate", "I' gates collapsed configurations to zero, which the raw I still rewards",
              "Abstract; Sec. 5, Claim 1", "collapse")

    def check(cond, t, recs):
        by = t.set_index("bits")
        ok = by.loc[2, "I_gated_mean"] == 0 and by.loc[2, "I_mean"] > 0
        return Cell(HOLDS if ok else FAILS, f"2 bits: I {by.loc[2, 'I_mean']:.2f}, I' {by.loc[2, 'I_gated_mean']:.2f}")
    return _per_condition(c, inp, list(GRID), check)


def _drop(inp: _Inputs, card: pd.DataFrame | None) -> Claim:
    c = Claim("drop_4bit", "4-bit PTQ costs a large accuracy drop on harder tasks (21 pts CIFAR-10, 41 pts ResNet-18)",
              "Sec. 4.3; Sec. 5, Guideline 2", "drop_4bit")
    needed = []

    def check(cond, t, recs):
        row = scorecard_row(card, cond, QUANTITY["drop_4bit_points"])
        ok = row["verdict"] == "reproduced"
        if not ok:
            needed.append(f"a 4-bit drop of {row['paper'].lstrip('-')} on {GRID[cond]} (ours {row['ours'].lstrip('-')})")
        return Cell(HOLDS if ok else FAILS, f"paper {row['paper']}, ours {row['ours']}")
    _per_condition(c, inp, [k for k in GRID if "P" in reported(*k) and 4 in reported(*k)["P"]], check)
    c.needed = "; ".join(needed)
    return c


def _fp16(inp: _Inputs) -> Claim:
    c = Claim("fp16", "16-bit is lossless (|ΔP| < 0.01 pts)", "Sec. 4.3; Sec. 5, Guideline 1", "fp16")

    def check(cond, t, recs):
        by = t.set_index("bits")
        d = abs(by.loc[16, "P_mean"] - by.loc[32, "P_mean"])
        return Cell(HOLDS if d < STATED["fp16_lossless_delta_P_below"] else FAILS, f"|ΔP| = {100 * d:.3f} pts")
    return _per_condition(c, inp, CNNS, check)


def _variance(inp: _Inputs) -> Claim:
    c = Claim("variance", "The std of P over seeds is below 0.80 pts at 8 bits and above", "Sec. 4.1", "variance")

    def check(cond, t, recs):
        worst = float(t[t["bits"] >= 8]["P_std"].max())
        return Cell(HOLDS if worst < STATED["std_P_below_0.8pp_at_8bit_and_up"] else FAILS,
                    f"largest std {100 * worst:.2f} pts")
    return _per_condition(c, inp, CNNS, check)


def _numerator_order(t: pd.DataFrame) -> list:
    """The order under I' with T left out: C x max(P - Pthresh, 0)."""
    margin = np.maximum(t["P_mean"].to_numpy(float) - t["p_thresh"].to_numpy(float), 0)
    return ranking([int(b) for b in t["bits"]], (32 / t["bits"].to_numpy(float)) * margin)


def _latency(inp: _Inputs) -> Claim:
    c = Claim("latency", "Latency is secondary: the index is shaped by C x P, log2(T+1) only corrects it",
              "Sec. 5, Claim 2", "latency")

    def check(cond, t, recs):
        without_t = _numerator_order(t)
        st = qst.claim_stability(recs, lambda d: _orders_of(d, "I_gated_mean") == without_t, inp.config)
        ratio = log2_denominator_ratio(t["T_ms_mean"])
        return _stable_cell(st, f"the I' order is that of C x max(P - Pthresh, 0) alone, {without_t}; "
                                f"log2(T+1) varies {ratio:.2f}x (paper {reported(*cond)['denominator_ratio']:.2f}x)")
    return _per_condition(c, inp, [k for k in GRID if "denominator_ratio" in reported(*k)], check)


def _acp_als(inp: _Inputs) -> Claim:
    c = Claim("acp_als", "ACP mirrors I away from collapse; ALS favours high precision", "Appendix A; Table 4",
              "orders")

    def check(cond, t, recs):
        viable = _viable(t)
        acp = [b for b in _orders_of(t, "ACP_mean") if b in viable]
        raw = [b for b in _orders_of(t, "I_mean") if b in viable]
        als_top = _orders_of(t, "ALS_mean")[0]
        held = (acp == raw, als_top >= 16)
        st = qst.claim_stability(recs, lambda d: [b for b in _orders_of(d, "ACP_mean") if b in viable] ==
                                 [b for b in _orders_of(d, "I_mean") if b in viable]
                                 and _orders_of(d, "ALS_mean")[0] >= 16, inp.config)
        text = (f"ACP {'=' if held[0] else '≠'} I off collapse ({acp} vs {raw}); ALS best at {als_top} bits")
        if all(held):
            return _stable_cell(st, text)
        return Cell(PARTLY if any(held) else FAILS, text)
    return _per_condition(c, inp, CNNS, check)


def _ga(inp: _Inputs) -> Claim:
    c = Claim("ga", "The I'-guided GA improves over uniform-precision baselines", "Sec. 4.2, EXP-3; Fig. 4; "
              "Sec. 5, Guideline 3", "ga")
    cond = ("simplecnn", "cifar10")
    rep = reported(*cond)
    paper_fp8 = _paper_uniform_8_bar()
    mps = inp.mps
    ours = None if mps is None or mps.empty else mps[(mps["dataset"] == "cifar10") & (mps["search"] == "ga")
                                                     & (mps["search_seed"] == 0)]
    if ours is None or ours.empty:
        c.cells[cond] = Cell(UNTESTABLE, "no EXP-3 records of ours")
    else:
        ga = ours.iloc[0]
        land = mps[(mps["dataset"] == "cifar10") & (mps["search"] == "exhaustive")]
        if "model_seed" in land:
            land = land[land["model_seed"] == ga["model_seed"]]
        uniform = land[land["bits_label"].str.split("-").map(lambda b: len(set(b)) == 1)]
        best_uniform = uniform.loc[uniform["I_gated"].idxmax()]
        opt = qst.optimum_stability(mps[mps["dataset"] == "cifar10"], inp.config)
        st = opt[opt["fitness C"] == "paper"]["stability"].iloc[0]
        non_uniform = sum(s for a, s in st.shares.items() if a is not None and len(set(a.split("-"))) > 1)
        beats = ga["I_gated"] > best_uniform["I_gated"]
        verdict = FROM_STABILITY[qst.verdict(bool(beats), non_uniform)]
        c.cells[cond] = Cell(verdict, f"our GA returns {ga['bits_label']} (I' {ga['I_gated']:.3f}); best uniform "
                                      f"{best_uniform['bits_label']} (I' {best_uniform['I_gated']:.3f}); a non-uniform "
                                      f"optimum in {100 * non_uniform:.0f}% of {st.draws} draws")
    c.cells[("resnet18_imagenet", "imagenet")] = _untestable(("resnet18_imagenet", "imagenet"))
    c.verdict = _combine(c.cells)
    c.why = (f"{c.cells[cond].why}. By the paper's own numbers uniform 8-8-8-8 (in its search space) beats its GA's "
             f"I' {rep['ga_best']['I_gated']:.3f} for any P(8) above {100 * paper_fp8:.1f}%")
    if c.verdict != HOLDS and c.cells[cond].verdict != UNTESTABLE:
        c.needed = (f"a mixed configuration above our best uniform one ({best_uniform['bits_label']}, "
                    f"I' {best_uniform['I_gated']:.3f}), as a 4-bit drop beyond the d4 rule's bound would give")
    return c


def _paper_uniform_8_bar() -> float:
    """The P(8) above which the paper's uniform 8-8-8-8 beats its GA optimum under I', with T(8) =
    T(4) solved from its I'(4) = 0.633 at P(4) = 58.18% (one graph) and Pthresh = P_FP - delta."""
    rep, delta = reported("simplecnn", "cifar10"), conditions.CONDITIONS[("simplecnn", "cifar10")].delta
    gate = rep["P_FP"] - delta
    log_t = 8 * (rep["P"][4] - gate) / rep["I_gated"][4]
    return gate + rep["ga_best"]["I_gated"] * log_t / 4


def _llm(inp: _Inputs) -> Claim:
    c = Claim("llm", "On Llama-3-8B, I' peaks at 4 bits while the raw I keeps rising as bits fall", "Sec. 4.4; Table 3",
              "llm")
    cond = ("llama3_8b_instruct", "mmlu")
    c.cells[cond] = _untestable(cond)
    c.verdict = UNTESTABLE
    c.why = c.cells[cond].why + "; the same path on a small model is ours only (scorecard)"
    return c


def headline(sweep: pd.DataFrame, mps: pd.DataFrame | None = None, llm: pd.DataFrame | None = None,
             config: qst.StabilityConfig = qst.StabilityConfig(), card: pd.DataFrame | None = None) -> list[Claim]:
    """The paper's headline claims with their verdicts on ``sweep`` (ptq_sweep records), ``mps``
    (mixed_precision records) and ``llm``; ``card``: their scorecard (computed when not given)."""
    if card is None:
        card = scorecard(sweep, mps, config, llm)
    inp = _inputs(sweep, mps, llm, config)
    return [_knee(inp), _orders(inp), _drop(inp, card), _latency(inp), _ga(inp), _acp_als(inp), _gate(inp),
            _collapse(inp), _fp16(inp), _variance(inp), _llm(inp)]


def summary(claims: list[Claim]) -> pd.DataFrame:
    """One row per claim: the claim, where, the verdict, why (and what would have had to be true)."""
    return pd.DataFrame([{"claim": c.claim, "where": c.where, "verdict": c.verdict,
                          "why": c.why + (f". Needed for the paper's result: {c.needed}" if c.needed else ""),
                          "evidence": c.evidence} for c in claims])


def grid(claims: list[Claim]) -> pd.DataFrame:
    """Claims (rows) x the paper's conditions (columns): the cell verdicts ("" where the claim does
    not speak of that condition)."""
    return pd.DataFrame([[c.cells[k].verdict if k in c.cells else "" for k in GRID] for c in claims],
                        index=[c.claim for c in claims], columns=list(GRID.values()))


def counts(claims: list[Claim]) -> pd.Series:
    return pd.Series([c.verdict for c in claims]).value_counts().reindex(list(VERDICTS), fill_value=0)


# --- rendering ---------------------------------------------------------------------------------

def headline_why(c: Claim, limit: int = 120) -> str:
    """The first clause of a claim's why, cut at ``limit`` characters: the summary's one line."""
    first = c.why.split(" (e.g. ")[0].split("; ")[0].split(". ")[0]
    return first if len(first) <= limit else first[:limit - 1].rsplit(" ", 1)[0] + "…"


def summary_html(claims: list[Claim], evidence_page: str = "scorecard.html") -> str:
    """The claims as a compact HTML table that wraps at any width: verdict (coloured, with a
    symbol), the claim's short name (its words as a tooltip), one line of why, and a link to its
    evidence (``evidence_page#claim-<group>``). The full why is in :func:`summary`."""
    rows = []
    for c in claims:
        rows.append(
            f'<tr><td style="border-left:6px solid {COLOURS[c.verdict]};white-space:nowrap;padding:2px 6px">'
            f'{SYMBOLS[c.verdict]} {c.verdict}</td>'
            f'<td style="padding:2px 6px"><strong title="{html.escape(c.claim)}">{html.escape(SHORT[c.key])}'
            f'</strong>: {html.escape(headline_why(c))} '
            f'<a href="{evidence_page}#claim-{c.evidence}">evidence</a></td></tr>')
    return ('<table id="verdict-summary" class="quide-summary" style="width:100%;table-layout:fixed;'
            'overflow-wrap:anywhere;font-size:0.88em;line-height:1.3"><colgroup><col style="width:9em"><col>'
            '</colgroup><tbody>' + "".join(rows) + "</tbody></table>")


def grid_figure(claims: list[Claim]):
    """Claims x conditions, each cell coloured by its verdict and marked with its symbol (blank:
    the claim does not speak of that condition). Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    g = grid(claims)
    codes = {v: i for i, v in enumerate(VERDICTS)}
    values = np.array([[codes.get(v, np.nan) for v in row] for row in g.to_numpy()], float)
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(g) + 1.6))
    ax.imshow(np.ma.masked_invalid(values), cmap=ListedColormap([COLOURS[v] for v in VERDICTS]), vmin=-0.5,
              vmax=len(VERDICTS) - 0.5, aspect="auto")
    for (i, j), v in np.ndenumerate(g.to_numpy()):
        if v:
            ax.text(j, i, SYMBOLS[v], ha="center", va="center", fontsize=12,
                    color="black" if v in (PARTLY, UNTESTABLE) else "white")
    ax.set_xticks(range(g.shape[1]), g.columns, rotation=20, ha="right", fontsize=9)
    ax.set_yticks(range(g.shape[0]), [SHORT[c.key] for c in claims], fontsize=9)
    ax.set_xticks(np.arange(-0.5, g.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, g.shape[0]), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    ax.legend(handles=[Patch(color=COLOURS[v], label=f"{SYMBOLS[v]} {v}") for v in VERDICTS],
              loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, frameon=False, fontsize=9)
    fig.tight_layout()
    return fig
