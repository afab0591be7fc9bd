"""Result records: one JSON file per run (a list of records) under ``<results root>/<experiment>/``.

A record file may also be gzip-compressed (``<run id>.json.gz``, made by ``gzip -9n``): the reruns
under ``data/reruns/`` are kept so, 14x smaller, because the tracked tree travels with every GPU call.

Every record carries the raw measurements (P, T_ms, both C's), the metrics derived from them by
``quide.analysis.index`` and the provenance of the run (git commit, versions, device, data hash, ...), so a
number in the book can be traced back to the run that made it. Files are written atomically: an
interrupted run leaves either the previous file or none, never half a file.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import stat
import subprocess
import typing
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from . import index as qi
from . import predictions as qp
from . import pthresh, schema
from ..config import atomic_path, project_root, results_root

REQUIRED_KEYS = schema.required_keys()   # the keys of every record (quide.analysis.schema.Record)
T_KINDS = typing.get_args(schema.declared(schema.Record)["T_kind"].type)
EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_]+")        # a folder name that cannot leave the results root
RUN_ID_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+-]*")   # a file stem: no separators, no leading dot
PARAMS_TAG_HEX = 8   # hex digits of the resolved parameters' sha256 in a record file's name

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


def make_record(*, experiment: str, model: str, dataset: str, data_source: str, seed: int, bits,
                P: float, T_ms: float, T_kind: str, C_paper: float, C_true: float, num_classes: int,
                p_fp: float, delta: float | None, provenance: dict, p_thresh: float | None = None,
                **extra) -> dict:
    """A record with I, I', ACP, ALS and Pthresh computed from the raw P, T_ms and C_paper.
    Pthresh is the run's gate (:func:`quide.analysis.pthresh.decide`, as a run passes it in with
    ``**gate.record_fields()``): max(1/K, P_FP - delta), or ``p_thresh`` where given, delta then
    None. ValueError naming the key for a value or key its kind's schema
    (``quide.analysis.schema``) does not allow."""
    raw = {"experiment": experiment, "model": model, "dataset": dataset, "data_source": data_source,
           "seed": seed, "bits": bits if np.isscalar(bits) else [int(b) for b in bits], "P": P, "T_ms": T_ms,
           "T_kind": T_kind, "C_paper": C_paper, "C_true": C_true, "p_fp": p_fp, "num_classes": num_classes,
           "provenance": provenance, **extra}
    wrong = schema.problems(json.loads(json.dumps(raw, default=_json_default)), complete=False)
    if wrong:
        raise ValueError(f"make_record: {'; '.join(wrong)}")
    if p_thresh is not None and delta is not None:
        # a gate that Eq. 4 decided (``Gate.record_fields`` of the delta rule): the record keeps its
        # delta, and its Pthresh must be Eq. 4's
        gate = pthresh.decide(None, delta=delta, num_classes=num_classes, p_fp=p_fp)
        if not math.isclose(gate.p_thresh, float(p_thresh), rel_tol=1e-12, abs_tol=1e-15):
            raise ValueError(f"make_record: p_thresh {p_thresh} is not max(1/K, P_FP - delta) = {gate.p_thresh} "
                             f"for delta {delta}; a fixed Pthresh or a rule's gives delta None")
    else:
        gate = pthresh.decide(p_thresh, delta=delta, num_classes=num_classes, p_fp=p_fp)
    thresh = gate.p_thresh
    rec = {
        "experiment": experiment, "model": model, "dataset": dataset, "data_source": data_source,
        "seed": int(seed), "bits": raw["bits"],
        "P": float(P), "T_ms": float(T_ms), "T_kind": T_kind,
        "C_paper": float(C_paper), "C_true": float(C_true),
        "I": float(qi.intelligence_index(C_paper, P, T_ms)),
        "I_gated": float(qi.gated_index(C_paper, P, T_ms, thresh)),
        "ACP": float(qi.acp(C_paper, P)), "ALS": float(qi.als(P, T_ms)),
        "p_thresh": thresh, "p_fp": float(p_fp), "delta": gate.delta,
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


def check_experiment(experiment) -> str:
    """``experiment`` if it is a plain folder name (letters, digits, _), else ValueError naming it."""
    if not isinstance(experiment, str) or not EXPERIMENT_NAME.fullmatch(experiment):
        raise ValueError(f"parameter 'experiment': must be letters, digits and _ only (a folder under the "
                         f"results root); got {experiment!r}")
    return experiment


def canonical_json(value) -> str:
    """One text per value: sorted keys, no spaces, numpy scalars as numbers, tuples as lists."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def params_sha256(params: dict) -> str:
    """sha256 of a run's resolved parameters as canonical JSON: the run's identity."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()


def params_tag(params: dict) -> str:
    """The short form of :func:`params_sha256` that record file names end with."""
    return params_sha256(params)[:PARAMS_TAG_HEX]


def named_run(prefix: str, params: dict) -> str:
    """A record file stem: the human-readable ``prefix`` and the parameters' short hash, so that
    runs with other parameters (bits, delta, observer, ...) never share a file."""
    return f"{prefix}-{params_tag(params)}"


# Run parameters in which the records pooled over seeds (Table 1) differ by design: everything
# else in ``run_params`` (delta, timed, observer, epochs, bits, device type, the data's hash...) must
# be the same for records to be pooled.
SEED_PARAMS = ("seed",)


def run_variant(run_params) -> str | None:
    """What a record's ``run_params`` say apart from the seed, as canonical JSON: records of one
    condition are pooled over seeds only where this is the same. None for records of older schema
    (no ``run_params``)."""
    if not isinstance(run_params, dict):
        return None
    return canonical_json({k: v for k, v in run_params.items() if k not in SEED_PARAMS})


def differing_params(variants) -> dict:
    """{parameter: [its values]} for the parameters in which the ``run_params`` dicts ``variants``
    (None: a record without run_params) differ, seeds left out; values as canonical JSON, a
    parameter a variant lacks (all of them for a record without run_params) as "absent"."""
    dicts = [v if isinstance(v, dict) else {} for v in variants]
    names = sorted({k for d in dicts for k in d} - set(SEED_PARAMS))
    out = {}
    for name in names:
        values = list(dict.fromkeys(canonical_json(d[name]) if name in d else "absent" for d in dicts))
        if len(values) > 1:
            out[name] = values
    return out


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_records(records: list[dict], experiment: str, run_id: str, root: Path | str | None = None,
                  run_params: dict | None = None, predictions: qp.Predictions | None = None) -> Path:
    """Write one run's records to ``<root>/<experiment>/<run_id>.json`` atomically.

    ``run_params`` (the run's resolved parameters, the data's content hash ``data_sha256`` among
    them) go into every record with their sha256 (``run_params`` and ``run_params_sha256``); a file
    already there that was made with other parameters, or on other data (its records'
    ``provenance.data_sha256``), is not replaced (ValueError): name runs with :func:`named_run`.

    ``predictions`` (the test labels and one array of predicted classes per record) are written
    first, beside the records, as ``<run_id>.predictions.npz`` (:mod:`quide.analysis.predictions`),
    each under the key ``bits_<bits label>``; every record then names the file, its key and the
    file's sha256. ValueError where a record's P is not the accuracy of its predictions.
    """
    check_experiment(experiment)
    if not isinstance(run_id, str) or not RUN_ID_NAME.fullmatch(run_id):
        raise ValueError(f"write_records: run id must be a file stem (letters, digits, _ . = + -); got {run_id!r}")
    if not records:
        raise ValueError("write_records: no records")
    for i, rec in enumerate(records):   # every record as written holds its kind's keys, of their types
        wrong = schema.problems(json.loads(json.dumps(rec, default=_json_default)))
        if wrong:
            raise ValueError(f"write_records: record [{i}] of {run_id}: {'; '.join(wrong)}")
    path = Path(root or results_root()) / experiment / f"{run_id}.json"
    previous_digest, previous_data = _identity_of(path)
    data = _data_hashes(records)
    if previous_data and data and previous_data != data:
        raise ValueError(f"{path} holds records made on other data (data_sha256 "
                         f"{_short(previous_data)} vs {_short(data)}); not replaced")
    if run_params is not None:
        params = json.loads(canonical_json(run_params))
        digest = params_sha256(params)
        records = [{**rec, "run_params": params, "run_params_sha256": digest} for rec in records]
        if previous_digest is not None and previous_digest != digest:
            raise ValueError(f"{path} holds records made with other parameters (run_params_sha256 "
                             f"{previous_digest[:12]}... vs {digest[:12]}...); not replaced")
    if predictions is not None:
        records = _with_predictions(records, predictions, path.with_name(qp.file_name(run_id)))
    atomic_write_text(path, json.dumps(records, indent=1, default=_json_default) + "\n")
    return path


def predictions_key(bits) -> str:
    """The key of a record's predictions in its file: ``bits_8``, ``bits_8-8-4-2``."""
    return f"bits_{bits_label(bits)}"


def _with_predictions(records: list[dict], predictions: qp.Predictions, path: Path) -> list[dict]:
    """Write ``predictions`` to ``path`` and return the records naming it; ValueError, before
    anything is written, for predictions that are not the records' (count, keys, n_test, P)."""
    if len(predictions.predicted) != len(records):
        raise ValueError(f"write_records: {len(predictions.predicted)} prediction arrays for {len(records)} records")
    keys = [predictions_key(rec["bits"]) for rec in records]
    if len(set(keys)) != len(keys):
        raise ValueError(f"write_records: two records of one configuration ({sorted(keys)}): their "
                         "predictions would share a key")
    for i, (rec, predicted) in enumerate(zip(records, predictions.predicted)):
        n_test = rec.get("n_test")
        if n_test is not None and n_test != len(predicted):
            raise ValueError(f"write_records: record [{i}] has n_test {n_test} but {len(predicted)} predictions")
        p = qp.accuracy(predictions.labels, predicted)
        if p != rec["P"]:   # the same arrays give the same float: anything else is other predictions
            raise ValueError(f"write_records: record [{i}] has P {rec['P']} but its predictions give {p}")
    sha256 = qp.write(path, predictions.labels, dict(zip(keys, predictions.predicted)))
    return [{**rec, "predictions_file": path.name, "predictions_key": key, "predictions_sha256": sha256}
            for rec, key in zip(records, keys)]


def _data_hashes(records) -> frozenset:
    """The data hashes (``provenance.data_sha256``) the records were made on; empty where none says."""
    return frozenset(rec["provenance"].get("data_sha256") for rec in records
                     if isinstance(rec, dict) and isinstance(rec.get("provenance"), dict)) - {None}


def _short(hashes) -> str:
    return ", ".join(f"{str(h)[:12]}..." for h in sorted(hashes))


def _identity_of(path: Path) -> tuple[str | None, frozenset]:
    """(run_params_sha256, data hashes) of the records in ``path``: (None, empty) where there is no
    file; None for older records without run_params; ("unreadable", empty) for a damaged file."""
    try:
        records = json.loads(read_json_bytes(path))
    except FileNotFoundError:
        return None, frozenset()
    except (OSError, ValueError):
        return "unreadable", frozenset()
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return records[0].get("run_params_sha256"), _data_hashes(records)
    return "unreadable", frozenset()


RECORD_SUFFIXES = (".json", ".json.gz")


def record_files(folder: Path) -> list[Path]:
    """Record files under ``folder``: every *.json and *.json.gz except hidden ones, those inside
    hidden folders (a writer's temporary file, a runner's ``.partial`` folder of unfinished runs)
    and the records' JSON Schema (``record.schema.json``)."""
    folder = Path(folder)
    return [p for p in sorted(q for suffix in RECORD_SUFFIXES for q in folder.rglob("*" + suffix))
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)
            and p.name != schema.SCHEMA_FILE]


def record_stem(path: Path) -> str:
    """A record file's name without ``.json`` or ``.json.gz``: the run id it was written under."""
    name = Path(path).name
    return name.removesuffix(".gz").removesuffix(".json")


FILE_KINDS = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
              stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``; OSError naming it where it is not a regular file, which is not opened
    (a FIFO would block the reader until something writes to it)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in FILE_KINDS.items() if test(mode)), "a special file")
        raise OSError(f"{path} is {kind}, not a regular file; not read")
    return Path(path).read_bytes()


def read_json_bytes(path: Path) -> bytes:
    """A JSON file's bytes (a record file, an executed notebook of a rerun), decompressed where its
    name ends in ``.gz``. Raises OSError for a file that cannot be read or is not a regular file,
    gzip's BadGzipFile naming the file for one that is not gzip or a damaged or cut stream."""
    data = read_regular_file(path)
    if Path(path).suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:   # not gzip, a cut stream, damaged deflate data
        raise gzip.BadGzipFile(f"{path}: not gzip, or a damaged or cut gzip stream "
                               f"({type(err).__name__}: {err})") from err


def load_records(root: Path | str | None = None, experiment: str | None = None) -> pd.DataFrame:
    """All records under ``root`` (or one experiment's) as a DataFrame.

    ``provenance`` is kept as a dict column and also flattened into ``prov_*`` columns;
    ``bits_label`` is added ("8" or "8-8-8-4"); ``source_file`` names the file. Each record is
    checked against its kind's schema (``quide.analysis.schema``): ValueError naming the file,
    the record and the key for one that does not conform (``quide verify`` lists them all).
    """
    root = Path(root or results_root())
    folder = root / experiment if experiment else root
    if not folder.is_dir():
        raise FileNotFoundError(f"no results folder at {folder}")
    rows = []
    for path in record_files(folder):
        try:
            records = json.loads(read_json_bytes(path))
        except (OSError, ValueError) as err:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"{path}: unreadable result file ({err})") from err
        if not isinstance(records, list) or not all(isinstance(rec, dict) for rec in records):
            raise ValueError(f"{path}: not a list of records (quide verify lists what is wrong)")
        for i, rec in enumerate(records):
            wrong = schema.problems(rec)
            if wrong:
                raise ValueError(f"{path} [{i}]: {'; '.join(wrong)} (quide verify lists what is wrong)")
            rows.append({**rec, "source_file": str(path.relative_to(root))})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["bits_label"] = df["bits"].map(bits_label)
    prov = pd.json_normalize(df["provenance"].tolist()).add_prefix("prov_")
    return pd.concat([df, prov.set_index(df.index)], axis=1)
