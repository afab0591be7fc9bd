"""benchmarks/whole_reproduction.py's --mps: the MPS daemon runs only while the runner does, its
folders come from the environment that the runs inherit, and a machine without it is told so."""
import subprocess
import sys

import pytest

from quide.config import project_root

sys.path.insert(0, str(project_root() / "benchmarks"))
import whole_reproduction  # noqa: E402  (a script beside the package, not part of it)


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(whole_reproduction.subprocess, "run",
                        lambda cmd, **kw: seen.append((cmd, kw.get("input"))) or subprocess.CompletedProcess(cmd, 0))
    for var in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    return seen


def test_the_daemon_is_started_for_the_body_and_quit_after_it_even_when_it_fails(calls):
    with pytest.raises(RuntimeError):
        with whole_reproduction.mps(True):
            assert calls == [(["nvidia-cuda-mps-control", "-d"], None)]
            assert whole_reproduction.os.environ["CUDA_MPS_PIPE_DIRECTORY"].startswith("/tmp/")
            raise RuntimeError("the runner failed")
    assert calls[-1] == (["nvidia-cuda-mps-control"], "quit\n")
    assert "CUDA_MPS_PIPE_DIRECTORY" not in whole_reproduction.os.environ


def test_without_mps_nothing_is_started(calls):
    with whole_reproduction.mps(False):
        pass
    assert calls == []
    assert "CUDA_MPS_PIPE_DIRECTORY" not in whole_reproduction.os.environ


def test_mps_on_a_machine_without_it_is_refused_before_anything_is_emptied(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(whole_reproduction.shutil, "which", lambda name: None)
    keep = tmp_path / "out" / "keep.txt"
    keep.parent.mkdir()
    keep.write_text("an earlier call's output")
    with pytest.raises(SystemExit) as stop:
        whole_reproduction.main(["reproduce/smoke.toml", "--out", str(keep.parent), "--mps"])
    assert stop.value.code == 2
    assert "nvidia-cuda-mps-control not found" in capsys.readouterr().err
    assert keep.read_text() == "an earlier call's output"
