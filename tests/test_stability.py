"""Resampling stability on hand-made records whose answers are known."""
import numpy as np
import pandas as pd
import pytest

from quide.analysis import aggregate
from quide.analysis import results as qr
from quide.analysis import stability as qst

DRAWS = 1000


def record(bits, P, T, *, seed=0, C=None, p_fp=0.99, delta=0.19, ci=None, p10_p90=None, n_test=None, **extra):
    rec = qr.make_record(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST",
                         seed=seed, bits=bits, P=P, T_ms=T, T_kind="simulated",
                         C_paper=C if C is not None else 32 / (bits if np.isscalar(bits) else np.mean(bits)),
                         C_true=C if C is not None else 32 / (bits if np.isscalar(bits) else np.mean(bits)),
                         num_classes=10, p_fp=p_fp, delta=delta, provenance={}, placement="graph", **extra)
    if ci is not None:
        rec["T_ci_ms"] = list(ci)
    if p10_p90 is not None:
        rec["T_p10_ms"], rec["T_p90_ms"] = p10_p90
    if n_test is not None:
        rec["n_test"] = n_test
    return rec


def frame(recs):
    df = pd.DataFrame(recs)
    df["bits_label"] = df["bits"].map(qr.bits_label)
    return df


def tight(T):
    return (T * 0.999, T * 1.001)


def clear_knee_records(seeds=(0,)):
    """4 bits far ahead under I' (C = 8 at the same T as 8 bits), intervals a thousandth wide."""
    recs = []
    for seed in seeds:
        for bits, P, T in ((32, 0.99, 0.8), (16, 0.99, 0.6), (8, 0.989, 0.5), (4, 0.985, 0.5), (2, 0.11, 0.5)):
            recs.append(record(bits, P, T, seed=seed, ci=tight(T), n_test=10_000))
    return frame(recs)


def test_a_knee_with_a_huge_margin_and_tiny_intervals_holds_in_every_draw():
    row = qst.knee_stability(clear_knee_records()).iloc[0]
    assert row["knee"] == 4 and row["frequency"] == 1.0 and row["draws"] == DRAWS
    assert row["timing"] == qst.TIMING_CI and row["stability"].verdict == qst.HOLDS
    assert row["stability"].text() == f"holds in 100% of {DRAWS} draws"


def test_several_seeds_are_bootstrapped_and_the_observed_answers_are_aggregates():
    recs = clear_knee_records(seeds=(0, 42, 123))
    knee = qst.knee_stability(recs).iloc[0]
    assert knee["knee"] == int(aggregate.knees(recs)["bits"].iloc[0]) and knee["frequency"] == 1.0
    ranks = qst.ranking_stability(recs)
    orders = aggregate.orders(recs).iloc[0]
    for _, r in ranks.iterrows():
        assert r["order"] == orders[r["metric"]]
        assert set(r["rank_held"]) == {32, 16, 8, 4, 2}


def tied_records(**interval):
    """8 and 4 bits with identical C, P, T and interval: exchangeable, so each is the Knee about
    half the time; 32 bits far behind."""
    recs = [record(32, 0.99, 2.0, C=1.0, **interval), record(2, 0.11, 0.5, **interval)]
    recs += [record(b, 0.985, 0.5, C=4.0, **interval) for b in (8, 4)]
    return frame(recs)


@pytest.mark.parametrize("interval", [{"ci": (0.4, 0.6)}, {"p10_p90": (0.3, 0.8)}])
def test_two_bit_widths_with_identical_I_gated_split_the_draws(interval):
    st = qst.knee_stability(tied_records(**interval)).iloc[0]["stability"]
    tolerance = 4 * np.sqrt(0.25 / DRAWS)       # 4 binomial sd of a share near one half
    assert abs(st.share(8) - 0.5) <= tolerance and abs(st.share(4) - 0.5) <= tolerance
    assert st.share(8) + st.share(4) == 1.0
    assert st.verdict == qst.WITHIN_NOISE
    assert ("legacy" in st.timing) == ("p10_p90" in interval)


def test_records_without_any_interval_keep_their_values_and_say_so():
    recs = frame([record(b, p, t) for b, p, t in ((32, 0.99, 0.8), (8, 0.98, 0.5), (4, 0.97, 0.5))])
    row = qst.knee_stability(recs).iloc[0]
    assert row["frequency"] == 1.0 and row["timing"] == qst.TIMING_FIXED


def test_all_collapsed_has_no_knee_in_any_draw():
    # delta 0: Pthresh = P_FP, so no bit-width lies above the gate
    recs = frame([record(b, p, 0.5, delta=0.0) for b, p in ((32, 0.99), (8, 0.98), (4, 0.5), (2, 0.1))])
    row = qst.knee_stability(recs).iloc[0]
    assert row["knee"] is None and row["frequency"] == 1.0 and row["alternatives"] == "none: 100%"
    gated = qst.ranking_stability(recs).set_index("metric").loc["I'"]
    assert gated["order"] == [32, 8, 4, 2] and gated["frequency"] == 1.0   # all tied at 0: table order


def test_claim_stability_sees_the_same_draws_as_the_knee():
    recs = tied_records(ci=(0.4, 0.6))
    claim = qst.claim_stability(recs, lambda t: t.loc[t["knee"], "bits"].tolist() == ["4"])
    knee = qst.knee_stability(recs).iloc[0]["stability"]
    assert claim.frequency == knee.share(4) and claim.draws == DRAWS
    assert claim.observed == (knee.observed == 4)


def test_a_fixed_seed_gives_the_same_answer_and_another_seed_other_draws():
    recs = tied_records(ci=(0.4, 0.6))
    first = qst.knee_stability(recs, qst.StabilityConfig(seed=7)).iloc[0]["stability"]
    again = qst.knee_stability(recs, qst.StabilityConfig(seed=7)).iloc[0]["stability"]
    other = qst.knee_stability(recs, qst.StabilityConfig(seed=8)).iloc[0]["stability"]
    assert first.shares.equals(again.shares)
    assert not first.shares.equals(other.shares)


@pytest.mark.parametrize("field, value", [("draws", 0), ("draws", 2.5), ("draws", True), ("seed", -1), ("seed", "0")])
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"StabilityConfig.{field}"):
        qst.StabilityConfig(**{field: value})


@pytest.mark.parametrize("holds, frequency, expected", [
    (True, 1.0, qst.HOLDS), (True, qst.ROBUST, qst.HOLDS), (True, 0.94, qst.WITHIN_NOISE),
    (False, 0.99, qst.WITHIN_NOISE), (False, qst.NOISE_FLOOR, qst.WITHIN_NOISE),
    (False, 0.04, qst.FAILS), (True, 0.0, qst.FAILS)])
def test_the_verdict_rule(holds, frequency, expected):
    assert qst.verdict(holds, frequency) == expected


def test_the_verdict_rule_refuses_a_percent():
    with pytest.raises(ValueError, match="frequency"):
        qst.verdict(True, 97.0)


def test_truncated_latency_draws_stay_positive():
    rng = np.random.default_rng(0)
    T = np.array([0.05, 0.5])
    drawn = qst._draw_T(rng, T, np.array([0.0, 0.0]), np.array([2.0, 2.0]), 2000)
    assert drawn.shape == (2000, 2) and (drawn > 0).all()


# --- EXP-3 ----------------------------------------------------------------------------------

def landscape(best=(4, 4), ci_width=0.001, **pick):
    """Four configurations of two layers, ``best`` clearly ahead (T half the others'), plus the
    FP32 reference and one GA record that returned ``pick['bits']`` (default: ``best``)."""
    recs = []
    for bits in ((8, 8), (8, 4), (4, 8), (4, 4)):
        T = 0.25 if bits == best else 0.5
        r = record(list(bits), 0.97, T, ci=(T - ci_width, T + ci_width), n_test=10_000, p_fp=0.99)
        recs.append({**r, "search": "exhaustive", "search_seed": None, "experiment": "mixed_precision"})
    ref = record(32, 0.99, 0.3, ci=(0.299, 0.301), n_test=10_000, p_fp=0.99)
    recs.append({**ref, "search": "reference", "experiment": "mixed_precision"})
    ga = dict(next(r for r in recs if tuple(r["bits"]) == tuple(pick.get("bits", best))))
    recs.append({**ga, "search": "ga", "search_seed": 0})
    return frame(recs)


def test_a_clear_exhaustive_optimum_holds_and_the_ga_that_found_it_ranks_first():
    recs = landscape()
    opt = qst.optimum_stability(recs)
    assert list(opt["fitness C"]) == ["paper", "true"]
    assert (opt["optimum"] == "4-4").all() and (opt["frequency"] == 1.0).all()
    ga = qst.search_rank_stability(recs).iloc[0]
    assert (ga["search"], ga["seed"], ga["rank"], ga["share_rank_1"], ga["median_rank"], ga["rank_95"]) == \
        ("ga", 0, 1, 1.0, 1.0, (1, 1))


def test_a_search_off_the_optimum_keeps_its_rank_with_narrow_intervals():
    ga = qst.search_rank_stability(landscape(bits=(8, 8))).iloc[0]
    assert ga["rank"] > 1 and ga["share_rank_1"] == 0.0 and ga["rank_95"][1] <= 4


def test_a_collapsed_landscape_has_no_optimum():
    recs = landscape()
    recs["P"] = 0.5    # below Pthresh = 0.99 - 0.19 for every configuration
    opt = qst.optimum_stability(recs)
    assert opt["optimum"].isna().all() and (opt["frequency"] == 1.0).all()


def test_search_rank_refuses_an_unknown_compression():
    with pytest.raises(ValueError, match="compression"):
        qst.search_rank_stability(landscape(), compression="mean")
