"""How often each conclusion holds when its inputs are resampled within their uncertainty.

The index divides by log2(T+1), so below a few ms I and I' move one for one with T; a Knee, a
ranking or an optimum read off one timing may be noise. Every conclusion here is recomputed on
``StabilityConfig.draws`` resampled copies of the records (default 1000, seeded numpy Generator)
and reported as the observed answer, the share of draws that give it and the alternatives.

Uncertainty model (per draw):

- **T**: each timing's T (one graph timed in one block; records that share it share the draw, as
  8, 4 and 2 bits do under fake quantization) is drawn from a normal around ``T_ms`` with sd =
  (hi - lo) / 3.92, where [lo, hi] is the record's 95% interval ``T_ci_ms``, truncated at T > 0
  (non-positive values are redrawn). Normal rather than log-normal because the new timer's
  interval is that of a median over interleaved rounds: narrow (about 2% of T) and near-symmetric,
  where the two agree, and the normal takes the interval as given. Records made before that timer
  have no ``T_ci_ms``: their host-pass spread [``T_p10_ms``, ``T_p90_ms``] stands in for it. That
  is the spread of single passes, far wider than the uncertainty of a median of 1000 of them, yet
  run to run those medians moved up to 2x: a deliberately wide stand-in, and every result built on
  it is labelled ``"legacy timing"``. A record with neither keeps its T (``"T fixed"``).
- **Machine**: that interval covers the noise within one timing block, not the shift between
  machines that reruns show. Each draw is one simulated machine: every T is then multiplied by
  exp(b + e), b ~ N(0, sigma_block) shared by the timings of one block and e ~ N(0, sigma_timing)
  per timing, the sigmas of the records' experiment and GPU model estimated from the committed
  reruns (:mod:`quide.analysis.machine`; ``StabilityConfig.machine``). Results drawn so carry the
  label ``TIMING_MACHINE``; with ``machine=None`` the factor is left out (``TIMING_CI``).
- **P**: P ~ Binomial(n_test, P) / n_test per record (the test set as a sample; a record without
  ``n_test`` keeps its P). Records are drawn independently, although configurations share one
  test set: for comparing two configurations this is conservative (their paired difference
  varies less).
- **Seeds**: where a condition has several seeds, each draw bootstraps trained models (as many
  as the analysed records have, drawn with replacement, the same pick for every bit-width, since
  one seed is one trained model) before the seed mean. Where the seeds grid
  (``reproduce/seeds.toml``, records under ``quide.config.seeds_root``;
  ``StabilityConfig.seeds``) has records of the condition made with the same run parameters (seed
  apart), the models are drawn from its seeds and any of the analysed records' seeds it lacks: a
  wider sample of training variation than the paper's three seeds, while the observed answer
  stays that of the analysed records (Table 1's). Each result names the sample it drew from
  (``Stability.sample``; empty: the analysed records' own seeds). With one seed (the EXP-3
  landscape: one model seed) only the lines above act. The records carry no repeated
  calibration draws, so there is none to bootstrap.
- **Derived**: Pthresh = max(1/K, P_FP - delta) with P_FP the draw's own FP32 P of that seed
  (fixed where a record sets Pthresh directly, or where no FP32 record is at hand), then I, I',
  ACP, ALS through :mod:`quide.analysis.index`, all vectorized over draws.

Verdict rule (the one place it lives; :func:`verdict`): a claim **holds robustly** when it holds
in at least ``ROBUST`` (95%) of draws and at the observed values, **fails robustly** when it holds
in fewer than ``NOISE_FLOOR`` (5%) of draws, and is **within noise** otherwise (it holds in some
draws but fewer than 95%, or fails at the observed values yet holds in at least 5%).
"""
from __future__ import annotations

import functools
import numbers
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import aggregate
from . import index as qi
from . import machine as qmachine
from . import search as qsearch
from ..config import seeds_root
from .results import load_records, run_variant

ROBUST = 0.95        # share of draws at and above which a claim holds robustly
NOISE_FLOOR = 0.05   # share of draws below which a claim fails robustly
HOLDS, WITHIN_NOISE, FAILS = "holds robustly", "within noise", "fails robustly"
Z95 = 1.959963984540054   # half-width of a 95% normal interval, in sd

TIMING_CI, TIMING_LEGACY, TIMING_FIXED = "T within its 95% CI", "legacy timing", "T fixed"
TIMING_MACHINE = "T within its 95% CI and the machine spread"   # the default: not repeated in texts
MACHINE_TERM = "machine spread"
SEEDS_GRID = "seeds grid"     # StabilityConfig.seeds: the seeds grid's records, where there are any
RERUNS = "reruns"             # StabilityConfig.machine: the spread estimated from the committed reruns
METRIC_COLUMNS = {m: f"{m}_mean" for m in aggregate.METRICS}   # I, I_gated, ACP, ALS


def verdict(holds_observed: bool, frequency: float) -> str:
    """HOLDS, WITHIN_NOISE or FAILS for a claim that holds (or not) at the observed values and in
    ``frequency`` (a fraction) of the draws. See the module docstring."""
    if not 0.0 <= frequency <= 1.0:
        raise ValueError(f"frequency must be a fraction in [0, 1]; got {frequency!r}")
    if frequency < NOISE_FLOOR:
        return FAILS
    if holds_observed and frequency >= ROBUST:
        return HOLDS
    return WITHIN_NOISE


@dataclass(frozen=True)
class StabilityConfig:
    """How many draws, from which seed; where trained models are drawn from (``seeds``:
    ``SEEDS_GRID``, the seeds grid's records at ``quide.config.seeds_root`` where it has any;
    a folder holding ``ptq_sweep/`` records; a DataFrame of such records; None: the analysed
    records' own seeds) and the machine-to-machine spread of T (``machine``: ``RERUNS``, estimated
    from the committed reruns; a :class:`quide.analysis.machine.MachineSpread`; None: T within
    its own interval only)."""
    draws: int = 1000
    seed: int = 0
    seeds: object = field(default=SEEDS_GRID, compare=False)
    machine: object = field(default=RERUNS, compare=False)

    def __post_init__(self):
        for name, low in (("draws", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"StabilityConfig.{name} must be an int >= {low}; got {value!r}")
        if not (self.seeds is None or isinstance(self.seeds, (str, Path, pd.DataFrame))):
            raise ValueError(f"StabilityConfig.seeds must be {SEEDS_GRID!r}, a folder, a DataFrame of records "
                             f"or None; got {type(self.seeds).__name__}")
        if not (self.machine is None or self.machine == RERUNS or isinstance(self.machine, qmachine.MachineSpread)):
            raise ValueError(f"StabilityConfig.machine must be {RERUNS!r}, a MachineSpread or None; "
                             f"got {self.machine!r}")

    def rng(self, *names) -> np.random.Generator:
        """The Generator for one condition (``names``: its key values): each condition draws from
        its own stream, so its answer does not depend on which other conditions are analysed."""
        return np.random.default_rng([self.seed, *(zlib.crc32(str(n).encode()) for n in names)])

    def machine_spread(self) -> qmachine.MachineSpread:
        """The spread the draws use (see the class docstring)."""
        if self.machine is None:
            return qmachine.MachineSpread.none()
        return qmachine.committed() if isinstance(self.machine, str) else self.machine

    def seed_pool(self) -> pd.DataFrame | None:
        """The records trained models are drawn from beside the analysed ones (profile paper
        where records say), or None: no seeds grid (see the class docstring)."""
        if self.seeds is None:
            return None
        if isinstance(self.seeds, pd.DataFrame):
            pool = self.seeds
        else:
            folder = seeds_root() if isinstance(self.seeds, str) and self.seeds == SEEDS_GRID else Path(self.seeds)
            pool = _grid_records(str(Path(folder).resolve()))
        if pool is None or pool.empty:
            return None
        pool = pool[pool["profile"] == "paper"] if "profile" in pool else pool
        if VARIANT not in pool:
            pool = _with_variant(pool)
        return pool


VARIANT = "_run_variant"   # a pool's run parameters apart from the seed, computed once per pool


def _with_variant(pool: pd.DataFrame) -> pd.DataFrame:
    params = pool["run_params"] if "run_params" in pool else pd.Series([None] * len(pool), index=pool.index)
    return pool.assign(**{VARIANT: params.map(run_variant)})


@functools.cache
def _grid_records(folder: str) -> pd.DataFrame | None:
    """The ptq_sweep records under ``folder`` (read once per process), None where there are none."""
    if not (Path(folder) / "ptq_sweep").is_dir():
        return None
    records = load_records(folder, "ptq_sweep")
    return None if records.empty else _with_variant(records)


@dataclass(frozen=True, eq=False)
class Stability:
    """One conclusion under resampling: the observed answer and the share of draws giving each
    answer (``shares``: answer -> fraction, largest first; None is the answer "no Knee/optimum")."""
    observed: object
    shares: pd.Series
    draws: int
    timing: str
    sample: str = ""    # where trained models were drawn from; "": the analysed records' own seeds

    def share(self, answer) -> float:
        """Fraction of draws whose answer is ``answer``."""
        return float(sum(s for a, s in self.shares.items() if a == answer))

    @property
    def frequency(self) -> float:
        """Fraction of draws that give the observed answer."""
        return self.share(self.observed)

    @property
    def verdict(self) -> str:
        return verdict(True, self.frequency)

    def text(self, answer=None, frequency: float | None = None) -> str:
        """'holds in 97% of 1000 draws' for ``answer`` (default: the observed one)."""
        f = frequency if frequency is not None else self.share(self.observed if answer is None else answer)
        notes = [n for n in (self.timing if self.timing != TIMING_MACHINE else "", self.sample) if n]
        return f"holds in {100 * f:.0f}% of {self.draws} draws" + (f" ({'; '.join(notes)})" if notes else "")

    def alternatives(self, top: int = 3) -> str:
        """'8: 62%; 16: 31%; 4: 7%': the most frequent answers (no '<' or '>': the book's HTML
        tables do not escape)."""
        return "; ".join(f"{_answer_text(a)}: {_percent(s)}" for a, s in self.shares.head(top).items())


@dataclass(frozen=True)
class ClaimStability:
    """A boolean claim under resampling: whether it holds observed, and in which share of draws."""
    observed: bool
    frequency: float
    draws: int
    timing: str
    sample: str = ""

    @property
    def verdict(self) -> str:
        return verdict(self.observed, self.frequency)

    def text(self, frequency: float | None = None) -> str:
        return Stability(self.observed, pd.Series(dtype=float), self.draws, self.timing, self.sample).text(
            frequency=self.frequency if frequency is None else frequency)


def sample_note(samples) -> str:
    """Which trained models the draws of a set of results (their ``sample`` values) came from, in
    a sentence for the pages."""
    used = sorted(set(samples) - {""})
    if not used:
        return ("Trained models are drawn from the analysed records' own seeds (Table 1's): the seeds grid "
                "has no records of these conditions yet.")
    some = "" if "" not in set(samples) else " where it has the condition (elsewhere from Table 1's seeds)"
    return f"Trained models are drawn from the seeds grid{some}: {', '.join(used)}."


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%" if 0 < share < 0.01 else f"{100 * share:.0f}%"


def _answer_text(answer) -> str:
    if answer is None:
        return "none"
    if isinstance(answer, tuple):
        return str(list(answer))   # an order, best first, as aggregate.orders writes it
    return str(answer)


def _stability(observed, answers: list, timing: str, sample: str = "") -> Stability:
    shares = pd.Series(answers, dtype=object).value_counts(normalize=True, dropna=False, sort=True)
    shares.index = [None if (isinstance(a, float) and np.isnan(a)) else a for a in shares.index]
    return Stability(observed, shares, len(answers), timing, sample)


# --- drawing ----------------------------------------------------------------------------------

def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    return df[name].to_numpy(float) if name in df else np.full(len(df), np.nan)


def _intervals(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, str]:
    """Per record [lo, hi] of T (ms) and the timing label of the set (see the module docstring)."""
    T = df["T_ms"].to_numpy(float)
    ci = df["T_ci_ms"] if "T_ci_ms" in df else pd.Series([None] * len(df), index=df.index)
    has_ci = np.array([isinstance(c, (list, tuple, np.ndarray)) and len(c) == 2 for c in ci])
    lo, hi = _column(df, "T_p10_ms"), _column(df, "T_p90_ms")
    if has_ci.any():
        lo[has_ci] = [float(c[0]) for c in ci[has_ci]]
        hi[has_ci] = [float(c[1]) for c in ci[has_ci]]
    fixed = np.isnan(lo) | np.isnan(hi)
    lo, hi = np.where(fixed, T, lo), np.where(fixed, T, hi)
    legacy = ~has_ci & ~fixed
    labels = [TIMING_LEGACY] * bool(legacy.any()) + [TIMING_FIXED] * bool(fixed.any())
    return lo, hi, " + ".join(labels) or TIMING_CI


def _draw_T(rng, T, lo, hi, draws: int) -> np.ndarray:
    """(draws, *T.shape) latencies, normal with sd = (hi-lo)/3.92 around T, truncated at > 0."""
    sd = np.broadcast_to((hi - lo) / (2 * Z95), T.shape)
    out = rng.normal(T, sd, size=(draws, *T.shape))
    bad = out <= 0
    while bad.any():   # T > 0, so each redraw succeeds with probability > 1/2
        out[bad] = rng.normal(np.broadcast_to(T, out.shape)[bad], np.broadcast_to(sd, out.shape)[bad])
        bad = out <= 0
    return out


def _draw_timings(rng, df: pd.DataFrame, config: StabilityConfig) -> tuple[np.ndarray, str]:
    """(draws, records) latencies of ``df``'s records and the timing label (see the module
    docstring): one draw per timing within its interval, times the machine factor exp(b + e)."""
    lo, hi, label = _intervals(df)
    block, timing = qmachine.timing_codes(df)
    first = pd.Series(np.arange(len(df))).groupby(timing).first().to_numpy()   # a record of each timing
    T = df["T_ms"].to_numpy(float)
    drawn = _draw_T(rng, T[first], lo[first], hi[first], config.draws)            # (draws, timings)
    spread = config.machine_spread()
    experiment = df["experiment"] if "experiment" in df else pd.Series([None] * len(df), index=df.index)
    gpu = df["prov_device"] if "prov_device" in df else pd.Series([None] * len(df), index=df.index)
    made = list(zip(experiment.iloc[first], gpu.iloc[first]))
    known = {k: spread.sigmas(*k)[:2] for k in set(made)}
    sigmas = np.array([known[k] for k in made], float).reshape(-1, 2)            # (timings, 2)
    if (sigmas > 0).any():
        blocks, of_timing = np.unique(block[first], return_inverse=True)
        sigma_block = pd.Series(sigmas[:, 0]).groupby(of_timing).max().to_numpy()   # per block
        shift = rng.normal(0.0, 1.0, (config.draws, len(blocks))) * sigma_block
        own = rng.normal(0.0, 1.0, (config.draws, len(first))) * sigmas[:, 1]
        drawn = drawn * np.exp(shift[:, of_timing] + own)
        label = TIMING_MACHINE if label == TIMING_CI else f"{label} + {MACHINE_TERM}"
    return drawn[:, timing], label


def _draw_P(rng, P, n_test, draws: int) -> np.ndarray:
    """(draws, *P.shape) accuracies, Binomial(n_test, P)/n_test; P kept where n_test is missing."""
    known = ~np.isnan(n_test)
    n = np.where(known, n_test, 1).astype(np.int64)
    drawn = rng.binomial(n, P, size=(draws, *P.shape)) / n
    return np.where(known, drawn, P)


def _gate(p_fp, num_classes, delta, p_thresh_fixed):
    """Pthresh per draw: from the drawn P_FP where delta is known, else the record's own."""
    with np.errstate(invalid="ignore"):
        from_delta = np.maximum(1.0 / num_classes, p_fp - np.nan_to_num(delta))
    return np.where(np.isnan(delta), p_thresh_fixed, from_delta)


def _metrics(C, P, T, p_thresh) -> dict[str, np.ndarray]:
    return {"I": qi.intelligence_index(C, P, T), "I_gated": qi.gated_index(C, P, T, p_thresh),
            "ACP": qi.acp(C, P), "ALS": qi.als(P, T)}


# --- PTQ sweeps: Table 1 and Table 4 ----------------------------------------------------------

@dataclass
class _ConditionDraws:
    keys: dict                      # condition key -> value
    table: pd.DataFrame             # aggregate.table1 of the condition (observed)
    labels: list                    # bit-widths in table order (ints where uniform)
    means: dict                     # metric -> (draws, n_bits) seed means per draw
    timing: str
    sample: str = ""


def _labels(table: pd.DataFrame) -> list:
    return [int(b) if str(b).isdigit() else b for b in table["bits"]]


@dataclass
class ConditionSample:
    """One condition's records on a (seeds, bits) grid, observed and drawn. ``P``, ``T``, ``C``
    (seeds, bits), NaN where a record is missing: the analysed records (Table 1's), whose
    ``seeds`` give the observed answer. The draws come from ``drawn``, the records trained models
    are drawn from (the seeds grid's with the analysed ones where the grid has the condition, else
    the analysed records themselves), on a (draw_seeds, bits) grid: ``draw_P``, ``draw_C``,
    ``draw_missing`` observed, ``P_draw``, ``T_draw`` (draws, draw_seeds, bits) drawn; ``pick``
    (draws, len(seeds)): the seed bootstrap, indices into ``draw_seeds`` of the seeds each draw
    averages over; ``grid`` maps values of ``drawn``'s records to (draw_seeds, bits); ``sample``
    names the drawn sample where it is not the analysed records' own."""
    keys: dict
    table: pd.DataFrame
    labels: list                    # bit labels in table order ("32", "8", ...)
    seeds: list
    missing: np.ndarray
    P: np.ndarray
    T: np.ndarray
    C: np.ndarray
    drawn: pd.DataFrame
    draw_seeds: list
    draw_missing: np.ndarray
    draw_P: np.ndarray
    draw_C: np.ndarray
    P_draw: np.ndarray
    T_draw: np.ndarray
    pick: np.ndarray
    grid: Callable                  # grid(values of the drawn records) -> (draw_seeds, bits)
    timing: str
    sample: str = ""


def _on_grid(g: pd.DataFrame, labels: list):
    """(seeds, missing (seeds, bits), grid function) of ``g``'s records on a (seeds, bits) grid."""
    seeds = sorted(g["seed"].unique())
    cell = {(s, b): i for i, (s, b) in enumerate(zip(g["seed"], g["bits_label"]))}
    where = np.array([[cell.get((s, b), -1) for b in labels] for s in seeds]).reshape(len(seeds), len(labels))
    missing = where < 0
    idx = np.where(missing, 0, where)

    def grid(values):
        return np.where(missing, np.nan, np.asarray(values, dtype=float)[idx])
    return seeds, missing, grid


def _pool_for(g: pd.DataFrame, keys: dict, pool: pd.DataFrame | None) -> pd.DataFrame | None:
    """The records to draw trained models from for the condition ``keys`` of the analysed records
    ``g``: the pool's records of that condition made with ``g``'s run parameters (seed apart:
    ``results.run_variant``), with ``g``'s records of seeds the pool lacks; None where the pool
    has none such (records without ``run_params`` never match: nothing says how they were made)."""
    if pool is None or "run_params" not in g:
        return None
    variant = run_variant(g["run_params"].iloc[0])
    if variant is None:
        return None
    mine = pool[pool[VARIANT] == variant]
    for k, v in keys.items():
        if k not in mine:
            return None
        mine = mine[mine[k].astype(str) == str(v)]
    if mine.empty:
        return None
    return pd.concat([mine.drop(columns=VARIANT), g[~g["seed"].isin(set(mine["seed"]))]], ignore_index=True)


def _sample(g: pd.DataFrame, keys: dict, config: StabilityConfig, rng, pool=None) -> ConditionSample:
    table = aggregate.table1(g)
    labels = list(table["bits"])
    seeds, missing, observed = _on_grid(g, labels)
    drawn = _pool_for(g, keys, pool)
    sample = "" if drawn is None else f"{drawn['seed'].nunique()} seeds with the seeds grid"
    drawn = g if drawn is None else drawn
    draw_seeds, draw_missing, grid = _on_grid(drawn, labels)
    P_draw = _draw_P(rng, np.nan_to_num(grid(drawn["P"])), grid(_column(drawn, "n_test")), config.draws)
    T_records, timing = _draw_timings(rng, drawn, config)                  # (draws, records)
    record = np.where(draw_missing, 0, np.nan_to_num(grid(np.arange(len(drawn))))).astype(int)
    T_draw = np.where(draw_missing, 1.0, T_records[:, record])              # (draws, draw_seeds, bits)
    pick = rng.integers(len(draw_seeds), size=(config.draws, len(seeds)))   # the seed bootstrap
    return ConditionSample(keys, table, labels, seeds, missing, observed(g["P"]), observed(g["T_ms"]),
                           observed(g["C_paper"]), drawn, draw_seeds, draw_missing, grid(drawn["P"]),
                           grid(drawn["C_paper"]), P_draw, T_draw, pick, grid, timing, sample)


def condition_samples(records, config: StabilityConfig = StabilityConfig()) -> list[ConditionSample]:
    """Per condition (``aggregate.CONDITION``), its records drawn as every function here draws
    them (same streams), for analyses that recompute Pthresh their own way (quide.analysis.pthresh_study)."""
    df = aggregate._records_frame(records)
    keys, groups = aggregate._condition_groups(df)
    pool = config.seed_pool()
    return [_sample(g, dict(zip(keys, cond)), config, config.rng(*cond), pool) for cond, g in groups]


def seed_means(sample: ConditionSample, per_record: np.ndarray) -> np.ndarray:
    """(draws, bits) means over each draw's bootstrapped seeds of (draws, seeds, bits) values."""
    return _nanmean(np.take_along_axis(per_record, sample.pick[:, :, None], axis=1))


def _condition_draws(g: pd.DataFrame, keys: dict, config: StabilityConfig, rng, pool=None) -> _ConditionDraws:
    s = _sample(g, keys, config, rng, pool)
    labels, drawn, P, P_draw = s.labels, s.drawn, s.draw_P, s.P_draw
    # P_FP of a seed is its own FP32 record's P, drawn alike; elsewhere the record's p_fp stays.
    p_fp = np.broadcast_to(s.grid(_column(drawn, "p_fp")), P_draw.shape).copy()
    if "32" in labels:
        col = labels.index("32")
        linked = np.isclose(s.grid(_column(drawn, "p_fp")), P[:, [col]])
        p_fp = np.where(linked, P_draw[:, :, [col]], p_fp)
    gate = _gate(p_fp, s.grid(drawn["num_classes"]), s.grid(_column(drawn, "delta")), s.grid(drawn["p_thresh"]))
    ok = ~s.draw_missing
    per_record = {m: np.full(P_draw.shape, np.nan) for m in METRIC_COLUMNS}
    for m, v in _metrics(s.draw_C[ok], P_draw[:, ok], s.T_draw[:, ok], gate[:, ok]).items():
        per_record[m][:, ok] = v
    means = {m: seed_means(s, v) for m, v in per_record.items()}
    return _ConditionDraws(keys, s.table, _labels(s.table), means, s.timing, s.sample)


def _nanmean(x: np.ndarray) -> np.ndarray:
    """Mean over axis 1 ignoring NaN; NaN where a bit-width is missing from every picked seed."""
    n = (~np.isnan(x)).sum(axis=1)
    return np.where(n > 0, np.nansum(x, axis=1) / np.maximum(n, 1), np.nan)


def sweep_draws(records, config: StabilityConfig = StabilityConfig()) -> list[_ConditionDraws]:
    """Per condition (``aggregate.CONDITION``), its observed Table 1 and the seed means of I, I',
    ACP and ALS in every draw."""
    df = aggregate._records_frame(records)
    keys, groups = aggregate._condition_groups(df)
    pool = config.seed_pool()
    return [_condition_draws(g, dict(zip(keys, cond)), config, config.rng(*cond), pool) for cond, g in groups]


def knee_stability(records, config: StabilityConfig = StabilityConfig(), draws=None) -> pd.DataFrame:
    """Per condition: the Table 1 Knee (peak seed-mean I', ``aggregate.mark_knee``'s rule), the
    share of draws giving it, the alternatives, and the :class:`Stability` itself. ``draws``:
    :func:`sweep_draws` of ``records`` where already at hand."""
    rows = []
    for c in draws if draws is not None else sweep_draws(records, config):
        knee = c.table.loc[c.table["knee"], "bits"]
        observed = _labels(c.table.loc[knee.index])[0] if len(knee) else None
        peaks = aggregate.peak_position(c.means["I_gated"])
        st = _stability(observed, [c.labels[p] if p >= 0 else None for p in peaks], c.timing, c.sample)
        rows.append({**c.keys, "knee": observed, "frequency": st.frequency, "alternatives": st.alternatives(),
                     "draws": st.draws, "timing": st.timing, "sample": st.sample, "stability": st})
    return pd.DataFrame(rows)


def ranking_stability(records, config: StabilityConfig = StabilityConfig(), draws=None) -> pd.DataFrame:
    """Per condition and metric (I, I', ACP, ALS): the Table 4 order (bit-widths best first on
    seed means, as ``aggregate.orders``), the share of draws with the identical full order, the
    alternatives, and per bit-width the share of draws in which it keeps its observed rank.
    ``draws``: :func:`sweep_draws` of ``records`` where already at hand."""
    rows = []
    for c in draws if draws is not None else sweep_draws(records, config):
        for m, name in aggregate.METRICS.items():
            observed_scores = c.table[METRIC_COLUMNS[m]].to_numpy(float)
            order = tuple(qi.ranking(c.labels, observed_scores))
            drawn = c.means[m]
            perm = np.argsort(-drawn, axis=1, kind="stable")                 # = index.ranking
            st = _stability(order, [tuple(c.labels[i] for i in row) for row in perm], c.timing, c.sample)
            ranks = 1 + (drawn[:, None, :] > drawn[:, :, None]).sum(axis=-1)  # = index.rank ('min')
            held = (ranks == qi.rank(observed_scores)[None, :]).mean(axis=0)
            rows.append({**c.keys, "metric": name, "order": list(order), "frequency": st.frequency,
                         "alternatives": st.alternatives(),
                         "rank_held": dict(zip(c.labels, held.round(4).tolist())),
                         "draws": st.draws, "timing": st.timing, "sample": st.sample, "stability": st})
    return pd.DataFrame(rows)


def drawn_tables(records, config: StabilityConfig = StabilityConfig()):
    """Observed Table 1 (``aggregate.table1``, without the std columns: one draw has no spread),
    a generator of one resampled copy per draw (the metric means replaced by the draw's, the Knee
    re-marked), and the timing label."""
    base, tables, conditions = _tables_of(sweep_draws(records, config), config.draws)
    return base, tables, _joined(c.timing for c in conditions)


def _joined(labels) -> str:
    return " + ".join(sorted(set(labels) - {""}))


def _tables_of(conditions: list[_ConditionDraws], draws: int):
    base = pd.concat([c.table for c in conditions], ignore_index=True)
    base = base[[c for c in base if not c.endswith("_std")]]
    n_rows = len(base)
    every = base.loc[np.tile(base.index, draws)].reset_index(drop=True)   # all draws, stacked
    for m, col in METRIC_COLUMNS.items():
        every[col] = np.concatenate([c.means[m] for c in conditions], axis=1).ravel()
    knee = np.zeros((draws, n_rows), dtype=bool)
    start = 0
    for c in conditions:
        peaks = aggregate.peak_position(c.means["I_gated"])
        has = peaks >= 0
        knee[np.flatnonzero(has), start + peaks[has]] = True
        start += len(c.labels)
    every["knee"] = knee.ravel()
    tables = (every.iloc[d * n_rows:(d + 1) * n_rows].set_axis(base.index) for d in range(draws))
    return base, tables, conditions


def claim_stability(records, claim_fn: Callable[[pd.DataFrame], bool],
                    config: StabilityConfig = StabilityConfig()) -> ClaimStability:
    """How often ``claim_fn(table)`` holds, ``table`` being Table 1 (``aggregate.table1`` shape)
    of ``records`` at the observed values and in each draw (see :func:`drawn_tables`)."""
    base, tables, conditions = _tables_of(sweep_draws(records, config), config.draws)
    held = [bool(claim_fn(t)) for t in tables]
    return ClaimStability(bool(claim_fn(base)), float(np.mean(held)), len(held),
                          _joined(c.timing for c in conditions), _joined(c.sample for c in conditions))


# --- EXP-3: the exhaustive landscape -----------------------------------------------------------

@dataclass
class _LandscapeDraws:
    model: str
    dataset: str
    labels: list                    # configuration labels ("8-4-8-4"), exhaustive order
    configs: list                   # configuration tuples
    scores: dict                    # compression -> (draws, n) I' per draw
    observed: dict                  # compression -> (n,) observed I'
    timing: str


def landscape_draws(records: pd.DataFrame, config: StabilityConfig = StabilityConfig()) -> list[_LandscapeDraws]:
    """Per (model, dataset) exhaustive pass of ``results.load_records(experiment="mixed_precision")``:
    I' of every configuration under the paper's and the true C, observed and per draw (the same
    P and T draws for both C's). P_FP is drawn from the FP32 reference record where one is there."""
    out = []
    exhaustive = records[records["search"] == "exhaustive"]
    for (model, dataset), g in exhaustive.groupby(["model", "dataset"], sort=True):
        rng = config.rng(model, dataset)
        P = g["P"].to_numpy(float)
        P_draw = _draw_P(rng, P, _column(g, "n_test"), config.draws)
        T_draw, timing = _draw_timings(rng, g, config)
        p_fp = np.broadcast_to(_column(g, "p_fp"), P_draw.shape)
        ref = records[(records["model"] == model) & (records["dataset"] == dataset)
                      & (records["search"] == "reference")]
        if len(ref) == 1 and np.allclose(p_fp[0], ref["P"].iloc[0]):
            p_fp = _draw_P(rng, ref["P"].to_numpy(float), _column(ref, "n_test"), config.draws)[:, :1]
        gate = _gate(p_fp, g["num_classes"].to_numpy(float), _column(g, "delta"), g["p_thresh"].to_numpy(float))
        scores, observed = {}, {}
        for compression, col in (("paper", "C_paper"), ("true", "C_true")):
            C = g[col].to_numpy(float)
            scores[compression] = qi.gated_index(C, P_draw, T_draw, gate)
            fit = qsearch.gated_fitness(compression)
            observed[compression] = np.array([fit(r) for r in g.to_dict("records")])
        out.append(_LandscapeDraws(model, dataset, list(g["bits_label"]),
                                   [tuple(int(b) for b in bits) for bits in g["bits"]], scores, observed, timing))
    return out


def optimum_stability(records: pd.DataFrame, config: StabilityConfig = StabilityConfig(), draws=None
                      ) -> pd.DataFrame:
    """Per data set and fitness C (paper, true): the exhaustive optimum under I' (as
    ``mixed_precision_tables.optima``), the share of draws in which it stays the optimum, the
    alternatives. ``draws``: :func:`landscape_draws` of ``records`` where already at hand."""
    rows = []
    for land in draws if draws is not None else landscape_draws(records, config):
        for compression in ("paper", "true"):
            peak = int(aggregate.peak_position(land.observed[compression]))
            observed = land.labels[peak] if peak >= 0 else None
            peaks = aggregate.peak_position(land.scores[compression])
            st = _stability(observed, [land.labels[p] if p >= 0 else None for p in peaks], land.timing)
            rows.append({"model": land.model, "dataset": land.dataset, "fitness C": compression,
                         "optimum": observed, "frequency": st.frequency, "alternatives": st.alternatives(),
                         "draws": st.draws, "timing": st.timing, "stability": st})
    return pd.DataFrame(rows)


def search_rank_stability(records: pd.DataFrame, config: StabilityConfig = StabilityConfig(),
                          compression: str = "paper", draws=None) -> pd.DataFrame:
    """Per search record (GA, random, HAQ, greedy; each seed): its configuration's rank among the
    exhaustive configurations under I' (``compression``'s C): observed (``search.rank_among``),
    the share of draws in which it is rank 1, the median and the 95% range (2.5th-97.5th
    percentile) of its rank over draws. ``draws``: :func:`landscape_draws` of ``records`` where
    already at hand."""
    if compression not in ("paper", "true"):
        raise ValueError(f"compression must be 'paper' or 'true'; got {compression!r}")
    rows = []
    picks = records[~records["search"].isin(["exhaustive", "reference"])]
    for land in draws if draws is not None else landscape_draws(records, config):
        where = {cfg: i for i, cfg in enumerate(land.configs)}
        observed = dict(zip(land.configs, land.observed[compression]))
        drawn = land.scores[compression]
        mine = picks[(picks["model"] == land.model) & (picks["dataset"] == land.dataset)]
        for _, r in mine.iterrows():
            cfg = tuple(int(b) for b in r["bits"])
            ranks = 1 + (drawn > drawn[:, [where[cfg]]]).sum(axis=1)
            st = _stability(qsearch.rank_among(cfg, observed), ranks.tolist(), land.timing)
            rows.append({"model": land.model, "dataset": land.dataset, "search": r["search"],
                         "seed": r.get("search_seed"),
                         "bits": r["bits_label"], "rank": st.observed, "n_configs": len(land.configs),
                         "share_rank_1": st.share(1), "median_rank": float(np.median(ranks)),
                         "rank_95": (int(np.percentile(ranks, 2.5, method="lower")),
                                     int(np.percentile(ranks, 97.5, method="higher"))),
                         "draws": st.draws, "timing": st.timing, "stability": st})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["seed"] = out["seed"].astype("Int64")
    order = {m: i for i, m in enumerate(qsearch.METHODS)}
    def key(column):
        return column.map(order) if column.name == "search" else column
    return out.sort_values(["model", "dataset", "search", "seed"], key=key, kind="stable").reset_index(drop=True)
