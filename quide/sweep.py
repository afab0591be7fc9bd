"""EXP-1/EXP-2 as functions: train (or load) the FP32 model, then the PTQ sweep over bit-widths."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .config import checkpoint_root
from .data import ImageData, Splits, calibration_indices, index_hash
from .latency import BATCH, TIMED, WARMUP, measure_latency
from .models import build_model
from .quant import PTQConfig, quantize
from .results import make_record, provenance
from .train import (Recipe, TrainResult, checkpoint_key, evaluate, load_checkpoint, save_checkpoint,
                    seed_everything, train)

PAPER_BITS = (32, 16, 8, 4, 2)


@dataclass(frozen=True)
class SweepConfig:
    """What the sweep varies and how it measures. Defaults are the paper's protocol."""
    bits: tuple = PAPER_BITS
    calib_size: int = 512           # calibration images, drawn from the training split by seed
    observer: str = "minmax"
    per_channel: bool = False
    placement: str = "graph"
    warmup: int = WARMUP            # latency: untimed passes
    timed: int = TIMED              # latency: timed passes (median reported)
    latency_batch: int = BATCH      # images per timed pass

    def __post_init__(self):
        if not self.bits:
            raise ValueError("SweepConfig.bits is empty")
        object.__setattr__(self, "bits", tuple(self.bits))
        for b in self.bits:   # PTQConfig validates each bit-width and the other fields
            self.ptq(b)
        if self.latency_batch < 1:
            raise ValueError(f"SweepConfig.latency_batch must be >= 1; got {self.latency_batch}")

    def ptq(self, bits) -> PTQConfig:
        return PTQConfig(bits=bits, calib_size=self.calib_size, observer=self.observer,
                         per_channel=self.per_channel, placement=self.placement)


@dataclass
class Trained:
    model: nn.Module
    meta: dict = field(default_factory=dict)   # recipe, seed, epoch, accuracies, data hash, wall_s
    loaded: bool = False                       # True when read from a checkpoint


def train_or_load(model_name: str, data: ImageData, splits: Splits, recipe: Recipe, seed: int,
                  checkpoint_dir: Path | str | None = None, log=None) -> Trained:
    """Load the checkpoint made with the same recipe, seed and data, or train and save one."""
    h, w, c = data.x_train.shape[1:]
    seed_everything(seed)   # the seed decides the initial weights too
    model = build_model(model_name, data.num_classes, (h, w, c))
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else checkpoint_root()
    path = folder / checkpoint_key(model_name, data.name, seed, recipe, data.sha256)
    if path.is_file():
        meta = load_checkpoint(path, model)
        return Trained(model.to(splits.train.device).eval(), meta, loaded=True)
    result: TrainResult = train(model, splits, recipe, seed, log=log)
    meta = {"model": model_name, "dataset": data.name, "seed": seed, "recipe": recipe.as_dict(),
            "epoch": result.epoch, "val_accuracy": result.val_accuracy,
            "test_accuracy": evaluate(result.model, splits.test), "data_sha256": data.sha256,
            "train_wall_s": result.wall_s, "history": result.history,
            "provenance": provenance(data_sha256=data.sha256, wall_s=result.wall_s)}
    save_checkpoint(path, result.model, meta)
    return Trained(result.model, meta)


def ptq_sweep(model: nn.Module, data: ImageData, splits: Splits, *, model_name: str, seed: int,
              delta: float, config: SweepConfig = SweepConfig(), experiment: str = "ptq_sweep",
              train_meta: dict | None = None, log=None) -> list[dict]:
    """Quantize ``model`` at each bit-width of ``config``; measure P, T; return one record each.

    P is top-1 accuracy (fraction) on the whole test split. T is the latency protocol on the
    first ``latency_batch`` test images; it is the simulated model's latency (``T_kind``).
    P_FP for Pthresh is the accuracy of the unquantized model.
    """
    device = splits.test.device
    model = model.to(device).eval()
    p_fp = evaluate(model, splits.test)
    calib_idx = calibration_indices(len(splits.train), config.calib_size, seed)
    calib = splits.train.images(calib_idx)
    example = splits.test.images(np.arange(min(config.latency_batch, len(splits.test))))
    records = []
    for bits in config.bits:
        start = time.perf_counter()
        qmodel = quantize(model, config.ptq(bits), calib)
        P = p_fp if bits == 32 else evaluate(qmodel, splits.test)
        lat = measure_latency(qmodel, example, warmup=config.warmup, timed=config.timed)
        info = qmodel.ptq_info
        rec = make_record(
            experiment=experiment, model=model_name, dataset=data.name, data_source=data.source,
            seed=seed, bits=bits, P=P, T_ms=lat.median_ms, T_kind="simulated",
            C_paper=info.C_paper, C_true=info.C_true, num_classes=data.num_classes, p_fp=p_fp, delta=delta,
            T_p10_ms=lat.p10_ms, T_p90_ms=lat.p90_ms, latency_passes=lat.passes, latency_warmup=lat.warmup,
            latency_batch=lat.batch, quant_kind=info.kind, placement=info.placement, observer=info.observer,
            per_channel=info.per_channel, calib_size=config.calib_size, n_test=len(splits.test),
            layer_bits=info.layer_bits, train=_train_summary(train_meta),
            provenance=provenance(device=lat.device, driver=lat.driver, data_sha256=data.sha256,
                                  calib_hash=index_hash(calib_idx), wall_s=time.perf_counter() - start),
        )
        records.append(rec)
        if log:
            log({k: rec[k] for k in ("bits", "P", "T_ms", "I", "I_gated")})
        del qmodel
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return records


def _train_summary(meta: dict | None) -> dict | None:
    if not meta:
        return None
    keep = ("epoch", "val_accuracy", "test_accuracy", "train_wall_s", "recipe")
    return {k: meta.get(k) for k in keep}
