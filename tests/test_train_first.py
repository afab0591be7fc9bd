"""quide.train_first: which checkpoints are trained, with what parameters, how many at a time, and
what a deadline or a time limit leaves undone."""
import os
import sys
import time
from pathlib import Path

import pytest

from quide import train_first as tf
from quide.cli import parse_value
from quide.reproduce import Run


def fake_run(i, checkpoint=None, **training):
    return Run("ptq_sweep", Path("notebooks/ptq_sweep.ipynb"), {"seed": i}, key=f"k{i}",
               checkpoint=checkpoint or f"/nonexistent/ck{i}.pt", training={"model": "simplecnn", "dataset": "mnist",
                                                                           "seed": i, **training}, own_training=True)


def test_a_training_gets_its_sweeps_parameters_as_papermill_would_read_them():
    params = {"model": "simplecnn", "dataset": "mnist", "seed": 42, "compare_placements": False, "bits": (32, 8),
              "delta": None}
    cmd = tf.train_command(params)
    assert cmd[1:4] == ["-m", "quide", "train"]
    assert cmd[4::3] == ["-p"] * len(params)
    assert {name: parse_value(text) for name, text in zip(cmd[5::3], cmd[6::3])} == params


def test_each_checkpoint_not_on_disk_is_trained_once_longest_first(tmp_path):
    on_disk = tmp_path / "found.pt"
    on_disk.write_bytes(b"")
    runs = [fake_run(0, model="simplecnn"), fake_run(1, checkpoint=str(on_disk)),
            fake_run(2, model="resnet18_cifar"), fake_run(3, checkpoint="/nonexistent/ck0.pt"),   # shares run 0's
            Run("sleepy", Path("tests/fixtures/sleepy.ipynb"), {"seed": 4}, key="k4")]             # trains nothing
    trainings, found = tf.trainings_of(runs, lambda p: {"resnet18_cifar": 134.0}.get(p["model"], 21.0))
    assert found == 1
    assert [(t.checkpoint, t.expected_s) for t in trainings] == [("/nonexistent/ck2.pt", 134.0),
                                                                 ("/nonexistent/ck0.pt", 21.0)]
    assert trainings[0].label == "train(resnet18_cifar, mnist, seed 2)"


def child(tmp_path, seconds, code=0):
    """A stand-in for `quide train`: notes its pid, start and GPU, sleeps, notes its end, exits with code."""
    script = (f"import os, sys, time; p = {str(tmp_path)!r} + '/' + str(os.getpid()); "
              "open(p, 'w').write(os.environ.get('CUDA_VISIBLE_DEVICES', '-') + ' ' + repr(time.time()));"
              f" time.sleep({seconds}); open(p, 'a').write(' ' + repr(time.time())); sys.exit({code})")
    return [sys.executable, "-c", script]


def trainings(n, expected_s=1.0):
    return [tf.Training(f"train {i}", {"seed": i}, f"/nonexistent/{i}.pt", expected_s) for i in range(n)]


def test_trainings_run_at_most_n_at_a_time_on_each_gpu_and_a_failed_one_does_not_stop_the_rest(tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(tf, "train_command", lambda params: child(marks, 0.3, code=3 if params["seed"] == 2 else 0))
    phase = tf.train_first(trainings(6), 2, tmp_path / "logs", ["5", "7"])
    assert not phase.stopped
    assert sorted(t.code for t in phase.trainings) == [0, 0, 0, 0, 0, 3]
    assert sorted(t.status for t in phase.trainings) == ["failed"] + ["trained"] * 5
    assert len(list((tmp_path / "logs").iterdir())) == 6
    spans = [p.read_text().split() for p in marks.iterdir()]
    assert len(spans) == 6
    for gpu in ("5", "7"):   # the GPUs given, as CUDA_VISIBLE_DEVICES, two at a time on each
        mine = [(float(a), float(b)) for g, a, b in spans if g == gpu]
        assert mine and max(sum(a <= t < b for a, b in mine) for t, _ in mine) <= 2


def test_the_deadline_kills_the_trainings_and_starts_no_more(tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(tf, "train_command", lambda params: child(marks, 60))
    phase = tf.train_first(trainings(4), 2, tmp_path / "logs", [None], stop_at=time.time() + 1.0)
    assert phase.stopped and sorted(t.status for t in phase.trainings) == ["deferred"] * 2 + ["stopped"] * 2
    pids = [int(p.name) for p in marks.iterdir()]
    assert len(pids) <= 2   # the other two were never started
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_training_expected_to_end_after_the_time_limit_is_not_started(tmp_path, monkeypatch):
    monkeypatch.setattr(tf, "train_command", lambda params: [sys.executable, "-c", "pass"])
    jobs = trainings(1, expected_s=1.0) + [tf.Training("long", {"seed": 9}, "/nonexistent/9.pt", 600.0)]
    phase = tf.train_first(jobs, 1, tmp_path / "logs", [None], ends_by=time.time() + 60)
    assert [t.status for t in phase.trainings] == ["trained", "deferred"]


def test_n_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--train-first must be an int >= 1; got 0"):
        tf.train_first(trainings(1), 0, tmp_path, [None])
