"""Latency: a timer that measures the model, and the paper's protocol beside it.

Two figures per configuration:

- ``T_ms``, the one the index uses: :func:`time_models`. On CUDA each distinct model is warmed up,
  its batch-64 inference forward captured in ``captures`` CUDA graphs, and each graph replayed
  ``passes`` times per round, timed with CUDA events; ``rounds`` rounds interleave every capture of
  every variant of one model (in a fresh seeded order each round), so drift hits all of them alike.
  T = median of the rounds' ms per pass, pooled over captures, with a distribution-free 95%
  confidence interval of that median (order statistics over the pooled values).
  Where capture fails, CUDA events around eager passes, with the reason recorded; on a CPU the host
  clock (``time.perf_counter``) around the passes. ``T_method`` says which.
  Variants that execute the same graph (same ATen ops, dtypes and shapes, see
  :func:`graph_signature`) are one measurement: 8-bit and 4-bit fake-quant models differ only in
  clamp bounds, so they share one timing instead of two noisy ones.
- ``T_host_ms``, the paper's protocol (Section 3.3): :func:`measure_latency`. 100 warm-up passes,
  then 1,000 passes, each bracketed by ``torch.cuda.synchronize()`` on the host clock, median.
  At these latencies (0.1-2 ms) it mostly measures launch and synchronisation overhead, which moves
  with whatever else the host does; it is kept so the book can set both side by side.

For a fake-quantized model either figure is the latency of the *simulated* model (FP32 arithmetic
plus fused quantize/dequantize ops), not of a deployed low-precision kernel: records say which
(``T_kind``).

Measured (``benchmarks/probes/timer_probe.py``, one H200, untrained models, batch 64, 5 interleaved
rounds of each timer):
coefficient of variation across rounds 18-24% (SimpleCNN) for the paper's host protocol, 20-36% for
CUDA events around single passes, 0.0-0.4% for graph replays timed with events.
"""
from __future__ import annotations

import hashlib
import math
import platform
import subprocess
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..analysis.protocol import BATCH, T_METHODS, TIMED, WARMUP, TimerConfig  # noqa: F401 (the protocol's timer)
from ..hostlock import gpu_work, timing_turn   # the host to itself while timing



# --- the paper's protocol (T_host_ms) ------------------------------------------------------------

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
    with timing_turn(), torch.inference_mode():
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


# --- the timer that measures the model (T_ms) ----------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """One variant's T: the median over rounds of ms per pass, its 95% CI, and how it was taken."""
    median_ms: float
    ci_ms: tuple[float, float]
    method: str                    # one of T_METHODS
    reason: str | None             # why a fallback method was used, else None
    rounds_ms: tuple[float, ...]   # ms per pass of each round and capture (round-major)
    passes: int                    # passes per round and capture
    signature: str                 # graph_signature of what was timed
    shared_by: int = 1             # variants of the block that share this measurement
    device: str = ""
    driver: str | None = None
    alone: bool = False            # taken in a timing_turn: no other quide GPU work on the host
    captures: int = 1              # graphs captured and timed in each round (1 off the graph path)
    attempts: int = 1              # blocks timed to get intervals within TimerConfig.max_ci_pct
    attempt_medians_ms: tuple[float, ...] = ()   # this graph's median in each block timed, kept or not
    block_starts_utc: tuple[str, ...] = ()       # when each of those blocks began (UTC, ISO 8601)

    def record_fields(self) -> dict:
        """The fields a result record carries for this timing."""
        return {"T_ms": self.median_ms, "T_ci_ms": list(self.ci_ms), "T_method": self.method,
                "T_method_reason": self.reason, "T_rounds": len(self.rounds_ms) // self.captures,
                "T_captures": self.captures, "T_attempts": self.attempts,
                "T_attempt_medians_ms": list(self.attempt_medians_ms),
                "T_block_starts_utc": list(self.block_starts_utc),
                "T_passes_per_round": self.passes, "T_signature": self.signature,
                "T_alone_on_host": self.alone}


def median_ci(samples, level: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): the sample median and a distribution-free CI for the population
    median from order statistics (the binomial(n, 1/2) sign-test interval), covering at least
    ``level``. Needs n >= 6 for 95%."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    tail = (1 - level) / 2
    # the largest k with P(Binom(n, 1/2) < k) <= tail: then [x_(k), x_(n+1-k)] covers >= level
    cdf, k = 0.0, 0
    while k < n and cdf + math.comb(n, k) / 2 ** n <= tail:
        cdf += math.comb(n, k) / 2 ** n
        k += 1
    if k == 0:
        raise ValueError(f"{n} samples are too few for a {level:.0%} CI of the median")
    return float(np.median(x)), float(x[k - 1]), float(x[n - k])


class _OpTrace(TorchDispatchMode):
    """Records each ATen op with its tensors' dtypes and shapes and its other arguments."""
    # ops whose integer arguments are clamp bounds: they change values, not the work done
    RANGE_ARGS = ("fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine")

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        parts = []
        for a in list(args) + list((kwargs or {}).values()):
            if isinstance(a, torch.Tensor):
                parts.append(f"{a.dtype}{tuple(a.shape)}")
            elif not (isinstance(a, int) and any(r in name for r in self.RANGE_ARGS)):
                parts.append(repr(a))
        self.ops.append(f"{name}({', '.join(parts)})")
        return func(*args, **(kwargs or {}))


def graph_signature(fn: Callable[[], object]) -> str:
    """A short hash of what ``fn()`` executes: its ATen ops in order, with dtypes, shapes and
    non-tensor arguments (clamp bounds of fake-quant ops excepted). Equal signatures run the same
    kernels on the same shapes, so they take the same time."""
    trace = _OpTrace()
    with gpu_work(), torch.inference_mode(), trace:   # a forward pass: another run's timing waits
        fn()
    return hashlib.sha256("\n".join(trace.ops).encode()).hexdigest()[:16]


def capture_graphs(fn: Callable[[], object], device: torch.device, captures: int = 1) -> list:
    """``captures`` CUDA graphs of ``fn()`` on ``device``, after three warm-up calls on a side stream
    (capture wants warmed-up kernels and allocator state). Raises whatever capture raises."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graphs = [torch.cuda.CUDAGraph() for _ in range(captures)]
    for graph in graphs:
        with torch.cuda.graph(graph):
            fn()
    return graphs


def _round_timers(fn: Callable[[], object], device: torch.device, config: TimerConfig):
    """(method, reason, [time_one_round, ...]) for ``fn`` on ``device``: one timer per captured
    graph (``config.captures``) on the graph path, else one. ``time_one_round()`` returns the ms per
    pass of ``config.passes`` passes (its own sync on the host path only; on CUDA a reader to call
    after the round's synchronize)."""
    passes = config.passes
    if device.type != "cuda":
        def host_round():
            start = time.perf_counter()
            for _ in range(passes):
                fn()
            return (time.perf_counter() - start) * 1e3 / passes
        return "host", None, [host_round]

    def events_round(run):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(passes):
            run()
        end.record()
        return lambda: start.elapsed_time(end) / passes   # read after the round's synchronize

    reason = "cuda_graphs=False" if not config.cuda_graphs else None
    if config.cuda_graphs:
        try:
            graphs = capture_graphs(fn, device, config.captures)
            return "cuda_graph", None, [(lambda g: lambda: events_round(g.replay))(g) for g in graphs]
        except Exception as err:   # e.g. an op that syncs with the host: fall back, say why
            reason = f"graph capture failed: {type(err).__name__}: {str(err)[:200]}"
            torch.cuda.synchronize(device)
    return "cuda_events", reason, [lambda: events_round(fn)]


def time_callables(fns: Mapping[Hashable, Callable[[], object]], device: torch.device | str,
                   config: TimerConfig = TimerConfig(), signatures: Mapping[Hashable, str] | None = None
                   ) -> dict[Hashable, Timing]:
    """Time each callable (one forward pass each) in one interleaved block; see the module docstring.

    Callables with equal ``signatures`` (default: :func:`graph_signature` of each) are timed once
    and share the result. Returns {key: Timing}."""
    if not fns:
        raise ValueError("time_callables: nothing to time")
    device = torch.device(device)
    signatures = dict(signatures) if signatures is not None else {k: graph_signature(f) for k, f in fns.items()}
    first: dict[str, Hashable] = {}
    for key in fns:
        first.setdefault(signatures[key], key)
    timers = {}
    with timing_turn() as alone, torch.inference_mode():
        for sig, key in first.items():
            for _ in range(config.warmup):
                fns[key]()
            timers[sig] = _round_timers(fns[key], device, config)
        order = [(sig, timer) for sig in first for timer in timers[sig][2]]   # every capture of every graph
        rng = np.random.default_rng(config.seed)

        def block() -> dict[str, list[float]]:
            rounds = {sig: [] for sig in first}
            for _ in range(config.rounds):
                pending = []
                for i in rng.permutation(len(order)):
                    sig, timer = order[i]
                    if device.type == "cuda":
                        pending.append((sig, timer()))   # events recorded now, read below
                    else:
                        rounds[sig].append(timer())
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                    for sig, read in pending:
                        rounds[sig].append(read())
            return rounds

        medians: dict[str, list[float]] = {sig: [] for sig in first}
        starts: list[str] = []
        rounds, attempts = settled_block(noting_medians(block, medians, starts), config.max_ci_pct,
                                         config.attempts if device.type == "cuda" else 1)
    name, driver = describe_device(device)
    shared = {sig: sum(1 for k in fns if signatures[k] == sig) for sig in first}
    out = {}
    for sig in first:
        median, lo, hi = median_ci(rounds[sig])
        method, reason, _ = timers[sig]
        out[sig] = Timing(median, (lo, hi), method, reason, tuple(rounds[sig]), config.passes, sig,
                          shared[sig], name, driver, alone, len(timers[sig][2]), attempts, tuple(medians[sig]),
                          tuple(starts))
    return {k: out[signatures[k]] for k in fns}


def noting_medians(block: Callable[[], dict[str, list[float]]], medians: dict[str, list[float]],
                   starts: list[str]) -> Callable[[], dict[str, list[float]]]:
    """``block`` that also appends each graph's median of every block it times to ``medians``, so
    a record keeps the blocks it did not keep: whether a retried block moved as a whole shows. When
    each block began (UTC) goes to ``starts``, to set a block beside a host's logs of that moment."""
    def timed():
        starts.append(datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
        rounds = block()
        for sig, values in rounds.items():
            medians.setdefault(sig, []).append(float(np.median(values)))
        return rounds
    return timed


def widest_ci_pct(rounds: Mapping[str, list[float]]) -> float:
    """The widest 95% CI of the block's medians, in percent of its median."""
    widths = []
    for values in rounds.values():
        median, lo, hi = median_ci(values)
        widths.append(100 * (hi - lo) / median)
    return max(widths)


def medians_agree(a: Mapping[str, list[float]], b: Mapping[str, list[float]], pct: float) -> bool:
    """Whether every graph's median in block ``b`` lies within ``pct`` percent of its median in ``a``."""
    return all(abs(np.median(b[sig]) - np.median(a[sig])) <= pct / 100 * np.median(a[sig]) for sig in a)


def settled_block(block: Callable[[], dict[str, list[float]]], max_ci_pct: float, attempts: int
                  ) -> tuple[dict[str, list[float]], int]:
    """Time ``block()`` until it settles, at most ``attempts`` times; (the block kept, blocks timed).

    A first block whose widest CI is within ``max_ci_pct`` percent is kept. After a wider one, a
    narrow block is kept only once another narrow block agrees with it (:func:`medians_agree`
    within ``max_ci_pct``), the narrower of the two; what disturbed the first block may have moved
    the next one as a whole. If no two narrow blocks agree, the narrowest block timed is kept."""
    timed: list[tuple[dict[str, list[float]], float]] = []
    for n in range(1, attempts + 1):
        rounds = block()
        width = widest_ci_pct(rounds)
        if width <= max_ci_pct:
            if n == 1:
                return rounds, 1
            for earlier, earlier_width in timed:
                if earlier_width <= max_ci_pct and medians_agree(earlier, rounds, max_ci_pct):
                    return (rounds if width <= earlier_width else earlier), n
        timed.append((rounds, width))
    return min(timed, key=lambda t: t[1])[0], len(timed)


def time_models(models: Mapping[Hashable, torch.nn.Module], example: torch.Tensor,
                config: TimerConfig = TimerConfig(), signatures: Mapping[Hashable, str] | None = None
                ) -> dict[Hashable, Timing]:
    """:func:`time_callables` over ``model(example)`` for each model (put in eval mode)."""
    fns = {}
    for key, model in models.items():
        model.eval()
        fns[key] = (lambda m: lambda: m(example))(model)
    return time_callables(fns, example.device, config, signatures)
