"""quide.analysis.pthresh: each rule on hand-made cases with known answers (degenerate ones included), the
fit of f, 'auto:<rule>' parsing and refusal, and the notebook parameter path."""
import math

import numpy as np
import pytest

from quide.analysis import pthresh as pt
from quide.measure.llm import LLMParams
from quide.measure.mixed_precision import SearchParams
from quide.measure.sweep import SweepParams

K10 = dict(num_classes=10)


def test_span_rule():
    # 1/K + f (P_FP - 1/K) = 0.1 + 0.5 * 0.8
    assert pt.gate(pt.Span(f=0.5), **K10, p_fp=0.9) == pytest.approx(0.5)
    assert pt.gate(pt.Span(f=0.0), **K10, p_fp=0.9) == pytest.approx(0.1)
    assert pt.gate(pt.Span(f=1.0), **K10, p_fp=0.9) == pytest.approx(0.9)


def test_error_ratio_rule_and_clipping():
    assert pt.gate(pt.ErrorRatio(r=2), **K10, p_fp=0.95) == pytest.approx(0.90)
    # r (1 - P_FP) > 1 - 1/K: the raw gate is below chance, clipped to 1/K
    assert pt.gate(pt.ErrorRatio(r=3), **K10, p_fp=0.5) == pytest.approx(0.1)
    assert pt.gate(pt.ErrorRatio(r=1), **K10, p_fp=0.8) == pytest.approx(0.8)


def test_relative_rule():
    assert pt.gate(pt.Relative(q=0.9), **K10, p_fp=0.8) == pytest.approx(0.72)


def test_noise_rule_seeds_binomial_and_floor():
    # one run: binomial sd sqrt(0.9 * 0.1 / 100) = 0.03
    assert pt.gate(pt.Noise(k=2), **K10, p_fp=0.9, n_test=100) == pytest.approx(0.84)
    # several seeds: their std (0.02 here) when above the binomial floor
    seeds = (0.88, 0.90, 0.92)
    assert pt.gate(pt.Noise(k=1), **K10, p_fp=0.9, p_fp_seeds=seeds, n_test=10**6) == pytest.approx(0.88)
    # three seeds that agree: the binomial floor keeps sigma above zero
    same = (0.9, 0.9, 0.9)
    assert pt.gate(pt.Noise(k=2), **K10, p_fp=0.9, p_fp_seeds=same, n_test=100) == pytest.approx(0.84)
    # a stated std stands in for the seeds
    assert pt.gate(pt.Noise(k=1), **K10, p_fp=0.9, p_fp_sd=0.05) == pytest.approx(0.85)


def test_noise_rule_one_seed_without_n_test_is_refused():
    with pytest.raises(ValueError, match="two seeds or more, or n_test"):
        pt.gate("noise", **K10, p_fp=0.9, p_fp_seeds=(0.9,))


def test_curve_rule_middle_of_largest_drop():
    curve = {16: 0.99, 8: 0.98, 4: 0.90, 2: 0.10}
    assert pt.gate(pt.Curve(), **K10, p_fp=0.99, accuracy_by_bits=curve) == pytest.approx(0.50)
    # the cliff between 8 and 4
    curve = {16: 0.99, 8: 0.97, 4: 0.30, 2: 0.10}
    assert pt.gate("curve", **K10, p_fp=0.99, accuracy_by_bits=curve) == pytest.approx(0.635)


def test_curve_rule_degenerate():
    # every quantized bit-width collapsed to chance: the cliff is FP -> the first quantized one
    collapsed = {16: 0.1, 8: 0.1, 4: 0.1, 2: 0.1}
    assert pt.gate("curve", **K10, p_fp=0.9, accuracy_by_bits=collapsed) == pytest.approx(0.5)
    # flat curve: nothing to separate, the gate falls to chance
    flat = {16: 0.9, 8: 0.9}
    assert pt.gate("curve", **K10, p_fp=0.9, accuracy_by_bits=flat) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="two bit-widths"):
        pt.gate("curve", **K10, p_fp=0.9)


@pytest.mark.parametrize("rule", [pt.Span(f=0.5), pt.ErrorRatio(), pt.Relative(), pt.Noise(), pt.Curve(),
                                  pt.Delta(0.2)])
def test_fp_at_chance_gives_chance(rule):
    assert pt.gate(rule, **K10, p_fp=0.1, accuracy_by_bits={8: 0.1}, n_test=100) == pytest.approx(0.1)
    assert pt.gate(rule, **K10, p_fp=0.05, accuracy_by_bits={8: 0.05}, n_test=100) == pytest.approx(0.1)


@pytest.mark.parametrize("rule", [pt.Span(f=0.3), pt.ErrorRatio(r=5), pt.Relative(q=0.5), pt.Noise(k=50),
                                  pt.Curve(), pt.Delta(0.9)])
def test_gate_always_within_chance_and_fp(rule):
    g = pt.gate(rule, **K10, p_fp=0.6, accuracy_by_bits={8: 0.55, 4: 0.2}, n_test=50)
    assert 0.1 <= g <= 0.6


def test_rules_validate_their_parameters():
    for bad in (lambda: pt.Span(f=1.5), lambda: pt.ErrorRatio(r=0.5), lambda: pt.Relative(q=-0.1),
                lambda: pt.Noise(k=-1), lambda: pt.Delta(2.0)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="fraction"):
        pt.gate("relative", **K10, p_fp=99.2)   # a percent, not a fraction
    with pytest.raises(ValueError, match="num_classes"):
        pt.gate("relative", num_classes=1, p_fp=0.9)


def test_fit_span_recovers_a_known_f():
    f = 0.37
    points = [(k, p, 1 / k + f * (p - 1 / k)) for k, p in ((10, 0.99), (100, 0.5), (4, 0.7), (1000, 0.7))]
    fit = pt.fit_span(points)
    assert fit["f"] == pytest.approx(f)
    assert np.allclose(fit["residuals"], 0) and np.allclose(fit["shares"], f)
    # least squares in Pthresh units: f = sum(x y) / sum(x^2)
    fit = pt.fit_span([(10, 0.9, 0.5), (10, 0.5, 0.1)])   # shares 0.5 and 0
    x, y = np.array([0.8, 0.4]), np.array([0.4, 0.0])
    assert fit["f"] == pytest.approx(x @ y / (x @ x))


def test_paper_shares_span_the_stated_range():
    shares = dict(zip(pt.paper_span_fit()["conditions"], pt.paper_span_fit()["shares"]))
    assert shares[("simplecnn", "cifar100")] == pytest.approx(0.0847, abs=1e-3)
    assert shares[("llama3_8b_instruct", "mmlu")] == pytest.approx(0.8317, abs=1e-3)
    assert min(shares.values()) == shares[("simplecnn", "cifar100")]


def test_auto_parsing_and_refusal():
    assert isinstance(pt.parse("auto:noise"), pt.Noise)
    assert pt.rule_name("auto:curve") == "curve"
    assert pt.describe("auto:error_ratio") == "error_ratio(r=2.0)"
    assert pt.is_auto("auto:span") and not pt.is_auto(0.3)
    with pytest.raises(ValueError, match=r"'span', 'error_ratio', 'relative', 'noise', 'curve'"):
        pt.parse("auto:median")
    with pytest.raises(ValueError, match="unknown Pthresh rule"):
        pt.parse("auto:delta")   # needs a hand-set delta: not automatic


def test_notebook_parameters_accept_auto():
    assert SweepParams(p_thresh="auto:noise").p_thresh == "auto:noise"
    assert SearchParams(p_thresh="auto:relative").sweep_params().p_thresh == "auto:relative"
    assert LLMParams(p_thresh="auto:curve").p_thresh == "auto:curve"
    for make in (lambda: SweepParams(p_thresh="auto:nope"), lambda: SweepParams(p_thresh=0.5),
                 lambda: LLMParams(p_thresh="auto:nope"), lambda: SearchParams(p_thresh="auto:curve")):
        with pytest.raises(ValueError, match="p_thresh"):
            make()


def test_default_run_ids_unchanged_by_the_new_parameter():
    params = SweepParams()
    assert "p_thresh" not in params.resolved()
    assert SweepParams(p_thresh="auto:noise").run_id() != params.run_id()


def _run(p_by_bits, n_test=10000):
    return [{"bits": b, "P": p, "T_ms": 1.0, "C_paper": 32 / b, "num_classes": 10, "p_fp": p_by_bits[32],
             "n_test": n_test, "delta": 0.19, "p_thresh": 0.0, "I": 32 / b * p, "I_gated": 0.0, "ACP": 32 / b * p,
             "ALS": p} for b, p in p_by_bits.items()]


def test_sweep_params_auto_noise_resolves_in_the_records():
    """The path every run takes with p_thresh='auto:noise': one gate from the run itself, then its records."""
    from quide.analysis.results import make_record
    params = SweepParams(p_thresh="auto:noise")
    run = _run({32: 0.99, 16: 0.99, 8: 0.985, 4: 0.9, 2: 0.1})
    gate = pt.decide(params.p_thresh, delta=0.19, num_classes=10, p_fp=0.99,
                     accuracy_by_bits={r["bits"]: r["P"] for r in run}, n_test=10000)
    records = [make_record(experiment="ptq_sweep", model="m", dataset="d", data_source="d", seed=0, bits=r["bits"],
                           P=r["P"], T_ms=r["T_ms"], T_kind="simulated", C_paper=r["C_paper"], C_true=r["C_paper"],
                           num_classes=10, p_fp=0.99, provenance={}, **gate.record_fields()) for r in run]
    expected = 0.99 - 2 * math.sqrt(0.99 * 0.01 / 10000)
    assert all(r["p_thresh"] == pytest.approx(expected) for r in records)
    assert {r["p_thresh_rule"] for r in records} == {"noise(k=2.0)"}
    assert all(r["delta"] is None for r in records)
    by_bits = {r["bits"]: r["I_gated"] for r in records}
    assert by_bits[4] == 0 and by_bits[8] == 0          # 0.985 is below 0.99 - 0.002
    assert by_bits[16] == pytest.approx(2 * (0.99 - expected) / math.log2(2))


def test_study_on_made_up_records():
    """The analysis on a made-up condition (one not in the registry): every rule gives a gate and a
    Knee; the paper's delta has none to give."""
    import pandas as pd
    from quide.analysis import pthresh_study as ps
    from quide.analysis.stability import StabilityConfig
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.004), (2, -0.004)):
        for r in _run({32: 0.95 + shift, 16: 0.95 + shift, 8: 0.94 + shift, 4: 0.6 + shift, 2: 0.45}):
            rows.append({**r, "seed": seed, "model": "toy", "dataset": "toyset", "data_source": "toy",
                         "placement": "graph", "profile": "paper", "T_kind": "simulated", "C_true": r["C_paper"]})
    table = ps.our_table(pd.DataFrame(rows), StabilityConfig(draws=20))
    assert set(table["rule"]) == set(ps.RULES)
    assert table.loc[table["rule"] == ps.PAPER, "verdict"].item() == "no delta for this condition"
    curve = table[table["rule"] == "curve"].iloc[0]
    assert curve["gate"] == pytest.approx((0.94 + 0.6) / 2)
    assert curve["knee"] == 8   # 4 bits (0.6) is below the gate (0.77)
