"""Per-sample predictions beside an image classifier's records, from which P is recomputed.

A record file ``<run id>.json`` of a sweep or an EXP-3 search has one predictions file beside it,
``<run id>.predictions.npz``, which ``np.load`` reads: ``classes``, a 2-D array with a column per
test image, and ``keys``, the name of each of its rows. The first row, ``labels``, holds the test
labels; each other row the class a record's model predicted for every test image. Each record names the file
(``predictions_file``, relative to its own folder), its row (``predictions_key``) and the sha256
of the whole file (``predictions_sha256``), so that ``quide verify`` recomputes
P = mean(predicted == labels) from them (:func:`accuracy`); :func:`load` gives one record's,
:func:`read` a whole file's.

Classes are stored as the smallest unsigned integer type that holds them (uint8 up to 256
classes), all rows in one LZMA-compressed array: the labels and the predictions of one model's
configurations mostly agree, so a row of an EXP-3 exhaustive pass takes a few hundred bytes, a
fifth to a tenth of a row compressed by itself. Members have fixed timestamps, so the same predictions give
the same bytes; the file is written atomically (:func:`write`), before the records that name it.
"""
from __future__ import annotations

import functools
import io
import lzma
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..config import atomic_path, results_root
from .mmlu_stats import file_sha256   # a whole file's sha256, as for the LLM's samples

SUFFIX = ".predictions.npz"
LABELS = "labels"   # the key of the test labels' row: no record's key
MEMBERS = ("keys", "classes")   # the file's arrays: each row's key, and the rows
FIELDS = ("predictions_file", "predictions_key", "predictions_sha256")   # what a record says of its predictions
ZIP_TIME = (1980, 1, 1, 0, 0, 0)   # every member's timestamp: the same arrays give the same bytes


class PredictionsError(ValueError):
    """A record's predictions cannot be read, or are not the ones the record names."""


@dataclass(frozen=True)
class Predictions:
    """The predictions behind one record file: the test labels, and one array of predicted classes
    per record, in the records' order."""
    labels: np.ndarray
    predicted: Sequence[np.ndarray]


def file_name(run_id: str) -> str:
    """The predictions file beside the record file ``<run_id>.json``."""
    return f"{run_id}{SUFFIX}"


def compact(classes, what: str = "predictions") -> np.ndarray:
    """``classes`` (class indices) as a 1-D array of the smallest unsigned type that holds them;
    ValueError naming ``what`` for an array that is not 1-D, empty, not integers, or negative."""
    values = np.asarray(classes)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{what}: a non-empty 1-D array of class indices is needed; got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{what}: class indices must be integers; got {values.dtype}")
    if values.min() < 0:
        raise ValueError(f"{what}: class indices must be >= 0; got {values.min()}")
    return values.astype(np.min_scalar_type(int(values.max())), copy=False)


def accuracy(labels, predicted) -> float:
    """P, the fraction of test images whose predicted class is the label: the count of matches
    divided by their number (the same float whatever the arrays' integer types)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"accuracy: labels {labels.shape} and predictions {predicted.shape} must be "
                         "non-empty 1-D arrays of one length")
    return int(np.count_nonzero(labels == predicted)) / labels.size


def write(path: Path | str, labels, predicted: Mapping[str, np.ndarray]) -> str:
    """Write ``labels`` and the arrays of ``predicted`` ({key: predicted classes}, one per record)
    to ``path`` atomically; returns the file's sha256. ValueError for a key that is not a
    non-empty string other than ``labels`` and for arrays of another length than the labels."""
    labels = compact(labels, "labels")
    if not predicted:
        raise ValueError("predictions: no records' predictions to write")
    rows = []
    for key, values in predicted.items():
        if not isinstance(key, str) or not key or key == LABELS:
            raise ValueError(f"predictions key {key!r}: a non-empty string other than {LABELS!r} is needed")
        values = compact(values, f"predictions {key!r}")
        if values.shape != labels.shape:
            raise ValueError(f"predictions {key!r}: {values.size} predictions for {labels.size} labels")
        rows.append(values)
    arrays = {"keys": np.array([LABELS, *predicted]), "classes": compact_rows([labels, *rows])}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as archive:
                for name, values in arrays.items():
                    buffer = io.BytesIO()
                    np.lib.format.write_array(buffer, values, allow_pickle=False)
                    member = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
                    member.compress_type = zipfile.ZIP_LZMA
                    archive.writestr(member, buffer.getvalue())
            raw.flush()
            os.fsync(raw.fileno())
    return file_sha256(path)


def compact_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of class indices as one 2-D array of the smallest unsigned type that holds them all."""
    stacked = np.stack(rows)
    return stacked.astype(np.min_scalar_type(int(stacked.max())), copy=False)


def read(path: Path | str) -> dict[str, np.ndarray]:
    """A predictions file as {key: row}: ``labels`` the test labels, each record's key its
    predicted classes (in the type stored). Raises PredictionsError naming the file where it cannot
    be read, or is not a predictions file (its arrays, keys and shapes)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in MEMBERS if name not in archive.files]
            if missing:
                raise PredictionsError(f"{path}: not a predictions file (no {', '.join(missing)})")
            keys, classes = (archive[name] for name in MEMBERS)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, lzma.LZMAError) as err:
        if isinstance(err, PredictionsError):
            raise
        raise PredictionsError(f"{path}: unreadable predictions file ({type(err).__name__}: {err})") from err
    if keys.ndim != 1 or classes.ndim != 2 or classes.shape[0] != keys.size or not np.issubdtype(keys.dtype, np.str_) \
            or len(set(keys.tolist())) != keys.size or keys[0] != LABELS:
        raise PredictionsError(f"{path}: not a predictions file (keys {keys.shape} {keys.dtype}, classes "
                               f"{classes.shape}; one row per distinct key is needed, {LABELS!r} first)")
    return {str(key): row for key, row in zip(keys, classes)}


# One version of a file (its path, size, time and inode name it) is hashed and read once: an
# EXP-3 exhaustive pass's records, loaded one at a time, share one file.
@functools.lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    return file_sha256(path)


@functools.lru_cache(maxsize=16)
def _cached_read(path: str, size: int, mtime_ns: int, inode: int) -> dict:
    return read(path)


def _given(value) -> bool:
    """A field a record holds: present and neither None nor NaN (a DataFrame row's empty cell)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def has_predictions(record: Mapping) -> bool:
    """Whether ``record`` names a predictions file (all of ``FIELDS``)."""
    return all(_given(record.get(key)) for key in FIELDS)


def folder_of(record: Mapping, root: Path | str | None = None) -> Path:
    """The folder a record file lies in: ``root`` (None: the results root) and the folder of the
    record's ``source_file`` (relative to ``root``, as :func:`quide.analysis.results.load_records`
    gives it), or ``root`` itself for a record without one."""
    root = Path(results_root() if root is None else root)
    source = record.get("source_file")
    return root / Path(source).parent if _given(source) else root


def load(record: Mapping, root: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predicted) of one record, as int64 arrays in the test set's order.

    ``record``: a record (a dict, or a row of :func:`quide.analysis.results.load_records`); its
    predictions file is looked for in :func:`folder_of` (``root`` None: the results root).
    PredictionsError, naming the file and field, where the record names no predictions (records
    made before they were kept), the file is missing or unreadable, its sha256 is not the record's
    ``predictions_sha256``, it has no array ``predictions_key``, or the array's length is not the
    labels'."""
    if not has_predictions(record):
        raise PredictionsError("the record names no predictions file (predictions_file, predictions_key, "
                               "predictions_sha256): it was made before predictions were kept")
    name = record["predictions_file"]
    if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
        raise PredictionsError(f"predictions_file {name!r} is not the name of a file beside the record")
    path = folder_of(record, root) / name
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise PredictionsError(f"predictions file {path} is missing") from None
    version = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if _cached_sha256(*version) != record["predictions_sha256"]:
        raise PredictionsError(f"predictions file {path}: its sha256 is not the record's predictions_sha256")
    arrays = _cached_read(*version)
    key = record["predictions_key"]
    if key == LABELS or key not in arrays:
        raise PredictionsError(f"predictions file {path} has no array predictions_key {key!r}")
    labels, predicted = arrays[LABELS], arrays[key]
    if predicted.shape != labels.shape or labels.ndim != 1:
        raise PredictionsError(f"predictions file {path}: {key!r} holds {predicted.size} predictions for "
                               f"{labels.size} labels")
    return labels.astype(np.int64), predicted.astype(np.int64)
