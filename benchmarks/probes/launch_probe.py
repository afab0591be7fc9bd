"""Is a graph-replay timing bound by the host's launch rate? Each graph timed with the GPU idle at
the start event (as ``quide.measure.latency`` timed until this probe) and with the stream first held by a
spin kernel, so that every replay of the round is queued before the start event runs.

Why: in the reruns of issue 13 one whole block (run a, SimpleCNN MNIST EXP-3) timed the same graphs
3.5-5% faster than every other record of those graphs, on any card of either run, and faster than
one H200 alone at its top clock. A GPU at its top clock cannot run a graph faster; a host that
launches faster can, if the GPU waits for launches. If so, T moves with the host's CPU, and it
should move under CPU load where it is not held, and not move where it is.

For one untrained SimpleCNN (MNIST shape; FP32, 16-bit and fake-quant graphs, as
``benchmarks/probes/timer_probe.py`` builds them) and ResNet-18 (CIFAR stem), batch 64: per graph and
condition (host idle; every other CPU core spinning), 21 interleaved rounds of 50 replays, timed
both ways; the median ms per pass, its 95% CI, and the host's own seconds to enqueue one replay.

    python benchmarks/probes/launch_probe.py [--out FILE.json]      # on a GPU machine; about a minute
"""
import argparse
import json
import multiprocessing as mp
import os
import time

import numpy as np
import torch

from quide.measure import latency as ql
from timer_probe import variants   # run from the repository root: benchmarks/ is the script's folder

ROUNDS, PASSES = 21, 50
HOLD_MS = 5.0   # spin before a held round; several times the ~0.5 ms a host takes to enqueue 50 replays


def spin(stop):
    while not stop.is_set():
        pass


def rounds(graphs, hold_cycles):
    """{key: (ms per pass of each round, host µs to enqueue one replay of each round)}."""
    out = {k: ([], []) for k in graphs}
    rng = np.random.default_rng(0)
    keys = list(graphs)
    for _ in range(ROUNDS):
        pending = []
        for i in rng.permutation(len(keys)):
            graph = graphs[keys[i]]
            if hold_cycles:
                torch.cuda._sleep(hold_cycles)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            t0 = time.perf_counter()
            for _ in range(PASSES):
                graph.replay()
            enqueue_us = (time.perf_counter() - t0) * 1e6 / PASSES
            end.record()
            pending.append((keys[i], start, end, enqueue_us))
        torch.cuda.synchronize()
        for key, start, end, enqueue_us in pending:
            out[key][0].append(start.elapsed_time(end) / PASSES)
            out[key][1].append(enqueue_us)
    return out


def cycles_per_ms():
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(1000)
    start.record()
    torch.cuda._sleep(10_000_000)
    end.record()
    torch.cuda.synchronize()
    return 10_000_000 / start.elapsed_time(end)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        ap.error("this probe times CUDA graphs; no CUDA device here")
    device = torch.device("cuda")
    hold = int(HOLD_MS * cycles_per_ms())
    graphs = {}
    for name, shape in (("simplecnn", (28, 28, 1)), ("resnet18_cifar", (32, 32, 3))):
        models, example = variants(name, 10, shape, device)
        for bits in (32, 16, 8):
            with torch.inference_mode():   # as quide.measure.latency captures: the timer's own helper
                graphs[f"{name} {bits}"] = ql.capture_graphs(lambda m=models[bits]: m(example), device)[0]
    rows = []
    for condition in ("host idle", "other cores spinning"):
        stop, workers = mp.Event(), []
        if condition != "host idle":
            workers = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range((os.cpu_count() or 2) - 1)]
            for w in workers:
                w.start()
            time.sleep(1.0)
        try:
            for timing in ("idle start", "held start"):
                cycles = hold if timing == "held start" else 0
                rounds(graphs, cycles)   # warm this way once, untimed
                for key, (ms, enq) in rounds(graphs, cycles).items():
                    median, lo, hi = ql.median_ci(ms)
                    rows.append({"condition": condition, "timing": timing, "graph": key, "T_ms": median,
                                 "ci_pct": 100 * (hi - lo) / median, "enqueue_us": float(np.median(enq))})
        finally:
            stop.set()
            for w in workers:
                w.join()
    print(f"device: {ql.describe_device(device)[0]}; {os.cpu_count()} CPUs; hold {HOLD_MS} ms = {hold} cycles")
    print(f"{'condition':22} {'timing':11} {'graph':20} {'T ms':>9} {'CI %':>6} {'enqueue us':>10} {'vs idle host %':>14}")
    base = {(r["timing"], r["graph"]): r["T_ms"] for r in rows if r["condition"] == "host idle"}
    for r in rows:
        rel = 100 * (r["T_ms"] / base[r["timing"], r["graph"]] - 1)
        print(f"{r['condition']:22} {r['timing']:11} {r['graph']:20} {r['T_ms']:9.5f} {r['ci_pct']:6.2f} "
              f"{r['enqueue_us']:10.1f} {rel:+14.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": ql.describe_device(device)[0], "cpus": os.cpu_count(), "hold_ms": HOLD_MS,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
