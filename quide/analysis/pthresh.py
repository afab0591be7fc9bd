"""Setting Pthresh without a hand-set delta (the paper's closing open question).

One entry point, :func:`gate`: ``gate(rule, num_classes=K, p_fp=..., ...) -> Pthresh``; a run decides
its gate (delta, a fixed Pthresh or a rule) once, by :func:`decide`, before its records are made. ``rule`` is
a rule object (below) or its name, with or without the ``"auto:"`` prefix that the notebook
parameters take (``p_thresh="auto:noise"``). Every accuracy here is a *fraction* in [0, 1].

Chance (:func:`chance_level`) is the majority-class rate of the test labels where their class counts
are given (what a model that always answers the most frequent class scores: MMLU's test answers are
not balanced, so its chance is above 1/4), 1/K otherwise. Every rule's raw value is clipped to
[chance, P_FP]: the gate never sits below chance nor above the FP model itself. Where
P_FP <= chance (FP no better than chance) every rule returns 1: no accuracy is above it, so every
configuration gets I' = 0 (Eq. 3): a model no better than chance has no accuracy to keep.
(A run gated by the paper's Eq. 4 itself, :func:`decide` with a delta, keeps the paper's floor
max(1/K, P_FP - delta) as the paper writes it.)

The rules (``RULES``; each class says its one line of maths, its assumptions and its source):

- ``delta``       the paper's Eq. 4, Pthresh = P_FP - delta, delta hand-set per data set;
- ``span``        one global share f of the span from chance to FP: chance + f (P_FP - chance);
- ``error_ratio`` a configuration may make at most r times FP's errors: 1 - r (1 - P_FP);
- ``relative``    MLPerf Inference's quality target, a share q of FP's accuracy: q P_FP;
- ``noise``       k standard deviations of run-to-run noise below FP: P_FP - k sigma;
- ``curve``       no parameter: the middle of the largest drop between adjacent bit-widths.

One rule is not a single Pthresh and so is not in ``RULES``: :class:`Paired` tests each configuration
against FP on the same test samples (:func:`paired_noninferiority`, from per-sample predictions) and
keeps its I' only where its accuracy drop is shown to be below a margin.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np

AUTO = "auto:"


def _fraction(name: str, value, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{name} must be a fraction in [{low:g}, {high:g}] (not a percent); got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Inputs:
    """What a rule may look at. ``accuracy_by_bits``: {bit-width: P} of the uniform sweep (FP at
    32 is added from ``p_fp`` where absent); ``p_fp_seeds``: P_FP of each seed (several runs);
    ``p_fp_sd``: their std where only the std is known (a paper's "±"); ``n_test``: test-set
    size (for the binomial noise of a single run); ``class_counts``: the test labels' count per
    class, where known (chance is then the majority-class rate, :func:`chance_level`)."""
    num_classes: int
    p_fp: float
    accuracy_by_bits: dict | None = None
    p_fp_seeds: tuple | None = None
    n_test: int | None = None
    p_fp_sd: float | None = None
    class_counts: tuple | None = None

    def __post_init__(self):
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, numbers.Integral) \
                or self.num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2 (1/K is chance); got {self.num_classes!r}")
        _fraction("p_fp", self.p_fp)
        for b, p in (self.accuracy_by_bits or {}).items():
            _fraction(f"accuracy_by_bits[{b}]", p)
        if self.p_fp_seeds is not None:
            object.__setattr__(self, "p_fp_seeds", tuple(_fraction("p_fp_seeds", p) for p in self.p_fp_seeds))
        if self.n_test is not None and (isinstance(self.n_test, bool) or not isinstance(self.n_test, numbers.Integral)
                                        or self.n_test < 1):
            raise ValueError(f"n_test must be None or an int >= 1; got {self.n_test!r}")
        if self.p_fp_sd is not None:
            _fraction("p_fp_sd", self.p_fp_sd)
        if self.class_counts is not None:
            chance_level(self.num_classes, self.class_counts)   # validates the counts
            object.__setattr__(self, "class_counts", tuple(int(n) for n in self.class_counts))

    @property
    def chance(self) -> float:
        """:func:`chance_level` of these inputs."""
        return chance_level(self.num_classes, self.class_counts)


def chance_level(num_classes: int, class_counts=None) -> float:
    """Chance accuracy (a fraction): the majority-class rate max_k n_k / sum n_k where the test labels'
    class counts ``class_counts`` (one count per class, at most K of them) are known, 1/K otherwise.
    The majority rate is what a model that ignores its input and always answers the most frequent
    class scores; it is at least 1/K and equals it only for balanced labels (MMLU's four answers are
    not balanced). ValueError for counts that are not K or fewer non-negative integers with a
    positive sum."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    if class_counts is None:
        return 1.0 / num_classes
    counts = np.asarray(class_counts)
    if counts.ndim != 1 or not 1 <= counts.size <= num_classes or not np.issubdtype(counts.dtype, np.integer) \
            or np.any(counts < 0) or counts.sum() == 0:
        raise ValueError(f"class_counts must be at most num_classes={num_classes} non-negative integer counts "
                         f"with a positive sum (np.bincount of the test labels); got {class_counts!r}")
    return float(counts.max() / counts.sum())


@dataclass(frozen=True)
class Delta:
    """Pthresh = P_FP - delta (paper Eq. 4). Assumes someone knows, per data set, which accuracy
    drop is tolerable. Source: the paper (delta 0.07-0.60, chosen by hand)."""
    delta: float

    def __post_init__(self):
        _fraction("delta", self.delta)

    def raw(self, x: Inputs) -> float:
        return x.p_fp - self.delta


@dataclass(frozen=True)
class Span:
    """Pthresh = chance + f (P_FP - chance): the gate keeps the same share f of the span from chance
    to FP on every task (chance: :func:`chance_level`, 1/K for balanced labels). Assumes the
    tolerable loss scales with what the model gained over chance.
    f = None: the least-squares fit to the paper's own deltas (:func:`paper_span_fit`)."""
    f: float | None = None

    def __post_init__(self):
        if self.f is not None:
            _fraction("f", self.f)

    def raw(self, x: Inputs) -> float:
        f = paper_span_fit()["f"] if self.f is None else self.f
        return x.chance + f * (x.p_fp - x.chance)


@dataclass(frozen=True)
class ErrorRatio:
    """Pthresh = 1 - r (1 - P_FP): viable while the error rate is at most r times FP's (r >= 1).
    Assumes errors, not accuracy, are what a user pays for (a 1-point loss matters more at 99%
    than at 60%). r = 2 by default: "at most twice FP's errors", a choice, not a fit."""
    r: float = 2.0

    def __post_init__(self):
        if isinstance(self.r, bool) or not isinstance(self.r, numbers.Real) or not self.r >= 1:
            raise ValueError(f"r must be a number >= 1 (a ratio of error rates); got {self.r!r}")

    def raw(self, x: Inputs) -> float:
        return 1.0 - self.r * (1.0 - x.p_fp)


@dataclass(frozen=True)
class Relative:
    """Pthresh = q P_FP. Assumes the tolerable loss is a fixed share of FP's accuracy. Source:
    MLPerf Inference's closed-division quality targets, 99% (or 99.9%) of the FP32 reference
    (Reddi et al., ISCA 2020; mlcommons/inference_policies, inference_rules.adoc)."""
    q: float = 0.99

    def __post_init__(self):
        _fraction("q", self.q)

    def raw(self, x: Inputs) -> float:
        return self.q * x.p_fp


@dataclass(frozen=True)
class Noise:
    """Pthresh = P_FP - k sigma, sigma the run-to-run noise of P_FP: max(std over seeds (ddof 1),
    binomial sqrt(P_FP (1 - P_FP) / n_test)) with two or more seeds (or a stated std), the
    binomial alone with one.
    Assumes a configuration is viable while its loss is within noise of FP (a one-sided
    non-inferiority test; cf. Bouthillier et al., MLSys 2021, on seed variance in benchmarks).
    The binomial floor: three seeds can agree by chance, but P is never known better than the
    test set allows. k = 2 by default (about a one-sided 98% bound). ValueError with neither two
    seeds nor n_test."""
    k: float = 2.0

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Real) or not self.k >= 0:
            raise ValueError(f"k must be a number >= 0 (standard deviations); got {self.k!r}")

    def raw(self, x: Inputs) -> float:
        return x.p_fp - self.k * noise_sd(x)


@dataclass(frozen=True)
class Curve:
    """No parameter: sort the bit-widths from high to low (FP at 32 included); the gate sits at
    the middle of the largest accuracy drop between adjacent ones, (P_hi + P_lo) / 2, splitting
    "works" from "collapsed" (the 1-D single-linkage split into two groups). Assumes the curve
    has one cliff (PTQ's usual shape). A flat or rising curve (no drop) gives chance: nothing to
    separate, nothing gated. ValueError with fewer than two bit-widths."""

    def raw(self, x: Inputs) -> float:
        points = {32: x.p_fp, **(x.accuracy_by_bits or {})}
        if len(points) < 2:
            raise ValueError("the curve rule needs P at two bit-widths or more (FP and one quantized)")
        acc = np.array([points[b] for b in sorted(points, reverse=True)], dtype=float)
        drops = acc[:-1] - acc[1:]
        i = int(np.argmax(drops))
        return x.chance if drops[i] <= 0 else float(acc[i] + acc[i + 1]) / 2


@dataclass(frozen=True)
class Paired:
    """Per configuration, not one Pthresh: a quantized configuration is compared with the FP model of
    the same seed on the same test samples, and keeps its Eq. 3 score I' = C max(P - q P_FP, 0) /
    log2(T+1) (the relative rule's gate) only where :func:`paired_noninferiority` shows, with
    ``confidence``, that its accuracy drop P_FP - P is below the margin (1 - q) P_FP; elsewhere
    I' = 0. So it admits no more than the relative rule does, and less where a drop within the
    margin could be noise.

    The margin is MLPerf Inference's quality target (99% of the FP32 reference; Reddi et al., ISCA
    2020), the convention the relative rule uses on point estimates: a tolerance fixed by the field
    before these data, not fitted to them. The test is one-sided at ``confidence`` = 0.95, the usual
    level of a non-inferiority test. Needs each configuration's per-sample predictions."""
    q: float = 0.99
    confidence: float = 0.95

    def __post_init__(self):
        _fraction("q", self.q)
        if not 0.5 <= _fraction("confidence", self.confidence) < 1:
            raise ValueError(f"confidence must be in [0.5, 1); got {self.confidence!r}")

    def margin(self, p_fp: float) -> float:
        """The largest tolerated drop, (1 - q) P_FP (a fraction)."""
        return (1.0 - self.q) * _fraction("p_fp", p_fp)

    def p_thresh(self, p_fp: float) -> float:
        """The Pthresh of Eq. 3 for a configuration that passes the test: q P_FP."""
        return self.q * _fraction("p_fp", p_fp)

    def test(self, labels, fp_predicted, predicted) -> dict:
        """:func:`paired_noninferiority` of ``predicted`` against ``fp_predicted`` with this rule's
        margin (from FP's accuracy on these labels) and confidence."""
        labels, fp_predicted = np.asarray(labels), np.asarray(fp_predicted)
        p_fp = float(np.mean(labels == fp_predicted)) if labels.size else 0.0
        return paired_noninferiority(labels, fp_predicted, predicted, self.margin(p_fp), confidence=self.confidence)


def paired_noninferiority(labels, fp_predicted, predicted, margin: float, *, confidence: float = 0.95,
                          resamples: int = 10_000, seed: int = 0) -> dict:
    """One-sided paired non-inferiority test of a quantized model against FP on the same test
    samples: is the accuracy drop P_FP - P below ``margin`` (a fraction), with ``confidence``?

    ``labels``, ``fp_predicted``, ``predicted``: integer class arrays of one length, sample by sample.
    Per sample the pair (FP right, quantized right) is one of four kinds; only the discordant ones
    move the drop: b = FP right and quantized wrong, c = FP wrong and quantized right, and
    drop = (b - c) / n. The upper bound of the drop is the ``confidence`` quantile of a paired
    bootstrap (the n samples drawn with replacement, each keeping both models' answers); the
    configuration is non-inferior where that bound is below the margin.

    Why a bootstrap rather than McNemar's exact test: McNemar conditions on the b + c discordant
    samples and tests b / (b + c) = 1/2, a margin of zero; a margin on the accuracy difference
    (b - c) / n is not a fixed value of b / (b + c) (it depends on the unknown discordance rate), so
    the exact conditional test cannot carry it. The bootstrap needs no model of that rate and keeps
    the pairing. Since the drop depends on a resample only through its counts of the three kinds
    of sample (b-kind, c-kind, concordant), each resample is drawn as one multinomial of n over
    those three kinds: the same distribution as resampling the samples, without an n-long array per
    resample. ``seed`` fixes the draws, so a decision is reproducible. McNemar's one-sided exact
    p-value that the quantized model is worse at all (margin zero; SciPy's ``binomtest``) is
    returned beside it, for information.

    Returns n, b, c, p_fp, p, drop, drop_upper, margin, confidence, non_inferior (drop_upper <
    margin) and p_worse. ValueError for arrays of other shapes or lengths, empty or non-integer
    ones, a margin outside [0, 1], a confidence outside [0.5, 1) or fewer than 100 resamples."""
    from scipy.stats import binomtest   # on use: SciPy's import breaks under the API page's mocked torch
    arrays = [np.asarray(a) for a in (labels, fp_predicted, predicted)]
    if any(a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) for a in arrays) \
            or len({a.size for a in arrays}) != 1 or arrays[0].size == 0:
        raise ValueError("labels, fp_predicted and predicted must be non-empty 1-D integer arrays of one length; "
                         f"got shapes {[a.shape for a in arrays]} and dtypes {[str(a.dtype) for a in arrays]}")
    margin = _fraction("margin", margin)
    if not 0.5 <= _fraction("confidence", confidence) < 1:
        raise ValueError(f"confidence must be in [0.5, 1); got {confidence!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral) or resamples < 100:
        raise ValueError(f"resamples must be an int >= 100; got {resamples!r}")
    y, fp_right, q_right = arrays[0], arrays[1] == arrays[0], arrays[2] == arrays[0]
    n = int(y.size)
    b, c = int(np.sum(fp_right & ~q_right)), int(np.sum(~fp_right & q_right))
    # (resamples, 3) counts of b-kind, c-kind and concordant samples in each bootstrap resample
    kinds = np.random.default_rng(seed).multinomial(n, [b / n, c / n, max(0.0, 1 - (b + c) / n)], size=resamples)
    drops = (kinds[:, 0] - kinds[:, 1]) / n
    upper = float(np.quantile(drops, confidence))
    p_worse = float(binomtest(b, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    return {"n": n, "b": b, "c": c, "p_fp": float(fp_right.mean()), "p": float(q_right.mean()),
            "drop": (b - c) / n, "drop_upper": upper, "margin": margin, "confidence": float(confidence),
            "non_inferior": upper < margin, "p_worse": p_worse}


# The gate where FP is no better than chance: no accuracy is above it, so I' (Eq. 3) is 0 everywhere.
NOTHING_PASSES = 1.0

RULES = {"delta": Delta, "span": Span, "error_ratio": ErrorRatio, "relative": Relative,
         "noise": Noise, "curve": Curve}
AUTO_RULES = tuple(r for r in RULES if r != "delta")   # the delta rule needs a hand-set delta
# distinct bit-widths (FP included) at which a rule reads P; the others read P_FP alone
BIT_WIDTHS_NEEDED = {"curve": 2}


def noise_sd(x: Inputs) -> float:
    """The noise rule's sigma (a fraction); see :class:`Noise`."""
    binomial = (math.sqrt(x.p_fp * (1 - x.p_fp) / x.n_test) if x.n_test else None)
    seeds = x.p_fp_seeds or ()
    sd = float(np.std(seeds, ddof=1)) if len(seeds) >= 2 else x.p_fp_sd
    if sd is not None:
        return max(sd, binomial) if binomial is not None else sd
    if binomial is None:
        raise ValueError("the noise rule needs P_FP of two seeds or more, or n_test (binomial noise)")
    return binomial


def rule_name(rule) -> str:
    """'noise' for Noise(...), 'auto:noise' or 'noise'."""
    return next(n for n, cls in RULES.items() if isinstance(parse(rule), cls))


def _name_of(text: str) -> str:
    return text[len(AUTO):] if text.startswith(AUTO) else text


def parse(rule) -> object:
    """A rule object from a rule object, 'auto:<rule>' or '<rule>' (defaults); ValueError listing
    the rules for any other value. 'delta' is refused here: it needs a hand-set delta."""
    if any(isinstance(rule, cls) for cls in RULES.values()):
        return rule
    name = _name_of(rule) if isinstance(rule, str) else None
    if name not in AUTO_RULES:
        raise ValueError(f"unknown Pthresh rule {rule!r}: give 'auto:<rule>' with <rule> one of "
                         f"{list(AUTO_RULES)} (or a delta)")
    return RULES[name]()


def is_auto(value) -> bool:
    """True for a string that names a rule ('auto:noise'); ValueError for any other 'auto:...'."""
    if isinstance(value, str) and value.startswith(AUTO):
        parse(value)
        return True
    return False


def check_auto(value, name: str = "p_thresh", bit_widths=None) -> None:
    """A notebook parameter: None or 'auto:<rule>'; ValueError naming ``name`` and the rules.
    ``bit_widths``: the bit-widths the run measures, FP included; a rule that needs P at more of
    them (``BIT_WIDTHS_NEEDED``) is refused before anything runs."""
    if value is None:
        return
    if not (isinstance(value, str) and value.startswith(AUTO)):
        raise ValueError(f"parameter {name!r}: None or 'auto:<rule>' with <rule> one of {list(AUTO_RULES)} "
                         f"(a hand-set gate: use delta); got {value!r}")
    try:
        parse(value)
    except ValueError as err:
        raise ValueError(f"parameter {name!r}: {err}") from None
    needed = BIT_WIDTHS_NEEDED.get(rule_name(value), 1)
    if bit_widths is not None and len(set(bit_widths)) < needed:
        raise ValueError(f"parameter {name!r}: the {rule_name(value)} rule needs P at {needed} bit-widths or more "
                         f"(FP included), but the run measures {sorted(set(bit_widths), reverse=True)}; "
                         f"add a quantized bit-width or choose another rule; got {value!r}")


def describe(rule) -> str:
    """'noise(k=2.0)': the rule's name and parameters, as records keep them."""
    if isinstance(rule, Paired):
        return f"paired(q={rule.q}, confidence={rule.confidence})"
    rule = parse(rule)
    if isinstance(rule, Span) and rule.f is None:
        return f"span(f={paper_span_fit()['f']:.4f}, fitted to the paper)"
    args = ", ".join(f"{f.name}={getattr(rule, f.name)}" for f in fields(rule))
    return f"{rule_name(rule)}({args})"


def gate(rule, *, num_classes: int, p_fp: float, accuracy_by_bits: dict | None = None,
         p_fp_seeds=None, n_test: int | None = None, p_fp_sd: float | None = None, class_counts=None) -> float:
    """Pthresh (a fraction) under ``rule``, clipped to [chance, P_FP] (chance: :func:`chance_level`);
    1.0 where P_FP <= chance, so that no configuration passes (I' = C max(P - 1, 0) / log2(T+1) = 0).
    The inputs are those of :class:`Inputs`; each rule reads only what its docstring names."""
    if isinstance(rule, Paired):
        raise ValueError("the paired rule has no single Pthresh: it tests each configuration against FP "
                         "from per-sample predictions (Paired.test)")
    rule = parse(rule)
    x = Inputs(num_classes, p_fp, accuracy_by_bits, p_fp_seeds, n_test, p_fp_sd, class_counts)
    if x.p_fp <= x.chance:
        return NOTHING_PASSES
    return float(min(max(rule.raw(x), x.chance), x.p_fp))


# --- the paper's deltas as a span share ---------------------------------------------------------

def span_share(num_classes: int, p_fp: float, p_thresh: float) -> float:
    """f = (Pthresh - 1/K) / (P_FP - 1/K): the share of the chance-to-FP span the gate keeps."""
    chance = 1.0 / num_classes
    if p_fp <= chance:
        raise ValueError(f"span share undefined: P_FP {p_fp} is at or below chance {chance}")
    return (p_thresh - chance) / (p_fp - chance)


def fit_span(points) -> dict:
    """Least-squares f over ``points`` [(K, P_FP, Pthresh), ...], residuals in Pthresh (accuracy
    fractions): minimizes sum (1/K + f x_i - Pthresh_i)^2 with x_i = P_FP - 1/K, so
    f = sum x_i y_i / sum x_i^2, y_i = Pthresh_i - 1/K. Returns f, each point's own share and
    residual (fitted minus given Pthresh)."""
    pts = [(int(k), float(p), float(t)) for k, p, t in points]
    if not pts:
        raise ValueError("fit_span needs at least one (K, P_FP, Pthresh) point")
    x = np.array([p - 1 / k for k, p, _ in pts])
    y = np.array([t - 1 / k for k, _, t in pts])
    if not np.any(x > 0):
        raise ValueError("fit_span: every P_FP is at chance; f is undefined")
    f = float(x @ y / (x @ x))
    return {"f": f, "shares": (y / np.where(x > 0, x, np.nan)).tolist(), "residuals": (f * x - y).tolist()}


def paper_points() -> dict:
    """{(model, dataset): (K, P_FP, Pthresh)} for the paper's conditions that state P_FP and a
    delta (Pthresh = max(1/K, P_FP - delta), as the paper computes it)."""
    from .conditions import CONDITIONS
    from .index import p_thresh
    out = {}
    for key, spec in CONDITIONS.items():
        rep = spec.reported
        if spec.delta is None or "P_FP" not in rep:
            continue
        k = num_classes(spec.dataset)
        out[key] = (k, rep["P_FP"], float(p_thresh(k, rep["P_FP"], spec.delta)))
    return out


def num_classes(dataset: str) -> int:
    """K of a data set the paper reports on: ``quide.analysis.protocol``'s specs for the image sets held as
    arrays, ImageNet-1K's 1000 classes, MMLU's four choices (``quide.analysis.paper.MMLU_CHOICES``)."""
    from .protocol import SPECS
    from .paper import MMLU_CHOICES
    if dataset in SPECS:
        return SPECS[dataset].num_classes
    return {"imagenet": 1000, "mmlu": MMLU_CHOICES}[dataset]


def paper_span_fit() -> dict:
    """:func:`fit_span` over the paper's conditions (:func:`paper_points`), with their keys."""
    points = paper_points()
    fit = fit_span(points.values())
    return {**fit, "conditions": list(points)}


# --- the gate of a run ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Gate:
    """Pthresh of a run and how it was set, as each of its records keeps it: ``delta`` where the
    paper's Eq. 4 set it (None otherwise), ``rule`` (e.g. 'noise(k=2.0)') where a rule did."""
    p_thresh: float
    delta: float | None = None
    rule: str | None = None

    def record_fields(self) -> dict:
        """The record's keys for this gate: p_thresh, delta and, for a rule, p_thresh_rule."""
        return {"p_thresh": self.p_thresh, "delta": self.delta, **({"p_thresh_rule": self.rule} if self.rule else {})}


def decide(p_thresh=None, *, delta: float | None = None, num_classes: int, p_fp: float,
           accuracy_by_bits: dict | None = None, n_test: int | None = None, class_counts=None) -> Gate:
    """The gate of one run, decided once from the run's measurements before its records are made
    (every experiment gates through here). ``p_thresh``:

    - None: the paper's Eq. 4, Pthresh = max(1/K, P_FP - delta) (``delta`` a fraction, required);
    - a fraction: Pthresh fixed (the paper's 60% for Llama-3-8B); the record's delta is None;
    - 'auto:<rule>' or a rule object: :func:`gate` on P_FP, ``accuracy_by_bits`` ({bit-width: P}
      of the run, which the curve rule reads), ``n_test`` (the noise rule's binomial noise) and
      ``class_counts`` (the test labels' class counts, for chance; 1/K where None).

    ValueError naming the input for anything else (the paired rule included: it is no run's gate).
    """
    from .index import p_thresh as eq4
    if isinstance(p_thresh, Paired):
        raise ValueError("p_thresh: the paired rule is not a run's gate; apply Paired.test to the records' "
                         "per-sample predictions after the run")
    if p_thresh is None:
        if delta is None:
            raise ValueError("no gate: give delta (Pthresh = max(1/K, P_FP - delta)), a fixed p_thresh or "
                             "'auto:<rule>'")
        return Gate(float(eq4(num_classes, p_fp, _fraction("delta", delta))), delta=float(delta))
    if isinstance(p_thresh, str) or any(isinstance(p_thresh, cls) for cls in RULES.values()):
        rule = parse(p_thresh)
        value = gate(rule, num_classes=num_classes, p_fp=p_fp, accuracy_by_bits=accuracy_by_bits, n_test=n_test,
                     class_counts=class_counts)
        return Gate(value, rule=describe(rule))
    return Gate(_fraction("p_thresh", p_thresh))
