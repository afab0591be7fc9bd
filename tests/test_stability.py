"""Resampling stability on hand-made records whose answers are known."""
import numpy as np
import pandas as pd
import pytest

from quide.analysis import aggregate
from quide.analysis import machine as qm
from quide.analysis import results as qr
from quide.analysis import stability as qst

DRAWS = 1000
ALONE = qst.StabilityConfig(seeds=None, machine=None)   # T within its own interval, the records' own seeds


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
    assert row["timing"] == qst.TIMING_MACHINE and row["stability"].verdict == qst.HOLDS
    assert row["stability"].text() == f"holds in 100% of {DRAWS} draws"   # the default model is not repeated
    alone = qst.knee_stability(clear_knee_records(), ALONE).iloc[0]
    assert alone["timing"] == qst.TIMING_CI and alone["frequency"] == 1.0
    assert alone["stability"].text() == f"holds in 100% of {DRAWS} draws ({qst.TIMING_CI})"


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
    row = qst.knee_stability(recs, ALONE).iloc[0]
    assert row["frequency"] == 1.0 and row["timing"] == qst.TIMING_FIXED
    assert qst.knee_stability(recs).iloc[0]["timing"] == f"{qst.TIMING_FIXED} + {qst.MACHINE_TERM}"


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


@pytest.mark.parametrize("field, value", [("draws", 0), ("draws", 2.5), ("draws", True), ("seed", -1), ("seed", "0"),
                                          ("seeds", 3), ("machine", "committed"), ("machine", 0.01)])
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


# --- one draw per timing, the machine spread ----------------------------------------------------

def test_records_that_share_a_timing_share_its_draw():
    """8, 4 and 2 bits run one graph (one T_signature in one block): one T per draw for all three,
    so between them only P and C decide; 16 bits is a timing of its own."""
    recs = []
    for bits, P, T, sig in ((32, 0.99, 0.8, "fp"), (16, 0.99, 0.6, "half"), (8, 0.98, 0.5, "fq"),
                            (4, 0.97, 0.5, "fq"), (2, 0.11, 0.5, "fq")):
        recs.append(record(bits, P, T, ci=(T - 0.05, T + 0.05), n_test=10_000, T_signature=sig))
    s = qst.condition_samples(frame(recs), qst.StabilityConfig(draws=200, seeds=None))[0]
    column = {b: s.labels.index(b) for b in ("16", "8", "4", "2")}
    assert (s.T_draw[:, 0, column["8"]] == s.T_draw[:, 0, column["4"]]).all()
    assert (s.T_draw[:, 0, column["8"]] == s.T_draw[:, 0, column["2"]]).all()
    assert not (s.T_draw[:, 0, column["16"]] == s.T_draw[:, 0, column["8"]]).any()


def spread(sigma_block=0.0, sigma_timing=0.0):
    return qm.MachineSpread(pd.DataFrame([{"experiment": "ptq_sweep", "gpu": "a GPU", "runs": 2, "pairs": 1,
                                           "timings": 5, "blocks": 1, "sigma_block": sigma_block,
                                           "sigma_timing": sigma_timing}]))


def close_call_records():
    """16 bits the Knee by 2.4% of I' over 8 bits (same C and P, T 2% lower), intervals a tenth of
    a percent wide: no draw within the intervals moves it, a per-graph spread of 5% does."""
    recs = [record(32, 0.99, 2.0, C=1.0), record(16, 0.985, 0.50, C=4.0), record(8, 0.985, 0.51, C=4.0),
            record(2, 0.11, 0.51, C=16.0)]
    for r in recs:
        r["T_ci_ms"] = [r["T_ms"] * 0.999, r["T_ms"] * 1.001]
        r["n_test"] = 10_000_000    # P all but fixed: T alone decides
    return frame(recs)


def test_a_per_graph_machine_spread_can_move_what_the_interval_alone_cannot():
    recs = close_call_records()
    alone = qst.knee_stability(recs, ALONE).iloc[0]
    assert alone["knee"] == 16 and alone["frequency"] == 1.0
    per_graph = qst.knee_stability(recs, qst.StabilityConfig(seeds=None, machine=spread(sigma_timing=0.05))).iloc[0]
    assert per_graph["knee"] == 16 and 0.05 < per_graph["frequency"] < 0.95
    assert per_graph["stability"].verdict == qst.WITHIN_NOISE and per_graph["timing"] == qst.TIMING_MACHINE


def test_a_block_shift_moves_every_graph_of_the_block_together_and_keeps_their_order():
    recs = close_call_records()
    shifted = qst.knee_stability(recs, qst.StabilityConfig(seeds=None, machine=spread(sigma_block=0.3))).iloc[0]
    assert shifted["frequency"] == 1.0
    s = qst.condition_samples(recs, qst.StabilityConfig(draws=300, seeds=None, machine=spread(sigma_block=0.3)))[0]
    ratio = s.T_draw[:, 0, :] / s.T[0]
    assert ratio.std(axis=0).min() > 0.2                        # each graph moves by about 30%...
    assert np.ptp(np.log(ratio), axis=1).max() < 0.01           # ...all of one block by the same factor


def test_records_of_an_experiment_without_an_estimate_keep_their_interval():
    recs = close_call_records().assign(experiment="another")
    row = qst.knee_stability(recs, qst.StabilityConfig(seeds=None, machine=spread(sigma_timing=0.05))).iloc[0]
    assert row["frequency"] == 1.0 and row["timing"] == qst.TIMING_CI


# --- the seeds grid -----------------------------------------------------------------------------

PARAMS = {"model": "simplecnn", "dataset": "mnist", "delta": 0.19, "timed": 1000, "bits": [32, 16, 8, 4, 2]}


def seed_records(seed, p4=0.985, params=PARAMS):
    """One trained model's sweep: 4 bits the Knee unless ``p4`` drops it below 8 bits' lead."""
    recs = []
    for bits, P, T in ((32, 0.99, 0.8), (16, 0.99, 0.6), (8, 0.989, 0.5), (4, p4, 0.5), (2, 0.11, 0.5)):
        r = record(bits, P, T, seed=seed, ci=tight(T), n_test=10_000)
        r["run_params"] = {**params, "seed": seed}
        recs.append(r)
    return recs


def grid_records(params=PARAMS):
    """Ten seeds; on seven that the paper's three lack, 4 bits lose to 8 (P(4) 0.80 near the gate)."""
    recs = [r for seed in (0, 42, 123) for r in seed_records(seed, params=params)]
    return recs + [r for seed in range(1, 8) for r in seed_records(seed, p4=0.80, params=params)]


def paper_seeds():
    return frame([r for seed in (0, 42, 123) for r in seed_records(seed)])


def test_the_seeds_grid_widens_the_draws_and_the_observed_knee_stays_table_1s():
    ours = qst.knee_stability(paper_seeds(), qst.StabilityConfig(seeds=None)).iloc[0]
    assert ours["knee"] == 4 and ours["frequency"] == 1.0 and ours["sample"] == ""
    wide = qst.knee_stability(paper_seeds(), qst.StabilityConfig(seeds=frame(grid_records()))).iloc[0]
    assert wide["knee"] == 4                                     # Table 1's three seeds
    assert wide["frequency"] < 0.95 and wide["stability"].verdict != qst.HOLDS
    assert "10 seeds" in wide["sample"] and "seeds grid" in wide["stability"].text()


def test_a_grid_made_with_other_run_parameters_is_not_drawn_from():
    other = frame(grid_records(params={**PARAMS, "timed": 200}))
    row = qst.knee_stability(paper_seeds(), qst.StabilityConfig(seeds=other)).iloc[0]
    assert row["frequency"] == 1.0 and row["sample"] == ""


def test_the_grid_is_found_in_its_folder_and_through_quide_seeds(tmp_path, monkeypatch):
    qr.write_records(grid_records(), "ptq_sweep", "grid", root=tmp_path)
    from_folder = qst.knee_stability(paper_seeds(), qst.StabilityConfig(seeds=tmp_path)).iloc[0]
    assert "10 seeds" in from_folder["sample"]
    monkeypatch.setenv("QUIDE_SEEDS", str(tmp_path))
    by_default = qst.knee_stability(paper_seeds()).iloc[0]
    assert by_default["sample"] == from_folder["sample"] and by_default["frequency"] == from_folder["frequency"]
    monkeypatch.setenv("QUIDE_SEEDS", str(tmp_path / "none here"))
    assert qst.knee_stability(paper_seeds()).iloc[0]["sample"] == ""


def test_claims_name_the_sample_they_drew_from():
    claim = qst.claim_stability(paper_seeds(), lambda t: t.loc[t["knee"], "bits"].tolist() == ["4"],
                                qst.StabilityConfig(seeds=frame(grid_records())))
    assert claim.observed and claim.frequency < 0.95 and "10 seeds" in claim.sample


def test_the_pages_say_which_sample_the_draws_came_from():
    ours = qst.knee_stability(paper_seeds(), qst.StabilityConfig(seeds=None))
    assert "own seeds" in qst.sample_note(ours["sample"]) and "no records" in qst.sample_note(ours["sample"])
    wide = qst.knee_stability(paper_seeds(), qst.StabilityConfig(seeds=frame(grid_records())))
    assert qst.sample_note(wide["sample"]) == "Trained models are drawn from the seeds grid: 10 seeds with the seeds grid."
    assert "elsewhere from Table 1's seeds" in qst.sample_note([*wide["sample"], ""])
