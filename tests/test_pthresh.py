"""quide.analysis.pthresh: each rule on hand-made cases with known answers (degenerate ones included), the
fit of f, 'auto:<rule>' parsing and refusal, and the notebook parameter path."""
import math
from pathlib import Path

import numpy as np
import pytest

from quide.analysis import pthresh as pt
from quide.analysis.index import gated_index
from quide.measure.llm import LLMParams
from quide.measure.mixed_precision import SearchParams
from quide.measure.sweep import SweepParams

K10 = dict(num_classes=10)
COMMITTED = Path(__file__).resolve().parents[1] / "data" / "results"


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
def test_nothing_passes_when_fp_is_at_or_below_chance(rule):
    for p_fp in (0.1, 0.05):
        g = pt.gate(rule, **K10, p_fp=p_fp, accuracy_by_bits={8: 0.12}, n_test=100)
        assert g == pt.NOTHING_PASSES == 1.0
        # a configuration above both chance and FP still gets I' = 0
        assert float(gated_index(4.0, 0.12, 1.0, g)) == 0.0


def test_fp_below_chance_gates_the_reviewers_case():
    """K = 4, P_FP = 0.24, a configuration at P = 0.27: a gate at 1/K would give it I' > 0."""
    g = pt.gate("relative", num_classes=4, p_fp=0.24)
    assert float(gated_index(8.0, 0.27, 2.0, g)) == 0.0
    assert float(gated_index(8.0, 0.27, 2.0, 0.25)) > 0    # what the old floor at 1/K gave


MMLU_TEST_ANSWERS = (3222, 3462, 3582, 3776)   # A-D: 22.9 / 24.7 / 25.5 / 26.9% of 14,042


def test_chance_is_the_majority_class_rate_where_labels_are_unbalanced():
    assert pt.chance_level(4) == pytest.approx(0.25)
    assert pt.chance_level(4, MMLU_TEST_ANSWERS) == pytest.approx(3776 / 14042)
    assert pt.chance_level(10, [1000] * 10) == pytest.approx(0.1)        # balanced: 1/K
    assert pt.chance_level(3, [5, 5]) == pytest.approx(0.5)              # a class absent from the labels
    for bad in ([1, 2, 3, 4, 5], [-1, 3], [0, 0], [0.5, 0.5], [[1, 2]]):
        with pytest.raises(ValueError, match="class_counts"):
            pt.chance_level(4, bad)


def test_unbalanced_chance_moves_the_gate_and_what_passes():
    """MMLU: P_FP = 0.26 is above 1/4 but not above the majority answer's 26.9%."""
    with_k = pt.gate("relative", num_classes=4, p_fp=0.26)
    assert with_k == pytest.approx(0.99 * 0.26) and float(gated_index(8.0, 0.265, 2.0, with_k)) > 0
    with_labels = pt.gate("relative", num_classes=4, p_fp=0.26, class_counts=MMLU_TEST_ANSWERS)
    assert with_labels == pt.NOTHING_PASSES and float(gated_index(8.0, 0.265, 2.0, with_labels)) == 0
    # above the majority rate, the floor of the clip is that rate, not 1/K
    assert pt.gate(pt.Span(f=0.0), num_classes=4, p_fp=0.6, class_counts=MMLU_TEST_ANSWERS) \
        == pytest.approx(3776 / 14042)
    assert pt.decide("auto:curve", num_classes=4, p_fp=0.6, accuracy_by_bits={8: 0.6},
                     class_counts=MMLU_TEST_ANSWERS).p_thresh == pytest.approx(3776 / 14042)


def test_committed_mmlu_answers_are_unbalanced():
    from quide.analysis import pthresh_study
    counts = pthresh_study.mmlu_class_counts(COMMITTED)
    assert counts is not None, "the LLM case study's samples files are committed"
    assert counts == MMLU_TEST_ANSWERS
    assert pt.chance_level(4, counts) > 0.25


# --- the paired rule ------------------------------------------------------------------------------

def _predictions(n=10000, fp_wrong=800, extra_wrong=0, extra_right=0, k=10):
    """Labels, FP's predictions (the first ``fp_wrong`` samples wrong) and a quantized model's:
    FP's answers with ``extra_wrong`` of FP's right ones made wrong and ``extra_right`` of FP's wrong
    ones made right."""
    y = np.arange(n) % k
    fp = y.copy()
    fp[:fp_wrong] = (y[:fp_wrong] + 1) % k
    q = fp.copy()
    q[fp_wrong:fp_wrong + extra_wrong] = (y[fp_wrong:fp_wrong + extra_wrong] + 1) % k
    q[:extra_right] = y[:extra_right]
    return y, fp, q


def test_paired_counts_and_drop_are_exact():
    y, fp, q = _predictions(extra_wrong=30, extra_right=10)
    r = pt.paired_noninferiority(y, fp, q, 0.01)
    assert (r["n"], r["b"], r["c"]) == (10000, 30, 10)
    assert r["p_fp"] == pytest.approx(0.92) and r["p"] == pytest.approx(0.918)
    assert r["drop"] == pytest.approx(0.002)
    assert r["drop"] < r["drop_upper"] < r["margin"] and r["non_inferior"]


def test_paired_known_decisions():
    y, fp, same = _predictions()
    # identical predictions: no discordant sample, the drop is 0 for certain
    r = pt.paired_noninferiority(y, fp, same, 0.01)
    assert r["drop_upper"] == 0 and r["non_inferior"] and r["p_worse"] == 1.0
    # ... but a zero margin is never shown with a zero drop
    assert not pt.paired_noninferiority(y, fp, same, 0.0)["non_inferior"]
    # 2 points worse against a 1-point margin: inferior
    assert not pt.paired_noninferiority(*_predictions(extra_wrong=200), 0.01)["non_inferior"]
    # 0.9 points worse on 10,000 samples: within the margin by the point estimate, not shown below it
    r = pt.paired_noninferiority(*_predictions(extra_wrong=90), 0.01)
    assert r["drop"] < r["margin"] and not r["non_inferior"]
    # better than FP: non-inferior even with a zero margin
    assert pt.paired_noninferiority(*_predictions(extra_right=100), 0.0)["non_inferior"]


def test_paired_bound_matches_a_resampling_bootstrap_and_the_normal_bound():
    """The multinomial shortcut against resampling the samples themselves (small n), and both
    against the normal approximation of a paired difference."""
    y, fp, q = _predictions(n=400, fp_wrong=40, extra_wrong=12, extra_right=3)
    r = pt.paired_noninferiority(y, fp, q, 0.05, resamples=20000)
    d = (fp == y).astype(float) - (q == y).astype(float)
    idx = np.random.default_rng(1).integers(0, d.size, size=(20000, d.size))
    brute = np.quantile(d[idx].mean(axis=1), 0.95)
    assert r["drop_upper"] == pytest.approx(brute, abs=0.002)
    normal = d.mean() + 1.6449 * d.std(ddof=1) / math.sqrt(d.size)
    assert r["drop_upper"] == pytest.approx(normal, abs=0.003)


def test_paired_refuses_bad_input():
    y, fp, q = _predictions(n=100)
    for args in ((y, fp, q[:50], 0.01), (y, fp, q.astype(float), 0.01), (y[:0], fp[:0], q[:0], 0.01),
                 (y, fp, q, 1.5), (y, fp, q.reshape(10, 10), 0.01)):
        with pytest.raises(ValueError):
            pt.paired_noninferiority(*args)
    with pytest.raises(ValueError, match="confidence"):
        pt.paired_noninferiority(y, fp, q, 0.01, confidence=0.3)
    with pytest.raises(ValueError, match="no single Pthresh"):
        pt.gate(pt.Paired(), **K10, p_fp=0.9)
    with pytest.raises(ValueError, match="not a run's gate"):
        pt.decide(pt.Paired(), num_classes=10, p_fp=0.9)


def test_paired_rule_margin_is_the_relative_tolerance():
    rule = pt.Paired()
    assert rule.margin(0.92) == pytest.approx(0.0092) and rule.p_thresh(0.92) == pytest.approx(0.99 * 0.92)
    assert pt.describe(rule) == "paired(q=0.99, confidence=0.95)"
    r = rule.test(*_predictions(extra_wrong=50))            # 0.5 points against 0.92 points
    assert r["margin"] == pytest.approx(0.0092) and r["non_inferior"]
    assert not rule.test(*_predictions(extra_wrong=85))["non_inferior"]


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
