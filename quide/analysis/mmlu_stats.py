"""MMLU statistics that read no model: accuracy with its Wilson interval, the per-question sample
files (as lm-evaluation-harness's ``--log_samples``) and McNemar's exact test between two
configurations scored on the same questions. :mod:`quide.measure.mmlu` scores the questions.

- P is the **micro** average (fraction of all questions right, lm-eval's aggregate over the
  subtasks); the macro average (mean over subjects) is recorded beside it. The 95% interval is
  Wilson's, over questions.
- A sample is one JSON line per question: ``doc_id`` (its index in the test split), subject, the
  four log-likelihoods, prediction, gold and whether it was right; a file of them is gzipped and
  written atomically (:func:`write_samples`).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os

import pandas as pd

from ..config import atomic_path


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials."""
    if n == 0:
        raise ValueError("wilson_interval: n = 0")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def summarize(scored: pd.DataFrame, chance: float = 0.25) -> dict:
    """Micro (all questions) and macro (mean over subjects) accuracy, the 95% interval of the
    micro accuracy, and whether it lies above chance."""
    k, n = int(scored["correct"].sum()), len(scored)
    lo, hi = wilson_interval(k, n)
    per_subject = scored.groupby("subject")["correct"].mean()
    return {"P": k / n, "P_macro": float(per_subject.mean()), "P_ci95": [lo, hi], "n_questions": n,
            "n_subjects": int(per_subject.size), "above_chance": bool(lo > chance)}


# --- per-question samples ----------------------------------------------------------------------

def sample_rows(scored: pd.DataFrame) -> list[dict]:
    """:func:`quide.measure.mmlu.score`'s rows as samples: doc_id, subject, loglik (" A" ... " D"), pred, gold, correct."""
    return [{"doc_id": int(r.doc_id), "subject": r.subject, "loglik": [float(x) for x in r.loglik],
             "pred": int(r.pred), "gold": int(r.answer), "correct": bool(r.correct)}
            for r in scored.itertuples()]


def write_samples(path, rows: list[dict]) -> str:
    """Write samples as gzipped JSON lines to ``path`` atomically (an interrupted write leaves the
    previous file or none); the same rows give the same bytes. Returns the file's sha256."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows).encode())
            raw.flush()
            os.fsync(raw.fileno())
    return file_sha256(path)


def read_samples(path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def mcnemar(samples_a: list[dict], samples_b: list[dict]) -> dict:
    """McNemar's exact test between two configurations scored on the same questions (paired by
    ``doc_id``): b = right in A only, c = right in B only, and the two-sided p-value of the exact
    binomial test of b against Binomial(b + c, 1/2) (SciPy's ``binomtest``; 1 when b + c = 0)."""
    from scipy.stats import binomtest   # on use: SciPy's import breaks under the API page's mocked torch
    a = {s["doc_id"]: bool(s["correct"]) for s in samples_a}
    b_ = {s["doc_id"]: bool(s["correct"]) for s in samples_b}
    if len(a) != len(samples_a) or len(b_) != len(samples_b):
        raise ValueError("mcnemar: a doc_id appears twice in one configuration's samples")
    if not a or a.keys() != b_.keys():
        raise ValueError(f"mcnemar: the two configurations hold no questions or other ones ({len(a)} vs {len(b_)}, "
                         f"{len(a.keys() ^ b_.keys())} not in both)")
    b = sum(a[i] and not b_[i] for i in a)
    c = sum(b_[i] and not a[i] for i in a)
    p_value = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    return {"n_questions": len(a), "b": b, "c": c, "acc_a": sum(a.values()) / len(a),
            "acc_b": sum(b_.values()) / len(a), "p_value": float(p_value)}
