"""MMLU statistics that read no model: accuracy with its Wilson interval, the per-question sample
files (as lm-evaluation-harness's ``--log_samples``), McNemar's exact test between two
configurations scored on the same questions, what the answers are (the shares of A to D, the
accuracy a letter-only guesser with those shares gets, and whether an accuracy or a shift exceeds
it), and C relative to the model as loaded. :mod:`quide.measure.mmlu` scores the questions.

- P is the **micro** average (fraction of all questions right, lm-eval's aggregate over the
  subtasks); the macro average (mean over subjects) is recorded beside it. The 95% interval is
  Wilson's, over questions.
- A sample is one JSON line per question: ``doc_id`` (its index in the test split), subject, the
  four log-likelihoods, prediction, gold and whether it was right; a file of them is gzipped and
  written atomically (:func:`write_samples`). Scored by cloze (each answer's text, as
  lm-evaluation-harness's ``mmlu_continuation``), a sample also holds each answer's length in
  characters and the length-normalised prediction (``choice_chars``, ``pred_norm``,
  ``correct_norm``: lm-eval's ``acc_norm``).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import os

import numpy as np
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
    """:func:`quide.measure.mmlu.score`'s rows as samples: doc_id, subject, loglik (" A" ... " D"),
    pred, gold, correct; and, from :func:`quide.measure.mmlu.score_cloze`, choice_chars, pred_norm
    and correct_norm."""
    cloze = "pred_norm" in scored
    return [{"doc_id": int(r.doc_id), "subject": r.subject, "loglik": [float(x) for x in r.loglik],
             "pred": int(r.pred), "gold": int(r.answer), "correct": bool(r.correct),
             **({"choice_chars": [int(x) for x in r.choice_chars], "pred_norm": int(r.pred_norm),
                 "correct_norm": bool(r.correct_norm)} if cloze else {})}
            for r in scored.itertuples()]


def normalised_predictions(loglik, choice_chars) -> np.ndarray:
    """lm-evaluation-harness's ``acc_norm`` choice: the argmax of each answer's log-likelihood
    divided by its length in characters (rows: questions, columns: answers)."""
    loglik, chars = np.asarray(loglik, float), np.asarray(choice_chars, float)
    if loglik.shape != chars.shape or (chars <= 0).any():
        raise ValueError(f"normalised_predictions: {loglik.shape} log-likelihoods and {chars.shape} lengths, "
                         "all lengths > 0, are needed")
    return np.argmax(loglik / chars, axis=-1)


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


# --- what the answers are: letter shares, the letter-only guesser, shifts read through them -----

LETTERS = "ABCD"
SCORINGS = ("letter", "cloze")


def scoring_of(records: pd.DataFrame) -> pd.Series:
    """Each LLM record's scoring ("letter" or "cloze"); records made before the field existed
    were scored by letter."""
    if "scoring" not in records:
        return pd.Series("letter", index=records.index)
    return records["scoring"].where(records["scoring"].notna(), "letter")


def _column(samples: list[dict], field: str, k: int) -> np.ndarray:
    values = np.array([s[field] for s in samples], dtype=int)
    if not len(values) or values.min() < 0 or values.max() >= k:
        raise ValueError(f"{field}: every sample needs a choice index in 0..{k - 1} (and there must be samples)")
    return values


def choice_shares(samples: list[dict], field: str = "pred", k: int = 4) -> np.ndarray:
    """The fraction of questions whose ``field`` ("pred", "gold", "pred_norm") is each choice,
    A to D (a length-``k`` array summing to 1)."""
    return np.bincount(_column(samples, field, k), minlength=k) / len(samples)


def letter_only_accuracy(pred_shares, gold_shares) -> float:
    """The expected accuracy of answers given with the shares ``pred_shares``, drawn without
    regard to the question, on questions whose gold answers have the shares ``gold_shares``:
    sum over letters of the two shares' product. A model that answers "A" to every question
    scores the share of gold "A" answers; one whose answers carry knowledge scores more."""
    pred_shares, gold_shares = np.asarray(pred_shares, float), np.asarray(gold_shares, float)
    if pred_shares.shape != gold_shares.shape:
        raise ValueError(f"letter_only_accuracy: {pred_shares.shape} shares against {gold_shares.shape}")
    return float(pred_shares @ gold_shares)


def _paired(samples_a: list[dict], samples_b: list[dict], field: str = "pred"):
    """Two configurations' samples on the same questions, aligned by ``doc_id``: (answers of A,
    answers of B, gold answers); refuses other questions, a doc_id twice or gold answers that differ."""
    a = {s["doc_id"]: s for s in samples_a}
    b = {s["doc_id"]: s for s in samples_b}
    if len(a) != len(samples_a) or len(b) != len(samples_b):
        raise ValueError("a doc_id appears twice in one configuration's samples")
    if not a or a.keys() != b.keys():
        raise ValueError(f"the two configurations hold no questions or other ones ({len(a)} vs {len(b)}, "
                         f"{len(a.keys() ^ b.keys())} not in both)")
    ids = sorted(a)
    if any(a[i]["gold"] != b[i]["gold"] for i in ids):
        raise ValueError("the two configurations' samples give other gold answers to the same doc_id")
    return (np.array([a[i][field] for i in ids], dtype=int), np.array([b[i][field] for i in ids], dtype=int),
            np.array([a[i]["gold"] for i in ids], dtype=int))


def _against_repairings(table: np.ndarray, weights: np.ndarray, n_resamples: int, seed: int):
    """The observed value of sum(table * weights) / n and its two-sided Monte Carlo p-value
    against tables with the same margins (the answers re-paired with the gold answers at random:
    :class:`scipy.stats.random_table`, p from :func:`scipy.stats.monte_carlo_test`)."""
    from scipy.stats import monte_carlo_test, random_table   # on use, as mcnemar's import
    n = int(table.sum())
    tables = random_table(table.sum(1), table.sum(0))
    rng = np.random.default_rng(seed)
    flat = weights.ravel() / n
    out = monte_carlo_test(table.ravel(), lambda size: tables.rvs(size=size[0], random_state=rng).reshape(size),
                           lambda x, axis=-1: (x * flat).sum(axis), vectorized=True, n_resamples=n_resamples)
    return float(out.statistic), float(out.pvalue)


def beyond_letter_bias(samples: list[dict], field: str = "pred", k: int = 4, n_resamples: int = 9999,
                       seed: int = 0) -> dict:
    """Whether a configuration's accuracy exceeds what its answer shares alone give. ``P``: the
    accuracy; ``P_letter_only``: :func:`letter_only_accuracy` of its answer shares and the gold
    answers' shares (the mean accuracy of its answers re-paired with the questions at random);
    ``excess`` = P - P_letter_only; ``p_value``: two-sided, of P against those re-pairings (the
    answers x gold table's margins kept), :func:`_against_repairings`."""
    pred, gold = _column(samples, field, k), _column(samples, "gold", k)
    table = np.zeros((k, k), dtype=int)
    np.add.at(table, (pred, gold), 1)
    p, p_value = _against_repairings(table, np.eye(k), n_resamples, seed)
    expected = letter_only_accuracy(table.sum(1) / len(pred), table.sum(0) / len(pred))
    return {"n_questions": len(pred), "P": p, "P_letter_only": expected, "excess": p - expected, "p_value": p_value}


def shift_beyond_letter_bias(samples_a: list[dict], samples_b: list[dict], field: str = "pred", k: int = 4,
                             n_resamples: int = 9999, seed: int = 0) -> dict:
    """A McNemar shift read through the answer shares. ``dP`` = P(B) - P(A) on the same
    questions; ``dP_letter_only``: the shift the two configurations' answer shares alone give
    (the difference of their :func:`letter_only_accuracy`); ``excess`` = dP - dP_letter_only;
    ``p_value``: two-sided, of dP against the same re-pairing of both configurations' answers
    with the gold answers at random (both configurations' answers stay paired with each other;
    the margins of the (answer A, answer B) x gold table are kept). A small McNemar p with a
    large ``p_value`` here is a shift of answer-letter bias, not of knowledge. Also the
    discordant questions by gold answer: ``b_by_gold`` (right in A only) and ``c_by_gold``
    (right in B only), A to D."""
    pred_a, pred_b, gold = _paired(samples_a, samples_b, field)
    for values in (pred_a, pred_b, gold):
        if values.min() < 0 or values.max() >= k:
            raise ValueError(f"shift_beyond_letter_bias: choice indices outside 0..{k - 1}")
    pair = pred_a * k + pred_b                 # one row per (answer in A, answer in B)
    table = np.zeros((k * k, k), dtype=int)
    np.add.at(table, (pair, gold), 1)
    rows = np.arange(k * k)
    weights = (rows[:, None] % k == np.arange(k)).astype(float) - (rows[:, None] // k == np.arange(k))
    dp, p_value = _against_repairings(table, weights, n_resamples, seed)
    gold_shares = np.bincount(gold, minlength=k) / len(gold)
    expected = (letter_only_accuracy(np.bincount(pred_b, minlength=k) / len(gold), gold_shares)
                - letter_only_accuracy(np.bincount(pred_a, minlength=k) / len(gold), gold_shares))
    right_a, right_b = pred_a == gold, pred_b == gold
    return {"n_questions": len(gold), "dP": dp, "dP_letter_only": expected, "excess": dp - expected,
            "p_value": p_value,
            "b_by_gold": np.bincount(gold[right_a & ~right_b], minlength=k).tolist(),
            "c_by_gold": np.bincount(gold[right_b & ~right_a], minlength=k).tolist()}


def answer_letters(samples_by_config: dict, field: str = "pred", k: int = 4, n_resamples: int = 9999,
                   seed: int = 0) -> pd.DataFrame:
    """One row per configuration (the dict's keys, in its order, as ``config``): the shares of
    its answers A to D (columns "A" ... "D") and :func:`beyond_letter_bias`'s P, P_letter_only,
    excess and p_value."""
    rows = [{"config": key, **dict(zip(LETTERS[:k], choice_shares(samples, field, k))),
             **beyond_letter_bias(samples, field, k, n_resamples, seed)}
            for key, samples in samples_by_config.items()]
    return pd.DataFrame(rows)


def majority_rate(samples: list[dict], k: int = 4) -> float:
    """The accuracy of always giving the most frequent gold answer (MMLU's test split is not
    balanced over A to D, so this is above 1/k)."""
    return float(choice_shares(samples, "gold", k).max())


# --- C relative to the model as loaded ---------------------------------------------------------

def source_bits_per_weight(formats: pd.DataFrame, role: str = "linear") -> float:
    """The mean bits per weight, format overheads (scales, minimums) included, of the weights of
    ``role`` in a model file, from a :func:`quide.measure.llm.gguf_weight_formats` table (one row
    per format and role: ``weights`` and ``bits_per_weight``)."""
    rows = formats[formats["role"] == role]
    if rows.empty or rows["weights"].sum() <= 0:
        raise ValueError(f"source_bits_per_weight: no weights of role {role!r} in the table")
    return float((rows["weights"] * rows["bits_per_weight"]).sum() / rows["weights"].sum())


def compression_vs_loaded(bits, source_bits: float):
    """C relative to the model as loaded: the source's bits per weight over the bits a
    configuration keeps, ``source_bits / min(bits, source_bits)``. Rounding a model loaded from
    a 5-bit file to 16 or 8 bits keeps at most its 5 bits of information per weight, so their
    C is 1, not 32/16 or 32/8. Works on a number or an array of bit-widths."""
    if not (source_bits > 0):
        raise ValueError(f"compression_vs_loaded: source_bits must be > 0; got {source_bits!r}")
    b = np.asarray(bits, float)
    if (b <= 0).any():
        raise ValueError(f"compression_vs_loaded: bits must be > 0; got {bits!r}")
    c = source_bits / np.minimum(b, source_bits)
    return float(c) if c.ndim == 0 else c
