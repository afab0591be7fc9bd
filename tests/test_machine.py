"""The machine-to-machine spread of T (quide.analysis.machine): recovered from synthetic runs whose
spread is known, looked up per experiment and GPU model, and estimated from the committed reruns."""
import numpy as np
import pandas as pd
import pytest

from quide.analysis import machine as qm
from quide.analysis import runs


def synthetic_runs(n_runs=4, n_blocks=60, per_block=6, sigma_block=0.02, sigma_timing=0.005, ci_sd=0.001,
                   gpu="GPU A", experiment="ptq_sweep", seed=0):
    """Runs of one GPU model timing the same graphs: log T = truth + a shift per block and run +
    a deviation per timing and run + the within-block noise that each record's interval states."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(np.log(0.1), np.log(2.0), (n_blocks, per_block))
    out = {}
    for r in range(n_runs):
        log_t = (truth + rng.normal(0, sigma_block, (n_blocks, 1)) + rng.normal(0, sigma_timing, truth.shape)
                 + rng.normal(0, ci_sd, truth.shape))
        T = np.exp(log_t).ravel()
        half = qm.Z95 * ci_sd * T
        records = pd.DataFrame({"experiment": experiment, "model": "m", "dataset": "d",
                                "seed": np.repeat(np.arange(n_blocks), per_block), "placement": "graph",
                                "T_signature": np.tile([f"g{j}" for j in range(per_block)], n_blocks),
                                "T_ms": T, "T_ci_ms": [[t - h, t + h] for t, h in zip(T, half)],
                                "prov_device": gpu})
        out[f"{gpu} run {r}"] = qm.timings(records)
    return out


@pytest.mark.parametrize("per_block", [3, 6])   # the sweeps time 3 graphs per block, EXP-3 16
def test_the_estimate_recovers_a_known_block_and_timing_spread(per_block):
    est = qm.estimate(synthetic_runs(per_block=per_block)).iloc[0]
    assert (est["experiment"], est["gpu"], est["runs"], est["pairs"], est["blocks"]) == ("ptq_sweep", "GPU A", 4, 6, 60)
    assert est["sigma_block"] == pytest.approx(0.02, rel=0.2)
    assert est["sigma_timing"] == pytest.approx(0.005, rel=0.2)   # the intervals' own 0.1% taken out


def test_intervals_that_cover_the_differences_leave_no_timing_spread():
    est = qm.estimate(synthetic_runs(sigma_timing=0.0, ci_sd=0.004)).iloc[0]
    assert est["sigma_timing"] < 0.0015   # against 0.005 above: the four intervals' 0.4% each taken out


def test_a_gpu_model_with_one_run_has_no_estimate_and_borrows_the_largest():
    timings = {**synthetic_runs(), **synthetic_runs(n_runs=1, gpu="GPU B")}
    spread = qm.MachineSpread(qm.estimate(timings))
    assert list(spread.table["gpu"]) == ["GPU A"]
    own = spread.sigmas("ptq_sweep", "GPU A")
    assert own[2] == "GPU A reruns"
    assert spread.sigmas("ptq_sweep", "GPU B")[:2] == own[:2] and "largest" in spread.sigmas("ptq_sweep", "GPU B")[2]
    assert spread.sigmas("mixed_precision", "GPU A") == (0.0, 0.0, "none")
    assert qm.MachineSpread.none().sigmas("ptq_sweep", "GPU A") == (0.0, 0.0, "none")


def test_timing_codes_group_one_graph_of_one_block():
    df = pd.DataFrame({"experiment": "ptq_sweep", "model": "m", "dataset": "d", "seed": [0, 0, 0, 1, 1, 1],
                       "placement": "graph", "T_signature": ["a", "a", "b", "a", None, None]})
    block, timing = qm.timing_codes(df)
    assert list(block) == [0, 0, 0, 1, 1, 1]
    assert timing[0] == timing[1] and len(set(timing)) == 5   # seed 1's "a" is another block's timing


def test_only_runs_timed_as_the_committed_results_are_compared():
    by_name = {r.name: r for r in runs.load_manifest()}
    under_mps = [r for r in by_name.values() if "MPS" in r.timing]
    assert under_mps and not any(qm.comparable(r) for r in under_mps)
    assert qm.comparable(runs.canonical(list(by_name.values())))
    assert all(qm.comparable(r) for r in by_name.values() if r.timing.startswith("T_host "))


def test_the_committed_reruns_give_a_spread_for_both_experiments_beyond_the_intervals():
    table = qm.committed().table
    assert set(table["experiment"]) == {"ptq_sweep", "mixed_precision"}
    assert (table["runs"] >= 3).all() and (table["sigma_block"] > 0).all() and (table["sigma_timing"] > 0).all()
    # a whole EXP-3 block moved by several percent between runs, a sweep's by well under one
    by = table.set_index("experiment")
    assert by.loc["mixed_precision", "sigma_block"] > by.loc["ptq_sweep", "sigma_block"]


def test_the_summary_states_each_experiments_spread_in_percent():
    text = qm.summary(qm.MachineSpread(qm.estimate(synthetic_runs())))
    assert text.startswith("on GPU A (4 runs), EXP-1/2 sweeps: a timing block by 1.9") and "% more" in text
    assert "own interval only" in qm.summary(qm.MachineSpread.none())
