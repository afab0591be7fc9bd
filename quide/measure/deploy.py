"""Deployed latency of the CNNs: each bit-width run by the fastest real kernel path the GPU has.

The index's T (``quide.measure.latency``) times the *simulated* model: FP32 arithmetic with quantize and
dequantize ops around it, so 4-bit looks no faster than 32-bit. Here each bit-width is timed as it
would be deployed, by the same timer (batch 64; every candidate path captured in CUDA graphs and
timed in one interleaved block by :func:`quide.measure.latency.time_callables`; the host clock on a CPU):

- 32: FP32 with TF32 off (TF32 rounds inputs to a 10-bit mantissa, so it is timed as a candidate
  of 16-bit-class arithmetic, not as 32-bit);
- 16: the fastest of FP16, BF16 and TF32, each in the NCHW and channels_last layouts;
- 8, 4, 2: no path. PyTorch's CUDA backend has no INT8/FP8 *convolution* kernel (torch.ao's
  quantized convolutions run on CPU backends only; ``torch._int_mm`` and torchao's int8/FP8 cover
  Linear layers), and no library here offers 4- or 2-bit convolutions. A model that is mostly
  convolutions cannot run in 8 bits end to end, so its T_deployed is None with this reason, rather
  than the simulated number.

Latency does not depend on the weights' values (dense kernels), so a model is timed as given; the
benchmark times freshly built ones and joins the times to the sweeps' P and C.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ..analysis.aggregate import mark_knee
from ..analysis.index import gated_index, intelligence_index
from .latency import TimerConfig, time_callables

NO_LOW_BIT_KERNEL = ("no {bits}-bit convolution kernel on CUDA in PyTorch or torchao "
                     "(torch.ao quantized convs are CPU-only; int8/FP8 kernels cover Linear layers)")


@contextmanager
def _backend(tf32: bool):
    """TF32 on or off, and cuDNN's autotuner on (a deployment picks its fastest kernels; the
    paper's protocol leaves it off)."""
    b = torch.backends
    old = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark)
    b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = tf32
    b.cudnn.benchmark = True
    try:
        yield
    finally:
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.benchmark = old


def candidates(bits: int, device: torch.device) -> list[tuple[str, torch.dtype, bool]]:
    """(name, dtype, tf32) of each real path for ``bits`` on ``device``; empty where none exists."""
    if bits not in (32, 16, 8, 4, 2):
        raise ValueError(f"bits must be one of 32, 16, 8, 4, 2; got {bits!r}")
    cuda = torch.device(device).type == "cuda"
    if bits == 32:
        return [("fp32", torch.float32, False)]
    if bits == 16:   # TF32 and FP16 are GPU formats; a CPU has BF16 only
        return [("tf32", torch.float32, True), ("bf16", torch.bfloat16, False), ("fp16", torch.float16, False)] \
            if cuda else [("bf16", torch.bfloat16, False)]
    return []


def deployed_batch_latency(model: nn.Module, bits: int, example: torch.Tensor,
                           timer: TimerConfig = TimerConfig()) -> dict:
    """T_deployed_ms, milliseconds per batch (``example`` is the batch), of ``model`` at ``bits`` on
    ``example``'s device: the fastest candidate path (each in NCHW and channels_last), its name in
    ``T_deployed_kind``, its 95% CI and timer method, every candidate's median in ``candidates_ms``;
    or None with ``T_deployed_reason``. All candidates are timed in one interleaved block."""
    device = example.device
    paths = candidates(bits, device)
    if not paths:
        reason = NO_LOW_BIT_KERNEL.format(bits=bits) if device.type == "cuda" else \
            "only GPU paths are timed (torch.ao's CPU int8 kernels are not)"
        return {"T_deployed_ms": None, "T_deployed_kind": None, "T_deployed_reason": reason, "candidates_ms": {}}
    fns = {}
    for name, dtype, tf32 in paths:
        for layout in (torch.contiguous_format, torch.channels_last):
            m = copy.deepcopy(model).to(device=device, dtype=dtype, memory_format=layout).eval()
            x = example.to(dtype=dtype, memory_format=layout)
            label = f"{name}, {'channels_last' if layout is torch.channels_last else 'NCHW'}"

            def run(m=m, x=x, tf32=tf32):   # the backend flags choose kernels when a graph is captured
                with _backend(tf32):
                    return m(x)
            fns[label] = run
    # TF32 and FP32 run the same ATen ops: every path is its own measurement
    timings = time_callables(fns, device, timer, signatures={label: label for label in fns})
    best = min(timings, key=lambda k: timings[k].median_ms)
    return {"T_deployed_ms": timings[best].median_ms, "T_deployed_ci_ms": list(timings[best].ci_ms),
            "T_deployed_method": timings[best].method, "T_deployed_kind": best, "T_deployed_reason": None,
            "candidates_ms": {k: t.median_ms for k, t in timings.items()}}


def with_deployed(table: pd.DataFrame, deployed: pd.DataFrame) -> pd.DataFrame:
    """Table 1 rows (``quide.analysis.aggregate.table1``) joined with deployed latencies (columns model,
    dataset, bits, T_deployed_ms, T_deployed_kind, T_deployed_reason): I and I' recomputed from the
    seed-mean P and C with T_deployed, and ``knee_deployed`` marking the argmax of that I' among the
    bit-widths that can be deployed, by the same rule as Table 1's Knee."""
    keys = ["model", "dataset", "bits"]
    dep = deployed.assign(bits=deployed["bits"].astype(str))[keys + ["T_deployed_ms", "T_deployed_kind",
                                                                    "T_deployed_reason"]]
    out = table.merge(dep, on=keys, how="left", validate="many_to_one")
    has_t = out["T_deployed_ms"].notna()
    out["I_deployed"] = out["I_gated_deployed"] = np.nan
    d = out[has_t]
    t = d["T_deployed_ms"].astype(float)
    out.loc[has_t, "I_deployed"] = intelligence_index(d["C_paper"], d["P_mean"], t)
    out.loc[has_t, "I_gated_deployed"] = gated_index(d["C_paper"], d["P_mean"], t, d["p_thresh"])
    return mark_knee(out, "I_gated_deployed", "knee_deployed")
