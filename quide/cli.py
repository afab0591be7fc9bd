"""The ``quide`` command line (``python -m quide``).

``quide verify`` recomputes every committed record's derived numbers (``quide.analysis.verify``),
and P from the per-sample predictions (or an LLM's samples) where a record has them; it lists the
files whose records have none ("P not recomputable (no predictions)"), which is not a problem.

``quide reproduce reproduce/smoke.toml`` plans the config's papermill runs, skips those already done
(by content key) and runs the rest on Dask (``quide.reproduce``); exit 1 if any run failed, 2 if the
config or its data is refused before anything runs, 3 if ``--time-limit-s`` deferred runs to the
next call or ``--budget-s`` stopped them (and none failed), 130 if interrupted by Ctrl-C (SIGINT)
and 143 by SIGTERM (one line on stderr, no traceback, after the runner's clean-up: its workers
stopped, finished runs kept). ``-p NAME VALUE`` sets a notebook parameter in every experiment whose
notebook has it (e.g. ``-p timed 200``: a lighter host protocol than the paper's), over the config.
``--train-first N`` trains the checkpoints the runs will load first, N at a time on each GPU, and
``--mps`` runs those trainings (else the runs) under NVIDIA's MPS. When the grid ends it prints the
timing summary (``quide.grid_timing``), whose last line is ``whole reproduction: N s on K x <GPU>``.

``quide collect OUT --into ROOT`` copies the records of the finished runs under ``OUT/runs/`` into
the results root ROOT, refusing (exit 2, nothing copied) two files of one name with other contents.

``quide train -p model resnet18_cifar -p dataset cifar10 -p seed 0`` trains (or finds) the
checkpoint that the sweep notebook with the same ``-p`` parameters would load. Parameters are the
notebook's, written as for papermill, and validated by the same ``SweepParams``; parameters that
only the sweep uses (placement, observer, ...) are accepted and ignored. ``quide reproduce
--train-first`` uses it to train several models at once before the runs, so that latency is
measured with the GPU to itself.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import signal
import sys
import threading
import time
from collections import Counter


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While open, SIGTERM raises :class:`Terminated` in the main thread (a second one kills at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield   # only the main thread may set handlers
        return

    def terminated(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated(signum)

    before = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def parse_value(text: str):
    """A ``-p`` value as papermill reads it: True/False/None, numbers, lists; else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_parameters(pairs) -> dict:
    """``-p NAME VALUE`` pairs as a dict, each value read by :func:`parse_value`."""
    return {name: parse_value(value) for name, value in pairs}


def _train(args) -> int:
    """Train (or load) a sweep's checkpoint after the same checks as the runner's planning: the
    sweep notebook's parameters and defaults, seeds, the device, the data and calib_size."""
    from pathlib import Path

    from .experiments import by_notebook
    from .measure import data as qd
    from .measure.sweep import load_condition, model_for
    from .reproduce import ConfigError, _check_calib_size, _check_device, _check_parameters, _parameter_object
    notebook = Path(__file__).resolve().parents[1] / by_notebook("notebooks/ptq_sweep.ipynb").notebook
    given = parse_parameters(args.parameter)
    where = f"run {given}"
    try:
        resolved = _check_parameters(notebook, given, where)
        _check_device(resolved, where)
        params = _parameter_object(notebook, resolved, where)
        images = qd.load_dataset(params.dataset) if params.dataset in qd.SPECS else None   # ImageNet: a folder
        _check_calib_size(params, None if images is None else len(images.y_train), params.dataset, where)
    except (ConfigError, qd.DataNotFoundError, qd.CorruptDataError) as err:
        print(f"quide train: refused, nothing trained: {err}", file=sys.stderr)
        return 2
    trained = model_for(load_condition(params, images))
    meta = trained.meta
    state = "loaded" if trained.loaded else f"trained in {meta.get('train_wall_s', 0):.1f} s"
    print(f"{params.model} {params.dataset} seed {params.seed}: {state}, "
          f"test accuracy {meta.get('test_accuracy')}, epoch {meta.get('epoch')}")
    return 0


def _verify(args) -> int:
    from .config import results_root
    from .analysis.verify import verify_all
    root = results_root() if args.root is None else args.root
    try:
        n, problems, not_recomputable = verify_all(root)
    except (FileNotFoundError, ValueError) as err:   # no such folder, or --root ""
        print(f"quide verify: {err}", file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    without = sum(not_recomputable.values())
    print(f"P recomputed from per-sample predictions (or samples): {n - without} records")
    if without:   # records made before predictions were kept: not a problem, but said
        print(f"P not recomputable (no predictions): {without} records in {len(not_recomputable)} files")
        for name, count in not_recomputable.items():
            print(f"  {name} ({count} records)")
    print(f"quide verify: {n} records under {root}, {len(problems)} problems")
    return 1 if problems else 0


def _reproduce(args) -> int:
    from .reproduce import ConfigError, run_grid
    try:
        result = run_grid(args.config, args.out, workers=args.workers, scheduler=args.scheduler,
                          dry_run=args.dry_run, runs_per_gpu=args.runs_per_gpu, time_limit_s=args.time_limit_s,
                          overrides=parse_parameters(args.parameter), train_first=args.train_first, mps=args.mps,
                          budget_s=args.budget_s, resume=args.resume, launched=args.launched,
                          command=" ".join(["quide", *args.argv]))
    except ConfigError as err:
        print(f"quide reproduce: refused, nothing ran: {err}", file=sys.stderr)
        return 2
    outcomes = result.outcomes
    counts = Counter(o["status"] for o in outcomes)
    if args.dry_run:
        for o in outcomes:
            print(f"{o['status']:8} {o['key']}  {o['label']}")
    failed = [o for o in outcomes if o["status"] == "failed"]
    for o in failed:
        print(f"FAILED {o['label']}\n  log: {o['log']}\n  {o['error']}", file=sys.stderr)
    print("quide reproduce: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
          + f"; runs in {args.out}/runs/<key>/")
    left = counts["deferred"] + counts["stopped"]
    if left:
        print(f"quide reproduce: {left} runs deferred or stopped by --time-limit-s or --budget-s; the same command "
              "again starts them (with --resume its timing summary adds this call's seconds)", file=sys.stderr)
    for line in result.summary:
        print(line)
    return 1 if failed else 3 if left else 0


def _collect(args) -> int:
    from .reproduce import CollectError, collect
    try:
        done = collect(args.out, args.into)
    except CollectError as err:
        print(f"quide collect: refused, nothing copied: {err}", file=sys.stderr)
        return 2
    print(f"quide collect: {len(done['copied'])} files copied, {len(done['unchanged'])} already there, "
          f"into {args.into}")
    return 0


def main(argv: list[str] | None = None) -> int:
    launched = time.time()   # --budget-s and the timing summary count from here
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(prog="quide", description="QuIDE companion command line")
    sub = ap.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train (or find) the checkpoint a sweep notebook would load")
    train.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                       metavar=("NAME", "VALUE"), help="a notebook parameter, as for papermill")
    train.set_defaults(run=_train)
    verify = sub.add_parser("verify", help="recompute every record's derived numbers and check them")
    verify.add_argument("--root", default=None, help="results folder (default: $QUIDE_RESULTS or data/results)")
    verify.set_defaults(run=_verify)
    rep = sub.add_parser("reproduce", help="run a grid of notebooks (skipping finished runs) on Dask")
    rep.add_argument("config", help="grid config (TOML), e.g. reproduce/smoke.toml")
    rep.add_argument("--out", default="data/reproduce", help="runs, logs and records (default: data/reproduce)")
    rep.add_argument("--workers", type=int, default=None,
                     help="local CPU workers (default: one per visible GPU, else 1)")
    rep.add_argument("--runs-per-gpu", type=int, default=1,
                     help="runs at once on each local GPU (default 1); timings still run alone")
    rep.add_argument("--time-limit-s", type=float, default=None, metavar="SECONDS",
                     help="start a run (or training) only while its expected seconds fit in this many seconds "
                          "from the command's start; the rest are deferred to the next call (exit 3)")
    rep.add_argument("--budget-s", type=float, default=None, metavar="SECONDS",
                     help="end within this many seconds of the command's start: what still runs a margin before "
                          "(quide.reproduce.STOP_GRACE_S) is stopped (exit 3; the same command again goes on); "
                          "without --time-limit-s, runs start only while expected to end by then")
    rep.add_argument("--train-first", type=int, default=0, metavar="N",
                     help="first train every checkpoint the runs will load and that is not on disk, N trainings "
                          "at a time on each GPU (quide train), then run the grid, whose runs load them")
    rep.add_argument("--mps", action="store_true",
                     help="run the trainings (with --train-first; else the runs) under NVIDIA MPS, so that "
                          "their kernels share the GPU at once (nvidia-cuda-mps-control -d, quit afterwards)")
    rep.add_argument("--resume", action="store_true",
                     help="continue the timing of the earlier calls of the same grid in --out: the summary's "
                          "total adds their seconds (finished runs are skipped either way)")
    rep.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter, as for papermill, in every experiment whose notebook "
                          "has it (over the config's parameters)")
    rep.add_argument("--dry-run", action="store_true", help="plan and validate only")
    rep.set_defaults(run=_reproduce)
    col = sub.add_parser("collect", help="copy the records of finished runs into a results root, "
                                         "refusing files of one name with other contents")
    col.add_argument("out", help="the runs folder of `quide reproduce --out`")
    col.add_argument("--into", required=True, help="results root to copy into, e.g. data/results")
    col.set_defaults(run=_collect)
    args = ap.parse_args(argv)
    args.launched, args.argv = launched, argv
    if args.command == "train":   # its epochs take the timing lock: a bad path is refused before training
        from .hostlock import LockPathError, check_lock_path
        try:
            check_lock_path()
        except LockPathError as err:
            print(f"quide train: {err}", file=sys.stderr)
            return 2
    with sigterm_as_interrupt():
        try:
            return args.run(args)
        except KeyboardInterrupt as stop:   # the runner's own clean-up (its finally blocks) has run
            signum = stop.signum if isinstance(stop, Terminated) else signal.SIGINT
            kept = "; finished runs are kept: the same command again goes on" if args.command == "reproduce" else ""
            print(f"quide {args.command}: interrupted by {signal.Signals(signum).name}{kept}", file=sys.stderr)
            return 128 + signum
