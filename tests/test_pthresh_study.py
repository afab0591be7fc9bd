"""quide.analysis.pthresh_study on hand-made records: every rule on a made-up condition, the paper's Knee
counted only where the paper states one, the paired rule with and without per-sample predictions
(the predictions reader replaced by a stand-in), and the recommendation rule's order."""
import math
import sys
import types

import numpy as np
import pandas as pd
import pytest

from quide.analysis import pthresh_study as ps
from quide.analysis.stability import StabilityConfig

FEW = StabilityConfig(draws=20)
T_MS = {32: 2.0, 16: 2.0, 8: 2.0, 4: 2.0, 2: 2.0}


def _records(model, dataset, p_by_seed, n_test=10000, predictions=None):
    """Records of one condition: ``p_by_seed`` {seed: {bits: P}}; ``predictions`` {(seed, bits):
    file name} where a record names a predictions file."""
    rows = []
    for seed, p_by_bits in p_by_seed.items():
        for b, p in p_by_bits.items():
            row = {"bits": b, "P": p, "T_ms": T_MS[b], "C_paper": 32 / b, "C_true": 32 / b, "num_classes": 10,
                   "p_fp": p_by_bits[32], "n_test": n_test, "delta": 0.19, "p_thresh": 0.0, "seed": seed,
                   "model": model, "dataset": dataset, "data_source": dataset, "placement": "graph",
                   "profile": "paper", "T_kind": "simulated",
                   # the record's own metrics (the study recomputes I' under each rule)
                   "I": 32 / b * p, "I_gated": 0.0, "ACP": 32 / b * p, "ALS": p}
            if predictions is not None:
                row["predictions_file"] = predictions.get((seed, b))
            rows.append(row)
    return rows


def _three_seeds(curve):
    return {seed: {b: min(p + shift, 1.0) if b != 2 else p for b, p in curve.items()}
            for seed, shift in ((0, 0.0), (1, 0.004), (2, -0.004))}


def _paper(rules=tuple(ps.RULES)):
    """A paper table with no condition: scores then read only our records."""
    return pd.DataFrame(columns=["condition", "rule", "p_fp", "drop"])


def test_study_on_made_up_records():
    """The analysis on a made-up condition (one not in the registry): every rule gives a gate and a
    Knee; the paper's delta has none to give."""
    rows = _records("toy", "toyset", _three_seeds({32: 0.95, 16: 0.95, 8: 0.94, 4: 0.6, 2: 0.45}))
    table = ps.our_table(pd.DataFrame(rows), FEW)
    assert set(table["rule"]) == set(ps.RULES)
    assert table.loc[table["rule"] == ps.PAPER, "verdict"].item() == "no delta for this condition"
    curve = table[table["rule"] == "curve"].iloc[0]
    assert curve["gate"] == pytest.approx((0.94 + 0.6) / 2)
    assert curve["knee"] == 8   # 4 bits (0.6) is below the gate (0.77)
    assert curve["drop"] == pytest.approx(0.95 - 0.77)
    assert curve["seed_knees"] == [8, 8, 8] and (curve["seed_agree"], curve["of_seeds"]) == (3, 3)
    assert (table["chance_from"] == "1/K").all() and table["chance"].eq(0.1).all()


def test_a_condition_without_a_paper_knee_is_not_counted():
    """The toy condition has no paper Knee; SimpleCNN / MNIST has the paper's Knee 4. Every rule's
    count is out of 1, whatever Knee it gives on the toy condition."""
    curve = {32: 0.99, 16: 0.99, 8: 0.985, 4: 0.975, 2: 0.1}
    rows = _records("toy", "toyset", _three_seeds(curve)) + _records("simplecnn", "mnist", _three_seeds(curve))
    ours = ps.our_table(pd.DataFrame(rows), FEW)
    toy = ours[ours["model"] == "toy"]
    assert toy["paper_knee"].isna().all() and toy["same_knee_as_paper"].isna().all()
    sc = ps.scores(ours, _paper()).set_index("rule")
    assert (sc["of_paper_knees"] == 1).all()
    mnist = ours[ours["model"] == "simplecnn"].set_index("rule")
    for rule, row in sc.iterrows():
        assert row["knee_as_paper"] == int(mnist.loc[rule, "knee"] == 4)
    # the delta and the curve keep 4 bits (0.975 is far above their gates); relative gates it (0.99 * 0.99)
    assert sc.loc["curve", "knee_as_paper"] == 1 and sc.loc["relative", "knee_as_paper"] == 0


# --- the paired rule -------------------------------------------------------------------------

N = 2000


def _answers(wrong: int, fp_wrong: int = 100):
    """Labels and predictions on N samples: FP wrong on the first ``fp_wrong``; a quantized model
    wrong on those and on ``wrong`` more."""
    y = np.arange(N) % 10
    pred = y.copy()
    pred[:fp_wrong + wrong] = (y[:fp_wrong + wrong] + 1) % 10
    return y, pred


# extra errors over FP per bit-width, the same for every seed: 16 and 8 bits within the margin
# (0.99 * 0.95: 0.95 points of 2000 samples = 19), 4 bits far outside it, 2 bits collapsed
EXTRA = {32: 0, 16: 0, 8: 2, 4: 200, 2: 1700}


@pytest.fixture
def with_predictions(monkeypatch):
    """Records of SimpleCNN / MNIST that name predictions files, and a stand-in reader for them."""
    files, p_by_seed = {}, {}
    for seed in (0, 1, 2):
        p_by_seed[seed] = {}
        for b, extra in EXTRA.items():
            name = f"s{seed}-b{b}.npz"
            files[(seed, b)] = name
            p_by_seed[seed][b] = (N - 100 - extra) / N
    answers = {name: _answers(EXTRA[b]) for (seed, b), name in files.items()}
    calls = []

    def load(record, root=None):
        calls.append(record["predictions_file"])
        return answers[record["predictions_file"]]
    from quide.analysis import predictions
    monkeypatch.setattr(predictions, "load", load)
    rows = _records("simplecnn", "mnist", p_by_seed, n_test=N, predictions=files)
    return pd.DataFrame(rows), calls


def test_paired_rule_on_records_with_predictions(with_predictions):
    records, calls = with_predictions
    paired = ps.paired_table(records)
    assert len(paired) == 1 and calls
    row = paired.iloc[0]
    assert row["passes_by_bits"] == "16: 3 of 3; 8: 3 of 3; 4: 0 of 3; 2: 0 of 3"
    assert (row["tested"], row["passing"]) == (12, 6)
    # I' = C (P - 0.99 P_FP) / log2(3): 8 bits (C 4, P 0.949) beats 16 bits (C 2, P 0.95); 4 bits fails
    assert row["knee"] == 8 and row["seed_knees"] == [8, 8, 8]
    assert row["paper_knee"] == 4 and row["same_knee_as_paper"] is not None and not row["same_knee_as_paper"]
    assert row["drop"] == pytest.approx(0.01 * 0.95)
    assert row["chance_from"] == "labels" and row["chance"] == pytest.approx(0.1)   # N/10 of each class
    # the labels also set chance for the threshold rules
    ours = ps.our_table(records, FEW)
    assert (ours["chance_from"] == "labels").all()
    sc = ps.scores(ours, _paper(), paired).set_index("rule")
    assert ps.PAIRED in sc.index
    assert (sc.loc[ps.PAIRED, "knee_as_paper"], sc.loc[ps.PAIRED, "of_paper_knees"]) == (0, 1)
    assert sc.loc[ps.PAIRED, "largest_drop"] == pytest.approx(0.0095)


def test_paired_rule_awaits_predictions():
    """No record names a predictions file (or the key is empty): no paired row, nothing to score."""
    rows = _records("simplecnn", "mnist", _three_seeds({32: 0.99, 16: 0.99, 8: 0.985, 4: 0.975, 2: 0.1}))
    paired = ps.paired_table(pd.DataFrame(rows))
    assert paired.empty and list(paired.columns) == ps.PAIRED_COLUMNS
    ours = ps.our_table(pd.DataFrame(rows), FEW)
    assert ps.PAIRED not in set(ps.scores(ours, _paper(), paired)["rule"])
    # records with the key but no file are the same case
    rows = [{**r, "predictions_file": None} for r in rows]
    assert ps.paired_table(pd.DataFrame(rows)).empty


def test_paired_rule_reader_only_where_needed(monkeypatch):
    def fail(record, root=None):
        raise AssertionError("the reader must not be called for records without predictions")
    from quide.analysis import predictions
    monkeypatch.setattr(predictions, "load", fail)
    rows = _records("toy", "toyset", _three_seeds({32: 0.95, 16: 0.95, 8: 0.94, 4: 0.6, 2: 0.45}))
    assert ps.paired_table(pd.DataFrame(rows)).empty
    assert (ps.our_table(pd.DataFrame(rows), FEW)["chance_from"] == "1/K").all()


# --- the recommendation ----------------------------------------------------------------------

def _ours(rule, knees, drops, seeds=(3, 3), verdict="holds robustly"):
    """Rows of our table for one rule: conditions A (paper Knee 8), B (paper Knee 4), C (none)."""
    paper_knees = {"A": 8, "B": 4, "C": None}
    return [{"condition": c, "rule": rule, "paper_knee": paper_knees[c], "knee": k, "gate": 0.5,
             "same_knee_as_paper": None if paper_knees[c] is None else k == paper_knees[c], "drop": d,
             "seed_agree": seeds[0], "of_seeds": seeds[1], "verdict": verdict}
            for c, k, d in zip("ABC", knees, drops)]


def test_recommendation_order():
    rows = (_ours(ps.PAPER, (4, 4, 4), (0.3, 0.2, 0.1))
            + _ours("span", (4, 4, 4), (0.40, 0.3, 0.2))              # 1 of 2 paper Knees (B)
            + _ours("error_ratio", (8, 4, 8), (0.05, 0.02, 0.3))      # 2 of 2, drop 30 points (on C)
            + _ours("relative", (8, 4, 8), (0.01, 0.01, 0.01), seeds=(1, 3))   # 2 of 2, drop 1 point
            + _ours("noise", (8, 4, 8), (0.0101, 0.01, 0.01))         # 2 of 2, drop 1.01 points: a tie
            + _ours("curve", (8, 8, 8), (0.01, 0.01, 0.01)))          # 1 of 2 (A)
    ours = pd.DataFrame(rows)
    choice = ps.recommend(ours, _paper())
    table = choice["scores"]
    assert list(table["rule"]) == ["noise", "relative", "error_ratio", "curve", "span", ps.PAPER]
    # noise and relative tie on the Knee share and (to 0.1 points) on the drop; noise is steadier over seeds
    assert choice["rule"] == "noise" and choice["runner_up"] == "relative" and choice["decided_by"] == "seed_share"
    by = table.set_index("rule")
    assert by.loc["error_ratio", "largest_drop"] == pytest.approx(0.3)
    assert by.loc["error_ratio", "largest_drop_where"] == "C"
    assert math.isnan(by.loc[ps.PAPER, "rank"]) and by.loc[ps.PAPER, "reference"]
    assert by.loc["noise", "rank_knee_share"] == 1 and by.loc["curve", "rank_knee_share"] == 4
    assert "1 of 5" in choice["reasons"][0] and "2 of the 2" in choice["reasons"][0]


def test_recommendation_counts_the_paper_drops():
    """The admitted drop on the paper's conditions counts too: relative admits 1 point on ours but
    (made up) 5 on a paper condition, so error_ratio (2 points everywhere) ranks first."""
    rows = _ours("relative", (8, 4, 8), (0.01, 0.01, 0.01)) + _ours("error_ratio", (8, 4, 8), (0.02, 0.02, 0.02))
    paper = pd.DataFrame([{"condition": "P", "rule": "relative", "p_fp": 0.9, "drop": 0.05},
                          {"condition": "P", "rule": "error_ratio", "p_fp": 0.9, "drop": 0.02}])
    choice = ps.recommend(pd.DataFrame(rows), paper)
    assert choice["rule"] == "error_ratio" and choice["decided_by"] == "largest_drop"
