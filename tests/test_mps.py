"""quide.mps: the MPS daemon runs only while its body does, its folders come from the environment
that the runs inherit, and the environment is restored after it."""
import subprocess

import pytest

from quide import mps


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(mps.subprocess, "run",
                        lambda cmd, **kw: seen.append((cmd, kw.get("input"))) or subprocess.CompletedProcess(cmd, 0))
    for var in mps.FOLDERS:
        monkeypatch.delenv(var, raising=False)
    return seen


def test_the_daemon_is_started_for_the_body_and_quit_after_it_even_when_it_fails(calls):
    with pytest.raises(RuntimeError):
        with mps.mps(True):
            assert calls == [(["nvidia-cuda-mps-control", "-d"], None)]
            assert mps.os.environ["CUDA_MPS_PIPE_DIRECTORY"].startswith("/tmp/")
            raise RuntimeError("the runner failed")
    assert calls[-1] == (["nvidia-cuda-mps-control"], "quit\n")
    assert "CUDA_MPS_PIPE_DIRECTORY" not in mps.os.environ


def test_without_mps_nothing_is_started(calls):
    with mps.mps(False):
        pass
    assert calls == []
    assert "CUDA_MPS_PIPE_DIRECTORY" not in mps.os.environ


def test_a_variable_set_before_is_set_again_after(calls, monkeypatch):
    monkeypatch.setenv("CUDA_MPS_LOG_DIRECTORY", "/somewhere/else")
    with mps.mps(True):
        assert mps.os.environ["CUDA_MPS_LOG_DIRECTORY"] == mps.FOLDERS["CUDA_MPS_LOG_DIRECTORY"]
    assert mps.os.environ["CUDA_MPS_LOG_DIRECTORY"] == "/somewhere/else"
