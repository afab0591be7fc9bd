"""NVIDIA's Multi-Process Service (MPS) around a stretch of GPU work (``quide reproduce --mps``).

Under MPS the kernels of several processes sharing a GPU run side by side instead of taking turns,
so trainings packed onto one card overlap (``benchmarks/probes/mps_probe.py``). It also raises the
graph-replay T of the same graphs (``benchmarks/probes/mps_timing_probe.py``), so timings made under
it are another measurement: ``--train-first`` keeps it to the trainings.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

CONTROL = "nvidia-cuda-mps-control"
# The daemon and every client read these from the environment; the runs inherit them.
FOLDERS = {"CUDA_MPS_PIPE_DIRECTORY": "/tmp/quide-mps/pipe", "CUDA_MPS_LOG_DIRECTORY": "/tmp/quide-mps/log"}
QUIT_WAIT_S = 10.0   # how long to wait for the daemon to go after "quit" (it leaves after its clients)


def available() -> bool:
    """Whether this host has the MPS control program (it comes with the NVIDIA driver's utilities)."""
    return shutil.which(CONTROL) is not None


def daemon_running() -> bool:
    """Whether NVIDIA's MPS control daemon runs on this host (a process named nvidia-cuda-mps...)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "nvidia-cuda-mps":   # comm is cut at 15 characters
                return True
        except OSError:
            pass
    return False


@contextlib.contextmanager
def mps(on: bool):
    """MPS for the GPUs in CUDA_VISIBLE_DEVICES while open, where ``on``. The daemon is quit and the
    environment restored on the way out, whatever happened inside, so the card is left as found."""
    if not on:
        yield
        return
    before = {var: os.environ.get(var) for var in FOLDERS}
    for var, folder in FOLDERS.items():
        os.environ[var] = folder
        Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([CONTROL, "-d"], check=True)
        try:
            yield
        finally:
            subprocess.run([CONTROL], input="quit\n", text=True, check=False)
            waited = time.monotonic() + QUIT_WAIT_S
            while daemon_running() and time.monotonic() < waited:   # later work runs without it
                time.sleep(0.1)
    finally:
        for var, value in before.items():
            if value is None:
                del os.environ[var]
            else:
                os.environ[var] = value
