"""The Intelligence Index and its relatives (paper Section 3, Eqs. 1-4).

Units, everywhere in this module:
- ``C``: compression ratio, a unitless factor (1.0 for the FP32 anchor, 32/b for uniform b bits).
- ``P``: accuracy as a *fraction* in [0, 1], never a percent.
- ``T_ms``: latency in milliseconds (the paper: median per batch of 64).

Every function takes scalars, numpy arrays or pandas Series and returns the same kind
(arithmetic is plain numpy broadcasting, so a Series in gives a Series out).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

BITS_FP32 = 32


def _check(name: str, value, *, low: float | None = None, high: float | None = None,
           low_inclusive: bool = True, why: str = ""):
    """Raise ValueError naming ``name`` if any element leaves [low, high]; NaN passes through."""
    arr = np.asarray(value, dtype=float)
    if low is not None:
        bad = arr < low if low_inclusive else arr <= low
        if np.any(bad):
            first = arr[bad].flat[0] if arr.ndim else float(arr)
            op = ">=" if low_inclusive else ">"
            raise ValueError(f"{name} must be {op} {low}{why}; got {first!r}")
    if high is not None and np.any(arr > high):
        first = arr[arr > high].flat[0] if arr.ndim else float(arr)
        raise ValueError(f"{name} must be <= {high}{why}; got {first!r}")
    return value


def _check_P(P, name: str = "P"):
    return _check(name, P, low=0.0, high=1.0,
                  why=" (accuracy is a fraction in [0, 1]; a value above 1 looks like a percent)")


def _check_T(T_ms):
    return _check("T_ms", T_ms, low=0.0, low_inclusive=False,
                  why=" (latency in ms; log2(T+1) is 0 at T=0, so T must be positive)")


def _check_C(C):
    return _check("C", C, low=0.0, low_inclusive=False, why=" (compression ratio)")


def latency_penalty(T_ms):
    """f(T) = log2(T + 1), the paper's latency damping with T in ms."""
    return np.log2(_check_T(T_ms) + 1.0)


def intelligence_index(C, P, T_ms):
    """I = C * P / log2(T + 1)   (paper Eq. 2)."""
    return _check_C(C) * _check_P(P) / latency_penalty(T_ms)


def gated_index(C, P, T_ms, p_thresh):
    """I' = C * max(P - Pthresh, 0) / log2(T + 1)   (paper Eq. 3). Zero at or below the gate."""
    margin = np.maximum(_check_P(P) - _check_P(p_thresh, "p_thresh"), 0.0)
    return _check_C(C) * margin / latency_penalty(T_ms)


def p_thresh(num_classes, p_fp, delta):
    """Pthresh = max(1/K, P_FP - delta)   (paper Eq. 4); chance level is the floor."""
    k = np.asarray(num_classes)
    if np.any(k < 2):
        raise ValueError(f"num_classes must be >= 2 (1/K is chance accuracy); got {num_classes!r}")
    _check_P(p_fp, "p_fp")
    _check("delta", delta, low=0.0, high=1.0, why=" (tolerated accuracy drop, a fraction)")
    return np.maximum(1.0 / k, p_fp - delta)


def acp(C, P):
    """Accuracy-Compression Product, ACP = C * P (paper Section 3.4)."""
    return _check_C(C) * _check_P(P)


def als(P, T_ms):
    """Accuracy per Log-Second, ALS = P / log2(T + 1) (paper Section 3.4; T in ms despite the name)."""
    return _check_P(P) / latency_penalty(T_ms)


# --- compression -----------------------------------------------------------------------------

def _bits_list(bits) -> list[int]:
    seq = [bits] if np.isscalar(bits) else list(bits)
    if not seq:
        raise ValueError("bits must be an int or a non-empty list of per-layer bit-widths")
    for b in seq:
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(f"bits must be positive integers; got {b!r} in {bits!r}")
    return [int(b) for b in seq]


def compression_paper(bits) -> float:
    """The paper's C = 32 / mean(bits) (Algorithm 1, line 6): unweighted over layers.

    For one int this is 32/b; for a per-layer list it ignores how many parameters each layer has,
    so a tiny FC2 at 2 bits counts as much as the biggest layer. See :func:`compression_true`.
    """
    return BITS_FP32 / float(np.mean(_bits_list(bits)))


def compression_true(bits, params: Sequence[int], other_params: int = 0,
                     other_bits: int = BITS_FP32) -> float:
    """Storage ratio from parameter counts: 32 * total / sum(bits_i * params_i).

    ``params[i]`` is the number of weights stored at ``bits[i]``; ``other_params`` (biases,
    norm parameters) are stored at ``other_bits`` (FP32 unless the whole model is cast).
    """
    b = _bits_list(bits)
    n = [int(p) for p in params]
    if len(b) == 1 and len(n) > 1:
        b = b * len(n)
    if len(b) != len(n):
        raise ValueError(f"bits has {len(b)} entries but params has {len(n)}")
    if any(p < 0 for p in n) or other_params < 0:
        raise ValueError("parameter counts must be >= 0")
    total = sum(n) + other_params
    stored_bits = sum(bi * ni for bi, ni in zip(b, n)) + other_bits * other_params
    if stored_bits == 0:
        raise ValueError("no parameters: compression is undefined")
    return BITS_FP32 * total / stored_bits


# --- ranking and the Pareto front ------------------------------------------------------------

def rank(scores, higher_is_better: bool = True) -> np.ndarray:
    """Rank 1 = best; ties share the best rank ('min' method), as in the paper's Table 4."""
    s = pd.Series(np.asarray(scores, dtype=float))
    return s.rank(method="min", ascending=not higher_is_better).astype(int).to_numpy()


def ranking(labels, scores, higher_is_better: bool = True) -> list:
    """Labels ordered best first, e.g. ``[4, 8, 16, 32, 2]``; ties keep input order."""
    labels = list(labels)
    s = np.asarray(scores, dtype=float)
    if len(labels) != len(s):
        raise ValueError(f"{len(labels)} labels but {len(s)} scores")
    order = np.argsort(-s if higher_is_better else s, kind="stable")
    return [labels[i] for i in order]


def pareto_front(C, P, T_ms) -> np.ndarray:
    """Boolean mask of the configurations not dominated in (C up, P up, T down).

    j dominates i when C_j >= C_i, P_j >= P_i, T_j <= T_i with at least one strict.
    O(n^2) in memory and time, fine for the few hundred configurations a search sees.
    """
    c = np.asarray(_check_C(C), dtype=float)
    p = np.asarray(_check_P(P), dtype=float)
    t = np.asarray(_check_T(T_ms), dtype=float)
    if not (c.shape == p.shape == t.shape) or c.ndim != 1:
        raise ValueError("C, P and T_ms must be 1-D and of equal length")
    no_worse = (c[:, None] >= c[None, :]) & (p[:, None] >= p[None, :]) & (t[:, None] <= t[None, :])
    better = (c[:, None] > c[None, :]) | (p[:, None] > p[None, :]) | (t[:, None] < t[None, :])
    dominated = (no_worse & better).any(axis=0)  # row j dominates column i
    return ~dominated
