"""Every Pthresh rule (quide.analysis.pthresh) on every condition: ours, from the PTQ-sweep records, and the
paper's, from its reported numbers (quide.analysis.conditions). The book's page "Setting Pthresh
automatically" shows these tables; :func:`recommend` picks a rule from them.

Ours (:func:`our_table`): per condition (profile "paper", graph placement) one gate per rule, from
the seed means (P_FP: mean FP32 P; the curve: mean P per bit-width; the noise rule: std of P_FP
over seeds), applied to every seed's records; the Knee is the bit-width of peak seed-mean I'
(``aggregate.peak_position``). Its stability: the records drawn as ``quide.analysis.stability`` draws them
(T within its CI, P binomial, seeds bootstrapped), the gate recomputed from each draw's own seeds.
The paper's delta is applied the same way (to the seed-mean P_FP) as the comparator.

The paper's (:func:`paper_table`): its numbers do not determine the Knee under another gate (P and
T are not stated at every bit-width), so what is compared is the gating: for each bit-width whose
side of the paper's gate is stated (a P, or an I' zero or positive), the side it falls on under
the rule; a side the numbers do not settle is "unknown".
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from . import conditions, stability
from . import pthresh as pt
from .aggregate import peak_position
from .index import gated_index

PAPER = "delta (paper)"
RULES = {PAPER: None, "span": pt.Span(), "error_ratio": pt.ErrorRatio(), "relative": pt.Relative(),
         "noise": pt.Noise(), "curve": pt.Curve()}
# Test-set sizes of the paper's data sets (the standard splits; the paper does not state them per run).
PAPER_N_TEST = {"mnist": 10000, "cifar10": 10000, "cifar100": 10000, "imagenet": 50000, "mmlu": 14042}


def our_records(records: pd.DataFrame | None = None) -> pd.DataFrame:
    """The PTQ-sweep records this study uses: profile "paper", graph placement, uniform bits."""
    if records is None:
        from .results import load_records
        records = load_records(experiment="ptq_sweep")
    keep = (records["profile"] == "paper") & (records["placement"] == "graph") & records["bits"].map(np.isscalar)
    return records[keep].reset_index(drop=True)


def condition_label(model: str, dataset: str, data_source: str | None = None) -> str:
    """'SimpleCNN / CIFAR-10 (JPEG stand-in)': the registry's label, our data source where it differs."""
    text = conditions.label(model, dataset)
    if data_source and "JPEG stand-in" in data_source and "stand-in" not in text:
        text = text.replace(" (not in the paper)", "") + " (JPEG stand-in)"
    return text


def span_left_out(model: str, dataset: str) -> pt.Span:
    """The span rule with f fitted to the paper's conditions other than (model, dataset)
    (leave-one-out: a condition is never judged by an f fitted to its own delta)."""
    points = {key: v for key, v in pt.paper_points().items() if key != (model, dataset)}
    return pt.Span(f=pt.fit_span(points.values())["f"])


def _rule_for(name: str, model: str, dataset: str):
    """The rule object; span: leave-one-out f; the paper's delta: Delta(its delta), None where the
    registry has none."""
    if name == "span":
        return span_left_out(model, dataset)
    if name != PAPER:
        return RULES[name]
    spec = conditions.CONDITIONS.get((model, dataset))
    return pt.Delta(spec.delta) if spec is not None and spec.delta is not None else None


def _gate_from_grid(rule, num_classes: int, labels: list, P: np.ndarray, n_test) -> float:
    """The condition's gate from a (seeds, bits) grid of P (observed or one draw)."""
    i32 = labels.index("32")
    curve = {int(b): float(np.nanmean(P[:, j])) for j, b in enumerate(labels) if str(b).isdigit()}
    return pt.gate(rule, num_classes=num_classes, p_fp=curve[32], accuracy_by_bits=curve,
                   p_fp_seeds=tuple(P[:, i32]), n_test=n_test)


def _knee(sample, labels, P, T, C, gate, missing) -> object:
    scores = np.where(missing, np.nan, gated_index(C, np.nan_to_num(P), T, gate))
    peak = int(peak_position(np.nanmean(scores, axis=0) if len(scores) else scores))
    return int(labels[peak]) if peak >= 0 else None


def our_table(records: pd.DataFrame | None = None,
              config: stability.StabilityConfig = stability.StabilityConfig()) -> pd.DataFrame:
    """One row per (condition, rule): gate (fraction), its span share f, Knee, the share of draws
    that give that Knee and the verdict, the paper's reported Knee, and whether the rule's Knee
    equals the paper's delta's on the same records."""
    df = our_records(records)
    rows = []
    for s in stability.condition_samples(df, config):
        g = df[(df["model"] == s.keys["model"]) & (df["dataset"] == s.keys["dataset"])]
        model, dataset, source = s.keys["model"], s.keys["dataset"], s.keys.get("data_source")
        k, n_test = int(g["num_classes"].iloc[0]), int(g["n_test"].iloc[0])
        labels = [str(b) for b in s.labels]
        T = np.where(s.missing, 1.0, s.T)
        base = {"condition": condition_label(model, dataset, source), "model": model, "dataset": dataset,
                "paper_knee": conditions.CONDITIONS[(model, dataset)].reported.get("knee")
                if (model, dataset) in conditions.CONDITIONS else None}
        for name in RULES:
            rule = _rule_for(name, model, dataset)
            if rule is None:
                rows.append({**base, "rule": name, "gate": np.nan, "f": np.nan, "knee": None,
                             "frequency": np.nan, "verdict": "no delta for this condition"})
                continue
            g_obs = _gate_from_grid(rule, k, labels, s.P, n_test)
            knee = _knee(s, labels, s.P, T, s.C, g_obs, s.missing)
            answers = []
            for d in range(s.pick.shape[0]):
                seeds = s.pick[d]
                P_d = np.where(s.draw_missing[seeds], np.nan, s.P_draw[d, seeds])
                g_d = _gate_from_grid(rule, k, labels, P_d, n_test)
                answers.append(_knee(s, labels, P_d, s.T_draw[d, seeds], s.draw_C[seeds], g_d, s.draw_missing[seeds]))
            st = stability._stability(knee, answers, s.timing, s.sample)
            rows.append({**base, "rule": name, "gate": g_obs, "f": pt.span_share(k, s.P[:, labels.index("32")].mean(), g_obs),
                         "knee": knee, "frequency": st.frequency, "verdict": st.verdict,
                         "alternatives": st.alternatives()})
    out = pd.DataFrame(rows)
    delta_knee = out[out["rule"] == PAPER].set_index("condition")["knee"]
    out["same_knee_as_delta"] = [None if pd.isna(delta_knee.get(c)) or delta_knee.get(c) is None
                                 else k == delta_knee[c] for c, k in zip(out["condition"], out["knee"])]
    out["same_knee_as_paper"] = [None if p is None else k == p for k, p in zip(out["knee"], out["paper_knee"])]
    return out


# --- the paper's conditions -------------------------------------------------------------------

def _paper_sides(rep: dict, p_gate: float) -> dict:
    """{bits: True (above the gate) / False (gated)} for every bit-width whose side the paper states."""
    sides = {b: p > p_gate for b, p in rep.get("P", {}).items()}
    for b, v in rep.get("I_gated", {}).items():
        sides.setdefault(b, v > 0)
    return sides


def _rule_side(bits, rep, paper_side, p_gate, g):
    """The bit-width's side of gate ``g``: from its P, else from the paper's side when that settles it."""
    if bits in rep.get("P", {}):
        return rep["P"][bits] > g
    if paper_side is False and g >= p_gate:
        return False
    if paper_side is True and g <= p_gate:
        return True
    return None


def _paper_rows(rep, k, n_test, p_gate, knee, rule, name, P_FP=None, P=None):
    rep = {**rep, "P_FP": P_FP if P_FP is not None else rep["P_FP"], "P": P if P is not None else rep.get("P", {})}
    try:
        g = pt.gate(rule, num_classes=k, p_fp=rep["P_FP"], accuracy_by_bits=rep["P"], n_test=n_test,
                    p_fp_sd=rep.get("P_FP_std"))
    except ValueError:
        return None
    sides = _paper_sides(rep, p_gate)
    rule_sides = {b: _rule_side(b, rep, s, p_gate, g) for b, s in sides.items()}
    same = sum(rule_sides[b] is sides[b] for b in sides)
    differ = sum(rule_sides[b] is not None and rule_sides[b] != sides[b] for b in sides)
    return {"gate": g, "same": same, "differ": differ, "unknown": len(sides) - same - differ,
            "knee_side": _rule_side(knee, rep, True, p_gate, g)}


def paper_table(config: stability.StabilityConfig = stability.StabilityConfig()) -> pd.DataFrame:
    """One row per (paper condition with P_FP and a delta, rule): the gate from the paper's numbers,
    its span share f, how many stated bit-widths fall on the same side as under the paper's delta
    (same / differ / unknown), whether the paper's Knee stays above the gate, and the share of
    draws (P binomial with the standard test-set size, P_FP also normal with a stated std) in
    which the rule's gating has no disagreement with the paper's."""
    rows = []
    for (model, dataset), (k, p_fp, p_gate) in pt.paper_points().items():
        spec = conditions.CONDITIONS[(model, dataset)]
        rep, n_test = spec.reported, PAPER_N_TEST[dataset]
        rng = config.rng("paper", model, dataset)
        bits = sorted(rep.get("P", {}))
        P_draw = rng.binomial(n_test, [rep["P"][b] for b in bits], size=(config.draws, len(bits))) / n_test
        fp_draw = rng.binomial(n_test, p_fp, size=config.draws) / n_test + rng.normal(
            0, rep.get("P_FP_std", 0.0), size=config.draws)
        fp_draw = np.clip(fp_draw, 0, 1)
        for name in RULES:
            rule = _rule_for(name, model, dataset)
            obs = _paper_rows(rep, k, n_test, p_gate, rep["knee"], rule, name)
            base = {"condition": spec.label, "model": model, "dataset": dataset, "rule": name,
                    "paper_knee": rep["knee"], "paper_gate": p_gate}
            if obs is None or not _paper_sides(rep, p_gate):
                rows.append({**base, **(obs or {"gate": np.nan}), "verdict": "not computable from the paper's numbers"
                             if obs is None else "nothing to compare (no P stated below FP)"})
                continue
            held = []
            for d in range(config.draws):
                r = _paper_rows(rep, k, n_test, p_gate, rep["knee"], rule, name, P_FP=float(fp_draw[d]),
                                P=dict(zip(bits, P_draw[d].tolist())))
                held.append(r is not None and r["differ"] == 0)
            freq = float(np.mean(held))
            rows.append({**base, **obs, "f": pt.span_share(k, p_fp, obs["gate"]),
                         "frequency": freq, "verdict": stability.verdict(obs["differ"] == 0, freq)})
    return pd.DataFrame(rows)


# --- the recommendation -----------------------------------------------------------------------

def scores(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Per automatic rule: Knees equal to the paper's delta's on our records, paper conditions
    gated as the paper gates them (at least one stated side, none contradicted); their sum is
    ``agreements``, what a rule that replaces the hand-set delta should maximize. Beside them,
    not scored: Knees equal to the paper's reported Knee (our data differ from the paper's, so
    even the paper's delta misses some), robust Knees (verdict 'holds robustly'), free parameters."""
    rows = []
    for name, rule in RULES.items():
        if name == PAPER:
            continue
        o, p = ours[ours["rule"] == name], paper[paper["rule"] == name]
        rows.append({"rule": name, "parameters": pt.describe(rule),
                     "free_parameters": len(dataclasses.fields(rule)),
                     "knee_as_delta": int((o["same_knee_as_delta"] == True).sum()),   # noqa: E712
                     "of_ours": int(o["same_knee_as_delta"].notna().sum()),
                     "knee_as_paper": int((o["same_knee_as_paper"] == True).sum()),   # noqa: E712
                     "of_paper_knees": int(o["same_knee_as_paper"].notna().sum()),
                     "gated_as_paper": int(((p["differ"] == 0) & (p["same"] > 0)).sum()),
                     "of_paper": int((p["same"] + p["differ"] + p["unknown"] > 0).sum()),
                     "robust_knees": int((o["verdict"] == stability.HOLDS).sum())})
    out = pd.DataFrame(rows)
    out["agreements"] = out["knee_as_delta"] + out["gated_as_paper"]
    return out.sort_values(["agreements", "robust_knees", "free_parameters"], ascending=[False, False, True],
                           kind="stable").reset_index(drop=True)


def recommend(ours: pd.DataFrame, paper: pd.DataFrame) -> dict:
    """The first rule of :func:`scores` (most agreements with the paper's hand-set delta, then
    most robust Knees, then fewest free parameters) and its row."""
    table = scores(ours, paper)
    return {"rule": table["rule"].iloc[0], "row": table.iloc[0].to_dict(), "scores": table}
