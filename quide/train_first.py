"""``quide reproduce --train-first N``: train every checkpoint the grid's runs will load before the runs.

Each run that loads a trained model (a PTQ sweep, or a mixed-precision search of a sweep's model)
names its checkpoint and the sweep parameters that train it (``Run.checkpoint``, ``Run.training``,
set when planning). Those not on disk yet are trained with ``quide train``, one process per
checkpoint (runs sharing one train it once), N at a time on each GPU, the longest expected first.
Several trainings on one card fill the gaps each leaves; with ``--mps`` they run under NVIDIA's MPS
and overlap (``quide.mps``). The runs then load the checkpoints and time with the card to
themselves. A training that fails is reported and its run trains the model itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

POLL_S = 0.2


@dataclass
class Training:
    """One checkpoint to train: its ``quide train`` parameters and, once started, what happened."""
    label: str
    parameters: dict
    checkpoint: str
    expected_s: float = 0.0
    lane: str = ""                     # "<GPU>/<slot>": trainings on one lane ran one after another
    start: float | None = None         # time.time()
    end: float | None = None
    code: int | None = None            # quide train's exit code; None: not started or stopped
    status: str = "pending"            # trained | failed | stopped | deferred

    @property
    def seconds(self) -> float:
        return 0.0 if self.start is None or self.end is None else self.end - self.start


@dataclass
class TrainingPhase:
    trainings: list[Training] = field(default_factory=list)   # those started, deferred or stopped
    found: int = 0                     # checkpoints on disk already: nothing to train
    at_once: int = 0
    start: float | None = None
    end: float | None = None
    stopped: bool = False              # the budget's stop came before every training ended


def train_command(parameters: dict) -> list[str]:
    """``quide train`` with sweep parameters, each value written as papermill's -p reads it
    (``quide.cli.parse_value``)."""
    cmd = [sys.executable, "-m", "quide", "train"]
    for name, value in parameters.items():
        cmd += ["-p", name, value if isinstance(value, str) else repr(value)]
    return cmd


def trainings_of(runs, expected_s) -> tuple[list[Training], int]:
    """The checkpoints ``runs`` load that are not on disk, one Training each (longest expected first,
    ``expected_s(parameters)``), and how many are on disk already."""
    todo, found = {}, set()
    for run in runs:
        if not run.training or not run.checkpoint or run.checkpoint in todo:
            continue
        if Path(run.checkpoint).is_file():
            found.add(run.checkpoint)
            continue
        p = run.training
        todo[run.checkpoint] = Training(f"train({p['model']}, {p['dataset']}, seed {p['seed']})", dict(p),
                                        run.checkpoint, expected_s(p))
    return sorted(todo.values(), key=lambda t: -t.expected_s), len(found)


def train_first(trainings: list[Training], at_once: int, logs: Path, gpus: list[str | None],
                stop_at: float | None = None, ends_by: float | None = None) -> TrainingPhase:
    """Run ``trainings`` in order, ``at_once`` on each of ``gpus`` (CUDA_VISIBLE_DEVICES values;
    ``[None]``: leave it as it is), each one's output in ``logs/train-<n>.log``. A training starts
    only while its expected seconds fit before ``ends_by``; the others are deferred (their runs
    train for themselves). At ``stop_at`` (``time.time()``) every training still running is killed
    and no more start. Every process started is gone when this returns or raises."""
    if isinstance(at_once, bool) or not isinstance(at_once, int) or at_once < 1:
        raise ValueError(f"--train-first must be an int >= 1; got {at_once!r}")
    logs.mkdir(parents=True, exist_ok=True)
    gpu_of = {f"{'cpu' if gpu is None else gpu}/{slot}": gpu for slot in range(at_once) for gpu in gpus}
    phase = TrainingPhase(trainings=list(trainings), at_once=at_once, start=time.time())
    pending, active, free = list(phase.trainings), {}, list(gpu_of)
    try:
        while pending or active:
            while pending and free:
                job = pending.pop(0)
                if ends_by is not None and time.time() + job.expected_s > ends_by:
                    job.status = "deferred"
                    continue
                job.lane = free.pop(0)
                env = dict(os.environ)
                if gpu_of[job.lane] is not None:
                    env["CUDA_VISIBLE_DEVICES"] = gpu_of[job.lane]
                with open(logs / f"train-{phase.trainings.index(job)}.log", "w") as log:
                    log.write(f"# {job.label}: {' '.join(train_command(job.parameters)[1:])}\n")
                    log.flush()
                    proc = subprocess.Popen(train_command(job.parameters), stdout=log, stderr=subprocess.STDOUT,
                                            env=env)
                job.start = time.time()
                active[proc] = job
            for proc, job in list(active.items()):
                if proc.poll() is not None:
                    job.end, job.code = time.time(), proc.returncode
                    job.status = "trained" if proc.returncode == 0 else "failed"
                    free.append(job.lane)
                    del active[proc]
            if stop_at is not None and time.time() >= stop_at and (active or pending):
                phase.stopped = True
                for job in pending:
                    job.status = "deferred"
                return phase
            time.sleep(POLL_S)
        return phase
    finally:
        for proc, job in active.items():   # stopped, or this process interrupted: none left training
            proc.kill()
            proc.wait()
            job.end, job.status = time.time(), "stopped"
        phase.end = time.time()
