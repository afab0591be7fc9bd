"""The ablation of the 4-bit gap: which PTQ choices give the paper's 4-bit collapse.

Fake quantization runs one graph at 8, 4 and 2 bits, so T(8) = T(4) and the Knee between 4 and 8
bits is decided by accuracy alone: 4 bits win under I' exactly when the 4-bit drop d4 stays under
(delta + d8) / 2 (:class:`quide.analysis.knee_rule.D4Rule`). The paper's harder conditions have their
Knee at 8 bits, with 4-bit drops (:func:`paper_drop`, from its reported P) well above the PTQ sweep's.
The ablation changes one PTQ choice at a time (and a few together) on the PTQ sweep's checkpoints and
asks which of them reach the paper's drop.

``CHOICES`` is the catalogue: each :class:`Choice` names the ``PTQConfig`` fields it sets
(``quide.measure.quant``; every other field keeps the sweep's value) and the reading of the paper's
Section 3.3 it corresponds to. The measurement (``quide.measure.ablation``) writes one record file
per (model, seed, choice) under ``<results root>/ptq_ablation/``; :func:`summary` reads them back.
This module needs no torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import aggregate, paper
from .knee_rule import D4Rule, d4_rule_of_table
from .results import load_records

EXPERIMENT = "ptq_ablation"
MODELS = ("simplecnn", "resnet18_cifar")   # the paper's two conditions with a Knee at 8 that run here
DATASET = "cifar10"
BASELINE = "baseline"

# Section 3.3's sentences on PTQ, lettered as the readings below cite them.
SECTION_3_3 = {
    "a": "We perform uniform, symmetric post-training quantization (PTQ) on the full-precision baseline",
    "b": "utilizing a standardized graph-mode optimization framework",
    "c": "The quantization process targets both weights and activations across all convolutional and linear "
         "layers for bit-widths b in {32, 16, 8, 4, 2}",
    "d": "we calculate the dynamic range of each layer by evaluating a representative calibration subset "
         "comprising 512 training images drawn uniformly at random (independently per random seed)",
    "e": "Following established PTQ best practices (Wu et al., 2020), we apply linear quantization to the "
         "weight tensors and affine (asymmetric) quantization to the activation maps",
}


@dataclass(frozen=True)
class Choice:
    """One cell of the ablation: the PTQConfig fields it sets and the reading of Section 3.3 it is."""
    name: str                 # the records' ``ptq_choice``; letters, digits and _
    label: str                # how the book names it
    overrides: Mapping = field(default_factory=dict)   # PTQConfig field -> value; the rest the sweep's
    reading: str = ""         # which reading of Section 3.3 (letters: SECTION_3_3)
    combination: bool = False
    models: tuple | None = None   # the models it changes anything for (None: every model)

    def __post_init__(self):
        if not self.name.replace("_", "").isalnum() or not self.label or not self.reading:
            raise ValueError(f"Choice {self.name!r}: needs a plain name, a label and a reading")
        if self.combination != (len(self.overrides) > 1):
            raise ValueError(f"Choice {self.name!r}: a combination sets several fields, a single choice one")

    def applies_to(self, model: str) -> bool:
        return self.models is None or model in self.models


CHOICES = (
    Choice(BASELINE, "baseline (the PTQ sweep's)", {},
           "The PTQ sweep's reading of all of (a)-(e): torch.ao's FX graph mode as the framework of (b) "
           "(BatchNorm folded, activation quantizers at the model input and after every layer, ReLU fused, "
           "the logits included), every layer's weights and activations at b bits (c), the min-max range of "
           "512 images drawn per seed (d), symmetric per-tensor weights and affine activations (a, e), "
           "rounding to nearest."),
    Choice("per_channel", "per-channel weights", {"per_channel": True},
           "(e) with one weight scale per output channel: torch.ao's default weight observer for convolutions "
           "and Wu et al.'s recommendation; Section 3.3 does not state the granularity."),
    Choice("observer_percentile", "percentile observer", {"observer": "percentile"},
           "(d)'s 'dynamic range' read as a clipped range, the 99.99th percentile of the calibration "
           "activations (Wu et al.'s percentile calibration), instead of their min and max."),
    Choice("observer_mse", "MSE observer", {"observer": "mse"},
           "(d)'s 'dynamic range' read as the clipping range that minimises the activations' quantization "
           "error, as torch.ao's histogram observer does in spirit."),
    Choice("bn_unfolded", "BatchNorm not folded", {"fold_batchnorm": False},
           "Against (b): the convolutions' own weights quantized and each BatchNorm kept in FP32 after them, "
           "as eager-mode PTQ without fusing modules does; a graph-mode framework folds BatchNorm first. "
           "SimpleCNN has no BatchNorm.", models=("resnet18_cifar",)),
    Choice("first_last_fp", "first and last layer FP", {"fp_first_last": True},
           "Against (c)'s 'all convolutional and linear layers': the first and last layer kept in FP32 "
           "(their weights, the model input and the logits), a common PTQ practice. C counts b bits, as the "
           "paper counts a uniform bit-width; C_true counts the FP32 weights."),
    Choice("logits_fp", "logits FP", {"quantize_logits": False},
           "(c) read as quantizing what the layers compute with: the logits, which no layer reads, stay FP32."),
    Choice("act8", "activations at 8 bits", {"activation_bits": 8},
           "(c)'s bit-width b read as the weights' alone: activations stay at 8 bits (W4A8 at 4 bits)."),
    Choice("act_fp", "activations FP (weight-only)", {"activation_bits": 32},
           "(c) read as weight-only quantization: activations stay FP32."),
    Choice("act_symmetric", "symmetric activations", {"activation_scheme": "symmetric"},
           "(a)'s 'symmetric' applied to the activations too, against (e)'s 'affine (asymmetric)': a ReLU "
           "output then uses half the codes, one bit fewer."),
    Choice("calib32", "32 calibration images", {"calib_size": 32},
           "(d)'s 512 images bracketed from below: 32, drawn per seed as the 512 are."),
    Choice("calib5000", "5,000 calibration images", {"calib_size": 5000},
           "(d)'s 512 images bracketed from above: 5,000, drawn per seed as the 512 are."),
    Choice("truncate", "rounding toward zero", {"rounding": "truncate"},
           "(e)'s 'linear quantization' implemented by casting x/scale + zero point to an integer (rounding "
           "toward zero) instead of rounding to nearest; Section 3.3 does not name the rounding. Stochastic "
           "rounding is not run: no PTQ framework deploys it, so it is no reading of Section 3.3."),
    Choice("inputs", "inputs placement", {"placement": "inputs"},
           "(b) read as quantizing every layer's input only, the logits FP32: the PTQ sweep's second placement."),
    Choice("wu2020", "per-channel + percentile", {"per_channel": True, "observer": "percentile"},
           "(e)'s 'established PTQ best practices' taken as Wu et al. (2020) give them: per-channel weights and "
           "percentile activation ranges. The mildest reading.", combination=True),
    Choice("symmetric_per_channel", "symmetric activations + per-channel weights",
           {"activation_scheme": "symmetric", "per_channel": True},
           "(a)'s 'symmetric' for the activations with the weight error made small: what the activations' "
           "lost bit alone does.", combination=True),
    Choice("symmetric_truncate", "symmetric activations + rounding toward zero",
           {"activation_scheme": "symmetric", "rounding": "truncate"},
           "The two harshest readings together: (a)'s 'symmetric' for the activations and a cast to integer "
           "for (e)'s 'linear quantization'.", combination=True),
)
BY_NAME = {c.name: c for c in CHOICES}


def choice(name: str) -> Choice:
    """The catalogue's entry; ValueError naming the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown PTQ choice {name!r}; choose from {list(BY_NAME)}") from None


def choices_for(model: str) -> tuple[Choice, ...]:
    return tuple(c for c in CHOICES if c.applies_to(model))


def paper_drop(model: str, dataset: str = DATASET) -> float | None:
    """The paper's 4-bit drop from FP in points, from its reported P_FP and P(4) (None where it
    states no P(4)); for SimpleCNN on CIFAR-10 these are seed 0's numbers (its Sec. 4.2)."""
    rep = paper.reported(model, dataset)
    if 4 not in rep.get("P", {}) or "P_FP" not in rep:
        return None
    return 100 * (rep["P_FP"] - rep["P"][4])


def load(root=None) -> pd.DataFrame:
    """The ablation's records under ``root`` (None: the results root), or an empty frame where
    there are none yet."""
    try:
        return load_records(root, EXPERIMENT)
    except FileNotFoundError:
        return pd.DataFrame()


def cell_tables(records) -> dict[tuple[str, str, str], pd.DataFrame]:
    """{(model, dataset, choice): its Table 1 (``aggregate.table1``: seed means, the Knee marked)}."""
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if df.empty:
        return {}
    out = {}
    for (model, dataset, name), g in df.groupby(["model", "dataset", "ptq_choice"], sort=False):
        t = aggregate.table1(g)
        out[(model, dataset, name)] = t.assign(bits=t["bits"].astype(int))
    return out


def knee_of(t: pd.DataFrame, among=None) -> int | None:
    """The bit-width of peak seed-mean I' in a cell's Table 1 (``among``: only those bit-widths);
    None where no I' is above 0."""
    rows = t if among is None else t[t["bits"].isin(among)]
    values = rows["I_gated_mean"].to_numpy(float)
    peak = int(aggregate.peak_position(values))
    return None if peak < 0 else int(rows["bits"].iloc[peak])


def _seed_drops(g: pd.DataFrame, bits: int) -> np.ndarray:
    at = g[g["bits"] == bits]
    return 100 * (at["p_fp"].to_numpy(float) - at["P"].to_numpy(float))


def summary(records) -> pd.DataFrame:
    """One row per (model, dataset, choice), in the catalogue's order: the seed-mean drops d4 and d8
    (points; ``d4_std`` over seeds), the d4 rule's bound (delta + d8)/2 and Knee, the Knee by argmax of
    seed-mean I' over every bit-width and over {4, 8}, the paper's drop and whether d4 reaches it."""
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    tables = cell_tables(df)
    rows = []
    for (model, dataset, name), t in tables.items():
        g = df[(df["model"] == model) & (df["dataset"] == dataset) & (df["ptq_choice"] == name)]
        g = g.assign(bits=g["bits"].astype(int))
        rule: D4Rule = d4_rule_of_table(t)
        known = BY_NAME.get(name)
        target = paper_drop(model, dataset)
        rows.append({
            "model": model, "dataset": dataset, "data_source": t["data_source"].iloc[0], "choice": name,
            "label": known.label if known else name, "combination": bool(known and known.combination),
            "n_seeds": int(t["n_seeds"].min()), "d4": rule.d4, "d4_std": float(np.std(_seed_drops(g, 4), ddof=1))
            if t["n_seeds"].min() > 1 else np.nan, "d8": rule.d8, "gate": rule.gate, "t_ratio": rule.t_ratio,
            "bound": rule.bound, "knee_rule": rule.knee, "knee": knee_of(t), "knee_4v8": knee_of(t, (4, 8)),
            "paper_d4": target, "reaches_paper": None if target is None else bool(rule.d4 >= target),
        })
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {c.name: i for i, c in enumerate(CHOICES)}
    out["_order"] = out["choice"].map(lambda n: order.get(n, len(order)))
    return out.sort_values(["model", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def rule_disagreements(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a :func:`summary` where the d4 rule's Knee is not the Knee of seed-mean I' between
    4 and 8 bits, or not the overall Knee where that is 4 or 8 (empty when the rule holds everywhere)."""
    if table.empty:
        return table
    overall = table["knee"].isin([4, 8]) & (table["knee"] != table["knee_rule"])
    return table[(table["knee_4v8"] != table["knee_rule"]) | overall]


def reaching(table: pd.DataFrame, model: str) -> list[str]:
    """The labels of the choices whose 4-bit drop reaches the paper's on ``model``."""
    rows = table[(table["model"] == model) & table["reaches_paper"].fillna(False).astype(bool)]
    return list(rows["label"])
