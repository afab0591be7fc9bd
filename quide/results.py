"""Result records: one JSON file per run (a list of records) under ``<results root>/<experiment>/``.

Every record carries the raw measurements (P, T_ms, both C's), the metrics derived from them by
``quide.index`` and the provenance of the run (git commit, versions, device, data hash, ...), so a
number in the book can be traced back to the run that made it. Files are written atomically: an
interrupted run leaves either the previous file or none, never half a file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from . import index as qi
from .config import atomic_path, project_root, results_root

REQUIRED_KEYS = ("experiment", "model", "dataset", "data_source", "seed", "bits", "P", "T_ms", "T_kind",
                 "C_paper", "C_true", "I", "I_gated", "p_thresh", "delta", "num_classes", "provenance")
T_KINDS = ("simulated", "deployed")

def bits_label(bits) -> str:
    """"8" for uniform, "8-8-8-4" for a per-layer list."""
    return str(bits) if np.isscalar(bits) else "-".join(str(b) for b in bits)


def git_state(root: Path | None = None) -> dict:
    root = root or project_root()
    def git(*args):
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None
    if os.environ.get("QUIDE_GIT_COMMIT"):
        # A copy of the tree on another machine (the GPU machine's copy may even carry a stale
        # .git that disagrees with the files): the launcher, who committed first, names the commit.
        return {"git_commit": os.environ["QUIDE_GIT_COMMIT"], "git_dirty": None, "git_source": "QUIDE_GIT_COMMIT"}
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def provenance(*, device: str | None = None, driver: str | None = None, data_sha256: str | None = None,
               calib_hash: str | None = None, wall_s: float | None = None, **extra) -> dict:
    """Where a number came from: code, software, hardware, data and time."""
    import torch
    import torchvision

    from . import __version__
    prov = {
        **git_state(),
        "quide": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "driver": driver,
        "data_sha256": data_sha256,
        "calib_indices_sha256": calib_hash,
        "wall_s": wall_s,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    prov.update(extra)
    return prov


def make_record(*, experiment: str, model: str, dataset: str, data_source: str, seed: int, bits,
                P: float, T_ms: float, T_kind: str, C_paper: float, C_true: float, num_classes: int,
                p_fp: float, delta: float | None, provenance: dict, p_thresh: float | None = None,
                **extra) -> dict:
    """A record with I, I', ACP, ALS and Pthresh computed from the raw P, T_ms and C_paper.
    Pthresh = max(1/K, P_FP - delta), unless ``p_thresh`` sets it directly (the paper's LLM case:
    60%), in which case ``delta`` may be None."""
    if T_kind not in T_KINDS:
        raise ValueError(f"T_kind must be one of {T_KINDS}; got {T_kind!r}")
    if p_thresh is None and delta is None:
        raise ValueError("make_record needs delta or p_thresh")
    thresh = float(p_thresh) if p_thresh is not None else float(qi.p_thresh(num_classes, p_fp, delta))
    rec = {
        "experiment": experiment, "model": model, "dataset": dataset, "data_source": data_source,
        "seed": int(seed), "bits": bits if np.isscalar(bits) else [int(b) for b in bits],
        "P": float(P), "T_ms": float(T_ms), "T_kind": T_kind,
        "C_paper": float(C_paper), "C_true": float(C_true),
        "I": float(qi.intelligence_index(C_paper, P, T_ms)),
        "I_gated": float(qi.gated_index(C_paper, P, T_ms, thresh)),
        "ACP": float(qi.acp(C_paper, P)), "ALS": float(qi.als(P, T_ms)),
        "p_thresh": thresh, "p_fp": float(p_fp), "delta": None if delta is None else float(delta),
        "num_classes": int(num_classes),
        **extra,
        "provenance": provenance,
    }
    if "T_deployed_ms" in extra:   # the same index under the deployed latency; None where none exists
        t_dep = extra["T_deployed_ms"]
        rec["I_deployed"] = None if t_dep is None else float(qi.intelligence_index(C_paper, P, t_dep))
        rec["I_gated_deployed"] = None if t_dep is None else float(qi.gated_index(C_paper, P, t_dep, thresh))
    return rec


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_records(records: list[dict], experiment: str, run_id: str, root: Path | str | None = None) -> Path:
    """Write one run's records to ``<root>/<experiment>/<run_id>.json`` atomically."""
    if not records:
        raise ValueError("write_records: no records")
    for rec in records:
        missing = [k for k in REQUIRED_KEYS if k not in rec]
        if missing:
            raise ValueError(f"record lacks keys {missing}")
    path = Path(root or results_root()) / experiment / f"{run_id}.json"
    atomic_write_text(path, json.dumps(records, indent=1, default=_json_default) + "\n")
    return path


def load_records(root: Path | str | None = None, experiment: str | None = None) -> pd.DataFrame:
    """All records under ``root`` (or one experiment's) as a DataFrame.

    ``provenance`` is kept as a dict column and also flattened into ``prov_*`` columns;
    ``bits_label`` is added ("8" or "8-8-8-4"); ``source_file`` names the file.
    """
    root = Path(root or results_root())
    folder = root / experiment if experiment else root
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder at {folder}")
    rows = []
    for path in sorted(folder.rglob("*.json")):
        if path.name.startswith("."):   # a writer's temporary file
            continue
        try:
            records = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable result file ({err})") from err
        for rec in records:
            rows.append({**rec, "source_file": str(path.relative_to(root))})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["bits_label"] = df["bits"].map(bits_label)
    prov = pd.json_normalize(df["provenance"].tolist()).add_prefix("prov_")
    return pd.concat([df, prov.set_index(df.index)], axis=1)
