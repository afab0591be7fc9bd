"""Result records: derived metrics, required keys, atomic files, loading into pandas."""
import json

import pytest

import quide
from quide.analysis import predictions as qp
from quide.analysis import results as qr
from quide.measure import provenance as qprov


def _record(**changes):
    fields = dict(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST", seed=0,
                  bits=8, P=0.99, T_ms=0.5, T_kind="simulated", C_paper=4.0, C_true=3.9, num_classes=10,
                  p_fp=0.992, delta=0.19, provenance=qprov.provenance(device="test"))
    fields.update(changes)
    return qr.make_record(**fields)


def test_metrics_come_from_the_index():
    rec = _record()
    assert rec["I"] == pytest.approx(quide.intelligence_index(4.0, 0.99, 0.5))
    assert rec["p_thresh"] == pytest.approx(0.992 - 0.19)
    assert rec["I_gated"] == pytest.approx(quide.gated_index(4.0, 0.99, 0.5, 0.802))
    assert rec["ACP"] == pytest.approx(3.96) and rec["ALS"] == pytest.approx(quide.als(0.99, 0.5))
    assert set(qr.REQUIRED_KEYS) <= set(rec)


def test_provenance_names_code_software_and_hardware():
    prov = qprov.provenance(device="NVIDIA H100", data_sha256="d" * 64, calib_hash="c" * 16, wall_s=1.5)
    for key in ("git_commit", "git_dirty", "torch", "torchvision", "numpy", "python", "quide", "device",
                "data_sha256", "calib_indices_sha256", "wall_s", "created_utc"):
        assert key in prov


def test_provenance_names_the_card_on_a_gpu_and_none_on_a_cpu(monkeypatch):
    import types

    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert qprov.provenance()["gpu_uuid"] is None and qprov.provenance()["gpu_pci_bus_id"] is None
    card = types.SimpleNamespace(uuid="1852bac4-5340-0280-e322-9b837909a72a", pci_domain_id=0, pci_bus_id=9,
                                 pci_device_id=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: card)
    prov = qprov.provenance(device="NVIDIA H200")
    assert prov["gpu_uuid"] == "GPU-1852bac4-5340-0280-e322-9b837909a72a"   # as nvidia-smi -L prints it
    assert prov["gpu_pci_bus_id"] == "00000000:09:00.0"                      # as nvidia-smi's pci.bus_id


def test_bad_T_kind_and_percent_P():
    with pytest.raises(ValueError, match="T_kind"):
        _record(T_kind="measured")
    with pytest.raises(ValueError, match="^P must"):
        _record(P=99.0)


def test_write_then_load(tmp_path):
    recs = [_record(bits=b, C_paper=32 / b) for b in (32, 8, 4)] + [_record(bits=[8, 8, 8, 4], C_paper=32 / 7)]
    path = qr.write_records(recs, "ptq_sweep", "simplecnn-mnist-seed0", root=tmp_path)
    assert path == tmp_path / "ptq_sweep" / "simplecnn-mnist-seed0.json"
    df = qr.load_records(tmp_path)
    assert len(df) == 4 and df["bits_label"].tolist() == ["32", "8", "4", "8-8-8-4"]
    assert df["prov_device"].eq("test").all() and df["source_file"].iloc[0] == "ptq_sweep/simplecnn-mnist-seed0.json"
    assert qr.load_records(tmp_path, "ptq_sweep").shape == df.shape


def test_records_missing_keys_are_refused(tmp_path):
    rec = _record()
    del rec["T_kind"]
    with pytest.raises(ValueError, match="T_kind"):
        qr.write_records([rec], "x", "y", root=tmp_path)


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    qr.write_records([_record()], "ptq_sweep", "run", root=tmp_path)
    before = (tmp_path / "ptq_sweep" / "run.json").read_text()
    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(qr.os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        qr.write_records([_record(P=0.5)], "ptq_sweep", "run", root=tmp_path)
    assert (tmp_path / "ptq_sweep" / "run.json").read_text() == before
    assert [p.name for p in (tmp_path / "ptq_sweep").iterdir()] == ["run.json"]


def test_unreadable_result_file_is_named(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "broken.json").write_text("[{")
    with pytest.raises(ValueError, match="broken.json"):
        qr.load_records(tmp_path)


def test_per_layer_bits_survive_json():
    assert json.loads(json.dumps(_record(bits=[8, 4, 4, 2])))["bits"] == [8, 4, 4, 2]


def test_commit_from_env_where_git_cannot_tell(tmp_path, monkeypatch):
    monkeypatch.setenv("QUIDE_GIT_COMMIT", "abc123")
    state = qr.git_state(tmp_path)          # not a repository
    assert state["git_commit"] == "abc123" and state["git_source"] == "QUIDE_GIT_COMMIT"


def test_leftover_temporary_file_is_not_read(tmp_path):
    qr.write_records([_record()], "ptq_sweep", "run", root=tmp_path)
    (tmp_path / "ptq_sweep" / ".run.json-abc.tmp").write_text("[{")     # a killed writer's leftover
    (tmp_path / "ptq_sweep" / ".other.json-x.json").write_text("[{")
    assert len(qr.load_records(tmp_path)) == 1


def test_commit_from_env_wins_over_a_stale_git(tmp_path, monkeypatch):
    # the GPU machine's copy carried a .git of an older commit beside newer files: the launcher's
    # QUIDE_GIT_COMMIT names the code that ran
    import subprocess
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                    "--allow-empty", "-m", "old"], check=True)
    monkeypatch.delenv("QUIDE_GIT_COMMIT", raising=False)
    assert qr.git_state(tmp_path)["git_commit"] not in (None, "abc123")
    monkeypatch.setenv("QUIDE_GIT_COMMIT", "abc123")
    assert qr.git_state(tmp_path)["git_commit"] == "abc123"


# --- record identity (issue 14, cases 1 and 5) ----------------------------------------------------

def test_runs_with_other_parameters_never_share_a_record_file():
    """Case 1: bits, delta, observer, per_channel, calib_size, epochs and seed each give another
    file name; the same parameters give the same one."""
    from quide.measure.sweep import SweepParams
    base = dict(profile="smoke", device="cpu", bits=[8])
    names = {SweepParams(**base).run_id()}
    for change in ({"observer": "percentile"}, {"delta": 0.5}, {"per_channel": True}, {"calib_size": 32},
                   {"bits": [8, 4]}, {"seed": 42}, {"profile": "paper"}):
        name = SweepParams(**{**base, **change}).run_id()
        assert name not in names, change
        names.add(name)
    assert SweepParams(**base).run_id() == SweepParams(**base).run_id()
    paper = dict(device="cpu", bits=[8])   # epochs count only where the profile lets them through
    assert SweepParams(**paper, epochs=3).run_id() != SweepParams(**paper, epochs=4).run_id()
    assert SweepParams(**base).run_id().startswith("simplecnn-mnist-seed0-graph-smoke-")


def test_records_carry_their_parameters_and_their_hash(tmp_path):
    params = {"bits": [8], "seed": 0, "observer": "minmax"}
    path = qr.write_records([_record()], "ptq_sweep", qr.named_run("run", params), root=tmp_path,
                            run_params=params)
    rec = json.loads(path.read_text())[0]
    assert rec["run_params"] == params and rec["run_params_sha256"] == qr.params_sha256(params)
    assert path.name == f"run-{qr.params_sha256(params)[:8]}.json"


def test_a_file_made_with_other_parameters_is_not_replaced(tmp_path):
    qr.write_records([_record()], "ptq_sweep", "run", root=tmp_path, run_params={"delta": 0.19})
    before = (tmp_path / "ptq_sweep" / "run.json").read_text()
    with pytest.raises(ValueError, match="made with other parameters.*not replaced"):
        qr.write_records([_record(P=0.5)], "ptq_sweep", "run", root=tmp_path, run_params={"delta": 0.5})
    assert (tmp_path / "ptq_sweep" / "run.json").read_text() == before
    qr.write_records([_record(P=0.5)], "ptq_sweep", "run", root=tmp_path, run_params={"delta": 0.19})  # a rerun


@pytest.mark.parametrize("experiment", ["../../x", "/tmp/x", "", "a/b", ".hidden", "sweep-1", None])
def test_experiment_must_be_a_plain_folder_name(tmp_path, experiment):
    """Case 5: `experiment` cannot leave the results root, nor be empty."""
    with pytest.raises(ValueError, match="parameter 'experiment': must be letters, digits and _"):
        qr.write_records([_record()], experiment, "run", root=tmp_path / "root")
    assert not (tmp_path / "root").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("run_id", ["../x", "a/b", ".run", ""])
def test_run_id_must_be_a_file_stem(tmp_path, run_id):
    with pytest.raises(ValueError, match="run id"):
        qr.write_records([_record()], "ptq_sweep", run_id, root=tmp_path)


def test_records_are_created_readable_by_others(tmp_path):
    """Case 9: files are 0644 under umask 022, as any file (mkstemp alone gives 0600)."""
    import os
    old = os.umask(0o022)
    try:
        path = qr.write_records([_record()], "ptq_sweep", "run", root=tmp_path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_partial_runs_records_are_not_loaded(tmp_path):
    """Case 6: records in a runner's `.partial` folder (an unfinished run) are not read."""
    qr.write_records([_record()], "ptq_sweep", "run", root=tmp_path / "runs" / "k1" / "results")
    qr.write_records([_record(seed=1)], "ptq_sweep", "run", root=tmp_path / ".partial" / "k2-h-b-1" / "results")
    df = qr.load_records(tmp_path)
    assert df["seed"].tolist() == [0]


def test_a_file_that_is_not_a_list_of_records_is_named(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "odd.json").write_text('{"P": 0.5}')
    with pytest.raises(ValueError, match="odd.json: not a list of records"):
        qr.load_records(tmp_path)


# --- per-sample predictions beside the records --------------------------------------------------

def _predicted_sweep():
    """Three records of 10 test images whose P is the accuracy of their predictions."""
    import numpy as np
    labels = np.arange(10) % 4
    predicted = [labels.copy(), np.where(np.arange(10) < 8, labels, 0), np.zeros(10, dtype=int)]
    records = [_record(bits=b, C_paper=32 / b, P=float(np.mean(p == labels)), n_test=10)
               for b, p in zip((32, 8, 2), predicted)]
    return records, qp.Predictions(labels, predicted)


def test_records_name_their_predictions_written_beside_them(tmp_path):
    records, predictions = _predicted_sweep()
    path = qr.write_records(records, "ptq_sweep", "run", root=tmp_path, predictions=predictions)
    written = json.loads(path.read_text())
    beside = tmp_path / "ptq_sweep" / "run.predictions.npz"
    assert [r["predictions_key"] for r in written] == ["bits_32", "bits_8", "bits_2"]
    assert {r["predictions_file"] for r in written} == {beside.name}
    assert {r["predictions_sha256"] for r in written} == {qp.file_sha256(beside)}
    assert qp.load(written[1], beside.parent)[1].tolist() == predictions.predicted[1].tolist()


@pytest.mark.parametrize("change, message", [
    (lambda recs, preds: (recs, qp.Predictions(preds.labels, preds.predicted[:2])), "2 prediction arrays for 3"),
    (lambda recs, preds: ([*recs[:2], {**recs[2], "P": 0.5}], preds), r"record \[2\] has P 0.5 but its predictions give 0.3"),
    (lambda recs, preds: ([*recs[:2], {**recs[2], "n_test": 11}], preds), "n_test 11 but 10 predictions"),
    (lambda recs, preds: ([*recs[:2], {**recs[2], "bits": 8}], preds), "two records of one configuration"),
])
def test_predictions_that_are_not_the_records_are_refused_before_anything_is_written(tmp_path, change, message):
    records, predictions = change(*_predicted_sweep())
    with pytest.raises(ValueError, match=message):
        qr.write_records(records, "ptq_sweep", "run", root=tmp_path, predictions=predictions)
    assert not (tmp_path / "ptq_sweep").exists() or list((tmp_path / "ptq_sweep").iterdir()) == []


def test_a_refused_rerun_leaves_the_predictions_of_the_records_there(tmp_path):
    records, predictions = _predicted_sweep()
    qr.write_records(records, "ptq_sweep", "run", root=tmp_path, run_params={"delta": 0.19}, predictions=predictions)
    beside = tmp_path / "ptq_sweep" / "run.predictions.npz"
    before = beside.read_bytes()
    other = qp.Predictions(predictions.labels, [predictions.predicted[0]] * 3)
    with pytest.raises(ValueError, match="made with other parameters"):
        qr.write_records([{**r, "P": 1.0} for r in records], "ptq_sweep", "run", root=tmp_path,
                         run_params={"delta": 0.5}, predictions=other)
    assert beside.read_bytes() == before
