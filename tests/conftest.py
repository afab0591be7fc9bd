"""Shared fixtures. Real data comes through QUIDE_DATA (``.ci/run`` fills it from shared/data).

Where a real data set is missing the test is skipped locally, but fails when QUIDE_REQUIRE_DATA=1
(as in CI), so CI never passes by skipping.
"""
import os

import numpy as np
import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every run, so CI cannot pass or fail by luck;
# `--hypothesis-profile=explore` draws fresh ones when hunting for counterexamples.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000)
settings.load_profile("ci")

from quide.measure import data as qd

from fixtures.quide_cli import register_test_experiments
from helpers import synthetic_arrays

register_test_experiments()   # the runner's fault tests run tests/fixtures/sleepy.ipynb


def pytest_configure(config):
    """Runs (notebooks re-executed by nbval included) write records and checkpoints to a scratch
    folder, never into the repository's committed results."""
    if "QUIDE_RESULTS" in os.environ and "QUIDE_CHECKPOINTS" in os.environ:
        return   # set by the caller (or a parent session): theirs to keep
    import tempfile
    scratch = tempfile.mkdtemp(prefix="quide-test-")
    config._quide_scratch = scratch
    os.environ.setdefault("QUIDE_RESULTS", os.path.join(scratch, "results"))
    os.environ.setdefault("QUIDE_CHECKPOINTS", os.path.join(scratch, "checkpoints"))


def pytest_collection_modifyitems(config, items):
    """Notebook cells under nbval (the sweep's smoke copy, the book's pages) run in a kernel that
    imports torch and trains or reads every record: slow, so `make test-fast` leaves them out."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config):
    """The scratch folder goes with the session (it held a checkpoint per trained test model)."""
    scratch = getattr(config, "_quide_scratch", None)
    if scratch:
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)


def _need(name):
    try:
        return qd.load_dataset(name, download=False)
    except qd.DataNotFoundError as err:
        if os.environ.get("QUIDE_REQUIRE_DATA") == "1":
            raise
        pytest.skip(f"{name} not available: {err}")


@pytest.fixture(scope="session")
def mnist():
    return _need("mnist")


@pytest.fixture(scope="session")
def cifar10():
    return _need("cifar10")


@pytest.fixture(scope="session")
def mnist_trained(mnist, tmp_path_factory):
    """SimpleCNN trained 1 epoch on 20k MNIST images (CPU, ~15 s); 2k test images.

    Returns (data subset, splits, TrainedModel). Shared by the end-to-end and the torch.ao peer tests.
    """
    import dataclasses

    from quide.measure import sweep as qsweep
    from quide.measure import train as qt
    small = dataclasses.replace(mnist, x_train=mnist.x_train[:20000], y_train=mnist.y_train[:20000],
                                x_test=mnist.x_test[:2000], y_test=mnist.y_test[:2000])
    splits = qd.device_splits(small, "cpu", val_size=1000, seed=0)
    trained = qsweep.train_or_load("simplecnn", small, splits, qt.SIMPLECNN.replace(epochs=1, val_size=1000),
                               seed=0, checkpoint_dir=tmp_path_factory.mktemp("ckpt"))
    return small, splits, trained


@pytest.fixture
def synthetic_root(tmp_path):
    """A data root holding a small synthetic 'cifar100'-shaped npz (100 classes, 32x32x3)."""
    arrays = synthetic_arrays(n_train=300, n_test=100, shape=(32, 32, 3), num_classes=100)
    qd.save_npz(tmp_path / "cifar100.npz", **arrays)
    return tmp_path


@pytest.fixture(autouse=True)
def _torch_seed():
    torch.manual_seed(0)
