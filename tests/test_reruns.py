"""quide.analysis.reruns: two runs paired by configuration; T agreement, Knees, EXP-3 optima and Spearman."""
import numpy as np
import pandas as pd
import pytest

from quide.analysis import reruns
from quide.analysis.results import make_record


def _sweep(T_scale=1.0, P4=0.90):
    rows = []
    for seed in (0, 1):
        for b, P, T in ((32, 0.99, 0.09), (16, 0.99, 0.06), (8, 0.985, 0.11), (4, P4, 0.11), (2, 0.2, 0.11)):
            rows.append(make_record(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST",
                                    seed=seed, bits=b, P=P, T_ms=T * T_scale, T_kind="simulated", C_paper=32 / b,
                                    C_true=32 / b, num_classes=10, p_fp=0.99, delta=0.19, provenance={},
                                    placement="graph", T_host_ms=T * 3 * (1.3 if seed else 1)))
    df = pd.DataFrame(rows)
    df["bits_label"] = df["bits"].astype(str)
    return df


def test_pairs_and_agreement():
    a, b = _sweep(), _sweep(T_scale=1.01)
    pairs = reruns.paired(a, b, reruns.SWEEP_KEYS)
    assert len(pairs) == 10 and np.allclose(pairs["T_diff_pct"], 1.0)
    agree = reruns.agreement(pairs)
    assert agree["T_within_2pct"] == 10 and agree["P_equal"] == 10
    assert agree["T_max_abs_diff_pct"] == pytest.approx(1.0)


def test_knees_agree_or_not():
    same = reruns.knees(_sweep(), _sweep(T_scale=1.01))
    assert same["same"].all() and same["knee_a"].iloc[0] == "4"
    moved = reruns.knees(_sweep(), _sweep(P4=0.5))   # 4-bit P collapses in run b: the Knee moves to 8
    assert not moved["same"].iloc[0] and moved["knee_b"].iloc[0] == "8"


def test_spearman_is_rank_correlation():
    assert reruns.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert reruns.spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)   # monotone, not linear
    assert reruns.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_host_timing_recomputes_the_index():
    a = _sweep()
    host = reruns.with_host_timing(a)
    assert (host["T_ms"] == a["T_host_ms"]).all() and (host["I"] < a["I"]).all()   # slower host T, smaller I
    assert (a["T_ms"] != host["T_ms"]).all()   # the input is not changed


def _landscape(times):
    """An exhaustive pass over two layers (T per configuration, equal P, tight intervals) and its
    FP32 reference, as one run's mixed_precision records."""
    from test_stability import frame, record
    recs = [{**record(list(bits), 0.97, T, ci=(T * 0.999, T * 1.001), n_test=10_000, T_host_ms=3 * T),
             "search": "exhaustive", "search_seed": None, "experiment": "mixed_precision"}
            for bits, T in times.items()]
    ref = record(32, 0.99, 0.3, ci=(0.2997, 0.3003), n_test=10_000, T_host_ms=0.9)
    return frame(recs + [{**ref, "search": "reference", "experiment": "mixed_precision"}])


def test_exp3_optima_that_differ_within_noise_are_told_from_a_real_difference():
    clear = {(8, 8): 0.5, (8, 4): 0.5, (4, 8): 0.5, (4, 4): 0.25}
    same = reruns.exp3(_landscape(clear), _landscape(clear))
    assert (same["verdict"] == "equal").all() and (same["frequency_a"] == 1.0).all()
    # 8-4 and 4-8 (same C) within a thousandth of each other in T, in opposite order in the two runs
    near = reruns.exp3(_landscape({(8, 8): 0.5, (8, 4): 0.25, (4, 8): 0.2501, (4, 4): 1.0}),
                       _landscape({(8, 8): 0.5, (8, 4): 0.2501, (4, 8): 0.25, (4, 4): 1.0}))
    paper = near[near["fitness C"] == "paper"].iloc[0]
    assert (paper["optimum_a"], paper["optimum_b"]) == ("8-4", "4-8")
    assert paper["verdict"] == "within noise" and paper["frequency_a"] < 0.95
    # the optimum moves by a factor of two in T between the runs: each run is sure of its own
    moved = reruns.exp3(_landscape(clear), _landscape({(8, 8): 0.5, (8, 4): 0.25, (4, 8): 0.5, (4, 4): 0.5}))
    assert (moved["verdict"] == "differs").all() and (moved[["frequency_a", "frequency_b"]] == 1.0).all().all()


def test_search_picks_pair_each_search_run_and_leave_out_the_exhaustive_pass_and_the_reference():
    def searches(haq_pick):
        rows = [("ga", 0.0, "8-4"), ("ga", 42.0, "8-8"), ("haq", 42.0, haq_pick), ("greedy", None, "4-4"),
                ("exhaustive", None, "8-8"), ("exhaustive", None, "4-4"), ("reference", None, "32")]
        return pd.DataFrame([{"model": "simplecnn", "dataset": "mnist", "seed": 0, "search": search,
                              "search_seed": seed, "bits_label": pick} for search, seed, pick in rows])
    out = reruns.search_picks(searches("8-4"), searches("8-8"))
    assert sorted(zip(out["search"], out["search_seed"])) == [("ga", 0.0), ("ga", 42.0), ("greedy", -1), ("haq", 42.0)]
    moved = out[~out["same"]]
    assert list(zip(moved["search"], moved["pick_a"], moved["pick_b"])) == [("haq", "8-4", "8-8")]


def test_same_graph_in_two_blocks_compares_a_search_block_with_its_own_sweep_block():
    sweep = _sweep()
    sweep["T_signature"] = "fq"
    sweep.loc[sweep["bits"] == 32, "T_signature"] = "fp32"
    sweep.loc[sweep["bits"] == 16, "T_signature"] = "fp16"
    sweep["model_seed"] = sweep["seed"]   # a sweep's own seed is its model's
    # EXP-3 on the seed-0 model: its FP32 and fake-quant graphs 3% faster than the sweep timed them,
    # an all-16-bit graph the sweep never timed under that signature, and another model seed
    search = pd.DataFrame({"model": "simplecnn", "dataset": "mnist", "placement": "graph",
                           "model_seed": [0, 0, 0, 1], "T_signature": ["fp32", "fq", "other", "fq"],
                           "T_ms": [0.09 * 0.97, 0.11 * 0.97, 0.5, 0.11]})
    out = reruns.same_graph_in_two_blocks(sweep, search)
    assert len(out) == 1 and out["graphs"].iloc[0] == 3   # fp32 and fq of seed 0, fq of seed 1
    assert out["low_pct"].iloc[0] == pytest.approx(-3.0) and out["high_pct"].iloc[0] == pytest.approx(0.0)
    assert out["median_pct"].iloc[0] == pytest.approx(-3.0)


def test_ci_width_is_in_percent_of_T():
    recs = pd.DataFrame({"T_ms": [0.1, 2.0], "T_ci_ms": [[0.099, 0.101], [1.9, 2.1]]})
    assert reruns.ci_width_pct(recs).tolist() == pytest.approx([2.0, 10.0])


def test_agreement_is_split_by_whether_a_block_was_timed_again():
    a, b = _sweep(), _sweep(T_scale=1.01)
    moved = b["seed"] == 1
    b.loc[moved, "T_ms"] *= 0.96 / 1.01            # run b's seed-1 block settled 4% below run a ...
    b["T_attempts"] = np.where(moved, 3, 1)        # ... after the timer timed it again
    split = reruns.agreement_by_retry(reruns.paired(a, b, reruns.SWEEP_KEYS)).set_index("blocks")
    assert split.loc["first block kept in both runs", "configurations"] == 5
    assert split.loc["first block kept in both runs", "within 2%"] == 5
    assert split.loc["timed again in either run", "within 2%"] == 0
    assert split.loc["timed again in either run", "largest |difference| %"] == pytest.approx(4.0)
    # records made before T_attempts existed count as one block
    old = reruns.agreement_by_retry(reruns.paired(a, _sweep(), reruns.SWEEP_KEYS)).set_index("blocks")
    assert old.loc["timed again in either run", "configurations"] == 0


def test_retried_timings_show_each_block_against_the_other_run():
    a, b = _sweep(), _sweep()
    for df in (a, b):
        df["T_signature"] = df["bits"].map({32: "fp32", 16: "fp16"}).fillna("fq")
    again = (a["seed"] == 0) & (a["bits"] == 32)
    a["T_attempts"] = np.where(again, 2, 1)
    a["T_attempt_medians_ms"] = [[0.09 * 1.03, 0.09 * 0.98] if g else [t] for g, t in zip(again, a["T_ms"])]
    a.loc[again, "T_ms"] = 0.09 * 0.98
    out = reruns.retried_timings(a, b, reruns.SWEEP_KEYS)
    assert len(out) == 1 and out["run"].iloc[0] == "a" and out["blocks"].iloc[0] == 2
    assert out["configurations"].iloc[0] == 1 and out["e.g."].iloc[0] == "32"
    assert out["block medians vs other run %"].iloc[0] == pytest.approx([3.0, -2.0])
    assert out["kept vs other run %"].iloc[0] == pytest.approx(-2.0)
    assert reruns.retried_timings(b, b, reruns.SWEEP_KEYS).empty
    # named runs: the retried timing is reported under the name of the run that timed it again
    assert reruns.retried_timings(b, a, reruns.SWEEP_KEYS, names=("b", "c"))["run"].tolist() == ["c"]


# --- predicted against observed ----------------------------------------------------------------

def _run(sweep_P4=0.90, best=(4, 4), ga_pick=None):
    """One run's (sweep, EXP-3) records: the sweep's Knee 4 bits unless ``sweep_P4`` collapses it;
    EXP-3's landscape with ``best`` far ahead (a tenth of the others' T) and a GA that picked
    ``ga_pick`` (default ``best``)."""
    mp = _landscape({bits: 0.05 if bits == best else 0.5 for bits in ((8, 8), (8, 4), (4, 8), (4, 4))})
    pick = mp[(mp["search"] == "exhaustive") & (mp["bits_label"] == "-".join(map(str, ga_pick or best)))]
    return _sweep(P4=sweep_P4), pd.concat([mp, pick.assign(search="ga", search_seed=0)], ignore_index=True)


def _outcome(table, conclusion, detail=""):
    row = table[(table["conclusion"] == conclusion) & (table["detail"] == detail)]
    assert len(row) == 1, (conclusion, detail, table)
    return row.iloc[0]


def test_a_robust_conclusion_that_another_run_contradicts_is_a_defect():
    config = reruns.stability.StabilityConfig(draws=200, seeds=None)
    predicted = reruns.predictions(_run(), config)
    assert set(predicted["conclusion"]) == set(reruns.CONCLUSIONS)
    knee = _outcome(predicted, "Knee")
    assert (knee["answer"], knee["holds_in"], knee["predicted"]) == ("4", 1.0, reruns.stability.HOLDS)
    same = reruns.predicted_vs_observed(predicted, reruns.answers(_run()))
    assert (same["outcome"] == reruns.SAME).all() and not same["changed"].any()
    # the other run's 4-bit accuracy collapses (the Knee moves to 8), its landscape's optimum moves
    # to 8-8 and its GA stays at 4-4: each of these was called robust, so each is a defect
    other = reruns.answers(_run(sweep_P4=0.5, best=(8, 8), ga_pick=(4, 4)))
    table = reruns.predicted_vs_observed(predicted, other)
    assert _outcome(table, "Knee")["outcome"] == reruns.DEFECT and _outcome(table, "Knee")["other"] == "8"
    assert _outcome(table, "EXP-3 optimum", "paper C")["outcome"] == reruns.DEFECT
    ga = _outcome(table, "search finds the optimum", "ga, search seed 0")
    assert (ga["shown"], ga["outcome"]) == ("the optimum (rank 1 of 4)", reruns.DEFECT)
    assert ga["other"].startswith("not the optimum")
    summary = reruns.calibration(predicted, {"other GPU": _run(sweep_P4=0.5, best=(8, 8), ga_pick=(4, 4))}).iloc[0]
    assert summary["changed although called robust"] == (table["outcome"] == reruns.DEFECT).sum() >= 3


def test_a_conclusion_within_noise_may_change_and_a_missing_one_is_said_to_be_missing():
    from test_stability import frame, record
    near = {(8, 8): 0.5, (8, 4): 0.25, (4, 8): 0.2501, (4, 4): 1.0}
    mp = _landscape(near)
    predicted = reruns.predictions((_sweep().iloc[:0], mp), reruns.stability.StabilityConfig(draws=200, seeds=None))
    optimum = _outcome(predicted, "EXP-3 optimum", "paper C")
    assert optimum["answer"] == "8-4" and optimum["predicted"] == reruns.stability.WITHIN_NOISE
    swapped = _landscape({(8, 8): 0.5, (8, 4): 0.2501, (4, 8): 0.25, (4, 4): 1.0})
    table = reruns.predicted_vs_observed(predicted, reruns.answers((_sweep().iloc[:0], swapped)))
    assert _outcome(table, "EXP-3 optimum", "paper C")["outcome"] == reruns.WITHIN
    other_data = swapped.assign(dataset="cifar10")
    table = reruns.predicted_vs_observed(predicted, reruns.answers((_sweep().iloc[:0], other_data)))
    assert (table["outcome"] == reruns.ABSENT).all()


def test_reruns_on_another_gpu_model_are_picked_from_the_manifest():
    from quide.analysis import runs
    manifest = runs.load_manifest()
    assert reruns.other_gpu(manifest) == [r for r in manifest if r.gpu != runs.canonical(manifest).gpu]
    h100 = runs.Run(**{**vars(runs.reruns(manifest)[0]), "folder": "data/reruns/h100", "name": "1 x H100",
                       "gpu": "NVIDIA H100 80GB HBM3"})
    assert reruns.other_gpu([*manifest, h100]) == [*reruns.other_gpu(manifest), h100]


def test_t_coverage_counts_a_shift_the_interval_misses_and_the_machine_spread_covers():
    from quide.analysis import machine
    base = _landscape({(8, 8): 0.5, (4, 4): 0.25})
    moved = _landscape({(8, 8): 0.5 * 1.01, (4, 4): 0.25 * 1.01})   # 1%: outside intervals a tenth as wide
    spread = machine.MachineSpread(pd.DataFrame([{"experiment": "mixed_precision", "gpu": "a GPU", "sigma_block": 0.01,
                                                  "sigma_timing": 0.0}]))
    empty = _sweep().iloc[:0]
    row = reruns.t_coverage((_sweep(), base), {"b": (_sweep(), moved)}, spread).set_index("experiment")
    assert row.loc["EXP-3 exhaustive", "configurations"] == 2
    assert row.loc["EXP-3 exhaustive", "within the record's 95% CI"] == 0
    assert row.loc["EXP-3 exhaustive", "within the 95% range with the machine spread"] == 2
    none = reruns.t_coverage((empty, base), {"b": (empty, moved)}, machine.MachineSpread.none())
    assert none.set_index("experiment").loc["EXP-3 exhaustive", "within the 95% range with the machine spread"] == 0
