"""The ``quide`` command line: parameters as papermill reads them, refused before any work."""
from pathlib import Path

import pytest

from quide import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text, value", [("True", True), ("None", None), ("42", 42), ("0.19", 0.19),
                                         ("[8, 4]", [8, 4]), ("mnist", "mnist"), ("cuda:0", "cuda:0")])
def test_parse_value_reads_like_papermill(text, value):
    assert cli.parse_value(text) == value


@pytest.mark.parametrize("pairs, message", [
    ([("model", "simplecnn"), ("dataset", "svhn"), ("seed", "0")], "unknown dataset"),
    ([("model", "simplecnn"), ("dataset", "mnist"), ("seed", "zero")], "seed"),
    ([("model", "simplecnn"), ("dataset", "mnist"), ("seed", "0"), ("bits", "[8, 1]")], "bits"),
    ([("model", "simplecnn"), ("dataset", "mnist"), ("sede", "0")], "sede"),
])
def test_train_refuses_bad_parameters(pairs, message, capsys):
    argv = ["train"] + [a for name, value in pairs for a in ("-p", name, value)]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_train_then_find_the_checkpoint(mnist, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path))
    argv = ["train", "-p", "model", "simplecnn", "-p", "dataset", "mnist", "-p", "seed", "3",
            "-p", "profile", "smoke", "-p", "placement", "inputs"]   # a sweep-only parameter is accepted
    assert cli.main(argv) == 0
    assert "trained in" in capsys.readouterr().out
    assert len(list(tmp_path.glob("simplecnn-mnist-seed3-*.pt"))) == 1
    assert cli.main(argv) == 0
    assert "loaded" in capsys.readouterr().out


def test_reproduce_states_its_p_overrides_and_hardware_and_refuses_a_name_no_notebook_has(mnist, tmp_path, capsys,
                                                                                            monkeypatch):
    """Smoke runs are expected to take longer than 1 s, so under that time limit every run is
    deferred and nothing heavy starts: the header and the last line are what is checked."""
    import torch

    from quide import reproduce as rp
    monkeypatch.chdir(ROOT)
    out = str(tmp_path / "out")
    argv = ["reproduce", "reproduce/smoke.toml", "--out", out, "--time-limit-s", "1"]
    assert cli.main([*argv, "-p", "timed", "200"]) == 3
    printed = capsys.readouterr().out.splitlines()
    hardware = rp._hardware(torch.cuda.device_count(), None, None)
    header = next(line for line in printed if line.startswith("# quide reproduce"))
    assert "-p timed 200" in header and header.endswith(f"| {hardware}")   # the grid is not the config's
    assert printed[-1].startswith("whole reproduction: not finished: 0 of 2 runs after ")
    assert f"s on {hardware}; " in printed[-1]
    assert cli.main([*argv, "-p", "colour", "red"]) == 2
    assert "no experiment's notebook has such a parameter" in capsys.readouterr().err


def test_reproduce_with_mps_on_a_machine_without_it_exits_2_before_anything(tmp_path, capsys, monkeypatch):
    from quide import reproduce as rp
    monkeypatch.setattr(rp, "mps_available", lambda: False)
    monkeypatch.chdir(ROOT)
    assert cli.main(["reproduce", "reproduce/smoke.toml", "--out", str(tmp_path / "out"), "--mps"]) == 2
    assert "nvidia-cuda-mps-control not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _run_with_predictions(out, key, wrong_prediction=False):
    """A finished run folder holding a sweep record file and its predictions file beside it."""
    import numpy as np
    from quide.analysis import predictions as qp
    from quide.analysis import results as qr
    labels = np.arange(20) % 10
    predicted = labels.copy()
    if wrong_prediction:   # the same record, other predictions (and so another P)
        predicted[0] = 1
    rec = qr.make_record(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST", seed=0,
                         bits=32, P=qp.accuracy(labels, predicted), T_ms=1.0, T_kind="simulated", C_paper=1.0,
                         C_true=1.0, num_classes=10, p_fp=qp.accuracy(labels, predicted), delta=0.19, provenance={},
                         n_test=20)
    return qr.write_records([rec], "ptq_sweep", "run", root=out / "runs" / key / "results",
                            predictions=qp.Predictions(labels, [predicted]))


def test_collect_copies_the_predictions_before_the_records_that_name_them(tmp_path, monkeypatch, capsys):
    from quide import reproduce as rp
    out, into = tmp_path / "out", tmp_path / "results"
    _run_with_predictions(out, "a" * 20)
    order = []
    copyfile = rp.shutil.copyfile
    monkeypatch.setattr(rp.shutil, "copyfile", lambda src, dst: (order.append(src.name), copyfile(src, dst))[1])
    assert cli.main(["collect", str(out), "--into", str(into)]) == 0
    assert order == ["run.predictions.npz", "run.json"]
    assert cli.main(["verify", "--root", str(into)]) == 0
    assert "P recomputed from per-sample predictions (or samples): 1 records" in capsys.readouterr().out


def test_collect_refuses_two_runs_predictions_of_one_name(tmp_path, capsys):
    import shutil
    out, into = tmp_path / "out", tmp_path / "results"
    _run_with_predictions(out, "a" * 20)
    shutil.copytree(out / "runs" / ("a" * 20), out / "runs" / ("b" * 20))
    other = _run_with_predictions(tmp_path / "other", "c" * 20, wrong_prediction=True)
    shutil.copyfile(other.with_name("run.predictions.npz"), out / "runs" / ("b" * 20) / "results" / "ptq_sweep" /
                    "run.predictions.npz")   # the same records beside other predictions
    assert cli.main(["collect", str(out), "--into", str(into)]) == 2
    assert "two runs hold ptq_sweep/run.predictions.npz with other contents" in capsys.readouterr().err
    assert not into.exists()
