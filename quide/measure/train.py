"""Training recipes of the paper (Sections 3.3, 4.1) and a fast, seeded trainer.

The trainer keeps every split on the device and draws batches with on-device indexing and
augmentation: no DataLoader, no per-sample Python, one host sync per epoch (validation).
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import numbers
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..analysis.predictions import accuracy
from ..analysis.protocol import (RESNET18_CIFAR, SIMPLECNN, SIMPLECNN_AUGMENTED, Recipe,  # noqa: F401
                                paper_recipe)
from ..config import atomic_path
from .data import Splits
from ..hostlock import gpu_work


@dataclass
class TrainResult:
    model: nn.Module
    epoch: int                 # the kept epoch, 1-based
    val_accuracy: float | None # fraction, at the kept epoch
    history: list              # per epoch: {"epoch", "train_loss", "val_accuracy"}
    wall_s: float              # training wall time, seconds, device synchronized


# Seeds are ints in [0, SEED_LIMIT): torch.manual_seed takes < 2**64, numpy's generators refuse
# negatives, and pandas reads the records' seeds as int64.
SEED_LIMIT = 2**63


def seed_problem(value) -> str | None:
    """Why ``value`` is not a seed (an int in [0, :data:`SEED_LIMIT`)); None when it is one."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        return "seeds must be ints"
    if value < 0:
        return "seeds must be >= 0"
    if value >= SEED_LIMIT:
        return "seeds must be < 2**63 (torch.manual_seed takes < 2**64; records keep seeds as int64)"
    return None


def seed_everything(seed: int, deterministic: bool = True) -> None:
    import random

    import numpy as np
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def predict(model: nn.Module, data, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(labels, predicted classes) of every image of ``data``, in its order, as int64 arrays on
    the CPU: the top-1 class of each. ``data``: anything with ``batches(batch_size)`` (DeviceData,
    FolderData) or an iterable of (x, y) batches. Accuracy is :func:`quide.analysis.predictions.accuracy`
    of these (:func:`evaluate`), so a record's P and its stored predictions are one array."""
    batches = data.batches(batch_size) if hasattr(data, "batches") else data
    labels, predicted = [], []
    model.eval()
    with gpu_work(), torch.inference_mode():
        for x, y in batches:
            predicted.append(model(x).argmax(1))
            labels.append(y)
        if not labels:
            raise ValueError("predict: no data")
        # one copy to the host, at the end (it waits for the GPU, inside the lock)
        return torch.cat(labels).cpu().numpy(), torch.cat(predicted).cpu().numpy()


def evaluate(model: nn.Module, data, batch_size: int = 1000) -> float:
    """Top-1 accuracy as a fraction, from :func:`predict`."""
    return accuracy(*predict(model, data, batch_size))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Stepper:
    """One optimizer step per call. On CUDA it captures the step (forward, backward, optimizer) as a
    CUDA graph per batch shape after a few eager warm-up steps and replays it, which removes the
    per-kernel launch cost that dominates small models. The arithmetic is the same as eager.
    """
    WARMUP_STEPS = 3   # eager steps per batch shape before capture (lets cuDNN/cuBLAS settle)

    def __init__(self, model, opt, loss_sum, autocast, use_graphs: bool):
        self.model, self.opt, self.loss_sum, self.autocast = model, opt, loss_sum, autocast
        self.use_graphs = use_graphs
        self.graphs: dict[tuple, tuple] = {}
        self.eager_steps: dict[tuple, int] = {}

    def _step(self, x, y):
        with self.autocast:
            loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.loss_sum.add_(loss.detach())

    def __call__(self, x, y):
        key = tuple(x.shape)
        if key in self.graphs:
            graph, static_x, static_y = self.graphs[key]
            static_x.copy_(x)
            static_y.copy_(y)
            graph.replay()
            return
        if self.use_graphs and self.eager_steps.get(key, 0) >= self.WARMUP_STEPS:
            static_x, static_y = x.clone(), y.clone()
            self.opt.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._step(static_x, static_y)
            self.graphs[key] = (graph, static_x, static_y)
            graph.replay()   # capture records only; this replay performs the step
            return
        self.opt.zero_grad(set_to_none=True)
        if self.use_graphs:   # warm up on a side stream, as torch.cuda.graphs requires
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._step(x, y)
            torch.cuda.current_stream().wait_stream(side)
        else:
            self._step(x, y)
        self.eager_steps[key] = self.eager_steps.get(key, 0) + 1


def recipe_stepper(model: nn.Module, recipe: Recipe, device: torch.device, net: nn.Module | None = None) -> _Stepper:
    """The recipe's optimizer over ``model``'s parameters and the step :func:`train` runs (CUDA graphs
    where the recipe and device allow); ``net``: the module the step calls, if not ``model`` (e.g. a
    compiled copy). The benchmarks build their steps here too, so they time the trainer's own step."""
    on_cuda = device.type == "cuda"
    use_graphs = on_cuda and recipe.cuda_graphs
    # A captured graph would bake a Python-float learning rate in; a scheduled lr therefore lives in
    # a device tensor that the scheduler fills in place. Eager CUDA steps use the same tensor, so
    # graph and eager steps do the same arithmetic (benchmarks/train_speed.py checks the weights).
    lr = (torch.tensor(recipe.lr, device=device) if on_cuda and recipe.schedule != "constant"
          else recipe.lr)
    if recipe.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=recipe.weight_decay,
                               fused=on_cuda, capturable=use_graphs)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=recipe.momentum,
                              weight_decay=recipe.weight_decay, fused=on_cuda)
    # the autocast cache must be off inside captured graphs
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=recipe.bf16 and on_cuda,
                              cache_enabled=not use_graphs)
    return _Stepper(net if net is not None else model, opt, torch.zeros((), device=device), autocast, use_graphs)


def train(model: nn.Module, splits: Splits, recipe: Recipe, seed: int, log=None) -> TrainResult:
    """Train ``model`` in place on ``splits.train`` by ``recipe``; returns the kept weights loaded."""
    device = splits.train.device
    seed_everything(seed, recipe.deterministic)
    on_cuda = device.type == "cuda"
    model.to(device)
    if recipe.channels_last and on_cuda:
        model.to(memory_format=torch.channels_last)
    step = recipe_stepper(model, recipe, device)
    opt, loss_sum = step.opt, step.loss_sum
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs)
             if recipe.schedule == "cosine" else None)
    gen = torch.Generator(device=device).manual_seed(seed)
    history, best = [], (-1.0, 0, None)
    _sync(device)
    start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        with gpu_work():   # one epoch at a time, so another run's timing waits at most one epoch
            model.train()
            loss_sum.zero_()
            steps = 0
            for x, y in splits.train.batches(recipe.batch_size, shuffle=True, augment=recipe.augment, generator=gen):
                if recipe.channels_last and on_cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                step(x, y)
                steps += 1
            if sched is not None:
                sched.step()
            val_acc = evaluate(model, splits.val) if splits.val is not None else None
            train_loss = loss_sum.item() / steps   # waits for the epoch's kernels
        history.append({"epoch": epoch, "train_loss": train_loss, "val_accuracy": val_acc})
        if log:
            log(history[-1])
        if recipe.keep == "best" and val_acc > best[0]:
            best = (val_acc, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
    _sync(device)
    wall = time.perf_counter() - start
    if recipe.keep == "best":
        model.load_state_dict(best[2])
        kept_epoch, kept_val = best[1], best[0]
    else:
        kept_epoch, kept_val = recipe.epochs, history[-1]["val_accuracy"]
    if recipe.channels_last and on_cuda:
        # A model loaded from its checkpoint is in the default layout; cuDNN picks other kernels
        # per layout, and at 8 bits and below the rounding differences flip test predictions
        # (seen: 0.11 points at 8 bits, ResNet-18, H100). One layout after training keeps P the
        # same whether the sweep follows training or loads the checkpoint.
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    losses = [h["train_loss"] for h in history]
    if not all(math.isfinite(x) for x in losses) or not weights_finite(model.state_dict()):
        raise TrainingDivergedError(f"training diverged: train loss per epoch {losses}, or NaN/inf weights "
                                    "(constant images? a learning rate too high?); the model is not cached")
    return TrainResult(model, kept_epoch, kept_val, history, wall)


class TrainingDivergedError(ValueError):
    """Training produced NaN or infinite loss or weights; nothing is cached."""


# --- checkpoints ----------------------------------------------------------------------------

# The sources that decide what a recipe trains: the networks, the trainer, the batches and their
# augmentation, and the protocol's recipes, data set shapes and SimpleCNN widths. A change to any of
# them makes old checkpoints stale. Paths are relative to the ``quide`` package.
TRAINING_SOURCES = ("measure/models.py", "measure/train.py", "measure/data.py", "analysis/protocol.py")


class CheckpointError(ValueError):
    """A checkpoint cannot be used (unreadable, no or wrong sha256, made for another run, NaN/inf weights)."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, file size limit, ...); nothing was cached."""


def code_sha256(package: Path | None = None) -> str:
    """sha256 over the training sources (:data:`TRAINING_SOURCES`) of the ``quide`` package."""
    package = Path(package) if package is not None else Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for name in TRAINING_SOURCES:
        h.update(name.encode() + b"\0" + (package / name).read_bytes() + b"\0")
    return h.hexdigest()


def checkpoint_key(model_name: str, dataset: str, seed: int, recipe: Recipe, data_sha256: str, *,
                   subset_sha256: str, device_type: str, code: str | None = None) -> str:
    """A file name that changes whenever anything that decides the trained weights changes: the
    recipe, the data set's content, the images actually trained on (``subset_sha256``: a smoke
    profile trains on a slice), the device type and the training code (:func:`code_sha256`)."""
    blob = json.dumps({"recipe": recipe.as_dict(), "data": data_sha256, "subset": subset_sha256,
                       "device_type": device_type, "code": code or code_sha256()}, sort_keys=True)
    return f"{model_name}-{dataset}-seed{seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}.pt"


def state_sha256(state_dict: dict) -> str:
    """sha256 over a state_dict's names, dtypes, shapes and bytes (on the CPU)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_finite(state_dict: dict) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state_dict.values() if t.is_floating_point())


def sha256_path(path: Path) -> Path:
    """Where a checkpoint's sha256 (of the whole file: weights and metadata) is stored: beside it,
    ``<name>.pt.sha256``, in ``sha256sum``'s format."""
    return Path(path).with_name(Path(path).name + ".sha256")


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` atomically; a full disk (or file size limit) is named as such."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise CheckpointWriteError(err.errno, f"checkpoint {path} not written: no space for "
                                       f"{len(data) / 1e6:.1f} MB ({err.strerror}); free space under "
                                       "QUIDE_CHECKPOINTS and rerun (nothing was cached)") from err
        raise


def save_checkpoint(path: Path, model: nn.Module, meta: dict) -> None:
    """Atomic: an interrupted save leaves no file (or the previous one). The sha256 of the whole
    file (weights and metadata) goes beside it first, so a checkpoint without a matching sha256 is
    never trusted."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if not weights_finite(state):
        raise CheckpointError(f"checkpoint {path} not written: the weights hold NaN or inf")
    buffer = io.BytesIO()
    # metadata as JSON text, so that loading needs no pickle (weights_only=True)
    torch.save({"state_dict": state, "meta_json": json.dumps(meta, default=float)}, buffer)
    data = buffer.getvalue()
    _write_bytes(sha256_path(path), f"{hashlib.sha256(data).hexdigest()}  {Path(path).name}\n".encode())
    _write_bytes(Path(path), data)


_ABSENT = object()   # an entry the checkpoint's metadata lacks


def _differences(meta: dict, expect: dict) -> list[str]:
    """'name: stored ... , asked for ...' for each entry of ``expect`` that ``meta`` does not hold."""
    def short(value):
        text = "absent" if value is _ABSENT else repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    out = []
    for name, wanted in expect.items():
        stored = meta.get(name, _ABSENT)
        if stored != wanted:
            if isinstance(stored, dict) and isinstance(wanted, dict):   # a recipe: name its fields
                fields = sorted(k for k in {*stored, *wanted} if stored.get(k, _ABSENT) != wanted.get(k, _ABSENT))
                out.append(f"{name} ({', '.join(fields)}): stored {short({k: stored.get(k) for k in fields})}, "
                           f"asked for {short({k: wanted.get(k) for k in fields})}")
            else:
                out.append(f"{name}: stored {short(stored)}, asked for {short(wanted)}")
    return out


def load_checkpoint(path: Path, model: nn.Module, expect: dict | None = None) -> dict:
    """Load weights into ``model``; returns the checkpoint's metadata. ``expect``: metadata the
    run asks for (model, data set, seed, data hash, ...); a checkpoint whose own metadata differs
    was made for another run (a file copied or renamed) and is refused. CheckpointError says why
    a checkpoint cannot be used (then ``model`` is left as it was)."""
    try:
        expected = (sha256_path(path).read_bytes().decode("ascii", "replace").split() or [""])[0]
    except OSError as err:
        raise CheckpointError(f"checkpoint {path}: no sha256 beside it ({err.strerror})") from None
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise CheckpointError(f"checkpoint {path}: unreadable ({err.strerror})") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CheckpointError(f"checkpoint {path}: file sha256 {actual[:12]}... differs from the stored "
                              f"{expected[:12]}... (corrupted weights or metadata)")
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        state, meta = blob["state_dict"], json.loads(blob["meta_json"])
    except Exception as err:   # bad pickle, missing key, bad JSON: all mean unusable
        raise CheckpointError(f"checkpoint {path}: unreadable ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: its metadata is not a JSON object")
    differ = _differences(meta, expect or {})
    if differ:
        raise CheckpointError(f"checkpoint {path}: made for another run, its metadata differs from the "
                              f"request: {'; '.join(differ)}")
    if not weights_finite(state):
        raise CheckpointError(f"checkpoint {path}: weights hold NaN or inf")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path}: does not fit the model ({str(err)[:200]})") from None
    return meta
