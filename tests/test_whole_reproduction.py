"""benchmarks/whole_reproduction.py: the MPS daemon runs only while the runner does, its folders come
from the environment that the runs inherit, and a machine without it is told so; --train-first's
pool and deadline; the budget and the runner's time limit."""
import subprocess
import sys
from types import SimpleNamespace

import pytest

from quide.config import project_root
from quide.measure.latency import describe_device

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


@pytest.fixture
def at_root(monkeypatch):
    """main() as run from the repository root; the variables it sets are restored after the test."""
    monkeypatch.chdir(project_root())
    for var in ("CUDA_VISIBLE_DEVICES", "QUIDE_CHECKPOINTS"):
        monkeypatch.setenv(var, "")


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
    (keep.parent / whole_reproduction.OUT_MARKER).write_text("")   # an earlier call's folder
    keep.write_text("an earlier call's output")
    with pytest.raises(SystemExit) as stop:
        whole_reproduction.main(["reproduce/smoke.toml", "--out", str(keep.parent), "--mps"])
    assert stop.value.code == 2
    assert "nvidia-cuda-mps-control not found" in capsys.readouterr().err
    assert keep.read_text() == "an earlier call's output"


def fake_run(i, **parameters):
    from pathlib import Path

    from quide.reproduce import Run
    return Run("ptq_sweep", Path("notebooks/ptq_sweep.ipynb"), {"seed": i, **parameters}, key=f"k{i}")


def test_a_training_gets_its_sweeps_parameters_as_papermill_would_read_them():
    from quide.cli import parse_value
    params = {"model": "simplecnn", "dataset": "mnist", "seed": 42, "compare_placements": False, "bits": [8, 4]}
    cmd = whole_reproduction.train_command(fake_run(42, **params))
    assert cmd[1:4] == ["-m", "quide", "train"]
    given = dict(zip(cmd[5::3], cmd[6::3]))
    assert cmd[4::3] == ["-p"] * len(params)
    assert {name: parse_value(text) for name, text in given.items()} == params


def child(tmp_path, seconds, code=0):
    """A stand-in for `quide train`: notes its pid and start, sleeps, notes its end, exits with code."""
    script = (f"import os, sys, time; p = {str(tmp_path)!r} + '/' + str(os.getpid()); open(p, 'w').write(repr(time.time()));"
              f" time.sleep({seconds}); open(p, 'a').write(' ' + repr(time.time())); sys.exit({code})")
    return [sys.executable, "-c", script]


def test_trainings_run_at_most_n_at_a_time_and_a_failed_one_does_not_stop_the_rest(tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(whole_reproduction, "train_command",
                        lambda run: child(marks, 0.3, code=3 if run.key == "k2" else 0))
    done, stopped = whole_reproduction.train_first([fake_run(i) for i in range(5)], 2, tmp_path / "logs", None)
    assert not stopped
    assert sorted(code for _, _, code in done) == [0, 0, 0, 0, 3]
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [f"k{i}.log" for i in range(5)]
    spans = [tuple(map(float, p.read_text().split())) for p in marks.iterdir()]
    assert len(spans) == 5
    most = max(sum(a <= t < b for a, b in spans) for t, _ in spans)
    assert most <= 2


def test_the_deadline_kills_the_trainings_and_starts_no_more(tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(whole_reproduction, "train_command", lambda run: child(marks, 60))
    deadline = whole_reproduction.time.perf_counter() + 1.0
    done, stopped = whole_reproduction.train_first([fake_run(i) for i in range(4)], 2, tmp_path / "logs", deadline)
    assert stopped and done == []
    pids = [int(p.name) for p in marks.iterdir()]
    assert len(pids) <= 2   # the other two were never started
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            whole_reproduction.os.kill(pid, 0)


def test_a_budget_spent_before_the_runner_would_start_runs_nothing_and_says_so(at_root, tmp_path, capsys):
    # --budget-s counts from the script's start, so that a device call's limit covers its imports and planning
    out = tmp_path / "out"
    assert whole_reproduction.main(["reproduce/smoke.toml", "--out", str(out), "--budget-s", "0.001"]) == 1
    printed = capsys.readouterr().out
    assert "0 of 2 runs finished" in printed and "runner exit code (not started)" in printed
    assert not (out / "runs").exists()


@pytest.mark.parametrize("given, left, expected", [
    (120.0, 500.0, 120.0),   # an explicit --time-limit-s is passed as it is
    (None, None, None),      # no budget, no limit
    (None, 230.0, 220.0),    # what the budget leaves, less the stop grace
    (None, 10.0, 1.0),       # a budget nearly spent starts only runs expected to be that short
])
def test_the_runners_time_limit_is_what_the_budget_leaves_unless_given(given, left, expected):
    assert whole_reproduction.STOP_GRACE_S == 10
    assert whole_reproduction.runner_time_limit(given, left) == expected


def test_the_runner_is_started_with_the_time_limit_the_budget_leaves(at_root, tmp_path, monkeypatch, capsys):
    started = []

    def runner(cmd, budget_s):
        started.append((cmd, budget_s))
        return SimpleNamespace(returncode=3), "", False

    monkeypatch.setattr(whole_reproduction, "run_runner", runner)
    assert whole_reproduction.main(["reproduce/smoke.toml", "--out", str(tmp_path / "out"), "--budget-s", "400"]) == 3
    (cmd, budget_s), = started
    limit = float(cmd[cmd.index("--time-limit-s") + 1])
    # the runner is stopped where its time limit ends, the stop grace before the budget does
    assert 400 - whole_reproduction.STOP_GRACE_S - 10 <= budget_s <= 400 - whole_reproduction.STOP_GRACE_S
    assert abs(limit - budget_s) <= 1
    assert "what --budget-s left, less 10 s" in capsys.readouterr().out


def test_a_p_parameter_reaches_the_runner_and_one_no_notebook_has_is_refused(at_root, tmp_path, monkeypatch, capsys):
    started = []
    monkeypatch.setattr(whole_reproduction, "run_runner",
                        lambda cmd, budget_s: started.append(cmd) or (SimpleNamespace(returncode=0), "", False))
    out = tmp_path / "out"
    assert whole_reproduction.main(["reproduce/smoke.toml", "--out", str(out), "-p", "timed", "200"]) == 0
    assert started[0][-3:] == ["-p", "timed", "200"]
    printed = capsys.readouterr().out.splitlines()
    assert "-p timed 200" in printed[0]   # the header says the grid is not the config's
    device = describe_device("cpu")[0]
    assert printed[0].endswith(f"| {device}") and printed[-1].endswith(f"on 1 x {device}")
    with pytest.raises(SystemExit) as refused:
        whole_reproduction.main(["reproduce/smoke.toml", "--out", str(out), "-p", "colour", "red"])
    assert refused.value.code == 2 and "no experiment's notebook has such a parameter" in capsys.readouterr().err


def test_a_resume_call_with_other_parameters_than_the_first_is_refused(at_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(whole_reproduction, "run_runner",
                        lambda cmd, budget_s: (SimpleNamespace(returncode=3), "", False))
    out = tmp_path / "out"
    assert whole_reproduction.main(["reproduce/smoke.toml", "--out", str(out), "-p", "timed", "200"]) == 3
    with pytest.raises(SystemExit) as refused:
        whole_reproduction.main(["reproduce/smoke.toml", "--out", str(out), "--resume"])
    assert refused.value.code == 2 and "give the same config and -p" in capsys.readouterr().err
    assert whole_reproduction.main(["reproduce/smoke.toml", "--out", str(out), "--resume", "-p", "timed", "200"]) == 3


def _stubborn_runner(pid_file) -> list[str]:
    """A runner stand-in whose child ignores SIGTERM (as a stuck worker might) and writes its pid."""
    child = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
             "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)")
    return [sys.executable, "-c", "import subprocess, sys, time; "
            f"subprocess.Popen([sys.executable, '-c', {child!r}, {str(pid_file)!r}], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); time.sleep(300)"]


def test_the_budget_stops_the_runners_whole_group_and_kills_what_outlives_the_sigterm(monkeypatch, tmp_path):
    monkeypatch.setattr(whole_reproduction, "STOP_GRACE_S", 1.0)
    pid_file = tmp_path / "child.pid"
    proc, _, stopped = whole_reproduction.run_runner(_stubborn_runner(pid_file), 3.0)
    assert stopped and proc.returncode == -15   # the runner itself took the SIGTERM
    # dead, the child may linger as a zombie where nothing reaps orphans (a container's PID 1); its
    # state reads "ZN" under nice, so only the first letter counts
    state = subprocess.run(["ps", "-o", "stat=", "-p", pid_file.read_text()], capture_output=True, text=True).stdout
    assert state.strip()[:1] in ("", "Z")


def test_a_runner_that_ends_within_the_budget_is_not_stopped():
    proc, _, stopped = whole_reproduction.run_runner([sys.executable, "-c", "print('done')"], 30)
    assert not stopped and proc.returncode == 0
