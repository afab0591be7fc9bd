"""Every Pthresh rule (quide.analysis.pthresh) on every condition: ours, from the PTQ-sweep records, and the
paper's, from its reported numbers (quide.analysis.conditions). The book's page "Setting Pthresh
automatically" shows these tables; :func:`recommend` picks a rule from them.

Ours (:func:`our_table`): per condition (profile "paper", graph placement) one gate per rule, from
the seed means (P_FP: mean FP32 P; the curve: mean P per bit-width; the noise rule: std of P_FP
over seeds), applied to every seed's records; the Knee is the bit-width of peak seed-mean I'
(``aggregate.peak_position``). Its stability: the records drawn as ``quide.analysis.stability`` draws them
(T within its CI, P binomial, seeds bootstrapped), the gate recomputed from each draw's own seeds;
and, over seeds, the Knee each seed gives alone (its own gate from its own records).
The paper's delta is applied the same way (to the seed-mean P_FP) as a reference.

The paired rule (:func:`paired_table`, ``pthresh.Paired``) tests each configuration against its
seed's FP model on the same test samples; it needs per-sample predictions, read through
``quide.analysis.predictions`` from the records that name a ``predictions_file``. Where no record
does, its table is empty. Where a condition's records carry their test labels, chance is the
majority-class rate (``pthresh.chance_level``); elsewhere 1/K.

The paper's (:func:`paper_table`): its numbers do not determine the Knee under another gate (P and
T are not stated at every bit-width), so what is shown is the gating: for each bit-width whose
side of the paper's gate is stated (a P, or an I' zero or positive), the side it falls on under
the rule; a side the numbers do not settle is "unknown". It is descriptive: agreement with the
hand-set delta a rule should replace is not a criterion (:func:`scores`).
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import conditions, stability
from . import pthresh as pt
from .aggregate import peak_position
from .index import gated_index

PAPER = "delta (paper)"
RULES = {PAPER: None, "span": pt.Span(), "error_ratio": pt.ErrorRatio(), "relative": pt.Relative(),
         "noise": pt.Noise(), "curve": pt.Curve()}
PAIRED = "paired"
PAIRED_RULE = pt.Paired()
# the columns of paired_table
PAIRED_COLUMNS = ["condition", "model", "dataset", "paper_knee", "chance", "chance_from", "p_fp", "rule",
                  "drop", "knee", "same_knee_as_paper", "seed_knees", "seed_agree", "of_seeds", "tested",
                  "passing", "passes_by_bits"]
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


def paper_knee(model: str, dataset: str):
    """The paper's reported Knee of (model, dataset); None where the paper states none (a condition
    not in the paper, or one without a Knee)."""
    spec = conditions.CONDITIONS.get((model, dataset))
    return spec.reported.get("knee") if spec is not None else None


def _known(value) -> bool:
    """False for None and NaN: a missing paper Knee becomes NaN in a DataFrame, and NaN == k is
    False, not unknown, so it must be asked for explicitly."""
    return value is not None and not pd.isna(value)


# --- per-sample predictions -------------------------------------------------------------------

def _with_predictions(df: pd.DataFrame) -> pd.DataFrame:
    """The records of ``df`` that name a ``predictions_file``."""
    if "predictions_file" not in df:
        return df.iloc[:0]
    return df[df["predictions_file"].map(_known)]


def _predictions(df: pd.DataFrame) -> dict:
    """{(seed, bit label): (labels, predicted)} for the records of ``df`` with predictions. The
    reader is imported here, on use, so that records without predictions never need it."""
    from . import predictions
    rows = _with_predictions(df).to_dict("records")
    return {(int(r["seed"]), str(int(r["bits"]))): predictions.load(r) for r in rows}


def _counts(labels, num_classes: int) -> tuple:
    return tuple(np.bincount(np.asarray(labels), minlength=num_classes).tolist())


def class_counts(df: pd.DataFrame, num_classes: int):
    """The test labels' class counts (np.bincount) of a condition's records, from the first record
    with predictions; None where none has them (chance is then 1/K)."""
    with_predictions = _with_predictions(df)
    if with_predictions.empty:
        return None
    from . import predictions
    labels, _ = predictions.load(with_predictions.iloc[0].to_dict())
    return _counts(labels, num_classes)


# --- our conditions ---------------------------------------------------------------------------

def _gate_from_grid(rule, num_classes: int, labels: list, P: np.ndarray, n_test, counts=None) -> float:
    """The condition's gate from a (seeds, bits) grid of P (observed or one draw)."""
    i32 = labels.index("32")
    curve = {int(b): float(np.nanmean(P[:, j])) for j, b in enumerate(labels) if str(b).isdigit()}
    return pt.gate(rule, num_classes=num_classes, p_fp=curve[32], accuracy_by_bits=curve,
                   p_fp_seeds=tuple(P[:, i32]), n_test=n_test, class_counts=counts)


def _knee(labels, P, T, C, gate, missing) -> object:
    scores = np.where(missing, np.nan, gated_index(C, np.nan_to_num(P), T, gate))
    return _peak(labels, scores)


def _peak(labels, scores: np.ndarray) -> object:
    """The bit-width of peak seed-mean I' of a (seeds, bits) grid; None where every one is gated."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a bit-width missing from every seed is NaN
        peak = int(peak_position(np.nanmean(scores, axis=0) if len(scores) else scores))
    return int(labels[peak]) if peak >= 0 else None


def _seed_knees(rule, num_classes, labels, s, T, n_test, counts) -> list:
    """The Knee each seed gives alone (its own gate from its own records); None for a seed
    without its FP32 record."""
    i32, out = labels.index("32"), []
    for i in range(len(s.seeds)):
        one = slice(i, i + 1)
        if s.missing[i, i32]:
            out.append(None)
            continue
        g = _gate_from_grid(rule, num_classes, labels, s.P[one], n_test, counts)
        out.append(_knee(labels, s.P[one], T[one], s.C[one], g, s.missing[one]))
    return out


def our_table(records: pd.DataFrame | None = None,
              config: stability.StabilityConfig = stability.StabilityConfig()) -> pd.DataFrame:
    """One row per (condition, rule): chance (majority-class rate where the records carry their
    labels, else 1/K), gate (fraction), its span share f, the drop it admits (seed-mean P_FP - gate),
    Knee, the share of draws that give that Knee and the verdict, each seed's own Knee and how many
    of them equal the Knee, the paper's reported Knee (None where it states none) and whether the
    rule's Knee equals it (None where there is none to compare)."""
    df = our_records(records)
    rows = []
    for s in stability.condition_samples(df, config):
        g = df[(df["model"] == s.keys["model"]) & (df["dataset"] == s.keys["dataset"])]
        model, dataset, source = s.keys["model"], s.keys["dataset"], s.keys.get("data_source")
        k, n_test = int(g["num_classes"].iloc[0]), int(g["n_test"].iloc[0])
        counts = class_counts(g, k)
        labels = [str(b) for b in s.labels]
        T = np.where(s.missing, 1.0, s.T)
        p_fp = float(np.nanmean(s.P[:, labels.index("32")]))
        base = {"condition": condition_label(model, dataset, source), "model": model, "dataset": dataset,
                "paper_knee": paper_knee(model, dataset), "chance": pt.chance_level(k, counts),
                "chance_from": "1/K" if counts is None else "labels", "p_fp": p_fp}
        for name in RULES:
            rule = _rule_for(name, model, dataset)
            if rule is None:
                rows.append({**base, "rule": name, "gate": np.nan, "f": np.nan, "drop": np.nan, "knee": None,
                             "frequency": np.nan, "verdict": "no delta for this condition"})
                continue
            g_obs = _gate_from_grid(rule, k, labels, s.P, n_test, counts)
            knee = _knee(labels, s.P, T, s.C, g_obs, s.missing)
            answers = []
            for d in range(s.pick.shape[0]):
                seeds = s.pick[d]
                P_d = np.where(s.draw_missing[seeds], np.nan, s.P_draw[d, seeds])
                g_d = _gate_from_grid(rule, k, labels, P_d, n_test, counts)
                answers.append(_knee(labels, P_d, s.T_draw[d, seeds], s.draw_C[seeds], g_d, s.draw_missing[seeds]))
            st = stability._stability(knee, answers, s.timing, s.sample)
            seed_knees = _seed_knees(rule, k, labels, s, T, n_test, counts)
            rows.append({**base, "rule": name, "gate": g_obs, "f": pt.span_share(k, p_fp, g_obs),
                         "drop": max(p_fp - g_obs, 0.0), "knee": knee, "frequency": st.frequency,
                         "verdict": st.verdict, "alternatives": st.alternatives(), "seed_knees": seed_knees,
                         "seed_agree": sum(sk == knee for sk in seed_knees if sk is not None),
                         "of_seeds": sum(sk is not None for sk in seed_knees)})
    out = pd.DataFrame(rows)
    out["paper_knee"] = out["paper_knee"].astype(object).where(out["paper_knee"].map(_known), None)
    out["same_knee_as_paper"] = [k == p if _known(p) and _known(v) else None
                                 for k, p, v in zip(out["knee"], out["paper_knee"], out["gate"])]
    return out


def paired_table(records: pd.DataFrame | None = None, rule: pt.Paired = PAIRED_RULE) -> pd.DataFrame:
    """One row per condition whose records carry per-sample predictions, under the paired rule:
    each configuration of a seed tested against that seed's FP predictions (``rule.test``); I' =
    C max(P - q P_FP, 0) / log2(T+1) where it passes, 0 where not; the Knee of the seed-mean I'.
    Columns as :func:`our_table`'s where they apply (drop: the margin (1 - q) P_FP, the largest
    drop the rule can admit), plus configurations tested and passing and, per bit-width, how many
    seeds pass. No rows (the columns only) where no record has predictions."""
    df = our_records(records)
    if _with_predictions(df).empty:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    rows = []
    for (model, dataset, source), g in _with_predictions(df).groupby(["model", "dataset", "data_source"], sort=True):
        k = int(g["num_classes"].iloc[0])
        preds = _predictions(g)
        labels = [str(b) for b in sorted({int(b) for b in g["bits"]}, reverse=True)]
        seeds = sorted({int(sd) for sd in g["seed"] if (int(sd), "32") in preds})
        scores = np.full((len(seeds), len(labels)), np.nan)
        passes, p_fps = {b: [] for b in labels if b != "32"}, []
        for i, seed in enumerate(seeds):
            y, fp = preds[(seed, "32")]
            p_fp = float(np.mean(np.asarray(y) == np.asarray(fp)))
            p_fps.append(p_fp)
            for r in g[g["seed"] == seed].to_dict("records"):
                b = str(int(r["bits"]))
                if (seed, b) not in preds:
                    continue
                ok = b == "32" or rule.test(y, fp, preds[(seed, b)][1])["non_inferior"]
                if b != "32":
                    passes[b].append(ok)
                gated = gated_index(r["C_paper"], r["P"], r["T_ms"], rule.p_thresh(p_fp))
                scores[i, labels.index(b)] = float(gated) if ok else 0.0
        knee = _peak(labels, scores)
        seed_knees = [_peak(labels, scores[i:i + 1]) for i in range(len(seeds))]
        counts = _counts(next(iter(preds.values()))[0], k)
        pk = paper_knee(model, dataset)
        rows.append({"condition": condition_label(model, dataset, source), "model": model, "dataset": dataset,
                     "paper_knee": pk if _known(pk) else None, "chance": pt.chance_level(k, counts),
                     "chance_from": "labels", "p_fp": float(np.mean(p_fps)), "rule": PAIRED,
                     "drop": max(rule.margin(p) for p in p_fps), "knee": knee,
                     "same_knee_as_paper": knee == pk if _known(pk) else None, "seed_knees": seed_knees,
                     "seed_agree": sum(sk == knee for sk in seed_knees), "of_seeds": len(seeds),
                     "tested": sum(len(v) for v in passes.values()), "passing": sum(sum(v) for v in passes.values()),
                     "passes_by_bits": "; ".join(f"{b}: {sum(v)} of {len(v)}" for b, v in passes.items() if v)})
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)



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


def mmlu_class_counts(root=None):
    """MMLU's test answers (A-D) counted from the gold answers in a committed samples file of the
    LLM case study (each holds the whole test set); None where none is committed or a file holds
    another number of questions than the test set's."""
    from ..config import results_root
    from .mmlu_stats import read_samples
    files = sorted((Path(root or results_root()) / "llm_case_study").glob("samples_*.jsonl.gz"))
    if not files:
        return None
    gold = [int(s["gold"]) for s in read_samples(files[0])]
    if len(gold) != PAPER_N_TEST["mmlu"]:
        return None
    return tuple(np.bincount(gold, minlength=pt.num_classes("mmlu")).tolist())


def _paper_rows(rep, k, n_test, p_gate, knee, rule, name, P_FP=None, P=None, counts=None):
    rep = {**rep, "P_FP": P_FP if P_FP is not None else rep["P_FP"], "P": P if P is not None else rep.get("P", {})}
    try:
        g = pt.gate(rule, num_classes=k, p_fp=rep["P_FP"], accuracy_by_bits=rep["P"], n_test=n_test,
                    p_fp_sd=rep.get("P_FP_std"), class_counts=counts)
    except ValueError:
        return None
    sides = _paper_sides(rep, p_gate)
    rule_sides = {b: _rule_side(b, rep, s, p_gate, g) for b, s in sides.items()}
    same = sum(rule_sides[b] is sides[b] for b in sides)
    differ = sum(rule_sides[b] is not None and rule_sides[b] != sides[b] for b in sides)
    return {"gate": g, "same": same, "differ": differ, "unknown": len(sides) - same - differ,
            "knee_side": _rule_side(knee, rep, True, p_gate, g)}


def paper_table(config: stability.StabilityConfig = stability.StabilityConfig(), root=None) -> pd.DataFrame:
    """One row per (paper condition with P_FP and a delta, rule): chance (MMLU's majority answer
    rate where :func:`mmlu_class_counts` has it, else 1/K), the gate from the paper's numbers, the
    drop it admits (P_FP - gate), its span share f, how many stated bit-widths fall on the same
    side as under the paper's delta (same / differ / unknown), whether the paper's Knee stays above
    the gate, and the share of draws (P binomial with the standard test-set size, P_FP also normal
    with a stated std) in which the rule's gating has no disagreement with the paper's."""
    rows = []
    for (model, dataset), (k, p_fp, p_gate) in pt.paper_points().items():
        spec = conditions.CONDITIONS[(model, dataset)]
        rep, n_test = spec.reported, PAPER_N_TEST[dataset]
        counts = mmlu_class_counts(root) if dataset == "mmlu" else None
        rng = config.rng("paper", model, dataset)
        bits = sorted(rep.get("P", {}))
        P_draw = rng.binomial(n_test, [rep["P"][b] for b in bits], size=(config.draws, len(bits))) / n_test
        fp_draw = rng.binomial(n_test, p_fp, size=config.draws) / n_test + rng.normal(
            0, rep.get("P_FP_std", 0.0), size=config.draws)
        fp_draw = np.clip(fp_draw, 0, 1)
        for name in RULES:
            rule = _rule_for(name, model, dataset)
            obs = _paper_rows(rep, k, n_test, p_gate, rep["knee"], rule, name, counts=counts)
            if obs is not None:
                obs["drop"] = max(p_fp - obs["gate"], 0.0)
            base = {"condition": spec.label, "model": model, "dataset": dataset, "rule": name,
                    "paper_knee": rep["knee"], "paper_gate": p_gate, "p_fp": p_fp,
                    "chance": pt.chance_level(k, counts), "chance_from": "1/K" if counts is None else "labels"}
            if obs is None or not _paper_sides(rep, p_gate):
                rows.append({**base, **(obs or {"gate": np.nan}), "verdict": "not computable from the paper's numbers"
                             if obs is None else "nothing to compare (no P stated below FP)"})
                continue
            held = []
            for d in range(config.draws):
                r = _paper_rows(rep, k, n_test, p_gate, rep["knee"], rule, name, P_FP=float(fp_draw[d]),
                                P=dict(zip(bits, P_draw[d].tolist())), counts=counts)
                held.append(r is not None and r["differ"] == 0)
            freq = float(np.mean(held))
            rows.append({**base, **obs, "f": pt.span_share(k, p_fp, obs["gate"]),
                         "frequency": freq, "verdict": stability.verdict(obs["differ"] == 0, freq)})
    return pd.DataFrame(rows)


# --- the recommendation -----------------------------------------------------------------------

def _share(a, b) -> float:
    return a / b if b else np.nan


# Admitted drops that differ by less than this (a fraction: 0.1 points) rank as equal: a gate is not
# better for admitting a few hundredths of a point less.
DROP_RESOLUTION = 0.001

# The recommendation rule, in order: (column, larger is better, short name, what it says). The page prints them.
CRITERIA = (("knee_share", True, "the paper's Knee",
             "the larger share of the paper's stated Knees reproduced on our records, counting only the conditions "
             "where the paper states a Knee"),
            ("largest_drop", False, "the drop admitted",
             "the smaller largest accuracy drop the gate admits (P_FP - Pthresh), over our conditions and the "
             "paper's, to 0.1 points"),
            ("seed_share", True, "stability over seeds",
             "the larger share of single seeds whose own Knee equals the rule's Knee"),
            ("free_parameters", False, "parameters", "fewer parameters"))


def _rule_scores(name: str, rule, o: pd.DataFrame, paper_drops: pd.Series) -> dict:
    """The criteria of one rule from its rows of our table (``o``) and its admitted drops on the
    paper's conditions (``paper_drops``, indexed by condition)."""
    compared = o["same_knee_as_paper"].map(_known)
    drops = pd.concat([pd.Series(o["drop"].to_numpy(), index=o["condition"]),
                       paper_drops.rename(lambda c: f"{c} (paper)")]).dropna()
    applied = o["drop"].notna()
    return {"rule": name, "parameters": pt.describe(rule) if rule is not None else "delta per data set (by hand)",
            "free_parameters": len(dataclasses.fields(rule)) if rule is not None else np.nan,
            "knee_as_paper": int((o.loc[compared, "same_knee_as_paper"] == True).sum()),   # noqa: E712
            "of_paper_knees": int(compared.sum()),
            "largest_drop": float(drops.max()) if len(drops) else np.nan,
            "largest_drop_where": str(drops.idxmax()) if len(drops) else "",
            "largest_drop_ours": float(o["drop"].max()) if applied.any() else np.nan,
            "largest_drop_paper": float(paper_drops.max()) if paper_drops.notna().any() else np.nan,
            "seed_agree": int(o.loc[applied, "seed_agree"].sum()), "of_seeds": int(o.loc[applied, "of_seeds"].sum()),
            "robust_knees": int((o["verdict"] == stability.HOLDS).sum()) if "verdict" in o else np.nan,
            "of_ours": int(applied.sum())}


def _sort_keys(table: pd.DataFrame) -> pd.DataFrame:
    """The ``CRITERIA`` columns as compared: drops in steps of ``DROP_RESOLUTION``, a share that
    cannot be computed (nothing to count) last."""
    return pd.DataFrame({"knee_share": table["knee_share"].fillna(-1.0),
                         "largest_drop": (table["largest_drop"] / DROP_RESOLUTION).round().fillna(np.inf),
                         "seed_share": table["seed_share"].fillna(-1.0), "free_parameters": table["free_parameters"]})


def scores(ours: pd.DataFrame, paper: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per rule, the criteria of the recommendation (``CRITERIA``), none of them agreement with the
    hand-set delta a rule should replace:

    - ``knee_as_paper`` of ``of_paper_knees``: our conditions where the rule's Knee is the paper's
      reported Knee, counted only where the paper states one (``knee_share``);
    - ``largest_drop``: the largest P_FP - Pthresh it admits over our conditions and the paper's (the
      paired rule: its margin (1 - q) P_FP), with where (``largest_drop_where``; the paper's
      conditions marked "(paper)");
    - ``seed_agree`` of ``of_seeds``: single seeds whose own Knee equals the rule's (``seed_share``);
    - beside them, not ranked: Knees robust under resampling (``robust_knees`` of ``of_ours``).

    The paired rule has a row where ``paired`` (:func:`paired_table`) has rows. The paper's delta
    is a reference row (``reference``), not ranked. Sorted by ``rank`` (the order of ``CRITERIA``),
    with each criterion's rank among the ranked rules (``rank_<criterion>``, 1 the best)."""
    paper_fp = paper.drop_duplicates("condition").set_index("condition")["p_fp"]
    rows = []
    for name, rule in RULES.items():
        o = ours[ours["rule"] == name]
        paper_drops = paper[paper["rule"] == name].set_index("condition")["drop"]
        rows.append({**_rule_scores(name, rule, o, paper_drops), "reference": name == PAPER})
    if paired is not None and len(paired):
        rows.append({**_rule_scores(PAIRED, PAIRED_RULE, paired, paper_fp.map(PAIRED_RULE.margin)), "reference": False})
    out = pd.DataFrame(rows)
    out["knee_share"] = [_share(a, b) for a, b in zip(out["knee_as_paper"], out["of_paper_knees"])]
    out["seed_share"] = [_share(a, b) for a, b in zip(out["seed_agree"], out["of_seeds"])]
    ranked = ~out["reference"]
    keys = _sort_keys(out)
    for column, larger_better, _, _ in CRITERIA:
        out[f"rank_{column}"] = keys.loc[ranked, column].rank(method="min", ascending=not larger_better)
    order = keys[ranked].sort_values([c[0] for c in CRITERIA], ascending=[not c[1] for c in CRITERIA],
                                     kind="stable").index
    out.loc[order, "rank"] = range(1, len(order) + 1)
    return out.sort_values(["reference", "rank"], kind="stable").reset_index(drop=True)


def recommend(ours: pd.DataFrame, paper: pd.DataFrame, paired: pd.DataFrame | None = None) -> dict:
    """The first rule of :func:`scores` and why: ``rule``, its ``row``, the ``scores`` table,
    ``decided_by`` (the first criterion on which it beats the runner-up; None where they tie on
    every one), ``runner_up`` and ``reasons`` (one sentence per criterion, with its rank)."""
    table = scores(ours, paper, paired)
    ranked = table[~table["reference"]]
    keys = _sort_keys(ranked)
    best, runner = ranked.iloc[0], ranked.iloc[1] if len(ranked) > 1 else None
    decided_by = None
    if runner is not None:
        decided_by = next((c[0] for c in CRITERIA if keys[c[0]].iloc[0] != keys[c[0]].iloc[1]), None)
    m, n_par = len(ranked), int(best["free_parameters"])
    reasons = [
        f"the paper's Knee on {best['knee_as_paper']} of the {best['of_paper_knees']} of our conditions where the "
        f"paper states one (rank {int(best['rank_knee_share'])} of {m})",
        f"a largest admitted drop of {100 * best['largest_drop']:.1f} points ({best['largest_drop_where']}; "
        f"rank {int(best['rank_largest_drop'])} of {m})",
        f"the same Knee from one seed alone as from all seeds in {best['seed_agree']} of {best['of_seeds']} cases "
        f"(rank {int(best['rank_seed_share'])} of {m})",
        f"{'no' if n_par == 0 else n_par} parameter{'' if n_par == 1 else 's'} "
        f"(rank {int(best['rank_free_parameters'])} of {m})"]
    return {"rule": best["rule"], "row": best.to_dict(), "scores": table, "reasons": reasons,
            "decided_by": decided_by, "runner_up": None if runner is None else runner["rule"]}
