"""Where things live. Every location comes from an environment variable or the project root.

- ``QUIDE_DATA``: data root holding the npz caches (``mnist.npz``, ``cifar10.npz``, ...) and an
  ``imagenet/`` ImageFolder tree. Default: ``<project>/data/cache``.
- ``QUIDE_RESULTS``: result records. Default: ``<project>/data/results`` (for a smoke run, a fresh
  temporary folder: see :func:`run_results_root`).
- ``QUIDE_CHECKPOINTS``: trained models. Default: ``<project>/data/checkpoints``.
- ``QUIDE_SEEDS``: the seeds grid's records (``reproduce/seeds.toml``: more seeds per condition than
  the paper's three), which :mod:`quide.analysis.stability` draws trained models from where they
  exist. Default: ``<project>/data/seeds``.
- ``QUIDE_TIMING_LOCK``: a lock file that gives each timing the host to itself
  (:func:`quide.hostlock.timing_turn`). Unset: no lock. ``quide reproduce`` sets it for its GPU runs.

``<project>`` is the nearest folder at or above the working directory that holds ``_toc.yml`` and
``quide/`` (so notebooks run from ``notebooks/`` or ``book/`` find the same places), else the
working directory itself.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "quide").is_dir():
            return folder
    return here


def _from_env(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else project_root() / default


TIMING_LOCK_ENV = "QUIDE_TIMING_LOCK"


def data_root() -> Path:
    return _from_env("QUIDE_DATA", "data/cache")


def results_root() -> Path:
    return _from_env("QUIDE_RESULTS", "data/results")


def run_results_root(profile: str, root: Path | str | None = None) -> Path:
    """Where a run of ``profile`` writes its records: ``root`` if given, else ``$QUIDE_RESULTS`` if
    set; otherwise a smoke run gets a fresh temporary folder (the tracked data/results holds only
    runs of the paper's protocol) and any other run :func:`results_root`."""
    if root is not None:
        return Path(root)
    if profile == "smoke" and not os.environ.get("QUIDE_RESULTS"):
        return Path(tempfile.mkdtemp(prefix="quide-smoke-results-"))
    return results_root()


def checkpoint_root() -> Path:
    return _from_env("QUIDE_CHECKPOINTS", "data/checkpoints")


def seeds_root() -> Path:
    """The seeds grid's results root (its records under ``<root>/ptq_sweep/``)."""
    return _from_env("QUIDE_SEEDS", "data/seeds")


def current_umask() -> int:
    """The process's umask, read without changing it where /proc tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it.

    A reader sees the old file or the complete new one, never half a file (rename is atomic
    within a file system). The temporary name is hidden (leading dot) and ends in ``suffix``
    (writers that insist on an extension, like ``np.savez``, pass theirs).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=suffix)
    # mkstemp creates the file 0600; a record or checkpoint is an ordinary file (0644 under umask 022)
    os.fchmod(fd, 0o666 & ~current_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
