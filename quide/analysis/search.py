"""Mixed-precision search over per-layer bit-widths: the paper's GA (Appendix B) and baselines.

A configuration is a tuple of per-layer bits in the order of ``quide.measure.quant.quantizable_layers``
(SimpleCNN: conv1, conv2, fc1, fc2). Searches never measure anything themselves: they ask a
:class:`SearchFitness` for a configuration's fitness. They share one :class:`Evaluator`, which measures
each configuration once (quantize, P, T) and remembers the record, so no configuration is
quantized, evaluated or timed twice however many searches ask; each search's fitness counts the distinct
configurations its own search asked for (the search's evaluations, against its budget).

Fitness functions map a record to a number >= 0 (roulette selection needs that):
:func:`gated_fitness` (I', the paper's) and :func:`haq_fitness` (accuracy under a size or latency
constraint, the objective of HAQ, Wang et al. 2019).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import index as qi

SEARCH_BITS = (16, 8, 4, 2)   # Appendix B's per-layer choices
METHODS = ("exhaustive", "ga", "random", "haq", "greedy")

Config = tuple


class BudgetExhausted(Exception):
    """A search asked for a new configuration after spending its evaluation budget."""


class Evaluator:
    """Measures configurations on demand, each once. ``measure(config) -> record`` (a dict with at
    least P, T_ms, C_paper, C_true, p_thresh)."""

    def __init__(self, measure: Callable[[Config], dict]):
        self.measure = measure
        self.records: dict[Config, dict] = {}

    @property
    def measurements(self) -> int:
        """How many times ``measure`` ran (= distinct configurations measured)."""
        return len(self.records)

    def record(self, config: Sequence[int]) -> dict:
        config = tuple(int(b) for b in config)
        if config not in self.records:
            self.records[config] = self.measure(config)
        return self.records[config]

    def search_fitness(self, fitness: Callable[[dict], float], budget: int | None = None) -> "SearchFitness":
        return SearchFitness(self, fitness, budget)


@dataclass
class SearchFitness:
    """One search's view of the evaluator: fitness per configuration, distinct ones counted."""
    evaluator: Evaluator
    fitness: Callable[[dict], float]
    budget: int | None = None
    seen: dict = field(default_factory=dict)   # config -> fitness, in the order first asked

    def __call__(self, config: Sequence[int]) -> float:
        config = tuple(int(b) for b in config)
        if config in self.seen:
            return self.seen[config]
        if self.budget is not None and len(self.seen) >= self.budget:
            raise BudgetExhausted(f"budget of {self.budget} evaluations spent")
        value = float(self.fitness(self.evaluator.record(config)))
        if not value >= 0:
            raise ValueError(f"fitness must be >= 0 (roulette selection); got {value} for {config}")
        self.seen[config] = value
        return value

    @property
    def evaluations(self) -> int:
        return len(self.seen)

    def best(self) -> tuple[Config, float]:
        """The best configuration asked for so far (the first one asked among equals)."""
        if not self.seen:
            raise ValueError("no configuration evaluated yet")
        config = max(self.seen, key=self.seen.get)
        return config, self.seen[config]


@dataclass
class SearchResult:
    method: str
    seed: int | None
    config: Config           # the configuration the method returns
    fitness: float           # its fitness under the method's own objective
    evaluations: int         # distinct configurations the method asked for
    history: list = field(default_factory=list)   # best fitness so far after each generation/step
    stopped_by_budget: bool = False
    path: list = field(default_factory=list)      # greedy: the configurations it moved through


# --- fitness functions ----------------------------------------------------------------------

def gated_fitness(compression: str = "paper") -> Callable[[dict], float]:
    """I' of a record, with the paper's C = 32/mean(bits) or the parameter-weighted true C."""
    if compression not in ("paper", "true"):
        raise ValueError(f"compression must be 'paper' or 'true'; got {compression!r}")
    key = "C_paper" if compression == "paper" else "C_true"

    def fitness(rec: dict) -> float:
        return float(qi.gated_index(rec[key], rec["P"], rec["T_ms"], rec["p_thresh"]))
    fitness.__name__ = f"I_gated[{compression}]"
    return fitness


def haq_fitness(min_compression: float = 4.0, max_latency_ms: float | None = None,
                compression: str = "paper") -> Callable[[dict], float]:
    """HAQ's objective (Wang et al. 2019): accuracy, for configurations within the resource
    constraint; 0 outside it (HAQ never leaves the constraint: its agent lowers bits until the
    budget holds). The constraint: C >= ``min_compression`` (model size), and, if given,
    T <= ``max_latency_ms``. HAQ's reward lambda*(P - P_fp) ranks configurations as P does."""
    if not min_compression > 0:
        raise ValueError(f"min_compression must be > 0; got {min_compression!r}")
    key = "C_paper" if compression == "paper" else "C_true"

    def fitness(rec: dict) -> float:
        within = rec[key] >= min_compression and (max_latency_ms is None or rec["T_ms"] <= max_latency_ms)
        return float(rec["P"]) if within else 0.0
    fitness.__name__ = f"haq[C>={min_compression}]"
    return fitness


# --- the paper's GA ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GAConfig:
    """Appendix B's hyperparameters."""
    population: int = 20
    generations: int = 30
    mutation: float = 0.15           # probability that a child has one gene redrawn
    elite: int = 5                   # best configurations copied unchanged into the next generation
    choices: tuple = SEARCH_BITS

    def __post_init__(self):
        for name in ("population", "generations", "elite"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GAConfig.{name} must be an int >= 1; got {value!r}")
        if self.elite > self.population:
            raise ValueError(f"GAConfig.elite ({self.elite}) exceeds the population ({self.population})")
        if not 0 <= self.mutation <= 1:
            raise ValueError(f"GAConfig.mutation must be a probability in [0, 1]; got {self.mutation!r}")
        if len(set(self.choices)) < 2:
            raise ValueError(f"GAConfig.choices needs at least two bit-widths; got {self.choices!r}")


def roulette(fitnesses: Sequence[float], rng: np.random.Generator, k: int = 2) -> list[int]:
    """``k`` indices drawn with replacement, with probability proportional to fitness. When every
    fitness is 0 (all configurations below the gate) there is no signal: draws are uniform."""
    f = np.asarray(fitnesses, dtype=float)
    total = f.sum()
    p = f / total if total > 0 else None
    return [int(i) for i in rng.choice(len(f), size=k, p=p)]


def genetic_search(fitness: SearchFitness, n_layers: int, config: GAConfig = GAConfig(), seed: int = 0,
                   method: str = "ga") -> SearchResult:
    """Algorithm 1 of the paper: random initial population; per generation, rank by fitness, keep
    the top ``elite``, fill up with children of roulette-chosen parents (uniform crossover, then with
    probability ``mutation`` one gene redrawn among the other choices); return the best of the
    final population. Deterministic for a seed. Stops early if the fitness's budget runs out."""
    rng = np.random.default_rng(seed)
    choices = list(config.choices)

    def redraw(gene):
        return int(rng.choice([b for b in choices if b != gene]))

    population = [tuple(int(b) for b in rng.choice(choices, size=n_layers)) for _ in range(config.population)]
    history = []
    try:
        for _ in range(config.generations):
            scores = [fitness(c) for c in population]
            order = sorted(range(len(population)), key=lambda i: -scores[i])   # stable among ties
            ranked, ranked_scores = [population[i] for i in order], [scores[i] for i in order]
            history.append(ranked_scores[0])
            nxt = ranked[:config.elite]
            while len(nxt) < config.population:
                i, j = roulette(ranked_scores, rng)
                mask = rng.random(n_layers) < 0.5
                child = [a if m else b for a, b, m in zip(ranked[i], ranked[j], mask)]
                if rng.random() < config.mutation:
                    g = int(rng.integers(n_layers))
                    child[g] = redraw(child[g])
                nxt.append(tuple(child))
            population = nxt
        scores = [fitness(c) for c in population]
        best = max(range(len(population)), key=lambda i: scores[i])
        return SearchResult(method, seed, population[best], scores[best], fitness.evaluations, history)
    except BudgetExhausted:
        cfg, value = fitness.best()
        return SearchResult(method, seed, cfg, value, fitness.evaluations, history, stopped_by_budget=True)


# --- baselines --------------------------------------------------------------------------------

def exhaustive_search(fitness: SearchFitness, n_layers: int, choices: Sequence[int] = SEARCH_BITS) -> SearchResult:
    """Every configuration in ``choices ** n_layers`` (256 for Appendix B's space)."""
    for cfg in itertools.product(choices, repeat=n_layers):
        fitness(cfg)
    cfg, value = fitness.best()
    return SearchResult("exhaustive", None, cfg, value, fitness.evaluations)


def random_search(fitness: SearchFitness, n_layers: int, budget: int, seed: int = 0,
                  choices: Sequence[int] = SEARCH_BITS) -> SearchResult:
    """``budget`` distinct configurations drawn uniformly (fewer if the space is smaller)."""
    rng = np.random.default_rng(seed)
    space = len(choices) ** n_layers
    history = []
    while fitness.evaluations < min(budget, space):
        fitness(tuple(int(b) for b in rng.choice(list(choices), size=n_layers)))
        history.append(fitness.best()[1])
    cfg, value = fitness.best()
    return SearchResult("random", seed, cfg, value, fitness.evaluations, history)


def greedy_search(fitness: SearchFitness, n_layers: int, sensitivity: Callable[[dict], float] | None = None,
                  choices: Sequence[int] = SEARCH_BITS) -> SearchResult:
    """Per-layer sensitivity heuristic: start with every layer at the widest choice; at each step try
    lowering each layer by one step alone and keep the move that costs the least accuracy (the
    least sensitive layer); repeat until nothing can be lowered or the budget is spent. Returns the
    best configuration (by ``fitness``) met on the way."""
    order = sorted(choices, reverse=True)
    sensitivity = sensitivity or (lambda rec: rec["P"])
    current = tuple([order[0]] * n_layers)
    history, path = [], [current]
    try:
        fitness(current)
        while True:
            moves = [current[:i] + (order[order.index(b) + 1],) + current[i + 1:]
                     for i, b in enumerate(current) if b != order[-1]]
            if not moves:
                break
            for m in moves:
                fitness(m)
            current = max(moves, key=lambda m: sensitivity(fitness.evaluator.record(m)))
            path.append(current)
            history.append(fitness.best()[1])
        stopped = False
    except BudgetExhausted:
        stopped = True
    cfg, value = fitness.best()
    return SearchResult("greedy", None, cfg, value, fitness.evaluations, history,
                        stopped_by_budget=stopped, path=path)


def rank_among(config: Sequence[int], scores: dict[Config, float]) -> int:
    """1-based rank of ``config`` among all scored configurations (1 = best; ties share the best
    rank: the number of configurations strictly better, plus one)."""
    value = scores[tuple(config)]
    return 1 + sum(1 for v in scores.values() if v > value)
