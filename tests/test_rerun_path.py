"""The rerun path a reader takes: a smoke run's subsets hold every class equally, and its records
go to a temporary folder, never into the tracked data/results, unless told otherwise."""
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from quide import config
from quide.analysis import results as qr
from quide.measure import data as qd
from quide.measure import sweep
from quide.measure.provenance import provenance

REPO = Path(__file__).resolve().parents[1]


def sorted_by_class(n_train=3000, n_test=1000, num_classes=10):
    """A data set whose splits are sorted by class, as CIFAR-10's test split is."""
    def split(n):
        y = np.repeat(np.arange(num_classes), n // num_classes)
        return np.zeros((len(y), 8, 8, 3), np.uint8) + y[:, None, None, None].astype(np.uint8), y
    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return qd.ImageData("cifar10", x_train, y_train, x_test, y_test, num_classes=num_classes,
                        source="synthetic", path="", sha256="abc")


# --- smoke subsets are stratified by class ------------------------------------------------------

def test_a_smoke_subset_of_a_class_sorted_split_holds_every_class_equally():
    params = sweep.SweepParams(dataset="cifar10", profile="smoke", device="cpu", seed=42)
    images = sweep.condition_images(params, sorted_by_class())
    assert len(images.y_test) == sweep.SMOKE["n_test"]
    assert len(images.y_train) == sweep.SMOKE["n_train"]
    assert np.bincount(images.y_test).tolist() == [sweep.SMOKE["n_test"] // 10] * 10, \
        "the smoke test subset must hold the same number of images of every class"
    assert np.bincount(images.y_train).tolist() == [sweep.SMOKE["n_train"] // 10] * 10
    # the images travel with their labels
    assert (images.x_test[:, 0, 0, 0] == images.y_test).all()


def test_a_smoke_subset_is_seeded():
    data = sorted_by_class()
    def picks(seed):
        return qd.stratified_indices(data.y_test, 500, seed)
    assert (picks(0) == picks(0)).all()
    assert not (picks(0) == picks(42)).all()
    assert len(np.unique(picks(0))) == 500


def test_a_subset_too_small_for_one_image_per_class_is_refused():
    with pytest.raises(ValueError, match="a subset of 5 images cannot hold one image of each of 10 classes"):
        qd.stratified_indices(np.repeat(np.arange(10), 3), 5, seed=0)


def test_a_subset_as_large_as_the_split_is_the_split():
    labels = np.array([3, 1, 2, 1])
    assert qd.stratified_indices(labels, 10, seed=0).tolist() == [0, 1, 2, 3]


def test_the_real_cifar10_smoke_test_subset_is_balanced(cifar10):
    params = sweep.SweepParams(dataset="cifar10", profile="smoke", device="cpu")
    images = sweep.condition_images(params, cifar10)
    assert np.bincount(images.y_test, minlength=10).tolist() == [50] * 10


# --- a smoke run writes into a temporary folder ------------------------------------------------

def _record():
    return qr.make_record(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="synthetic",
                          seed=0, bits=8, P=0.99, T_ms=0.5, T_kind="simulated", C_paper=4.0, C_true=3.9,
                          num_classes=10, p_fp=0.992, delta=0.19,
                          provenance=provenance(device="test", data_sha256="c" * 64))


def _smoke_sweep(monkeypatch, root=None):
    params = sweep.SweepParams(dataset="mnist", profile="smoke", device="cpu", compare_placements=False)
    monkeypatch.setattr(sweep, "measure_sweep", lambda *a, **k: ([_record()], None))
    condition = sweep.ConditionData(params, sweep.DataInfo("mnist", "MNIST", 10, "c" * 64), None)
    (_, path), = sweep.run_sweeps(condition, sweep.TrainedModel(None), root=root).values()
    return path


def test_a_smoke_run_writes_into_a_temporary_folder_by_default(monkeypatch):
    monkeypatch.delenv("QUIDE_RESULTS", raising=False)
    monkeypatch.chdir(REPO)
    before = sorted(p.name for p in (REPO / "data" / "results" / "ptq_sweep").iterdir())
    path = _smoke_sweep(monkeypatch)
    assert Path(tempfile.gettempdir()) in path.parents, f"a smoke run wrote its records to {path}"
    assert REPO not in path.parents
    assert json.loads(path.read_text())[0]["P"] == 0.99
    assert sorted(p.name for p in (REPO / "data" / "results" / "ptq_sweep").iterdir()) == before


def test_a_smoke_run_writes_where_QUIDE_RESULTS_or_its_root_says(monkeypatch, tmp_path):
    monkeypatch.setenv("QUIDE_RESULTS", str(tmp_path / "env"))
    assert _smoke_sweep(monkeypatch).parent == tmp_path / "env" / "ptq_sweep"
    assert _smoke_sweep(monkeypatch, root=tmp_path / "given").parent == tmp_path / "given" / "ptq_sweep"


def test_a_paper_run_writes_into_the_results_root(monkeypatch):
    monkeypatch.delenv("QUIDE_RESULTS", raising=False)
    monkeypatch.chdir(REPO)
    assert config.run_results_root("paper") == REPO / "data" / "results"
    assert config.run_results_root("smoke") != config.run_results_root("smoke")   # a fresh folder each run
