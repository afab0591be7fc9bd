"""How long a stopped `quide reproduce` takes to exit, and what it leaves running: the figure behind
``quide.reproduce.STOP_GRACE_S``.

Each try starts ``quide reproduce CONFIG --out <fresh folder> [--runs-per-gpu K] --budget-s B
--time-limit-s 86400``, with B = ``--after-s`` + ``STOP_GRACE_S`` (the time limit lets every run start,
expected to fit or not), so that the runner stops itself ``--after-s`` seconds after its start with runs in flight (its cluster closed, what the runs started waited for and killed if
need be), and prints the seconds from the stop until the command exited, and until nothing of it was left:
no process of the kernels that ran one second before the stop (they live in sessions of their own,
so the group's signals miss them; they quit when their papermill does) and, with a GPU, no compute
process on it (``nvidia-smi``), polled every 0.1 s for up to 30 s. From the repository root::

    python benchmarks/probes/stop_probe.py reproduce/smoke.toml --after-s 20 --tries 3               # CPU
    python benchmarks/probes/stop_probe.py grid.toml --runs-per-gpu 6 --after-s 60 --tries 2         # GPU
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from quide.reproduce import STOP_GRACE_S

POLL_S = 0.1
CLEAR_WITHIN_S = 30.0


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kernel_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ipykernel_launcher"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def gpu_pids() -> list[int]:
    """Compute processes on the GPUs; none where there is no nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if p.strip().isdigit()]


def run_command(cmd: list[str]) -> int:
    """Run the command to its end, its output discarded; its exit code."""
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def one_try(config: str, runs_per_gpu: int, after_s: float) -> dict:
    out = Path(tempfile.mkdtemp(prefix="stop-probe-"))
    cmd = [sys.executable, "-m", "quide", "reproduce", config, "--out", str(out),
           "--budget-s", str(after_s + STOP_GRACE_S), "--time-limit-s", "86400"]   # every run starts
    if runs_per_gpu != 1:
        cmd += ["--runs-per-gpu", str(runs_per_gpu)]
    kernels: list[int] = []
    snap = threading.Timer(after_s - 1.0, lambda: kernels.extend(kernel_pids()))
    snap.start()
    began = time.perf_counter()
    code = run_command(cmd)   # 3: runs were stopped (or deferred), as the budget asks
    returned = time.perf_counter() - began - after_s
    snap.cancel()
    left = []
    while time.perf_counter() - began - after_s < CLEAR_WITHIN_S:
        left = [p for p in kernels if alive(p)] + gpu_pids()
        if not left:
            break
        time.sleep(POLL_S)
    cleared = time.perf_counter() - began - after_s
    shutil.rmtree(out, ignore_errors=True)
    return {"stopped": code == 3, "exit code": code, "kernels at the stop": len(kernels),
            "returned s": returned, "cleared s": None if left else cleared, "left": left}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", help="grid config (TOML) whose runs are still running after --after-s")
    ap.add_argument("--runs-per-gpu", type=int, default=1)
    ap.add_argument("--after-s", type=float, default=20.0, help="stop this many seconds after the start")
    ap.add_argument("--tries", type=int, default=3)
    args = ap.parse_args(argv)
    if args.after_s <= 1 or args.tries < 1:
        ap.error("--after-s must be > 1 and --tries >= 1")
    gpus = shutil.which("nvidia-smi") is not None
    print(f"# stop after {args.after_s:.0f} s: quide reproduce {args.config}"
          f"{f' --runs-per-gpu {args.runs_per_gpu}' if args.runs_per_gpu != 1 else ''}"
          f" | GPU processes {'polled' if gpus else 'not polled (no nvidia-smi)'}", flush=True)
    for i in range(1, args.tries + 1):
        r = one_try(args.config, args.runs_per_gpu, args.after_s)
        cleared = f"{r['cleared s']:.2f} s" if r["cleared s"] is not None else f"NOT within {CLEAR_WITHIN_S:.0f} s: {r['left']}"
        print(f"try {i}: stopped {r['stopped']}, exit code {r['exit code']}, {r['kernels at the stop']} kernels at the "
              f"stop; returned {r['returned s']:.2f} s after the stop; nothing left {cleared}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
