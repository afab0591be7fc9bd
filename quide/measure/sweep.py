"""EXP-1/EXP-2 as functions: train (or load) the FP32 model, then the PTQ sweep over bit-widths.

The sweep notebook is a thin shell around this module: :class:`SweepParams` validates its
parameters (one clear message per bad value), :func:`load_condition` gets the data,
:func:`train_or_load` the FP32 model, :func:`ptq_sweep` the records.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..analysis import conditions, pthresh
from ..analysis.predictions import Predictions, accuracy, compact
from . import data as qd
from ..config import checkpoint_root, run_results_root
from .data import ImageData, Splits, calibration_indices, index_hash
from .latency import BATCH, TIMED, WARMUP, TimerConfig, graph_signature, measure_latency, time_models
from .models import MODELS, build_model
from ..notebook_params import refuse_bools
from .quant import OBSERVERS, PLACEMENTS, SUPPORTED_BITS, PTQConfig, quantize
from ..analysis.results import check_experiment, make_record, named_run, write_records
from .provenance import provenance
from .train import (CheckpointError, Recipe, TrainResult, checkpoint_key, evaluate, load_checkpoint,
                    save_checkpoint, paper_recipe, predict, seed_everything, seed_problem, train)

PAPER_BITS = (32, 16, 8, 4, 2)


@dataclass(frozen=True)
class SweepConfig:
    """What the sweep varies and how it measures. Defaults are the paper's protocol."""
    bits: tuple = PAPER_BITS
    calib_size: int = 512           # calibration images, drawn from the training split by seed
    observer: str = "minmax"
    per_channel: bool = False
    placement: str = "graph"
    warmup: int = WARMUP            # T_host_ms, the paper's protocol: untimed passes
    timed: int = TIMED              # T_host_ms: timed passes (median reported)
    latency_batch: int = BATCH      # images per timed pass
    timer: TimerConfig = TimerConfig()   # T_ms: interleaved rounds of graph replays (quide.measure.latency)
    host_timing: str = "configuration"   # T_host_ms per "configuration", or per "graph" (shared)

    def __post_init__(self):
        if not self.bits:
            raise ValueError("SweepConfig.bits is empty")
        object.__setattr__(self, "bits", tuple(self.bits))
        for b in self.bits:   # PTQConfig validates each bit-width and the other fields
            self.ptq(b)
        if self.latency_batch < 1:
            raise ValueError(f"SweepConfig.latency_batch must be >= 1; got {self.latency_batch}")
        if not isinstance(self.timer, TimerConfig):
            raise ValueError(f"SweepConfig.timer must be a TimerConfig; got {self.timer!r}")
        if self.host_timing not in ("configuration", "graph"):
            raise ValueError(f"SweepConfig.host_timing must be 'configuration' or 'graph'; got {self.host_timing!r}")

    def ptq(self, bits) -> PTQConfig:
        return PTQConfig(bits=bits, calib_size=self.calib_size, observer=self.observer,
                         per_channel=self.per_channel, placement=self.placement)


PROFILES = ("smoke", "paper")
# smoke: a CPU-sized run of the same code path (tests, CI); paper: the paper's protocol.
SMOKE = {"n_train": 2000, "n_test": 500, "val_size": 200, "epochs": 1, "calib_size": 64,
         "warmup": 2, "timed": 5, "timer": TimerConfig(rounds=6, passes=2, warmup=1)}


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class SweepParams:
    """The sweep notebook's parameters, validated; a bad one raises ValueError naming it."""
    model: str = "simplecnn"
    dataset: str = "mnist"
    seed: int = 0
    bits: tuple = PAPER_BITS
    epochs: int | None = None        # None: the recipe's (50 SimpleCNN, 100 ResNet-18)
    delta: float | None = None       # None: the paper's delta for the condition
    p_thresh: str | None = None      # "auto:<rule>" (quide.analysis.pthresh) sets Pthresh instead of delta
    calib_size: int = 512
    warmup: int = WARMUP
    timed: int = TIMED
    observer: str = "minmax"
    per_channel: bool = False
    placement: str = "graph"
    compare_placements: bool = True  # also sweep the other placement on the same trained model
    cuda_graphs: bool = True         # training steps replayed as CUDA graphs (CUDA only)
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    profile: str = "paper"           # smoke | paper
    experiment: str = "ptq_sweep"    # records go to <results root>/<experiment>/

    def __post_init__(self):
        refuse_bools(self)
        def bad(name, why):
            raise ValueError(f"parameter {name!r}: {why}; got {getattr(self, name)!r}")
        if self.model not in MODELS:
            bad("model", f"unknown model, choose one of {list(MODELS)}")
        if self.dataset not in qd.DATASETS:
            bad("dataset", f"unknown dataset, choose one of {list(qd.DATASETS)}")
        if self.dataset not in conditions.datasets_for(self.model):
            bad("dataset", f"{self.model} runs on {list(conditions.datasets_for(self.model))}")
        if why := seed_problem(self.seed):
            bad("seed", why)
        if isinstance(self.bits, (str, bytes)) or not hasattr(self.bits, "__iter__") or not list(self.bits):
            bad("bits", "must be a non-empty list of bit-widths")
        if not all(_is_int(b) and b in SUPPORTED_BITS for b in self.bits):
            bad("bits", "every entry must be an int in 2..16 or 32")
        object.__setattr__(self, "bits", tuple(int(b) for b in self.bits))
        if self.epochs is not None and not (_is_int(self.epochs) and self.epochs >= 1):
            bad("epochs", "must be None or an int >= 1")
        if self.delta is not None and not (isinstance(self.delta, numbers.Real) and 0 <= self.delta <= 1):
            bad("delta", "must be None or a number in [0, 1]")
        pthresh.check_auto(self.p_thresh, bit_widths={32, *self.bits})   # FP is the curve's first point
        for name, low in (("calib_size", 1), ("warmup", 0), ("timed", 1)):
            if not (_is_int(getattr(self, name)) and getattr(self, name) >= low):
                bad(name, f"must be an int >= {low}")
        if self.observer not in OBSERVERS:
            bad("observer", f"choose one of {list(OBSERVERS)}")
        if self.placement not in PLACEMENTS:
            bad("placement", f"choose one of {list(PLACEMENTS)}")
        for name in ("per_channel", "compare_placements", "cuda_graphs"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "must be True or False")
        if not (self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:")):
            bad("device", "choose auto, cpu, cuda or cuda:N")
        if self.profile not in PROFILES:
            bad("profile", f"choose one of {list(PROFILES)}")
        check_experiment(self.experiment)
        if self.profile == "smoke":
            object.__setattr__(self, "calib_size", min(self.calib_size, SMOKE["calib_size"]))
            object.__setattr__(self, "warmup", min(self.warmup, SMOKE["warmup"]))
            object.__setattr__(self, "timed", min(self.timed, SMOKE["timed"]))
            object.__setattr__(self, "epochs", min(self.epochs or SMOKE["epochs"], SMOKE["epochs"]))

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"parameter 'device': {self.device!r} asked for, but no CUDA device is visible")
        return torch.device(self.device)

    @property
    def resolved_delta(self) -> float:
        return float(self.delta) if self.delta is not None else conditions.delta_for(self.model, self.dataset)

    def recipe(self) -> Recipe | None:
        """The paper's training recipe (None for resnet18_imagenet: torchvision's weights)."""
        if self.model == "resnet18_imagenet":
            return None
        recipe = paper_recipe(self.model, self.dataset).replace(cuda_graphs=self.cuda_graphs)
        if self.epochs is not None:
            recipe = recipe.replace(epochs=self.epochs)
        if self.profile == "smoke":
            recipe = recipe.replace(val_size=SMOKE["val_size"])
        return recipe

    def sweep_config(self, placement: str | None = None) -> "SweepConfig":
        return SweepConfig(bits=self.bits, calib_size=self.calib_size, observer=self.observer,
                           per_channel=self.per_channel, placement=placement or self.placement,
                           warmup=self.warmup, timed=self.timed, timer=self.timer_config)

    @property
    def timer_config(self) -> TimerConfig:
        """The T_ms timer: quide.measure.latency's defaults, or the smoke profile's few short rounds."""
        return SMOKE["timer"] if self.profile == "smoke" else TimerConfig()

    @property
    def placements(self) -> list[str]:
        """The main placement first, then the other one if ``compare_placements``."""
        others = [p for p in PLACEMENTS if p != self.placement] if self.compare_placements else []
        return [self.placement, *others]

    def resolved(self, placement: str | None = None, data_sha256: str | None = None) -> dict:
        """What decides one placement's records: every parameter as the run uses it (the recipe's
        epochs, the condition's delta, the device type), placement set, compare_placements left out
        (it decides which files are written, not what is in them); with ``data_sha256`` (the content
        hash of the data the run read) also the data, so a run on other data of the same name is
        another run."""
        params = dataclasses.asdict(self)
        del params["compare_placements"]
        if self.p_thresh is None:   # runs made before p_thresh existed keep their run ids
            del params["p_thresh"]
        recipe = self.recipe()
        params.update(placement=placement or self.placement, bits=list(self.bits),
                      epochs=recipe.epochs if recipe is not None else None,
                      delta=self.resolved_delta, device=self.torch_device.type)
        if data_sha256 is not None:
            params["data_sha256"] = data_sha256
        return params

    def run_id(self, placement: str | None = None, data_sha256: str | None = None) -> str:
        """The record file's stem: model, data set, seed, placement, profile, then a short hash of
        :meth:`resolved`, so that runs with other parameters or data never replace each other's file."""
        place = placement or self.placement
        return named_run(f"{self.model}-{self.dataset}-seed{self.seed}-{place}-{self.profile}",
                         self.resolved(place, data_sha256))


@dataclass
class DataInfo:
    """What a record needs to know about a data set that is not held as arrays (ImageNet)."""
    name: str
    source: str
    num_classes: int
    sha256: str


@dataclass
class ConditionData:
    """A (model, dataset) condition ready to run: data on the device and how to describe it."""
    params: SweepParams
    info: ImageData | DataInfo
    splits: Splits


def load_condition(params: SweepParams, data: ImageData | None = None) -> ConditionData:
    """Load (and for the smoke profile, subsample) the data of ``params`` onto its device
    (``data``: the data set, if loaded already)."""
    device = params.torch_device
    if params.dataset == "imagenet":
        folder = qd.imagenet_folder()
        train = qd.FolderData(folder / "train", device)
        test = qd.FolderData(folder / "val", device)
        info = DataInfo("imagenet", "ImageNet-1K", train.num_classes, qd.folder_hash(folder))
        return ConditionData(params, info, Splits(train, None, test))
    data = condition_images(params, data)
    recipe = params.recipe()
    splits = qd.device_splits(data, device, val_size=recipe.val_size, seed=params.seed)
    return ConditionData(params, data, splits)


def condition_images(params: SweepParams, data: ImageData | None = None) -> ImageData:
    """The images a run of ``params`` trains and tests on, on the CPU: ``data`` (the loaded data
    set, or loaded here); for the smoke profile a subset of each split with the same number of
    images of every class (:func:`quide.measure.data.stratified_indices`, seeded by the run's seed),
    since a split sorted by class would otherwise give a subset of one class."""
    data = data if data is not None else qd.load_dataset(params.dataset)
    if params.profile == "smoke":
        train = qd.stratified_indices(data.y_train, SMOKE["n_train"], params.seed)
        test = qd.stratified_indices(data.y_test, SMOKE["n_test"], params.seed)
        data = dataclasses.replace(data, x_train=data.x_train[train], y_train=data.y_train[train],
                                   x_test=data.x_test[test], y_test=data.y_test[test])
    return data


def checkpoint_of(params: SweepParams, data: ImageData | None = None,
                  checkpoint_dir: Path | str | None = None) -> Path | None:
    """The checkpoint file :func:`model_for` would load for ``params`` (``data``: the loaded data
    set, else loaded here); None where nothing is trained (ImageNet: torchvision's weights)."""
    recipe = params.recipe()
    if recipe is None:
        return None
    images = condition_images(params, data)
    whole = params.profile != "smoke"   # then the images are the data set's, whose sha256 is their content hash
    return checkpoint_path(params.model, images, recipe, params.seed, params.torch_device.type, checkpoint_dir,
                           subset_sha256=images.sha256 if whole else None)


def model_for(condition: ConditionData, checkpoint_dir: Path | str | None = None, log=None) -> "TrainedModel":
    """The FP32 model: trained (or loaded) by the recipe, or torchvision's for ImageNet.

    For ImageNet the paper profile loads torchvision's IMAGENET1K_V1 weights (a download); the
    smoke profile uses a randomly initialised network of the same architecture (labelled so).
    """
    p = condition.params
    if p.model == "resnet18_imagenet":
        pretrained = p.profile == "paper"
        seed_everything(p.seed)
        model = build_model(p.model, condition.info.num_classes, pretrained=pretrained)
        meta = {"weights": "torchvision IMAGENET1K_V1" if pretrained else "random init (smoke profile)"}
        return TrainedModel(model.to(p.torch_device).eval(), meta, loaded=pretrained)
    return train_or_load(p.model, condition.info, condition.splits, p.recipe(), p.seed,
                         checkpoint_dir=checkpoint_dir, log=log)


def describe(condition: ConditionData) -> str:
    """One line per fact about the data a condition runs on (stable across runs: nbval checks it)."""
    p, info, sp = condition.params, condition.info, condition.splits
    lines = [f"data: {info.source} ({info.name}), {info.num_classes} classes",
             f"train {len(sp.train)} images, validation {len(sp.val) if sp.val is not None else 0}, "
             f"test {len(sp.test)}; profile {p.profile}",
             f"data sha256 {info.sha256[:16]}"]
    if getattr(info, "is_stand_in", False):
        lines.append("NOTE: lossy JPEG re-encoding of CIFAR-10: results are for the stand-in, not CIFAR-10")
    return "\n".join(lines)


@dataclass
class TrainedModel:
    """A condition's FP32 model (on its device, eval mode) and how it came to be."""
    model: nn.Module
    meta: dict = field(default_factory=dict)   # recipe, seed, epoch, accuracies, data hash, wall_s
    loaded: bool = False                       # True when read from a checkpoint


def checkpoint_path(model_name: str, data: ImageData, recipe: Recipe, seed: int, device_type: str,
                    checkpoint_dir: Path | str | None = None, subset_sha256: str | None = None) -> Path:
    """Where the checkpoint of ``model_name`` trained by ``recipe`` and ``seed`` on exactly ``data``'s
    images (``subset_sha256``: their content hash, if known) on a ``device_type`` device lives
    (:func:`quide.measure.train.checkpoint_key`)."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else checkpoint_root()
    subset = subset_sha256 or qd.content_hash(data.x_train, data.y_train, data.x_test, data.y_test)
    return folder / checkpoint_key(model_name, data.name, seed, recipe, data.sha256, subset_sha256=subset,
                                   device_type=device_type)


def train_or_load(model_name: str, data: ImageData, splits: Splits, recipe: Recipe, seed: int,
                  checkpoint_dir: Path | str | None = None, log=None) -> TrainedModel:
    """Load the checkpoint made with the same recipe, seed and data, or train and save one."""
    h, w, c = data.x_train.shape[1:]
    seed_everything(seed)   # the seed decides the initial weights too
    model = build_model(model_name, data.num_classes, (h, w, c))
    subset = qd.content_hash(data.x_train, data.y_train, data.x_test, data.y_test)
    path = checkpoint_path(model_name, data, recipe, seed, splits.train.device.type, checkpoint_dir, subset)
    # what the checkpoint's own metadata must say: a file copied under this name is not this run's
    expect = {"model": model_name, "dataset": data.name, "seed": seed, "recipe": recipe.as_dict(),
              "data_sha256": data.sha256, "subset_sha256": subset, "checkpoint_key": path.name}
    retrained_because = None
    if path.is_file():
        try:
            meta = load_checkpoint(path, model, expect)
            return TrainedModel(model.to(splits.train.device).eval(), meta, loaded=True)
        except CheckpointError as err:
            retrained_because = str(err)
            logging.getLogger(__name__).warning("retraining: %s", err)
            seed_everything(seed)   # the same initial weights as a first training
            model = build_model(model_name, data.num_classes, (h, w, c))
    result: TrainResult = train(model, splits, recipe, seed, log=log)
    meta = {**expect, "retrained_because": retrained_because, "epoch": result.epoch,
            "val_accuracy": result.val_accuracy, "test_accuracy": evaluate(result.model, splits.test),
            "train_wall_s": result.wall_s, "history": result.history,
            "provenance": provenance(data_sha256=data.sha256, wall_s=result.wall_s)}
    save_checkpoint(path, result.model, meta)
    return TrainedModel(result.model, meta)


def _config_key(bits):
    return int(bits) if np.isscalar(bits) else tuple(int(b) for b in bits)


class ConfigMeasurer:
    """One FP32 model on one condition's test data, ready to measure any bit configuration.

    Set up once per model (P_FP, the seeded calibration images, the latency batch). Latency is
    measured per distinct graph, not per configuration: :meth:`time_configs` quantizes each
    configuration, groups them by :func:`quide.measure.latency.graph_signature` and times one model per
    group, all groups in one interleaved block (T_ms), plus the paper's host protocol (T_host_ms)
    per configuration or per graph (``config.host_timing``). :meth:`measure` quantizes, evaluates
    P on the whole test split and returns one record with its group's T; a configuration not timed
    yet is timed first, in a block of its own. T is the simulated model's latency (``T_kind``).
    The predicted class of every test image is kept per configuration (``predicted``), P
    computed from it; :meth:`predictions_of` gives a record file's. Used by the PTQ sweep
    (uniform bits) and the mixed-precision searches.
    """

    def __init__(self, model: nn.Module, data: ImageData | DataInfo, splits: Splits, *, model_name: str,
                 seed: int, delta: float, config: SweepConfig = SweepConfig(), experiment: str = "ptq_sweep",
                 train_meta: dict | None = None, extra: dict | None = None, p_thresh: str | None = None):
        self.device = splits.test.device
        self.model = model.to(self.device).eval()
        self.data, self.splits, self.config = data, splits, config
        self.model_name, self.seed, self.delta, self.experiment = model_name, seed, delta, experiment
        self.p_thresh = p_thresh   # None: the delta gate; 'auto:<rule>' (quide.analysis.pthresh)
        self.train_meta, self.extra = train_meta, extra or {}
        labels, fp_predicted = predict(self.model, splits.test)
        self.p_fp = accuracy(labels, fp_predicted)
        self.labels = compact(labels, "test labels")   # as the predictions file stores them
        # configuration -> the predicted class of each test image: one byte per image up to 256
        # classes, so an EXP-3 exhaustive pass holds all its configurations' in a few MB
        self.predicted: dict = {32: compact(fp_predicted)}
        self.calib_idx = calibration_indices(len(splits.train), config.calib_size, seed)
        self.calib = splits.train.images(self.calib_idx)
        self.example = splits.test.images(np.arange(min(config.latency_batch, len(splits.test))))
        self.signature_of: dict = {}    # configuration -> graph signature
        self.timings: dict = {}         # graph signature -> (Timing, Latency of the paper's protocol)
        self.timed_config: dict = {}    # graph signature -> the configuration whose model was timed
        self.timing_wall_s = 0.0        # seconds spent timing, all blocks

    def _quantize(self, bits) -> nn.Module:
        return quantize(self.model, self.config.ptq(bits), self.calib)

    def _host_latency(self, qmodel):
        return measure_latency(qmodel, self.example, warmup=self.config.warmup, timed=self.config.timed)

    def time_configs(self, configs) -> None:
        """Time every configuration of ``configs`` whose graph is not timed yet, in one block."""
        start = time.perf_counter()
        new = {}
        for bits in configs:
            key = _config_key(bits)
            if key in self.signature_of:
                continue
            qmodel = self._quantize(key)
            sig = graph_signature(lambda: qmodel(self.example))
            self.signature_of[key] = sig
            if sig not in self.timings and sig not in new:
                new[sig] = qmodel
                self.timed_config[sig] = key
        if new:
            timings = time_models(new, self.example, self.config.timer, signatures={s: s for s in new})
            for sig, qmodel in new.items():
                self.timings[sig] = (timings[sig], self._host_latency(qmodel))
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self.timing_wall_s += time.perf_counter() - start

    def gate(self, accuracy_by_bits: dict | None = None) -> pthresh.Gate:
        """The run's gate (:func:`quide.analysis.pthresh.decide`) from P_FP and, for a rule that reads
        the curve, ``accuracy_by_bits``."""
        return pthresh.decide(self.p_thresh, delta=self.delta, num_classes=self.data.num_classes, p_fp=self.p_fp,
                              accuracy_by_bits=accuracy_by_bits, n_test=len(self.splits.test))

    @functools.cached_property
    def fp_gate(self) -> pthresh.Gate:
        """The gate from P_FP alone: a search's records are gated as they are measured."""
        return self.gate()

    def measure(self, bits, **extra) -> dict:
        """The record of ``bits`` (an int, uniform, or a per-layer list) gated by :attr:`fp_gate`;
        ``extra`` goes into the record."""
        return make_record(**self.measurement(bits, **extra), **self.fp_gate.record_fields())

    def measurement(self, bits, **extra) -> dict:
        """What :func:`make_record` takes for ``bits``, all but the gate; ``extra`` goes into the record."""
        config, data = self.config, self.data
        start = time.perf_counter()
        key = _config_key(bits)
        if key not in self.signature_of:
            self.time_configs([key])
        sig = self.signature_of[key]
        timing, host = self.timings[sig]
        qmodel = self._quantize(bits)
        if key != 32:
            labels, predicted = predict(qmodel, self.splits.test)
            if not np.array_equal(labels, self.labels):
                raise RuntimeError("the test split's labels came in another order than at the start of the run")
            self.predicted[key] = compact(predicted)
        P = accuracy(self.labels, self.predicted[key])
        if config.host_timing == "configuration" and self.timed_config[sig] != key:
            host = self._host_latency(qmodel)   # the paper times every configuration by itself
        info = qmodel.ptq_info
        fields = dict(
            experiment=self.experiment, model=self.model_name, dataset=data.name, data_source=data.source,
            seed=self.seed, bits=bits, P=P, T_kind="simulated", **timing.record_fields(),
            T_host_ms=host.median_ms, T_host_p10_ms=host.p10_ms, T_host_p90_ms=host.p90_ms,
            T_host_scope=config.host_timing, latency_passes=host.passes, latency_warmup=host.warmup,
            latency_batch=host.batch,
            C_paper=info.C_paper, C_true=info.C_true, num_classes=data.num_classes, p_fp=self.p_fp,
            quant_kind=info.kind,
            placement=config.placement, quantized_placement=info.placement, observer=info.observer,
            per_channel=info.per_channel, calib_size=config.calib_size, n_test=len(self.splits.test),
            layer_bits=info.layer_bits, train=train_summary(self.train_meta), **self.extra, **extra,
            provenance=provenance(device=timing.device, driver=timing.driver, data_sha256=data.sha256,
                                  calib_hash=index_hash(self.calib_idx), wall_s=time.perf_counter() - start),
        )
        del qmodel
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return fields

    def predictions_of(self, records: list[dict]) -> Predictions:
        """The test labels and, per record of ``records`` (each a configuration measured here), its
        predicted classes: what :func:`quide.analysis.results.write_records` stores beside them."""
        return Predictions(self.labels, [self.predicted[_config_key(rec["bits"])] for rec in records])


def ptq_sweep(model: nn.Module, data: ImageData | DataInfo, splits: Splits, **kwargs) -> list[dict]:
    """The records of :func:`measure_sweep` (its parameters), without their predictions."""
    return measure_sweep(model, data, splits, **kwargs)[0]


def measure_sweep(model: nn.Module, data: ImageData | DataInfo, splits: Splits, *, model_name: str, seed: int,
                  delta: float, config: SweepConfig = SweepConfig(), experiment: str = "ptq_sweep",
                  train_meta: dict | None = None, extra: dict | None = None, log=None,
                  p_thresh: str | None = None) -> tuple[list[dict], Predictions]:
    """Quantize ``model`` at each bit-width of ``config``; one record each (see :class:`ConfigMeasurer`),
    and the per-sample predictions their P is computed from (for
    :func:`quide.analysis.results.write_records`). P_FP for Pthresh is the accuracy of the
    unquantized model; the gate (``delta``, or the rule ``p_thresh``, which may read the whole
    curve) is decided once, after every bit-width is measured and before any record is made."""
    measurer = ConfigMeasurer(model, data, splits, model_name=model_name, seed=seed, delta=delta, config=config,
                              experiment=experiment, train_meta=train_meta, extra=extra, p_thresh=p_thresh)
    measurer.time_configs(config.bits)   # every bit-width's graph in one interleaved block
    measured = [measurer.measurement(bits) for bits in config.bits]
    gate = measurer.gate({m["bits"]: m["P"] for m in measured})
    records = [make_record(**m, **gate.record_fields()) for m in measured]
    if log:
        for rec in records:
            log({k: rec[k] for k in ("bits", "P", "T_ms", "I", "I_gated")})
    return records, measurer.predictions_of(records)


def run_sweeps(condition: ConditionData, trained: "TrainedModel", root: Path | str | None = None, log=None) -> dict:
    """Sweep every placement of ``condition.params`` and write one record file per placement
    under ``<root>/<params.experiment>/`` (``root`` None: :func:`quide.config.run_results_root`,
    so a smoke run writes into a temporary folder unless ``$QUIDE_RESULTS`` names one), with its
    predictions file beside it.

    Returns {placement: (records, path)}.
    """
    p = condition.params
    experiment = p.experiment
    root = run_results_root(p.profile, root)
    runs = {}
    for placement in p.placements:
        records, predictions = measure_sweep(
            trained.model, condition.info, condition.splits, model_name=p.model, seed=p.seed,
            delta=p.resolved_delta, config=p.sweep_config(placement), experiment=experiment,
            train_meta=trained.meta, extra={"profile": p.profile}, log=log, p_thresh=p.p_thresh)
        data_sha256 = condition.info.sha256
        path = write_records(records, experiment, p.run_id(placement, data_sha256), root=root,
                             run_params=p.resolved(placement, data_sha256), predictions=predictions)
        runs[placement] = (records, path)
    return runs


def train_summary(meta: dict | None) -> dict | None:
    """What a record keeps of a checkpoint's training metadata (None where nothing was trained)."""
    if not meta:
        return None
    keep = ("epoch", "val_accuracy", "test_accuracy", "train_wall_s", "recipe")
    return {k: meta.get(k) for k in keep}
