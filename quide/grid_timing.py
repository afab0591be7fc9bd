"""Where a grid's wall time went: the timing summary that ``quide reproduce`` prints when it ends.

Each call of ``quide reproduce`` (not a dry run) is recorded in ``<out>/logs/calls.json``: its wall
seconds, its phases (planning, ``--train-first``'s trainings, the runs of each ``[[experiment]]``
table) and every run's and training's start and end, in seconds since the call began. A call with
``--resume`` continues the measurement of the calls before it in that folder (the same config and
``-p``); any other starts a new one. The summary says each phase's wall seconds, every run's and
training's seconds (longest first), the **critical path** (the chain that ended last: planning,
then the trainings one after another on the lane of the training that ended last, then the runs
one after another on the worker of the run that ended last) and, last, one line::

    whole reproduction: N s on K x <GPU name>

only when every planned run finished within the counted calls (N is their sum); otherwise the line
says ``not finished``, ``interrupted`` or ``not timed from scratch`` and why. The summary is also
written to ``<out>/logs/summary-<UTC time>.txt``.
"""
from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path

from .config import atomic_path

LEDGER = Path("logs") / "calls.json"
GAP_S = 1.0   # a wait between two links of the critical path shorter than this is not shown


class ResumeError(ValueError):
    """--resume cannot continue this folder's measurement."""


def earlier_calls(out: Path, grid: dict, resume: bool) -> list[dict]:
    """The calls a ``--resume`` call adds its seconds to (none without ``--resume``); ResumeError
    where there are none, or where they ran another grid (other config or ``-p``: other runs)."""
    path = Path(out) / LEDGER
    if not resume:
        return []
    if not path.is_file():
        raise ResumeError(f"--resume: {path} not found; the first call runs without --resume")
    doc = json.loads(path.read_text())
    if doc.get("grid") != grid:
        raise ResumeError(f"--resume: the calls in {path} ran {json.dumps(doc.get('grid'))}, this one asks for "
                          f"{json.dumps(grid)}; give the same config and -p")
    return doc["calls"]


def save_calls(out: Path, grid: dict, calls: list[dict]) -> None:
    path = Path(out) / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".tmp") as tmp:
        Path(tmp).write_text(json.dumps({"grid": grid, "calls": calls}, indent=1) + "\n")


def critical_path(rows: list[dict]) -> list[dict]:
    """The chain of ``rows`` (each with ``start_s``, ``end_s``, ``lane``) that ended last: the row
    that ended last, the one before it on its lane, and so on back; earliest first."""
    done = [r for r in rows if r.get("start_s") is not None and r.get("end_s") is not None]
    if not done:
        return []
    chain = [max(done, key=lambda r: r["end_s"])]
    while True:
        before = [r for r in done if r["lane"] == chain[0]["lane"] and r["end_s"] <= chain[0]["start_s"] + 1e-6
                  and r is not chain[0]]
        if not before:
            return chain
        chain.insert(0, max(before, key=lambda r: r["end_s"]))


def path_text(call: dict) -> str:
    """The call's critical path in words: planning > trainings > runs, with the waits between them."""
    links = [{"label": "planning", "start_s": 0.0, "end_s": call["planned_s"], "lane": None}]
    runs = critical_path(call["runs"])
    first_run = runs[0]["start_s"] if runs else float("inf")
    links += [t for t in critical_path(call["trainings"]) if t["end_s"] <= first_run + 1e-6]
    links += runs
    parts, at = [], 0.0
    for link in links:
        if link["start_s"] - at > GAP_S:
            parts.append(f"(wait {link['start_s'] - at:.0f} s)")
        where = f" [{link['lane']}]" if link["lane"] is not None else ""
        parts.append(f"{link['label']} {link['end_s'] - link['start_s']:.0f} s{where}")
        at = link["end_s"]
    stopped = [r for r in call["runs"] + call["trainings"] if r["status"] == "stopped" and r["end_s"] is not None]
    if stopped:
        parts.append(f"stopped by --budget-s at {min(r['end_s'] for r in stopped):.0f} s with {len(stopped)} "
                     "unfinished")
        at = min(r["end_s"] for r in stopped)
    if call["wall_s"] - at > GAP_S:
        parts.append(f"(then {call['wall_s'] - at:.0f} s to the end)")
    return " > ".join(parts)


def _rows(rows: list[dict], prefix: str = "") -> list[str]:
    return [f"{r['seconds']:8.1f} s  {r['label']}{prefix}" for r in sorted(rows, key=lambda r: -r["seconds"])]


def call_lines(call: dict, number: int | None = None) -> list[str]:
    """One call's phases, its trainings' and runs' seconds and its critical path."""
    tag = f" (call {number})" if number else ""
    lines = [f"planning{tag}: {call['planned_s']:.0f} s; {call['planned']} runs planned, "
             f"{call['done_before']} finished before this call"]
    trainings = [t for t in call["trainings"] if t["start_s"] is not None]
    if call["trainings"] or call["checkpoints_found"]:
        counts = ", ".join(f"{n} {s}" for s, n in _counts(call["trainings"]).items())
        span = (f"{max(t['end_s'] for t in trainings) - min(t['start_s'] for t in trainings):.0f} s wall"
                if trainings else "nothing started")
        lines.append(f"training first{tag}: {span}; {counts or 'nothing to train'}; "
                     f"{call['checkpoints_found']} checkpoints found on disk; {call['training_how']}")
        lines += _rows(trainings)
    ran = [r for r in call["runs"] if r["start_s"] is not None]
    key = lambda r: r["table"]   # noqa: E731
    for table, group in groupby(sorted(ran, key=key), key=key):
        group = list(group)
        lines.append(f"runs of {table}{tag}: {len(group)} in {max(r['end_s'] for r in group) - min(r['start_s'] for r in group):.0f} s "
                     f"wall ({min(r['start_s'] for r in group):.0f}-{max(r['end_s'] for r in group):.0f} s), "
                     f"sum {sum(r['seconds'] for r in group):.0f} s")
    lines += _rows(ran)
    lines.append(f"runs{tag}: " + (", ".join(f"{n} {s}" for s, n in _counts(call["runs"]).items()) or "none to run"))
    lines.append(f"critical path{tag} (ended at {call['wall_s']:.0f} s): {path_text(call)}")
    return lines


def _counts(rows: list[dict]) -> dict:
    counts: dict = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def last_line(calls: list[dict], planned: int, finished: int) -> str:
    """``whole reproduction: N s on K x <GPU>`` when all ``planned`` runs finished within ``calls``,
    else the line says what is missing."""
    total = sum(c["wall_s"] for c in calls)
    hardware = " / ".join(dict.fromkeys(c["gpus"] for c in calls))
    walls = " + ".join(f"{c['wall_s']:.0f}" for c in calls)
    over = f" over {len(calls)} calls ({walls} s)" if len(calls) > 1 else ""
    end = calls[-1]["end"]
    if end.startswith("interrupted"):
        return (f"whole reproduction: {end}: {finished} of {planned} runs after {total:.0f} s on {hardware}{over}; "
                "the runs and trainings it started are stopped")
    if finished < planned:
        failed = sum(r["status"] == "failed" for r in calls[-1]["runs"])
        why = (f"{failed} failed (their logs are named above)" if failed else
               "the rest deferred or stopped by the time limit: the same command with --resume goes on")
        return f"whole reproduction: not finished: {finished} of {planned} runs after {total:.0f} s on {hardware}{over}; {why}"
    if calls[0]["done_before"]:
        return (f"whole reproduction: not timed from scratch: {calls[0]['done_before']} of {planned} runs were "
                f"finished before the first counted call; {total:.0f} s on {hardware}{over}")
    return f"whole reproduction: {total:.0f} s on {hardware}{over}"


def summary(calls: list[dict], planned: int, finished: int) -> list[str]:
    """The whole summary: each counted call's lines, the totals, the last line."""
    lines = []
    for i, call in enumerate(calls, 1):
        lines += call_lines(call, i if len(calls) > 1 else None)
    ran = [r for c in calls for r in c["runs"] if r["status"] == "done"]
    lines.append(f"{finished} of {planned} runs finished; sum of the counted calls' runs {sum(r['seconds'] for r in ran):.0f} s")
    lines.append(last_line(calls, planned, finished))
    return lines


def write_summary(out: Path, header: str, lines: list[str], stamp: str) -> Path:
    """``<out>/logs/summary-<stamp>.txt``: the call's header (how it was made, on what), then ``lines``."""
    path = Path(out) / "logs" / f"summary-{stamp}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path
