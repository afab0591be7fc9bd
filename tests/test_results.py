"""Result records: derived metrics, required keys, atomic files, loading into pandas."""
import json

import pytest

import quide
from quide import results as qr


def _record(**changes):
    fields = dict(experiment="ptq_sweep", model="simplecnn", dataset="mnist", data_source="MNIST", seed=0,
                  bits=8, P=0.99, T_ms=0.5, T_kind="simulated", C_paper=4.0, C_true=3.9, num_classes=10,
                  p_fp=0.992, delta=0.19, provenance=qr.provenance(device="test"))
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
    prov = qr.provenance(device="NVIDIA H100", data_sha256="d" * 64, calib_hash="c" * 16, wall_s=1.5)
    for key in ("git_commit", "git_dirty", "torch", "torchvision", "numpy", "python", "quide", "device",
                "data_sha256", "calib_indices_sha256", "wall_s", "created_utc"):
        assert key in prov


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
