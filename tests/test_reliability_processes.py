"""Processes and locks around the runner: what an interrupted `quide reproduce --train-first` leaves
running, the host timing lock's path and waits, and `quide reproduce`'s exit on an interrupt.
Every process a test starts is stopped and reaped, pass or fail."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quide import cli, hostlock
from quide import reproduce as rp

ROOT = Path(__file__).resolve().parents[1]

PATIENCE_S = 180   # a bound for a test to end on a loaded machine, never a timing under test


def _stat(pid):
    """(state, process group) from /proc, or None where the pid is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2])


def _alive(pid):
    """A zombie is not alive: its state starts with Z (ps shows "ZN" for one under nice)."""
    stat = _stat(pid)
    return stat is not None and not stat[0].startswith("Z")


def _wait_for(condition, what, proc=None):
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first (exit {proc.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _kill_all(pids=(), groups=()):
    """Clean-up of a test, whatever it found: SIGKILL to each group and pid still there."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# --- 10: an interrupted `quide reproduce --train-first` leaves no training running ----------------

STUBBORN_TRAINING = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)   # as a stuck process might
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()}\\n")
time.sleep(600)
"""

# `quide reproduce --train-first 2` as run from the repository, its two trainings stubborn stand-ins
DRIVER = """\
import sys
sys.path.insert(0, "tests")
from fixtures.quide_cli import register_test_experiments
from quide import reproduce, train_first
from quide.cli import main
register_test_experiments()
reproduce.trainings_of = lambda runs, expected: (
    [train_first.Training(f"train {i}", {"seed": i}, f"/nonexistent/{i}.pt") for i in range(2)], 0)
train_first.train_command = lambda parameters: [sys.executable, sys.argv[1], sys.argv[2]]
sys.exit(main(["reproduce", sys.argv[3], "--out", sys.argv[4], "--workers", "1", "--train-first", "2"]))
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_reproduce_stops_its_trainings_and_says_so(signum, code, tmp_path):
    (tmp_path / "training.py").write_text(STUBBORN_TRAINING)
    (tmp_path / "c.toml").write_text(SLEEPY_CONFIG)
    pids_file = tmp_path / "pids"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "training.py"), str(pids_file),
                               str(tmp_path / "c.toml"), str(tmp_path / "out")], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        _wait_for(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2, "both trainings to start",
                  driver)
        pids = [int(p) for p in pids_file.read_text().split()]
        os.kill(driver.pid, signum)
        out, err = driver.communicate(timeout=PATIENCE_S)
        assert driver.returncode == code, err
        assert "Traceback" not in err, err
        assert f"quide reproduce: interrupted by {signal.Signals(signum).name}" in err
        assert out.splitlines()[-1].startswith(f"whole reproduction: interrupted by {signal.Signals(signum).name}")
        assert not [pid for pid in pids if _alive(pid)]   # gone by the time it exits: nothing waited for here
        assert not (tmp_path / "out" / "runs").exists()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
        _kill_all(pids, [driver.pid])


# --- 11: a timing lock path that cannot be a lock is refused before anything runs ----------------

SLEEPY_CONFIG = '[[experiment]]\nname = "sleepy"\nnotebook = "tests/fixtures/sleepy.ipynb"\ngrid = { seed = [0] }\n'


def _bad_lock_paths(tmp_path):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    return {"a folder": str(tmp_path / "a-folder"),
            "under a file": str(tmp_path / "a-file" / "timing.lock"),
            "uncreatable": "/proc/quide-no-such-folder/timing.lock"}


@pytest.mark.parametrize("case", ["a folder", "under a file", "uncreatable"])
def test_planning_refuses_a_timing_lock_that_cannot_be_made_naming_the_variable(case, tmp_path, monkeypatch):
    lock = _bad_lock_paths(tmp_path)[case]
    monkeypatch.setenv("QUIDE_TIMING_LOCK", lock)
    config = tmp_path / "c.toml"
    config.write_text(SLEEPY_CONFIG)
    with pytest.raises(rp.ConfigError, match="QUIDE_TIMING_LOCK") as refused:
        rp.plan(config, ROOT)
    assert repr(lock) in str(refused.value)
    assert not Path(lock + ".gate").exists()   # a folder leaves no stray gate beside it


def test_gpu_work_under_a_bad_lock_names_the_variable_and_leaves_no_gate(tmp_path, monkeypatch):
    lock = _bad_lock_paths(tmp_path)["a folder"]
    monkeypatch.setenv("QUIDE_TIMING_LOCK", lock)
    with pytest.raises(hostlock.LockPathError, match=f"QUIDE_TIMING_LOCK={lock!r}: the lock .* is a folder"):
        with hostlock.gpu_work():
            pass
    assert not Path(lock + ".gate").exists()


def test_quide_train_refuses_a_bad_timing_lock_before_training(tmp_path, monkeypatch, capsys):
    lock = _bad_lock_paths(tmp_path)["under a file"]
    monkeypatch.setenv("QUIDE_TIMING_LOCK", lock)
    monkeypatch.setenv("QUIDE_CHECKPOINTS", str(tmp_path / "checkpoints"))
    assert cli.main(["train", "-p", "profile", "smoke", "-p", "epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"QUIDE_TIMING_LOCK={lock!r}" in err and "is a file, not a folder" in err
    assert not (tmp_path / "checkpoints").exists()


def test_the_lock_module_loads_without_torch():
    code = "import sys, quide.hostlock; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=PATIENCE_S).returncode == 0


# --- 12: a wait for the timing lock is said, naming the lock and its holder ----------------------

HOLDER = """\
import sys
from quide.hostlock import timing_turn
with timing_turn() as alone:
    print("holding", alone, flush=True)
    sys.stdin.read()   # until the test closes it
"""

WAITER = """\
from quide import hostlock
hostlock.NOTICE_AFTER_S, hostlock.NOTICE_EVERY_S = 0.2, 0.5
with hostlock.gpu_work():
    print("got it", flush=True)
"""


def test_a_wait_for_a_held_timing_lock_names_the_lock_and_its_holder(tmp_path):
    lock = tmp_path / "timing.lock"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QUIDE_TIMING_LOCK": str(lock)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    waiter = None
    try:
        assert holder.stdout.readline().strip() == "holding True"
        with open(tmp_path / "waiter.err", "w") as err:
            waiter = subprocess.Popen([sys.executable, "-c", WAITER], env=env, stdout=subprocess.PIPE,
                                      stderr=err, text=True)
        said = tmp_path / "waiter.err"
        _wait_for(lambda: "held by" in said.read_text(), "the waiter to say why it waits", waiter)
        assert waiter.poll() is None   # still waiting: the lock is held
        holder.stdin.close()           # the holder lets go; the waiter goes on
        assert holder.wait(PATIENCE_S) == 0
        out, _ = waiter.communicate(timeout=PATIENCE_S)
        assert waiter.returncode == 0 and out.strip() == "got it"
        first = said.read_text().splitlines()[0]
        assert f"timing lock {lock} (QUIDE_TIMING_LOCK)" in first
        assert f"pid {holder.pid} " in first and "timing since" in first and "timing_turn" in first
    finally:
        for proc in (holder, waiter):
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None:
                        pipe.close()


# --- 20: an interrupted `quide reproduce` exits 130 (SIGINT) or 143 (SIGTERM), no traceback ------

@pytest.mark.slow
@pytest.mark.parametrize("signum, to_group, code", [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)])
def test_an_interrupted_reproduce_says_so_in_one_line_and_exits_128_plus_the_signal(signum, to_group, code, tmp_path):
    """SIGINT to the whole group, as Ctrl-C in a terminal sends it; SIGTERM to the runner alone.
    Either way the runner's clean-up still stops its worker, and the finished record stays partial."""
    config = tmp_path / "c.toml"
    config.write_text(SLEEPY_CONFIG.replace("seed = [0]", "seed = [1]"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fixtures" / "quide_cli.py"), "reproduce", str(config), "--workers", "1", "--out", str(out)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "SLEEPY_S": "600"},
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = []
    try:
        _wait_for(lambda: list((out / ".partial").glob("*/results/sleepy/seed1.json")), "the run to start", proc)
        workers = [json.loads(p.read_text())["pid"] for p in (out / ".partial").glob("*/owner.json")]
        (os.killpg if to_group else os.kill)(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=PATIENCE_S)
        assert proc.returncode == code, stderr
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
        assert f"quide reproduce: interrupted by {signal.Signals(signum).name}" in stderr
        _wait_for(lambda: not [pid for pid in workers if _alive(pid)], "the runner's worker to end")
        assert not (out / "runs").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _kill_all(workers, [proc.pid])
