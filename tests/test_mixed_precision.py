"""EXP-3 driver (quide.mixed_precision): parameters refused early, the real path on CPU (smoke)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from quide import mixed_precision as mp

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


def test_searches_run_on_a_real_model_and_share_measurements(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "ckpt"))
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
    names = sorted(p.name for p in paths)
    assert names == sorted(["simplecnn-mnist-seed0-ga-s0-paper-smoke.json",
                            "simplecnn-mnist-seed0-random-s0-paper-smoke.json",
                            "simplecnn-mnist-seed0-haq-s0-paper-smoke.json",
                            "simplecnn-mnist-seed0-greedy-paper-smoke.json",
                            "simplecnn-mnist-seed0-fp32-smoke.json"])
    ga = json.loads((tmp_path / "results" / "mixed_precision" / "simplecnn-mnist-seed0-ga-s0-paper-smoke.json").read_text())[0]
    assert ga["bits"] == list(by["ga"].config) and ga["search"] == "ga" and ga["evaluations"] == by["ga"].evaluations
    assert ga["rank_of_n"] is None                  # no exhaustive pass in this run
    assert ga["C_paper"] == pytest.approx(32 / (sum(ga["bits"]) / 4))
    assert ga["fitness"] == pytest.approx(ga["I_gated"]) and ga["T_kind"] == "simulated"
    table = mp.summary(run)
    assert list(table["search"]) == ["ga", "random", "haq", "greedy"]


def test_notebook_refuses_bad_search_in_its_first_cells(tmp_path):
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / "mixed_precision.ipynb"),
           str(out), "--cwd", str(ROOT), "-p", "profile", "smoke", "-y", json.dumps({"search": ["annealing"]})]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "parameter 'search'" in proc.stderr + proc.stdout
