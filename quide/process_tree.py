"""The processes a runner started, found through /proc, and ended for sure (``--budget-s``).

A Jupyter kernel starts a session of its own, so signals to the runner's process group miss it; it
quits when its papermill does (ipykernel's parent poller), a moment later. A runner that must have
nothing left running when it returns notes its descendants *before* it stops its workers (once a
parent is gone its orphans lose the link) and waits for them, killing what outlives the wait.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

POLL_S = 0.1


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time in clock ticks) from /proc, None where the pid is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (a zombie does not: its state reads "Z", or "ZN" under nice) and is the
    process that started at ``started`` where given, not a later one that took its pid."""
    stat = _stat(pid)
    return stat is not None and not stat[0].startswith("Z") and started in (None, stat[2])


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of every live descendant of ``pid``, in its process group or not."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found, frontier = [], {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        found += children
        frontier = children
    return [(child, stat[2]) for child in found if (stat := _stat(child)) and not stat[0].startswith("Z")]


def end_all(family: list[tuple[int, int]], grace_s: float) -> list[int]:
    """Wait up to ``grace_s`` for ``family`` (from :func:`descendants`) to end, then SIGKILL what is
    left and wait for that too (a process in D state takes a while); return the pids still alive."""
    waited = time.monotonic() + grace_s
    left = [(pid, started) for pid, started in family if alive(pid, started)]
    while left and time.monotonic() < waited:
        time.sleep(POLL_S)
        left = [(pid, started) for pid, started in left if alive(pid, started)]
    waited = time.monotonic() + grace_s
    while left and time.monotonic() < waited:
        for pid, _ in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(POLL_S)
        left = [(pid, started) for pid, started in left if alive(pid, started)]
    return [pid for pid, _ in left]
