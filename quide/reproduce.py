"""``quide reproduce``: plan a grid of papermill runs, key each by its content, run what is missing.

A config (TOML) lists experiments; each names a notebook, fixed ``parameters`` and a ``grid`` whose
lists are crossed (see ``reproduce/smoke.toml``)::

    [[experiment]]
    name = "ptq_sweep"                       # notebooks/ptq_sweep.ipynb unless `notebook` is given
    parameters = { model = "simplecnn", profile = "smoke", device = "cpu" }
    grid = { dataset = ["mnist"], seed = [0, 1] }

Every run is checked before any runs: its names must be the notebook's parameters, and the
notebook's own parameter class (``SweepParams``, ``SearchParams``, ``LLMParams``) must accept the
values; its data set must load and pass ``quide.measure.data``'s checks. Its **content key** is the sha256
of the notebook's cells, the resolved parameters, the ``quide`` sources and the data's content
hash: a run whose key already has a finished folder is skipped.

Planning also refuses what would fail only at run time: a seed < 0, a CUDA device this machine
does not have (unless ``--scheduler`` sends the runs elsewhere), ``calib_size`` larger than the
training images the profile leaves, a notebook outside the repository or not one of
registered in ``quide.experiments`` (a renamed copy would run with unchecked parameters), a file that is not a
notebook, an ``experiment`` that is not ``[A-Za-z0-9_]+``, a ``QUIDE_TIMING_LOCK`` where no lock
file can be made.

A run executes in ``<out>/.partial/<key>-<host>-<boot id>-<pid>/`` (executed notebook, its records
under ``results/``, ``run.yml``: what ran, ``owner.json``: host, boot id, PID namespace and pid of
the process running it, ``heartbeat``: touched every ``HEARTBEAT_S`` seconds) with its console
output in ``<out>/logs/<key>-<UTC time>-<host>-<pid>.log`` (one file per attempt); only when
papermill succeeds and the run wrote records is the folder renamed to ``<out>/runs/<key>/``, in
one atomic step. A partial folder is judged dead, and deleted by the next ``reproduce`` (never by
a dry run), only when its owner ran on this host and boot (same PID namespace) and its pid is
gone, or when its heartbeat is older than ``HEARTBEAT_TIMEOUT_S``; nothing reads partial
folders (``load_records`` and ``verify`` skip them). A lock per key (``<out>/locks/<key>.lock``,
flock) keeps two runners on one folder from running the same key: the second waits, then finds
it done. papermill dies with the worker that started it (PR_SET_PDEATHSIG), its kernel with
papermill (ipykernel's parent poller), the workers with the runner (Dask's nanny pipe), so killing
the runner leaves no process finishing a record. A kernel that dies before replying (ZMQError,
DeadKernelError: jupyter_client's port race) is retried once.

Runs execute on Dask distributed: a ``LocalCluster`` (one worker per visible GPU, or
``--runs-per-gpu`` workers per GPU, or ``--workers`` CPU workers) or, with ``--scheduler ADDRESS``,
a running cluster (dask-jobqueue for SLURM: see the book's rerun page). A failed run does not
stop the others; the summary lists each failure with its log, and the exit code is 1.

Finished runs under ``<out>/runs/`` whose key is not in the plan (made by other code, data or
parameters: every key hashes the ``quide`` sources) are *stale*: the runner names them (outcomes of
status ``stale``) and leaves them alone. :func:`collect` (``quide collect OUT --into ROOT``) copies
the finished runs' files into a results root and refuses, before copying anything, two runs'
files of one name or a file the root holds with other content, naming both.

``--time-limit-s S`` is for machines lent for a limited time (e.g. sessions of 10 minutes): a run
starts only while its expected seconds (``Run.expected_seconds``) still fit in what is left of S
seconds since the command began; the runs that do not are *deferred*: nothing of them is made, and
the same command, run again, starts them (and skips what is done). Runs already started are never
stopped by it; the expectation is rough. ``--budget-s B`` is the hard end: ``STOP_GRACE_S`` before B
seconds have passed, whatever still runs (or trains) is *stopped*, the cluster closed and every
process the runs started waited for (killed if need be), so the command ends within B; without
``--time-limit-s`` that stop is also the time limit.

One call on a lent GPU can do the whole reproduction: ``--train-first N`` first trains every
checkpoint the runs will load (``quide.train_first``), N at a time on each GPU, ``--mps`` runs
those trainings (else the runs) under NVIDIA's MPS (``quide.mps``), and ``--runs-per-gpu`` packs
the runs that then load them. When the grid ends the runner prints, and writes beside the logs, where
the time went: each phase, each run, the critical path, and ``whole reproduction: N s on K x <GPU>``
(``quide.grid_timing``); ``--resume`` adds the seconds of the earlier calls of the same grid.
"""
from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import experiments, grid_timing
from .config import TIMING_LOCK_ENV, atomic_path, checkpoint_root, data_root, project_root
from .hostlock import pid_alive
from .mps import available as mps_available
from .mps import mps as mps_daemon
from .process_tree import descendants, end_all
from .train_first import train_first as run_trainings
from .train_first import trainings_of

EXPERIMENT_KEYS = {"name", "notebook", "parameters", "grid"}
SEED_PARAMETERS = ("seed", "model_seed")
HEARTBEAT_S = 5.0               # a running run touches its partial folder's heartbeat this often
HEARTBEAT_TIMEOUT_S = 300.0     # a partial folder whose heartbeat is older is dead, wherever it ran
SCHEDULER_TIMEOUT_S = 5         # seconds to reach a --scheduler before the call is refused
DEAD_KERNEL_SIGNS = ("DeadKernelError", "ZMQError", "Kernel died before replying")
# --budget-s stops what still runs this long before the budget ends, so that the command has ended by
# then. The stop closes the cluster (Dask's nanny kills a worker still busy after 4 s) and waits
# FAMILY_GRACE_S for the runs' processes before killing them: about 5 s with a run in flight on two
# busy CPUs, then the interpreter's exit. (Stopped from outside by SIGTERM, as before the stop moved
# into the runner, it exited within 0.2 s: benchmarks/results/stop_probe_h200.txt;
# benchmarks/probes/stop_probe.py measures the stop as it is now.) It is also the margin of the
# time limit that a budget sets, so a larger one defers runs that would fit.
STOP_GRACE_S = 10
FAMILY_GRACE_S = 2.0   # after a stop, how long the runs' processes get to end before they are killed


class ConfigError(ValueError):
    """The grid config or one of its runs is invalid; nothing has run."""


class CollectError(ValueError):
    """Collecting runs' files into a results root would lose or replace one; nothing was copied."""


@dataclass(frozen=True)
class Run:
    experiment: str
    notebook: Path                 # absolute
    parameters: dict               # the overrides given to papermill
    key: str = ""
    data: dict = field(default_factory=dict)   # data set -> content hash
    checkpoint_found: bool = False             # a sweep whose model is trained already (quide.measure.sweep.checkpoint_of)
    checkpoint: str = ""                       # the checkpoint file it loads ("": it trains none)
    training: dict = field(default_factory=dict)   # the `quide train` parameters that make that checkpoint
    own_training: bool = False                 # its own parameters train it (a sweep; a search loads a sweep's)
    table: str = ""                            # its [[experiment]] table: name(fixed parameters)

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return f"{self.experiment}({args})"

    @property
    def expected_seconds(self) -> float:
        """Roughly how long this run takes on one GPU, to start the longest first (critical path);
        a sweep's without its training where its checkpoint exists (``quide train``, ``--train-first``)."""
        model = self.parameters.get("model")
        seconds = EXPECTED_SECONDS.get((self.experiment, model), EXPECTED_SECONDS.get((self.experiment, None), 30.0))
        if self.checkpoint_found:
            seconds -= EXPECTED_TRAINING_SECONDS.get(model, 0.0)
        return seconds


# Seconds per run on one H200 of a 4-GPU host, each run's training included and timings waiting for
# the host's timing lock: the median over the runs of each kind that made the records in data/results
# (benchmarks/results/grid_wall_4xh200_vm-c1f066cc.txt). They order the queue (the
# runner starts the longest runs first, so the grid's wall time approaches its longest run or
# (sum of runs / GPUs), whichever is larger) and decide what --time-limit-s defers. Unknown runs
# count as short. Runs sharing a GPU take longer (benchmarks/results/reproduce_h200_run_e_phases.txt),
# hence the limit's margin. tests/test_reproduce.py remakes both tables from those files.
EXPECTED_SECONDS = {
    ("ptq_sweep", "resnet18_cifar"): 308.2,
    ("mixed_precision", None): 79.85,
    ("llm_case_study", None): 300.0,   # not in that grid: a margin over SmolLM2's 56 s and 108 s (data/results/llm_case_study)
    ("ptq_sweep", None): 48.55,
    # not in that grid: estimates until measured, the training (below) and the ablation's quantize-and-evaluate
    # passes (17 PTQ choices x 3 bit-widths on ResNet-18, 16 on SimpleCNN)
    ("ptq_ablation", "resnet18_cifar"): 180.0,
    ("ptq_ablation", None): 40.0,
}
# Seconds of a run's training, left out of its expectation where its checkpoint exists: the median
# train_wall_s of data/results' sweep records per model (one training per data set and seed).
EXPECTED_TRAINING_SECONDS = {"resnet18_cifar": 134.12, "simplecnn": 21.04}


# --- planning ---------------------------------------------------------------------------------

def notebook_defaults(notebook: Path) -> dict:
    """The names and default values of the notebook's cell tagged ``parameters``."""
    try:
        nb = json.loads(Path(notebook).read_text())
        for cell in nb["cells"]:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                tree = ast.parse("".join(cell["source"]))
                return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                        for t in node.targets if isinstance(t, ast.Name)}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError,
            SyntaxError, ValueError) as err:
        raise ConfigError(f"{notebook}: not a readable notebook ({type(err).__name__}: {str(err)[:200]})") from None
    raise ConfigError(f"{notebook}: no cell tagged 'parameters'")


def _parameter_object(notebook: Path, resolved: dict, where: str):
    """The notebook's parameter class built from ``resolved`` (None where it has none), or ConfigError."""
    entry = experiments.of_path(notebook)
    cls = entry.parameters() if entry is not None else None
    if cls is None:
        return None
    fields = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in resolved.items() if k in fields})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


def _check_parameters(notebook: Path, params: dict, where: str, defaults: dict | None = None) -> dict:
    """Resolved parameters (``defaults``, the notebook's unless given, + ``params``), or ConfigError
    saying what is wrong."""
    from .analysis.results import check_experiment
    defaults = notebook_defaults(notebook) if defaults is None else defaults
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {unknown} for {notebook.name}; "
                          f"it takes {sorted(defaults)}")
    resolved = {**defaults, **params}
    _parameter_object(notebook, resolved, where)
    for name in SEED_PARAMETERS:   # numpy's generators refuse negative seeds, after training
        value = resolved.get(name)
        seeds = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, int) and not isinstance(v, bool) and v < 0 for v in seeds):
            raise ConfigError(f"{where}: parameter {name!r}: seeds must be >= 0; got {value!r}")
    if "experiment" in resolved:
        try:
            check_experiment(resolved["experiment"])
        except ValueError as err:
            raise ConfigError(f"{where}: {err}") from None
    return resolved


def _check_device(resolved: dict, where: str) -> None:
    """A CUDA device asked for must be on this machine."""
    device = resolved.get("device")
    if not (isinstance(device, str) and device.startswith("cuda")):
        return
    import torch
    count = torch.cuda.device_count()
    index = int(device.split(":")[1]) if device[5:6] == ":" and device[6:].isdigit() else 0
    if index >= count:
        raise ConfigError(f"{where}: parameter 'device': {device!r} asked for, but this machine has {count} "
                          "CUDA device(s); use --scheduler to run on machines that have them")


def _check_calib_size(obj, n_train: int | None, dataset: str, where: str) -> None:
    """calib_size must fit in the training images that the profile and the validation split leave."""
    from .measure.sweep import SMOKE, SweepParams
    sp = obj.sweep_params() if hasattr(obj, "sweep_params") else obj
    if not isinstance(sp, SweepParams) or n_train is None or sp.recipe() is None:
        return
    n = min(SMOKE["n_train"], n_train) if sp.profile == "smoke" else n_train
    available = n - sp.recipe().val_size
    if sp.calib_size > available:
        raise ConfigError(f"{where}: parameter 'calib_size': {sp.calib_size} calibration images asked for, "
                          f"but the {sp.profile} profile leaves {available} training images of {dataset}")


def load_config(path: Path | str) -> list[dict]:
    """The experiments of a TOML config, with their structure checked; ConfigError naming the file
    where it cannot be read (missing, a folder), is not UTF-8 text (as TOML must be) or not TOML."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text, as a TOML config must be ({err})") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err})") from None
    extra = sorted(set(doc) - {"experiment"})
    experiments = doc.get("experiment")
    if extra or not isinstance(experiments, list) or not experiments:
        raise ConfigError(f"{path}: expected one or more [[experiment]] tables and nothing else"
                          + (f" (found {extra})" if extra else ""))
    for i, exp in enumerate(experiments):
        where = f"{path}: experiment {i + 1}"
        bad = sorted(set(exp) - EXPERIMENT_KEYS)
        if bad or not isinstance(exp.get("name"), str):
            raise ConfigError(f"{where}: needs a string 'name' and only {sorted(EXPERIMENT_KEYS)}; got {sorted(exp)}")
        if not isinstance(exp.get("parameters", {}), dict) or not isinstance(exp.get("grid", {}), dict):
            raise ConfigError(f"{where}: 'parameters' and 'grid' must be tables")
        for name, values in exp.get("grid", {}).items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{where}: grid entry {name!r} must be a non-empty list; got {values!r}")
        both = sorted(set(exp.get("grid", {})) & set(exp.get("parameters", {})))
        if both:
            raise ConfigError(f"{where}: {both} given both as parameter and in the grid")
    return experiments


def source_hash(root: Path) -> str:
    """sha256 over the ``quide`` package's source files (paths and bytes)."""
    h = hashlib.sha256()
    for path in sorted((root / "quide").rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def notebook_hash(notebook: Path) -> str:
    """sha256 over the notebook's cell types and sources (outputs and metadata ignored)."""
    cells = [(c["cell_type"], "".join(c["source"])) for c in json.loads(notebook.read_text())["cells"]]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def data_hashes(resolved: dict, cache: dict, kind: str = "dataset") -> dict:
    """Content hashes of the data a run reads, after ``quide.measure.data``'s checks (which raise on a
    wrong hash, a truncated file or a missing data set: the run is refused). ``cache`` also keeps
    each data set's number of training images under ``("n_train", name)`` and the data set itself
    under ``("images", name)``. ``kind``: what identifies the experiment's data
    (:attr:`quide.experiments.Experiment.data`)."""
    from .measure import data
    name = resolved.get("dataset")
    if kind == "dataset" and name in data.SPECS:
        if name not in cache:
            loaded = data.load_dataset(name, download=False)
            cache[name], cache[("n_train", name)] = loaded.sha256, len(loaded.y_train)
            cache[("images", name)] = loaded   # for checkpoint_found
        return {name: cache[name]}
    if kind == "dataset" and name in data.IMAGE_FOLDER_DATASETS:
        if name not in cache:
            cache[name] = data.folder_hash(data.imagenet_folder())
        return {name: cache[name]}
    if kind == "mmlu":
        from .measure.mmlu import MMLU_FILE
        path = data_root() / MMLU_FILE
        if not path.is_file():
            raise ConfigError(f"MMLU not found at {path} (set QUIDE_DATA)")
        if "mmlu" not in cache:
            cache["mmlu"] = data.file_sha256(path)
        return {"mmlu": cache["mmlu"]}
    return {}


def _training(obj, images) -> tuple[str, dict]:
    """The checkpoint that a run of parameters ``obj`` loads (a sweep's model, or the sweep model a
    search quantizes) and the ``quide train`` parameters that make it: model, data set and seed,
    then every other sweep parameter that is not its default. ("", {}) where it loads none."""
    if obj is None or images is None:   # no parameter class (sweep's imports not needed), or no data set
        return "", {}
    from .measure.sweep import SweepParams, checkpoint_of
    sweep = obj.sweep_params() if hasattr(obj, "sweep_params") else obj
    if not isinstance(sweep, SweepParams):
        return "", {}
    try:
        path = checkpoint_of(sweep, images)
    except ValueError:   # a device this machine lacks (planned for a scheduler's workers)
        return "", {}
    if path is None:     # torchvision's weights: nothing to train
        return "", {}
    training = {"model": sweep.model, "dataset": sweep.dataset, "seed": sweep.seed}
    training.update({f.name: getattr(sweep, f.name) for f in dataclasses.fields(sweep)
                     if f.name not in training and getattr(sweep, f.name) != f.default})
    return str(path), training


def _table_label(exp: dict) -> str:
    """An [[experiment]] table in words: its name and fixed parameters."""
    return f"{exp['name']}({', '.join(f'{k}={v}' for k, v in exp.get('parameters', {}).items())})"


def _notebook(root: Path, exp: dict) -> Path:
    """The experiment's notebook: inside the repository, existing, and registered
    (:mod:`quide.experiments`)."""
    notebook = (root / exp.get("notebook", f"notebooks/{exp['name']}.ipynb")).resolve()
    where = f"experiment {exp['name']!r}"
    if not notebook.is_relative_to(root):
        raise ConfigError(f"{where}: notebook {notebook} is outside the repository {root}")
    if not notebook.is_file():
        raise ConfigError(f"{where}: notebook {notebook} not found")
    relative = notebook.relative_to(root).as_posix()
    if experiments.by_notebook(relative) is None:
        raise ConfigError(f"{where}: {relative} is not a known experiment notebook {experiments.notebooks()} "
                          "(a renamed copy would run with unchecked parameters)")
    return notebook


def queue_order(runs: list[Run]) -> list[Run]:
    """Longest expected first; runs expected to take as long keep the config's order."""
    return sorted(runs, key=lambda r: -r.expected_seconds)


def plan(config: Path | str, root: Path | None = None, check_devices: bool = True,
         overrides: dict | None = None) -> list[Run]:
    """Every run of the config, validated and keyed (duplicates dropped); ConfigError otherwise.
    ``check_devices``: refuse CUDA devices this machine lacks (off when a scheduler runs them).
    ``overrides`` (``quide reproduce -p NAME VALUE``): parameters set in every experiment whose
    notebook has them, over the config's fixed parameters; a name that no experiment's notebook has,
    or that an experiment's grid varies, is refused. They enter each run's key like any parameter."""
    from .hostlock import LockPathError, check_lock_path
    from .measure import data
    try:   # else every run would fail at its first epoch
        check_lock_path()
    except LockPathError as err:
        raise ConfigError(str(err)) from None
    root = Path(root or project_root()).resolve()
    code = source_hash(root)
    overrides = dict(overrides or {})
    runs, seen, cache, overridden = [], set(), {}, set()
    for exp in load_config(config):
        notebook = _notebook(root, exp)
        nb_hash, defaults = notebook_hash(notebook), notebook_defaults(notebook)
        grid = exp.get("grid", {})
        mine = {name: value for name, value in overrides.items() if name in defaults}
        varied = sorted(set(mine) & set(grid))
        if varied:
            raise ConfigError(f"experiment {exp['name']!r}: -p {varied} would override what its grid varies")
        overridden |= set(mine)
        for values in itertools.product(*grid.values()):
            params = {**exp.get("parameters", {}), **mine, **dict(zip(grid, values))}
            where = f"experiment {exp['name']!r} run {params}"
            resolved = _check_parameters(notebook, params, where, defaults)
            if check_devices:
                _check_device(resolved, where)
            try:
                hashes = data_hashes(resolved, cache, experiments.of_path(notebook).data)
            except (data.DataNotFoundError, data.CorruptDataError) as err:
                raise ConfigError(f"{where}: data refused: {err}") from None
            obj = _parameter_object(notebook, resolved, where)
            _check_calib_size(obj, cache.get(("n_train", resolved.get("dataset"))), resolved.get("dataset"), where)
            key = hashlib.sha256(json.dumps([nb_hash, resolved, code, hashes], sort_keys=True,
                                            default=str).encode()).hexdigest()[:20]
            if key not in seen:
                seen.add(key)
                checkpoint, training = _training(obj, cache.get(("images", resolved.get("dataset"))))
                own = bool(checkpoint) and not hasattr(obj, "sweep_params")
                found = own and Path(checkpoint).is_file()   # a guess: a worker elsewhere may see other checkpoints
                runs.append(Run(exp["name"], notebook, params, key, hashes, found, checkpoint, training, own,
                                _table_label(exp)))
    unused = sorted(set(overrides) - overridden)
    if unused:
        raise ConfigError(f"-p {unused}: no experiment's notebook has such a parameter")
    return runs


# --- running ----------------------------------------------------------------------------------

def done_folder(out: Path, run: Run) -> Path:
    return out / "runs" / run.key


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "unknown"


def owner() -> dict:
    """Who runs a partial folder: host, boot, PID namespace and pid of this process."""
    return {"host": socket.gethostname(), "boot_id": boot_id(), "pid_ns": _pid_namespace(), "pid": os.getpid()}


def partial_folder(out: Path, key: str) -> Path:
    me = owner()
    host = re.sub(r"[^A-Za-z0-9_.]", "_", me["host"])[:40]
    return out / ".partial" / f"{key}-{host}-{me['boot_id'][:8]}-{me['pid']}"


def partial_is_dead(folder: Path, now: float | None = None) -> bool:
    """True only when the run is surely gone: its owner was this host, boot and PID namespace and
    its pid is gone, or its heartbeat (else the folder's own time) is older than HEARTBEAT_TIMEOUT_S.
    A folder of another host or container is never judged by a pid we cannot see."""
    now = time.time() if now is None else now
    beat = folder / "heartbeat"
    try:
        last = (beat if beat.exists() else folder).stat().st_mtime
    except OSError:
        return False   # gone already, or not ours to read
    if now - last > HEARTBEAT_TIMEOUT_S:
        return True
    try:
        them = json.loads((folder / "owner.json").read_text())
    except (OSError, ValueError):
        return False   # being created right now (owner.json comes just after the folder)
    me = owner()
    same_machine = all(them.get(k) == me[k] for k in ("host", "boot_id", "pid_ns"))
    return same_machine and isinstance(them.get("pid"), int) and not pid_alive(them["pid"])


def clean_partials(out: Path) -> list[Path]:
    """Delete partial folders of runs that are surely gone (``partial_is_dead``); return them."""
    removed = []
    for folder in sorted((out / ".partial").glob("*")):
        if folder.is_dir() and partial_is_dead(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# Runs in the child after exec, not as a preexec_fn between fork and exec: there, in a threaded
# process (a Dask worker, with the heartbeat thread), the child can deadlock on a lock that another
# thread held at the fork (the import lock for ctypes, the loader's for dlopen). Seen in CI: a
# papermill that never started, its log holding only the runner's header.
_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
else:
    if os.getppid() != int(sys.argv[1]):   # the parent died before prctl took effect
        os._exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def die_with_parent(cmd: list[str]) -> list[str]:
    """``cmd`` (its first item an absolute path) started through a small Python that asks Linux to
    SIGKILL it when the thread that started it dies (prctl PR_SET_PDEATHSIG, kept across exec) and
    then execs ``cmd``, so a killed runner leaves no papermill behind."""
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]


class _Heartbeat:
    """Touch ``folder/heartbeat`` every HEARTBEAT_S seconds while the run lives."""

    def __init__(self, folder: Path):
        self.path, self.stop = folder / "heartbeat", threading.Event()
        self.path.touch()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self):
        while not self.stop.wait(HEARTBEAT_S):
            try:
                self.path.touch()
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.thread.join()


def _attempt(run: Run, out: Path, root: Path, gpu: str | None) -> tuple[int, Path, Path]:
    """One papermill attempt in its own partial folder and log: (exit code, partial, log)."""
    partial = partial_folder(out, run.key)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    log = out / "logs" / f"{run.key}-{stamp}-{partial.name.split('-', 1)[1]}.log"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "owner.json").write_text(json.dumps(owner()) + "\n")
    log.parent.mkdir(parents=True, exist_ok=True)
    (partial / "run.yml").write_text(json.dumps(   # JSON is YAML; not *.json, which load_records reads
        {"experiment": run.experiment, "notebook": str(run.notebook.relative_to(root)),
         "parameters": run.parameters, "key": run.key, "data": run.data}, indent=1) + "\n")
    env = {**os.environ, "QUIDE_RESULTS": str(partial / "results")}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
        # one lock file per host, so runs on the other GPUs pause between epochs while this one times
        env.setdefault(TIMING_LOCK_ENV, str(Path(tempfile.gettempdir()) / "quide-timing.lock"))
    cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3", "--cwd", str(root),
           str(run.notebook), str(partial / "notebook.ipynb"), "-y", json.dumps(run.parameters)]
    heartbeat = _Heartbeat(partial)
    try:
        with open(log, "w") as f:
            f.write(f"# {run.label}\n# key {run.key}\n# {' '.join(cmd)}\n")
            f.flush()
            proc = subprocess.run(die_with_parent(cmd), stdout=f, stderr=subprocess.STDOUT, env=env, cwd=root)
    finally:
        heartbeat.close()
    return proc.returncode, partial, log


def _outcome(run: Run, status: str, **more) -> dict:
    """One planned run's outcome: {key, label, table, status, seconds, log, error, start, end, lane}
    (start and end: ``time.time()`` where it ran; lane: the worker, and GPU, it ran on)."""
    return {"key": run.key, "label": run.label, "table": run.table, "status": status, "seconds": 0.0, "log": None,
            "error": None, "start": None, "end": None, "lane": None, **more}


def execute(run: Run, out: Path, root: Path, gpu: str | None = None, ends_by: float | None = None,
            lane: str | None = None) -> dict:
    """Run one notebook with papermill into a partial folder; on success rename it into place.
    Returns its outcome (:func:`_outcome`; status done | failed | raced | skipped | deferred).
    Holds the key's lock throughout; a key another runner finished meanwhile is skipped. A run
    whose expected seconds would end after ``ends_by`` (``time.time()``) is deferred: not started."""
    from .analysis.results import record_files
    out, start, clock = Path(out), time.time(), time.perf_counter()
    if ends_by is not None and start + run.expected_seconds > ends_by:
        return _outcome(run, "deferred")

    def ended(status: str, **more) -> dict:
        seconds = time.perf_counter() - clock
        return _outcome(run, status, seconds=seconds, start=start, end=start + seconds, lane=lane, **more)

    (out / "locks").mkdir(parents=True, exist_ok=True)
    with open(out / "locks" / f"{run.key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released by the kernel if this process dies
        if done_folder(out, run).is_dir():
            return ended("skipped")
        for attempt in (1, 2):
            code, partial, log = _attempt(run, out, root, gpu)
            text = log.read_text(errors="replace")
            if code == 0 or attempt == 2 or not any(sign in text for sign in DEAD_KERNEL_SIGNS):
                break
            shutil.rmtree(partial, ignore_errors=True)   # the kernel died before replying: once more
        if code != 0:
            shutil.rmtree(partial, ignore_errors=True)
            tail = text.strip().splitlines()[-1:] or [""]
            return ended("failed", log=str(log), error=f"papermill exit {code}: {tail[0][:300]}")
        if not record_files(partial / "results"):
            shutil.rmtree(partial, ignore_errors=True)
            return ended("failed", log=str(log), error="the notebook finished but wrote no records")
        shutil.copy(log, partial / "log.txt")
        for name in ("heartbeat", "owner.json"):
            (partial / name).unlink(missing_ok=True)
        target = done_folder(out, run)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(partial, target)   # atomic; fails if another runner finished this key first
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            return ended("raced", log=str(log))
        return ended("done", log=str(log))


def visible_gpus(count: int) -> list[str]:
    """The CUDA_VISIBLE_DEVICES value of each of the ``count`` GPUs this process sees: the entries of
    its own CUDA_VISIBLE_DEVICES where set (a child given "0" would see the host's first GPU, not
    the first of ours), else their indices."""
    given = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return given[:count] if len(given) >= count else [str(i) for i in range(count)]


def gpu_of_worker(name, gpus: list[str]) -> str:
    """The GPU (its CUDA_VISIBLE_DEVICES value, of :func:`visible_gpus`) of LocalCluster worker
    ``name`` (0..N-1): workers 0..len(gpus)-1 take one GPU each, further ones (``runs_per_gpu`` > 1)
    share them round robin."""
    return gpus[int(name) % len(gpus)]


def _execute_on_worker(run: Run, out: str, root: str, gpus: list[str], ends_by: float | None = None) -> dict:
    """Dask task: on a GPU cluster (``gpus`` given) the worker's GPU by :func:`gpu_of_worker`."""
    from distributed import get_worker
    name = get_worker().name
    gpu = gpu_of_worker(name, gpus) if gpus else None
    lane = f"worker {name}" + (f", GPU {gpu}" if gpu is not None else "")
    return execute(run, Path(out), Path(root), gpu, ends_by, lane)


def _connect(scheduler: str):
    """A Client of a running scheduler, or ConfigError within SCHEDULER_TIMEOUT_S seconds."""
    from distributed import Client
    try:
        return Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r} within {SCHEDULER_TIMEOUT_S} s "
                          f"({type(err).__name__}: {str(err)[:200]})") from None


def _local_cluster(n_workers: int):
    """A LocalCluster of ``n_workers`` processes that ignore SIGINT (and so do the papermills they
    start): Ctrl-C in a terminal reaches the whole process group, and only this process is to act on
    it, closing the cluster in order (``_run_grid``'s finally; the workers' runs die with them).
    Workers that died of it on their own, mid-close, had Dask log tracebacks. An ignored signal, unlike
    a handler, stays ignored across the exec of a spawned worker."""
    from distributed import LocalCluster
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, silence_logs=40)
    finally:
        if main:
            signal.signal(signal.SIGINT, before)


def deadlines(launched: float, time_limit_s: float | None, budget_s: float | None) -> tuple[float | None, float | None]:
    """(ends_by, stop_at), ``time.time()`` values or None: at ``stop_at``, ``STOP_GRACE_S`` before the
    budget ends, whatever still runs is stopped; work starts only while its expected seconds end by
    ``ends_by``: the time limit where given, else that stop (so that runs that would not end in time
    are deferred rather than stopped)."""
    stop_at = None if budget_s is None else launched + budget_s - STOP_GRACE_S
    return (stop_at if time_limit_s is None else launched + time_limit_s), stop_at


def _seconds_option(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0 < value < float("inf")):
        raise ConfigError(f"--{name} must be a number of seconds > 0; got {value!r}")


@dataclass
class GridResult:
    outcomes: list[dict]           # one per planned run (and per stale run folder)
    summary: list[str]             # the timing summary (quide.grid_timing); empty for a dry run
    summary_file: Path | None = None


def reproduce(config: Path | str, out: Path | str, **options) -> list[dict]:
    """:func:`run_grid`, its timing summary given to ``log``; returns one outcome per planned run."""
    result = run_grid(config, out, **options)
    log = options.get("log", print) or (lambda *args: None)
    for line in result.summary:
        log(line)
    return result.outcomes


def run_grid(config: Path | str, out: Path | str, workers: int | None = None, scheduler: str | None = None,
             root: Path | None = None, dry_run: bool = False, log=print, runs_per_gpu: int = 1,
             time_limit_s: float | None = None, overrides: dict | None = None, train_first: int = 0,
             mps: bool = False, budget_s: float | None = None, resume: bool = False,
             launched: float | None = None, command: str | None = None) -> GridResult:
    """Plan, skip what is done, run the rest on Dask; return the outcomes and the timing summary.

    ``overrides``: parameters set in every experiment whose notebook has them (see ``plan``).

    ``time_limit_s``: start a run (or a training) only while its expected seconds fit in what is
    left of this many seconds from ``launched`` (the command's start; default now); the others are
    deferred (status ``deferred``) to the next call. ``budget_s``: end within this many seconds of
    ``launched``: ``STOP_GRACE_S`` before, whatever still runs is stopped (status ``stopped``; its
    partial folder is cleaned by the next call); without ``time_limit_s`` that stop is the time limit.

    ``runs_per_gpu`` > 1 packs that many runs onto each local GPU at once, for grids of small,
    launch-bound runs. Every timing still takes the host's timing lock
    (``quide.hostlock.timing_turn``): the other runs' training epochs, accuracy passes and
    calibration (``quide.hostlock.gpu_work``), on this GPU or another, wait for it. Their brief
    set-up work (CUDA context, copying data and weights to the GPU) is not under the lock.

    ``train_first`` N > 0 first trains every checkpoint the runs to do will load and that is not on
    disk, N at a time on each GPU (``quide.train_first``). ``mps`` runs the trainings (with
    ``train_first``) or else the runs under NVIDIA's MPS (``quide.mps``). ``resume`` adds this
    call's seconds to the earlier calls' of the same grid in ``out`` (``quide.grid_timing``);
    ``command`` is how the call was made, for the summary's header."""
    launched = time.time() if launched is None else launched
    if not str(out).strip():
        raise ConfigError("the results folder (--out) is empty; name a folder")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be an int >= 1; got {workers!r}")
    if isinstance(runs_per_gpu, bool) or not isinstance(runs_per_gpu, int) or runs_per_gpu < 1:
        raise ConfigError(f"--runs-per-gpu must be an int >= 1; got {runs_per_gpu!r}")
    if isinstance(train_first, bool) or not isinstance(train_first, int) or train_first < 0:
        raise ConfigError(f"--train-first must be an int >= 0; got {train_first!r}")
    _seconds_option("time-limit-s", time_limit_s)
    _seconds_option("budget-s", budget_s)
    ends_by, stop_at = deadlines(launched, time_limit_s, budget_s)   # wall clock: workers may be remote
    if runs_per_gpu > 1 and (workers is not None or scheduler):
        raise ConfigError("--runs-per-gpu packs runs onto this host's GPUs; it does not combine with "
                          "--workers or --scheduler")
    if scheduler and (train_first or mps):
        raise ConfigError("--train-first and --mps work on this host's GPUs; they do not combine with --scheduler")
    if mps and not dry_run and not mps_available():
        raise ConfigError("--mps: nvidia-cuda-mps-control not found (it comes with the NVIDIA driver's utilities)")
    if runs_per_gpu > 1 and not dry_run:
        import torch
        if torch.cuda.device_count() == 0:   # before planning: hashing the data takes a while
            raise ConfigError(f"--runs-per-gpu {runs_per_gpu} needs a visible GPU; this host has none")
    root = Path(root or project_root()).resolve()
    out = Path(out).resolve()
    log = log or (lambda *args: None)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"results folder {out} is a file, not a folder")
    grid = json.loads(json.dumps({"config": str(Path(config).resolve()), "parameters": overrides or {}}))
    try:
        earlier = [] if dry_run else grid_timing.earlier_calls(out, grid, resume)
    except grid_timing.ResumeError as err:
        raise ConfigError(str(err)) from None
    client = _connect(scheduler) if scheduler and not dry_run else None   # fail fast, before planning
    try:
        return _run_grid(config, out, root, workers, client, scheduler, dry_run, log, runs_per_gpu, overrides,
                         _Call(launched, ends_by, stop_at, train_first, mps, grid, earlier,
                               command or f"quide reproduce {config} --out {out}"))
    finally:
        if client is not None:
            client.close()


@dataclass
class _Call:
    """This call of the runner: its clock, limits and session options, and what the summary needs."""
    launched: float
    ends_by: float | None
    stop_at: float | None
    train_first: int
    mps: bool
    grid: dict
    earlier: list
    command: str


def _hardware(n_gpus: int, client, scheduler: str | None) -> str:
    """What the runs ran on, as "K x <name>": the visible GPUs, else the CPU, or a remote cluster's workers."""
    if scheduler:
        return f"{len(client.scheduler_info()['workers'])} x Dask worker at {scheduler}"
    if not n_gpus:
        return "1 x CPU"
    import torch
    names: dict = {}
    for i in range(n_gpus):
        name = torch.cuda.get_device_name(i)
        names[name] = names.get(name, 0) + 1
    return " + ".join(f"{n} x {name}" for name, n in names.items())


def _header(call: _Call, hardware: str) -> str:
    bytecode = "off (PYTHONDONTWRITEBYTECODE)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    mps = "off" if not call.mps else "for the trainings" if call.train_first else "for the runs"
    return (f"# {call.command} | CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')} | "
            f"QUIDE_CHECKPOINTS={checkpoint_root()} | bytecode cache {bytecode} | MPS {mps} | {hardware}")


def _run_grid(config, out: Path, root: Path, workers, client, scheduler, dry_run: bool, log, runs_per_gpu: int,
              overrides: dict | None, call: _Call) -> GridResult:
    runs = plan(config, root, check_devices=scheduler is None, overrides=overrides)
    planned_at = time.time()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"results folder {out} is not writable ({err})") from None
    if not dry_run:   # a dry run changes nothing
        clean_partials(out)
    todo = [r for r in runs if not done_folder(out, r).is_dir()]
    outcomes = [_outcome(r, "skipped") for r in runs if r not in todo]
    stale = stale_runs(out, runs)
    outcomes += [{"key": folder.name, "label": _run_label(folder), "table": "", "status": "stale", "seconds": 0.0,
                  "log": None, "error": None, "start": None, "end": None, "lane": None} for folder in stale]
    log(f"quide reproduce: {len(runs)} runs planned, {len(runs) - len(todo)} already done, {len(todo)} to run")
    if stale:
        log(f"quide reproduce: {len(stale)} finished runs in {out / 'runs'} are not of this plan (made by other "
            f"code, data or parameters), left as they are: {', '.join(f.name for f in stale)}; remove those "
            "not wanted before `quide collect`")
    if dry_run:
        return GridResult(outcomes + [_outcome(r, "planned") for r in todo], [])
    import torch
    n_gpus = torch.cuda.device_count()
    gpus = visible_gpus(n_gpus) if scheduler is None and workers is None and n_gpus > 0 else []
    hardware = _hardware(n_gpus, client, scheduler)
    header = _header(call, hardware)
    log(header)
    record = {"started_utc": _dt.datetime.fromtimestamp(call.launched, _dt.timezone.utc).isoformat(timespec="seconds"),
              "gpus": hardware, "planned": len(runs), "done_before": len(runs) - len(todo),
              "planned_s": planned_at - call.launched, "checkpoints_found": 0, "trainings": [], "runs": [],
              "training_how": "", "end": "ended"}
    phase, ran = None, []
    try:
        if call.train_first and todo:
            record["trainings"], record["checkpoints_found"] = trainings_of(   # filled in as they run
                todo, lambda p: EXPECTED_TRAINING_SECONDS.get(p.get("model"), 0.0))
            record["training_how"] = (f"{call.train_first} at a time on each of {len(gpus)} GPUs" if gpus else
                                      f"{call.train_first} at a time") + (" under MPS" if call.mps else "")
            with mps_daemon(call.mps):
                phase = run_trainings(record["trainings"], call.train_first, out / "logs", gpus or [None],
                                      call.stop_at, call.ends_by)
            todo = [dataclasses.replace(r, checkpoint_found=r.own_training and Path(r.checkpoint).is_file())
                    for r in todo]
        if (phase is not None and phase.stopped) or (call.stop_at is not None and time.time() >= call.stop_at):
            ran += [_outcome(r, "deferred") for r in todo]   # the budget is spent: none starts
        elif todo:
            with mps_daemon(call.mps and not call.train_first):
                _run_on_dask(todo, out, root, client, workers, runs_per_gpu, gpus, call, ran)
    except KeyboardInterrupt as stop:
        record["end"] = f"interrupted by {signal.Signals(getattr(stop, 'signum', signal.SIGINT)).name}"
        raise
    finally:
        finished = sum(done_folder(out, r).is_dir() for r in runs)
        lines, path = _summarize(out, call, record, header, ran, len(runs), finished)
        if record["end"].startswith("interrupted"):   # no result to return: say it now
            for line in lines:
                log(line)
    return GridResult(outcomes + ran, lines, path)


def _summarize(out: Path, call: _Call, record: dict, header: str, ran: list[dict], planned: int,
               finished: int) -> tuple[list[str], Path]:
    """Add this call to the folder's ledger and write the timing summary (quide.grid_timing)."""
    def since(t):
        return None if t is None else t - call.launched
    record["wall_s"] = time.time() - call.launched
    record["trainings"] = [{"label": t.label, "status": t.status, "seconds": t.seconds, "start_s": since(t.start),
                            "end_s": since(t.end), "lane": t.lane or None, "code": t.code} for t in record["trainings"]]
    record["runs"] = [{"label": o["label"], "table": o["table"], "status": o["status"], "seconds": o["seconds"],
                       "start_s": since(o["start"]), "end_s": since(o["end"]), "lane": o["lane"]} for o in ran]
    calls = call.earlier + [record]
    grid_timing.save_calls(out, call.grid, calls)
    lines = grid_timing.summary(calls, planned, finished)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return lines, grid_timing.write_summary(out, header, lines, stamp)


def _run_on_dask(todo: list[Run], out: Path, root: Path, client, workers, runs_per_gpu: int, gpus: list[str],
                 call: _Call, outcomes: list[dict]) -> None:
    """Run ``todo`` on a LocalCluster (or ``client``'s cluster), longest first, appending each
    outcome to ``outcomes`` as it comes. At ``call.stop_at`` the runs still running or queued are
    stopped: the cluster is closed, and every process it started is waited for (killed if need be)."""
    if call.ends_by is not None and all(time.time() + r.expected_seconds > call.ends_by for r in todo):
        outcomes += [_outcome(r, "deferred") for r in todo]   # no cluster for nothing
        return
    from distributed import Client, as_completed
    from tqdm.auto import tqdm
    n_workers = len(gpus) * runs_per_gpu if gpus else (workers or 1)
    cluster = None if client else _local_cluster(n_workers)
    own_client = client is None
    client = client or Client(cluster)
    ended = False
    try:
        todo = queue_order(todo)
        futures = {client.submit(_execute_on_worker, r, str(out), str(root), gpus, call.ends_by, key=f"run-{r.key}",
                                 pure=False, retries=0, priority=len(todo) - i): r
                   for i, r in enumerate(todo)}
        timeout = None if call.stop_at is None else max(call.stop_at - time.time(), 0.0)
        with tqdm(total=len(todo), desc="runs", unit="run") as bar:
            try:
                for future in as_completed(futures, timeout=timeout):
                    run = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as err:   # the worker itself died: that run failed, the rest go on
                        outcome = _outcome(run, "failed", log=str(out / "logs"), error=f"{type(err).__name__}: {err}")
                    outcomes.append(outcome)
                    bar.update()
                ended = True
            except TimeoutError:   # --budget-s: what has not ended is stopped
                seen = {o["key"] for o in outcomes}
                outcomes += [_outcome(r, "stopped", end=time.time()) for r in todo if r.key not in seen]
    finally:
        family = [] if ended else descendants(os.getpid())   # noted before their parents go
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
        end_all([(pid, started) for pid, started in family if not _is_resource_tracker(pid)], FAMILY_GRACE_S)


def _is_resource_tracker(pid: int) -> bool:
    """multiprocessing's resource tracker lives as long as this process; it is not a run's."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stale_runs(out: Path | str, runs: list[Run]) -> list[Path]:
    """The finished run folders under ``<out>/runs/`` whose key is none of ``runs``' keys."""
    keys = {r.key for r in runs}
    folder = Path(out) / "runs"
    return sorted(f for f in folder.iterdir() if f.is_dir() and f.name not in keys) if folder.is_dir() else []


def _run_label(folder: Path) -> str:
    """What a finished run folder ran, from its run.yml (as :attr:`Run.label` writes it)."""
    try:
        run = json.loads((folder / "run.yml").read_text())
        args = ", ".join(f"{k}={v}" for k, v in run["parameters"].items())
        return f"{run['experiment']}({args})"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{folder.name} (no readable run.yml)"


def collect(out: Path | str, into: Path | str) -> dict:
    """Copy the files of every finished run (``<out>/runs/<key>/results/<experiment>/<file>``:
    records and the files beside them) into the results root ``into`` as ``<experiment>/<file>``.

    Everything is checked before anything is copied: two runs holding a file of one name with
    other bytes (an old run beside a new one, say), or ``into`` holding a file of that name with
    other bytes, raise :class:`CollectError` naming both files. A file ``into`` already holds with
    the same bytes is left as it is. The files beside the records (their per-sample predictions)
    are copied before the record files. Returns {"copied": [paths], "unchanged": [paths]}."""
    if not str(out).strip() or not str(into).strip():
        raise CollectError(f"name both folders; got runs folder {str(out)!r} and results root {str(into)!r}")
    out, into = Path(out), Path(into)
    runs = out / "runs"
    if not runs.is_dir():
        raise CollectError(f"no finished runs under {runs}")
    sources: dict[Path, Path] = {}   # path under the results root -> the run's file
    for run in sorted(f for f in runs.iterdir() if f.is_dir()):
        results = run / "results"
        for path in sorted(results.rglob("*")) if results.is_dir() else []:
            relative = path.relative_to(results)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue   # folders, and a writer's hidden temporary file
            first = sources.setdefault(relative, path)
            if first != path and first.read_bytes() != path.read_bytes():
                raise CollectError(f"two runs hold {relative} with other contents: {first} and {path}; "
                                   "remove the run not wanted (`quide reproduce` names runs not of its plan)")
    copied, unchanged = [], []
    for relative, path in sources.items():
        target = into / relative
        if target.exists():
            if not target.is_file() or target.read_bytes() != path.read_bytes():
                raise CollectError(f"{target} exists with other contents than {path}; not replaced")
            unchanged.append(target)
    from .analysis.results import RECORD_SUFFIXES
    # the files beside the records (per-sample predictions) first: a record never names a file not there yet
    for relative, path in sorted(sources.items(), key=lambda item: item[0].name.endswith(RECORD_SUFFIXES)):
        target = into / relative
        if target not in unchanged:
            with atomic_path(target, suffix=".tmp") as tmp:
                shutil.copyfile(path, tmp)
            copied.append(target)
    return {"copied": copied, "unchanged": unchanged}


def records_of(out: Path | str) -> list[Path]:
    """The record files of every finished run under ``out``."""
    return sorted(Path(out, "runs").glob("*/results/*/*.json"))
