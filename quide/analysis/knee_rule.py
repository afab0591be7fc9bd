"""The rules that decide the Knee between 4 and 8 bits and the paper's Claim 3 (I' overturns I).

Fake quantization runs one graph at every bit-width below 16, so T(8) = T(4) and under I' 4 bits beat
8 exactly when the 4-bit drop from FP, d4, stays under (delta + d8) / 2 (drops in points): the d4 rule.
The scorecard and the verdicts both use these rules.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import conditions
from .index import ranking
from .paper import reported


@dataclass(frozen=True)
class D4Rule:
    """4 vs 8 bits under I': d4, d8 and the gate margin g in points, the bound d4 must stay under
    for 4 bits to win, and the winner. ``t_ratio`` = log2(T(4)+1) / log2(T(8)+1) (1: one graph)."""
    d4: float
    d8: float
    gate: float
    t_ratio: float = 1.0

    @property
    def bound(self) -> float:
        """4 beats 8 iff 8 (g - d4) / L4 > 4 (g - d8) / L8, i.e. d4 < g - (g - d8) t_ratio / 2;
        with t_ratio = 1, (g + d8) / 2."""
        return self.gate - (self.gate - self.d8) * self.t_ratio / 2

    @property
    def knee(self) -> int:
        return 4 if self.d4 < self.bound else 8

    def text(self) -> str:
        same_t = abs(self.t_ratio - 1) < 1e-9
        bound = "(δ + d8)/2" if same_t else "g − (g − d8)·L4/(2·L8)"
        return (f"d4 rule: d4 = {self.d4:.2f} pts {'<' if self.knee == 4 else '≥'} {bound} = {self.bound:.2f} pts, "
                f"so {self.knee} bits win under I'" + ("; T(8) = T(4): one graph" if same_t else ""))


def d4_rule(p_fp: float, p8: float, p4: float, p_thresh: float, t8: float = 1.0, t4: float = 1.0) -> D4Rule:
    """The d4 rule for accuracies as fractions and latencies in ms (equal by default: one graph)."""
    return D4Rule(100 * (p_fp - p4), 100 * (p_fp - p8), 100 * (p_fp - p_thresh),
                  float(np.log2(t4 + 1) / np.log2(t8 + 1)))


def d4_rule_of_table(t: pd.DataFrame) -> D4Rule:
    """The rule on one condition's Table 1 (seed means; ``aggregate.table1`` shape)."""
    by = t.assign(bits=t["bits"].astype(int)).set_index("bits")
    return d4_rule(by.loc[32, "P_mean"], by.loc[8, "P_mean"], by.loc[4, "P_mean"], by.loc[32, "p_thresh"],
                   by.loc[8, "T_ms_mean"], by.loc[4, "T_ms_mean"])


def paper_d4_rule(model: str, dataset: str) -> D4Rule | None:
    """The rule on the paper's own numbers for a condition, where it states P at 4 bits; T(8) = T(4)
    (one graph, as its ResNet-18 latencies show); an unstated P(8) is taken at P_FP (d8 = 0: the paper
    finds 8 bits near-lossless; a positive d8 only lowers the bar that 4 bits must clear... see ``bound``)."""
    rep, spec = reported(model, dataset), conditions.CONDITIONS[(model, dataset)]
    if 4 not in rep.get("P", {}) or "P_FP" not in rep:
        return None
    classes = {"cifar100": 100, "imagenet": 1000, "mmlu": 4}.get(dataset, 10)
    gate = rep.get("p_thresh", max(1 / classes, rep["P_FP"] - spec.delta))
    return d4_rule(rep["P_FP"], rep["P"].get(8, rep["P_FP"]), rep["P"][4], gate)



def _overturns(raw_top: int, gated_top: int, among: tuple | None = None):
    """Claim 3 on CIFAR-10 and ResNet-18, as the paper states it: I ranks ``raw_top`` first, I'
    ranks ``gated_top`` first (among the bit-widths ``among``; None: all), and the model I prefers
    passes the gate (its I' > 0): the two disagree about a viable model, not merely about one at
    chance (2 vs 32 bits follows from any 2-bit collapse)."""
    def claim(t: pd.DataFrame) -> bool:
        bits = [int(b) for b in t["bits"]]
        keep = [i for i, b in enumerate(bits) if among is None or b in among]
        labels = [bits[i] for i in keep]
        raw = ranking(labels, t["I_mean"].to_numpy(float)[keep])
        gated = ranking(labels, t["I_gated_mean"].to_numpy(float)[keep])
        gated_of = dict(zip(bits, t["I_gated_mean"].to_numpy(float)))
        return raw[0] == raw_top and gated[0] == gated_top and gated_of.get(raw_top, 0) > 0
    return claim


def overturn_claim(rep: dict):
    """The paper's Claim 3 for a condition where I and I' disagree: (quantity, the paper's words,
    claim function on a Table 1) from its orders, or from its I and I' at 4 and 8 bits; None where
    the paper states no disagreement there."""
    if "order_I" in rep and rep["order_I"][0] != rep["order_I_gated"][0]:
        top, gated_top = rep["order_I"][0], rep["order_I_gated"][0]
        return ("I' overturns I's best bit-width", f"yes: {top} under I, {gated_top} under I', the {top}-bit model "
                "above the gate", _overturns(top, gated_top))
    raw, gated = rep.get("I", {}), rep.get("I_gated", {})
    if "order_I" not in rep and {4, 8} <= set(raw) & set(gated):
        top, gated_top = max((4, 8), key=raw.get), max((4, 8), key=gated.get)
        if top != gated_top:
            return ("I' overturns I between 4 and 8 bits", f"yes: {top} under I, {gated_top} under I', the {top}-bit "
                    "model above the gate", _overturns(top, gated_top, (4, 8)))
    return None
