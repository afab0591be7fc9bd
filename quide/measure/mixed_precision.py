"""EXP-3: mixed-precision search with I' as fitness (paper Appendix B), with its baselines and
the exhaustive optimum, on the FP32 checkpoint of a PTQ-sweep run.

``run(params)`` loads (or trains, same recipe and seed: the same checkpoint the PTQ sweep makes)
the model, measures configurations through one memoized :class:`quide.analysis.search.Evaluator` and runs
the searches asked for, in this order: the exhaustive pass first (so its wall time is the cost of
measuring every configuration), then per search seed the GA, random search and the HAQ objective,
then the greedy heuristic. Searches after the first reuse measurements; each counts its own
evaluations. ``write(run)`` writes one record file per search.
"""
from __future__ import annotations

import dataclasses
import itertools
import numbers
import time
from dataclasses import dataclass, field

import pandas as pd

from ..analysis import pthresh
from ..analysis import search as qsearch
from ..analysis.protocol import PLACEMENTS, TIMED, WARMUP
from ..config import run_results_root
from ..notebook_params import refuse_bools
from .quant import quantizable_layers
from ..analysis.results import bits_label, named_run, write_records
from .sweep import ConfigMeasurer, SweepConfig, SweepParams, load_condition, model_for
from .train import seed_problem

EXPERIMENT = "mixed_precision"
MAX_EXHAUSTIVE = 4096   # configurations; beyond this the exhaustive pass is refused


def _as_tuple(value) -> tuple:
    return (value,) if isinstance(value, (str, numbers.Integral)) else tuple(value)


@dataclass(frozen=True)
class SearchParams:
    """The mixed-precision notebook's parameters. Validates itself; errors name the parameter."""
    model: str = "simplecnn"
    dataset: str = "cifar10"
    model_seed: int = 0              # which PTQ-sweep checkpoint (the paper: seed 0)
    search: tuple = qsearch.METHODS       # one method or several, of quide.analysis.search.METHODS
    seed: tuple = (0,)               # search seeds (GA, random, HAQ); one int or several
    population: int = 20             # GA, Appendix B
    generations: int = 30
    mutation: float = 0.15
    elite: int = 5
    budget: int | None = None        # evaluations for random/HAQ/greedy; None: the GA's, same seed
    delta: float | None = None       # None: the paper's delta for the condition
    p_thresh: str | None = None      # "auto:<rule>" (quide.analysis.pthresh, from P_FP alone: not curve)
    compression: str = "paper"       # fitness C: "paper" (32/mean bits) | "true" (parameter-weighted)
    haq_min_compression: float = 4.0 # HAQ's size constraint: C >= this (4.0 = uniform 8-bit size)
    calib_size: int = 512
    warmup: int = WARMUP
    timed: int = TIMED
    placement: str = "graph"
    device: str = "auto"
    profile: str = "paper"           # paper | smoke

    def __post_init__(self):
        refuse_bools(self)
        def bad(name, why):
            raise ValueError(f"parameter {name!r}: {why}; got {getattr(self, name)!r}")
        object.__setattr__(self, "search", _as_tuple(self.search))
        if not self.search or not set(self.search) <= set(qsearch.METHODS):
            bad("search", f"choose from {list(qsearch.METHODS)}")
        object.__setattr__(self, "seed", _as_tuple(self.seed))
        if not self.seed or any(map(seed_problem, self.seed)):
            bad("seed", "must be an int or a non-empty list of ints, each >= 0 and < 2**63")
        if self.budget is not None and not (isinstance(self.budget, numbers.Integral) and self.budget >= 1):
            bad("budget", "must be None or an int >= 1")
        if self.compression not in ("paper", "true"):
            bad("compression", "choose 'paper' or 'true'")
        if not (isinstance(self.haq_min_compression, numbers.Real) and self.haq_min_compression > 0):
            bad("haq_min_compression", "must be a number > 0")
        if self.placement not in PLACEMENTS:
            bad("placement", f"choose one of {list(PLACEMENTS)}")
        if self.p_thresh is not None and pthresh.is_auto(self.p_thresh) \
                and pthresh.rule_name(self.p_thresh) == "curve":
            bad("p_thresh", "the curve rule needs the uniform sweep's curve, which a search does not "
                            "measure before it starts; choose another rule")
        self.ga_config()       # GAConfig validates the GA's hyperparameters
        self.sweep_params()    # SweepParams validates model, dataset, model_seed, delta, ...

    def ga_config(self) -> qsearch.GAConfig:
        return qsearch.GAConfig(population=self.population, generations=self.generations,
                           mutation=self.mutation, elite=self.elite)

    def sweep_params(self) -> SweepParams:
        try:
            return SweepParams(model=self.model, dataset=self.dataset, seed=self.model_seed, bits=[32],
                               delta=self.delta, p_thresh=self.p_thresh, calib_size=self.calib_size, warmup=self.warmup,
                               timed=self.timed, placement=self.placement, compare_placements=False,
                               device=self.device, profile=self.profile)
        except ValueError as err:   # name our parameter, not the sweep's
            raise ValueError(str(err).replace("parameter 'seed'", "parameter 'model_seed'")) from None


@dataclass
class SearchRun:
    params: SearchParams
    evaluator: qsearch.Evaluator
    results: list = field(default_factory=list)          # SearchResult, in the order run
    fitness_of: dict = field(default_factory=dict)       # method -> fitness function
    exhaustive_wall_s: float | None = None               # measuring every configuration, seconds
    fp32: dict | None = None                             # the FP32 reference record
    layers: list = field(default_factory=list)           # layer names, the order of a configuration
    base_extra: dict = field(default_factory=dict)
    measurer: ConfigMeasurer | None = None               # holds every measured configuration's predictions

    def exhaustive_scores(self, compression: str | None = None) -> dict:
        """I' of every configuration measured, when the exhaustive pass ran (else {})."""
        if not any(r.method == "exhaustive" for r in self.results):
            return {}
        fit = qsearch.gated_fitness(compression or self.params.compression)
        return {cfg: fit(rec) for cfg, rec in self.evaluator.records.items()}


def search_measurer(params: SearchParams, trained=None, condition=None) -> ConfigMeasurer:
    """The measurer every search of ``params`` measures through: the PTQ-sweep checkpoint of the
    condition and ``model_seed`` (trained or loaded unless given), the sweep's calibration and
    latency settings; its records carry the profile, model seed and layer names."""
    sp = params.sweep_params()
    condition = condition or load_condition(sp)
    trained = trained or model_for(condition)
    extra = {"profile": params.profile, "model_seed": params.model_seed,
             "layers": list(quantizable_layers(trained.model))}
    return ConfigMeasurer(trained.model, condition.info, condition.splits, model_name=params.model,
                          seed=params.model_seed, delta=sp.resolved_delta, experiment=EXPERIMENT,
                          config=SweepConfig(bits=(32,), calib_size=sp.calib_size, placement=sp.placement,
                                             warmup=sp.warmup, timed=sp.timed, timer=sp.timer_config,
                                             host_timing="graph"),
                          train_meta=trained.meta, extra=extra, p_thresh=params.p_thresh)


def run(params: SearchParams, log=print) -> SearchRun:
    condition = load_condition(params.sweep_params())
    trained = model_for(condition)
    layers = list(quantizable_layers(trained.model))
    n_layers = len(layers)
    space = len(qsearch.SEARCH_BITS) ** n_layers
    if "exhaustive" in params.search and space > MAX_EXHAUSTIVE:
        raise ValueError(f"parameter 'search': exhaustive over {space} configurations of {params.model} "
                         f"is refused (limit {MAX_EXHAUSTIVE})")
    measurer = search_measurer(params, trained, condition)
    if space <= MAX_EXHAUSTIVE:   # every graph of the space (and FP32) timed in one interleaved block
        measurer.time_configs([32, *itertools.product(qsearch.SEARCH_BITS, repeat=n_layers)])
        if log:
            log(f"timed {len(measurer.timings)} distinct graphs for {space + 1} configurations "
                f"in {measurer.timing_wall_s:.1f} s")
    evaluator = qsearch.Evaluator(lambda cfg: measurer.measure(list(cfg)))
    fitness = qsearch.gated_fitness(params.compression)
    haq = qsearch.haq_fitness(params.haq_min_compression, compression=params.compression)
    out = SearchRun(params, evaluator, layers=layers, base_extra=measurer.extra, measurer=measurer,
                    fitness_of={"exhaustive": fitness, "ga": fitness, "random": fitness,
                                "greedy": fitness, "haq": haq})

    def done(result):
        out.results.append(result)
        if log:
            log(f"{result.method:10} seed {result.seed}: {bits_label(result.config)} "
                f"fitness {result.fitness:.4f}, {result.evaluations} evaluations "
                f"({evaluator.measurements} configurations measured so far)")

    if "exhaustive" in params.search:
        start = time.perf_counter()
        done(qsearch.exhaustive_search(evaluator.search_fitness(fitness), n_layers))
        out.exhaustive_wall_s = time.perf_counter() - start
    default_budget = params.population * (params.generations + 1)
    budgets = {}
    for seed in params.seed:
        if "ga" in params.search:
            res = qsearch.genetic_search(evaluator.search_fitness(fitness), n_layers, params.ga_config(), seed)
            budgets[seed] = res.evaluations
            done(res)
        budget = params.budget or budgets.get(seed, default_budget)
        if "random" in params.search:
            done(qsearch.random_search(evaluator.search_fitness(fitness, budget), n_layers, budget, seed))
        if "haq" in params.search:
            done(qsearch.genetic_search(evaluator.search_fitness(haq, budget), n_layers, params.ga_config(), seed,
                                   method="haq"))
    if "greedy" in params.search:
        budget = params.budget or budgets.get(params.seed[0], default_budget)
        done(qsearch.greedy_search(evaluator.search_fitness(fitness, budget), n_layers))
    out.fp32 = measurer.measure(32, search="reference")
    return out


def _search_record(run: SearchRun, result: qsearch.SearchResult) -> dict:
    rec = dict(run.evaluator.records[result.config])
    scores = run.exhaustive_scores()
    rec.update(search=result.method, search_seed=result.seed, fitness=result.fitness,
               fitness_name=run.fitness_of[result.method].__name__, evaluations=result.evaluations,
               stopped_by_budget=result.stopped_by_budget, history=result.history,
               path=[list(c) for c in result.path],
               rank_of_n=[qsearch.rank_among(result.config, scores), len(scores)] if scores else None)
    return rec


def resolved(params: SearchParams, method: str, search_seed, data_sha256: str | None = None) -> dict:
    """What decides one search's record file: the parameters as the run uses them (calibration and
    latency settings as the sweep resolves them, the condition's delta, the device type), with the
    one method and search seed of that file in place of the lists of them, and ``data_sha256`` (the
    content hash of the data the run read) where given."""
    sp = params.sweep_params()
    out = {k: v for k, v in dataclasses.asdict(params).items() if k not in ("search", "seed")}
    if params.p_thresh is None:   # runs made before p_thresh existed keep their run ids
        del out["p_thresh"]
    out.update(method=method, search_seed=search_seed, calib_size=sp.calib_size,
               delta=sp.resolved_delta if params.p_thresh is None else None,
               warmup=sp.warmup, timed=sp.timed, device=sp.torch_device.type)
    if data_sha256 is not None:
        out["data_sha256"] = data_sha256
    return out


def write(run: SearchRun, root=None) -> list:
    """One record file per search (the exhaustive pass: every configuration; the others: the
    configuration returned, with evaluations, history and rank) plus the FP32 reference, under
    ``root`` (None: :func:`quide.config.run_results_root`, a temporary folder for a smoke run unless
    ``$QUIDE_RESULTS`` names one); beside each, the predictions of its records' configurations
    only (the searches measured more)."""
    p = run.params
    root = run_results_root(p.profile, root)
    stem = f"{p.model}-{p.dataset}-seed{p.model_seed}"
    tag = f"trueC-{p.profile}" if p.compression == "true" else p.profile
    data_sha256 = run.fp32["provenance"]["data_sha256"]   # the data every measurement of the run read
    paths = []
    for result in run.results:
        if result.method == "exhaustive":
            fit = run.fitness_of["exhaustive"]
            records = [{**rec, "search": "exhaustive", "search_seed": None, "fitness": fit(rec),
                        "fitness_name": fit.__name__, "search_wall_s": run.exhaustive_wall_s}
                       for cfg, rec in run.evaluator.records.items()]
            name = f"{stem}-exhaustive-{tag}"
        else:
            records = [_search_record(run, result)]
            seed = "" if result.seed is None else f"-s{result.seed}"
            name = f"{stem}-{result.method}{seed}-{tag}"
        params = resolved(p, result.method, result.seed, data_sha256)
        paths.append(write_records(records, EXPERIMENT, named_run(name, params), root=root, run_params=params,
                                   predictions=run.measurer.predictions_of(records)))
    params = resolved(p, "reference", None, data_sha256)
    paths.append(write_records([run.fp32], EXPERIMENT, named_run(f"{stem}-fp32-{p.profile}", params), root=root,
                               run_params=params, predictions=run.measurer.predictions_of([run.fp32])))
    return paths


def summary(run: SearchRun) -> pd.DataFrame:
    """One row per search: its configuration, P, both C, T, I' (paper C and true C), its own
    fitness, rank among all configurations (when the exhaustive pass ran), evaluations."""
    rows = []
    scores_paper, scores_true = run.exhaustive_scores("paper"), run.exhaustive_scores("true")
    for result in run.results:
        rec = run.evaluator.records[result.config]
        rows.append({
            "search": result.method, "seed": result.seed, "bits": bits_label(result.config),
            "P": rec["P"], "C_paper": rec["C_paper"], "C_true": rec["C_true"], "T_ms": rec["T_ms"],
            "I_gated": rec["I_gated"], "I_gated_trueC": qsearch.gated_fitness("true")(rec),
            "fitness": result.fitness, "evaluations": result.evaluations,
            "rank_I_gated": qsearch.rank_among(result.config, scores_paper) if scores_paper else None,
            "rank_I_gated_trueC": qsearch.rank_among(result.config, scores_true) if scores_true else None,
        })
    return pd.DataFrame(rows)


def landscape(run: SearchRun) -> pd.DataFrame:
    """Every measured configuration with P, both C, T and I' under both compressions, best first."""
    true = qsearch.gated_fitness("true")
    rows = [{"bits": bits_label(cfg), "P": r["P"], "C_paper": r["C_paper"], "C_true": r["C_true"],
             "T_ms": r["T_ms"], "I_gated": r["I_gated"], "I_gated_trueC": true(r)}
            for cfg, r in run.evaluator.records.items()]
    return pd.DataFrame(rows).sort_values("I_gated", ascending=False, kind="stable").reset_index(drop=True)
