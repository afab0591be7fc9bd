"""Training: recipes validate, a seed reproduces a run, the best epoch is kept, checkpoints round-trip."""
import pytest
import torch

from quide import data as qd
from quide import sweep as qsweep
from quide import train as qt
from quide.models import SimpleCNN
from helpers import synthetic_arrays


@pytest.fixture(scope="module")
def tiny():
    arrays = synthetic_arrays(n_train=256, n_test=64, shape=(12, 12, 3), num_classes=4)
    data = qd.ImageData("cifar10", **arrays, num_classes=4, source="synthetic", path="", sha256="abc")
    return data, qd.device_splits(data, "cpu", val_size=32, seed=0)


RECIPE = qt.SIMPLECNN.replace(epochs=3, batch_size=32, val_size=32, augment=True)


def test_paper_recipes():
    assert (qt.SIMPLECNN.optimizer, qt.SIMPLECNN.lr, qt.SIMPLECNN.weight_decay) == ("adam", 1e-3, 1e-4)
    assert (qt.SIMPLECNN.batch_size, qt.SIMPLECNN.epochs, qt.SIMPLECNN.keep) == (128, 50, "best")
    assert qt.paper_recipe("simplecnn", "cifar10").augment and not qt.paper_recipe("simplecnn", "mnist").augment
    r = qt.paper_recipe("resnet18_cifar", "cifar10")
    assert (r.optimizer, r.lr, r.weight_decay, r.schedule, r.epochs) == ("sgd", 0.1, 5e-4, "cosine", 100)


@pytest.mark.parametrize("changes, field", [
    ({"optimizer": "rmsprop"}, "optimizer"), ({"epochs": 0}, "epochs"), ({"batch_size": 1.5}, "batch_size"),
    ({"schedule": "step"}, "schedule"), ({"keep": "first"}, "keep"), ({"val_size": 0}, "val_size"),
])
def test_recipe_validation(changes, field):
    with pytest.raises(ValueError, match=field):
        qt.SIMPLECNN.replace(**changes)


def _trained(tiny, seed):
    data, splits = tiny
    torch.manual_seed(seed)
    return qt.train(SimpleCNN(3, 4, 12), splits, RECIPE, seed=seed)


def test_same_seed_gives_bitwise_identical_weights(tiny, tmp_path):
    data, splits = tiny
    runs = []
    for folder in ("a", "b"):
        torch.rand(123)     # disturb the global RNG: the seed alone must decide init, order, crops
        runs.append(qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=7, checkpoint_dir=tmp_path / folder))
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=8, checkpoint_dir=tmp_path / "c")
    assert not torch.equal(a["conv1.weight"], c.model.conv1.weight)


def test_keeps_the_best_epoch(tiny):
    data, splits = tiny
    result = _trained(tiny, 0)
    vals = [h["val_accuracy"] for h in result.history]
    assert result.epoch == 1 + vals.index(max(vals))
    assert qt.evaluate(result.model, splits.val) == pytest.approx(max(vals))
    assert result.wall_s > 0 and len(result.history) == 3


def test_learns_something(tiny):
    data, splits = tiny
    result = _trained(tiny, 0)
    assert qt.evaluate(result.model, splits.test) > 0.5       # chance is 0.25


def test_checkpoint_round_trip_and_reuse(tiny, tmp_path):
    data, splits = tiny
    first = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert not first.loaded and len(files) == 1 and files[0].suffix == ".pt"
    assert first.meta["recipe"] == RECIPE.as_dict() and first.meta["data_sha256"] == "abc"
    second = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    assert second.loaded and second.meta["epoch"] == first.meta["epoch"]
    assert torch.equal(second.model.fc2.weight, first.model.fc2.weight)
    # another seed or recipe is another checkpoint
    assert qt.checkpoint_key("simplecnn", "cifar10", 1, RECIPE, "abc") != files[0].name
    assert qt.checkpoint_key("simplecnn", "cifar10", 0, RECIPE.replace(epochs=4), "abc") != files[0].name


def test_interrupted_checkpoint_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        qt.save_checkpoint(tmp_path / "m.pt", SimpleCNN(), {})
    assert list(tmp_path.iterdir()) == []
