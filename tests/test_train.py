"""Training: recipes validate, a seed reproduces a run, the best epoch is kept, checkpoints round-trip."""
import pytest
import torch

from quide.measure import data as qd
from quide.measure import sweep as qsweep
from quide.measure import train as qt
from quide.measure.models import SimpleCNN
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
    files = [f for f in files if f.suffix == ".pt"]
    assert not first.loaded and len(files) == 1 and qt.sha256_path(files[0]).is_file()
    assert first.meta["recipe"] == RECIPE.as_dict() and first.meta["data_sha256"] == "abc"
    second = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    assert second.loaded and second.meta["epoch"] == first.meta["epoch"]
    assert torch.equal(second.model.fc2.weight, first.model.fc2.weight)
    # another seed or recipe is another checkpoint
    subset = qd.content_hash(data.x_train, data.y_train, data.x_test, data.y_test)
    key = lambda seed=0, recipe=RECIPE: qt.checkpoint_key("simplecnn", "cifar10", seed, recipe, "abc",  # noqa: E731
                                                          subset_sha256=subset, device_type="cpu")
    assert key() == files[0].name
    assert key(seed=1) != files[0].name and key(recipe=RECIPE.replace(epochs=4)) != files[0].name


def test_interrupted_checkpoint_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        qt.save_checkpoint(tmp_path / "m.pt", SimpleCNN(), {})
    assert list(tmp_path.iterdir()) == []


# --- stale and corrupt checkpoints (issue 14, cases 2, 3 and 9) ------------------------------------

def _key_parts(data):
    return dict(subset_sha256=qd.content_hash(data.x_train, data.y_train, data.x_test, data.y_test),
                device_type="cpu")


def test_checkpoint_key_follows_code_subset_and_device(tiny, tmp_path):
    """Case 2: the key changes with the model/training code, the images trained on and the device."""
    import shutil
    from pathlib import Path
    data, _ = tiny
    parts = _key_parts(data)
    key = qt.checkpoint_key("simplecnn", "cifar10", 0, RECIPE, "abc", **parts)
    assert qt.checkpoint_key("simplecnn", "cifar10", 0, RECIPE, "abc", **{**parts, "device_type": "cuda"}) != key
    assert qt.checkpoint_key("simplecnn", "cifar10", 0, RECIPE, "abc", **{**parts, "subset_sha256": "x"}) != key
    package = tmp_path / "quide"
    shutil.copytree(Path(qt.__file__).parents[1], package)
    assert qt.code_sha256(package) == qt.code_sha256()
    models = package / "measure" / "models.py"
    models.write_text(models.read_text().replace("max_pool2d", "avg_pool2d"))   # max- to average pooling
    assert qt.code_sha256(package) != qt.code_sha256()
    assert qt.checkpoint_key("simplecnn", "cifar10", 0, RECIPE, "abc", **parts,
                             code=qt.code_sha256(package)) != key


def test_a_checkpoint_of_other_code_or_other_images_is_not_loaded(tiny, tmp_path, monkeypatch):
    """Case 2: after a code change, or on a smaller slice of the same data set, the model is retrained."""
    import dataclasses
    data, splits = tiny
    first = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    assert not first.loaded
    monkeypatch.setattr(qt, "code_sha256", lambda package=None: "other code")
    assert not qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path).loaded
    monkeypatch.undo()
    subset = dataclasses.replace(data, x_train=data.x_train[:200], y_train=data.y_train[:200])   # same sha256
    sub_splits = qd.device_splits(subset, "cpu", val_size=32, seed=0)
    assert not qsweep.train_or_load("simplecnn", subset, sub_splits, RECIPE, seed=0, checkpoint_dir=tmp_path).loaded
    assert qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path).loaded


def _flip_exponent_bit(pt, state):
    """Flip the top exponent bit of the first float of fc2.weight inside the .pt file."""
    raw = bytearray(pt.read_bytes())
    needle = state["fc2.weight"].contiguous().view(-1)[:4].numpy().tobytes()
    at = raw.find(needle)
    assert at >= 0
    raw[at + 3] ^= 0x40   # float32 little-endian: byte 3 holds the sign and the top exponent bits
    pt.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flipped bit", "truncated", "no sha256", "garbage"])
def test_a_corrupt_checkpoint_is_retrained_with_the_reason_logged(tiny, tmp_path, damage, caplog):
    """Case 3: one flipped exponent bit, a truncated file, a missing sha256 or garbage: the
    checkpoint is not used, the model is retrained (same weights as the first training) and why
    is logged."""
    data, splits = tiny
    first = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    pt = next(tmp_path.glob("*.pt"))
    if damage == "flipped bit":
        _flip_exponent_bit(pt, first.model.state_dict())
    elif damage == "truncated":
        pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    elif damage == "no sha256":
        qt.sha256_path(pt).unlink()
    else:
        pt.write_bytes(b"not a checkpoint")
    with caplog.at_level("WARNING"):
        again = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    assert not again.loaded and again.meta["retrained_because"]
    assert "retraining: checkpoint" in caplog.text and pt.name in caplog.text
    assert torch.equal(again.model.fc2.weight, first.model.fc2.weight)
    assert qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path).loaded


def test_load_checkpoint_names_what_is_wrong(tiny, tmp_path):
    data, splits = tiny
    first = qsweep.train_or_load("simplecnn", data, splits, RECIPE, seed=0, checkpoint_dir=tmp_path)
    pt = next(tmp_path.glob("*.pt"))
    _flip_exponent_bit(pt, first.model.state_dict())
    with pytest.raises(qt.CheckpointError, match="file sha256 .* differs from the stored"):
        qt.load_checkpoint(pt, SimpleCNN(3, 4, 12))


def test_training_to_nan_is_an_error_and_nothing_is_cached(tiny, tmp_path):
    """Case 9: constant images (std 0) normalise to NaN; the NaN model is not cached."""
    import numpy as np
    data, _ = tiny
    x = np.full_like(data.x_train, 7)
    flat = qd.DeviceData(x, data.y_train, [7 / 255] * 3, [0.0] * 3)   # what std 0 gives, past any check
    splits = qd.Splits(flat, flat, flat)
    with pytest.raises(qt.TrainingDivergedError, match="training diverged.*not cached"):
        qsweep.train_or_load("simplecnn", data, splits, RECIPE.replace(epochs=1), seed=0, checkpoint_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_for_checkpoints_is_named(tmp_path):
    """Case 9: writing past the space there is (here: a file size limit) says so, leaves nothing."""
    import resource
    import signal
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG rather than a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))      # SimpleCNN's checkpoint is larger
    try:
        with pytest.raises(OSError, match="checkpoint .*m.pt not written: no space"):
            qt.save_checkpoint(tmp_path / "m.pt", SimpleCNN(), {})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert not (tmp_path / "m.pt").exists()


def test_checkpoints_are_created_readable_by_others(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        qt.save_checkpoint(tmp_path / "m.pt", SimpleCNN(), {})
    finally:
        os.umask(old)
    assert (tmp_path / "m.pt").stat().st_mode & 0o777 == 0o644
