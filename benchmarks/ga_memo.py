"""The paper's GA with quide's memo (each configuration measured once) vs without (every fitness
call quantizes, evaluates and times again): measurements and wall time, same seed, same model.

Each arm measures through a measurer of its own, so neither reuses the other's timings; without the
memo the measurer's per-graph timings are also dropped before every call, so each call pays for a
full timing (the index's timer and the paper's protocol). ``--generations`` shortens the GA for
both arms alike (the paper's is 30). An earlier version shared one measurer between the arms, so the
second arm reused the first's timings and looked faster; its output is in the git history only.

The search runs on the seed-0 SimpleCNN of the PTQ sweep (trained or loaded as the notebooks do),
with the latency protocol's counts from ``--warmup``/``--timed`` and the test split as the profile
gives it. Without the memo every call measures afresh, so P is the same but T is re-timed and the
GA may follow a different path on near-ties; the script prints both results. From the repo root::

    QUIDE_DATA=/tmp/quide-data python benchmarks/ga_memo.py                       # GPU, paper profile
    QUIDE_DATA=/tmp/quide-data python benchmarks/ga_memo.py --profile smoke --device cpu
"""
from __future__ import annotations

import argparse
import time

from quide.analysis import search as qsearch
from quide.measure.latency import describe_device
from quide.measure.mixed_precision import SearchParams, load_condition, model_for, search_measurer


class Unmemoized(qsearch.Evaluator):
    """An evaluator that forgets: every request measures again (what a GA without a cache does)."""

    def __init__(self, measurer):
        super().__init__(lambda c: measurer.measure(list(c)))
        self.measurer = measurer
        self.calls = 0

    def record(self, config):
        self.calls += 1
        for cache in (self.measurer.signature_of, self.measurer.timings, self.measurer.timed_config):
            cache.clear()   # a GA without a memo times every configuration it is handed again
        return self.measure(tuple(int(b) for b in config))


class Uncached(qsearch.SearchFitness):
    """A search fitness that asks its evaluator on every call (no per-search cache either)."""

    def __call__(self, config):
        return float(self.fitness(self.evaluator.record(config)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--profile", default="paper", choices=["paper", "smoke"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0, help="GA seed")
    ap.add_argument("--generations", type=int, default=SearchParams.generations, help="GA generations, both arms")
    args = ap.parse_args()
    params = SearchParams(dataset=args.dataset, profile=args.profile, device=args.device, search=["ga"],
                          generations=args.generations)
    sp = params.sweep_params()
    condition = load_condition(sp)
    trained = model_for(condition)   # trained or loaded once; each arm gets a measurer of its own
    measurer = search_measurer(params, trained, condition)
    n_layers = len(measurer.extra["layers"])
    fitness = qsearch.gated_fitness(params.compression)
    print(f"GA (pop {params.population}, {params.generations} generations, seed {args.seed}) on "
          f"{measurer.data.source}, {params.profile} profile, {describe_device(sp.torch_device)[0]}; "
          f"index timer {sp.timer_config}; paper protocol {sp.warmup} + {sp.timed} passes")
    arms = (("memo", lambda m: qsearch.Evaluator(lambda c: m.measure(list(c))), qsearch.SearchFitness),
            ("no memo", Unmemoized, Uncached))
    for i, (name, make_evaluator, fitness_cls) in enumerate(arms):
        evaluator = make_evaluator(measurer if i == 0 else search_measurer(params, trained, condition))
        start = time.perf_counter()
        res = qsearch.genetic_search(fitness_cls(evaluator, fitness), n_layers, params.ga_config(), args.seed)
        wall = time.perf_counter() - start
        n = evaluator.calls if isinstance(evaluator, Unmemoized) else evaluator.measurements
        print(f"{name:8}: {n:4d} measurements, {wall:7.1f} s wall; best {'-'.join(map(str, res.config))} "
              f"(I' {res.fitness:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
