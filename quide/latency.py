"""The paper's latency protocol (Section 3.3): median wall time of one forward pass of a batch of 64.

100 warm-up passes, then 1,000 timed passes, each bracketed by ``torch.cuda.synchronize()``
(on CUDA), under ``torch.inference_mode()``; the median in ms. We also return p10/p90 and the
device. For a fake-quantized model this is the latency of the *simulated* model (FP32 arithmetic
plus quantize/dequantize ops), not of a deployed low-precision kernel: records say which
(``T_kind``).
"""
from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

BATCH = 64       # images per timed pass (paper)
WARMUP = 100     # untimed passes before timing (paper)
TIMED = 1000     # timed passes; the median is reported (paper)


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p10_ms: float
    p90_ms: float
    passes: int
    warmup: int
    batch: int
    device: str          # e.g. "NVIDIA H100 80GB HBM3" or the CPU model
    driver: str | None   # NVIDIA driver version where known

    def as_dict(self) -> dict:
        return asdict(self)


def describe_device(device: torch.device | str) -> tuple[str, str | None]:
    """(name, driver) of a device: the GPU's name and driver, or the CPU model and thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            driver = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            driver = None
        return name, driver
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"CPU {cpu} ({torch.get_num_threads()} threads)", None


def measure_latency(model: torch.nn.Module, example: torch.Tensor, warmup: int = WARMUP,
                    timed: int = TIMED, timer: str = "host") -> Latency:
    """Time ``model(example)`` by the paper's protocol on the device ``example`` lives on.

    ``timer="host"`` (the paper's): ``time.perf_counter`` around each pass, the device
    synchronized before and after. ``timer="cuda_events"``: CUDA events recorded on the stream
    around each pass (GPU time only, no host overhead of the synchronization), read after the
    last pass; CUDA only."""
    if warmup < 0 or timed < 1:
        raise ValueError(f"warmup must be >= 0 and timed >= 1; got warmup={warmup}, timed={timed}")
    if timer not in ("host", "cuda_events"):
        raise ValueError(f"timer must be 'host' or 'cuda_events'; got {timer!r}")
    device = example.device
    if timer == "cuda_events" and device.type != "cuda":
        raise ValueError("timer='cuda_events' needs a CUDA example")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    times = np.empty(timed)
    model.eval()
    with torch.inference_mode():
        for _ in range(warmup):
            model(example)
        if timer == "cuda_events":
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(timed)]
            sync(device)
            for start, end in events:
                start.record()
                model(example)
                end.record()
            sync(device)
            times[:] = [start.elapsed_time(end) / 1e3 for start, end in events]
        else:
            for i in range(timed):
                sync(device)
                start = time.perf_counter()
                model(example)
                sync(device)
                times[i] = time.perf_counter() - start
    name, driver = describe_device(device)
    ms = times * 1e3
    return Latency(float(np.median(ms)), float(np.percentile(ms, 10)), float(np.percentile(ms, 90)),
                   timed, warmup, int(example.shape[0]), name, driver)
