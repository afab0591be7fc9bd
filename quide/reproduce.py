"""``quide reproduce``: plan a grid of papermill runs, key each by its content, run what is missing.

A config (TOML) lists experiments; each names a notebook, fixed ``parameters`` and a ``grid`` whose
lists are crossed (see ``reproduce/smoke.toml``)::

    [[experiment]]
    name = "ptq_sweep"                       # notebooks/ptq_sweep.ipynb unless `notebook` is given
    parameters = { model = "simplecnn", profile = "smoke", device = "cpu" }
    grid = { dataset = ["mnist"], seed = [0, 1] }

Every run is checked before any runs: its names must be the notebook's parameters, and the
notebook's own parameter class (``SweepParams``, ``SearchParams``, ``LLMParams``) must accept the
values; its data set must load and pass ``quide.data``'s checks. Its **content key** is the sha256
of the notebook's cells, the resolved parameters, the ``quide`` sources and the data's content
hash: a run whose key already has a finished folder is skipped.

A run executes in ``<out>/.partial/<key>-<pid>/`` (executed notebook, its records under
``results/``, ``run.yml``: what ran) with its console output in ``<out>/logs/<key>.log``; only when papermill
succeeds is the folder renamed to ``<out>/runs/<key>/``, in one atomic step. A killed run leaves
a partial folder, which nothing reads and the next ``reproduce`` deletes (when its process is
gone); two runners on the same folder cannot both finish one key (the second rename fails and
its copy is dropped), so no record is lost or doubled.

Runs execute on Dask distributed: a ``LocalCluster`` (one worker per visible GPU, or ``--workers``
CPU workers) or, with ``--scheduler ADDRESS``, a running cluster (dask-jobqueue for SLURM: see the
book's rerun page). A failed run does not stop the others; the summary lists each failure with its
log, and the exit code is 1.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .config import data_root, project_root

# notebook file -> the parameter class its first cell builds (None: names are checked only)
PARAMETER_CLASSES = {
    "ptq_sweep.ipynb": "quide.sweep:SweepParams",
    "mixed_precision.ipynb": "quide.mixed_precision:SearchParams",
    "llm_case_study.ipynb": "quide.llm:LLMParams",
}
EXPERIMENT_KEYS = {"name", "notebook", "parameters", "grid"}


class ConfigError(ValueError):
    """The grid config or one of its runs is invalid; nothing has run."""


@dataclass(frozen=True)
class Run:
    experiment: str
    notebook: Path                 # absolute
    parameters: dict               # the overrides given to papermill
    key: str = ""
    data: dict = field(default_factory=dict)   # data set -> content hash

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return f"{self.experiment}({args})"


# --- planning ---------------------------------------------------------------------------------

def notebook_defaults(notebook: Path) -> dict:
    """The names and default values of the notebook's cell tagged ``parameters``."""
    nb = json.loads(Path(notebook).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell["source"]))
            return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    raise ConfigError(f"{notebook}: no cell tagged 'parameters'")


def _check_parameters(notebook: Path, params: dict, where: str, defaults: dict | None = None) -> dict:
    """Resolved parameters (``defaults``, the notebook's unless given, + ``params``), or ConfigError
    saying what is wrong."""
    defaults = notebook_defaults(notebook) if defaults is None else defaults
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {unknown} for {notebook.name}; "
                          f"it takes {sorted(defaults)}")
    resolved = {**defaults, **params}
    spec = PARAMETER_CLASSES.get(notebook.name)
    if spec:
        module, name = spec.split(":")
        cls = getattr(importlib.import_module(module), name)
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            cls(**{k: v for k, v in resolved.items() if k in fields})
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from None
    return resolved


def load_config(path: Path | str) -> list[dict]:
    """The experiments of a TOML config, with their structure checked."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
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


def data_hashes(resolved: dict, cache: dict) -> dict:
    """Content hashes of the data a run reads, after ``quide.data``'s checks (which raise on a
    wrong hash, a truncated file or a missing data set: the run is refused)."""
    from . import data
    name = resolved.get("dataset")
    if name in data.SPECS:
        if name not in cache:
            cache[name] = data.load_dataset(name, download=False).sha256
        return {name: cache[name]}
    if name in data.IMAGE_FOLDER_DATASETS:
        if name not in cache:
            cache[name] = data.folder_hash(data.imagenet_folder())
        return {name: cache[name]}
    if "n_shot" in resolved:   # the LLM notebook reads MMLU
        from .llm import MMLU_FILE
        path = data_root() / MMLU_FILE
        if not path.is_file():
            raise ConfigError(f"MMLU not found at {path} (set QUIDE_DATA)")
        if "mmlu" not in cache:
            cache["mmlu"] = data.file_sha256(path)
        return {"mmlu": cache["mmlu"]}
    return {}


def plan(config: Path | str, root: Path | None = None) -> list[Run]:
    """Every run of the config, validated and keyed (duplicates dropped); ConfigError otherwise."""
    from . import data
    root = Path(root or project_root())
    code = source_hash(root)
    runs, seen, cache = [], set(), {}
    for exp in load_config(config):
        notebook = root / exp.get("notebook", f"notebooks/{exp['name']}.ipynb")
        if not notebook.is_file():
            raise ConfigError(f"experiment {exp['name']!r}: notebook {notebook} not found")
        nb_hash, defaults = notebook_hash(notebook), notebook_defaults(notebook)
        grid = exp.get("grid", {})
        for values in itertools.product(*grid.values()):
            params = {**exp.get("parameters", {}), **dict(zip(grid, values))}
            where = f"experiment {exp['name']!r} run {params}"
            resolved = _check_parameters(notebook, params, where, defaults)
            try:
                hashes = data_hashes(resolved, cache)
            except (data.DataNotFoundError, data.CorruptDataError) as err:
                raise ConfigError(f"{where}: data refused: {err}") from None
            key = hashlib.sha256(json.dumps([nb_hash, resolved, code, hashes], sort_keys=True,
                                            default=str).encode()).hexdigest()[:20]
            if key not in seen:
                seen.add(key)
                runs.append(Run(exp["name"], notebook, params, key, hashes))
    return runs


# --- running ----------------------------------------------------------------------------------

def done_folder(out: Path, run: Run) -> Path:
    return out / "runs" / run.key


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a killed process that nobody reaped (a zombie) is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def clean_partials(out: Path) -> list[Path]:
    """Delete partial folders whose process is gone (a killed or crashed run); return them."""
    removed = []
    for folder in sorted((out / ".partial").glob("*-*")):
        pid = folder.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def execute(run: Run, out: Path, root: Path, gpu: str | None = None) -> dict:
    """Run one notebook with papermill into a partial folder; on success rename it into place.
    Returns {key, label, status (done | failed | raced), seconds, log, error}."""
    out, start = Path(out), time.perf_counter()
    partial = out / ".partial" / f"{run.key}-{os.getpid()}"
    log = out / "logs" / f"{run.key}.log"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    (partial / "run.yml").write_text(json.dumps(   # JSON is YAML; not *.json, which load_records reads
        {"experiment": run.experiment, "notebook": str(run.notebook.relative_to(root)),
         "parameters": run.parameters, "key": run.key, "data": run.data}, indent=1) + "\n")
    env = {**os.environ, "QUIDE_RESULTS": str(partial / "results")}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3", "--cwd", str(root),
           str(run.notebook), str(partial / "notebook.ipynb"), "-y", json.dumps(run.parameters)]
    with open(log, "w") as f:
        f.write(f"# {run.label}\n# key {run.key}\n# {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=root)
    result = {"key": run.key, "label": run.label, "seconds": time.perf_counter() - start, "log": str(log)}
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        return {**result, "status": "failed", "error": f"papermill exit {proc.returncode}: {tail[0][:300]}"}
    shutil.copy(log, partial / "log.txt")
    target = done_folder(out, run)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(partial, target)   # atomic; fails if another runner finished this key first
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        return {**result, "status": "raced", "error": None}
    return {**result, "status": "done", "error": None}


def _execute_on_worker(run: Run, out: str, root: str, gpus: bool) -> dict:
    """Dask task: on a GPU cluster, worker i (LocalCluster names workers 0..N-1) takes GPU i."""
    gpu = None
    if gpus:
        from distributed import get_worker
        gpu = str(get_worker().name)
    return execute(run, Path(out), Path(root), gpu)


def reproduce(config: Path | str, out: Path | str, workers: int | None = None, scheduler: str | None = None,
              root: Path | None = None, dry_run: bool = False, log=print) -> list[dict]:
    """Plan, skip what is done, run the rest on Dask; return one outcome per planned run."""
    root = Path(root or project_root()).resolve()
    out = Path(out).resolve()
    log = log or (lambda *args: None)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"results folder {out} is a file, not a folder")
    runs = plan(config, root)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"results folder {out} is not writable ({err})") from None
    clean_partials(out)
    todo = [r for r in runs if not done_folder(out, r).is_dir()]
    outcomes = [{"key": r.key, "label": r.label, "status": "skipped", "seconds": 0.0,
                 "log": None, "error": None} for r in runs if r not in todo]
    log(f"quide reproduce: {len(runs)} runs planned, {len(runs) - len(todo)} already done, {len(todo)} to run")
    if dry_run or not todo:
        return outcomes + [{"key": r.key, "label": r.label, "status": "planned", "seconds": 0.0,
                            "log": None, "error": None} for r in todo]
    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm
    import torch
    n_gpus = torch.cuda.device_count()
    use_gpus = scheduler is None and workers is None and n_gpus > 0
    n_workers = n_gpus if use_gpus else (workers or 1)
    cluster = None if scheduler else LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None, silence_logs=40)
    with Client(scheduler or cluster) as client:
        futures = {client.submit(_execute_on_worker, r, str(out), str(root), use_gpus, key=f"run-{r.key}",
                                 pure=False, retries=0): r for r in todo}
        with tqdm(total=len(todo), desc="runs", unit="run") as bar:
            for future in as_completed(futures):
                run = futures[future]
                try:
                    outcome = future.result()
                except Exception as err:   # the worker itself died: that run failed, the rest go on
                    outcome = {"key": run.key, "label": run.label, "status": "failed", "seconds": 0.0,
                               "log": str(out / "logs" / f"{run.key}.log"), "error": f"{type(err).__name__}: {err}"}
                outcomes.append(outcome)
                bar.update()
    if cluster is not None:
        cluster.close()
    return outcomes


def records_of(out: Path | str) -> list[Path]:
    """The record files of every finished run under ``out``."""
    return sorted(Path(out, "runs").glob("*/results/*/*.json"))
