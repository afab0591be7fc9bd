"""Post-training quantization as the paper describes it (Section 3.3), simulated with fake quantization.

One entry point::

    qmodel = quide.quantize(model, PTQConfig(bits=4), calib_images)

- 32 bits: the FP32 model, untouched (a copy).
- 16 bits (uniform): real FP16, ``model.half()``; inputs are cast on the way in, logits back to FP32.
- 2..15 bits: weights quantized once, symmetric (per tensor by default); activations fake-quantized,
  affine per tensor, with ranges calibrated on ``calib_images``. Arithmetic stays FP32, so the
  model's latency is that of the *simulated* model, not of a deployed integer kernel.
- A per-layer list or mapping gives mixed precision; a layer at 16 then runs FP32 arithmetic on
  FP16-rounded weights and activations (simulated FP16).

Quantization conventions follow torch.ao's observers so that both agree to the bit: weights use
the signed range [-2^(b-1), 2^(b-1)-1] with scale = max|w| / ((qmax - qmin) / 2); activations use
[0, 2^b - 1] with the range widened to include 0. BatchNorm that follows a convolution is folded
into it before the weights are quantized, as graph-mode frameworks do.

``placement`` says where activation quantizers sit:

- ``"graph"`` (default): where torch.ao's FX graph mode puts observers: the model input and the
  output of every Conv2d/Linear (after a directly following ReLU, which FX fuses), the logits
  included; residual adds likewise; average pools reuse their input's quantizer.
- ``"inputs"``: the input of every Conv2d/Linear only; the logits stay FP32.

The defaults above are the PTQ sweep's reading of the paper's Section 3.3. :class:`PTQConfig` can
also change one choice at a time, for the ablation of the 4-bit drop (``quide.analysis.ablation``):
BatchNorm kept unfolded, activations at their own bit-width (or FP), symmetric activations, the
first and last layer in FP, the logits left FP, and rounding toward zero.
"""
from __future__ import annotations

import copy
import math
import numbers
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..analysis.index import compression_paper, compression_true
from ..analysis.protocol import (ACTIVATION_SCHEMES, OBSERVERS, PLACEMENTS, ROUNDINGS,  # noqa: F401
                                 SUPPORTED_BITS)   # the protocol's choices
from ..hostlock import gpu_work

CALIB_BATCH = 256  # images per calibration forward pass; ranges do not depend on it


def _check_bits(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in SUPPORTED_BITS:
        raise ValueError(f"PTQConfig.bits: {where} must be an int in 2..16 or 32; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PTQConfig:
    """How to quantize. Validates itself; a bad field raises ValueError naming it.

    bits: one int for uniform precision, a list in the order of :func:`quantizable_layers`, or a
    mapping from layer name to bits.
    calib_size: calibration images (the paper: 512, drawn per seed; see ``quide.measure.data``).
    observer: activation range estimator: ``minmax`` (paper), ``percentile``, ``mse``.
    percentile: for ``observer="percentile"``, in percent (99.99 clips the top 0.01%).
    per_channel: one weight scale per output channel. The paper does not state the granularity;
    per tensor (the default) is our assumption.
    placement: ``graph`` or ``inputs`` (module docstring).
    fold_batchnorm: fold each BatchNorm that follows a convolution into it before its weights are
    quantized (graph-mode frameworks do); False quantizes the convolution's own weights and keeps the
    BatchNorm in FP32 after it, its activation quantizer after the BatchNorm (and its ReLU).
    activation_bits: None: every activation quantizer at the bit-width of its layer; an int of
    ``SUPPORTED_BITS``: all at that width (8: "W4A8"; 32: no activation quantizers, weight-only PTQ).
    activation_scheme: ``affine`` (the paper's: [0, 2^b - 1] with a zero point) or ``symmetric``
    ([-2^(b-1), 2^(b-1) - 1], zero point 0: a ReLU output then uses half the codes).
    fp_first_last: keep the first and last quantizable layer in FP: FP32 weights, and the quantizers
    that belong to them left out (graph: the model input and the logits; inputs: the two layers'
    inputs). ``bits`` and C_paper stay the configured ones; C_true counts the FP32 weights.
    quantize_logits: with the ``graph`` placement, quantize the model's output; False leaves it FP32
    (the ``inputs`` placement never quantizes it).
    rounding: ``nearest`` (round half to even, the fused kernels') or ``truncate`` (toward zero, what
    casting x/scale + zero point to an integer type does), for weights and activations alike.
    """
    bits: int | Sequence[int] | Mapping[str, int] = 8
    calib_size: int = 512
    observer: str = "minmax"
    percentile: float = 99.99
    per_channel: bool = False
    placement: str = "graph"
    fold_batchnorm: bool = True
    activation_bits: int | None = None
    activation_scheme: str = "affine"
    fp_first_last: bool = False
    quantize_logits: bool = True
    rounding: str = "nearest"

    def __post_init__(self):
        b = self.bits
        if isinstance(b, Mapping):
            if not b:
                raise ValueError("PTQConfig.bits: the per-layer mapping is empty")
            object.__setattr__(self, "bits", {name: _check_bits(v, f"layer {name!r}")
                                              for name, v in b.items()})
        elif isinstance(b, (list, tuple)):
            if not b:
                raise ValueError("PTQConfig.bits: the per-layer list is empty")
            object.__setattr__(self, "bits", tuple(_check_bits(v, f"entry {i}") for i, v in enumerate(b)))
        else:
            object.__setattr__(self, "bits", _check_bits(b, "a uniform bit-width"))
        if isinstance(self.calib_size, bool) or not isinstance(self.calib_size, int) or self.calib_size < 1:
            raise ValueError(f"PTQConfig.calib_size must be an int >= 1; got {self.calib_size!r}")
        if self.observer not in OBSERVERS:
            raise ValueError(f"PTQConfig.observer must be one of {OBSERVERS}; got {self.observer!r}")
        if not (50.0 < float(self.percentile) <= 100.0):
            raise ValueError(f"PTQConfig.percentile must be in (50, 100]; got {self.percentile!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"PTQConfig.placement must be one of {PLACEMENTS}; got {self.placement!r}")
        for name in ("per_channel", "fold_batchnorm", "fp_first_last", "quantize_logits"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"PTQConfig.{name} must be True or False; got {getattr(self, name)!r}")
        if self.activation_bits is not None:
            object.__setattr__(self, "activation_bits", self._activation_bits())
        if self.activation_scheme not in ACTIVATION_SCHEMES:
            raise ValueError(f"PTQConfig.activation_scheme must be one of {ACTIVATION_SCHEMES}; "
                             f"got {self.activation_scheme!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"PTQConfig.rounding must be one of {ROUNDINGS}; got {self.rounding!r}")

    def _activation_bits(self) -> int:
        value = self.activation_bits
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in SUPPORTED_BITS:
            raise ValueError(f"PTQConfig.activation_bits must be None or an int in 2..16 or 32; got {value!r}")
        return int(value)

    def activation_bits_of(self, layer_bits: int) -> int:
        """The bit-width of an activation quantizer that belongs to a layer at ``layer_bits``."""
        return layer_bits if self.activation_bits is None else self.activation_bits


@dataclass(frozen=True)
class PTQInfo:
    """What :func:`quantize` did, for result records."""
    layer_bits: dict[str, int]
    kind: str                  # fp32 | fp16 | fake-quant
    C_paper: float             # 32 / mean(configured layer bits)
    C_true: float              # from parameter counts and the bits stored, see layer_sizes()
    placement: str | None
    observer: str | None
    per_channel: bool
    layer_params: dict[str, int] = field(default_factory=dict)
    fp_layers: tuple[str, ...] = ()   # layers whose weights stayed FP32 (fp_first_last); layer_bits says 32


# --- the arithmetic --------------------------------------------------------------------------

def weight_qrange(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def activation_qrange(bits: int) -> tuple[int, int]:
    return 0, 2 ** bits - 1


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                  qmin: int, qmax: int, rounding: str = "nearest") -> torch.Tensor:
    """Quantize then dequantize through PyTorch's fused kernels, as a framework builds the
    simulated model: one ``torch.fake_quantize_per_tensor_affine`` (``scale`` a single value) or
    ``torch.fake_quantize_per_channel_affine`` (``scale`` shaped to broadcast along one dim of
    ``x``, e.g. (-1, 1, 1, 1) for output channels) instead of six elementwise kernels.
    ``tests/test_quant.py`` shows it bit-identical to the elementwise arithmetic it replaced
    (multiply by the float32 reciprocal of the scale, round half to even, clamp, dequantize).
    ``rounding="truncate"`` rounds toward zero instead (:func:`fake_quantize_truncate`)."""
    scale = scale.to(torch.float32)
    zero_point = zero_point.to(torch.int32)
    if rounding == "truncate":
        return fake_quantize_truncate(x, scale, zero_point, qmin, qmax)
    if rounding != "nearest":
        raise ValueError(f"fake_quantize: rounding must be one of {ROUNDINGS}; got {rounding!r}")
    if scale.numel() == 1:
        return torch.fake_quantize_per_tensor_affine(x, scale.reshape(()), zero_point.reshape(()), qmin, qmax)
    axes = [d for d, n in enumerate(scale.shape) if n > 1]
    if len(axes) != 1 or scale.dim() != x.dim() or scale.shape[axes[0]] != x.shape[axes[0]]:
        raise ValueError(f"fake_quantize: scale of shape {tuple(scale.shape)} is neither one value nor "
                         f"one per slice along a single dim of x {tuple(x.shape)}")
    return torch.fake_quantize_per_channel_affine(x, scale.reshape(-1), zero_point.reshape(-1), axes[0], qmin, qmax)


def fake_quantize_truncate(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                           qmin: int | torch.Tensor, qmax: int | torch.Tensor) -> torch.Tensor:
    """The same arithmetic as :func:`fake_quantize` but x * (1/scale) + zero point rounded toward
    zero, as ``(x / scale + zero_point).to(torch.int32)`` does: no fused kernel rounds so, hence
    elementwise ops. ``scale`` and ``zero_point`` broadcast against ``x``; ``qmin`` and ``qmax`` are
    ints or both tensors (an activation quantizer's, so that its graph is one at every bit-width)."""
    scale = scale.to(torch.float32)
    zp = zero_point.to(torch.float32)
    q = torch.clamp(torch.trunc(x * (1.0 / scale) + zp), qmin, qmax)
    return (q - zp) * scale


def symmetric_qparams(min_val: torch.Tensor, max_val: torch.Tensor, bits: int):
    """torch.ao MinMaxObserver, per_tensor_symmetric: zero point 0."""
    qmin, qmax = weight_qrange(bits)
    max_abs = torch.maximum(-torch.clamp(min_val, max=0), torch.clamp(max_val, min=0))
    scale = max_abs / ((qmax - qmin) / 2)
    scale = torch.clamp(scale, min=torch.finfo(torch.float32).eps)
    return scale.float(), torch.zeros_like(scale, dtype=torch.int64)


def affine_qparams(min_val: torch.Tensor, max_val: torch.Tensor, bits: int):
    """torch.ao MinMaxObserver, per_tensor_affine: range widened to include 0."""
    qmin, qmax = activation_qrange(bits)
    lo, hi = torch.clamp(min_val, max=0), torch.clamp(max_val, min=0)
    scale = torch.clamp((hi - lo) / float(qmax - qmin), min=torch.finfo(torch.float32).eps)
    zp = torch.clamp(qmin - torch.round(lo / scale).to(torch.int64), qmin, qmax)
    return scale.float(), zp


def quantize_weight(w: torch.Tensor, bits: int, per_channel: bool = False, rounding: str = "nearest") -> torch.Tensor:
    """Symmetric fake quantization of a weight tensor (dim 0 = output channels)."""
    if bits == 32:
        return w
    if bits == 16:
        return w.half().to(w.dtype)
    qmin, qmax = weight_qrange(bits)
    if per_channel:
        flat = w.detach().reshape(w.shape[0], -1)
        scale, zp = symmetric_qparams(flat.min(1).values, flat.max(1).values, bits)
        shape = (-1,) + (1,) * (w.dim() - 1)
        return fake_quantize(w, scale.view(shape), zp.view(shape), qmin, qmax, rounding)
    scale, zp = symmetric_qparams(w.detach().min(), w.detach().max(), bits)
    return fake_quantize(w, scale, zp, qmin, qmax, rounding)


class ActivationQuantizer(nn.Module):
    """Observes activations while calibrating, then fake-quantizes them (per tensor; ``scheme``
    affine, or symmetric with zero point 0; ``rounding`` as :func:`fake_quantize`'s).

    While ``calibrating`` the input passes through unchanged (as a torch.ao observer does) and
    its range is recorded; :meth:`finish_calibration` fixes scale and zero point.
    """
    SAMPLES_PER_CALL = 1 << 16   # values kept per forward for percentile/mse, by fixed stride
    MSE_GRID = 64                # clipping candidates tried by the mse observer

    def __init__(self, bits: int, observer: str = "minmax", percentile: float = 99.99,
                 scheme: str = "affine", rounding: str = "nearest"):
        super().__init__()
        if scheme not in ACTIVATION_SCHEMES or rounding not in ROUNDINGS:
            raise ValueError(f"ActivationQuantizer: scheme must be one of {ACTIVATION_SCHEMES} and rounding one of "
                             f"{ROUNDINGS}; got {scheme!r}, {rounding!r}")
        self.bits, self.observer, self.percentile = bits, observer, percentile
        self.scheme, self.rounding = scheme, rounding
        self.calibrating = True
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("zero_point", torch.tensor(0, dtype=torch.int32))
        if rounding == "truncate" and bits < 16:
            # the code range as tensors for truncation's clamp: bounds held in tensors, not in the ops'
            # arguments, so that one graph (quide.measure.latency.graph_signature) runs at every width
            self.register_buffer("qbounds", torch.tensor(self.qrange(), dtype=torch.float32))
        self._samples: list[torch.Tensor] = []

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, observer={self.observer}, scheme={self.scheme}, rounding={self.rounding}, "
                f"calibrating={self.calibrating}")

    def qrange(self) -> tuple[int, int]:
        return activation_qrange(self.bits) if self.scheme == "affine" else weight_qrange(self.bits)

    def qparams(self, lo: torch.Tensor, hi: torch.Tensor):
        """Scale and zero point of the range [lo, hi] under the scheme."""
        return (affine_qparams if self.scheme == "affine" else symmetric_qparams)(lo, hi, self.bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            xd = x.detach().float()
            self.min_val = torch.minimum(self.min_val, xd.min())
            self.max_val = torch.maximum(self.max_val, xd.max())
            if self.observer != "minmax":
                flat = xd.flatten()
                step = max(1, math.ceil(flat.numel() / self.SAMPLES_PER_CALL))
                self._samples.append(flat[::step].clone())
            return x
        if self.bits == 32:
            return x
        if self.bits == 16:
            return x.half().to(x.dtype)
        qmin, qmax = self.qrange()
        if self.rounding == "truncate":
            return fake_quantize_truncate(x, self.scale, self.zero_point, self.qbounds[0], self.qbounds[1])
        # one fused kernel; scale (float32) and zero point (int32) are stored as the kernel takes them
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, qmin, qmax)

    def finish_calibration(self) -> None:
        if not torch.isfinite(self.min_val) or not torch.isfinite(self.max_val):
            raise RuntimeError("an activation quantizer saw no finite data during calibration")
        lo, hi = self.min_val, self.max_val
        if self.observer != "minmax":
            samples = torch.cat(self._samples)
            if self.observer == "percentile":
                lo, hi = self._percentile_range(samples)
            else:
                lo, hi = self._mse_range(samples)
        scale, zero_point = self.qparams(lo, hi)
        self.scale, self.zero_point = scale.to(torch.float32), zero_point.to(torch.int32)
        self._samples = []
        self.calibrating = False

    def _percentile_range(self, samples):
        q = self.percentile / 100.0
        s = samples.sort().values
        idx = lambda p: s[min(len(s) - 1, max(0, round(p * (len(s) - 1))))]  # noqa: E731
        return idx(1.0 - q), idx(q)

    def _mse_range(self, samples):
        qmin, qmax = self.qrange()
        best, best_err = (self.min_val, self.max_val), float("inf")
        for alpha in torch.linspace(1.0 / self.MSE_GRID, 1.0, self.MSE_GRID).tolist():
            lo, hi = self.min_val * alpha, self.max_val * alpha
            scale, zp = self.qparams(lo, hi)
            err = (fake_quantize(samples, scale, zp, qmin, qmax, self.rounding) - samples).pow(2).mean().item()
            if err < best_err:
                best, best_err = (lo, hi), err
        return best


class Float16Model(nn.Module):
    """A model run in real FP16: FP32 in, FP32 logits out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half()).float()


# --- the graph rewrite -----------------------------------------------------------------------

QUANTIZABLE = (nn.Conv2d, nn.Linear)
_RELU_FUNCS = (F.relu, torch.relu)
_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_AVGPOOL_MODULES = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_AVGPOOL_FUNCS = (F.avg_pool2d, F.adaptive_avg_pool2d)


def quantizable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv2d and Linear modules by qualified name, in registration order: the GA's layers."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QUANTIZABLE)}


def layer_sizes(model: nn.Module) -> tuple[dict[str, int], int]:
    """Weight counts of the quantizable layers, and the count of every other parameter."""
    layers = {n: m.weight.numel() for n, m in quantizable_layers(model).items()}
    total = sum(p.numel() for p in model.parameters())
    return layers, total - sum(layers.values())


def resolve_bits(model: nn.Module, bits) -> dict[str, int]:
    """Per-layer bits as a mapping over :func:`quantizable_layers`; errors name the layer."""
    names = list(quantizable_layers(model))
    if isinstance(bits, Mapping):
        unknown = sorted(set(bits) - set(names))
        missing = [n for n in names if n not in bits]
        if unknown or missing:
            raise ValueError(f"PTQConfig.bits: unknown layers {unknown}, missing layers {missing}; "
                             f"the model's layers are {names}")
        return {n: bits[n] for n in names}
    if isinstance(bits, tuple):
        if len(bits) != len(names):
            raise ValueError(f"PTQConfig.bits: {len(bits)} entries for {len(names)} layers {names}")
        return dict(zip(names, bits))
    return dict.fromkeys(names, bits)


def _is_module(gm, node, types) -> bool:
    return node.op == "call_module" and isinstance(gm.get_submodule(node.target), types)


def _is_relu(gm, node) -> bool:
    return (_is_module(gm, node, nn.ReLU)
            or (node.op == "call_function" and node.target in _RELU_FUNCS)
            or (node.op == "call_method" and node.target == "relu"))


def _set_submodule(root: nn.Module, qualname: str, module: nn.Module) -> None:
    parent, _, name = qualname.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def fold_batchnorm(model: nn.Module) -> torch.fx.GraphModule:
    """Trace with torch.fx and fold every BatchNorm2d that directly follows a Conv2d (eval mode)."""
    gm = torch.fx.symbolic_trace(model)
    for node in list(gm.graph.nodes):
        if not _is_module(gm, node, nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if isinstance(prev, torch.fx.Node) and _is_module(gm, prev, nn.Conv2d) and len(prev.users) == 1:
            fused = fuse_conv_bn_eval(gm.get_submodule(prev.target), gm.get_submodule(node.target))
            _set_submodule(gm, prev.target, fused)
            node.replace_all_uses_with(prev)
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def _insert_quantizers(gm: torch.fx.GraphModule, layer_bits: dict[str, int],
                       config: PTQConfig) -> list[ActivationQuantizer]:
    """Put activation quantizers into ``gm`` where ``config.placement`` says (module docstring),
    leaving out those of FP layers (``fp_first_last``), the logits' (``quantize_logits``) and any
    whose bit-width is 32 (``activation_bits=32``: weight-only)."""
    quantizers: list[ActivationQuantizer] = []
    graph = gm.graph
    names = list(layer_bits)
    fp_layers = {names[0], names[-1]} if config.fp_first_last else set()

    def new_quantizer(bits):
        q = ActivationQuantizer(bits, config.observer, config.percentile, config.activation_scheme, config.rounding)
        name = f"act_quant_{len(quantizers)}"
        gm.add_module(name, q)
        quantizers.append(q)
        return name

    def quantize_after(node, layer_bits_here) -> torch.fx.Node | None:
        bits = config.activation_bits_of(layer_bits_here)
        if bits == 32:
            return None
        name = new_quantizer(bits)
        with graph.inserting_after(node):
            qnode = graph.call_module(name, (node,))
        node.replace_all_uses_with(qnode, delete_user_cb=lambda user: user is not qnode)
        return qnode

    nodes = list(graph.nodes)
    if config.placement == "inputs":
        for node in nodes:
            if _is_module(gm, node, QUANTIZABLE) and node.target not in fp_layers:
                bits = config.activation_bits_of(layer_bits[node.target])
                if bits == 32:
                    continue
                name = new_quantizer(bits)
                with graph.inserting_before(node):
                    qnode = graph.call_module(name, (node.args[0],))
                node.replace_input_with(node.args[0], qnode)
        return quantizers

    quantizer_of: dict[torch.fx.Node, str] = {}   # node -> quantizer applied to its output
    current_bits = layer_bits[names[0]]
    for node in nodes:
        if node.op == "placeholder":
            if not config.fp_first_last and (qnode := quantize_after(node, current_bits)) is not None:
                quantizer_of[node] = qnode.target
            continue
        is_layer = _is_module(gm, node, QUANTIZABLE)
        is_add = node.op == "call_function" and node.target in _ADD_FUNCS
        if is_layer:
            current_bits = layer_bits[node.target]
        if is_layer or is_add:
            out = node
            users = list(node.users)
            if not config.fold_batchnorm and len(users) == 1 and _is_module(gm, users[0], nn.BatchNorm2d):
                out = users[0]   # the unfolded BatchNorm belongs to its convolution's output
                users = list(out.users)
            if len(users) == 1 and _is_relu(gm, users[0]):
                out = users[0]   # FX fuses op + ReLU and observes after the ReLU
            logits = any(user.op == "output" for user in out.users)
            if logits and (not config.quantize_logits or config.fp_first_last):
                continue
            if (qnode := quantize_after(out, current_bits)) is not None:
                quantizer_of[out] = qnode.target
        elif (_is_module(gm, node, _AVGPOOL_MODULES)
              or (node.op == "call_function" and node.target in _AVGPOOL_FUNCS)):
            src = node.args[0]
            if src.op == "call_module" and src.target in quantizer_of.values():
                # torch.ao shares the input's quantizer with average pools: re-round onto its grid
                with graph.inserting_after(node):
                    qnode = graph.call_module(src.target, (node,))
                node.replace_all_uses_with(qnode, delete_user_cb=lambda user: user is not qnode)
    return quantizers


def _calibrate(model: nn.Module, quantizers, calib_data: torch.Tensor) -> None:
    if len(calib_data) == 0:
        raise ValueError("calib_data is empty: calibration needs at least one image")
    with torch.inference_mode():
        for start in range(0, len(calib_data), CALIB_BATCH):
            with gpu_work():   # one batch at a time: another run's timing waits at most one batch
                model(calib_data[start:start + CALIB_BATCH])
    for q in quantizers:
        q.finish_calibration()


def quantize(model: nn.Module, config: PTQConfig, calib_data: torch.Tensor | None = None) -> nn.Module:
    """Return a quantized copy of ``model`` (the original is not touched); see the module docstring.

    ``calib_data``: normalized images on the model's device, usually ``config.calib_size`` of
    them drawn with the run's seed (``quide.measure.data.calibration_indices``). Not needed at 32 or 16.
    The returned module carries a :class:`PTQInfo` as ``.ptq_info``.
    """
    if not isinstance(config, PTQConfig):
        raise TypeError(f"config must be a PTQConfig; got {type(config).__name__}")
    model = copy.deepcopy(model).eval()
    layer_bits = resolve_bits(model, config.bits)
    sizes, other = layer_sizes(model)
    values = set(layer_bits.values())
    bits_list = list(layer_bits.values())
    c_paper = compression_paper(bits_list)   # the configured bit-widths, as the paper counts them
    fp_layers: tuple[str, ...] = ()

    if values == {32}:
        qmodel, kind, placement, observer = model, "fp32", None, None
        c_true = 1.0
    elif values == {16}:
        qmodel, kind, placement, observer = Float16Model(model), "fp16", None, None
        c_true = compression_true(bits_list, list(sizes.values()), other, other_bits=16)
    else:
        if calib_data is None:
            raise ValueError(f"calib_data is required to quantize below 16 bits (bits={config.bits})")
        qmodel = fold_batchnorm(model) if config.fold_batchnorm else torch.fx.symbolic_trace(model)
        quantizers = _insert_quantizers(qmodel, layer_bits, config)
        qmodel.graph.lint()
        qmodel.recompile()
        if config.fp_first_last:   # their weights stay FP32: what is stored, and C_true, say so
            names = list(layer_bits)
            fp_layers = tuple(dict.fromkeys((names[0], names[-1])))
            layer_bits = {n: 32 if n in fp_layers else b for n, b in layer_bits.items()}
        # Calibrate on the float model's activations (as torch.ao's observers do), then round weights.
        _calibrate(qmodel, quantizers, calib_data)
        for name, bits in layer_bits.items():
            layer = qmodel.get_submodule(name)
            with torch.no_grad():
                layer.weight.copy_(quantize_weight(layer.weight, bits, config.per_channel, config.rounding))
        kind, placement, observer = "fake-quant", config.placement, config.observer
        c_true = compression_true(list(layer_bits.values()), list(sizes.values()), other)
    qmodel.ptq_info = PTQInfo(layer_bits=layer_bits, kind=kind, C_paper=c_paper, C_true=c_true,
                              placement=placement, observer=observer,
                              per_channel=config.per_channel if kind == "fake-quant" else False,
                              layer_params=sizes, fp_layers=fp_layers)
    return qmodel
