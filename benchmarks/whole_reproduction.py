"""The whole reproduction on ONE GPU: `quide reproduce` of a grid with a single GPU visible, timed.

Runs the runner as a user would, with ``CUDA_VISIBLE_DEVICES`` set to one GPU and ``--runs-per-gpu``
runs at once on it, and prints each run's seconds (papermill's, lock waits included; see
``grid_wall.py``), then a last line ``whole reproduction: N s on 1 x <GPU name>`` when every run
finished, or says how many did not. Seconds count from this script's start (imports and the grid's
plan included; the second line says how long the plan took).

A grid longer than one machine session runs over several: ``--time-limit-s`` is passed to the
runner (it starts only the runs expected to fit and defers the rest); without it the runner gets
what ``--budget-s`` leaves at its start less ``STOP_GRACE_S``. ``--budget-s`` stops the runner (its
whole process group) ``STOP_GRACE_S`` before the budget ends, so that the script ends within it.
``--resume`` keeps the ``--out`` folder of the previous session on the same machine and adds this
session's seconds to the earlier ones (``<out>/whole_reproduction_calls.json``), so N is the sum.

``--mps`` runs the runs under NVIDIA's Multi-Process Service (its daemon started for the runner and
quit afterwards), so that the kernels of runs sharing the card run side by side. MPS raises the
graph-replay T of the same graphs (``probes/mps_timing_probe.py``), so its timings are another
measurement. ``--train-first N`` keeps MPS away from the timings: it first trains every PTQ sweep's
checkpoint (``quide train`` with the sweep's parameters, N at a time, longest first; under MPS with
``--mps``), quits MPS, and then runs the grid, whose runs load those checkpoints and time without it.

``--out`` is emptied first, so it must be a new folder or one this script made (it leaves
``.whole_reproduction`` inside); an empty name, the working directory, the repository, a folder
above them or any other existing folder is refused (exit 2) and nothing is deleted. Ctrl-C or
SIGTERM stops the runner's whole process group and everything it started (its kernels too) before
the script reports what finished and exits 130 or 143; nothing runs on after it.

Where ``PYTHONDONTWRITEBYTECODE`` is set every Python process compiles all it imports afresh
(seconds per run); unset it first, and only the first import compiles (the header says which held).
From the repository root, on a GPU machine (data as for `quide reproduce`)::

    unset PYTHONDONTWRITEBYTECODE
    python benchmarks/whole_reproduction.py --out /tmp/whole --train-first 6 --mps --runs-per-gpu 6 -p timed 200 --budget-s 595 > benchmarks/results/reproduce_h200.txt
    python benchmarks/whole_reproduction.py reproduce/smoke.toml --out /tmp/whole   # CPU try

(``-p timed 200``: the host protocol at 200 timed passes instead of the paper's 1,000.)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from grid_wall import run_seconds  # noqa: E402  (sibling scripts, not a package)


def mps_daemon_running() -> bool:
    """Whether NVIDIA's MPS control daemon runs on this host (a process named nvidia-cuda-mps...)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "nvidia-cuda-mps":   # comm is cut at 15 characters
                return True
        except OSError:
            pass
    return False


@contextlib.contextmanager
def mps(on: bool):
    """NVIDIA's Multi-Process Service for the GPU(s) in CUDA_VISIBLE_DEVICES while open, where ``on``.
    Its pipe and log folders live in /tmp (the daemon and every client read them from the
    environment); the daemon is quit and the environment restored on the way out, so the card is
    left as it was found."""
    if not on:
        yield
        return
    folders = {"CUDA_MPS_PIPE_DIRECTORY": "/tmp/quide-mps/pipe", "CUDA_MPS_LOG_DIRECTORY": "/tmp/quide-mps/log"}
    before = {var: os.environ.get(var) for var in folders}
    for var, folder in folders.items():
        os.environ[var] = folder
        Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True)
        try:
            yield
        finally:
            subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, check=False)
            for _ in range(100):   # the daemon quits after its clients; wait, so later work runs without it
                if not mps_daemon_running():
                    break
                time.sleep(0.1)
    finally:
        for var, value in before.items():
            if value is None:
                del os.environ[var]
            else:
                os.environ[var] = value


# The runner is stopped this long before the budget ends: SIGTERM to its process group, then SIGKILL
# to what is left of the group once the runner has exited, or this long after if it has not. A stopped
# runner with runs in flight exited 0.09-0.18 s after SIGTERM (the smoke grid on 2 CPUs, three stops);
# on an H200 with four runs on the card, 0.11-0.12 s, and its four kernels and every GPU process were
# gone within 1.22 s (benchmarks/probes/stop_probe.py, benchmarks/results/stop_probe_h200.txt). The
# grace is also the margin of the runner's time limit, so a larger one defers runs that would fit
# (at 30 s, two runs of 16 s each were deferred).
STOP_GRACE_S = 10


def runner_time_limit(time_limit_s: float | None, budget_left_s: float | None) -> float | None:
    """The runner's --time-limit-s: the one given, else what the budget leaves at the runner's start
    less the stop grace, when the budget stops it, so that the runner defers the runs that would not
    end in time rather than have the budget kill them (after --train-first that is what the trainings
    left); None: no limit."""
    if time_limit_s is not None or budget_left_s is None:
        return time_limit_s
    return max(budget_left_s - STOP_GRACE_S, 1.0)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of a process from /proc, None where it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[2]), int(fields[19])


def _alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not; its state may read "Z" or, under nice, "ZN"), and is
    the process that started at ``started`` where given (not a new one with its pid)."""
    stat = _stat(pid)
    return stat is not None and not stat[0].startswith("Z") and started in (None, stat[2])


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and (stat := _stat(int(p.name))) and stat[1] == pgid and not stat[0].startswith("Z")]


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of every live descendant of ``pid``, in its group or not (a Jupyter kernel
    starts a session of its own)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return [(child, stat[2]) for child in found if (stat := _stat(child)) and not stat[0].startswith("Z")]


def stop_runner(proc: subprocess.Popen, grace_s: float) -> str:
    """Stop the runner ``proc`` (leader of its own process group) and everything it started; return
    what is left of its stderr. SIGTERM to the group (the runner stops its workers and exits),
    ``grace_s`` to exit, then SIGKILL to what is left of the group and of the runner's descendants
    outside it (a kernel's own session); returns once none of them runs. SIGINT and SIGTERM wait
    meanwhile, so that a second Ctrl-C cannot cut the stop short."""
    ignoring = threading.current_thread() is threading.main_thread()
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)} if ignoring else {}
    family = descendants(proc.pid)   # now: once the runner is gone its orphans lose their parent

    def left() -> list[int]:
        return group_members(proc.pid) + [pid for pid, started in family if _alive(pid, started)]

    def kill_left():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid, started in family:
            if _alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        stderr = ""
        if proc.stdout is not None and proc.stdout.closed:   # read to their end already: the runner exited
            proc.wait()
        else:
            try:
                _, stderr = proc.communicate(timeout=grace_s)
            except subprocess.TimeoutExpired:   # the runner, or something holding its pipes, outlived the SIGTERM
                kill_left()
                try:
                    _, stderr = proc.communicate(timeout=grace_s)
                except subprocess.TimeoutExpired:   # a process it did not start holds them: read no more
                    for pipe in (proc.stdout, proc.stderr):
                        pipe.close()
                    proc.wait()
        for _ in range(600):   # what outlived the SIGTERM without holding the pipes; D state takes a while
            if not left():
                break
            kill_left()
            time.sleep(0.1)
        else:
            print(f"runner stopped, but processes {left()} still run", file=sys.stderr)
        return stderr or ""
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def run_runner(cmd: list[str], budget_s: float | None):
    """(process, its stderr, whether the budget stopped it). On any way out (the budget, an
    exception, Ctrl-C, SIGTERM under :func:`quide.cli.sigterm_as_interrupt`) the runner and all it
    started are stopped (:func:`stop_runner`): nothing runs on once this returns or raises."""
    # its own session, so that a stop reaches the runner's workers and kernels too
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=budget_s)
        return proc, stderr, False
    except subprocess.TimeoutExpired:
        return proc, stop_runner(proc, STOP_GRACE_S), True
    finally:
        if proc.returncode is None or group_members(proc.pid):   # interrupted, or something outlived it
            stop_runner(proc, STOP_GRACE_S)


# Inside every --out folder this script made; it empties (or resumes) only a folder that has it.
OUT_MARKER = ".whole_reproduction"
REPOSITORY = Path(__file__).resolve().parents[1]


def out_refusal(text: str) -> str | None:
    """Why ``--out text`` must not be used (emptied, or resumed), or None: refused are an empty name
    (an unset shell variable: Path("") is the working directory), the working directory, the
    repository or a folder above either, and an existing folder without ``OUT_MARKER`` (one this
    script did not make)."""
    if not text.strip():
        return "--out is empty (an unset variable?); name a new folder, e.g. /tmp/quide-whole-reproduction"
    out, cwd = Path(text).resolve(), Path.cwd().resolve()
    for place, what in ((cwd, "the working directory"), (REPOSITORY, "the repository")):
        if out == place or out in place.parents:
            return f"--out {text!r} is {what} or a folder above it ({out}); name a new folder"
    if out.exists() and not (out / OUT_MARKER).is_file():
        return (f"--out {text!r}: {out} exists and was not made by this script (no {OUT_MARKER} inside), so "
                "it is neither emptied nor resumed; name a new folder, or remove this one yourself")
    return None


def train_command(run) -> list[str]:
    """``quide train`` with a sweep run's parameters: the checkpoint that run's notebook will load."""
    cmd = [sys.executable, "-m", "quide", "train"]
    for name, value in run.parameters.items():   # as papermill's -p reads them (quide.cli.parse_value)
        cmd += ["-p", name, value if isinstance(value, str) else repr(value)]
    return cmd


def train_first(runs: list, at_once: int, logs: Path, deadline: float | None) -> tuple[list, bool]:
    """Train (or find) every checkpoint that ``runs`` (PTQ-sweep runs, longest first) will load, with
    ``at_once`` ``quide train`` processes at a time; each one's output goes to ``logs``. Returns
    ([(seconds, label, exit code)], stopped): at ``deadline`` (``time.perf_counter()``) every
    training still running is killed and the rest are not started."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, active, done = list(runs), {}, []
    try:
        while pending or active:
            while pending and len(active) < at_once:
                run = pending.pop(0)
                with open(logs / f"{run.key}.log", "w") as log:
                    proc = subprocess.Popen(train_command(run), stdout=log, stderr=subprocess.STDOUT)
                active[proc] = (run, time.perf_counter())
            for proc, (run, began) in list(active.items()):
                if proc.poll() is not None:
                    done.append((time.perf_counter() - began, run.label, proc.returncode))
                    del active[proc]
            if deadline is not None and time.perf_counter() > deadline:
                return done, True
            time.sleep(0.2)
        return done, False
    finally:
        for proc in active:   # stopped, or this process interrupted: none left training on the card
            proc.kill()
            proc.wait()


def main(argv=None) -> int:
    launched = time.perf_counter()   # --budget-s counts from here: a session's limit covers it all
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="reproduce/paper.toml", help="grid config (TOML)")
    ap.add_argument("--out", default="/tmp/quide-whole-reproduction",
                    help="reproduce's --out; emptied first (unless --resume), so every run starts from scratch: "
                         f"a new folder, or one this script made (it holds {OUT_MARKER})")
    ap.add_argument("--runs-per-gpu", type=int, default=1, help="runs at once on the GPU")
    ap.add_argument("--gpu-index", default="0", help="the one GPU made visible (CUDA_VISIBLE_DEVICES)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="end within this many seconds of this script's start (its imports and the grid's "
                         f"planning count): the runner is stopped {STOP_GRACE_S} s before, so that it has exited "
                         "by then, and what finished is reported (default: no limit)")
    ap.add_argument("--time-limit-s", type=float, default=None,
                    help="the runner's --time-limit-s, counted from the runner's start: start only runs "
                         "expected to end within it (default with --budget-s: what the budget leaves when the "
                         f"runner starts, less {STOP_GRACE_S} s)")
    ap.add_argument("--resume", action="store_true",
                    help="keep --out from an earlier call on this machine and add its wall time")
    ap.add_argument("--mps", action="store_true",
                    help="run the runs (with --train-first: the trainings only) under NVIDIA MPS, so that "
                         "their kernels can share the GPU at once (starts nvidia-cuda-mps-control -d for "
                         "them and quits it afterwards)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="the runner's -p: a notebook parameter set in every experiment that has it "
                         "(not the paper's grid any more: the header shows it)")
    ap.add_argument("--train-first", type=int, default=0, metavar="N",
                    help="first train every PTQ sweep's checkpoint, N trainings at a time (quide train), "
                         "then run the grid, whose runs load them; skipped with --resume")
    args = ap.parse_args(argv)
    refusal = out_refusal(args.out)   # before anything is emptied or made
    if refusal:
        ap.error(refusal)
    args.out = Path(args.out)
    if args.train_first < 0:
        ap.error(f"--train-first must be >= 0; got {args.train_first}")
    if args.mps and shutil.which("nvidia-cuda-mps-control") is None:
        ap.error("--mps: nvidia-cuda-mps-control not found (it comes with the NVIDIA driver's utilities)")
    for name in ("budget_s", "time_limit_s"):
        value = getattr(args, name)
        if value is not None and not 0 < value < float("inf"):
            ap.error(f"--{name.replace('_', '-')} must be > 0; got {value}")
    os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu_index   # before torch is imported, here and below
    import torch

    from quide.measure.latency import describe_device
    from quide.cli import parse_parameters, sigterm_as_interrupt
    from quide.reproduce import ConfigError, plan, queue_order
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = describe_device(device)[0]
    try:
        runs = plan(args.config, check_devices=False,
                    overrides=parse_parameters(args.parameter))
    except ConfigError as err:
        ap.error(str(err))
    planned = len(runs)
    trainings = [] if args.resume else queue_order([r for r in runs if r.experiment == "ptq_sweep"])
    ledger = args.out / "whole_reproduction_calls.json"   # each call's wall, s
    if args.resume and not ledger.is_file():
        ap.error(f"--resume: {ledger} not found; the first call runs without --resume")
    # the grid a --resume call finishes must be the first call's: other parameters are other run keys
    grid = {"config": str(args.config), "parameters": args.parameter}
    first_grid = args.out / "whole_reproduction_grid.json"
    if args.resume and first_grid.is_file() and json.loads(first_grid.read_text()) != grid:
        ap.error(f"--resume: the first call ran {first_grid.read_text().strip()}, this one asks for "
                 f"{json.dumps(grid)}; give the same config and -p")
    if not args.resume:
        shutil.rmtree(args.out, ignore_errors=True)   # out_refusal: new, or this script's (marked)
        args.out.mkdir(parents=True)
        (args.out / OUT_MARKER).write_text("made by benchmarks/whole_reproduction.py; emptied by its next call\n")
        ledger.write_text("[]\n")
        first_grid.write_text(json.dumps(grid) + "\n")
    calls = json.loads(ledger.read_text())
    # checkpoints inside --out: a first call trains every model from scratch, a resumed one keeps them
    os.environ["QUIDE_CHECKPOINTS"] = str(args.out / "checkpoints")
    cmd = [sys.executable, "-m", "quide", "reproduce", args.config, "--out", str(args.out)]
    if args.runs_per_gpu != 1:
        cmd += ["--runs-per-gpu", str(args.runs_per_gpu)]
    for parameter, value in args.parameter:   # not `name`: that is the GPU's, for the header and last line
        cmd += ["-p", parameter, value]
    bytecode = "off (PYTHONDONTWRITEBYTECODE)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    first = (f" | train first: {len(trainings)} checkpoints, {args.train_first} at a time"
             f"{' under MPS' if args.mps else ''}" if args.train_first and trainings else "")
    runner_mps = args.mps and not args.train_first
    print(f"# {' '.join(cmd[1:])} | CUDA_VISIBLE_DEVICES={args.gpu_index} | QUIDE_CHECKPOINTS={args.out}/checkpoints"
          f" | bytecode cache {bytecode} | MPS {'on' if runner_mps else 'off'} for the runner{first} | {name}",
          flush=True)
    start = time.perf_counter()
    print(f"started, imports and the grid's plan: {start - launched:.0f} s", flush=True)
    proc, stderr, trained, stopped = None, "", [], False
    interrupted = None   # the signal that stopped this call, if one did
    try:
        with sigterm_as_interrupt():   # SIGTERM too ends in the finally blocks that stop what runs
            if args.train_first and trainings:
                deadline = None if args.budget_s is None else launched + args.budget_s
                with mps(args.mps):
                    trained, stopped = train_first(trainings, args.train_first, args.out / "train-logs", deadline)
                for seconds, label, code in trained:
                    print(f"{seconds:8.1f} s  train {label}" + (f" FAILED (exit code {code}; its run trains it)" if code else ""))
                print(f"training first: {len(trained)} of {len(trainings)} in {time.perf_counter() - start:.0f} s", flush=True)
            left = None if args.budget_s is None else args.budget_s - (time.perf_counter() - launched)
            stopped = stopped or (left is not None and left <= STOP_GRACE_S)
            if not stopped:
                limit = runner_time_limit(args.time_limit_s, left)
                if limit is not None:
                    cmd += ["--time-limit-s", f"{limit:.0f}"]
                    print(f"runner: --time-limit-s {limit:.0f}" + ("" if args.time_limit_s is not None else
                          f" (what --budget-s left, less {STOP_GRACE_S} s)"), flush=True)
                with mps(runner_mps):
                    proc, stderr, stopped = run_runner(cmd, None if left is None else left - STOP_GRACE_S)
    except KeyboardInterrupt as stop:   # run_runner and train_first have stopped all they started
        interrupted = signal.Signals(getattr(stop, "signum", signal.SIGINT))
    wall = time.perf_counter() - launched   # the call's whole time: imports and planning too
    calls.append(round(wall, 1))
    ledger.write_text(json.dumps(calls) + "\n")
    total = sum(calls)
    over = f" over {len(calls)} calls ({' + '.join(f'{c:.0f}' for c in calls)} s)" if len(calls) > 1 else ""
    rows = run_seconds(args.out) if (args.out / "runs").is_dir() else []
    for seconds, label in rows:
        print(f"{seconds:8.1f} s  {label}")
    code = proc.returncode if proc else "(interrupted)" if interrupted else "(not started)"
    print(f"{len(rows)} of {planned} runs finished; sum {sum(s for s, _ in rows):.0f} s; runner exit code {code}")
    if interrupted:
        print(f"whole reproduction: interrupted by {interrupted.name}: {len(rows)} of {planned} runs after "
              f"{total:.0f} s on 1 x {name}{over}; the runner and all it started are stopped", flush=True)
        return 128 + interrupted
    if stopped:
        print(f"whole reproduction: not finished: {len(rows)} of {planned} runs in the budget of {args.budget_s:.0f} s "
              f"on 1 x {name}{over}")
        return 1
    if proc.returncode == 3:   # runs deferred by --time-limit-s: the next call (--resume) starts them
        print(f"whole reproduction: not finished: {len(rows)} of {planned} runs after {total:.0f} s on 1 x {name}"
              f"{over}; the rest deferred to the next call (--resume)")
        return 3
    if proc.returncode != 0:
        print(stderr[-2000:], end="")
        print(f"whole reproduction: not finished (exit code {proc.returncode}) after {total:.0f} s on 1 x {name}{over}")
        return 1
    print(f"whole reproduction: {total:.0f} s on 1 x {name}{over}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
