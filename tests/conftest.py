"""Shared fixtures. Real data comes through QUIDE_DATA (``.ci/run`` fills it from shared/data).

Where a real data set is missing the test is skipped locally, but fails when QUIDE_REQUIRE_DATA=1
(as in CI), so CI never passes by skipping.
"""
import os

import numpy as np
import pytest
import torch

from quide import data as qd

from helpers import synthetic_arrays


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


@pytest.fixture
def synthetic_root(tmp_path):
    """A data root holding a small synthetic 'cifar100'-shaped npz (100 classes, 32x32x3)."""
    arrays = synthetic_arrays(n_train=300, n_test=100, shape=(32, 32, 3), num_classes=100)
    qd.save_npz(tmp_path / "cifar100.npz", **arrays)
    return tmp_path


@pytest.fixture(autouse=True)
def _torch_seed():
    torch.manual_seed(0)
