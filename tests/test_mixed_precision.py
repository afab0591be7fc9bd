"""EXP-3 driver (quide.measure.mixed_precision): parameters refused early, the real path on CPU (smoke)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from quide.analysis import mixed_precision_tables as mpt
from quide.measure import mixed_precision as mp

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kwargs, message", [
    ({"search": "annealing"}, "parameter 'search'"),
    ({"search": []}, "parameter 'search'"),
    ({"seed": "zero"}, "parameter 'seed'"),
    ({"seed": [0, 1.5]}, "parameter 'seed'"),
    ({"budget": 0}, "parameter 'budget'"),
    ({"compression": "weighted"}, "parameter 'compression'"),
    ({"model_seed": "a"}, "parameter 'model_seed'"),
    ({"dataset": "svhn"}, "parameter 'dataset'"),
    ({"delta": 1.5}, "parameter 'delta'"),
    ({"population": 4, "elite": 5}, "elite"),
    ({"mutation": -0.1}, "mutation"),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mp.SearchParams(**kwargs)


def test_one_int_or_name_is_accepted_for_lists():
    p = mp.SearchParams(search="ga", seed=42)
    assert p.search == ("ga",) and p.seed == (42,)


@pytest.mark.slow
def test_searches_run_on_a_real_model_and_share_measurements(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "ckpt"))
    # no up-front timing block of all 256 configurations (most of this test's time on a CPU): each
    # configuration a search asks for is quantized and timed when first measured, by the same
    # ConfigMeasurer.time_configs that the block calls (the sweep's tests cover a block)
    monkeypatch.setattr(mp, "MAX_EXHAUSTIVE", 0)
    params = mp.SearchParams(dataset="mnist", search=["ga", "random", "haq", "greedy"], seed=[0],
                             population=4, generations=2, elite=2, profile="smoke", device="cpu")
    run = mp.run(params, log=None)
    by = {r.method: r for r in run.results}
    assert set(by) == {"ga", "random", "haq", "greedy"}
    # random, HAQ and greedy get the GA's budget; every configuration was measured exactly once
    assert by["random"].evaluations == by["ga"].evaluations
    assert by["haq"].evaluations <= by["ga"].evaluations and by["greedy"].evaluations <= by["ga"].evaluations
    assert run.evaluator.measurements <= sum(r.evaluations for r in run.results)
    assert all(len(r.config) == 4 and set(r.config) <= {16, 8, 4, 2} for r in run.results)
    paths = mp.write(run, root=tmp_path / "results")
    # each name: what ran, then 8 hex of the sha256 of the resolved parameters the records carry
    stems = sorted(p.stem.rsplit("-", 1)[0] for p in paths)
    assert stems == sorted(["simplecnn-mnist-seed0-ga-s0-smoke", "simplecnn-mnist-seed0-random-s0-smoke",
                            "simplecnn-mnist-seed0-haq-s0-smoke", "simplecnn-mnist-seed0-greedy-smoke",
                            "simplecnn-mnist-seed0-fp32-smoke"])
    for path in paths:
        rec = json.loads(path.read_text())[0]
        assert path.stem.endswith("-" + rec["run_params_sha256"][:8])
    ga = json.loads(next(p for p in paths if "-ga-s0-" in p.name).read_text())[0]
    assert ga["run_params"]["method"] == "ga" and ga["run_params"]["search_seed"] == 0
    assert ga["bits"] == list(by["ga"].config) and ga["search"] == "ga" and ga["evaluations"] == by["ga"].evaluations
    assert ga["rank_of_n"] is None                  # no exhaustive pass in this run
    assert ga["C_paper"] == pytest.approx(32 / (sum(ga["bits"]) / 4))
    assert ga["fitness"] == pytest.approx(ga["I_gated"]) and ga["T_kind"] == "simulated"
    table = mp.summary(run)
    assert list(table["search"]) == ["ga", "random", "haq", "greedy"]
    # beside each file the predictions of its records' configurations only, from which verify recomputes P
    from quide.analysis import predictions as qp
    from quide.analysis.verify import verify_all
    for path in paths:
        recs = json.loads(path.read_text())
        arrays = qp.read(path.with_name(recs[0]["predictions_file"]))
        assert set(arrays) == {"labels"} | {r["predictions_key"] for r in recs} and len(arrays["labels"]) == 500
    assert run.evaluator.measurements > len(paths)   # the searches measured more than they recorded
    assert verify_all(tmp_path / "results") == (len(paths), [], {})


@pytest.mark.slow
def test_notebook_refuses_bad_search_in_its_first_cells(tmp_path):
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "mixed_precision.ipynb"),
           str(out), "--cwd", str(ROOT), "-p", "profile", "smoke", "-y", json.dumps({"search": ["annealing"]})]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "parameter 'search'" in proc.stderr + proc.stdout


def _records_for_tables():
    """An exhaustive pass over {8,4}^2 and a GA record, as records (synthetic numbers)."""
    import itertools

    import pandas as pd

    from quide.analysis import results as qr
    recs = []
    for bits in itertools.product((8, 4), repeat=2):
        P = {8: 0.9, 4: 0.7}[bits[0]] - (0.05 if bits[1] == 4 else 0.0)
        recs.append(qr.make_record(experiment="mixed_precision", model="simplecnn", dataset="mnist",
                                   data_source="MNIST", seed=0, bits=list(bits), P=P, T_ms=1.0, T_kind="simulated",
                                   C_paper=32 / (sum(bits) / 2), C_true=32 / bits[1], num_classes=10,
                                   p_fp=0.9, delta=0.19, provenance={}, search="exhaustive", search_seed=None))
    ga = dict(recs[1], search="ga", search_seed=0, evaluations=3)
    df = pd.DataFrame(recs + [ga])
    df["bits_label"] = df["bits"].map(qr.bits_label)
    return df


def test_table2_ranks_against_the_exhaustive_pass():
    t = mpt.table2(_records_for_tables())
    ga = t[t["search"] == "ga"].iloc[0]
    # I' = C*(P-0.71): 8-8: 4*0.19=0.76; 8-4: 5.33*0.14=0.747; 4-8: 0; 4-4: 0  -> 8-4 ranks 2nd
    assert ga["bits"] == "8-4" and ga["rank"] == 2 and ga["n_configs"] == 4 and ga["evaluations"] == 3
    assert list(t["search"]) == ["ga", "uniform 4-bit"]


def test_optima_under_paper_and_true_compression():
    o = mpt.optima(_records_for_tables()).set_index("fitness C")
    assert o.loc["paper", "bits"] == "8-8"      # 0.76 > 0.747
    assert o.loc["true", "bits"] == "8-4"       # C_true 8: 8*0.14 = 1.12 > 4*0.19
