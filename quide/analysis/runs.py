"""The runs manifest (``data/reruns/RUNS.toml``): which from-scratch runs are kept, and what each is.

One entry per run: the committed results (``data/results``) and every rerun folder under
``data/reruns``. :func:`load_manifest` reads and validates it; :func:`problems` checks it against
the tree (every folder exists, every rerun folder has an entry, each wall time agrees with the file
that states it). The book names runs by their ``name`` and builds its per-run tables from here.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from ..config import project_root

MANIFEST = "data/reruns/RUNS.toml"
RESULTS = "data/results"       # the committed results: the one run the book's pages read
RERUNS = "data/reruns"
UNKNOWN = "unknown"
# a results file's line that states a whole reproduction's wall time, in seconds
_WALL_LINE = re.compile(r"^(?:whole reproduction: |wall )(\d+(?:\.\d+)?) s on (.*?)(?: over \d+ calls.*)?$")


@dataclass(frozen=True)
class Run:
    """One kept run, as the manifest describes it."""
    folder: str            # from the repository root
    name: str              # what readers see, e.g. "4 x H200, second run"
    purpose: str
    gpu: str
    gpus: int
    date: str
    commit: str            # the run log's, never shown elsewhere
    command: str
    wall_time_s: float | str   # seconds, or "unknown"
    wall_time_file: str        # the file whose line states it, or "unknown"
    timing: str            # "as the committed results", or how its timings differ
    label: str             # the run's letter in the history (run log only)
    host: str              # run log only
    calls: int | str

    @property
    def canonical(self) -> bool:
        """Whether this is the committed result set (``data/results``)."""
        return self.folder == RESULTS

    @property
    def hardware(self) -> str:
        """E.g. "4 x NVIDIA H200"."""
        return f"{self.gpus} x {self.gpu}"


_REQUIRED = {f.name: f.type for f in fields(Run)}


def manifest_path(root: Path | str | None = None) -> Path:
    return Path(root or project_root()) / MANIFEST


def load_manifest(path: Path | str | None = None) -> list[Run]:
    """The manifest's runs, in its order. Raises ``ValueError`` naming the entry and the field
    where an entry lacks a field, has one it does not know, has a wrong type or repeats a folder
    or name."""
    path = Path(path) if path else manifest_path()
    with open(path, "rb") as f:
        entries = tomllib.load(f).get("run", [])
    if not entries:
        raise ValueError(f"{path}: no [[run]] entries; expected one per kept run folder")
    runs = []
    for i, entry in enumerate(entries, 1):
        where = f"{path}, [[run]] number {i} ({entry.get('folder', 'no folder')})"
        missing = sorted(set(_REQUIRED) - set(entry))
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)}; write {UNKNOWN!r} where a value is not known")
        extra = sorted(set(entry) - set(_REQUIRED))
        if extra:
            raise ValueError(f"{where}: unknown field(s) {', '.join(extra)}; expected only {', '.join(_REQUIRED)}")
        for key in ("gpus",):
            if not isinstance(entry[key], int) or entry[key] < 1:
                raise ValueError(f"{where}: {key} = {entry[key]!r}; expected a whole number of GPUs, at least 1")
        for key in ("wall_time_s", "calls"):
            value = entry[key]
            if not (value == UNKNOWN or isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"{where}: {key} = {value!r}; expected a positive number or {UNKNOWN!r}")
        for key in set(_REQUIRED) - {"gpus", "wall_time_s", "calls"}:
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise ValueError(f"{where}: {key} = {entry[key]!r}; expected a non-empty string")
        runs.append(Run(**entry))
    for key in ("folder", "name", "label"):
        seen = [getattr(r, key) for r in runs]
        twice = sorted({v for v in seen if seen.count(v) > 1 and v != UNKNOWN})
        if twice:
            raise ValueError(f"{path}: {key} {', '.join(map(repr, twice))} given to more than one run; expected one each")
    if sum(r.canonical for r in runs) != 1:
        raise ValueError(f"{path}: expected exactly one entry with folder = {RESULTS!r}, the committed results")
    return runs


def wall_time_from_file(path: Path | str) -> tuple[float, str]:
    """The wall time (s) and hardware that a results file's last ``wall N s on ...`` or
    ``whole reproduction: N s on ...`` line states."""
    path = Path(path)
    found = [m for line in path.read_text().splitlines() if (m := _WALL_LINE.match(line.strip()))]
    if not found:
        raise ValueError(f"{path}: no line 'wall N s on ...' or 'whole reproduction: N s on ...'")
    return float(found[-1].group(1)), found[-1].group(2)


def problems(runs: list[Run], root: Path | str | None = None) -> list[str]:
    """What is wrong between the manifest and the tree: a folder missing, a folder under
    ``data/reruns`` without an entry, a wall-time file missing or stating another time."""
    root = Path(root or project_root())
    out = [f"{r.name}: folder {r.folder} does not exist" for r in runs if not (root / r.folder).is_dir()]
    listed = {Path(r.folder) for r in runs}
    out += [f"{d.relative_to(root)}: a rerun folder without an entry in {MANIFEST}"
            for d in sorted((root / RERUNS).iterdir()) if d.is_dir() and d.relative_to(root) not in listed]
    for r in runs:
        if r.wall_time_file == UNKNOWN:
            continue
        file = root / r.wall_time_file
        if not file.is_file():
            out.append(f"{r.name}: wall_time_file {r.wall_time_file} does not exist")
            continue
        seconds, _ = wall_time_from_file(file)
        if r.wall_time_s == UNKNOWN or abs(seconds - float(r.wall_time_s)) > 0.5:
            out.append(f"{r.name}: wall_time_s {r.wall_time_s!r} but {r.wall_time_file} states {seconds:g} s")
    return out


def canonical(runs: list[Run]) -> Run:
    """The committed results' entry."""
    return next(r for r in runs if r.canonical)


def reruns(runs: list[Run]) -> list[Run]:
    """Every entry but the committed results, in the manifest's order."""
    return [r for r in runs if not r.canonical]


def wall_times(runs: list[Run], root: Path | str | None = None) -> pd.DataFrame:
    """Each run's wall time for the whole reproduction, read from its results file (never from the
    manifest's own number): name, hardware, seconds, calls. Runs without a file are left out."""
    root = Path(root or project_root())
    rows = []
    for r in runs:
        if r.wall_time_file == UNKNOWN:
            continue
        seconds, _ = wall_time_from_file(root / r.wall_time_file)
        rows.append({"run": r.name, "GPUs": r.hardware, "wall time (s)": seconds, "calls": r.calls,
                     "timing": r.timing, "canonical": r.canonical})
    return pd.DataFrame(rows)


def run_log_table(runs: list[Run]) -> pd.DataFrame:
    """The manifest as one table, for the run log (the one page that shows labels, hosts and commits)."""
    return pd.DataFrame([{"run": r.name, "label": r.label, "folder": r.folder, "GPUs": r.hardware, "date": r.date,
                          "commit": r.commit, "host": r.host, "calls": r.calls,
                          "wall time (s)": r.wall_time_s, "command": r.command} for r in runs])
