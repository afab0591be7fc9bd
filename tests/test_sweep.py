"""End to end on real MNIST, on CPU: train (1 epoch) -> PTQ sweep -> latency -> records; a sweep's
per-sample predictions on synthetic data."""
import json
import time

import numpy as np
import pytest

from helpers import synthetic_arrays
from quide.analysis import predictions as qp
from quide.analysis import results as qr
from quide.measure import sweep as qsweep
from quide.analysis.conditions import delta_for
from quide.measure.latency import TimerConfig


@pytest.fixture(scope="module")
def mnist_run(mnist_trained):
    # A subset keeps this under a minute on 2 CPU cores: 20k training, 2k test images, 1 epoch.
    small, splits, trained = mnist_trained
    start = time.perf_counter()
    config = qsweep.SweepConfig(bits=(32, 16, 8, 4, 2), warmup=2, timed=5, timer=TimerConfig(rounds=6, passes=2, warmup=1))
    records = qsweep.ptq_sweep(trained.model, small, splits, model_name="simplecnn", seed=0,
                           delta=delta_for("simplecnn", "mnist"), config=config, train_meta=trained.meta)
    return records, time.perf_counter() - start


@pytest.mark.slow
def test_8_bit_within_half_a_point_and_2_bit_collapses(mnist_run):
    records, _ = mnist_run
    P = {r["bits"]: r["P"] for r in records}
    assert P[32] > 0.9                       # one epoch is enough to learn MNIST
    assert abs(P[8] - P[32]) <= 0.005
    assert P[16] == pytest.approx(P[32], abs=0.001)
    assert P[2] < P[32] - 0.10
    print("MNIST, 1 epoch, CPU:", {b: round(p, 4) for b, p in P.items()})


@pytest.mark.slow
def test_records_are_complete_and_consistent(mnist_run, tmp_path):
    records, _ = mnist_run
    by_bits = {r["bits"]: r for r in records}
    assert [r["quant_kind"] for r in records] == ["fp32", "fp16", "fake-quant", "fake-quant", "fake-quant"]
    assert all(r["T_kind"] == "simulated" and r["T_ms"] > 0 for r in records)
    assert by_bits[4]["C_paper"] == 8.0 and 7.5 < by_bits[4]["C_true"] < 8.0
    assert all(r["p_thresh"] == pytest.approx(by_bits[32]["P"] - 0.19) for r in records)
    assert by_bits[4]["provenance"]["data_sha256"] and by_bits[4]["provenance"]["calib_indices_sha256"]
    assert by_bits[8]["train"]["epoch"] == 1 and by_bits[8]["n_test"] == 2000
    qr.write_records(records, "ptq_sweep", "simplecnn-mnist-seed0", root=tmp_path)
    df = qr.load_records(tmp_path)
    assert df["I_gated"].tolist() == [r["I_gated"] for r in records]
    assert df.loc[df.bits_label == "2", "I_gated"].item() < df.loc[df.bits_label == "4", "I_gated"].item()


@pytest.mark.slow
def test_fake_quant_bit_widths_share_one_timing_and_keep_their_own_host_figure(mnist_run):
    records, _ = mnist_run
    by_bits = {r["bits"]: r for r in records}
    assert all(r["T_method"] == "host" and r["T_method_reason"] is None for r in records)   # CPU
    assert all(r["T_ci_ms"][0] <= r["T_ms"] <= r["T_ci_ms"][1] and r["T_rounds"] == 6 for r in records)
    assert by_bits[8]["T_signature"] == by_bits[4]["T_signature"] == by_bits[2]["T_signature"]
    assert by_bits[8]["T_ms"] == by_bits[4]["T_ms"] == by_bits[2]["T_ms"]
    assert len({by_bits[b]["T_signature"] for b in (32, 16, 8)}) == 3
    assert all(r["T_host_ms"] > 0 and r["T_host_scope"] == "configuration" and r["latency_passes"] == 5
               for r in records)


def test_sweep_config_validates():
    with pytest.raises(ValueError, match="bits"):
        qsweep.SweepConfig(bits=(32, 1))
    with pytest.raises(ValueError, match="empty"):
        qsweep.SweepConfig(bits=())
    with pytest.raises(ValueError, match="host_timing"):
        qsweep.SweepConfig(host_timing="never")
    with pytest.raises(ValueError, match="timer"):
        qsweep.SweepConfig(timer={"rounds": 3})


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_checkpoint_of_names_the_file_model_for_writes_and_then_loads(profile, tmp_path, monkeypatch):
    from helpers import synthetic_arrays
    from quide.measure import data as qd
    monkeypatch.setattr(qd, "KNOWN_FILE_SHA256", {})   # a small made-up MNIST
    qd.save_npz(tmp_path / "mnist.npz", **synthetic_arrays(n_train=2400, n_test=50, shape=(28, 28, 1), num_classes=10))
    monkeypatch.setenv("QUIDE_DATA", str(tmp_path))
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    assert qsweep.checkpoint_of(qsweep.SweepParams(model="resnet18_imagenet", dataset="imagenet")) is None
    params = qsweep.SweepParams(dataset="mnist", seed=3, epochs=1, device="cpu", profile=profile)
    if profile == "paper":   # the paper's recipe holds out 5,000 images; these are 2,400
        monkeypatch.setattr(qsweep.SweepParams, "recipe",
                            lambda self: qsweep.paper_recipe(self.model, self.dataset).replace(epochs=1, val_size=100))
    path = qsweep.checkpoint_of(params)
    assert path.parent == tmp_path / "checkpoints" and not path.exists()
    assert not qsweep.model_for(qsweep.load_condition(params)).loaded
    assert list((tmp_path / "checkpoints").glob("*.pt")) == [path]
    assert qsweep.checkpoint_of(params, qd.load_dataset("mnist")) == path   # the loaded data set given
    assert qsweep.model_for(qsweep.load_condition(params)).loaded
    assert qsweep.checkpoint_of(qsweep.SweepParams(dataset="mnist", seed=4, epochs=1, device="cpu",
                                                   profile=profile)) != path


def test_a_sweep_writes_the_predictions_its_p_is_computed_from(tmp_path):
    """A smoke sweep of an untrained SimpleCNN on 40 synthetic test images: each record file has its
    predictions beside it, each record's P is recomputed from them, and they are the model's."""
    import torch

    from quide.analysis.verify import verify_all
    from quide.measure import data as qd
    from quide.measure.models import build_model
    arrays = synthetic_arrays(n_train=300, n_test=40, shape=(28, 28, 1), num_classes=10)
    data = qd.ImageData("mnist", **arrays, num_classes=10, source="synthetic", path="", sha256="e" * 64)
    params = qsweep.SweepParams(dataset="mnist", bits=[8, 2], calib_size=16, profile="smoke", device="cpu",
                                compare_placements=False)
    condition = qsweep.load_condition(params, data)
    torch.manual_seed(0)
    model = build_model("simplecnn", 10, (28, 28, 1)).eval()
    (records, path), = qsweep.run_sweeps(condition, qsweep.TrainedModel(model), root=tmp_path).values()
    written = json.loads(path.read_text())
    assert [r["predictions_key"] for r in written] == ["bits_8", "bits_2"]
    assert {r["predictions_file"] for r in written} == {path.name.removesuffix(".json") + ".predictions.npz"}
    assert verify_all(tmp_path) == (2, [], {})   # every P recomputed from the predictions, none missing
    labels, predicted = qp.load(written[0], path.parent)
    assert labels.tolist() == condition.splits.test.y.tolist() and len(predicted) == 40
    assert written[0]["P"] == np.mean(predicted == labels)
