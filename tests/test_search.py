"""Mixed-precision search (quide.analysis.search) on synthetic fitness landscapes, CPU only."""
import itertools

import numpy as np
import pytest

from quide.analysis import search as qsearch

OPTIMUM = (8, 8, 8, 4)


def synthetic_record(config):
    """A record whose I' peaks at OPTIMUM alone: P falls as bits fall, C rises, T is constant."""
    penalty = sum(abs(np.log2(b) - np.log2(o)) for b, o in zip(config, OPTIMUM))
    return {"P": 0.9 - 0.05 * penalty, "T_ms": 1.0, "C_paper": 32 / np.mean(config),
            "C_true": 32 / np.mean(config), "p_thresh": 0.5, "config": config}


def peaked(rec):
    """Known maximum 1.0 at OPTIMUM, smaller everywhere else (>= 0)."""
    return 1.0 / (1.0 + 10 * (0.9 - rec["P"]))


def make_evaluator():
    calls = []

    def measure(config):
        calls.append(config)
        return synthetic_record(config)
    return qsearch.Evaluator(measure), calls


def test_ga_finds_the_known_optimum():
    ev, _ = make_evaluator()
    result = qsearch.genetic_search(ev.search_fitness(peaked), n_layers=4, seed=0)
    assert result.config == OPTIMUM and result.fitness == pytest.approx(1.0)
    assert result.evaluations < 256   # it did not need the whole space


@pytest.mark.parametrize("seed", [0, 42, 123])
def test_ga_is_deterministic_per_seed(seed):
    runs = []
    for _ in range(2):
        ev, calls = make_evaluator()
        r = qsearch.genetic_search(ev.search_fitness(peaked), n_layers=4, seed=seed)
        runs.append((r.config, r.history, calls))
    assert runs[0] == runs[1]


def test_different_seeds_explore_differently():
    orders = []
    for seed in (0, 1):
        ev, calls = make_evaluator()
        qsearch.genetic_search(ev.search_fitness(peaked), n_layers=4, seed=seed)
        orders.append(calls[:20])
    assert orders[0] != orders[1]


def test_elitism_keeps_the_best():
    ev, _ = make_evaluator()
    noisy = lambda rec: float(np.random.default_rng(abs(hash(rec["config"])) % 2**32).random())  # noqa: E731
    r = qsearch.genetic_search(ev.search_fitness(noisy), n_layers=4, config=qsearch.GAConfig(mutation=1.0), seed=3)
    assert all(b >= a for a, b in zip(r.history, r.history[1:]))   # best never lost
    assert r.fitness >= r.history[-1]


def test_memo_measures_each_configuration_once():
    ev, calls = make_evaluator()
    ga = ev.search_fitness(qsearch.gated_fitness())
    qsearch.genetic_search(ga, n_layers=4, seed=0)
    # 20 x 31 fitness requests, far fewer distinct configurations, each measured once
    assert len(calls) == len(set(calls)) == ga.evaluations == ev.measurements
    before = len(calls)
    qsearch.exhaustive_search(ev.search_fitness(qsearch.gated_fitness()), n_layers=4)
    assert len(calls) == 256 and len(set(calls)) == 256   # only the missing ones were measured
    assert before < 256


def test_roulette_with_all_zero_fitness_draws_uniformly():
    rng = np.random.default_rng(0)
    draws = [i for _ in range(4000) for i in qsearch.roulette([0.0] * 4, rng)]
    counts = np.bincount(draws, minlength=4)
    assert counts.min() > 1800 and counts.max() < 2200
    assert qsearch.roulette([0.0, 0.0, 3.0], rng, k=50) == [2] * 50   # proportional: only nonzero wins


def test_ga_copes_when_every_configuration_is_gated_to_zero():
    ev, _ = make_evaluator()
    r = qsearch.genetic_search(ev.search_fitness(lambda rec: 0.0), n_layers=4, seed=0)
    assert r.fitness == 0.0 and len(r.config) == 4


def test_negative_fitness_is_refused():
    ev, _ = make_evaluator()
    with pytest.raises(ValueError, match=">= 0"):
        qsearch.genetic_search(ev.search_fitness(lambda rec: -1.0), n_layers=4, seed=0)


def test_budget_stops_a_search_and_is_counted():
    ev, _ = make_evaluator()
    r = qsearch.genetic_search(ev.search_fitness(peaked, budget=15), n_layers=4, seed=0)
    assert r.stopped_by_budget and r.evaluations == 15
    r = qsearch.random_search(ev.search_fitness(peaked, budget=30), n_layers=4, budget=30, seed=0)
    assert r.evaluations == 30 and not r.stopped_by_budget


def test_exhaustive_finds_the_optimum_and_ranks():
    ev, _ = make_evaluator()
    t = ev.search_fitness(peaked)
    r = qsearch.exhaustive_search(t, n_layers=4)
    assert r.config == OPTIMUM and r.evaluations == 256
    assert qsearch.rank_among(OPTIMUM, t.seen) == 1
    worst = min(t.seen, key=t.seen.get)
    assert qsearch.rank_among(worst, t.seen) == 256 - list(t.seen.values()).count(t.seen[worst]) + 1


def test_greedy_lowers_the_least_sensitive_layer_first():
    # accuracy depends on layer 0 only: greedy lowers layers 1..3 to 2 bits before touching layer 0
    def measure(config):
        return {"P": {16: 0.9, 8: 0.89, 4: 0.6, 2: 0.1}[config[0]], "T_ms": 1.0,
                "C_paper": 32 / np.mean(config), "C_true": 32 / np.mean(config), "p_thresh": 0.5}
    ev = qsearch.Evaluator(measure)
    r = qsearch.greedy_search(ev.search_fitness(qsearch.gated_fitness()), n_layers=4)
    assert r.path[0] == (16, 16, 16, 16) and r.path[-1] == (2, 2, 2, 2) and len(r.path) == 13
    assert all(c[1:] == (2, 2, 2) for c in r.path if c[0] < 16)   # layer 0 lowered last
    assert r.config == (8, 2, 2, 2)          # best I' on the path: layer 0 kept at 8 bits
    assert not r.stopped_by_budget


def test_gated_fitness_paper_vs_true_compression():
    rec = {"P": 0.8, "T_ms": 1.0, "C_paper": 4.0, "C_true": 3.0, "p_thresh": 0.5}
    assert qsearch.gated_fitness("paper")(rec) == pytest.approx(4.0 * 0.3)
    assert qsearch.gated_fitness("true")(rec) == pytest.approx(3.0 * 0.3)
    with pytest.raises(ValueError, match="compression"):
        qsearch.gated_fitness("weighted")


def test_haq_fitness_is_accuracy_within_the_constraint():
    f = qsearch.haq_fitness(min_compression=4.0, max_latency_ms=2.0)
    assert f({"P": 0.7, "T_ms": 1.0, "C_paper": 4.57}) == 0.7
    assert f({"P": 0.9, "T_ms": 1.0, "C_paper": 2.0}) == 0.0   # too large a model
    assert f({"P": 0.9, "T_ms": 3.0, "C_paper": 8.0}) == 0.0   # too slow


@pytest.mark.parametrize("kwargs, message", [({"population": 0}, "population"), ({"elite": 30}, "elite"),
                                             ({"mutation": 1.5}, "mutation"), ({"choices": (8, 8)}, "choices"),
                                             ({"generations": 2.5}, "generations")])
def test_ga_config_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        qsearch.GAConfig(**kwargs)
