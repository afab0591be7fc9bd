"""The ablation of the 4-bit gap, measured: every PTQ choice of ``quide.analysis.ablation.CHOICES``
on the PTQ sweep's checkpoints.

For each seed, :func:`run_seed` loads (or trains: the same recipe, seed and data, so the same
checkpoint file as the sweep's, :func:`quide.measure.sweep.train_or_load`) the FP32 model, measures
FP32 and real FP16 once (no choice changes them), then quantizes the model at every bit-width below
16 under each choice and evaluates P on the whole test split. Calibration images are drawn with the
seed as the sweep draws them, so the baseline repeats the sweep's graph-placement models.

T: the index needs it, the Knee between 4 and 8 bits does not (fake quantization runs one graph at 8,
4 and 2 bits, so T(8) = T(4); :mod:`quide.analysis.knee_rule`). Most choices change only values (weights,
ranges), not the graph, so the distinct graphs of a seed are few: each is timed once, all in one
interleaved block of the sweep's timer with fewer rounds and passes (``TIMER``), and shared by
every bit-width and choice that runs it. Records say so in ``T_note``; T is the latency of the
simulated (fake-quantized) model.

:func:`write` puts one record file per (seed, choice) under ``<results root>/ptq_ablation/``, each with
every bit-width (its FP32 record included, whose P is P_FP).
"""
from __future__ import annotations

import dataclasses
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..analysis import ablation as qa
from ..analysis import pthresh
from ..analysis.protocol import BATCH, SUPPORTED_BITS, TimerConfig
from ..analysis.predictions import Predictions, accuracy
from ..analysis.results import check_experiment, make_record, named_run, write_records
from ..config import run_results_root
from ..notebook_params import refuse_bools
from .data import calibration_indices, index_hash
from .latency import graph_signature, time_models
from .provenance import provenance
from .quant import PTQConfig, quantize
from .sweep import PAPER_BITS, PROFILES, SMOKE, SweepParams, train_summary, load_condition, model_for
from .train import predict, seed_problem

EXPERIMENT = qa.EXPERIMENT
# One block per seed times every distinct graph: 7 rounds of 20 graph replays (the sweep's: 21 of 50,
# three captures, up to four blocks); the smoke profile's fewer still.
TIMER = TimerConfig(rounds=7, passes=20, warmup=5, captures=1, attempts=1)
SMOKE_TIMER = TimerConfig(rounds=6, passes=2, warmup=1, captures=1, attempts=1)
T_NOTE = ("T per distinct graph, timed once per model and seed in one interleaved block of {rounds} rounds x "
          "{passes} CUDA-graph replays of a batch of {batch} (host clock off CUDA), and shared by every bit-width "
          "and choice that runs the same graph: T(8) = T(4) = T(2) for each choice")


def _as_tuple(value) -> tuple:
    return (value,) if isinstance(value, (str, numbers.Integral)) else tuple(value)


@dataclass(frozen=True)
class AblationParams:
    """The ablation notebook's parameters, validated; a bad one raises ValueError naming it."""
    model: str = "resnet18_cifar"
    dataset: str = qa.DATASET
    seed: tuple = (0, 42, 123)      # the paper's seeds; one int or several
    choices: tuple = ("all",)       # "all" (every choice that changes the model) or names of qa.CHOICES
    bits: tuple = PAPER_BITS        # must hold 32, 8 and 4 (the d4 rule reads them)
    delta: float | None = None      # None: the paper's delta for the condition
    device: str = "auto"
    profile: str = "paper"          # smoke | paper
    experiment: str = EXPERIMENT    # records go to <results root>/<experiment>/

    def __post_init__(self):
        refuse_bools(self)

        def bad(name, why):
            raise ValueError(f"parameter {name!r}: {why}; got {getattr(self, name)!r}")
        object.__setattr__(self, "seed", _as_tuple(self.seed))
        if not self.seed or any(map(seed_problem, self.seed)) or len(set(self.seed)) != len(self.seed):
            bad("seed", "must be an int or a list of distinct ints, each >= 0 and < 2**63")
        object.__setattr__(self, "choices", _as_tuple(self.choices))
        names = [c.name for c in qa.choices_for(self.model)] if self.choices == ("all",) else list(self.choices)
        unknown = [n for n in names if n not in qa.BY_NAME]
        if unknown or not names or len(set(names)) != len(names):
            bad("choices", f"'all' or distinct names of {list(qa.BY_NAME)}")
        idle = [n for n in names if not qa.choice(n).applies_to(self.model)]
        if idle:
            bad("choices", f"{idle} change nothing for {self.model}")
        object.__setattr__(self, "choices", tuple(names))
        if isinstance(self.bits, (str, bytes)) or not hasattr(self.bits, "__iter__"):
            bad("bits", "must be a list of bit-widths")
        bits = list(self.bits)
        if not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) and b in SUPPORTED_BITS for b in bits):
            bad("bits", "every entry must be an int in 2..16 or 32")
        if not {32, 8, 4} <= set(bits) or len(set(bits)) != len(bits):
            bad("bits", "must hold 32, 8 and 4 (the d4 rule reads P at each), each once")
        object.__setattr__(self, "bits", tuple(int(b) for b in bits))
        if self.profile not in PROFILES:
            bad("profile", f"choose one of {list(PROFILES)}")
        check_experiment(self.experiment)
        for seed in self.seed:    # SweepParams checks model, dataset, delta, device and calib_size
            self.sweep_params(seed)

    def ptq_config(self, name: str, bits: int) -> PTQConfig:
        """The PTQConfig of choice ``name`` at ``bits``: the sweep's defaults with the choice's fields
        set; the smoke profile caps the calibration images as the sweep's does."""
        fields = dict(qa.choice(name).overrides)
        calib = fields.get("calib_size", PTQConfig.calib_size)
        if self.profile == "smoke":
            calib = min(calib, SMOKE["calib_size"])
        return PTQConfig(bits=bits, **{**fields, "calib_size": calib})

    def sweep_params(self, seed: int | None = None) -> SweepParams:
        """The PTQ sweep's parameters for ``seed`` (the first one if None): its condition, recipe,
        checkpoint and delta are this run's; calib_size is the largest any choice draws."""
        calib = max(self.ptq_config(n, 8).calib_size for n in self.choices)
        try:
            return SweepParams(model=self.model, dataset=self.dataset, seed=self.seed[0] if seed is None else seed,
                               bits=(32,), delta=self.delta, calib_size=calib, compare_placements=False,
                               device=self.device, profile=self.profile, experiment=self.experiment)
        except ValueError as err:   # a calib_size this data set cannot give names the choice that asks
            if "calib_size" in str(err):
                raise ValueError(f"parameter 'choices': a choice draws {calib} calibration images: {err}") from None
            raise

    @property
    def timer(self) -> TimerConfig:
        return SMOKE_TIMER if self.profile == "smoke" else TIMER

    @property
    def quantized_bits(self) -> tuple[int, ...]:
        return tuple(b for b in self.bits if b < 16)

    def resolved(self, seed: int, name: str, data_sha256: str | None = None) -> dict:
        """What decides the record file of (seed, choice): every parameter as the run uses it, the
        choice's whole PTQConfig (bits left out), the timer, and the data's content hash where given."""
        sp = self.sweep_params(seed)
        recipe = sp.recipe()
        config = {k: v for k, v in dataclasses.asdict(self.ptq_config(name, 8)).items() if k != "bits"}
        params = {"experiment": self.experiment, "model": self.model, "dataset": self.dataset, "seed": seed,
                  "bits": list(self.bits), "delta": sp.resolved_delta, "device": sp.torch_device.type,
                  "profile": self.profile, "epochs": recipe.epochs if recipe is not None else None,
                  "ptq_choice": name, "ptq_config": config, "timer": dataclasses.asdict(self.timer)}
        if data_sha256 is not None:
            params["data_sha256"] = data_sha256
        return params

    def run_id(self, seed: int, name: str, data_sha256: str | None = None) -> str:
        return named_run(f"{self.model}-{self.dataset}-seed{seed}-{name}-{self.profile}",
                         self.resolved(seed, name, data_sha256))


@dataclass
class SeedRun:
    """One seed's records, by choice, and what it cost."""
    seed: int
    records: dict = field(default_factory=dict)   # choice name -> records, bit-widths in params.bits order
    predictions: dict = field(default_factory=dict)   # choice name -> Predictions behind its records
    graphs: int = 0                               # distinct graphs timed
    wall_s: float = 0.0
    loaded: bool = False                          # the FP32 model came from a checkpoint


def _calibration(splits, size: int, seed: int, cache: dict):
    if size not in cache:
        idx = calibration_indices(len(splits.train), size, seed)
        cache[size] = (splits.train.images(idx), index_hash(idx))
    return cache[size]


def run_seed(params: AblationParams, seed: int, data=None, log=print) -> SeedRun:
    """Every choice of ``params`` on the checkpoint of ``seed`` (``data``: the loaded data set, else
    loaded here); see the module docstring."""
    start = time.perf_counter()
    sp = params.sweep_params(seed)
    condition = load_condition(sp, data)
    trained = model_for(condition)
    model, splits, info = trained.model, condition.splits, condition.info
    labels, fp_predicted = predict(model, splits.test)   # P is computed from the predictions kept beside the records
    p_fp = accuracy(labels, fp_predicted)
    gate = pthresh.decide(None, delta=sp.resolved_delta, num_classes=info.num_classes, p_fp=p_fp)
    example = splits.test.images(np.arange(min(BATCH, len(splits.test))))
    calib_cache: dict = {}
    measured: dict = {}    # (choice or None for FP, bits) -> (P, PTQInfo, signature, config, calib hash)
    predicted: dict = {}   # the same keys -> predicted classes of the test images
    models: dict = {}      # signature -> one model that runs it, to time

    def measure(key, config, calib, calib_hash):
        qmodel = quantize(model, config, calib)
        predicted[key] = fp_predicted if config.bits == 32 else predict(qmodel, splits.test)[1]
        P = accuracy(labels, predicted[key])
        sig = graph_signature(lambda: qmodel(example))
        models.setdefault(sig, qmodel)
        measured[key] = (P, qmodel.ptq_info, sig, config, calib_hash)

    for bits in (b for b in params.bits if b >= 16):   # no choice changes FP32 or FP16
        measure((None, bits), PTQConfig(bits=bits), None, None)
    for name in params.choices:
        for bits in params.quantized_bits:
            config = params.ptq_config(name, bits)
            calib, calib_hash = _calibration(splits, config.calib_size, seed, calib_cache)
            measure((name, bits), config, calib, calib_hash)
        if log:
            p = {b: measured[(name, b)][0] for b in params.quantized_bits}
            log(f"seed {seed} {name:22} " + "  ".join(f"P({b}) {100 * v:6.2f}%" for b, v in p.items()))
    timings = time_models(models, example, params.timer, signatures={s: s for s in models})
    models.clear()   # the timed models' memory back before the records are made
    if splits.test.device.type == "cuda":
        torch.cuda.empty_cache()
    note = T_NOTE.format(rounds=params.timer.rounds, passes=params.timer.passes, batch=len(example))
    out = SeedRun(seed, graphs=len(timings), loaded=trained.loaded)
    for name in params.choices:
        recs, rows = [], []
        for bits in params.bits:
            rows.append(predicted[(name if bits < 16 else None, bits)])
            P, qinfo, sig, config, calib_hash = measured[(name if bits < 16 else None, bits)]
            timing = timings[sig]
            choice_config = params.ptq_config(name, bits)
            fields = dict(
                experiment=params.experiment, model=params.model, dataset=info.name, data_source=info.source,
                seed=seed, bits=bits, P=P, T_kind="simulated", **timing.record_fields(), T_note=note,
                C_paper=qinfo.C_paper, C_true=qinfo.C_true, num_classes=info.num_classes, p_fp=p_fp,
                quant_kind=qinfo.kind, placement=choice_config.placement, quantized_placement=qinfo.placement,
                observer=qinfo.observer, per_channel=qinfo.per_channel, calib_size=choice_config.calib_size,
                n_test=len(splits.test), layer_bits=qinfo.layer_bits, train=train_summary(trained.meta),
                profile=params.profile, ptq_choice=name,
                ptq_config={k: v for k, v in dataclasses.asdict(choice_config).items() if k != "bits"},
                provenance=provenance(device=timing.device, driver=timing.driver, data_sha256=info.sha256,
                                      calib_hash=calib_hash, wall_s=time.perf_counter() - start))
            recs.append(make_record(**fields, **gate.record_fields()))
        out.records[name] = recs
        out.predictions[name] = Predictions(labels, rows)
    out.wall_s = time.perf_counter() - start
    return out


def write(params: AblationParams, run: SeedRun, root=None) -> list:
    """One record file per choice of ``run`` under ``<root>/<params.experiment>/`` (``root`` None:
    :func:`quide.config.run_results_root`, a temporary folder for a smoke run unless
    ``$QUIDE_RESULTS`` names one)."""
    root = run_results_root(params.profile, root)
    paths = []
    for name, records in run.records.items():
        data_sha256 = records[0]["provenance"]["data_sha256"]
        paths.append(write_records(records, params.experiment, params.run_id(run.seed, name, data_sha256),
                                   root=root, run_params=params.resolved(run.seed, name, data_sha256),
                                   predictions=run.predictions.get(name)))
    return paths
